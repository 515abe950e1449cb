"""Tracker arithmetic (keepalived's vrrp_track.c), the script rise/fall counter, and the runners."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from lvsconsole.config.model import Script, TrackFile, VrrpScript
from lvsconsole.vrrp.params import TrackSpec
from lvsconsole.vrrp.tracking import (
    FileWatcher,
    InstanceTracking,
    ScriptRunner,
    ScriptState,
    file_effect,
    link_up,
    parse_track_file,
    run_script,
    up_down_effect,
)


@pytest.mark.parametrize(("weight", "reverse", "up", "effect"), [
    (0, False, True, 0), (0, False, False, None),  # weight 0: down means FAULT
    (0, True, True, None), (0, True, False, 0),  # reverse: up means FAULT
    (10, False, True, 10), (10, False, False, 0),  # positive: added while up
    (10, True, True, -10), (10, True, False, 0),  # reverse: subtracted while up
    (-10, False, True, 0), (-10, False, False, -10),  # negative: added (subtracted) while down
    (-10, True, True, 0), (-10, True, False, 10),  # reverse: added back while down
])
def test_up_down_effect(weight: int, reverse: bool, up: bool, effect: int | None) -> None:
    assert up_down_effect(weight, reverse, up) == effect


@pytest.mark.parametrize(("weight", "reverse", "value", "effect"), [
    (0, False, 0, 0), (0, False, 3, None), (0, True, 0, None), (0, True, 3, 0),
    (2, False, 5, 10), (2, True, 5, -10), (-3, False, 5, -15),
    (1, False, 300, 253),  # clamped to 253
    (1, False, -253, -253), (1, False, -254, None), (2, False, -200, None),  # -254 or below: FAULT
])
def test_file_effect(weight: int, reverse: bool, value: int, effect: int | None) -> None:
    assert file_effect(weight, reverse, value) == effect


@pytest.mark.parametrize(("text", "value"), [
    ("5\n", 5), ("-12", -12), ("  +7 apples", 7), ("0x1f", 31), ("010", 8), ("", 0), ("abc", 0), ("0", 0),
])
def test_parse_track_file_reads_like_strtol(text: str, value: int) -> None:
    assert parse_track_file(text) == value


def test_link_up_needs_up_and_running() -> None:
    assert link_up(0x1043) and not link_up(0x1003) and not link_up(0x1040)


def test_script_state_first_result_reports_at_once() -> None:
    ok = ScriptState(rise=3, fall=2)
    assert ok.up is None
    assert ok.record(True) is True and ok.up is True  # one success is enough at start
    bad = ScriptState(rise=3, fall=2)
    assert bad.record(False) is False and bad.up is False  # the first failure reports too


def test_script_state_rise_and_fall() -> None:
    s = ScriptState(rise=2, fall=3)
    assert s.record(True) is True
    assert [s.record(False), s.record(False)] == [None, None]
    assert s.record(False) is False  # the third failure
    assert s.record(True) is None and s.record(True) is True  # two successes
    assert s.record(True) is None
    assert [s.record(False), s.record(True), s.record(False), s.record(False)] == [None, None, None, None]
    assert s.record(False) is False


def test_script_state_init_fail_needs_rise_successes() -> None:
    s = ScriptState(rise=2, fall=1, init_fail=True)
    assert s.up is False
    assert s.record(False) is None  # already down: nothing to report
    assert s.record(True) is None and s.record(True) is True


def test_instance_tracking_totals_and_faults() -> None:
    t = InstanceTracking(100, [
        TrackSpec("interface", "eth0"), TrackSpec("interface", "eth1", -30),
        TrackSpec("script", "chk", 10), TrackSpec("script", "must", 0), TrackSpec("file", "tf", 2),
    ])
    assert t.faults == {"script must failed"}  # a weight-0 script holds FAULT until it reports
    assert t.total_priority == 100
    assert t.set_up_down("script", "must", True) and not t.faults
    assert t.set_up_down("interface", "eth1", False) and t.total_priority == 70
    assert not t.set_up_down("interface", "eth1", False)  # no change
    assert t.set_up_down("script", "chk", True) and t.total_priority == 80
    assert t.set_file_value("tf", 4) and t.total_priority == 88
    assert t.set_file_value("tf", -200) and t.faults == {"track file tf"} and t.total_priority == 80
    assert t.set_up_down("interface", "eth0", False)
    assert t.faults == {"track file tf", "interface eth0 down"}
    assert t.all_reasons >= t.faults


def test_run_script_outcomes(tmp_path: Path) -> None:
    async def main() -> list[tuple[bool, str, str]]:
        return [
            await run_script(["/bin/true"], 5),
            await run_script(["/bin/false"], 5),
            await run_script([sys.executable, "-c", "import os,signal; os.kill(os.getpid(), signal.SIGKILL)"], 5),
            await run_script([str(tmp_path / "missing")], 5),
        ]
    results = asyncio.run(main())
    assert results[0] == (True, "succeeded", "")
    assert results[1] == (False, "failed", "exited with status 1")
    assert results[2] == (False, "failed", "due to signal 9")
    assert results[3][:2] == (False, "failed")


def test_run_script_timeout_kills_the_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "child-survived"
    script = tmp_path / "slow.sh"
    script.write_text(f"#!/bin/sh\n(sleep 0.3; touch {marker}) &\nsleep 30\n")
    script.chmod(0o755)
    start = time.monotonic()
    result = asyncio.run(run_script([str(script)], 0.1))
    assert result == (False, "timed_out", "")
    assert time.monotonic() - start < 3
    time.sleep(0.5)
    assert not marker.exists(), "the script's child outlived the timeout"


def test_script_runner_reports_changes_without_blocking_the_loop(tmp_path: Path) -> None:
    flag = tmp_path / "ok"
    check = VrrpScript("chk", Script(("/usr/bin/test", "-e", str(flag))), interval=0.05, timeout=5, fall=2, rise=1)
    changes: list[tuple[str, bool]] = []

    async def main() -> float:
        runner = ScriptRunner([check], lambda name, ok: changes.append((name, ok)))
        runner.start()
        worst = 0.0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(changes) < 2:
            before = time.monotonic()
            await asyncio.sleep(0.01)
            worst = max(worst, time.monotonic() - before)
            if changes == [("chk", False)]:
                flag.write_text("1")
        await runner.stop()
        return worst
    worst = asyncio.run(main())
    assert changes == [("chk", False), ("chk", True)]
    assert worst < 0.5  # the loop kept running while the scripts ran


def test_file_watcher_polls_changes(tmp_path: Path) -> None:
    path = tmp_path / "track"
    values: list[tuple[str, int]] = []
    watcher = FileWatcher([TrackFile("tf", str(path), init_file=("3",))], lambda n, v: values.append((n, v)))

    async def main() -> None:
        watcher.start()
        assert watcher.values == {"tf": 3}  # init_file created it
        path.write_text("7\n")
        watcher.poll_once()
        path.unlink()
        watcher.poll_once()
        await watcher.stop()
    asyncio.run(main())
    assert values == [("tf", 7), ("tf", 0)]
