"""The live command screen base classes (tui/screens/live.py) on their own: a tiny table screen and a tiny text
screen over a scripted fetch, in a bare Textual app. Refreshes are driven by calling reload() (the timer is an
hour), except in the test of the timer itself, which waits for the fetch to be called again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from _lab import wait_until
from conftest import screen_text
from rich.console import RenderableType
from rich.text import Text
from textual.app import App
from textual.widgets import Static

from lvsconsole.engine.commands import Result
from lvsconsole.tui.screens.live import LiveTableScreen, LiveTextScreen

pytestmark = pytest.mark.tui

SIZE = (100, 30)
Step = Callable[[], Result]


class Script:
    """A fetch that plays one step per call, then repeats its last step; counts its calls."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.calls = 0
        self.called = asyncio.Event()

    async def __call__(self) -> Result:
        step = self.steps[min(self.calls, len(self.steps) - 1)]
        self.calls += 1
        self.called.set()
        return step()


def unreachable() -> Result:
    raise ConnectionError("control socket closed")


def servers(*counts: int) -> Step:
    rows = [{"name": f"rs{i}", "conns": n} for i, n in enumerate(counts)]
    return lambda: Result(True, f"{len(counts)} servers", rows)


class ServersScreen(LiveTableScreen[list[dict[str, Any]]]):
    ID_PREFIX = "servers"
    HEADING = "Servers, live"
    HINT = "Esc/q closes"
    COLUMNS = ("NAME", "CONNS")

    def __init__(self, script: Script, refresh: float = 3600.0) -> None:
        super().__init__(script, [], refresh=refresh)

    def parse(self, data: object) -> list[dict[str, Any]] | None:
        return data if isinstance(data, list) else None

    def records(self, data: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return data

    def row_key(self, record: dict[str, Any]) -> str:
        return str(record["name"])

    def cells(self, record: dict[str, Any]) -> list[object]:
        return [record["name"], str(record["conns"])]

    def summary(self, data: list[dict[str, Any]]) -> Text:
        return Text(f"{sum(r['conns'] for r in data)} connections")


class NoteScreen(LiveTextScreen):
    ID_PREFIX = "note"
    HEADING = "A note, live"

    def body(self, result: Result) -> RenderableType:
        return Text(f"note: {result.message}")


def error(screen: ServersScreen | NoteScreen) -> str | None:
    """The screen's error, read through a call so that mypy does not carry one assertion's narrowing to the next."""
    return screen.error


def shown(screen: ServersScreen | NoteScreen, part: str) -> Text:
    content = screen.query_one(f"#{screen.part_id(part)}", Static).content
    assert isinstance(content, Text), content
    return content


def table_cells(screen: ServersScreen) -> list[list[object]]:
    return [screen.table.get_row_at(i) for i in range(screen.table.row_count)]


def test_table_screen_shows_the_error_then_the_rows_and_keeps_the_cursor_row() -> None:
    async def main() -> None:
        script = Script(unreachable, servers(5, 7, 9), servers(4, 6, 8), lambda: Result(False, "engine busy"),
                        lambda: Result(True, "not a list", {"rs0": 1}), servers(1, 2))
        screen = ServersScreen(script)
        app: App[None] = App()
        async with app.run_test(size=SIZE) as pilot:
            await app.push_screen(screen)
            await wait_until(lambda: script.calls == 1, what="the first fetch")
            await pilot.pause()
            # the engine cannot be reached: the screen stays, with the reason in red and an empty table
            assert app.screen is screen
            assert error(screen) == "cannot reach the engine: control socket closed"
            assert shown(screen, "summary").plain == error(screen) and shown(screen, "summary").style == "red"
            assert screen.table.row_count == 0
            assert [str(c.label) for c in screen.table.columns.values()] == ["NAME", "CONNS"]
            text = screen_text(app)
            assert "Servers, live" in text and "Esc/q closes" in text and "cannot reach the engine" in text

            await screen.reload()  # the engine is back: the error clears, the rows fill
            assert error(screen) is None
            assert shown(screen, "summary").plain == "21 connections"
            assert table_cells(screen) == [["rs0", "5"], ["rs1", "7"], ["rs2", "9"]]
            screen.table.move_cursor(row=2)

            await screen.reload()  # new figures: the rows are re-filled, the cursor stays on the third row
            assert table_cells(screen) == [["rs0", "4"], ["rs1", "6"], ["rs2", "8"]]
            assert screen.table.cursor_row == 2
            assert shown(screen, "summary").plain == "18 connections"

            await screen.reload()  # a failed command: its message replaces the summary, the last rows stay
            assert error(screen) == "engine busy" and shown(screen, "summary").plain == "engine busy"
            assert table_cells(screen) == [["rs0", "4"], ["rs1", "6"], ["rs2", "8"]]
            assert screen.table.cursor_row == 2

            await screen.reload()  # data of the wrong shape is refused like a failure
            assert error(screen) == "not a list" and screen.data == [{"name": f"rs{i}", "conns": n}
                                                                    for i, n in enumerate((4, 6, 8))]

            await screen.reload()  # fewer rows than the cursor's index: the cursor goes to the last one
            assert error(screen) is None and table_cells(screen) == [["rs0", "1"], ["rs1", "2"]]
            assert screen.table.cursor_row == 1
            await pilot.pause()
            assert "3 connections" in screen_text(app)

            await pilot.press("escape")
            await wait_until(lambda: app.screen is not screen, what="the screen to close")

    asyncio.run(asyncio.wait_for(main(), 30))


def test_the_timer_runs_the_command_again_and_q_closes() -> None:
    async def main() -> None:
        script = Script(servers(1), servers(2), servers(3))
        screen = ServersScreen(script, refresh=0.05)
        app: App[None] = App()
        async with app.run_test(size=SIZE) as pilot:
            await app.push_screen(screen)
            await wait_until(lambda: script.calls >= 3, what="two timed refreshes")
            await wait_until(lambda: table_cells(screen) == [["rs0", "3"]], what="the third result drawn")
            await pilot.press("q")
            await wait_until(lambda: app.screen is not screen and not screen.is_attached, what="the screen removed")
            calls = script.calls
            script.called.clear()
            # a dismissed screen's timer stops with it: no further fetch within several periods
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(script.called.wait(), 0.3)
            assert script.calls == calls

    asyncio.run(asyncio.wait_for(main(), 30))


def test_text_screen_shows_the_error_in_its_body_then_the_text() -> None:
    async def main() -> None:
        script = Script(unreachable, lambda: Result(True, "all quiet"))
        screen = NoteScreen(script, refresh=3600.0)
        app: App[None] = App()
        async with app.run_test(size=SIZE) as pilot:
            await app.push_screen(screen)
            await wait_until(lambda: script.calls == 1, what="the first fetch")
            assert screen.result is not None and not screen.result.ok
            body = shown(screen, "text")
            assert body.plain == "cannot reach the engine: control socket closed" and body.style == "red"
            await screen.reload()
            assert error(screen) is None and shown(screen, "text").plain == "note: all quiet"
            await pilot.pause()
            text = screen_text(app)
            assert "A note, live" in text and "note: all quiet" in text and "refreshed every second" in text

    asyncio.run(asyncio.wait_for(main(), 30))
