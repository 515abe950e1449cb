"""The director's side of the connection-table commands (``ConnTableCore``): reads the backend for them, and
runs the sync-coverage watcher that global_defs ``lvs_sync_peer_http`` asks for.

Kept out of director.py, which only holds one of these and forwards to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from lvsconsole.config import model as m
from lvsconsole.engine.director_api import DirectorError, RsId
from lvsconsole.engine.events import EngineWarning, Event
from lvsconsole.engine.layout import Layout
from lvsconsole.engine.listen import ListenAddress, parse_listen_address
from lvsconsole.engine.synccoverage import Coverage, CoverageWatcher, PeerUnreachable, coverage, fetch_peer_connections
from lvsconsole.ipvs.backend import Backend
from lvsconsole.ipvs.conntable import Connection
from lvsconsole.ipvs.table import DestKey
from lvsconsole.ipvs.trace import TraceInput


class ConnSource:
    def __init__(self, backend: Backend, layout: Callable[[], Layout], absent_reason: Callable[[RsId], str],
                 publish: Callable[[Event], None]) -> None:
        self.backend = backend
        self._layout = layout
        self._absent_reason = absent_reason
        self._publish = publish
        self.watcher: CoverageWatcher | None = None

    async def read_connections(self) -> Sequence[Connection]:
        return await self.backend.read_connections()

    async def trace_inputs(self, vs_keys: Sequence[str]) -> Sequence[tuple[str, TraceInput]]:
        wanted = set(vs_keys)
        table = await self.backend.read_table()
        stats = await self.backend.read_stats()
        out: list[tuple[str, TraceInput]] = []
        for vs in self._layout().virtual_servers:
            if vs.key not in wanted:
                continue
            for skey in vs.service_keys:
                if skey not in table:
                    continue
                entry = table[skey]
                absent: dict[DestKey, str] = {}
                for rs in vs.real_servers:
                    for service_key, dest_key in rs.dests:
                        if service_key == skey and dest_key not in entry.dests:
                            absent[dest_key] = self._absent_reason(rs.rid)
                out.append((vs.key, TraceInput(
                    service=entry.service, dests=tuple(entry.dests.values()),
                    counters={d: stats.dest(skey, d) for d in entry.dests}, absent=absent, vip=skey.address)))
        return out

    # ------------------------------------------------------------------------------ sync coverage

    def configure(self, global_defs: m.GlobalDefs) -> None:
        """Start, move or stop the watcher for ``lvs_sync_peer_http`` (at start and after every reload)."""
        text = global_defs.lvs_sync_peer_http
        peer: ListenAddress | None = None
        if text is not None:
            try:
                peer = parse_listen_address(text)
            except ValueError as exc:  # validation refuses such a config; a config built in code may not be
                self._publish(EngineWarning(message=f"lvs_sync_peer_http {text!r}: {exc}"))
        if self.watcher is not None and (peer is None or self.watcher.peer != peer):
            watcher, self.watcher = self.watcher, None
            watcher.cancel()
        if peer is not None and self.watcher is None:
            self.watcher = CoverageWatcher(peer, self.backend.read_connections, self._publish)
            self.watcher.start()

    async def stop(self) -> None:
        watcher, self.watcher = self.watcher, None
        if watcher is not None:
            await watcher.stop()

    async def sync_coverage(self, peer: ListenAddress | None) -> tuple[ListenAddress, Coverage]:
        if peer is None:
            if self.watcher is None:
                raise DirectorError("no peer: give 'from HOST:PORT' or set global_defs lvs_sync_peer_http")
            result = await self.watcher.measure()
            if result is None:
                raise DirectorError(f"sync coverage unknown: {self.watcher.error}")
            return self.watcher.peer, result
        try:
            peers = await fetch_peer_connections(peer)
        except PeerUnreachable as exc:
            raise DirectorError(f"sync coverage unknown: {exc}") from None
        return peer, coverage(await self.backend.read_connections(), peers)

    def coverage_json(self) -> dict[str, Any] | None:
        """The watcher's last measurement (for the snapshot's figures), or None without a watcher."""
        return None if self.watcher is None else self.watcher.as_json()
