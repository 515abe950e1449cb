"""The connection-table parser (/proc/net/ip_vs_conn and ip_vs_conn_sync), its JSON form and search."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from lvsconsole.ipvs.conntable import (
    Connection,
    ConnTableError,
    parse_conn_table,
    parse_line,
    read_conn_table,
    search,
)

# Captured inside the kernel-test guest (Debian 6.1 kernel, tests/kernel/test_conntable.py): 2 flows and the
# persistence template of an rr persistent service on port 81, 24 flows of an sh service on port 82.
KERNEL_6_1_SAMPLE = (
    "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n"
    "TCP 0A0A0002 9C45 0A0A0064 0052 C0A8320B 2382 ESTABLISHED     899\n"
    "TCP 0A0A0002 9C54 0A0A0064 0052 C0A8320B 2382 ESTABLISHED     899\n"
    "TCP 0A0A0002 9C56 0A0A0064 0052 C0A8320B 2382 ESTABLISHED     899\n"
    "TCP 0A0A0002 9C57 0A0A0064 0052 C0A8320B 2382 ESTABLISHED     899\n"
    "TCP 0A0A0002 9C46 0A0A0064 0052 C0A8320B 2382 ESTABLISHED     899\n"
    "TCP 0A0A0002 9C44 0A0A0064 0052 C0A8320B 2382 ESTABLISHED     899\n"
    "TCP 0A0A0002 9C4B 0A0A0064 0052 C0A8320B 2382 ESTABLISHED     899\n"
    "TCP 0A0A0002 9C41 0A0A0064 0051 C0A8320C 2382 ESTABLISHED     899\n"
    "TCP 0A0A0002 9C49 0A0A0064 0052 C0A8320C 2382 ESTABLISHED     899\n"
    "TCP 0A0A0002 9C50 0A0A0064 0052 C0A8320C 2382 ESTABLISHED     899\n"
    "TCP 0A0A0002 9C4C 0A0A0064 0052 C0A8320B 2382 ESTABLISHED     899\n"
    "TCP 0A0A0002 0000 0A0A0064 0051 C0A8320C 2382 ASSURED         299\n"
    "TCP 0A0A0002 9C51 0A0A0064 0052 C0A8320B 2382 ESTABLISHED     899\n"
    "TCP 0A0A0002 9C40 0A0A0064 0051 C0A8320C 2382 ESTABLISHED     899\n"
    "TCP 0A0A0002 9C48 0A0A0064 0052 C0A8320B 2382 ESTABLISHED     899\n"
    "TCP 0A0A0002 9C4F 0A0A0064 0052 C0A8320B 2382 ESTABLISHED     899\n"
    "TCP 0A0A0002 9C53 0A0A0064 0052 C0A8320B 2382 ESTABLISHED     899\n"
    "TCP 0A0A0002 9C43 0A0A0064 0052 C0A8320B 2382 ESTABLISHED     899\n"
    "TCP 0A0A0002 9C4E 0A0A0064 0052 C0A8320B 2382 ESTABLISHED     899\n"
    "TCP 0A0A0002 9C52 0A0A0064 0052 C0A8320C 2382 ESTABLISHED     899\n"
    "TCP 0A0A0002 9C58 0A0A0064 0052 C0A8320B 2382 ESTABLISHED     899\n"
    "TCP 0A0A0002 9C59 0A0A0064 0052 C0A8320C 2382 ESTABLISHED     899\n"
    "TCP 0A0A0002 9C4A 0A0A0064 0052 C0A8320B 2382 ESTABLISHED     899\n"
    "TCP 0A0A0002 9C42 0A0A0064 0052 C0A8320B 2382 ESTABLISHED     899\n"
    "TCP 0A0A0002 9C55 0A0A0064 0052 C0A8320B 2382 ESTABLISHED     899\n"
    "TCP 0A0A0002 9C4D 0A0A0064 0052 C0A8320B 2382 ESTABLISHED     899\n"
    "TCP 0A0A0002 9C47 0A0A0064 0052 C0A8320C 2382 ESTABLISHED     899\n"
)

V4 = ipaddress.IPv4Address
CLIENT = V4("10.10.0.2")


def test_the_kernel_sample_parses_field_by_field() -> None:
    conns = parse_conn_table(KERNEL_6_1_SAMPLE)
    assert len(conns) == 27
    first = conns[0]
    assert first == Connection(protocol="TCP", client=CLIENT, client_port=0x9C45, vip=V4("10.10.0.100"), vport=82,
                               dest=V4("192.168.50.11"), dport=9090, state="ESTABLISHED", expires=899)
    assert not first.template and first.established_flow and first.origin is None
    templates = [c for c in conns if c.template]
    assert [(t.vport, str(t.dest), t.state, t.expires) for t in templates] == [(81, "192.168.50.12", "ASSURED", 299)]
    assert not templates[0].established_flow


def test_ipv6_lines_use_the_uncompressed_pi6_form() -> None:
    line = ("TCP 2001:0db8:0000:0000:0000:0000:0000:0002 9C40 2001:0db8:0000:0000:0000:0000:0000:0064 0050 "
            "2001:0db8:0000:0000:0000:0000:0000:000b 1F90 ESTABLISHED     899")
    conn = parse_line(line)
    assert conn.client == ipaddress.IPv6Address("2001:db8::2") and conn.client_port == 40000
    assert conn.vip == ipaddress.IPv6Address("2001:db8::64") and conn.vport == 80
    assert conn.dest == ipaddress.IPv6Address("2001:db8::b") and conn.dport == 8080


def test_persistence_engine_columns() -> None:
    conn = parse_line("UDP 0A0A0002 13C4 0A0A0064 13C4 C0A8320B 13C4 UDP             299 sip a84b4c76e66710")
    assert (conn.protocol, conn.state, conn.expires, conn.pe_name, conn.pe_data) == (
        "UDP", "UDP", 299, "sip", "a84b4c76e66710")
    assert not conn.established_flow  # not TCP


def test_the_sync_layout_has_an_origin_column() -> None:
    text = ("Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires\n"
            "TCP 0A0A0002 9C45 0A0A0064 0052 C0A8320B 2382 ESTABLISHED SYNC       897\n"
            "IP  0A0A0000 0000 00000005 0000 C0A8320C 0000 NONE        LOCAL      280\n")
    synced, fwmark_template = parse_conn_table(text)
    assert (synced.origin, synced.expires, synced.client_port) == ("SYNC", 897, 0x9C45)
    assert fwmark_template.template and fwmark_template.protocol == "IP" and fwmark_template.vip == V4("0.0.0.5")


@pytest.mark.parametrize("line", [
    "TCP 0A0A0002 9C45 0A0A0064 0052 C0A8320B",  # cut short
    "TCP 0A0A02 9C45 0A0A0064 0052 C0A8320B 2382 ESTABLISHED 899",  # 6 hex digits
    "TCP 0A0A0002 XYZW 0A0A0064 0052 C0A8320B 2382 ESTABLISHED 899",  # bad port
    "TCP 0A0A0002 9C45 0A0A0064 0052 C0A8320B 2382 ESTABLISHED soon",  # bad expiry
])
def test_malformed_lines_are_errors_quoting_the_line(line: str) -> None:
    with pytest.raises(ConnTableError, match="line"):
        parse_line(line)


def test_json_round_trip_and_malformed_json() -> None:
    for conn in parse_conn_table(KERNEL_6_1_SAMPLE):
        assert Connection.from_json(conn.as_json()) == conn
    with pytest.raises(ConnTableError):
        Connection.from_json({"protocol": "TCP", "client": "not an address"})


def test_reading_a_file_and_a_missing_one(tmp_path: Path) -> None:
    path = tmp_path / "ip_vs_conn"
    path.write_text(KERNEL_6_1_SAMPLE)
    assert read_conn_table(str(path)) == parse_conn_table(KERNEL_6_1_SAMPLE)
    assert read_conn_table(str(tmp_path / "absent")) == []  # ip_vs not loaded: an empty table


def test_search_by_client_server_and_virtual_service() -> None:
    conns = parse_conn_table(KERNEL_6_1_SAMPLE)
    assert [c.dest for c in search(conns, client=CLIENT, client_port=0x9C41)] == [V4("192.168.50.12")]
    assert len(search(conns, client=CLIENT)) == 27
    to_rs2 = search(conns, dest=V4("192.168.50.12"), vport=82)
    assert sorted(c.client_port for c in to_rs2) == [0x9C47, 0x9C49, 0x9C50, 0x9C52, 0x9C59]
    assert search(conns, vip=V4("10.10.0.100"), vport=81, client_port=0) == [c for c in conns if c.template]
    assert search(conns, client=V4("10.10.0.3")) == []
