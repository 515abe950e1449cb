"""The checker watchdog: the sans-IO stall detector on a virtual clock, then a real stall — a MISC_CHECK
script sleeping with a long misc_timeout holds the only check slot, so a TCP_CHECK on loopback gets no
result — seen by the check service and, through the director, as CheckStalled / CheckResumed events."""

from __future__ import annotations

import asyncio
import shutil
import textwrap

import pytest
from _checkutil import run

from lvsconsole.check.policy import CheckerRef, RsRef
from lvsconsole.check.service import CheckService
from lvsconsole.check.stall import StallDetector, StallNotice, stall_text
from lvsconsole.config.build import load_text
from lvsconsole.config.model import Config
from lvsconsole.engine import showtext
from lvsconsole.engine.bus import EventBus
from lvsconsole.engine.director import Director
from lvsconsole.engine.events import CheckResumed, CheckStalled, event_from_json, event_to_json
from lvsconsole.ipvs.memory import MemoryBackend
from lvsconsole.tui.link import rs_from_json

# ---- the detector, on a virtual clock ----------------------------------------------------------------


def test_a_check_silent_for_three_intervals_is_stalled_once() -> None:
    watch: StallDetector[str] = StallDetector()
    assert watch.expect("tcp", last_result=0.0, due=5.0, timeout=1.0) is None
    assert watch.next_deadline() == 18.0  # 3 x (delay_loop 5 + timeout 1)
    assert watch.poll(17.9) == []
    assert watch.poll(18.0) == [StallNotice("tcp", True, 18.0, 18.0, False)]
    assert watch.is_stalled("tcp") and watch.stalled() == ["tcp"]
    assert watch.poll(100.0) == []  # reported once per stall
    resumed = watch.expect("tcp", last_result=25.0, due=30.0, timeout=1.0)
    assert resumed == StallNotice("tcp", False, 25.0, 18.0, False)
    assert not watch.is_stalled("tcp")


def test_results_push_the_deadline_back() -> None:
    watch: StallDetector[str] = StallDetector()
    watch.expect("a", last_result=0.0, due=5.0, timeout=1.0)
    watch.expect("a", last_result=6.0, due=11.0, timeout=1.0)
    assert watch.poll(18.0) == []  # the first deadline was superseded
    assert watch.next_deadline() == 24.0
    (notice,) = watch.poll(24.5)
    assert notice.key == "a" and notice.silent_for == 18.5


def test_retrying_checks_use_their_shorter_interval() -> None:
    watch: StallDetector[str] = StallDetector()
    watch.expect("a", last_result=0.0, due=10.0, timeout=2.0)  # delay_loop 10: 36 s of silence allowed
    watch.expect("a", last_result=10.0, due=11.0, timeout=2.0)  # delay_before_retry 1 after a failure
    assert watch.next_deadline() == 19.0
    assert watch.poll(18.9) == []
    (notice,) = watch.poll(19.0)
    assert notice.limit == 9.0 and notice.silent_for == 9.0


def test_running_and_forgotten_checks() -> None:
    watch: StallDetector[str] = StallDetector()
    watch.expect("running", last_result=0.0, due=1.0, timeout=0.0)
    watch.expect("gone", last_result=0.0, due=1.0, timeout=0.0)
    watch.started("running")
    watch.forget("gone")
    assert watch.poll(3.0) == [StallNotice("running", True, 3.0, 3.0, True)]
    assert watch.next_deadline() == float("inf")
    with pytest.raises(ValueError):
        StallDetector(multiple=1.0)


def test_wording() -> None:
    stalled = stall_text("TCP_CHECK", "[10.0.0.2]:tcp:80", "[10.0.0.1]:tcp:80", 18.2, stalled=True)
    assert stalled == (
        "TCP_CHECK on [10.0.0.2]:tcp:80 in VS [10.0.0.1]:tcp:80 produced no result for 18 s (no check could start)"
    )
    resumed = stall_text("MISC_CHECK", "[10.0.0.2]:tcp:80", "[10.0.0.1]:tcp:80", 21.0, stalled=False)
    assert resumed == "MISC_CHECK on [10.0.0.2]:tcp:80 in VS [10.0.0.1]:tcp:80 produced a result again after 21 s"


def test_events_cross_the_control_socket() -> None:
    stalled = CheckStalled(vs="[10.0.0.1]:tcp:80", rs="[10.0.0.2]:tcp:80", checker="HTTP_GET", silent_for=18.0,
                           limit=18.0, running=True)
    resumed = CheckResumed(vs="[10.0.0.1]:tcp:80", rs="[10.0.0.2]:tcp:80", checker="HTTP_GET", silent_for=20.0)
    for event in (stalled, resumed):
        data = event_to_json(event)
        assert data["type"] == event.KIND and event_from_json(data) == event
    assert stalled.severity == "warning" and resumed.severity == "notice"
    assert stalled.text() == (
        "HTTP_GET on [10.0.0.2]:tcp:80 in VS [10.0.0.1]:tcp:80 produced no result for 18 s "
        "(a check is running past its timeout)"
    )


# ---- a real stall: one check slot, held by a sleeping MISC_CHECK ---------------------------------------

SLEEP = shutil.which("sleep") or "/bin/sleep"
VS_KEY = "[127.0.0.1]:tcp:18181"


def starved_config(tcp_port: int) -> Config:
    text = textwrap.dedent(f"""
        virtual_server 127.0.0.1 18181 {{
            protocol TCP
            lvs_sched rr
            lvs_method NAT
            delay_loop 0.2
            warmup 0
            real_server 127.0.0.2 18181 {{
                MISC_CHECK {{
                    misc_path "{SLEEP} 3"
                    misc_timeout 30
                }}
            }}
            real_server 127.0.0.1 {tcp_port} {{
                TCP_CHECK {{
                    connect_timeout 0.2
                    retry 0
                }}
            }}
        }}
    """)
    result = load_text(text)
    errors = [str(d) for d in result.diagnostics if d.is_error]
    assert not errors, errors
    return result.config


async def listening() -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def next_notice(notices: asyncio.Queue[StallNotice[CheckerRef]], limit: float) -> StallNotice[CheckerRef]:
    async with asyncio.timeout(limit):
        return await notices.get()


def test_a_starved_check_is_flagged_and_recovers() -> None:
    async def scenario() -> None:
        server, port = await listening()
        notices: asyncio.Queue[StallNotice[CheckerRef]] = asyncio.Queue()
        service = CheckService(starved_config(port), max_concurrency=1, bootstrap_delay=0.0, run_notifies=False)
        service.add_stall_listener(notices.put_nowait)
        tcp_rs = RsRef(VS_KEY, f"[127.0.0.1]:tcp:{port}")
        async with server, service:
            stalled = await next_notice(notices, 10.0)
            assert stalled.stalled and stalled.key == CheckerRef(tcp_rs, 0)
            assert not stalled.running  # it never got a slot
            assert stalled.silent_for >= stalled.limit and stalled.limit == pytest.approx(1.2, abs=0.05)
            assert service.check_stalled(tcp_rs)
            assert service.stalled_servers() == {tcp_rs}  # the director's snapshot asks this way
            snapshot = service.snapshot()
            servers = {rs.rs: rs for vs in snapshot.virtual_servers for rs in vs.real_servers}
            assert servers[tcp_rs.rs].check_stalled and servers[tcp_rs.rs].checkers[0].stalled
            assert not servers["[127.0.0.2]:tcp:18181"].check_stalled  # the sleeper is slow, not stalled
            expected = f"TCP_CHECK on {tcp_rs.rs} in VS {VS_KEY} produced no result for"
            assert any(e.message.startswith(expected) and e.level == "warning" for e in service.history)

            resumed = await next_notice(notices, 10.0)  # the script ends after 3 s and frees the slot
            assert not resumed.stalled and resumed.key == stalled.key
            assert resumed.silent_for >= stalled.silent_for
            assert not service.check_stalled(tcp_rs)
            assert service.stalled_servers() == set()

    run(scenario(), limit=30)


def test_the_director_publishes_stall_events_and_marks_the_server() -> None:
    async def scenario() -> None:
        server, port = await listening()
        bus = EventBus()
        director = Director(starved_config(port), backend=MemoryBackend(), bus=bus, dry_run=True, check_concurrency=1)
        tcp_key = f"[127.0.0.1]:tcp:{port}"
        with bus.subscribe(kinds=(CheckStalled, CheckResumed)) as events:
            async with server:
                await director.start()
                try:
                    async with asyncio.timeout(10):
                        first = await events.get()
                    assert isinstance(first, CheckStalled)
                    assert (first.vs, first.rs, first.checker) == (VS_KEY, tcp_key, "TCP_CHECK")
                    assert marked(director, tcp_key)
                    async with asyncio.timeout(10):
                        second = await events.get()
                    assert isinstance(second, CheckResumed) and second.rs == tcp_key
                    assert not marked(director, tcp_key)
                finally:
                    await director.stop()

    run(scenario(), limit=30)


def marked(director: Director, rs_key: str) -> bool:
    """The snapshot's mark, as `show rs` and the TUI get it (through the JSON too)."""
    views = director.snapshot().virtual_servers
    vs, view = next((vs, rs) for vs in views for rs in vs.real_servers if rs.key == rs_key)
    assert rs_from_json(view.as_json()).check_stalled is view.check_stalled
    assert ("(check stalled)" in showtext.real_servers([(vs, view)])) is view.check_stalled
    return bool(view.check_stalled)
