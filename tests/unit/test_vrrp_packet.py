"""VRRP v2/v3 codec: known byte vectors, every PacketError counter, and fuzzing."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lvsconsole.vrrp.packet import (
    COUNTER_NAMES,
    MCAST_GROUP4,
    MCAST_GROUP6,
    Advert,
    Auth,
    AuthType,
    Counters,
    PacketError,
    decode,
    decode_ipv4_datagram,
    encode,
    encode_ipv4_datagram,
    peek_vrid,
)

SRC4 = IPv4Address("192.168.200.1")
SRC6 = IPv6Address("fe80::1")


def independent_checksum(data: bytes) -> int:
    """A deliberately naive RFC 1071 checksum: add 16-bit words, carry around, complement."""
    acc = 0
    for i in range(0, len(data), 2):
        word = data[i] << 8 | (data[i + 1] if i + 1 < len(data) else 0)
        acc += word
        acc = (acc & 0xFFFF) + (acc >> 16)
    return ~acc & 0xFFFF


def with_zero_checksum(message: bytes) -> bytes:
    return message[:6] + b"\0\0" + message[8:]


# --------------------------------------------------------------------------------------------------
# Known vectors

V2_SIMPLE = bytes.fromhex("213364010001f210" "c0a8c810" "0000000000000000")
V2_PASS = bytes.fromhex("213396020101c8d6" "c0a8c810c0a8c811" "7365637265743132")
V3_IPV4 = bytes.fromhex("31016401006475a5" "0a000064")
V3_IPV6 = bytes.fromhex(
    "31016402000a3f88" "fe800000000000000000000000000100" "20010db8000000000000000000000001"
)
V2_IPV6 = bytes.fromhex("2107c8010003eb14" "20010db8000000000000000000000007")


def test_v2_vector_encodes_and_checksum_is_independently_right() -> None:
    advert = Advert(2, 51, 100, (ip_address("192.168.200.16"),), 100)
    wire = encode(advert, SRC4, MCAST_GROUP4)
    assert wire == V2_SIMPLE
    # hand-computed: 0x2133+0x6401+0x0001+0xc0a8+0xc810 = 0x20ded -> 0x0def -> ~ = 0xf210
    assert independent_checksum(with_zero_checksum(wire)) == 0xF210
    assert independent_checksum(wire) == 0  # a valid message sums to 0xffff


def test_v2_vector_decodes() -> None:
    advert = decode(V2_SIMPLE, SRC4, MCAST_GROUP4, 255, version=2, auth=Auth())
    assert advert == Advert(2, 51, 100, (IPv4Address("192.168.200.16"),), 100, 0, bytes(8), 0xF210)
    assert advert.interval == 1.0


def test_v2_pass_vector_uses_first_eight_characters() -> None:
    auth = Auth.pass_("secret1234")
    assert auth.data == b"secret12"
    advert = Advert(2, 51, 150, (ip_address("192.168.200.16"), ip_address("192.168.200.17")), 100,
                    AuthType.PASS, auth.data)
    assert encode(advert, SRC4, MCAST_GROUP4) == V2_PASS
    assert independent_checksum(with_zero_checksum(V2_PASS)) == 0xC8D6
    decoded = decode(V2_PASS, SRC4, MCAST_GROUP4, 255, version=2, auth=Auth.pass_("secret12"))
    assert decoded.auth_type == AuthType.PASS
    assert decoded.auth_data == b"secret12"
    short = Auth.pass_("abc")
    assert short.data == b"abc\0\0\0\0\0"


def test_v3_ipv4_vector_with_pseudo_header_independently_checked() -> None:
    src = IPv4Address("10.0.0.1")
    advert = Advert(3, 1, 100, (ip_address("10.0.0.100"),), 100)
    wire = encode(advert, src, MCAST_GROUP4)
    assert wire == V3_IPV4
    pseudo = src.packed + MCAST_GROUP4.packed + bytes([0, 112]) + struct.pack("!H", len(wire))
    assert independent_checksum(pseudo + with_zero_checksum(wire)) == 0x75A5
    # without the pseudo-header the checksum would differ: a v2-style check must fail
    assert independent_checksum(with_zero_checksum(wire)) != 0x75A5
    decoded = decode(wire, src, MCAST_GROUP4, 255, version=3)
    assert decoded.interval_cs == 100 and decoded.checksum == 0x75A5


def test_v3_ipv6_vector_with_pseudo_header_independently_checked() -> None:
    advert = Advert(3, 1, 100, (ip_address("fe80::100"), ip_address("2001:db8::1")), 10)
    wire = encode(advert, SRC6, MCAST_GROUP6)
    assert wire == V3_IPV6
    pseudo = SRC6.packed + MCAST_GROUP6.packed + struct.pack("!I", len(wire)) + bytes([0, 0, 0, 112])
    assert independent_checksum(pseudo + with_zero_checksum(wire)) == 0x3F88
    decoded = decode(wire, SRC6, MCAST_GROUP6, 255, version=3)
    assert decoded.addresses == advert.addresses
    assert decoded.interval == pytest.approx(0.1)


def test_v2_over_ipv6_has_no_auth_data_and_uses_pseudo_header() -> None:
    advert = Advert(2, 7, 200, (ip_address("2001:db8::7"),), 300)
    wire = encode(advert, SRC6, MCAST_GROUP6)
    assert wire == V2_IPV6
    assert len(wire) == 8 + 16
    decoded = decode(wire, SRC6, MCAST_GROUP6, 255, version=2, auth=Auth())
    assert decoded.auth_data == b"" and decoded.interval_cs == 300


def test_v3_checksum_as_v2_option() -> None:
    src = IPv4Address("10.0.0.1")
    advert = Advert(3, 1, 100, (ip_address("10.0.0.100"),), 100)
    wire = encode(advert, src, MCAST_GROUP4, v3_checksum_as_v2=True)
    assert independent_checksum(wire) == 0
    decode(wire, src, MCAST_GROUP4, 255, v3_checksum_as_v2=True)
    with pytest.raises(PacketError) as err:
        decode(wire, src, MCAST_GROUP4, 255)
    assert err.value.counter == "chk_err"


@pytest.mark.parametrize(
    ("version", "src", "dst", "addresses", "interval_cs"),
    [
        (2, SRC4, MCAST_GROUP4, ("10.1.1.1", "10.1.1.2", "10.1.1.3"), 500),
        (3, SRC4, IPv4Address("192.168.200.2"), ("10.1.1.1",), 4095),
        (2, SRC6, MCAST_GROUP6, (), 100),
        (3, SRC6, IPv6Address("fe80::2"), ("fe80::a", "2001:db8::a"), 1),
    ],
)
def test_round_trip(version: int, src: IPv4Address | IPv6Address, dst: IPv4Address | IPv6Address,
                    addresses: tuple[str, ...], interval_cs: int) -> None:
    advert = Advert(version, 200, 254, tuple(ip_address(a) for a in addresses), interval_cs)
    wire = encode(advert, src, dst)
    back = decode(wire, src, dst, 255, version=version)
    assert back.addresses == advert.addresses
    assert (back.version, back.vrid, back.priority, back.interval_cs) == (version, 200, 254, interval_cs)
    assert peek_vrid(wire) == 200


def test_encode_refuses_impossible_adverts() -> None:
    with pytest.raises(ValueError):
        encode(Advert(2, 1, 100, (), 150), SRC4, MCAST_GROUP4)  # v2: whole seconds only
    with pytest.raises(ValueError):
        encode(Advert(3, 1, 100, (), 4096), SRC4, MCAST_GROUP4)
    with pytest.raises(ValueError):
        encode(Advert(2, 1, 100, (ip_address("fe80::1"),), 100), SRC4, MCAST_GROUP4)
    with pytest.raises(ValueError):
        encode(Advert(4, 1, 100, (), 100), SRC4, MCAST_GROUP4)


def test_ipv4_datagram_round_trip() -> None:
    advert = Advert(2, 51, 100, (ip_address("192.168.200.16"),), 100)
    datagram = encode_ipv4_datagram(advert, SRC4, MCAST_GROUP4, ident=7)
    assert datagram[20:] == V2_SIMPLE
    assert independent_checksum(datagram[:20]) == 0  # IP header checksum
    assert datagram[1] == 0xC0 and datagram[8] == 255 and datagram[9] == 112
    got = decode_ipv4_datagram(datagram, version=2, auth=Auth())
    assert (got.src, got.dst, got.ttl, got.ah) == (SRC4, MCAST_GROUP4, 255, False)
    assert got.advert.priority == 100
    assert peek_vrid(datagram, ip_header=True) == 51


def test_ipv4_datagram_with_ah_header_is_decoded_and_marked() -> None:
    advert = Advert(2, 9, 100, (ip_address("10.0.0.9"),), 100, AuthType.AH, bytes(8))
    vrrp = encode(advert, SRC4, MCAST_GROUP4)
    ah = bytes([112, 4, 0, 0]) + SRC4.packed + struct.pack("!I", 1) + bytes(12)
    total = 20 + len(ah) + len(vrrp)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, total, 0, 0, 255, 51, 0, SRC4.packed, MCAST_GROUP4.packed)
    got = decode_ipv4_datagram(header + ah + vrrp)
    assert got.ah and got.advert.auth_type == AuthType.AH and not got.advert.auth_supported
    assert peek_vrid(header + ah + vrrp, ip_header=True) == 9
    with pytest.raises(PacketError) as err:
        decode_ipv4_datagram(header + ah + vrrp, auth=Auth())
    assert err.value.counter == "authtype_mismatch"


# --------------------------------------------------------------------------------------------------
# Every counter decode can name


def counter_of(data: bytes, src: IPv4Address | IPv6Address = SRC4, dst: IPv4Address | IPv6Address = MCAST_GROUP4,
               ttl: int | None = 255, **kwargs: object) -> str:
    with pytest.raises(PacketError) as err:
        decode(data, src, dst, ttl, **kwargs)  # type: ignore[arg-type]
    assert err.value.counter in COUNTER_NAMES
    return err.value.counter


def reencode_v2(fields: bytes, rest: bytes) -> bytes:
    """Build a v2 message from an 8-byte header (checksum ignored) and its tail, with a correct checksum."""
    body = fields[:6] + b"\0\0" + rest
    return body[:6] + struct.pack("!H", independent_checksum(body)) + body[8:]


def test_packet_len_err() -> None:
    assert counter_of(V2_SIMPLE[:7]) == "packet_len_err"
    assert counter_of(V2_SIMPLE[:-1]) == "packet_len_err"
    assert counter_of(V2_SIMPLE + b"\0") == "packet_len_err"


def test_ip_ttl_err() -> None:
    assert counter_of(V2_SIMPLE, ttl=254) == "ip_ttl_err"
    decode(V2_SIMPLE, SRC4, MCAST_GROUP4, None)  # unicast: not checked


def test_vers_err() -> None:
    assert counter_of(bytes([0x41]) + V2_SIMPLE[1:]) == "vers_err"
    assert counter_of(V2_SIMPLE, version=3) == "vers_err"


def test_invalid_type_rcvd() -> None:
    bad = reencode_v2(bytes([0x22]) + V2_SIMPLE[1:8], V2_SIMPLE[8:])
    assert counter_of(bad) == "invalid_type_rcvd"


def test_chk_err() -> None:
    corrupt = V2_SIMPLE[:6] + b"\x12\x34" + V2_SIMPLE[8:]
    assert counter_of(corrupt) == "chk_err"
    # a v3 message checked against the wrong destination fails its pseudo-header checksum
    assert counter_of(V3_IPV4, src=IPv4Address("10.0.0.1"), dst=IPv4Address("224.0.0.19")) == "chk_err"


def test_invalid_authtype() -> None:
    bad = reencode_v2(V2_SIMPLE[:4] + bytes([3]) + V2_SIMPLE[5:8], V2_SIMPLE[8:])
    assert counter_of(bad) == "invalid_authtype"


def test_authtype_mismatch_and_auth_failure() -> None:
    assert counter_of(V2_SIMPLE, auth=Auth.pass_("secret12")) == "authtype_mismatch"
    assert counter_of(V2_PASS, auth=Auth()) == "authtype_mismatch"
    assert counter_of(V2_PASS, auth=Auth.pass_("Secret12")) == "auth_failure"


def test_proto_err_and_bad_ip_headers() -> None:
    datagram = bytearray(encode_ipv4_datagram(Advert(2, 51, 100, (), 100), SRC4, MCAST_GROUP4))
    datagram[9] = 17
    with pytest.raises(PacketError) as err:
        decode_ipv4_datagram(bytes(datagram))
    assert err.value.counter == "proto_err"
    datagram[9] = 112
    datagram[2:4] = struct.pack("!H", 999)
    with pytest.raises(PacketError) as err:
        decode_ipv4_datagram(bytes(datagram))
    assert err.value.counter == "packet_len_err"
    with pytest.raises(PacketError) as err:
        decode_ipv4_datagram(b"\x45" + bytes(10))
    assert err.value.counter == "packet_len_err"


def test_ttl_checked_from_ip_header_unless_unicast() -> None:
    datagram = encode_ipv4_datagram(Advert(2, 51, 100, (), 100), SRC4, MCAST_GROUP4, ttl=64)
    with pytest.raises(PacketError) as err:
        decode_ipv4_datagram(datagram)
    assert err.value.counter == "ip_ttl_err"
    assert decode_ipv4_datagram(datagram, check_ttl=False).ttl == 64


def test_counters_know_every_name() -> None:
    counters = Counters()
    for name in ("advert_rcvd", "packet_len_err", "ip_ttl_err", "invalid_type_rcvd", "vers_err", "chk_err",
                 "addr_list_err", "invalid_authtype", "authtype_mismatch", "auth_failure", "pri_zero_rcvd",
                 "pri_zero_sent", "become_master", "release_master", "advert_sent"):
        counters.increment(name)
        assert counters.as_dict()[name] == 1


# --------------------------------------------------------------------------------------------------
# Fuzzing: nothing but PacketError, whatever the bytes

ENDPOINTS: list[tuple[IPv4Address | IPv6Address, IPv4Address | IPv6Address]] = [
    (SRC4, MCAST_GROUP4),
    (SRC6, MCAST_GROUP6),
]
VALID = [(V2_SIMPLE, 0), (V2_PASS, 0), (V3_IPV4, 0), (V3_IPV6, 1), (V2_IPV6, 1)]


def _decode_all_ways(data: bytes, endpoint: int) -> None:
    src, dst = ENDPOINTS[endpoint]
    for kwargs in ({}, {"version": 2, "auth": Auth.pass_("secret12")}, {"version": 3, "auth": Auth()}):
        try:
            decode(data, src, dst, 255, **kwargs)  # type: ignore[arg-type]
        except PacketError as exc:
            assert exc.counter in COUNTER_NAMES


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=120), endpoint=st.integers(0, 1))
def test_random_bytes_raise_only_packet_error(data: bytes, endpoint: int) -> None:
    _decode_all_ways(data, endpoint)
    try:
        decode_ipv4_datagram(data)
    except PacketError as exc:
        assert exc.counter in COUNTER_NAMES
    peek_vrid(data)
    peek_vrid(data, ip_header=True)


@settings(max_examples=400, deadline=None)
@given(
    which=st.integers(0, len(VALID) - 1),
    edits=st.lists(st.tuples(st.integers(0, 63), st.integers(0, 255)), max_size=4),
    cut=st.integers(0, 64),
    extra=st.binary(max_size=8),
)
def test_mutated_packets_raise_only_packet_error(which: int, edits: list[tuple[int, int]], cut: int,
                                                 extra: bytes) -> None:
    data, endpoint = VALID[which]
    mutated = bytearray(data)
    for pos, value in edits:
        if pos < len(mutated):
            mutated[pos] = value
    candidate = bytes(mutated[: max(0, len(mutated) - cut)]) + extra
    _decode_all_ways(candidate, endpoint)
    if endpoint == 0:
        header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(candidate), 0, 0, 255, 112, 0,
                             SRC4.packed, MCAST_GROUP4.packed)
        for blob in (header + candidate, header[:cut] + candidate):
            try:
                decode_ipv4_datagram(blob)
            except PacketError as exc:
                assert exc.counter in COUNTER_NAMES
