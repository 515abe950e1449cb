"""The health-check flight recorder of one real server (``show checks RS in VS``), refreshed while it is open.

Per checker: the flap score, transitions, latency p50/p95, a latency sparkline (failures marked) and the last
probes, newest first, with the exact reason (refused, timeout, HTTP status, TLS error…). A key runs
``check now``. Everything comes from the engine's commands and their JSON, so an attached console (the
control socket) shows exactly what an embedded one does.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from lvsconsole.check.recorder import FAILED_MARK
from lvsconsole.engine.commands import Result
from lvsconsole.tui import bindings

REFRESH = 1.0
"""Seconds between refreshes (a check every delay_loop: a second is plenty)."""

SHOWN = 20
"""Probes listed per checker (the sparkline shows the whole window)."""

Fetch = Callable[[], Awaitable[Result]]


def _ms(seconds: object) -> str:
    return f"{float(seconds) * 1000:.1f} ms" if isinstance(seconds, int | float) else "-"


def _clock(t: object) -> str:
    if not isinstance(t, int | float):
        return "-"
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t % 1 * 1000):03d}"


def _flap_style(score: float) -> str:
    return "red" if score >= 0.2 else "yellow" if score > 0.05 else "green"


def checker_panel(checker: Mapping[str, Any], shown: int = SHOWN) -> RenderableType:
    """One checker's recorder (a ``show checks`` JSON item) as Rich renderables."""
    probes: Sequence[Mapping[str, Any]] = checker.get("probes", [])
    failures = sum(1 for p in probes if not p.get("ok"))
    score = float(checker.get("flap_score", 0.0))
    title = Text.assemble(
        (f"{checker.get('kind') or 'check'} #{checker.get('checker', 0)}", "bold"),
        (f"  {checker.get('target', '')}", "dim"))
    summary = Text.assemble(
        "flap score ", (f"{score:.2f}", _flap_style(score)),
        f"   transitions {checker.get('transitions', 0)}   failed {failures}/{len(probes)}",
        f"   latency p50 {_ms(checker.get('latency_p50'))}  p95 {_ms(checker.get('latency_p95'))}",
        (f"   (window {checker.get('capacity', '?')})", "dim"))
    spark = Text("latency  ")
    for ch in str(checker.get("sparkline", "")):
        spark.append(ch, style="bold red" if ch == FAILED_MARK else "cyan")
    if not probes:
        return Group(title, summary, Text("no probe recorded yet", style="dim"))
    table = Table(box=None, padding=(0, 2), show_edge=False, header_style="bold")
    for column, justify in (("TIME", "left"), ("RESULT", "left"), ("LATENCY", "right"), ("CODE", "left"),
                            ("REASON", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for p in list(reversed(probes))[:shown]:
        ok = bool(p.get("ok"))
        table.add_row(_clock(p.get("time")), Text("ok" if ok else "FAIL", style="green" if ok else "bold red"),
                      _ms(p.get("latency")), Text(str(p.get("code", "")), style="" if ok else "red"),
                      str(p.get("reason") or p.get("detail") or ""))
    return Group(title, summary, spark, Text(""), table)


class ChecksScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [*bindings.CHECKS, *bindings.CLOSE]

    DEFAULT_CSS = """
    #checks-dialog {
        width: 90%;
        height: 85%;
        border: thick $primary;
        background: $surface;
        padding: 1 2;
    }
    #checks-body {
        height: 1fr;
    }
    #checks-status, #checks-hint {
        color: $foreground-muted;
    }
    """

    def __init__(self, title: str, fetch: Fetch, run_now: Fetch) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.fetch = fetch
        self.run_now = run_now
        self.result: Result | None = None
        self.last_check: Result | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="checks-dialog"):
            yield Label(f"Health checks of {self.title_text}", id="dialog-title")
            with VerticalScroll(id="checks-body"):
                yield Static("…", id="checks-text")
            yield Static("", id="checks-status")
            yield Static(f"{self._key('checks.now')} checks now · refreshed every second · Esc/q closes",
                         id="checks-hint")

    def _key(self, binding_id: str) -> str:
        keymap = getattr(self.app, "keymap", None)
        keys = keymap.get(binding_id) if isinstance(keymap, dict) else None
        if isinstance(keys, str) and keys:
            return keys.split(",")[0]
        return bindings.DEFAULT_KEYS.get(binding_id, "?")

    async def on_mount(self) -> None:
        await self.reload()
        self.set_interval(REFRESH, self.reload)

    async def reload(self) -> None:
        try:
            result = await self.fetch()
        except Exception as exc:  # the engine went away: say so, keep the screen
            result = Result(False, f"cannot reach the engine: {exc}")
        self.result = result
        if not self.is_attached:
            return
        body: RenderableType
        if result.ok and isinstance(result.data, list):
            panels = [checker_panel(c) for c in result.data if isinstance(c, Mapping)]
            body = Group(*[part for panel in panels for part in (panel, Text(""))]) if panels else Text(
                "no health checks on this real server", style="dim")
        else:
            body = Text(result.message, style="red", no_wrap=True)
        self.query_one("#checks-text", Static).update(body)

    async def action_check_now(self) -> None:
        self.query_one("#checks-status", Static).update("checking…")
        try:
            result = await self.run_now()
        except Exception as exc:
            result = Result(False, f"cannot reach the engine: {exc}")
        self.last_check = result
        if self.is_attached:
            self.query_one("#checks-status", Static).update(
                Text(result.message, style="green" if result.ok else "red", no_wrap=True))
        await self.reload()

    def action_close(self) -> None:
        self.dismiss(None)
