"""Timer health: the lag estimator and the alarm with virtual times, then the real monitor in a director
whose loop is blocked on purpose."""

from __future__ import annotations

import asyncio
import time
from ipaddress import IPv4Address

import pytest

from lvsconsole.config.build import load_text
from lvsconsole.engine.bus import EventBus
from lvsconsole.engine.director import Director
from lvsconsole.engine.events import LoopLagWarning, event_from_json, event_to_json
from lvsconsole.engine.looplag import (
    LagAlarm,
    LagEstimator,
    LagExceeded,
    LagRecovered,
    Margin,
    smallest_margin,
)
from lvsconsole.ipvs.memory import MemoryBackend
from lvsconsole.vrrp.machine import Params, VrrpMachine

# ---------------------------------------------------------------------------------------------- estimator


def test_lag_is_how_late_the_wakeup_came_and_never_negative() -> None:
    est = LagEstimator()
    assert est.add(10.0, 10.004) == pytest.approx(0.004)
    assert est.add(10.1, 10.099) == 0.0  # an early wake-up is no lag
    assert est.current == 0.0


def test_figures_cover_the_window_only() -> None:
    est = LagEstimator(window=60.0)
    est.add(0.0, 0.5)  # a 500 ms stall at t=0.5
    for i in range(1, 100):
        t = 1.0 + i * 0.1
        est.add(t, t + 0.002)
    fig = est.figures()
    assert fig.max == pytest.approx(0.5) and fig.current == pytest.approx(0.002) and fig.samples == 100
    # 61 s later the stall has left the window
    est.add(62.0, 62.001)
    fig = est.figures()
    assert fig.max == pytest.approx(0.002)
    assert fig.samples < 100


def test_p99_is_the_nearest_rank_percentile() -> None:
    est = LagEstimator()
    for i in range(200):  # 198 samples of 1 ms, two of 300 ms: p99 (rank 198) is 1 ms, max 300 ms
        lag = 0.3 if i in (50, 150) else 0.001
        est.add(i * 0.1, i * 0.1 + lag)
    fig = est.figures()
    assert fig.p99 == pytest.approx(0.001)
    assert fig.max == pytest.approx(0.3)
    est.add(20.0, 20.3)  # a third one: 3 of 201 is over 1 %, so p99 is now a stall
    assert est.figures().p99 == pytest.approx(0.3)


def test_empty_estimator_reports_zeros() -> None:
    fig = LagEstimator().figures()
    assert (fig.current, fig.p99, fig.max, fig.samples) == (0.0, 0.0, 0.0, 0)


# ---------------------------------------------------------------------------------------------- threshold


def machine(priority: int, *, version: int = 2, advert_int: float = 1.0) -> VrrpMachine:
    return VrrpMachine(Params(name=f"VI_{priority}", vrid=1, priority=priority, version=version,
                              advert_int=advert_int, addresses=(IPv4Address("192.0.2.1"),)), 0.0)


def test_margin_is_half_the_skew_time_v2_and_v3() -> None:
    v2 = machine(200)
    assert Margin("a", v2.skew_time).limit == pytest.approx((256 - 200) / 256 / 2)
    v3 = machine(100, version=3, advert_int=0.5)
    assert Margin("b", v3.skew_time).limit == pytest.approx((256 - 100) * 0.5 / 256 / 2)


def test_smallest_margin_picks_the_most_exposed_instance() -> None:
    margins = [Margin(m.name, m.skew_time) for m in (machine(100), machine(250), machine(150, version=3,
                                                                                              advert_int=2.0))]
    worst = smallest_margin(margins)
    assert worst is not None and worst.instance == "VI_250"
    assert smallest_margin([]) is None


def test_alarm_warns_once_per_episode_then_recovers_after_a_quiet_period() -> None:
    alarm = LagAlarm(quiet=5.0)
    margin = Margin("VI_1", 0.2)  # limit 100 ms
    assert alarm.observe(0.05, margin, 1.0) == []
    assert alarm.observe(0.1, margin, 1.1) == []  # at the limit is not over it
    first = alarm.observe(0.3, margin, 1.2)
    assert first == [LagExceeded("VI_1", 0.3, 0.1, 0.2)]
    assert alarm.in_episode
    # more stalls within the episode: no more warnings
    assert alarm.observe(0.5, margin, 2.0) == []
    assert alarm.observe(0.01, margin, 3.0) == []
    assert alarm.observe(0.2, margin, 4.0) == []
    assert alarm.observe(0.01, margin, 8.9) == []  # 4.9 s quiet: still the same episode
    recovered = alarm.observe(0.01, margin, 9.0)
    assert recovered == [LagRecovered("VI_1", 0.5, 0.1, pytest.approx(2.8))]
    assert not alarm.in_episode
    assert alarm.observe(0.01, margin, 20.0) == []
    # a new episode warns again
    assert alarm.observe(0.4, margin, 21.0) == [LagExceeded("VI_1", 0.4, 0.1, 0.2)]


def test_alarm_is_silent_without_instances_and_recovers_when_they_go() -> None:
    alarm = LagAlarm(quiet=1.0)
    assert alarm.observe(5.0, None, 0.0) == []
    assert alarm.observe(0.3, Margin("VI_1", 0.2), 1.0) != []
    assert alarm.observe(5.0, None, 1.5) == []  # instance gone: a stall is no longer a risk
    assert [type(n) for n in alarm.observe(5.0, None, 2.0)] == [LagRecovered]


def test_loop_lag_warning_round_trips_and_reads_well() -> None:
    warn = LoopLagWarning(instance="VI_1", lag_ms=300.0, limit_ms=109.4, skew_ms=218.8)
    assert warn.severity == "warning"
    assert "300 ms exceeds 109 ms" in warn.text() and "(VI_1)" in warn.text()
    assert event_from_json(event_to_json(warn)) == warn
    ok = LoopLagWarning(instance="VI_1", lag_ms=300.0, limit_ms=109.4, recovered=True, lasted=1.25)
    assert ok.severity == "notice" and "back under 109 ms" in ok.text() and "1.2 s" in ok.text()


# ---------------------------------------------------------------------------------------------- the real monitor

# priority 200: Skew_Time 56/256 s = 219 ms, so the limit is 109 ms and a 300 ms stall is over it
CONFIG = """
vrrp_instance VI_LAG {
    interface lo
    virtual_router_id 77
    priority 200
    advert_int 1
    virtual_ipaddress {
        192.0.2.77/32
    }
}
"""


def test_a_blocked_loop_publishes_a_warning_naming_the_instance_then_recovers() -> None:
    async def scenario() -> None:
        result = load_text(CONFIG)
        assert result.ok, result.diagnostics
        bus = EventBus()
        director = Director(result.config, backend=MemoryBackend(), bus=bus, dry_run=True, run_checks=False)
        director.loop_lag.alarm.quiet = 0.3
        subscription = bus.subscribe(kinds=[LoopLagWarning])
        await director.start()
        try:
            stats = director.snapshot().stats
            assert stats["loop_lag_instance"] == "VI_LAG"
            assert stats["loop_lag_limit_ms"] == pytest.approx(56 / 256 / 2 * 1000, abs=0.1)
            await asyncio.sleep(0.25)  # let the monitor take a few samples first
            asyncio.get_running_loop().call_soon(time.sleep, 0.3)
            warning = await asyncio.wait_for(subscription.get(), 5.0)
            assert isinstance(warning, LoopLagWarning) and not warning.recovered
            assert warning.instance == "VI_LAG"
            # the monitor wakes every 100 ms, so a 300 ms block shows as 200–300 ms of lag
            assert warning.lag_ms >= 190 and warning.limit_ms == pytest.approx(109.4, abs=0.1)
            stats = director.snapshot().stats
            assert stats["loop_lag_max_ms"] >= 190
            assert stats["loop_lag_p99_ms"] >= 0
            recovered = await asyncio.wait_for(subscription.get(), 5.0)
            assert isinstance(recovered, LoopLagWarning) and recovered.recovered
            assert recovered.instance == "VI_LAG" and recovered.lag_ms >= 190
        finally:
            await director.stop()

    asyncio.run(asyncio.wait_for(scenario(), 20.0))
