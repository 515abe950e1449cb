"""Connection-sync coverage: would a failover now keep the established flows?

With ``lvs_sync_daemon`` the master's IPVS sends its connections to the backup director, so that after a
failover the backup forwards existing flows to the same real servers. Whether it really has them is a matter
of the sync daemon running on both sides, the same syncid, multicast getting through, and timing; this module
measures it: of this director's established TCP flows (templates aside), the share the peer's connection table
holds with the same client, virtual address and real server.

- ``coverage(ours, peers)`` is the pure comparison;
- ``CoverageAlarm`` decides when a new measurement is news (a change of ``STEP`` points or more, or the peer
  becoming unreachable or reachable again);
- ``fetch_peer_connections`` reads the peer's table from its metrics endpoint (``/connections.json``, served
  by engine/metrics_http.py) over a plain HTTP/1.0 GET with asyncio streams, bounded by a timeout;
- ``CoverageWatcher`` measures every ``INTERVAL`` seconds (global_defs ``lvs_sync_peer_http HOST:PORT``) and
  publishes a ``SyncCoverage`` event when ``CoverageAlarm`` says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lvsconsole.engine.events import Event, SyncCoverage
from lvsconsole.engine.listen import ListenAddress
from lvsconsole.ipvs.conntable import Connection, ConnTableError

CONNECTIONS_PATH = "/connections.json"
FETCH_TIMEOUT = 3.0
"""Seconds to connect to the peer, send the request and read its whole answer."""
MAX_BODY = 256 * 1024 * 1024
"""A peer's answer larger than this is refused (a million connections are about 250 MB of JSON)."""
INTERVAL = 5.0
STEP = 5.0
"""Percentage points of change that make a new measurement worth an event."""
MISSING_EXAMPLES = 10


class PeerUnreachable(OSError):
    """The peer's connection table could not be read; the message says where and why."""


@dataclass(frozen=True)
class Coverage:
    established: int
    """This director's established TCP flows (persistence templates and other states not counted)."""
    kept: int
    """Those the peer holds too (same protocol, client, virtual and real endpoints)."""
    missing: tuple[Connection, ...] = ()
    """Some of the flows the peer lacks (at most MISSING_EXAMPLES)."""
    peer_total: int = 0
    """Entries in the peer's table, templates included."""

    @property
    def percent(self) -> float | None:
        """Share of established flows a failover would keep; None when there is none to keep."""
        return None if self.established == 0 else 100.0 * self.kept / self.established

    def text(self) -> str:
        pct = self.percent
        if pct is None:
            return f"no established flows here to keep (the peer holds {self.peer_total} entries)"
        return (f"a failover now would keep {pct:.0f}% of established flows "
                f"({self.kept} of {self.established}; the peer holds {self.peer_total} entries)")

    def as_json(self) -> dict[str, Any]:
        return {"established": self.established, "kept": self.kept, "percent": self.percent,
                "peer_total": self.peer_total, "missing": [c.as_json() for c in self.missing]}


def coverage(ours: Iterable[Connection], peers: Iterable[Connection]) -> Coverage:
    """Of ``ours``' established non-template TCP flows, how many ``peers`` holds (in any state: the backup
    keeps what the master last sent, and it is that entry which steers the flow after a failover)."""
    peer_list = list(peers)
    held = {c.flow_key() for c in peer_list if not c.template}
    established = kept = 0
    missing: list[Connection] = []
    for conn in ours:
        if not conn.established_flow:
            continue
        established += 1
        if conn.flow_key() in held:
            kept += 1
        elif len(missing) < MISSING_EXAMPLES:
            missing.append(conn)
    return Coverage(established, kept, tuple(missing), len(peer_list))


class CoverageAlarm:
    """When a measurement is news: the first one, a move of ``step`` points or more since the last news, the
    peer becoming unreachable, or reachable again. Sans-IO."""

    def __init__(self, step: float = STEP) -> None:
        self.step = step
        self._reported: float | None = None
        self._error: str | None = None
        self._started = False

    def update(self, result: Coverage | None, error: str | None = None) -> bool:
        """``result`` None with ``error``: the peer could not be read. Returns True when it is news."""
        if result is None:
            news = not self._started or self._error is None
            self._started, self._error = True, error or "unreachable"
            return news
        pct = result.percent
        news = (not self._started or self._error is not None
                or (pct is None) != (self._reported is None)
                or (pct is not None and self._reported is not None and abs(pct - self._reported) >= self.step))
        self._started, self._error = True, None
        if news:
            self._reported = pct
        return news


# ---------------------------------------------------------------------------------------------- the peer


def connections_from_json(data: Any) -> list[Connection]:
    """``/connections.json``: ``{"connections": [...]}``; raises ConnTableError when it is something else."""
    if not isinstance(data, dict) or not isinstance(data.get("connections"), list):
        raise ConnTableError("not a connection table (expected {\"connections\": [...]})")
    return [Connection.from_json(item) for item in data["connections"]]


def connections_json(connections: Sequence[Connection]) -> dict[str, Any]:
    return {"time": time.time(), "connections": [c.as_json() for c in connections]}


async def _http_get(address: ListenAddress, path: str) -> bytes:
    reader, writer = await asyncio.open_connection(address.host, address.port)
    try:
        host = f"[{address.host}]" if ":" in address.host else address.host
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}:{address.port}\r\nAccept: application/json\r\n"
                     "Connection: close\r\n\r\n".encode("ascii"))
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise PeerUnreachable(f"{address}{path}: not an HTTP answer ({status_line[:60]!r})")
        if parts[1] != "200":
            raise PeerUnreachable(f"{address}{path}: HTTP {' '.join(parts[1:])}")
        length: int | None = None
        for line in header_lines:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length" and value.strip().isdigit():
                length = int(value.strip())
        if length is not None and length > MAX_BODY:
            raise PeerUnreachable(f"{address}{path}: answer of {length} bytes is too large")
        return await (reader.readexactly(length) if length is not None else reader.read(MAX_BODY))
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def fetch_peer_connections(address: ListenAddress, timeout: float = FETCH_TIMEOUT) -> list[Connection]:
    """The peer engine's connection table, from its metrics endpoint. Raises PeerUnreachable saying why."""
    try:
        async with asyncio.timeout(timeout):
            body = await _http_get(address, CONNECTIONS_PATH)
    except TimeoutError:
        raise PeerUnreachable(f"{address}{CONNECTIONS_PATH}: no answer within {timeout:g} s") from None
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        raise PeerUnreachable(f"{address}{CONNECTIONS_PATH}: answer cut short ({exc})") from None
    except PeerUnreachable:
        raise
    except OSError as exc:
        raise PeerUnreachable(f"{address}{CONNECTIONS_PATH}: {exc.strerror or exc}") from None
    try:
        return connections_from_json(json.loads(body))
    except (ValueError, ConnTableError) as exc:
        raise PeerUnreachable(f"{address}{CONNECTIONS_PATH}: not a connection table ({exc})") from None


# ---------------------------------------------------------------------------------------------- the watcher


class CoverageWatcher:
    """Measures the coverage against ``peer`` every ``interval`` seconds; publishes ``SyncCoverage`` news."""

    def __init__(self, peer: ListenAddress, read_ours: Callable[[], Awaitable[list[Connection]]],
                 publish: Callable[[Event], None], *, interval: float = INTERVAL, timeout: float = FETCH_TIMEOUT,
                 fetch: Callable[[ListenAddress, float], Awaitable[list[Connection]]] = fetch_peer_connections
                 ) -> None:
        self.peer = peer
        self._read_ours = read_ours
        self._publish = publish
        self.interval = interval
        self.timeout = timeout
        self._fetch = fetch
        self.alarm = CoverageAlarm()
        self.latest: Coverage | None = None
        self.error: str | None = None
        self.measured_at: float | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="lvsconsole-sync-coverage")

    def cancel(self) -> None:
        """Stop measuring (without waiting for a fetch in flight to unwind)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def measure(self) -> Coverage | None:
        """One measurement now (publishes the event if it is news); None when the peer could not be read."""
        result: Coverage | None = None
        error: str | None = None
        try:
            peers = await self._fetch(self.peer, self.timeout)
            result = coverage(await self._read_ours(), peers)
        except PeerUnreachable as exc:
            error = str(exc)
        except OSError as exc:  # our own table could not be read
            error = f"reading this director's connection table: {exc}"
        self.latest, self.error, self.measured_at = result, error, time.time()
        if self.alarm.update(result, error):
            self._publish(SyncCoverage(peer=str(self.peer), percent=None if result is None else result.percent,
                                       established=0 if result is None else result.established,
                                       kept=0 if result is None else result.kept, error=error or ""))
        return result

    def as_json(self) -> dict[str, Any]:
        """The last measurement in brief (no example flows): peer, measured_at, error, percent, established, kept."""
        latest = self.latest
        return {"peer": str(self.peer), "measured_at": self.measured_at, "error": self.error,
                "percent": None if latest is None else latest.percent,
                "established": None if latest is None else latest.established,
                "kept": None if latest is None else latest.kept}

    async def _run(self) -> None:
        while True:
            await self.measure()
            await asyncio.sleep(self.interval)
