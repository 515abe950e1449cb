"""The console's guarded drain: the confirmation shows the blast radius, and a drain that leaves a virtual
server without a healthy server asks a second time, then goes to the engine with --force."""

from __future__ import annotations

import asyncio

import pytest
from _lab import Lab, lab, wait_until
from rich.text import Text
from textual.pilot import Pilot

from lvsconsole.tui.app import LvsConsoleApp
from lvsconsole.tui.screens.confirm import ConfirmScreen

pytestmark = pytest.mark.tui

SIZE = (160, 48)


def drive_on_api_server(answers: tuple[str, str]) -> tuple[int, list[str]]:
    """Drain c, the only real server of the api virtual server, answering the two questions; returns c's weight
    in the memory backend afterwards and the commands the console ran."""
    outcome: list[int] = []

    async def main() -> None:
        async with lab() as the_lab:
            app = LvsConsoleApp(the_lab.link, tick=0.2)
            async with app.run_test(size=SIZE) as pilot:
                await wait_until(lambda: app.vs_table.row_count == 6, what="the table to fill")
                await scenario(the_lab, app, pilot)
                outcome.append(the_lab.weights("api").get(the_lab.ports["c"], -1))
                commands.extend(r[0] for r in app.results)

    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        assert app.vs_table.select(the_lab.vs_key("api"), the_lab.rs_key("c"))
        app.vs_table.focus()
        await wait_until(lambda: app.vs_table.selected_pair()[1].health == "up",  # type: ignore[union-attr]
                         what="c to be healthy")
        await pilot.press("d")
        await wait_until(lambda: isinstance(app.screen, ConfirmScreen), what="the first confirmation")
        first = app.screen
        assert isinstance(first, ConfirmScreen) and isinstance(first.body, Text)
        assert f"VS 127.0.0.1:{the_lab.ports['api']}: healthy 1 -> 0, weight 1 -> 0" in first.body.plain
        await pilot.press(answers[0])
        if answers[0] != "y":
            await wait_until(lambda: not isinstance(app.screen, ConfirmScreen), what="the dialog to close")
            return
        await wait_until(lambda: isinstance(app.screen, ConfirmScreen) and app.screen is not first,
                         what="the second confirmation")
        second = app.screen
        assert isinstance(second, ConfirmScreen) and isinstance(second.body, Text)
        assert second.title_text.startswith("Really drain")
        assert f"leaves VS 127.0.0.1:{the_lab.ports['api']} with 0 healthy servers" in second.body.plain
        await pilot.press(answers[1])
        if answers[1] == "y":
            await wait_until(lambda: the_lab.weights("api").get(the_lab.ports["c"]) == 0, what="c drained")
        else:
            await wait_until(lambda: not isinstance(app.screen, ConfirmScreen), what="the dialog to close")
        await pilot.pause()

    commands: list[str] = []
    asyncio.run(main())
    return outcome[0], commands


def test_a_dangerous_drain_asks_twice_then_forces() -> None:
    weight, commands = drive_on_api_server(("y", "y"))
    assert weight == 0
    assert any(c.startswith("drain 127.0.0.1:") and c.endswith("--force") for c in commands)


def test_declining_the_second_confirmation_changes_nothing() -> None:
    weight, commands = drive_on_api_server(("y", "n"))
    assert weight == 1
    assert not [c for c in commands if c.startswith("drain")]
