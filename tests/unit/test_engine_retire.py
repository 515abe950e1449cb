"""The drain-before-delete planner on a virtual clock: who drains, who goes at once, when each goes."""

from __future__ import annotations

from lvsconsole.engine.retire import SAMPLE_INTERVAL, RetirePlanner


def planner() -> RetirePlanner[str, str]:
    return RetirePlanner()


def test_idle_server_or_zero_timeout_goes_at_once() -> None:
    p = planner()
    assert p.begin("rs1", "old rs1", active=0, now=100.0, timeout=60.0) is None
    assert p.begin("rs2", "old rs2", active=312, now=100.0, timeout=0.0) is None
    assert len(p) == 0
    assert p.next_review(100.0) is None


def test_busy_server_drains_until_its_connections_end() -> None:
    p = planner()
    retirement = p.begin("rs1", "old rs1", active=312, now=100.0, timeout=60.0)
    assert retirement is not None and retirement.deadline == 160.0 and retirement.subject == "old rs1"
    assert "rs1" in p
    assert p.next_review(100.0) == 100.0 + SAMPLE_INTERVAL
    assert p.review({"rs1": 5}, now=110.0) == []
    kept = p.get("rs1")
    assert kept is not None and kept.active == 5
    [removal] = p.review({"rs1": 0}, now=111.5)
    assert (removal.key, removal.reason, removal.active, removal.drained_for) == ("rs1", "drained", 0, 11.5)
    assert len(p) == 0


def test_drain_timeout_removes_a_server_still_busy() -> None:
    p = planner()
    p.begin("rs1", "old", active=3, now=0.0, timeout=2.0)
    assert p.review({"rs1": 3}, now=1.9) == []
    # the last review before the deadline is scheduled at the deadline, not after it
    assert p.next_review(1.9) == 2.0
    [removal] = p.review({"rs1": 3}, now=2.0)
    assert (removal.reason, removal.active, removal.drained_for) == ("timeout", 3, 2.0)


def test_a_dest_gone_from_the_counters_counts_as_drained() -> None:
    p = planner()
    p.begin("rs1", "old", active=3, now=0.0, timeout=60.0)
    [removal] = p.review({}, now=1.0)
    assert removal.reason == "drained"


def test_a_second_reload_does_not_extend_the_deadline() -> None:
    p = planner()
    first = p.begin("rs1", "old", active=3, now=0.0, timeout=10.0)
    again = p.begin("rs1", "old", active=3, now=5.0, timeout=10.0)
    assert again is first and again is not None and again.deadline == 10.0


def test_a_server_brought_back_stops_draining() -> None:
    p = planner()
    p.begin("rs1", "old", active=3, now=0.0, timeout=10.0)
    p.begin("rs2", "old", active=3, now=0.0, timeout=10.0)
    kept = p.keep("rs1")
    assert kept is not None and kept.key == "rs1"
    assert p.keep("rs1") is None
    assert [r.key for r in p] == ["rs2"]
    assert [r.key for r in p.review({"rs1": 3, "rs2": 3}, now=10.0)] == ["rs2"]
