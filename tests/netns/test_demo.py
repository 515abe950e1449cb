"""``lvsconsole demo --check``: the whole lab, unattended, within a bounded time; and what it is made of."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lvsconsole.config.build import load_file
from lvsconsole.lab.demo import DIRECTORS, EXAMPLES, PREFIX_BASE, REAL_SERVERS, VIP, render_director_config
from lvsconsole.lab.netns import list_namespaces

DEMO_TIMEOUT = 180  # the scenario itself takes ~15 s here


def _run_check(*extra: str) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "lvsconsole.lab.cli", "--check", *extra], capture_output=True,
                          text=True, timeout=DEMO_TIMEOUT)
    proc.elapsed = time.monotonic() - started  # type: ignore[attr-defined]
    return proc


def _assert_passed(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"demo --check failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    out = proc.stdout
    steps = re.findall(r"ok   step (\d+): (.*?) \(", out)
    assert len(steps) == 18, out
    # the table counts the client's traffic, by the kernel or by the simulated forwarder's flow feed
    assert re.search(r"director1's table counts the client's connections .*: 10\.77\.0\.2\d: \d+ connections, "
                     r"\d+ bytes in; show conns lists \d+ flows of the client", out), out
    assert "Removing service [10.77.0.21]:tcp:80" in out
    assert "logs 'Lost quorum' for VS [10.77.0.100]:tcp:80 and puts the sorry server" in out
    assert "logs 'Gained quorum' for VS [10.77.0.100]:tcp:80 and takes the sorry server out" in out
    assert "director2 takes over" in out
    assert "director1 returns and preempts" in out
    assert "director2 sends gratuitous ARP for 10.77.0.100" in out
    assert re.search(r"the client is served by rs2 .*: rs2 answered", out)
    assert "demo check passed" in out and "tearing the lab down" in out
    # torn down: no namespace, no work directory of this run left
    assert not [n for n in list_namespaces() if n.startswith(PREFIX_BASE)], list_namespaces()


@pytest.mark.netns
@pytest.mark.slow
def test_demo_check_in_a_user_namespace() -> None:
    """What a normal user gets: the same lab inside a user namespace with its own /run."""
    proc = _run_check("--userns")
    if proc.returncode == 2 and "user-namespace route is closed" in proc.stdout:
        pytest.skip(proc.stdout.strip())
    _assert_passed(proc)
    assert "running the lab in a user namespace" in proc.stdout


@pytest.mark.netns
@pytest.mark.slow
def test_demo_check_cleans_up_a_crashed_demo_then_passes_and_cleans_up(tmp_path: Path) -> None:
    """One full run as root covers both: the lab a SIGKILLed demo left behind is removed, then the scenario
    passes within bounded time and tears its own lab down (a second full run would only repeat the scenario)."""
    log = tmp_path / "demo.log"
    with log.open("w") as handle:
        first = subprocess.Popen([sys.executable, "-m", "lvsconsole.lab.cli", "--check"], stdout=handle,
                                 stderr=subprocess.STDOUT)
    prefix = f"{PREFIX_BASE}{first.pid}-"
    try:
        deadline = time.monotonic() + 60
        while "lab built" not in log.read_text():
            assert first.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the first demo did not build its lab"
            time.sleep(0.05)
        first.kill()  # no teardown: namespaces and processes stay behind
        first.wait(10)
        assert any(n.startswith(prefix) for n in list_namespaces())
        proc = _run_check()
        assert f"removed a stale demo lab (pid {first.pid}: 6 namespaces)" in proc.stdout
        _assert_passed(proc)
        if not Path("/proc/net/ip_vs").exists():
            assert "IPVS is SIMULATED" in proc.stdout  # said loudly when the kernel has no ip_vs
        assert proc.elapsed < 90  # type: ignore[attr-defined]
    finally:
        if first.poll() is None:
            first.kill()
        from lvsconsole.lab.netns import remove_namespaces

        remove_namespaces(prefix)


def test_director_configs_are_the_classic_configs_with_lab_addresses(tmp_path: Path) -> None:
    """director1 runs master.conf, director2 backup.conf: their own roles, only lab addresses and timers changed."""
    for spec in DIRECTORS:
        path = tmp_path / f"{spec.name}.conf"
        path.write_text(render_director_config(spec))
        result = load_file(str(path))
        assert not [d for d in result.diagnostics if d.is_error], result.diagnostics
        config = result.config
        (inst,) = config.instances
        assert (inst.state, inst.priority, inst.virtual_router_id) == (spec.state, spec.priority, 51)
        assert [str(v.address.ip) for v in inst.virtual_ipaddress] == [VIP]
        (vs,) = config.virtual_servers
        assert (str(vs.address), vs.port, vs.lvs_sched, vs.persistence_timeout) == (VIP, 80, "wrr", 50)
        assert vs.lvs_method.kind == "DR"
        if spec.template == "master.conf":
            assert vs.sorry_server is not None and str(vs.sorry_server.address) == "127.0.0.1"
        else:
            assert vs.sorry_server is None  # the backup's seed has no sorry_server line
        assert config.global_defs.router_id == spec.router_id
        assert (EXAMPLES / spec.template).read_text().count("#") == path.read_text().count("#")  # comments kept
        assert [(str(rs.address), rs.port, rs.weight) for rs in vs.real_servers] == [
            (r.address, 80, r.weight) for r in REAL_SERVERS]
        assert all(type(c).__name__ == "TcpCheck" and c.connect_port == 80
                   for rs in vs.real_servers for c in rs.checkers)
    assert os.environ.get("LVSCONSOLE_LAB_SOCKET") is None
