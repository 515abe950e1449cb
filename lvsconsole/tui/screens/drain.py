"""The drain view (``show drain``), refreshed several times a second while open.

One row per watched real server: phase, ActiveConn / InActConn / PersistConn at the last sample, a sparkline
of ActiveConn at the sampling rate, how fast it falls and the ETA fitted to the decay. The rows come from the
command's JSON, so an attached console shows exactly what ``lvsconsole ctl --json show drain`` would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from lvsconsole.engine.commands import Result
from lvsconsole.tui import bindings
from lvsconsole.tui.format import sparkline

REFRESH = 0.25
"""Faster than the default 5 Hz sampling would need to look smooth; each refresh is one ``show drain``."""
SPARK_WIDTH = 20
COLUMNS = ("REAL SERVER", "VIRTUAL SERVER", "PHASE", "ACTIVE", "INACT", "PERSIST", "ACTIVE, LAST MINUTE", "FALL",
           "ETA", "SAMPLES")
PHASE_STYLES = {"draining": "yellow", "held": "cyan", "empty": "green", "removed": "green", "timed-out": "bold red"}

Fetch = Callable[[], Awaitable[Result]]


def _count(value: object) -> str:
    return str(value) if isinstance(value, int) else "-"


def _phase(row: dict[str, Any]) -> Text:
    phase = str(row.get("phase", "-"))
    plan = row.get("plan") or {}
    then = "→maint" if plan.get("then_remove") and phase == "draining" else ""
    return Text(phase + then, style=PHASE_STYLES.get(phase, ""))


def _eta(row: dict[str, Any]) -> Text:
    eta = row.get("eta")
    if row.get("phase") != "draining":
        return Text("-", style="dim")
    if not isinstance(eta, int | float):
        return Text("unknown", style="dim")
    return Text(f"{eta:.0f}s" if eta < 600 else f"{eta / 60:.0f}m", style="bold")


def _fall(row: dict[str, Any]) -> str:
    rate = row.get("rate")
    if not isinstance(rate, int | float) or rate <= 0:
        return "-"
    model = "exp" if row.get("model") == "exponential" else "lin"
    return f"{rate:.1f}/s {model}"


def _samples(row: dict[str, Any]) -> str:
    hz = row.get("sample_hz")
    rate = f" @{hz:.1f}Hz" if isinstance(hz, int | float) else ""
    return f"{row.get('samples', 0)}{rate}"


def drain_row(row: dict[str, Any], spark_width: int = SPARK_WIDTH) -> list[object]:
    """The cells of one watched server, from its ``show drain`` JSON."""
    series = [int(v) for v in row.get("active_series") or ()]
    return [
        row.get("rs", "-"), row.get("vs", "-"), _phase(row), _count(row.get("active")), _count(row.get("inactive")),
        _count(row.get("persist")), Text(sparkline(series, spark_width), style="yellow"), _fall(row), _eta(row),
        _samples(row),
    ]


def summary(rows: list[dict[str, Any]]) -> Text:
    if not rows:
        return Text("no drain is watched: drain a real server (d) to watch its connections end", style="dim")
    live = [r for r in rows if r.get("phase") == "draining"]
    etas = [r["eta"] for r in live if isinstance(r.get("eta"), int | float)]
    text = Text(f"{len(live)} draining, {len(rows) - len(live)} settled")
    if etas:
        text.append(f" · all empty in about {max(etas):.0f}s", style="bold")
    if any(r.get("persist") for r in rows):
        text.append(" · persistence templates may bring clients back until they expire", style="dim")
    return text


class DrainScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = list(bindings.CLOSE)

    DEFAULT_CSS = """
    #drain-dialog {
        width: 96%;
        height: 90%;
        border: thick $primary;
        background: $surface;
        padding: 1 2;
    }
    #drain-summary {
        margin-bottom: 1;
    }
    #drain-table {
        height: 1fr;
    }
    #drain-hint {
        color: $foreground-muted;
    }
    """

    def __init__(self, fetch: Fetch, *, refresh: float = REFRESH) -> None:
        super().__init__(classes="dialog")
        self.fetch = fetch
        self.refresh_every = refresh
        self.rows: list[dict[str, Any]] = []
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="drain-dialog"):
            yield Label("Drains: connections of draining real servers, sampled from the IPVS table",
                        id="dialog-title")
            yield Static("…", id="drain-summary")
            yield DataTable(id="drain-table", cursor_type="row", zebra_stripes=True)
            yield Static("ETA fitted to the fall of ActiveConn · Esc/q closes", id="drain-hint")

    async def on_mount(self) -> None:
        table = self.query_one("#drain-table", DataTable)
        for label in COLUMNS:
            table.add_column(label, key=label)
        await self.reload()
        self.set_interval(self.refresh_every, self.reload)

    async def reload(self) -> None:
        try:
            result = await self.fetch()
        except Exception as exc:  # the engine went away: say so, keep the screen
            result = Result(False, f"cannot reach the engine: {exc}")
        if result.ok and isinstance(result.data, list):
            self.rows, self.error = result.data, None
        else:
            self.error = result.message
        if self.is_attached:
            self._draw()

    def _draw(self) -> None:
        head = self.query_one("#drain-summary", Static)
        head.update(Text(self.error, style="red") if self.error is not None else summary(self.rows))
        table = self.query_one("#drain-table", DataTable)
        cursor = table.cursor_row
        table.clear(columns=False)
        for row in self.rows:
            table.add_row(*drain_row(row), key=f"{row.get('vs')}|{row.get('rs')}")
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))

    def action_close(self) -> None:
        self.dismiss(None)
