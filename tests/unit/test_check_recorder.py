"""The flight recorder's core (sans-IO): ring bounds and order, reason codes, flap score, percentiles."""

from __future__ import annotations

import pytest

from lvsconsole.check.policy import CheckerRef, CheckOutcome, RsRef
from lvsconsole.check.recorder import (
    FAILED_MARK,
    CheckRecorder,
    ProbeRing,
    flap_score,
    latency_sparkline,
    percentile,
    reason_code,
    transitions,
)
from lvsconsole.check.runner import CheckRecord

REF = CheckerRef(RsRef("[10.0.0.1]:tcp:80", "[10.0.0.2]:tcp:80"), 0)


def record(finished: float, ok: bool, *, duration: float = 0.002, reason: str = "", detail: str = "",
           ref: CheckerRef = REF) -> CheckRecord:
    return CheckRecord(ref, CheckOutcome(ok, detail, reason=reason), finished - duration, finished - duration,
                       finished)


# ---------------------------------------------------------------------------------------------- the ring


def test_ring_keeps_the_last_capacity_probes_oldest_first() -> None:
    ring = ProbeRing(5)
    for i in range(12):
        ring.add(float(i), i / 1000, "ok" if i % 3 else "refused", reason=f"r{i}")
    assert len(ring) == 5
    probes = ring.probes()
    assert [p.time for p in probes] == [7.0, 8.0, 9.0, 10.0, 11.0]
    assert [p.reason for p in probes] == ["r7", "r8", "r9", "r10", "r11"]
    assert [p.code for p in probes] == ["ok", "ok", "refused", "ok", "ok"]
    assert ring.oks() == [True, True, False, True, True]


def test_ring_before_it_is_full_and_after_clear() -> None:
    ring = ProbeRing(4)
    ring.add(1.0, 0.5, "timeout", "timeout", "TCP connection to {rs} timed out.")
    ring.add(2.0, 0.1, "ok")
    assert [(p.time, p.ok, p.latency) for p in ring.probes(clock_offset=100.0)] == [(101.0, False, 0.5),
                                                                                     (102.0, True, 0.1)]
    ring.clear()
    assert len(ring) == 0 and ring.probes() == []
    ring.add(3.0, 0.1, "ok")
    assert [p.time for p in ring.probes()] == [3.0]


def test_ring_refuses_unknown_codes_and_tiny_capacity() -> None:
    with pytest.raises(ValueError):
        ProbeRing(1)
    with pytest.raises(KeyError):
        ProbeRing(3).add(0.0, 0.0, "mystery")


def test_recorder_fills_in_the_server_and_forgets_what_a_reload_removed() -> None:
    recorder = CheckRecorder(capacity=3)
    other = CheckerRef(RsRef("[10.0.0.1]:tcp:80", "[10.0.0.3]:tcp:80"), 0)
    for t in range(5):
        recorder.record(record(float(t), t != 3, reason="connection refused" if t == 3 else "",
                               detail="TCP connection to {rs} failed." if t == 3 else ""))
    recorder.record(record(9.0, True, ref=other))
    history = recorder.history(REF, kind="TCP_CHECK", target="[10.0.0.2]:80", clock_offset=1000.0)
    assert [p.time for p in history.probes] == [1002.0, 1003.0, 1004.0]
    refused = history.probes[1]
    assert (refused.ok, refused.code, refused.reason) == (False, "refused", "connection refused")
    assert refused.detail == "TCP connection to [10.0.0.2]:tcp:80 failed."
    assert (history.transitions, history.failures, history.kind) == (2, 1, "TCP_CHECK")
    data = history.as_json()
    assert data["probes"][1]["code"] == "refused" and data["capacity"] == 3 and data["sparkline"][1] == FAILED_MARK
    recorder.retain([other])
    assert len(recorder) == 1
    assert recorder.history(REF).probes == ()
    assert len(recorder.history(other).probes) == 1


# ---------------------------------------------------------------------------------------------- reason codes


@pytest.mark.parametrize(("outcome", "code"), [
    (CheckOutcome(True, reason="no ICMP error"), "ok"),
    (CheckOutcome(False, reason="connection refused"), "refused"),
    (CheckOutcome(False, reason="timeout"), "timeout"),
    (CheckOutcome(False, reason="TLS handshake timeout"), "timeout"),
    (CheckOutcome(False, reason="anything", timed_out=True), "timeout"),
    (CheckOutcome(False, reason="connection reset by peer"), "reset"),
    (CheckOutcome(False, reason="no route to host"), "unreachable"),
    (CheckOutcome(False, reason="network is unreachable"), "unreachable"),
    (CheckOutcome(False, reason="status 503 for /health"), "http_status"),
    (CheckOutcome(False, reason="digest 0123abcd for /"), "digest_mismatch"),
    (CheckOutcome(False, reason="regex did not match for /"), "regex_mismatch"),
    (CheckOutcome(False, "SSL handshake/communication error connecting to server {rs}.",
                  reason="[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1000)"), "tls_error"),
    (CheckOutcome(False, "SSL handshake/communication error connecting to server {rs}.", reason="EOF"),
     "tls_error"),
    (CheckOutcome(False, reason="rcode 2"), "dns_rcode"),
    (CheckOutcome(False, reason="exit status 1", exit_status=1), "script_exit"),
    (CheckOutcome(False, reason="killed by signal 9", signal=9), "script_signal"),
    (CheckOutcome(False, reason="no reply"), "no_response"),
    (CheckOutcome(False, reason="bad greeting"), "protocol"),
    (CheckOutcome(False, reason="ValueError"), "error"),
])
def test_reason_codes_from_the_checkers_reasons(outcome: CheckOutcome, code: str) -> None:
    assert reason_code(outcome) == code


# ---------------------------------------------------------------------------------------------- summaries


def test_transitions_count_changes_between_consecutive_probes() -> None:
    assert transitions([]) == 0
    assert transitions([True] * 10) == 0
    assert transitions([True, False, False, True]) == 2


def test_flap_score_is_zero_when_steady_and_one_when_alternating_over_a_full_window() -> None:
    n = 50
    assert flap_score([True] * n, n) == 0.0
    assert flap_score([False] * n, n) == 0.0
    assert flap_score([i % 2 == 0 for i in range(n)], n) == pytest.approx(1.0)


def test_flap_score_of_one_fresh_transition_is_two_over_capacity_however_full_the_window() -> None:
    assert flap_score([True, False], 50) == pytest.approx(2 / 50)
    assert flap_score([True] * 49 + [False], 50) == pytest.approx(2 / 50)


def test_flap_score_decays_as_a_transition_ages() -> None:
    fresh = flap_score([True] * 40 + [False] * 10, 50)   # went down 10 probes ago
    older = flap_score([True] * 10 + [False] * 40, 50)   # went down 40 probes ago
    assert 0 < older < fresh < 2 / 50
    recent_flapping = flap_score([True] * 40 + [True, False] * 5, 50)
    old_flapping = flap_score([True, False] * 5 + [True] * 40, 50)
    assert recent_flapping > 0.3 > old_flapping > 0


def test_percentiles_are_nearest_rank_over_successes_only() -> None:
    values = sorted(float(v) for v in range(1, 101))
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile([], 0.5) is None
    recorder = CheckRecorder(capacity=10)
    for t, (ok, duration) in enumerate([(True, 0.001), (True, 0.003), (False, 5.0), (True, 0.002), (True, 0.010)]):
        recorder.record(record(float(t + 10), ok, duration=duration, reason="" if ok else "timeout"))
    history = recorder.history(REF)
    assert history.latency_p50 == pytest.approx(0.002)
    assert history.latency_p95 == pytest.approx(0.010)   # the 5 s timeout is not a latency


def test_sparkline_scales_successes_and_marks_failures() -> None:
    recorder = CheckRecorder(capacity=10)
    for t, (ok, duration) in enumerate([(True, 0.001), (True, 0.008), (False, 1.0), (True, 0.004)]):
        recorder.record(record(float(t + 10), ok, duration=duration, reason="" if ok else "connection refused"))
    line = recorder.history(REF).sparkline
    assert len(line) == 4
    assert line[2] == FAILED_MARK
    assert line[1] == "█"
    assert line[0] < line[3] < line[1]  # block characters sort by height
    assert latency_sparkline(()) == ""
