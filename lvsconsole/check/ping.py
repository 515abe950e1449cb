"""PING_CHECK: one ICMP (or ICMPv6) echo request; up when an echo reply comes back within connect_timeout.

Like keepalived (``check_ping.c``) this uses the kernel's unprivileged ICMP datagram sockets
("ping sockets"): the kernel picks the echo identifier and hands each socket only its own replies, so
thousands of checks can run at once without a raw socket or a shared demultiplexer. They need the
process's group in ``net.ipv4.ping_group_range`` (keepalived widens that sysctl itself; lvsconsole does
not touch sysctls). Without ping sockets, a root process falls back to a raw socket and filters replies
by identifier and sequence. An ICMP error instead of a reply (host unreachable) is a failure.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import struct
from dataclasses import dataclass

from lvsconsole.check import _net
from lvsconsole.check.policy import CheckOutcome

__all__ = ["PingChecker", "icmp_unavailable"]

ICMP_ECHO_REQUEST = 8
ICMP_ECHO_REPLY = 0
ICMP6_ECHO_REQUEST = 128
ICMP6_ECHO_REPLY = 129
PAYLOAD_SIZE = 56

_SUCCESS = "ICMP connection to {rs} success."
_TIMEOUT = "ICMP connection to address {rs} timeout."
_FAILED = "ICMP connection to {rs} of {vs} failed."

_seq = itertools.count(1)


def _payload() -> bytes:
    text = b"keepalived check - "
    return (text * (PAYLOAD_SIZE // len(text) + 1))[:PAYLOAD_SIZE]


_PAYLOAD = _payload()


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _open(family: int) -> tuple[socket.socket, bool]:
    """A ping socket, or a raw socket when ping sockets are not permitted (returns raw=True)."""
    proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    try:
        return socket.socket(family, socket.SOCK_DGRAM, proto), False
    except PermissionError:
        return socket.socket(family, socket.SOCK_RAW, proto), True


def icmp_unavailable(family: int = socket.AF_INET) -> str | None:
    """Why this process cannot send echo requests for ``family`` (None when it can)."""
    try:
        sock, _ = _open(family)
    except OSError as exc:
        name = "ICMP" if family == socket.AF_INET else "ICMPv6"
        return f"no {name} socket: {_net.os_reason(exc)} (see net.ipv4.ping_group_range)"
    sock.close()
    return None


@dataclass(slots=True)
class PingChecker:
    host: str
    connect_timeout: float = 5.0
    binding: _net.Binding = _net.NO_BINDING

    @property
    def timeout(self) -> float:
        return self.connect_timeout

    async def check(self) -> CheckOutcome:
        loop = asyncio.get_running_loop()
        try:
            family, addr = await _net.resolve(self.host, 0, socket.SOCK_DGRAM, 0)
            sock, raw = _open(family)
        except OSError as exc:
            return CheckOutcome(False, _FAILED, reason=_net.os_reason(exc))
        v6 = family == socket.AF_INET6
        try:
            sock.setblocking(False)
            b = self.binding
            if b.bind_if:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b.bind_if.encode() + b"\0")
            if b.fwmark:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, b.fwmark)
            if b.bind_to:
                sock.bind((b.bind_to, 0))
            seq = next(_seq) & 0xFFFF
            ident = os.getpid() & 0xFFFF
            packet = self._echo(v6, raw, ident, seq)
            await loop.sock_sendto(sock, packet, addr)
            async with asyncio.timeout(self.connect_timeout):
                while True:
                    data = await loop.sock_recv(sock, 2048)
                    if self._is_reply(data, v6, raw, ident, seq):
                        return CheckOutcome(True, _SUCCESS)
        except TimeoutError:
            return CheckOutcome(False, _TIMEOUT, reason="timeout")
        except OSError as exc:
            return CheckOutcome(False, _FAILED, reason=_net.os_reason(exc))
        finally:
            sock.close()

    @staticmethod
    def _echo(v6: bool, raw: bool, ident: int, seq: int) -> bytes:
        kind = ICMP6_ECHO_REQUEST if v6 else ICMP_ECHO_REQUEST
        header = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
        if raw and not v6:  # the kernel checksums ping sockets and ICMPv6; raw ICMPv4 is ours to do
            header = struct.pack("!BBHHH", kind, 0, _checksum(header + _PAYLOAD), ident, seq)
        return header + _PAYLOAD

    @staticmethod
    def _is_reply(data: bytes, v6: bool, raw: bool, ident: int, seq: int) -> bool:
        if raw and not v6 and data:
            data = data[(data[0] & 0x0F) * 4 :]  # strip the IPv4 header a raw socket delivers
        if len(data) < 8:
            return False
        kind, _, _, rid, rseq = struct.unpack_from("!BBHHH", data)
        if kind != (ICMP6_ECHO_REPLY if v6 else ICMP_ECHO_REPLY):
            return False
        # A ping socket only ever sees its own replies (the kernel rewrote the identifier).
        return not raw or (rid == ident and rseq == seq)
