"""Every `show` command's JSON, run through the executor of a dry-run engine on loopback, validates against the
documented schema (engine/json_schema.py); the schema itself is valid draft 2020-12."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from lvsconsole.engine.daemon import running_engine
from lvsconsole.engine.json_schema import SHOW_DATA, document, result_schema

CONFIG = """
vrrp_instance VI_J {{
    state BACKUP
    interface lo
    virtual_router_id 78
    priority 120
    advert_int 1
    virtual_ipaddress {{
        192.0.2.78/32
    }}
}}
virtual_server 127.0.0.1 {vport} {{
    delay_loop 0.1
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.1 {live} {{
        weight 3
        TCP_CHECK {{
            connect_timeout 1
            retry 0
        }}
    }}
    real_server 127.0.0.1 {dead} {{
        weight 2
        TCP_CHECK {{
            connect_timeout 1
            retry 0
        }}
    }}
}}
"""


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


def test_the_schema_document_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(document())
    for command in SHOW_DATA:
        jsonschema.Draft202012Validator.check_schema(result_schema(command))


def test_every_show_command_matches_its_schema(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    live, dead, vport = listener.getsockname()[1], closed_port(), closed_port()
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONFIG.format(vport=vport, live=live, dead=dead))
    outputs: dict[str, Any] = {}

    async def go() -> None:
        async with running_engine(str(conf), dry_run=True, socket_path=None) as engine:
            def settled() -> bool:
                health = {rs.port: rs.health for vs in engine.director.snapshot().virtual_servers
                          for rs in vs.real_servers}
                return health.get(live) == "up" and health.get(dead) == "down"

            await wait_until(settled)
            run = engine.executor.run
            # give every topic something to show: a committed change (history), an uncommitted one (diff,
            # candidate), and a runtime override
            for setup in (f"set rs 127.0.0.1:{live} weight 5", "commit", f"set rs 127.0.0.1:{dead} weight 4",
                          f"drain 127.0.0.1:{live} --force"):
                assert (await run(setup, who="test")).ok, setup
            commands = [
                "show vrrp", "show vrrp VI_J", "show vs", f"show vs 127.0.0.1:{vport}", "show rs",
                f"show rs 127.0.0.1:{dead} in 127.0.0.1:{vport}", "show log", "show log 3", "show config",
                "show config candidate", "show diff", "show stats", "show history", "show overrides", "show drain",
                "show vs 127.0.0.9:1", "show vrrp NOPE",  # refused: the error envelope
            ]
            for command in commands:
                # through JSON text, as `ctl --json` prints it
                outputs[command] = json.loads(json.dumps((await run(command, who="test")).as_json()))

    try:
        asyncio.run(go())
    finally:
        listener.close()

    for command, result in outputs.items():
        key = " ".join(command.split()[:2])
        jsonschema.validate(result, result_schema(key), cls=jsonschema.Draft202012Validator)
    assert outputs["show vs 127.0.0.9:1"]["ok"] is False
    assert outputs["show vrrp NOPE"]["data"]["error"]["word"] == "NOPE"
    assert {o["health"] for o in outputs["show rs"]["data"]} == {"draining", "down"}
    assert [o["drain"] for o in outputs["show overrides"]["data"]] == [True]
    assert [w["phase"] for w in outputs["show drain"]["data"]] in (["draining"], ["held"])
    assert len(outputs["show history"]["data"]) == 2
    assert outputs["show diff"]["data"]["changes"][0]["fields"][0]["new"] == "4"
    assert outputs["show config candidate"]["data"]["dirty"] is True
    assert outputs["show stats"]["data"]["real_servers"] == 2
    assert outputs["show vrrp VI_J"]["data"][0]["base_priority"] == 120


def test_a_wrong_shape_is_refused() -> None:
    # the schema really constrains: a real server without its health, or a bad state, fails
    bad_rs = {"ok": True, "message": "", "data": [{"key": "[127.0.0.1]:tcp:80", "address": "127.0.0.1"}]}
    with pytest.raises(jsonschema.ValidationError, match="health"):
        jsonschema.validate(bad_rs, result_schema("show rs"), cls=jsonschema.Draft202012Validator)
    bad_state = {"ok": True, "message": "", "data": [{
        "name": "VI_1", "state": "PRIMARY", "priority": 100, "base_priority": 100, "runtime_priority": None,
        "vrid": 51, "interface": "eth0", "advert_int": 1, "master": None, "since": None, "sync_group": None,
        "vips": [], "counters": {}}]}
    with pytest.raises(jsonschema.ValidationError, match="PRIMARY"):
        jsonschema.validate(bad_state, result_schema("show vrrp"), cls=jsonschema.Draft202012Validator)
