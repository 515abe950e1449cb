"""VRRP panel (stub link), robustness of panels, attach over the control socket, hand-off, keymaps, CLI."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import time
from pathlib import Path

import pytest
from _lab import StubLink, lab, vrrp_instances, wait_until
from conftest import screen_text
from textual.pilot import Pilot

from lvsconsole.engine.control import ControlClient
from lvsconsole.engine.director_api import DirectorSnapshot
from lvsconsole.engine.events import VrrpTransition
from lvsconsole.tui import bindings
from lvsconsole.tui.app import LvsConsoleApp
from lvsconsole.tui.cli import main as tui_main
from lvsconsole.tui.keymap import KeymapError, keymap_dir, load_keymap, parse_keymap, rebinding
from lvsconsole.tui.link import RemoteLink
from lvsconsole.tui.screens.confirm import ConfirmScreen
from lvsconsole.tui.screens.help import HelpScreen
from lvsconsole.tui.screens.quit import QuitScreen
from lvsconsole.tui.widgets.vrrp_panel import VrrpPanel

pytestmark = pytest.mark.tui

SIZE = (160, 48)
NO_USER = Path("/nonexistent/keymap.toml")


async def until(pilot: Pilot[str], condition: object, what: str, timeout: float = 10.0) -> None:
    await wait_until(condition, timeout, what)  # type: ignore[arg-type]
    await pilot.pause()


# ---------------------------------------------------------------------------------------------- VRRP (stub)


def test_vrrp_panel_badges_priorities_flash_and_failover() -> None:
    async def main() -> None:
        stub = StubLink()
        app = LvsConsoleApp(stub, tick=0.2)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.vrrp_panel.table.row_count == 4, "VRRP rows")
            text = screen_text(app)
            assert "group VGM" in text and "2 instances" in text
            vi2 = next(ln for ln in text.splitlines() if "VI_2" in ln)
            assert " MASTER " in vi2 and "90 (track -10, base 100)" in vi2 and "192.168.2.158" in vi2
            vi1 = next(ln for ln in text.splitlines() if "VI_1" in ln)
            assert any(f"12m3{n}s" in vi1 for n in "345")
            assert "754" in vi1 and "192.168.2.188/32" in vi1
            db = next(ln for ln in text.splitlines() if "VI_DB" in ln)
            assert " BACKUP " in db and "10.1.0.3" in db and "2s" in db
            assert "3 instances, 2 MASTER" in text
            # a transition flashes the row and is announced
            now = time.time()
            changed = tuple(dataclasses.replace(i, state="MASTER", since=now) if i.name == "VI_DB" else i
                            for i in vrrp_instances(now))
            stub.set_instances(changed)
            stub.bus.publish(VrrpTransition(instance="VI_DB", old="BACKUP", new="MASTER", priority=50))
            await until(pilot, lambda: "i|VI_DB" in app.vrrp_panel.table._flash, "the flash")
            await until(pilot, lambda: any("Entering MASTER STATE" in n.message for n in app._notifications),
                        "the announcement")
            await until(pilot, lambda: any("(VI_DB) Entering MASTER STATE" in ln for ln in app.health_log.lines()),
                        "the log line")
            # failover on the selected instance, after confirmation
            await pilot.press("1")
            table = app.vrrp_panel.table
            table.move_cursor(row=1)
            await pilot.press("f")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
            assert "Failover VI_1?" in screen_text(app)
            await pilot.press("n")
            await pilot.pause()
            assert stub.commands == []
            await pilot.press("f", "y")
            await until(pilot, lambda: stub.commands == ["vrrp failover VI_1"], "the command")

    asyncio.run(main())


# ---------------------------------------------------------------------------------------------- robustness


def test_a_failing_panel_is_shown_and_the_rest_carries_on(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: VrrpPanel, snapshot: DirectorSnapshot) -> None:
        raise RuntimeError("boom")

    async def main() -> None:
        async with lab() as the_lab:
            monkeypatch.setattr(VrrpPanel, "update_from", boom)
            app = LvsConsoleApp(the_lab.link, tick=0.2)
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: "VRRP" in app.panel_errors, "the panel error")
                assert "RuntimeError: boom" in app.panel_errors["VRRP"]
                assert "⚠ RuntimeError: boom" in screen_text(app)
                assert app.vs_table.row_count == 6
                the_lab.set_conns("a", active=11)
                await until(pilot, lambda: "11" in next(ln for ln in screen_text(app).splitlines()
                                                        if f"127.0.0.1:{the_lab.ports['a']}" in ln),
                            "the other panels still live")
                assert app.vs_table.select(the_lab.vs_key(), the_lab.rs_key("a"))
                await pilot.press("d", "y")
                await until(pilot, lambda: app.is_running and 0 in the_lab.weights().values(), "drain still works")
                assert app.is_running

    asyncio.run(main())


# ---------------------------------------------------------------------------------------------- attach


def test_attached_console_reads_and_drains_over_the_socket() -> None:
    async def main() -> None:
        async with lab() as the_lab:
            link = RemoteLink(the_lab.socket_path)
            app = LvsConsoleApp(link, tick=0.2)
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: app.vs_table.row_count == 6, "rows from show vs")
                text = screen_text(app)
                assert f"attached to {the_lab.socket_path}" in text
                assert "LAB_DIRECTOR@" in text and str(the_lab.conf) in text
                assert "● down" in text
                await until(pilot, lambda: any("Director started" in ln for ln in app.health_log.lines()),
                            "events over the socket")
                assert app.vs_table.select(the_lab.vs_key(), the_lab.rs_key("b"))
                await pilot.press("d")
                await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
                await pilot.press("y")
                await until(pilot, lambda: the_lab.weights()[the_lab.ports["b"]] == 0, "drained over the socket")
                await until(pilot, lambda: any("AUDIT" in ln and "via tui" in ln for ln in app.health_log.lines()),
                            "audited with the peer's uid")
                # an attached console leaves without a question; the engine keeps running
                await pilot.press("ctrl+q")
                await until(pilot, lambda: not app.is_running, "exit")
                assert app.return_value == "detach"
            await link.close()
            assert the_lab.weights()[the_lab.ports["b"]] == 0

    asyncio.run(main())


# ---------------------------------------------------------------------------------------------- hand-off


@pytest.mark.slow
def test_quit_hands_the_director_to_a_background_engine() -> None:
    async def main() -> None:
        async with lab() as the_lab:
            app = LvsConsoleApp(the_lab.link, tick=0.2)
            pid = None
            try:
                async with app.run_test(size=SIZE) as pilot:
                    await until(pilot, lambda: app.vs_table.row_count == 6, "rows")
                    assert app.vs_table.select(the_lab.vs_key(), the_lab.rs_key("a"))
                    await pilot.press("d", "y")
                    await until(pilot, lambda: the_lab.weights()[the_lab.ports["a"]] == 0, "drained")
                    await pilot.press("ctrl+q")
                    await until(pilot, lambda: isinstance(app.screen, QuitScreen), "the quit dialog")
                    await pilot.press("b")
                    await until(pilot, lambda: not app.is_running, "hand-off", timeout=40)
                assert app.return_value == "handoff"
                handed = the_lab.link.handed_to
                assert handed is not None
                pid = handed.pid
                assert handed.replayed == (f"drain 127.0.0.1:{the_lab.ports['a']} in 127.0.0.1:{the_lab.ports['web']}",)
                async with await ControlClient.connect(the_lab.socket_path) as client:
                    stats = await client.request("show stats")
                    assert stats.ok and stats.data["config_file"] == str(the_lab.conf)
                    overrides = await client.request("show overrides")
                    assert [row["drain"] for row in overrides.data] == [True]
            finally:
                if pid is not None:
                    os.kill(pid, signal.SIGTERM)
                    await wait_until(lambda: not os.path.exists(the_lab.socket_path), 10, "the child to stop")

    asyncio.run(main())


# ---------------------------------------------------------------------------------------------- keymaps


def test_bundled_keymaps_load_and_default_toml_matches_the_code() -> None:
    default = parse_keymap((keymap_dir() / "default.toml").read_text(), "default.toml")
    assert default == bindings.DEFAULT_KEYS
    assert set(default) == bindings.KNOWN_IDS
    vim = load_keymap("vim", user_file=NO_USER)
    assert vim["nav.down"] == "j,down" and vim["vs.drain"] == "d"
    emacs = load_keymap("emacs", user_file=NO_USER)
    assert emacs["app.palette"] == "alt+x" and emacs["nav.up"] == "ctrl+p,up"


def test_textual_is_given_only_the_keys_a_keymap_changes() -> None:
    # Textual re-applies its keymap to every namespace on each key press: the default keymap costs nothing
    assert rebinding(load_keymap(None, user_file=NO_USER)) == {}
    vim = rebinding(load_keymap("vim", user_file=NO_USER))
    assert vim["nav.down"] == "j,down" and "vs.drain" not in vim  # d stays d
    assert rebinding({"vs.drain": "x", "vs.undrain": bindings.DEFAULT_KEYS["vs.undrain"]}) == {"vs.drain": "x"}
    # an id bound in several places with different keys is always passed on (one keymap entry rebinds all)
    declared: dict[str, set[str]] = {}
    for binding in bindings.ALL:
        assert binding.id is not None
        declared.setdefault(binding.id, set()).add(binding.key)
    for binding_id, keys in declared.items():
        if len(keys) > 1:
            assert binding_id in rebinding({binding_id: next(iter(keys))})


def test_a_keymap_naming_an_unknown_id_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[vs]\ndrian = "x"\n')
    with pytest.raises(KeymapError, match=r"bad\.toml: unknown binding id 'vs\.drian'"):
        load_keymap(str(bad), user_file=NO_USER)
    with pytest.raises(KeymapError, match="not valid TOML"):
        parse_keymap("[vs\n", "x.toml")
    with pytest.raises(KeymapError, match="no keymap 'nope'"):
        load_keymap("nope", user_file=NO_USER)
    # the CLI refuses to start with it, naming the id
    assert tui_main(["--keymap", str(bad), "-f", "/nonexistent.conf"]) == 2


def test_user_keymap_then_command_line_keymap(tmp_path: Path) -> None:
    user = tmp_path / "keymap.toml"
    user.write_text('"vs.drain" = "x"\n[app]\nhelp = "h"\n')
    keymap = load_keymap(None, user_file=user)
    assert keymap["vs.drain"] == "x" and keymap["app.help"] == "h"
    over = tmp_path / "mine.toml"
    over.write_text('vs = { drain = ["z", "ctrl+d"] }\n')
    keymap = load_keymap(str(over), user_file=user)
    assert keymap["vs.drain"] == "z,ctrl+d" and keymap["app.help"] == "h"


def test_vim_keymap_drives_the_app(capsys: pytest.CaptureFixture[str]) -> None:
    async def main() -> None:
        async with lab() as the_lab:
            app = LvsConsoleApp(the_lab.link, tick=0.2, keymap=load_keymap("vim", user_file=NO_USER),
                                keymap_name="vim")
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: app.vs_table.row_count == 6, "rows")
                app.vs_table.move_cursor(row=0)
                await pilot.press("j")
                assert app.vs_table.cursor_row == 1
                await pilot.press("G")
                assert app.vs_table.cursor_row == 5
                await pilot.press("g")
                assert app.vs_table.cursor_row == 0
                await pilot.press("question_mark")
                await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
                text = screen_text(app)
                assert "keymap: vim" in text
                row = next(ln for ln in text.splitlines() if "app.quit" in ln)
                assert "q, ^q" in row
                await pilot.press("q")
                await until(pilot, lambda: not isinstance(app.screen, HelpScreen), "help closed")
                await pilot.press("q")  # vim: q quits, and the dialog still asks
                await until(pilot, lambda: isinstance(app.screen, QuitScreen), "the quit dialog")
                await pilot.press("q")
                await until(pilot, lambda: not isinstance(app.screen, QuitScreen), "cancelled")
                assert app.is_running

    asyncio.run(main())




# ---------------------------------------------------------------------------------------------- wiring


def test_every_binding_names_an_action_of_its_owner() -> None:
    from textual.app import App
    from textual.binding import Binding

    from lvsconsole.tui.screens.checks import ChecksScreen
    from lvsconsole.tui.screens.confirm import AskScreen
    from lvsconsole.tui.screens.diff import DiffScreen
    from lvsconsole.tui.screens.editor import EditorScreen
    from lvsconsole.tui.screens.output import OutputScreen
    from lvsconsole.tui.widgets.health_log import EventLog
    from lvsconsole.tui.widgets.prompt import PromptInput
    from lvsconsole.tui.widgets.vrrp_panel import VrrpTable
    from lvsconsole.tui.widgets.vs_table import FilterBar, VsTable

    owners: list[type] = [LvsConsoleApp, VsTable, VrrpTable, EventLog, FilterBar, PromptInput, ConfirmScreen,
                          QuitScreen, AskScreen, EditorScreen, HelpScreen, OutputScreen, DiffScreen, ChecksScreen]
    seen: set[str] = set()
    for owner in owners:
        for binding in owner.BINDINGS:  # type: ignore[attr-defined]
            assert isinstance(binding, Binding) and binding.id in bindings.KNOWN_IDS, (owner, binding)
            name = binding.action.split("(")[0]
            assert hasattr(owner, f"action_{name}") or hasattr(App, f"action_{name}"), (owner, binding.action)
            seen.add(binding.id)
    assert seen == bindings.KNOWN_IDS


def test_a_console_that_fails_leaves_the_director_running(monkeypatch: pytest.MonkeyPatch) -> None:
    from lvsconsole.tui import cli

    async def crash(self: LvsConsoleApp) -> str | None:
        raise RuntimeError("console bug")

    calls: list[bool] = []

    async def main() -> int:
        async with lab() as the_lab:
            socket_path = the_lab.socket_path + "2"

            async def stop_once_headless() -> None:
                # the real headless loop runs: the engine must still be working, then SIGTERM ends it
                await wait_until(lambda: "keeps running headless" in out.getvalue(), what="the headless notice")
                from lvsconsole.engine.control import run_command

                result = await asyncio.to_thread(run_command, "show vs", socket_path)
                calls.append(result.ok and bool(result.data))
                os.kill(os.getpid(), signal.SIGTERM)

            stopper = asyncio.create_task(stop_once_headless())
            status = await cli.embedded(str(the_lab.conf), dry_run=True, socket_path=socket_path, config_id=None,
                                        keymap=dict(bindings.DEFAULT_KEYS), keymap_name="default", out=out)
            await stopper
            return status

    import io

    out = io.StringIO()
    monkeypatch.setattr(LvsConsoleApp, "run_async", crash)
    assert asyncio.run(main()) == 0
    assert calls == [True], "the engine was still running when the console failed"
    assert "the console failed: RuntimeError: console bug" in out.getvalue()
    assert "the director keeps running headless" in out.getvalue()
