"""The servers table's order and cells as the tick refreshes them (tui/widgets/vs_table.py): a live order is
re-sorted by the tick every ``RESORT_EVERY`` seconds, and cells re-rendered from a template after the rows moved
are what DataTable renders for them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from _lab import Lab, lab, wait_until
from textual.pilot import Pilot
from textual.widgets import DataTable

from lvsconsole.tui.app import LvsConsoleApp
from lvsconsole.tui.widgets import vs_table

pytestmark = pytest.mark.tui

SIZE = (160, 48)
Scenario = Callable[[Lab, LvsConsoleApp, Pilot[str]], Awaitable[None]]


def drive(scenario: Scenario) -> None:
    async def main() -> None:
        async with lab() as the_lab:
            app = LvsConsoleApp(the_lab.link, tick=0.2)
            async with app.run_test(size=SIZE) as pilot:
                await wait_until(lambda: app.vs_table.row_count == 6, what="the table to fill")
                await scenario(the_lab, app, pilot)

    asyncio.run(main())


def web_order(the_lab: Lab, app: LvsConsoleApp) -> list[str]:
    """The web virtual server's real servers (port names) as the table shows them."""
    names = {the_lab.rs_key(name): name for name in ("a", "b", "dead")}
    return [names[ref.rs] for ref in app.vs_table.visible_refs()
            if ref.vs == the_lab.vs_key("web") and ref.rs in names]


async def ticks(app: LvsConsoleApp, count: int) -> None:
    """Wait until the console has refreshed ``count`` more times."""
    target = app.ticks + count
    await wait_until(lambda: app.ticks >= target, what=f"{count} refreshes")


def test_a_live_order_is_re_sorted_by_the_tick_once_it_is_older_than_resort_every() -> None:
    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        table = app.vs_table
        the_lab.set_conns("a", active=10)
        await wait_until(lambda: (table.snapshot is not None
                                  and sum(vs.active_conns for vs in table.snapshot.virtual_servers) == 10),
                         what="a's connections")
        table.set_sort("active")  # the operator's sort orders at once
        assert web_order(the_lab, app)[0] == "a"
        the_lab.set_conns("b", active=50)
        await wait_until(lambda: (table.snapshot is not None
                                  and sum(vs.active_conns for vs in table.snapshot.virtual_servers) == 60),
                         what="b's connections")
        table.sorted_at = time.monotonic()  # just sorted: the ticks keep the order, with the new figures
        await ticks(app, 3)
        assert web_order(the_lab, app)[0] == "a"
        assert " s ago)" in str(app.vs_panel.border_subtitle)
        table.sorted_at -= vs_table.RESORT_EVERY  # old enough: the next tick re-sorts
        await ticks(app, 2)
        await pilot.pause()
        assert web_order(the_lab, app)[0] == "b"
        assert time.monotonic() - table.sorted_at < vs_table.RESORT_EVERY

    drive(scenario)


def test_cells_re_rendered_from_templates_after_a_sort_are_what_data_table_renders() -> None:
    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        table = app.vs_table
        the_lab.set_conns("b", active=50, bps=12_345)
        await wait_until(lambda: (table.snapshot is not None
                                  and sum(vs.active_conns for vs in table.snapshot.virtual_servers) == 50),
                         what="b's connections")
        for key in ("active", "name", "bps", "name"):  # rows move, cells are drawn at new places
            table.set_sort(key)
            await pilot.pause(0.3)
        assert len(table._templates) > 0  # the comparison below covers template fills, not only Rich
        style = table.rich_style
        checked = 0
        for row in range(table.row_count):
            for column, column_object in enumerate(table.ordered_columns):
                width = column_object.get_render_width(table)
                cursor = row == table.cursor_row
                ours = table._render_cell(row, column, style, width, cursor)
                table._cell_render_cache.clear()
                theirs = DataTable._render_cell(table, row, column, style, width, cursor)
                assert ours == theirs, (row, column)
                assert all(segment.style is not None and segment.style.meta.get("row") == row
                           for line in ours for segment in line)  # a click lands on this row
                checked += 1
        assert checked == 6 * len(vs_table.COLUMNS)

    drive(scenario)
