"""Prometheus metrics: families built from a snapshot, the check tally, `--metrics HOST:PORT` parsing, and a
dry-run engine on loopback scraped over HTTP on 127.0.0.1 and parsed with prometheus_client's parser."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from lvsconsole.cli import build_parser
from lvsconsole.engine.daemon import running_engine
from lvsconsole.engine.director_api import DirectorSnapshot, RealServerView, VirtualServerView, VrrpInstanceView
from lvsconsole.engine.listen import ListenAddress, parse_listen_address
from lvsconsole.engine.metrics import LATENCY_BUCKETS, CheckTally, DirectorCollector, Scrape
from lvsconsole.engine.metrics_http import MetricsError
from lvsconsole.ipvs.backend import Counters, DestCounters
from lvsconsole.ipvs.memory import MemoryBackend
from lvsconsole.ipvs.table import Proto, ServiceKey

VS = "[10.0.0.1]:tcp:80"
UP = "[10.0.0.2]:tcp:80"
DOWN = "[10.0.0.3]:tcp:80"


def samples(text: str) -> dict[str, list[Sample]]:
    """Samples by family name (counters without their _total suffix, as the parser names them)."""
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def value(found: dict[str, list[Sample]], family: str, sample: str | None = None, **labels: str) -> float:
    hits = [s.value for s in found[family] if s.name == (sample or family) and all(
        s.labels.get(k) == v for k, v in labels.items())]
    assert len(hits) == 1, f"{family}{labels}: {hits}"
    return hits[0]


def render(scrape: Scrape) -> str:
    registry = CollectorRegistry()
    registry.register(DirectorCollector(lambda: scrape))
    return generate_latest(registry).decode()


def fixed_snapshot(stats: dict[str, object] | None = None) -> DirectorSnapshot:
    up = RealServerView(key=UP, address=ipaddress.ip_address("10.0.0.2"), port=80, forward="DR", weight=3,
                        config_weight=3, health="up", active_conns=7, inactive_conns=2,
                        traffic=DestCounters(conns=100, inpkts=1000, outpkts=900, inbytes=64000, outbytes=1_200_000,
                                             cps=4, inpps=30, outpps=25, inbps=2000, outbps=40000))
    down = RealServerView(key=DOWN, address=ipaddress.ip_address("10.0.0.3"), port=80, forward="DR", weight=None,
                          config_weight=2, health="down")
    vs = VirtualServerView(key=VS, address=ipaddress.ip_address("10.0.0.1"), port=80, protocol="TCP", fwmark=None,
                           group=None, scheduler="wrr", quorum_up=True, real_servers=(up, down),
                           traffic=Counters(conns=100, inpkts=1000, outpkts=900, inbytes=64000, outbytes=1_200_000))
    inst = VrrpInstanceView(name="VI_1", state="MASTER", priority=90, base_priority=100, vrid=51,
                            counters={"advert_sent": 754, "advert_rcvd": 2, "become_master": 1, "chk_err": 3,
                                      "auth_failure": 1, "garp_sent": 5})
    return DirectorSnapshot(time.time(), (inst,), (vs,), stats if stats is not None else {"uptime": 12.5})


# ---------------------------------------------------------------------------------------------- pure


def test_snapshot_families_carry_vrrp_state_priorities_and_counters() -> None:
    found = samples(render(Scrape(fixed_snapshot(), {})))
    assert value(found, "lvs_vrrp_state", instance="VI_1", state="MASTER") == 1
    assert [value(found, "lvs_vrrp_state", instance="VI_1", state=s) for s in ("INIT", "BACKUP", "FAULT")] == [0] * 3
    assert value(found, "lvs_vrrp_priority", instance="VI_1") == 90
    assert value(found, "lvs_vrrp_base_priority", instance="VI_1") == 100
    assert value(found, "lvs_vrrp_adverts_sent", "lvs_vrrp_adverts_sent_total", instance="VI_1") == 754
    assert value(found, "lvs_vrrp_adverts_received", "lvs_vrrp_adverts_received_total", instance="VI_1") == 2
    assert value(found, "lvs_vrrp_dropped", "lvs_vrrp_dropped_total", instance="VI_1", reason="chk_err") == 3
    assert value(found, "lvs_vrrp_dropped", "lvs_vrrp_dropped_total", instance="VI_1", reason="auth_failure") == 1
    assert value(found, "lvs_vrrp_dropped", "lvs_vrrp_dropped_total", instance="VI_1", reason="vers_err") == 0
    assert value(found, "lvs_vrrp_transitions", "lvs_vrrp_transitions_total", instance="VI_1", to="MASTER") == 1
    assert value(found, "lvs_vrrp_events", "lvs_vrrp_events_total", instance="VI_1", event="garp_sent") == 5


def test_snapshot_families_carry_real_server_health_weights_and_ipvs_counters() -> None:
    found = samples(render(Scrape(fixed_snapshot(), {})))
    assert value(found, "lvs_real_server_health", vs=VS, rs=UP) == 1
    assert value(found, "lvs_real_server_health", vs=VS, rs=DOWN) == 0
    assert value(found, "lvs_real_server_state", vs=VS, rs=DOWN, state="down") == 1
    assert value(found, "lvs_real_server_weight", vs=VS, rs=UP) == 3
    assert not [s for s in found["lvs_real_server_weight"] if s.labels["rs"] == DOWN]  # out of the table
    assert value(found, "lvs_real_server_config_weight", vs=VS, rs=DOWN) == 2
    assert value(found, "lvs_real_server_active_connections", vs=VS, rs=UP) == 7
    assert value(found, "lvs_real_server_inactive_connections", vs=VS, rs=UP) == 2
    assert value(found, "lvs_real_server_connections", "lvs_real_server_connections_total", vs=VS, rs=UP) == 100
    assert value(found, "lvs_real_server_bytes", "lvs_real_server_bytes_total", vs=VS, rs=UP,
                 direction="out") == 1_200_000
    assert value(found, "lvs_real_server_packets_per_second", vs=VS, rs=UP, direction="in") == 30
    assert value(found, "lvs_real_server_bytes_per_second", vs=VS, rs=UP, direction="out") == 40000
    assert value(found, "lvs_real_server_connections_per_second", vs=VS, rs=UP) == 4
    assert value(found, "lvs_virtual_server_packets", "lvs_virtual_server_packets_total", vs=VS,
                 direction="in") == 1000
    assert value(found, "lvs_virtual_server_active_connections", vs=VS) == 7
    assert value(found, "lvs_virtual_server_quorum_up", vs=VS) == 1


def test_loop_lag_is_reported_only_when_the_engine_measures_it() -> None:
    without = samples(render(Scrape(fixed_snapshot({"uptime": 1.0}), {})))
    assert "lvs_loop_lag_seconds" not in without and value(without, "lvs_uptime_seconds") == 1.0
    with_lag = samples(render(Scrape(fixed_snapshot({"loop_lag_ms": 12.0, "loop_lag_p99_ms": 40.0}), {})))
    assert value(with_lag, "lvs_loop_lag_seconds") == pytest.approx(0.012)
    assert value(with_lag, "lvs_loop_lag_p99_seconds") == pytest.approx(0.040)


def test_check_tally_counts_results_and_buckets_durations() -> None:
    tally = CheckTally()
    tally.record(VS, UP, True, 0.0004)
    tally.record(VS, UP, True, LATENCY_BUCKETS[3])  # on a bound: counted in that bucket (le)
    tally.record(VS, DOWN, False, 30.0)  # above every bound: only +Inf
    found = samples(render(Scrape(fixed_snapshot(), tally.copy())))
    assert value(found, "lvs_check_results", "lvs_check_results_total", vs=VS, rs=UP, result="success") == 2
    assert value(found, "lvs_check_results", "lvs_check_results_total", vs=VS, rs=DOWN, result="failure") == 1
    bucket = "lvs_check_duration_seconds_bucket"
    assert value(found, "lvs_check_duration_seconds", bucket, vs=VS, rs=UP, le="0.001") == 1
    assert value(found, "lvs_check_duration_seconds", bucket, vs=VS, rs=UP, le=str(LATENCY_BUCKETS[3])) == 2
    assert value(found, "lvs_check_duration_seconds", bucket, vs=VS, rs=DOWN, le="10.0") == 0
    assert value(found, "lvs_check_duration_seconds", bucket, vs=VS, rs=DOWN, le="+Inf") == 1
    assert value(found, "lvs_check_duration_seconds", "lvs_check_duration_seconds_sum", vs=VS,
                 rs=DOWN) == pytest.approx(30.0)
    # a server gone after a reload is forgotten at the next scrape
    assert set(tally.copy(keep=lambda vs, rs: rs == UP)) == {(VS, UP)}
    assert set(tally.copy()) == {(VS, UP)}


@pytest.mark.parametrize(("text", "host", "port"), [
    ("127.0.0.1:9650", "127.0.0.1", 9650), ("[::1]:9650", "::1", 9650), (":9650", "", 9650),
    ("localhost:0", "localhost", 0),
])
def test_listen_address_parses(text: str, host: str, port: int) -> None:
    assert parse_listen_address(text) == ListenAddress(host, port)


@pytest.mark.parametrize("text", ["9650", "::1:9650", "host:", "host:http", "host:65536", "a b:1"])
def test_bad_metrics_address_is_an_error_naming_the_option(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["run", "--metrics", text])
    assert exit_info.value.code == 2
    assert "argument --metrics:" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- a live engine

CONFIG = """
vrrp_instance VI_M {{
    state BACKUP
    interface lo
    virtual_router_id 77
    priority 150
    advert_int 1
    virtual_ipaddress {{
        192.0.2.77/32
    }}
}}
virtual_server 127.0.0.1 {vport} {{
    delay_loop 0.1
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.1 {live} {{
        weight 3
        TCP_CHECK {{
            connect_timeout 1
            retry 0
        }}
    }}
    real_server 127.0.0.1 {dead} {{
        weight 2
        TCP_CHECK {{
            connect_timeout 1
            retry 0
        }}
    }}
}}
"""


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


def scrape(address: ListenAddress) -> tuple[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{address.port}/metrics", timeout=10) as response:
        return response.read().decode(), response.headers["Content-Type"]


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.create_server(("127.0.0.1", 0), backlog=128)  # completes handshakes: a live real server
    yield sock
    sock.close()


def test_scraping_a_dry_run_engine_over_http(tmp_path: Path, listener: socket.socket) -> None:
    live, dead, vport = listener.getsockname()[1], closed_port(), closed_port()
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONFIG.format(vport=vport, live=live, dead=dead))
    live_key, dead_key, vs_key = (f"[127.0.0.1]:tcp:{p}" for p in (live, dead, vport))

    async def go() -> None:
        async with running_engine(str(conf), dry_run=True, socket_path=None,
                                  metrics=ListenAddress("127.0.0.1", 0)) as engine:
            assert engine.metrics is not None
            address = engine.metrics.address
            assert address.port != 0

            def settled() -> bool:
                health = {rs.key: rs.health for vs in engine.director.snapshot().virtual_servers
                          for rs in vs.real_servers}
                return health.get(live_key) == "up" and health.get(dead_key) == "down"

            await wait_until(settled)
            backend = engine.director.backend
            assert isinstance(backend, MemoryBackend)
            service = ServiceKey.inet(Proto.TCP, "127.0.0.1", vport)
            dest = next(k for k in backend.table[service].dests if k.port == live)
            backend.set_dest_stats(service, dest, DestCounters(conns=41, inpkts=500, outbytes=77_000, activeconns=6,
                                                               inactconns=1, cps=3))

            def traffic_seen() -> bool:
                return any(rs.active_conns == 6 for vs in engine.director.snapshot().virtual_servers
                           for rs in vs.real_servers)

            await wait_until(traffic_seen)
            text, content_type = await asyncio.to_thread(scrape, address)
            snapshot = engine.director.snapshot()

        assert content_type.startswith("text/plain")
        found = samples(text)
        assert value(found, "lvs_real_server_health", vs=vs_key, rs=live_key) == 1
        assert value(found, "lvs_real_server_health", vs=vs_key, rs=dead_key) == 0
        assert value(found, "lvs_real_server_weight", vs=vs_key, rs=live_key) == 3
        assert value(found, "lvs_real_server_config_weight", vs=vs_key, rs=dead_key) == 2
        assert value(found, "lvs_real_server_active_connections", vs=vs_key, rs=live_key) == 6
        assert value(found, "lvs_real_server_connections", "lvs_real_server_connections_total", vs=vs_key,
                     rs=live_key) == 41
        assert value(found, "lvs_real_server_bytes", "lvs_real_server_bytes_total", vs=vs_key, rs=live_key,
                     direction="out") == 77_000
        assert value(found, "lvs_check_results", "lvs_check_results_total", vs=vs_key, rs=live_key,
                     result="success") >= 1
        assert value(found, "lvs_check_results", "lvs_check_results_total", vs=vs_key, rs=dead_key,
                     result="failure") >= 1
        count = value(found, "lvs_check_duration_seconds", "lvs_check_duration_seconds_count", vs=vs_key, rs=live_key)
        successes = value(found, "lvs_check_results", "lvs_check_results_total", vs=vs_key, rs=live_key,
                          result="success")
        failures = value(found, "lvs_check_results", "lvs_check_results_total", vs=vs_key, rs=live_key,
                         result="failure")
        assert count == successes + failures
        states = {s.labels["state"]: s.value for s in found["lvs_vrrp_state"] if s.labels["instance"] == "VI_M"}
        assert sorted(states.values()) == [0, 0, 0, 1]
        assert value(found, "lvs_vrrp_base_priority", instance="VI_M") == 150
        assert ("lvs_loop_lag_seconds" in found) == ("loop_lag_ms" in snapshot.stats)

    asyncio.run(go())


def test_a_metrics_port_in_use_is_an_error_naming_the_option(tmp_path: Path, listener: socket.socket) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONFIG.format(vport=closed_port(), live=listener.getsockname()[1], dead=closed_port()))
    busy = ListenAddress("127.0.0.1", listener.getsockname()[1])

    async def go() -> None:
        with pytest.raises(MetricsError, match=r"--metrics 127\.0\.0\.1:\d+: Address already in use"):
            async with running_engine(str(conf), dry_run=True, socket_path=None, metrics=busy):
                pass

    asyncio.run(go())
