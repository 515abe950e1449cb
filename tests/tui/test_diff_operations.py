"""The diff screen before a commit lists the exact IPVS and address operations the plan causes, with the
connections on what each touches (engine/impact.py through ``diff``), on a dry-run engine."""

from __future__ import annotations

import asyncio

import pytest
from _lab import lab, wait_until

from lvsconsole.tui.app import LvsConsoleApp
from lvsconsole.tui.link import Preview
from lvsconsole.tui.screens.diff import DiffScreen, operations_text

pytestmark = pytest.mark.tui

SIZE = (160, 48)


def test_operations_text_marks_what_touches_live_connections() -> None:
    preview = Preview("commit", ipvs_ops=(
        {"op": "edit dest TCP 10.0.0.100:80 -> 10.0.1.12:80 Masq weight 0", "active": 312,
         "impact": "312 active -> drains first"},
        {"op": "add service TCP 10.0.0.100:443 wlc", "active": 0, "impact": ""}),
        address_ops=({"instance": "VI_1", "action": "remove", "address": "10.0.0.100", "state": "BACKUP",
                      "active": 4},))
    text = operations_text(preview)
    lines = text.plain.splitlines()
    assert lines == ["  edit dest TCP 10.0.0.100:80 -> 10.0.1.12:80 Masq weight 0: 312 active -> drains first",
                     "  add service TCP 10.0.0.100:443 wlc",
                     "  remove VIP 10.0.0.100 on (VI_1) when MASTER (now BACKUP): 4 active connections to it"]
    styled = {text.plain[span.start:span.end]: str(span.style) for span in text.spans}
    assert "yellow" in styled["  edit dest TCP 10.0.0.100:80 -> 10.0.1.12:80 Masq weight 0"]
    assert "  add service TCP 10.0.0.100:443 wlc" not in styled or "yellow" not in styled[
        "  add service TCP 10.0.0.100:443 wlc"]


def test_commit_diff_shows_the_plans_ipvs_operations() -> None:
    async def main() -> None:
        async with lab() as the_lab:
            app = LvsConsoleApp(the_lab.link, tick=0.2)
            async with app.run_test(size=SIZE) as pilot:
                await wait_until(lambda: app.vs_table.row_count == 6, what="the table to fill")
                a = f"127.0.0.1:{the_lab.ports['a']} in 127.0.0.1:{the_lab.ports['web']}"
                assert (await the_lab.link.run(f"set rs {a} weight 5")).ok
                await pilot.press("c")
                await wait_until(lambda: isinstance(app.screen, DiffScreen), what="the diff screen")
                screen = app.screen
                assert isinstance(screen, DiffScreen)
                ops = [op["op"] for op in screen.preview.ipvs_ops]
                assert ops == [f"edit dest TCP 127.0.0.1:{the_lab.ports['web']} -> 127.0.0.1:{the_lab.ports['a']} "
                               "Masq weight 5"]
                shown = str(screen.query_one("#diff-operations").render())
                assert f"127.0.0.1:{the_lab.ports['a']} Masq weight 5" in shown
                await pilot.press("escape")

    asyncio.run(asyncio.wait_for(main(), 60))
