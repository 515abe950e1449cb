"""The kernel's IPVS connection table (``/proc/net/ip_vs_conn``) as frozen records: a pure parser and a reader.

The kernel prints one line per connection (``ip_vs_conn.c``, ``ip_vs_conn_seq_show``)::

    Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
    TCP C0A83202 A1B2 0A000064 0050 0A000102 0050 ESTABLISHED     897

IPv4 addresses and all ports are upper-case hex in host order; IPv6 addresses are ``%pI6`` (eight groups of
four hex digits, uncompressed). ``/proc/net/ip_vs_conn_sync`` has the same columns with an ``Origin`` column
(LOCAL or SYNC: created here or received from the master's sync daemon) before ``Expires`` and no PE columns;
the parser reads both, telling them apart by the header.

A persistence template is an entry with client port 0 (``ip_vs_sched_persist``: ``<proto, caddr&mask, 0,
vaddr, vport, daddr, dport>``; a fwmark service's template has protocol ``IP`` and the fwmark as its virtual
address); real connections always carry the client's port.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lvsconsole.ipvs.table import DestKey, IPAddress

CONN_PROC = "/proc/net/ip_vs_conn"
CONN_SYNC_PROC = "/proc/net/ip_vs_conn_sync"


class ConnTableError(ValueError):
    """A line of the connection table could not be read; the message quotes it."""


@dataclass(frozen=True, slots=True)
class Connection:
    """One entry of the IPVS connection table."""

    protocol: str
    """TCP, UDP, SCTP, or IP (a fwmark service's persistence template)."""
    client: IPAddress
    client_port: int
    vip: IPAddress
    vport: int
    dest: IPAddress
    dport: int
    state: str
    """The protocol state as the kernel names it (ESTABLISHED, FIN_WAIT, UDP, NONE...)."""
    expires: int
    """Seconds until the entry times out."""
    origin: str | None = None
    """LOCAL or SYNC (from ``ip_vs_conn_sync``); None when read from ``ip_vs_conn``."""
    pe_name: str = ""
    pe_data: str = ""

    @property
    def template(self) -> bool:
        """A persistence template (client port 0), not a flow."""
        return self.client_port == 0

    @property
    def established_flow(self) -> bool:
        """An established TCP flow (not a template): what a failover must keep to be invisible to clients."""
        return not self.template and self.protocol == "TCP" and self.state == "ESTABLISHED"

    def flow_key(self) -> tuple[str, IPAddress, int, IPAddress, int, IPAddress, int]:
        """What identifies the same flow on two directors: protocol, client, virtual and real endpoints."""
        return (self.protocol, self.client, self.client_port, self.vip, self.vport, self.dest, self.dport)

    def dest_key(self) -> DestKey:
        return DestKey(self.dest, self.dport)

    def as_json(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "client": str(self.client), "client_port": self.client_port,
                "vip": str(self.vip), "vport": self.vport, "dest": str(self.dest), "dport": self.dport,
                "state": self.state, "expires": self.expires, "template": self.template, "origin": self.origin,
                "pe_name": self.pe_name, "pe_data": self.pe_data}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Connection:
        """The inverse of ``as_json`` (a peer's ``/connections.json``); raises ConnTableError if malformed."""
        try:
            return cls(
                protocol=str(data["protocol"]), client=ipaddress.ip_address(data["client"]),
                client_port=int(data["client_port"]), vip=ipaddress.ip_address(data["vip"]),
                vport=int(data["vport"]), dest=ipaddress.ip_address(data["dest"]), dport=int(data["dport"]),
                state=str(data["state"]), expires=int(data["expires"]),
                origin=None if data.get("origin") is None else str(data["origin"]),
                pe_name=str(data.get("pe_name", "")), pe_data=str(data.get("pe_data", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConnTableError(f"malformed connection {dict(data)!r}: {exc}") from None


def parse_address(text: str) -> IPAddress:
    """``C0A80001`` (IPv4, hex in host order) or ``fe80:0000:…`` (IPv6, ``%pI6``)."""
    if ":" in text:
        return ipaddress.IPv6Address(text)
    if len(text) != 8:
        raise ValueError(f"address {text!r} is neither 8 hex digits nor IPv6")
    return ipaddress.IPv4Address(int(text, 16))


def _port(text: str) -> int:
    value = int(text, 16)
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"port {text!r} out of range")
    return value


def parse_line(line: str, *, with_origin: bool = False) -> Connection:
    """One data line; ``with_origin`` for the ``ip_vs_conn_sync`` layout."""
    words = line.split()
    need = 10 if with_origin else 9
    if len(words) < need:
        raise ConnTableError(f"short connection line: {line!r}")
    try:
        origin = words[8] if with_origin else None
        expires = int(words[9] if with_origin else words[8])
        pe_name = "" if with_origin or len(words) < 10 else words[9]
        pe_data = "" if with_origin or len(words) < 11 else " ".join(words[10:])
        return Connection(
            protocol=words[0], client=parse_address(words[1]), client_port=_port(words[2]),
            vip=parse_address(words[3]), vport=_port(words[4]), dest=parse_address(words[5]),
            dport=_port(words[6]), state=words[7], expires=expires, origin=origin, pe_name=pe_name, pe_data=pe_data)
    except ValueError as exc:
        raise ConnTableError(f"bad connection line {line!r}: {exc}") from None


def parse_conn_table(text: str) -> list[Connection]:
    """The whole file (header line first, as the kernel writes it; a file without a header is read as
    ``ip_vs_conn``)."""
    lines = text.splitlines()
    with_origin = False
    if lines and lines[0].startswith("Pro "):
        with_origin = "Origin" in lines[0].split()
        lines = lines[1:]
    return [parse_line(line, with_origin=with_origin) for line in lines if line.strip()]


def read_conn_table(path: str = CONN_PROC) -> list[Connection]:
    """Read and parse the table; no file (ip_vs not loaded in this network namespace) is an empty table."""
    try:
        with open(path, encoding="ascii") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    return parse_conn_table(text)


async def read_conn_table_async(path: str = CONN_PROC) -> list[Connection]:
    """``read_conn_table`` off the event loop: a table of 100k entries takes a while to print.

    The reading thread inherits the process's network namespace, so ``/proc/net`` is the engine's own."""
    return await asyncio.to_thread(read_conn_table, path)


# ---------------------------------------------------------------------------------------------- searching


def _endpoint_matches(address: IPAddress, port: int, want: IPAddress | None, want_port: int | None) -> bool:
    return (want is None or address == want) and (want_port is None or port == want_port)


def search(connections: Iterable[Connection], *, client: IPAddress | None = None, client_port: int | None = None,
           dest: IPAddress | None = None, dport: int | None = None, vip: IPAddress | None = None,
           vport: int | None = None, protocol: str | None = None) -> list[Connection]:
    """The connections matching every criterion given (None = any), templates included, in table order."""
    return [c for c in connections
            if _endpoint_matches(c.client, c.client_port, client, client_port)
            and _endpoint_matches(c.dest, c.dport, dest, dport)
            and _endpoint_matches(c.vip, c.vport, vip, vport)
            and (protocol is None or c.protocol == protocol or c.protocol == "IP")]
