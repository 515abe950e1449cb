"""The demo's unattended scenario on a kernel with ip_vs: two directors running ``lvsconsole run --headless``
over real kernel IPVS (one table per director namespace), DR real servers and a client with real traffic through
the VIP: a real server leaves and returns, the master stops, returns and preempts, the master is SIGKILLed and the
backup takes the VIP with gratuitous ARP (lvsconsole/lab/demo.py, ``DemoCheck.run``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.kernel


@pytest.mark.timeout(900)
def test_demo_check_with_kernel_ipvs_and_real_traffic() -> None:
    # software emulation in the guest is several times slower than the host: stretch the step timeouts
    env = {**os.environ, "LVSCONSOLE_DEMO_TIMEOUT_SCALE": "4"}
    proc = subprocess.run([sys.executable, "-m", "lvsconsole.lab.cli", "--check"], capture_output=True, text=True,
                          timeout=900, env=env, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "demo check passed" in out, out
    assert "IPVS simulated" not in out, out
    for step in ("Removing service [10.77.0.21]:tcp:80", "Adding service [10.77.0.21]:tcp:80", "'Lost quorum'",
                 "'Gained quorum'", "Adding service [10.77.0.22]:tcp:80", "preempts",
                 "sends gratuitous ARP for 10.77.0.100", "table counts the client's connections"):
        assert step in out, f"{step!r} missing:\n{out}"
