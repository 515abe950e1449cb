"""The asyncio side of drain watching: reads draining servers' dests a few times a second and acts on what
engine/drainwatch.py makes of the counts (events on the bus, maint for ``then remove``).

The 1 Hz statistics loop reads the whole table and the kernel's rates are multi-second averages; a drain is
watched instead with one ``IPVS_CMD_GET_DEST`` dump per service involved (``Backend.read_dests``), at
``hz`` (4 to 10) samples a second, only while some watch is live.
"""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from lvsconsole.engine.bus import EventBus
from lvsconsole.engine.director_api import RsId
from lvsconsole.engine.drainwatch import DrainPlan, DrainWatch, Emptied, Notice, Progress, Remove, TimedOut
from lvsconsole.engine.events import DrainEmpty, DrainProgress, DrainRemoved, DrainTimedOut, EngineWarning
from lvsconsole.ipvs.backend import Backend, DestCounters
from lvsconsole.ipvs.table import DestKey, ServiceKey

DEFAULT_HZ = 5.0
MIN_HZ = 4.0
MAX_HZ = 10.0
RETAIN_ENDED = 300.0
"""Seconds an ended watch stays listed (``show drain``, the drain view) unless the server's state changes."""

Source: TypeAlias = Literal["operator", "state", "reload"]
"""Who started the watch: ``drain``, ``set rs … state drain``, or a reload removing the server."""
DestRef: TypeAlias = tuple[ServiceKey, DestKey]


@dataclass
class WatchedServer:
    rid: RsId
    dests: tuple[DestRef, ...]
    watch: DrainWatch
    source: Source
    started_wall: float
    """Wall-clock start (the watch itself runs on the monotonic clock)."""

    def as_json(self) -> dict[str, Any]:
        return {"vs": self.rid.vs, "rs": self.rid.rs, "source": self.source, "started_at": self.started_wall,
                **self.watch.as_json()}


def check_hz(hz: float) -> float:
    if not MIN_HZ <= hz <= MAX_HZ:
        raise ValueError(f"drain sampling rate {hz:g} Hz is outside {MIN_HZ:g}-{MAX_HZ:g}")
    return hz


class DrainSampler:
    """Every watched drain, sampled by one task. ``remove`` puts a server into maint (``then remove``)."""

    def __init__(self, backend: Backend, bus: EventBus, remove: Callable[[RsId], Awaitable[object]], *,
                 hz: float = DEFAULT_HZ, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.backend = backend
        self.bus = bus
        self.hz = check_hz(hz)
        self._remove = remove
        self._clock = clock
        self._wall = wall
        self._watched: dict[RsId, WatchedServer] = {}
        self._wake = asyncio.Event()
        self._warned = False

    # ------------------------------------------------------------------------------ what is watched

    def watch(self, rid: RsId, dests: Sequence[DestRef], plan: DrainPlan, source: Source) -> WatchedServer:
        """Start watching ``rid`` (a new plan replaces a live watch's: the operator asked again)."""
        now = self._clock()
        watched = WatchedServer(rid, tuple(dests), DrainWatch(plan, now), source, self._wall())
        self._watched[rid] = watched
        self._wake.set()
        return watched

    def ensure(self, rid: RsId, dests: Sequence[DestRef], source: Source) -> WatchedServer:
        """Watch ``rid`` with a plain plan unless a live watch already has it."""
        current = self._watched.get(rid)
        if current is not None and not current.watch.ended:
            return current
        return self.watch(rid, dests, DrainPlan(), source)

    def forget(self, rid: RsId) -> None:
        """The server is no longer draining (undrain, ready, enable): its watch goes."""
        self._watched.pop(rid, None)

    def end(self, rid: RsId) -> None:
        """The server left the table (maint): a live watch ends as removed, and stays listed a while."""
        current = self._watched.get(rid)
        if current is not None:
            current.watch.gone(self._clock())

    def get(self, rid: RsId) -> WatchedServer | None:
        return self._watched.get(rid)

    def watches(self) -> list[WatchedServer]:
        """Live watches and those ended less than RETAIN_ENDED ago, oldest first."""
        now = self._clock()
        for rid, w in list(self._watched.items()):
            if w.watch.ended_at is not None and now - w.watch.ended_at > RETAIN_ENDED:
                del self._watched[rid]
        return sorted(self._watched.values(), key=lambda w: w.watch.started)

    def _live(self) -> list[WatchedServer]:
        return [w for w in self._watched.values() if not w.watch.ended]

    # ------------------------------------------------------------------------------ the loop

    async def run(self) -> None:
        next_at: float | None = None
        while True:
            period = 1.0 / self.hz  # a reload may change it
            self._wake.clear()
            if not self._live():
                next_at = None
                await self._wake.wait()
                continue
            now = self._clock()
            # ticks on a fixed grid: a late wake-up (a busy loop) shortens the next wait instead of slowing the
            # rate; a tick missed altogether is skipped, not caught up in a burst
            next_at = now if next_at is None or next_at < now - period else next_at
            await self.sample_once()
            next_at += period
            await asyncio.sleep(max(0.0, next_at - self._clock()))

    async def sample_once(self) -> None:
        """One read of every service that has a live watch, fed to the watches; acts on their notices."""
        live = self._live()
        if not live:
            return
        services = {service for w in live for service, _ in w.dests}
        counters: dict[DestRef, DestCounters] = {}
        for service in services:
            try:
                dests = await self.backend.read_dests(service)
            except OSError as exc:
                if exc.errno == errno.ESRCH:  # the service is gone, and so are its dests
                    continue
                if not self._warned:
                    self._warned = True
                    self.bus.publish(EngineWarning(message=f"cannot sample draining servers: {exc}", code="drain"))
                return
            for dkey, c in dests.items():
                counters[(service, dkey)] = c
        self._warned = False
        now = self._clock()
        for w in live:
            if w.watch.ended or self._watched.get(w.rid) is not w:  # ended or replaced while reading
                continue
            present = [counters[d] for d in w.dests if d in counters]
            if not present:
                w.watch.gone(now)
                continue
            notices = w.watch.feed(now, sum(c.activeconns for c in present), sum(c.inactconns for c in present),
                                   sum(c.persistconns for c in present))
            for notice in notices:
                await self._act(w, notice)

    async def _act(self, w: WatchedServer, notice: Notice) -> None:
        vs, rs = w.rid.vs, w.rid.rs
        if isinstance(notice, Progress):
            fit = notice.fit
            s = notice.sample
            self.bus.publish(DrainProgress(vs=vs, rs=rs, active=s.active, inactive=s.inactive, persist=s.persist,
                                           eta=None if fit is None else fit.eta,
                                           rate=None if fit is None else fit.rate))
        elif isinstance(notice, Emptied):
            self.bus.publish(DrainEmpty(vs=vs, rs=rs, elapsed=notice.elapsed, persist=notice.sample.persist,
                                        held=not w.watch.plan.then_remove))
        elif isinstance(notice, TimedOut):
            s = notice.sample
            self.bus.publish(DrainTimedOut(vs=vs, rs=rs, elapsed=notice.elapsed, active=s.active,
                                           inactive=s.inactive, removing=notice.removing))
        elif isinstance(notice, Remove):
            s = notice.sample
            try:
                await self._remove(w.rid)
            except Exception as exc:  # the watch has ended either way: say why the server is still there
                self.bus.publish(EngineWarning(message=f"could not remove drained {rs} from VS {vs}: {exc}",
                                               code="drain"))
                return
            self.bus.publish(DrainRemoved(vs=vs, rs=rs, active=s.active, inactive=s.inactive,
                                          timed_out=notice.timed_out))
