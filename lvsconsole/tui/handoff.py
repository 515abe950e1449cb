"""Hand an embedded engine to a background ``lvsconsole run --headless``, so that closing the console does not
drop the VIPs.

1. The background engine starts from the config *file*: if the running config was committed but not
   written, it is written first (``write``, audited) when the operator asked for it, refused otherwise.
2. The embedded control socket is closed (the new engine must own the path), the new engine is spawned in
   its own session (stdin from /dev/null, output appended to ``SOCKET.log``), and we wait until its control
   socket answers ``show stats``.
3. Runtime overrides (drain, weight, disable) are replayed to it over the socket.
4. The caller then leaves *without* stopping the embedded director (no priority-0 advert, VIPs and the
   IPVS table stay; the new engine adopts the table as it finds it).

If the new engine does not answer in time, it is terminated (by its pid), the embedded control socket is
opened again and ``HandoffError`` says why (with the end of its log): the embedded engine keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lvsconsole.engine.control import ControlClient, ControlServer, ControlSocketError

if TYPE_CHECKING:
    from lvsconsole.engine.daemon import Engine

HANDOFF_TIMEOUT = 20.0


class HandoffError(Exception):
    """The background engine could not take over; the embedded one keeps running."""


@dataclass(frozen=True)
class Handoff:
    """A background engine that answered: its pid, control socket and log file."""

    pid: int
    socket_path: str
    log_path: str
    replayed: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        return (f"the director now runs in the background as pid {self.pid} (log {self.log_path}); "
                f"attach with: lvsconsole attach --socket {self.socket_path}")


def file_differs(engine: Engine) -> bool:
    """True when the running config is not what the config file says (a commit not yet written)."""
    path = engine.store.path
    if path is None:
        return False
    try:
        with open(path, "rb") as fh:
            text = fh.read().decode("utf-8", "surrogateescape")
    except OSError:
        return True
    return text != engine.store.running.text


def headless_command(path: str, socket_path: str, *, dry_run: bool, config_id: str | None) -> list[str]:
    argv = [sys.executable, "-m", "lvsconsole.cli", "run", "--headless", "-f", path, "--socket", socket_path]
    if dry_run:
        argv.append("--dry-run")
    if config_id:
        argv += ["-i", config_id]
    return argv


def override_commands(rows: Any) -> list[str]:
    """``show overrides`` JSON → the commands that recreate them on another engine."""
    out: list[str] = []
    for row in rows if isinstance(rows, list) else ():
        target = f"{row['rs']} in {row['vs']}"
        if row.get("disabled"):
            out.append(f"disable {target}")
        if row.get("weight") is not None:
            out.append(f"weight {row['rs']} {row['weight']} in {row['vs']}")
        if row.get("drain"):
            out.append(f"drain {target}")
    return out


def _tail(path: str, lines: int = 8) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 4096))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


async def _answers(socket_path: str) -> bool:
    try:
        async with await ControlClient.connect(socket_path, timeout=1.0) as client:
            result = await client.request("show stats", who="handoff", timeout=2.0)
            return result.ok
    except (ControlSocketError, OSError, TimeoutError):
        return False


async def hand_off(engine: Engine, *, socket_path: str, dry_run: bool, config_id: str | None, who: str,
                   progress: Callable[[str], None], write_first: bool = False,
                   timeout: float = HANDOFF_TIMEOUT) -> Handoff:
    """Start the background engine and wait until it answers; returns what happened (for the operator)."""
    store = engine.store
    path = store.path
    if path is None:
        raise HandoffError("this engine was not started from a file: nothing to hand to a background engine")
    if file_differs(engine):
        if not write_first:
            raise HandoffError(f"the running configuration (revision {store.running.number}) is not saved in "
                               f"{path}: write it first")
        progress(f"writing the running configuration to {path}")
        written = await engine.executor.run("write", who)
        if not written.ok:
            raise HandoffError(f"cannot write {path}: {written.message}")
    overrides = await engine.executor.run("show overrides", who)
    replay = override_commands(overrides.data)

    progress("closing this console's control socket")
    if engine.server is not None:
        await engine.server.close()
    log_path = socket_path + ".log"
    argv = headless_command(path, socket_path, dry_run=dry_run, config_id=config_id)
    progress(f"starting {' '.join(argv[2:])}")
    try:
        log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    except OSError:
        log_path = os.devnull
        log = open(os.devnull, "ab")  # noqa: SIM115
    with log:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd="/",
                                 start_new_session=True, close_fds=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if await _answers(socket_path):
                break
            if child.poll() is not None:
                raise HandoffError(f"the background engine exited with status {child.returncode}:\n"
                                   f"{_tail(log_path)}")
            if time.monotonic() > deadline:
                raise HandoffError(f"the background engine did not answer on {socket_path} within {timeout:g} s:\n"
                                   f"{_tail(log_path)}")
            progress(f"waiting for pid {child.pid} to answer on {socket_path}")
            await asyncio.sleep(0.2)
        if replay:
            progress(f"replaying {len(replay)} runtime override{'s' * (len(replay) != 1)}")
            async with await ControlClient.connect(socket_path) as client:
                for command in replay:
                    result = await client.request(command, who="handoff")
                    if not result.ok:
                        progress(f"override not replayed: {command}: {result.message}")
    except BaseException:
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(child.wait, 5.0)
        await _reopen(engine, socket_path)
        raise
    return Handoff(child.pid, socket_path, log_path, tuple(replay))


async def _reopen(engine: Engine, socket_path: str) -> None:
    server = ControlServer(socket_path, engine.executor.run, engine.bus)
    try:
        await server.start()
    except (ControlSocketError, OSError):
        engine.server = None
        return
    engine.server = server
