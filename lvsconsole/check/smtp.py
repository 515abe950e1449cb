"""SMTP_CHECK: connect, read the 220 greeting, ``HELO helo_name``, expect 250, ``QUIT``, read a line.

This is keepalived's ``check_smtp.c`` conversation, including its strictness: a reply line counts only if
it starts with exactly three digits followed by a space or the end of the line, so a multi-line
``220-`` greeting is a "Bad greeting banner". Each step is bounded by ``connect_timeout``; whatever the
server sent beyond the first line of a reply is discarded, and the reply to QUIT is not judged (any line
will do). The default HELO name is keepalived's ``smtpchecker.keepalived.org``.

keepalived's deprecated ``host { }`` sub-blocks become one SMTP checker each (that is what keepalived 2.x
does internally); see :mod:`lvsconsole.check.from_config`.
"""

from __future__ import annotations

import asyncio
import re
import socket
from dataclasses import dataclass

from lvsconsole.check import _net
from lvsconsole.check.policy import CheckOutcome

__all__ = ["DEFAULT_HELO", "SmtpChecker"]

DEFAULT_HELO = "smtpchecker.keepalived.org"
SMTP_BUFF_MAX = 512
_STATUS = re.compile(rb"(\d{3})(?: |$)")
_SUCCESS = "Remote SMTP server {rs} succeed on service."


class _Failure(Exception):
    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


@dataclass(slots=True)
class SmtpChecker:
    host: str
    port: int = 25
    helo_name: str = DEFAULT_HELO
    connect_timeout: float = 5.0
    binding: _net.Binding = _net.NO_BINDING

    @property
    def timeout(self) -> float:
        return self.connect_timeout * 7

    async def check(self) -> CheckOutcome:
        server = _net.format_pair(self.host, self.port)
        try:
            await self._converse(server)
        except _Failure as failure:
            return CheckOutcome(False, f"SMTP_CHECK {failure.message}", reason=failure.reason)
        return CheckOutcome(True, _SUCCESS)

    async def _converse(self, server: str) -> None:
        loop = asyncio.get_running_loop()
        ct = self.connect_timeout
        try:
            async with asyncio.timeout(ct):
                sock = await _net.open_tcp(self.host, self.port, self.binding)
        except TimeoutError:
            raise _Failure(f"Connection timeout to server {server}", "connect timeout") from None
        except OSError:
            raise _Failure(f"Could not connect to server {server}", "connect failed") from None
        try:
            if _status(await self._get_line(loop, sock, server)) != 220:
                raise _Failure(f"Bad greeting banner from server {server}", "bad greeting")
            await self._put_line(loop, sock, server, f"HELO {self.helo_name}\r\n".encode())
            if _status(await self._get_line(loop, sock, server)) != 250:
                raise _Failure(f"Bad HELO response from server {server}", "bad HELO response")
            await self._put_line(loop, sock, server, b"QUIT\r\n")
            await self._get_line(loop, sock, server)
        finally:
            sock.close()

    async def _get_line(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, server: str) -> bytes:
        buf = bytearray()
        while True:
            try:
                async with asyncio.timeout(self.connect_timeout):
                    data = await loop.sock_recv(sock, SMTP_BUFF_MAX - 1 - len(buf))
            except TimeoutError:
                raise _Failure(f"Read timeout from server {server}", "read timeout") from None
            except OSError:
                raise _Failure(f"Read failure from server {server}", "read failure") from None
            if not data:
                raise _Failure(f"Read failure from server {server}", "connection closed")
            buf += data
            nl = buf.find(b"\n")
            if nl >= 0:
                return bytes(buf[:nl])
            if len(buf) >= SMTP_BUFF_MAX - 1:
                buf.clear()  # keepalived wraps a full buffer ("Buffer overflow reading from server")

    async def _put_line(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, server: str, line: bytes) -> None:
        try:
            async with asyncio.timeout(self.connect_timeout):
                await loop.sock_sendall(sock, line)
        except TimeoutError:
            raise _Failure(f"Write timeout to server {server}", "write timeout") from None
        except OSError:
            raise _Failure(f"Write failure to server {server}", "write failure") from None


def _status(line: bytes) -> int:
    """keepalived's smtp_get_status(): three digits then a space or the end, else -1."""
    m = _STATUS.match(line)
    return int(m.group(1)) if m else -1
