"""MISC_CHECK: run a program; its exit status says up (0), down (1 …) or, with misc_dynamic, up at weight
``exit - 2`` (2..255). Also the script runner the check service uses for notify scripts.

As keepalived does (``check_misc.c``, ``notify.c``): the command line is split into words and executed
directly, never through a shell; the child gets its own process group, /dev/null for stdin/out/err, and
``/`` as its working directory, and runs as the checker's ``user [group]`` (else ``script_user`` from
global_defs, else the director's own user). When ``misc_timeout`` (default: the checker's delay_loop)
expires, the whole process group gets SIGTERM and, 2 s later, SIGKILL; a script that dies of those signals
"timed out". Everything is awaited on the event loop (asyncio's child watcher reaps the process), so a
slow or hanging script never blocks other checks. The policy turns the result into keepalived's log
lines ("Misc check for [[ip]:tcp:80 VS [vip]:tcp:80] by [/path] failed (exited with status 1).").
"""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lvsconsole.check.policy import CheckOutcome

__all__ = ["TERM_GRACE", "MiscChecker", "RunAs", "ScriptResult", "run_script"]

TERM_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL for a script that overran its timeout (keepalived's 2 s)."""


@dataclass(frozen=True, slots=True)
class RunAs:
    """A user (and group) a script runs as."""

    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    name: str = ""

    @classmethod
    def lookup(cls, user: str, group: str | None = None) -> RunAs:
        """From names or numbers, as keepalived's ``user USER [GROUP]`` (the group defaults to the
        user's primary group). Raises KeyError for an unknown user or group."""
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            if not user.isdigit():
                raise KeyError(f"unknown user {user!r}") from None
            pw = pwd.getpwuid(int(user))
        if group is None:
            gid = pw.pw_gid
        elif group.isdigit():
            gid = int(group)
        else:
            try:
                gid = grp.getgrnam(group).gr_gid
            except KeyError:
                raise KeyError(f"unknown group {group!r}") from None
        try:
            groups = tuple(os.getgrouplist(pw.pw_name, gid))
        except OSError:
            groups = (gid,)
        return cls(pw.pw_uid, gid, groups, pw.pw_name)

    def popen_kwargs(self) -> dict[str, Any]:
        if os.geteuid() != 0 and self.uid == os.geteuid() and self.gid == os.getegid():
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": list(self.groups)}


@dataclass(frozen=True, slots=True)
class ScriptResult:
    exit_status: int | None = None
    signal: int | None = None
    timed_out: bool = False
    error: str | None = None
    """The script could not be started (not found, not executable, no such user …)."""


def _killpg(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


async def run_script(
    argv: Sequence[str],
    *,
    timeout: float,
    run_as: RunAs | None = None,
    env: Mapping[str, str] | None = None,
    term_grace: float = TERM_GRACE,
) -> ScriptResult:
    """Run ``argv`` without a shell, bounded by ``timeout`` (then SIGTERM, then SIGKILL to its group).

    Cancelling the caller kills the process group at once.
    """
    if not argv:
        return ScriptResult(error="empty command")
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            env=dict(env) if env is not None else None,
            process_group=0,
            **(run_as.popen_kwargs() if run_as is not None else {}),
        )
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        return ScriptResult(error=f"{argv[0]}: {exc.strerror if isinstance(exc, OSError) else exc}")
    pgid = proc.pid
    try:
        try:
            async with asyncio.timeout(timeout):
                status = await proc.wait()
        except TimeoutError:
            return await _terminate(proc, pgid, term_grace)
    except BaseException:
        _killpg(pgid, signal.SIGKILL)
        raise
    if status < 0:
        return ScriptResult(signal=-status)
    return ScriptResult(exit_status=status)


async def _terminate(proc: asyncio.subprocess.Process, pgid: int, grace: float) -> ScriptResult:
    _killpg(pgid, signal.SIGTERM)
    try:
        async with asyncio.timeout(grace):
            status = await proc.wait()
    except TimeoutError:
        _killpg(pgid, signal.SIGKILL)
        try:
            async with asyncio.timeout(grace):
                status = await proc.wait()
        except TimeoutError:
            return ScriptResult(timed_out=True, error=f"process {proc.pid} did not die after SIGKILL")
    _killpg(pgid, signal.SIGKILL)  # whatever the script left behind in its group
    if status >= 0:
        return ScriptResult(exit_status=status)  # it caught SIGTERM and exited: its status counts
    return ScriptResult(signal=-status, timed_out=True)


@dataclass(slots=True)
class MiscChecker:
    argv: tuple[str, ...]
    misc_timeout: float
    dynamic: bool = False
    run_as: RunAs | None = None
    env: Mapping[str, str] | None = None
    term_grace: float = TERM_GRACE

    @property
    def timeout(self) -> float:
        return self.misc_timeout + 2 * self.term_grace + 1.0

    async def check(self) -> CheckOutcome:
        r = await run_script(
            self.argv, timeout=self.misc_timeout, run_as=self.run_as, env=self.env, term_grace=self.term_grace
        )
        if r.error is not None and r.exit_status is None and not r.timed_out:
            return CheckOutcome(False, reason=r.error)
        if r.timed_out:
            return CheckOutcome(False, reason="timed out", signal=r.signal, timed_out=True)
        if r.signal is not None:
            return CheckOutcome(False, reason=f"killed by signal {r.signal}", signal=r.signal)
        status = r.exit_status if r.exit_status is not None else 1
        ok = status == 0 or (self.dynamic and 2 <= status <= 255)
        return CheckOutcome(ok, reason=f"exit status {status}", exit_status=status)
