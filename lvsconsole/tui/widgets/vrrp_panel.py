"""The VRRP panel: sync groups and instances with a state badge, priorities (and what changed them), the
master's address, advert interval, time in state and counters. A state change makes its row flash."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Static
from textual.widgets.data_table import ColumnKey, RowKey

from lvsconsole.engine.director_api import DirectorSnapshot, VrrpInstanceView
from lvsconsole.tui import bindings
from lvsconsole.tui.format import STATE_STYLES, duration
from lvsconsole.tui.themes import DEFAULT_PALETTE, Palette

FLASH_SECONDS = 4.0
BLINK = 0.5

# STATE sizes itself: a split brain's badge ("SPLIT BRAIN vs 10.0.0.2") is wider than a state's
COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("name", "INSTANCE", 14), ("state", "STATE", None), ("prio", "PRIORITY", 24), ("vrid", "VRID", 4),
    ("iface", "IF", 6), ("master", "MASTER", 15), ("advert", "ADVERT", 6), ("since", "IN STATE", 8),
    ("sent", "SENT", 6), ("rcvd", "RCVD", 6), ("became", "→MASTER", 7), ("errors", "ERRORS", 6),
    ("vips", "VIPS", 20),
)
ERROR_COUNTERS = ("packet_len_err", "ip_ttl_err", "invalid_type_rcvd", "vers_err", "chk_err", "addr_list_err",
                  "invalid_authtype", "authtype_mismatch", "auth_failure", "proto_err", "advert_int_err")


def priority_text(inst: VrrpInstanceView) -> str:
    """Effective priority and what made it differ from the configured one."""
    if inst.runtime_priority is not None:
        return f"{inst.priority} (runtime, base {inst.base_priority})"
    if inst.priority != inst.base_priority:
        return f"{inst.priority} (track {inst.priority - inst.base_priority:+d}, base {inst.base_priority})"
    return str(inst.priority)


def group_state(members: list[VrrpInstanceView]) -> str:
    states = {m.state for m in members}
    return states.pop() if len(states) == 1 else "MIXED"


class VrrpTable(DataTable[Any]):
    BINDINGS: ClassVar[list[BindingType]] = [*bindings.NAV_TABLE, *bindings.VRRP]

    class Failover(Message):
        def __init__(self, instance: VrrpInstanceView) -> None:
            super().__init__()
            self.instance = instance

    class Explain(Message):
        """Open the election detail view of ``instance``."""

        def __init__(self, instance: VrrpInstanceView) -> None:
            super().__init__()
            self.instance = instance

    class Radar(Message):
        """Open the VRRP wire radar (every sender of every VRID heard, not only the selected instance's)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", **kwargs)
        self.palette = DEFAULT_PALETTE
        self.snapshot: DirectorSnapshot | None = None
        self._structure: tuple[str, ...] = ()
        self._states: dict[str, str] = {}
        self._flash: dict[str, float] = {}
        self._blink_on = True
        self._blinker: Timer | None = None

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, width=width, key=key)

    def _rows(self, snapshot: DirectorSnapshot) -> list[tuple[str, str, list[VrrpInstanceView]]]:
        """(row key, name, members): a sync group row precedes its instances."""
        groups: dict[str, list[VrrpInstanceView]] = {}
        for inst in snapshot.instances:
            if inst.sync_group:
                groups.setdefault(inst.sync_group, []).append(inst)
        rows: list[tuple[str, str, list[VrrpInstanceView]]] = []
        for name, members in groups.items():
            rows.append((f"g|{name}", name, members))
            rows.extend((f"i|{m.name}", m.name, [m]) for m in members)
        rows.extend((f"i|{i.name}", i.name, [i]) for i in snapshot.instances if not i.sync_group)
        return rows

    def update_from(self, snapshot: DirectorSnapshot) -> list[tuple[str, str, str]]:
        """Redraw; returns the state changes seen since the last snapshot (name, old, new)."""
        self.snapshot = snapshot
        rows = self._rows(snapshot)
        structure = tuple(key for key, _, _ in rows)
        changes: list[tuple[str, str, str]] = []
        for key, name, members in rows:
            state = group_state(members)
            old = self._states.get(key)
            if old is not None and old != state:
                changes.append((name, old, state))
                self.flash(key)
            self._states[key] = state
        if structure != self._structure:
            self.clear(columns=False)
            for key, _, _ in rows:
                self.add_row(*([""] * len(COLUMNS)), key=key)
            self._structure = structure
        for key, name, members in rows:
            self._render_row(key, name, members, snapshot.time)
        return changes

    def flash(self, key: str) -> None:
        self._flash[key] = time.monotonic() + FLASH_SECONDS
        if self._blinker is None:
            self._blinker = self.set_interval(BLINK, self._blink)

    def flash_instance(self, name: str, group: bool = False) -> None:
        self.flash(f"{'g' if group else 'i'}|{name}")

    def _blink(self) -> None:
        now = time.monotonic()
        self._flash = {k: t for k, t in self._flash.items() if t > now}
        self._blink_on = not self._blink_on
        if not self._flash and self._blinker is not None:
            self._blinker.stop()
            self._blinker = None
            self._blink_on = True
        if self.snapshot is not None:
            for key, name, members in self._rows(self.snapshot):
                self._render_row(key, name, members, self.snapshot.time)

    def _render_row(self, key: str, name: str, members: list[VrrpInstanceView], now: float) -> None:
        if key not in self._structure:
            return
        p = self.palette
        flashing = key in self._flash and self._blink_on
        state = group_state(members)
        badge = Text(f" {state} ", style=p.badge(STATE_STYLES.get(state, "warning")))
        split_brain = members[0].split_brain if key.startswith("i|") else None
        if split_brain:
            badge = Text(f" SPLIT BRAIN vs {split_brain} ", style=p.badge("error"))
        if flashing:
            badge.stylize("reverse")
        row_key = RowKey(key)
        if key.startswith("g|"):
            cells: list[Any] = [Text(f"group {name}", style=p.style("accent", bold=True)), badge,
                                Text(f"{len(members)} instance{'s' * (len(members) != 1)}",
                                     style=p.style("foreground-muted"))] + [""] * (len(COLUMNS) - 3)
        else:
            inst = members[0]
            c = inst.counters
            errors = sum(c.get(n, 0) for n in ERROR_COUNTERS)
            prio_style = "warning" if inst.priority != inst.base_priority or inst.runtime_priority is not None \
                else "foreground"
            indent = "  " if inst.sync_group else ""
            master = inst.master or "-"
            cells = [
                Text(indent + inst.name, style=p.style("foreground", bold=True)),
                badge,
                Text(priority_text(inst), style=p.style(prio_style)),
                str(inst.vrid), inst.interface or "-",
                Text(master, style=p.style("success" if inst.state == "MASTER" else "foreground")),
                f"{inst.advert_int:g}s",
                "-" if inst.since is None else duration(now - inst.since),
                str(c.get("advert_sent", 0)), str(c.get("advert_rcvd", 0)), str(c.get("become_master", 0)),
                Text(str(errors), style=p.style("error" if errors else "foreground-muted")),
                ", ".join(inst.vips) or "-",
            ]
        if flashing:
            cells[0] = Text.assemble(cells[0] if isinstance(cells[0], Text) else Text(str(cells[0])))
            cells[0].stylize("reverse")
        for (column, _, width), cell in zip(COLUMNS, cells, strict=True):
            self.update_cell(row_key, ColumnKey(column), cell, update_width=width is None)

    def repaint(self, palette: Palette) -> None:
        self.palette = palette
        if self.snapshot is not None:
            for key, name, members in self._rows(self.snapshot):
                self._render_row(key, name, members, self.snapshot.time)

    def selected_instance(self) -> VrrpInstanceView | None:
        if self.snapshot is None or not self.row_count:
            return None
        row_key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        key = str(row_key.value)
        if not key.startswith("i|"):
            return None
        return self.snapshot.instance(key[2:])

    def action_failover(self) -> None:
        inst = self.selected_instance()
        if inst is None:
            self.notify("select a VRRP instance first", severity="warning")
            return
        self.post_message(self.Failover(inst))

    def action_explain(self) -> None:
        inst = self.selected_instance()
        if inst is None:
            self.notify("select a VRRP instance first", severity="warning")
            return
        self.post_message(self.Explain(inst))

    def action_radar(self) -> None:
        self.post_message(self.Radar())


class VrrpPanel(Vertical):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.border_title = "VRRP"
        self.table = VrrpTable(id="vrrp-table")

    def compose(self) -> ComposeResult:
        yield self.table
        yield Static("no vrrp_instance in this configuration", id="vrrp-empty", classes="empty-note")

    def update_from(self, snapshot: DirectorSnapshot) -> list[tuple[str, str, str]]:
        changes = self.table.update_from(snapshot)
        empty = not snapshot.instances
        self.query_one("#vrrp-empty", Static).display = empty
        self.table.display = not empty
        self.set_class(empty, "-empty")
        masters = sum(1 for i in snapshot.instances if i.state == "MASTER")
        self.border_subtitle = (f"{len(snapshot.instances)} instance{'s' * (len(snapshot.instances) != 1)}, "
                                f"{masters} MASTER") if snapshot.instances else ""
        return changes
