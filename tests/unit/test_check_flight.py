"""``show checks`` and ``check now`` through the executor of a dry-run engine, against a real loopback listener
that is closed and opened again: the refusal is recorded with its reason, and the result counts (the server
goes down and comes back) although the schedule would not probe it for an hour."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from _checkutil import run

from lvsconsole.engine.commands import Result
from lvsconsole.engine.daemon import Engine, running_engine
from lvsconsole.engine.events import OperatorAction
from lvsconsole.engine.json_schema import result_schema

WHO = "uid=1000(alice)"

# delay_loop 3600 with the default warmup: the first scheduled probe comes at a random time within the hour,
# so within this test only `check now` probes (the assertions hold even if a scheduled one slips in).
CONFIG = """
global_defs {{
    router_id FLIGHT_TEST
}}
virtual_server 127.0.0.1 {vs_port} {{
    delay_loop 3600
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.1 {rs_port} {{
        weight 2
        TCP_CHECK {{
            connect_timeout 2
            retry 0
        }}
    }}
}}
"""


async def do(engine: Engine, text: str) -> Result:
    result = await engine.executor.run(text, WHO)
    json.dumps(result.as_json())  # every result crosses the control socket as JSON
    return result


def health(engine: Engine) -> str:
    (vs,) = engine.director.snapshot().virtual_servers
    (rs,) = vs.real_servers
    return rs.health


async def listen(port: int = 0) -> asyncio.Server:
    return await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", port)


async def scenario(tmp_path: Path) -> dict[str, Any]:
    server = await listen()
    rs_port = server.sockets[0].getsockname()[1]
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONFIG.format(vs_port=18099, rs_port=rs_port))
    rs = f"127.0.0.1:{rs_port}"
    seen: dict[str, Any] = {}
    async with running_engine(str(conf), dry_run=True, socket_path=None, syslog=None) as engine:
        audit = engine.bus.subscribe(kinds=[OperatorAction])
        seen["empty"] = await do(engine, f"show checks {rs}")

        seen["up_now"] = await do(engine, f"check now {rs} in 127.0.0.1:18099")
        seen["health_up"] = health(engine)

        server.close()
        await server.wait_closed()
        seen["refused_now"] = await do(engine, f"check now {rs}")
        seen["health_down"] = health(engine)
        seen["show_down"] = await do(engine, f"show checks {rs} in 127.0.0.1:18099")

        server = await listen(rs_port)
        seen["back_now"] = await do(engine, f"check now {rs}")
        seen["health_back"] = health(engine)
        seen["show_back"] = await do(engine, f"show checks {rs}")

        seen["unknown"] = await do(engine, "check now 127.0.0.9:1")
        seen["audit"] = [e for e in audit.drain() if isinstance(e, OperatorAction)]
    server.close()
    await server.wait_closed()
    return seen


def test_check_now_records_the_refusal_and_feeds_the_check_state(tmp_path: Path) -> None:
    seen = run(scenario(tmp_path), limit=30.0)

    empty = seen["empty"]
    assert empty.ok and empty.data[0]["probes"] == [] and "no probe recorded yet" in empty.message

    up = seen["up_now"]
    assert up.ok, up.message
    (probe,) = up.data["probes"]
    assert (probe["ok"], probe["code"], probe["kind"], probe["health"]) == (True, "ok", "TCP_CHECK", "up")
    assert seen["health_up"] == "up"

    refused = seen["refused_now"]
    assert not refused.ok
    (probe,) = refused.data["probes"]
    assert (probe["ok"], probe["code"], probe["reason"]) == (False, "refused", "connection refused")
    assert "FAILED" in refused.message and "refused" in refused.message
    # retry 0: one failed probe takes the server down, as a scheduled probe's would.
    assert probe["health"] == "down" and seen["health_down"] == "down"

    show = seen["show_down"]
    assert show.ok
    for key in ("empty", "show_down", "show_back"):  # as `ctl --json show checks` prints it
        as_json = json.loads(json.dumps(seen[key].as_json()))
        jsonschema.validate(as_json, result_schema("show checks"), cls=jsonschema.Draft202012Validator)
    (checker,) = show.data
    newest = checker["probes"][-1]
    assert (newest["code"], newest["reason"]) == ("refused", "connection refused")
    assert newest["time"] == pytest.approx(probe["time"], abs=0.01)  # the same probe (wall clock read twice)
    assert newest["detail"].startswith("TCP connection to [127.0.0.1]:tcp:")
    assert checker["transitions"] >= 1 and checker["flap_score"] > 0
    assert checker["latency_p50"] is not None and checker["sparkline"].endswith("×")
    assert "refused" in show.message and "flap score" in show.message and "connection refused" in show.message

    back = seen["back_now"]
    assert back.ok, back.message
    assert back.data["probes"][0]["health"] == "up" and seen["health_back"] == "up"
    codes = [p["code"] for p in seen["show_back"].data[0]["probes"]]
    assert codes[-3:] == ["ok", "refused", "ok"]
    assert seen["show_back"].data[0]["transitions"] >= 2

    unknown = seen["unknown"]
    assert not unknown.ok and "no real server 127.0.0.9:1" in unknown.message

    audited = [(e.command, e.ok) for e in seen["audit"]]
    assert [ok for command, ok in audited if command.startswith("check now")] == [True, False, True, False]
