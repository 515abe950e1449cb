"""The connection table, the path tracer and the sync coverage against real connections through real IPVS.

Same topology as test_kernel_traffic (its ``build_topology``), under its namespace names, so the two modules
must not run at once (one pytest session runs modules one after the other). The real servers here keep every
connection open (``HoldServer``), so the director's table holds ESTABLISHED flows while the test looks.

    client 10.10.0.2 ── director (kt-dir, NAT VIP 10.10.0.100) ── rs1 192.168.50.11, rs2 192.168.50.12
                        director eth2 172.16.0.1 ── sync daemon ── backup director (kt-dirb) 172.16.0.2
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from _netns import NetnsWorker, ns_exec, wait_for
from test_kernel_traffic import BACKUP, CLIENT, DIRECTOR, NAT_VIP, RS1, RS2, RS_ADDR, _cleanup, build_topology

from lvsconsole.engine.synccoverage import coverage
from lvsconsole.ipvs.conntable import Connection, parse_conn_table, search
from lvsconsole.ipvs.kernel import KernelBackend
from lvsconsole.ipvs.sync import IpvsSync, SyncDaemonParams
from lvsconsole.ipvs.table import Dest, Fwd, Service, ServiceKey, SvcFlags, Table
from lvsconsole.ipvs.trace import TraceInput, trace

pytestmark = pytest.mark.kernel

CLIENT_IP = ipaddress.IPv4Address("10.10.0.2")
HOLD_PORT = 9090
PERSIST = ServiceKey.inet("tcp", NAT_VIP, 81)
SH = ServiceKey.inet("tcp", NAT_VIP, 82)
WLC = ServiceKey.inet("tcp", NAT_VIP, 83)
NAME_OF = {ipaddress.IPv4Address(a): n for n, a in RS_ADDR.items()}


class HoldServer:
    """Answers each TCP connection on ``port`` with ``name`` and keeps it open until ``close``."""

    def __init__(self, worker: NetnsWorker, name: str, port: int) -> None:
        self.name = name
        self._stop = threading.Event()
        self._open: list[socket.socket] = []
        self._sock = worker.call(self._listen, port)
        self._thread = threading.Thread(target=self._serve, name=f"hold-{name}", daemon=True)
        self._thread.start()

    @staticmethod
    def _listen(port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))
        sock.listen(512)
        sock.settimeout(0.2)
        return sock

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            with contextlib.suppress(OSError):
                conn.sendall(self.name.encode())
                self._open.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._open:
            conn.close()
        self._sock.close()


@dataclass
class Held:
    """Client connections kept open: (source port, the name of the real server that answered, socket)."""

    flows: list[tuple[int, str, socket.socket]]

    def close(self) -> None:
        for _, _, sock in self.flows:
            sock.close()


_ports = iter(range(40000, 60000))


def open_flows(address: str, port: int, count: int) -> list[tuple[int, str, socket.socket]]:
    """``count`` connections from known source ports, each told its server's name and sent a few bytes (so the
    director counts enough packets to sync it), all left open. Runs inside the client's namespace."""
    out = []
    for _ in range(count):
        source = next(_ports)
        sock = socket.create_connection((address, port), timeout=10, source_address=("0.0.0.0", source))
        name = sock.recv(16).decode()
        for _ in range(3):
            sock.sendall(b"x")
        out.append((source, name, sock))
    return out


@dataclass
class Net:
    client: NetnsWorker
    servers: list[HoldServer]


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    build_topology()
    client = NetnsWorker(CLIENT)
    servers = [HoldServer(NetnsWorker(ns), name, HOLD_PORT) for name, ns in (("rs1", RS1), ("rs2", RS2))]
    try:
        yield Net(client, servers)
    finally:
        for server in servers:
            server.close()
        client.close()
        _cleanup()


def dests(weights: tuple[int, int]) -> list[Dest]:
    return [Dest.of(RS_ADDR[n], HOLD_PORT, fwd=Fwd.MASQ, weight=w) for n, w in zip(("rs1", "rs2"), weights,
                                                                                   strict=True)]


def table() -> Table:
    return Table([
        (Service(PERSIST, "rr", SvcFlags.PERSISTENT, 300), dests((1, 1))),
        (Service(SH, "sh", SvcFlags.SH_PORT), dests((3, 1))),
        (Service(WLC, "wlc"), dests((1, 1))),
    ])


def ipvsadm_flows(ns: str) -> set[tuple[str, int, str, int, str, int]]:
    """Established TCP flows (not templates) as ``ipvsadm -Lnc`` prints them: our parser is not involved."""
    out = set()
    for line in ns_exec(ns, "ipvsadm", "-Lnc").splitlines():
        m = re.match(r"^TCP\s+\S+\s+ESTABLISHED\s+(\S+):(\d+)\s+(\S+):(\d+)\s+(\S+):(\d+)\s*$", line)
        if m and m.group(2) != "0":
            out.add((m.group(1), int(m.group(2)), m.group(3), int(m.group(4)), m.group(5), int(m.group(6))))
    return out


def keyed(c: Connection) -> tuple[str, int, str, int, str, int]:
    return (str(c.client), c.client_port, str(c.vip), c.vport, str(c.dest), c.dport)


def test_search_and_trace_with_real_connections(net: Net) -> None:
    async def scenario() -> None:
        backend = KernelBackend(DIRECTOR)
        sync = IpvsSync(backend)
        held: list[Held] = []
        try:
            await sync.start(table())
            await sync.wait_synced(30)
            persist = Held(await asyncio.to_thread(net.client.call, open_flows, NAT_VIP, 81, 2))
            hashed = Held(await asyncio.to_thread(net.client.call, open_flows, NAT_VIP, 82, 24))
            held += [persist, hashed]
            raw = ns_exec(DIRECTOR, "cat", "/proc/net/ip_vs_conn")
            print(raw)  # the real format, shown with pytest -rP
            conns = await backend.read_connections()
            assert sorted(map(keyed, conns)) == sorted(map(keyed, parse_conn_table(raw)))

            # search: the client's connection by client IP:port names the server that answered it
            port, name, _ = hashed.flows[0]
            found = search(conns, client=CLIENT_IP, client_port=port)
            assert [(NAME_OF[c.dest], c.state, c.vport) for c in found] == [(name, "ESTABLISHED", 82)]
            by_server = search(conns, dest=ipaddress.IPv4Address(RS_ADDR["rs2"]), vport=82)
            assert {c.client_port for c in by_server} == {p for p, n, _ in hashed.flows if n == "rs2"}

            live = await backend.read_table()
            # trace, persistence: the template names the server both connections went to
            entry = live[PERSIST]
            got = trace(CLIENT_IP, None, TraceInput(entry.service, list(entry.dests.values()), connections=conns))
            assert got.verdict == "template" and got.dest is not None, got.steps
            assert got.template is not None and got.template.client_port == 0
            assert {n for _, n, _ in persist.flows} == {NAME_OF[got.dest.address]}
            # trace, sh with sh-port: for fresh source ports, the hash predicts the server the kernel picked
            entry = live[SH]
            for port, name, _ in hashed.flows:
                fresh = trace(CLIENT_IP, port, TraceInput(entry.service, list(entry.dests.values())))
                assert fresh.verdict == "scheduler" and fresh.dest is not None
                assert NAME_OF[fresh.dest.address] == name, (port, fresh.reason)
            assert {n for _, n, _ in hashed.flows} == {"rs1", "rs2"}  # the sample exercises both servers
            # ... and with the table's connections, the existing connection is what decides
            port, name, _ = hashed.flows[1]
            existing = trace(CLIENT_IP, port, TraceInput(entry.service, list(entry.dests.values()),
                                                         connections=conns))
            assert existing.verdict == "connection" and NAME_OF[existing.dest.address] == name  # type: ignore[union-attr]
        finally:
            for h in held:
                h.close()
            await sync.stop()
            await backend.close()

    asyncio.run(scenario())


def test_sync_coverage_matches_the_tables(net: Net) -> None:
    async def scenario() -> None:
        master_be, backup_be = KernelBackend(DIRECTOR), KernelBackend(BACKUP)
        master, backup = IpvsSync(master_be), IpvsSync(backup_be)
        held: Held | None = None
        try:
            await master.start(table())
            await backup.start(table())
            await backup.set_sync_role("backup", SyncDaemonParams("eth0", 52))
            await master.set_sync_role("master", SyncDaemonParams("eth2", 52))
            held = Held(await asyncio.to_thread(net.client.call, open_flows, NAT_VIP, 83, 12))
            master_flows = {f for f in ipvsadm_flows(DIRECTOR) if f[2] == NAT_VIP and f[3] == 83}
            assert len(master_flows) == 12
            # the backup learns them over the sync daemon: wait until it holds some
            await asyncio.to_thread(wait_for, lambda: any(
                (f[0], f[1]) in {(g[0], g[1]) for g in master_flows} for f in ipvsadm_all(BACKUP)), 30,
                "the backup to hold a synced flow")
            ours, peers = await master_be.read_connections(), await backup_be.read_connections()
            result = coverage(ours, peers)
            backup_side = ipvsadm_all(BACKUP)
            master_all = ipvsadm_flows(DIRECTOR)
            measured = len(master_all & backup_side) / len(master_all)
            assert result.established == len(master_all)
            assert result.percent is not None and result.percent > 0
            assert result.percent == pytest.approx(100 * measured)
        finally:
            if held is not None:
                held.close()
            await master.stop()
            await backup.stop()
            await master_be.close()
            await backup_be.close()

    asyncio.run(scenario())


def ipvsadm_all(ns: str) -> set[tuple[str, int, str, int, str, int]]:
    """Every non-template TCP entry of ``ipvsadm -Lnc``, in any state (the backup's synced copies)."""
    out = set()
    for line in ns_exec(ns, "ipvsadm", "-Lnc").splitlines():
        m = re.match(r"^TCP\s+\S+\s+\S+\s+(\S+):(\d+)\s+(\S+):(\d+)\s+(\S+):(\d+)\s*$", line)
        if m and m.group(2) != "0":
            out.add((m.group(1), int(m.group(2)), m.group(3), int(m.group(4)), m.group(5), int(m.group(6))))
    return out
