"""Script runs become ScriptRan events (track scripts, MISC_CHECK), and `script test` runs one now."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lvsconsole.check.from_config import build_checks
from lvsconsole.check.misc import MiscChecker
from lvsconsole.config.build import load_text
from lvsconsole.config.model import Script, VrrpScript
from lvsconsole.engine.commands import ScriptTest, parse
from lvsconsole.engine.daemon import running_engine
from lvsconsole.engine.events import ScriptRan, event_from_json, event_to_json
from lvsconsole.engine.scripts import ScriptRunLog
from lvsconsole.scripts.report import ScriptRun
from lvsconsole.vrrp.tracking import ScriptRunner

LIMIT = 15.0


@pytest.fixture
def scripts_dir() -> Iterator[Path]:
    """Under /tmp (sticky: safe), searchable by all, writable by its owner only."""
    path = Path(tempfile.mkdtemp(prefix="lvsconsole-scripts-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def script(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


class Collector:
    """A ScriptReporter that turns runs into events and lets a test await the n-th one."""

    def __init__(self) -> None:
        self.log = ScriptRunLog()
        self.events: list[ScriptRan] = []
        self._changed = asyncio.Event()

    def __call__(self, run: ScriptRun) -> None:
        self.events.append(self.log.event(run))
        self._changed.set()

    async def wait_for(self, count: int) -> list[ScriptRan]:
        async with asyncio.timeout(LIMIT):
            while len(self.events) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.events


# ---------------------------------------------------------------------------------------------- track scripts


def test_a_failing_track_script_reports_its_stderr_then_its_recovery(scripts_dir: Path) -> None:
    flag = scripts_dir / "healthy"
    chk = script(scripts_dir, "chk.sh", f'if [ -e {flag} ]; then echo fine; exit 0; fi\n'
                                         'echo "haproxy is not running" >&2\necho second >&2\nexit 2')
    collector = Collector()

    async def main() -> list[ScriptRan]:
        runner = ScriptRunner([VrrpScript("chk_haproxy", Script((str(chk),)), interval=0.05, timeout=5)],
                              lambda name, ok: None, report=collector)
        runner.start()
        try:
            await collector.wait_for(1)
            flag.write_text("1")
            while not collector.events[-1].ok:
                await collector.wait_for(len(collector.events) + 1)
            return await collector.wait_for(len(collector.events) + 1)
        finally:
            await runner.stop()

    events = asyncio.run(main())
    first = events[0]
    assert (first.script_kind, first.name, first.argv, first.ok, first.exit_status) == (
        "track", "chk_haproxy", (str(chk),), False, 2)
    assert first.stderr == ("haproxy is not running", "second")
    assert first.severity == "warning"
    assert first.text().startswith(f"VRRP_Script(chk_haproxy) {chk} exited with status 2 after ")
    assert first.text().endswith(": haproxy is not running")
    recovered = next(e for e in events if e.ok)
    assert recovered.changed and recovered.severity == "warning" and recovered.stdout == ("fine",)
    steady = events[-1]
    assert steady.ok and not steady.changed and steady.severity == "debug"
    assert event_from_json(event_to_json(first)) == first  # crosses the control socket unchanged


@pytest.mark.skipif(os.geteuid() != 0, reason="a root-run script in a directory owned by another user needs root")
def test_an_unsafe_track_script_is_refused_with_the_reason_and_never_runs(scripts_dir: Path) -> None:
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody'")
    theirs = scripts_dir / "theirs"
    theirs.mkdir()
    os.chown(theirs, nobody.pw_uid, nobody.pw_gid)
    marker = scripts_dir / "ran"
    chk = script(theirs, "chk.sh", f"touch {marker}")
    collector = Collector()

    async def main() -> list[ScriptRan]:
        runner = ScriptRunner([VrrpScript("chk", Script((str(chk),)), interval=60, timeout=5)],
                              lambda name, ok: None, script_user=("root",), script_security=True, report=collector)
        runner.start()
        try:
            return await collector.wait_for(1)
        finally:
            await runner.stop()

    [refused] = asyncio.run(main())
    assert (refused.ok, refused.refused) == (False, "unsafe")
    assert f"{theirs} is writable by its owner nobody" in refused.error
    assert refused.severity == "warning" and "refused: script" in refused.text()
    assert not marker.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="running a script as another user needs root")
def test_a_reload_that_changes_script_user_reaches_running_track_scripts(scripts_dir: Path) -> None:
    """script_user is a global_defs setting: a reload that changes it must reach the next run of a track script
    that keeps running (and keeps its state) across the reload."""
    from lvsconsole.vrrp.service import VrrpService

    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody'")
    chk = script(scripts_dir, "chk.sh", "id -u")
    body = f"""
vrrp_script chk {{
    script "{chk}"
    interval 0.05
}}
vrrp_instance VI_1 {{
    interface lo
    virtual_router_id 51
    priority 100
    advert_int 1
    track_script {{
        chk
    }}
    virtual_ipaddress {{
        192.0.2.188/32
    }}
}}
"""
    as_root = load_text("global_defs {\n    script_user root\n}\n" + body)
    as_nobody = load_text("global_defs {\n    script_user nobody\n    enable_script_security\n}\n" + body)
    assert as_root.ok and as_nobody.ok, (as_root.diagnostics, as_nobody.diagnostics)
    collector = Collector()

    async def main() -> list[ScriptRan]:
        service = VrrpService(as_root.config, dry_run=True, report_scripts=collector)
        await service.start()
        try:
            await collector.wait_for(1)
            await service.reload(as_nobody.config)
            seen = len(collector.events)
            while collector.events[-1].stdout != (str(nobody.pw_uid),):
                assert len(collector.events) <= seen + 2  # the next run (or one already under way) is the new user's
                await collector.wait_for(len(collector.events) + 1)
            return collector.events
        finally:
            await service.stop()

    events = asyncio.run(main())
    assert events[0].ok and events[0].stdout == ("0",)
    assert events[-1].ok  # the same script, still up: its state went through the reload


# ---------------------------------------------------------------------------------------------- MISC_CHECK


def test_a_failing_misc_check_reports_its_first_stderr_line(scripts_dir: Path) -> None:
    misc = script(scripts_dir, "misc.sh", 'echo "backend 503" >&2\nexit 1')
    conf = f"""
virtual_server 127.0.0.1 8080 {{
    delay_loop 5
    protocol TCP
    real_server 127.0.0.2 8080 {{
        MISC_CHECK {{
            misc_path "{misc} --port 8080"
            misc_timeout 5
        }}
    }}
}}
"""
    collector = Collector()
    setup = build_checks(load_text(conf).config, report_scripts=collector)
    [checker] = setup.checkers.values()
    assert isinstance(checker, MiscChecker)
    outcome = asyncio.run(checker.check())
    assert not outcome.ok and outcome.exit_status == 1
    [ran] = collector.events
    assert (ran.script_kind, ran.argv, ran.exit_status, ran.stderr) == (
        "misc", (str(misc), "--port", "8080"), 1, ("backend 503",))
    assert ran.name == "[127.0.0.2]:tcp:8080 in VS [127.0.0.1]:tcp:8080"
    assert ran.severity == "warning" and ran.text().endswith(": backend 503")


# ---------------------------------------------------------------------------------------------- script test


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_script_test_runs_now_and_leaves_the_tracking_alone(scripts_dir: Path) -> None:
    counter = scripts_dir / "runs"
    chk = script(scripts_dir, "chk.sh", f'echo run >> {counter}\necho "up since 3d"\necho "warn: slow" >&2\nexit 0')
    misc = script(scripts_dir, "misc.sh", 'echo "misc said no" >&2\nexit 7')
    port = _free_port()
    conf = scripts_dir / "keepalived.conf"
    conf.write_text(f"""
vrrp_script chk_web {{
    script "{chk}"
    interval 3600
    timeout 5
    weight 10
}}
vrrp_instance VI_S {{
    state BACKUP
    interface lo
    virtual_router_id 79
    priority 100
    advert_int 1
    virtual_ipaddress {{
        192.0.2.79/32
    }}
    track_script {{
        chk_web
    }}
}}
virtual_server 127.0.0.1 {port} {{
    delay_loop 3600
    protocol TCP
    real_server 127.0.0.1 {port} {{
        MISC_CHECK {{
            misc_path "{misc}"
            misc_timeout 5
        }}
    }}
}}
""")

    async def main() -> None:
        async with running_engine(str(conf), dry_run=True, socket_path=None) as engine:
            tracked = engine.bus.subscribe(replay=1000, kinds=[ScriptRan])
            async with asyncio.timeout(LIMIT):
                while True:  # the engine's own first run of chk_web
                    event = await tracked.get()
                    if isinstance(event, ScriptRan) and event.script_kind == "track":
                        break
            priority = engine.director.snapshot().instance("VI_S")
            assert priority is not None
            before = engine.bus.history(kinds=[ScriptRan])

            result = await engine.executor.run("script test chk_web", who="test")
            assert result.ok, result.message
            [run] = result.data["runs"]
            assert (run["kind"], run["name"], run["exit_status"], run["ok"], run["refused"]) == (
                "track", "chk_web", 0, True, None)
            assert run["stdout"] == ["up since 3d"] and run["stderr"] == ["warn: slow"]
            assert run["timeout"] == 5 and run["duration"] > 0
            assert "vrrp_script chk_web: ok: exited with status 0" in result.message
            assert "stderr: warn: slow" in result.message
            assert counter.read_text().count("run") == 2  # it really ran, once more

            # a dry test: no event, no tracking change, no priority change
            assert engine.bus.history(kinds=[ScriptRan]) == before
            after = engine.director.snapshot().instance("VI_S")
            assert after is not None and after.priority == priority.priority

            failed = await engine.executor.run(f"script test misc 127.0.0.1:{port}", who="test")
            assert not failed.ok
            [misc_run] = failed.data["runs"]
            assert (misc_run["kind"], misc_run["exit_status"], misc_run["stderr"]) == ("misc", 7, ["misc said no"])
            assert "FAILED: exited with status 7" in failed.message

            unknown = await engine.executor.run("script test nope", who="test")
            assert not unknown.ok and "no vrrp_script 'nope'" in unknown.message and "chk_web" in unknown.message
            no_misc = await engine.executor.run("script test misc 127.0.0.9", who="test")
            assert not no_misc.ok and "no MISC_CHECK on real server 127.0.0.9" in no_misc.message
            assert "chk_web" in engine.executor.names().scripts

    asyncio.run(main())


def test_script_test_parses() -> None:
    command = parse("script test misc 10.0.0.2:80 in 10.0.0.1:80")
    assert isinstance(command, ScriptTest) and command.name is None
    assert str(command.rs) == "10.0.0.2:80" and str(command.vs) == "10.0.0.1:80"
    named = parse("script test chk_web")
    assert isinstance(named, ScriptTest) and str(named.name) == "chk_web" and named.rs is None
    assert not ScriptTest.MUTATES
