"""Scripts on the engine side: every run becomes a ``ScriptRan`` event, and ``script test`` runs one now.

:class:`ScriptRunLog` (sans-IO) turns each :class:`~lvsconsole.scripts.report.ScriptRun` into an event and
remembers each script's last verdict, so a change of result stands out from the steady state.

``script test NAME`` runs the vrrp_script NAME of the running config, ``script test misc RS [in VS]`` the
MISC_CHECK(s) of that real server, exactly as the engine would (same user, vetting and timeout), once
and outside the tracking and check state: nothing it returns reaches the VRRP priority or IPVS.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from lvsconsole.config import model as m
from lvsconsole.engine.events import ScriptRan
from lvsconsole.engine.keys import rs_key, vs_key
from lvsconsole.engine.refs import RsRef, VsRef
from lvsconsole.scripts.report import ScriptKind, ScriptRun, run_vetted
from lvsconsole.scripts.vet import configured_user

__all__ = ["ScriptRunLog", "ScriptSpec", "misc_specs", "run_json", "run_spec", "run_specs", "run_text", "script_ran",
           "track_spec"]


def script_ran(run: ScriptRun, *, changed: bool = False) -> ScriptRan:
    r = run.result
    return ScriptRan(
        **({"time": run.time} if run.time else {}),
        script_kind=run.kind, name=run.name, argv=run.argv, ok=run.ok, exit_status=r.exit_status, signal=r.signal,
        timed_out=r.timed_out, error=r.error or "", refused=run.refusal.code if run.refusal else "",
        duration=round(r.duration, 6), stdout=r.stdout, stderr=r.stderr, changed=changed,
    )


class ScriptRunLog:
    """Each script's last verdict, to flag a run whose verdict changed (sans-IO)."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], bool] = {}

    def event(self, run: ScriptRun) -> ScriptRan:
        key = (run.kind, run.name)
        previous = self._last.get(key)
        self._last[key] = run.ok
        return script_ran(run, changed=previous is not None and previous != run.ok)


# ---------------------------------------------------------------------------------------------- script test


@dataclass(frozen=True, slots=True)
class ScriptSpec:
    """A configured script as the engine would run it."""

    kind: ScriptKind
    name: str
    argv: tuple[str, ...]
    user: str | None
    group: str | None
    security: bool
    timeout: float
    dynamic: bool = False
    """MISC_CHECK misc_dynamic: exit 2..255 also means up."""


def track_spec(config: m.Config, name: str) -> ScriptSpec | None:
    """The vrrp_script ``name``; None if there is none (or it has no script line)."""
    sc = next((s for s in config.vrrp_scripts if s.name == name), None)
    if sc is None or sc.script is None or not sc.script.argv:
        return None
    g = config.global_defs
    user, group = configured_user(sc.user, (sc.script.user, sc.script.group), g.script_user)
    return ScriptSpec("track", name, sc.script.argv, user, group, g.enable_script_security, sc.effective_timeout)


def misc_specs(config: m.Config, rs_ref: RsRef, vs_ref: VsRef | None) -> list[ScriptSpec]:
    """Every MISC_CHECK of the real servers ``rs_ref`` matches (in ``vs_ref``, or in any virtual server)."""
    g = config.global_defs
    out: list[ScriptSpec] = []
    for vs in config.virtual_servers:
        if vs_ref is not None and not vs_ref.matches(address=vs.address, port=vs.port, protocol=vs.protocol,
                                                     fwmark=vs.fwmark, group=vs.group):
            continue
        for rs in vs.real_servers:
            if not rs_ref.matches(rs.address, rs.port):
                continue
            for c in rs.checkers:
                if not isinstance(c, m.MiscCheck) or c.misc_path is None or not c.misc_path.argv:
                    continue
                user, group = configured_user(c.user, g.script_user)
                timeout = c.misc_timeout if c.misc_timeout is not None else c.delay_loop
                name = f"{rs_key(vs, rs.address, rs.port if vs.fwmark is None else None)} in VS {vs_key(vs)}"
                out.append(ScriptSpec("misc", name, c.misc_path.argv, user, group, g.enable_script_security,
                                      timeout, c.misc_dynamic))
    return out


async def run_spec(spec: ScriptSpec) -> ScriptRun:
    def accepts(status: int | None) -> bool:
        return status == 0 or (spec.dynamic and status is not None and 2 <= status <= 255)

    return await run_vetted(spec.kind, spec.name, spec.argv, user=spec.user, group=spec.group,
                            security=spec.security, timeout=spec.timeout,
                            judge=lambda r: not r.timed_out and accepts(r.exit_status))


async def run_specs(specs: list[ScriptSpec]) -> list[ScriptRun]:
    return list(await asyncio.gather(*(run_spec(s) for s in specs)))


def run_json(spec: ScriptSpec, run: ScriptRun) -> dict[str, Any]:
    r = run.result
    return {
        "kind": run.kind, "name": run.name, "argv": list(run.argv), "user": spec.user, "timeout": spec.timeout,
        "ok": run.ok, "exit_status": r.exit_status, "signal": r.signal, "timed_out": r.timed_out,
        "refused": run.refusal.code if run.refusal else None, "error": r.error, "duration": round(r.duration, 6),
        "stdout": list(r.stdout), "stderr": list(r.stderr),
    }


def run_text(run: ScriptRun) -> str:
    r = run.result
    label = {"track": f"vrrp_script {run.name}", "misc": f"MISC_CHECK of {run.name}"}.get(run.kind, run.name)
    verdict = "ok" if run.ok else "FAILED"
    lines = [f"{label}: {verdict}: {r.outcome()} after {r.duration:.3f}s", f"  command: {' '.join(run.argv)}"]
    lines += [f"  stdout: {line}" for line in r.stdout]
    lines += [f"  stderr: {line}" for line in r.stderr]
    return "\n".join(lines)
