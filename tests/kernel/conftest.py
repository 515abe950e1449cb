"""Kernel tier: IPVS against a real kernel. This machine's kernel has no ip_vs, so these tests run inside
a QEMU guest booting the Debian kernel: `tests/kernel/guest.sh .venv/bin/python -m pytest -m kernel
tests/kernel -p no:cacheprovider`. Anywhere without /proc/net/ip_vs they skip.

Inside the guest the host's root filesystem is read-only (the repo too); /tmp, /etc, /var ... are
throw-away overlays. Each guest boot is a fresh kernel, but tests in one session share its IPVS table:
use the `ipvs` fixture, which flushes the table before and after each test.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

SKIP_REASON = "kernel tier: no ip_vs in this kernel; run through tests/kernel/guest.sh"


def has_ip_vs() -> bool:
    return Path("/proc/net/ip_vs").exists()


@pytest.fixture(autouse=True)
def _require_ip_vs() -> None:
    """Applies to tests under tests/kernel only (this conftest's directory)."""
    if not has_ip_vs():
        pytest.skip(SKIP_REASON)


def run_ipvsadm(*args: str) -> str:
    """Run ipvsadm (the reference implementation's view of the table) and return its stdout."""
    exe = shutil.which("ipvsadm") or shutil.which("ipvsadm", path="/usr/sbin:/sbin")
    if exe is None:
        pytest.fail("kernel tier needs the ipvsadm Debian package (apt-get install ipvsadm)")
    return subprocess.run([exe, *args], check=True, capture_output=True, text=True, timeout=60).stdout


@pytest.fixture
def ipvsadm() -> Callable[..., str]:
    """`ipvsadm("-Ln")` runs ipvsadm with those arguments and returns its stdout."""
    return run_ipvsadm


@pytest.fixture
def ipvs() -> Iterator[Any]:
    """A pyroute2 IPVS socket on an empty IPVS table (flushed again afterwards)."""
    from pyroute2 import IPVS

    run_ipvsadm("-C")
    sock = IPVS()
    try:
        yield sock
    finally:
        sock.close()
        run_ipvsadm("-C")
