"""The shared connect waiter under TCP_CHECK: many checks at once, mixed outcomes, no fd leaks."""

from __future__ import annotations

import asyncio
import gc
import os
import socket

from _checkutil import free_port, run

from lvsconsole.check.policy import CheckOutcome
from lvsconsole.check.tcp import TcpChecker


def test_many_concurrent_checks_get_their_own_outcomes() -> None:
    async def main() -> tuple[list[CheckOutcome], list[bool]]:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        open_port = server.sockets[0].getsockname()[1]
        closed_port = free_port()
        expect = [i % 3 != 0 for i in range(300)]
        checkers = [TcpChecker("127.0.0.1", open_port if up else closed_port, 2.0) for up in expect]
        async with server:
            outcomes = await asyncio.gather(*(c.check() for c in checkers))
        return list(outcomes), expect

    outcomes, expect = run(main())
    assert [o.ok for o in outcomes] == expect
    assert all(o.reason == "connection refused" for o, up in zip(outcomes, expect, strict=True) if not up)


def test_timeouts_through_the_waiter() -> None:
    # A listener whose accept queue is full drops SYNs, so these connects can only time out.
    async def main() -> list[CheckOutcome]:
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(0)
        port = lsock.getsockname()[1]
        fillers = []
        try:
            for _ in range(4):
                f = socket.socket()
                f.setblocking(False)
                f.connect_ex(("127.0.0.1", port))
                fillers.append(f)
            return list(await asyncio.gather(*(TcpChecker("127.0.0.1", port, 0.2).check() for _ in range(5))))
        finally:
            for f in fillers:
                f.close()
            lsock.close()

    outcomes = run(main())
    timed_out = [o for o in outcomes if not o.ok]
    assert all(o.detail == "TCP connection to {rs} timedout." for o in timed_out)
    assert timed_out, "the kernel completed every handshake despite a full accept queue"


def test_no_descriptor_leak_across_event_loops() -> None:
    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    port = free_port()
    run(TcpChecker("127.0.0.1", port, 1.0).check())  # warm up imports and the first loop
    gc.collect()
    before = fds()
    for _ in range(10):
        run(TcpChecker("127.0.0.1", port, 1.0).check())
    gc.collect()
    assert fds() <= before + 1
