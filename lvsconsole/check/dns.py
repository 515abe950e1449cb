"""DNS_CHECK: one UDP query; the server is up when a response with our ID comes back with rcode 0.

keepalived's rule (``check_dns.c``): the query asks ``type`` (default SOA) for ``name`` (default ``.``),
class IN, recursion desired, no EDNS. Datagrams that are too short, carry another ID or are not
responses (QR clear) are ignored while waiting; the first response with our ID decides: rcode NOERROR
is success whatever the answer section holds, any other rcode is "read error occurred. (rcode = N)".
Nothing within ``connect_timeout`` is "read timeout from socket", and an ICMP port unreachable (the
socket is connected, so the kernel reports it) is "failed to read socket; errno 111 (Connection
refused)". dnspython builds the query; the judging is the few header bits above.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import struct
from dataclasses import dataclass, field

import dns.message
import dns.rdatatype

from lvsconsole.check import _net
from lvsconsole.check.policy import CheckOutcome

__all__ = ["DnsChecker"]

DNS_HEADER = 12
_QR = 0x8000


def _query_wire(name: str, qtype: str) -> bytes:
    query = dns.message.make_query(name, dns.rdatatype.from_text(qtype))
    return query.to_wire()


@dataclass(slots=True)
class DnsChecker:
    host: str
    port: int = 53
    qtype: str = "SOA"
    name: str = "."
    connect_timeout: float = 5.0
    binding: _net.Binding = _net.NO_BINDING
    _wire: bytes = field(init=False, repr=False, default=b"")

    def __post_init__(self) -> None:
        self._wire = _query_wire(self.name, self.qtype)

    @property
    def timeout(self) -> float:
        return self.connect_timeout

    async def check(self) -> CheckOutcome:
        loop = asyncio.get_running_loop()
        qid = random.getrandbits(16)
        wire = struct.pack("!H", qid) + self._wire[2:]
        try:
            family, addr = await _net.resolve(self.host, self.port, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
            sock = _net.make_socket(family, socket.SOCK_DGRAM, socket.IPPROTO_UDP, self.binding)
        except OSError as exc:
            return _fail("UDP socket bind failed. Rescheduling.", _net.os_reason(exc))
        try:
            try:
                sock.connect(addr)
            except OSError as exc:
                return _fail(f"network unreachable for {_net.format_pair(*addr)}", _net.os_reason(exc))
            try:
                sent = sock.send(wire)
            except OSError as exc:
                return _fail("failed to write socket.", _net.os_reason(exc))
            if sent != len(wire):
                return _fail("failed to write all of the datagram.", "short write")
            try:
                async with asyncio.timeout(self.connect_timeout):
                    while True:
                        data = await loop.sock_recv(sock, 65535)
                        if len(data) < DNS_HEADER:
                            continue
                        rid, flags = struct.unpack_from("!HH", data)
                        if rid != qid or not flags & _QR:
                            continue
                        rcode = flags & 0x000F
                        if rcode:
                            return _fail(f"read error occurred. (rcode = {rcode})", f"rcode {rcode}")
                        return CheckOutcome(True, "DNS_CHECK ({rs}) succeed on service.")
            except TimeoutError:
                return _fail("read timeout from socket", "timeout")
            except OSError as exc:
                code = exc.errno or 0
                text = os.strerror(code) if code else str(exc)
                return _fail(f"failed to read socket; errno {code} ({text})", _net.os_reason(exc))
        finally:
            sock.close()


def _fail(message: str, reason: str) -> CheckOutcome:
    return CheckOutcome(False, f"DNS_CHECK ({{rs}}) {message}", reason=reason)
