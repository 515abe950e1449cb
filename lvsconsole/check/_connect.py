"""Waiting for many non-blocking TCP connects at once, cheaply (the TCP_CHECK hot path).

asyncio's ``add_writer`` / ``remove_writer`` cost two epoll_ctl calls and a good deal of Python
bookkeeping per socket, and a timer per check adds a heap entry and a cancellation. At ten thousand
checks a second that is a large share of the director's CPU. :class:`ConnectWaiter` instead keeps one
private epoll set, itself watched by the event loop with a single ``add_reader``: each socket is added
once (EPOLLOUT | EPOLLONESHOT, one syscall) and needs no removal, because closing the socket removes it
from the set; every readiness in one loop iteration is handled in one batch; and deadlines are checked
by one timer for all sockets, at :data:`TICK` granularity.

Where ``select.epoll`` is missing the checker falls back to ``add_writer`` (see ``tcp.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import select
import weakref

__all__ = ["TICK", "ConnectWaiter", "waiter_for"]

TICK = 0.01
"""Deadline granularity in seconds."""

_waiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ConnectWaiter] = weakref.WeakKeyDictionary()


def waiter_for(loop: asyncio.AbstractEventLoop) -> ConnectWaiter | None:
    """The loop's ConnectWaiter (made on first use), or None where epoll is not available."""
    waiter = _waiters.get(loop)
    if waiter is None or waiter.closed:
        if not hasattr(select, "epoll"):
            return None
        waiter = ConnectWaiter(loop)
        _waiters[loop] = waiter
    return waiter


class ConnectWaiter:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # A weak reference: the registry maps loops weakly, and the waiter must not keep its loop alive.
        self._loop_ref = weakref.ref(loop)
        self._ep = select.epoll()
        # Nothing here may keep the loop alive once the checks are over (the registry holds waiters
        # weakly by loop): futures live only in _pending, and the deadline heap holds plain numbers.
        self._pending: dict[int, tuple[int, asyncio.Future[bool]]] = {}
        self._deadlines: list[tuple[float, int, int]] = []
        self._seq = itertools.count()
        self._ticking = False
        self.closed = False
        loop.add_reader(self._ep.fileno(), self._ready)
        weakref.finalize(loop, self._ep.close)

    def wait(self, fd: int, deadline: float) -> asyncio.Future[bool]:
        """A future that becomes True when ``fd`` is writable (connected or failed), False at ``deadline``.

        The caller must call :meth:`forget` before closing the socket."""
        loop = self._loop
        fut: asyncio.Future[bool] = loop.create_future()
        self._ep.register(fd, select.EPOLLOUT | select.EPOLLONESHOT)
        seq = next(self._seq)
        self._pending[fd] = (seq, fut)
        heapq.heappush(self._deadlines, (deadline, seq, fd))
        if not self._ticking:
            self._ticking = True
            loop.call_later(TICK, self._expire)
        return fut

    @property
    def _loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop_ref()
        if loop is None:
            raise RuntimeError("the event loop of this ConnectWaiter is gone")
        return loop

    def forget(self, fd: int) -> None:
        """Stop watching ``fd`` (its socket is about to be closed)."""
        if self._pending.pop(fd, None) is not None:
            with contextlib.suppress(OSError):  # the socket may already be gone
                self._ep.unregister(fd)

    def _ready(self) -> None:
        pending = self._pending
        for fd, _ in self._ep.poll(0, 1024):
            entry = pending.pop(fd, None)
            if entry is not None and not entry[1].done():
                entry[1].set_result(True)

    def _expire(self) -> None:
        loop = self._loop_ref()
        if loop is None or self.closed:
            return
        now = loop.time()
        deadlines = self._deadlines
        pending = self._pending
        while deadlines and (deadlines[0][0] <= now or pending.get(deadlines[0][2], (-1,))[0] != deadlines[0][1]):
            _, seq, fd = heapq.heappop(deadlines)
            entry = pending.get(fd)
            if entry is not None and entry[0] == seq:
                del pending[fd]
                if not entry[1].done():
                    entry[1].set_result(False)
        self._ticking = bool(deadlines)
        if self._ticking:
            loop.call_later(TICK, self._expire)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            loop = self._loop_ref()
            if loop is not None and not loop.is_closed():
                loop.remove_reader(self._ep.fileno())
            self._ep.close()
