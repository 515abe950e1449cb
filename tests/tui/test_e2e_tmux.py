"""End to end: the real console binary in a real terminal (tmux), driven with send-keys, read with capture-pane.

`python -m lvsconsole.tui -f CONF --dry-run` runs the console with its engine embedded (memory IPVS) over
real listeners on 127.0.0.1; we drain a server from the keyboard, confirm, see weight 0 on screen and over
the control socket, then quit and stop the director.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lvsconsole.engine.control import run_command

pytestmark = [pytest.mark.tui, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (Debian: tmux)")]

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """global_defs {{
    router_id E2E_DIRECTOR
}}
virtual_server 127.0.0.1 {vs} {{
    delay_loop 0.3
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.1 {a} {{
        weight 3
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
    real_server 127.0.0.1 {b} {{
        weight 1
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
}}
"""


class Tmux:
    def __init__(self, name: str) -> None:
        self.name = name
        self.base = ["tmux", "-L", name]

    def __call__(self, *args: str, check: bool = True) -> str:
        done = subprocess.run([*self.base, *args], capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", self.name, check=False)

    def keys(self, *keys: str) -> None:
        for key in keys:
            self("send-keys", "-t", self.name, key)
            time.sleep(0.15)

    def wait(self, condition: Callable[[str], bool], what: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if condition(text):
                return text
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; the screen was:\n{text}")

    def alive(self) -> bool:
        return subprocess.run([*self.base, "has-session", "-t", self.name], capture_output=True,
                              check=False).returncode == 0


def listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="lvse2e-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_drain_in_the_real_binary(workdir: Path) -> None:
    servers = [listener(), listener()]
    a, b = (s.getsockname()[1] for s in servers)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        vs = probe.getsockname()[1]
    conf = workdir / "keepalived.conf"
    conf.write_text(CONFIG.format(vs=vs, a=a, b=b))
    sock = str(workdir / "lvs.sock")
    # tmux hands its sessions COLUMNS/LINES of 80x24: drop them so that the console asks the terminal
    env = (f"env -u COLUMNS -u LINES XDG_CONFIG_HOME={workdir}/config XDG_STATE_HOME={workdir}/state "
           f"TERM=xterm-256color COLORTERM=truecolor")
    command = f"cd {ROOT} && {env} {sys.executable} -m lvsconsole.tui -f {conf} --dry-run --socket {sock}"
    tmux = Tmux(f"lvstui{os.getpid()}")
    tmux("new-session", "-d", "-x", "160", "-y", "48", "-s", tmux.name, command)
    try:
        row = f"127.0.0.1:{a}"
        screen = tmux.wait(lambda s: row in s and s.count("● up") >= 2 and "embedded, dry-run" in s,
                           "both real servers up, full width")
        assert "E2E_DIRECTOR@" in screen
        # the cursor starts on the virtual server; Down selects the first real server
        tmux.keys("Down", "d")
        screen = tmux.wait(lambda s: f"Drain {row} in 127.0.0.1:{vs}?" in s, "the confirmation")
        assert "Drain [y/Enter]" in screen and "Cancel [n/Esc]" in screen
        tmux.keys("y")

        def drained(s: str) -> bool:
            line = next((ln for ln in s.splitlines() if row in ln), "")
            return "drain" in line and line.split()[4:6] == ["0", "3"]

        screen = tmux.wait(drained, "weight 0 on screen")
        result = run_command(f"show rs {row}", sock, who="e2e")
        assert result.ok and result.data[0]["weight"] == 0 and result.data[0]["health"] == "draining"
        assert any("AUDIT" in ln and f"drain {row}" in ln for ln in screen.splitlines())
        # leave: the dialog asks; s stops the director
        tmux.keys("C-q")
        tmux.wait(lambda s: "Stop the director" in s, "the quit dialog")
        tmux.keys("s")
        deadline = time.monotonic() + 20
        while tmux.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not tmux.alive(), "the console should have exited"
        assert not os.path.exists(sock), "the stopped engine removes its socket"
    finally:
        if tmux.alive():
            tmux("kill-session", "-t", tmux.name, check=False)
        tmux("kill-server", check=False)
        for s in servers:
            s.close()
