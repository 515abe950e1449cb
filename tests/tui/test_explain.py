"""The election detail view (Enter on a VRRP row) and the timer-health figure in the header, against a dry-run
engine with one VRRP instance on the loopback interface."""

from __future__ import annotations

import asyncio

import pytest
from _lab import lab, wait_until
from conftest import screen_text

from lvsconsole.tui.app import LvsConsoleApp
from lvsconsole.tui.link import EngineInfo
from lvsconsole.tui.screens.explain import ExplainScreen
from lvsconsole.tui.themes import DEFAULT_PALETTE
from lvsconsole.tui.widgets.header import header_text

pytestmark = pytest.mark.tui

SIZE = (160, 48)
CONFIG = """
global_defs {
    router_id LAB_VRRP
}

vrrp_instance VI_TUI {
    interface lo
    virtual_router_id 91
    priority 150
    advert_int 1
    nopreempt
    virtual_ipaddress {
        192.0.2.91/32
    }
}
"""


def test_enter_on_a_vrrp_row_explains_the_election_and_escape_closes() -> None:
    async def main() -> None:
        async with lab(text=CONFIG) as the_lab:
            app = LvsConsoleApp(the_lab.link, tick=0.2)
            async with app.run_test(size=SIZE) as pilot:
                table = app.vrrp_panel.table
                await wait_until(lambda: table.row_count == 1, what="the VRRP row")
                # the header carries the engine's loop lag once the first snapshot is in
                await wait_until(lambda: "lag " in screen_text(app), what="the lag figure in the header")
                await pilot.press("1")  # focus the VRRP panel
                await pilot.press("enter")
                await wait_until(lambda: isinstance(app.screen, ExplainScreen) and bool(app.screen.text),
                                 what="the explain screen")
                screen = app.screen
                assert isinstance(screen, ExplainScreen) and screen.ok and screen.instance == "VI_TUI"
                await pilot.pause()
                text = screen_text(app)
                assert "Election of VI_TUI" in text
                assert "(VI_TUI) BACKUP, master: none known" in text or "(VI_TUI) MASTER, master: us" in text
                assert "our priority 150 = base 150" in text
                assert "election now: we win" in text
                await pilot.press("escape")
                await wait_until(lambda: not isinstance(app.screen, ExplainScreen), what="the screen to close")
                assert not app.panel_errors

    asyncio.run(asyncio.wait_for(main(), 60))


def test_header_shows_lag_and_warns_over_the_limit() -> None:
    base = EngineInfo(router_id="r", host="h", uptime=1.0, config_file=None, candidate_dirty=False, revision=1,
                      mode="embedded")
    calm = header_text(EngineInfo(**{**base.__dict__, "loop_lag_ms": 3.2, "loop_lag_limit_ms": 109.4}),
                       DEFAULT_PALETTE)
    assert "lag 3 ms" in calm.plain
    warning = DEFAULT_PALETTE.badge("warning")
    assert all(span.style != warning for span in calm.spans)
    hot = header_text(EngineInfo(**{**base.__dict__, "loop_lag_ms": 300.0, "loop_lag_limit_ms": 109.4}),
                      DEFAULT_PALETTE)
    assert "lag 300 ms > 109 ms" in hot.plain
    assert any(span.style == warning for span in hot.spans)
    assert "lag" not in header_text(base, DEFAULT_PALETTE).plain  # an engine without the figure: nothing shown
