"""The synchronous rtnetlink request channel: acknowledgements matched by sequence number, templates kept once.

The channel tests talk to the kernel with RTM_GETLINK requests only (no privilege needed, nothing changed).
"""

from __future__ import annotations

import errno
import socket
import struct
from ipaddress import ip_interface, ip_network

from lvsconsole.config.model import VirtualAddress
from lvsconsole.vrrp.addresses import encode_request
from lvsconsole.vrrp.routes import RouteInstaller, encode_route, parse_route, parse_rule
from lvsconsole.vrrp.rtnl import (
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_EXCL,
    NLM_F_REQUEST,
    NLMSG_ERROR,
    RtnlChannel,
    Templates,
    ack_errno,
    request_flags,
)

RTM_NEWLINK, RTM_GETLINK = 16, 18
MISSING_INDEX = 0x7FFFFFF0


def get_link(index: int) -> bytes:
    """An acknowledged RTM_GETLINK for one interface, sequence number 0, as the channel's templates are."""
    body = struct.pack("=BBHiII", 0, 0, 0, index, 0, 0)  # ifinfomsg
    return struct.pack("=IHHII", 16 + len(body), RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, 0, 0) + body


def error_message(seq: int, code: int) -> bytes:
    """An NLMSG_ERROR as the kernel sends it: the negated errno, then the request's header."""
    return struct.pack("=IHHII", 36, NLMSG_ERROR, 0, seq, 0) + struct.pack("=i", -code) + bytes(16)


def test_ack_errno_finds_the_acknowledgement_of_its_request_among_others() -> None:
    other = struct.pack("=IHHII", 20, RTM_NEWLINK, 0, 7, 0) + bytes(4)
    datagram = other + error_message(6, errno.EEXIST) + error_message(7, errno.ENODEV)
    assert ack_errno(datagram, 7) == errno.ENODEV
    assert ack_errno(datagram, 6) == errno.EEXIST
    assert ack_errno(error_message(7, 0), 7) == 0
    assert ack_errno(datagram, 8) is None
    assert ack_errno(error_message(7, 0)[:18], 7) is None  # cut short: no errno to read


def test_ack_errno_stops_at_a_malformed_length() -> None:
    bad = struct.pack("=IHHII", 3, RTM_NEWLINK, 0, 9, 0)
    assert ack_errno(bad + error_message(9, 0), 9) is None


def test_adds_create_exclusively_and_deletes_do_not() -> None:
    assert request_flags("add") == NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    assert request_flags("del") == NLM_F_REQUEST | NLM_F_ACK
    vip = VirtualAddress(ip_interface("10.0.0.1/32"))
    route = parse_route(["10.20.0.0/16", "via", "10.0.0.254"])
    for command in ("add", "del"):
        assert struct.unpack_from("=H", encode_request(command, vip, 3, 0), 6)[0] == request_flags(command)
        assert struct.unpack_from("=H", encode_route(command, route, {}), 6)[0] == request_flags(command)
    assert route.dst == ip_network("10.20.0.0/16")


def test_the_channel_returns_the_kernel_s_errno() -> None:
    channel = RtnlChannel()
    try:
        assert channel.request(get_link(MISSING_INDEX)) == errno.ENODEV
        assert channel.request(get_link(1)) == 0  # lo, in every network namespace
    finally:
        channel.close()


def test_the_channel_skips_replies_to_earlier_requests() -> None:
    channel = RtnlChannel()
    try:
        # a request whose replies were never read (as after a timeout): its link dump and acknowledgement
        # (errno 0, sequence 0) wait in the socket ahead of the next request's ENODEV
        channel.open().send(get_link(1))
        assert channel.request(get_link(MISSING_INDEX)) == errno.ENODEV
        assert channel.request(get_link(1)) == 0
    finally:
        channel.close()


def test_the_channel_reopens_after_close() -> None:
    channel = RtnlChannel()
    first = channel.open()
    channel.close()
    assert first.fileno() == -1
    try:
        assert channel.request(get_link(MISSING_INDEX)) == errno.ENODEV
    finally:
        channel.close()


def test_templates_are_encoded_once_unless_asked_fresh() -> None:
    encoded: list[str] = []

    def encode(name: str) -> bytes:
        encoded.append(name)
        return name.encode()

    templates: Templates[str] = Templates()
    assert templates.get("a", lambda: encode("a")) == b"a"
    assert templates.get("a", lambda: encode("a-again")) == b"a"
    assert encoded == ["a"]
    assert templates.get("a", lambda: encode("a-fresh"), fresh=True) == b"a-fresh"
    assert templates.get("a", lambda: encode("unused")) == b"a-fresh"
    assert encoded == ["a", "a-fresh"]


def test_templates_are_bounded() -> None:
    templates: Templates[int] = Templates(limit=3)
    for key in range(7):
        templates.get(key, lambda: b"x")
        assert len(templates) <= 3
    assert len(templates) >= 1


def test_route_installer_prepare_encodes_every_request_a_takeover_and_a_release_send() -> None:
    channel = RtnlChannel()
    installer = RouteInstaller(channel=channel)
    routes = [parse_route(["10.20.0.0/16", "via", "10.0.0.254", "dev", "lo"]),
              parse_route(["10.30.0.0/16", "dev", "no-such-interface-9"])]
    rules = [parse_rule(["from", "10.0.0.1", "table", "100"])]
    try:
        installer.prepare(routes, rules)
        # add and del of the route on lo and of the rule; the route on a missing interface is left for later
        assert len(installer._templates) == 4
        assert channel._sock is not None  # opened ahead of the takeover too
        encoded: list[str] = []

        def encode() -> bytes:
            encoded.append("again")
            return b""

        installer._templates.get(("add", routes[0], (socket.if_nametoindex("lo"),)), encode)
        installer._templates.get(("del", rules[0], ()), encode)
        assert encoded == []  # both already there: the takeover sends them as they are
    finally:
        channel.close()
    dry = RouteInstaller(dry_run=True)
    dry.prepare(routes, rules)
    assert len(dry._templates) == 0
