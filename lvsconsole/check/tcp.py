"""TCP_CHECK: the server is up when a TCP handshake with it completes within connect_timeout.

Like keepalived, the connection is closed as soon as it is established (nothing is sent). The target
is ``connect_ip``:``connect_port`` (the real server's address and port by default); ``bindto`` /
``bind_port`` choose the source, ``bind_if`` (SO_BINDTODEVICE) and ``fwmark`` (SO_MARK) are honoured
where the platform has them.

This is the checker that runs ten thousand times a second, so its hot path is lean: a non-blocking
socket, ``connect()``, a wait in the loop's shared :class:`~lvsconsole.check._connect.ConnectWaiter`
(one epoll for all pending connects, one timer for all deadlines), then ``SO_ERROR``.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass, field

from lvsconsole.check import _net
from lvsconsole.check._connect import waiter_for
from lvsconsole.check.policy import CheckOutcome

__all__ = ["TcpChecker"]

_SUCCESS = "TCP connection to {rs} success."
_FAILED = "TCP connection to {rs} failed."
_TIMEDOUT = "TCP connection to {rs} timedout."
_UP = CheckOutcome(True, _SUCCESS)
_TIMEOUT = CheckOutcome(False, _TIMEDOUT, reason="timeout")


def _writable(fut: asyncio.Future[bool]) -> None:
    if not fut.done():
        fut.set_result(True)


def _expired(fut: asyncio.Future[bool]) -> None:
    if not fut.done():
        fut.set_result(False)


@dataclass(slots=True)
class TcpChecker:
    """One TCP_CHECK. ``host`` is normally an IP literal; a name is resolved on every check."""

    host: str
    port: int
    connect_timeout: float = 5.0
    bind_to: str | None = None
    bind_port: int | None = None
    bind_if: str | None = None
    fwmark: int | None = None
    _family: int | None = field(default=None, init=False, repr=False)
    _binding: _net.Binding | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._family = _net.family_of(self.host)
        if self.bind_to is not None or self.bind_port or self.bind_if or self.fwmark:
            self._binding = _net.Binding(self.bind_to, self.bind_port, self.bind_if, self.fwmark)

    @property
    def timeout(self) -> float:
        return self.connect_timeout

    async def check(self) -> CheckOutcome:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_timeout
        family = self._family
        addr: tuple[str, int] = (self.host, self.port)
        if family is None:
            try:
                async with asyncio.timeout(self.connect_timeout):
                    family, addr = await _net.resolve(self.host, self.port, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            except TimeoutError:
                return CheckOutcome(False, _TIMEDOUT, reason="timeout")
            except OSError as exc:
                return CheckOutcome(False, _FAILED, reason=_net.os_reason(exc))
        try:
            if self._binding is None:
                sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK, socket.IPPROTO_TCP)
            else:
                sock = _net.make_socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, self._binding)
        except OSError as exc:
            return CheckOutcome(False, _FAILED, reason=_net.os_reason(exc))
        try:
            try:
                sock.connect(addr)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                return CheckOutcome(False, _FAILED, reason=_net.os_reason(exc))
            else:
                return _UP
            fd = sock.fileno()
            waiter = waiter_for(loop)
            if waiter is not None:
                try:
                    connected = await waiter.wait(fd, deadline)
                finally:
                    waiter.forget(fd)
            else:
                fut: asyncio.Future[bool] = loop.create_future()
                loop.add_writer(fd, _writable, fut)
                timer = loop.call_at(deadline, _expired, fut)
                try:
                    connected = await fut
                finally:
                    loop.remove_writer(fd)
                    timer.cancel()
            if not connected:
                return _TIMEOUT
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                return CheckOutcome(False, _FAILED, reason=os.strerror(err).lower())
            return _UP
        finally:
            sock.close()
