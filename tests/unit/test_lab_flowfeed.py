"""The demo forwarder's flow ledger (virtual clock), its report applied to the memory table, and the feed socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from lvsconsole.ipvs.memory import MemoryBackend
from lvsconsole.ipvs.reconcile import AddDest, AddService
from lvsconsole.ipvs.table import Dest, DestKey, Service, ServiceKey
from lvsconsole.lab.flowfeed import FeedSender, FlowLedger, apply_report, receive_feed
from lvsconsole.lab.forwarder import Dest as ForwarderDest
from lvsconsole.lab.forwarder import Forwarder, Scheduler

VIP, PORT = "10.77.0.100", 80
RS1, RS2 = ("10.77.0.11", 80), ("10.77.0.12", 80)
SERVICE = ServiceKey.inet("tcp", VIP, PORT)


def dest_row(report: dict[str, Any], dest: tuple[str, int]) -> dict[str, Any]:
    return next(r for r in report["dests"] if (r["address"], r["port"]) == dest)


def test_a_flow_is_active_then_time_wait_then_gone() -> None:
    ledger = FlowLedger(VIP, PORT)
    flow = ledger.open("10.77.0.50", 40001, RS1, now=0.0)
    ledger.transfer(flow, inbound=True, nbytes=100, now=0.1)
    ledger.transfer(flow, inbound=False, nbytes=2000, now=0.2)
    ledger.transfer(flow, inbound=False, nbytes=500, now=10.0)
    report = ledger.report(10.0)
    row = dest_row(report, RS1)
    assert (row["conns"], row["inpkts"], row["outpkts"], row["inbytes"], row["outbytes"]) == (1, 1, 2, 100, 2500)
    assert (row["activeconns"], row["inactconns"], row["persistconns"]) == (1, 0, 0)
    assert report["connections"] == [{"client": "10.77.0.50", "cport": 40001, "dest": RS1[0], "dport": 80,
                                      "state": "ESTABLISHED", "expires": 900}]
    ledger.close(flow, now=12.0)
    ledger.transfer(flow, inbound=True, nbytes=1, now=12.5)  # a late read of a closed flow counts nothing
    report = ledger.report(20.0)
    row = dest_row(report, RS1)
    assert (row["activeconns"], row["inactconns"], row["inbytes"]) == (0, 1, 100)
    assert [(c["state"], c["expires"]) for c in report["connections"]] == [("TIME_WAIT", 112)]
    report = ledger.report(132.0)  # TIME_WAIT's 120 s are over
    assert report["connections"] == []
    assert dest_row(report, RS1)["inactconns"] == 0 and dest_row(report, RS1)["conns"] == 1  # counters stay


def test_rates_follow_the_kernel_estimator() -> None:
    ledger = FlowLedger(VIP, PORT)
    ledger.report(0.0)
    assert ledger.report(0.0)["dests"] == []
    now = 0.0
    cps = []
    for _ in range(12):  # 10 new connections a second, a report every second, the estimator every 2 s
        for _ in range(10):
            ledger.close(ledger.open("10.77.0.50", 40000, RS1, now), now)
        now += 1.0
        cps.append(dest_row(ledger.report(now), RS1)["cps"])
    # the first report starts the estimator; every 2 s the rate moves a quarter of the way towards 10/s
    assert cps[:4] == [0, 0, 2, 2]
    assert cps == sorted(cps) and 6 <= cps[-1] <= 9


def test_persistence_templates_count_as_persistconns_until_they_expire() -> None:
    ledger = FlowLedger(VIP, PORT)
    ledger.open("10.77.0.50", 40001, RS2, now=0.0)
    templates = {"10.77.0.50": (RS2, 50.0), "10.77.0.51": (RS1, 5.0)}
    report = ledger.report(10.0, templates)
    assert dest_row(report, RS2)["persistconns"] == 1
    assert "10.77.0.51" not in {c["client"] for c in report["connections"]}  # its template expired at 5 s
    template = next(c for c in report["connections"] if c["cport"] == 0)
    assert (template["dest"], template["state"], template["expires"]) == (RS2[0], "NONE", 40)


def test_the_counters_of_a_dest_that_leaves_the_table_vanish() -> None:
    ledger = FlowLedger(VIP, PORT)
    ledger.close(ledger.open("10.77.0.50", 40001, RS1, now=0.0), 0.0)
    ledger.close(ledger.open("10.77.0.50", 40002, RS2, now=0.0), 0.0)
    ledger.retain([RS2])
    ledger.report(300.0)  # the TIME_WAIT entries are gone too
    assert [(r["address"], r["conns"]) for r in ledger.report(300.0)["dests"]] == [(RS2[0], 1)]


def memory_table() -> MemoryBackend:
    backend = MemoryBackend()
    asyncio.run(backend.apply([AddService(Service(SERVICE, "rr")), AddDest(SERVICE, Dest.of(*RS1)),
                               AddDest(SERVICE, Dest.of(*RS2))]))
    return backend


def busy_report() -> dict[str, Any]:
    ledger = FlowLedger(VIP, PORT)
    for port, rs in ((40001, RS1), (40002, RS1), (40003, RS2)):
        flow = ledger.open("10.77.0.50", port, rs, now=0.0)
        ledger.transfer(flow, inbound=True, nbytes=100, now=0.0)
    ledger.close(1, 0.5)
    ledger.open("10.77.0.50", 40004, ("10.77.0.99", 80), now=0.0)  # a dest the table does not hold
    return ledger.report(1.0)


def test_a_report_fills_the_memory_table_s_counters_and_connections() -> None:
    backend = memory_table()
    assert apply_report(backend, busy_report())
    stats = asyncio.run(backend.read_stats())
    rs1 = stats.dest(SERVICE, DestKey.of(*RS1))
    assert (rs1.conns, rs1.activeconns, rs1.inactconns, rs1.inbytes) == (2, 1, 1, 200)
    assert stats.service(SERVICE).conns == 3 and stats.service(SERVICE).inbytes == 300  # the unknown dest left out
    connections = asyncio.run(backend.read_connections())
    assert sorted((str(c.dest), c.client_port, c.state) for c in connections) == [
        ("10.77.0.11", 40001, "TIME_WAIT"), ("10.77.0.11", 40002, "ESTABLISHED"),
        ("10.77.0.12", 40003, "ESTABLISHED"), ("10.77.0.99", 40004, "ESTABLISHED")]
    assert all(str(c.vip) == VIP and c.vport == PORT and c.protocol == "TCP" for c in connections)


def test_a_report_for_a_service_not_in_the_table_or_malformed_changes_nothing() -> None:
    backend = memory_table()
    other = dict(busy_report(), vport=8080)
    assert not apply_report(backend, other)
    broken = busy_report()
    del broken["dests"][-1]["inbytes"]
    with pytest.raises(KeyError):
        apply_report(backend, broken)
    stats = asyncio.run(backend.read_stats())
    assert stats.dest(SERVICE, DestKey.of(*RS1)).conns == 0 and asyncio.run(backend.read_connections()) == []


def test_reports_cross_the_feed_socket(tmp_path: Path) -> None:
    backend = memory_table()
    path = str(tmp_path / "feed")

    async def scenario() -> list[str]:
        reports: asyncio.Queue[bool] = asyncio.Queue()
        errors: list[str] = []
        task = asyncio.create_task(receive_feed(path, backend, errors.append, on_report=reports.put_nowait))
        sender = FeedSender(path)
        try:
            async with asyncio.timeout(5):
                while not sender.send(busy_report()):  # until the receiver has bound the path
                    await asyncio.sleep(0)
                assert await reports.get() is True
                with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as raw:
                    raw.sendto(b"{not json", path)
                    raw.sendto(json.dumps({"vip": VIP}).encode(), path)
                sender.send(dict(busy_report(), vport=8080))
                assert await reports.get() is False  # the two bad datagrams came first and were refused
        finally:
            sender.close()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return errors

    errors = asyncio.run(scenario())
    assert len(errors) == 2 and all(e.startswith("flow feed: a report was refused") for e in errors)
    assert "KeyError" in errors[1]
    assert asyncio.run(backend.read_stats()).dest(SERVICE, DestKey.of(*RS2)).conns == 1
    assert not Path(path).exists()  # the receiver removed its socket


def test_the_forwarder_counts_what_it_proxies(tmp_path: Path) -> None:
    """A real forwarder on loopback in front of a real echo server: its ledger sees the flow and the bytes."""

    async def scenario() -> dict[str, Any]:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write((await reader.read(100)) * 3)
            await writer.drain()
            writer.close()

        upstream = await asyncio.start_server(echo, "127.0.0.1", 0)
        up_port = upstream.sockets[0].getsockname()[1]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            listen_port = probe.getsockname()[1]
        forwarder = Forwarder(f"127.0.0.1:{listen_port}", str(tmp_path / "no-engine.sock"), None)
        forwarder.scheduler.update([ForwarderDest("127.0.0.1", up_port, 1)], 0.0)
        running = asyncio.create_task(forwarder.run())
        try:
            async with asyncio.timeout(10):
                while True:
                    try:
                        reader, writer = await asyncio.open_connection("127.0.0.1", listen_port)
                        break
                    except ConnectionRefusedError:  # the forwarder is not listening yet
                        await asyncio.sleep(0.01)
                writer.write(b"ping")
                await writer.drain()
                assert await reader.read() == b"pingpingping"
                writer.close()
                await writer.wait_closed()
                while forwarder.ledger.report(0.0)["dests"][0]["activeconns"]:
                    await asyncio.sleep(0.01)  # the forwarder closes its side after ours
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
            upstream.close()
        return forwarder.ledger.report(1.0)

    report = asyncio.run(scenario())
    row = report["dests"][0]
    assert (row["conns"], row["inbytes"], row["outbytes"], row["activeconns"], row["inactconns"]) == (1, 4, 12, 0, 1)
    assert [c["state"] for c in report["connections"]] == ["TIME_WAIT"]


def test_the_forwarder_keeps_persistent_clients_on_a_drained_dest_as_the_kernel_does() -> None:
    one, two = ForwarderDest(RS1[0], 80, 3), ForwarderDest(RS2[0], 80, 1)
    scheduler = Scheduler()
    scheduler.update([one, two], persistence=50.0)
    first = scheduler.pick("10.77.0.50", 0.0)
    assert first is not None
    other = two if first == one else one
    drained = ForwarderDest(first.host, first.port, 0)
    scheduler.update([drained, other], persistence=50.0)
    assert scheduler.pick("10.77.0.50", 1.0) == drained  # quiescent: the template holds
    assert scheduler.pick("10.77.0.60", 1.0) == other  # a new client goes elsewhere
    assert scheduler.pick("10.77.0.50", 60.0) == other  # 50 s without a connection: the template expired
    scheduler.update([other], persistence=50.0)  # a dest removed from the table takes its clients' templates
    assert scheduler.pick("10.77.0.60", 61.0) == other
    strict = Scheduler(expire_quiescent_template=True)
    strict.update([one, two], persistence=50.0)
    held = strict.pick("10.77.0.50", 0.0)
    assert held is not None
    strict.update([ForwarderDest(held.host, held.port, 0), two if held == one else one], persistence=50.0)
    assert strict.pick("10.77.0.50", 1.0) != ForwarderDest(held.host, held.port, 0)
