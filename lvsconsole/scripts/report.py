"""One run of a configured script: vetted first, then run, then described for the log.

Notify scripts, vrrp_script track checks and MISC_CHECK all run through :func:`run_vetted`, so a refused
script says why (instead of failing silently) and every run carries its exit, duration and output to
whoever reports it (the engine turns a :class:`ScriptRun` into a ``ScriptRan`` event).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from lvsconsole.scripts.run import TERM_GRACE, ScriptResult, run_script
from lvsconsole.scripts.vet import Refusal, vet

__all__ = ["ScriptKind", "ScriptReporter", "ScriptRun", "run_vetted"]

ScriptKind: TypeAlias = Literal["notify", "track", "misc"]
"""notify: a VRRP notify script; track: a vrrp_script; misc: a MISC_CHECK."""


@dataclass(frozen=True, slots=True)
class ScriptRun:
    """A finished (or refused) run. ``ok`` is the verdict of its user (misc_dynamic accepts 2..255)."""

    kind: ScriptKind
    name: str
    argv: tuple[str, ...]
    result: ScriptResult
    ok: bool
    refusal: Refusal | None = None
    time: float = 0.0
    """Wall-clock time the run started."""


ScriptReporter: TypeAlias = Callable[[ScriptRun], None]


async def run_vetted(
    kind: ScriptKind,
    name: str,
    argv: Sequence[str],
    *,
    user: str | None,
    group: str | None = None,
    security: bool,
    timeout: float,
    term_grace: float = TERM_GRACE,
    env: Mapping[str, str] | None = None,
    judge: Callable[[ScriptResult], bool] | None = None,
) -> ScriptRun:
    """Vet ``argv`` (see :mod:`lvsconsole.scripts.vet`); if it may run, run it as the vetted user."""
    started = time.time()
    verdict = vet(argv, user, security, group=group)
    if isinstance(verdict, Refusal):
        return ScriptRun(kind, name, tuple(argv), ScriptResult(error=f"refused: {verdict.reason}"), False, verdict,
                         started)
    result = await run_script(argv, timeout=timeout, run_as=verdict.run_as, env=env, term_grace=term_grace)
    ok = judge(result) if judge is not None else result.succeeded
    return ScriptRun(kind, name, tuple(argv), result, ok, None, started)
