"""DNS_CHECK against a small asyncio DNS server that answers with dnspython."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from _checkutil import free_port, has_ipv6_loopback, run

from lvsconsole.check.dns import DnsChecker
from lvsconsole.check.policy import CheckOutcome

Answer = Callable[[dns.message.Message], list[bytes]]


class DnsServer(asyncio.DatagramProtocol):
    """Answers every query with what ``answer`` returns (a list of datagrams to send back)."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.queries: list[dns.message.Message] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        self.queries.append(query)
        assert self.transport is not None
        for reply in self.answer(query):
            self.transport.sendto(reply, addr)


def soa_answer(query: dns.message.Message) -> list[bytes]:
    response = dns.message.make_response(query)
    if query.question[0].name.to_text() == "." and query.question[0].rdtype == dns.rdatatype.SOA:
        response.answer.append(dns.rrset.from_text(".", 300, "IN", "SOA", "a.root.test. admin.test. 1 2 3 4 5"))
    else:
        response.set_rcode(dns.rcode.NXDOMAIN)
    return [response.to_wire()]


async def serve_and_check(answer: Answer, host: str = "127.0.0.1", **kw: object) -> tuple[CheckOutcome, DnsServer]:
    loop = asyncio.get_running_loop()
    proto = DnsServer(answer)
    transport, _ = await loop.create_datagram_endpoint(lambda: proto, local_addr=(host, 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        out = await DnsChecker(host, port, connect_timeout=kw.pop("connect_timeout", 2.0), **kw).check()  # type: ignore[arg-type]
    finally:
        transport.close()
    return out, proto


def test_soa_for_the_root_is_the_default_query_and_succeeds() -> None:
    out, server = run(serve_and_check(soa_answer))
    assert out.ok
    q = server.queries[0]
    assert q.question[0].name.to_text() == "." and q.question[0].rdtype == dns.rdatatype.SOA
    assert q.flags & dns.flags.RD
    assert q.edns < 0  # no EDNS, like keepalived


def test_nxdomain_fails_with_the_rcode() -> None:
    out, server = run(serve_and_check(soa_answer, qtype="A", name="www.example.test"))
    assert not out.ok
    assert out.detail == "DNS_CHECK ({rs}) read error occurred. (rcode = 3)"
    assert server.queries[0].question[0].name.to_text() == "www.example.test."


def test_noerror_without_answers_is_success() -> None:
    def empty(query: dns.message.Message) -> list[bytes]:
        return [dns.message.make_response(query).to_wire()]

    out, _ = run(serve_and_check(empty, qtype="AAAA", name="nothing.test"))
    assert out.ok


def test_stray_datagrams_are_ignored_until_our_answer() -> None:
    def noisy(query: dns.message.Message) -> list[bytes]:
        good = dns.message.make_response(query)
        wrong_id = dns.message.make_response(query)
        wrong_id.id = (query.id + 1) & 0xFFFF
        wrong_id.set_rcode(dns.rcode.SERVFAIL)
        not_a_response = dns.message.make_query(".", "SOA")
        not_a_response.id = query.id
        return [b"\x00\x01", wrong_id.to_wire(), not_a_response.to_wire(), good.to_wire()]

    out, _ = run(serve_and_check(noisy))
    assert out.ok, out


def test_silent_server_is_a_read_timeout() -> None:
    out, _ = run(serve_and_check(lambda q: [], connect_timeout=0.3))
    assert out.detail == "DNS_CHECK ({rs}) read timeout from socket"


def test_closed_port_is_reported_through_icmp() -> None:
    out = run(DnsChecker("127.0.0.1", free_port(kind=socket.SOCK_DGRAM), connect_timeout=2.0).check())
    assert not out.ok
    assert out.detail == "DNS_CHECK ({rs}) failed to read socket; errno 111 (Connection refused)"


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback")
def test_ipv6_server() -> None:
    out, _ = run(serve_and_check(soa_answer, host="::1"))
    assert out.ok
