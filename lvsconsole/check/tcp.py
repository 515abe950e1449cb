"""TCP_CHECK: the server is up when a TCP handshake with it completes within connect_timeout.

Like keepalived, the connection is ended as soon as it is established (nothing is sent); unlike keepalived,
it is ended with a reset rather than a FIN exchange (as HAProxy ends its checks): the real server has
still seen a complete handshake, and the director keeps no TIME_WAIT socket per check (see
:mod:`lvsconsole.check._connect` for why, and for the sockets it keeps for the next checks). The target
is ``connect_ip``:``connect_port`` (the real server's address and port by default); ``bindto`` /
``bind_port`` choose the source, ``bind_if`` (SO_BINDTODEVICE) and ``fwmark`` (SO_MARK) are honoured
where the platform has them.

This is the checker that runs ten thousand times a second, so its hot path has no coroutine, task or
future: :meth:`TcpChecker.begin_check` makes a non-blocking socket, calls ``connect_ex`` (no exception on
EINPROGRESS) and hands the socket to the loop's shared :class:`~lvsconsole.check._connect.ConnectWaiter`
(one epoll set for all pending connects, one timer wheel for all deadlines, spare sockets for the next
checks), which calls the probe back once; the probe reads ``SO_ERROR`` only when epoll reports an error,
ends the connection (a connected socket goes back to the waiter) and calls the runner back with a (mostly
shared, constant) outcome. :meth:`TcpChecker.check` is the same probe behind an awaitable, for ``check now`` and
tests. A host name (resolved on every check) or a platform without epoll takes the plain asyncio path.
"""

from __future__ import annotations

import _socket  # the C socket type: no Python-level __init__/close wrappers on the hot path
import asyncio
import errno
import os
import select
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from lvsconsole.check import _net
from lvsconsole.check._connect import ConnectWaiter, reset_and_close, waiter_for
from lvsconsole.check.policy import CheckOutcome

__all__ = ["TcpChecker"]

_SUCCESS = "TCP connection to {rs} success."
_FAILED = "TCP connection to {rs} failed."
_TIMEDOUT = "TCP connection to {rs} timedout."
_UP = CheckOutcome(True, _SUCCESS)
_TIMEOUT = CheckOutcome(False, _TIMEDOUT, reason="timeout")
_EPOLL_FAILED = select.EPOLLERR | select.EPOLLHUP if hasattr(select, "epoll") else 0
_Token = TypeVar("_Token")

_failures: dict[int, CheckOutcome] = {}


def _failed(err: int) -> CheckOutcome:
    """The failure outcome for an errno (one shared object per errno: outcomes are immutable)."""
    outcome = _failures.get(err)
    if outcome is None:
        reason = os.strerror(err).lower() if err in errno.errorcode else f"error {err}"
        outcome = _failures[err] = CheckOutcome(False, _FAILED, reason=reason)
    return outcome


class _TcpProbe:
    """One connect in flight: told by the waiter when it is over, tells the runner once (unless cancelled)."""

    __slots__ = ("_done", "_fd", "_reusable", "_sock", "_token", "_waiter")

    def __init__(
        self,
        sock: _socket.socket,
        waiter: ConnectWaiter,
        done: Callable[[_Token, CheckOutcome], object],
        token: _Token,
        reusable: bool,
    ) -> None:
        self._sock = sock
        self._fd = sock.fileno()
        self._waiter = waiter
        self._done: Callable[[Any, CheckOutcome], object] | None = done
        self._token: Any = token
        self._reusable = reusable
        """The socket came from the waiter (no source binding) and may go back to it."""

    def connect_done(self, events: int) -> None:
        if self._fd < 0:
            return
        self._fd = -1
        sock = self._sock
        if not events:
            outcome = _TIMEOUT
            sock.close()
        elif not events & _EPOLL_FAILED:  # connected: no need to ask SO_ERROR (one syscall fewer per check)
            outcome = _UP
            if self._reusable:
                self._waiter.recycle(sock)
            else:
                reset_and_close(sock)
        else:
            try:
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            except OSError as exc:
                err = exc.errno or errno.EIO
            outcome = _failed(err) if err else _UP  # SO_ERROR decides, as in keepalived's socket_state()
            if err:
                sock.close()
            else:
                reset_and_close(sock)
        # The waiter's timer wheel keeps this probe until its deadline: let go of the runner's objects now.
        done, token = self._done, self._token
        self._done = self._token = None
        if done is not None:
            done(token, outcome)

    def cancel(self) -> None:
        """Abandon the connect (the runner's watchdog or stop): the runner is not called back."""
        if self._fd >= 0:
            self._waiter.forget(self._fd)  # before the close frees the fd number for another socket
            self._fd = -1
            self._sock.close()
            self._done = self._token = None


def _set_outcome(fut: asyncio.Future[CheckOutcome], outcome: CheckOutcome) -> None:
    if not fut.done():
        fut.set_result(outcome)


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
    _addr: tuple[str, int] = field(default=("", 0), init=False, repr=False)

    def __post_init__(self) -> None:
        self._family = _net.family_of(self.host)
        self._addr = (self.host, self.port)
        if self.bind_to is not None or self.bind_port or self.bind_if or self.fwmark:
            self._binding = _net.Binding(self.bind_to, self.bind_port, self.bind_if, self.fwmark)

    @property
    def timeout(self) -> float:
        return self.connect_timeout

    def begin_check(
        self, loop: asyncio.AbstractEventLoop, done: Callable[[_Token, CheckOutcome], object], token: _Token
    ) -> _TcpProbe | asyncio.Handle | asyncio.Task[None]:
        """Start one probe; ``done(token, outcome)`` is called once, later (never from inside this call),
        unless the returned object's ``cancel()`` is called first."""
        family = self._family
        waiter = waiter_for(loop) if family is not None else None
        if family is None or waiter is None:
            return loop.create_task(self._deliver(done, token))
        binding = self._binding
        reusable = binding is None
        try:
            if binding is None:
                sock, registered = waiter.stream_socket(family)
            else:
                sock, registered = _net.make_socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, binding), False
        except OSError as exc:
            return loop.call_soon(done, token, _failed(exc.errno or errno.EIO))
        try:
            err = sock.connect_ex(self._addr)
        except OSError as exc:  # e.g. an address of the wrong family: connect_ex raises for those
            sock.close()
            return loop.call_soon(done, token, _failed(exc.errno or errno.EIO))
        if err == errno.EINPROGRESS:
            probe = _TcpProbe(sock, waiter, done, token, reusable)
            waiter.watch(probe._fd, loop.time() + self.connect_timeout, probe, registered)
            return probe
        if err == 0:
            reset_and_close(sock)
            return loop.call_soon(done, token, _UP)
        sock.close()
        return loop.call_soon(done, token, _failed(err))

    async def _deliver(self, done: Callable[[_Token, CheckOutcome], object], token: _Token) -> None:
        done(token, await self._check_by_asyncio())

    async def check(self) -> CheckOutcome:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[CheckOutcome] = loop.create_future()
        pending = self.begin_check(loop, _set_outcome, fut)
        try:
            return await fut
        finally:
            if not fut.done():  # cancelled while the probe was in flight
                pending.cancel()

    async def _check_by_asyncio(self) -> CheckOutcome:
        """The probe with a name to resolve, or without epoll: plain asyncio (add_writer and a timer)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_timeout
        family = self._family
        addr = self._addr
        if family is None:
            try:
                async with asyncio.timeout(self.connect_timeout):
                    family, addr = await _net.resolve(self.host, self.port, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            except TimeoutError:
                return _TIMEOUT
            except OSError as exc:
                return CheckOutcome(False, _FAILED, reason=_net.os_reason(exc))
        try:
            sock = _net.make_socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, self._binding or _net.NO_BINDING)
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
            fut: asyncio.Future[bool] = loop.create_future()
            fd = sock.fileno()
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
                return _failed(err)
            reset_and_close(sock)  # (closing it again below is harmless)
            return _UP
        finally:
            sock.close()


def _writable(fut: asyncio.Future[bool]) -> None:
    if not fut.done():
        fut.set_result(True)


def _expired(fut: asyncio.Future[bool]) -> None:
    if not fut.done():
        fut.set_result(False)
