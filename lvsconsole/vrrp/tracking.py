"""Tracking: interfaces, vrrp_scripts and track files, and what they do to an instance's priority.

The arithmetic is keepalived's (vrrp_track.c), with ``m`` = -1 for ``reverse`` and 1 otherwise:

- interface / script, weight 0: FAULT while down (``reverse``: while up);
- weight W > 0 adds W×m while up; W < 0 adds W×m while down; nothing otherwise;
- a script counts only once it has reported (rise/fall below), unless it has ``init_fail``;
- track file, weight 0: FAULT on a non-zero value (``reverse``: on zero); otherwise value×W×m, clamped to
  [-254, 253], and -254 (or less) means FAULT;
- effective priority = clamp(base + Σ, 1, 254) (the machine clamps; an owner is never changed).

A vrrp_script runs every ``interval`` without a shell, as an asyncio subprocess in its own process
group, as its ``user`` (else global script_user, else keepalived_script). Each run is vetted first
(:mod:`lvsconsole.scripts.vet`: a refused script fails with the reason) and reported, with its exit,
duration and first lines of output, to ``report``. After ``timeout`` it gets SIGTERM, and SIGKILL two
seconds later. Exit 0 is a success. A non-zero exit, a signal, a timeout or a refusal is a failure. Its
result counter works as keepalived's: it starts at rise-1 (0 with init_fail); a success moves it up, and
reaching ``rise`` reports "succeeded". A failure moves it down, and going below ``rise`` reports
"failed". So after a report it takes ``fall`` failures, or ``rise`` successes, to report again. Links
are watched through pyroute2 netlink events (up = IFF_UP and IFF_RUNNING). Track files are polled, and
read like strtol(…, 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lvsconsole.config.model import TrackFile, VrrpScript
from lvsconsole.scripts.report import ScriptReporter, run_vetted
from lvsconsole.scripts.run import RunAs
from lvsconsole.scripts.run import ScriptResult as RunResult
from lvsconsole.scripts.run import run_script as run_any_script
from lvsconsole.scripts.vet import configured_user
from lvsconsole.vrrp.params import TrackKind, TrackSpec
from lvsconsole.vrrp.rtnl_watch import RtnlSubscription

log = logging.getLogger("lvsconsole.vrrp")

IFF_UP = 0x1
IFF_RUNNING = 0x40
FILE_FAULT = -254
KILL_GRACE = 2.0

Effect = int | None
"""A tracker's contribution to the priority; None means the instance must be in FAULT."""


# -------------------------------------------------------------------------------------------- arithmetic


def up_down_effect(weight: int, reverse: bool, up: bool) -> Effect:
    """An interface or script tracked with ``weight`` (keepalived's process_script_update_priority)."""
    multiplier = -1 if reverse else 1
    if weight == 0:
        return None if up != (multiplier == 1) else 0
    if up:
        return weight * multiplier if weight > 0 else 0
    return weight * multiplier if weight < 0 else 0


def file_effect(weight: int, reverse: bool, value: int) -> Effect:
    """A track file holding ``value`` (keepalived's update_track_file_status)."""
    multiplier = -1 if reverse else 1
    value = max(-254, min(254, value))
    if weight == 0:
        status = FILE_FAULT if (value != 0) == (multiplier == 1) else 0
    else:
        status = max(FILE_FAULT, min(253, value * weight * multiplier))
    return None if status <= FILE_FAULT else status


def parse_track_file(text: str) -> int:
    """The number at the start of a track file, as strtol(buf, NULL, 0) reads it; 0 if none."""
    text = text.strip()
    sign = 1
    if text and text[0] in "+-":
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    base = 10
    if text[:2].lower() == "0x":
        base, text = 16, text[2:]
    elif text[:1] == "0" and len(text) > 1:
        base, text = 8, text[1:]
    digits = "0123456789abcdef"[:base]
    end = 0
    while end < len(text) and text[end].lower() in digits:
        end += 1
    return sign * int(text[:end], base) if end else 0


class ScriptState:
    """The rise/fall counter of one vrrp_script (sans-IO)."""

    def __init__(self, rise: int = 1, fall: int = 1, *, init_fail: bool = False) -> None:
        self.rise = max(rise, 1)
        self.fall = max(fall, 1)
        self.result = 0 if init_fail else self.rise - 1
        self.reported: bool | None = False if init_fail else None  # None until the first report

    @property
    def up(self) -> bool | None:
        """True/False once reported (or init_fail), None while the script is still in its init state."""
        return self.reported

    def record(self, success: bool) -> bool | None:
        """Count one run; returns the new status when it is reported, else None."""
        rise, fall = self.rise, self.fall
        if success:
            if self.result < rise - 1:
                self.result += 1
                return None
            if self.result == rise + fall - 1:
                return None
            changed = self.result < rise
            self.result = rise + fall - 1
            if changed:
                self.reported = True
                return True
            return None
        if self.result > rise:
            self.result -= 1
            return None
        changed = self.result == rise or self.reported is None
        self.result = 0
        if changed:
            self.reported = False
            return False
        return None


def carry_script_state(old: ScriptState, script: VrrpScript) -> ScriptState:
    """The state of a vrrp_script a reload changed (weight, interval, rise ...): keepalived's clear_diff_script.

    Its result counter keeps its distance from ``rise`` in the new rise/fall range, so a succeeding script
    stays up and a failing one down: a new weight then applies at once instead of after the first runs.
    A script that had not reported yet starts afresh.
    """
    new = ScriptState(script.rise, script.fall, init_fail=script.init_fail)
    if old.reported is None:
        return new
    top = new.rise + new.fall - 1
    if old.result < old.rise:
        new.result = 0 if old.result == 0 else max(0, new.rise - (old.rise - old.result))
    elif old.result == old.rise + old.fall - 1:
        new.result = top
    else:
        new.result = min(new.rise + (old.result - old.rise), top)
    new.reported = new.result >= new.rise
    return new


# -------------------------------------------------------------------------------------------- per instance


def fault_reason(kind: TrackKind, name: str) -> str:
    return {"interface": f"interface {name} down", "script": f"script {name} failed",
            "file": f"track file {name}", "process": f"tracked process {name} quorum lost"}[kind]


class InstanceTracking:
    """The tracker effects on one instance: its total priority and its tracker faults (sans-IO)."""

    def __init__(self, base_priority: int, tracks: Iterable[TrackSpec]) -> None:
        self.base_priority = base_priority
        self.tracks = tuple(tracks)
        self._effects: dict[tuple[TrackKind, str], Effect] = {}
        for spec in self.tracks:
            # before any report: interfaces are resolved at once by the monitor; scripts count nothing,
            # except that a weight-0 script keeps the instance in FAULT until it first succeeds
            initial: Effect = None if spec.kind == "script" and spec.weight == 0 else 0
            self._effects[(spec.kind, spec.name)] = initial

    def specs(self, kind: TrackKind, name: str) -> list[TrackSpec]:
        return [s for s in self.tracks if s.kind == kind and s.name == name]

    def tracks_kind(self, kind: TrackKind) -> list[str]:
        return sorted({s.name for s in self.tracks if s.kind == kind})

    def set_up_down(self, kind: TrackKind, name: str, up: bool | None) -> bool:
        """An interface or script is now up/down (None: a script not reported yet). True if it changed."""
        changed = False
        for spec in self.specs(kind, name):
            if up is None:
                effect: Effect = None if spec.weight == 0 else 0
            else:
                effect = up_down_effect(spec.weight, spec.reverse, up)
            changed |= self._set(kind, name, effect)
        return changed

    def set_file_value(self, name: str, value: int) -> bool:
        changed = False
        for spec in self.specs("file", name):
            changed |= self._set("file", name, file_effect(spec.weight, spec.reverse, value))
        return changed

    def _set(self, kind: TrackKind, name: str, effect: Effect) -> bool:
        key = (kind, name)
        if key in self._effects and self._effects[key] == effect:
            return False
        self._effects[key] = effect
        return True

    def contributions(self) -> list[tuple[TrackSpec, Effect]]:
        """Each tracker with what it adds to the priority now (None: it holds the instance in FAULT)."""
        latest = {(s.kind, s.name): s for s in self.tracks}  # the spec whose effect was stored last
        return [(spec, self._effects.get(key, 0)) for key, spec in latest.items()]

    @property
    def total_priority(self) -> int:
        return self.base_priority + sum(e for e in self._effects.values() if e is not None)

    @property
    def faults(self) -> frozenset[str]:
        return frozenset(fault_reason(kind, name) for (kind, name), e in self._effects.items() if e is None)

    @property
    def all_reasons(self) -> frozenset[str]:
        """Every fault reason this tracking can ever raise (to clear the ones that are gone)."""
        return frozenset(fault_reason(s.kind, s.name) for s in self.tracks)


# -------------------------------------------------------------------------------------------- scripts


@dataclass(frozen=True, slots=True)
class ScriptResult:
    """One finished run of a vrrp_script."""

    name: str
    success: bool
    kind: str  # "succeeded", "failed", "timed_out"
    detail: str = ""


def track_outcome(result: RunResult) -> tuple[bool, str, str]:
    """keepalived's view of one vrrp_script run: (success, "succeeded"|"failed"|"timed_out", detail)."""
    if result.timed_out:
        return False, "timed_out", ""
    if result.error is not None:
        return False, "failed", result.error
    if result.signal is not None:
        return False, "failed", f"due to signal {result.signal}"
    if result.exit_status == 0:
        return True, "succeeded", ""
    return False, "failed", f"exited with status {result.exit_status}"


async def run_script(argv: Sequence[str], timeout: float, *, run_as: RunAs | None = None) -> tuple[bool, str, str]:
    """Run ``argv`` once (no shell, unvetted); returns (success, kind, detail)."""
    return track_outcome(await run_any_script(argv, timeout=timeout, run_as=run_as, term_grace=KILL_GRACE))


class ScriptRunner:
    """Runs every tracked vrrp_script on its interval and reports status changes."""

    def __init__(self, scripts: Iterable[VrrpScript], on_change: Callable[[str, bool], None], *,
                 script_user: Sequence[str] = (), script_security: bool = False,
                 report: ScriptReporter | None = None) -> None:
        self.scripts = {s.name: s for s in scripts}
        self.states = {s.name: ScriptState(s.rise, s.fall, init_fail=s.init_fail) for s in self.scripts.values()}
        self._on_change = on_change
        self._script_user = tuple(script_user)
        self._script_security = script_security
        self._report = report
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.last: dict[str, ScriptResult] = {}

    def start(self) -> None:
        for script in self.scripts.values():
            self._start_one(script)

    def _start_one(self, script: VrrpScript) -> None:
        if script.script is None or not script.script.argv:
            log.warning("VRRP_Script(%s) has no script; ignored", script.name)
            return
        self._tasks[script.name] = asyncio.create_task(self._loop(script), name=f"vrrp_script {script.name}")

    def set_policy(self, script_user: Sequence[str], script_security: bool) -> None:
        """A reload's global script_user / enable_script_security: every later run is vetted and run under them
        (a script keeps its state: a user change is no reason to count rise/fall again)."""
        self._script_user = tuple(script_user)
        self._script_security = script_security

    def update(self, scripts: Iterable[VrrpScript]) -> set[str]:
        """Take a new set of scripts (reload): unchanged ones keep running with their state.

        Returns the names of the scripts that were (re)started.
        """
        new = {s.name: s for s in scripts}
        carried: dict[str, ScriptState] = {}
        for name in list(self.scripts):
            if new.get(name) != self.scripts[name]:
                task = self._tasks.pop(name, None)
                if task is not None:
                    task.cancel()
                del self.scripts[name]
                old_state = self.states.pop(name)
                if name in new:
                    carried[name] = carry_script_state(old_state, new[name])
                self.last.pop(name, None)
        started = set()
        for name, script in new.items():
            if name not in self.scripts:
                self.scripts[name] = script
                self.states[name] = carried.get(name) or ScriptState(script.rise, script.fall,
                                                                     init_fail=script.init_fail)
                self._start_one(script)
                started.add(name)
        return started

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def status(self, name: str) -> bool | None:
        state = self.states.get(name)
        return None if state is None else state.up

    async def _loop(self, script: VrrpScript) -> None:
        assert script.script is not None
        argv = script.script.argv
        loop = asyncio.get_running_loop()
        interval = max(script.interval, 0.01)
        running: asyncio.Task[None] | None = None
        next_at = loop.time()
        try:
            while True:
                if running is None or running.done():
                    # resolved per run: a reload may change the global script_user under a running script
                    user = configured_user(script.user, (script.script.user, script.script.group), self._script_user)
                    running = asyncio.create_task(self._once(script, argv, user))
                else:
                    log.warning("Track script %s is already running, expect slowness", script.name)
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - loop.time()))
        finally:
            if running is not None and not running.done():
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running

    async def _once(self, script: VrrpScript, argv: Sequence[str], user: tuple[str | None, str | None]) -> None:
        ran = await run_vetted("track", script.name, argv, user=user[0], group=user[1],
                               security=self._script_security, timeout=script.effective_timeout,
                               term_grace=KILL_GRACE)
        if self._report is not None:
            self._report(ran)
        success, kind, detail = track_outcome(ran.result)
        self.last[script.name] = ScriptResult(script.name, success, kind, detail)
        reported = self.states[script.name].record(success)
        if reported is None:
            return
        if detail and not success:
            log.info("VRRP_Script(%s) %s (%s)", script.name, kind, detail)
        else:
            log.info("VRRP_Script(%s) %s", script.name, kind)
        self._on_change(script.name, reported)


# -------------------------------------------------------------------------------------------- links


def link_up(flags: int) -> bool:
    return flags & (IFF_UP | IFF_RUNNING) == IFF_UP | IFF_RUNNING


class LinkMonitor:
    """Follows the up/down state of interfaces through pyroute2 netlink link events."""

    def __init__(self, on_change: Callable[[str, bool], None]) -> None:
        self._on_change = on_change
        self.state: dict[str, bool] = {}
        self._links = RtnlSubscription("vrrp link monitor", self._on_message)

    async def start(self) -> None:
        from pyroute2 import AsyncIPRoute
        from pyroute2.netlink.rtnl import RTMGRP_LINK

        await self._links.open(RTMGRP_LINK)
        async with AsyncIPRoute() as dump:
            async for link in await dump.link("dump"):
                name = link.get("ifname")
                if name:
                    self.state[name] = link_up(link["flags"])
        self._links.follow()

    def is_up(self, name: str) -> bool:
        return self.state.get(name, False)

    def _on_message(self, msg: Any) -> None:
        event = msg.get("event")
        name = msg.get("ifname")
        if not name or event not in ("RTM_NEWLINK", "RTM_DELLINK"):
            return
        up = event == "RTM_NEWLINK" and link_up(msg["flags"])
        if self.state.get(name) != up:
            self.state[name] = up
            log.info("Netlink reports %s %s", name, "UP" if up else "DOWN")
            self._on_change(name, up)

    async def stop(self) -> None:
        await self._links.close()


# -------------------------------------------------------------------------------------------- track files


class FileWatcher:
    """Polls track files and reports their value when it changes (a missing file reads as 0)."""

    def __init__(self, files: Iterable[TrackFile], on_change: Callable[[str, int], None], *,
                 period: float = 0.2) -> None:
        self.files = {f.name: f for f in files if f.file}
        self.values: dict[str, int] = {}
        self._stamp: dict[str, tuple[int, int] | None] = {}
        self._on_change = on_change
        self._period = period
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Read (and initialise) the files not read yet, and start polling."""
        for name, tfile in self.files.items():
            if name not in self.values:
                self._init_file(tfile)
                self.values[name] = self._read(name)
        if self._task is None:
            self._task = asyncio.create_task(self._poll(), name="vrrp track files")

    def update(self, files: Iterable[TrackFile]) -> None:
        """Take a new set of track files (reload); unchanged ones keep their last value."""
        new = {f.name: f for f in files if f.file}
        for name in list(self.files):
            if new.get(name) != self.files[name]:
                del self.files[name]
                self.values.pop(name, None)
                self._stamp.pop(name, None)
        for name, tfile in new.items():
            if name not in self.files:
                self.files[name] = tfile
                self._init_file(tfile)
                self.values[name] = self._read(name)

    def _init_file(self, tfile: TrackFile) -> None:
        if tfile.init_file is None or not tfile.file:
            return
        path = Path(tfile.file)
        args = list(tfile.init_file)
        overwrite = "overwrite" in args
        values = [a for a in args if a != "overwrite"]
        if path.exists() and not overwrite:
            return
        try:
            path.write_text(f"{values[0] if values else 0}\n")
        except OSError as exc:
            log.warning("track_file %s: cannot initialise %s: %s", tfile.name, path, exc)

    def _read(self, name: str) -> int:
        path = self.files[name].file
        assert path is not None
        try:
            st = os.stat(path)
            self._stamp[name] = (st.st_mtime_ns, st.st_size)
            with open(path, "rb") as fh:
                return parse_track_file(fh.read(127).decode(errors="replace"))
        except OSError:
            self._stamp[name] = None
            return 0

    def _changed_on_disk(self, name: str) -> bool:
        path = self.files[name].file
        assert path is not None
        try:
            st = os.stat(path)
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        return stamp != self._stamp.get(name)

    def poll_once(self) -> None:
        for name in self.files:
            if not self._changed_on_disk(name):
                continue
            value = self._read(name)
            if value != self.values.get(name):
                self.values[name] = value
                log.info("Track file %s now has value %d", name, value)
                self._on_change(name, value)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._period)
            self.poll_once()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
