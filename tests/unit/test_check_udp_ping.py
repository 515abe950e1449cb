"""UDP_CHECK against a UDP echo server and closed ports; PING_CHECK of 127.0.0.1 and ::1."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from _checkutil import free_port, has_ipv6_loopback, run

from lvsconsole.check.ping import PingChecker, icmp_unavailable
from lvsconsole.check.policy import CheckOutcome
from lvsconsole.check.udp import DEFAULT_PAYLOAD, UdpChecker, parse_reply_pattern


class Echo(asyncio.DatagramProtocol):
    def __init__(self, reply: bytes | None = None, silent: bool = False) -> None:
        self.reply = reply
        self.silent = silent
        self.received: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append(data)
        if not self.silent and self.transport is not None:
            self.transport.sendto(data if self.reply is None else self.reply, addr)


async def udp(proto: Echo, host: str = "127.0.0.1", **kw: Any) -> CheckOutcome:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: proto, local_addr=(host, 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        kw.setdefault("connect_timeout", 1.0)
        return await UdpChecker(host, port, **kw).check()
    finally:
        transport.close()


def test_default_payload_is_keepalived_s() -> None:
    assert DEFAULT_PAYLOAD == b"keepalived check - keepalived ch"


def test_echo_server_is_up_and_receives_the_payload() -> None:
    echo = Echo()
    out = run(udp(echo, payload=b"\x01\x02\x03"))
    assert out.ok and out.detail == "UDP connection to {rs} success."
    assert echo.received == [b"\x01\x02\x03"]


def test_default_payload_on_the_wire() -> None:
    echo = Echo()
    assert run(udp(echo)).ok
    assert echo.received == [DEFAULT_PAYLOAD]


def test_closed_port_fails_through_icmp_port_unreachable() -> None:
    port = free_port(kind=socket.SOCK_DGRAM)
    out = run(UdpChecker("127.0.0.1", port, connect_timeout=2.0).check())
    assert not out.ok and out.detail == "UDP connection to {rs} failed."
    assert out.reason == "connection refused"


def test_silence_is_success_unless_a_reply_is_required() -> None:
    assert run(udp(Echo(silent=True), connect_timeout=0.2)).ok
    out = run(udp(Echo(silent=True), connect_timeout=0.2, require_reply=True))
    assert not out.ok and out.reason == "no reply"


def test_reply_pattern_with_wildcards() -> None:
    data, mask = parse_reply_pattern("01XX03")
    assert (data, mask) == (b"\x01\x00\x03", b"\x00\xff\x00")
    good = run(udp(Echo(reply=b"\x01\x99\x03\x04"), require_reply=True, reply_data=data, reply_mask=mask))
    bad = run(udp(Echo(reply=b"\x02\x99\x03"), require_reply=True, reply_data=data, reply_mask=mask))
    assert good.ok
    assert not bad.ok and bad.detail == "UDP check to {rs} reply data mismatch."


def test_reply_length_limits() -> None:
    kw: dict[str, Any] = {"require_reply": True, "min_reply_length": 3, "max_reply_length": 5}
    assert run(udp(Echo(reply=b"abcd"), **kw)).ok
    assert not run(udp(Echo(reply=b"ab"), **kw)).ok
    assert not run(udp(Echo(reply=b"abcdefgh"), **kw)).ok


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback")
def test_udp_over_ipv6() -> None:
    assert run(udp(Echo(), host="::1")).ok
    port = free_port(socket.AF_INET6, socket.SOCK_DGRAM)
    assert not run(UdpChecker("::1", port, connect_timeout=2.0).check()).ok


# ---- PING_CHECK -----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_ping_loopback(host: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    why = icmp_unavailable(family)
    if why is not None:
        pytest.skip(why)
    if family == socket.AF_INET6 and not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    out = run(PingChecker(host, connect_timeout=2.0).check())
    assert out.ok and out.detail == "ICMP connection to {rs} success."


def test_ping_many_at_once_each_gets_its_own_reply() -> None:
    why = icmp_unavailable()
    if why is not None:
        pytest.skip(why)

    async def main() -> list[CheckOutcome]:
        return list(await asyncio.gather(*(PingChecker("127.0.0.1", 2.0).check() for _ in range(50))))

    assert all(o.ok for o in run(main()))


def test_ping_unanswered_address_fails() -> None:
    why = icmp_unavailable()
    if why is not None:
        pytest.skip(why)
    # TEST-NET-2 is never answered: either a timeout or an immediate "unreachable".
    out = run(PingChecker("198.51.100.1", connect_timeout=0.3).check())
    assert not out.ok
    assert out.detail in ("ICMP connection to address {rs} timeout.", "ICMP connection to {rs} of {vs} failed.")
