"""Keep the kernel's IPVS table equal to a desired table, with the fewest operations, and run the
connection-sync daemon that matches the director's VRRP role.

``IpvsSync`` is the asyncio adapter around the sans-IO reconciler (``reconcile.plan``):

- ``start(desired)`` honours ``lvs_timeouts`` and ``lvs_flush`` (flush, then load the whole table);
  without ``lvs_flush`` it *adopts* what the kernel has: entries that already match are not touched, so a
  restart over a matching table costs no operation at all.
- ``set_desired(table)`` plans against the table the kernel is believed to hold and applies only the
  difference (a weight change is one ``EditDest``, i.e. one netlink request). When the new table shares
  its unchanged entries with the previous one (``Table.with_dest``, ``apply_overrides`` ...), only the
  entries that changed are compared, so a change costs the same for 10 services or 10,000.
- The kernel is re-read after every change that was made and at least every ``check_interval`` seconds
  (10 by default). A difference that this process did not make (an entry edited, deleted or added by
  someone else, ``ipvsadm -C``) is *drift*: it is reported as a ``SyncEvent(kind="drift")`` naming each item
  (``ipvs/drift.py``) and repaired. With ``drift_policy="hold"`` it is not repaired: the items are held
  (``drift``, reported once as ``drift-held``, and as ``drift-cleared`` when they go) until the operator
  reconciles them (``reconcile``) or adopts them into the config; changes of the desired table leave a held
  item alone unless they change that very thing.
- Ownership follows keepalived: a service is ours if it was ever in the desired table (or named in
  ``owned``); services that are not ours are never deleted (``owned=None`` makes every service ours).
  Dests of a desired service are always reconciled.
- ``stop()`` honours ``lvs_flush_on_stop``: ``"ALL"`` flushes the whole table; ``"VS"`` and the default
  remove our services (keepalived's default removes each real server first; the end state is the same).
- ``set_sync_role("master" | "backup" | "none", params)`` runs the master daemon while MASTER and the
  backup daemon while BACKUP (``lvs_sync_daemon``); the director calls it on VRRP transitions.

Every outcome is reported through ``on_event`` as a ``SyncEvent``; kernel refusals do not raise out of
``set_desired`` or the background loop (they are reported and retried every ``retry_interval``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeAlias

from lvsconsole.ipvs.backend import Backend, SyncDaemon, SyncState, Timeouts
from lvsconsole.ipvs.drift import DriftItem, DriftLedger, DriftPolicy, detect, held_back, repair_ops
from lvsconsole.ipvs.reconcile import (
    AddDest,
    AddService,
    DeleteDest,
    DeleteService,
    EditDest,
    EditService,
    Flush,
    Op,
    apply_ops,
    plan,
)
from lvsconsole.ipvs.table import EMPTY, IPAddress, IpvsError, ServiceEntry, ServiceKey, Table

if TYPE_CHECKING:
    from lvsconsole.config import model as m

log = logging.getLogger("lvsconsole.ipvs")

SyncRole: TypeAlias = Literal["master", "backup", "none"]
FlushOnStop: TypeAlias = Literal["", "VS", "ALL"]
EventKind: TypeAlias = Literal["applied", "adopted", "drift", "drift-held", "drift-cleared", "error", "flushed",
                              "cleared", "daemon", "timeouts"]

_OP_TYPES = (AddService, EditService, DeleteService, AddDest, EditDest, DeleteDest, Flush)


@dataclass(frozen=True, slots=True)
class SyncEvent:
    """Something ``IpvsSync`` did or found.

    ``kind``: ``applied`` (ops applied for a desired change, at start, or as a retry), ``adopted`` (start
    found the kernel already matching), ``drift`` (the kernel differed from what we left it: ``ops`` are
    the repairs, applied right after), ``error`` (``error`` holds the kernel's refusal; retried),
    ``flushed`` (lvs_flush / lvs_flush_on_stop ALL), ``cleared`` (our services removed at stop),
    ``daemon`` (a sync daemon started or stopped), ``timeouts`` (lvs_timeouts set), ``drift-held`` (drift
    found and held, ``hold`` policy), ``drift-cleared`` (held drift gone: reconciled, adopted or undone).
    ``items``: the drift items of ``drift``, ``drift-held`` and ``drift-cleared``.
    """

    kind: EventKind
    message: str
    ops: tuple[Op, ...] = ()
    error: IpvsError | None = None
    items: tuple[DriftItem, ...] = ()


@dataclass(frozen=True, slots=True)
class SyncDaemonParams:
    """keepalived's ``lvs_sync_daemon INTERFACE VRRP_INSTANCE [id N] [maxlen N] [port N] [ttl N]
    [group ADDR]``; 0 / None leave the kernel's default."""

    interface: str
    syncid: int = 0
    maxlen: int = 0
    port: int = 0
    ttl: int = 0
    group: IPAddress | None = None

    @classmethod
    def from_config(cls, cfg: m.LvsSyncDaemon, default_syncid: int = 0) -> SyncDaemonParams:
        """From the config model; keepalived uses the VRRP instance's virtual_router_id when no id is
        given (pass it as ``default_syncid``)."""
        return cls(
            cfg.interface,
            cfg.syncid if cfg.syncid is not None else default_syncid,
            cfg.maxlen or 0,
            cfg.port or 0,
            cfg.ttl or 0,
            cfg.group,
        )

    def matches(self, daemon: SyncDaemon) -> bool:
        """Whether a running daemon has these parameters (kernel defaults accepted where unset)."""
        return (
            daemon.ifname == self.interface
            and daemon.syncid == self.syncid
            and (not self.maxlen or daemon.maxlen == self.maxlen)
            and (not self.port or daemon.port == self.port)
            and (not self.ttl or daemon.ttl == self.ttl)
            and (self.group is None or daemon.group == self.group)
        )


@dataclass(slots=True)
class SyncCounters:
    """What the sync has done so far (for status displays and tests)."""

    ops_applied: int = 0
    applies: int = 0
    reads: int = 0
    drift_repairs: int = 0
    errors: int = 0
    partial_reads: int = 0  # reads that overlapped a change: the entries it touched are checked again
    last_read: float | None = None
    #: the latest operations applied (at most 1000)
    history: deque[Op] = field(default_factory=lambda: deque(maxlen=1000))


def _changed_keys(old: Table, new: Table) -> list[ServiceKey] | None:
    """Keys whose entry differs by identity between two tables with the same keys in the same order
    (the shape copy-on-write updates give); None when the shapes differ (then plan in full)."""
    if len(old) != len(new):
        return None
    changed: list[ServiceKey] = []
    for (k1, e1), (k2, e2) in zip(old._entries.items(), new._entries.items(), strict=True):
        if k1 is not k2 and k1 != k2:
            return None
        if e1 is not e2:
            changed.append(k2)
    return changed


async def _differing_keys(desired: Table, actual: Table, slice_seconds: float = 0.004) -> set[ServiceKey]:
    """Keys whose entry is not the same in both tables (in either one only, or different), comparing
    service by service and letting the event loop run every ``slice_seconds``."""
    out: set[ServiceKey] = set()
    have_entries = actual._entries
    clock = time.perf_counter
    last = clock()
    for key, want in desired._entries.items():
        have = have_entries.get(key)
        if have is None or (
            want is not have and not (want.service.same_config(have.service) and want.dests == have.dests)
        ):
            out.add(key)
        if clock() - last > slice_seconds:
            await asyncio.sleep(0)
            last = clock()
    out.update(key for key in have_entries if key not in desired._entries)
    return out


def _subtable(table: Table, keys: Collection[ServiceKey]) -> Table:
    entries: dict[ServiceKey, ServiceEntry] = {}
    for key in keys:
        entry = table.get(key)
        if entry is not None:
            entries[key] = entry
    return Table._wrap(entries)


class IpvsSync:
    """Keeps ``backend``'s table equal to the desired table (see the module docstring)."""

    def __init__(
        self,
        backend: Backend,
        *,
        owned: Collection[ServiceKey] | None = (),
        flush_at_start: bool = False,
        flush_on_stop: FlushOnStop = "",
        timeouts: Timeouts | None = None,
        check_interval: float = 10.0,
        retry_interval: float = 1.0,
        on_event: Callable[[SyncEvent], None] | None = None,
        drift_policy: DriftPolicy = "repair",
    ) -> None:
        if flush_on_stop not in ("", "VS", "ALL"):
            raise ValueError(f"lvs_flush_on_stop must be '', 'VS' or 'ALL', not {flush_on_stop!r}")
        self.backend = backend
        self._owned: set[ServiceKey] | None = None if owned is None else set(owned)
        self.flush_at_start = flush_at_start
        self.flush_on_stop: FlushOnStop = flush_on_stop
        self.timeouts = timeouts
        self.check_interval = check_interval
        self.retry_interval = retry_interval
        self.on_event = on_event
        self.drift_policy: DriftPolicy = drift_policy
        """``repair`` drift at once, or ``hold`` it for the operator (may change at run time, e.g. on reload)."""
        self._drift = DriftLedger()
        self.counters = SyncCounters()
        self._desired: Table = EMPTY
        self._expected: Table | None = None  # what the kernel holds as far as we know (None: unknown)
        self._in_sync = False  # expected == desired for every desired service
        self._gen = 0  # bumped by every apply
        self._touched: dict[ServiceKey, int] = {}  # service -> generation of the latest apply touching it
        self._flushed_gen = -1  # generation of the latest Flush we applied
        self._reads_in_flight: list[int] = []  # generations at which the running reads began
        self._lock = asyncio.Lock()
        self._daemon_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._next_check = math.inf
        self._task: asyncio.Task[None] | None = None
        self._role: SyncRole = "none"
        self._daemon_params: SyncDaemonParams | None = None
        self._started_daemons: set[SyncState] = set()
        self._last_error: str | None = None
        self._synced = asyncio.Event()

    # ------------------------------------------------------------------ construction from the config
    @classmethod
    def from_globals(cls, backend: Backend, globals_: m.GlobalDefs, **kwargs: object) -> IpvsSync:
        """With ``lvs_flush``, ``lvs_flush_on_stop`` and ``lvs_timeouts`` from ``global_defs``."""
        timeouts = None
        if globals_.lvs_timeouts is not None:
            t = globals_.lvs_timeouts
            timeouts = Timeouts(t.tcp or 0, t.tcpfin or 0, t.udp or 0)
        return cls(
            backend,
            flush_at_start=globals_.lvs_flush,
            flush_on_stop=globals_.lvs_flush_on_stop,
            timeouts=timeouts,
            drift_policy=globals_.ipvs_drift,
            **kwargs,  # type: ignore[arg-type]
        )

    # ------------------------------------------------------------------ state
    @property
    def desired(self) -> Table:
        return self._desired

    @property
    def expected(self) -> Table | None:
        """The kernel table as last read or left by us (None when unknown, e.g. after an error)."""
        return self._expected

    @property
    def owned(self) -> frozenset[ServiceKey] | None:
        return None if self._owned is None else frozenset(self._owned)

    @property
    def in_sync(self) -> bool:
        """The kernel was last seen (or left) equal to the desired table."""
        return self._in_sync and not self._drift.items

    @property
    def drift(self) -> tuple[DriftItem, ...]:
        """The drift held for the operator (``hold`` policy), as of the latest read."""
        return self._drift.items

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def sync_role(self) -> SyncRole:
        return self._role

    @property
    def last_error(self) -> str | None:
        return self._last_error

    def _emit(self, event: SyncEvent) -> None:
        level = logging.WARNING if event.kind in ("drift", "drift-held", "error") else logging.INFO
        log.log(level, "%s", event.message)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # a faulty listener must not stop the sync
                log.exception("IPVS sync event listener failed")

    def _claim(self, table: Table) -> None:
        if self._owned is not None:
            self._owned.update(table.keys())

    def _owned_arg(self) -> set[ServiceKey] | None:
        return self._owned

    # ------------------------------------------------------------------ lifecycle
    async def start(self, desired: Table = EMPTY) -> list[Op]:
        """Set the kernel timeouts, flush or adopt, load ``desired`` and start the background check.
        Returns the operations applied."""
        if self.running:
            raise RuntimeError("IpvsSync already started")
        self._desired = desired
        self._claim(desired)
        if self.timeouts is not None and any((self.timeouts.tcp, self.timeouts.tcpfin, self.timeouts.udp)):
            try:
                await self.backend.set_timeouts(self.timeouts)
                t = self.timeouts
                self._emit(SyncEvent("timeouts", f"IPVS timeouts set (tcp {t.tcp} tcpfin {t.tcpfin} udp {t.udp})"))
            except IpvsError as exc:
                self._report_error("setting IPVS timeouts", exc)
        ops: list[Op] = []
        async with self._lock:
            if self.flush_at_start:
                ops = plan(desired, EMPTY, flush=True)
                self._expected = EMPTY  # the flush makes it so, whatever was there
                await self._apply(ops, "flushed", "IPVS table flushed at start (lvs_flush)")
            else:
                actual = await self._read_locked()
                if actual is not None:
                    ops = plan(desired, actual, owned=self._owned_arg())
                    if not ops:
                        self._in_sync = True
                        if len(desired):
                            self._emit(SyncEvent("adopted", f"IPVS table adopted as it is ({len(desired)} services)"))
                    else:
                        adopted = sum(1 for k in desired if k in actual)
                        note = f", {adopted} service(s) adopted" if adopted else ""
                        await self._apply(ops, "applied", f"IPVS table loaded: {len(ops)} operation(s){note}")
        self._next_check = min(self._next_check, time.monotonic() + self.check_interval)
        self._task = asyncio.create_task(self._run(), name="ipvs-sync")
        return ops

    async def stop(self, *, clear: bool = True) -> None:
        """Stop checking; stop the sync daemons we started; with ``clear``, apply lvs_flush_on_stop
        (``ALL``: flush; otherwise remove our services)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(IpvsError):
            await self.set_sync_role("none")
        if not clear:
            return
        async with self._lock:
            if self.flush_on_stop == "ALL":
                try:
                    await self.backend.flush()
                    self._expected = EMPTY
                    self._emit(SyncEvent("flushed", "IPVS table flushed at stop (lvs_flush_on_stop)"))
                except IpvsError as exc:
                    self._report_error("flushing the IPVS table", exc)
                return
            actual = await self._read_locked()
            if actual is None:
                return
            mine: list[Op] = [DeleteService(k) for k in actual if self._owned is None or k in self._owned]
            if mine:
                await self._apply(mine, "cleared", f"IPVS: removed {len(mine)} virtual service(s) at stop")

    # ------------------------------------------------------------------ desired table
    async def set_desired(self, table: Table) -> list[Op]:
        """Make the kernel hold ``table`` (plus foreign services); returns the operations applied
        (empty if nothing changed or the kernel refused: see ``last_error`` and the events)."""
        async with self._lock:
            old = self._desired
            self._desired = table
            self._claim(table)
            if self._expected is None:
                actual = await self._read_locked()
                if actual is None:
                    return []
                ops = plan(table, actual, owned=self._owned_arg())
            else:
                ops = self._plan_from(old, table, self._expected)
            if self._drift.items:
                ops = held_back(ops, self._drift.items)
            if ops:
                await self._apply(ops, "applied", f"IPVS: {len(ops)} operation(s) applied")
            return ops

    async def reconcile(self, items: Sequence[DriftItem]) -> list[Op]:
        """Push intent back over ``items`` (held drift), then read the kernel again so that the items repaired
        clear before this returns. Returns the operations applied (none if the kernel refused: see the events)."""
        ops = repair_ops(items)
        if not ops:
            return []
        async with self._lock:
            applied = await self._apply(ops, "applied", f"IPVS: drift reconciled with {len(ops)} operation(s)")
        await self._check_once()
        return ops if applied else []

    def _plan_from(self, old: Table, new: Table, expected: Table) -> list[Op]:
        """The plan new vs the kernel model; only the changed entries when both tables have the same shape
        and the kernel is known to equal the old table."""
        if self._in_sync:
            changed = _changed_keys(old, new)
            if changed is not None:
                if not changed:
                    return []
                return plan(_subtable(new, changed), _subtable(expected, changed), owned=())
        return plan(new, expected, owned=self._owned_arg())

    async def check(self) -> list[Op]:
        """Re-read the kernel now and repair any difference; returns the repair operations."""
        return await self._check_once()

    async def wait_synced(self, timeout: float | None = None) -> None:
        """Wait until a read of the kernel has matched the desired table (after the latest change)."""
        async with asyncio.timeout(timeout):
            while not (self._in_sync and self._synced.is_set()):
                if not self.running:
                    await self._check_once()
                    continue
                self._synced.clear()
                self._schedule(0.0)
                await self._synced.wait()

    # ------------------------------------------------------------------ internals
    async def _read_locked(self) -> Table | None:
        try:
            actual = await self.backend.read_table()
        except IpvsError as exc:
            self._report_error("reading the IPVS table", exc)
            self._expected = None
            self._in_sync = False
            self._schedule(self.retry_interval)
            return None
        self.counters.reads += 1
        self.counters.last_read = time.monotonic()
        self._expected = actual
        return actual

    async def _apply(self, ops: list[Op], kind: EventKind, message: str) -> bool:
        """Apply under the lock; update the kernel model; schedule the read-back. False on refusal."""
        self._gen += 1
        for op in ops:
            if isinstance(op, Flush):
                self._flushed_gen = self._gen
            else:
                self._touched[_op_key(op)] = self._gen
        self._synced.clear()
        base = self._expected
        try:
            await self.backend.apply(ops)
        except IpvsError as exc:
            self._expected = None
            self._in_sync = False
            self._report_error("applying IPVS changes", exc)
            self._schedule(self.retry_interval)
            return False
        self.counters.applies += 1
        self.counters.ops_applied += len(ops)
        self.counters.history.extend(ops)
        self._last_error = None
        if base is not None:
            try:
                self._expected = apply_ops(base, ops)
            except IpvsError:  # our model was wrong: find out
                self._expected = None
        self._in_sync = self._expected is not None
        self._emit(
            SyncEvent(
                kind,
                message
                + ": "
                + "; ".join(str(op) for op in ops[:5])
                + (f"; ... ({len(ops) - 5} more)" if len(ops) > 5 else ""),
                tuple(ops),
            )
        )
        self._schedule(0.0)
        return True

    def _report_error(self, what: str, exc: IpvsError) -> None:
        self.counters.errors += 1
        text = (
            f"IPVS: error {what}: {exc.strerror or exc} (errno {exc.errno} {errno.errorcode.get(exc.errno or 0, '')})"
        )
        repeated = text == self._last_error
        self._last_error = text
        if not repeated:
            self._emit(SyncEvent("error", text, (exc.op,) if isinstance(exc.op, _OP_TYPES) else (), exc))

    def _schedule(self, delay: float) -> None:
        when = time.monotonic() + delay
        if when < self._next_check:
            self._next_check = when
        self._wake.set()

    async def _run(self) -> None:
        while True:
            delay = self._next_check - time.monotonic()
            if delay > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                if self._next_check - time.monotonic() > 0:
                    continue
            self._next_check = time.monotonic() + self.check_interval
            try:
                await self._check_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep checking whatever happened
                log.exception("IPVS sync check failed")
                self._schedule(self.retry_interval)

    async def _check_once(self) -> list[Op]:
        """Read the kernel and repair what differs, without holding the apply lock while reading or
        comparing (so a change is never held up by a check, and a check of a large table yields to the
        event loop as it goes). Services that an apply touched meanwhile may have been read before or after
        that change: they are left out of this comparison and checked by the next read."""
        gen = self._gen
        self._reads_in_flight.append(gen)
        try:
            actual = await self.backend.read_table()
            desired = self._desired
            differing = await _differing_keys(desired, actual)
        except IpvsError as exc:
            self._report_error("reading the IPVS table", exc)
            self._schedule(self.retry_interval)
            return []
        finally:
            self._reads_in_flight.remove(gen)
        async with self._lock:
            if self._flushed_gen > gen:  # we flushed during the read: nothing of it can be trusted
                self.counters.partial_reads += 1
                self._schedule(0.0)
                return []
            if self._desired is not desired:  # replaced meanwhile: compare what changed in it too
                changed = _changed_keys(desired, self._desired)
                if changed is None:
                    self.counters.partial_reads += 1
                    self._schedule(0.0)
                    return []
                differing.update(changed)
            stale = {key for key, g in self._touched.items() if g > gen}
            self._prune_touched()
            self.counters.reads += 1
            self.counters.last_read = time.monotonic()
            known = self._expected is not None
            if stale:
                self.counters.partial_reads += 1
                differing -= stale
                fresh = {k: e for k, e in actual._entries.items() if k not in stale}
                kept = {} if self._expected is None else {k: e for k, e in self._expected.items() if k in stale}
                self._expected = Table._wrap({**fresh, **kept}) if known else None
                self._schedule(0.0)
            else:
                self._expected = actual
            wanted, have = _subtable(self._desired, differing), _subtable(actual, differing)
            ops = plan(wanted, have, owned=self._owned_arg())
            items = detect(wanted, have, owned=self._owned_arg()) if known and ops else []
            self._track_drift(items if self.drift_policy == "hold" else [], stale)
            if known and self._drift.items:
                ops = held_back(ops, self._drift.items)
            if not ops:
                if self._drift.items:
                    self._in_sync = False  # set_desired must plan in full (and leave the held items alone)
                elif not stale:
                    self._in_sync = True
                    self._synced.set()
                return []
            self._in_sync = False
            if known:
                self.counters.drift_repairs += 1
                summary = "; ".join(item.text() for item in items[:5]) + (
                    f"; ... ({len(items) - 5} more)" if len(items) > 5 else ""
                )
                self._emit(SyncEvent("drift", f"IPVS table changed from outside; repairing: {summary}", tuple(ops),
                                     items=tuple(items)))
                await self._apply(ops, "applied", f"IPVS: drift repaired with {len(ops)} operation(s)")
            else:
                await self._apply(ops, "applied", f"IPVS: {len(ops)} operation(s) applied on retry")
            return ops

    def _track_drift(self, items: list[DriftItem], stale: Collection[ServiceKey]) -> None:
        """Hold ``items`` (services in ``stale`` were not compared: their items stay); report what came and went."""
        appeared, cleared = self._drift.update(items, keep=stale)
        if cleared:
            self._emit(SyncEvent("drift-cleared", "IPVS drift cleared: " + "; ".join(i.where for i in cleared),
                                 items=tuple(cleared)))
        if appeared:
            self._emit(SyncEvent("drift-held", "IPVS table changed from outside; held for the operator (ipvs_drift "
                                 "hold): " + "; ".join(i.text() for i in appeared), items=tuple(appeared)))

    def _prune_touched(self) -> None:
        """Forget touches that no running or future read can overlap."""
        floor = min(self._reads_in_flight, default=self._gen)
        if any(g <= floor for g in self._touched.values()):
            self._touched = {k: g for k, g in self._touched.items() if g > floor}

    # ------------------------------------------------------------------ sync daemon
    async def set_sync_role(self, role: SyncRole, params: SyncDaemonParams | None = None) -> None:
        """Run the master daemon (``"master"``), the backup daemon (``"backup"``) or none. ``params`` is
        kept from the previous call when omitted. A daemon of the wrong role is stopped first; one with other
        parameters is restarted. Raises ``IpvsError`` when the kernel refuses (also reported as an event)."""
        if role not in ("master", "backup", "none"):
            raise ValueError(f"sync role must be master, backup or none, not {role!r}")
        async with self._daemon_lock:
            if params is not None:
                self._daemon_params = params
            params = self._daemon_params
            if role != "none" and params is None:
                raise ValueError("a sync daemon needs its parameters (interface, syncid ...)")
            want: SyncState | None = {"master": SyncState.MASTER, "backup": SyncState.BACKUP}.get(role)
            running = {d.state: d for d in await self.backend.read_sync_daemons()}
            for state in (SyncState.MASTER, SyncState.BACKUP):
                current = running.get(state)
                if current is None:
                    self._started_daemons.discard(state)
                    continue
                keep = state is want and params is not None and params.matches(current)
                if keep or (role == "none" and state not in self._started_daemons):
                    continue
                try:
                    await self.backend.stop_sync_daemon(state)
                except IpvsError as exc:
                    if exc.errno != errno.ESRCH:
                        self._report_error(f"stopping the {state.name.lower()} sync daemon", exc)
                        raise
                self._started_daemons.discard(state)
                self._emit(SyncEvent("daemon", f"IPVS: stopped {state.name.lower()} sync daemon"))
                running.pop(state)
            if want is not None and want not in running:
                assert params is not None
                try:
                    await self.backend.start_sync_daemon(
                        want,
                        params.interface,
                        params.syncid,
                        maxlen=params.maxlen,
                        group=params.group,
                        port=params.port,
                        ttl=params.ttl,
                    )
                except IpvsError as exc:
                    self._report_error(f"starting the {want.name.lower()} sync daemon", exc)
                    raise
                self._started_daemons.add(want)
                self._emit(
                    SyncEvent(
                        "daemon",
                        f"IPVS: started {want.name.lower()} sync daemon on {params.interface} syncid {params.syncid}",
                    )
                )
            self._role = role


def _op_key(op: Op) -> ServiceKey:
    """The service an operation is about."""
    match op:
        case AddService(service) | EditService(service):
            return service.key
        case DeleteService(key):
            return key
        case AddDest(key, _) | EditDest(key, _) | DeleteDest(key, _):
            return key
    raise TypeError(f"no service in {op!r}")

