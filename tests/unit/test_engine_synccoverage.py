"""Connection-sync coverage: the comparison, when it is news, the peer fetch over HTTP (loopback), the watcher."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from collections.abc import Awaitable, Callable

import pytest

from lvsconsole.engine.events import Event, SyncCoverage, event_from_json, event_to_json
from lvsconsole.engine.listen import ListenAddress
from lvsconsole.engine.synccoverage import (
    CONNECTIONS_PATH,
    CoverageAlarm,
    CoverageWatcher,
    PeerUnreachable,
    connections_json,
    coverage,
    fetch_peer_connections,
)
from lvsconsole.ipvs.conntable import Connection

V4 = ipaddress.IPv4Address


def flow(port: int, state: str = "ESTABLISHED", dest: str = "192.168.50.11", protocol: str = "TCP") -> Connection:
    return Connection(protocol, V4("10.10.0.2"), port, V4("10.10.0.100"), 80, V4(dest), 80, state, 800)


TEMPLATE = Connection("TCP", V4("10.10.0.2"), 0, V4("10.10.0.100"), 80, V4("192.168.50.11"), 80, "NONE", 300)


def test_coverage_counts_established_tcp_flows_found_on_the_peer() -> None:
    ours = [flow(1), flow(2), flow(3), flow(4), flow(5, "FIN_WAIT"), flow(6, "UDP", protocol="UDP"), TEMPLATE]
    # the peer: flows 1 and 2 (in another state: what the backup keeps), 3 to another real server, a template
    peers = [flow(1), flow(2, "SYN_RECV"), flow(3, dest="192.168.50.12"), TEMPLATE]
    result = coverage(ours, peers)
    assert (result.established, result.kept, result.peer_total) == (4, 2, 4)
    assert result.percent == 50.0
    assert [c.client_port for c in result.missing] == [3, 4]
    assert "keep 50% of established flows (2 of 4" in result.text()
    # a template on the peer does not count as the flow
    assert coverage([flow(1)], [TEMPLATE]).kept == 0


def test_no_established_flow_is_no_percentage() -> None:
    result = coverage([TEMPLATE, flow(1, "CLOSE")], [])
    assert result.percent is None and result.established == 0 and "no established flows" in result.text()


def test_alarm_reports_the_first_a_five_point_move_and_reachability_changes() -> None:
    alarm = CoverageAlarm(step=5.0)

    def at(kept: int, of: int = 100) -> bool:
        return alarm.update(coverage([flow(p) for p in range(1, of + 1)], [flow(p) for p in range(1, kept + 1)]))

    assert at(90)  # the first measurement
    assert not at(94) and not at(86)  # within 5 points of the last reported 90
    assert at(95)  # 5 points
    assert not at(91)
    assert alarm.update(None, "refused")  # unreachable
    assert not alarm.update(None, "refused again")  # still unreachable: not news
    assert at(95)  # reachable again
    assert alarm.update(coverage([], []))  # no established flow at all: news once
    assert not alarm.update(coverage([], []))


def test_the_event_round_trips_and_reads_well() -> None:
    ok = SyncCoverage(peer="10.0.0.2:9650", percent=87.5, established=8, kept=7)
    assert event_from_json(event_to_json(ok)) == ok
    assert ok.severity == "notice" and "keep 88% of established flows (7 of 8)" in ok.text()
    down = SyncCoverage(peer="10.0.0.2:9650", percent=None, error="connection refused")
    assert down.severity == "warning" and "unreachable: connection refused" in down.text()


# ---------------------------------------------------------------------------------------------- the peer over HTTP

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve(handler: Handler) -> tuple[asyncio.Server, ListenAddress]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, ListenAddress("127.0.0.1", server.sockets[0].getsockname()[1])


def answering(status: str, body: bytes) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        assert request.startswith(f"GET {CONNECTIONS_PATH} HTTP/1.0\r\n".encode())
        writer.write(f"HTTP/1.0 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                     .encode() + body)
        await writer.drain()
        writer.close()
    return handle


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_fetch_reads_the_peers_table() -> None:
    async def go() -> list[Connection]:
        body = json.dumps(connections_json([flow(1), TEMPLATE])).encode()
        server, address = await serve(answering("200 OK", body))
        async with server:
            return await fetch_peer_connections(address, timeout=5)

    assert asyncio.run(go()) == [flow(1), TEMPLATE]


@pytest.mark.parametrize(("status", "body", "message"), [
    ("503 Service Unavailable", b'{"error": "x"}', "HTTP 503 Service Unavailable"),
    ("200 OK", b"<html>metrics</html>", "not a connection table"),
    ("200 OK", b'{"connections": [{"protocol": "TCP"}]}', "not a connection table"),
])
def test_fetch_errors_say_why(status: str, body: bytes, message: str) -> None:
    async def go() -> None:
        server, address = await serve(answering(status, body))
        async with server:
            with pytest.raises(PeerUnreachable, match=message) as info:
                await fetch_peer_connections(address, timeout=5)
            assert str(address) in str(info.value)

    asyncio.run(go())


def test_fetch_from_a_closed_port_and_a_silent_peer_is_bounded() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers; the client gives up

    async def go() -> None:
        with pytest.raises(PeerUnreachable, match=r"127\.0\.0\.1:\d+/connections.json: "):
            await fetch_peer_connections(ListenAddress("127.0.0.1", closed_port()), timeout=5)
        server, address = await serve(silent)
        async with server:
            loop = asyncio.get_running_loop()
            start = loop.time()
            with pytest.raises(PeerUnreachable, match=r"no answer within 0\.3 s"):
                await fetch_peer_connections(address, timeout=0.3)
            assert loop.time() - start < 3

    asyncio.run(go())


def test_the_watcher_publishes_news_only() -> None:
    peer_tables: list[list[Connection] | None] = [[flow(1), flow(2)], [flow(1), flow(2)], [flow(1)], None]
    ours = [flow(1), flow(2)]
    events: list[Event] = []

    async def fetch(address: ListenAddress, timeout: float) -> list[Connection]:
        table = peer_tables.pop(0)
        if table is None:
            raise PeerUnreachable(f"{address}/connections.json: Connection refused")
        return table

    async def read_ours() -> list[Connection]:
        return ours

    async def go() -> None:
        watcher = CoverageWatcher(ListenAddress("10.0.0.2", 9650), read_ours, events.append, fetch=fetch)
        for _ in range(4):
            await watcher.measure()
        assert watcher.error is not None and watcher.latest is None
        assert watcher.as_json()["error"] == "10.0.0.2:9650/connections.json: Connection refused"

    asyncio.run(go())
    assert [(e.percent, e.error) for e in events if isinstance(e, SyncCoverage)] == [
        (100.0, ""), (50.0, ""), (None, "10.0.0.2:9650/connections.json: Connection refused")]
