"""The drain watch core: decay fits on synthetic drains, phases and notices on a virtual clock."""

from __future__ import annotations

import math
import random

import pytest

from lvsconsole.engine.drainwatch import (
    DrainPlan,
    DrainWatch,
    Emptied,
    Progress,
    Remove,
    Sample,
    TimedOut,
    fit_decay,
)

HZ = 5.0


def samples(counts: list[int], hz: float = HZ, start: float = 100.0) -> list[Sample]:
    return [Sample(start + i / hz, c, 0, 0) for i, c in enumerate(counts)]


def test_exponential_decay_is_fitted_as_one_with_the_right_eta() -> None:
    tau = 4.0
    counts = [round(200 * math.exp(-(i / HZ) / tau)) for i in range(25)]  # 5 s of it
    fit = fit_decay(samples(counts))
    assert fit is not None and fit.eta is not None
    assert fit.model == "exponential"
    # from ~57 connections at tau 4 s, half a connection is tau * ln(57 / 0.5) ≈ 19 s away
    expected = tau * math.log(counts[-1] / 0.5)
    assert expected * 0.8 < fit.eta < expected * 1.2
    assert fit.rate > 0


def test_linear_decay_is_fitted_as_a_line() -> None:
    counts = [100 - 2 * i for i in range(30)]  # 10 per second, 6 s
    fit = fit_decay(samples(counts))
    assert fit is not None and fit.eta is not None
    assert fit.model == "linear"
    assert fit.rate == pytest.approx(10.0, rel=0.01)
    assert fit.eta == pytest.approx(counts[-1] / 10.0, rel=0.05)


def test_a_stuck_count_has_no_eta() -> None:
    fit = fit_decay(samples([37] * 40))
    assert fit is not None
    assert fit.eta is None


def test_a_rising_count_has_no_eta() -> None:
    fit = fit_decay(samples([10 + i for i in range(20)]))
    assert fit is not None
    assert fit.eta is None


def test_a_noisy_exponential_still_gets_a_finite_plausible_eta() -> None:
    rng = random.Random(7)
    tau = 5.0
    counts = [max(0, round(300 * math.exp(-(i / HZ) / tau) + rng.gauss(0, 4))) for i in range(40)]
    fit = fit_decay(samples(counts))
    assert fit is not None and fit.eta is not None
    expected = tau * math.log(max(counts[-1], 1) / 0.5)
    assert expected * 0.5 < fit.eta < expected * 2.0


def test_too_few_samples_say_nothing() -> None:
    assert fit_decay(samples([10, 9])) is None


def test_zero_active_means_eta_zero() -> None:
    fit = fit_decay(samples([3, 2, 1, 0, 0]))
    assert fit is not None and fit.eta == 0.0


def test_until_empty_then_remove_ends_removed_when_active_and_inactive_reach_zero() -> None:
    watch = DrainWatch(DrainPlan(until_empty=True, then_remove=True), started=0.0)
    notices = []
    t = 0.0
    for active, inactive in [(5, 1), (3, 1), (1, 1), (0, 1), (0, 0)]:
        t += 0.2
        notices += watch.feed(t, active, inactive, 2)
    assert watch.phase == "removed" and watch.ended
    assert [type(n) for n in notices if not isinstance(n, Progress)] == [Emptied, Remove]
    removal = next(n for n in notices if isinstance(n, Remove))
    assert not removal.timed_out and removal.sample.persist == 2
    assert watch.feed(t + 0.2, 0, 0, 0) == []  # ended: nothing more


def test_until_empty_without_remove_ends_empty() -> None:
    watch = DrainWatch(DrainPlan(until_empty=True), started=0.0)
    watch.feed(0.2, 1, 0, 0)
    notices = watch.feed(0.4, 0, 0, 0)
    assert any(isinstance(n, Emptied) for n in notices)
    assert not any(isinstance(n, Remove) for n in notices)
    assert watch.phase == "empty" and watch.ended


def test_a_plain_watch_holds_at_zero_and_goes_back_to_draining_when_clients_return() -> None:
    watch = DrainWatch(DrainPlan(), started=0.0)
    watch.feed(0.2, 2, 0, 0)
    first = watch.feed(0.4, 0, 0, 0)
    assert watch.phase == "held" and not watch.ended
    assert any(isinstance(n, Emptied) for n in first)
    watch.feed(0.6, 1, 0, 1)
    assert watch.as_json()["phase"] == "draining"


def test_timeout_without_remove_reports_and_holds() -> None:
    watch = DrainWatch(DrainPlan(timeout=1.0), started=0.0)
    notices = []
    for i in range(1, 8):
        notices += watch.feed(i * 0.2, 10, 0, 0)
    timed = [n for n in notices if isinstance(n, TimedOut)]
    assert len(timed) == 1 and not timed[0].removing
    assert not any(isinstance(n, Remove) for n in notices)
    assert watch.phase == "timed-out" and watch.ended


def test_timeout_with_remove_removes() -> None:
    watch = DrainWatch(DrainPlan(until_empty=True, timeout=1.0, then_remove=True), started=0.0)
    notices = []
    for i in range(1, 8):
        notices += watch.feed(i * 0.2, 10, 0, 0)
    removal = [n for n in notices if isinstance(n, Remove)]
    assert len(removal) == 1 and removal[0].timed_out
    assert watch.phase == "removed"


def test_progress_is_at_most_once_a_second() -> None:
    watch = DrainWatch(DrainPlan(), started=0.0)
    progress = 0
    for i in range(1, 51):  # 10 s at 5 Hz
        progress += sum(isinstance(n, Progress) for n in watch.feed(i * 0.2, 100 - i, 0, 0))
    assert 9 <= progress <= 11


def test_progress_is_quiet_while_the_counts_stand_still() -> None:
    watch = DrainWatch(DrainPlan(), started=0.0)
    progress = [n for i in range(1, 51) for n in watch.feed(i * 0.2, 0, 0, 0) if isinstance(n, Progress)]
    assert len(progress) == 1  # the first sample only: held at 0 for 10 s says nothing new
    assert watch.phase == "held"


def test_window_keeps_the_last_minute_and_counts_all() -> None:
    watch = DrainWatch(DrainPlan(), started=0.0, window=10.0)
    for i in range(1, 101):  # 20 s at 5 Hz
        watch.feed(i * 0.2, 500 - i, 0, 0)
    assert watch.count == 100
    assert len(watch.samples) <= 51
    assert watch.rate_hz() == pytest.approx(5.0, rel=0.01)
    data = watch.as_json()
    assert data["phase"] == "draining" and data["eta"] is not None and data["samples"] == 100


def test_gone_ends_a_watch_as_removed() -> None:
    watch = DrainWatch(DrainPlan(), started=0.0)
    watch.feed(0.2, 3, 0, 0)
    watch.gone(0.4)
    assert watch.phase == "removed" and watch.ended
