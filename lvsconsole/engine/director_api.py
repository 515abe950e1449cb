"""What operator commands need from the running director, as a Protocol, and the views it returns.

The director (VRRP + checks + IPVS) implements ``DirectorCore``; ``CommandExecutor`` drives it. Views are
frozen snapshots, cheap to take (the director keeps them up to date from its loop: table reads, stats
sampling, VRRP state), so ``show`` never waits on I/O. Their ``as_json`` is the documented schema of
``ctl --json show …``:

``show vs`` → a list of virtual servers, each::

    {"address": "192.168.2.188" | null, "port": 80 | null, "protocol": "TCP", "fwmark": null | N,
     "group": null | NAME, "key": "[192.168.2.188]:tcp:80", "scheduler": "rr", "persistence_timeout": 50 | null,
     "quorum_up": true, "active_conns": …, "inactive_conns": …, "cps": …, "bps": …,
     "real_servers": [{"address": "192.168.2.187", "port": 80, "forward": "DR",
                       "weight": 3 | null (what the table holds now; null = not in the table),
                       "config_weight": 3, "health": "up|down|draining|disabled|inhibited",
                       "active_conns": 0, "inactive_conns": 0, "persist_conns": 0, "cps": 0, "bps": 0,
                       "key": "[192.168.2.187]:tcp:80",
                       "overrides": {"drain": false, "disabled": false, "weight": null},
                       "traffic": {IPVS counters, as for the virtual server},
                       "drain_deadline": null | EPOCH (a reload removed it: draining, deleted by then),
                       "check_stalled": false (a health check produced no result for 3 intervals),
                       "admin_state": "ready|drain|maint" (the operator's state of the server),
                       "floor_kept": false (checks failed it but min_healthy keeps it in the table)}, …],
     "quorum": 1, "min_healthy": null | "2" | "50%",
     "traffic": {"conns", "inpkts", "outpkts", "inbytes", "outbytes" (cumulative),
                 "cps", "inpps", "outpps", "inbps", "outbps" (rates)}}

The complete JSON Schema of every ``show`` is in ``engine/json_schema.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias, runtime_checkable

from lvsconsole.check.recorder import CheckerHistory, ProbeNow
from lvsconsole.config import model as m
from lvsconsole.config.diff import ReloadPlan
from lvsconsole.engine.refs import IPAddress, endpoint_text, vs_label
from lvsconsole.ipvs.backend import ZERO_COUNTERS, Counters
from lvsconsole.vrrp.explain import Explanation
from lvsconsole.vrrp.radar import RadarReport

if TYPE_CHECKING:  # the sampler works on RsId: importing it at run time would be circular
    from lvsconsole.engine.drainsampler import WatchedServer
    from lvsconsole.engine.drainwatch import DrainPlan
    from lvsconsole.engine.listen import ListenAddress
    from lvsconsole.engine.synccoverage import Coverage
    from lvsconsole.ipvs.conntable import Connection
    from lvsconsole.ipvs.trace import TraceInput

Health: TypeAlias = Literal["up", "down", "draining", "disabled", "inhibited"]
AdminState: TypeAlias = Literal["ready", "drain", "maint"]
"""HAProxy's three operator states: ready (in service), drain (weight 0, checks continue, persistent clients may
still land), maint (out of the table, checks paused)."""
ADMIN_STATES: tuple[AdminState, ...] = ("ready", "drain", "maint")
Forward: TypeAlias = Literal["NAT", "DR", "TUN"]


class DirectorError(Exception):
    """The director could not do what was asked; the message says why (it reaches the operator verbatim)."""


# ---------------------------------------------------------------------------------------------- views


def traffic_json(c: Counters) -> dict[str, int]:
    # explicit rather than dataclasses.asdict: this runs for every real server of every `show vs`
    return {"conns": c.conns, "inpkts": c.inpkts, "outpkts": c.outpkts, "inbytes": c.inbytes,
            "outbytes": c.outbytes, "cps": c.cps, "inpps": c.inpps, "outpps": c.outpps, "inbps": c.inbps,
            "outbps": c.outbps}


@dataclass(frozen=True)
class RealServerView:
    key: str
    """keepalived's name of the real server within its virtual server ("[10.0.0.2]:tcp:80"): its identity."""
    address: IPAddress
    port: int | None
    forward: Forward
    weight: int | None
    """The weight the IPVS table holds now; None when the real server is not in the table."""
    config_weight: int
    health: Health
    active_conns: int = 0
    inactive_conns: int = 0
    persist_conns: int = 0
    cps: int = 0
    bps: int = 0
    drained: bool = False
    disabled: bool = False
    weight_override: int | None = None
    traffic: Counters = ZERO_COUNTERS
    """IPVS counters (cumulative conns/packets/bytes) and rates of this dest, summed over the VS's services."""
    drain_deadline: float | None = None
    """Set when a reload removed this server and it drains (health "draining", weight 0): the wall-clock
    time it is deleted at the latest (drain_timeout); it goes earlier when its active connections end."""
    check_stalled: bool = False
    """One of its health checks has produced no result for 3 of its intervals: its health is stale."""
    floor_kept: bool = False
    """Checks failed it, but the table keeps it so its virtual server does not fall below min_healthy."""

    @property
    def admin_state(self) -> AdminState:
        return "maint" if self.disabled else "drain" if self.drained else "ready"

    @property
    def label(self) -> str:
        return endpoint_text(self.address, self.port)

    def as_json(self) -> dict[str, Any]:
        return {
            "address": str(self.address), "port": self.port, "forward": self.forward, "weight": self.weight,
            "config_weight": self.config_weight, "health": self.health, "active_conns": self.active_conns,
            "inactive_conns": self.inactive_conns, "persist_conns": self.persist_conns, "cps": self.cps,
            "bps": self.bps, "key": self.key,
            "overrides": {"drain": self.drained, "disabled": self.disabled, "weight": self.weight_override},
            "traffic": traffic_json(self.traffic),
            "drain_deadline": self.drain_deadline,
            "check_stalled": self.check_stalled,
            "admin_state": self.admin_state,
            "floor_kept": self.floor_kept,
        }


_RS_FIELDS = dataclasses.fields(RealServerView)
_RS_DEFAULTS = {f.name: f.default for f in _RS_FIELDS if f.default is not dataclasses.MISSING}
if any(f.default_factory is not dataclasses.MISSING for f in _RS_FIELDS) or hasattr(RealServerView, "__post_init__"):
    raise TypeError("real_server_view() fills RealServerView's fields directly: it runs no factory, no __post_init__")


def real_server_view(**values: Any) -> RealServerView:
    """``RealServerView(**values)`` in a third of the time, for snapshots (one view per real server, each tick).

    The frozen dataclass's ``__init__`` sets each of its 20 fields through ``object.__setattr__``; here the
    instance's dict is filled at once. The result is the same object (equal, same hash, still frozen)."""
    view = object.__new__(RealServerView)
    state = view.__dict__
    state.update(_RS_DEFAULTS)
    state.update(values)
    if len(state) != len(_RS_FIELDS):
        missing = [f.name for f in _RS_FIELDS if f.name not in state]
        unknown = sorted(set(state) - {f.name for f in _RS_FIELDS})
        raise TypeError(f"real_server_view(): missing fields {missing}, unknown fields {unknown}")
    return view


@dataclass(frozen=True)
class VirtualServerView:
    key: str
    """keepalived's name of the virtual server ("[10.0.0.1]:tcp:80", "FWM 5", "[GROUP]:80"): its identity."""
    address: IPAddress | None
    port: int | None
    protocol: str
    fwmark: int | None
    group: str | None
    scheduler: str
    persistence_timeout: int | None = None
    quorum_up: bool = True
    real_servers: tuple[RealServerView, ...] = ()
    cps: int = 0
    bps: int = 0
    traffic: Counters = ZERO_COUNTERS
    """IPVS counters and rates of the virtual server (summed over its services, e.g. a group's)."""
    quorum: int = 1
    min_healthy: m.MinHealthy | None = None

    @property
    def label(self) -> str:
        return vs_label(address=self.address, port=self.port, protocol=self.protocol, fwmark=self.fwmark,
                        group=self.group)

    @property
    def active_conns(self) -> int:
        return sum(rs.active_conns for rs in self.real_servers)

    @property
    def inactive_conns(self) -> int:
        return sum(rs.inactive_conns for rs in self.real_servers)

    def as_json(self) -> dict[str, Any]:
        return {
            "address": None if self.address is None else str(self.address), "port": self.port,
            "protocol": self.protocol, "fwmark": self.fwmark, "group": self.group, "key": self.key,
            "scheduler": self.scheduler, "persistence_timeout": self.persistence_timeout,
            "quorum_up": self.quorum_up, "active_conns": self.active_conns, "inactive_conns": self.inactive_conns,
            "cps": self.cps, "bps": self.bps, "traffic": traffic_json(self.traffic),
            "quorum": self.quorum, "min_healthy": None if self.min_healthy is None else str(self.min_healthy),
            "real_servers": [rs.as_json() for rs in self.real_servers],
        }


@dataclass(frozen=True)
class VrrpInstanceView:
    name: str
    state: str
    """INIT, BACKUP, MASTER or FAULT."""
    priority: int
    """Effective priority (after tracking and any runtime priority)."""
    base_priority: int
    """The configured priority."""
    vrid: int
    interface: str | None = None
    advert_int: float = 1.0
    master: str | None = None
    """Address of the current master (ourselves when MASTER), if known."""
    since: float | None = None
    """Wall-clock time the instance entered its state."""
    runtime_priority: int | None = None
    """Set by ``vrrp priority``; None when the configured priority applies."""
    sync_group: str | None = None
    vips: tuple[str, ...] = ()
    counters: dict[str, int] = field(default_factory=dict)
    split_brain: str | None = None
    """The other MASTER(s) heard while this one is MASTER (comma-separated), until the split brain resolves."""
    peers: tuple[dict[str, Any], ...] = ()
    """Unicast peers: {"address", "last_seen" (seconds ago, null: never heard), "last_error" (last send failure)}."""
    election: Explanation | None = field(default=None, compare=False)
    """Who is master, who would win an election now and why (``show vrrp explain``); None if unknown."""

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "state": self.state, "priority": self.priority, "base_priority": self.base_priority,
            "runtime_priority": self.runtime_priority, "vrid": self.vrid, "interface": self.interface,
            "advert_int": self.advert_int, "master": self.master, "since": self.since,
            "sync_group": self.sync_group, "vips": list(self.vips), "counters": dict(self.counters),
            "split_brain": self.split_brain, "peers": [dict(p) for p in self.peers],
        }


@dataclass(frozen=True)
class DirectorSnapshot:
    time: float
    instances: tuple[VrrpInstanceView, ...] = ()
    virtual_servers: tuple[VirtualServerView, ...] = ()
    stats: dict[str, Any] = field(default_factory=dict)
    """Engine-wide figures, JSON values (uptime, loop lag, IPVS operation counts, checks scheduled…)."""
    radar: RadarReport = field(default_factory=RadarReport, compare=False)
    """Every VRRP sender heard on the wire recently, and the open dual-master alarms (``show vrrp radar``)."""
    drift: tuple[dict[str, Any], ...] = field(default=(), compare=False)
    """Kernel state that differs from intent, held for the operator (``show drift``; engine/drift.py views)."""

    def instance(self, name: str) -> VrrpInstanceView | None:
        return next((i for i in self.instances if i.name == name), None)


# ---------------------------------------------------------------------------------------------- requests

OverrideKind: TypeAlias = Literal["drain", "undrain", "weight", "disable", "enable", "state"]


@dataclass(frozen=True)
class RsId:
    """One real server of one virtual server, by the keys of the views."""

    vs: str
    rs: str


@dataclass(frozen=True)
class OverrideChange:
    """A runtime override (kept apart from the config, and kept across reloads while the server exists).

    - ``drain``: weight 0; established connections continue, new ones go elsewhere.
    - ``undrain``: back to the configured weight: clears ``drain`` *and* any ``weight`` override.
    - ``weight``: program ``weight`` instead of the configured weight.
    - ``disable``: maint: leave the real server out of IPVS and pause its checks; ``enable`` undoes it.
    - ``state``: set the operator state to ``state`` (ready, drain or maint; exclusive, weight kept).
    """

    kind: OverrideKind
    weight: int | None = None
    state: AdminState | None = None


@runtime_checkable
class DirectorCore(Protocol):
    """The running director as commands see it. Methods raise ``DirectorError`` to refuse."""

    def snapshot(self) -> DirectorSnapshot:
        """The current state, without I/O."""
        ...

    async def set_override(self, targets: Sequence[RsId], change: OverrideChange) -> Sequence[str]:
        """Apply ``change`` to every target at once; returns what changed (e.g. the IPVS operations)."""
        ...

    async def apply_config(self, config: m.Config, plan: ReloadPlan) -> Sequence[str]:
        """Make ``config`` running by carrying out ``plan`` (unchanged instances keep state and timers,
        unchanged real servers keep their check state, only changed IPVS entries are touched).

        Returns what changed. On failure it must leave the previous config running and raise DirectorError.
        """
        ...

    async def set_priority(self, instance: str, priority: int | None) -> str:
        """A runtime priority for ``instance`` (None: back to the configured one); returns what happened."""
        ...

    async def failover(self, instance: str) -> str:
        """Hand mastership of ``instance`` to a peer (send priority 0, stay BACKUP until it has taken over);
        returns what happened. Raises DirectorError if the instance is not MASTER."""
        ...


@runtime_checkable
class CheckFlightCore(Protocol):
    """A director with health checks: their flight recorder (``show checks``) and ``check now``.

    Apart from ``DirectorCore`` so that a director without checks (a test double) is still a core."""

    def check_history(self, targets: Sequence[RsId]) -> Sequence[CheckerHistory]:
        """The last probes of every checker of every target; raises DirectorError if checks are not running."""
        ...

    async def check_now(self, targets: Sequence[RsId]) -> Sequence[ProbeNow]:
        """Probe every checker of every target once, now, feeding the check state like a scheduled run."""
        ...


@runtime_checkable
class DriftCore(Protocol):
    """A director that holds drift for the operator (``show drift``, ``drift reconcile``)."""

    async def reconcile_drift(self, ids: Sequence[str]) -> Sequence[str]:
        """Push intent back over the drift items ``ids``; returns what was done. Raises DirectorError."""
        ...


@runtime_checkable
class DrainWatchCore(Protocol):
    """A director that watches draining servers (``drain … --until-empty … then remove``, ``show drain``)."""

    def watch_drain(self, targets: Sequence[RsId], plan: DrainPlan) -> Sequence[WatchedServer]:
        """Watch the (already drained) targets with ``plan``, replacing their current watch."""
        ...

    def drain_watches(self) -> Sequence[WatchedServer]:
        """Live watches and recently ended ones, oldest first."""
        ...


@runtime_checkable
class ConnTableCore(Protocol):
    """A director over IPVS: its connection table, the tracer's view of its services, the sync coverage
    (``show conns``, ``trace``, ``show sync coverage``; engine/connshow.py). These read the kernel."""

    async def read_connections(self) -> Sequence[Connection]:
        """The IPVS connection table now (flows and persistence templates)."""
        ...

    async def trace_inputs(self, vs_keys: Sequence[str]) -> Sequence[tuple[str, TraceInput]]:
        """For each kernel service of those virtual servers (by view key): the service and its real servers as
        the kernel holds them now (its order), their counters, and the configured ones not in the table."""
        ...

    async def sync_coverage(self, peer: ListenAddress | None) -> tuple[ListenAddress, Coverage]:
        """Measure against ``peer`` (None: global_defs lvs_sync_peer_http); DirectorError if there is none or
        it cannot be read."""
        ...
