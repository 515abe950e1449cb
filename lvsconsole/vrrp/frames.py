"""Ethernet frames announcing a virtual address: gratuitous ARP and unsolicited neighbour advert (sans-IO).

Both are built the way keepalived builds them (vrrp_arp.c, vrrp_ndisc.c):

- gratuitous ARP: broadcast ARP *request* from the interface's MAC, sender and target IP both the VIP,
  target hardware address ff:ff:ff:ff:ff:ff;
- unsolicited NA: to ff02::1 (33:33:00:00:00:01) from the VIP itself, hop limit 255, ICMPv6 type 136
  with the Override flag (and Router if the interface forwards IPv6), the VIP as target and a target
  link-layer address option carrying the MAC.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address

from lvsconsole.vrrp.packet import internet_checksum, ones_complement_sum

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
IPPROTO_ICMPV6 = 58
BROADCAST_MAC = b"\xff" * 6
ALL_NODES = IPv6Address("ff02::1")
ALL_NODES_MAC = b"\x33\x33\x00\x00\x00\x01"
NA_TYPE = 136
NA_ROUTER = 0x80
NA_SOLICITED = 0x40
NA_OVERRIDE = 0x20
ND_OPT_TARGET_LL_ADDR = 2
MIN_FRAME = 60  # Ethernet minimum without FCS


def mac_bytes(mac: str | bytes) -> bytes:
    """``"aa:bb:cc:dd:ee:ff"`` (or 6 raw bytes) as 6 bytes."""
    if isinstance(mac, bytes):
        if len(mac) != 6:
            raise ValueError("a MAC address has 6 bytes")
        return mac
    raw = bytes(int(part, 16) for part in mac.split(":"))
    if len(raw) != 6:
        raise ValueError(f"bad MAC address {mac!r}")
    return raw


def gratuitous_arp(mac: bytes, address: IPv4Address) -> bytes:
    """A gratuitous ARP request for ``address`` from ``mac``, padded to the Ethernet minimum."""
    eth = BROADCAST_MAC + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, ETH_P_IP, 6, 4, 1) + mac + address.packed + BROADCAST_MAC + address.packed
    return (eth + arp).ljust(MIN_FRAME, b"\0")


def unsolicited_na(mac: bytes, address: IPv6Address, *, router: bool = False) -> bytes:
    """An unsolicited neighbour advertisement for ``address`` from ``mac`` to all nodes."""
    flags = NA_OVERRIDE | (NA_ROUTER if router else 0)
    option = struct.pack("!BB", ND_OPT_TARGET_LL_ADDR, 1) + mac
    icmp = struct.pack("!BBHB3x", NA_TYPE, 0, 0, flags) + address.packed + option
    pseudo = address.packed + ALL_NODES.packed + struct.pack("!I3xB", len(icmp), IPPROTO_ICMPV6)
    checksum = internet_checksum(icmp, ones_complement_sum(pseudo))
    icmp = icmp[:2] + struct.pack("!H", checksum) + icmp[4:]
    ip6 = struct.pack("!IHBB", 6 << 28, len(icmp), IPPROTO_ICMPV6, 255) + address.packed + ALL_NODES.packed
    eth = ALL_NODES_MAC + mac + struct.pack("!H", ETH_P_IPV6)
    return eth + ip6 + icmp
