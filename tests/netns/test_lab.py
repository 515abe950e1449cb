"""The namespace lab itself: building, running inside, teardown, and cleaning up after a crashed run."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from lvsconsole.lab.netns import Lab, Namespace, list_namespaces, wait_for

pytestmark = pytest.mark.netns

PREFIX = "lvt-labself-"
# reachable = a TCP RST comes back from the closed port (no ping on this image)
PROBE = ("import socket, sys\ntry:\n    socket.create_connection((sys.argv[1], 9), timeout=1)\n"
         "except ConnectionRefusedError:\n    sys.exit(0)\nexcept OSError:\n    sys.exit(1)\n")


def reachable(ns: Namespace, address: str) -> bool:
    return ns.run([sys.executable, "-c", PROBE, address], check=False).returncode == 0


def test_lab_builds_links_runs_and_tears_down() -> None:
    with Lab(PREFIX) as lab:
        sw = lab.switch("sw")
        a, b = lab.node("a"), lab.node("b")
        lab.link(a, sw, "eth0", ["10.77.0.1/24", "fd00:77::1/64"])
        port = lab.link(b, sw, "eth0", ["10.77.0.2/24"])
        assert a.has_address("10.77.0.1", "eth0") and a.has_address("fd00:77::1")
        assert reachable(a, "10.77.0.2")
        sw.set_link(port, False)
        assert not reachable(a, "10.77.0.2")
        proc = b.spawn(["sleep", "60"])
        assert proc.pid in b.pids()
        assert proc.stop(signal.SIGTERM, 5) is not None
        b.spawn(["sleep", "60"])  # left running: teardown must end it
        names = {ns.ns for ns in lab.namespaces.values()}
        assert names <= set(list_namespaces())
        # nothing of the lab leaks onto the host
        host = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True).stdout
        assert "10.77.0." not in host
    assert not [n for n in list_namespaces() if n.startswith(PREFIX)]


def test_a_new_lab_removes_what_a_crashed_run_left() -> None:
    crashed = Lab(PREFIX)
    crashed.__enter__()
    node = crashed.node("x")
    node.spawn(["sleep", "60"])
    # no __exit__: the run "crashed"; a new lab with the same prefix cleans up on entry
    with Lab(PREFIX) as lab:
        assert not [n for n in list_namespaces() if n.startswith(PREFIX)]
        lab.node("x")
        wait_for(lambda: PREFIX + "x" in list_namespaces(), 2, what="the new namespace")
    assert not [n for n in list_namespaces() if n.startswith(PREFIX)]
