"""The path tracer: existing connection, persistence template, then the scheduler (sh/dh hashes as the kernel
computes them, counter schedulers with their figures, rr/wrr honestly undetermined)."""

from __future__ import annotations

import ipaddress

from test_ipvs_conntable import KERNEL_6_1_SAMPLE

from lvsconsole.ipvs.backend import DestCounters
from lvsconsole.ipvs.conntable import Connection, parse_conn_table
from lvsconsole.ipvs.table import Dest, DestKey, Fwd, Service, ServiceKey, SvcFlags
from lvsconsole.ipvs.trace import (
    TraceInput,
    dh_buckets,
    dh_hashkey,
    hash_32,
    sh_buckets,
    sh_hashkey,
    trace,
)

V4 = ipaddress.IPv4Address
CLIENT = V4("10.10.0.2")
RS1 = Dest.of("192.168.50.11", 9090, fwd=Fwd.MASQ, weight=3)
RS2 = Dest.of("192.168.50.12", 9090, fwd=Fwd.MASQ, weight=1)
SH = Service(ServiceKey.inet("tcp", "10.10.0.100", 82), "sh", SvcFlags.SH_PORT)
PERSIST = Service(ServiceKey.inet("tcp", "10.10.0.100", 81), "rr", SvcFlags.PERSISTENT, 300)


def test_hash_32_is_the_kernels_fibonacci_hash() -> None:
    assert hash_32(0, 8) == 0
    assert hash_32(1, 8) == 0x61C88647 >> 24
    assert hash_32(0xFFFFFFFF, 8) == ((0xFFFFFFFF * 0x61C88647) & 0xFFFFFFFF) >> 24


def test_sh_buckets_follow_weights_in_list_order() -> None:
    buckets = sh_buckets([RS2, RS1])
    assert len(buckets) == 256
    assert buckets[:8] == [RS2, RS1, RS1, RS1, RS2, RS1, RS1, RS1]
    assert buckets.count(RS1) == 192 and buckets.count(RS2) == 64
    quiesced = Dest.of("192.168.50.13", 9090, weight=0)
    assert sh_buckets([quiesced, RS2])[:3] == [quiesced, RS2, quiesced]  # weight 0 still takes one bucket a pass


def test_sh_with_sh_port_predicts_every_flow_the_kernel_scheduled() -> None:
    """The sample's 24 flows to the sh service: the kernel lists rs2 (added last) first; with that order the
    hash names the server of every one (the reverse order would not)."""
    flows = [c for c in parse_conn_table(KERNEL_6_1_SAMPLE) if c.vport == 82]
    assert len(flows) == 24 and {c.dest for c in flows} == {RS1.address, RS2.address}
    kernel_order = TraceInput(SH, [RS2, RS1])
    wrong_order = TraceInput(SH, [RS1, RS2])
    for flow in flows:
        result = trace(CLIENT, flow.client_port, kernel_order)
        assert result.verdict == "scheduler" and result.dest == flow.dest_key(), (flow, result.reason)
        assert f"port {flow.client_port}" in result.reason
    assert sum(trace(CLIENT, f.client_port, wrong_order).dest == f.dest_key() for f in flows) < 24


def test_sh_without_port_flag_ignores_the_port_and_needs_it_with_the_flag() -> None:
    plain = TraceInput(Service(SH.key, "sh"), [RS2, RS1])
    assert trace(CLIENT, 1, plain).dest == trace(CLIENT, 2, plain).dest
    assert sh_hashkey(CLIENT, 0) == hash_32(int(CLIENT), 8)
    undetermined = trace(CLIENT, None, TraceInput(SH, [RS2, RS1]))
    assert undetermined.verdict == "undetermined" and "CLIENT_IP:PORT" in undetermined.reason


def test_sh_quiesced_bucket_drops_without_fallback_and_rehashes_with_it() -> None:
    drained = Dest.of("192.168.50.12", 9090, fwd=Fwd.MASQ, weight=0)
    # a weight-0 server gets one bucket a pass instead of its weight's worth: find a port landing on it
    port = next(p for p in range(1024, 65536) if sh_buckets([drained, RS1])[sh_hashkey(CLIENT, p)] == drained)
    dropped = trace(CLIENT, port, TraceInput(SH, [drained, RS1]))
    assert dropped.verdict == "none" and dropped.dest is None and "dropped" in dropped.reason
    fallback = Service(SH.key, "sh", SvcFlags.SH_PORT | SvcFlags.SH_FALLBACK)
    rehashed = trace(CLIENT, port, TraceInput(fallback, [drained, RS1]))
    assert rehashed.dest == RS1.key and "sh-fallback" in rehashed.reason


def test_dh_hashes_the_destination_address() -> None:
    vip = V4("10.10.0.100")
    expected = dh_buckets([RS2, RS1])[dh_hashkey(vip)]
    assert dh_hashkey(vip) == (int(vip) * 2654435761) & 255
    result = trace(CLIENT, 5000, TraceInput(Service(SH.key, "dh"), [RS2, RS1]))
    assert result.dest == (expected.key if expected else None) and "dh" in result.reason


def test_an_existing_connection_decides_first() -> None:
    conns = parse_conn_table(KERNEL_6_1_SAMPLE)
    result = trace(CLIENT, 0x9C41, TraceInput(PERSIST, [RS2, RS1], connections=conns))
    assert result.verdict == "connection" and result.dest == RS2.key
    assert result.connection is not None and result.connection.state == "ESTABLISHED"


def test_a_persistence_template_decides_for_a_new_port() -> None:
    conns = parse_conn_table(KERNEL_6_1_SAMPLE)
    result = trace(CLIENT, 60000, TraceInput(PERSIST, [RS2, RS1], connections=conns))
    assert result.verdict == "template" and result.dest == RS2.key and "299 s" in result.reason
    assert any("no connection from 10.10.0.2:60000" in s for s in result.steps)
    # without a port: the client's connections are not followed, the template still decides
    assert trace(CLIENT, None, TraceInput(PERSIST, [RS2, RS1], connections=conns)).dest == RS2.key
    # another client: no template, and rr's next pick is not observable
    other = trace(V4("10.10.0.3"), None, TraceInput(PERSIST, [RS2, RS1], connections=conns))
    assert other.verdict == "undetermined" and other.dest is None and "does not export" in other.reason
    assert [c.dest for c in other.candidates if c.eligible] == [RS2.key, RS1.key]


def test_persistence_granularity_masks_the_client() -> None:
    netmask = Service(PERSIST.key, "rr", SvcFlags.PERSISTENT, 300, netmask=24)
    template = Connection("TCP", V4("10.10.0.0"), 0, V4("10.10.0.100"), 81, RS1.address, 9090, "NONE", 120)
    result = trace(V4("10.10.0.77"), None, TraceInput(netmask, [RS2, RS1], connections=[template]))
    assert result.verdict == "template" and result.dest == RS1.key and "10.10.0.0/24" in result.reason


def test_a_template_to_a_quiesced_server_still_lands_and_one_to_a_removed_server_does_not() -> None:
    template = Connection("TCP", CLIENT, 0, V4("10.10.0.100"), 81, RS1.address, 9090, "NONE", 120)
    quiesced = Dest.of("192.168.50.11", 9090, fwd=Fwd.MASQ, weight=0)
    result = trace(CLIENT, None, TraceInput(PERSIST, [RS2, quiesced], connections=[template]))
    assert result.dest == RS1.key and "expire_quiescent_template" in result.reason
    gone = trace(CLIENT, None, TraceInput(PERSIST, [RS2], connections=[template],
                                          absent={RS1.key: "maint: out of the table, checks paused"}))
    assert gone.verdict == "undetermined" and any("no longer in the table" in s for s in gone.steps)
    assert [(c.dest, c.eligible, c.reason) for c in gone.candidates] == [
        (RS2.key, True, ""), (RS1.key, False, "not in the table (maint: out of the table, checks paused)")]


def counters(**active_inactive: tuple[int, int]) -> dict[DestKey, DestCounters]:
    keys = {"rs1": RS1.key, "rs2": RS2.key}
    return {keys[n]: DestCounters(activeconns=a, inactconns=i) for n, (a, i) in active_inactive.items()}


def test_wlc_shows_overheads_per_weight_and_picks_the_least() -> None:
    wlc = Service(SH.key, "wlc")
    # rs2: (1*256+0)/1 = 256; rs1 (weight 3): (2*256+10)/3 = 174 → rs1
    result = trace(CLIENT, 1, TraceInput(wlc, [RS2, RS1], counters(rs1=(2, 10), rs2=(1, 0))))
    assert result.dest == RS1.key
    figures = {c.dest: dict(c.figures) for c in result.candidates}
    assert figures[RS1.key] == {"active": 2, "inactive": 10, "overhead": 522, "per_weight": 174.0}
    assert figures[RS2.key]["per_weight"] == 256.0


def test_lc_ignores_weights_and_ties_go_to_the_first_listed() -> None:
    lc = Service(SH.key, "lc")
    # overhead active*256+inactive: rs1 256, rs2 200 (weights 3 and 1 do not count)
    assert trace(CLIENT, 1, TraceInput(lc, [RS2, RS1], counters(rs1=(1, 0), rs2=(0, 200)))).dest == RS2.key
    assert trace(CLIENT, 1, TraceInput(lc, [RS2, RS1], counters(rs1=(1, 0), rs2=(0, 300)))).dest == RS1.key
    assert trace(CLIENT, 1, TraceInput(lc, [RS2, RS1], counters(rs1=(1, 0), rs2=(1, 0)))).dest == RS2.key


def test_nq_takes_an_idle_server_at_once_and_sed_weighs_active_plus_one() -> None:
    both_busy = counters(rs1=(5, 0), rs2=(1, 0))
    # sed: rs2 (1+1)/1 = 2, rs1 (5+1)/3 = 2 → a tie: the first listed
    assert trace(CLIENT, 1, TraceInput(Service(SH.key, "sed"), [RS2, RS1], both_busy)).dest == RS2.key
    idle = counters(rs1=(0, 0), rs2=(1, 0))
    result = trace(CLIENT, 1, TraceInput(Service(SH.key, "nq"), [RS2, RS1], idle))
    assert result.dest == RS1.key and "no active connection" in result.reason


def test_quiesced_servers_are_excluded_with_the_reason() -> None:
    quiesced = Dest.of("192.168.50.11", 9090, fwd=Fwd.MASQ, weight=0)
    result = trace(CLIENT, 1, TraceInput(Service(SH.key, "wlc"), [RS2, quiesced], counters(rs2=(9, 9))))
    assert result.dest == RS2.key
    excluded = [c for c in result.candidates if not c.eligible]
    assert [(c.dest, c.reason) for c in excluded] == [(RS1.key, "quiesced (weight 0): no new connections")]
    nobody = trace(CLIENT, 1, TraceInput(Service(SH.key, "wrr"), [quiesced]))
    assert nobody.verdict == "none" and nobody.dest is None


def test_json_form() -> None:
    result = trace(CLIENT, 1, TraceInput(Service(SH.key, "wlc"), [RS2, RS1]))
    data = result.as_json()
    assert data["verdict"] == "scheduler" and data["dest"] == str(result.dest)
    assert [c["dest"] for c in data["candidates"]] == ["192.168.50.12:9090", "192.168.50.11:9090"]
