"""In-process IPVS backend: the kernel's behaviour without the kernel (``--dry-run``, demo, unit tests).

Same semantics as the kernel backend: the same checks and errno values (``TableBuilder``), HASHED set on
every service read back, ops applied in order up to the first refusal, sync daemons with the kernel's
defaults filled in, ``set_timeouts`` treating 0 as "unchanged". Counters are whatever the test or demo
sets (``set_service_stats`` / ``set_dest_stats``); they vanish with their entry, like in the kernel. The
connection table is likewise what the test or demo gives (``set_connections``).

``read_table`` lists a service's dests in the kernel's order, newest first (``__ip_vs_update_dest`` adds a new
or re-added dest at the head of ``svc->destinations``; an edited one keeps its place): that order decides the
schedulers' ties and the ``sh``/``dh`` bucket tables, so a dry-run ``trace`` picks what the kernel would. Not
modelled: the hash-bucket order the kernel dumps *services* in (insertion order here; ipvsadm sorts anyway).
"""

from __future__ import annotations

import errno
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import MappingProxyType

from lvsconsole.ipvs.backend import (
    ZERO_COUNTERS,
    ZERO_DEST_COUNTERS,
    Counters,
    DestCounters,
    Info,
    Stats,
    SyncDaemon,
    SyncState,
    Timeouts,
)
from lvsconsole.ipvs.conntable import Connection
from lvsconsole.ipvs.reconcile import Op, apply_op
from lvsconsole.ipvs.table import (
    EMPTY,
    DestKey,
    IPAddress,
    IpvsError,
    ServiceEntry,
    ServiceKey,
    SvcFlags,
    Table,
    TableBuilder,
)

# Kernel defaults for a sync daemon started without them (ip_vs_sync.c): IPv4 group 224.0.0.81, port 8848,
# TTL 1, and a payload size derived from the interface MTU (here 1500 minus IP and UDP headers).
SYNC_DEFAULT_GROUP = ipaddress.IPv4Address("224.0.0.81")
SYNC_DEFAULT_PORT = 8848
SYNC_DEFAULT_TTL = 1


class MemoryBackend:
    """An IPVS table in memory. ``ops_applied`` counts operations that took effect (a flush counts one),
    ``apply_calls`` counts ``apply`` batches, ``history`` keeps every applied op in order."""

    def __init__(
        self,
        table: Table = EMPTY,
        *,
        info: Info | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        self._table = table
        self._view: Table | None = None
        self.info = info or Info()
        self._timeouts = timeouts or Timeouts()
        # Counters of every entry of the table (zero until set), and what read_stats last handed out: kept
        # until a counter or the table changes (a director reads them every second, whatever the table size).
        self._svc_stats: dict[ServiceKey, Counters] = {}
        self._dest_stats: dict[tuple[ServiceKey, DestKey], DestCounters] = {}
        self._stats_view: Stats | None = None
        self._set_table(table)
        self._daemons: dict[SyncState, SyncDaemon] = {}
        self._connections: list[Connection] = []
        self.ops_applied = 0
        self.apply_calls = 0
        self.history: list[Op] = []
        #: Test hook: called before each op; return an IpvsError to make that op fail.
        self.fail_hook: Callable[[Op], IpvsError | None] | None = None
        self.closed = False

    # ------------------------------------------------------------------ table
    @property
    def table(self) -> Table:
        """The stored table exactly as applied (without the HASHED bit ``read_table`` adds)."""
        return self._table

    async def read_info(self) -> Info:
        return self.info

    async def read_table(self) -> Table:
        if self._view is None:
            entries = {
                key: ServiceEntry(replace(e.service, flags=e.service.flags | SvcFlags.HASHED),
                                  MappingProxyType(dict(reversed(list(e.dests.items())))))
                for key, e in self._table.items()
            }
            self._view = Table._wrap(entries)
        return self._view

    async def apply(self, ops: Sequence[Op]) -> None:
        self.apply_calls += 1
        builder = TableBuilder(self._table)
        applied = 0
        try:
            for op in ops:
                try:
                    if self.fail_hook is not None:
                        err = self.fail_hook(op)
                        if err is not None:
                            raise err
                    apply_op(builder, op)
                except IpvsError as exc:
                    if exc.op is None:
                        exc.op = op
                    raise
                applied += 1
                self.ops_applied += 1
                self.history.append(op)
        finally:
            if applied:
                self._set_table(builder.build())

    async def flush(self) -> None:
        self.ops_applied += 1
        self._set_table(EMPTY)

    def _set_table(self, table: Table) -> None:
        self._table = table
        self._view = None
        svc, dest = self._svc_stats, self._dest_stats
        self._svc_stats = {key: svc.get(key, ZERO_COUNTERS) for key in table}
        self._dest_stats = {
            (key, dkey): dest.get((key, dkey), ZERO_DEST_COUNTERS)
            for key, entry in table.items()
            for dkey in entry.dests
        }
        self._stats_view = None

    # ------------------------------------------------------------------ stats
    def set_service_stats(self, key: ServiceKey, counters: Counters) -> None:
        if key not in self._table:
            raise IpvsError(errno.ESRCH, f"No such service ({key})")
        self._svc_stats[key] = counters
        self._stats_view = None

    def set_dest_stats(self, service: ServiceKey, dest: DestKey, counters: DestCounters) -> None:
        if service not in self._table:
            raise IpvsError(errno.ESRCH, f"Service not defined ({service})")
        if dest not in self._table[service].dests:
            raise IpvsError(errno.ENOENT, f"No such destination ({service} -> {dest})")
        self._dest_stats[(service, dest)] = counters
        self._stats_view = None

    def set_stats(self, stats: Stats) -> None:
        """Replace all counters (entries not in the table are ignored)."""
        services = dict.fromkeys(self._svc_stats, ZERO_COUNTERS)
        services.update((k, v) for k, v in stats.services.items() if k in services)
        dests = dict.fromkeys(self._dest_stats, ZERO_DEST_COUNTERS)
        dests.update((k, v) for k, v in stats.dests.items() if k in dests)
        self._svc_stats, self._dest_stats = services, dests
        self._stats_view = None

    async def read_stats(self) -> Stats:
        if self._stats_view is None:
            # copies (not views of the live maps): a Stats is what the counters were when it was read
            self._stats_view = Stats(MappingProxyType(dict(self._svc_stats)), MappingProxyType(dict(self._dest_stats)))
        return self._stats_view

    async def read_dests(self, service: ServiceKey) -> dict[DestKey, DestCounters]:
        entry = self._table.get(service)
        if entry is None:
            raise IpvsError(errno.ESRCH, f"No such service ({service})")
        return {dkey: self._dest_stats.get((service, dkey), ZERO_DEST_COUNTERS) for dkey in entry.dests}

    # ------------------------------------------------------------------ timeouts
    async def read_timeouts(self) -> Timeouts:
        return self._timeouts

    async def set_timeouts(self, timeouts: Timeouts) -> None:
        if min(timeouts.tcp, timeouts.tcpfin, timeouts.udp) < 0:
            raise IpvsError(errno.EINVAL, "Invalid operation: negative timeout")
        cur = self._timeouts
        self._timeouts = Timeouts(
            timeouts.tcp or cur.tcp, timeouts.tcpfin or cur.tcpfin, timeouts.udp or cur.udp
        )

    # ------------------------------------------------------------------ sync daemons
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
        state = SyncState(state)
        if state in self._daemons:
            raise IpvsError(errno.EEXIST, "Daemon has already run")
        if not ifname:
            raise IpvsError(errno.EINVAL, "Invalid operation: no interface")
        if group is None:
            group = SYNC_DEFAULT_GROUP
        if not maxlen:
            maxlen = 1500 - (20 if group.version == 4 else 40) - 8
        self._daemons[state] = SyncDaemon(
            state, ifname, syncid, maxlen, group, port or SYNC_DEFAULT_PORT, ttl or SYNC_DEFAULT_TTL
        )

    async def stop_sync_daemon(self, state: SyncState) -> None:
        state = SyncState(state)
        if state not in self._daemons:
            raise IpvsError(errno.ESRCH, "No daemon is running")
        del self._daemons[state]

    async def read_sync_daemons(self) -> list[SyncDaemon]:
        return [self._daemons[s] for s in (SyncState.MASTER, SyncState.BACKUP) if s in self._daemons]

    # ------------------------------------------------------------------ connections
    def set_connections(self, connections: Sequence[Connection]) -> None:
        """What ``read_connections`` reports (the memory backend forwards no packets, so flows are given)."""
        self._connections = list(connections)

    async def read_connections(self) -> list[Connection]:
        return list(self._connections)

    async def close(self) -> None:
        self.closed = True
