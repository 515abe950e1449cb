"""Socket plumbing shared by the network checkers (keepalived's layer4.c, in asyncio terms).

A checker's target is ``connect_ip``:``connect_port`` (by default the real server's address and port);
``bindto`` / ``bind_port`` choose the source address and port, ``bind_if`` pins the socket to an interface
(SO_BINDTODEVICE) and ``fwmark`` marks its packets (SO_MARK). Sockets are non-blocking and close-on-exec,
so a MISC_CHECK script never inherits one.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
import os
import socket
from dataclasses import dataclass

__all__ = ["Binding", "family_of", "format_pair", "make_socket", "open_tcp", "os_reason", "resolve"]


@dataclass(frozen=True, slots=True)
class Binding:
    """Where a checker's packets come from: keepalived's ``bindto``, ``bind_port``, ``bind_if``, ``fwmark``."""

    bind_to: str | None = None
    bind_port: int | None = None
    bind_if: str | None = None
    fwmark: int | None = None


NO_BINDING = Binding()


def os_reason(exc: BaseException) -> str:
    """A short, lower-case cause for the UI: "connection refused", "no route to host" …"""
    if isinstance(exc, OSError) and exc.errno is not None and exc.errno in errno.errorcode:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


@functools.lru_cache(maxsize=65536)  # every checker asks at build time: 37k parses per reload at scale
def family_of(host: str) -> int | None:
    """AF_INET / AF_INET6 for an IP literal (an IPv6 zone ``%eth0`` is allowed), None for a name."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    return socket.AF_INET6 if ip.version == 6 else socket.AF_INET


def format_pair(host: str, port: int) -> str:
    """keepalived's ``inet_sockaddrtopair``: ``[192.168.2.187]:25``."""
    return f"[{host}]:{port}"


async def resolve(host: str, port: int, socktype: int, proto: int) -> tuple[int, tuple[str, int]]:
    """Family and socket address for ``host``; a name is resolved (without blocking the loop)."""
    family = family_of(host)
    if family is not None:
        return family, (host, port)
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socktype, proto=proto)
    if not infos:
        raise OSError(errno.EHOSTUNREACH, f"cannot resolve {host}")
    fam, _, _, _, sockaddr = infos[0]
    return fam, (str(sockaddr[0]), int(sockaddr[1]))


def make_socket(family: int, socktype: int, proto: int, binding: Binding = NO_BINDING) -> socket.socket:
    """A non-blocking socket with the checker's binding applied (bound when a source is configured)."""
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setblocking(False)
        if binding.bind_if:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, binding.bind_if.encode() + b"\0")
        if binding.fwmark:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, binding.fwmark)
        if binding.bind_to is not None or binding.bind_port:
            if binding.bind_port and socktype == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            wildcard = "::" if family == socket.AF_INET6 else "0.0.0.0"
            sock.bind((binding.bind_to or wildcard, binding.bind_port or 0))
    except BaseException:
        sock.close()
        raise
    return sock


async def open_tcp(host: str, port: int, binding: Binding = NO_BINDING) -> socket.socket:
    """A TCP connection to ``host``:``port`` (the caller bounds the time and owns the socket)."""
    loop = asyncio.get_running_loop()
    family, addr = await resolve(host, port, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock = make_socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, binding)
    try:
        await loop.sock_connect(sock, addr)
    except BaseException:
        sock.close()
        raise
    return sock
