"""One pyroute2 socket joined to rtnetlink multicast groups, its messages handed to a callback on a task.

The interface tracker (vrrp/tracking.py LinkMonitor) and the deletion watch (vrrp/netwatch.py) both follow the
kernel this way; what a message means is theirs to decide.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any


class RtnlSubscription:
    """Joined by :meth:`open` (before any dump the owner takes, so no change falls between the two), followed by
    :meth:`follow`, left by :meth:`close`."""

    def __init__(self, name: str, on_message: Callable[[Any], None]) -> None:
        self._name = name
        self._on_message = on_message
        self._ipr: Any = None
        self._task: asyncio.Task[None] | None = None

    async def open(self, groups: int) -> None:
        from pyroute2 import AsyncIPRoute

        self._ipr = AsyncIPRoute()
        await self._ipr.bind(groups=groups)

    def follow(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name=self._name)

    async def _watch(self) -> None:
        assert self._ipr is not None
        while True:
            async for msg in self._ipr.get():
                self._on_message(msg)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None
