"""Rendering snapshots: the screen as text, compared with tests/tui/snapshots/*.txt.

The scenes are deterministic (a stub link with a fixed table and fixed times, UTC). When a change to the
console's look is intended, regenerate with ``LVS_UPDATE_SNAPSHOTS=1 pytest tests/tui/test_snapshots.py``
and review the diff of the .txt files.
"""

from __future__ import annotations

import asyncio
import difflib
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from _lab import StubLink, virtual_servers, vrrp_instances, wait_until
from conftest import screen_text
from textual.pilot import Pilot

from lvsconsole.engine.events import LogLine, OperatorAction, RealServerStateChanged, VrrpTransition
from lvsconsole.tui.app import LvsConsoleApp
from lvsconsole.tui.link import Preview
from lvsconsole.tui.screens.diff import DiffScreen
from lvsconsole.tui.screens.editor import EditorScreen
from lvsconsole.tui.screens.help import HelpScreen

pytestmark = pytest.mark.tui

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
NOW = 1_800_000_000.0
SIZE = (160, 48)

CANDIDATE = """global_defs {
    router_id LVS_DEVEL
}

virtual_server 192.168.2.188 80 {
    delay_loop 6
    lb_algo wlcc
    lb_kind DR
    protocol TCP
    real_server 192.168.2.187 80 {
        weight 3
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
"""

PREVIEW = Preview("commit", (
    {"kind": "changed", "section": "real_server", "key": "[192.168.2.188]:tcp:80 -> [192.168.2.187]:80",
     "fields": [{"field": "weight", "old": "3", "new": "5"}]},
    {"kind": "removed", "section": "real_server", "key": "[192.168.2.188]:tcp:80 -> [192.168.2.190]:80",
     "fields": []},
    {"kind": "added", "section": "virtual_server", "key": "[192.168.2.188]:tcp:8443", "fields": []},
), ({"file": "<candidate>", "line": 31, "col": 5, "severity": "warning",
     "message": "real_server 192.168.2.192 has no health checker: it is always considered up"},),
    ipvs_ops=({"op": "edit dest TCP 192.168.2.188:80 -> 192.168.2.187:80 Masq weight 5", "active": 12,
               "impact": "12 active: weight 3 -> 5"},
              {"op": "edit dest TCP 192.168.2.188:80 -> 192.168.2.190:80 Masq weight 0", "active": 312,
               "impact": "312 active -> drains first (weight 0 until they end, at most drain_timeout)"},
              {"op": "add service TCP 192.168.2.188:8443 wlc", "active": 0, "impact": ""}),
    address_ops=({"instance": "VI_1", "action": "add", "address": "192.168.2.200", "state": "MASTER", "active": 0},))


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def check(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    text = "\n".join(line.rstrip() for line in text.splitlines()) + "\n"
    if os.environ.get("LVS_UPDATE_SNAPSHOTS") == "1" or not path.exists():
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if os.environ.get("LVS_UPDATE_SNAPSHOTS") != "1":
            pytest.fail(f"{path} did not exist: written; review it and run again")
        return
    expected = path.read_text(encoding="utf-8")
    if text != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True), str(path), "now"))
        pytest.fail(f"the {name} screen changed (LVS_UPDATE_SNAPSHOTS=1 regenerates):\n{diff}")


def stub() -> StubLink:
    link = StubLink(vrrp_instances(NOW), virtual_servers(), now=NOW, candidate_text=CANDIDATE, commit_preview=PREVIEW)
    t = NOW - 60
    for event in (
        LogLine(time=t, message="Director started with 3 VRRP instance(s), 2 virtual server(s)", source="engine"),
        VrrpTransition(time=t + 3, instance="VI_1", old="BACKUP", new="MASTER"),
        VrrpTransition(time=t + 3, instance="VGM", old="BACKUP", new="MASTER", group=True),
        LogLine(time=t + 20, message="TCP connection to [192.168.2.191]:tcp:80 failed.", level="warning"),
        LogLine(time=t + 20, message="Removing service [192.168.2.191]:tcp:80 from VS [192.168.2.188]:tcp:80",
                level="warning", source="check"),
        # the same fact as a structured event: the panels use it, the log does not repeat it
        RealServerStateChanged(time=t + 20, vs="[192.168.2.188]:tcp:80", rs="[192.168.2.191]:tcp:80", old="up",
                               new="down"),
        OperatorAction(time=t + 40, who="uid=0(root) via tui", command="drain 192.168.2.190:80", ok=True,
                       message="drained 192.168.2.190:80 in 192.168.2.188:80: weight 2 -> weight 0"),
    ):
        link.bus.publish(event)
    return link


def scene(body: Callable[[LvsConsoleApp, Pilot[str]], Awaitable[None]]) -> None:
    async def main() -> None:
        app = LvsConsoleApp(stub(), tick=3600)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(lambda: app.vs_table.row_count == 7 and app.vrrp_panel.table.row_count == 4)
            await wait_until(lambda: len(app.health_log.lines()) == 6)
            await pilot.pause()
            await body(app, pilot)

    asyncio.run(main())


def test_main_screen() -> None:
    async def body(app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        check("main", screen_text(app))

    scene(body)


def test_diff_view() -> None:
    async def body(app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        await pilot.press("c")
        await wait_until(lambda: isinstance(app.screen, DiffScreen))
        await pilot.pause()
        check("diff", screen_text(app))

    scene(body)


def test_editor_with_a_diagnostic() -> None:
    async def body(app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        await pilot.press("e")
        await wait_until(lambda: isinstance(app.screen, EditorScreen))
        editor = app.screen
        assert isinstance(editor, EditorScreen)
        editor.area.cursor_blink = False
        await wait_until(lambda: editor.validations >= 1)
        await pilot.pause()
        text = screen_text(app)
        assert "unknown scheduler 'wlcc'" in text
        check("editor", text)

    scene(body)


def test_help_screen() -> None:
    async def body(app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        await pilot.press("question_mark")
        await wait_until(lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause()
        check("help", screen_text(app))

    scene(body)
