"""SSL_GET tls_compliant (a TLS close without close_notify fails only when it is set) and HTTP_GET
fast_recovery (without it, a checker with N urls needs N passing checks to come up, as keepalived walks one
url per delay_loop), against real loopback servers."""

from __future__ import annotations

import asyncio
import socket
import ssl
import textwrap
from pathlib import Path

from _checkutil import LIMIT, make_cert, run

from lvsconsole.check.from_config import build_checks
from lvsconsole.check.http import HttpChecker, HttpUrlSpec, make_ssl_context
from lvsconsole.check.policy import CheckerRef, DestUp, RsRef
from lvsconsole.check.service import CheckService
from lvsconsole.config.build import load_text
from lvsconsole.config.model import Config

RESPONSE = b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nOK\n"


class TlsServer:
    """Answers every request with RESPONSE over TLS, then ends the connection with close_notify (``clean``)
    or with a bare TCP close (as many embedded servers do)."""

    def __init__(self, cert: Path, key: Path, *, clean: bool) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.clean = clean
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> TlsServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.ctx)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(RESPONSE)
        await writer.drain()
        if self.clean:
            writer.close()
            return
        sock = writer.transport.get_extra_info("socket")
        sock.shutdown(socket.SHUT_RDWR)  # FIN with no close_notify before it
        writer.transport.abort()


def test_tls_compliant_fails_a_close_without_close_notify_and_only_then(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)

    async def outcomes(clean: bool) -> tuple[bool, bool, str]:
        async with TlsServer(cert, key, clean=clean) as server:
            lenient = HttpChecker("127.0.0.1", server.port, (HttpUrlSpec("/"),), 2.0, ssl_context=make_ssl_context())
            strict = HttpChecker(
                "127.0.0.1", server.port, (HttpUrlSpec("/", tls_compliant=True),), 2.0, ssl_context=make_ssl_context()
            )
            a = await lenient.check()
            b = await strict.check()
            return a.ok, b.ok, b.detail + " / " + b.reason

    lenient_ok, strict_ok, why = run(outcomes(clean=False))
    assert lenient_ok  # keepalived's default ignores the missing close_notify
    assert not strict_ok
    assert why == "SSL read error from server {rs}. / TLS connection closed without close_notify"
    lenient_ok, strict_ok, _ = run(outcomes(clean=True))
    assert lenient_ok and strict_ok


def config(text: str) -> Config:
    result = load_text(textwrap.dedent(text))
    errors = [str(d) for d in result.diagnostics if d.is_error]
    assert not errors, errors
    return result.config


def http_conf(port: int, *, fast_recovery: bool, tls_compliant_url: bool = False) -> Config:
    return config(f"""
        virtual_server 10.1.1.1 80 {{
            delay_loop 0.05
            warmup 0
            protocol TCP
            real_server 127.0.0.1 {port} {{
                {"SSL_GET" if tls_compliant_url else "HTTP_GET"} {{
                    alpha
                    connect_timeout 1
                    {"fast_recovery" if fast_recovery else ""}
                    url {{
                        path /a
                        {"tls_compliant" if tls_compliant_url else ""}
                    }}
                    url {{
                        path /b
                    }}
                    url {{
                        path /c
                    }}
                }}
            }}
        }}
    """)


def test_fast_recovery_and_the_url_walk_in_the_built_params() -> None:
    ref = CheckerRef(RsRef("[10.1.1.1]:tcp:80", "[127.0.0.1]:tcp:8080"), 0)
    walk = build_checks(http_conf(8080, fast_recovery=False))
    fast = build_checks(http_conf(8080, fast_recovery=True))
    (walk_vs,) = walk.virtual_servers
    (fast_vs,) = fast.virtual_servers
    assert walk_vs.real_servers[0].checkers[0].rise == 3  # three urls: three passing ticks, as keepalived
    assert fast_vs.real_servers[0].checkers[0].rise is None
    assert ref in walk.checkers and ref in fast.checkers
    strict = build_checks(http_conf(8080, fast_recovery=True, tls_compliant_url=True))
    checker = strict.checkers[ref]
    assert isinstance(checker, HttpChecker)
    assert [u.tls_compliant for u in checker.urls] == [True, False, False]  # url-level keyword


def test_without_fast_recovery_an_alpha_checker_comes_up_after_one_pass_per_url() -> None:
    async def requests_until_up(fast_recovery: bool) -> int:
        requests = 0
        up = asyncio.Event()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal requests
            await reader.readuntil(b"\r\n\r\n")
            requests += 1
            writer.write(RESPONSE)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        at_up = 0

        def on_actions(actions: object) -> None:
            nonlocal at_up
            assert isinstance(actions, list)
            if any(isinstance(a, DestUp) for a in actions) and not up.is_set():
                at_up = requests
                up.set()

        async with server:
            service = CheckService(http_conf(port, fast_recovery=fast_recovery), on_actions, bootstrap_delay=0)
            await service.start()
            try:
                async with asyncio.timeout(LIMIT):
                    await up.wait()
            finally:
                await service.stop(shutdown=False)
        return at_up

    assert run(requests_until_up(fast_recovery=True)) == 3  # one pass over the three urls
    assert run(requests_until_up(fast_recovery=False)) == 9  # three passes: one per url, as keepalived
