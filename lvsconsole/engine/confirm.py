"""``commit confirmed N`` (as Junos): a commit that undoes itself unless ``confirm`` follows within N seconds.

``ConfirmPlanner`` is the sans-IO part: it remembers the config to go back to and the deadline, given the
time as an argument. A second ``commit confirmed`` while one is pending extends the deadline but keeps the
original config to go back to (the one before the first unconfirmed commit). ``confirm`` (or a plain
``commit``) settles it; ``due(now)`` says when the deadline has passed.

``ConfirmTimer`` is the thin asyncio adapter: it sleeps until the planner's deadline and then awaits the
rollback callback the executor gives it; it is re-armed whenever the deadline moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any


class NothingPending(Exception):
    """``confirm`` with no unconfirmed commit."""


@dataclass(frozen=True)
class PendingCommit:
    """An applied commit awaiting ``confirm``."""

    deadline: float
    """Wall-clock time of the automatic rollback."""
    restore_digest: str
    """The config to go back to: the running one before the first unconfirmed commit."""
    restore_revision: int
    revision: int
    """The latest revision applied under this pending confirmation."""
    who: str
    started: float

    def remaining(self, now: float) -> float:
        return max(0.0, self.deadline - now)

    def as_json(self, now: float) -> dict[str, Any]:
        return {"deadline": self.deadline, "remaining": round(self.remaining(now), 3),
                "restore_digest": self.restore_digest, "restore_revision": self.restore_revision,
                "revision": self.revision, "who": self.who, "started": self.started}


class ConfirmPlanner:
    def __init__(self) -> None:
        self.pending: PendingCommit | None = None

    def start(self, now: float, seconds: float, *, restore_digest: str, restore_revision: int, revision: int,
              who: str) -> PendingCommit:
        """Arm (or, when already pending, extend) the rollback ``seconds`` from ``now``."""
        if seconds <= 0:
            raise ValueError("commit confirmed needs a positive number of seconds")
        current = self.pending
        if current is None:
            self.pending = PendingCommit(now + seconds, restore_digest, restore_revision, revision, who, now)
        else:
            self.pending = replace(current, deadline=now + seconds, revision=revision, who=who)
        return self.pending

    def confirm(self) -> PendingCommit:
        """Settle the pending commit; raises NothingPending when there is none."""
        current = self.pending
        if current is None:
            raise NothingPending("no commit is waiting for confirmation")
        self.pending = None
        return current

    def due(self, now: float) -> PendingCommit | None:
        """The pending commit whose deadline has passed at ``now`` (it stays pending until ``settle``)."""
        current = self.pending
        return current if current is not None and now >= current.deadline else None

    def settle(self) -> PendingCommit | None:
        """Forget the pending commit (after its rollback ran); returns it."""
        current, self.pending = self.pending, None
        return current

    def next_deadline(self) -> float | None:
        return None if self.pending is None else self.pending.deadline


class ConfirmTimer:
    """Fires ``on_due`` once the planner's deadline passes (wall clock ``clock``), until the planner settles."""

    def __init__(self, planner: ConfirmPlanner, on_due: Callable[[], Awaitable[None]], *,
                 clock: Callable[[], float] = time.time) -> None:
        self.planner = planner
        self._on_due = on_due
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    def rearm(self) -> None:
        """Call after every change of the planner: (re)starts the wait for its current deadline."""
        self.cancel()
        if self.planner.next_deadline() is not None:
            self._task = asyncio.get_running_loop().create_task(self._wait(), name="lvsconsole-commit-confirmed")

    def cancel(self) -> None:
        # never cancel the task that is running the rollback itself (it re-arms from inside on_due)
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        self._task = None

    async def _wait(self) -> None:
        while True:
            deadline = self.planner.next_deadline()
            if deadline is None:
                return
            delay = deadline - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            await self._on_due()
            return

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
