"""Gratuitous ARP and unsolicited NA frames, byte by byte (keepalived's vrrp_arp.c / vrrp_ndisc.c)."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address, ip_interface

import pytest

from lvsconsole.config.model import VirtualAddress
from lvsconsole.vrrp.addresses import vip_request
from lvsconsole.vrrp.frames import gratuitous_arp, mac_bytes, unsolicited_na
from lvsconsole.vrrp.packet import ones_complement_sum

MAC = mac_bytes("02:00:00:00:00:01")


def test_gratuitous_arp_layout() -> None:
    frame = gratuitous_arp(MAC, IPv4Address("192.168.2.188"))
    assert len(frame) == 60
    assert frame[:6] == b"\xff" * 6 and frame[6:12] == MAC and frame[12:14] == b"\x08\x06"
    htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
    assert (htype, ptype, hlen, plen, op) == (1, 0x0800, 6, 4, 1)
    assert frame[22:28] == MAC and frame[28:32] == IPv4Address("192.168.2.188").packed
    assert frame[32:38] == b"\xff" * 6 and frame[38:42] == frame[28:32]


@pytest.mark.parametrize("router", [False, True])
def test_unsolicited_na_layout_and_checksum(router: bool) -> None:
    vip = IPv6Address("fd00::100")
    frame = unsolicited_na(MAC, vip, router=router)
    assert frame[:6] == b"\x33\x33\x00\x00\x00\x01" and frame[6:12] == MAC and frame[12:14] == b"\x86\xdd"
    ip6 = frame[14:54]
    assert ip6[0] >> 4 == 6 and struct.unpack("!H", ip6[4:6])[0] == 32 and ip6[6] == 58 and ip6[7] == 255
    assert ip6[8:24] == vip.packed and ip6[24:40] == IPv6Address("ff02::1").packed
    icmp = frame[54:]
    assert len(icmp) == 32 and icmp[0] == 136 and icmp[1] == 0
    assert icmp[4] == (0xA0 if router else 0x20)  # Override (+ Router)
    assert icmp[8:24] == vip.packed and icmp[24:26] == b"\x02\x01" and icmp[26:32] == MAC
    pseudo = ip6[8:40] + struct.pack("!I3xB", len(icmp), 58)
    assert ones_complement_sum(icmp, ones_complement_sum(pseudo)) == 0xFFFF


def test_mac_bytes() -> None:
    assert mac_bytes("aa:bb:cc:dd:ee:ff") == bytes.fromhex("aabbccddeeff")
    with pytest.raises(ValueError):
        mac_bytes("aa:bb")


def test_vip_request_follows_keepalived() -> None:
    v4 = VirtualAddress(ip_interface("10.0.0.1/24"), brd=IPv4Address("10.0.0.255"), label="eth0:1", scope="link")
    assert vip_request(v4) == {"address": "10.0.0.1", "prefixlen": 24, "broadcast": "10.0.0.255",
                               "label": "eth0:1", "scope": 253}
    assert vip_request(VirtualAddress(ip_interface("10.0.0.1/32"))) == {"address": "10.0.0.1", "prefixlen": 32}
    v6 = vip_request(VirtualAddress(ip_interface("fd00::1/128")))
    assert v6 == {"address": "fd00::1", "prefixlen": 128, "flags": 0x02, "preferred_lft": 0}  # nodad, deprecated
    assert vip_request(VirtualAddress(ip_interface("fd00::1/64"), flags=("noprefixroute",)))["flags"] == 0x202
