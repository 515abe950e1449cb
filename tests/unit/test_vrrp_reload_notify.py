"""Notifications for an instance a reload deletes: keepalived's clear_diff_vrrp sends FAULT, or DELETED (and the
notify_deleted script) when the instance has ``notify_deleted``. Real scripts, a real Director (dry run on lo)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lvsconsole.config import model as m
from lvsconsole.config.build import load_text
from lvsconsole.config.diff import diff
from lvsconsole.engine.bus import EventBus
from lvsconsole.engine.director import Director
from lvsconsole.engine.notify import Notifier, deleted_script
from lvsconsole.ipvs.memory import MemoryBackend

LIMIT = 20.0

INSTANCE = """
vrrp_instance {name} {{
    interface lo
    virtual_router_id {vrid}
    priority 100
    version 3
    advert_int 0.05
    garp_master_repeat 1
    virtual_ipaddress {{ {vip} }}
    notify_fault "{rec} fault {name}"
    notify_stop "{rec} stop {name}"
    notify "{rec} notify"
{extra}
}}
"""


def recorder(tmp_path: Path) -> tuple[Path, Path]:
    """A script that appends its arguments, each in brackets, as one line to log.txt."""
    log = tmp_path / "log.txt"
    script = tmp_path / "rec.sh"
    script.write_text(f"""#!/bin/sh
line=""
for a in "$@"; do line="$line[$a]"; done
printf '%s\\n' "$line" >> '{log}'
""")
    script.chmod(0o755)
    return script, log


def config(rec: Path, names: list[str], extra: str = "") -> m.Config:
    text = "".join(INSTANCE.format(name=n, vrid=60 + i, vip=f"192.0.2.{60 + i}/32", rec=rec, extra=extra)
                   for i, n in enumerate(names))
    result = load_text(text)
    assert result.ok, result.diagnostics
    return result.config


def lines(log: Path) -> list[str]:
    return sorted(log.read_text().splitlines()) if log.exists() else []


async def wait_until(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), LIMIT)


def run(coro: Any) -> Any:
    async def bounded() -> Any:
        async with asyncio.timeout(LIMIT * 2):
            return await coro

    return asyncio.run(bounded())


def test_deleted_script_reads_the_keyword() -> None:
    text = INSTANCE.format(name="VI_1", vrid=60, vip="192.0.2.60/32", rec="/bin/true",
                           extra='    notify_deleted "/usr/bin/logger gone now" nobody')
    inst = load_text(text).config.instances[0]
    script = deleted_script(inst)
    assert script is not None and script.argv == ("/usr/bin/logger", "gone", "now") and script.user == "nobody"
    bare = load_text(INSTANCE.format(name="VI_1", vrid=60, vip="192.0.2.60/32", rec="/bin/true",
                                     extra="    notify_deleted")).config.instances[0]
    assert deleted_script(bare) == m.Script(())
    plain = load_text(INSTANCE.format(name="VI_1", vrid=60, vip="192.0.2.60/32", rec="/bin/true",
                                      extra="")).config.instances[0]
    assert deleted_script(plain) is None


def test_removed_instance_gets_fault_by_default(tmp_path: Path) -> None:
    rec, log = recorder(tmp_path)

    async def scenario() -> None:
        before = config(rec, ["VI_1", "VI_2"])
        after = config(rec, ["VI_1"])
        director = Director(before, backend=MemoryBackend(), bus=EventBus(), dry_run=True)
        await director.start()
        try:
            assert director.vrrp is not None
            vrrp = director.vrrp
            await wait_until(lambda: {s.state for s in vrrp.snapshot()} == {"MASTER"})
            await director.notifier.wait_idle()
            log.unlink(missing_ok=True)
            await director.apply_config(after, diff(before, after))
            assert set(vrrp.instances) == {"VI_1"}
            await director.notifier.wait_idle()
            # VI_1 kept running untouched; VI_2 got FAULT through its own script and the generic one
            assert lines(log) == sorted(["[fault][VI_2]", "[notify][INSTANCE][VI_2][FAULT][100]"])
        finally:
            await director.stop()

    run(scenario())


def test_removed_instance_with_notify_deleted_gets_deleted(tmp_path: Path) -> None:
    rec, log = recorder(tmp_path)

    async def scenario() -> None:
        before = config(rec, ["VI_1", "VI_2"], extra=f'    notify_deleted "{rec} deleted"')
        after = config(rec, ["VI_1"], extra=f'    notify_deleted "{rec} deleted"')
        director = Director(before, backend=MemoryBackend(), bus=EventBus(), dry_run=True)
        await director.start()
        try:
            assert director.vrrp is not None
            vrrp = director.vrrp
            await wait_until(lambda: {s.state for s in vrrp.snapshot()} == {"MASTER"})
            await director.notifier.wait_idle()
            log.unlink(missing_ok=True)
            await director.apply_config(after, diff(before, after))
            await director.notifier.wait_idle()
            assert lines(log) == sorted(["[deleted]", "[notify][INSTANCE][VI_2][DELETED][100]"])
        finally:
            await director.stop()

    run(scenario())


def test_notify_removed_without_a_deleted_script_runs_only_the_generic_one(tmp_path: Path) -> None:
    rec, log = recorder(tmp_path)

    async def scenario() -> None:
        conf = config(rec, ["VI_1"], extra="    notify_deleted")
        notifier = Notifier(conf, EventBus())
        notifier.notify_removed(conf.instances[0], 90)
        await notifier.wait_idle()
        assert lines(log) == ["[notify][INSTANCE][VI_1][DELETED][90]"]

    run(scenario())
