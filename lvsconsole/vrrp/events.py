"""Typed events of the VRRP service, each with the log line keepalived would write for it.

Subscribers (the engine's event bus, the TUI) get them from :meth:`VrrpService.subscribe` or a listener
callback. ``time`` is wall-clock (``time.time()``) so that it can be shown; durations in snapshots use
the event loop's monotonic clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv6Address

from lvsconsole.vrrp.machine import State
from lvsconsole.vrrp.packet import IPAddress


@dataclass(frozen=True, slots=True)
class VrrpEvent:
    time: float = field(kw_only=True)

    @property
    def message(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class InstanceStateChanged(VrrpEvent):
    instance: str
    old: State
    new: State
    reason: str
    priority: int

    @property
    def message(self) -> str:
        if self.new is State.INIT:
            return f"({self.instance}) Stopped"
        if self.reason == "init":
            return f"({self.instance}) Entering {self.new.name} STATE (init)"
        return f"({self.instance}) Entering {self.new.name} STATE"


@dataclass(frozen=True, slots=True)
class InstancePriorityChanged(VrrpEvent):
    instance: str
    old: int
    new: int

    @property
    def message(self) -> str:
        return f"({self.instance}) Changing effective priority from {self.old} to {self.new}"


@dataclass(frozen=True, slots=True)
class GratuitousSent(VrrpEvent):
    instance: str
    interface: str
    address: IPAddress

    @property
    def message(self) -> str:
        if isinstance(self.address, IPv6Address):
            return f"Sending unsolicited Neighbour Advert on {self.interface} for {self.address}"
        return f"Sending gratuitous ARP on {self.interface} for {self.address}"


@dataclass(frozen=True, slots=True)
class PacketDropped(VrrpEvent):
    """A received advert failed validation; ``counter`` is the statistic it was counted in."""

    instance: str
    counter: str
    detail: str
    source: IPAddress | None = None

    @property
    def message(self) -> str:
        return f"({self.instance}) {self.detail}"


@dataclass(frozen=True, slots=True)
class TrackerChanged(VrrpEvent):
    kind: str  # "interface", "script", "file", "process"
    name: str
    status: str  # "UP"/"DOWN", "succeeded"/"failed", the file's value, or "gained"/"lost" (a process quorum)

    @property
    def message(self) -> str:
        if self.kind == "process":
            return f"Quorum {self.status} for tracked process {self.name}"
        if self.kind == "script":
            return f"VRRP_Script({self.name}) {self.status}"
        if self.kind == "file":
            return f"Track file {self.name} now has value {self.status}"
        return f"Netlink reports {self.name} {self.status}"


@dataclass(frozen=True, slots=True)
class GroupStateChanged(VrrpEvent):
    group: str
    new: State

    @property
    def message(self) -> str:
        return f"VRRP_Group({self.group}) Syncing instances to {self.new.name} state"


@dataclass(frozen=True, slots=True)
class SplitBrainStarted(VrrpEvent):
    """As MASTER the instance heard another MASTER it wins against; it re-announced its VIPs at once."""

    instance: str
    vrid: int
    peer: IPAddress
    peer_priority: int

    @property
    def message(self) -> str:
        return (f"({self.instance}) split brain: another MASTER {self.peer} (priority {self.peer_priority}) "
                f"on VRID {self.vrid}; sending gratuitous ARPs")


@dataclass(frozen=True, slots=True)
class SplitBrainEnded(VrrpEvent):
    """The split brain with ``peer`` is over: ``won`` (the peer went quiet, we stay MASTER), or we left MASTER
    for ``winner`` (None: for a fault, a stop, an operator's failover or the sync group)."""

    instance: str
    peer: IPAddress
    winner: IPAddress | None
    won: bool

    @property
    def message(self) -> str:
        head = f"({self.instance}) split brain with {self.peer} resolved"
        if self.won:
            return f"{head}: it went quiet, this node stays MASTER"
        if self.winner is not None:
            return f"{head}: {self.winner} won the election"
        return f"({self.instance}) split brain with {self.peer} ended: this node left MASTER"


@dataclass(frozen=True, slots=True)
class RadarAlarmRaised(VrrpEvent):
    """The wire radar hears two or more routers advertising one VRID at once (``senders``: address, priority)."""

    interface: str
    family: int
    vrid: int
    instance: str | None
    senders: tuple[tuple[IPAddress, int], ...]

    @property
    def message(self) -> str:
        who = ", ".join(f"{address} (priority {priority})" for address, priority in self.senders)
        ours = f" ({self.instance})" if self.instance else ""
        return f"VRRP radar: dual master on VRID {self.vrid}{ours} on {self.interface}: {who}"


@dataclass(frozen=True, slots=True)
class RadarAlarmCleared(VrrpEvent):
    """Only ``remaining`` (None: nobody) still advertises the VRID; the dual master lasted ``lasted`` seconds."""

    interface: str
    family: int
    vrid: int
    instance: str | None
    remaining: IPAddress | None
    lasted: float

    @property
    def message(self) -> str:
        ours = f" ({self.instance})" if self.instance else ""
        now = f"{self.remaining} is the only master" if self.remaining is not None else "nobody advertises"
        return f"VRRP radar: dual master on VRID {self.vrid}{ours} on {self.interface} over after " \
               f"{self.lasted:.1f} s: {now}"
