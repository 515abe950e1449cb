"""Real servers on loopback for the checker tests, and small helpers around them.

Every wait is an await bounded by :data:`LIMIT` (no sleeps used as synchronisation).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from lvsconsole.check.policy import LogEvent

T = TypeVar("T")
LIMIT = 10.0


def run(coro: Coroutine[Any, Any, T], limit: float = 60.0) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(limit):
            return await coro

    return asyncio.run(bounded())


def free_port(family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM) -> int:
    """A port nothing listens on (bound and released)."""
    s = socket.socket(family, kind)
    s.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


def has_ipv6_loopback() -> bool:
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
    except OSError:
        return False
    return True


# ---- HTTP ----------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"OK\n"
    headers: tuple[tuple[str, str], ...] = ()
    content_length: bool = True
    hang: bool = False
    """Accept the request and never answer."""


@dataclass
class HttpServer:
    """An asyncio HTTP/1.x server: answers each path from ``routes`` (default: 404) and closes.

    ``requests`` keeps every request head received, ``sni`` every TLS server name seen.
    """

    routes: dict[str, Reply] = field(default_factory=dict)
    tls: ssl.SSLContext | None = None
    host: str = "127.0.0.1"
    requests: list[bytes] = field(default_factory=list)
    peers: list[tuple[str, int]] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)
    client_certs: list[bool] = field(default_factory=list)
    port: int = 0
    arrived: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    _server: asyncio.Server | None = None

    async def __aenter__(self) -> HttpServer:
        if self.tls is not None:
            self.tls.sni_callback = self._on_sni
        self._server = await asyncio.start_server(self._handle, self.host, 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def _on_sni(self, sslobj: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        self.sni.append(name)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        self.requests.append(head)
        self.peers.append(writer.get_extra_info("peername")[:2])
        sslobj = writer.get_extra_info("ssl_object")
        if sslobj is not None:
            self.client_certs.append(sslobj.getpeercert(binary_form=True) is not None)
        self.arrived.put_nowait(head)
        path = head.split(b" ", 2)[1].decode()
        reply = self.routes.get(path, Reply(404, b"not found\n"))
        if reply.hang:
            try:
                await reader.read()
            finally:
                writer.close()
            return
        lines = [f"HTTP/1.0 {reply.status} X"]
        lines += [f"{k}: {v}" for k, v in reply.headers]
        if reply.content_length:
            lines.append(f"Content-Length: {len(reply.body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + reply.body)
        try:
            await writer.drain()
        finally:
            writer.close()


def make_cert(directory: Path, name: str = "server") -> tuple[Path, Path]:
    """A self-signed certificate and key made with the openssl command (EC P-256, CN=localhost)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl command is needed to make a test certificate")
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            f"/CN={name}.test",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


# ---- events --------------------------------------------------------------------------------------


async def wait_for_event(
    events: Any, predicate: Callable[[LogEvent], bool], seen: list[LogEvent] | None = None, limit: float = LIMIT
) -> LogEvent:
    """Consume ``events`` (an async iterator of LogEvents) until one satisfies ``predicate``."""
    async with asyncio.timeout(limit):
        async for ev in events:
            if seen is not None:
                seen.append(ev)
            if predicate(ev):
                return ev  # type: ignore[no-any-return]
    raise AssertionError("event stream ended")


# ---- processes -----------------------------------------------------------------------------------


async def wait_exit(pid: int, limit: float = 5.0) -> bool:
    """Await the end of any process (not only our child) through a pidfd; True once it is gone."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    loop = asyncio.get_running_loop()
    exited = loop.create_future()

    def done() -> None:
        if not exited.done():
            exited.set_result(None)

    loop.add_reader(fd, done)
    try:
        async with asyncio.timeout(limit):
            await exited
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return True


async def read_fifo(path: Path, limit: float = 5.0) -> str:
    """The first line a script writes into the FIFO at ``path`` (created here unless it exists)."""
    if not path.exists():
        os.mkfifo(path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    loop = asyncio.get_running_loop()
    buf = bytearray()
    got = asyncio.Event()

    def readable() -> None:
        try:
            buf.extend(os.read(fd, 4096))
        except BlockingIOError:
            return
        if b"\n" in buf:
            got.set()

    loop.add_reader(fd, readable)
    try:
        async with asyncio.timeout(limit):
            await got.wait()
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return buf.decode().splitlines()[0]
