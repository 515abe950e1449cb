"""The health-check flight recorder screen, opened from the virtual-server table, embedded and attached."""

from __future__ import annotations

import asyncio

import pytest
from _lab import Lab, lab, wait_until
from conftest import screen_text
from textual.pilot import Pilot

from lvsconsole.tui.app import LvsConsoleApp
from lvsconsole.tui.link import EngineLink, RemoteLink
from lvsconsole.tui.screens.checks import ChecksScreen

pytestmark = pytest.mark.tui

SIZE = (160, 48)


async def open_checks(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str], port: str) -> ChecksScreen:
    await wait_until(lambda: app.vs_table.row_count == 6, what="the table to fill")
    assert app.vs_table.select(the_lab.vs_key(), the_lab.rs_key(port))
    app.vs_table.focus()
    await pilot.press("h")
    await wait_until(lambda: isinstance(app.screen, ChecksScreen) and app.screen.result is not None,
                     what="the flight recorder")
    screen = app.screen
    assert isinstance(screen, ChecksScreen)
    await pilot.pause()
    return screen


def drive(port: str, attached: bool, expect: tuple[str, ...], check_ok: bool) -> None:
    async def main() -> None:
        async with lab() as the_lab:
            link: EngineLink = RemoteLink(the_lab.socket_path) if attached else the_lab.link
            app = LvsConsoleApp(link, tick=0.2)
            async with app.run_test(size=SIZE) as pilot:
                screen = await open_checks(the_lab, app, pilot, port)
                assert screen.result is not None and screen.result.ok, screen.result
                assert f"127.0.0.1:{the_lab.ports[port]}" in screen.title_text
                # the probe rows arrive with a refresh after the summary: wait for every expected word
                await wait_until(lambda: "flap score" in screen_text(app)
                                 and all(word in screen_text(app) for word in expect), what="the recorder's rows")
                text = screen_text(app)
                assert "TCP_CHECK #0" in text and "latency p50" in text
                for word in expect:
                    assert word in text, word
                await pilot.press("n")
                await wait_until(lambda: screen.last_check is not None, what="check now")
                assert screen.last_check is not None and screen.last_check.ok is check_ok, screen.last_check
                await pilot.pause()
                status = screen_text(app)
                assert ("ok in" in status) if check_ok else ("FAILED" in status and "refused" in status)
                await pilot.press("escape")
                await wait_until(lambda: not isinstance(app.screen, ChecksScreen), what="the screen to close")
                assert not app.panel_errors

    asyncio.run(asyncio.wait_for(main(), 60))


def test_flight_recorder_of_a_live_server_and_check_now() -> None:
    drive("a", attached=False, expect=("ok",), check_ok=True)


def test_flight_recorder_of_a_dead_server_shows_the_refusals() -> None:
    drive("dead", attached=False, expect=("FAIL", "refused", "connection refused", "×"), check_ok=False)


def test_flight_recorder_over_the_control_socket() -> None:
    drive("dead", attached=True, expect=("refused",), check_ok=False)
