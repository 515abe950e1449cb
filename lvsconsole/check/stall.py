"""Checker liveness, sans-IO: which checks have produced no result for too long.

keepalived's checker can freeze silently (acassen/keepalived#2523: a day without a single check): the
servers then keep whatever state they had, and nothing says so. Here every check is expected to produce
a result at a known pace. A check that completes is next due ``interval`` later (``delay_loop``, or
``delay_before_retry`` while retrying) and may then take up to its ``timeout``, so results arrive at
most ``interval + timeout`` apart. A check silent for :data:`STALL_MULTIPLE` times that is *stalled*:
it is waiting for a concurrency slot the other checks never free, the event loop is starved, or a
checker ignores its timeout. The runner already cancels a check that overruns its own timeout, so a
slow but live server never trips this; only a check that cannot produce a result does.

:class:`StallDetector` takes the times as arguments and returns :class:`StallNotice` values: one when a
check becomes stalled, one when a stalled check produces a result again. The runner feeds it and turns
the notices into events; tests drive it with a virtual clock.

Recovery notices are rate-limited (:data:`RECOVERY_NOTICE_BURST`, then :data:`RECOVERY_NOTICES_PER_SECOND`):
after an overload thousands of stalled checks produce a result within a second or two, and a notice,
a log line and a bus event for each would add to the very load that stalled them. The recoveries beyond
the budget are counted (:meth:`StallDetector.take_suppressed_recoveries`) for one summary line; a check's
stalled state is cleared either way, so ``is_stalled`` and the snapshots stay exact.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = [
    "RECOVERY_NOTICES_PER_SECOND", "RECOVERY_NOTICE_BURST", "STALL_MULTIPLE", "StallDetector", "StallNotice",
    "stall_text",
]  # fmt: skip

STALL_MULTIPLE = 3.0
"""A check is stalled after this many of its intervals (``interval + timeout``) without a result."""

RECOVERY_NOTICE_BURST = 50
"""Recovery notices given at once before the rate limit applies."""

RECOVERY_NOTICES_PER_SECOND = 10.0
"""Recovery notices given per second beyond the burst (the budget refills at this rate)."""

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class StallNotice(Generic[K]):
    """A check became stalled (``stalled``) or produced a result again after being stalled."""

    key: K
    stalled: bool
    silent_for: float
    """Seconds since the check's last result (or since it was first expected, before any result)."""
    limit: float
    """The silence allowed: :data:`STALL_MULTIPLE` x (interval + timeout)."""
    running: bool
    """When it stalled, a check was in flight (rather than waiting to start)."""


def stall_text(kind: str, rs: str, vs: str, silent_for: float, *, stalled: bool, running: bool = False) -> str:
    """The log line for a notice: "TCP_CHECK on [10.0.0.2]:tcp:80 in VS [10.0.0.1]:tcp:80 produced no
    result for 18 s" (shared by the check service's log and the engine's CheckStalled event)."""
    head = f"{kind} on {rs} in VS {vs}"
    if stalled:
        why = "a check is running past its timeout" if running else "no check could start"
        return f"{head} produced no result for {silent_for:.0f} s ({why})"
    return f"{head} produced a result again after {silent_for:.0f} s"


@dataclass(slots=True)
class _Watch:
    last_result: float
    limit: float
    deadline: float
    queued: int = -1
    """Sequence number of this watch's live heap entry (-1: none)."""
    queued_at: float = math.inf
    running: bool = False
    stalled: bool = False


class StallDetector(Generic[K]):
    """Expected results of many checks, one deadline each, in a heap (cheap at 10k checks a second).

    A result moves a check's deadline later without touching the heap: when the heap entry comes up, a
    check whose deadline has moved is queued again at its new deadline. Only a deadline that moves
    earlier (a check entering its retries) pushes a new entry at once."""

    def __init__(
        self,
        multiple: float = STALL_MULTIPLE,
        *,
        recovery_burst: int = RECOVERY_NOTICE_BURST,
        recovery_rate: float = RECOVERY_NOTICES_PER_SECOND,
    ) -> None:
        if not multiple > 1:
            raise ValueError(f"multiple must be > 1, not {multiple!r}")
        if recovery_burst < 1 or not recovery_rate > 0:
            raise ValueError("the recovery notice budget needs a burst >= 1 and a rate > 0")
        self._multiple = multiple
        self._recovery_burst = float(recovery_burst)
        self._recovery_rate = recovery_rate
        self._recovery_budget = float(recovery_burst)
        self._budget_time = -math.inf
        """When the budget was last refilled (the time of the last recovery)."""
        self._suppressed = 0
        self._watches: dict[K, _Watch] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._seq = itertools.count()

    def _queue(self, key: K, watch: _Watch) -> None:
        if math.isfinite(watch.deadline):
            watch.queued = next(self._seq)
            watch.queued_at = watch.deadline
            heapq.heappush(self._heap, (watch.deadline, watch.queued, key))

    def expect(self, key: K, *, last_result: float, due: float, timeout: float) -> StallNotice[K] | None:
        """The check ``key`` produced a result at ``last_result`` (or, before its first result, is
        counted from then) and is next due at ``due``. Returns the recovery notice if it was stalled."""
        # Called once per check: plain comparisons rather than max() calls, and no allocation unless it recovers.
        interval = due - last_result if due > last_result else 0.0
        limit = self._multiple * (interval + timeout if timeout > 0.0 else interval)
        deadline = last_result + limit
        watch = self._watches.get(key)
        if watch is None:
            watch = self._watches[key] = _Watch(last_result, limit, deadline)
            self._queue(key, watch)
            return None
        notice = None
        if watch.stalled:
            watch.stalled = False
            if self._spend_recovery_budget(last_result):
                notice = StallNotice(key, False, last_result - watch.last_result, watch.limit, watch.running)
            else:
                self._suppressed += 1
        watch.last_result = last_result
        watch.limit = limit
        watch.deadline = deadline
        watch.running = False
        if watch.queued < 0 or deadline < watch.queued_at:
            self._queue(key, watch)
        return notice

    def _spend_recovery_budget(self, now: float) -> bool:
        """Whether a recovery notice may be given at ``now`` (a token bucket)."""
        if now > self._budget_time:
            refill = (now - self._budget_time) * self._recovery_rate
            self._recovery_budget = min(self._recovery_burst, self._recovery_budget + refill)
            self._budget_time = now
        if self._recovery_budget >= 1.0:
            self._recovery_budget -= 1.0
            return True
        return False

    def take_suppressed_recoveries(self) -> int:
        """How many recoveries went without a notice (over the budget) since the last call."""
        suppressed, self._suppressed = self._suppressed, 0
        return suppressed

    def started(self, key: K) -> None:
        """A check of ``key`` is now in flight (for the notice's ``running``)."""
        watch = self._watches.get(key)
        if watch is not None:
            watch.running = True

    def forget(self, key: K) -> None:
        self._watches.pop(key, None)

    def poll(self, now: float) -> list[StallNotice[K]]:
        """The checks whose silence passed their limit by ``now`` (each reported once per stall)."""
        notices: list[StallNotice[K]] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, seq, key = heapq.heappop(heap)
            watch = self._watches.get(key)
            if watch is None or watch.queued != seq:
                continue  # forgotten, or superseded by an earlier entry
            watch.queued, watch.queued_at = -1, math.inf
            if watch.deadline > now:
                self._queue(key, watch)  # results came in since it was queued
                continue
            watch.stalled = True
            notices.append(StallNotice(key, True, now - watch.last_result, watch.limit, watch.running))
        return notices

    def next_deadline(self) -> float:
        """When :meth:`poll` may next have something to report (at the earliest; ``inf`` when nothing is
        watched)."""
        heap = self._heap
        while heap:
            _, seq, key = heap[0]
            watch = self._watches.get(key)
            if watch is not None and watch.queued == seq:
                return heap[0][0]
            heapq.heappop(heap)
        return math.inf

    def is_stalled(self, key: K) -> bool:
        watch = self._watches.get(key)
        return watch is not None and watch.stalled

    def stalled(self) -> list[K]:
        return [k for k, w in self._watches.items() if w.stalled]
