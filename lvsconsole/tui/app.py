"""``LvsConsoleApp``: the panels, the tick that feeds them, the event pump, and every operator action.

The app is a face of the engine: it holds an ``EngineLink`` and never the engine's lifetime. What it
returns from ``run_async`` tells the entry point what to do with an embedded engine:

- ``"stop"``     the operator chose to stop the director;
- ``"handoff"``  a background engine answered on the control socket: leave without stopping anything;
- ``"detach"``   an attached console closed (the remote engine keeps running);
- anything else (a crash, a lost terminal) means "not asked to stop": the entry point keeps the director
  running headless.

A panel that raises while it is being fed is logged and marked (title and a notification); the others,
and the engine, carry on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import BindingType
from textual.theme import Theme
from textual.widget import Widget
from textual.widgets import Footer

from lvsconsole.engine.commands import Result, split_commands
from lvsconsole.engine.director_api import DirectorSnapshot, RealServerView, VirtualServerView, VrrpInstanceView
from lvsconsole.engine.events import Event, ReloadApplied, VrrpTransition
from lvsconsole.engine.guard import blast_radius
from lvsconsole.tui import bindings, heap
from lvsconsole.tui.keymap import rebinding
from lvsconsole.tui.link import REPLAY, EmbeddedLink, EngineLink, find_pair, rs_command_target
from lvsconsole.tui.palette import PROVIDERS, Action
from lvsconsole.tui.screens.checks import ChecksScreen
from lvsconsole.tui.screens.confirm import AskScreen, ConfirmScreen, weight_error
from lvsconsole.tui.screens.diff import DiffScreen
from lvsconsole.tui.screens.drain import DrainScreen
from lvsconsole.tui.screens.editor import EditorScreen
from lvsconsole.tui.screens.explain import ExplainScreen
from lvsconsole.tui.screens.help import HelpScreen
from lvsconsole.tui.screens.output import OutputScreen
from lvsconsole.tui.screens.quit import QuitScreen
from lvsconsole.tui.screens.radar import RadarScreen
from lvsconsole.tui.themes import DARK, LIGHT, THEMES, Palette
from lvsconsole.tui.widgets.header import EngineHeader
from lvsconsole.tui.widgets.health_log import HealthLog
from lvsconsole.tui.widgets.prompt import CommandPrompt
from lvsconsole.tui.widgets.vrrp_panel import VrrpPanel, VrrpTable
from lvsconsole.tui.widgets.vs_table import VsPanel, VsTable

log = logging.getLogger("lvsconsole.tui")

Origin = Literal["prompt", "key", "palette"]
OUTPUT_LINES = 3
"""A result longer than this opens the output screen instead of a notification."""
CONFIRM_FIRST = ("commit", "reload")
POLL_BUDGET = 0.08
"""At most this share of a core goes to taking snapshots; beyond it the refresh period stretches (and the servers
panel says so). With the console's own work per refresh this keeps the whole console near 15 % of a core at
11,000 servers (bench/tui_refresh.py): a snapshot of them takes ~110 ms, so they refresh every ~1.7 s; up to
~7,000 servers every second."""
INPUT_QUIET = 0.3
"""A snapshot slower than this waits until no key came for this long..."""
MAX_DEFER = 2.0
"""...but not longer than this past its period."""
"""Commands that always show their plan first, however they are asked for."""


class LvsConsoleApp(App[str]):
    CSS_PATH = "app.tcss"
    TITLE = "lvsconsole"
    BINDINGS: ClassVar[list[BindingType]] = list(bindings.APP)
    COMMANDS = App.COMMANDS | set(PROVIDERS)

    def __init__(self, link: EngineLink, *, keymap: dict[str, str] | None = None, keymap_name: str = "default",
                 tick: float = 1.0, history_path: Path | None = None, replay: int = REPLAY,
                 theme: str | None = None, settle_heap: bool = False) -> None:
        super().__init__()
        self.link = link
        self.settle_heap = settle_heap
        """Tune the garbage collector once the panels are built (``tui.heap``; the entry points ask for it)."""
        self.keymap = dict(keymap) if keymap is not None else dict(bindings.DEFAULT_KEYS)
        self.keymap_name = keymap_name
        self.tick_seconds = tick
        self.history_path = history_path
        self.replay = replay
        for t in THEMES:
            self.register_theme(t)
        self.theme = theme or DARK.name
        self.set_keymap(rebinding(self.keymap))
        self.cell_palette = Palette.from_variables({})
        self.panel_errors: dict[str, str] = {}
        self.ticks = 0
        self.poll_cost = 0.0
        """Smoothed seconds one ``link.poll()`` takes."""
        self.last_key = 0.0
        self.last_poll = 0.0
        self.events_seen = 0
        self.started_at = time.time()
        self._before_prompt: Widget | None = None
        self.results: list[tuple[str, Result]] = []
        """Every command the console ran and its result, newest last (for tests and the output screen)."""

    # ------------------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        # Panels are kept by reference: the tick and the event pump never query the DOM (which is gone
        # while the app shuts down).
        self.header = EngineHeader(id="header")
        self.vrrp_panel = VrrpPanel(id="vrrp", classes="panel")
        self.vs_panel = VsPanel(id="vs", classes="panel")
        self.health_log = HealthLog(id="log", classes="panel")
        self.prompt = CommandPrompt(self.link.names, history_path=self.history_path, id="prompt")
        yield self.header
        yield self.vrrp_panel
        yield self.vs_panel
        yield self.health_log
        yield self.prompt
        yield Footer()

    @property
    def vs_table(self) -> VsTable:
        return self.vs_panel.table

    async def on_mount(self) -> None:
        self._repaint()
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        try:
            await self.link.start()
        except Exception as exc:
            log.warning("cannot reach the engine: %s", exc)
            self.notify(f"cannot reach the engine: {exc}", severity="error", timeout=10)
        self.refresh_panels()
        if self.settle_heap:
            heap.settle()
        self._next_tick = self.set_timer(self.tick_seconds, self._timed_tick, name="lvsconsole-tick")
        self.run_worker(self._pump(), name="lvsconsole-events", group="events", exit_on_error=False)
        self.vs_table.focus()

    # ------------------------------------------------------------------------------ feeding the panels

    def guard(self, name: str, widget: Widget | None, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a panel update; an exception is logged and shown on that panel, never raised."""
        try:
            result = fn(*args)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            if self.panel_errors.get(name) != message:
                log.exception("%s panel failed", name)
                self.notify(f"{name} panel failed (the engine is not affected): {message}", severity="error",
                            timeout=10)
            self.panel_errors[name] = message
            if widget is not None:
                widget.border_subtitle = f"⚠ {message}"
                widget.add_class("-failed")
            return None
        if name in self.panel_errors:
            del self.panel_errors[name]
            if widget is not None:
                widget.remove_class("-failed")
        return result

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self.last_key = time.monotonic()
        await super().on_event(event)

    async def _timed_tick(self) -> None:
        """The periodic refresh. Its period stretches when taking a snapshot gets expensive (a big table
        on a slow engine): polling then costs at most ``POLL_BUDGET`` of a core, and the servers panel
        says how often it refreshes. An expensive snapshot also waits for a pause in the typing (up to
        ``MAX_DEFER`` seconds), so that it does not stall keys held down."""
        now = time.monotonic()
        if (self.poll_cost > INPUT_QUIET and now - self.last_key < INPUT_QUIET
                and now - self.last_poll < self.refresh_period + MAX_DEFER):
            self._next_tick = self.set_timer(INPUT_QUIET, self._timed_tick, name="lvsconsole-tick")
            return
        # Beside the app's message loop, not in it: this callback runs in that loop, and awaiting the sliced
        # snapshot here would hold every key queued behind all of its slices (hundreds of ms at 11,000 rows).
        self.run_worker(self._tick_then_schedule(), name="lvsconsole-tick", group="lvsconsole-tick")

    async def _tick_then_schedule(self) -> None:
        try:
            await self._tick()
        finally:
            if self.is_running and not self._exit:
                self._next_tick = self.set_timer(self.refresh_period, self._timed_tick, name="lvsconsole-tick")

    @property
    def refresh_period(self) -> float:
        return max(self.tick_seconds, self.poll_cost / POLL_BUDGET)

    async def _tick(self) -> None:
        if not self.is_running or self._exit:
            return
        started = time.perf_counter()
        self.last_poll = time.monotonic()
        try:
            await self.link.poll()
        except Exception as exc:
            self.guard("engine", None, _raise, exc)
        cost = time.perf_counter() - started
        self.poll_cost = cost if self.ticks == 0 else 0.7 * self.poll_cost + 0.3 * cost
        self.ticks += 1
        # the loop runs between the steps: a key typed meanwhile waits for one step, not for the whole refresh
        for pause in self._refresh_steps(self.link.snapshot):
            await asyncio.sleep(pause)
        period = self.refresh_period
        self.vs_panel.refresh_note = "" if period <= self.tick_seconds * 1.05 else (
            f"refresh every {period:.1f} s (a snapshot takes {self.poll_cost * 1000:.0f} ms)")

    def refresh_panels(self, snapshot: DirectorSnapshot | None = None) -> None:
        for _ in self._refresh_steps(snapshot or self.link.snapshot):
            pass

    def _refresh_steps(self, snap: DirectorSnapshot) -> Iterator[float]:
        """Feed the panels, in steps of a few ms, each with the pause to make before the next (the servers
        table's ``update_steps``)."""
        self.guard("header", self.header, lambda: self.header.show(self.link.info(), paused=self.health_log.paused))
        self.guard("VRRP", self.vrrp_panel, self.vrrp_panel.update_from, snap)
        steps = self.vs_panel.update_steps(snap)

        def step() -> float | None:
            return next(steps, None)

        while (pause := self.guard("virtual servers", self.vs_panel, step)) is not None:
            yield pause
        finished = self.guard("virtual servers", self.vs_panel, self.vs_table.drains_finished) or []
        for vs, rs in finished:
            self.notify(f"{rs.label} in {vs.label} is drained: no active connections left", title="Drain complete")

    async def _pump(self) -> None:
        replay = self.replay
        while True:
            try:
                subscription = await self.link.subscribe(replay)
            except Exception as exc:
                log.debug("no event stream yet: %s", exc)
                await asyncio.sleep(2.0)
                continue
            replay = 0
            try:
                while True:
                    first = await subscription.get()
                    batch = [first, *subscription.drain()]
                    self.on_engine_events(batch)
                    await asyncio.sleep(0.05)
            except EOFError:
                await asyncio.sleep(1.0)
            finally:
                subscription.close()

    def on_engine_events(self, events: list[Event]) -> None:
        self.events_seen += len(events)
        self.guard("health log", self.health_log, self.health_log.add, events)
        refresh = False
        for event in events:
            if isinstance(event, VrrpTransition):
                self.guard("VRRP", self.vrrp_panel, self.vrrp_panel.table.flash_instance, event.instance,
                           event.group)
                if not self.is_replay(event):
                    self.notify(event.text(), title="VRRP", severity="warning" if event.new == "FAULT"
                                else "information")
            elif isinstance(event, ReloadApplied):
                refresh = True
        if refresh:
            self.call_later(self._tick)

    def is_replay(self, event: Event) -> bool:
        """An event from before this console started (replayed into the log): no toast for it."""
        return event.time < self.started_at

    # ------------------------------------------------------------------------------ themes

    def _theme_changed(self, theme: Theme) -> None:
        self._repaint()

    def _repaint(self) -> None:
        self.cell_palette = Palette.from_variables(self.get_css_variables())
        for name, widget, fn in (("header", self.header, self.header.repaint),
                                 ("VRRP", self.vrrp_panel, self.vrrp_panel.table.repaint),
                                 ("virtual servers", self.vs_panel, self.vs_table.repaint),
                                 ("health log", self.health_log, self.health_log.repaint)):
            self.guard(name, widget, fn, self.cell_palette)
        self.prompt.palette = self.cell_palette

    def action_toggle_theme(self) -> None:
        self.theme = LIGHT.name if self.current_theme.dark else DARK.name

    # ------------------------------------------------------------------------------ running commands

    def _report(self, command: str, result: Result, origin: Origin) -> None:
        self.results.append((command, result))
        lines = result.message.splitlines()
        if result.ok and len(lines) > OUTPUT_LINES:
            self.push_screen(OutputScreen(command, result.message))
        elif result.ok:
            self.notify(result.message or "done", title=command, timeout=6)
        elif origin != "prompt":
            self.notify(result.message or "failed", title=command, severity="error", timeout=10)

    async def execute(self, command: str, origin: Origin = "key") -> Result | None:
        """Run one line of the engine's language; ``commit`` and ``reload`` go through the diff screen."""
        pieces = split_commands(command)
        verbs = [piece.split()[0] for _, piece in pieces if piece.split()]
        if any(v in CONFIRM_FIRST for v in verbs):
            if len(pieces) > 1:
                result = Result(False, "commit and reload show their plan first: give them on their own",
                                {"error": {"message": "commit and reload show their plan first: give them on their "
                                           "own", "word": ";", "col": None}})
                if origin == "prompt":
                    self.prompt.show_result(command, result)
                self._report(command, result, origin)
                return result
            if origin == "prompt":
                self.prompt.close()
            if verbs[0] == "commit":
                self.action_commit()
            else:
                self.action_reload()
            return None
        if verbs and verbs[0] == "diff" and len(pieces) == 1:
            if origin == "prompt":
                self.prompt.close()
            self.action_diff()
            return None
        try:
            result = await self.link.run(command)
        except Exception as exc:  # the link must not take the console down either
            log.exception("command failed: %s", command)
            result = Result(False, f"internal error: {type(exc).__name__}: {exc}")
        if origin == "prompt":
            self.prompt.show_result(command, result)
        self._report(command, result, origin)
        self.call_later(self._tick)
        return result

    @on(CommandPrompt.Submitted)
    async def _prompt_submitted(self, event: CommandPrompt.Submitted) -> None:
        await self.execute(event.command, "prompt")

    @on(CommandPrompt.Closed)
    def _prompt_closed(self, event: CommandPrompt.Closed) -> None:
        back = self._before_prompt
        if back is None or not back.is_attached or not back.display or back is self.prompt.input:
            back = self.vs_table
        back.focus()

    # ------------------------------------------------------------------------------ real-server actions

    @on(VsTable.RsAction)
    def _rs_action(self, event: VsTable.RsAction) -> None:
        self.rs_action(event.kind, event.vs, event.rs, event.step)

    def rs_action(self, kind: str, vs: VirtualServerView, rs: RealServerView, step: int = 0) -> None:
        target = rs_command_target(vs, rs)
        if kind == "drain":
            self._guarded_confirm(f"Drain {rs.label} in {vs.label}?", drain_text(vs, rs), f"drain {target}", vs, rs,
                                  yes="Drain")
        elif kind == "undrain":
            self.run_command(f"undrain {target}")
        elif kind == "disable":
            self._guarded_confirm(f"Disable {rs.label} in {vs.label}?", disable_text(vs, rs), f"disable {target}",
                                  vs, rs, yes="Disable")
        elif kind == "enable":
            self.run_command(f"enable {target}")
        elif kind == "weight":
            self._ask_weight(vs, rs)
        elif kind == "checks":
            self.show_checks(vs, rs)
        elif kind == "weight_step":
            current = rs.weight_override if rs.weight_override is not None else (
                rs.weight if rs.weight is not None else rs.config_weight)
            new = max(0, current + step)
            self._set_weight(vs, rs, str(new))

    @on(VsTable.DriftRequested)
    def _drift_action(self, event: VsTable.DriftRequested) -> None:
        """Reconcile (intent back to the kernel) or adopt (the kernel's values into the candidate) the row's drift."""
        self.run_command("; ".join(f"drift {event.kind} {item_id}" for item_id in event.ids))

    @on(VsTable.DrainViewRequested)
    def show_drains(self) -> None:
        """The drain view: every watched drain's live counts, sparkline and ETA (attached consoles too)."""
        self.push_screen(DrainScreen(lambda: self.link.run("show drain")))

    def show_checks(self, vs: VirtualServerView, rs: RealServerView) -> None:
        """The flight recorder of ``rs`` in ``vs`` (through the link's commands: attached consoles too)."""
        target = rs_command_target(vs, rs)
        self.push_screen(ChecksScreen(f"{rs.label} in {vs.label}", lambda: self.link.run(f"show checks {target}"),
                                      lambda: self.link.run(f"check now {target}")))

    def _set_weight(self, vs: VirtualServerView, rs: RealServerView, value: str) -> None:
        command = f"weight {rs.label} {value} in {rs_command_target(vs, rs).partition(' in ')[2]}"
        number = int(value.rstrip("%"))
        if number == 0:
            self._confirm(f"Weight 0 for {rs.label} in {vs.label}?", drain_text(vs, rs), command, yes="Set weight 0")
        else:
            self.run_command(command)

    def _ask_weight(self, vs: VirtualServerView, rs: RealServerView) -> None:
        now = "not in the table" if rs.weight is None else f"{rs.weight} now"
        body = (f"{rs.label} in {vs.label}: configured {rs.config_weight}, {now}.\n"
                "N sets the weight; N% is a share of the configured weight (50% → "
                f"{round(rs.config_weight * 0.5)}). 0 stops new connections (like drain).")

        def answered(value: str | None) -> None:
            if value:
                self._set_weight(vs, rs, value.replace(" ", ""))

        current = rs.weight_override if rs.weight_override is not None else rs.config_weight
        self.push_screen(AskScreen(f"Weight of {rs.label}", body, value=str(current), placeholder="N or N%",
                                   check=weight_error), answered)

    def _confirm(self, title: str, body: str | Text, command: str, *, yes: str = "Yes") -> None:
        def answered(ok: bool | None) -> None:
            if ok:
                self.run_command(command)
            else:
                self.notify(f"cancelled: {command}", timeout=3)

        self.push_screen(ConfirmScreen(title, body, yes=yes, no="Cancel"), answered)

    def _guarded_confirm(self, title: str, body: Text, command: str, vs: VirtualServerView, rs: RealServerView,
                         *, yes: str) -> None:
        """Confirm with the blast radius shown; when the change endangers the virtual server (no healthy server
        left, below quorum or min_healthy) ask a second time, then send it with --force."""
        radii = blast_radius([vs], {vs.key: {rs.key}})
        shown = body.copy()
        for radius in radii:
            shown.append(f"\n{radius.text()}")
        problems = [problem for radius in radii for problem in radius.problems]
        if not problems:
            self._confirm(title, shown, command, yes=yes)
            return

        def again(ok: bool | None) -> None:
            if ok:
                self.run_command(f"{command} --force")
            else:
                self.notify(f"cancelled: {command}", timeout=3)

        def first(ok: bool | None) -> None:
            if not ok:
                self.notify(f"cancelled: {command}", timeout=3)
                return
            warning = Text("\n".join(f"⚠ {problem}" for problem in problems), style="bold red")
            warning.append("\nThe engine refuses this without a second confirmation.", style="")
            self.push_screen(ConfirmScreen(f"Really {yes.lower()} {rs.label}?", warning, yes=f"{yes} anyway",
                                           no="Cancel"), again)

        self.push_screen(ConfirmScreen(title, shown, yes=yes, no="Cancel"), first)

    @work(group="commands", exit_on_error=False)
    async def run_command(self, command: str, origin: Origin = "key") -> None:
        await self.execute(command, origin)

    @on(VrrpTable.Failover)
    def _failover(self, event: VrrpTable.Failover) -> None:
        self.failover(event.instance)

    @on(VrrpTable.Explain)
    def _explain(self, event: VrrpTable.Explain) -> None:
        name = event.instance.name
        self.push_screen(ExplainScreen(name, lambda: self.link.run(f"show vrrp explain {name}")))

    @on(VrrpTable.Radar)
    def _radar(self, event: VrrpTable.Radar) -> None:
        self.push_screen(RadarScreen(lambda: self.link.run("show vrrp radar")))

    def failover(self, inst: VrrpInstanceView) -> None:
        body = (f"{inst.name} is {inst.state} (priority {inst.priority}). It sends priority 0 and stays BACKUP "
                f"until the peer has taken over; its VIPs ({', '.join(inst.vips) or 'none'}) move to the peer.")
        self._confirm(f"Failover {inst.name}?", body, f"vrrp failover {inst.name}", yes="Failover")

    # ------------------------------------------------------------------------------ app actions

    async def action_quit(self) -> None:
        if isinstance(self.screen, QuitScreen):
            return
        if not isinstance(self.link, EmbeddedLink):
            self.exit("detach")
            return
        from lvsconsole.tui.handoff import file_differs

        link = self.link
        unsaved = file_differs(link.engine)

        async def handoff(progress: Callable[[str], None]) -> str:
            return await link.handoff(progress, write_first=unsaved)

        def answered(choice: str | None) -> None:
            if choice in ("stop", "handoff"):
                self.exit(choice)

        self.push_screen(QuitScreen(config_file=link.engine.store.path,
                                    handoff=handoff if link.engine.store.path else None, unsaved=unsaved,
                                    instances=len(self.link.snapshot.instances),
                                    socket_path=link.socket_path or "/run/lvsconsole/lvsconsole.sock"), answered)

    def action_help(self) -> None:
        active = {b.binding.id for b in self.screen.active_bindings.values() if b.binding.id}
        self.push_screen(HelpScreen(self.keymap, self.keymap_name, active))

    def action_prompt(self) -> None:
        if self.focused is not self.prompt.input:
            self._before_prompt = self.focused
        self.prompt.open()

    def action_focus_panel(self, name: str) -> None:
        target: Widget = {"vrrp": self.vrrp_panel.table, "vs": self.vs_table,
                          "log": self.health_log.view}.get(name, self.vs_table)
        if target.display:
            target.focus()

    def action_pause_log(self) -> None:
        paused = self.health_log.toggle_pause()
        self.guard("header", self.header, lambda: self.header.show(self.link.info(), paused=paused))

    @work(exclusive=True, group="plan", exit_on_error=False)
    async def action_commit(self) -> None:
        """Show the candidate's plan; commit only if the operator accepts it."""
        preview = await self.link.preview_commit()
        if await self.push_screen_wait(DiffScreen(preview, self.link.snapshot, action="Commit")):
            await self._apply("commit")

    def action_diff(self) -> None:
        """The same view as commit (accepting it commits)."""
        self.action_commit()

    @work(exclusive=True, group="plan", exit_on_error=False)
    async def action_reload(self) -> None:
        """Show what re-reading the config file would change; reload only if accepted."""
        preview = await self.link.preview_reload()
        if await self.push_screen_wait(DiffScreen(preview, self.link.snapshot, action="Reload")):
            await self._apply("reload")

    async def _apply(self, verb: str) -> None:
        try:
            result = await self.link.run(verb)
        except Exception as exc:
            log.exception("%s failed", verb)
            result = Result(False, f"internal error: {type(exc).__name__}: {exc}")
        self.results.append((verb, result))
        first = result.message.splitlines()[0] if result.message else verb
        self.notify(first, title=verb, severity="information" if result.ok else "error", timeout=8)
        await self._tick()

    @work(exclusive=True, group="editor", exit_on_error=False)
    async def action_edit(self) -> None:
        candidate = await self.link.candidate()
        await self.push_screen_wait(EditorScreen(self.link, candidate))
        self.refresh_panels()

    # ------------------------------------------------------------------------------ palette hooks

    def palette_actions(self) -> list[Action]:
        return [
            ("Commit the candidate configuration", "shows the plan (diff) first", self.action_commit),
            ("Reload the configuration file", "shows the plan (diff) first", self.action_reload),
            ("Show the candidate diff", "candidate vs running", self.action_diff),
            ("Edit the candidate configuration", "editor with live diagnostics", self.action_edit),
            ("Command prompt", "the engine's command language", self.action_prompt),
            ("Pause or resume the health log", "events keep arriving", self.action_pause_log),
            ("Filter the virtual servers", "words to match", self.vs_panel.open_filter),
            ("Switch light/dark theme", "lvs-light / lvs-dark", self.action_toggle_theme),
            ("Show the runtime overrides", "show overrides", lambda: self.run_command("show overrides", "palette")),
            ("Watch the drains", "live counts, sparkline and ETA of draining servers (W)", self.show_drains),
            ("Show the config history", "show history", lambda: self.run_command("show history", "palette")),
            ("Keys and commands", "help", self.action_help),
            ("Quit", "asks what to do with an embedded director", self.action_quit),
        ]

    def palette_snapshot(self) -> DirectorSnapshot:
        return self.link.snapshot

    def palette_rs_action(self, kind: str, vs_key: str, rs_key: str) -> None:
        vs, rs = find_pair(self.link.snapshot, vs_key, rs_key)
        if vs is None or rs is None:
            self.notify("that real server is gone", severity="warning")
            return
        self.vs_table.select(vs_key, rs_key)
        self.rs_action(kind, vs, rs)

    def palette_failover(self, instance: str) -> None:
        inst = self.link.snapshot.instance(instance)
        if inst is not None:
            self.failover(inst)

    def palette_run(self, command: str) -> None:
        self.run_command(command, "palette")


def _raise(exc: BaseException) -> None:
    raise exc


def drain_text(vs: VirtualServerView, rs: RealServerView) -> Text:
    others = [r for r in vs.real_servers if r.key != rs.key and r.health == "up" and (r.weight or 0) > 0]
    text = Text()
    before = "out of the table" if rs.weight is None else f"weight {rs.weight}"
    text.append(f"{before} → 0. New connections go to the other {len(others)} real server"
                f"{'s' * (len(others) != 1)} of {vs.label}; ")
    text.append(f"{rs.active_conns} active connection{'s' * (rs.active_conns != 1)}", style="bold")
    text.append(" finish on their own (watch ACTIVE fall; you are told when it reaches 0).")
    if vs.persistence_timeout:
        text.append(f"\nPersistent clients keep coming back for up to {vs.persistence_timeout} s "
                    "(the persistence templates).")
    if not others:
        text.append(f"\n⚠ No other real server of {vs.label} takes new connections: they will fail "
                    "(or go to the sorry server).", style="bold red")
    return text


def disable_text(vs: VirtualServerView, rs: RealServerView) -> Text:
    text = Text()
    text.append(f"{rs.label} goes into maint: it leaves the IPVS table of {vs.label} and its health checks pause. ")
    text.append(f"{rs.active_conns} active connection{'s' * (rs.active_conns != 1)}", style="bold")
    text.append(" lose their real server. Drain first (d) to let them finish.")
    return text
