"""The servers table's order and lines as the tick refreshes them (tui/widgets/vs_table.py): a live order is
re-sorted by the tick every ``RESORT_EVERY`` seconds, the lines on screen are the rows' cells in the table's
order with the cursor on its server, only the rows on screen are drawn, and the mouse sorts and selects."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from _lab import Lab, StubLink, ip, lab, wait_until
from textual.pilot import Pilot

from lvsconsole.engine.director_api import RealServerView, VirtualServerView
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


def line_text(app: LvsConsoleApp, y: int) -> str:
    """What the servers table shows on its line ``y`` (0: the header)."""
    return app.vs_table.render_line(y).text


def test_the_lines_on_screen_are_the_rows_cells_in_the_table_order_with_the_cursor_on_its_server() -> None:
    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        table = app.vs_table
        the_lab.set_conns("b", active=50, bps=12_345)
        await wait_until(lambda: (table.snapshot is not None
                                  and sum(vs.active_conns for vs in table.snapshot.virtual_servers) == 50),
                         what="b's connections")
        web, b = the_lab.vs_key("web"), the_lab.rs_key("b")
        assert table.select(web, b)
        for key in ("active", "name", "bps", "name"):  # rows move under the cursor, which follows b
            table.set_sort(key)
            await pilot.pause(0.3)
            refs = table.visible_refs()
            assert refs[table.cursor_row].rs == b
            assert "ACTIVE↓" in line_text(app, 0) if key == "active" else "ACTIVE↓" not in line_text(app, 0)
            for row, ref in enumerate(refs):
                text = line_text(app, row + 1)
                for column in ("name", "health", "active", "bps"):
                    assert table.cell(ref.key, column).plain.strip() in text, (row, column, text)
            cursor = table.render_line(table.cursor_row + 1)
            others = [table.render_line(row + 1) for row in range(len(refs)) if row != table.cursor_row]
            cursor_bg = {segment.style.bgcolor for segment in cursor if segment.style and segment.text.strip()}
            assert len(cursor_bg) == 1  # one colour under the whole cursor line
            assert all(cursor_bg.isdisjoint({segment.style.bgcolor for segment in line if segment.style})
                       for line in others)
        assert line_text(app, len(table.visible_refs()) + 1).strip() == ""  # below the last row

    drive(scenario)


def test_a_click_on_a_header_sorts_by_its_column_and_on_a_row_moves_the_cursor() -> None:
    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        table = app.vs_table
        x = sum(column.width + 2 for column in vs_table.COLUMNS[:5]) + 2  # in the ACTIVE column
        await pilot.click("#vs-table", offset=(x, 0))
        assert table.sort_key == "active"
        await pilot.click("#vs-table", offset=(x, 0))
        assert (table.sort_key, table.reverse) == ("active", True)
        await pilot.click("#vs-table", offset=(3, 4))
        assert table.cursor_row == 3

    drive(scenario)


def many_servers(n_vs: int, n_rs: int) -> tuple[VirtualServerView, ...]:
    out = []
    for v in range(n_vs):
        a, b = divmod(v, 250)
        rss = tuple(RealServerView(key=f"[10.{100 + a}.{b}.{r + 2}]:tcp:80", address=ip(f"10.{100 + a}.{b}.{r + 2}"),
                                   port=80, forward="DR", weight=r + 1, config_weight=r + 1, health="up",
                                   active_conns=v + r, inactive_conns=0, cps=0, bps=0) for r in range(n_rs))
        out.append(VirtualServerView(key=f"[10.{a}.{b}.1]:tcp:80", address=ip(f"10.{a}.{b}.1"), port=80,
                                     protocol="TCP", fwmark=None, group=None, scheduler="wrr",
                                     persistence_timeout=None, quorum_up=True, real_servers=rss, cps=0, bps=0))
    return tuple(out)


def test_thousands_of_rows_only_the_rows_on_screen_are_drawn_and_the_keys_move_through_all_of_them() -> None:
    async def main() -> None:
        servers = many_servers(2000, 4)
        app = LvsConsoleApp(StubLink(virtual_servers=servers), tick=0.2)
        async with app.run_test(size=SIZE) as pilot:
            table = app.vs_table
            await wait_until(lambda: table.row_count == 10_000, what="the table to fill")
            table.focus()
            await pilot.pause()
            on_screen = table.scrollable_content_region.height - 1
            assert 0 < len(table._lines) <= on_screen  # one line made per row on screen, none for the others
            await pilot.press("end")
            await pilot.pause()
            assert table.cursor_row == 9_999
            last = servers[-1].real_servers[-1]
            assert str(last.address) in line_text(app, on_screen)  # scrolled: the last row is the bottom line
            assert line_text(app, 0).lstrip().startswith("VIRTUAL / REAL SERVER")  # the header stays
            await pilot.press("pageup")
            await pilot.pause()
            assert table.cursor_row == 9_999 - on_screen
            await pilot.press("home", "down", "down")
            await pilot.pause()
            assert table.cursor_row == 2
            assert int(table.scroll_y) == 0
            assert len(table._lines) <= 3 * on_screen

    asyncio.run(asyncio.wait_for(main(), 60))


def test_a_filter_typed_while_a_tick_refreshes_the_rows_on_screen_cuts_the_refresh_short() -> None:
    async def main() -> None:
        servers = many_servers(40, 4)
        app = LvsConsoleApp(StubLink(virtual_servers=servers), tick=3600)
        async with app.run_test(size=SIZE) as pilot:
            table = app.vs_table
            await wait_until(lambda: table.row_count == 200, what="the table to fill")
            await pilot.pause()
            assert table.snapshot is not None
            steps = table.update_steps(table.snapshot)
            next(steps)  # the rows on screen are refreshed band by band from here
            table.set_filter(str(servers[0].address))  # a key between two bands: 5 rows left
            assert table.row_count == 5
            assert list(steps) != []  # the remaining bands run over the 5 rows, without an IndexError
            assert [ref.vs for ref in table.visible_refs()] == [servers[0].key] * 5

    asyncio.run(asyncio.wait_for(main(), 60))
