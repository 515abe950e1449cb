"""A user-space stand-in for kernel IPVS, for the demo on kernels without ip_vs.

    python -m lvsconsole.lab.forwarder --listen 10.77.0.100:80 --socket /run/…/director1.sock \\
        [--sorry 127.0.0.1:80] [--feed /run/…/director1.feed]

It runs in a director's namespace next to the engine, follows the engine's (memory) IPVS table over the
control socket (``show vs``: the weight each real server holds now, the persistence timeout) and proxies
TCP connections to the VIP the way the table says: weighted round-robin among real servers of weight > 0,
client persistence, the sorry server when none is left. It listens with IP_FREEBIND, so it is bound
before the VIP arrives and only gets traffic while its director holds the VIP, like IPVS. If the engine
goes away the last table stays, as the kernel's would.

With ``--feed`` it reports the flows it proxies to the engine (lab/flowfeed.py), so the table shows ActiveConn,
InActConn, rates and ``show conns`` as the kernel's would.

It is a simulation (a proxy, not DR: the real servers see the director's address): the demo says so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lvsconsole.engine.control import ControlClient, ControlSocketError
from lvsconsole.lab.flowfeed import REPORT_INTERVAL, FeedSender, FlowLedger

IP_FREEBIND = 15
REFRESH = 0.3


@dataclass(frozen=True)
class Dest:
    host: str
    port: int
    weight: int


@dataclass
class Scheduler:
    """Smooth weighted round-robin with client persistence (a model of wrr + persistence_timeout).

    As in the kernel (``ip_vs_check_template``), a client's persistence holds while its dest is in the table,
    even at weight 0 (drained, "quiescent"), unless ``expire_quiescent_template`` (the sysctl, off by default):
    a drain diverts new clients, not persistent ones.
    """

    dests: tuple[Dest, ...] = ()
    persistence: float = 0.0
    current: dict[Dest, int] = field(default_factory=dict)
    sticky: dict[str, tuple[Dest, float]] = field(default_factory=dict)
    in_table: dict[tuple[str, int], Dest] = field(default_factory=dict)
    expire_quiescent_template: bool = False

    def update(self, dests: Sequence[Dest], persistence: float) -> bool:
        new = tuple(d for d in dests if d.weight > 0)
        changed = new != self.dests
        self.dests = new
        self.in_table = {(d.host, d.port): d for d in dests}
        self.persistence = persistence
        self.current = {d: self.current.get(d, 0) for d in new}
        return changed

    def pick(self, client: str, now: float) -> Dest | None:
        if self.persistence:
            held = self.sticky.get(client)
            dest = self.in_table.get((held[0].host, held[0].port)) if held is not None and held[1] > now else None
            if dest is not None and (dest.weight > 0 or not self.expire_quiescent_template):
                self.sticky[client] = (dest, now + self.persistence)
                return dest
        if not self.dests:
            return None
        total = sum(d.weight for d in self.dests)
        for d in self.dests:
            self.current[d] += d.weight
        best = max(self.dests, key=lambda d: self.current[d])
        self.current[best] -= total
        if self.persistence:
            self.sticky[client] = (best, now + self.persistence)
        return best


def _endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def table_from_show_vs(data: Any, address: str, port: int) -> tuple[list[Dest], float] | None:
    """The dests (with the weight the table holds now) and persistence of the VS at address:port."""
    want = ipaddress.ip_address(address)
    for vs in data if isinstance(data, list) else []:
        if vs.get("address") and ipaddress.ip_address(vs["address"]) == want and vs.get("port") == port:
            dests = [Dest(rs["address"], int(rs.get("port") or port), int(rs["weight"]))
                     for rs in vs.get("real_servers", []) if rs.get("weight") is not None]
            return dests, float(vs.get("persistence_timeout") or 0)
    return None


class Forwarder:
    def __init__(self, listen: str, socket_path: str, sorry: str | None, feed: str | None = None) -> None:
        self.host, self.port = _endpoint(listen)
        self.socket_path = socket_path
        self.sorry = _endpoint(sorry) if sorry else None
        self.scheduler = Scheduler()
        self.have_table = False
        self.ledger = FlowLedger(self.host, self.port)
        self.feed = FeedSender(feed) if feed else None

    def log(self, text: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} forwarder: {text}", flush=True)

    async def follow(self) -> None:
        client: ControlClient | None = None
        while True:
            try:
                if client is None:
                    client = await ControlClient.connect(self.socket_path, timeout=2.0)
                    self.log(f"following the engine at {self.socket_path}")
                result = await client.request("show vs", who="lab-forwarder", timeout=5.0)
                table = table_from_show_vs(result.data, self.host, self.port) if result.ok else None
                if table is not None:
                    dests, persistence = table
                    in_table = [(d.host, d.port) for d in dests]
                    self.ledger.retain([*in_table, self.sorry] if self.sorry else in_table)
                    if self.scheduler.update(dests, persistence) or not self.have_table:
                        shown = ", ".join(f"{d.host}:{d.port} w{d.weight}" for d in self.scheduler.dests) or "none"
                        self.log(f"table: {shown}")
                    self.have_table = True
            except (ControlSocketError, OSError, TimeoutError) as exc:
                if client is not None:
                    self.log(f"lost the engine ({exc}); keeping the last table")
                    with contextlib.suppress(Exception):
                        await client.close()
                client = None
            await asyncio.sleep(REFRESH)  # the refresh rate of a polled table

    async def report(self) -> None:
        assert self.feed is not None
        while True:
            templates = {client: ((d.host, d.port), until) for client, (d, until) in self.scheduler.sticky.items()}
            self.feed.send(self.ledger.report(time.monotonic(), templates))
            await asyncio.sleep(REPORT_INTERVAL)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        client_ip = str(peer[0]) if peer else "?"
        client_port = int(peer[1]) if peer else 0
        dest = self.scheduler.pick(client_ip, time.monotonic())
        target = (dest.host, dest.port) if dest is not None else self.sorry
        if target is None:
            writer.close()
            return
        try:
            async with asyncio.timeout(3):
                up_reader, up_writer = await asyncio.open_connection(*target)
        except (OSError, TimeoutError):
            writer.close()
            return

        flow = self.ledger.open(client_ip, client_port, target, time.monotonic())

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, inbound: bool) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    self.ledger.transfer(flow, inbound=inbound, nbytes=len(data), now=time.monotonic())
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(OSError):
                if dst.can_write_eof():
                    dst.write_eof()

        try:
            await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))
        finally:
            self.ledger.close(flow, time.monotonic())
            for w in (writer, up_writer):
                w.close()

    async def run(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)  # also honoured by IPv6 sockets
        sock.bind((self.host, self.port))
        server = await asyncio.start_server(self.handle, sock=sock)
        self.log(f"listening on {self.host}:{self.port} (simulated IPVS)")
        async with server, asyncio.TaskGroup() as tasks:
            if self.feed is not None:
                tasks.create_task(self.report())
            await self.follow()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lvsconsole.lab.forwarder")
    parser.add_argument("--listen", required=True, help="VIP:PORT")
    parser.add_argument("--socket", required=True, help="the engine's control socket")
    parser.add_argument("--sorry", default=None, help="HOST:PORT when no real server is in the table")
    parser.add_argument("--feed", default=None, help="the engine's flow-feed socket (lab.director --feed)")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(Forwarder(args.listen, args.socket, args.sorry, args.feed).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
