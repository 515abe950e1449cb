"""The drain view ('W' on the servers panel): a text snapshot of fixed watches, and a live drain in the dry-run
lab engine (embedded, and over the control socket) whose counts fall while the view is open."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest
from _lab import Lab, StubLink, lab, virtual_servers, vrrp_instances, wait_until
from conftest import screen_text
from test_snapshots import NOW, SIZE, check, utc  # noqa: F401  (utc: the autouse fixture, for fixed clocks)

from lvsconsole.engine.commands import Result
from lvsconsole.engine.showtext import drain_watches
from lvsconsole.tui.app import LvsConsoleApp
from lvsconsole.tui.link import EngineLink, RemoteLink
from lvsconsole.tui.screens.drain import DrainScreen

pytestmark = pytest.mark.tui

WATCHES: list[dict[str, Any]] = [
    {"vs": "[192.168.2.188]:tcp:80", "rs": "[192.168.2.190]:tcp:80", "source": "operator", "started_at": NOW - 14,
     "phase": "draining", "plan": {"until_empty": True, "timeout": 120.0, "then_remove": True}, "started": 1.0,
     "ended": None, "samples": 70, "window_samples": 70, "sample_hz": 5.0, "active": 57, "inactive": 9,
     "persist": 3, "model": "exponential", "rate": 14.2, "eta": 19.6,
     "active_series": [round(200 * 0.982 ** i) for i in range(70)]},
    {"vs": "[192.168.2.188]:tcp:443", "rs": "[192.168.2.187]:tcp:443", "source": "state", "started_at": NOW - 40,
     "phase": "held", "plan": {"until_empty": False, "timeout": None, "then_remove": False}, "started": 2.0,
     "ended": None, "samples": 200, "window_samples": 300, "sample_hz": 5.0, "active": 0, "inactive": 0,
     "persist": 0, "model": "linear", "rate": 0.0, "eta": 0.0, "active_series": [max(0, 30 - i) for i in range(300)]},
    {"vs": "[192.168.2.188]:tcp:80", "rs": "[192.168.2.191]:tcp:80", "source": "operator", "started_at": NOW - 90,
     "phase": "timed-out", "plan": {"until_empty": True, "timeout": 60.0, "then_remove": False}, "started": 3.0,
     "ended": 63.0, "samples": 300, "window_samples": 300, "sample_hz": 5.0, "active": 4, "inactive": 1,
     "persist": 0, "model": None, "rate": None, "eta": None, "active_series": [4] * 300},
]


class DrainStub(StubLink):
    async def run(self, command: str) -> Result:
        if command == "show drain":
            return Result(True, drain_watches(WATCHES), WATCHES)
        return await super().run(command)


def test_drain_view_snapshot() -> None:
    async def main() -> None:
        app = LvsConsoleApp(DrainStub(vrrp_instances(NOW), virtual_servers(), now=NOW), tick=3600)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(lambda: app.vs_table.row_count == 7, what="the table")
            app.vs_table.focus()
            await pilot.press("W")
            await wait_until(lambda: isinstance(app.screen, DrainScreen) and bool(app.screen.rows),
                             what="the drain view")
            await pilot.pause()
            text = screen_text(app)
            assert "1 draining, 2 settled · all empty in about 20s" in text
            assert "draining→maint" in text and "timed-out" in text and "14.2/s exp" in text
            check("drain", text)

    asyncio.run(main())


async def open_view(the_lab: Lab, app: LvsConsoleApp, pilot: Any) -> DrainScreen:
    await wait_until(lambda: app.vs_table.row_count == 6, what="the table to fill")
    app.vs_table.focus()
    await pilot.press("W")
    await wait_until(lambda: isinstance(app.screen, DrainScreen), what="the drain view")
    screen = app.screen
    assert isinstance(screen, DrainScreen)
    return screen


def live(attached: bool) -> None:
    async def main() -> None:
        async with lab() as the_lab:
            link: EngineLink = RemoteLink(the_lab.socket_path) if attached else the_lab.link
            app = LvsConsoleApp(link, tick=0.2)
            async with app.run_test(size=SIZE) as pilot:
                the_lab.set_conns("a", 30, 2)
                result = await the_lab.link.run(f"drain 127.0.0.1:{the_lab.ports['a']} --until-empty then remove")
                assert result.ok, result.message
                screen = await open_view(the_lab, app, pilot)
                rs = the_lab.rs_key("a")
                await wait_until(lambda: any(r["rs"] == rs and r["active"] == 30 for r in screen.rows),
                                 what="the first samples")
                def shown(active: int) -> bool:
                    return any(r["rs"] == rs and r["active"] == active for r in screen.rows)

                for active in (20, 9, 3):
                    the_lab.set_conns("a", active, 2)
                    await wait_until(functools.partial(shown, active), what=f"{active} active on screen")
                await pilot.pause()
                assert "draining→maint" in screen_text(app)
                the_lab.set_conns("a", 0, 0)
                await wait_until(lambda: any(r["rs"] == rs and r["phase"] == "removed" for r in screen.rows),
                                 what="the server removed")
                await pilot.pause()
                assert "removed" in screen_text(app)
                assert the_lab.ports["a"] not in the_lab.weights("web")
                await pilot.press("escape")
                await wait_until(lambda: not isinstance(app.screen, DrainScreen), what="the view to close")
                assert not app.panel_errors

    asyncio.run(asyncio.wait_for(main(), 60))


def test_drain_view_follows_a_live_drain_to_its_removal() -> None:
    live(attached=False)


def test_drain_view_over_the_control_socket() -> None:
    live(attached=True)
