"""The health-check flight recorder of one real server (``show checks RS in VS``), refreshed while it is open.

Per checker: the flap score, transitions, latency p50/p95, a latency sparkline (failures marked) and the last
probes, newest first, with the exact reason (refused, timeout, HTTP status, TLS error…). A key runs
``check now``. Everything comes from the engine's commands and their JSON, so an attached console (the
control socket) shows exactly what an embedded one does.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import Static

from lvsconsole.check.recorder import FAILED_MARK
from lvsconsole.engine.commands import Result
from lvsconsole.tui import bindings
from lvsconsole.tui.screens.live import Fetch, LiveTextScreen, call_engine

SHOWN = 20
"""Probes listed per checker (the sparkline shows the whole window)."""


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


class ChecksScreen(LiveTextScreen):
    BINDINGS: ClassVar[list[BindingType]] = [*bindings.CHECKS, *bindings.CLOSE]

    ID_PREFIX = "checks"
    REFRESH = 1.0
    """A check runs every delay_loop: a second is plenty."""

    def __init__(self, title: str, fetch: Fetch, run_now: Fetch) -> None:
        super().__init__(fetch)
        self.title_text = title
        self.run_now = run_now
        self.last_check: Result | None = None

    def heading(self) -> str:
        return f"Health checks of {self.title_text}"

    def hint(self) -> str:
        return f"{self._key('checks.now')} checks now · {self.HINT}"

    def compose_body(self) -> ComposeResult:
        yield from super().compose_body()
        yield Static("", id="checks-status", classes="live-muted")

    def _key(self, binding_id: str) -> str:
        keymap = getattr(self.app, "keymap", None)
        keys = keymap.get(binding_id) if isinstance(keymap, dict) else None
        if isinstance(keys, str) and keys:
            return keys.split(",")[0]
        return bindings.DEFAULT_KEYS.get(binding_id, "?")

    def accept(self, result: Result) -> bool:
        return super().accept(result) and isinstance(result.data, list)

    def body(self, result: Result) -> RenderableType:
        panels = [checker_panel(c) for c in result.data if isinstance(c, Mapping)]
        if not panels:
            return Text("no health checks on this real server", style="dim")
        return Group(*[part for panel in panels for part in (panel, Text(""))])

    async def action_check_now(self) -> None:
        self.query_one("#checks-status", Static).update("checking…")
        result = await call_engine(self.run_now)
        self.last_check = result
        if self.is_attached:
            self.query_one("#checks-status", Static).update(
                Text(result.message, style="green" if result.ok else "red", no_wrap=True))
        await self.reload()
