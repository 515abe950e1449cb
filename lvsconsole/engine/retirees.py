"""The director's side of drain-before-delete (pure): which real servers a reload takes out of the live IPVS
table, the weight-0 dests that keep them there while they drain, and how they show in snapshots and previews.

A removed virtual server is drained the same way: its services stay in the table, holding only its draining
dests at weight 0 (so no new connection is scheduled), and go when the last of them goes. Deleting the
service at once would leave its established connections without a dest to finish on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from lvsconsole.config import model as m
from lvsconsole.engine.director_api import RealServerView, RsId, VirtualServerView
from lvsconsole.engine.keys import rs_id, vs_key
from lvsconsole.ipvs.backend import ZERO_COUNTERS, Counters, DestCounters, Stats
from lvsconsole.ipvs.from_config import real_server_dest, virtual_services
from lvsconsole.ipvs.table import Dest, Service, Table


@dataclass(frozen=True)
class RetiringServer:
    """A real server a reload removed, with what it was in the old config (to keep its dests meanwhile)."""

    rid: RsId
    vs: m.VirtualServer
    rs: m.RealServer
    services: tuple[Service, ...]

    def dests(self) -> Iterator[tuple[Service, Dest]]:
        for service in self.services:
            yield service, real_server_dest(self.vs, self.rs, service.key, 0)

    def counters(self, stats: Stats) -> list[DestCounters]:
        return [stats.dest(service.key, dest.key) for service, dest in self.dests()]

    def active(self, stats: Stats) -> int:
        return sum(c.activeconns for c in self.counters(stats))


def removed_servers(old: m.Config, table: Table, survivors: set[RsId]) -> list[RetiringServer]:
    """The real servers of ``old`` that are not in ``survivors`` and have a dest in the live ``table``.

    One that is not in the table (its checks failed) has no connection to drain and is simply gone.
    """
    out = []
    for item in virtual_services(old):
        for rs in item.vs.real_servers:
            rid = rs_id(item.vs, rs)
            if rid in survivors:
                continue
            server = RetiringServer(rid, item.vs, rs, item.services)
            if any(service.key in table and dest.key in table[service.key].dests for service, dest in server.dests()):
                out.append(server)
    return out


def reload_removals(old: m.Config, new: m.Config, table: Table, draining: Iterable[RsId] = (),
                    key_of: Callable[[m.VirtualServer], str] = vs_key) -> tuple[set[RsId], list[RetiringServer]]:
    """What a reload from ``old`` to ``new`` takes out of the live ``table``: ``removed_servers(old, table,
    survivors)``, and the survivors, limited to the virtual servers that matter: those of ``old`` that ``new``
    does not share (the same object or an equal one: it keeps every real server) and those ``draining`` servers
    belong to. So a reload that changes one virtual server of thousands costs O(that one) (``key_of``, a
    memoised ``vs_key``, names the others)."""
    shared = {id(vs) for vs in old.virtual_servers}
    fresh = {vs.key: vs for vs in new.virtual_servers if id(vs) not in shared}
    shared = {id(vs) for vs in new.virtual_servers}
    # one that is new as an object but equal (an edit above it moved its lines) keeps every server too
    changed = [vs for vs in old.virtual_servers if id(vs) not in shared and fresh.get(vs.key) != vs]
    wanted = {key_of(vs) for vs in changed} | {rid.vs for rid in draining}
    survivors = {rs_id(vs, rs) for vs in new.virtual_servers if key_of(vs) in wanted for rs in vs.real_servers}
    if not changed:
        return survivors, []
    return survivors, removed_servers(dataclasses.replace(old, virtual_servers=tuple(changed)), table, survivors)


def add_retiring(entries: list[tuple[Service, list[Dest]]], servers: Iterable[RetiringServer]) -> None:
    """Add the weight-0 dests of draining ``servers`` to the table ``entries`` (in place).

    A dest goes into the service of the same kernel key when the new config still has one (a live dest of
    the same key wins), else into its old service, which is kept for it.
    """
    by_key = {service.key: dests for service, dests in entries}
    for server in servers:
        for service, dest in server.dests():
            dests = by_key.get(service.key)
            if dests is None:
                dests = []
                entries.append((service, dests))
                by_key[service.key] = dests
            if all(d.key != dest.key for d in dests):
                dests.append(dest)


# ---------------------------------------------------------------------------------------------- views

_COUNTER_FIELDS = tuple(f.name for f in dataclasses.fields(Counters))


def _traffic(parts: Sequence[Counters]) -> Counters:
    if not parts:
        return ZERO_COUNTERS
    return Counters(**{name: sum(getattr(p, name) for p in parts) for name in _COUNTER_FIELDS})


def server_view(server: RetiringServer, deadline: float, table: Table, stats: Stats) -> RealServerView:
    """A draining server as ``show`` lists it: health "draining", the weight the table holds (0), ``deadline``
    (wall clock) the latest it is deleted."""
    counters = server.counters(stats)
    weight = None
    for service, dest in server.dests():
        if service.key in table and dest.key in table[service.key].dests:
            weight = table[service.key].dests[dest.key].weight
            break
    method = server.rs.lvs_method or server.vs.lvs_method
    return RealServerView(
        key=server.rid.rs, address=server.rs.address, port=server.rs.port, forward=method.kind,
        weight=weight, config_weight=server.rs.weight, health="draining",
        active_conns=sum(c.activeconns for c in counters), inactive_conns=sum(c.inactconns for c in counters),
        persist_conns=sum(c.persistconns for c in counters), cps=sum(c.cps for c in counters),
        bps=sum(c.inbps + c.outbps for c in counters), traffic=_traffic(counters), drain_deadline=deadline,
    )


def removed_vs_view(vs: m.VirtualServer, services: tuple[Service, ...], servers: Sequence[RealServerView],
                    stats: Stats) -> VirtualServerView:
    """A virtual server the running config no longer has, listed while its real servers drain."""
    counters = [stats.service(service.key) for service in services]
    return VirtualServerView(
        key=vs_key(vs), address=vs.address, port=vs.port, protocol=vs.protocol, fwmark=vs.fwmark, group=vs.group,
        scheduler=vs.lvs_sched, persistence_timeout=vs.persistence_timeout,
        real_servers=tuple(servers), cps=sum(c.cps for c in counters),
        bps=sum(c.inbps + c.outbps for c in counters), traffic=_traffic(counters),
    )


# ---------------------------------------------------------------------------------------------- preview


@dataclass(frozen=True)
class PlannedRemoval:
    """What a reload to a candidate config would do to one live real server it removes."""

    vs: str
    rs: str
    active: int
    drains: bool
    """True: kept at weight 0 until its connections end (at most ``timeout`` s); False: deleted at once."""
    timeout: float

    def text(self) -> str:
        if self.drains:
            return f"will drain: {self.rs} in VS {self.vs}, {self.active} active (deleted when they end, " \
                   f"at most {self.timeout:g}s)"
        return f"will remove: {self.rs} in VS {self.vs}, {self.active} active"

    def as_json(self) -> dict[str, Any]:
        return {"vs": self.vs, "rs": self.rs, "active": self.active, "drains": self.drains, "timeout": self.timeout}


def planned_removals(views: Sequence[VirtualServerView], candidate: m.Config,
                     survivors: set[RsId]) -> list[PlannedRemoval]:
    """The live real servers (in the table now) that ``candidate`` removes, and whether each would drain."""
    timeout = candidate.global_defs.drain_timeout
    out = []
    for vs in views:
        for rs in vs.real_servers:
            # a server already draining was removed by an earlier reload: not this one's doing
            if rs.weight is None or rs.drain_deadline is not None or RsId(vs.key, rs.key) in survivors:
                continue
            drains = timeout > 0 and rs.active_conns > 0
            out.append(PlannedRemoval(vs.key, rs.key, rs.active_conns, drains, timeout))
    return out
