"""TCP_CHECK against real sockets on 127.0.0.1, and the runner driving it.

Synchronisation is by awaiting events and queues (each bounded by a timeout), never by sleeping.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import pytest

from lvsconsole.check.policy import (
    Action,
    CheckerRef,
    CheckOutcome,
    CheckParams,
    CheckPolicy,
    DestDown,
    DestUp,
    LogEvent,
    RealServerParams,
    VirtualServerParams,
)
from lvsconsole.check.runner import CheckRecord, CheckRunner
from lvsconsole.check.tcp import TcpChecker

T = TypeVar("T")
LIMIT = 10.0  # seconds any single await may take before the test fails


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def closed_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


async def noop_handler(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    w.close()


# ---- the checker alone ------------------------------------------------------------------------


def test_tcp_check_success_against_a_listener() -> None:
    async def main() -> CheckOutcome:
        server = await asyncio.start_server(noop_handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await TcpChecker("127.0.0.1", port, connect_timeout=2.0).check()

    out = run(main())
    assert out.ok and out.detail == "TCP connection to {rs} success."


def test_tcp_check_failure_on_a_closed_port() -> None:
    out = run(TcpChecker("127.0.0.1", closed_port(), connect_timeout=2.0).check())
    assert not out.ok
    assert out.detail == "TCP connection to {rs} failed."
    assert out.reason == "connection refused"


def test_tcp_check_binds_source_address_and_port() -> None:
    async def main() -> tuple[CheckOutcome, tuple[str, int], int]:
        peers: asyncio.Queue[tuple[str, int]] = asyncio.Queue()

        async def handler(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            peers.put_nowait(w.get_extra_info("peername"))
            w.close()

        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        src_port = closed_port()
        async with server:
            out = await TcpChecker("127.0.0.1", port, 2.0, bind_to="127.0.0.1", bind_port=src_port).check()
            async with asyncio.timeout(LIMIT):
                peer = await peers.get()
        return out, peer, src_port

    out, peer, src_port = run(main())
    assert out.ok
    assert peer == ("127.0.0.1", src_port)


def test_tcp_check_times_out_when_the_handshake_never_completes() -> None:
    # A listener with a full accept queue drops further SYNs, so the next connect hangs.
    async def main() -> CheckOutcome | None:
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(0)
        port = lsock.getsockname()[1]
        fillers = []
        try:
            for _ in range(4):
                f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                f.setblocking(False)
                f.connect_ex(("127.0.0.1", port))
                fillers.append(f)
            out = await TcpChecker("127.0.0.1", port, connect_timeout=0.3).check()
        finally:
            for f in fillers:
                f.close()
            lsock.close()
        return out

    out = run(main())
    assert out is not None
    if out.ok:
        pytest.skip("this kernel completed the handshake despite a full accept queue")
    assert out.detail == "TCP connection to {rs} timedout."
    assert out.reason == "timeout"


# ---- through the runner ---------------------------------------------------------------------------


VIP = "127.0.0.2"


def fast(**kw: Any) -> CheckParams:
    base: dict[str, Any] = {
        "delay_loop": 0.05,
        "retry": 1,
        "delay_before_retry": 0.02,
        "warmup": 0.0,
        "connect_timeout": 1.0,
    }
    base.update(kw)
    return CheckParams(**base)


class Events:
    """Collects every action; lets a test await the first action matching a predicate."""

    def __init__(self) -> None:
        self.seen: list[Action] = []
        self._changed = asyncio.Event()

    def __call__(self, actions: Sequence[Action]) -> None:
        self.seen.extend(actions)
        self._changed.set()

    async def wait_for(self, pred: Callable[[Action], bool], start: int = 0) -> int:
        """Index of the first matching action at or after ``start``."""
        async with asyncio.timeout(LIMIT):
            while True:
                i = next((i for i in range(start, len(self.seen)) if pred(self.seen[i])), None)
                if i is not None:
                    return i
                self._changed.clear()
                await self._changed.wait()

    def messages(self) -> list[str]:
        return [a.message for a in self.seen if isinstance(a, LogEvent) and a.level != "debug"]


def make_runner(vs: VirtualServerParams, events: Events, **kw: Any) -> tuple[CheckPolicy, CheckRunner]:
    policy = CheckPolicy([vs], rng=random.Random(3), bootstrap_delay=0.0)
    checkers = {}
    for rsp in vs.real_servers:
        for i, cp in enumerate(rsp.checkers):
            checkers[CheckerRef(vs.ref(rsp), i)] = TcpChecker(rsp.address, rsp.port, cp.connect_timeout)
    return policy, CheckRunner(policy, checkers, events, **kw)


def test_runner_tracks_a_server_going_down_and_up() -> None:
    async def main() -> None:
        server = await asyncio.start_server(noop_handler, "127.0.0.1", 0, reuse_address=True)
        port = server.sockets[0].getsockname()[1]
        rsp = RealServerParams("127.0.0.1", port, checkers=(fast(),))
        vs = VirtualServerParams(address=VIP, port=port, real_servers=(rsp,))
        rs_key, vs_key = f"[127.0.0.1]:tcp:{port}", f"[{VIP}]:tcp:{port}"
        events = Events()
        records: list[CheckRecord] = []
        policy, runner = make_runner(vs, events, on_record=records.append)
        async with runner:
            await events.wait_for(lambda a: isinstance(a, LogEvent) and a.message.endswith("success."))
            assert events.seen.count(DestUp(vs_key, rs_key, "127.0.0.1", port, 1)) == 1  # from start()

            server.close()
            await server.wait_closed()
            down_at = await events.wait_for(lambda a: isinstance(a, DestDown))
            assert events.seen[down_at] == DestDown(vs_key, rs_key, "127.0.0.1", port, None)
            msgs = events.messages()
            i = msgs.index(f"TCP_CHECK on service {rs_key} failed after 1 retries.")
            assert msgs[i + 1] == f"Removing service {rs_key} from VS {vs_key}"
            assert not policy.is_alive(vs.ref(rsp))

            server = await asyncio.start_server(noop_handler, "127.0.0.1", port, reuse_address=True)
            up_at = await events.wait_for(lambda a: isinstance(a, DestUp), start=down_at)
            assert events.seen[up_at] == DestUp(vs_key, rs_key, "127.0.0.1", port, 1)
            assert f"Adding service {rs_key} to VS {vs_key}" in events.messages()
        server.close()
        await server.wait_closed()
        assert runner.stats.checks == len(records) >= 4
        assert all(r.lateness >= 0 and r.duration >= 0 for r in records)

    run(main())


def test_runner_marks_a_closed_port_down_on_the_first_failure() -> None:
    async def main() -> None:
        port = closed_port()
        rsp = RealServerParams("127.0.0.1", port, checkers=(fast(retry=3),))
        other = RealServerParams("127.0.0.3", port, checkers=())  # no checker: always alive
        vs = VirtualServerParams(address=VIP, port=port, real_servers=(rsp, other))
        events = Events()
        _, runner = make_runner(vs, events)
        async with runner:
            i = await events.wait_for(lambda a: isinstance(a, DestDown))
        rs_key = f"[127.0.0.1]:tcp:{port}"
        assert events.seen[i] == DestDown(f"[{VIP}]:tcp:{port}", rs_key, "127.0.0.1", port, None)
        assert f"TCP_CHECK on service {rs_key} failed." in events.messages()
        debug = [a.message for a in events.seen if isinstance(a, LogEvent) and a.level == "debug"]
        assert f"TCP connection to {rs_key} failed." in debug

    run(main())


# ---- runner mechanics with scripted checkers -------------------------------------------------------


class Gate:
    """A checker that reports when it starts and finishes only when released."""

    def __init__(self, started: asyncio.Queue[Gate], result: bool = True, timeout: float = 5.0) -> None:
        self.started = started
        self.release = asyncio.Event()
        self.result = result
        self._timeout = timeout

    @property
    def timeout(self) -> float:
        return self._timeout

    async def check(self) -> CheckOutcome:
        self.started.put_nowait(self)
        await self.release.wait()
        return CheckOutcome(self.result)


def gate_setup(n: int, started: asyncio.Queue[Gate], **kw: Any) -> tuple[VirtualServerParams, dict[CheckerRef, Gate]]:
    servers = tuple(RealServerParams(f"10.0.0.{i}", 80, checkers=(fast(delay_loop=60.0),)) for i in range(n))
    vs = VirtualServerParams(address="10.0.1.1", port=80, real_servers=servers)
    gates = {CheckerRef(vs.ref(r), 0): Gate(started, **kw) for r in servers}
    return vs, gates


async def settle(rounds: int = 50) -> None:
    for _ in range(rounds):  # let the loop run every ready callback; no wall-clock wait
        await asyncio.sleep(0)


def test_runner_bounds_concurrency_and_measures_lateness() -> None:
    async def main() -> None:
        started: asyncio.Queue[Gate] = asyncio.Queue()
        vs, gates = gate_setup(5, started)
        policy = CheckPolicy([vs], bootstrap_delay=0.0)
        records: list[CheckRecord] = []
        done = asyncio.Event()

        def on_record(r: CheckRecord) -> None:
            records.append(r)
            if len(records) == 5:
                done.set()

        runner = CheckRunner(policy, gates, lambda _a: None, max_concurrency=2, on_record=on_record)
        async with runner:
            async with asyncio.timeout(LIMIT):
                first = [await started.get(), await started.get()]
            await settle()
            assert started.empty() and runner.stats.in_flight == 2  # the other three wait for a slot
            for g in first:
                g.release.set()
            for g in gates.values():
                g.release.set()
            async with asyncio.timeout(LIMIT):
                await done.wait()
        late = sorted(r.lateness for r in records)
        assert late[-1] > 0.0  # the queued checks started late, and that was measured
        assert runner.stats.max_lateness == late[-1]
        assert {r.ref for r in records} == set(gates)

    run(main())


def test_runner_times_out_a_hung_checker_and_survives_a_raising_one() -> None:
    class Boom:
        timeout = 1.0

        async def check(self) -> CheckOutcome:
            raise RuntimeError("kaput")

    async def main() -> list[Action]:
        started: asyncio.Queue[Gate] = asyncio.Queue()
        vs, gates = gate_setup(2, started, timeout=0.05)
        refs = list(gates)
        checkers: dict[CheckerRef, Any] = {refs[0]: gates[refs[0]], refs[1]: Boom()}
        events = Events()
        policy = CheckPolicy([vs], bootstrap_delay=0.0)
        async with CheckRunner(policy, checkers, events) as runner:
            await events.wait_for(lambda a: isinstance(a, DestDown) and a.rs == refs[0].rs.rs)
            await events.wait_for(lambda a: isinstance(a, DestDown) and a.rs == refs[1].rs.rs)
        assert runner.stats.errors >= 1
        return events.seen

    seen = run(main())
    debug = [a.message for a in seen if isinstance(a, LogEvent) and a.level == "debug"]
    assert "Check on service [10.0.0.0]:tcp:80 timed out after 0.05s." in debug
    assert "Check on service [10.0.0.1]:tcp:80 raised RuntimeError: kaput" in debug


def test_runner_stop_with_shutdown_delivers_removals() -> None:
    async def main() -> list[Action]:
        started: asyncio.Queue[Gate] = asyncio.Queue()
        vs, gates = gate_setup(1, started)
        events = Events()
        runner = CheckRunner(CheckPolicy([vs], bootstrap_delay=0.0), gates, events)
        runner.start()
        async with asyncio.timeout(LIMIT):
            await started.get()  # a check is in flight; stop must cancel it
        await runner.stop(shutdown=True)
        return events.seen

    seen = run(main())
    assert DestDown("[10.0.1.1]:tcp:80", "[10.0.0.0]:tcp:80", "10.0.0.0", 80, None) in seen
