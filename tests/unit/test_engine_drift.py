"""Drift through the engine: ``ipvs_drift hold`` on an embedded dry-run engine (memory IPVS backend). A weight
edited and a dest deleted behind the engine's back are listed by ``show drift``, published as events,
adopted into the candidate (``drift adopt``) or pushed back (``drift reconcile``); the default ``repair``
policy repairs at once and names each item."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from lvsconsole.config.build import load_text
from lvsconsole.config.render import render
from lvsconsole.engine.daemon import Engine, running_engine
from lvsconsole.engine.drift import adopt_command
from lvsconsole.engine.events import IpvsDriftCleared, IpvsDriftDetected, IpvsDriftRepaired
from lvsconsole.ipvs.reconcile import DeleteDest, EditDest
from lvsconsole.ipvs.table import DestKey, ServiceKey

WEB = ServiceKey.inet("tcp", "10.0.0.100", 80)
RS1 = DestKey.of("10.0.1.1", 80)
RS2 = DestKey.of("10.0.1.2", 80)


def conf(policy: str | None) -> str:
    line = f"    ipvs_drift {policy}\n" if policy else ""
    return f"""\
global_defs {{
    router_id drifttest
{line}}}
virtual_server 10.0.0.100 80 {{
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    real_server 10.0.1.1 80 {{
        weight 3
    }}
    real_server 10.0.1.2 80 {{
        weight 2
    }}
}}
"""


def test_ipvs_drift_round_trips_and_defaults_to_repair() -> None:
    assert load_text(conf(None)).config.global_defs.ipvs_drift == "repair"
    held = load_text(conf("hold"), strict=True)
    assert not held.diagnostics and held.config.global_defs.ipvs_drift == "hold"
    assert "ipvs_drift hold" in render(held.config)
    assert "ipvs_drift" not in render(load_text(conf("repair")).config)
    assert any("ipvs_drift" in d.message for d in load_text(conf("sometimes")).diagnostics)


async def _behind_the_back(engine: Engine) -> None:
    backend = engine.director.backend
    table = await backend.read_table()
    await backend.apply([EditDest(WEB, replace(table[WEB].dests[RS1], weight=7)), DeleteDest(WEB, RS2)])
    assert engine.director.ipvs is not None
    await engine.director.ipvs.check()


def test_hold_lists_adopts_and_reconciles(tmp_path: Path) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_text(conf("hold"))

    async def scenario() -> None:
        async with running_engine(str(path), dry_run=True, socket_path=None, syslog=None) as engine:
            events = engine.bus.subscribe()
            run = engine.executor.run
            assert (await run("show drift", "test")).message.startswith("no drift")
            await _behind_the_back(engine)
            shown = await run("show drift", "test")
            assert shown.ok
            kinds = {view["kind"]: view for view in shown.data}
            assert set(kinds) == {"weight-changed", "dest-deleted"}
            weight, deleted = kinds["weight-changed"], kinds["dest-deleted"]
            assert (weight["intent"], weight["kernel"], weight["vs_label"], weight["rs_label"]) == (
                "weight 3", "weight 7", "10.0.0.100:80", "10.0.1.1:80")
            assert weight["id"] in shown.message and "weight 7" in shown.message
            assert engine.director.snapshot().stats["ipvs_drift"] == 2
            # still there at the next check: held, not repaired
            await engine.director.ipvs.check()  # type: ignore[union-attr]
            assert (await engine.director.backend.read_table())[WEB].dests[RS1].weight == 7
            as_json = await run("show drift --json", "test")
            assert as_json.message.lstrip().startswith("[") and weight["id"] in as_json.message
            # drift adopt: the kernel's weight goes into the candidate, not into the running config
            adopted = await run(f"drift adopt {weight['id'][:5]}", "test")
            assert adopted.ok, adopted.message
            assert engine.store.dirty and "weight 7" in engine.store.candidate.text
            assert "weight 7" not in engine.store.running.text
            diff = await run("diff", "test")
            assert "weight" in diff.message and "7" in diff.message
            # drift reconcile: the deleted dest comes back; its item clears
            fixed = await run(f"drift reconcile {deleted['id']}", "test")
            assert fixed.ok, fixed.message
            assert RS2 in (await engine.director.backend.read_table())[WEB].dests
            assert [v["id"] for v in (await run("show drift", "test")).data] == [weight["id"]]
            # committing the adopted weight makes intent equal to the kernel: the last item clears
            assert (await run("commit", "test")).ok
            await engine.director.ipvs.check()  # type: ignore[union-attr]
            assert (await run("show drift", "test")).data == []
            seen = events.drain()
            detected = {e.drift_id for e in seen if isinstance(e, IpvsDriftDetected)}
            cleared = {e.drift_id for e in seen if isinstance(e, IpvsDriftCleared)}
            assert detected == cleared == {weight["id"], deleted["id"]}
            unknown = await run("drift reconcile ffffffff", "test")
            assert not unknown.ok and "no drift item" in unknown.message

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_adopting_a_dest_deletion_deletes_the_real_server_from_the_candidate(tmp_path: Path) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_text(conf("hold"))

    async def scenario() -> None:
        async with running_engine(str(path), dry_run=True, socket_path=None, syslog=None) as engine:
            await _behind_the_back(engine)
            adopted = await engine.executor.run("drift adopt all", "test")
            assert adopted.ok, adopted.message
            candidate = engine.store.candidate.config.virtual_servers[0]
            assert [(str(rs.address), rs.weight) for rs in candidate.real_servers] == [("10.0.1.1", 7)]

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_repair_policy_repairs_at_once_naming_each_item(tmp_path: Path) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_text(conf(None))

    async def scenario() -> None:
        async with running_engine(str(path), dry_run=True, socket_path=None, syslog=None) as engine:
            events = engine.bus.subscribe()
            await _behind_the_back(engine)
            table = await engine.director.backend.read_table()
            assert table[WEB].dests[RS1].weight == 3 and RS2 in table[WEB].dests
            assert (await engine.executor.run("show drift", "test")).data == []
            repaired = [event for event in events.drain() if isinstance(event, IpvsDriftRepaired)]
            assert sorted(e.drift_kind for e in repaired) == ["dest-deleted", "weight-changed"]
            assert any(e.text().startswith("Drift repaired: weight-changed TCP 10.0.0.100:80 -> 10.0.1.1:80")
                       for e in repaired)

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_what_cannot_be_adopted_says_so() -> None:
    view = {"id": "0123abcd", "kind": "service-changed", "where": "TCP 10.0.0.100:80"}
    with pytest.raises(ValueError, match="cannot be adopted: reconcile it"):
        adopt_command(view)
    vip = {"id": "1", "kind": "vip-removed", "vip": "10.0.0.100", "instance": "VI_1"}
    assert adopt_command(vip) == "delete vip 10.0.0.100 from VI_1"


VIP_CONF = """\
global_defs {
    router_id vipdrift
    ipvs_drift hold
}
vrrp_instance VI_1 {
    state MASTER
    interface lo
    virtual_router_id 77
    priority 150
    advert_int 0.1
    version 3
    virtual_ipaddress {
        198.18.77.100/32
    }
}
"""


def test_a_vip_missing_from_its_interface_is_drift_that_adopt_deletes(tmp_path: Path) -> None:
    """A dry run holds its VIPs without adding them (no address changes): to the host's real address list the
    MASTER's VIP is missing, which is what an ``ip addr del`` by hand looks like."""
    path = tmp_path / "keepalived.conf"
    path.write_text(VIP_CONF)

    async def scenario() -> None:
        async with running_engine(str(path), dry_run=True, socket_path=None, syslog=None) as engine:
            director = engine.director
            events = engine.bus.subscribe()
            while director.snapshot().instances[0].state != "MASTER":
                await asyncio.sleep(0.05)
            await director.check_vip_drift()
            shown = await engine.executor.run("show drift", "test")
            assert [(v["kind"], v["vip"], v["interface"], v["instance"]) for v in shown.data] == [
                ("vip-removed", "198.18.77.100", "lo", "VI_1")]
            assert "VIP 198.18.77.100 on lo (VI_1)" in shown.message
            assert [e.drift_kind for e in events.drain() if isinstance(e, IpvsDriftDetected)] == ["vip-removed"]
            await director.check_vip_drift()  # still missing: not reported again
            assert not [e for e in events.drain() if isinstance(e, IpvsDriftDetected)]
            adopted = await engine.executor.run("drift adopt all", "test")
            assert adopted.ok, adopted.message
            assert "198.18.77.100" not in engine.store.candidate.text
            assert "198.18.77.100" in engine.store.running.text

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_drift_commands_parse_and_complete() -> None:
    from lvsconsole.engine.commands import DriftAdopt, DriftReconcile, Names, Show, completions, parse

    assert parse("drift reconcile") == DriftReconcile(text="drift reconcile", item=None)
    assert parse("drift reconcile all").item is None  # type: ignore[attr-defined]
    adopt = parse("drift adopt 3F9A")
    assert isinstance(adopt, DriftAdopt) and adopt.item == "3f9a" and adopt.MUTATES
    show = parse("show drift --json")
    assert isinstance(show, Show) and show.topic == "drift" and show.json
    names = Names(drift=("3f9a01c2", "0b1c2d3e"))
    assert [c.text for c in completions("drift ", names=names)] == ["reconcile", "adopt"]
    assert [c.text for c in completions("drift adopt ", names=names)] == ["all", "3f9a01c2", "0b1c2d3e"]


def test_adopting_a_dest_added_by_hand_adds_the_real_server_to_the_candidate(tmp_path: Path) -> None:
    from lvsconsole.ipvs.reconcile import AddDest
    from lvsconsole.ipvs.table import Dest, Fwd

    path = tmp_path / "keepalived.conf"
    path.write_text(conf("hold"))

    async def scenario() -> None:
        async with running_engine(str(path), dry_run=True, socket_path=None, syslog=None) as engine:
            await engine.director.backend.apply([AddDest(WEB, Dest.of("10.0.1.9", 80, fwd=Fwd.MASQ, weight=4))])
            assert engine.director.ipvs is not None
            await engine.director.ipvs.check()
            shown = await engine.executor.run("show drift", "test")
            assert [(v["kind"], v["rs_label"], v["kernel_weight"]) for v in shown.data] == [
                ("dest-added", "10.0.1.9:80", 4)]
            adopted = await engine.executor.run("drift adopt all", "test")
            assert adopted.ok, adopted.message
            candidate = engine.store.candidate.config.virtual_servers[0]
            assert ("10.0.1.9", 80, 4) in [(str(rs.address), rs.port, rs.weight) for rs in candidate.real_servers]

    asyncio.run(asyncio.wait_for(scenario(), 30))
