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

Where ``select.epoll`` is missing the checker falls back to ``add_writer`` (see ``tcp.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import select
import weakref
from typing import Protocol

__all__ = ["TICK", "ConnectWaiter", "ConnectWatcher", "waiter_for"]

TICK = 0.01
"""Deadline granularity in seconds (a connect never times out early, and at most this late)."""

_READY_BATCH = 1024
"""Readiness events taken from the private epoll set per loop iteration."""

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
        self.closed = False
        loop.add_reader(self._ep.fileno(), self._ready)
        weakref.finalize(loop, self._ep.close)

    def watch(self, fd: int, deadline: float, watcher: ConnectWatcher) -> None:
        """Call ``watcher.connect_done`` once: with the epoll events when ``fd`` becomes writable, or with 0
        at ``deadline``.

        ``fd`` must be a socket with a connect in progress; call :meth:`forget` before closing it early."""
        self._ep.register(fd, select.EPOLLOUT | select.EPOLLONESHOT)
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
            self._ep.close()
