"""A one-shot timer for the event loop at an absolute ``loop.time()``, to the microsecond.

asyncio's own timers wake the loop through the selector timeout, which CPython rounds up to whole
milliseconds. That costs up to 1 ms on every takeover. A Linux timerfd armed with the absolute
CLOCK_MONOTONIC deadline (the clock behind ``loop.time()``) makes the loop wake within the kernel's
timer slack (set to 1 µs for the loop's thread), as keepalived's scheduler does. Where timerfd is
unavailable it falls back to
``loop.call_at``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import math
import os
import time
from collections.abc import Callable

CLOCK_MONOTONIC = 1
TFD_NONBLOCK = 0o4000
TFD_CLOEXEC = 0o2000000
TFD_TIMER_ABSTIME = 1
PR_SET_TIMERSLACK = 29


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.timerfd_create  # noqa: B018 - probe the symbol
        libc.timerfd_settime  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()
_MONOTONIC_IS_LOOP_CLOCK = time.get_clock_info("monotonic").implementation.startswith("clock_gettime(CLOCK_MONOTONIC")


class PreciseTimer:
    """Calls ``callback()`` once at the time given to :meth:`set` (event loop clock)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        self._loop = loop
        self._callback = callback
        self._when: float | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._fd = -1
        same_clock = _MONOTONIC_IS_LOOP_CLOCK and abs(loop.time() - time.monotonic()) < 0.001
        if _LIBC is not None and same_clock:
            fd = _LIBC.timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
            if fd >= 0:
                # the default 50 us of timer slack would be added to every takeover: ask for 1 us
                _LIBC.prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0)
                self._fd = fd
                loop.add_reader(fd, self._on_ready)

    @property
    def precise(self) -> bool:
        return self._fd >= 0

    @property
    def when(self) -> float | None:
        return self._when

    def set(self, when: float | None) -> None:
        """Arm for ``when`` (None disarms). A time in the past fires at the next loop iteration."""
        if when == self._when:
            return
        self._when = when
        if self._fd < 0:
            if self._handle is not None:
                self._handle.cancel()
                self._handle = None
            if when is not None:
                self._handle = self._loop.call_at(when, self._fire)
            return
        spec = _Itimerspec()
        if when is not None:
            sec = math.floor(when)
            nsec = math.ceil((when - sec) * 1e9)
            if nsec >= 1_000_000_000:
                sec, nsec = sec + 1, nsec - 1_000_000_000
            if sec <= 0 and nsec <= 0:
                nsec = 1  # an all-zero value would disarm the timer
            spec.it_value.tv_sec, spec.it_value.tv_nsec = sec, nsec
        if _LIBC is not None and _LIBC.timerfd_settime(self._fd, TFD_TIMER_ABSTIME, ctypes.byref(spec), None) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    def cancel(self) -> None:
        self.set(None)

    def _on_ready(self) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            os.read(self._fd, 8)
        self._fire()

    def _fire(self) -> None:
        self._handle = None
        if self._when is None:
            return
        self._when = None
        self._callback()

    def close(self) -> None:
        self.cancel()
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
