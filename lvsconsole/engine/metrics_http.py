"""``--metrics HOST:PORT``: prometheus_client's own HTTP server, in its thread, over the engine's state.

The engine's state belongs to its asyncio loop, so a scrape asks the loop for a :class:`Scrape` (one
snapshot plus a copy of the check figures) and waits for it; the text formatting, the slow part at tens of
thousands of real servers, then runs on the server's thread and never stalls VRRP or the checks.
"""

from __future__ import annotations

import asyncio
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from lvsconsole.engine.director import Director
from lvsconsole.engine.listen import ListenAddress
from lvsconsole.engine.metrics import CheckTally, DirectorCollector, Scrape, take_scrape

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
