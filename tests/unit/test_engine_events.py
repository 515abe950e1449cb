"""Engine events (wording, JSON round trip) and the event bus (bounded queues, drops, history, async)."""

from __future__ import annotations

import asyncio
import json

import pytest
from test_engine_fakes import run

from lvsconsole.config.diagnostics import Location, error, warning
from lvsconsole.config.diff import Change, FieldChange, ReloadPlan
from lvsconsole.engine.bus import EventBus
from lvsconsole.engine.events import (
    EVENT_TYPES,
    CheckResult,
    CheckResumed,
    CheckStalled,
    CommitConfirmed,
    CommitPending,
    CommitRolledBack,
    DrainEmpty,
    DrainProgress,
    DrainRemoved,
    DrainTimedOut,
    Dropped,
    EngineWarning,
    Event,
    IpvsDriftCleared,
    IpvsDriftDetected,
    IpvsDriftRepaired,
    LogLine,
    LoopLagWarning,
    OperatorAction,
    PoolFloorHeld,
    RadarAlarm,
    RadarCleared,
    RealServerRetired,
    RealServerRetiring,
    RealServerStateChanged,
    ReloadApplied,
    ReloadRefused,
    ReloadStarted,
    ScriptRan,
    SplitBrain,
    SplitBrainResolved,
    SyncCoverage,
    TableChanged,
    UndrainRamped,
    VrrpAdvertStats,
    VrrpTransition,
    event_from_json,
    event_to_json,
)

PLAN = ReloadPlan((Change("changed", "real_server", "[10.0.0.1]:tcp:80 -> [10.0.0.2]:80",
                          (FieldChange("weight", 1, 3),)),))


def samples() -> list[Event]:
    return [
        VrrpTransition(time=1.5, instance="VI_1", old="BACKUP", new="MASTER", reason="master down", priority=100),
        VrrpTransition(time=1.5, instance="VGM", old="BACKUP", new="MASTER", group=True),
        VrrpAdvertStats(time=2.0, instance="VI_1", state="MASTER", priority=100, master="10.0.0.9",
                        counters={"advert_sent": 12, "advert_rcvd": 3}),
        SplitBrain(time=2.1, instance="VI_1", peer="10.0.0.2", peer_priority=70, vrid=51),
        SplitBrainResolved(time=2.2, instance="VI_1", peer="10.0.0.2", winner="10.0.0.1", won=True),
        RadarAlarm(time=2.3, interface="eth0", vrid=51, senders=("10.0.0.3", "10.0.0.2"), priorities=(150, 100),
                   instance="VI_1"),
        RadarCleared(time=2.4, interface="eth0", vrid=51, remaining="10.0.0.2", lasted=12.5, instance="VI_1"),
        CheckResult(time=3.0, vs="[10.0.0.1]:tcp:80", rs="[10.0.0.2]:tcp:80", checker="TCP_CHECK", ok=False,
                    detail="TCP connection to [10.0.0.2]:tcp:80 failed.", reason="refused", latency=0.002),
        CheckStalled(time=3.5, vs="[10.0.0.1]:tcp:80", rs="[10.0.0.2]:tcp:80", checker="HTTP_GET", silent_for=18.4,
                     limit=18.0, running=True),
        CheckResumed(time=3.6, vs="[10.0.0.1]:tcp:80", rs="[10.0.0.2]:tcp:80", checker="HTTP_GET", silent_for=21.0),
        RealServerStateChanged(time=4.0, vs="[10.0.0.1]:tcp:80", rs="[10.0.0.2]:tcp:80", old="up", new="down"),
        RealServerRetiring(time=4.5, vs="[10.0.0.1]:tcp:80", rs="[10.0.0.2]:tcp:80", active=312, timeout=60.0),
        RealServerRetired(time=4.6, vs="[10.0.0.1]:tcp:80", rs="[10.0.0.2]:tcp:80", reason="timeout", active=3,
                          drained_for=60.0),
        PoolFloorHeld(time=4.7, vs="[10.0.0.1]:tcp:80", rs="[10.0.0.2]:tcp:80", min_healthy="50%"),
        DrainProgress(time=4.8, vs="[10.0.0.100]:tcp:80", rs="[10.0.0.2]:tcp:80", active=12, inactive=3, persist=0,
                      eta=8.2, rate=1.5),
        DrainEmpty(time=4.81, vs="[10.0.0.100]:tcp:80", rs="[10.0.0.2]:tcp:80", elapsed=12.5, persist=4),
        DrainRemoved(time=4.82, vs="[10.0.0.100]:tcp:80", rs="[10.0.0.2]:tcp:80", timed_out=True, active=2),
        DrainTimedOut(time=4.83, vs="[10.0.0.100]:tcp:80", rs="[10.0.0.2]:tcp:80", elapsed=30.0, active=2,
                      inactive=1),
        UndrainRamped(time=4.84, vs="[10.0.0.100]:tcp:80", rs="[10.0.0.2]:tcp:80", weight=5, target=10),
        TableChanged(time=5.0, ops=("edit dest [10.0.0.2]:80",), cause="drain"),
        IpvsDriftDetected(time=5.1, drift_id="3f9a01c2", drift_kind="weight-changed",
                          where="TCP 10.0.0.100:80 -> 10.0.0.2:80", intent="weight 3", kernel="weight 9"),
        IpvsDriftCleared(time=5.2, drift_id="3f9a01c2", drift_kind="weight-changed",
                         where="TCP 10.0.0.100:80 -> 10.0.0.2:80"),
        IpvsDriftRepaired(time=5.3, drift_id="0b1c2d3e", drift_kind="dest-deleted",
                          where="TCP 10.0.0.100:80 -> 10.0.0.3:80", intent="Masq weight 1", kernel="absent"),
        ReloadStarted(time=6.0, source="commit", who="uid=0(root)"),
        ReloadApplied.of("commit", 2, PLAN, "uid=0(root)", ["edit dest"]),
        ReloadRefused.of("reload /etc/keepalived/keepalived.conf", "errors",
                         [error("priority 300 is outside the range 1-255", Location("/etc/k.conf", 12, 14)),
                          warning("deprecated")], "SIGHUP"),
        OperatorAction(time=7.0, who="uid=1000(alice) via tui", command="drain 10.0.0.2:80", ok=True,
                       message="drained", changes=("drained 10.0.0.2:80",)),
        LogLine(time=8.0, message="Gained quorum 1+0=1 <= 1 for VS [10.0.0.1]:tcp:80", level="notice",
                source="check"),
        EngineWarning(time=9.0, message="event loop lag 120 ms", code="loop_lag"),
        LoopLagWarning(time=9.2, instance="VI_1", lag_ms=312.5, limit_ms=109.4, skew_ms=218.8),
        LoopLagWarning(time=9.3, instance="VI_1", lag_ms=312.5, limit_ms=109.4, recovered=True, lasted=1.5),
        ScriptRan(time=9.5, script_kind="track", name="chk_haproxy", argv=("/etc/keepalived/chk.sh", "80"), ok=False,
                  exit_status=1, duration=0.012, stdout=("checking",), stderr=("haproxy is down",)),
        Dropped(time=10.0, count=3),
        CommitPending(time=11.0, revision=4, restore_revision=3, restore_digest="ab12", deadline=71.0, who="alice"),
        CommitConfirmed(time=12.0, revision=4, who="alice"),
        CommitRolledBack(time=13.0, revision=5, restore_revision=3, restore_digest="ab12", unconfirmed_revision=4),
        SyncCoverage(time=14.0, peer="10.0.0.2:9650", percent=87.5, established=8, kept=7),
        SyncCoverage(time=14.5, peer="10.0.0.2:9650", percent=None, error="10.0.0.2:9650/connections.json: refused"),
    ]


def test_every_event_type_has_a_sample() -> None:
    assert {type(e) for e in samples()} == set(EVENT_TYPES.values())


@pytest.mark.parametrize("event", samples(), ids=lambda e: e.KIND)
def test_json_round_trip(event: Event) -> None:
    data = event_to_json(event)
    assert data["type"] == event.KIND
    assert data["severity"] == event.severity
    assert data["text"] == event.text()
    back = event_from_json(json.loads(json.dumps(data)))
    assert back == event
    assert type(back) is type(event)


def test_keepalived_wording() -> None:
    by_kind = {e.KIND + ("g" if getattr(e, "group", False) else ""): e for e in samples()}
    assert by_kind["VrrpTransition"].text() == "(VI_1) Entering MASTER STATE (master down)"
    assert by_kind["VrrpTransitiong"].text() == "VRRP_Group(VGM) Syncing instances to MASTER state"
    assert by_kind["RealServerStateChanged"].text() == "Removing service [10.0.0.2]:tcp:80 from VS [10.0.0.1]:tcp:80"
    up = RealServerStateChanged(vs="[10.0.0.1]:tcp:80", rs="[10.0.0.2]:tcp:80", old="down", new="up")
    assert up.text() == "Adding service [10.0.0.2]:tcp:80 to VS [10.0.0.1]:tcp:80"
    assert by_kind["CheckResult"].text() == "TCP connection to [10.0.0.2]:tcp:80 failed."
    assert by_kind["RealServerRetiring"].text() == (
        "Draining service [10.0.0.2]:tcp:80 from VS [10.0.0.1]:tcp:80 before removal (312 active)")
    assert by_kind["RealServerRetired"].text() == (
        "Removing drained service [10.0.0.2]:tcp:80 from VS [10.0.0.1]:tcp:80: drain_timeout expired after 60s "
        "with 3 active")
    refused = by_kind["ReloadRefused"]
    assert refused.severity == "error"
    assert "/etc/k.conf:12:14: error: priority 300" in refused.text()


def test_event_times_default_to_now() -> None:
    before = __import__("time").time()
    event = LogLine(message="x")
    assert before <= event.time <= __import__("time").time()


def test_event_from_json_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        event_from_json({"type": "Nope"})
    with pytest.raises(ValueError, match="bad LogLine"):
        event_from_json({"type": "LogLine"})


# ---------------------------------------------------------------------------------------------- bus


def test_history_is_bounded_and_ordered() -> None:
    bus = EventBus(history=5)
    for i in range(12):
        bus.publish(LogLine(message=str(i)))
    assert [e.text() for e in bus.history()] == ["7", "8", "9", "10", "11"]
    assert [e.text() for e in bus.history(2)] == ["10", "11"]
    assert bus.published == 12


def test_slow_subscriber_loses_oldest_and_is_told() -> None:
    bus = EventBus(queue_size=3)
    slow = bus.subscribe()
    fast = bus.subscribe(maxsize=100)
    for i in range(10):
        bus.publish(LogLine(message=str(i)))  # never blocks, whoever is subscribed
    got = slow.drain()
    assert got[0] == Dropped(time=got[0].time, count=7)
    assert [e.text() for e in got[1:]] == ["7", "8", "9"]
    assert slow.dropped_total == 7
    assert [e.text() for e in fast.drain()] == [str(i) for i in range(10)]
    bus.publish(LogLine(message="10"))
    assert [e.text() for e in slow.drain()] == ["10"]  # no marker once it keeps up


def test_replay_fills_a_late_subscriber_without_gap() -> None:
    bus = EventBus(history=100)
    for i in range(5):
        bus.publish(LogLine(message=str(i)))
    sub = bus.subscribe(replay=3)
    bus.publish(LogLine(message="5"))
    assert [e.text() for e in sub.drain()] == ["2", "3", "4", "5"]


def test_kinds_filter_and_faulty_filter() -> None:
    bus = EventBus()
    logs = bus.subscribe(kinds=[LogLine])

    def broken(event: Event) -> bool:
        raise RuntimeError("bug in a face")

    bad = bus.subscribe(accept=broken)
    bus.publish(EngineWarning(message="w"))
    bus.publish(LogLine(message="l"))
    assert [e.text() for e in logs.drain()] == ["l"]
    assert bad.drain() == []
    assert len(bus.history()) == 2


def test_closed_subscription_receives_nothing() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    assert bus.subscribers == 1
    sub.close()
    assert bus.subscribers == 0
    bus.publish(LogLine(message="x"))
    assert sub.drain() == []


def test_async_iteration_until_bus_closes() -> None:
    async def scenario() -> list[str]:
        bus = EventBus()
        sub = bus.subscribe()
        got: list[str] = []

        async def consume() -> None:
            async for event in sub:
                got.append(event.text())

        task = asyncio.create_task(consume())
        for i in range(3):
            bus.publish(LogLine(message=str(i)))
        bus.publish(LogLine(message="last"))
        bus.close()
        await task
        return got

    assert run(scenario()) == ["0", "1", "2", "last"]


def test_get_waits_for_the_next_event() -> None:
    async def scenario() -> str:
        bus = EventBus()
        sub = bus.subscribe()
        waiter = asyncio.create_task(sub.get())
        await asyncio.sleep(0)  # one turn of the loop: the waiter is now parked on an empty queue
        assert not waiter.done()
        bus.publish(LogLine(message="hello"))
        return (await waiter).text()

    assert run(scenario()) == "hello"


def test_closed_empty_subscription_raises_eof() -> None:
    async def scenario() -> None:
        bus = EventBus()
        sub = bus.subscribe()
        bus.close()
        with pytest.raises(EOFError):
            await sub.get()
        late = bus.subscribe()
        assert late.closed

    run(scenario())


def test_drain_progress_reads_like_the_brief() -> None:
    event = DrainProgress(vs="[10.0.0.100]:tcp:80", rs="[10.0.0.2]:tcp:80", active=12, inactive=3, persist=0,
                          eta=8.2)
    assert event.text() == "Drain of [10.0.0.2]:tcp:80 in VS [10.0.0.100]:tcp:80: 12 active, 3 inactive, ETA 8 s"
    unknown = DrainProgress(vs="v", rs="r", active=1, inactive=0, persist=2)
    assert unknown.text().endswith("1 active, 0 inactive, 2 persistent, ETA unknown")
