"""The open-file limit follows the config, as keepalived's set_max_file_limit: the arithmetic, and a real engine."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lvsconsole.check._connect import SPARE_SOCKETS
from lvsconsole.config.build import load_text
from lvsconsole.engine.fdlimit import BASE, SPARE, LimitChange, fds_needed, raise_open_file_limit

REPO = Path(__file__).resolve().parents[2]
NOFILE = resource.RLIMIT_NOFILE


def farm(servers: int, *, checker: str = "TCP_CHECK { connect_timeout 1 }") -> str:
    rows = "\n".join(f"    real_server 127.0.0.1 {20000 + i} {{\n        {checker}\n    }}" for i in range(servers))
    return f"""
global_defs {{
    router_id FDLIMIT
}}
virtual_server 127.0.0.1 18083 {{
    delay_loop 60
    lb_algo rr
    lb_kind NAT
    protocol TCP
{rows}
}}
"""


def config(text: str):  # type: ignore[no-untyped-def]
    built = load_text(text)
    assert built.config is not None, built.diagnostics
    return built.config


def test_what_a_config_needs() -> None:
    classic = config((REPO / "lvsconsole/examples/master.conf").read_text())
    # two TCP_CHECKs, one VRRP instance
    assert fds_needed(classic) == BASE + 2 * 2 + 2 * SPARE_SOCKETS + 2 * 1 + SPARE
    assert fds_needed(config(farm(300))) - fds_needed(config(farm(100))) == 400
    # a FILE_CHECK holds no file while it runs: no spare sockets either
    assert fds_needed(config(farm(3, checker="FILE_CHECK { file /tmp/x }"))) == BASE + SPARE


class FakeLimits:
    def __init__(self, soft: int, hard: int, refuse: bool = False) -> None:
        self.limits = (soft, hard)
        self.refuse = refuse

    def get(self, which: int) -> tuple[int, int]:
        assert which == NOFILE
        return self.limits

    def set(self, which: int, limits: tuple[int, int]) -> None:
        assert which == NOFILE
        if self.refuse:
            raise ValueError("not allowed to raise maximum limit")
        self.limits = limits


def test_raised_to_what_is_needed_only_and_never_lowered() -> None:
    fake = FakeLimits(1024, 524288)
    assert raise_open_file_limit(900, get=fake.get, set_=fake.set) is None and fake.limits == (1024, 524288)
    change = raise_open_file_limit(23_000, get=fake.get, set_=fake.set)
    assert change == LimitChange(23_000, 1024, 23_000) and change.complete
    assert fake.limits == (23_000, 524288)
    assert change.message == "Open file limit raised from 1024 to 23000 (the config needs 23000)"
    infinite = FakeLimits(resource.RLIM_INFINITY, resource.RLIM_INFINITY)
    assert raise_open_file_limit(10**6, get=infinite.get, set_=infinite.set) is None


def test_the_hard_limit_caps_it_and_a_refusal_is_reported() -> None:
    capped = FakeLimits(1024, 4096)
    change = raise_open_file_limit(23_000, get=capped.get, set_=capped.set)
    assert change is not None and not change.complete and capped.limits == (4096, 4096)
    assert change.message.startswith("Open file limit raised from 1024 to 4096, the hard limit; the config needs 23000")
    stuck = FakeLimits(4096, 4096)
    change = raise_open_file_limit(23_000, get=stuck.get, set_=stuck.set)
    assert change is not None and change.after == 4096
    assert change.message == "Failed to set open file limit to 23000 (it stays 4096): the hard limit is 4096"
    refused = FakeLimits(1024, 524288, refuse=True)
    change = raise_open_file_limit(23_000, get=refused.get, set_=refused.set)
    assert change is not None and refused.limits == (1024, 524288)
    assert change.message.endswith("(it stays 1024): not allowed to raise maximum limit")


def soft_limit_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no 'Max open files' line")


def wait_for_text(path: Path, text: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while text not in (content := path.read_text()):
        assert time.monotonic() < deadline, f"{text!r} not in:\n{content}"
        time.sleep(0.05)
    return content


@pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="needs /proc/PID/limits")
def test_a_running_engine_raises_its_limit_at_start_and_on_reload(tmp_path: Path) -> None:
    _, hard = resource.getrlimit(NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4000:
        pytest.skip(f"LOUD: the hard open-file limit here is {hard}, below what this test raises to")
    conf = tmp_path / "keepalived.conf"
    conf.write_text(farm(300))
    first, second = fds_needed(config(farm(300))), fds_needed(config(farm(700)))
    log = tmp_path / "engine.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lvsconsole.cli", "run", "--headless", "--dry-run", "-f", str(conf),
             "--socket", str(tmp_path / "engine.sock")],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=lambda: resource.setrlimit(NOFILE, (256, hard)),  # what systemd's 1024 is to a big farm
        )
    try:
        wait_for_text(log, f"Open file limit raised from 256 to {first} (the config needs {first})")
        assert soft_limit_of(proc.pid) == first
        conf.write_text(farm(700))
        proc.send_signal(signal.SIGHUP)
        wait_for_text(log, f"Open file limit raised from {first} to {second} (the config needs {second})")
        assert soft_limit_of(proc.pid) == second
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0, log.read_text()
