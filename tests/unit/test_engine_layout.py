"""The director's snapshot of the virtual servers, built from a per-config layout, says exactly what the
straightforward computation from the config, the check policy, the IPVS table and the counters says: on a
config with a fwmark VS, a virtual_server_group, IPv6, a sorry server, operator overrides and servers a
reload removed (draining), before and after that reload."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
from collections.abc import Callable
from typing import Any

from lvsconsole.check.policy import RsRef
from lvsconsole.config import model as m
from lvsconsole.config.diff import diff
from lvsconsole.engine.bus import EventBus
from lvsconsole.engine.director import Director
from lvsconsole.engine.director_api import OverrideChange, RealServerView, RsId, VirtualServerView
from lvsconsole.engine.keys import rs_key, vs_key
from lvsconsole.engine.layout import build_layout, table_weights
from lvsconsole.engine.retirees import server_view
from lvsconsole.engine.store import load_text
from lvsconsole.ipvs.backend import ZERO_COUNTERS, Counters, DestCounters, Stats
from lvsconsole.ipvs.from_config import real_server_dest, virtual_services
from lvsconsole.ipvs.memory import MemoryBackend
from lvsconsole.ipvs.table import Table

CHECK = """        TCP_CHECK {
            connect_timeout 1
            retry 0
            delay_before_retry 0.05
        }
"""


def config_text(*, up_port: int, closed_ports: tuple[int, int], reloaded: bool) -> str:
    """Before the reload: 127.0.0.7 in VS :18103 and the whole VS :18104 exist; the reload removes them and
    changes 127.0.0.6's weight (so a layout kept from the old config would show)."""
    inhibited, down = closed_ports
    text = f"""
global_defs {{
    router_id LAYOUT
}}
virtual_server_group WEB {{
    127.0.0.10-11 18100
    127.0.0.12 18101
}}
virtual_server group WEB {{
    delay_loop 0.05
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 127.0.0.2 18100 {{
        weight 2
    }}
    real_server 127.0.0.3 18100 {{
        weight 3
    }}
}}
virtual_server fwmark 7 {{
    lb_algo wlc
    lb_kind DR
    real_server 127.0.0.4 80 {{
        weight 1
    }}
    real_server 127.0.0.5 80 {{
        weight 4
    }}
}}
virtual_server ::1 18102 {{
    delay_loop 0.05
    lb_algo rr
    lb_kind NAT
    protocol TCP
    quorum 7
    sorry_server ::1 18109
    real_server ::1 {up_port} {{
        weight 5
{CHECK}    }}
    real_server ::1 {inhibited} {{
        weight 2
        inhibit_on_failure
{CHECK}    }}
    real_server ::1 {down} {{
        weight 1
{CHECK}    }}
}}
virtual_server 127.0.0.1 18103 {{
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    persistence_timeout 30
    real_server 127.0.0.6 8080 {{
        weight {5 if reloaded else 1}
    }}
"""
    if not reloaded:
        text += """    real_server 127.0.0.7 8080 {
        weight 1
    }
"""
    text += "}\n"
    if not reloaded:
        text += """virtual_server 127.0.0.1 18104 {
    lb_algo rr
    lb_kind NAT
    protocol UDP
    real_server 127.0.0.8 53 {
        weight 1
    }
}
"""
    return text


def closed_port() -> int:
    with socket.socket(socket.AF_INET6) as sock:
        sock.bind(("::1", 0))
        port: int = sock.getsockname()[1]
    return port


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


def config_of(text: str) -> m.Config:
    loaded = load_text(text)
    assert not loaded.errors, loaded.errors
    return loaded.config


def busy_stats(table: Table) -> Stats:
    """Different counters for every service and dest of ``table``, every dest with active connections."""
    services: dict[Any, Counters] = {}
    dests: dict[Any, DestCounters] = {}
    n = 0
    for skey, entry in table.items():
        n += 1
        services[skey] = Counters(conns=n, cps=10 * n, inbps=100 * n, outbps=7 * n)
        for dkey in entry.dests:
            n += 1
            dests[(skey, dkey)] = DestCounters(conns=n, cps=n, inbps=1000 * n, outbps=3 * n, activeconns=n,
                                               inactconns=2 * n, persistconns=n % 3)
    return Stats(services, dests)


# ---------------------------------------------------------------------------------------------- the reference


def _summed(parts: list[DestCounters]) -> Counters:
    if not parts:
        return ZERO_COUNTERS
    if len(parts) == 1:
        return parts[0]
    names = [f.name for f in dataclasses.fields(Counters)]
    return Counters(**{name: sum(getattr(p, name) for p in parts) for name in names})


def straightforward_views(director: Director, table: Table, stats: Stats) -> list[dict[str, Any]]:
    """Every virtual server of the running config, computed from scratch as ``show vs`` defines it."""
    checks = director.checks
    policy = checks.policy if checks is not None else None
    out = []
    for item in virtual_services(director.config):
        vs = item.vs
        key = vs_key(vs)
        first = item.services[0]
        rs_views = []
        for rs in vs.real_servers:
            rkey = rs_key(vs, rs.address, rs.port if vs.fwmark is None else None)
            override = director.overrides.get(RsId(key, rkey))
            dest = None
            if first.key in table:
                dest = table[first.key].dests.get(real_server_dest(vs, rs, first.key).key)
            try:
                alive = policy.is_alive(RsRef(key, rkey)) if policy is not None else True
            except KeyError:
                alive = True
            if override is not None and override.disabled:
                health = "disabled"
            elif override is not None and override.drain:
                health = "draining"
            elif not alive:
                health = "inhibited" if dest is not None else "down"
            else:
                health = "up"
            parts = [] if dest is None else [stats.dest(s.key, real_server_dest(vs, rs, s.key).key)
                                             for s in item.services]
            method = rs.lvs_method or vs.lvs_method
            rs_views.append({
                "key": rkey, "address": rs.address, "port": rs.port, "forward": method.kind,
                "weight": None if dest is None else dest.weight, "config_weight": rs.weight, "health": health,
                "active_conns": sum(p.activeconns for p in parts), "inactive_conns": sum(p.inactconns for p in parts),
                "persist_conns": sum(p.persistconns for p in parts), "cps": sum(p.cps for p in parts),
                "bps": sum(p.inbps + p.outbps for p in parts),
                "drained": override is not None and override.drain,
                "disabled": override is not None and override.disabled,
                "weight_override": None if override is None else override.weight,
                "traffic": _summed(parts),
                "check_stalled": checks is not None and checks.check_stalled(RsRef(key, rkey)),
                "drain_deadline": None,
            })
        quorum_up = True
        if policy is not None:
            quorum_up = policy.quorum_up(key)
        vs_parts = [stats.service(s.key) for s in item.services]
        out.append({
            "key": key, "address": vs.address, "port": vs.port, "protocol": vs.protocol, "fwmark": vs.fwmark,
            "group": vs.group, "scheduler": vs.lvs_sched, "persistence_timeout": vs.persistence_timeout,
            "quorum_up": quorum_up, "cps": sum(c.cps for c in vs_parts),
            "bps": sum(c.inbps + c.outbps for c in vs_parts),
            "traffic": vs_parts[0] if len(vs_parts) == 1 else Counters(
                **{f.name: sum(getattr(c, f.name) for c in vs_parts) for f in dataclasses.fields(Counters)}),
            "real_servers": rs_views,
        })
    return out


_RS_FIELDS = ("key", "address", "port", "forward", "weight", "config_weight", "health", "active_conns",
              "inactive_conns", "persist_conns", "cps", "bps", "drained", "disabled", "weight_override", "traffic",
              "check_stalled", "drain_deadline")
_VS_FIELDS = ("key", "address", "port", "protocol", "fwmark", "group", "scheduler", "persistence_timeout",
              "quorum_up", "cps", "bps", "traffic")


def rs_fields(view: RealServerView) -> dict[str, Any]:
    return {name: getattr(view, name) for name in _RS_FIELDS}


def projected(views: tuple[VirtualServerView, ...]) -> list[dict[str, Any]]:
    """The fields the reference computes (other features may add more to the views)."""
    return [{**{name: getattr(vs, name) for name in _VS_FIELDS},
             "real_servers": [rs_fields(rs) for rs in vs.real_servers]} for vs in views]


# ---------------------------------------------------------------------------------------------- the test


def test_layout_snapshot_equals_the_straightforward_one_across_a_reload() -> None:
    async def scenario() -> None:
        up_server = await asyncio.start_server(lambda r, w: w.close(), "::1", 0)
        up_port = up_server.sockets[0].getsockname()[1]
        closed = (closed_port(), closed_port())
        before = config_of(config_text(up_port=up_port, closed_ports=closed, reloaded=False))
        after = config_of(config_text(up_port=up_port, closed_ports=closed, reloaded=True))
        backend = MemoryBackend()
        director = Director(before, backend=backend, bus=EventBus(), dry_run=True)
        await director.start()
        try:
            v6 = next(vs.key for vs in director.snapshot().virtual_servers if vs.port == 18102)

            def settled() -> bool:
                shown = {rs.port: rs.health for vs in director.snapshot().virtual_servers if vs.key == v6
                         for rs in vs.real_servers}
                return shown == {up_port: "up", closed[0]: "inhibited", closed[1]: "down"}

            await wait_until(settled)
            backend.set_stats(busy_stats(backend.table))
            stats = await backend.read_stats()
            # the director's stats loop samples them within a second
            await wait_until(lambda: all(rs.active_conns for rs in director.snapshot().virtual_servers[0].real_servers),
                             timeout=5)

            # before the reload: the layout is built for the first config
            snap = director.snapshot()
            assert projected(snap.virtual_servers) == straightforward_views(director, backend.table, stats)
            assert [vs.key for vs in snap.virtual_servers][-1] == "[127.0.0.1]:udp:18104"
            group = snap.virtual_servers[0]
            assert group.group == "WEB"
            assert not snap.virtual_servers[2].quorum_up  # so the sorry server is in the table

            # the reload removes a server and a whole VS (both busy: they drain) and changes a weight
            await director.apply_config(after, diff(before, after))
            await director.set_override([RsId(group.key, group.real_servers[0].key)], OverrideChange("drain"))
            fwmark = snap.virtual_servers[1]
            await director.set_override([RsId(fwmark.key, fwmark.real_servers[0].key)], OverrideChange("disable"))
            await director.set_override([RsId(fwmark.key, fwmark.real_servers[1].key)],
                                        OverrideChange("weight", weight=9))
            assert len(director.retiring) == 2
            stats = await backend.read_stats()
            now = time.time()
            snap = director.snapshot()
            table = backend.table
            expected = straightforward_views(director, table, stats)
            offset = now - time.monotonic()
            retiring: dict[str, list[dict[str, Any]]] = {}
            for retirement in director.retiring:
                view = server_view(retirement.subject, retirement.deadline + offset, table, stats)
                retiring.setdefault(retirement.subject.rid.vs, []).append(rs_fields(view))
            shown = projected(snap.virtual_servers)
            deadlines = [rs.pop("drain_deadline") for vs in shown for rs in vs["real_servers"]]
            for rs_list in retiring.values():
                for rs in rs_list:
                    assert rs.pop("drain_deadline") is not None
            for vs in expected:
                for rs in vs["real_servers"]:
                    del rs["drain_deadline"]
                vs["real_servers"] += retiring.pop(vs["key"], [])
            assert shown[:len(expected)] == expected
            removed_vs = shown[len(expected):]
            assert [vs["key"] for vs in removed_vs] == list(retiring) == ["[127.0.0.1]:udp:18104"]
            assert removed_vs[0]["real_servers"] == retiring["[127.0.0.1]:udp:18104"]
            assert sum(d is not None for d in deadlines) == 2

            # what the reload and the overrides changed shows
            by_key = {vs.key: vs for vs in snap.virtual_servers}
            nat = {rs.key: rs for rs in by_key["[127.0.0.1]:tcp:18103"].real_servers}
            assert nat["[127.0.0.6]:tcp:8080"].config_weight == 5
            assert (nat["[127.0.0.7]:tcp:8080"].health, nat["[127.0.0.7]:tcp:8080"].weight) == ("draining", 0)
            assert [rs.health for rs in by_key[group.key].real_servers] == ["draining", "up"]
            assert [(rs.health, rs.weight_override) for rs in by_key[fwmark.key].real_servers] == [
                ("disabled", None), ("up", 9)]
        finally:
            await director.stop()
            up_server.close()
            await up_server.wait_closed()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_table_weights_follow_the_table_not_the_config() -> None:
    config = config_of(config_text(up_port=1, closed_ports=(2, 3), reloaded=True))
    layout = build_layout(config)
    assert layout.is_for(config) and not layout.is_for(config_of(config_text(up_port=1, closed_ports=(2, 3),
                                                                             reloaded=True)))
    # nothing in the table: no weight anywhere
    assert table_weights(layout, Table()) == tuple((None,) * len(vs.real_servers) for vs in layout.virtual_servers)
    # a table holding only some servers, at other weights than configured
    [group, *_] = layout.virtual_servers
    entries = []
    for item in virtual_services(config):
        for service in item.services:
            dests = [real_server_dest(item.vs, rs, service.key, weight=7) for rs in item.vs.real_servers[:1]]
            entries.append((service, dests))
    weights = table_weights(layout, Table(entries))
    assert weights[0] == (7, None)
    assert all(w[0] == 7 and all(x is None for x in w[1:]) for w in weights)
    first = group.real_servers[0]
    assert [skey for skey, _ in first.dests] == list(group.service_keys) and len(group.service_keys) == 3
    assert [dkey.port for _, dkey in first.dests] == [18100, 18100, 18101]  # DR: the service's port
