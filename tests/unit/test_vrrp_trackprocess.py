"""vrrp_track_process: parsing keepalived's keywords, matching, quorum with fork/terminate delays on a virtual
clock, the priority arithmetic, and the watcher against real processes (a ``sleep`` with a distinctive argv)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from lvsconsole.config.build import load_text
from lvsconsole.vrrp.params import TrackSpec, instance_spec
from lvsconsole.vrrp.tracking import InstanceTracking
from lvsconsole.vrrp.trackprocess import (
    ProcessInfo,
    ProcessRef,
    ProcessSpec,
    ProcessTracker,
    ProcessWatcher,
    QuorumCounter,
    decode_proc_events,
    matches,
    open_proc_connector,
    parse_track_process,
    process_specs,
    read_process,
    scan,
    track_process_refs,
)

LIMIT = 10.0


def words(text: str) -> list[str]:
    """The raw words the config keeps for a block (as the builder stores ROOT_RAW blocks)."""
    result = load_text(text)
    assert result.ok, result.diagnostics
    return list(result.config.extra[0][1])


# -------------------------------------------------------------------------------------------- parsing


def test_parse_every_keyword() -> None:
    spec = parse_track_process(words("""
vrrp_track_process haproxy {
    process /usr/sbin/haproxy -f /etc/haproxy.cfg
    param_match partial
    weight -20 reverse
    quorum 2
    quorum_max 3
    delay 0.5
    terminate_delay 1.5
    full_command
}
"""))
    assert spec == ProcessSpec("haproxy", ("/usr/sbin/haproxy", "-f", "/etc/haproxy.cfg"), "partial", -20, True,
                               2, 3, 0.5, 1.5, True)


def test_defaults_and_exact_parameters() -> None:
    assert parse_track_process(["nginx", "{", "process", "nginx", ";", "}"]) == ProcessSpec("nginx", ("nginx",))
    with_params = parse_track_process(["x", "{", "process", "/bin/sleep", "100", ";", "}"])
    assert with_params.param_match == "exact" and with_params.weight == 1 and with_params.quorum == 1


@pytest.mark.parametrize("body, message", [
    ([], "has no process"),
    (["process", "a", ";", "weight", "300", ";"], "weight 300 not in -254..254"),
    (["process", "a", ";", "param_match", "fuzzy", ";"], "param_match must be 'initial' or 'partial'"),
    (["process", "a", ";", "quorum", "3", ";", "quorum_max", "2", ";"], "do not make a range"),
    (["process", "a", ";", "delay", "soon", ";"], "is not a number"),
])
def test_invalid_blocks_are_refused(body: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_track_process(["p", "{", *body, "}"])


def test_instance_refs_and_weights_reach_the_instance_spec() -> None:
    config = load_text("""
vrrp_track_process web {
    process nginx
    weight 30
}
vrrp_track_process db {
    process postgres
    weight 0
}
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 51
    virtual_ipaddress { 10.0.0.1 }
    track_process {
        web
        db weight -10 reverse
    }
}
""").config
    assert track_process_refs(config.instances[0].extra) == (ProcessRef("web"), ProcessRef("db", -10, True))
    assert [s.name for s in process_specs(config)] == ["web", "db"]
    tracks = instance_spec(config, config.instances[0]).tracks
    assert TrackSpec("process", "web", 30, False) in tracks and TrackSpec("process", "db", -10, True) in tracks


def test_validator_reports_an_unknown_process_reference() -> None:
    result = load_text("""
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 51
    virtual_ipaddress { 10.0.0.1 }
    track_process { nothere }
}
""")
    errors = [d.message for d in result.diagnostics if d.is_error]
    assert errors == ["(VI_1) track_process: no vrrp_track_process named 'nothere'"]


# -------------------------------------------------------------------------------------------- matching


SLEEP = ProcessInfo("sleep", ("/bin/sleep", "100", "marker-abc"))


@pytest.mark.parametrize("spec, expected", [
    (ProcessSpec("n", ("sleep",)), True),
    (ProcessSpec("n", ("slee",)), False),  # exact, not a pgrep-style regex
    (ProcessSpec("n", ("/bin/sleep", "100", "marker-abc"), "exact"), True),
    (ProcessSpec("n", ("/bin/sleep", "100"), "exact"), False),
    (ProcessSpec("n", ("/bin/sleep", "100"), "partial"), True),
    (ProcessSpec("n", ("/bin/sleep", "100", "marker"), "partial"), False),
    (ProcessSpec("n", ("/bin/sleep", "100", "marker"), "initial"), True),
    (ProcessSpec("n", ("/bin/sleep",), "exact"), False),  # param_match without parameters: none allowed
    (ProcessSpec("n", ("/bin/sleep 100 marker-abc",), full_command=True), True),
    (ProcessSpec("n", ("/bin/sleep", "100", "marker-abc"), full_command=True), True),
    (ProcessSpec("n", ("/bin/sleep 100",), full_command=True), False),
])
def test_matching(spec: ProcessSpec, expected: bool) -> None:
    assert matches(spec, SLEEP) is expected


def test_long_names_match_the_kernels_fifteen_characters() -> None:
    info = ProcessInfo("a-very-long-pro", ("x",))
    assert matches(ProcessSpec("n", ("a-very-long-process-name",)), info)


# -------------------------------------------------------------------------------------------- counting


def test_quorum_range_and_immediate_changes() -> None:
    counter = QuorumCounter(ProcessSpec("n", ("x",), quorum=2, quorum_max=3))
    assert counter.set_count(1, 0.0) is False  # the first count reports at once
    assert counter.set_count(2, 1.0) is True
    assert counter.set_count(3, 2.0) is None
    assert counter.set_count(4, 3.0) is False  # above quorum_max
    assert counter.set_count(0, 4.0) is None and counter.up is False


def test_fork_and_terminate_delays_suppress_bounces() -> None:
    counter = QuorumCounter(ProcessSpec("n", ("x",), fork_delay=0.5, terminate_delay=2.0))
    assert counter.set_count(1, 0.0) is True
    assert counter.set_count(0, 10.0) is None and counter.next_timer() == 12.0  # terminate_delay
    assert counter.set_count(1, 11.0) is None and counter.next_timer() is None  # back in time: no change
    assert counter.handle_timer(12.0) is None and counter.up is True
    counter.set_count(0, 20.0)
    assert counter.handle_timer(21.9) is None
    assert counter.handle_timer(22.0) is False
    assert counter.set_count(1, 30.0) is None and counter.next_timer() == 30.5  # fork_delay
    assert counter.handle_timer(30.5) is True


def test_tracker_follows_scans_and_events() -> None:
    spec = ProcessSpec("web", ("nginx",), quorum=2)
    tracker = ProcessTracker((spec,))
    nginx = ProcessInfo("nginx", ("nginx", "-g", "daemon off;"))
    assert tracker.load({1: ProcessInfo("init", ("/sbin/init",)), 10: nginx}, 0.0) == [("web", False)]
    assert tracker.fork(10, 11, 1.0) == [("web", True)]  # a worker forked: two nginx processes
    assert tracker.exec(11, ProcessInfo("bash", ("bash",)), 2.0) == [("web", False)]
    assert tracker.exec(12, nginx, 3.0) == [("web", True)] and tracker.count("web") == 2
    assert tracker.exit(10, 4.0) == [("web", False)]
    assert tracker.exit(999, 5.0) == []
    # a reload that keeps the spec keeps its status; a new spec is counted at once
    other = ProcessSpec("shell", ("bash",))
    assert tracker.configure((spec, other), 6.0) == [("shell", True)]
    assert tracker.status("web") is False


def test_priority_arithmetic_is_track_scripts() -> None:
    tracking = InstanceTracking(100, [TrackSpec("process", "up20", 20), TrackSpec("process", "down-30", -30),
                                      TrackSpec("process", "zero", 0), TrackSpec("process", "rev", 10, True)])
    for name in ("up20", "down-30", "zero", "rev"):
        tracking.set_up_down("process", name, True)
    assert tracking.total_priority == 100 + 20 - 10 and not tracking.faults
    tracking.set_up_down("process", "down-30", False)
    tracking.set_up_down("process", "up20", False)
    assert tracking.total_priority == 100 - 30 - 10
    tracking.set_up_down("process", "zero", False)
    assert tracking.faults == {"tracked process zero quorum lost"}


# -------------------------------------------------------------------------------------------- real processes


def test_read_process_and_scan_see_this_process() -> None:
    info = read_process(os.getpid())
    assert info is not None and info.comm and info.argv
    assert "python" in os.path.basename(info.argv[0]) or info.argv[0] == sys.executable
    assert os.getpid() in scan()
    assert read_process(2**22 + 12345) is None


def marker_sleep(marker: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "1000", marker])


async def wait_until(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), LIMIT)


def connector_available() -> bool:
    try:
        open_proc_connector().close()
    except OSError:
        return False
    return True


@pytest.mark.parametrize("use_connector", [
    pytest.param(True, marks=pytest.mark.skipif(not connector_available(), reason="proc connector needs root in "
                                                                                  "the initial network namespace")),
    False,
], ids=["events", "scan"])
def test_watcher_sees_a_real_process_start_and_die(use_connector: bool) -> None:
    marker = f"0.{uuid.uuid4().int % 10**12:012d}"  # sleep sums its arguments: a distinctive, harmless one
    spec = ProcessSpec("marker", ("sleep", "1000", marker), "exact")

    async def scenario() -> list[tuple[str, bool, float]]:
        loop = asyncio.get_running_loop()
        changes: list[tuple[str, bool, float]] = []
        watcher = ProcessWatcher([spec], lambda name, up: changes.append((name, up, loop.time())),
                                 use_connector=use_connector)
        watcher.start()
        assert watcher.event_driven is use_connector
        assert changes == [("marker", False, changes[0][2])]  # the start-up scan: not running
        proc = marker_sleep(marker)
        try:
            await wait_until(lambda: watcher.status("marker") is True)
            started = changes[-1][2]
            killed_at = loop.time()
            proc.kill()
            await wait_until(lambda: watcher.status("marker") is False)
            lost = changes[-1][2] - killed_at
            if use_connector:
                assert lost < 0.1, f"exit noticed after {lost:.3f}s"
            else:
                assert lost <= 1.0 + 0.5, f"exit noticed after {lost:.3f}s"
            assert started <= killed_at
        finally:
            proc.kill()
            proc.wait(5)
            await watcher.stop()
        return changes

    changes = asyncio.run(asyncio.wait_for(scenario(), LIMIT * 3))
    assert [(n, up) for n, up, _ in changes] == [("marker", False), ("marker", True), ("marker", False)]


@pytest.mark.skipif(not connector_available(), reason="proc connector needs root in the initial network namespace")
def test_proc_connector_reports_exec_and_exit_of_a_child() -> None:
    sock = open_proc_connector()
    sock.setblocking(True)
    sock.settimeout(2.0)
    try:
        proc = subprocess.Popen(["sleep", "0"])
        proc.wait(5)
        seen: set[tuple[str, int]] = set()
        while not {("exec", proc.pid), ("exit", proc.pid)} <= seen:
            seen |= {(e.kind, e.pid) for e in decode_proc_events(sock.recv(65536))}
    finally:
        sock.close()
    assert ("exec", proc.pid) in seen and ("exit", proc.pid) in seen


def test_read_process_in_a_fake_proc(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "comm").write_bytes(b"haproxy\n")
    (tmp_path / "42" / "cmdline").write_bytes(b"/usr/sbin/haproxy\0-f\0/etc/h.cfg\0")
    (tmp_path / "43").mkdir()
    (tmp_path / "43" / "comm").write_bytes(b"kthreadd\n")
    (tmp_path / "43" / "cmdline").write_bytes(b"")
    (tmp_path / "self").mkdir()
    table = scan(str(tmp_path))
    assert table == {42: ProcessInfo("haproxy", ("/usr/sbin/haproxy", "-f", "/etc/h.cfg")),
                     43: ProcessInfo("kthreadd", ())}


def test_validator_reports_bad_blocks_and_bad_weights() -> None:
    result = load_text("""
vrrp_track_process web {
    weight 5
}
vrrp_track_process db {
    process postgres
}
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 51
    virtual_ipaddress { 10.0.0.1 }
    track_process {
        db weight 300
    }
}
""")
    errors = sorted(d.message for d in result.diagnostics if d.is_error)
    assert errors == ["(VI_1) track_process db: expected 'weight N [reverse|noreverse]' with N in -254..254, not "
                      "'weight 300'", "vrrp_track_process web has no process"]
