"""``show conns``, ``trace`` and ``show sync coverage`` through the command executor of dry-run engines (memory
IPVS backends holding given connection tables), the peer's table over its metrics endpoint on loopback."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import urllib.request
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from lvsconsole.config.build import load_text
from lvsconsole.config.render import render
from lvsconsole.config.validate import validate
from lvsconsole.engine.commands import CommandError, Result, Show, Trace, completions, parse
from lvsconsole.engine.daemon import running_engine
from lvsconsole.engine.events import SyncCoverage
from lvsconsole.engine.json_schema import result_schema
from lvsconsole.engine.listen import ListenAddress
from lvsconsole.ipvs.backend import DestCounters
from lvsconsole.ipvs.conntable import Connection
from lvsconsole.ipvs.memory import MemoryBackend
from lvsconsole.ipvs.table import DestKey, ServiceKey

V4 = ipaddress.IPv4Address
VIP = "192.0.2.100"

CONFIG = """
global_defs {{
    router_id test{extra}
}}
virtual_server {vip} 80 {{
    lb_algo wlc
    lb_kind DR
    protocol TCP
    real_server 192.0.2.11 80 {{
        weight 3
    }}
    real_server 192.0.2.12 80 {{
        weight 1
    }}
}}
virtual_server {vip} 443 {{
    lb_algo rr
    lb_kind DR
    persistence_timeout 300
    protocol TCP
    real_server 192.0.2.11 443 {{
        weight 1
    }}
    real_server 192.0.2.12 443 {{
        weight 1
    }}
}}
"""


def conn(client: str, port: int, vport: int, dest: str, state: str = "ESTABLISHED") -> Connection:
    return Connection("TCP", V4(client), port, V4(VIP), vport, V4(dest), vport, state, 800)


TABLE = [
    conn("198.51.100.7", 40001, 80, "192.0.2.11"),
    conn("198.51.100.7", 40002, 80, "192.0.2.12"),
    conn("198.51.100.8", 40003, 80, "192.0.2.11", "FIN_WAIT"),
    conn("198.51.100.7", 40004, 443, "192.0.2.12"),
    conn("198.51.100.7", 0, 443, "192.0.2.12", "NONE"),  # the persistence template
]


# ---------------------------------------------------------------------------------------------- grammar


def test_grammar() -> None:
    show = parse("show conns client 198.51.100.7:40001 server 192.0.2.11 vs 192.0.2.100:80")
    assert isinstance(show, Show) and show.topic == "conns"
    assert show.client is not None and (str(show.client.address), show.client.port) == ("198.51.100.7", 40001)
    assert show.rs is not None and show.rs.port is None and show.vs is not None
    coverage = parse("show sync coverage from [::1]:9650")
    assert isinstance(coverage, Show) and coverage.topic == "sync" and coverage.peer is not None
    assert coverage.peer.text == "[::1]:9650"
    trace = parse("trace 198.51.100.7 to vs 192.0.2.100:443")
    assert isinstance(trace, Trace) and trace.client.port is None and trace.vs.port == 443 and not trace.json
    assert parse("trace 198.51.100.7 to 192.0.2.100:443 --json") == Trace(client=trace.client, vs=trace.vs,
                                                                          json=True)
    conns_json = parse("show conns vs 192.0.2.100:80 --json")
    assert isinstance(conns_json, Show) and conns_json.json and conns_json.vs is not None
    with pytest.raises(CommandError, match="HOST:PORT") as info:
        parse("show sync coverage from nowhere")
    assert info.value.col == 25
    with pytest.raises(CommandError, match="expected to"):
        parse("trace 198.51.100.7")
    assert [c.text for c in completions("show conns ")] == ["client", "server", "vs", "--json"]
    assert "sync" in [c.text for c in completions("show s")]
    assert "trace" in [c.text for c in completions("tr")]


def test_lvs_sync_peer_http_is_validated_and_round_trips() -> None:
    text = CONFIG.format(vip=VIP, extra="\n    lvs_sync_peer_http 127.0.0.1:9650")
    config = load_text(text).config
    assert config.global_defs.lvs_sync_peer_http == "127.0.0.1:9650"
    assert load_text(render(config)).config.global_defs.lvs_sync_peer_http == "127.0.0.1:9650"
    assert "lvs_sync_peer_http" not in render(load_text(CONFIG.format(vip=VIP, extra="")).config)
    bad = load_text(CONFIG.format(vip=VIP, extra="\n    lvs_sync_peer_http nowhere"), filename="k.conf")
    errors = [d for d in validate(bad.config) if d.is_error]
    assert len(errors) == 1 and "lvs_sync_peer_http" in errors[0].message
    assert errors[0].location is not None and errors[0].location.line == 4


# ---------------------------------------------------------------------------------------------- engines


def assert_schema(key: str, result: Result) -> None:
    """As ``ctl --json`` prints it, against the documented schema (engine/json_schema.py)."""
    jsonschema.validate(json.loads(json.dumps(result.as_json())), result_schema(key),
                        cls=jsonschema.Draft202012Validator)


def write(tmp_path: Path, name: str, extra: str = "") -> str:
    path = tmp_path / name
    path.write_text(CONFIG.format(vip=VIP, extra=extra))
    return str(path)


def test_show_conns_and_trace(tmp_path: Path) -> None:
    async def go() -> dict[str, Any]:
        async with running_engine(write(tmp_path, "a.conf"), dry_run=True, socket_path=None) as engine:
            backend = engine.director.backend
            assert isinstance(backend, MemoryBackend)
            backend.set_connections(TABLE)
            wlc = ServiceKey.inet("tcp", VIP, 80)
            backend.set_dest_stats(wlc, DestKey.of("192.0.2.11", 80), DestCounters(activeconns=9, inactconns=1))
            backend.set_dest_stats(wlc, DestKey.of("192.0.2.12", 80), DestCounters(activeconns=1, inactconns=0))
            run = engine.executor.run
            return {
                "client": await run("show conns client 198.51.100.7", "test"),
                "client_port": await run("show conns client 198.51.100.7:40002", "test"),
                "server": await run("show conns server 192.0.2.11", "test"),
                "vs": await run("show conns vs 192.0.2.100:443", "test"),
                "none": await run("show conns client 203.0.113.1", "test"),
                "trace_conn": await run("trace 198.51.100.7:40001 to 192.0.2.100:80", "test"),
                "trace_wlc": await run("trace 198.51.100.9:5555 to 192.0.2.100:80", "test"),
                "trace_template": await run("trace 198.51.100.7 to 192.0.2.100:443", "test"),
                "trace_unknown": await run("trace 198.51.100.7 to 192.0.2.100:8080", "test"),
                "maint": await run("disable 192.0.2.11:80 --force", "test"),
                "trace_maint": await run("trace 198.51.100.9:5555 to 192.0.2.100:80", "test"),
                "conns_json": await run("show conns server 192.0.2.12 --json", "test"),
                "trace_json": await run("trace 198.51.100.7 to vs 192.0.2.100:443 --json", "test"),
            }

    r = asyncio.run(go())
    for key in ("client", "server", "vs", "none"):
        assert_schema("show conns", r[key])
    for key in ("trace_conn", "trace_wlc", "trace_template", "trace_unknown", "trace_maint"):
        assert_schema("trace", r[key])
    ports = {k: sorted(c["client_port"] for c in r[k].data["connections"]) for k in ("client", "server", "vs")}
    assert ports == {"client": [0, 40001, 40002, 40004], "server": [40001, 40003], "vs": [0, 40004]}
    assert r["client"].data["total"] == 5 and "template" in r["client"].message
    assert [c["dest"] for c in r["client_port"].data["connections"]] == ["192.0.2.12"]
    assert r["none"].ok and "no matching connection (the table holds 5)" in r["none"].message

    for key in ("conns_json", "trace_json"):  # --json: the message is the data
        assert r[key].ok and json.loads(r[key].message) == json.loads(json.dumps(r[key].data))
    assert [c["client_port"] for c in r["conns_json"].data["connections"]] == [40002, 40004, 0]
    assert r["trace_json"].data["traces"][0]["verdict"] == "template"
    (conn_trace,) = r["trace_conn"].data["traces"]
    assert conn_trace["verdict"] == "connection" and conn_trace["dest"] == "192.0.2.11:80"
    (wlc_trace,) = r["trace_wlc"].data["traces"]
    # wlc: .11 (9*256+1)/3 = 768.33, .12 (1*256)/1 = 256 → .12
    assert wlc_trace["verdict"] == "scheduler" and wlc_trace["dest"] == "192.0.2.12:80"
    figures = {c["dest"]: c["figures"] for c in wlc_trace["candidates"]}
    assert figures["192.0.2.11:80"] == {"active": 9, "inactive": 1, "overhead": 2305, "per_weight": 768.333}
    assert "per_weight 256.0" in r["trace_wlc"].message
    (template_trace,) = r["trace_template"].data["traces"]
    assert template_trace["verdict"] == "template" and template_trace["dest"] == "192.0.2.12:443"
    assert not r["trace_unknown"].ok and "no virtual server 192.0.2.100:8080" in r["trace_unknown"].message

    assert r["maint"].ok, r["maint"].message
    (maint_trace,) = r["trace_maint"].data["traces"]
    assert maint_trace["dest"] == "192.0.2.12:80"
    excluded = {c["dest"]: c["reason"] for c in maint_trace["candidates"] if not c["eligible"]}
    assert excluded == {"192.0.2.11:80": "not in the table (maint: out of the table, checks paused)"}


def fetch_json(address: ListenAddress) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{address.port}/connections.json", timeout=10) as response:
        assert response.headers["Content-Type"] == "application/json"
        return json.loads(response.read())


def test_sync_coverage_against_a_peer_engine(tmp_path: Path) -> None:
    async def go() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with running_engine(write(tmp_path, "backup.conf"), dry_run=True, socket_path=None,
                                  metrics=ListenAddress("127.0.0.1", 0)) as backup:
            assert backup.metrics is not None
            peer = backup.metrics.address
            backup_be = backup.director.backend
            assert isinstance(backup_be, MemoryBackend)
            backup_be.set_connections(TABLE[:1] + TABLE[3:])  # holds 40001 and 40004 (+ the template)
            out["served"] = await asyncio.to_thread(fetch_json, peer)
            extra = f"\n    lvs_sync_peer_http 127.0.0.1:{peer.port}"
            async with running_engine(write(tmp_path, "master.conf", extra), dry_run=True,
                                      socket_path=None) as master:
                master_be = master.director.backend
                assert isinstance(master_be, MemoryBackend)
                master_be.set_connections(TABLE)
                run = master.executor.run
                out["from"] = await run(f"show sync coverage from 127.0.0.1:{peer.port}", "test")
                out["json"] = await run(f"show sync coverage from 127.0.0.1:{peer.port} --json", "test")
                out["configured"] = await run("show sync coverage", "test")
                out["stats"] = master.director.snapshot().stats.get("sync_coverage")
                backup_be.set_connections([])
                out["dropped"] = await run("show sync coverage", "test")
                out["events"] = [e for e in master.bus.history() if isinstance(e, SyncCoverage)]
            async with running_engine(write(tmp_path, "alone.conf"), dry_run=True, socket_path=None) as alone:
                out["no_peer"] = await alone.executor.run("show sync coverage", "test")
                out["closed"] = await alone.executor.run("show sync coverage from 127.0.0.1:1", "test")
        return out

    r = asyncio.run(go())
    for key in ("from", "configured", "dropped", "no_peer", "closed"):
        assert_schema("show sync", r[key])
    assert len(r["served"]["connections"]) == 3 and r["served"]["connections"][0]["client_port"] == 40001
    # ours: 3 established flows (40001, 40002, 40004; 40003 is FIN_WAIT, the template does not count)
    for key in ("from", "configured"):
        assert r[key].ok, r[key].message
        assert (r[key].data["established"], r[key].data["kept"]) == (3, 2)
        assert r[key].data["percent"] == pytest.approx(200 / 3)
        assert "a failover now would keep 67% of established flows (2 of 3" in r[key].message
    assert [m["client_port"] for m in r["configured"].data["missing"]] == [40002]
    assert json.loads(r["json"].message)["kept"] == 2
    assert r["stats"]["percent"] == pytest.approx(200 / 3) and r["stats"]["error"] is None
    assert r["dropped"].data["percent"] == 0.0
    assert [round(e.percent) for e in r["events"] if e.percent is not None][-2:] == [67, 0]
    assert not r["no_peer"].ok and "lvs_sync_peer_http" in r["no_peer"].message
    assert not r["closed"].ok and "127.0.0.1:1/connections.json" in r["closed"].message
