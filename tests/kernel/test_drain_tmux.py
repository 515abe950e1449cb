"""End to end in the kernel guest: an operator drains a real server carrying 50 live connections and watches it.

The real console (``python -m lvsconsole.tui``, embedded engine over the kernel IPVS of the director namespace)
runs in tmux; the test types like an operator (``:drain RS --until-empty then remove``, then ``W`` for the drain
view) and reads the screen with capture-pane. From the client namespace, 50 connections are held on rs1 and
closed a few at a time with a RST, each answered right before its close; the ActiveConn figure on screen falls
with them to 0 and the server is removed (maint, gone from ``ipvsadm -Ln``). All along, a background client
makes a short new connection every ~100 ms: not one fails, and every one made after the drain lands on rs2.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from _drainlab import (
    RS_ADDR,
    RS_PORT,
    VIP,
    VIP_PORT,
    Topology,
    ask,
    config_text,
    connect,
    drain_lab,
    reset_close,
    rs_key,
)
from _netns import NetnsWorker, wait_for

pytestmark = [pytest.mark.kernel,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (Debian: tmux)"),
              # under software emulation on a busy host the console alone may take minutes to start
              pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
LAB = Topology("km-")
HELD = 50
CLOSE_BATCH = 5
"""Connections the client ends together; the next batch waits until the screen shows the count left."""
RISE_TOLERANCE = 2
"""How far the ActiveConn on screen may rise above its lowest value so far (none is expected: rs1 has weight 0)."""
PROBE_EVERY = 0.1
START_TIMEOUT = 300.0
"""The console's start under software emulation (imports, first frame) takes tens of seconds, more on a busy
host."""
RS1_ROW = re.compile(re.escape(rs_key("rs1")) + r"\s+" + re.escape(f"[{VIP}]:tcp:{VIP_PORT}")
                     + r"\s+(?P<phase>\S+)\s+(?P<active>\d+|-)\s+(?P<inactive>\d+|-)")
"""rs1's row in the drain view: REAL SERVER, VIRTUAL SERVER, PHASE, ACTIVE, INACT, …"""


class Tmux:
    """One detached tmux session on a server of its own (``-L``), driven with send-keys, read with capture-pane."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.base = ["tmux", "-L", name]
        # tmux wants a UTF-8 locale to keep the console's box drawing and sparklines
        self.env = {**os.environ, "LC_ALL": "C.UTF-8"}

    def __call__(self, *args: str, check: bool = True) -> str:
        done = subprocess.run([*self.base, *args], capture_output=True, text=True, check=False, env=self.env,
                              timeout=30)
        if check and done.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", self.name, check=False)

    def keys(self, *keys: str) -> None:
        for key in keys:
            self("send-keys", "-t", self.name, key)

    def type(self, text: str) -> None:
        self("send-keys", "-t", self.name, "-l", text)

    def wait(self, condition: Callable[[str], bool], what: str, timeout: float = 30.0, interval: float = 0.2) -> str:
        text = ""

        def shown() -> bool:
            nonlocal text
            text = self.screen()
            return condition(text)

        try:
            wait_for(shown, timeout, what, interval=interval)
        except AssertionError:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what} ({self.state()}); the screen "
                                 f"was:\n{text}") from None
        return text

    def start(self, command: str) -> None:
        """A 160x48 session running ``command``; its pane stays after the command exits, with what the
        command printed last (a console that dies at start leaves its traceback to read)."""
        self("new-session", "-d", "-x", "160", "-y", "48", "-s", self.name, command,
             ";", "set-option", "-t", self.name, "remain-on-exit", "on")

    def exited(self) -> bool:
        # not #{pane_dead_status}: tmux 3.3 leaves it empty when the pty's end is seen before the exit
        return self("display-message", "-p", "-t", self.name, "#{pane_dead}", check=False).strip() == "1"

    def state(self) -> str:
        return "the console has exited" if self.exited() else "the console is running"


@dataclass(frozen=True)
class Seen:
    """rs1's row in the drain view at one capture."""

    phase: str
    active: int | None


def drain_row(screen: str) -> Seen | None:
    match = RS1_ROW.search(screen)
    if match is None:
        return None
    active = match.group("active")
    return Seen(match.group("phase"), int(active) if active.isdigit() else None)


@dataclass
class DrainViewLog:
    """rs1's drain-view row at every capture the test looked at, in order."""

    rows: list[Seen] = field(default_factory=list)

    def shows(self, screen: str, active: int | None = None, phase: str | None = None) -> bool:
        """Record rs1's row on ``screen``; whether it shows ``active`` connections and ``phase``."""
        row = drain_row(screen)
        if row is None:
            return False
        self.rows.append(row)
        return (active is None or row.active == active) and (phase is None or row.phase == phase)


@dataclass
class Prober:
    """New short connections through the VIP every PROBE_EVERY s, from a worker in the client namespace:
    (start time, answer) of each, and every error."""

    worker: NetnsWorker
    answers: list[tuple[float, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        # the loop runs on the worker's thread (inside the namespace); this thread only waits for it
        self._thread = threading.Thread(target=lambda: self.worker.call(self._run, timeout=600), name="prober",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            started = time.monotonic()
            try:
                sock = connect(timeout=15)
                try:
                    answer = ask(sock, f"new{n}")
                finally:
                    reset_close(sock)  # a RST leaves no TIME_WAIT entry behind in IPVS
                if answer != f"rs2:new{n}" and answer != f"rs1:new{n}":
                    self.errors.append(f"new{n}: answered {answer!r}")
                self.answers.append((started, answer))
            except OSError as exc:
                self.errors.append(f"new{n}: {type(exc).__name__}: {exc}")
            self._stop.wait(PROBE_EVERY)

    def stop(self) -> bool:
        """Whether the loop ended (within a minute)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)
            return not self._thread.is_alive()
        return True


@pytest.fixture
def client() -> Iterator[NetnsWorker]:
    with drain_lab(LAB) as worker:
        yield worker


def hold_on_rs1(client: NetnsWorker, count: int) -> list[socket.socket]:
    """Connections through the VIP until ``count`` of them are answered by rs1 (rr: every other one); the
    others are closed."""
    held: list[socket.socket] = []
    opened = 0
    while len(held) < count:
        opened += 1
        assert opened <= 4 * count, f"only {len(held)} of {opened} connections reached rs1"
        sock = client.call(connect)
        if ask(sock, f"hold{opened}") == f"rs1:hold{opened}":
            held.append(sock)
        else:
            reset_close(sock)
    return held


def console_command(workdir: Path, conf: Path, sock: Path) -> str:
    # tmux hands its sessions COLUMNS/LINES of 80x24: drop them so that the console asks the terminal
    env = (f"env -u COLUMNS -u LINES LC_ALL=C.UTF-8 XDG_CONFIG_HOME={workdir}/config XDG_STATE_HOME={workdir}/state "
           f"TERM=xterm-256color COLORTERM=truecolor")
    return (f"cd {ROOT} && ip netns exec {LAB.director} {env} {sys.executable} -m lvsconsole.tui -f {conf} "
            f"--socket {sock} --history-dir {workdir}/history")


def rs_table_line(screen: str, address: str) -> str:
    """The servers panel's line of a real server (its label is ADDR:PORT)."""
    return next((ln for ln in screen.splitlines() if f" {address}:{RS_PORT} " in ln), "")


def test_operator_watches_a_drain_of_50_live_connections(client: NetnsWorker, tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(config_text(["rs1", "rs2"]))
    sock_path = tmp_path / "lvs.sock"
    status_file = tmp_path / "console.status"
    rs1, rs2 = RS_ADDR["rs1"], RS_ADDR["rs2"]
    tmux = Tmux(f"lvsdrain{os.getpid()}")
    view = DrainViewLog()
    prober = Prober(NetnsWorker(LAB.client))
    held: list[socket.socket] = []
    try:
        tmux.start(f"{console_command(tmp_path, conf, sock_path)}; echo $? > {status_file}")
        tmux.wait(lambda s: all("● up" in rs_table_line(s, a) for a in (rs1, rs2)), "the console with both servers up",
                  timeout=START_TIMEOUT, interval=1.0)  # each capture costs the starting console CPU time
        wait_for(lambda: set(LAB.kernel_dests()) == {rs1, rs2}, 30, "both real servers in the kernel table")

        held = hold_on_rs1(client, HELD)
        wait_for(lambda: LAB.kernel_dests()[rs1][1] == HELD, 30, f"rs1 to count {HELD} active connections")
        prober.start()
        wait_for(lambda: len(prober.answers) >= 3, 30, "the background client's first answers")

        # the operator: the prompt, the command, Enter
        tmux.keys(":")
        tmux.wait(lambda s: "(Tab completes, Esc closes)" in s, "the prompt")  # typed earlier, keys are bindings
        command = f"drain {rs1}:{RS_PORT} --until-empty then remove"
        tmux.type(command)
        tmux.wait(lambda s: f":{command}" in s, "the typed command")
        tmux.keys("Enter")
        deadline = time.monotonic() + 30
        while LAB.kernel_dests()[rs1][0] != 0:
            assert time.monotonic() < deadline, f"rs1 kept its weight; the screen was:\n{tmux.screen()}"
            if "[y/Enter]" in tmux.screen():  # a guarded action asks first: the operator confirms
                tmux.keys("y")
            time.sleep(0.2)
        drained_at = time.monotonic()
        # the new clients go to rs2 now; one of theirs may still be passing through rs1 for a moment
        wait_for(lambda: LAB.kernel_dests()[rs1] == (0, HELD), 30, f"rs1 at weight 0 with {HELD} active")

        # the drain view, at the full count before anything closes
        tmux.keys("W")
        screen = tmux.wait(lambda s: view.shows(s, active=HELD), f"rs1 in the drain view with {HELD} active")
        assert "draining→maint" in screen, screen

        # the clients end their sessions a few at a time, each answered right before its close; the operator
        # sees every step on screen
        n = 0
        while held:
            for sock in held[-CLOSE_BATCH:]:
                n += 1
                assert ask(sock, f"bye{n}") == f"rs1:bye{n}", "a held connection was not served while draining"
                reset_close(sock)
            del held[-CLOSE_BATCH:]
            left = len(held)
            tmux.wait(lambda s, left=left: view.shows(s, active=left), f"{left} active on screen",  # type: ignore[misc]
                      timeout=60)
        tmux.wait(lambda s: view.shows(s, phase="removed"), "the phase 'removed' on screen", timeout=90)
        assert prober.stop(), "the background client did not stop"

        # what the operator saw: the count falling through many values from 50, never rising, down to 0
        counts = [r.active for r in view.rows if r.active is not None]
        assert counts and counts[0] == HELD, counts
        assert len(set(counts)) >= 5, f"the count on screen took only {sorted(set(counts))}"
        lowest = HELD
        for count in counts:
            assert count <= lowest + RISE_TOLERANCE, f"ActiveConn rose from {lowest} to {count}: {counts}"
            lowest = min(lowest, count)
        assert 0 in counts, counts
        removed = [r for r in view.rows if r.phase == "removed"]
        assert all(r.active == 0 for r in removed), removed

        # removed: out of the kernel's table, maint in the servers panel
        wait_for(lambda: rs1 not in LAB.kernel_dests(), 30, "rs1 gone from ipvsadm -Ln")
        assert set(LAB.kernel_dests()) == {rs2}
        tmux.keys("Escape")
        tmux.wait(lambda s: "maint" in rs_table_line(s, rs1) and drain_row(s) is None, "rs1 in maint, view closed")

        # not one new client suffered, and after the drain every one went to rs2
        assert prober.errors == []
        after = [answer for started, answer in prober.answers if started > drained_at]
        assert len(after) >= 20, f"only {len(after)} new connections during the drain"
        assert all(a.startswith("rs2:") for a in after), [a for a in after if not a.startswith("rs2:")]

        # leave: the quit dialog; s stops the director
        tmux.keys("C-q")
        tmux.wait(lambda s: "Stop the director" in s, "the quit dialog")
        tmux.keys("s")
        wait_for(tmux.exited, 60, "the console to exit")
        assert status_file.read_text().strip() == "0", tmux.screen()
        assert not sock_path.exists(), "the stopped engine removes its socket"
    finally:
        prober.stop()
        prober.worker.close()
        for sock in held:
            sock.close()
        tmux("kill-server", check=False)
