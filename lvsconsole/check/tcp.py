"""TCP_CHECK: the server is up when a TCP handshake with it completes within connect_timeout.

Like keepalived, the connection is closed as soon as it is established (nothing is sent). The target
is ``connect_ip``:``connect_port`` (the real server's address and port by default); ``bindto`` /
``bind_port`` choose the source, ``bind_if`` (SO_BINDTODEVICE) and ``fwmark`` (SO_MARK) are honoured
where the platform has them.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
from dataclasses import dataclass

from lvsconsole.check.policy import CheckOutcome

__all__ = ["TcpChecker"]

_SUCCESS = "TCP connection to {rs} success."
_FAILED = "TCP connection to {rs} failed."
_TIMEDOUT = "TCP connection to {rs} timedout."


def _reason(exc: OSError) -> str:
    if exc.errno is not None and exc.errno in errno.errorcode:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


@dataclass(slots=True)
class TcpChecker:
    """One TCP_CHECK. ``host`` is normally an IP literal; a name is resolved on every check."""

    host: str
    port: int
    connect_timeout: float = 5.0
    bind_to: str | None = None
    bind_port: int | None = None
    bind_if: str | None = None
    fwmark: int | None = None

    @property
    def timeout(self) -> float:
        return self.connect_timeout

    async def check(self) -> CheckOutcome:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                family, addr = await self._target(loop)
                sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
                try:
                    sock.setblocking(False)
                    self._prepare(sock, family)
                    await loop.sock_connect(sock, addr)
                finally:
                    sock.close()
        except TimeoutError:
            return CheckOutcome(False, _TIMEDOUT, reason="timeout")
        except OSError as exc:
            return CheckOutcome(False, _FAILED, reason=_reason(exc))
        return CheckOutcome(True, _SUCCESS)

    async def _target(self, loop: asyncio.AbstractEventLoop) -> tuple[int, tuple[str, int]]:
        try:
            ip = ipaddress.ip_address(self.host.split("%", 1)[0])
        except ValueError:
            infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
            if not infos:
                raise OSError(errno.EHOSTUNREACH, f"cannot resolve {self.host}") from None
            family, _, _, _, sockaddr = infos[0]
            return family, (str(sockaddr[0]), int(sockaddr[1]))
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        return family, (self.host, self.port)

    def _prepare(self, sock: socket.socket, family: int) -> None:
        if self.bind_if:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.bind_if.encode() + b"\0")
        if self.fwmark is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, self.fwmark)
        if self.bind_to is not None or self.bind_port is not None:
            if self.bind_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            wildcard = "::" if family == socket.AF_INET6 else "0.0.0.0"
            sock.bind((self.bind_to or wildcard, self.bind_port or 0))
