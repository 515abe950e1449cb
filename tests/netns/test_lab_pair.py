"""The lab's direct veth pair, batched addresses, per-namespace sysfs and entering a namespace from Python
(what bench/checks_scale.py's netns topology is built from)."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from lvsconsole.lab.netns import Lab, list_namespaces, wait_for

pytestmark = pytest.mark.netns

PREFIX = "lvt-labpair-"
# accept one connection on each address given, then exit 0 (or 1 after 10 s)
SERVE = (
    "import socket, sys, select\n"
    "ls = []\n"
    "for a in sys.argv[1:]:\n"
    "    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((a, 7070));"
    " s.listen(8); ls.append(s)\n"
    "print('READY', flush=True)\n"
    "for s in ls:\n"
    "    if not select.select([s], [], [], 10)[0]: sys.exit(1)\n"
    "    s.accept()[0].close()\n"
)


def test_pair_routes_batched_addresses_and_the_thread_enters_and_leaves_the_namespace(tmp_path: Path) -> None:
    home = os.readlink("/proc/thread-self/ns/net")
    addresses = [f"10.88.1.{i}" for i in range(1, 4)]
    with Lab(PREFIX) as lab:
        a, b = lab.node("a"), lab.node("b")
        lab.pair(a, b, "a0", "b0", ["10.88.0.1/30"], ["10.88.0.2/30"])
        b.batch(f"addr add {address}/32 dev b0" for address in addresses)
        a.ip("route", "add", "10.88.1.0/24", "via", "10.88.0.2")
        assert set(addresses) <= set(b.addresses("b0"))
        assert b.write_sysfs("/sys/class/net/b0/queues/rx-0/rps_cpus", "1").lstrip("0,") == "1"
        server = b.spawn([sys.executable, "-c", SERVE, *addresses], log=tmp_path / "serve.log")
        try:
            wait_for(lambda: "READY" in server.output(), 10, what="the listeners")
            with a.entered():
                assert os.readlink("/proc/thread-self/ns/net") != home
                for address in addresses:  # reached over the pair and the route, from this very thread
                    socket.create_connection((address, 7070), timeout=5).close()
            assert os.readlink("/proc/thread-self/ns/net") == home
            assert server.popen.wait(10) == 0
        finally:
            server.stop(timeout=2)
    assert not [ns for ns in list_namespaces() if ns.startswith(PREFIX)]
