"""The demo's simulated forwarder reports its flows to the engine's memory IPVS table, as the kernel would count them.

On a kernel without ip_vs the demo forwards in user space (lab/forwarder.py) next to an engine whose IPVS table
is the memory backend (lab/director.py). Without a feed that table's counters stay at zero: ActiveConn,
InActConn, conns/s, bytes/s and ``show conns`` never move, and a drain cannot be watched emptying. So the
forwarder keeps a ``FlowLedger`` of the connections it proxies and sends its report once a second, one JSON
datagram on a Unix socket, to the engine process, which writes it into the memory backend (``apply_report``:
the same ``set_dest_stats``/``set_connections`` the tests use). Every face then shows it as it shows the
kernel's figures.

Modelled on IPVS (``ip_vs_conn.c``, ``ip_vs_est.c``, ``ip_vs_proto_tcp.c``):

- a proxied connection is an ESTABLISHED flow (ActiveConn) while both sides are open; once closed it stays in
  the table as TIME_WAIT for the kernel's 120 s (InActConn), then goes;
- a persistent service has one template per client (client port 0, state NONE, expiring with the persistence
  timeout), counted in the dest's PersistConn;
- rates come from the kernel's estimator: every 2 s, an average of weight 1/4 over the last interval's rate;
- counters vanish with their dest (a dest that leaves the table starts again from zero, as in the kernel).

Not modelled: packets. A proxy sees stream reads, not packets, so each read counts as one packet; bytes are
exact (payload only, without headers).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import itertools
import json
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lvsconsole.ipvs.backend import Counters, DestCounters
from lvsconsole.ipvs.conntable import Connection
from lvsconsole.ipvs.memory import MemoryBackend
from lvsconsole.ipvs.table import DestKey, ServiceKey

TIME_WAIT = 120.0
"""IP_VS_TCP_S_TIME_WAIT's default timeout (``ip_vs_proto_tcp.c``)."""
ESTABLISHED = 900.0
"""IP_VS_TCP_S_ESTABLISHED's default timeout: an idle established flow's expiry counts down from it."""
ESTIMATOR_PERIOD = 2.0
"""``ip_vs_est.c`` updates the rates every 2 s ..."""
ESTIMATOR_WEIGHT = 0.25
"""... moving each a quarter of the way to the last interval's rate."""
MAX_REPORTED = 500
"""Connections listed in one report (the newest): a report is one datagram."""
MAX_CLOSED = 5000
"""Closed flows kept for their TIME_WAIT: a bound on memory if a client opens thousands a second."""
REPORT_INTERVAL = 1.0

Endpoint = tuple[str, int]


@dataclass(slots=True)
class _Flow:
    client: str
    client_port: int
    dest: Endpoint
    last_active: float
    closed: float | None = None


@dataclass(slots=True)
class _Totals:
    conns: int = 0
    inpkts: int = 0
    outpkts: int = 0
    inbytes: int = 0
    outbytes: int = 0

    def values(self) -> tuple[int, int, int, int, int]:
        return self.conns, self.inpkts, self.outpkts, self.inbytes, self.outbytes


@dataclass(slots=True)
class _Estimate:
    since: float
    last: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)
    rates: list[float] = field(default_factory=lambda: [0.0] * 5)


class FlowLedger:
    """The connections one virtual service's forwarder proxies, and the counters IPVS would keep (sans-IO)."""

    def __init__(self, vip: str, vport: int) -> None:
        self.vip, self.vport = vip, vport
        self._ids = itertools.count(1)
        self._open: dict[int, _Flow] = {}
        self._closed: dict[int, _Flow] = {}
        self._totals: dict[Endpoint, _Totals] = {}
        self._estimates: dict[Endpoint, _Estimate] = {}

    def open(self, client: str, client_port: int, dest: Endpoint, now: float) -> int:
        """A new flow to ``dest``; returns its id for ``transfer`` and ``close``."""
        flow_id = next(self._ids)
        self._open[flow_id] = _Flow(client, client_port, dest, now)
        self._total(dest).conns += 1
        return flow_id

    def transfer(self, flow_id: int, *, inbound: bool, nbytes: int, now: float) -> None:
        """``nbytes`` read from the client (``inbound``) or from the real server."""
        flow = self._open.get(flow_id)
        if flow is None:
            return
        flow.last_active = now
        totals = self._total(flow.dest)
        if inbound:
            totals.inpkts += 1
            totals.inbytes += nbytes
        else:
            totals.outpkts += 1
            totals.outbytes += nbytes

    def close(self, flow_id: int, now: float) -> None:
        flow = self._open.pop(flow_id, None)
        if flow is None:
            return
        flow.closed = now
        self._closed[flow_id] = flow
        while len(self._closed) > MAX_CLOSED:
            del self._closed[next(iter(self._closed))]

    def retain(self, dests: Iterable[Endpoint]) -> None:
        """Only ``dests`` are in the table now: the counters of the others vanish, as with the kernel's entries."""
        keep = set(dests)
        for gone in [d for d in self._totals if d not in keep]:
            del self._totals[gone]
            self._estimates.pop(gone, None)

    def report(self, now: float, templates: Mapping[str, tuple[Endpoint, float]] | None = None) -> dict[str, Any]:
        """What IPVS would show now: per-dest counters, rates and gauges, and the newest connections.

        ``templates``: the persistence the scheduler holds, client address -> (dest, expiry time).
        """
        for flow_id in [i for i, f in self._closed.items() if f.closed is not None and now - f.closed >= TIME_WAIT]:
            del self._closed[flow_id]
        live_templates = {c: t for c, t in (templates or {}).items() if t[1] > now}
        gauges: dict[Endpoint, list[int]] = {d: [0, 0, 0] for d in self._totals}
        for flow in self._open.values():
            gauges.setdefault(flow.dest, [0, 0, 0])[0] += 1
        for flow in self._closed.values():
            gauges.setdefault(flow.dest, [0, 0, 0])[1] += 1
        for dest, _ in live_templates.values():
            gauges.setdefault(dest, [0, 0, 0])[2] += 1
        dests = []
        for dest, (active, inactive, persist) in gauges.items():
            totals = self._total(dest)
            rates = self._estimate(dest, totals, now)
            dests.append({"address": dest[0], "port": dest[1], "conns": totals.conns, "inpkts": totals.inpkts,
                          "outpkts": totals.outpkts, "inbytes": totals.inbytes, "outbytes": totals.outbytes,
                          "cps": rates[0], "inpps": rates[1], "outpps": rates[2], "inbps": rates[3],
                          "outbps": rates[4], "activeconns": active, "inactconns": inactive,
                          "persistconns": persist})
        flows = [{"client": f.client, "cport": f.client_port, "dest": f.dest[0], "dport": f.dest[1],
                  "state": "ESTABLISHED", "expires": max(0, round(ESTABLISHED - (now - f.last_active)))}
                 for f in self._open.values()]
        flows += [{"client": f.client, "cport": f.client_port, "dest": f.dest[0], "dport": f.dest[1],
                   "state": "TIME_WAIT", "expires": max(0, round(TIME_WAIT - (now - (f.closed or now))))}
                  for f in self._closed.values()]
        flows += [{"client": client, "cport": 0, "dest": dest[0], "dport": dest[1], "state": "NONE",
                   "expires": max(0, round(until - now))} for client, (dest, until) in live_templates.items()]
        return {"vip": self.vip, "vport": self.vport, "dests": dests, "connections": flows[-MAX_REPORTED:]}

    def _total(self, dest: Endpoint) -> _Totals:
        totals = self._totals.get(dest)
        if totals is None:
            totals = self._totals[dest] = _Totals()
        return totals

    def _estimate(self, dest: Endpoint, totals: _Totals, now: float) -> list[int]:
        est = self._estimates.get(dest)
        if est is None:
            est = self._estimates[dest] = _Estimate(since=now, last=totals.values())
        elapsed = now - est.since
        if elapsed >= ESTIMATOR_PERIOD:
            current = totals.values()
            for i, (new, old) in enumerate(zip(current, est.last, strict=True)):
                est.rates[i] += ((new - old) / elapsed - est.rates[i]) * ESTIMATOR_WEIGHT
            est.since, est.last = now, current
        return [round(r) for r in est.rates]


# ------------------------------------------------------------------------------------------------ engine side


def apply_report(backend: MemoryBackend, report: Mapping[str, Any]) -> bool:
    """Write a forwarder's report into the memory table; False if its service is not in the table (yet).

    The whole report is read before anything is written: a malformed one raises and changes nothing.
    """
    service = ServiceKey.inet("tcp", str(report["vip"]), int(report["vport"]))
    vip = ipaddress.ip_address(str(report["vip"]))
    rows = [(DestKey.of(str(row["address"]), int(row["port"])),
             DestCounters(**{name: int(row[name]) for name in _DEST_FIELDS})) for row in report["dests"]]
    connections = [
        Connection(protocol="TCP", client=ipaddress.ip_address(str(c["client"])), client_port=int(c["cport"]),
                   vip=vip, vport=service.port, dest=ipaddress.ip_address(str(c["dest"])), dport=int(c["dport"]),
                   state=str(c["state"]), expires=int(c["expires"]))
        for c in report["connections"]]
    entry = backend.table.get(service)
    if entry is None:
        return False
    counted = [(dest, counters) for dest, counters in rows if dest in entry.dests]  # the kernel's go with their dest
    for dest, counters in counted:
        backend.set_dest_stats(service, dest, counters)
    backend.set_service_stats(service, Counters(**{name: sum(getattr(c, name) for _, c in counted)
                                                   for name in _SERVICE_FIELDS}))
    backend.set_connections(connections)
    return True


_SERVICE_FIELDS = tuple(f.name for f in dataclasses.fields(Counters))
_DEST_FIELDS = tuple(f.name for f in dataclasses.fields(DestCounters))


class FeedSender:
    """The forwarder's end: one datagram per report to the engine's feed socket; lost while the engine is away."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setblocking(False)

    def send(self, report: Mapping[str, Any]) -> bool:
        try:
            self.sock.sendto(json.dumps(report, separators=(",", ":")).encode(), self.path)
        except OSError:  # no engine yet, restarting, or its queue is full: the next report says it all again
            return False
        return True

    def close(self) -> None:
        self.sock.close()


async def receive_feed(path: str, backend: MemoryBackend, on_error: Callable[[str], None] | None = None, *,
                       on_report: Callable[[bool], None] | None = None) -> None:
    """The engine's end: bind ``path`` and apply every report to ``backend`` until cancelled.

    ``on_error`` hears why a datagram was refused; ``on_report`` whether each report found its service.
    """
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind(path)
    loop = asyncio.get_running_loop()
    try:
        while True:
            data = await loop.sock_recv(sock, 1 << 20)
            try:
                found = apply_report(backend, json.loads(data))
            except (ValueError, KeyError, TypeError) as exc:
                if on_error is not None:
                    on_error(f"flow feed: a report was refused ({type(exc).__name__}: {exc})")
                continue
            if on_report is not None:
                on_report(found)
    finally:
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
