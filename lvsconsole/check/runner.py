"""One asyncio scheduler for every health check.

A single dispatcher task keeps the checks by due time (from the policy's ``next_check_time``) in a wheel
of :data:`DISPATCH_QUANTUM`-wide slots: a check goes into its slot's list (no per-check heap operation:
at ten thousand checks a second a heap of ten thousand entries costs several microseconds a check), and
a small heap holds the slot numbers. The dispatcher wakes once per slot at most, starts every check of
the slots that have begun (so a check starts at most one quantum before its due time; within
``max_concurrency`` checks in flight) and sleeps until the next slot begins, or until a check is pushed
that is due sooner. A checker with ``begin_check`` (:class:`CallbackChecker`: TCP_CHECK, the one
that runs ten thousand times a second) is started by a plain call and calls the runner back when done,
with no task, coroutine or future per check; any other checker's ``check()`` runs as its own task. The
check's result goes to the policy, the policy's actions go to the ``on_actions`` callback, and the
checker goes back on the heap at its new due time.
First checks are spread over ``warmup`` by the policy, so there is no start-up burst. A watchdog task
cancels any check still running :data:`TIMEOUT_GRACE` after its checker's own ``timeout`` (one timer
for all checks rather than one per check: at ten thousand checks a second, per-check bookkeeping is
what the director's CPU goes on; callback checks sit in a timer wheel of WATCHDOG_TICK slots, one list
append each, and tasks in a small dict).

The next run is due ``delay_loop`` after a check completes (keepalived's rule), except that a check
completing within :data:`PHASE_SLACK` of its due time counts as having run exactly on time: the
director's own lag (a busy loop, a slow syscall) then neither drifts the schedule nor bunches checks
that were spread out, which would otherwise feed on itself (a stall makes the checks due during it run
together, so they are due together the next time, and make a longer stall). Slow checks (timeouts) are
still rescheduled from their completion.

Lateness (start time minus due time) is measured per check: it is the director's own lag — the
event loop too busy, or every concurrency slot taken — and is reported with each result and in
:class:`RunnerStats`, so an operator sees a starving checker engine before it causes false failovers.
Past lateness, the same watchdog task flags checks that have produced no result for several of their
intervals (:mod:`lvsconsole.check.stall`) and reports each such stall, and its end, to ``on_stall`` (the ends
within a rate limit: beyond it they are counted and logged as one line per watchdog tick).

**Shared checks.** Refs mapped to the same checker object whose :class:`CheckParams` are equal (the
same real server checked the same way under several virtual servers; :mod:`lvsconsole.check.from_config`
hands out one object for them) form one group: the probe runs once, when the first of them is due, and
its outcome is recorded for every ref of the group, so their policies stay in step. Refs with equal
probes but different timing (delay_loop, retry, rise, …) are not grouped: each keeps its exact schedule.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, TypeVar

from lvsconsole.check.policy import Action, CheckerRef, CheckOutcome, CheckParams, CheckPolicy
from lvsconsole.check.stall import StallDetector, StallNotice

__all__ = ["CallbackChecker", "CheckRecord", "CheckRunner", "Checker", "PendingCheck", "RunnerStats"]

_log = logging.getLogger(__name__)

TIMEOUT_GRACE = 0.5
"""Seconds the runner waits beyond a checker's own ``timeout`` before cancelling it."""

PHASE_SLACK = 0.1
"""A check that completes within this many seconds of its due time is rescheduled from its due time."""

DISPATCH_QUANTUM = 0.001
"""Width in seconds of a dispatch slot: the checks due within one slot are started together, once the slot
has begun (so the dispatcher wakes at most ~1000/s)."""

WATCHDOG_TICK = 0.1
"""How often the watchdog looks for checks that overran their timeout."""


class Checker(Protocol):
    """A health checker: one probe per call, bounded by ``timeout`` seconds."""

    @property
    def timeout(self) -> float: ...

    async def check(self) -> CheckOutcome: ...


_Token = TypeVar("_Token")


class PendingCheck(Protocol):
    """A check in flight; after ``cancel()`` its checker no longer calls back."""

    def cancel(self) -> object: ...


class CallbackChecker(Checker, Protocol):
    """A checker the runner can start without a task: ``begin_check`` returns at once, and ``done(token,
    outcome)`` is called exactly once, later (never from inside ``begin_check``), unless cancelled."""

    def begin_check(
        self, loop: asyncio.AbstractEventLoop, done: Callable[[_Token, CheckOutcome], object], token: _Token
    ) -> PendingCheck: ...


class CheckRecord(NamedTuple):
    """One completed check, for the UI and the event bus. (A NamedTuple: one is made per check, and a tuple
    is made several times faster than a frozen dataclass.)"""

    ref: CheckerRef
    outcome: CheckOutcome
    scheduled: float
    started: float
    finished: float
    primary: bool = True
    """False for the copies of a shared check's record delivered for the other refs of its group."""

    @property
    def lateness(self) -> float:
        late = self.started - self.scheduled
        return late if late > 0.0 else 0.0

    @property
    def duration(self) -> float:
        return self.finished - self.started


_new_record = functools.partial(tuple.__new__, CheckRecord)
"""``_new_record((ref, outcome, scheduled, started, finished, primary))``: a CheckRecord without the Python-level
``__new__`` a NamedTuple class generates (one frame fewer per check)."""


@dataclass(slots=True)
class RunnerStats:
    checks: int = 0
    in_flight: int = 0
    max_lateness: float = 0.0
    total_lateness: float = 0.0
    last_lateness: float = 0.0
    errors: int = 0
    """Checkers that raised instead of returning an outcome (counted as failures)."""
    shared: int = 0
    """Refs whose result comes from another ref's probe (identical checks of one real server)."""

    @property
    def mean_lateness(self) -> float:
        return self.total_lateness / self.checks if self.checks else 0.0


ActionCallback = Callable[[Sequence[Action]], None]
RecordCallback = Callable[[CheckRecord], None]
StallCallback = Callable[[StallNotice[CheckerRef]], None]


@dataclass(eq=False, slots=True)
class _Group:
    """Refs fed by one probe (usually just one ref). Hashed by identity: it keys the stall detector."""

    refs: tuple[CheckerRef, ...]
    checker: Checker
    params: CheckParams
    entry: int = -1
    """Sequence number of the group's live heap entry (-1: none, e.g. while its probe runs). A reload that
    reschedules or drops a group leaves the old entry in the heap; the dispatcher skips it."""
    due: float = math.inf
    """When that entry is due."""
    begin: Callable[..., PendingCheck] | None = None
    """The checker's ``begin_check`` when it is a :class:`CallbackChecker` (None: run ``check()`` as a task)."""
    pending: PendingCheck | None = None
    """The callback check in flight, if any."""
    flight: int = 0
    """Sequence number of that check (its watchdog entry is stale once this moves on)."""
    scheduled: float = 0.0
    started: float = 0.0

    timeout: float = 0.0
    """The checker's ``timeout`` (read once per check, so kept here rather than asked for each time)."""
    late: float | None = None
    """The lateness of the probe's last start (None: it has not run yet)."""

    def __post_init__(self) -> None:
        self.begin = getattr(self.checker, "begin_check", None)
        self.timeout = self.checker.timeout


def _group_refs(
    policy: CheckPolicy, checkers: Mapping[CheckerRef, Checker], refs: Iterable[CheckerRef] | None = None
) -> tuple[list[_Group], dict[CheckerRef, _Group]]:
    members: dict[tuple[int, CheckParams], list[CheckerRef]] = {}
    for ref in policy.checker_refs() if refs is None else refs:
        checker = checkers.get(ref)
        if checker is not None:
            members.setdefault((id(checker), policy.checker_params(ref.rs, ref.index)), []).append(ref)
    groups = [_Group(tuple(refs), checkers[refs[0]], params) for (_, params), refs in members.items()]
    return groups, {ref: g for g in groups for ref in g.refs}


class CheckRunner:
    """Runs the checkers of one :class:`CheckPolicy`.

    ``checkers`` maps every ``policy.checker_refs()`` entry to its checker object (a ref without a
    checker is never scheduled). ``on_actions`` receives the policy's actions, first those of
    ``policy.start()``; ``on_record`` receives every completed check. Both are called on the loop.
    """

    def __init__(
        self,
        policy: CheckPolicy,
        checkers: Mapping[CheckerRef, Checker],
        on_actions: ActionCallback,
        *,
        max_concurrency: int = 64,
        on_record: RecordCallback | None = None,
        on_stall: StallCallback | None = None,
        phase_slack: float = PHASE_SLACK,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self._policy = policy
        self._checkers = dict(checkers)
        self._on_actions = on_actions
        self._on_record = on_record
        self._on_stall = on_stall
        self._max_concurrency = max_concurrency
        self._phase_slack = phase_slack
        groups, self._group_of = _group_refs(policy, self._checkers)
        self._groups: dict[_Group, None] = dict.fromkeys(groups)
        self._stall: StallDetector[_Group] = StallDetector()
        self._slots: dict[int, list[tuple[float, int, _Group]]] = {}
        """Dispatch slot (due time / DISPATCH_QUANTUM, rounded down) → its (due, entry, group) in push order."""
        self._slot_heap: list[int] = []
        """The slot numbers of ``_slots``, as a heap (a slot leaves both together, or stays in both)."""
        self._seq = itertools.count()
        self._tasks: dict[asyncio.Task[None], float] = {}
        """Task checks in flight → the time past which the watchdog cancels them."""
        self._flying: dict[_Group, None] = {}
        """Callback checks in flight (their group holds the check)."""
        self._deadlines: dict[int, list[tuple[int, _Group]]] = {}
        """Watchdog slot (the time past which it is cancelled, in WATCHDOG_TICKs, rounded up) → the
        (flight number, group) of each callback check started (stale once the group's flight moved on)."""
        self._swept = 0
        """Every watchdog slot up to this one has been swept."""
        self._flights = itertools.count(1)
        self._dispatcher: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[None] | None = None
        self._wake_at = math.inf
        self._slot: asyncio.Future[None] | None = None
        self._expired: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.stats = RunnerStats()
        self._count_shared()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._paused: set[CheckerRef] = set()
        self._parked: list[_Group] = []
        """Groups taken off the schedule because every ref they feed is paused."""

    @property
    def max_concurrency(self) -> int:
        return self._max_concurrency

    @max_concurrency.setter
    def max_concurrency(self, value: int) -> None:
        """A new bound takes effect at the next dispatch (checks in flight above it finish as they are)."""
        if value < 1:
            raise ValueError("max_concurrency must be >= 1")
        self._max_concurrency = value

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the policy and the dispatcher on the running loop."""
        if self._dispatcher is not None:
            raise RuntimeError("CheckRunner already started")
        loop = self._loop = asyncio.get_running_loop()
        self._swept = math.floor(loop.time() / WATCHDOG_TICK)
        actions = self._policy.start(loop.time())
        for group in self._groups:
            self._push(group, None)
        self._deliver(actions)
        self._dispatcher = loop.create_task(self._dispatch(), name="lvsconsole-check-dispatcher")
        self._watchdog = loop.create_task(self._watch(), name="lvsconsole-check-watchdog")

    async def stop(self, *, shutdown: bool = False) -> None:
        """Cancel the dispatcher and every check in flight; with ``shutdown`` deliver the policy's
        shutdown actions (remove dests, omega notifies)."""
        self._stopping = True
        tasks = [t for t in (self._dispatcher, self._watchdog, *self._tasks) if t is not None]
        for t in tasks:
            t.cancel()
        for group in self._flying:
            if group.pending is not None:
                group.pending.cancel()
                group.pending = None
                self.stats.in_flight -= 1
        self._flying.clear()
        self._deadlines.clear()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._dispatcher = self._watchdog = None
        if shutdown:
            self._deliver(self._policy.shutdown(asyncio.get_running_loop().time()))

    async def __aenter__(self) -> CheckRunner:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def update(self, removed: Iterable[CheckerRef], added: Mapping[CheckerRef, Checker]) -> None:
        """Follow a reload the policy has already applied (:meth:`CheckPolicy.update`): stop checking the
        ``removed`` refs and start the ``added`` ones (each due when the policy says). Every other ref
        keeps its place in the schedule; a shared probe that loses a ref goes on for the others, at the
        time the first of them is due."""
        touched: dict[_Group, None] = {}
        for ref in removed:
            self._checkers.pop(ref, None)
            if ref not in added:
                self._paused.discard(ref)
            group = self._group_of.pop(ref, None)
            if group is not None:
                group.refs = tuple(r for r in group.refs if r != ref)
                touched[group] = None
        for group in touched:
            if not group.refs:
                del self._groups[group]
                group.entry = -1
                self._stall.forget(group)
            elif group.entry >= 0 and self._due(group) != group.due:  # the due time was the removed ref's
                group.entry = -1
                self._push(group, None)
        if any(not group.refs for group in self._parked):
            self._parked = [group for group in self._parked if group.refs]
        self._checkers.update(added)
        groups, group_of = _group_refs(self._policy, self._checkers, added)
        self._group_of.update(group_of)
        for group in groups:
            self._groups[group] = None
            if self._dispatcher is not None:
                self._push(group, None)
        self._count_shared()

    def _count_shared(self) -> None:
        self.stats.shared = len(self._group_of) - len(self._groups)

    # ---- queries ---------------------------------------------------------------------------------

    def is_stalled(self, ref: CheckerRef) -> bool:
        """Whether this ref's check has produced no result for too long (see :mod:`lvsconsole.check.stall`)."""
        group = self._group_of.get(ref)
        return group is not None and self._stall.is_stalled(group)

    def stalled_refs(self) -> list[CheckerRef]:
        """Every ref whose check is stalled now: ``is_stalled`` of all of them, in one pass over the stalls."""
        return [ref for group in self._stall.stalled() for ref in group.refs]

    @property
    def last_lateness(self) -> dict[CheckerRef, float]:
        """How late each ref's last check started (refs that have not been checked yet are missing). Built on
        demand: the lateness is kept on the probe, not in a dictionary written at every check."""
        return {ref: group.late for ref, group in self._group_of.items() if group.late is not None}

    def sharing(self, ref: CheckerRef) -> int:
        """How many refs the probe behind ``ref`` feeds (1: not shared; 0: ``ref`` has no checker)."""
        group = self._group_of.get(ref)
        return len(group.refs) if group is not None else 0

    # ---- pausing (an operator's maint) -------------------------------------------------------------

    def pause(self, refs: Iterable[CheckerRef]) -> None:
        """Stop probing for ``refs``: a probe that feeds only paused refs is no longer sent, and results reach
        the policy only for refs that are not paused. The policy keeps their state as it was."""
        self._paused.update(refs)

    def resume(self, refs: Iterable[CheckerRef]) -> None:
        """Probe for ``refs`` again; a parked probe runs at once if it is overdue."""
        self._paused.difference_update(refs)
        parked, self._parked = self._parked, []
        for group in parked:
            if self._all_paused(group):
                self._parked.append(group)
            elif not self._stopping:
                self._push(group, None)

    def _all_paused(self, group: _Group) -> bool:
        return bool(self._paused) and all(ref in self._paused for ref in group.refs)

    # ---- scheduling ------------------------------------------------------------------------------

    def _push(self, group: _Group, last_result: float | None, due: float | None = None) -> None:
        """Queue the group's next probe: when the first of its refs is due (``due``, when the caller already
        knows it). ``last_result`` is when the previous probe finished (None before the first one)."""
        if not group.refs:  # a reload took every ref of a probe that was running
            self._stall.forget(group)
            return
        if due is None:
            due = self._due(group)
        if due == math.inf:  # (never NaN: the policy's times are sums of finite times)
            self._stall.forget(group)
            return
        since = due - group.params.delay_loop if last_result is None else last_result
        resumed = self._stall.expect(group, last_result=since, due=due, timeout=group.timeout)
        if resumed is not None:
            self._report_stall(group, resumed)
        entry = group.entry = next(self._seq)
        group.due = due
        slot = int(due // DISPATCH_QUANTUM)
        bucket = self._slots.get(slot)
        if bucket is None:
            self._slots[slot] = [(due, entry, group)]
            heapq.heappush(self._slot_heap, slot)
        else:
            bucket.append((due, entry, group))
        if due < self._wake_at:
            self._wake_at = slot * DISPATCH_QUANTUM
            wake = self._wake
            if wake is not None and not wake.done():
                wake.set_result(None)

    def _due(self, group: _Group) -> float:
        """When the first of the group's refs is due."""
        policy = self._policy
        refs = group.refs
        if len(refs) == 1:
            return policy.next_check_time(refs[0].rs, refs[0].index)
        return min(policy.next_check_time(ref.rs, ref.index) for ref in refs)

    def _now_slot(self, loop: asyncio.AbstractEventLoop) -> int:
        # (asyncio may run a timer a hair before its time: that must not leave the slot for the next wake-up)
        return math.floor(loop.time() / DISPATCH_QUANTUM + 1e-6)

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        slots = self._slots
        slot_heap = self._slot_heap
        stats = self.stats
        while True:
            now_slot = self._now_slot(loop)
            while slot_heap and slot_heap[0] <= now_slot:
                room = self._max_concurrency - stats.in_flight
                if room <= 0:
                    self._slot = loop.create_future()
                    await self._slot
                    now_slot = self._now_slot(loop)
                    continue
                slot = slot_heap[0]
                bucket = slots.get(slot)
                if bucket is None or len(bucket) <= room:
                    heapq.heappop(slot_heap)
                    if bucket is None:
                        continue  # (cannot happen: a slot leaves both at once; a stale number is just dropped)
                    del slots[slot]
                    batch = bucket
                else:  # the rest waits in its slot for checks in flight to finish
                    batch = bucket[:room]
                    del bucket[:room]
                for due, entry, group in batch:
                    if entry != group.entry:
                        continue  # superseded by a reload
                    self._start(loop, group, due)
            self._wake_at = slot_heap[0] * DISPATCH_QUANTUM if slot_heap else math.inf
            wake = self._wake = loop.create_future()
            timer = loop.call_at(self._wake_at, _wake_up, wake) if slot_heap else None
            try:
                await wake
            finally:
                if timer is not None:
                    timer.cancel()
                self._wake = None

    def _start(self, loop: asyncio.AbstractEventLoop, group: _Group, due: float) -> None:
        """Start the group's probe (or park it, when every ref it feeds is paused)."""
        group.entry = -1
        if self._paused and self._all_paused(group):
            self._stall.forget(group)  # silence is expected while paused
            self._parked.append(group)
            return
        self.stats.in_flight += 1
        self._stall.started(group)
        if group.begin is not None:
            self._begin(loop, group, due)
            return
        task = loop.create_task(self._run_one(group, due))
        self._tasks[task] = loop.time() + group.checker.timeout + TIMEOUT_GRACE
        task.add_done_callback(self._forget)

    def _begin(self, loop: asyncio.AbstractEventLoop, group: _Group, scheduled: float) -> None:
        """Start a callback check; :meth:`_callback_done` gets its outcome."""
        assert group.begin is not None
        started = loop.time()
        group.scheduled = scheduled
        group.started = started
        flight = group.flight = next(self._flights)
        try:
            group.pending = group.begin(loop, self._callback_done, group)
        except Exception as exc:  # a broken checker must not stop the others
            self.stats.errors += 1
            detail = f"Check on service {{rs}} raised {type(exc).__name__}: {exc}"
            outcome = CheckOutcome(False, detail, reason=type(exc).__name__)
            group.pending = loop.call_soon(self._callback_done, group, outcome)
        self._flying[group] = None
        slot = math.ceil((started + group.timeout + TIMEOUT_GRACE) / WATCHDOG_TICK)
        if slot <= self._swept:
            slot = self._swept + 1
        bucket = self._deadlines.get(slot)
        if bucket is None:
            self._deadlines[slot] = [(flight, group)]
        else:
            bucket.append((flight, group))

    def _callback_done(self, group: _Group, outcome: CheckOutcome) -> None:
        if group.pending is None:
            return  # cancelled (by the watchdog or stop) after the checker had already queued its answer
        group.pending = None
        del self._flying[group]
        stats = self.stats  # _check_over(), inline: this runs once per check
        stats.in_flight -= 1
        slot = self._slot
        if slot is not None and not slot.done():
            slot.set_result(None)
        refs = group.refs
        if len(refs) == 1 and not self._paused:  # _complete()'s common case, without its extra call
            loop = self._loop
            finished = (loop if loop is not None else asyncio.get_running_loop()).time()
            self._complete_one(group, refs[0], group.scheduled, group.started, finished, outcome)
        else:
            self._complete(group, group.scheduled, group.started, outcome)

    def _check_over(self) -> None:
        """One check fewer in flight: a dispatcher waiting for a slot may go on."""
        self.stats.in_flight -= 1
        slot = self._slot
        if slot is not None and not slot.done():
            slot.set_result(None)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        self._expired.discard(task)

    async def _watch(self) -> None:
        """Cancel checks that overran their checker's timeout (they then count as timed out), and report
        checks that have gone silent for too long."""
        loop = asyncio.get_running_loop()
        stall = self._stall
        while True:
            await asyncio.sleep(WATCHDOG_TICK)
            now = loop.time()
            for task, deadline in list(self._tasks.items()):
                if deadline <= now and not task.done() and task not in self._expired:
                    self._expired.add(task)
                    task.cancel()
            self._sweep_deadlines(now)
            if stall.next_deadline() <= now:
                for notice in stall.poll(now):
                    self._report_stall(notice.key, notice)
            quiet = stall.take_suppressed_recoveries()
            if quiet:
                _log.warning("%d more stalled checks produced a result again (notices over the rate limit)", quiet)

    def _sweep_deadlines(self, now: float) -> None:
        """Cancel the callback checks that overran their timeout (each then counts as timed out)."""
        now_slot = math.floor(now / WATCHDOG_TICK)
        deadlines = self._deadlines
        for slot in range(self._swept + 1, now_slot + 1):
            for flight, group in deadlines.pop(slot, ()):
                pending = group.pending
                if pending is not None and group.flight == flight:
                    pending.cancel()
                    detail = f"Check on service {{rs}} timed out after {group.checker.timeout:g}s."
                    # Through _callback_done, as if the checker had answered: one way out for every check.
                    self._callback_done(group, CheckOutcome(False, detail, reason="timeout", timed_out=True))
        self._swept = max(self._swept, now_slot)

    def _report_stall(self, group: _Group, notice: StallNotice[_Group]) -> None:
        if self._on_stall is None:
            return
        for ref in group.refs:
            try:
                self._on_stall(StallNotice(ref, notice.stalled, notice.silent_for, notice.limit, notice.running))
            except Exception:
                _log.exception("check stall callback failed")

    async def _run_one(self, group: _Group, scheduled: float) -> None:
        checker = group.checker
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            try:
                outcome = await checker.check()
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is None or task not in self._expired or self._stopping:
                    raise
                self._expired.discard(task)
                task.uncancel()
                detail = f"Check on service {{rs}} timed out after {checker.timeout:g}s."
                outcome = CheckOutcome(False, detail, reason="timeout", timed_out=True)
            except Exception as exc:  # a broken checker must not stop the others
                self.stats.errors += 1
                detail = f"Check on service {{rs}} raised {type(exc).__name__}: {exc}"
                outcome = CheckOutcome(False, detail, reason=type(exc).__name__)
        finally:
            self._check_over()
        self._complete(group, scheduled, started, outcome)

    def _complete(self, group: _Group, scheduled: float, started: float, outcome: CheckOutcome) -> None:
        """A probe's outcome: to the policy of every ref it feeds, to the record listeners, then reschedule."""
        finished = asyncio.get_running_loop().time()
        refs = group.refs
        if not refs:
            return  # a reload removed every ref of this probe while it ran
        paused = self._paused
        if len(refs) == 1 and not paused:
            self._complete_one(group, refs[0], scheduled, started, finished, outcome)
            return
        if paused:  # a shared probe still runs for its other refs; the paused ones hear nothing of it
            refs = tuple(ref for ref in refs if ref not in paused)
        if len(refs) == 1:
            records = [CheckRecord(refs[0], outcome, scheduled, started, finished)]
        else:
            records = [
                CheckRecord(ref, outcome, scheduled, started, finished, primary=i == 0) for i, ref in enumerate(refs)
            ]
        if records:
            self._account(group, records)
        if self._stopping:
            return
        # Quick and on time (give or take our own lag): keep the check's phase.
        if finished - scheduled <= self._phase_slack:
            now = started = scheduled
        else:
            now = finished
        policy = self._policy
        actions: list[Action] = []
        for ref in refs:
            acts = policy.record_outcome(ref.rs, ref.index, outcome, now, started=started)
            if acts:
                actions += acts
        self._push(group, finished)
        if self._on_record is not None:
            for record in records:
                try:
                    self._on_record(record)
                except Exception:
                    _log.exception("check record callback failed")
        self._deliver(actions)

    def _complete_one(
        self, group: _Group, ref: CheckerRef, scheduled: float, started: float, finished: float, outcome: CheckOutcome
    ) -> None:
        """:meth:`_complete` for a probe that feeds one ref, not paused: the ten-thousand-a-second case, in one
        pass (one record, the policy's next due time from the same call that records the outcome)."""
        record = _new_record((ref, outcome, scheduled, started, finished, True))
        late = started - scheduled if started > scheduled else 0.0  # _account() for one record, inline
        stats = self.stats
        stats.checks += 1
        stats.last_lateness = late
        stats.total_lateness += late
        if late > stats.max_lateness:
            stats.max_lateness = late
        group.late = late
        if self._stopping:
            return
        if finished - scheduled <= self._phase_slack:
            now = started = scheduled
        else:
            now = finished
        actions, due = self._policy.record_outcome_and_due(ref.rs, ref.index, outcome, now, started=started)
        self._push(group, finished, due)
        if self._on_record is not None:
            try:
                self._on_record(record)
            except Exception:
                _log.exception("check record callback failed")
        if actions:  # (a steady success has none: no call)
            self._deliver(actions)

    def _account(self, group: _Group, records: Sequence[CheckRecord]) -> None:
        late = records[0].lateness
        s = self.stats
        s.checks += 1
        s.last_lateness = late
        s.total_lateness += late
        if late > s.max_lateness:
            s.max_lateness = late
        group.late = late

    def _deliver(self, actions: Sequence[Action]) -> None:
        if actions:
            try:
                self._on_actions(actions)
            except Exception:
                _log.exception("check action callback failed")


def _wake_up(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
