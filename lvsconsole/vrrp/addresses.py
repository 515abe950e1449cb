"""Virtual addresses on the host: add/remove over rtnetlink, announce with gratuitous ARP / unsolicited NA.

Addresses are added the way keepalived adds them (vrrp_ipaddress.c): the configured prefix (default /32
or /128), broadcast, label, scope and peer; IPv6 addresses always with IFA_F_NODAD (HA pairs do their
own duplicate detection) and, for a /128, preferred lifetime 0 so that the VIP is never picked as a
source address. Adding an address that is already there and removing one that is gone are not errors.

Announcements go out of one AF_PACKET socket per interface, ``count`` rounds over the addresses,
``interval`` seconds apart when vrrp_garp_interval / vrrp_gna_interval is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

from lvsconsole.config.model import VirtualAddress
from lvsconsole.vrrp.frames import gratuitous_arp, unsolicited_na
from lvsconsole.vrrp.packet import IPAddress
from lvsconsole.vrrp.rtnl import Command, RtnlChannel, Templates, request_flags

log = logging.getLogger("lvsconsole.vrrp")

RTM_NEWADDR = 20
RTM_DELADDR = 21
IFA_F_NODAD = 0x02
IFA_F_HOMEADDRESS = 0x10
IFA_F_MANAGETEMPADDR = 0x100
IFA_F_NOPREFIXROUTE = 0x200
SCOPES = {"global": 0, "universe": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
_FLAG_BITS = {"home": IFA_F_HOMEADDRESS, "mngtmpaddr": IFA_F_MANAGETEMPADDR, "noprefixroute": IFA_F_NOPREFIXROUTE}


def vip_device(vip: VirtualAddress, default: str) -> str:
    return vip.dev or default


def vip_request(vip: VirtualAddress) -> dict[str, Any]:
    """pyroute2 ``addr`` arguments (without the interface index) for one virtual address (pure)."""
    iface = vip.address
    args: dict[str, Any] = {"address": str(iface.ip), "prefixlen": iface.network.prefixlen}
    if vip.peer is not None:
        args["local"] = str(iface.ip)
        args["address"] = str(vip.peer.ip)
        args["prefixlen"] = vip.peer.network.prefixlen
    if vip.brd is not None:
        args["broadcast"] = str(vip.brd)
    if vip.label is not None:
        args["label"] = vip.label
    if vip.scope is not None:
        args["scope"] = int(vip.scope) if vip.scope.isdigit() else SCOPES[vip.scope]
    flags = 0
    for flag in vip.flags:
        flags |= _FLAG_BITS.get(flag, 0)
    if iface.version == 6:
        flags |= IFA_F_NODAD
        if iface.network.prefixlen == 128:
            args["preferred_lft"] = 0
    if "preferred_lft" in vip.flags:
        value = vip.flags[vip.flags.index("preferred_lft") + 1]
        if value == "forever":
            args.pop("preferred_lft", None)
        elif value.isdigit():
            args["preferred_lft"] = int(value)
    if flags:
        args["flags"] = flags
    return args


def describe(vip: VirtualAddress) -> str:
    """The address as keepalived logs it: bare IP for a host prefix, else IP/len."""
    iface = vip.address
    return str(iface.ip) if iface.network.prefixlen == iface.max_prefixlen else str(iface)


class AddressManager:
    """Adds and removes virtual addresses with rtnetlink requests encoded by pyroute2, over a synchronous
    request channel (vrrp/rtnl.py: why synchronous), so that becoming MASTER adds the addresses and announces
    them right after the first advert, in the same event-loop step, as keepalived does.

    ``channel``: the rtnetlink channel to send on (one of its own if None).
    """

    def __init__(self, *, dry_run: bool = False, channel: RtnlChannel | None = None) -> None:
        self.dry_run = dry_run
        self._channel = channel if channel is not None else RtnlChannel()
        self._templates: Templates[tuple[Command, VirtualAddress, str]] = Templates()

    def prepare(self, vips: Sequence[VirtualAddress] = (), default_dev: str = "") -> None:
        """Open the netlink socket and encode the requests for ``vips`` now, so that a takeover pays for
        neither."""
        if self.dry_run:
            return
        with contextlib.suppress(OSError):
            self._channel.open()
        commands: tuple[Command, ...] = ("add", "del")
        for vip in vips:
            for command in commands:
                with contextlib.suppress(OSError):
                    self._template(command, vip, vip_device(vip, default_dev))

    def _template(self, command: Command, vip: VirtualAddress, dev: str, *, fresh: bool = False) -> bytes:
        """The request, kept from before unless ``fresh`` (the interface may have a new index; OSError if gone)."""
        return self._templates.get((command, vip, dev),
                                   lambda: encode_request(command, vip, socket.if_nametoindex(dev), 0), fresh=fresh)

    def add(self, vips: Sequence[VirtualAddress], default_dev: str) -> int:
        """Add the addresses; returns how many are now present (an address already there counts)."""
        return sum(self._change("add", vip, vip_device(vip, default_dev)) for vip in vips)

    def remove(self, vips: Sequence[VirtualAddress], default_dev: str) -> int:
        """Remove the addresses; returns how many were removed (an address already gone does not count)."""
        return sum(self._change("del", vip, vip_device(vip, default_dev)) for vip in vips)

    def _change(self, command: Command, vip: VirtualAddress, dev: str) -> int:
        verb = "add" if command == "add" else "remove"
        if self.dry_run:
            log.info("(dry run) would %s %s on %s", verb, vip.address, dev)
            return 1
        try:
            template = self._template(command, vip, dev)
        except OSError:
            log.warning("cannot %s %s: no interface %s", verb, vip.address, dev)
            return 0
        try:
            code = self._channel.request(template)
            if code == errno.ENODEV:  # the interface was recreated: encode again for its new index
                code = self._channel.request(self._template(command, vip, dev, fresh=True))
        except OSError as exc:
            log.warning("cannot %s %s on %s: %s", verb, vip.address, dev, exc)
            return 0
        if code == 0:
            return 1
        if command == "add" and code == errno.EEXIST:
            return 1
        if command == "del" and code in (errno.EADDRNOTAVAIL, errno.ENOENT, errno.ENODEV):
            return 0
        log.warning("cannot %s %s on %s: %s", verb, vip.address, dev, os.strerror(code))
        return 0

    def close(self) -> None:
        self._channel.close()


def encode_request(command: Command, vip: VirtualAddress, index: int, seq: int) -> bytes:
    """An RTM_NEWADDR / RTM_DELADDR request for ``vip`` on interface ``index``, encoded by pyroute2."""
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg

    args = vip_request(vip)
    iface = vip.address
    msg = ifaddrmsg()
    msg["family"] = socket.AF_INET if iface.version == 4 else socket.AF_INET6
    msg["prefixlen"] = args["prefixlen"]
    flags = int(args.get("flags", 0))
    msg["flags"] = flags & 0xFF
    msg["scope"] = int(args.get("scope", 0))
    msg["index"] = index
    attrs: list[tuple[str, Any]] = [("IFA_LOCAL", args.get("local", args["address"])), ("IFA_ADDRESS", args["address"])]
    if command == "add":
        if "broadcast" in args:
            attrs.append(("IFA_BROADCAST", args["broadcast"]))
        if "label" in args:
            attrs.append(("IFA_LABEL", args["label"]))
        if flags:
            attrs.append(("IFA_FLAGS", flags))
        if "preferred_lft" in args:
            attrs.append(("IFA_CACHEINFO", {"ifa_preferred": args["preferred_lft"], "ifa_valid": 0xFFFFFFFF,
                                            "cstamp": 0, "tstamp": 0}))
    msg["attrs"] = attrs
    msg["header"]["type"] = RTM_NEWADDR if command == "add" else RTM_DELADDR
    msg["header"]["flags"] = request_flags(command)
    msg["header"]["sequence_number"] = seq
    msg["header"]["pid"] = 0
    msg.encode()
    data: bytes = bytes(msg.data)
    return data


# -------------------------------------------------------------------------------------------- announcements


@dataclass(frozen=True, slots=True)
class Announcement:
    """One gratuitous ARP or unsolicited NA put on the wire (for events and counters)."""

    interface: str
    address: IPAddress

    @property
    def message(self) -> str:
        if isinstance(self.address, IPv6Address):
            return f"Sending unsolicited Neighbour Advert on {self.interface} for {self.address}"
        return f"Sending gratuitous ARP on {self.interface} for {self.address}"


class _PacketSocket:
    """An AF_PACKET socket bound to one interface, with that interface's MAC address."""

    def __init__(self, interface: str) -> None:
        self.interface = interface
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            self.sock.bind((interface, 0))
            self.mac: bytes = self.sock.getsockname()[4][:6]
            self.sock.setblocking(False)
        except BaseException:
            self.sock.close()
            raise

    def send(self, frame: bytes) -> None:
        self.sock.send(frame)

    def close(self) -> None:
        self.sock.close()


def ipv6_forwarding(interface: str) -> bool:
    try:
        return Path(f"/proc/sys/net/ipv6/conf/{interface}/forwarding").read_text().strip() == "1"
    except OSError:
        return False


class GratuitousSender:
    """Sends gratuitous ARPs and unsolicited NAs for virtual addresses."""

    def __init__(self, *, dry_run: bool = False) -> None:
        self.dry_run = dry_run
        self._sockets: dict[str, _PacketSocket] = {}
        # frames built ahead of a takeover (prepare_frames), so the first announcement right after the
        # addresses are added costs one send: building one costs ~10 us, an NA's /proc read ~20 us more
        self._frames: dict[tuple[str, IPAddress], bytes] = {}

    def prepare(self, interfaces: Sequence[str]) -> None:
        """Open the packet sockets now rather than at the first takeover."""
        if self.dry_run:
            return
        for interface in interfaces:
            try:
                self._socket(interface)
            except OSError as exc:
                log.debug("no packet socket on %s yet: %s", interface, exc)

    def _socket(self, interface: str) -> _PacketSocket:
        sock = self._sockets.get(interface)
        if sock is None:
            sock = _PacketSocket(interface)
            self._sockets[interface] = sock
        return sock

    def prepare_frames(self, targets: Sequence[tuple[str, IPAddress]]) -> None:
        """Build the next announcement of each (interface, address) now. A prepared frame is used once, so a
        later announcement is built afresh (an NA's router flag follows the interface's forwarding setting)."""
        if self.dry_run:
            return
        for interface, address in targets:
            try:
                self._frames[(interface, address)] = self._frame(self._socket(interface), address)
            except OSError as exc:
                log.debug("no packet socket on %s yet: %s", interface, exc)

    @staticmethod
    def _frame(sock: _PacketSocket, address: IPAddress) -> bytes:
        if isinstance(address, IPv4Address):
            return gratuitous_arp(sock.mac, address)
        return unsolicited_na(sock.mac, address, router=ipv6_forwarding(sock.interface))

    def send_one(self, interface: str, address: IPAddress) -> bool:
        """One announcement now; False if it could not be sent."""
        if self.dry_run:
            return True
        try:
            sock = self._socket(interface)
            frame = self._frames.pop((interface, address), None) or self._frame(sock, address)
            try:
                sock.send(frame)
            except OSError as exc:
                if exc.errno not in (errno.ENXIO, errno.ENODEV):
                    raise
                # the interface was recreated (maybe with another MAC): reopen once, forget what was built for it
                self._sockets.pop(interface).close()
                self._frames = {key: frame for key, frame in self._frames.items() if key[0] != interface}
                sock = self._socket(interface)
                sock.send(self._frame(sock, address))
        except OSError as exc:
            kind = "gratuitous ARP" if isinstance(address, IPv4Address) else "unsolicited neighbour advert"
            log.info("Error sending %s on %s for %s: %s", kind, interface, address, exc.strerror or exc)
            return False
        return True

    def _log_burst(self, instance: str, targets: Sequence[tuple[str, IPAddress]]) -> None:
        for interface, address in targets:
            kind = "gratuitous ARPs" if isinstance(address, IPv4Address) else "Unsolicited Neighbour Adverts"
            log.info("(%s) Sending/queueing %s on %s for %s", instance, kind, interface, address)

    def _noted(self, interface: str, address: IPAddress, on_sent: Callable[[Announcement], None] | None) -> None:
        note = Announcement(interface, address)
        log.info("%s%s", "(dry run) not " if self.dry_run else "", note.message)
        if on_sent is not None:
            on_sent(note)

    def _one(self, interface: str, address: IPAddress, on_sent: Callable[[Announcement], None] | None) -> bool:
        if not self.send_one(interface, address):
            return False
        self._noted(interface, address, on_sent)
        return True

    def announce_now(
        self,
        instance: str,
        targets: Sequence[tuple[str, IPAddress]],
        count: int,
        on_sent: Callable[[Announcement], None] | None = None,
        *,
        log_burst: bool = True,
    ) -> int:
        """``count`` rounds over (interface, address) pairs at once; returns how many frames went out.
        ``log_burst`` False: the rest of a burst whose first round was announced (and logged) already."""
        if count <= 0 or not targets:
            return 0
        # the frames first, the log lines and events after: a takeover is measured to the first frame
        sent = [(i, a) for _ in range(count) for i, a in targets if self.send_one(i, a)]
        if log_burst:
            self._log_burst(instance, targets)
        for interface, address in sent:
            self._noted(interface, address, on_sent)
        return len(sent)

    async def announce(
        self,
        instance: str,
        targets: Sequence[tuple[str, IPAddress]],
        count: int,
        interval: float = 0.0,
        on_sent: Callable[[Announcement], None] | None = None,
    ) -> int:
        """Like :meth:`announce_now`, ``interval`` seconds between frames (vrrp_garp_interval)."""
        if count <= 0 or not targets:
            return 0
        self._log_burst(instance, targets)
        sent = 0
        for _ in range(count):
            for interface, address in targets:
                if interval > 0 and sent:
                    await asyncio.sleep(interval)
                sent += self._one(interface, address, on_sent)
        return sent

    def close(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()


async def present_addresses() -> set[tuple[str, str]]:
    """Every address configured on this host now, as (interface, address without prefix): what drift detection
    compares the VIPs our MASTER instances hold against (an ``ip addr del`` by hand)."""
    from pyroute2 import AsyncIPRoute

    async with AsyncIPRoute() as ipr:
        names: dict[int, str] = {}
        async for link in await ipr.link("dump"):
            names[link["index"]] = link.get("ifname") or ""
        present: set[tuple[str, str]] = set()
        async for msg in await ipr.addr("dump"):
            name = names.get(msg["index"], "")
            for attr in ("local", "address"):  # IPv4 point-to-point addresses differ in the two
                text = msg.get(attr)
                if text is not None:
                    present.add((name, str(text)))
    return present
