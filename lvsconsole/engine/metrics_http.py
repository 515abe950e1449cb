"""``--metrics HOST:PORT``: prometheus_client's own HTTP server, in its thread, over the engine's state.

The engine's state belongs to its asyncio loop, so a scrape asks the loop for a :class:`Scrape` (one
snapshot plus a copy of the check figures) and waits for it; the text formatting, the slow part at tens of
thousands of real servers, then runs on the server's thread and never stalls VRRP or the checks.

``/connections.json`` serves the IPVS connection table (``{"time", "connections": [...]}``, see
engine/synccoverage.py): the peer director reads it to measure connection-sync coverage.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIServer
from wsgiref.types import StartResponse

from prometheus_client import CollectorRegistry, start_http_server

from lvsconsole.engine.director import Director
from lvsconsole.engine.listen import ListenAddress
from lvsconsole.engine.metrics import CheckTally, DirectorCollector, Scrape, take_scrape
from lvsconsole.engine.synccoverage import CONNECTIONS_PATH, connections_json

WsgiApp = Callable[[dict[str, Any], "StartResponse"], Iterable[bytes]]

SCRAPE_TIMEOUT = 10.0
"""How long a scrape waits for the engine's loop before it fails (HTTP 500) instead of hanging."""


class MetricsError(OSError):
    """The metrics listener could not be opened; the message names the option and the address."""


class MetricsServer:
    def __init__(self, director: Director, address: ListenAddress) -> None:
        self.director = director
        self.requested = address
        self.tally = CheckTally()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._httpd: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> ListenAddress:
        """Where it listens (the real port when 0 was asked for)."""
        if self._httpd is None:
            return self.requested
        host, port = self._httpd.server_address[:2]
        return ListenAddress(str(host), int(port))

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.director.add_check_listener(self.tally.on_check)
        registry = CollectorRegistry()
        registry.register(DirectorCollector(self._scrape_from_server_thread))
        host = self.requested.host or "::"
        try:
            self._httpd, self._thread = start_http_server(self.requested.port, host, registry)
        except OSError as exc:
            if self.requested.host:
                raise MetricsError(exc.errno, f"--metrics {self.requested}: {exc.strerror or exc}") from exc
            # no IPv6 here: every IPv4 address then
            try:
                self._httpd, self._thread = start_http_server(self.requested.port, "0.0.0.0", registry)
            except OSError as exc4:
                raise MetricsError(exc4.errno, f"--metrics {self.requested}: {exc4.strerror or exc4}") from exc4
        metrics_app = self._httpd.get_app()
        assert metrics_app is not None
        self._httpd.set_app(self._with_connections(metrics_app))

    def _with_connections(self, metrics_app: WsgiApp) -> WsgiApp:
        """prometheus_client's app, plus ``/connections.json``."""
        def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            if environ.get("PATH_INFO") != CONNECTIONS_PATH:
                return metrics_app(environ, start_response)
            try:
                body = json.dumps(self._connections_from_server_thread()).encode()
                status = "200 OK"
            except Exception as exc:  # the peer gets the reason instead of a dropped connection
                body = json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode()
                status = "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return app

    def _connections_from_server_thread(self) -> dict[str, Any]:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(self.director.read_connections(), self._loop)
        return connections_json(future.result(SCRAPE_TIMEOUT))

    def _scrape_from_server_thread(self) -> Scrape:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(self._scrape(), self._loop)
        return future.result(SCRAPE_TIMEOUT)

    async def _scrape(self) -> Scrape:
        return take_scrape(self.director.snapshot(), self.tally)

    async def close(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        # shutdown() waits for serve_forever's poll loop (up to 0.5 s): not on the engine's loop
        await asyncio.to_thread(httpd.shutdown)
        httpd.server_close()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5.0)
