"""The console against a dry-run engine (memory IPVS) with real health checks on loopback listeners."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from _lab import Lab, lab, wait_until
from conftest import screen_text
from rich.text import Text
from textual.pilot import Pilot

from lvsconsole.engine.events import LogLine
from lvsconsole.tui.app import LvsConsoleApp
from lvsconsole.tui.screens.confirm import AskScreen, ConfirmScreen
from lvsconsole.tui.screens.diff import DiffScreen
from lvsconsole.tui.screens.editor import EditorScreen
from lvsconsole.tui.screens.help import HelpScreen
from lvsconsole.tui.screens.output import OutputScreen
from lvsconsole.tui.screens.quit import QuitScreen

pytestmark = pytest.mark.tui

SIZE = (160, 48)
Scenario = Callable[[Lab, LvsConsoleApp, Pilot[str]], Awaitable[None]]


def drive(scenario: Scenario, **app_options: object) -> None:
    async def main() -> None:
        async with lab() as the_lab:
            app = LvsConsoleApp(the_lab.link, tick=0.2, **app_options)  # type: ignore[arg-type]
            async with app.run_test(size=SIZE) as pilot:
                await wait_until(lambda: app.vs_table.row_count == 6, what="the table to fill")
                await scenario(the_lab, app, pilot)

    asyncio.run(main())


async def settle(pilot: Pilot[str], seconds: float = 0.3) -> None:
    await pilot.pause(seconds)


async def until(pilot: Pilot[str], condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    await wait_until(condition, timeout, what)
    await pilot.pause()


def select_rs(app: LvsConsoleApp, the_lab: Lab, port: str = "a", vs: str = "web") -> None:
    assert app.vs_table.select(the_lab.vs_key(vs), the_lab.rs_key(port))
    app.vs_table.focus()


# ---------------------------------------------------------------------------------------------- panels


def test_panels_populate_from_the_engine() -> None:
    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        await until(pilot, lambda: any("Removing service" in ln for ln in app.health_log.lines()), "the log")
        text = screen_text(app)
        # header: router_id, host, uptime, config file, candidate state, mode
        assert "LAB_DIRECTOR@" in text
        assert str(the_lab.conf) in text
        assert "candidate = running" in text
        assert "embedded, dry-run" in text
        # the ipvsadm tree with health, weights and the down server out of the table
        web, api = the_lab.ports["web"], the_lab.ports["api"]
        assert f"TCP  127.0.0.1:{web}" in text and "wrr" in text
        assert f"TCP  127.0.0.1:{api}" in text and "rr persist 50" in text
        row_a = next(ln for ln in text.splitlines() if f"127.0.0.1:{the_lab.ports['a']}" in ln)
        row_dead = next(ln for ln in text.splitlines() if f"127.0.0.1:{the_lab.ports['dead']}" in ln)
        assert "NAT" in row_a and "● up" in row_a and " 3 " in row_a
        assert "● down" in row_dead and " - " in row_dead
        assert "2/3 up" in text and "1/1 up" in text
        assert "no vrrp_instance in this configuration" in text
        # the health log in keepalived's wording
        log_text = "\n".join(app.health_log.lines())
        assert f"Removing service [127.0.0.1]:tcp:{the_lab.ports['dead']} from VS" in log_text
        assert "Director started" in log_text
        assert not app.panel_errors

    drive(scenario)


def test_live_stats_update_cells_in_place_with_a_sparkline() -> None:
    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        table = app.vs_table
        rebuilds = table.rebuilds
        the_lab.set_conns("a", active=42, inactive=7, bps=12_000, cps=15)

        def fields() -> list[str]:
            row = next(ln for ln in screen_text(app).splitlines() if f"127.0.0.1:{the_lab.ports['a']}" in ln)
            return row.split()

        # │ ├─ ADDRESS NAT WEIGHT CFG ● up ACTIVE INACT CONN/S BYTES/S SPARKLINE │
        await until(pilot, lambda: fields()[8] == "42", "ActiveConn 42")
        row = fields()
        assert row[8:12] == ["42", "7", "15", "12.0K"]
        assert any(ch in row[12] for ch in "▂▃▄▅▆▇█")
        assert table.rebuilds == rebuilds, "stats must not rebuild the table"

    drive(scenario)


# ---------------------------------------------------------------------------------------------- drain & co


@pytest.mark.parametrize("accept", ["y", "enter"])
def test_drain_after_confirmation_sets_weight_zero(accept: str) -> None:
    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        the_lab.set_conns("a", active=5)
        select_rs(app, the_lab, "a")
        await until(pilot, lambda: app.vs_table.selected_pair()[1].active_conns == 5,  # type: ignore[union-attr]
                    "the stats to be read")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        text = screen_text(app)
        assert f"Drain 127.0.0.1:{the_lab.ports['a']} in 127.0.0.1:{the_lab.ports['web']}?" in text
        dialog = app.screen
        assert isinstance(dialog, ConfirmScreen) and isinstance(dialog.body, Text)
        assert "weight 3 → 0" in dialog.body.plain and "5 active connections" in dialog.body.plain
        assert the_lab.weights()[the_lab.ports["a"]] == 3
        await pilot.press(accept)
        await until(pilot, lambda: the_lab.weights()[the_lab.ports["a"]] == 0, "weight 0 in the memory backend")
        await until(pilot, lambda: "● drain" in screen_text(app), "the row to say drain")
        await until(pilot, lambda: any("AUDIT" in ln and "drain 127.0.0.1" in ln for ln in app.health_log.lines()),
                    "the audit entry")
        # watch ActiveConn fall: told once it reaches 0
        the_lab.set_conns("a", active=0)
        await until(pilot, lambda: any("drained" in n.message for n in app._notifications), "drain complete")

    drive(scenario)


@pytest.mark.parametrize("cancel", ["n", "escape"])
def test_drain_cancelled_changes_nothing(cancel: str) -> None:
    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        select_rs(app, the_lab, "a")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press(cancel)
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen), "the dialog to close")
        await settle(pilot, 0.5)
        assert the_lab.weights()[the_lab.ports["a"]] == 3
        assert not [r for r in app.results if r[0].startswith("drain")]

    drive(scenario)


def test_undrain_weight_disable_enable_from_the_keyboard() -> None:
    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        port = the_lab.ports["a"]
        select_rs(app, the_lab, "a")
        # w: ask for N or N%
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, AskScreen), "the weight prompt")
        ask = app.screen
        assert isinstance(ask, AskScreen)
        ask.query_one("#ask-input").value = "banana"  # type: ignore[attr-defined]
        await pilot.press("enter")
        assert isinstance(app.screen, AskScreen), "a bad weight keeps the prompt open"
        ask.query_one("#ask-input").value = "200%"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await until(pilot, lambda: the_lab.weights()[port] == 6, "weight 200% of 3")
        # +/-: one step from the override
        await pilot.press("minus")
        await until(pilot, lambda: the_lab.weights()[port] == 5, "weight 5")
        await pilot.press("plus", "plus")
        await until(pilot, lambda: the_lab.weights()[port] == 7, "weight 7")
        # undrain: back to the configured weight
        await pilot.press("u")
        await until(pilot, lambda: the_lab.weights()[port] == 3, "configured weight")
        # disable asks, then takes it out of the table; enable puts it back
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: port not in the_lab.weights(), "dest removed")
        await until(pilot, lambda: "maint" in screen_text(app), "maint shown")
        await pilot.press("E")
        await until(pilot, lambda: the_lab.weights().get(port) == 3, "dest back")

    drive(scenario)


def test_weight_zero_asks_first_and_vs_rows_refuse_rs_actions() -> None:
    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        port = the_lab.ports["c"]
        select_rs(app, the_lab, "c", vs="api")
        await pilot.press("minus")  # weight 1 -> 0 is a drain: confirm
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        dialog = app.screen
        assert isinstance(dialog, ConfirmScreen) and "No other real server" in str(dialog.body)
        await pilot.press("n")
        await settle(pilot)
        assert the_lab.weights("api")[port] == 1
        # a virtual-server row has no real-server actions
        assert app.vs_table.select(the_lab.vs_key("web"))
        await pilot.press("d")
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("select a real server" in n.message for n in app._notifications)

    drive(scenario)


def test_cursor_keys_move_between_servers() -> None:
    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        app.vs_table.move_cursor(row=0)
        await pilot.press("down")
        _, rs = app.vs_table.selected_pair()
        assert rs is not None and rs.port == the_lab.ports["a"]
        await pilot.press("down", "down")
        _vs, rs = app.vs_table.selected_pair()
        assert rs is not None and rs.port == the_lab.ports["dead"]

    drive(scenario)


# ---------------------------------------------------------------------------------------------- the prompt


async def type_command(pilot: Pilot[str], app: LvsConsoleApp, command: str) -> None:
    await pilot.press("colon")
    await until(pilot, lambda: app.prompt.display and app.focused is app.prompt.input, "the prompt")
    app.prompt.input.value = command
    app.prompt.input.cursor_position = len(command)
    await pilot.press("enter")


def test_prompt_runs_weight() -> None:
    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        port = the_lab.ports["b"]
        await type_command(pilot, app, f"weight 127.0.0.1:{port} 9 in 127.0.0.1:{the_lab.ports['web']}")
        await until(pilot, lambda: the_lab.weights()[port] == 9, "weight 9")
        await until(pilot, lambda: not app.prompt.display, "the prompt to close")
        assert app.results[-1][1].ok

    drive(scenario)


def test_prompt_shows_an_error_naming_the_word() -> None:
    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        await type_command(pilot, app, "weight 127.0.0.1:80 lots")
        await until(pilot, lambda: "'lots'" in screen_text(app), "the error")
        text = screen_text(app)
        line = next(ln for ln in text.splitlines() if "'lots'" in ln)
        assert "^" in line and "column 21" not in line  # the caret points, the message names the word
        caret = line.index("^")
        prompt_line = next(ln for ln in text.splitlines() if "weight 127.0.0.1:80 lots" in ln)
        assert prompt_line[caret:caret + 4] == "lots"
        assert app.prompt.display, "the prompt stays open to fix the command"
        # an unknown verb names the word and lists the verbs
        await pilot.press("escape")
        await type_command(pilot, app, "drian 127.0.0.1:80")
        await until(pilot, lambda: "unknown command 'drian'" in screen_text(app), "the verb error")
        # an unknown server: the engine's error names it
        await pilot.press("escape")
        await type_command(pilot, app, "drain 10.9.9.9:80")
        await until(pilot, lambda: "no real server 10.9.9.9:80" in screen_text(app), "the server error")
        assert the_lab.weights()[the_lab.ports["a"]] == 3

    drive(scenario)


def test_prompt_completion_history_and_live_errors() -> None:
    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        await pilot.press("colon")
        await until(pilot, lambda: app.focused is app.prompt.input, "the prompt")
        await pilot.press("d", "r", "a", "tab")  # "dr" alone is drain or drift
        assert app.prompt.input.value == "drain "
        await pilot.press("tab")
        await until(pilot, lambda: f"127.0.0.1:{the_lab.ports['a']}" in screen_text(app), "RS candidates")
        text = screen_text(app)
        assert "real server" in text
        # live error: a wrong word is flagged before Enter
        app.prompt.input.value = "show banana "
        await until(pilot, lambda: "'banana'" in screen_text(app), "live error")
        # history
        await pilot.press("escape")
        await type_command(pilot, app, "show overrides")
        await until(pilot, lambda: not app.prompt.display, "closed")
        await pilot.press("colon")
        await until(pilot, lambda: app.focused is app.prompt.input, "the prompt")
        await pilot.press("up")
        assert app.prompt.input.value == "show overrides"
        await pilot.press("down")
        assert app.prompt.input.value == ""

    drive(scenario)


def test_prompt_commit_goes_through_the_diff_and_long_output_opens_a_screen() -> None:
    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        await type_command(pilot, app, "show vs")
        await until(pilot, lambda: isinstance(app.screen, OutputScreen), "the output screen")
        assert "VIRTUAL SERVER / REAL SERVER" in screen_text(app)
        await pilot.press("escape")
        await type_command(pilot, app, "commit")
        await until(pilot, lambda: isinstance(app.screen, DiffScreen), "the diff screen")
        await pilot.press("escape")
        await type_command(pilot, app, "drain 127.0.0.1:1; commit")
        await until(pilot, lambda: "on their own" in screen_text(app), "refused")

    drive(scenario)


# ---------------------------------------------------------------------------------------------- filter, sort


def test_filter_and_sort() -> None:
    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        table = app.vs_table
        await pilot.press("slash")
        await until(pilot, lambda: app.focused is not None and app.focused.id == "vs-filter", "the filter bar")
        await pilot.press(*"down")
        await until(pilot, lambda: table.row_count == 2, "filtered rows")
        refs = table.visible_refs()
        assert refs[0].rs is None and refs[1].rs == the_lab.rs_key("dead")
        await until(pilot, lambda: "filter 'down'" in screen_text(app), "the filter shown")
        await pilot.press("enter")
        assert app.focused is table
        await pilot.press("slash")
        await pilot.press("escape")
        await until(pilot, lambda: table.row_count == 6, "all rows back")
        # a filter that matches a virtual server keeps all its real servers
        table.set_filter(str(the_lab.ports["api"]))
        assert table.row_count == 2
        table.set_filter("")
        # sort by active connections: busiest first, the cursor stays on its server
        the_lab.set_conns("b", active=50)
        select_rs(app, the_lab, "a")
        await until(pilot, lambda: sum(vs.active_conns for vs in app.link.snapshot.virtual_servers) == 50, "stats")
        table.set_sort("active")
        await settle(pilot, 0.5)
        refs = table.visible_refs()
        assert refs[1].rs == the_lab.rs_key("b")
        _vs, rs = table.selected_pair()
        assert rs is not None and rs.port == the_lab.ports["a"]
        await pilot.press("s")  # next sort key
        assert table.sort_key == "inact"
        await pilot.press("S")
        assert table.reverse

    drive(scenario)


# ---------------------------------------------------------------------------------------------- log


def test_health_log_filter_level_pause() -> None:
    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        log = app.health_log
        await pilot.press("3")
        assert app.focused is log.view
        await pilot.press("slash")
        await pilot.press(*"quorum")
        await until(pilot, lambda: bool(log.lines()) and all("quorum" in ln.lower() for ln in log.lines()),
                    "filtered")
        await pilot.press("enter")
        await pilot.press("slash", "escape")
        await until(pilot, lambda: any("Director started" in ln for ln in log.lines()), "unfiltered")
        # minimum level
        levels = []
        for _ in range(5):
            await pilot.press("l")
            levels.append(log.level)
            if log.level == "notice":
                assert all(" info " not in ln for ln in log.lines())
        assert levels == ["notice", "warning", "error", "debug", "info"]
        # pause: events keep arriving but are held
        await pilot.press("p")
        assert log.paused and "LOG PAUSED" in screen_text(app)
        the_lab.engine.bus.publish(LogLine(message="held while paused"))
        await settle(pilot)
        assert not any("held while paused" in ln for ln in log.lines())
        assert "PAUSED (1 new)" in screen_text(app)
        await pilot.press("p")
        await until(pilot, lambda: any("held while paused" in ln for ln in log.lines()), "shown on resume")

    drive(scenario)


# ---------------------------------------------------------------------------------------------- commit, editor


def test_commit_shows_the_diff_and_applies_only_when_accepted() -> None:
    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        port = the_lab.ports["a"]
        target = f"127.0.0.1:{port} in 127.0.0.1:{the_lab.ports['web']}"
        await type_command(pilot, app, f"set rs {target} weight 5")
        await until(pilot, lambda: "candidate differs" in screen_text(app), "the header marker")
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, DiffScreen), "the diff")
        text = screen_text(app)
        assert "Commit: candidate → running — 1 change" in text
        assert f"~ real_server [127.0.0.1]:tcp:{the_lab.ports['web']} -> [127.0.0.1]:{port}" in text
        assert "weight: 3 -> 5" in text
        await pilot.press("n")
        await settle(pilot)
        assert the_lab.weights()[port] == 3
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, DiffScreen), "the diff")
        await pilot.press("y")
        await until(pilot, lambda: the_lab.weights()[port] == 5, "applied")
        await until(pilot, lambda: "candidate = running" in screen_text(app), "header back to clean")
        assert the_lab.engine.store.running.number == 2

    drive(scenario)


def test_a_candidate_with_errors_cannot_be_committed() -> None:
    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        store = the_lab.engine.store
        await the_lab.link.save_candidate(store.candidate.text.replace("lb_algo wrr", "lb_algo bogus"))
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, DiffScreen), "the diff")
        text = screen_text(app)
        assert "Cannot be applied" in text and "<candidate>:" in text and "error" in text
        await pilot.press("y")
        await settle(pilot)
        assert isinstance(app.screen, DiffScreen), "y does nothing on a refused plan"
        await pilot.press("escape")
        assert store.running.number == 1

    drive(scenario)


def test_reload_shows_the_plan_of_the_file() -> None:
    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        the_lab.conf.write_text(the_lab.conf.read_text().replace("weight 2", "weight 4"))
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, DiffScreen), "the diff")
        assert "weight: 2 -> 4" in screen_text(app)
        await pilot.press("enter")
        await until(pilot, lambda: the_lab.weights()[the_lab.ports["b"]] == 4, "reloaded")

    drive(scenario)


def test_editor_validates_as_you_type_and_saves_the_candidate() -> None:
    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, EditorScreen), "the editor")
        editor = app.screen
        assert isinstance(editor, EditorScreen)
        await until(pilot, lambda: editor.validations >= 1, "first validation")
        assert "0 errors" in screen_text(app)
        area = editor.area
        text = area.text.replace("lb_algo wrr", "lb_algo bogus")
        area.load_text(text)
        area.post_message(area.Changed(area))
        await until(pilot, lambda: any(d.is_error for d in editor.diagnostics), "the diagnostic", timeout=5)
        screen = screen_text(app)
        assert "1 error" in screen and "bogus" in screen
        line = next(d for d in editor.diagnostics if d.is_error).location
        assert line is not None and line.line in area.error_columns
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "lb_algo bogus" in the_lab.engine.store.candidate.text, "saved")
        assert the_lab.engine.store.running.number == 1
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, EditorScreen), "closed")
        await until(pilot, lambda: "candidate differs" in screen_text(app), "header")

    drive(scenario)


# ---------------------------------------------------------------------------------------------- quit


def test_quit_asks_and_cancel_stays() -> None:
    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, QuitScreen), "the quit dialog")
        text = screen_text(app)
        assert "Stop the director" in text and "Hand off to a background engine" in text
        assert f"lvsconsole run --headless -f {the_lab.conf}" in text
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, QuitScreen), "closed")
        assert app.is_running
        await pilot.press("ctrl+q", "s")
        await until(pilot, lambda: not app.is_running, "exit")
        assert app.return_value == "stop"

    drive(scenario)


# ---------------------------------------------------------------------------------------------- palette, help, theme


def test_palette_offers_server_actions_and_typed_commands() -> None:
    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        await pilot.press("ctrl+p")
        await settle(pilot)
        await pilot.press(*f"drain 127.0.0.1:{the_lab.ports['b']}")
        await settle(pilot, 0.8)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the same confirmation as d")
        await pilot.press("y")
        await until(pilot, lambda: the_lab.weights()[the_lab.ports["b"]] == 0, "drained")

    drive(scenario)


def test_help_lists_every_binding_with_its_keys() -> None:
    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        text = screen_text(app)
        assert "vs.drain" in text and "Drain" in text
        assert "app.palette" in text
        await pilot.press("escape")
        await pilot.press("t")
        assert app.theme == "lvs-light"
        await pilot.press("t")
        assert app.theme == "lvs-dark"

    drive(scenario)


# ---------------------------------------------------------------------------------------------- every path


def test_every_prompt_command_path() -> None:
    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        a, web = f"127.0.0.1:{the_lab.ports['a']}", f"127.0.0.1:{the_lab.ports['web']}"

        async def run(command: str, ok: bool = True, screen: type | None = None) -> None:
            before = len(app.results)
            await type_command(pilot, app, command)
            if screen is not None:
                await until(pilot, lambda: isinstance(app.screen, screen), f"{screen.__name__} for {command}")
                await pilot.press("escape")
                await until(pilot, lambda: not isinstance(app.screen, screen), "closed")
                return
            await until(pilot, lambda: len(app.results) > before, f"the result of {command}")
            got = app.results[-1]
            assert got[0] == command and got[1].ok is ok, (command, got[1].message)
            if isinstance(app.screen, OutputScreen):
                await pilot.press("escape")
            if not ok:
                await pilot.press("escape")  # the prompt stays open on an error

        for command in ("show vrrp", "show vs", f"show vs {web}", "show rs", f"show rs {a}", "show log 5",
                        "show config", "show config candidate", "show diff", "show stats", "show history",
                        "show overrides", "help", "help drain", "validate"):
            await run(command)
        await run(f"drain {a} in {web}")
        assert the_lab.weights()[the_lab.ports["a"]] == 0
        await run(f"undrain {a}")
        await run(f"weight {a} 50% in {web}")
        assert the_lab.weights()[the_lab.ports["a"]] == 2
        await run(f"disable {a} in {web}")
        await run(f"enable {a} in {web}")
        await run(f"weight {a} 3")
        await run(f"set rs {a} in {web} weight 4")
        await run(f"unset rs {a} in {web} weight")
        await run(f"add rs 127.0.0.1:9 to {web} weight 1")
        await run(f"delete rs 127.0.0.1:9 from {web}")
        await run("add vs 127.0.0.1:19999 lb_algo rr")
        await run("delete vs 127.0.0.1:19999")
        await run("rollback 0")
        await run("diff", screen=DiffScreen)
        await run("commit", screen=DiffScreen)
        await run("reload", screen=DiffScreen)
        await run("write")
        await run("vrrp priority VI_1 50", ok=False)
        await run("vrrp failover VI_1", ok=False)
        await run("add vip 10.0.0.1 to VI_1", ok=False)
        await run("set global router_id OTHER")
        await run("rollback 0")
        assert the_lab.engine.store.running.number == 1
        assert not app.panel_errors

    drive(scenario)


def test_remaining_bindings_diff_focus_and_ask_cancel() -> None:
    async def scenario(the_lab: Lab, app: LvsConsoleApp, pilot: Pilot[str]) -> None:
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, DiffScreen), "the diff view")
        assert "no changes" in screen_text(app)
        await pilot.press("escape")
        await pilot.press("3")
        assert app.focused is app.health_log.view
        await pilot.press("2")
        assert app.focused is app.vs_table
        await pilot.press("1")  # no VRRP instance: the panel's table is hidden, focus stays
        assert app.focused is app.vs_table
        select_rs(app, the_lab, "b")
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, AskScreen), "the weight prompt")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, AskScreen), "cancelled")
        assert the_lab.weights()[the_lab.ports["b"]] == 2

    drive(scenario)
