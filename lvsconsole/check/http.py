"""HTTP_GET and SSL_GET: fetch each url and judge the status code, the body's MD5 digest and a regex.

The client is deliberately keepalived's own minimal one (``check_http.c``), because the digest in a
config was computed by ``genhash``, which runs that client:

* The request is ``GET <path> HTTP/1.0`` (``1.1`` for ``http_protocol 1.1``) with ``User-Agent:
  KeepAliveClient``, ``Connection: close`` for ``1.0C`` and ``1.1``, and ``Host:`` the url's virtualhost
  (inherited url → checker → real server → virtual server) or else ``ip:port`` of the target
  (``[ip]:port`` for IPv6).
* The response is read to EOF. The headers end at the first CRLFCRLF; the status code is the number after
  the first space; the digest is the MD5 of the bytes after the headers, stopping at Content-Length when
  the server sent one. Nothing is decoded: a chunked body is hashed with its chunk framing, as genhash
  does, so digests match keepalived's byte for byte.
* A url passes when the status is in its ``status_code`` set (default 200-299), the digest (if any)
  matches, and the regex (if any) matches the body (``regex_no_match``: must not match). Python's ``re``
  stands in for PCRE2; the body kept for the regex is capped at :data:`REGEX_BODY_LIMIT` bytes.
* SSL_GET wraps the connection in TLS. Like keepalived the server certificate is not verified; the root
  ``SSL { ca certificate key password }`` block supplies a client certificate. With ``enable_sni`` the
  SNI name is ``sni_name`` or the url's virtualhost chain.

Every url of a checker must pass; they are fetched in order within one check and the first failure is the
result. (keepalived fetches one url per ``delay_loop`` tick, so a checker with N urls needs N ticks to
come up unless ``fast_recovery`` is set; here one check covers all of them, and without fast_recovery
from_config asks for N passing checks in a row instead, through the policy's rise.) With ``tls_compliant``
(SSL_GET, checker or url) a response must end with a TLS close_notify; by default, as keepalived ignores
an unexpected EOF, a bare TCP close is accepted. Each network step is bounded by ``connect_timeout``, as
each of keepalived's I/O threads is. Failures use keepalived's ``timeout_epilog`` texts ("Timeout
connecting server [ip]:tcp:80.", "HTTP status code error to server …", "MD5 digest error to server …").
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import re
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

from lvsconsole.check import _net
from lvsconsole.check.policy import CheckOutcome

__all__ = ["REGEX_BODY_LIMIT", "HttpChecker", "HttpUrlSpec", "build_request", "make_ssl_context"]

REGEX_BODY_LIMIT = 4 * 1024 * 1024
"""Bytes of body kept for a url's regex (keepalived streams PCRE2 partial matches; ``re`` cannot)."""

READ_SIZE = 65536
_SUCCESS = "Remote Web server {rs} succeed on service."
_UNREACHABLE_ERRNOS = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN})


@dataclass(frozen=True, slots=True)
class HttpUrlSpec:
    """One url block, with its virtualhost and SNI name already inherited."""

    path: str = "/"
    digest: str | None = None
    """32 lower-case hex digits, as genhash prints them."""
    status_codes: tuple[tuple[int, int], ...] = ((200, 299),)
    virtualhost: str | None = None
    regex: re.Pattern[bytes] | None = None
    regex_no_match: bool = False
    sni: str | None = None
    """The TLS server name to send (SSL_GET with enable_sni), None for none."""
    tls_compliant: bool = False
    """SSL_GET: the server must end the response with a TLS close_notify; a bare TCP close fails the url.
    Without it (keepalived's default: SSL_OP_IGNORE_UNEXPECTED_EOF) the response received is judged."""

    def status_ok(self, code: int) -> bool:
        return any(lo <= code <= hi for lo, hi in self.status_codes)


def build_request(path: str, host: str, port: int, virtualhost: str | None, protocol: str) -> bytes:
    """The GET keepalived sends (``request_template`` in check_http.c)."""
    if virtualhost:
        host_header = virtualhost
    elif _net.family_of(host) == socket.AF_INET6:
        host_header = f"[{host}]:{port}"
    else:
        host_header = f"{host}:{port}"
    minor = 1 if protocol == "1.1" else 0
    close = "Connection: close\r\n" if protocol in ("1.0C", "1.1") else ""
    text = f"GET {path} HTTP/1.{minor}\r\nUser-Agent: KeepAliveClient\r\n{close}Host: {host_header}\r\n\r\n"
    return text.encode("latin-1", "replace")


def make_ssl_context(
    ca: str | None = None,
    certificate: str | None = None,
    key: str | None = None,
    password: str | None = None,
) -> ssl.SSLContext:
    """The SSL_GET client context: no server verification (keepalived's), optional client certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if ca:
        ctx.load_verify_locations(ca)
    if certificate:
        ctx.load_cert_chain(certificate, key or None, password)
    return ctx


def _atoi(data: bytes) -> int:
    """C's atoi(): optional blanks, an optional sign, then digits; 0 when there are none."""
    m = re.match(rb"[ \t\n\v\f\r]*([+-]?\d+)", data)
    return int(m.group(1)) if m else 0


def _status_code(response: bytes) -> int:
    """keepalived's extract_status_code(): the token after the first space, as atoi() reads it."""
    first = response.find(b" ")
    if first < 0:
        return 0
    start = first + 1
    end = response.find(b" ", start)
    return _atoi(response[start : end if end >= 0 else len(response)])


_CONTENT_LENGTH = re.compile(rb"content-length:", re.IGNORECASE)


def _content_length(head: bytes) -> int | None:
    m = _CONTENT_LENGTH.search(head)
    if m is None:
        return None
    value = _atoi(head[m.end() : m.end() + 32])
    return value if value >= 0 else None


def _close_notify_received(writer: asyncio.StreamWriter) -> bool:
    """After EOF on a TLS stream: whether the peer sent close_notify (asyncio reads both ends alike). The TLS
    object answers a read with SSLZeroReturnError once close_notify has arrived, and wants more data when
    the TCP stream merely ended."""
    tls = writer.get_extra_info("ssl_object")
    if not isinstance(tls, ssl.SSLObject):
        return True
    try:
        tls.read(1)
    except ssl.SSLZeroReturnError:
        return True
    except ssl.SSLError:
        return False
    return False


class _Failure(Exception):
    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason

    def outcome(self) -> CheckOutcome:
        return CheckOutcome(False, f"{self.message} server {{rs}}.", reason=self.reason)


@dataclass(slots=True)
class HttpChecker:
    """One HTTP_GET (``ssl_context`` None) or SSL_GET. ``host``/``port`` are the resolved target."""

    host: str
    port: int
    urls: Sequence[HttpUrlSpec]
    connect_timeout: float = 5.0
    protocol: str = "1.0"
    ssl_context: ssl.SSLContext | None = None
    binding: _net.Binding = _net.NO_BINDING

    @property
    def timeout(self) -> float:
        """A backstop for the runner: connect, handshake, send and a few reads per url."""
        return self.connect_timeout * 4 * max(1, len(self.urls))

    async def check(self) -> CheckOutcome:
        for url in self.urls:
            try:
                await self.fetch(url)
            except _Failure as failure:
                return failure.outcome()
        return CheckOutcome(True, _SUCCESS)

    async def fetch(self, url: HttpUrlSpec) -> None:
        """Fetch and judge one url; raises _Failure with keepalived's wording."""
        ct = self.connect_timeout
        tls = self.ssl_context is not None
        try:
            async with asyncio.timeout(ct):
                sock = await _net.open_tcp(self.host, self.port, self.binding)
        except TimeoutError:
            raise _Failure("Timeout connecting", "connect timeout") from None
        except OSError as exc:
            if exc.errno in _UNREACHABLE_ERRNOS:
                raise _Failure("HTTP_CHECK - network unreachable", _net.os_reason(exc)) from None
            raise _Failure("Connection failed", _net.os_reason(exc)) from None
        writer: asyncio.StreamWriter | None = None
        try:
            try:
                async with asyncio.timeout(ct):
                    if self.ssl_context is not None:
                        reader, writer = await asyncio.open_connection(
                            sock=sock,
                            ssl=self.ssl_context,
                            server_hostname=url.sni or "",
                            ssl_handshake_timeout=ct,
                        )
                    else:
                        reader, writer = await asyncio.open_connection(sock=sock, limit=READ_SIZE)
            except TimeoutError:
                raise _Failure("Timeout connecting", "TLS handshake timeout") from None
            except (OSError, ssl.SSLError) as exc:
                raise _Failure("SSL handshake/communication error connecting to", _net.os_reason(exc)) from None
            request = build_request(url.path, self.host, self.port, url.virtualhost, self.protocol)
            try:
                writer.write(request)
                async with asyncio.timeout(ct):
                    await writer.drain()
            except TimeoutError:
                raise _Failure("Timeout WEB write", "write timeout") from None
            except (OSError, ssl.SSLError) as exc:
                raise _Failure("Cannot send get request to", _net.os_reason(exc)) from None
            await self._read_and_judge(reader, url, tls)
            if tls and url.tls_compliant and not _close_notify_received(writer):
                raise _Failure("SSL read error from", "TLS connection closed without close_notify")
        finally:
            if writer is not None:
                writer.transport.abort()
            sock.close()

    async def _read_and_judge(self, reader: asyncio.StreamReader, url: HttpUrlSpec, tls: bool) -> None:
        ct = self.connect_timeout
        buf = bytearray()
        head_len = -1
        status = 0
        content_length: int | None = None
        md5 = hashlib.md5(usedforsecurity=False) if url.digest else None
        rx = 0
        body = bytearray() if url.regex is not None else None
        first = True
        while True:
            try:
                async with asyncio.timeout(ct):
                    chunk = await reader.read(READ_SIZE)
            except TimeoutError:
                if first:
                    raise _Failure("Timeout WEB read", "read timeout") from None
                raise _Failure("Timeout SSL read" if tls else "Timeout HTTP read", "read timeout") from None
            except (OSError, ssl.SSLError) as exc:
                if tls and head_len >= 0 and not url.tls_compliant:
                    break  # an unclean TLS close after the headers: keepalived judges what it has
                if tls:
                    raise _Failure("SSL read error from", _net.os_reason(exc)) from None
                raise _Failure("Read error with", _net.os_reason(exc)) from None
            first = False
            if not chunk:
                break
            if head_len < 0:
                buf += chunk
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    continue
                head_len = end + 4
                head = bytes(buf[:head_len])
                status = _status_code(bytes(buf))
                content_length = _content_length(head)
                chunk = bytes(buf[head_len:])
                buf.clear()
                if not chunk:
                    continue
            if md5 is not None:
                take = len(chunk) if content_length is None else max(0, min(len(chunk), content_length - rx))
                if take:
                    md5.update(chunk if take == len(chunk) else chunk[:take])
            rx += len(chunk)
            if body is not None and len(body) < REGEX_BODY_LIMIT:
                body += chunk[: REGEX_BODY_LIMIT - len(body)]
        if head_len < 0:
            raise _Failure("Read, no data received from", "no HTTP response")
        if not url.status_ok(status):
            raise _Failure("HTTP status code error to", f"status {status} for {url.path}")
        if md5 is not None and md5.hexdigest() != url.digest:
            raise _Failure("MD5 digest error to", f"digest {md5.hexdigest()} for {url.path}")
        if url.regex is not None and body is not None:
            matched = url.regex.search(body) is not None
            if matched == url.regex_no_match:
                what = "matched" if matched else "did not match"
                raise _Failure("Regex match failed", f"regex {what} for {url.path}")
