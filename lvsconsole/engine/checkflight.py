"""The flight recorder and ``check now`` as the director offers them: real servers named by :class:`RsId`.

The recorder (:mod:`lvsconsole.check.recorder`) outlives check services: a reload replaces the service but
keeps the rings of the checkers that are still there. Times go out as wall-clock seconds (the rings keep the
loop's monotonic clock).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from lvsconsole.check.policy import CheckerRef
from lvsconsole.check.policy import RsRef as PolicyRef
from lvsconsole.check.recorder import CheckerHistory, CheckRecorder, ProbeNow, probe_of
from lvsconsole.check.service import CheckService
from lvsconsole.engine.director_api import DirectorError, RsId

__all__ = ["CheckFlight"]


def _clock_offset() -> float:
    """Add to a loop time to get a wall-clock time."""
    return time.time() - asyncio.get_running_loop().time()


class CheckFlight:
    def __init__(self, recorder: CheckRecorder, service: Callable[[], CheckService | None]) -> None:
        self.recorder = recorder
        self._service = service

    def _running(self) -> CheckService:
        service = self._service()
        if service is None or not service.running:
            raise DirectorError("health checks are not running")
        return service

    @staticmethod
    def _checker_refs(service: CheckService, target: RsId) -> list[CheckerRef]:
        ref = PolicyRef(target.vs, target.rs)
        try:
            return [CheckerRef(ref, i) for i in range(service.policy.checker_count(ref))]
        except KeyError:
            return []

    def history(self, targets: Sequence[RsId]) -> list[CheckerHistory]:
        """The recorder of every checker of every target (real servers without checkers give none)."""
        service = self._running()
        offset = _clock_offset()
        return [
            self.recorder.history(ref, kind=service.checker_kind(ref), target=service.setup.targets.get(ref, ""),
                                  clock_offset=offset)
            for target in targets for ref in self._checker_refs(service, target)
        ]

    async def run_now(self, targets: Sequence[RsId]) -> list[ProbeNow]:
        """Run every checker of every target once, now (see :meth:`CheckService.run_now`)."""
        service = self._running()
        runs = await asyncio.gather(*(service.run_now(PolicyRef(t.vs, t.rs)) for t in targets
                                      if self._checker_refs(service, t)))
        offset = _clock_offset()
        return [
            ProbeNow(r.ref.rs.vs, r.ref.rs.rs, r.ref.index, service.checker_kind(r.ref),
                     service.setup.targets.get(r.ref, ""), probe_of(r, clock_offset=offset))
            for records in runs for r in records
        ]
