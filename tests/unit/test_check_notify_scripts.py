"""Checker notify_up / notify_down and quorum_up / quorum_down scripts go through the script machinery
(lvsconsole.scripts: vetted, run, reported): a refused one says why, a run is reported with its exit,
duration and output, and the director turns each into a ScriptRan event for the health log."""

from __future__ import annotations

import asyncio
import os
import textwrap
from pathlib import Path

from _checkutil import LIMIT, free_port, run

from lvsconsole.check.from_config import build_checks
from lvsconsole.check.service import CheckService
from lvsconsole.config.build import load_text
from lvsconsole.config.model import Config
from lvsconsole.scripts.report import ScriptRun


def config(text: str) -> Config:
    result = load_text(textwrap.dedent(text))
    errors = [str(d) for d in result.diagnostics if d.is_error]
    assert not errors, errors
    return result.config


def down_server_conf(port: int, *, rs_extra: str = "", vs_extra: str = "", top: str = "") -> Config:
    """One virtual server whose only real server listens nowhere: it goes down on its first check."""
    return config(f"""
        {top}
        virtual_server 10.1.1.1 80 {{
            delay_loop 0.1
            warmup 0
            protocol TCP
            {vs_extra}
            real_server 127.0.0.1 {port} {{
                {rs_extra}
                TCP_CHECK {{
                    connect_timeout 1
                    retry 0
                }}
            }}
        }}
    """)


async def reported_runs(cfg: Config, count: int) -> list[ScriptRun]:
    """Run the checks of ``cfg`` until ``count`` scripts have been reported."""
    runs: list[ScriptRun] = []
    enough = asyncio.Event()

    def report(ran: ScriptRun) -> None:
        runs.append(ran)
        if len(runs) >= count:
            enough.set()

    service = CheckService(cfg, None, bootstrap_delay=0, setup=build_checks(cfg, report_scripts=report))
    await service.start()
    try:
        async with asyncio.timeout(LIMIT):
            await enough.wait()
    finally:
        await service.stop(shutdown=False)
    return runs


def test_a_refused_notify_down_says_why(tmp_path: Path) -> None:
    script = tmp_path / "down.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)  # not executable by anyone
    port = free_port()
    cfg = down_server_conf(port, rs_extra=f'notify_down "{script} went-down"')

    (ran,) = run(reported_runs(cfg, 1))
    assert ran.kind == "notify"
    assert ran.name == f"notify_down of [127.0.0.1]:tcp:{port} in VS [10.1.1.1]:tcp:80"
    assert ran.refusal is not None and ran.refusal.code == "not-executable"
    assert f"script {script} is not executable" in ran.refusal.reason
    assert not ran.ok and ran.result.exit_status is None


def test_notify_and_quorum_scripts_are_reported_with_exit_duration_and_output(tmp_path: Path) -> None:
    script = tmp_path / "say.sh"
    script.write_text('#!/bin/sh\necho "ran $1"\necho "to stderr" >&2\nexit 3\n')
    script.chmod(0o755)
    port = free_port()
    cfg = down_server_conf(port, rs_extra=f'notify_down "{script} rs"', vs_extra=f'quorum_down "{script} quorum"')

    runs = run(reported_runs(cfg, 2))
    by_name = {r.name: r for r in runs}
    rs_run = by_name[f"notify_down of [127.0.0.1]:tcp:{port} in VS [10.1.1.1]:tcp:80"]
    quorum_run = by_name["quorum_down of VS [10.1.1.1]:tcp:80"]
    for ran, word in ((rs_run, "rs"), (quorum_run, "quorum")):
        assert ran.refusal is None
        assert ran.argv == (str(script), word)
        assert ran.result.exit_status == 3 and not ran.ok
        assert ran.result.stdout == (f"ran {word}",) and ran.result.stderr == ("to stderr",)
        assert 0 < ran.result.duration < LIMIT


def test_script_security_refuses_a_notify_script_made_unsafe_after_the_config_was_loaded(tmp_path: Path) -> None:
    if os.geteuid() != 0:  # as another user the director runs scripts as itself, and nothing is unsafe
        return
    shared = tmp_path / "shared"
    shared.mkdir()
    script = shared / "up.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    port = free_port()
    cfg = down_server_conf(  # safe when the config is validated ...
        port,
        rs_extra=f'notify_down "{script}"',
        top="global_defs {\n    enable_script_security\n    script_user root\n}",
    )
    shared.chmod(0o777)  # ... and no longer when it runs: writable by anyone, and not sticky

    (ran,) = run(reported_runs(cfg, 1))
    assert ran.refusal is not None and ran.refusal.code == "unsafe"
    assert str(shared) in ran.refusal.reason


def test_the_director_logs_a_checker_script_run_as_a_script_event(tmp_path: Path) -> None:
    from lvsconsole.engine.bus import EventBus
    from lvsconsole.engine.director import Director
    from lvsconsole.engine.events import ScriptRan
    from lvsconsole.ipvs.memory import MemoryBackend

    script = tmp_path / "down.sh"
    script.write_text("#!/bin/sh\necho down\n")
    script.chmod(0o755)
    port = free_port()
    cfg = down_server_conf(port, rs_extra=f'notify_down "{script}"')

    async def main() -> ScriptRan:
        bus = EventBus()
        director = Director(cfg, backend=MemoryBackend(), bus=bus, dry_run=True)
        with bus.subscribe(kinds=[ScriptRan]) as scripts:
            await director.start()
            try:
                async with asyncio.timeout(LIMIT):
                    while True:
                        event = await scripts.get()
                        if isinstance(event, ScriptRan):
                            return event
            finally:
                await director.stop()

    event = run(main())
    assert event.script_kind == "notify"
    assert event.name == f"notify_down of [127.0.0.1]:tcp:{port} in VS [10.1.1.1]:tcp:80"
    assert event.ok and event.exit_status == 0 and event.stdout == ("down",)
    assert f"{script} exited with status 0 after" in event.text()
