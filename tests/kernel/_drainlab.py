"""The drain lab of the kernel tier: a client, a NAT director with the real IPVS, two echo real servers.

    client eth0 10.20.0.2 ──── eth0 10.20.0.1 + VIP 10.20.0.100   director (PREFIXdir), NAT
                               eth1 192.168.61.1 ──── eth0 192.168.61.11   rs1 (PREFIXrs1)
                               eth2 192.168.62.1 ──── eth0 192.168.62.12   rs2 (PREFIXrs2)

Each test module gives its own namespace prefix, so two drain tests never meet in one namespace (the
addresses may repeat: they live in different namespaces). The echo servers answer ``name:message`` for as
long as the client keeps a connection, so a test can prove a held connection is still served while its
server drains; ``reset_close`` ends one with a RST so that IPVS forgets it within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from _netns import NetnsWorker, ip_batch, ns_exec, run

VIP = "10.20.0.100"
VIP_PORT = 80
RS_ADDR = {"rs1": "192.168.61.11", "rs2": "192.168.62.12"}
RS_PORT = 8080
HELD_FOR = 300.0
"""Seconds an echo server waits for a held connection's next message: the software-emulated guest is slow."""

CONFIG = """
global_defs {{
    drain_timeout 300
}}
virtual_server {vip} {vip_port} {{
    lb_algo rr
    lb_kind NAT
    protocol TCP
{servers}}}
"""


def config_text(names: list[str]) -> str:
    """A NAT virtual server on the VIP over the named real servers, without checks (always up)."""
    servers = "".join(f"    real_server {RS_ADDR[n]} {RS_PORT} {{\n        weight 1\n    }}\n" for n in names)
    return CONFIG.format(vip=VIP, vip_port=VIP_PORT, servers=servers)


def rs_key(name: str) -> str:
    """The engine's key of a real server (``[ADDR]:tcp:PORT``), as events and ``show drain`` name it."""
    return f"[{RS_ADDR[name]}]:tcp:{RS_PORT}"


def rs_lines(listing: str) -> dict[str, tuple[int, int]]:
    """``ipvsadm -Ln`` → {real server address: (weight, ActiveConn)}."""
    out = {}
    for match in re.finditer(r"^\s+->\s+([\d.]+):\d+\s+\w+\s+(\d+)\s+(\d+)\s+\d+", listing, re.M):
        out[match.group(1)] = (int(match.group(2)), int(match.group(3)))
    return out


@dataclass(frozen=True)
class Topology:
    """The four namespaces of one test module, named ``PREFIX{client,dir,rs1,rs2}``."""

    prefix: str

    @property
    def client(self) -> str:
        return self.prefix + "client"

    @property
    def director(self) -> str:
        return self.prefix + "dir"

    @property
    def real_servers(self) -> dict[str, str]:
        """{rs1/rs2: its namespace}."""
        return {name: self.prefix + name for name in RS_ADDR}

    @property
    def namespaces(self) -> tuple[str, ...]:
        return (self.client, self.director, *self.real_servers.values())

    def cleanup(self) -> None:
        existing = run(["ip", "netns", "list"], check=False)
        for ns in self.namespaces:
            if re.search(rf"^{re.escape(ns)}\b", existing, re.M):
                run(["ip", "netns", "del", ns], check=False)

    def build(self) -> None:
        self.cleanup()
        rs1, rs2 = self.real_servers["rs1"], self.real_servers["rs2"]
        ip_batch([f"netns add {ns}" for ns in self.namespaces] + [
            f"link add name eth0 netns {self.client} type veth peer name eth0 netns {self.director}",
            f"link add name eth1 netns {self.director} type veth peer name eth0 netns {rs1}",
            f"link add name eth2 netns {self.director} type veth peer name eth0 netns {rs2}",
        ])
        ip_batch(["link set lo up", "addr add 10.20.0.2/24 dev eth0", "link set eth0 up"], self.client)
        ip_batch(["link set lo up", "addr add 10.20.0.1/24 dev eth0", f"addr add {VIP}/32 dev eth0",
                  "addr add 192.168.61.1/24 dev eth1", "addr add 192.168.62.1/24 dev eth2",
                  "link set eth0 up", "link set eth1 up", "link set eth2 up"], self.director)
        for name, gateway in (("rs1", "192.168.61.1"), ("rs2", "192.168.62.1")):
            ip_batch(["link set lo up", f"addr add {RS_ADDR[name]}/24 dev eth0", "link set eth0 up",
                      f"route add default via {gateway}"], self.real_servers[name])
        ns_exec(self.director, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")

    def kernel_dests(self) -> dict[str, tuple[int, int]]:
        """The director's IPVS table as ``ipvsadm -Ln`` lists it: {real server address: (weight, ActiveConn)}."""
        return rs_lines(ns_exec(self.director, "ipvsadm", "-Ln"))


class EchoServer:
    """Answers every message of every connection with ``name:message``, until the client closes."""

    def __init__(self, worker: NetnsWorker, name: str) -> None:
        self.name = name.encode()
        self._sock: socket.socket = worker.call(self._listen)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name=f"echo-{name}", daemon=True)
        self._thread.start()

    @staticmethod
    def _listen() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", RS_PORT))
        sock.listen(256)
        sock.settimeout(0.2)
        return sock

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            conn.settimeout(HELD_FOR)
            while data := conn.recv(256):
                conn.sendall(self.name + b":" + data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


@contextlib.contextmanager
def drain_lab(topology: Topology) -> Iterator[NetnsWorker]:
    """Build the namespaces and start both echo servers; yields a worker inside the client's namespace.
    Everything is torn down on exit, whatever happened."""
    topology.build()
    workers: list[NetnsWorker] = []
    servers: list[EchoServer] = []
    try:
        workers.append(NetnsWorker(topology.client))
        for name, ns in topology.real_servers.items():
            workers.append(NetnsWorker(ns))
            servers.append(EchoServer(workers[-1], name))
        yield workers[0]
    finally:
        for server in servers:
            server.close()
        for worker in workers:
            worker.close()
        topology.cleanup()


def connect(timeout: float = 30.0) -> socket.socket:
    """A TCP connection to the VIP (call inside the client's namespace; the socket keeps it for life)."""
    return socket.create_connection((VIP, VIP_PORT), timeout=timeout)


def ask(sock: socket.socket, message: str) -> str:
    sock.sendall(message.encode())
    return sock.recv(256).decode()


def reset_close(sock: socket.socket) -> None:
    """Close with a RST: IPVS moves the connection to CLOSE (10 s) instead of TIME_WAIT (2 min), so that
    InActConn empties within the test too."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


async def wait_until(what: str, condition: Callable[[], bool], timeout: float = 60) -> None:
    """Poll ``condition`` every 0.2 s without blocking the loop; AssertionError naming ``what`` on timeout."""
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.2)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}") from None
