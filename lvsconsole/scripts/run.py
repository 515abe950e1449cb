"""Run one script the way keepalived does, and keep what it said.

The command line is executed directly, never through a shell; the child gets its own process group,
/dev/null as stdin and ``/`` as its working directory, and runs as a given user (and group). When the
timeout expires, the whole process group gets SIGTERM and, ``term_grace`` seconds later, SIGKILL; a
script that dies of those signals "timed out".

Unlike keepalived, stdout and stderr are not thrown away: the first :data:`OUTPUT_LIMIT` bytes of each
are kept (the rest is read and dropped, so a chatty script never blocks on a full pipe) and the first
:data:`HEAD_LINES` lines go into the result. The pipes are our own, not asyncio's subprocess pipes:
asyncio's ``Process.wait()`` waits for its pipes to close, so a script that leaves a background child
holding stdout open would look hung. Here the exit is seen at once and the output readers get
:data:`OUTPUT_GRACE` seconds more. Everything is awaited on the event loop.
"""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["HEAD_LINES", "OUTPUT_LIMIT", "TERM_GRACE", "RunAs", "ScriptResult", "run_script"]

TERM_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL for a script that overran its timeout (keepalived's 2 s)."""
OUTPUT_LIMIT = 4096
"""Bytes of stdout and of stderr kept per run."""
HEAD_LINES = 3
"""Lines of stdout and of stderr a result carries."""
LINE_WIDTH = 240
"""Characters kept of each of those lines."""
OUTPUT_GRACE = 0.5
"""Seconds the output readers may go on after the script exited (a background child may hold a pipe)."""


def _is_number(word: str) -> bool:
    return word.isascii() and word.isdigit()  # "¹".isdigit() is True, but int() refuses it


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
        except (KeyError, ValueError):  # ValueError: a NUL in the name
            if not _is_number(user):
                raise KeyError(f"unknown user {user!r}") from None
            try:
                pw = pwd.getpwuid(int(user))
            except KeyError:
                raise KeyError(f"unknown user {user!r}") from None
        if group is None:
            gid = pw.pw_gid
        elif _is_number(group):
            gid = int(group)
        else:
            try:
                gid = grp.getgrnam(group).gr_gid
            except (KeyError, ValueError):
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
    duration: float = 0.0
    """Seconds from start to exit (or to the give-up), monotonic."""
    stdout: tuple[str, ...] = ()
    """The first :data:`HEAD_LINES` lines of stdout, decoded with replacement characters."""
    stderr: tuple[str, ...] = ()

    @property
    def succeeded(self) -> bool:
        return self.exit_status == 0 and not self.timed_out and self.error is None

    def outcome(self) -> str:
        """How it ended, for people: "exited with status 1", "timed out", "killed by signal 9"…"""
        if self.timed_out:
            return "timed out" if self.signal is None else f"timed out (killed by signal {self.signal})"
        if self.error is not None:
            return self.error
        if self.signal is not None:
            return f"killed by signal {self.signal}"
        return f"exited with status {self.exit_status}"


def head_lines(data: bytes, lines: int = HEAD_LINES, width: int = LINE_WIDTH) -> tuple[str, ...]:
    """The first ``lines`` non-empty lines of ``data``, decoded with replacement, each cut at ``width``."""
    text = data.decode("utf-8", errors="replace")
    kept = [line.rstrip()[:width] for line in text.splitlines() if line.strip()]
    return tuple(kept[:lines])


class _OutputHead:
    """Reads a pipe to its end, keeping the first ``limit`` bytes (what arrived so far if cut short)."""

    def __init__(self, fd: int, limit: int) -> None:
        self.data = bytearray()
        self._pipe = os.fdopen(fd, "rb", buffering=0)
        self._limit = limit

    def close(self) -> None:
        """Close the pipe if :meth:`drain` never got to hand it to a transport (which closes it itself)."""
        self._pipe.close()

    async def drain(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), self._pipe)
        try:
            while chunk := await reader.read(65536):
                room = self._limit - len(self.data)
                if room > 0:
                    self.data += chunk[:room]
        finally:
            transport.close()


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
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    started = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=out_w,
            stderr=err_w,
            cwd="/",
            env=dict(env) if env is not None else None,
            process_group=0,
            **(run_as.popen_kwargs() if run_as is not None else {}),
        )
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        for fd in (out_r, err_r):
            os.close(fd)
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return ScriptResult(error=f"{argv[0]}: {text}", duration=time.monotonic() - started)
    except BaseException:  # cancelled while starting: no reader will own the read ends
        for fd in (out_r, err_r):
            os.close(fd)
        raise
    finally:
        os.close(out_w)  # the child has its copies: EOF comes when the child (and its children) close them
        os.close(err_w)
    heads = (_OutputHead(out_r, OUTPUT_LIMIT), _OutputHead(err_r, OUTPUT_LIMIT))
    readers = [asyncio.create_task(h.drain()) for h in heads]
    pgid = proc.pid
    try:
        try:
            async with asyncio.timeout(timeout):
                status = await proc.wait()
            ended = ScriptResult(exit_status=status) if status >= 0 else ScriptResult(signal=-status)
        except TimeoutError:
            ended = await _terminate(proc, pgid, term_grace)
        duration = time.monotonic() - started
        await asyncio.wait(readers, timeout=OUTPUT_GRACE)
    except BaseException:
        _killpg(pgid, signal.SIGKILL)
        raise
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for head in heads:
            head.close()
    return ScriptResult(ended.exit_status, ended.signal, ended.timed_out, ended.error, duration,
                        head_lines(bytes(heads[0].data)), head_lines(bytes(heads[1].data)))


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
