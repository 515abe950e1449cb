"""The VRRP wire radar (``show vrrp radar``), refreshed every second while open.

One row per (interface, VRID, sender) heard on the wire, the dual-master alarms above them. The rows come from
the command's JSON, so an attached console shows exactly what ``lvsconsole ctl --json show vrrp radar`` would.
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

REFRESH = 1.0
COLUMNS = ("IF", "VRID", "OURS", "SENDER", "PRIO", "ADVERT", "LAST", "COUNT", "MEAN", "JITTER", "VIPS", "STATE",
           "NOTES")

Fetch = Callable[[], Awaitable[Result]]


def _state(row: dict[str, Any]) -> Text:
    if row.get("dual_master"):
        return Text(" DUAL MASTER ", style="bold white on red")
    if row.get("advertising"):
        return Text("master", style="green")
    return Text("resigned" if row.get("priority") == 0 else "quiet", style="dim")


def _notes(row: dict[str, Any]) -> Text:
    notes = Text()
    for mismatch in row.get("mismatches") or ():
        if mismatch != "vips":
            notes.append(f"{mismatch} differs  ", style="yellow")
    if row.get("collision"):
        notes.append(f"COLLISION: {row['collision']}  ", style="bold red")
    if row.get("malformed"):
        notes.append(f"{row['malformed']} malformed ({row.get('last_error')})", style="red")
    return notes if notes.plain else Text("-", style="dim")


def _seconds(value: object, unit: str = "s") -> str:
    if not isinstance(value, int | float):
        return "-"
    return f"{value * 1000:.0f}ms" if unit == "ms" else f"{value:.3f}s"


def _advert(row: dict[str, Any]) -> str:
    """Version, interval and (VRRPv2) authentication type: "v2 1s PASS"."""
    if row.get("version") is None:
        return "-"
    parts = [f"v{row['version']}", f"{row.get('interval', 0):g}s"]
    if row.get("auth_type"):
        parts.append(str(row["auth_type"]))
    return " ".join(parts)


def radar_row(row: dict[str, Any]) -> list[object]:
    """The cells of one sender, from its ``show vrrp radar`` JSON."""
    return [
        row.get("interface", "-"), str(row.get("vrid", "-")), row.get("instance") or "-",
        f"{row.get('sender', '-')} (self)" if row.get("ours") else row.get("sender", "-"),
        "-" if row.get("priority") is None else str(row["priority"]), _advert(row),
        f"{row.get('age', 0):.1f}s ago", str(row.get("count", 0)),
        _seconds(row.get("mean_interval")), _seconds(row.get("jitter"), "ms"),
        ", ".join(row.get("vips") or ()) or "-", _state(row), _notes(row),
    ]


def alarm_text(data: dict[str, Any]) -> Text:
    alarms = data.get("alarms") or []
    if not alarms:
        heard = len(data.get("senders") or [])
        return Text(f"no dual master · {heard} sender{'s' * (heard != 1)} heard · {data.get('packets', 0)} packets",
                    style="green")
    text = Text()
    for alarm in alarms:
        who = ", ".join(f"{s['sender']} (priority {s['priority']})" for s in alarm.get("senders", ()))
        ours = f" ({alarm['instance']})" if alarm.get("instance") else ""
        text.append(f" DUAL MASTER: VRID {alarm['vrid']}{ours} on {alarm['interface']} for {alarm['for']:.0f}s: "
                    f"{who} \n", style="bold white on red")
    text.rstrip()
    return text


class RadarScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = list(bindings.CLOSE)

    DEFAULT_CSS = """
    #radar-dialog {
        width: 96%;
        height: 90%;
        border: thick $primary;
        background: $surface;
        padding: 1 2;
    }
    #radar-alarms {
        margin-bottom: 1;
    }
    #radar-table {
        height: 1fr;
    }
    #radar-hint {
        color: $foreground-muted;
    }
    """

    def __init__(self, fetch: Fetch) -> None:
        super().__init__(classes="dialog")
        self.fetch = fetch
        self.data: dict[str, Any] = {}
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="radar-dialog"):
            yield Label("VRRP wire radar: every advert heard, per VRID and sender", id="dialog-title")
            yield Static("…", id="radar-alarms")
            yield DataTable(id="radar-table", cursor_type="row", zebra_stripes=True)
            yield Static("refreshed every second · Esc/q closes", id="radar-hint")

    async def on_mount(self) -> None:
        table = self.query_one("#radar-table", DataTable)
        for label in COLUMNS:
            table.add_column(label, key=label)
        await self.reload()
        self.set_interval(REFRESH, self.reload)

    async def reload(self) -> None:
        try:
            result = await self.fetch()
        except Exception as exc:  # the engine went away: say so, keep the screen
            result = Result(False, f"cannot reach the engine: {exc}")
        if result.ok and isinstance(result.data, dict):
            self.data, self.error = result.data, None
        else:
            self.error = result.message
        if self.is_attached:
            self._draw()

    def _draw(self) -> None:
        alarms = self.query_one("#radar-alarms", Static)
        alarms.update(Text(self.error, style="red") if self.error is not None else alarm_text(self.data))
        table = self.query_one("#radar-table", DataTable)
        cursor = table.cursor_row
        table.clear(columns=False)
        for row in self.data.get("senders") or ():
            table.add_row(*radar_row(row), key=f"{row['interface']}|{row['family']}|{row['vrid']}|{row['sender']}")
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))

    def action_close(self) -> None:
        self.dismiss(None)
