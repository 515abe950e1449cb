"""Kernel tier: IPVS against a real kernel. This machine's kernel has no ip_vs, so these tests run inside
a QEMU guest booting the Debian kernel: `tests/kernel/guest.sh .venv/bin/python -m pytest -m kernel
tests/kernel -p no:cacheprovider`. Anywhere without /proc/net/ip_vs they skip.

Inside the guest the host's root filesystem is read-only (the repo too); /tmp, /etc, /var ... are
throw-away overlays. Each guest boot is a fresh kernel, but tests in one session share its IPVS table:
use the `ipvs` fixture, which flushes the table before and after each test.
"""

from __future__ import annotations

import os
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


IPVS_MODULES = Path(f"/lib/modules/{os.uname().release}/kernel/net/netfilter/ipvs")


@pytest.fixture(scope="session")
def ipvs_schedulers() -> frozenset[str]:
    """Load every IPVS scheduler module this kernel ships (and the SIP persistence engine); the names of
    the schedulers that are available (Debian 12's 6.1 kernel has every mainline one but twos, 6.3+)."""
    from lvsconsole.ipvs.table import SCHEDULERS

    present = {name for name in SCHEDULERS if any(IPVS_MODULES.glob(f"ip_vs_{name}.ko*"))}
    modprobe = shutil.which("modprobe") or "/sbin/modprobe"
    subprocess.run(
        [modprobe, "-a", *(f"ip_vs_{name}" for name in sorted(present)), "ip_vs_pe_sip"],
        check=False,
        capture_output=True,
        timeout=60,
    )
    loaded = {line.split()[0] for line in Path("/proc/modules").read_text().splitlines()}
    return frozenset(
        name for name in present if f"ip_vs_{name}" in loaded or Path(f"/sys/module/ip_vs_{name}").exists()
    )


@pytest.fixture
def kernel_backend() -> Iterator[Any]:
    """A KernelBackend on an empty IPVS table of this namespace (flushed again afterwards)."""
    import asyncio

    from lvsconsole.ipvs.kernel import KernelBackend

    run_ipvsadm("-C")
    backend = KernelBackend()
    try:
        yield backend
    finally:
        asyncio.run(backend.close())
        run_ipvsadm("-C")
