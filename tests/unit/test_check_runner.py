"""The runner's scheduling: phase kept for quick checks, keepalived's rule for slow ones, the
concurrency bound, and the watchdog for checks that ignore their own timeout."""

from __future__ import annotations

import asyncio
import itertools

from _checkutil import run

from lvsconsole.check.policy import CheckOutcome, CheckParams, CheckPolicy, RealServerParams, VirtualServerParams
from lvsconsole.check.runner import CheckRecord, CheckRunner


def policy(n: int, delay: float = 0.05) -> CheckPolicy:
    rss = tuple(
        RealServerParams(f"10.0.{i // 250}.{i % 250 + 1}", 80, checkers=(CheckParams(delay_loop=delay, warmup=0),))
        for i in range(n)
    )
    return CheckPolicy([VirtualServerParams("10.9.9.9", 80, real_servers=rss)], bootstrap_delay=0.0)


class Scripted:
    """A checker that takes ``duration`` seconds (on the loop's clock) and succeeds."""

    def __init__(self, duration: float = 0.0, timeout: float = 1.0) -> None:
        self.duration = duration
        self.timeout = timeout

    async def check(self) -> CheckOutcome:
        if self.duration:
            await asyncio.sleep(self.duration)  # the check's own work, simulated
        return CheckOutcome(True)


async def collect(pol: CheckPolicy, checkers: dict, count: int, **kw: object) -> list[CheckRecord]:  # type: ignore[type-arg]
    records: list[CheckRecord] = []
    enough = asyncio.Event()

    def on_record(rec: CheckRecord) -> None:
        records.append(rec)
        if len(records) >= count:
            enough.set()

    runner = CheckRunner(pol, checkers, lambda a: None, on_record=on_record, **kw)  # type: ignore[arg-type]
    runner.start()
    async with asyncio.timeout(10):
        await enough.wait()
    await runner.stop()
    return records


def test_quick_checks_keep_their_phase() -> None:
    pol = policy(1, delay=0.05)
    (ref,) = pol.checker_refs()
    records = run(collect(pol, {ref: Scripted(0.002)}, 6))
    due = [r.scheduled for r in records]
    gaps = [b - a for a, b in itertools.pairwise(due)]
    assert all(abs(g - 0.05) < 1e-9 for g in gaps), gaps  # due times stay on the 50 ms grid


def test_slow_checks_are_rescheduled_from_their_completion() -> None:
    pol = policy(1, delay=0.05)
    (ref,) = pol.checker_refs()
    records = run(collect(pol, {ref: Scripted(0.15)}, 3), limit=20)
    for prev, nxt in itertools.pairwise(records):
        assert abs(nxt.scheduled - (prev.finished + 0.05)) < 1e-9


def test_concurrency_bound() -> None:
    pol = policy(40, delay=10.0)
    in_flight = 0
    peak = 0

    class Counting:
        timeout = 1.0

        async def check(self) -> CheckOutcome:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)  # hold the slot for a while
            in_flight -= 1
            return CheckOutcome(True)

    checkers = {ref: Counting() for ref in pol.checker_refs()}
    records = run(collect(pol, checkers, 40, max_concurrency=5))
    assert len(records) == 40 and peak == 5


def test_watchdog_cancels_a_checker_that_ignores_its_timeout() -> None:
    pol = policy(1, delay=10.0)
    (ref,) = pol.checker_refs()

    class Stuck:
        timeout = 0.05

        async def check(self) -> CheckOutcome:
            await asyncio.Event().wait()  # never set: the runner must give up on it
            return CheckOutcome(True)

    (rec,) = run(collect(pol, {ref: Stuck()}, 1))
    assert not rec.outcome.ok and rec.outcome.timed_out
    assert rec.outcome.detail == "Check on service {rs} timed out after 0.05s."
    assert 0.5 <= rec.duration < 1.5  # timeout + TIMEOUT_GRACE, at the watchdog's granularity
