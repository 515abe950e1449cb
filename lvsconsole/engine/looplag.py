"""Timer health: how late the engine's event loop runs, and whether that puts a VRRP instance at risk.

Every VRRP timer of the engine (adverts, the Master_Down timer) runs on one asyncio loop. When that loop
is starved (a stalled VM, a CPU-bound callback, swapping) timers fire late; a master that sends its
adverts too late is declared dead by its backup: a false failover, which keepalived reports as
"A thread timer expired". So the engine measures its own lag continuously and warns *before* it gets
there: when a sample exceeds half of the smallest Skew_Time among the running instances (the part of
Master_Down_Interval that scales with priority, and the thinnest margin any timer has).

The core is sans-IO and driven with virtual times in the tests:

- :class:`LagEstimator` keeps the samples of the last minute: current, p99 and max lag;
- :class:`LagAlarm` turns samples and the current margin into one warning per episode and one
  "recovered" notice when the lag has stayed under the limit for a while.

:class:`LoopLagMonitor` is the asyncio adapter: a task that asks to wake every ``interval`` and measures
how late it actually woke.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

WINDOW = 60.0
"""Seconds of samples the figures cover."""
TICK = 0.1
"""How often the monitor wakes up (so a stall is seen within this long of its end)."""
QUIET = 5.0
"""An episode ends after the lag has stayed under the limit this long; spikes closer together are one episode."""


# ---------------------------------------------------------------------------------------------- estimator


@dataclass(frozen=True, slots=True)
class LagFigures:
    """Lag in seconds: the last sample, and the 99th percentile and maximum of the window."""

    current: float = 0.0
    p99: float = 0.0
    max: float = 0.0
    samples: int = 0


class LagEstimator:
    """Lag samples of the last ``window`` seconds (sans-IO: times come from the caller)."""

    def __init__(self, window: float = WINDOW) -> None:
        self.window = window
        self._samples: deque[tuple[float, float]] = deque()  # (actual time, lag)

    def add(self, expected: float, actual: float) -> float:
        """Record a wake-up planned for ``expected`` that happened at ``actual``; returns its lag (≥ 0)."""
        lag = max(0.0, actual - expected)
        self._samples.append((actual, lag))
        horizon = actual - self.window
        while self._samples and self._samples[0][0] < horizon:
            self._samples.popleft()
        return lag

    @property
    def current(self) -> float:
        return self._samples[-1][1] if self._samples else 0.0

    def figures(self) -> LagFigures:
        if not self._samples:
            return LagFigures()
        lags = sorted(lag for _, lag in self._samples)
        rank = max(0, math.ceil(0.99 * len(lags)) - 1)  # nearest-rank percentile
        return LagFigures(current=self._samples[-1][1], p99=lags[rank], max=lags[-1], samples=len(lags))


# ---------------------------------------------------------------------------------------------- threshold


@dataclass(frozen=True, slots=True)
class Margin:
    """One running instance's timer margin: half its Skew_Time."""

    instance: str
    skew_time: float

    @property
    def limit(self) -> float:
        return self.skew_time / 2


def smallest_margin(margins: Iterable[Margin]) -> Margin | None:
    """The instance whose timers a late loop endangers first (None without running instances)."""
    return min(margins, key=lambda m: m.limit, default=None)


@dataclass(frozen=True, slots=True)
class LagExceeded:
    """The first sample of an episode over the limit."""

    instance: str
    lag: float
    limit: float
    skew_time: float


@dataclass(frozen=True, slots=True)
class LagRecovered:
    """The lag has stayed under the limit for ``QUIET`` seconds; ``worst`` and ``lasted`` sum the episode up."""

    instance: str
    worst: float
    limit: float
    lasted: float


Notice = LagExceeded | LagRecovered


class LagAlarm:
    """Rate-limits lag warnings: one :class:`LagExceeded` per episode, then one :class:`LagRecovered`."""

    def __init__(self, quiet: float = QUIET) -> None:
        self.quiet = quiet
        self._started: float | None = None
        self._last_over = 0.0
        self._worst = 0.0
        self._margin: Margin | None = None

    @property
    def in_episode(self) -> bool:
        return self._started is not None

    def observe(self, lag: float, margin: Margin | None, now: float) -> list[Notice]:
        over = margin is not None and lag > margin.limit
        if over:
            assert margin is not None
            self._last_over = now
            if self._started is None:
                self._started, self._worst, self._margin = now, lag, margin
                return [LagExceeded(margin.instance, lag, margin.limit, margin.skew_time)]
            self._worst = max(self._worst, lag)
            return []
        if self._started is None or now - self._last_over < self.quiet:
            return []
        assert self._margin is not None
        notice = LagRecovered(self._margin.instance, self._worst, self._margin.limit, self._last_over - self._started)
        self._started = self._margin = None
        return [notice]


# ---------------------------------------------------------------------------------------------- asyncio adapter


class LoopLagMonitor:
    """Measures the running loop's lag every ``interval`` and reports episodes through ``on_notice``.

    ``margins`` is asked on every sample (cheap: a few attribute reads per instance), so priority
    changes, reloads and state changes are followed without any wiring.
    """

    def __init__(self, margins: Callable[[], Sequence[Margin]], on_notice: Callable[[Notice], None], *,
                 interval: float = TICK, window: float = WINDOW, quiet: float = QUIET) -> None:
        self.margins = margins
        self.on_notice = on_notice
        self.interval = interval
        self.estimator = LagEstimator(window)
        self.alarm = LagAlarm(quiet)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="lvsconsole-looplag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            actual = loop.time()
            lag = self.estimator.add(expected, actual)
            for notice in self.alarm.observe(lag, smallest_margin(self.margins()), actual):
                self.on_notice(notice)

    def stats(self) -> dict[str, Any]:
        """The figures for ``DirectorSnapshot.stats`` (milliseconds; the limit is None without instances)."""
        figures = self.estimator.figures()
        margin = smallest_margin(self.margins())
        return {
            "loop_lag_ms": round(figures.current * 1000, 1),
            "loop_lag_p99_ms": round(figures.p99 * 1000, 1),
            "loop_lag_max_ms": round(figures.max * 1000, 1),
            "loop_lag_limit_ms": None if margin is None else round(margin.limit * 1000, 1),
            "loop_lag_instance": None if margin is None else margin.instance,
        }
