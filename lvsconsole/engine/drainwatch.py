"""Watching one draining real server (sans-IO): samples in, phase, fitted decay, ETA and notices out.

The adapter (engine/drainsampler.py) reads ActiveConn, InActConn and PersistConn of the server's dests a few
times a second and feeds them here with the time; this core keeps the last ``WINDOW`` seconds, fits the decay
of ActiveConn and says what to do: report progress (at most once a second), report that the server is empty,
put it into maint (``then remove``), or give up at the timeout.

Phases:

- ``draining``: connections remain; sampling goes on.
- ``held``: a plain watch (no ``--until-empty``) saw 0 active and 0 inactive; the server holds at weight 0 and
  is still sampled, since persistent clients may land on it again (it goes back to ``draining`` if they do).
- ``empty``: ``--until-empty`` without ``then remove`` reached 0 active and 0 inactive: the watch ends, the
  server holds at weight 0 (persistence templates may remain: PersistConn is reported, not waited for).
- ``removed``: ``then remove`` put the server into maint (out of IPVS, checks paused), when empty or at the
  timeout; or the server left the table by other means (a reload drain completing).
- ``timed-out``: ``--timeout`` passed before it was empty, without ``then remove``: the watch ends, the server
  holds at weight 0.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

Phase: TypeAlias = Literal["draining", "held", "empty", "removed", "timed-out"]
Model: TypeAlias = Literal["exponential", "linear"]

WINDOW = 60.0
"""Seconds of samples kept (and fitted)."""
PROGRESS_INTERVAL = 1.0
"""Progress notices are at most this often (the bus and every face see them), and only when the counts moved:
a server held at 0 for hours must not push everything else out of the bus history."""
MIN_FIT_SAMPLES = 4
MIN_FIT_SPAN = 0.5
"""A fit needs this many samples over at least this many seconds: fewer say nothing about a trend."""
MIN_DECAY_RATE = 1e-3
"""Slopes flatter than this (connections per second, or 1/s for the exponential) count as not decaying."""
MIN_EXPONENTIAL_R2 = 0.5
"""Below this the log-linear fit explains too little of the counts to extrapolate (noise, a step)."""
EMPTY_LEVEL = 0.5
"""An exponential never reaches 0: its ETA is when it falls below half a connection."""


@dataclass(frozen=True, slots=True)
class Sample:
    time: float
    active: int
    inactive: int
    persist: int

    @property
    def empty(self) -> bool:
        """No connection left (persistence templates do not count: they expire by themselves)."""
        return self.active == 0 and self.inactive == 0


@dataclass(frozen=True, slots=True)
class DrainPlan:
    """What the operator asked for: ``drain RS [--until-empty] [--timeout S] [then remove]``."""

    until_empty: bool = False
    timeout: float | None = None
    then_remove: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"until_empty": self.until_empty, "timeout": self.timeout, "then_remove": self.then_remove}


@dataclass(frozen=True, slots=True)
class Fit:
    """The decay of ActiveConn fitted over the window: which model, the rate of fall now (connections per
    second, positive while falling) and the seconds from the last sample until it reaches 0."""

    model: Model
    rate: float
    eta: float | None


# -- notices: what the adapter acts on


@dataclass(frozen=True, slots=True)
class Progress:
    sample: Sample
    fit: Fit | None


@dataclass(frozen=True, slots=True)
class Emptied:
    sample: Sample
    elapsed: float


@dataclass(frozen=True, slots=True)
class Remove:
    """Put the server into maint now (``then remove``)."""

    sample: Sample
    timed_out: bool


@dataclass(frozen=True, slots=True)
class TimedOut:
    sample: Sample
    elapsed: float
    removing: bool


Notice: TypeAlias = Progress | Emptied | Remove | TimedOut


def _least_squares(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float] | None:
    """(intercept, slope, r²) of y = a + b·x; None when x does not vary. r² is 1 for a flat y on a flat fit."""
    n = len(xs)
    mx = sum(xs) / n
    my = sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx <= 0.0:
        return None
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    syy = sum((y - my) ** 2 for y in ys)
    slope = sxy / sxx
    r2 = 1.0 if syy <= 0.0 else (sxy * sxy) / (sxx * syy)
    return my - slope * mx, slope, r2


def fit_decay(samples: Sequence[Sample]) -> Fit | None:
    """Fit ActiveConn over ``samples`` (oldest first); None when there are too few to say anything.

    An exponential (least squares on log(active), as connections that end independently decay) is preferred
    when it fits well; otherwise a straight line (clients closing at a steady pace). The returned ``eta`` is
    None when the count is not falling."""
    if len(samples) < MIN_FIT_SAMPLES or samples[-1].time - samples[0].time < MIN_FIT_SPAN:
        return None
    last = samples[-1]
    if last.active == 0:
        return Fit("linear", 0.0, 0.0)
    t0 = samples[0].time
    xs = [s.time - t0 for s in samples]
    now = xs[-1]
    positive = [(x, math.log(s.active)) for x, s in zip(xs, samples, strict=True) if s.active > 0]
    candidates: list[tuple[float, Fit]] = []
    if len(positive) >= MIN_FIT_SAMPLES:
        log_fit = _least_squares([x for x, _ in positive], [y for _, y in positive])
        if log_fit is not None:
            a, b, r2 = log_fit
            if b < -MIN_DECAY_RATE and r2 >= MIN_EXPONENTIAL_R2:
                level_now = math.exp(a + b * now)
                eta = max(0.0, (math.log(max(level_now, EMPTY_LEVEL)) - math.log(EMPTY_LEVEL)) / -b)
                residual = sum((s.active - math.exp(a + b * x)) ** 2 for x, s in zip(xs, samples, strict=True))
                candidates.append((residual, Fit("exponential", -b * level_now, eta)))
    line = _least_squares(xs, [float(s.active) for s in samples])
    if line is not None:
        a, b, _ = line
        residual = sum((s.active - (a + b * x)) ** 2 for x, s in zip(xs, samples, strict=True))
        level_now = max(0.0, a + b * now)
        candidates.append((residual, Fit("linear", -b, level_now / -b if b < -MIN_DECAY_RATE else None)))
    if not candidates:
        return None
    return min(candidates, key=lambda c: c[0])[1]


class DrainWatch:
    """One draining real server: feed it samples, act on the notices it returns."""

    def __init__(self, plan: DrainPlan, started: float, *, window: float = WINDOW) -> None:
        self.plan = plan
        self.started = started
        self.window = window
        self.samples: deque[Sample] = deque()
        self.count = 0
        """Samples fed in all (the window keeps only the last ``window`` seconds of them)."""
        self.phase: Phase = "draining"
        self.ended_at: float | None = None
        self._last_progress: float | None = None
        self._reported: tuple[int, int, int] | None = None
        self._emptied = False
        self._fit: Fit | None = None
        self._fit_stale = False

    @property
    def ended(self) -> bool:
        """No more samples are wanted: the watch reached its end (empty, removed, timed out)."""
        return self.ended_at is not None

    @property
    def last(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    def fit(self) -> Fit | None:
        if self._fit_stale:
            self._fit = fit_decay(self.samples)
            self._fit_stale = False
        return self._fit

    def rate_hz(self) -> float | None:
        """Samples per second over the window (what the sampler achieves)."""
        if len(self.samples) < 2:
            return None
        span = self.samples[-1].time - self.samples[0].time
        return (len(self.samples) - 1) / span if span > 0 else None

    def feed(self, now: float, active: int, inactive: int, persist: int) -> list[Notice]:
        if self.ended:
            return []
        sample = Sample(now, active, inactive, persist)
        self.samples.append(sample)
        self.count += 1
        while self.samples and self.samples[0].time < now - self.window:
            self.samples.popleft()
        self._fit_stale = True
        out: list[Notice] = []
        counts = (active, inactive, persist)
        if counts != self._reported and (self._last_progress is None
                                         or now - self._last_progress >= PROGRESS_INTERVAL):
            self._last_progress = now
            self._reported = counts
            out.append(Progress(sample, self.fit()))
        elapsed = now - self.started
        if sample.empty:
            if not self._emptied:
                self._emptied = True
                out.append(Emptied(sample, elapsed))
            if self.plan.then_remove:
                return [*out, *self._end(now, "removed", Remove(sample, timed_out=False))]
            if self.plan.until_empty:
                return [*out, *self._end(now, "empty")]
            self.phase = "held"
            return out
        self._emptied = False
        self.phase = "draining"
        if self.plan.timeout is not None and elapsed >= self.plan.timeout:
            out.append(TimedOut(sample, elapsed, removing=self.plan.then_remove))
            if self.plan.then_remove:
                return [*out, *self._end(now, "removed", Remove(sample, timed_out=True))]
            return [*out, *self._end(now, "timed-out")]
        return out

    def gone(self, now: float) -> None:
        """The server left the table by other means (a reload's drain finished, a config change): ended."""
        if not self.ended:
            self._end(now, "removed")

    def _end(self, now: float, phase: Phase, *notices: Notice) -> list[Notice]:
        self.phase = phase
        self.ended_at = now
        return list(notices)

    def as_json(self) -> dict[str, Any]:
        last = self.last
        fit = self.fit()
        return {
            "phase": self.phase, "plan": self.plan.as_json(), "started": self.started, "ended": self.ended_at,
            "samples": self.count, "window_samples": len(self.samples), "sample_hz": self.rate_hz(),
            "active": None if last is None else last.active, "inactive": None if last is None else last.inactive,
            "persist": None if last is None else last.persist,
            "model": None if fit is None else fit.model, "rate": None if fit is None else fit.rate,
            "eta": None if fit is None else fit.eta,
            "active_series": self.active_series(),
        }

    def active_series(self) -> list[int]:
        """ActiveConn over the window, oldest first (a sparkline's data)."""
        return [s.active for s in self.samples]
