"""How an operator names a virtual or real server: ``IP:port``, ``[IPv6]:port``, a bare address (any port),
and for virtual servers also ``IP:port/udp``, ``fwmark N`` and ``group NAME``.

A reference remembers the word it was written as and its column, so that "no such real server" can point
at it. Equality ignores where it was written.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import TypeAlias

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
PROTOCOLS = ("TCP", "UDP", "SCTP")

_BRACKETED = re.compile(r"^\[(?P<addr>[^\]]+)\](?::(?P<port>[^:]*))?$")
_V4 = re.compile(r"^(?P<addr>[0-9.]+)(?::(?P<port>[^:]*))?$")


def endpoint_text(address: IPAddress, port: int | None) -> str:
    """``10.0.0.1:80``, ``[2001:db8::1]:80``, or the bare address when there is no port."""
    if port is None:
        return str(address)
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


def parse_port(text: str, word: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise ValueError(f"bad port '{text}' in '{word}' (0-65535)")
    return int(text)


def parse_endpoint(word: str) -> tuple[IPAddress, int | None]:
    """``IP[:port]`` / ``[IPv6][:port]`` / a bare IPv6 address. Raises ValueError naming the problem."""
    match = _BRACKETED.match(word) or _V4.match(word)
    if match is None:
        try:
            return ipaddress.ip_address(word), None
        except ValueError:
            raise ValueError(f"'{word}' is not an address (IP:port or [IPv6]:port)") from None
    addr_text, port_text = match.group("addr"), match.group("port")
    try:
        address = ipaddress.ip_address(addr_text)
    except ValueError:
        raise ValueError(f"bad address '{addr_text}' in '{word}'") from None
    if word.startswith("[") and address.version != 6:
        raise ValueError(f"'{word}': brackets are for IPv6 addresses")
    port = None if port_text is None else parse_port(port_text, word)
    return address, port


@dataclass(frozen=True)
class RsRef:
    """A real server: address and port (None = any port of that address)."""

    address: IPAddress
    port: int | None = None
    col: int | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, word: str, col: int | None = None) -> RsRef:
        address, port = parse_endpoint(word)
        return cls(address, port, col)

    def matches(self, address: IPAddress, port: int | None) -> bool:
        return self.address == address and (self.port is None or self.port == (port or 0))

    def __str__(self) -> str:
        return endpoint_text(self.address, self.port)


@dataclass(frozen=True)
class VsRef:
    """A virtual server: ``address`` (+ ``port``, + ``protocol``) or ``fwmark`` or ``group``.

    An address reference without a protocol matches TCP, UDP and SCTP services of that address and port;
    without a port it matches every port.
    """

    address: IPAddress | None = None
    port: int | None = None
    protocol: str | None = None
    fwmark: int | None = None
    group: str | None = None
    col: int | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, word: str, col: int | None = None) -> VsRef:
        """``IP:port``, ``[IPv6]:port``, optionally followed by ``/tcp``, ``/udp`` or ``/sctp``."""
        text, _, proto = word.partition("/")
        protocol = None
        if proto:
            if proto.upper() not in PROTOCOLS:
                raise ValueError(f"unknown protocol '{proto}' in '{word}' (tcp, udp or sctp)")
            protocol = proto.upper()
        address, port = parse_endpoint(text)
        return cls(address, port, protocol, col=col)

    @classmethod
    def of_fwmark(cls, mark: int, col: int | None = None) -> VsRef:
        return cls(fwmark=mark, col=col)

    @classmethod
    def of_group(cls, name: str, col: int | None = None) -> VsRef:
        return cls(group=name, col=col)

    def matches(self, *, address: IPAddress | None, port: int | None, protocol: str,
                fwmark: int | None, group: str | None) -> bool:
        if self.group is not None:
            return group == self.group
        if self.fwmark is not None:
            return fwmark == self.fwmark and group is None
        if group is not None or fwmark is not None or address != self.address:
            return False
        if self.port is not None and (port or 0) != self.port:
            return False
        return self.protocol is None or protocol.upper() == self.protocol

    def __str__(self) -> str:
        if self.group is not None:
            return f"group {self.group}"
        if self.fwmark is not None:
            return f"fwmark {self.fwmark}"
        assert self.address is not None
        text = endpoint_text(self.address, self.port)
        return f"{text}/{self.protocol.lower()}" if self.protocol else text


def vs_label(*, address: IPAddress | None, port: int | None, protocol: str, fwmark: int | None,
             group: str | None) -> str:
    """How commands print a virtual server: what an operator would type to name it again."""
    if group is not None:
        return f"group {group}"
    if fwmark is not None:
        return f"fwmark {fwmark}"
    assert address is not None
    text = endpoint_text(address, port if port is not None else 0)
    return text if protocol.upper() == "TCP" else f"{text}/{protocol.lower()}"


def parse_vip(word: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """A virtual address as in virtual_ipaddress: ``IP`` or ``IP/len``."""
    try:
        return ipaddress.ip_interface(word)
    except ValueError:
        raise ValueError(f"'{word}' is not an address (IP or IP/prefix)") from None
