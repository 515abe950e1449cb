"""The async interface every IPVS backend implements (kernel over generic netlink, in-memory), and its data types.

Conventions shared by all backends:

- ``read_table`` reports services as the kernel does, with ``SvcFlags.HASHED`` set on every live service
  (the reconciler ignores that bit).
- ``apply`` sends the operations in order and stops at the first refusal, raising ``IpvsError`` with the
  kernel's errno and the refused op (``IpvsError.op``); operations before it stay applied. The kernel
  backend sends operations in batches (many netlink messages per send), and the kernel works through a
  whole batch: operations *after* the refused one in the same batch may have been applied too, none of a
  later batch is sent. After an error, read the table back rather than assume which state it is in.
- Counters are cumulative since the entry was created; rates (cps, pps, bps) are the kernel estimator's
  2-second averages.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from lvsconsole.ipvs.conntable import Connection
from lvsconsole.ipvs.reconcile import Op
from lvsconsole.ipvs.table import DestKey, IPAddress, ServiceKey, Table


@dataclass(frozen=True, slots=True)
class Counters:
    """Per-service (and per-dest) traffic counters and rates, as in ``struct ip_vs_stats64``."""

    conns: int = 0
    inpkts: int = 0
    outpkts: int = 0
    inbytes: int = 0
    outbytes: int = 0
    cps: int = 0
    inpps: int = 0
    outpps: int = 0
    inbps: int = 0
    outbps: int = 0


@dataclass(frozen=True, slots=True)
class DestCounters(Counters):
    """Dest counters plus the connection gauges ipvsadm shows (ActiveConn, InActConn, PersistConn)."""

    activeconns: int = 0
    inactconns: int = 0
    persistconns: int = 0


ZERO_COUNTERS = Counters()
ZERO_DEST_COUNTERS = DestCounters()


def _frozen_map() -> Mapping[ServiceKey, Counters]:
    return MappingProxyType({})


def _frozen_dest_map() -> Mapping[tuple[ServiceKey, DestKey], DestCounters]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Stats:
    """A snapshot of counters for services and dests; missing entries read as zero."""

    services: Mapping[ServiceKey, Counters] = field(default_factory=_frozen_map)
    dests: Mapping[tuple[ServiceKey, DestKey], DestCounters] = field(default_factory=_frozen_dest_map)

    def service(self, key: ServiceKey) -> Counters:
        return self.services.get(key, ZERO_COUNTERS)

    def dest(self, service: ServiceKey, dest: DestKey) -> DestCounters:
        return self.dests.get((service, dest), ZERO_DEST_COUNTERS)


@dataclass(frozen=True, slots=True)
class Info:
    """``IPVS_CMD_GET_INFO``: the IPVS version and the connection hash table size (ipvsadm's header)."""

    version: tuple[int, int, int] = (1, 2, 1)
    size: int = 4096

    @classmethod
    def from_code(cls, code: int, size: int) -> Info:
        """From the kernel's packed version (0x010201 -> 1.2.1)."""
        return cls(((code >> 16) & 0xFF, (code >> 8) & 0xFF, code & 0xFF), size)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """``ipvsadm --set tcp tcpfin udp`` (seconds). Kernel defaults 900/120/300; 0 in a set = unchanged."""

    tcp: int = 900
    tcpfin: int = 120
    udp: int = 300


class SyncState(enum.IntEnum):
    """IP_VS_STATE_*: which connection-sync daemon."""

    MASTER = 1
    BACKUP = 2


@dataclass(frozen=True, slots=True)
class SyncDaemon:
    """A running sync daemon as ``ipvsadm -L --daemon`` shows it (0/None = kernel default/unset)."""

    state: SyncState
    ifname: str
    syncid: int
    maxlen: int = 0
    group: IPAddress | None = None
    port: int = 0
    ttl: int = 0


@runtime_checkable
class Backend(Protocol):
    """What the engine needs from IPVS. All methods may raise ``IpvsError`` (an ``OSError``)."""

    async def read_info(self) -> Info: ...

    async def read_table(self) -> Table: ...

    async def apply(self, ops: Sequence[Op]) -> None: ...

    async def read_stats(self) -> Stats: ...

    async def read_dests(self, service: ServiceKey) -> dict[DestKey, DestCounters]:
        """The counters and connection gauges of one service's dests only: one cheap read, for sampling a
        draining server many times a second. A missing service raises ``IpvsError`` (ESRCH)."""
        ...

    async def flush(self) -> None: ...

    async def read_timeouts(self) -> Timeouts: ...

    async def set_timeouts(self, timeouts: Timeouts) -> None: ...

    async def start_sync_daemon(
        self,
        state: SyncState,
        ifname: str,
        syncid: int,
        *,
        maxlen: int = 0,
        group: IPAddress | None = None,
        port: int = 0,
        ttl: int = 0,
    ) -> None:
        """Start the master or backup daemon; EEXIST if that one already runs."""
        ...

    async def stop_sync_daemon(self, state: SyncState) -> None:
        """Stop it; ESRCH if it is not running."""
        ...

    async def read_sync_daemons(self) -> list[SyncDaemon]:
        """Running daemons, master first (the kernel's dump order)."""
        ...

    async def read_connections(self) -> list[Connection]:
        """The connection table (flows and persistence templates), as ``ipvsadm -Lnc`` shows it."""
        ...

    async def close(self) -> None: ...
