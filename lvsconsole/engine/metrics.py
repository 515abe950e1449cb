"""Prometheus metrics of the engine, built from a director snapshot at scrape time.

Gauges and IPVS counters cost nothing between scrapes: :class:`DirectorCollector` turns one
:class:`~lvsconsole.engine.director_api.DirectorSnapshot` into metric families when Prometheus asks. Only
check results need a per-event cost: :class:`CheckTally` counts them (plain ints, no locks: it is fed and
copied on the engine's loop) and its copy is rendered as a counter and a latency histogram.

Families (labels: ``instance`` = vrrp_instance name; ``vs``/``rs`` = keepalived's names, "[10.0.0.1]:tcp:80"):

- ``lvs_vrrp_state{instance,state}`` 1 for the current state, 0 for the others (INIT, BACKUP, MASTER, FAULT);
  ``lvs_vrrp_priority``, ``lvs_vrrp_base_priority``; ``lvs_vrrp_adverts_sent_total``,
  ``lvs_vrrp_adverts_received_total``, ``lvs_vrrp_dropped_total{reason}`` (keepalived's error counter names:
  chk_err, auth_failure, …), ``lvs_vrrp_transitions_total{to}`` (become_master, release_master) and
  ``lvs_vrrp_events_total{event}`` for every other counter (garp_sent, pri_zero_sent, …).
- ``lvs_real_server_health{vs,rs}`` 1 when up, else 0; ``lvs_real_server_state{vs,rs,state}`` (the current
  state only: up, down, draining, disabled, inhibited); ``lvs_real_server_weight`` (what IPVS holds; absent
  when the server is out of the table), ``lvs_real_server_config_weight``.
- per virtual server (``lvs_virtual_server_*{vs}``) and real server (``lvs_real_server_*{vs,rs}``):
  ``connections_total``, ``packets_total{direction}``, ``bytes_total{direction}`` (IPVS counters),
  ``connections_per_second``, ``packets_per_second{direction}``, ``bytes_per_second{direction}`` (the
  kernel's rate estimator), ``active_connections``, ``inactive_connections``; ``lvs_virtual_server_quorum_up``.
- ``lvs_check_results_total{vs,rs,result}`` (success|failure), ``lvs_check_duration_seconds{vs,rs}``.
- engine: ``lvs_uptime_seconds``, ``lvs_ipvs_in_sync``, ``lvs_checks_in_flight``,
  ``lvs_check_lateness_p99_seconds``, and ``lvs_loop_lag_seconds`` / ``lvs_loop_lag_p99_seconds`` when the
  engine measures its loop lag.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from lvsconsole.check.runner import CheckRecord
from lvsconsole.engine.director_api import DirectorSnapshot, RealServerView, VirtualServerView, VrrpInstanceView
from lvsconsole.ipvs.backend import Counters

VRRP_STATES = ("INIT", "BACKUP", "MASTER", "FAULT")
VRRP_DROP_COUNTERS = frozenset({
    "packet_len_err", "ip_ttl_err", "invalid_type_rcvd", "vers_err", "chk_err", "addr_list_err",
    "invalid_authtype", "authtype_mismatch", "auth_failure", "proto_err", "advert_int_err", "rx_filtered",
})
VRRP_TRANSITION_COUNTERS = {"become_master": "MASTER", "release_master": "BACKUP"}
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Check durations (s): loopback connects take well under 1 ms, a dead server waits out connect_timeout."""


# ---------------------------------------------------------------------------------------------- check results


@dataclass(slots=True)
class CheckFigures:
    """Counts of one real server's checks; ``buckets[i]`` counts durations in (LATENCY_BUCKETS[i-1], [i]],
    the last one those above every bound."""

    successes: int
    failures: int
    buckets: list[int]
    duration_sum: float

    @classmethod
    def empty(cls) -> CheckFigures:
        return cls(0, 0, [0] * (len(LATENCY_BUCKETS) + 1), 0.0)

    def copy(self) -> CheckFigures:
        return CheckFigures(self.successes, self.failures, list(self.buckets), self.duration_sum)


class CheckTally:
    """Check results per (vs, rs). Feed it on the loop (``record``); read it there too (``copy``)."""

    def __init__(self) -> None:
        self._figures: dict[tuple[str, str], CheckFigures] = {}

    def record(self, vs: str, rs: str, ok: bool, duration: float) -> None:
        figures = self._figures.get((vs, rs))
        if figures is None:
            figures = self._figures[(vs, rs)] = CheckFigures.empty()
        if ok:
            figures.successes += 1
        else:
            figures.failures += 1
        figures.buckets[bisect.bisect_left(LATENCY_BUCKETS, duration)] += 1
        figures.duration_sum += duration

    def on_check(self, record: CheckRecord) -> None:
        """A ``Director.add_check_listener`` listener."""
        self.record(record.ref.rs.vs, record.ref.rs.rs, record.outcome.ok, record.duration)

    def copy(self, keep: Callable[[str, str], bool] | None = None) -> dict[tuple[str, str], CheckFigures]:
        """A copy for a scrape; with ``keep``, servers it rejects (gone after a reload) are forgotten."""
        if keep is not None:
            for key in [k for k in self._figures if not keep(*k)]:
                del self._figures[key]
        return {key: figures.copy() for key, figures in self._figures.items()}


def check_families(figures: Mapping[tuple[str, str], CheckFigures]) -> Iterator[Metric]:
    results = CounterMetricFamily("lvs_check_results", "Completed health checks by outcome.",
                                  labels=("vs", "rs", "result"))
    durations = HistogramMetricFamily("lvs_check_duration_seconds", "How long each health check took.",
                                      labels=("vs", "rs"))
    bounds = [str(b) for b in LATENCY_BUCKETS] + ["+Inf"]
    for (vs, rs), f in figures.items():
        results.add_metric((vs, rs, "success"), f.successes)
        results.add_metric((vs, rs, "failure"), f.failures)
        cumulative, running = [], 0
        for bound, count in zip(bounds, f.buckets, strict=True):
            running += count
            cumulative.append((bound, float(running)))
        durations.add_metric((vs, rs), cumulative, f.duration_sum)
    yield results
    yield durations


# ---------------------------------------------------------------------------------------------- the snapshot


def vrrp_families(instances: Iterable[VrrpInstanceView]) -> Iterator[Metric]:
    state = GaugeMetricFamily("lvs_vrrp_state", "1 for the VRRP instance's current state, 0 for the others.",
                              labels=("instance", "state"))
    priority = GaugeMetricFamily("lvs_vrrp_priority", "Effective priority (tracking and runtime priority applied).",
                                 labels=("instance",))
    base = GaugeMetricFamily("lvs_vrrp_base_priority", "Configured priority.", labels=("instance",))
    sent = CounterMetricFamily("lvs_vrrp_adverts_sent", "Adverts sent.", labels=("instance",))
    received = CounterMetricFamily("lvs_vrrp_adverts_received", "Adverts received.", labels=("instance",))
    dropped = CounterMetricFamily("lvs_vrrp_dropped", "Received packets dropped, by keepalived's counter name.",
                                  labels=("instance", "reason"))
    transitions = CounterMetricFamily("lvs_vrrp_transitions", "Transitions to MASTER and releases of MASTER.",
                                      labels=("instance", "to"))
    other = CounterMetricFamily("lvs_vrrp_events", "Other VRRP counters (garp_sent, pri_zero_rcvd, …).",
                                labels=("instance", "event"))
    for inst in instances:
        name = inst.name
        for candidate in dict.fromkeys((*VRRP_STATES, inst.state)):
            state.add_metric((name, candidate), 1.0 if candidate == inst.state else 0.0)
        priority.add_metric((name,), inst.priority)
        base.add_metric((name,), inst.base_priority)
        counters = inst.counters
        sent.add_metric((name,), counters.get("advert_sent", 0))
        received.add_metric((name,), counters.get("advert_rcvd", 0))
        for reason in sorted(VRRP_DROP_COUNTERS):
            dropped.add_metric((name, reason), counters.get(reason, 0))
        for counter, to in VRRP_TRANSITION_COUNTERS.items():
            transitions.add_metric((name, to), counters.get(counter, 0))
        known = VRRP_DROP_COUNTERS | VRRP_TRANSITION_COUNTERS.keys() | {"advert_sent", "advert_rcvd"}
        for counter, value in sorted(counters.items()):
            if counter not in known:
                other.add_metric((name, counter), value)
    yield from (state, priority, base, sent, received, dropped, transitions, other)


class _TrafficFamilies:
    """The IPVS counter and rate families of one kind of entry (virtual or real server)."""

    def __init__(self, prefix: str, what: str, labels: tuple[str, ...]) -> None:
        with_direction = (*labels, "direction")
        self.conns = CounterMetricFamily(f"{prefix}_connections", f"Connections scheduled to the {what}.",
                                         labels=labels)
        self.packets = CounterMetricFamily(f"{prefix}_packets", f"Packets through the {what}.",
                                           labels=with_direction)
        self.bytes = CounterMetricFamily(f"{prefix}_bytes", f"Bytes through the {what}.", labels=with_direction)
        self.cps = GaugeMetricFamily(f"{prefix}_connections_per_second",
                                     f"New connections per second to the {what} (kernel estimator).", labels=labels)
        self.pps = GaugeMetricFamily(f"{prefix}_packets_per_second",
                                     f"Packets per second through the {what} (kernel estimator).",
                                     labels=with_direction)
        self.bps = GaugeMetricFamily(f"{prefix}_bytes_per_second",
                                     f"Bytes per second through the {what} (kernel estimator).",
                                     labels=with_direction)
        self.active = GaugeMetricFamily(f"{prefix}_active_connections", f"Active connections of the {what}.",
                                        labels=labels)
        self.inactive = GaugeMetricFamily(f"{prefix}_inactive_connections", f"Inactive connections of the {what}.",
                                          labels=labels)

    def add(self, labels: tuple[str, ...], c: Counters, active: int, inactive: int) -> None:
        inbound, outbound = (*labels, "in"), (*labels, "out")
        self.conns.add_metric(labels, c.conns)
        self.packets.add_metric(inbound, c.inpkts)
        self.packets.add_metric(outbound, c.outpkts)
        self.bytes.add_metric(inbound, c.inbytes)
        self.bytes.add_metric(outbound, c.outbytes)
        self.cps.add_metric(labels, c.cps)
        self.pps.add_metric(inbound, c.inpps)
        self.pps.add_metric(outbound, c.outpps)
        self.bps.add_metric(inbound, c.inbps)
        self.bps.add_metric(outbound, c.outbps)
        self.active.add_metric(labels, active)
        self.inactive.add_metric(labels, inactive)

    def families(self) -> tuple[Metric, ...]:
        return (self.conns, self.packets, self.bytes, self.cps, self.pps, self.bps, self.active, self.inactive)


def server_families(virtual_servers: Iterable[VirtualServerView]) -> Iterator[Metric]:
    vs_traffic = _TrafficFamilies("lvs_virtual_server", "virtual server", ("vs",))
    rs_traffic = _TrafficFamilies("lvs_real_server", "real server", ("vs", "rs"))
    quorum = GaugeMetricFamily("lvs_virtual_server_quorum_up", "1 while the virtual server has its quorum.",
                               labels=("vs",))
    health = GaugeMetricFamily("lvs_real_server_health", "1 when the real server is up, else 0.",
                               labels=("vs", "rs"))
    state = GaugeMetricFamily("lvs_real_server_state",
                              "The real server's state (up, down, draining, disabled, inhibited); always 1.",
                              labels=("vs", "rs", "state"))
    weight = GaugeMetricFamily("lvs_real_server_weight", "Weight in the IPVS table (absent when not in it).",
                               labels=("vs", "rs"))
    config_weight = GaugeMetricFamily("lvs_real_server_config_weight", "Configured weight.", labels=("vs", "rs"))
    for vs in virtual_servers:
        vs_traffic.add((vs.key,), vs.traffic, vs.active_conns, vs.inactive_conns)
        quorum.add_metric((vs.key,), 1.0 if vs.quorum_up else 0.0)
        for rs in vs.real_servers:
            labels = (vs.key, rs.key)
            rs_traffic.add(labels, rs.traffic, rs.active_conns, rs.inactive_conns)
            _real_server_state(rs, labels, health, state, weight, config_weight)
    yield from vs_traffic.families()
    yield quorum
    yield from rs_traffic.families()
    yield from (health, state, weight, config_weight)


def _real_server_state(rs: RealServerView, labels: tuple[str, str], health: GaugeMetricFamily,
                       state: GaugeMetricFamily, weight: GaugeMetricFamily, config_weight: GaugeMetricFamily) -> None:
    health.add_metric(labels, 1.0 if rs.health == "up" else 0.0)
    state.add_metric((*labels, rs.health), 1.0)
    if rs.weight is not None:
        weight.add_metric(labels, rs.weight)
    config_weight.add_metric(labels, rs.config_weight)


def engine_families(stats: Mapping[str, Any]) -> Iterator[Metric]:
    """Engine-wide figures; each only when the snapshot has it."""
    gauges = (
        ("uptime", "lvs_uptime_seconds", "Seconds since the director started.", 1.0),
        ("ipvs_in_sync", "lvs_ipvs_in_sync", "1 when the IPVS table matches the desired table.", 1.0),
        ("checks_in_flight", "lvs_checks_in_flight", "Health checks running now.", 1.0),
        ("check_lateness_p99", "lvs_check_lateness_p99_seconds",
         "99th percentile of how late checks started against their schedule.", 1.0),
        ("loop_lag_ms", "lvs_loop_lag_seconds", "Current event-loop lag.", 0.001),
        ("loop_lag_p99_ms", "lvs_loop_lag_p99_seconds", "99th percentile of the event-loop lag (last minute).", 0.001),
    )
    for key, name, doc, scale in gauges:
        value = stats.get(key)
        if isinstance(value, bool | int | float):
            yield GaugeMetricFamily(name, doc, value=float(value) * scale)


# ---------------------------------------------------------------------------------------------- the collector


@dataclass(frozen=True)
class Scrape:
    """What one scrape reports, taken in one step on the engine's loop."""

    snapshot: DirectorSnapshot
    checks: Mapping[tuple[str, str], CheckFigures]


def take_scrape(snapshot: DirectorSnapshot, tally: CheckTally) -> Scrape:
    """Call on the loop: the snapshot, and the check figures of the servers it still has."""
    current = {(vs.key, rs.key) for vs in snapshot.virtual_servers for rs in vs.real_servers}
    return Scrape(snapshot, tally.copy(keep=lambda vs, rs: (vs, rs) in current))


class DirectorCollector(Collector):
    """A prometheus_client collector over ``source``, which returns the scrape to report (on any thread)."""

    def __init__(self, source: Callable[[], Scrape]) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        scrape = self._source()
        yield from vrrp_families(scrape.snapshot.instances)
        yield from server_families(scrape.snapshot.virtual_servers)
        yield from check_families(scrape.checks)
        yield from engine_families(scrape.snapshot.stats)
