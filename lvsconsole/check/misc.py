"""MISC_CHECK: run a program; its exit status says up (0), down (1 …) or, with misc_dynamic, up at weight
``exit - 2`` (2..255).

As keepalived does (``check_misc.c``, ``notify.c``): the command line is split into words and executed
directly, never through a shell; the child gets its own process group, /dev/null for stdin, and ``/`` as
its working directory, and runs as the checker's ``user [group]`` (else ``script_user`` from global_defs,
else ``keepalived_script``, else the director's own user). Each run is vetted first
(:mod:`lvsconsole.scripts.vet`: a refused script fails with the exact reason) and reported with its
exit, duration and first lines of output (:mod:`lvsconsole.scripts.report`). When ``misc_timeout``
(default: the checker's delay_loop) expires, the whole process group gets SIGTERM and, 2 s later,
SIGKILL; a script that dies of those signals "timed out". Everything is awaited on the event loop, so a
slow or hanging script never blocks other checks. The policy turns the result into keepalived's log
lines ("Misc check for [[ip]:tcp:80 VS [vip]:tcp:80] by [/path] failed (exited with status 1).").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lvsconsole.check.policy import CheckOutcome
from lvsconsole.scripts.report import ScriptReporter, ScriptRun, run_vetted
from lvsconsole.scripts.run import TERM_GRACE, RunAs, ScriptResult, run_script

# RunAs, ScriptResult, run_script and TERM_GRACE live in lvsconsole.scripts.run (notify scripts and
# vrrp_scripts use them too); they are re-exported here for the check service.
__all__ = ["TERM_GRACE", "MiscChecker", "RunAs", "ScriptResult", "ScriptVetting", "run_script"]


@dataclass(frozen=True, slots=True)
class ScriptVetting:
    """Who a MISC_CHECK runs as, by name, and whether enable_script_security applies: each run is vetted
    (:mod:`lvsconsole.scripts.vet`) and a refused script fails with the reason."""

    user: str | None = None
    group: str | None = None
    security: bool = False


@dataclass(slots=True)
class MiscChecker:
    argv: tuple[str, ...]
    misc_timeout: float
    dynamic: bool = False
    run_as: RunAs | None = None
    env: Mapping[str, str] | None = None
    term_grace: float = TERM_GRACE
    name: str = ""
    """Who the check is for (its real server and virtual server), for the reports."""
    vetting: ScriptVetting | None = None
    """None: run as ``run_as`` without vetting (a checker built by hand)."""
    report: ScriptReporter | None = None

    @property
    def timeout(self) -> float:
        return self.misc_timeout + 2 * self.term_grace + 1.0

    async def check(self) -> CheckOutcome:
        if self.vetting is not None:
            ran = await run_vetted("misc", self.name, self.argv, user=self.vetting.user, group=self.vetting.group,
                                   security=self.vetting.security, timeout=self.misc_timeout, env=self.env,
                                   term_grace=self.term_grace, judge=self._accepts)
        else:
            result = await run_script(self.argv, timeout=self.misc_timeout, run_as=self.run_as, env=self.env,
                                      term_grace=self.term_grace)
            ran = ScriptRun("misc", self.name, self.argv, result, self._accepts(result))
        if self.report is not None:
            self.report(ran)
        return self._outcome(ran.result)

    def _accepts(self, r: ScriptResult) -> bool:
        if r.timed_out or r.exit_status is None:
            return False
        return r.exit_status == 0 or (self.dynamic and 2 <= r.exit_status <= 255)

    def _outcome(self, r: ScriptResult) -> CheckOutcome:
        if r.error is not None and r.exit_status is None and not r.timed_out:
            return CheckOutcome(False, reason=r.error)
        if r.timed_out:
            return CheckOutcome(False, reason="timed out", signal=r.signal, timed_out=True)
        if r.signal is not None:
            return CheckOutcome(False, reason=f"killed by signal {r.signal}", signal=r.signal)
        status = r.exit_status if r.exit_status is not None else 1
        return CheckOutcome(self._accepts(r), reason=f"exit status {status}", exit_status=status)
