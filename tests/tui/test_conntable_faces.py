"""The connection-table commands in the console: typed at the prompt they render like other show commands; the
header carries the connection-sync coverage when the engine measures it."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from _lab import lab, wait_until
from conftest import screen_text

from lvsconsole.ipvs.conntable import Connection
from lvsconsole.tui.app import LvsConsoleApp
from lvsconsole.tui.link import EngineInfo, coverage_label
from lvsconsole.tui.screens.output import OutputScreen
from lvsconsole.tui.themes import DEFAULT_PALETTE
from lvsconsole.tui.widgets.header import header_text

pytestmark = pytest.mark.tui

V4 = ipaddress.IPv4Address


def test_show_conns_and_trace_at_the_prompt() -> None:
    async def main() -> None:
        async with lab() as the_lab:
            api, c = the_lab.ports["api"], the_lab.ports["c"]
            the_lab.backend.set_connections([
                Connection("TCP", V4("198.51.100.7"), 40001, V4("127.0.0.1"), api, V4("127.0.0.1"), c,
                           "ESTABLISHED", 899),
                Connection("TCP", V4("198.51.100.7"), 0, V4("127.0.0.1"), api, V4("127.0.0.1"), c, "NONE", 299),
            ])
            app = LvsConsoleApp(the_lab.link, tick=0.2)  # type: ignore[arg-type]
            async with app.run_test(size=(160, 48)) as pilot:
                await wait_until(lambda: app.vs_table.row_count == 6, what="the table to fill")
                for command, expected in ((f"show conns vs 127.0.0.1:{api}", "198.51.100.7:40001"),
                                          (f"trace 198.51.100.7:5000 to 127.0.0.1:{api}", "persistence template")):
                    await pilot.press("colon")
                    await wait_until(lambda: app.prompt.display and app.focused is app.prompt.input,
                                     what="the prompt")
                    app.prompt.input.value = command
                    app.prompt.input.cursor_position = len(command)
                    await pilot.press("enter")
                    await wait_until(lambda c=command: bool(app.results) and app.results[-1][0] == c,
                                     what=f"{command} to run")
                    assert app.results[-1][1].ok, app.results[-1][1].message
                    await pilot.pause()
                    await wait_until(lambda: isinstance(app.screen, OutputScreen), what="the output screen")
                    await wait_until(lambda e=expected: e in screen_text(app), what=f"{expected!r} on screen")
                    await pilot.press("escape")

    asyncio.run(asyncio.wait_for(main(), 60))


def test_header_shows_sync_coverage() -> None:
    assert coverage_label({}) is None
    assert coverage_label({"sync_coverage": {"percent": 66.7, "error": None, "measured_at": 1.0}}) == "sync 67%"
    assert coverage_label({"sync_coverage": {"percent": None, "error": "refused", "measured_at": 1.0}}) == (
        "sync ? (peer unreachable)")
    assert coverage_label({"sync_coverage": {"percent": None, "error": None, "measured_at": 1.0}}) == "sync -"
    base = EngineInfo(router_id="r", host="h", uptime=1.0, config_file=None, candidate_dirty=False, revision=1,
                      mode="embedded")
    assert "sync" not in header_text(base, DEFAULT_PALETTE).plain
    warning = DEFAULT_PALETTE.style("warning", bold=True)

    def style_of(label: str) -> object:
        text = header_text(EngineInfo(**{**base.__dict__, "sync_coverage": label}), DEFAULT_PALETTE)
        start = text.plain.index(label)
        return next(span.style for span in text.spans if span.start == start)

    assert style_of("sync 67%") == warning
    assert style_of("sync ? (peer unreachable)") == warning
    assert style_of("sync 100%") != warning
