"""Raw IP sockets for VRRP (IP protocol 112) on asyncio, one per (interface, address family).

Several instances share a socket and are told apart by VRID (keepalived does the same: a duplicate VRID
on one interface and family is a configuration error). The socket is bound to its interface with
SO_BINDTODEVICE, joins the multicast group (224.0.0.18 / ff02::12 by default) on that interface when a
multicast instance uses it, does not loop its own multicast back, and:

- IPv4: sends whole datagrams (IP_HDRINCL) built by :func:`encode_ipv4_datagram`, TTL 255 and TOS 0xc0
  as keepalived does (the kernel fills in the IP id and header checksum), to the group or to each
  unicast peer; receives datagrams with their IP header, so the TTL check happens in the decoder;
- IPv6: lets the kernel build the header with hop limit 255, sets the source address per packet
  (IPV6_PKTINFO, needed for the checksum's pseudo-header) and receives the hop limit and destination
  (IPV6_RECVHOPLIMIT, IPV6_RECVPKTINFO) so that they can be checked.

Each packet carries the kernel's reception time (SO_TIMESTAMPNS) converted to the event loop's clock,
so that timers derived from it (the Master_Down timer) do not include the time the loop took to look.

The pool hands out sockets by reference count; the last release closes one.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

from lvsconsole.vrrp.packet import (
    IPPROTO_AH,
    IPPROTO_VRRP,
    VRRP_TTL,
    Advert,
    IPAddress,
    encode,
    encode_ipv4_datagram,
    peek_vrid,
)

log = logging.getLogger("lvsconsole.vrrp")

# Linux values the socket module may lack
IP_MULTICAST_ALL = getattr(socket, "IP_MULTICAST_ALL", 49)
IPV6_MULTICAST_ALL = 29
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
RECV_BUFSIZE = 65535
ENCODED_CACHE = 64
HEARD_LIMIT = 1024
"""Senders remembered per socket; beyond it the record starts afresh (spoofed sources cannot grow it)."""
_ANC_BUFSIZE = socket.CMSG_SPACE(4) + socket.CMSG_SPACE(20) + socket.CMSG_SPACE(16) + 64


@dataclass(frozen=True, slots=True)
class Received:
    """One packet as delivered to an instance.

    ``data``: for IPv4 the whole datagram (IP header first), for IPv6 the VRRP message alone.
    ``dst``: the destination address (IPv4: from the header; IPv6: from IPV6_PKTINFO, None if absent).
    ``hop_limit``: the IPv6 hop limit (None for IPv4, whose TTL is in ``data``).
    ``at``: the event loop time of reception.
    """

    data: bytes
    src: IPAddress
    dst: IPAddress | None
    hop_limit: int | None
    at: float

    @property
    def multicast(self) -> bool:
        return self.dst is not None and self.dst.is_multicast


Handler = Callable[[Received], None]
Observer = Callable[[str, Received], None]
"""Sees every packet a socket receives, with its interface, before (and whether or not) an instance gets it."""


@dataclass(frozen=True, slots=True)
class Heard:
    """The last packet of a VRID from one source: loop time and the priority it carried (not yet validated)."""

    at: float
    priority: int | None


def _peek_priority(data: bytes, *, ip_header: bool) -> int | None:
    offset = 0
    if ip_header:
        offset = (data[0] & 0x0F) * 4 if data else 0
        if len(data) > 9 and data[9] == IPPROTO_AH and len(data) > offset + 1:
            offset += (data[offset + 1] + 2) * 4
    return data[offset + 2] if len(data) > offset + 2 else None


def _ip_mreqn(group: IPv4Address, ifindex: int) -> bytes:
    return struct.pack("=4s4si", group.packed, bytes(4), ifindex)


class VrrpSocket:
    """The raw socket of one (interface, family). Use :class:`TransportPool` to get one."""

    def __init__(self, interface: str, family: int, loop: asyncio.AbstractEventLoop,
                 observer: Observer | None = None) -> None:
        if family not in (4, 6):
            raise ValueError(f"family {family} is not 4 or 6")
        self.interface = interface
        self.family = family
        self._loop = loop
        self.observer = observer
        self._handlers: dict[int, Handler] = {}
        self._groups: set[IPAddress] = set()
        self._encoded: dict[tuple[Advert, IPAddress, IPAddress, bool], bytes] = {}
        self._sock: socket.socket | None = None
        self.ifindex = 0
        self.rx_unknown_vrid = 0
        self.tx_errors = 0
        self._heard: dict[tuple[int, IPAddress], Heard] = {}
        self._send_errors: dict[IPAddress, str] = {}

    # -- life cycle -------------------------------------------------------------------------------

    def open(self) -> None:
        """Create and configure the socket and start reading. Needs CAP_NET_RAW."""
        self.ifindex = socket.if_nametoindex(self.interface)
        af = socket.AF_INET if self.family == 4 else socket.AF_INET6
        sock = socket.socket(af, socket.SOCK_RAW, IPPROTO_VRRP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.interface.encode())
            _try_setsockopt(sock, socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            if self.family == 4:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, VRRP_TTL)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                _ip_mreqn(IPv4Address(0), self.ifindex))
                _try_setsockopt(sock, socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
            else:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, VRRP_TTL)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, VRRP_TTL)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self.ifindex)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
                _try_setsockopt(sock, socket.IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._loop.add_reader(sock.fileno(), self._on_readable)

    def close(self) -> None:
        if self._sock is None:
            return
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    def join(self, group: IPAddress) -> None:
        """Join a multicast group on the interface (once)."""
        if group in self._groups or self._sock is None:
            return
        if isinstance(group, IPv4Address):
            self._sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, _ip_mreqn(group, self.ifindex))
        else:
            mreq = group.packed + struct.pack("=I", self.ifindex)
            self._sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
        self._groups.add(group)

    # -- instances --------------------------------------------------------------------------------

    def register(self, vrid: int, handler: Handler) -> None:
        if vrid in self._handlers:
            raise ValueError(f"VRID {vrid} is already in use on {self.interface} (IPv{self.family})")
        self._handlers[vrid] = handler

    def unregister(self, vrid: int) -> None:
        self._handlers.pop(vrid, None)

    @property
    def vrids(self) -> frozenset[int]:
        return frozenset(self._handlers)

    # -- sending ----------------------------------------------------------------------------------

    def encoded(self, advert: Advert, src: IPAddress, dst: IPAddress, *, v3_checksum_as_v2: bool = False) -> bytes:
        """The bytes sent for ``advert`` (cached: an instance sends the same few adverts all its life).

        IPv4 datagrams leave the IP id and header checksum to the kernel (IP_HDRINCL fills both in
        when the id is zero), so one encoding serves every send.
        """
        key = (advert, src, dst, v3_checksum_as_v2)
        data = self._encoded.get(key)
        if data is None:
            if len(self._encoded) >= ENCODED_CACHE:
                self._encoded.clear()
            if isinstance(src, IPv4Address) and isinstance(dst, IPv4Address):
                data = encode_ipv4_datagram(advert, src, dst, ident=0, v3_checksum_as_v2=v3_checksum_as_v2)
            else:
                data = encode(advert, src, dst, v3_checksum_as_v2=v3_checksum_as_v2)
            self._encoded[key] = data
        return data

    def send(self, advert: Advert, src: IPAddress, dst: IPAddress, *, v3_checksum_as_v2: bool = False) -> bool:
        """Send one advert; False (and logged) if the kernel refused it (interface down, no route ...)."""
        if self._sock is None:
            return False
        try:
            data = self.encoded(advert, src, dst, v3_checksum_as_v2=v3_checksum_as_v2)
            if isinstance(dst, IPv4Address):
                self._sock.sendto(data, (str(dst), 0))
            else:
                pktinfo = src.packed + struct.pack("=I", self.ifindex)
                scope = self.ifindex if dst.is_link_local or dst.is_multicast else 0
                self._sock.sendmsg([data], [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)], 0,
                                   (str(dst), 0, 0, scope))
        except OSError as exc:
            self.tx_errors += 1
            # kept per destination so that an unreachable unicast peer shows (EHOSTUNREACH, ENETUNREACH ...)
            code = errno.errorcode.get(exc.errno or 0, "")
            self._send_errors[dst] = f"{exc.strerror or exc} ({code})" if code else str(exc.strerror or exc)
            level = logging.DEBUG if exc.errno in (errno.ENETDOWN, errno.ENETUNREACH, errno.EAGAIN) else \
                logging.WARNING
            log.log(level, "VRRP send on %s to %s failed: %s", self.interface, dst, exc.strerror or exc)
            return False
        if self._send_errors:
            self._send_errors.pop(dst, None)
        return True

    def send_error(self, dst: IPAddress) -> str | None:
        """Why the last send to ``dst`` failed; None if it succeeded (or nothing was sent yet)."""
        return self._send_errors.get(dst)

    def heard(self, vrid: int) -> dict[IPAddress, Heard]:
        """Every source heard on ``vrid`` recently, with its last packet."""
        return {src: h for (v, src), h in self._heard.items() if v == vrid}

    # -- receiving --------------------------------------------------------------------------------

    def _on_readable(self) -> None:
        sock = self._sock
        while sock is not None:
            try:
                data, ancdata, _flags, addr = sock.recvmsg(RECV_BUFSIZE, _ANC_BUFSIZE)
                at = self._arrival(ancdata)
                received = self._ipv4(data, at) if self.family == 4 else self._ipv6(data, ancdata, addr, at)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("VRRP receive on %s failed: %s", self.interface, exc)
                return
            if received is not None:
                self._dispatch(received)
            sock = self._sock

    def _arrival(self, ancdata: list[tuple[int, int, bytes]]) -> float:
        """The kernel's reception time on the loop clock (now, if the kernel did not say)."""
        now = self._loop.time()
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= 16:
                sec, nsec = struct.unpack_from("=qq", payload)
                stamp: float = sec + nsec * 1e-9
                age = time.time() - stamp
                return now - min(max(age, 0.0), 1.0)  # a wall-clock step must not move timers far
        return now

    def _ipv4(self, data: bytes, at: float) -> Received | None:
        if len(data) < 20:
            return None
        return Received(data, IPv4Address(data[12:16]), IPv4Address(data[16:20]), None, at)

    def _ipv6(self, data: bytes, ancdata: list[tuple[int, int, bytes]], addr: tuple[str, ...],
              at: float) -> Received:
        hop_limit: int | None = None
        dst: IPAddress | None = None
        for level, kind, payload in ancdata:
            if level != socket.IPPROTO_IPV6:
                continue
            if kind == socket.IPV6_HOPLIMIT and len(payload) >= 4:
                hop_limit = struct.unpack("=i", payload[:4])[0]
            elif kind == socket.IPV6_PKTINFO and len(payload) >= 16:
                dst = IPv6Address(payload[:16])
        src = ip_address(str(addr[0]).split("%", 1)[0])
        return Received(data, src, dst, hop_limit, at)

    def _dispatch(self, received: Received) -> None:
        if self.observer is not None:
            try:
                self.observer(self.interface, received)
            except Exception:  # the radar's bug must not cost an instance its adverts
                log.exception("VRRP packet observer on %s failed", self.interface)
        vrid = peek_vrid(received.data, ip_header=self.family == 4)
        handler = self._handlers.get(vrid) if vrid is not None else None
        if handler is None or vrid is None:
            self.rx_unknown_vrid += 1
            return
        if len(self._heard) >= HEARD_LIMIT:
            self._heard.clear()
        self._heard[(vrid, received.src)] = Heard(received.at,
                                                  _peek_priority(received.data, ip_header=self.family == 4))
        try:
            handler(received)
        except Exception:  # one instance's bug must not stop the socket
            log.exception("VRRP handler for VRID %s on %s failed", vrid, self.interface)


def _try_setsockopt(sock: socket.socket, level: int, option: int, value: int) -> None:
    try:
        sock.setsockopt(level, option, value)
    except OSError as exc:
        log.debug("setsockopt(%d, %d) not supported: %s", level, option, exc)


class TransportPool:
    """Shared :class:`VrrpSocket` objects keyed by (interface, family), reference-counted."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None, *, observer: Observer | None = None) -> None:
        self._loop = loop
        self._observer = observer
        self._sockets: dict[tuple[str, int], VrrpSocket] = {}
        self._users: dict[tuple[str, int], int] = {}

    def acquire(self, interface: str, family: int) -> VrrpSocket:
        key = (interface, family)
        sock = self._sockets.get(key)
        if sock is None:
            loop = self._loop or asyncio.get_running_loop()
            sock = VrrpSocket(interface, family, loop, self._observer)
            sock.open()
            self._sockets[key] = sock
            self._users[key] = 0
        self._users[key] += 1
        return sock

    def release(self, interface: str, family: int) -> None:
        key = (interface, family)
        if key not in self._users:
            return
        self._users[key] -= 1
        if self._users[key] <= 0:
            self._sockets.pop(key).close()
            del self._users[key]

    def close(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()
        self._users.clear()

    def sockets(self) -> list[VrrpSocket]:
        return list(self._sockets.values())
