"""The virtual-server panel: the ipvsadm tree (VS rows, their real servers below), live.

Built for thousands of rows: the table's rows are created once per structure (a reload that adds or removes
servers, a new filter) and every tick only touches cells that changed *and are on screen*; rows scrolled into
view are brought up to date as they appear. Sorting reorders rows in place and keeps the cursor on the same
server. Histories (the sparkline of the last minute) are kept per server whatever is shown.
"""

from __future__ import annotations

import collections
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static
from textual.widgets.data_table import ColumnKey, RowKey

from lvsconsole.engine.director_api import DirectorSnapshot, RealServerView, VirtualServerView
from lvsconsole.tui import bindings
from lvsconsole.tui.format import HEALTH_STYLES, scaled, sparkline
from lvsconsole.tui.themes import DEFAULT_PALETTE, Palette

HISTORY = 60
"""Samples kept per server for the sparkline (one per tick: the last minute at 1 Hz)."""

SPARK_WIDTH = 12

SortKey = Literal["name", "health", "weight", "active", "inact", "cps", "bps"]
SORT_KEYS: tuple[SortKey, ...] = ("name", "health", "weight", "active", "inact", "cps", "bps")
_HEALTH_ORDER = {"down": 0, "inhibited": 1, "draining": 2, "disabled": 3, "up": 4}


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    right: bool = False
    sort: SortKey | None = None


COLUMNS: tuple[Column, ...] = (
    Column("name", "VIRTUAL / REAL SERVER", 30, sort="name"),
    Column("mode", "SCHED/FWD", 14),
    Column("weight", "WEIGHT", 7, right=True, sort="weight"),
    Column("cfg", "CFG", 5, right=True),
    Column("health", "HEALTH", 10, sort="health"),
    Column("active", "ACTIVE", 8, right=True, sort="active"),
    Column("inact", "INACT", 8, right=True, sort="inact"),
    Column("cps", "CONN/S", 7, right=True, sort="cps"),
    Column("bps", "BYTES/S", 8, right=True, sort="bps"),
    Column("trend", "BYTES/S, 1 MIN", SPARK_WIDTH + 2),
)
_COLUMN_KEYS = tuple(c.key for c in COLUMNS)


class RowRef:
    """What a table row shows: a virtual server (``rs`` None) or one of its real servers; ``key`` is the
    table's row key. Compared and hashed by that key."""

    __slots__ = ("key", "rs", "vs")

    def __init__(self, vs: str, rs: str | None = None) -> None:
        self.vs = vs
        self.rs = rs
        self.key = f"vs|{vs}" if rs is None else f"rs|{vs}|{rs}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RowRef) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"RowRef({self.vs!r}, {self.rs!r})"


def _vs_haystack(vs: VirtualServerView) -> str:
    return f"{vs.label} {vs.key} {vs.protocol} {vs.scheduler}".lower()


def _rs_haystack(rs: RealServerView) -> str:
    return f"{rs.label} {rs.key} {rs.forward} {rs.health}".lower()


class VsTable(DataTable[Any]):
    """The tree as a DataTable; see the module docstring for how it stays cheap."""

    BINDINGS: ClassVar[list[BindingType]] = [*bindings.NAV_TABLE, *bindings.VS]

    class RsAction(Message):
        """The operator asked for ``kind`` on the selected real server (the app confirms and runs it)."""

        def __init__(self, kind: str, vs: VirtualServerView, rs: RealServerView, step: int = 0) -> None:
            super().__init__()
            self.kind = kind
            self.vs = vs
            self.rs = rs
            self.step = step

    class FilterRequested(Message):
        pass

    class SortChanged(Message):
        def __init__(self, key: SortKey, reverse: bool) -> None:
            super().__init__()
            self.sort_key = key
            self.reverse = reverse

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.palette = DEFAULT_PALETTE
        self.snapshot: DirectorSnapshot | None = None
        self.sort_key: SortKey = "name"
        self.reverse = False
        self.filter_text = ""
        self._structure: tuple[tuple[str, tuple[str, ...]], ...] | None = None
        self._vs: dict[str, VirtualServerView] = {}
        self._rs: dict[tuple[str, str], RealServerView] = {}
        self._order: list[RowRef] = []
        self._row_keys: dict[str, RowKey] = {}
        self._refs: dict[str, RowRef] = {}
        self._ref_cache: dict[tuple[str, str | None], RowRef] = {}
        self._shown: dict[str, tuple[Any, ...]] = {}
        self._history: dict[str, collections.deque[int]] = {}
        self._drain_watch: dict[tuple[str, str], int] = {}
        self.rebuilds = 0
        self.cell_updates = 0

    def on_mount(self) -> None:
        for col in COLUMNS:
            self.add_column(col.label, width=col.width, key=col.key)

    # ------------------------------------------------------------------------------ model

    def selected(self) -> RowRef | None:
        if not self.row_count:
            return None
        try:
            row_key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:
            return None
        return self._refs.get(str(row_key.value))

    def selected_pair(self) -> tuple[VirtualServerView | None, RealServerView | None]:
        ref = self.selected()
        if ref is None:
            return None, None
        vs = self._vs.get(ref.vs)
        rs = self._rs.get((ref.vs, ref.rs)) if ref.rs is not None else None
        return vs, rs

    def select(self, vs_key: str, rs_key: str | None = None) -> bool:
        """Move the cursor to a server's row (if shown)."""
        row_key = self._row_keys.get(self._ref(vs_key, rs_key).key)
        if row_key is None:
            return False
        self.move_cursor(row=self.get_row_index(row_key), animate=False)
        return True

    def visible_refs(self) -> list[RowRef]:
        """Rows in table order (what is shown, after the filter)."""
        return list(self._order)

    def update_from(self, snapshot: DirectorSnapshot) -> None:
        """A new snapshot: record histories, reshape if the structure changed, refresh visible cells."""
        self.snapshot = snapshot
        structure = tuple((vs.key, tuple(rs.key for rs in vs.real_servers)) for vs in snapshot.virtual_servers)
        self._vs = {vs.key: vs for vs in snapshot.virtual_servers}
        self._rs = {(vs.key, rs.key): rs for vs in snapshot.virtual_servers for rs in vs.real_servers}
        history = self._history
        for vs in snapshot.virtual_servers:
            self._push(history, f"vs|{vs.key}", vs.bps)
            for rs in vs.real_servers:
                self._push(history, f"rs|{vs.key}|{rs.key}", rs.bps)
        if structure != self._structure:
            self._structure = structure
            self._ref_cache = {(vs, None): RowRef(vs) for vs, _ in structure}
            self._ref_cache.update({(vs, rs): RowRef(vs, rs) for vs, rss in structure for rs in rss})
            live = {ref.key for ref in self._ref_cache.values()}
            for key in [k for k in history if k not in live]:
                del history[key]
            self.rebuild()
        elif self.sort_key in ("health", "weight", "active", "inact", "cps", "bps"):
            self._reorder(self._sorted(self._filtered()))
        self.sync_visible()

    @staticmethod
    def _push(history: dict[str, collections.deque[int]], key: str, value: int) -> None:
        series = history.get(key)
        if series is None:
            series = history[key] = collections.deque(maxlen=HISTORY)
        series.append(value)

    def drains_finished(self) -> list[tuple[VirtualServerView, RealServerView]]:
        """Drained servers whose active connections just reached 0 (each reported once)."""
        done = []
        for (vs_key, rs_key), rs in self._rs.items():
            key = (vs_key, rs_key)
            if rs.drained and rs.active_conns > 0:
                self._drain_watch[key] = rs.active_conns
            elif key in self._drain_watch and (not rs.drained or rs.active_conns == 0):
                del self._drain_watch[key]
                if rs.drained:
                    done.append((self._vs[vs_key], rs))
        return done

    # ------------------------------------------------------------------------------ filter and sort

    def _filtered(self) -> list[tuple[VirtualServerView, list[RealServerView]]]:
        assert self.snapshot is not None
        words = self.filter_text.lower().split()
        out = []
        for vs in self.snapshot.virtual_servers:
            if not words:
                out.append((vs, list(vs.real_servers)))
                continue
            vs_text = _vs_haystack(vs)
            if all(w in vs_text for w in words):
                out.append((vs, list(vs.real_servers)))
                continue
            rss = [rs for rs in vs.real_servers if all(w in vs_text or w in _rs_haystack(rs) for w in words)]
            if rss:
                out.append((vs, rss))
        return out

    def _keys(self) -> tuple[Callable[[VirtualServerView], Any], Callable[[RealServerView], Any]]:
        """Sort keys for virtual servers (their aggregate) and real servers, for the current sort column."""
        key = self.sort_key
        health = _HEALTH_ORDER.get
        if key == "health":
            return (lambda v: min((health(r.health, 5) for r in v.real_servers), default=5),
                    lambda r: health(r.health, 5))
        if key == "weight":
            return (lambda v: sum(r.weight or 0 for r in v.real_servers),
                    lambda r: -1 if r.weight is None else r.weight)
        attr = {"active": "active_conns", "inact": "inactive_conns", "cps": "cps", "bps": "bps"}[key]
        getter = operator.attrgetter(attr)
        return getter, getter

    def _ref(self, vs: str, rs: str | None = None) -> RowRef:
        ref = self._ref_cache.get((vs, rs))
        if ref is None:
            ref = self._ref_cache[(vs, rs)] = RowRef(vs, rs)
        return ref

    def _sorted(self, groups: list[tuple[VirtualServerView, list[RealServerView]]]) -> list[RowRef]:
        ref = self._ref
        rows: list[RowRef] = []
        if self.sort_key == "name":
            ordered = list(reversed(groups)) if self.reverse else groups
            for vs, rss in ordered:
                rows.append(ref(vs.key))
                rows.extend(ref(vs.key, rs.key) for rs in (reversed(rss) if self.reverse else rss))
            return rows
        # numbers: largest first (health: worst first); "reverse" flips that
        flip = (self.sort_key != "health") != self.reverse
        vs_value, rs_value = self._keys()
        for vs, rss in sorted(groups, key=lambda g: vs_value(g[0]), reverse=flip):
            rows.append(ref(vs.key))
            rows.extend(ref(vs.key, rs.key) for rs in sorted(rss, key=rs_value, reverse=flip))
        return rows

    def set_filter(self, text: str) -> None:
        if text == self.filter_text:
            return
        self.filter_text = text
        if self.snapshot is not None:
            self.rebuild()
            self.sync_visible()

    def set_sort(self, key: SortKey, reverse: bool | None = None) -> None:
        if reverse is None:
            reverse = not self.reverse if key == self.sort_key else False
        self.sort_key = key
        self.reverse = reverse
        if self.snapshot is not None:
            self._reorder(self._sorted(self._filtered()))
            self.sync_visible()
        self.post_message(self.SortChanged(key, reverse))

    def rebuild(self) -> None:
        """Recreate the rows (structure or filter changed); cells are filled lazily by ``sync_visible``."""
        if self.snapshot is None:
            return
        keep = self.selected()
        order = self._sorted(self._filtered())
        self.rebuilds += 1
        self.clear(columns=False)
        self._row_keys.clear()
        self._refs.clear()
        self._shown.clear()
        blank = [""] * len(COLUMNS)
        for ref in order:
            key = ref.key
            self._row_keys[key] = self.add_row(*blank, key=key)
            self._refs[key] = ref
        self._order = order
        self._restore(keep)

    def _reorder(self, order: list[RowRef]) -> None:
        if order == self._order:
            return
        keep = self.selected()
        locations = getattr(self, "_row_locations", None)
        if locations is None or len(order) != len(self._order) or set(order) != set(self._order):
            self._order = order
            self.rebuild()
            return
        # Reorder in place (what DataTable.sort does), without recreating rows.
        from textual._two_way_dict import TwoWayDict

        self._row_locations = TwoWayDict({self._row_keys[ref.key]: i for i, ref in enumerate(order)})
        self._update_count += 1
        self._order = order
        self.refresh()
        self._restore(keep)

    def _restore(self, keep: RowRef | None) -> None:
        if not self._order:
            return
        if keep is not None and keep.key in self._row_keys:
            index = self.get_row_index(self._row_keys[keep.key])
            if index != self.cursor_row:
                self.move_cursor(row=index, animate=False, scroll=False)

    # ------------------------------------------------------------------------------ cells

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self.call_after_refresh(self.sync_visible)

    def on_resize(self) -> None:
        self.call_after_refresh(self.sync_visible)

    def _visible_range(self) -> tuple[int, int]:
        top = int(self.scroll_y)
        height = self.size.height if self.size.height > 1 else 100  # not laid out yet: a screenful or two
        return max(0, top - 2), min(len(self._order), top + height + 2)

    def sync_visible(self) -> None:
        """Bring the cells of rows on screen up to date (only those whose values changed)."""
        if self.snapshot is None or not self._order:
            return
        start, end = self._visible_range()
        for ref in self._order[start:end]:
            self._sync_row(ref)

    def sync_all(self) -> None:
        """Every row, shown or not (tests and screenshots that read cells off screen)."""
        for ref in self._order:
            self._sync_row(ref)

    def _sync_row(self, ref: RowRef) -> None:
        key = ref.key
        if ref.rs is None:
            vs = self._vs.get(ref.vs)
            if vs is None:
                return
            signature: tuple[Any, ...] = self._vs_signature(vs)
        else:
            rs = self._rs.get((ref.vs, ref.rs))
            if rs is None:
                return
            signature = self._rs_signature(ref, rs)
        old = self._shown.get(key)
        if old == signature:
            return
        cells = self._vs_cells(self._vs[ref.vs]) if ref.rs is None else self._rs_cells(ref, self._rs[(ref.vs, ref.rs)])
        row_key = self._row_keys[key]
        for i, (column, cell) in enumerate(zip(_COLUMN_KEYS, cells, strict=True)):
            if old is None or old[i] != signature[i]:
                self.update_cell(row_key, ColumnKey(column), cell)
                self.cell_updates += 1
        self._shown[key] = signature

    def _spark(self, key: str) -> str:
        series = self._history.get(key)
        return sparkline(list(series) if series else [], SPARK_WIDTH)

    def _vs_signature(self, vs: VirtualServerView) -> tuple[Any, ...]:
        up = sum(1 for r in vs.real_servers if r.health == "up")
        return (vs.label, vs.scheduler, vs.persistence_timeout, None, None, (up, len(vs.real_servers), vs.quorum_up),
                vs.active_conns, vs.inactive_conns, vs.cps, vs.bps, self._spark(f"vs|{vs.key}"))

    def _rs_signature(self, ref: RowRef, rs: RealServerView) -> tuple[Any, ...]:
        last = self._is_last(ref)
        return ((rs.label, last), rs.forward, (rs.weight, rs.weight_override), rs.config_weight,
                (rs.health, rs.floor_kept), (rs.active_conns, rs.drained), rs.inactive_conns, rs.cps, rs.bps,
                self._spark(ref.key))

    def _is_last(self, ref: RowRef) -> bool:
        vs = self._vs.get(ref.vs)
        if vs is None or not vs.real_servers:
            return True
        if self.sort_key == "name" and not self.filter_text:
            index = -1 if not self.reverse else 0
            return vs.real_servers[index].key == ref.rs
        row_key = self._row_keys.get(ref.key)
        if row_key is None:
            return True
        index = self.get_row_index(row_key) + 1
        return index >= len(self._order) or self._order[index].rs is None

    def _vs_cells(self, vs: VirtualServerView) -> list[Any]:
        p = self.palette
        up = sum(1 for r in vs.real_servers if r.health == "up")
        total = len(vs.real_servers)
        name = Text.assemble((f"{vs.protocol:<4} ", p.style("foreground-muted")), (vs.label, p.style("primary",
                                                                                                     bold=True)))
        mode = vs.scheduler + (f" persist {vs.persistence_timeout}" if vs.persistence_timeout else "")
        if not vs.quorum_up:
            health = Text("NO QUORUM", style=p.badge("error"))
        else:
            style = "success" if up == total else "warning" if up else "error"
            health = Text(f"{up}/{total} up", style=p.style(style))
        return [name, Text(mode, style=p.style("foreground", bold=True)), "", "", health,
                _num(vs.active_conns), _num(vs.inactive_conns), _num(vs.cps), _rate(vs.bps),
                Text(" " + self._spark(f"vs|{vs.key}"), style=p.style("accent"))]

    def _rs_cells(self, ref: RowRef, rs: RealServerView) -> list[Any]:
        p = self.palette
        branch = "└─" if self._is_last(ref) else "├─"
        name = Text.assemble((f" {branch} ", p.style("foreground-muted")), rs.label)
        weight_text = "-" if rs.weight is None else str(rs.weight)
        weight_style = "foreground" if rs.weight == rs.config_weight else "warning"
        weight = Text(weight_text, style=p.style(weight_style, bold=rs.weight != rs.config_weight), justify="right")
        # the operator's state (drain, maint) says more than its health; "kept": min_healthy holds it in the table
        shown = rs.admin_state if rs.admin_state != "ready" else "kept" if rs.floor_kept else rs.health
        health = Text(f"● {shown}", style=p.style(HEALTH_STYLES.get(rs.health, "foreground"),
                                                  bold=rs.health != "up"))
        active = _num(rs.active_conns)
        if rs.drained and rs.active_conns:
            active = Text.assemble(("↘ ", p.style("warning")), f"{rs.active_conns:,}", justify="right")
        return [name, Text(rs.forward, style=p.style("foreground-muted")), weight,
                Text(str(rs.config_weight), style=p.style("foreground-muted"), justify="right"), health,
                active, _num(rs.inactive_conns), _num(rs.cps), _rate(rs.bps),
                Text(" " + self._spark(ref.key), style=p.style("accent"))]

    def repaint(self, palette: Palette) -> None:
        """New colours (theme switch): every row is redrawn as it comes into view."""
        self.palette = palette
        self._shown.clear()
        self.sync_visible()

    # ------------------------------------------------------------------------------ actions

    def _rs_or_warn(self) -> tuple[VirtualServerView, RealServerView] | None:
        vs, rs = self.selected_pair()
        if vs is None or rs is None:
            self.notify("select a real server first (the rows under a virtual server)", severity="warning")
            return None
        return vs, rs

    def _request(self, kind: str, step: int = 0) -> None:
        pair = self._rs_or_warn()
        if pair is not None:
            self.post_message(self.RsAction(kind, pair[0], pair[1], step))

    def action_drain(self) -> None:
        self._request("drain")

    def action_undrain(self) -> None:
        self._request("undrain")

    def action_weight(self) -> None:
        self._request("weight")

    def action_weight_step(self, step: int) -> None:
        self._request("weight_step", step)

    def action_disable(self) -> None:
        self._request("disable")

    def action_enable(self) -> None:
        self._request("enable")

    def action_checks(self) -> None:
        self._request("checks")

    def action_filter(self) -> None:
        self.post_message(self.FilterRequested())

    def action_sort(self) -> None:
        index = SORT_KEYS.index(self.sort_key)
        self.set_sort(SORT_KEYS[(index + 1) % len(SORT_KEYS)], reverse=False)

    def action_sort_reverse(self) -> None:
        self.set_sort(self.sort_key, reverse=not self.reverse)

    @on(DataTable.HeaderSelected)
    def _header_sort(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        column = next((c for c in COLUMNS if c.key == str(event.column_key.value)), None)
        if column is not None and column.sort is not None:
            self.set_sort(column.sort)


def _num(value: int) -> Text:
    return Text(f"{value:,}" if value < 1_000_000 else scaled(value), justify="right")


def _rate(value: int) -> Text:
    return Text(scaled(value), justify="right")


class FilterBar(Input):
    """``/`` filter: live as you type, Enter keeps it, Escape clears it."""

    BINDINGS: ClassVar[list[BindingType]] = list(bindings.FILTER)

    class Cleared(Message):
        pass

    def action_clear(self) -> None:
        self.value = ""
        self.post_message(self.Cleared())


class VsPanel(Vertical):
    """The virtual-server table with its title (counts, sort, filter) and filter bar."""

    DEBOUNCE = 0.15

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.border_title = "Virtual servers"
        self.table = VsTable(id="vs-table")
        self.refresh_note = ""
        self._debounce: Timer | None = None

    def compose(self) -> ComposeResult:
        yield self.table
        yield FilterBar(placeholder="filter: words to match (address, health, scheduler…); Enter keeps, Esc clears",
                        id="vs-filter", classes="filter-bar")
        yield Static("", id="vs-empty", classes="empty-note")

    def update_from(self, snapshot: DirectorSnapshot) -> None:
        table = self.table
        table.update_from(snapshot)
        empty = self.query_one("#vs-empty", Static)
        if not snapshot.virtual_servers:
            empty.update("no virtual_server in this configuration")
            empty.display = True
        elif not table.row_count:
            empty.update(f"nothing matches the filter '{table.filter_text}' (Esc in the filter clears it)")
            empty.display = True
        else:
            empty.display = False
        self._retitle()

    def _retitle(self) -> None:
        table = self.table
        snap = table.snapshot
        n_vs = len(snap.virtual_servers) if snap else 0
        n_rs = sum(len(vs.real_servers) for vs in snap.virtual_servers) if snap else 0
        arrow = "↑" if (table.reverse != (table.sort_key in ("health", "name"))) else "↓"
        parts = [f"{n_vs} VS, {n_rs} RS", f"sort {table.sort_key}{arrow}"]
        if table.filter_text:
            parts.append(f"filter '{table.filter_text}': {table.row_count} rows")
        if self.refresh_note:
            parts.append(self.refresh_note)
        self.border_subtitle = " · ".join(parts)

    def open_filter(self) -> None:
        bar = self.query_one(FilterBar)
        bar.display = True
        bar.focus()

    @on(VsTable.FilterRequested)
    def _open(self, event: VsTable.FilterRequested) -> None:
        event.stop()
        self.open_filter()

    @on(VsTable.SortChanged)
    def _sorted(self, event: VsTable.SortChanged) -> None:
        self._retitle()

    @on(Input.Changed, "#vs-filter")
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._debounce is not None:
            self._debounce.stop()
        value = event.value
        self._debounce = self.set_timer(self.DEBOUNCE, lambda: self._apply(value))

    def _apply(self, value: str) -> None:
        self.table.set_filter(value.strip())
        if self.table.snapshot is not None:
            self.update_from(self.table.snapshot)

    @on(Input.Submitted, "#vs-filter")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._apply(event.value)
        bar = self.query_one(FilterBar)
        bar.display = bool(event.value.strip())
        self.table.focus()

    @on(FilterBar.Cleared)
    def _cleared(self, event: FilterBar.Cleared) -> None:
        event.stop()
        self._apply("")
        self.query_one(FilterBar).display = False
        self.table.focus()

