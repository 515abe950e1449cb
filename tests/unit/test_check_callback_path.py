"""The runner's task-free path (CallbackChecker: TCP_CHECK) and the connect waiter under it: a callback
check that never answers is timed out by the watchdog, stop() silences checks in flight, a raising
begin_check counts as a failed check, and an answered connect leaves the waiter's deadline wheel."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

from _checkutil import LIMIT, run

from lvsconsole.check._connect import TICK, waiter_for
from lvsconsole.check.policy import CheckOutcome, CheckParams, CheckPolicy, RealServerParams, VirtualServerParams
from lvsconsole.check.runner import CheckRecord, CheckRunner
from lvsconsole.check.tcp import TcpChecker


def policy(n: int, delay: float = 10.0) -> CheckPolicy:
    rss = tuple(
        RealServerParams(f"10.0.0.{i + 1}", 80, checkers=(CheckParams(delay_loop=delay, warmup=0),)) for i in range(n)
    )
    return CheckPolicy([VirtualServerParams("10.9.9.9", 80, real_servers=rss)], bootstrap_delay=0.0)


class Silent:
    """A callback checker that starts and never answers (a checker bug the watchdog must survive)."""

    timeout = 0.05

    def __init__(self) -> None:
        self.started = 0
        self.cancelled = 0

    def begin_check(
        self, loop: asyncio.AbstractEventLoop, done: Callable[[Any, CheckOutcome], object], token: Any
    ) -> Silent:
        self.started += 1
        return self

    def cancel(self) -> None:
        self.cancelled += 1

    async def check(self) -> CheckOutcome:
        raise AssertionError("the runner must use begin_check")


class Raising:
    timeout = 1.0

    def begin_check(
        self, loop: asyncio.AbstractEventLoop, done: Callable[[Any, CheckOutcome], object], token: Any
    ) -> None:
        raise OSError(24, "Too many open files")

    async def check(self) -> CheckOutcome:
        raise AssertionError("the runner must use begin_check")


def test_the_watchdog_times_out_a_callback_check_that_never_answers() -> None:
    pol = policy(1)
    (ref,) = pol.checker_refs()
    silent = Silent()

    async def main() -> CheckRecord:
        got: asyncio.Future[CheckRecord] = asyncio.get_running_loop().create_future()
        runner = CheckRunner(pol, {ref: silent}, lambda a: None, on_record=got.set_result)
        runner.start()
        try:
            async with asyncio.timeout(LIMIT):
                return await got
        finally:
            await runner.stop()

    rec = run(main())
    assert not rec.outcome.ok and rec.outcome.timed_out
    assert rec.outcome.detail == "Check on service {rs} timed out after 0.05s."
    assert 0.5 <= rec.duration < 1.5  # timeout + TIMEOUT_GRACE, at the watchdog's granularity
    assert silent.cancelled == 1


def test_stop_cancels_callback_checks_in_flight_and_hears_nothing_after() -> None:
    pol = policy(3)
    checkers = {ref: Silent() for ref in pol.checker_refs()}
    records: list[CheckRecord] = []

    async def main() -> int:
        runner = CheckRunner(pol, checkers, lambda a: None, on_record=records.append)
        runner.start()
        async with asyncio.timeout(LIMIT):
            while runner.stats.in_flight < 3:
                await asyncio.sleep(0.01)
        await runner.stop()
        return runner.stats.in_flight

    assert run(main()) == 0
    assert [c.cancelled for c in checkers.values()] == [1, 1, 1]
    assert records == []


def test_a_raising_begin_check_is_a_failed_check_not_a_dead_runner() -> None:
    pol = policy(1)
    (ref,) = pol.checker_refs()

    async def main() -> tuple[CheckRecord, int]:
        got: asyncio.Future[CheckRecord] = asyncio.get_running_loop().create_future()
        runner = CheckRunner(pol, {ref: Raising()}, lambda a: None, on_record=got.set_result)
        runner.start()
        try:
            async with asyncio.timeout(LIMIT):
                return await got, runner.stats.errors
        finally:
            await runner.stop()

    rec, errors = run(main())
    assert not rec.outcome.ok and rec.outcome.reason == "OSError" and errors == 1
    assert "Too many open files" in rec.outcome.detail


def test_the_waiter_keeps_no_timer_once_every_connect_answered_and_times_out_on_its_deadline() -> None:
    async def main() -> tuple[int, int, list[CheckOutcome], float]:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            outcomes = await asyncio.gather(*(TcpChecker("127.0.0.1", port, 5.0).check() for _ in range(50)))
        assert all(o.ok for o in outcomes)
        waiter = waiter_for(asyncio.get_running_loop())
        assert waiter is not None
        armed, watching = waiter.deadline_slots, waiter.watching
        # A listener whose accept queue is full drops SYNs: those connects can only time out.
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(0)
        full = lsock.getsockname()[1]
        fillers = []
        try:
            for _ in range(4):
                f = socket.socket()
                f.setblocking(False)
                f.connect_ex(("127.0.0.1", full))
                fillers.append(f)
            loop = asyncio.get_running_loop()
            began = loop.time()
            timed = await asyncio.gather(*(TcpChecker("127.0.0.1", full, 0.2).check() for _ in range(5)))
            took = loop.time() - began
        finally:
            for f in fillers:
                f.close()
            lsock.close()
        return armed, watching, list(timed), took

    armed, watching, timed, took = run(main())
    assert armed == 0 and watching == 0  # every answered connect left the deadline wheel
    assert any(o.timed_out is False and o.reason == "timeout" for o in timed)
    assert 0.2 <= took < 0.2 + TICK + 0.3  # not before the deadline, and not long after it
