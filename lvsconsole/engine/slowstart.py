"""``undrain`` with ``slow_start N``: the weight climbs from 1 back to the configured weight over N seconds.

Going from 0 to the full weight at once sends a drained server (cold caches, a JIT still warming, a pool just
restarted) its whole share of new connections in the first second. ``Ramp`` is the sans-IO schedule (which
weight at which time, and when to look again: at least once a second); ``SlowStarter`` runs the ramps on the
loop and programs each step through the director's runtime weight override.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from lvsconsole.engine.bus import EventBus
from lvsconsole.engine.director_api import RsId
from lvsconsole.engine.events import UndrainRamped

MAX_STEP_INTERVAL = 1.0
MIN_STEP_INTERVAL = 0.1


@dataclass(frozen=True, slots=True)
class Ramp:
    """From weight 1 at ``started`` to ``target`` at ``started + duration``, in whole-weight steps."""

    target: int
    duration: float
    started: float

    def weight(self, now: float) -> int:
        if self.duration <= 0 or now - self.started >= self.duration or self.target <= 1:
            return self.target
        share = max(0.0, now - self.started) / self.duration
        return max(1, min(self.target, math.ceil(self.target * share)))

    def done(self, now: float) -> bool:
        return self.weight(now) >= self.target

    def interval(self) -> float:
        """Seconds between steps: one weight unit's worth of time, but at least once a second."""
        if self.target <= 0:
            return MAX_STEP_INTERVAL
        return min(MAX_STEP_INTERVAL, max(MIN_STEP_INTERVAL, self.duration / self.target))


SetWeight = Callable[[RsId, int | None], Awaitable[object]]
"""Program a runtime weight for the server (None: back to the configured one)."""


class SlowStarter:
    """The running ramps, one task each; a new command on the same server cancels its ramp."""

    def __init__(self, bus: EventBus, set_weight: SetWeight, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.bus = bus
        self._set_weight = set_weight
        self._clock = clock
        self._tasks: dict[RsId, asyncio.Task[None]] = {}

    def start(self, rid: RsId, target: int, duration: float) -> Ramp:
        self.cancel(rid)
        ramp = Ramp(target, duration, self._clock())
        self._tasks[rid] = asyncio.get_running_loop().create_task(self._run(rid, ramp), name=f"slow-start {rid.rs}")
        return ramp

    def ramping(self, rid: RsId) -> bool:
        return rid in self._tasks

    def cancel(self, rid: RsId) -> None:
        task = self._tasks.pop(rid, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, rid: RsId, ramp: Ramp) -> None:
        last: int | None = None
        try:
            while True:
                now = self._clock()
                weight = ramp.weight(now)
                if ramp.done(now):
                    self._tasks.pop(rid, None)
                    await self._set_weight(rid, None)
                    self.bus.publish(UndrainRamped(vs=rid.vs, rs=rid.rs, weight=ramp.target, target=ramp.target,
                                                   done=True))
                    return
                if weight != last:
                    await self._set_weight(rid, weight)
                    self.bus.publish(UndrainRamped(vs=rid.vs, rs=rid.rs, weight=weight, target=ramp.target))
                    last = weight
                await asyncio.sleep(ramp.interval())
        finally:
            if self._tasks.get(rid) is asyncio.current_task():
                del self._tasks[rid]
