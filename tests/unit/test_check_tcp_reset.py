"""TCP_CHECK ends its connections with a reset and reuses its sockets: the real server still accepts a
complete connection for every check (and reads a reset from it), the director keeps no TIME_WAIT
socket, a socket reused after a refused check still tells up from down, and a check with a source
binding is reset and closed rather than reused. Then the stall detector's budget for recovery notices."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from _checkutil import LIMIT, free_port, run

from lvsconsole.check._connect import SPARE_SOCKETS, waiter_for
from lvsconsole.check.stall import StallDetector
from lvsconsole.check.tcp import TcpChecker

_TIME_WAIT = "06"


def time_wait_sockets(port: int) -> int:
    """TIME_WAIT sockets on loopback whose local or remote port is ``port`` (from /proc/net/tcp and tcp6)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            if state == _TIME_WAIT and port in (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16)):
                count += 1
    return count


class ResetCountingServer:
    """A real listener that accepts every connection and reads from it: a reset is counted as such, an
    orderly close (FIN) as ``closed``."""

    def __init__(self, host: str) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        self.peers: list[int] = []
        self.resets = 0
        self.closed = 0

    async def take(self, count: int) -> None:
        """Accept ``count`` connections and read each one to its end."""
        loop = asyncio.get_running_loop()
        for _ in range(count):
            conn, peer = await asyncio.wait_for(loop.sock_accept(self.sock), LIMIT)
            self.peers.append(peer[1])
            with conn:
                try:
                    data = await asyncio.wait_for(loop.sock_recv(conn, 16), LIMIT)
                except ConnectionResetError:
                    self.resets += 1
                else:
                    assert data == b"", "a TCP_CHECK sends nothing"
                    self.closed += 1

    def close(self) -> None:
        self.sock.close()


def checks_against(host: str, bind_to: str | None, count: int) -> tuple[ResetCountingServer, list[bool], int, int]:
    async def main() -> tuple[ResetCountingServer, list[bool], int, int]:
        server = ResetCountingServer(host)
        try:
            checker = TcpChecker(host, server.port, 2.0, bind_to=bind_to)
            oks = []
            for _ in range(count):  # one after the other: each check can reuse the previous one's socket
                oks.append((await checker.check()).ok)
            await server.take(count)
            waiter = waiter_for(asyncio.get_running_loop())
            assert waiter is not None
            return server, oks, waiter.spare_sockets, time_wait_sockets(server.port)
        finally:
            server.close()

    return run(main())


def test_every_check_is_a_complete_connection_ended_by_a_reset_on_one_reused_socket() -> None:
    server, oks, spare, time_wait = checks_against("127.0.0.1", None, 5)
    assert oks == [True] * 5
    assert server.resets == 5 and server.closed == 0
    assert len(set(server.peers)) == 5, "each check is a new connection (a fresh source port)"
    assert spare == 1, "the checks took turns on one socket"
    assert time_wait == 0


def test_ipv6_checks_reuse_their_socket_too() -> None:
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    server, oks, spare, time_wait = checks_against("::1", None, 3)
    assert oks == [True] * 3
    assert server.resets == 3
    assert spare == 1
    assert time_wait == 0


def test_a_check_with_a_source_binding_is_reset_and_closed_not_reused() -> None:
    server, oks, spare, time_wait = checks_against("127.0.0.1", "127.0.0.1", 3)
    assert oks == [True] * 3
    assert server.resets == 3
    assert spare == 0
    assert time_wait == 0


def test_a_reused_socket_still_tells_up_from_down() -> None:
    async def main() -> tuple[list[tuple[bool, str]], int]:
        server = ResetCountingServer("127.0.0.1")
        try:
            up = TcpChecker("127.0.0.1", server.port, 2.0)
            down = TcpChecker("127.0.0.1", free_port(), 2.0)
            results = []
            for checker in (up, down, up, down, up):
                outcome = await checker.check()
                results.append((outcome.ok, outcome.reason))
            await server.take(3)
            return results, server.resets
        finally:
            server.close()

    results, resets = run(main())
    refused = (False, "connection refused")
    assert results == [(True, ""), refused, (True, ""), refused, (True, "")]
    assert resets == 3


def test_spare_sockets_are_bounded_and_closed_with_the_loop() -> None:
    async def main() -> tuple[int, int]:
        server = ResetCountingServer("127.0.0.1")
        try:
            count = 20
            oks = await asyncio.gather(*(TcpChecker("127.0.0.1", server.port, 2.0).check() for _ in range(count)))
            assert all(o.ok for o in oks)
            await server.take(count)
            waiter = waiter_for(asyncio.get_running_loop())
            assert waiter is not None
            spare = waiter.spare_sockets
            waiter.close()
            return spare, waiter.spare_sockets
        finally:
            server.close()

    spare, after_close = run(main())
    assert 1 <= spare <= min(20, SPARE_SOCKETS)
    assert after_close == 0


# ---- the recovery notice budget (virtual clock) ---------------------------------------------------------


def test_recovery_notices_beyond_the_budget_are_counted_not_given() -> None:
    watch: StallDetector[int] = StallDetector(recovery_burst=2, recovery_rate=1.0)
    for key in range(5):
        watch.expect(key, last_result=0.0, due=1.0, timeout=1.0)  # stalled after 3 x (1 + 1) s of silence
    assert len(watch.poll(100.0)) == 5
    notices = [watch.expect(key, last_result=100.0, due=101.0, timeout=1.0) for key in range(5)]
    given = [n for n in notices if n is not None]
    assert [n.key for n in given] == [0, 1] and not any(n.stalled for n in given)
    assert not any(watch.is_stalled(key) for key in range(5)), "every recovery clears the stall, notice or not"
    assert watch.take_suppressed_recoveries() == 3
    assert watch.take_suppressed_recoveries() == 0
    # The budget refills at its rate: one more notice a second later.
    assert len(watch.poll(200.0)) == 5
    later = [watch.expect(key, last_result=201.0, due=202.0, timeout=1.0) for key in range(2)]
    assert [n is not None for n in later] == [True, True]  # 101 s at 1/s refilled the burst of 2
    third = watch.expect(2, last_result=201.0, due=202.0, timeout=1.0)
    assert third is None and watch.take_suppressed_recoveries() == 1
    assert watch.expect(3, last_result=202.0, due=203.0, timeout=1.0) is not None


def test_the_recovery_budget_must_allow_a_notice() -> None:
    with pytest.raises(ValueError):
        StallDetector(recovery_burst=0)
    with pytest.raises(ValueError):
        StallDetector(recovery_rate=0.0)
