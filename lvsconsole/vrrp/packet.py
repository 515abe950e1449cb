"""VRRP advertisements on the wire: VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798), IPv4 and IPv6 (sans-IO).

Wire formats (the first 8 bytes are common to both versions)::

    v2:  ver|type vrid priority count | auth_type adver_int(s) checksum | addresses | auth data (8, IPv4 only)
    v3:  ver|type vrid priority count | rsvd(4 bits) max_adver_int(12 bits, cs) checksum | addresses

Checksums, as keepalived computes them:

- v2 over IPv4: the Internet checksum of the VRRP message alone (authentication data included);
- v3 over IPv4: the same, preceded by the IPv4 pseudo-header (src, dst, 0, 112, VRRP length);
  ``v3_checksum_as_v2`` drops the pseudo-header (keepalived's option for some Cisco/Juniper peers);
- IPv6, both versions: the IPv6 pseudo-header (src, dst, length, 112). keepalived's VRRPv2 over IPv6 carries
  no authentication data, and neither does this codec.

``decode`` validates in keepalived's order and raises :class:`PacketError` whose ``counter`` names the
:class:`Counters` field to bump (``ip_ttl_err``, ``packet_len_err`` ...). ``advert_rcvd`` and
``addr_list_err`` are counted by the state machine, which knows the instance's configuration. No other
exception escapes ``decode``/``decode_ipv4_datagram``, whatever the bytes.
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass, fields
from enum import IntEnum
from ipaddress import IPv4Address, IPv6Address

IPAddress = IPv4Address | IPv6Address

IPPROTO_VRRP = 112
IPPROTO_AH = 51
VRRP_TTL = 255
ADVERTISEMENT = 1
HEADER_LEN = 8
AUTH_LEN = 8
IPV4_HEADER_LEN = 20
MCAST_GROUP4 = IPv4Address("224.0.0.18")
MCAST_GROUP6 = IPv6Address("ff02::12")

V2_MAX_INTERVAL_S = 255
V3_MAX_INTERVAL_CS = 0x0FFF


class AuthType(IntEnum):
    """VRRPv2 authentication types (RFC 2338; RFC 3768 keeps only the field)."""

    NONE = 0
    PASS = 1
    AH = 2  # IPsec AH: decoded (the AH header is skipped) but not verified; the machine refuses it


@dataclass(frozen=True, slots=True)
class Auth:
    """VRRPv2 authentication of an instance. PASS uses at most 8 bytes of the password, NUL-padded."""

    type: AuthType = AuthType.NONE
    password: bytes = b""

    @classmethod
    def pass_(cls, password: str | bytes) -> Auth:
        raw = password.encode() if isinstance(password, str) else password
        return cls(AuthType.PASS, raw)

    @property
    def data(self) -> bytes:
        """The 8 bytes carried in the advert (keepalived uses only the first 8 characters)."""
        if self.type is AuthType.PASS:
            return self.password[:AUTH_LEN].ljust(AUTH_LEN, b"\0")
        return bytes(AUTH_LEN)


class PacketError(ValueError):
    """A received packet failed validation. ``counter`` is the :class:`Counters` field to increment."""

    def __init__(self, counter: str, message: str) -> None:
        super().__init__(message)
        self.counter = counter
        self.message = message

    def __repr__(self) -> str:
        return f"PacketError({self.counter!r}, {self.message!r})"


@dataclass(slots=True)
class Counters:
    """Per-instance statistics, named like keepalived's ``vrrp->stats`` (and SNMP's vers_err/chk_err)."""

    advert_rcvd: int = 0
    advert_sent: int = 0
    become_master: int = 0
    release_master: int = 0
    packet_len_err: int = 0
    ip_ttl_err: int = 0
    invalid_type_rcvd: int = 0
    vers_err: int = 0
    chk_err: int = 0
    addr_list_err: int = 0
    invalid_authtype: int = 0
    authtype_mismatch: int = 0
    auth_failure: int = 0
    pri_zero_rcvd: int = 0
    pri_zero_sent: int = 0
    # Not in keepalived: an IPv4 datagram that is neither VRRP nor AH-wrapped VRRP (keepalived's socket
    # never sees one), and a VRRPv2 advert interval mismatch (keepalived logs and drops without counting).
    proto_err: int = 0
    advert_int_err: int = 0

    def increment(self, counter: str) -> None:
        setattr(self, counter, getattr(self, counter) + 1)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


COUNTER_NAMES: frozenset[str] = frozenset(f.name for f in fields(Counters))


@dataclass(frozen=True, slots=True)
class Advert:
    """One VRRP advertisement, either decoded or to be sent.

    ``interval_cs`` is the advert interval in centiseconds for both versions (v2 carries whole seconds on
    the wire, so a v2 advert has a multiple of 100). ``auth_type``/``auth_data`` exist only in v2
    (``auth_data`` is empty over IPv6). ``checksum`` is the value received; adverts built for sending
    leave it 0 and :func:`encode` computes it.
    """

    version: int
    vrid: int
    priority: int
    addresses: tuple[IPAddress, ...]
    interval_cs: int
    auth_type: int = AuthType.NONE
    auth_data: bytes = b""
    checksum: int = 0

    @property
    def interval(self) -> float:
        """Advert interval in seconds."""
        return self.interval_cs / 100

    @property
    def auth_supported(self) -> bool:
        """False for IPsec-AH adverts, which lvsconsole decodes but cannot verify."""
        return self.auth_type != AuthType.AH


@dataclass(frozen=True, slots=True)
class Datagram:
    """A decoded IPv4 datagram: the IP fields VRRP cares about and the advert it carried."""

    src: IPv4Address
    dst: IPv4Address
    ttl: int
    advert: Advert
    ah: bool = False


# --------------------------------------------------------------------------------------------------
# Checksums


def ones_complement_sum(data: bytes, start: int = 0) -> int:
    """16-bit ones' complement sum of ``data`` (odd length padded with a zero byte), folded."""
    if len(data) % 2:
        data += b"\0"
    total: int = start + sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def internet_checksum(data: bytes, start: int = 0) -> int:
    """RFC 1071 checksum: the complement of the ones' complement sum."""
    return ~ones_complement_sum(data, start) & 0xFFFF


def pseudo_header(src: IPAddress, dst: IPAddress, length: int) -> bytes:
    """IPv4 (RFC 768 style) or IPv6 (RFC 8200 §8.1) pseudo-header for protocol 112."""
    if isinstance(src, IPv6Address):
        return src.packed + dst.packed + struct.pack("!I3xB", length, IPPROTO_VRRP)
    return src.packed + dst.packed + struct.pack("!BBH", 0, IPPROTO_VRRP, length)


def _uses_pseudo_header(version: int, ipv6: bool, v3_checksum_as_v2: bool) -> bool:
    if ipv6:
        return True
    return version == 3 and not v3_checksum_as_v2


def vrrp_checksum(
    message: bytes, src: IPAddress, dst: IPAddress, version: int, *, v3_checksum_as_v2: bool = False
) -> int:
    """Checksum of a VRRP message whose checksum field is zero."""
    ipv6 = isinstance(src, IPv6Address)
    start = 0
    if _uses_pseudo_header(version, ipv6, v3_checksum_as_v2):
        start = ones_complement_sum(pseudo_header(src, dst, len(message)))
    return internet_checksum(message, start)


# --------------------------------------------------------------------------------------------------
# Encoding


def encode(advert: Advert, src: IPAddress, dst: IPAddress, *, v3_checksum_as_v2: bool = False) -> bytes:
    """The VRRP message (no IP header) for ``advert`` sent from ``src`` to ``dst``, checksum filled in.

    Raises ValueError for an advert that cannot be put on the wire (a programming error, not a peer's).
    """
    ipv6 = isinstance(src, IPv6Address)
    if isinstance(dst, IPv6Address) != ipv6:
        raise ValueError("src and dst must be the same address family")
    for addr in advert.addresses:
        if isinstance(addr, IPv6Address) != ipv6:
            raise ValueError(f"address {addr} does not match the packet's family")
    if not 0 <= advert.vrid <= 255 or not 0 <= advert.priority <= 255:
        raise ValueError("vrid and priority must fit in a byte")
    if len(advert.addresses) > 255:
        raise ValueError("at most 255 addresses fit in an advert")
    count = len(advert.addresses)
    if advert.version == 2:
        seconds, rest = divmod(advert.interval_cs, 100)
        if rest or not 0 <= seconds <= V2_MAX_INTERVAL_S:
            raise ValueError(f"VRRPv2 advert interval must be whole seconds 0-255, not {advert.interval}")
        if not 0 <= advert.auth_type <= 255:
            raise ValueError("auth_type must fit in a byte")
        head = struct.pack("!BBBBBBH", 0x20 | ADVERTISEMENT, advert.vrid, advert.priority, count,
                           advert.auth_type, seconds, 0)
    elif advert.version == 3:
        if not 0 <= advert.interval_cs <= V3_MAX_INTERVAL_CS:
            raise ValueError(f"VRRPv3 advert interval must be 0-40.95 s, not {advert.interval}")
        head = struct.pack("!BBBBHH", 0x30 | ADVERTISEMENT, advert.vrid, advert.priority, count,
                           advert.interval_cs, 0)
    else:
        raise ValueError(f"unknown VRRP version {advert.version}")
    body = head + b"".join(a.packed for a in advert.addresses)
    if advert.version == 2 and not ipv6:
        auth = advert.auth_data[:AUTH_LEN].ljust(AUTH_LEN, b"\0")
        body += auth
    checksum = vrrp_checksum(body, src, dst, advert.version, v3_checksum_as_v2=v3_checksum_as_v2)
    return body[:6] + struct.pack("!H", checksum) + body[8:]


def encode_ipv4_datagram(
    advert: Advert,
    src: IPv4Address,
    dst: IPv4Address,
    *,
    ttl: int = VRRP_TTL,
    ident: int = 0,
    tos: int = 0xC0,
    v3_checksum_as_v2: bool = False,
) -> bytes:
    """An IPv4 datagram (header included, for an IP_HDRINCL socket) carrying ``advert``.

    TOS 0xc0 (internetwork control) and TTL 255 as keepalived sends them.
    """
    payload = encode(advert, src, dst, v3_checksum_as_v2=v3_checksum_as_v2)
    total = IPV4_HEADER_LEN + len(payload)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, tos, total, ident & 0xFFFF, 0, ttl, IPPROTO_VRRP, 0,
                         src.packed, dst.packed)
    header = header[:10] + struct.pack("!H", internet_checksum(header)) + header[12:]
    return header + payload


# --------------------------------------------------------------------------------------------------
# Decoding


def check_version(version: int, expected: int | None) -> None:
    if expected is not None and version != expected:
        raise PacketError("vers_err", f"wrong version. Received {version} and expect {expected}")


def check_auth(auth_type: int, auth_data: bytes, expected: Auth | None, *, ipv6: bool = False) -> None:
    """VRRPv2 authentication checks, in keepalived's order: valid type, same type, same password."""
    if auth_type not in (AuthType.NONE, AuthType.PASS, AuthType.AH):
        raise PacketError("invalid_authtype", f"Invalid auth type: {auth_type}")
    if expected is None:
        return
    if auth_type != expected.type:
        raise PacketError("authtype_mismatch", f"received a {auth_type} auth, expecting {expected.type:d}!")
    if expected.type is AuthType.PASS and not ipv6:
        if not hmac.compare_digest(auth_data, expected.data):
            raise PacketError("auth_failure", "received an invalid passwd!")
    elif expected.type is AuthType.AH:
        raise PacketError("auth_failure", "IPSEC-AH authentication is not supported")


def check_advert(advert: Advert, *, version: int | None = None, auth: Auth | None = None,
                 ipv6: bool = False) -> None:
    """The configuration-dependent checks of :func:`decode`, for an advert decoded without them."""
    check_version(advert.version, version)
    if advert.version == 2:
        check_auth(advert.auth_type, advert.auth_data, auth, ipv6=ipv6)


def peek_vrid(data: bytes, *, ip_header: bool = False) -> int | None:
    """The VRID of a received packet (to pick the instance) or None if too short to say.

    ``ip_header``: ``data`` starts with an IPv4 header (the IPv4 raw socket); AH is skipped.
    """
    offset = 0
    if ip_header:
        if len(data) < IPV4_HEADER_LEN:
            return None
        offset = (data[0] & 0x0F) * 4
        if data[9] == IPPROTO_AH:
            if len(data) < offset + 2:
                return None
            offset += (data[offset + 1] + 2) * 4
    if len(data) < offset + 2:
        return None
    return data[offset + 1]


def decode(
    data: bytes,
    src: IPAddress,
    dst: IPAddress,
    ttl: int | None = None,
    *,
    version: int | None = None,
    auth: Auth | None = None,
    v3_checksum_as_v2: bool = False,
) -> Advert:
    """Decode and validate the VRRP message ``data`` (no IP header) received from ``src`` to ``dst``.

    ``ttl`` is the IPv4 TTL or IPv6 hop limit; pass None to skip the check (unicast, or not known).
    ``version`` and ``auth`` are the instance's; None skips those checks. Raises :class:`PacketError`.
    """
    try:
        return _decode(bytes(data), src, dst, ttl, version, auth, v3_checksum_as_v2)
    except PacketError:
        raise
    except Exception as exc:  # a safety net: every malformed input must come out as a PacketError
        raise PacketError("packet_len_err", f"malformed VRRP packet: {exc}") from exc


def _decode(
    data: bytes,
    src: IPAddress,
    dst: IPAddress,
    ttl: int | None,
    expected_version: int | None,
    auth: Auth | None,
    v3_checksum_as_v2: bool,
) -> Advert:
    length = len(data)
    if length < HEADER_LEN:
        raise PacketError("packet_len_err", f"vrrp header too short. {length} and expect at least 8")
    version = data[0] >> 4
    if version not in (2, 3):
        raise PacketError("vers_err", f"invalid version {version}")
    ipv6 = isinstance(src, IPv6Address)
    addr_len = 16 if ipv6 else 4
    count = data[3]
    expected_len = HEADER_LEN + count * addr_len + (AUTH_LEN if version == 2 and not ipv6 else 0)
    if length != expected_len:
        raise PacketError(
            "packet_len_err",
            f"vrrp packet too {'long' if length > expected_len else 'short'}, "
            f"length {length} and expect {expected_len}",
        )
    if ttl is not None and ttl != VRRP_TTL:
        raise PacketError("ip_ttl_err", f"invalid TTL/HL. Received {ttl} and expect {VRRP_TTL}")
    check_version(version, expected_version)
    auth_type = AuthType.NONE.value
    auth_data = b""
    if version == 2:
        auth_type = data[4]
        interval_cs = data[5] * 100
        if not ipv6:
            auth_data = data[-AUTH_LEN:]
        check_auth(auth_type, auth_data, auth, ipv6=ipv6)
    else:
        interval_cs = struct.unpack_from("!H", data, 4)[0] & V3_MAX_INTERVAL_CS
    packet_type = data[0] & 0x0F
    if packet_type != ADVERTISEMENT:
        raise PacketError("invalid_type_rcvd", f"Invalid packet type. {packet_type} and expect 1")
    start = 0
    if _uses_pseudo_header(version, ipv6, v3_checksum_as_v2):
        start = ones_complement_sum(pseudo_header(src, dst, length))
    if ones_complement_sum(data, start) != 0xFFFF:
        raise PacketError("chk_err", f"Invalid VRRPv{version} checksum")
    addresses: list[IPAddress] = []
    for i in range(count):
        raw = data[HEADER_LEN + i * addr_len : HEADER_LEN + (i + 1) * addr_len]
        addresses.append(IPv6Address(raw) if ipv6 else IPv4Address(raw))
    return Advert(
        version=version,
        vrid=data[1],
        priority=data[2],
        addresses=tuple(addresses),
        interval_cs=interval_cs,
        auth_type=auth_type,
        auth_data=auth_data,
        checksum=struct.unpack_from("!H", data, 6)[0],
    )


def decode_ipv4_datagram(
    data: bytes,
    *,
    check_ttl: bool = True,
    version: int | None = None,
    auth: Auth | None = None,
    v3_checksum_as_v2: bool = False,
) -> Datagram:
    """Decode what an IPv4 raw socket delivers: the IP header (plus an AH header if any), then VRRP.

    ``check_ttl``: require TTL 255 (multicast instances; keepalived skips the check with unicast peers).
    """
    try:
        return _decode_ipv4(bytes(data), check_ttl, version, auth, v3_checksum_as_v2)
    except PacketError:
        raise
    except Exception as exc:
        raise PacketError("packet_len_err", f"malformed IPv4 datagram: {exc}") from exc


def _decode_ipv4(
    data: bytes, check_ttl: bool, version: int | None, auth: Auth | None, v3_checksum_as_v2: bool
) -> Datagram:
    length = len(data)
    if length < IPV4_HEADER_LEN:
        raise PacketError("packet_len_err", f"ip header too short. {length} and expect at least 20")
    if data[0] >> 4 != 4:
        raise PacketError("proto_err", f"not an IPv4 packet (version {data[0] >> 4})")
    ihl = (data[0] & 0x0F) * 4
    if ihl < IPV4_HEADER_LEN or length < ihl:
        raise PacketError("packet_len_err", f"bad IPv4 header length {ihl} for a {length}-byte packet")
    total = struct.unpack_from("!H", data, 2)[0]
    if total != length:
        raise PacketError(
            "packet_len_err", f"ip_tot_len mismatch against received length. {total} and received {length}"
        )
    ttl = data[8]
    proto = data[9]
    src = IPv4Address(data[12:16])
    dst = IPv4Address(data[16:20])
    payload = data[ihl:]
    ah = False
    if proto == IPPROTO_AH:
        if len(payload) < 12:
            raise PacketError("packet_len_err", "AH header too short")
        ah_len = (payload[1] + 2) * 4
        if payload[0] != IPPROTO_VRRP:
            raise PacketError("proto_err", f"AH header for protocol {payload[0]}, not VRRP")
        if len(payload) < ah_len:
            raise PacketError("packet_len_err", f"AH header length {ah_len} exceeds the packet")
        payload = payload[ah_len:]
        ah = True
    elif proto != IPPROTO_VRRP:
        raise PacketError("proto_err", f"IP protocol {proto} is not VRRP ({IPPROTO_VRRP})")
    if auth is not None and ah != (auth.type is AuthType.AH):
        raise PacketError("authtype_mismatch", "Received AH header but auth type not AH" if ah
                          else "No AH header but auth type is AH")
    advert = decode(payload, src, dst, ttl if check_ttl else None, version=version, auth=auth,
                    v3_checksum_as_v2=v3_checksum_as_v2)
    return Datagram(src=src, dst=dst, ttl=ttl, advert=advert, ah=ah)
