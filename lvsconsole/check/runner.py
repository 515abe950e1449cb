"""One asyncio scheduler for every health check.

A single dispatcher task keeps a heap of (due time, checker) pairs taken from the policy's
``next_check_time``. When the earliest is due it waits for a concurrency slot (a semaphore bounds how
many checks run at once) and starts the check as its own task; the check's result goes to the policy,
the policy's actions go to the ``on_actions`` callback, and the checker goes back on the heap at its
new due time. First checks are spread over ``warmup`` by the policy, so there is no start-up burst.

Lateness (start time minus due time) is measured per check: it is the director's own lag — the
event loop too busy, or every concurrency slot taken — and is reported with each result and in
:class:`RunnerStats`, so an operator sees a starving checker engine before it causes false failovers.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from lvsconsole.check.policy import Action, CheckerRef, CheckOutcome, CheckPolicy

__all__ = ["CheckRecord", "CheckRunner", "Checker", "RunnerStats"]

_log = logging.getLogger(__name__)

TIMEOUT_GRACE = 0.5
"""Seconds the runner waits beyond a checker's own ``timeout`` before cancelling it."""


class Checker(Protocol):
    """A health checker: one probe per call, bounded by ``timeout`` seconds."""

    @property
    def timeout(self) -> float: ...

    async def check(self) -> CheckOutcome: ...


@dataclass(frozen=True, slots=True)
class CheckRecord:
    """One completed check, for the UI and the event bus."""

    ref: CheckerRef
    outcome: CheckOutcome
    scheduled: float
    started: float
    finished: float

    @property
    def lateness(self) -> float:
        return max(0.0, self.started - self.scheduled)

    @property
    def duration(self) -> float:
        return self.finished - self.started


@dataclass(slots=True)
class RunnerStats:
    checks: int = 0
    in_flight: int = 0
    max_lateness: float = 0.0
    total_lateness: float = 0.0
    last_lateness: float = 0.0
    errors: int = 0
    """Checkers that raised instead of returning an outcome (counted as failures)."""

    @property
    def mean_lateness(self) -> float:
        return self.total_lateness / self.checks if self.checks else 0.0


ActionCallback = Callable[[Sequence[Action]], None]
RecordCallback = Callable[[CheckRecord], None]


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
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self._policy = policy
        self._checkers = dict(checkers)
        self._on_actions = on_actions
        self._on_record = on_record
        self._max_concurrency = max_concurrency
        self._heap: list[tuple[float, int, CheckerRef]] = []
        self._seq = itertools.count()
        self._tasks: set[asyncio.Task[None]] = set()
        self._dispatcher: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Event | None = None
        self._sem: asyncio.Semaphore | None = None
        self._stopping = False
        self.stats = RunnerStats()
        self.last_lateness: dict[CheckerRef, float] = {}

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the policy and the dispatcher on the running loop."""
        if self._dispatcher is not None:
            raise RuntimeError("CheckRunner already started")
        loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._sem = asyncio.Semaphore(self._max_concurrency)
        actions = self._policy.start(loop.time())
        for ref in self._policy.checker_refs():
            if ref in self._checkers:
                self._push(ref)
        self._deliver(actions)
        self._dispatcher = loop.create_task(self._dispatch(), name="lvsconsole-check-dispatcher")

    async def stop(self, *, shutdown: bool = False) -> None:
        """Cancel the dispatcher and every check in flight; with ``shutdown`` deliver the policy's
        shutdown actions (remove dests, omega notifies)."""
        self._stopping = True
        tasks = [t for t in (self._dispatcher, *self._tasks) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._dispatcher = None
        if shutdown:
            self._deliver(self._policy.shutdown(asyncio.get_running_loop().time()))

    async def __aenter__(self) -> CheckRunner:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- scheduling ------------------------------------------------------------------------------

    def _push(self, ref: CheckerRef) -> None:
        due = self._policy.next_check_time(ref.rs, ref.index)
        if math.isfinite(due):
            heapq.heappush(self._heap, (due, next(self._seq), ref))
            if self._wakeup is not None:
                self._wakeup.set()

    async def _dispatch(self) -> None:
        assert self._wakeup is not None and self._sem is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._heap:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            due = self._heap[0][0]
            delay = due - loop.time()
            if delay > 0:
                self._wakeup.clear()
                try:
                    async with asyncio.timeout(delay):
                        await self._wakeup.wait()
                except TimeoutError:
                    pass
                continue  # re-read the heap: an earlier check may have been pushed meanwhile
            await self._sem.acquire()
            due, _, ref = heapq.heappop(self._heap)
            self.stats.in_flight += 1
            task = loop.create_task(self._run_one(ref, due), name=f"check {ref.rs.rs} #{ref.index}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run_one(self, ref: CheckerRef, scheduled: float) -> None:
        assert self._sem is not None
        loop = asyncio.get_running_loop()
        checker = self._checkers[ref]
        started = loop.time()
        try:
            try:
                async with asyncio.timeout(checker.timeout + TIMEOUT_GRACE):
                    outcome = await checker.check()
            except TimeoutError:
                detail = f"Check on service {{rs}} timed out after {checker.timeout:g}s."
                outcome = CheckOutcome(False, detail, reason="timeout", timed_out=True)
            except Exception as exc:  # a broken checker must not stop the others
                self.stats.errors += 1
                detail = f"Check on service {{rs}} raised {type(exc).__name__}: {exc}"
                outcome = CheckOutcome(False, detail, reason=type(exc).__name__)
        finally:
            self._sem.release()
            self.stats.in_flight -= 1
        finished = loop.time()
        record = CheckRecord(ref, outcome, scheduled, started, finished)
        self._account(record)
        if self._stopping:
            return
        actions = self._policy.record_outcome(ref.rs, ref.index, outcome, finished, started=started)
        self._push(ref)
        if self._on_record is not None:
            try:
                self._on_record(record)
            except Exception:
                _log.exception("check record callback failed")
        self._deliver(actions)

    def _account(self, record: CheckRecord) -> None:
        late = record.lateness
        s = self.stats
        s.checks += 1
        s.last_lateness = late
        s.total_lateness += late
        s.max_lateness = max(s.max_lateness, late)
        self.last_lateness[record.ref] = late

    def _deliver(self, actions: Sequence[Action]) -> None:
        if actions:
            try:
                self._on_actions(actions)
            except Exception:
                _log.exception("check action callback failed")
