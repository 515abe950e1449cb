"""Waiting for many non-blocking TCP connects at once, cheaply (the TCP_CHECK hot path).

asyncio's ``add_writer`` / ``remove_writer`` cost two epoll_ctl calls and a good deal of Python
bookkeeping per socket, and a timer per check adds a heap entry and a cancellation. At ten thousand
checks a second that is a large share of the director's CPU. :class:`ConnectWaiter` instead keeps one
private epoll set, itself watched by the event loop with a single ``add_reader``: each socket is added
once (EPOLLOUT | EPOLLONESHOT, one syscall) and needs no removal, because closing the socket removes it
from the set; every readiness in one loop iteration is handled in one batch, by calling the watcher
directly (no future, no task wake-up); and deadlines sit in a timer wheel of :data:`TICK`-wide slots
(a dict insert and delete per socket, no heap), with one loop timer for the earliest non-empty slot: when
every connect is answered well within its timeout, that timer wakes about once per connect_timeout.

**Ending a check's connection.** Once the handshake has completed there is nothing more to learn from the
connection, so it is ended with a reset rather than a FIN exchange (HAProxy ends its health checks the same
way): the real server has seen a complete handshake, as with keepalived; nginx 1.22 logs the reset,
like keepalived's FIN, as one ``info`` line ("recv() failed (104: Connection reset by peer) while
waiting for request" instead of "client closed connection ..."), so at its default level neither is
logged. The director is left with no TIME_WAIT socket per check (at ten thousand checks a second those
would reach the kernel's ``tcp_max_tw_buckets`` within seconds), and the wire carries one packet instead
of four. On Linux the
reset is sent by ``connect()`` with an ``AF_UNSPEC`` address (the kernel's ``tcp_disconnect``), which
leaves the socket open and unconnected: :meth:`ConnectWaiter.recycle` keeps up to :data:`SPARE_SOCKETS`
such sockets, still in the epoll set, and :meth:`ConnectWaiter.stream_socket` hands them out again, so a
check costs no ``socket()``, ``close()`` or epoll registration (measured on loopback: a quarter to a third
less kernel time per check). Elsewhere, or for a socket with a source binding, :func:`reset_and_close` sets
``SO_LINGER`` {1, 0} and closes.

Where ``select.epoll`` is missing the checker falls back to ``add_writer`` (see ``tcp.py``).
"""

from __future__ import annotations

import _socket  # the C socket type: no Python-level __init__/close wrappers on the hot path
import asyncio
import contextlib
import ctypes
import math
import select
import socket
import struct
import sys
import weakref
from collections.abc import Callable
from typing import Protocol

__all__ = ["SPARE_SOCKETS", "TICK", "ConnectWaiter", "ConnectWatcher", "reset_and_close", "waiter_for"]

TICK = 0.01
"""Deadline granularity in seconds (a connect never times out early, and at most this late)."""

_READY_BATCH = 1024
"""Readiness events taken from the private epoll set per loop iteration."""

SPARE_SOCKETS = 512
"""Unconnected sockets a waiter keeps per address family for the next checks (about the checks in flight at
once at ten thousand a second; beyond it a finished check's socket is closed)."""

_STREAM_NONBLOCK = socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
_LINGER_RESET = struct.pack("ii", 1, 0)
"""SO_LINGER on with a zero timeout: close() sends a reset and leaves no TIME_WAIT."""
_ARM = select.EPOLLOUT | select.EPOLLONESHOT if hasattr(select, "epoll") else 0


def reset_and_close(sock: _socket.socket) -> None:
    """End an established connection with a reset (no FIN exchange, no TIME_WAIT) and close the socket."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    sock.close()


def _libc_disconnect() -> Callable[[int], int] | None:
    """``connect(fd, {AF_UNSPEC})`` from libc, Linux only (Python's own ``connect`` cannot pass that address):
    an established TCP socket sends a reset and becomes unconnected, ready for another ``connect``.
    Returns 0 or -1 like the system call."""
    if sys.platform != "linux":
        return None
    try:
        connect = ctypes.CDLL(None, use_errno=True).connect
    except (OSError, AttributeError):
        return None
    connect.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32)
    connect.restype = ctypes.c_int
    unspecified = ctypes.create_string_buffer(16)  # a struct sockaddr of family AF_UNSPEC (0)
    address, size = ctypes.addressof(unspecified), ctypes.sizeof(unspecified)

    def disconnect(fd: int, _keep: object = unspecified) -> int:  # _keep: the buffer lives as long as this
        return int(connect(fd, address, size))

    return disconnect


_disconnect = _libc_disconnect()

# Weak both ways: a waiter holds its loop (through its timer handle) and the loop holds the waiter (through
# its reader), a cycle the collector frees once the loop is dropped; a strong value here would pin the key.
_waiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, weakref.ref[ConnectWaiter]] = weakref.WeakKeyDictionary()
_last: tuple[weakref.ref[asyncio.AbstractEventLoop], weakref.ref[ConnectWaiter]] | None = None
"""The loop last asked for and its waiter: the weak mapping's lookup is too slow for a per-check call."""


def waiter_for(loop: asyncio.AbstractEventLoop) -> ConnectWaiter | None:
    """The loop's ConnectWaiter (made on first use), or None where epoll is not available."""
    global _last
    if _last is not None and _last[0]() is loop:
        waiter = _last[1]()
        if waiter is not None and not waiter.closed:
            return waiter
    ref = _waiters.get(loop)
    waiter = ref() if ref is not None else None
    if waiter is None or waiter.closed:
        if not hasattr(select, "epoll"):
            return None
        waiter = ConnectWaiter(loop)
        _waiters[loop] = weakref.ref(waiter)
    _last = (weakref.ref(loop), weakref.ref(waiter))
    return waiter


class ConnectWatcher(Protocol):
    """Told once how its connect ended: ``events`` is the epoll mask (EPOLLOUT alone: connected; with
    EPOLLERR or EPOLLHUP: failed, SO_ERROR says why), or 0 when the deadline passed first."""

    def connect_done(self, events: int) -> None: ...


class _FutureWatcher:
    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[bool]) -> None:
        self.future: asyncio.Future[bool] | None = future

    def connect_done(self, events: int) -> None:
        # The timer wheel keeps this watcher until its deadline; the future (and through it the loop) must go.
        future, self.future = self.future, None
        if future is not None and not future.done():
            future.set_result(events != 0)


class ConnectWaiter:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # A weak reference: the registry maps loops weakly, and the waiter must not keep its loop alive.
        self._loop_ref = weakref.ref(loop)
        self._ep = select.epoll()
        self._pending: dict[int, ConnectWatcher] = {}
        self._slot_of: dict[int, int] = {}
        """fd → its deadline slot (deadline / TICK, rounded up)."""
        self._wheel: dict[int, dict[int, ConnectWatcher]] = {}
        """Deadline slot → the sockets due to time out then. A socket leaves it as soon as it is done, so the
        one timer (for the earliest slot) finds nothing to do in a healthy director and is not re-armed until
        the next connect: about one wake-up per connect_timeout, not one per tick."""
        self._timer: asyncio.TimerHandle | None = None
        self._timer_slot = 0
        """The slot the timer fires for (meaningful while ``_timer`` is set)."""
        self._spare: dict[int, list[_socket.socket]] = {}
        """Address family → unconnected sockets for the next checks (registered in the epoll set, disarmed)."""
        self.closed = False
        loop.add_reader(self._ep.fileno(), self._ready)
        weakref.finalize(loop, _close_all, self._ep, self._spare)

    def stream_socket(self, family: int) -> tuple[_socket.socket, bool]:
        """A non-blocking, close-on-exec TCP socket for a connect, and whether it is already in the epoll set
        (a spare one from :meth:`recycle`: pass that on to :meth:`watch`)."""
        spare = self._spare.get(family)
        if spare:
            return spare.pop(), True
        return _socket.socket(family, _STREAM_NONBLOCK, socket.IPPROTO_TCP), False

    def recycle(self, sock: _socket.socket) -> None:
        """End the socket's established connection with a reset and keep the socket for another check (a socket
        from :meth:`stream_socket`, never one bound to a source); when it cannot be kept, reset and close it."""
        spare = self._spare.get(sock.family)
        if spare is None:
            spare = self._spare[sock.family] = []
        room = len(spare) < SPARE_SOCKETS and not self.closed
        if room and _disconnect is not None and _disconnect(sock.fileno()) == 0:
            spare.append(sock)
        else:
            reset_and_close(sock)

    @property
    def spare_sockets(self) -> int:
        """Sockets kept for the next checks."""
        return sum(len(spare) for spare in self._spare.values())

    def watch(self, fd: int, deadline: float, watcher: ConnectWatcher, registered: bool = False) -> None:
        """Call ``watcher.connect_done`` once: with the epoll events when ``fd`` becomes writable, or with 0
        at ``deadline``.

        ``fd`` must be a socket with a connect in progress; ``registered`` when it came from the spares of
        :meth:`stream_socket`. Call :meth:`forget` before closing it early."""
        if registered:
            self._ep.modify(fd, _ARM)
        else:
            self._ep.register(fd, _ARM)
        self._pending[fd] = watcher
        slot = math.ceil(deadline / TICK)
        self._slot_of[fd] = slot
        bucket = self._wheel.get(slot)
        if bucket is None:
            self._wheel[slot] = {fd: watcher}
            if self._timer is None or slot < self._timer_slot:
                self._arm(slot)
        else:
            bucket[fd] = watcher

    @property
    def watching(self) -> int:
        """Connects in progress."""
        return len(self._pending)

    @property
    def deadline_slots(self) -> int:
        """Wheel slots holding a deadline (a socket leaves its slot as soon as it is done)."""
        return len(self._wheel)

    def _arm(self, slot: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_slot = slot
        self._timer = self._loop.call_at(slot * TICK, self._expire)

    def wait(self, fd: int, deadline: float) -> asyncio.Future[bool]:
        """A future that becomes True when ``fd`` is writable (connected or failed), False at ``deadline``.

        The caller must call :meth:`forget` before closing the socket."""
        fut: asyncio.Future[bool] = self._loop.create_future()
        self.watch(fd, deadline, _FutureWatcher(fut))
        return fut

    @property
    def _loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop_ref()
        if loop is None:
            raise RuntimeError("the event loop of this ConnectWaiter is gone")
        return loop

    def _unslot(self, fd: int) -> None:
        slot = self._slot_of.pop(fd)
        bucket = self._wheel[slot]
        del bucket[fd]
        if not bucket:
            del self._wheel[slot]

    def forget(self, fd: int) -> None:
        """Stop watching ``fd`` (its socket is about to be closed)."""
        if self._pending.pop(fd, None) is not None:
            self._unslot(fd)
            with contextlib.suppress(OSError):  # the socket may already be gone
                self._ep.unregister(fd)

    def _ready(self) -> None:
        pending = self._pending
        slot_of = self._slot_of
        wheel = self._wheel
        for fd, events in self._ep.poll(0, _READY_BATCH):
            watcher = pending.pop(fd, None)
            if watcher is not None:
                slot = slot_of.pop(fd)
                bucket = wheel[slot]
                del bucket[fd]
                if not bucket:
                    del wheel[slot]
                watcher.connect_done(events)

    def _expire(self) -> None:
        self._timer = None
        loop = self._loop_ref()
        if loop is None or self.closed:
            return
        # (asyncio may run a timer a hair before its time: that must not leave the slot for the next round)
        now_slot = math.floor(loop.time() / TICK + 1e-3)
        wheel = self._wheel
        pending = self._pending
        for slot in sorted(s for s in wheel if s <= now_slot):
            for fd, watcher in wheel.pop(slot).items():
                del pending[fd]
                del self._slot_of[fd]
                watcher.connect_done(0)
        if wheel and self._timer is None:
            self._arm(min(wheel))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            loop = self._loop_ref()
            if loop is not None and not loop.is_closed():
                loop.remove_reader(self._ep.fileno())
            _close_all(self._ep, self._spare)


def _close_all(ep: select.epoll, spare: dict[int, list[_socket.socket]]) -> None:
    for sockets in spare.values():
        for sock in sockets:
            sock.close()
        sockets.clear()
    ep.close()
