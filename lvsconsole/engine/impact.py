"""What applying a config would do, operation by operation, before it is applied (pure but for reading the
director's live table and counters).

- IPVS: the reconciler's ops between the table programmed now and the table the new config would ask for
  (health state and operator overrides as they are now; real servers the reload removes that still carry
  connections are kept at weight 0 first, as the director does: engine/retirees.py), each with the active
  connections it touches: "edit dest TCP 10.0.1.1:80 -> 10.0.1.12:80 DR weight 0: 312 active → drains first".
- Addresses: the VIPs each VRRP instance gains or loses (a MASTER adds/removes them at once; a BACKUP only
  when it becomes MASTER), with the active connections of the virtual servers on a VIP that goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from lvsconsole.config import model as m
from lvsconsole.engine.director_api import DirectorSnapshot
from lvsconsole.engine.keys import configured_servers
from lvsconsole.engine.retirees import PlannedRemoval, add_retiring, removed_servers
from lvsconsole.ipvs import reconcile as r
from lvsconsole.ipvs.table import Dest, DestKey, Service, ServiceKey, Table


@runtime_checkable
class TablePreviewer(Protocol):
    """What a director offers for previews (the Director does; a director without it gets no IPVS preview)."""

    config: m.Config

    def live_table(self) -> Table: ...

    def desired_table(self, config: m.Config | None = None) -> Table: ...

    def dest_active(self, service: ServiceKey, dest: DestKey) -> int: ...


@dataclass(frozen=True)
class PlannedOp:
    op: str
    """The operation as the reconciler words it (the same text as the TableChanged event after applying)."""
    active: int
    """Active connections on what it touches now."""
    impact: str

    def text(self) -> str:
        return f"{self.op}: {self.impact}" if self.impact else self.op

    def as_json(self) -> dict[str, Any]:
        return {"op": self.op, "active": self.active, "impact": self.impact}


@dataclass(frozen=True)
class AddressOp:
    instance: str
    action: str
    """"add" or "remove"."""
    address: str
    state: str
    """The instance's VRRP state now: a MASTER carries it out at once, a BACKUP when it becomes MASTER."""
    active: int = 0
    """Active connections of the virtual servers on this address (a removal cuts them on this director)."""

    def text(self) -> str:
        when = "now" if self.state == "MASTER" else f"when MASTER (now {self.state or 'unknown'})"
        line = f"{self.action} VIP {self.address} on ({self.instance}) {when}"
        if self.action == "remove" and self.active:
            line += f": {self.active} active connection{'s' * (self.active != 1)} to it"
        return line

    def as_json(self) -> dict[str, Any]:
        return {"instance": self.instance, "action": self.action, "address": self.address, "state": self.state,
                "active": self.active}


def _active_of_service(director: TablePreviewer, table: Table, key: ServiceKey) -> int:
    return sum(director.dest_active(key, dkey) for dkey in table.dests(key)) if key in table else 0


def _describe(op: r.Op, director: TablePreviewer, live: Table) -> PlannedOp:
    if isinstance(op, r.DeleteService):
        active = _active_of_service(director, live, op.key)
        return PlannedOp(str(op), active, f"{active} active cut" if active else "no active connection")
    if isinstance(op, r.DeleteDest):
        active = director.dest_active(op.service, op.dest)
        return PlannedOp(str(op), active, f"{active} active cut" if active else "no active connection")
    if isinstance(op, r.EditDest):
        active = director.dest_active(op.service, op.dest.key)
        old = live.dests(op.service).get(op.dest.key) if op.service in live else None
        if op.dest.weight == 0 and (old is None or old.weight != 0):
            return PlannedOp(str(op), active, f"{active} active → drains first" if active else "weight 0")
        before = "?" if old is None else str(old.weight)
        return PlannedOp(str(op), active, f"weight {before} → {op.dest.weight}, {active} active")
    if isinstance(op, r.EditService):
        active = _active_of_service(director, live, op.service.key)
        return PlannedOp(str(op), active, f"edited in place, {active} active kept")
    return PlannedOp(str(op), 0, "new")


def ipvs_ops(director: TablePreviewer, config: m.Config, removals: Sequence[PlannedRemoval]) -> list[PlannedOp]:
    """The IPVS operations applying ``config`` would cause now, with their connection impact."""
    live = director.live_table()
    future = director.desired_table(config)
    draining = {(p.vs, p.rs) for p in removals if p.drains}
    retiring = [s for s in removed_servers(director.config, live, configured_servers(config))
                if (s.rid.vs, s.rid.rs) in draining]
    if retiring:
        entries: list[tuple[Service, list[Dest]]] = [(e.service, list(e.dests.values())) for e in future.values()]
        add_retiring(entries, retiring)
        future = Table(entries)
    return [_describe(op, director, live) for op in r.plan(future, live)]


def _vips(instance: m.VrrpInstance) -> list[str]:
    return [str(v.address.ip) if v.address.network.prefixlen == v.address.max_prefixlen else str(v.address)
            for v in (*instance.virtual_ipaddress, *instance.virtual_ipaddress_excluded)]


def address_ops(running: m.Config, config: m.Config, snapshot: DirectorSnapshot) -> list[AddressOp]:
    """The VIPs each instance would gain or lose."""
    old = {i.name: i for i in running.instances}
    new = {i.name: i for i in config.instances}
    out: list[AddressOp] = []
    for name in dict.fromkeys([*old, *new]):
        before = _vips(old[name]) if name in old else []
        after = _vips(new[name]) if name in new else []
        view = snapshot.instance(name)
        state = view.state if view is not None else ""
        for vip in after:
            if vip not in before:
                out.append(AddressOp(name, "add", vip, state))
        for vip in before:
            if vip not in after:
                host = vip.split("/")[0]
                active = sum(vs.active_conns for vs in snapshot.virtual_servers if str(vs.address) == host)
                out.append(AddressOp(name, "remove", vip, state, active))
    return out
