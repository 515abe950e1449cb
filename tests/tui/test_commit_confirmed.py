"""The header's countdown of a pending ``commit confirmed`` (warning colour) and its end on ``confirm``, against
a dry-run engine."""

from __future__ import annotations

import asyncio

import pytest
from _lab import lab, wait_until
from conftest import screen_text

from lvsconsole.tui.app import LvsConsoleApp
from lvsconsole.tui.link import EngineInfo
from lvsconsole.tui.themes import DEFAULT_PALETTE
from lvsconsole.tui.widgets.header import header_text

pytestmark = pytest.mark.tui

SIZE = (200, 48)


def test_the_header_counts_down_a_pending_commit_confirmed() -> None:
    async def main() -> None:
        async with lab() as the_lab:
            app = LvsConsoleApp(the_lab.link, tick=0.2)
            async with app.run_test(size=SIZE):
                await wait_until(lambda: "rev " in screen_text(app), what="the header")
                assert "UNCONFIRMED" not in screen_text(app)
                run = the_lab.link.run
                assert (await run(f"set rs 127.0.0.1:{the_lab.ports['a']} weight 7")).ok
                assert (await run("commit confirmed 120")).ok
                await wait_until(lambda: "UNCONFIRMED: rollback in 1" in screen_text(app), what="the countdown")
                assert (await run("confirm")).ok
                await wait_until(lambda: "UNCONFIRMED" not in screen_text(app), what="the countdown to go")
                assert not app.panel_errors

    asyncio.run(asyncio.wait_for(main(), 60))


def test_the_countdown_is_a_warning_badge() -> None:
    info = EngineInfo(router_id="r", host="h", uptime=1.0, config_file=None, candidate_dirty=False, revision=2,
                      mode="embedded", confirm_deadline=1060.0)
    text = header_text(info, DEFAULT_PALETTE, now=1000.4)
    assert "UNCONFIRMED: rollback in 60s" in text.plain
    assert any(span.style == DEFAULT_PALETTE.badge("warning") for span in text.spans)
