"""The kernel backend's netlink codec, without a kernel: what it sends decodes back to the same entries."""

from __future__ import annotations

import errno
import ipaddress
import struct

import pytest

from lvsconsole.ipvs import kernel as k
from lvsconsole.ipvs.reconcile import AddDest, AddService, DeleteDest, DeleteService, EditDest, EditService, Flush
from lvsconsole.ipvs.table import Dest, Fwd, Service, ServiceKey, SvcFlags, TunFlags, TunType

SERVICES = [
    Service(ServiceKey.inet("tcp", "10.0.0.1", 80), "wlc"),
    Service(ServiceKey.inet("udp", "10.0.0.1", 53), "sh", SvcFlags.SH_PORT | SvcFlags.SH_FALLBACK),
    Service(ServiceKey.inet("sctp", "2001:db8::1", 443), "rr", SvcFlags.PERSISTENT, 300, 64),
    Service(ServiceKey.inet("tcp", "10.0.0.2", 443), "lc", SvcFlags.PERSISTENT | SvcFlags.ONEPACKET, 50, 24, "sip"),
    Service(ServiceKey.fwm(7), "mh", SvcFlags.MH_PORT),
    Service(ServiceKey.fwm(8, k.Family.INET6), "wrr", SvcFlags.PERSISTENT, 60),
]
DESTS = [
    Dest.of("10.1.1.1", 8080, fwd=Fwd.MASQ, weight=3, u_threshold=100, l_threshold=10),
    Dest.of("10.1.1.2", 80, fwd=Fwd.ROUTE, weight=0),
    Dest.of("10.1.1.3", 80, fwd=Fwd.TUNNEL),
    Dest.of("10.1.1.4", 80, fwd=Fwd.TUNNEL, tun_type=TunType.GUE, tun_port=6080, tun_flags=TunFlags.REMCSUM),
    Dest.of("10.1.1.5", 80, fwd=Fwd.TUNNEL, tun_type=TunType.GRE, tun_flags=TunFlags.CSUM),
    Dest.of("2001:db8::10", 443, fwd=Fwd.ROUTE, weight=65535),
]


def nested(payload: bytes) -> dict[int, tuple[int, int]]:
    """Attributes of the first nested attribute of ``payload``."""
    outer = k.parse_attrs(payload, 0, len(payload))
    start, end = next(iter(outer.values()))
    return k.parse_attrs(payload, start, end)


@pytest.mark.parametrize("service", SERVICES, ids=str)
def test_service_roundtrip(service: Service) -> None:
    payload = k.nla(k.CMD_ATTR_SERVICE, k.service_attrs(service))
    assert k.decode_service(payload, nested(payload)) == service


@pytest.mark.parametrize("dest", DESTS, ids=str)
def test_dest_roundtrip(dest: Dest) -> None:
    payload = k.nla(k.CMD_ATTR_DEST, k.dest_attrs(dest))
    assert k.decode_dest(payload, nested(payload), int(dest.family)) == dest


def test_wire_details_match_ipvsadm() -> None:
    svc = SERVICES[3]
    a = nested(payload := k.nla(1, k.service_attrs(svc)))
    # address as a 16-byte nf_inet_addr, port big-endian, netmask in network order, flags with a full mask
    s, e = a[k.SVC_ATTR_ADDR]
    assert payload[s:e] == ipaddress.IPv4Address("10.0.0.2").packed + bytes(12)
    assert payload[a[k.SVC_ATTR_PORT][0] : a[k.SVC_ATTR_PORT][0] + 2] == b"\x01\xbb"
    assert payload[a[k.SVC_ATTR_NETMASK][0] : a[k.SVC_ATTR_NETMASK][1]] == b"\xff\xff\xff\x00"
    assert struct.unpack_from("=II", payload, a[k.SVC_ATTR_FLAGS][0]) == (0x5, 0xFFFFFFFF)
    assert k.SVC_ATTR_PE_NAME in a
    # IPv6 netmask: a host-order prefix length
    a6 = nested(p6 := k.nla(1, k.service_attrs(SERVICES[2])))
    assert struct.unpack_from("=I", p6, a6[k.SVC_ATTR_NETMASK][0]) == (64,)
    # tunnel attributes only for tunnel forwarding; the GUE port big-endian
    assert k.DEST_ATTR_TUN_TYPE not in nested(k.nla(2, k.dest_attrs(DESTS[0])))
    d = nested(pd := k.nla(2, k.dest_attrs(DESTS[3])))
    assert pd[d[k.DEST_ATTR_TUN_PORT][0] : d[k.DEST_ATTR_TUN_PORT][0] + 2] == (6080).to_bytes(2, "big")


def test_op_encoding_commands() -> None:
    enc = k.OpEncoder()
    key = SERVICES[0].key
    cmds = [
        enc.encode(op)[0]
        for op in (
            AddService(SERVICES[0]),
            EditService(SERVICES[0]),
            DeleteService(key),
            AddDest(key, DESTS[0]),
            EditDest(key, DESTS[0]),
            DeleteDest(key, DESTS[0].key),
            Flush(),
        )
    ]
    assert cmds == [
        k.CMD_NEW_SERVICE,
        k.CMD_SET_SERVICE,
        k.CMD_DEL_SERVICE,
        k.CMD_NEW_DEST,
        k.CMD_SET_DEST,
        k.CMD_DEL_DEST,
        k.CMD_FLUSH,
    ]
    # a dest command names the service by its key only
    _, attrs = enc.encode(EditDest(key, DESTS[0]))
    outer = k.parse_attrs(attrs, 0, len(attrs))
    svc = k.parse_attrs(attrs, *outer[k.CMD_ATTR_SERVICE])
    assert set(svc) == {k.SVC_ATTR_AF, k.SVC_ATTR_PROTOCOL, k.SVC_ATTR_ADDR, k.SVC_ATTR_PORT}


def test_messages_and_stats() -> None:
    stats = b"".join(k.nla(t, struct.pack("=Q", t * 1000)) for t in range(1, 11)) + k.nla(11, b"")
    body = k.nla(k.CMD_ATTR_DEST, k.dest_attrs(DESTS[0]) + k.nla(k.DEST_ATTR_STATS64, stats))
    msg = k.genl_message(0x20, k.CMD_NEW_DEST, body, 2, 42)
    done = struct.pack("=IHHIIi", 20, k.NLMSG_DONE, 2, 42, 0, 0)
    parsed = list(k.messages(msg + done))
    assert [(t, seq) for t, seq, _, _ in parsed] == [(0x20, 42), (k.NLMSG_DONE, 42)]
    _, _, start, end = parsed[0]
    a = k.parse_attrs(msg, start + 4, end)
    dest_attrs = k.parse_attrs(msg, *a[k.CMD_ATTR_DEST])
    assert k.decode_stats64(msg, dest_attrs[k.DEST_ATTR_STATS64]) == [t * 1000 for t in range(1, 11)]


def test_error_text() -> None:
    key = SERVICES[0].key
    assert k.error_text(errno.EEXIST, AddService(SERVICES[0])).startswith("Service already exists (add service TCP")
    assert k.error_text(errno.ENOENT, EditDest(key, DESTS[0])).startswith("No such destination")
    assert k.error_text(errno.EPERM) == "Permission denied (you must be root)"
    assert k.error_text(errno.ENOSPC) == "No space left on device"


def test_stats64_with_and_without_padding() -> None:
    plain = b"".join(k.nla(t, struct.pack("=Q", 2**40 + t)) for t in range(1, 11))
    padded = b"".join(k.nla(11, b"") + k.nla(t, struct.pack("=Q", 2**40 + t)) for t in range(1, 11))
    expected = [2**40 + t for t in range(1, 11)]
    assert len(plain) == 120
    assert k.decode_stats64(plain, (0, len(plain))) == expected
    assert k.decode_stats64(padded, (0, len(padded))) == expected
    reordered = plain[12:] + plain[:12]  # same size, other order: the generic path
    assert k.decode_stats64(reordered, (0, len(reordered))) == expected
