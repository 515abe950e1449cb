"""The virtual-server panel: the ipvsadm tree (VS rows, their real servers below), live.

Built for thousands of rows: the table's rows are created once per structure (a reload that adds or removes
servers, a new filter) and every tick only touches cells that changed *and are on screen*; rows scrolled into
view are brought up to date as they appear. Sorting reorders rows in place and keeps the cursor on the same
server; an order by a live figure is renewed by the tick every ``RESORT_EVERY`` seconds (the title says how old
it is). A tick's work is done in steps with the loop running between them (``update_steps``), the rows on screen
repainted band by band, so that keys are served while 11,000 rows are refreshed. Histories (the sparkline of
the last minute) are kept per server whatever is shown.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.cache import LRUCache
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.geometry import Region, Spacing
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static
from textual.widgets.data_table import ColumnKey, Row, RowKey

from lvsconsole.engine.director_api import DirectorSnapshot, RealServerView, VirtualServerView
from lvsconsole.engine.drift import DriftView, drifted_rows
from lvsconsole.tui import bindings
from lvsconsole.tui.cell_template import LineTemplate, text_shape
from lvsconsole.tui.format import HEALTH_STYLES, scaled, sparkline
from lvsconsole.tui.series import SeriesRing
from lvsconsole.tui.themes import DEFAULT_PALETTE, Palette

HISTORY = 60
"""Samples kept per server for the sparkline (one per tick: the last minute at 1 Hz)."""

SPARK_WIDTH = 12

SortKey = Literal["name", "health", "weight", "active", "inact", "cps", "bps"]
SORT_KEYS: tuple[SortKey, ...] = ("name", "health", "weight", "active", "inact", "cps", "bps")
LIVE_SORT_KEYS = frozenset({"health", "weight", "active", "inact", "cps", "bps"})
"""Sorts by a figure that can change from one snapshot to the next: the tick re-orders the rows (``RESORT_EVERY``)."""
RESORT_EVERY = 5.0
"""Seconds between two re-sorts of a live order by the tick: figures change every second and re-ordering 11,000
rows each time costs a full repaint (and the rows would not stay still long enough to be read). A sort chosen
by the operator, a filter or a new structure orders at once; the panel's title says how old the order is."""
SORT_STEP = 250
"""Virtual servers sorted between two pauses of a tick's re-sort (a few ms)."""
SYNC_BAND = 8
"""Rows on screen updated and repainted together in a tick (about 10 ms of rendering)."""
FRAME = 1 / 50
"""Pause after a band, long enough for the screen to draw it (Textual draws up to 60 times a second)."""
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
_COLUMN_KEY_OBJECTS = tuple(ColumnKey(key) for key in _COLUMN_KEYS)
_REF_KEY = operator.attrgetter("key")


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

    class DrainViewRequested(Message):
        """Open the drain view (every watched drain: no selection needed)."""

    class DriftRequested(Message):
        """``drift reconcile`` or ``drift adopt`` (``kind``) of the drift items ``ids`` on the selected row."""

        def __init__(self, kind: Literal["reconcile", "adopt"], ids: tuple[str, ...]) -> None:
            super().__init__()
            self.kind = kind
            self.ids = ids

    class SortChanged(Message):
        def __init__(self, key: SortKey, reverse: bool) -> None:
            super().__init__()
            self.sort_key = key
            self.reverse = reverse

    def __init__(self, **kwargs: Any) -> None:
        # render caches (see ``_render_cell``), set first: DataTable's constructor already reads the rows
        self._ordered_rows: tuple[object, int, list[Row] | None] | None = None
        self._cell_lines: LRUCache[tuple[Any, ...], tuple[object, list[list[Segment]]]] = LRUCache(4096)
        self._templates: LRUCache[tuple[Any, ...], LineTemplate] = LRUCache(16384)
        self._places: LRUCache[tuple[int, int], Style] = LRUCache(4096)
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.palette = DEFAULT_PALETTE
        self.snapshot: DirectorSnapshot | None = None
        self.sort_key: SortKey = "name"
        self.reverse = False
        self.filter_text = ""
        self.sorted_at = 0.0
        """When the rows were last put in the sort's order (``time.monotonic()``; live sorts: ``RESORT_EVERY``)."""
        self._structure: tuple[tuple[str, tuple[str, ...]], ...] | None = None
        self._vs: dict[str, VirtualServerView] = {}
        self._rs_at: dict[tuple[str, str], int] = {}
        """Where each real server sits in its virtual server's ``real_servers`` (fixed by the structure)."""
        self._order: list[RowRef] = []
        self._row_keys: dict[str, RowKey] = {}
        self._row_objects: dict[str, Row] = {}
        self._refs: dict[str, RowRef] = {}
        self._ref_cache: dict[tuple[str, str | None], RowRef] = {}
        self._groups: dict[str, tuple[RowRef, dict[str, RowRef]]] = {}
        self._shown: dict[str, tuple[Any, ...]] = {}
        self._history = SeriesRing(HISTORY)
        self._history_index: dict[str, int] = {}
        """Row key → position in a history sample (the snapshot's order: each VS, then its real servers)."""
        self._drain_watch: dict[tuple[str, str], int] = {}
        self._drift: dict[tuple[str, str | None], list[DriftView]] = {}
        """Drift items by (vs key, rs key): those rows are highlighted."""
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
        rs = self._rs_view(ref.vs, ref.rs) if ref.rs is not None else None
        return vs, rs

    def _rs_view(self, vs_key: str, rs_key: str) -> RealServerView | None:
        vs = self._vs.get(vs_key)
        position = self._rs_at.get((vs_key, rs_key))
        if vs is None or position is None or position >= len(vs.real_servers):
            return None
        return vs.real_servers[position]

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
        for _ in self.update_steps(snapshot):
            pass

    def update_steps(self, snapshot: DirectorSnapshot) -> Iterator[float]:
        """``update_from`` in steps of a few ms each at 11,000 rows; each step yields how long the caller should
        let the loop run before the next (``await asyncio.sleep(pause)`` in the tick's worker): 0 to serve what
        is waiting, a frame (``FRAME``) after a band of rows on screen was updated, so that the screen draws it
        on its own. A key is then served within one step, and a full screen of new figures is drawn band by
        band (``SYNC_BAND`` rows), not in one go.

        Runs every tick over thousands of servers: the per-server work is kept to reading two attributes
        (the keys, to detect a new structure, and the bytes/s for the history); the rest is per visible row.
        Between steps the table shows the new figures in the previous order; a sort or filter changed by a key
        meanwhile orders the rows itself, and the order computed here for the old one is dropped."""
        self.snapshot = snapshot
        servers = snapshot.virtual_servers
        structure = tuple([(vs.key, tuple([rs.key for rs in vs.real_servers])) for vs in servers])
        self._vs = {vs.key: vs for vs in servers}
        self._drift = drifted_rows(snapshot.drift)
        reshaped = structure != self._structure
        if reshaped:
            self._structure = structure
            self._ref_cache = {(vs, None): RowRef(vs) for vs, _ in structure}
            self._ref_cache.update({(vs, rs): RowRef(vs, rs) for vs, rss in structure for rs in rss})
            self._groups.clear()
            self._rs_at = {(vs, rs): i for vs, rss in structure for i, rs in enumerate(rss)}
            index: dict[str, int] = {}
            for vs_key, rss in structure:
                index[f"vs|{vs_key}"] = len(index)
                for rs_key in rss:
                    index[f"rs|{vs_key}|{rs_key}"] = len(index)
            self._history_index = index
        bps: list[int] = []
        for vs in servers:
            bps.append(vs.bps)
            bps.extend([rs.bps for rs in vs.real_servers])
        self._history.push(self._history_index, bps)
        if reshaped:
            self.rebuild()
            self.sync_visible()
            return
        moved = False
        if self.sort_key in LIVE_SORT_KEYS and time.monotonic() - self.sorted_at >= RESORT_EVERY:
            arrangement = self._arrangement()
            yield 0.0
            order: list[RowRef] = []
            for _ in self._sorting(self._filtered(), order):
                yield 0.0
            yield 0.0
            if self.snapshot is snapshot and self._arrangement() == arrangement:
                moved = self._reorder(order, repaint=False)
                self.sorted_at = time.monotonic()
        yield from self._syncing(repaint=moved)

    def _arrangement(self) -> tuple[Any, ...]:
        """What the order of the rows depends on besides the figures."""
        return (self.sort_key, self.reverse, self.filter_text, self._structure)

    def drains_finished(self) -> list[tuple[VirtualServerView, RealServerView]]:
        """Drained servers whose active connections just reached 0 (each reported once)."""
        done: list[tuple[VirtualServerView, RealServerView]] = []
        if self.snapshot is None:
            return done
        watch = self._drain_watch
        for vs in self.snapshot.virtual_servers:
            for rs in vs.real_servers:
                if not rs.drained and not watch:
                    continue
                key = (vs.key, rs.key)
                if rs.drained and rs.active_conns > 0:
                    watch[key] = rs.active_conns
                elif key in watch and (not rs.drained or rs.active_conns == 0):
                    del watch[key]
                    if rs.drained:
                        done.append((vs, rs))
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

    def _group_refs(self, vs: VirtualServerView) -> tuple[RowRef, dict[str, RowRef]]:
        """The rows of a virtual server and of all its real servers (by key), made once per structure."""
        group = self._groups.get(vs.key)
        if group is None:
            group = self._groups[vs.key] = (self._ref(vs.key),
                                            {rs.key: self._ref(vs.key, rs.key) for rs in vs.real_servers})
        return group

    def _sorted(self, groups: list[tuple[VirtualServerView, list[RealServerView]]]) -> list[RowRef]:
        rows: list[RowRef] = []
        for _ in self._sorting(groups, rows):
            pass
        return rows

    def _sorting(self, groups: list[tuple[VirtualServerView, list[RealServerView]]],
                 rows: list[RowRef]) -> Iterator[None]:
        """Fill ``rows`` with the table's order, yielding every ``SORT_STEP`` virtual servers (``update_steps``)."""
        # runs every tick when sorted by a live figure: a few operations per row, all of them in C but the loop
        group_refs = self._group_refs
        if self.sort_key == "name":
            ordered = list(reversed(groups)) if self.reverse else groups
            for vs, rss in ordered:
                vs_ref, rs_refs = group_refs(vs)
                rows.append(vs_ref)
                rows.extend([rs_refs[rs.key] for rs in (reversed(rss) if self.reverse else rss)])
            return
        # numbers: largest first (health: worst first); "reverse" flips that
        flip = (self.sort_key != "health") != self.reverse
        vs_value, rs_value = self._keys()
        for done, (vs, rss) in enumerate(sorted(groups, key=lambda g: vs_value(g[0]), reverse=flip), 1):
            vs_ref, rs_refs = group_refs(vs)
            rows.append(vs_ref)
            rows.extend([rs_refs[rs.key] for rs in sorted(rss, key=rs_value, reverse=flip)])
            if not done % SORT_STEP:
                yield

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
            self.sorted_at = time.monotonic()
            self.sync_visible()
        self.post_message(self.SortChanged(key, reverse))

    def rebuild(self) -> None:
        """Recreate the rows (structure or filter changed); cells are filled lazily by ``sync_visible``."""
        if self.snapshot is None:
            return
        keep = self.selected()
        order = self._sorted(self._filtered())
        self.sorted_at = time.monotonic()
        self.rebuilds += 1
        self.clear(columns=False)
        self._row_keys.clear()
        self._row_objects.clear()
        self._refs.clear()
        self._shown.clear()
        blank = [""] * len(COLUMNS)
        for ref in order:
            key = ref.key
            row_key = self._row_keys[key] = self.add_row(*blank, key=key)
            self._row_objects[key] = self.rows[row_key]
            self._refs[key] = ref
        self._order = order
        self._restore(keep)

    def _reorder(self, order: list[RowRef], repaint: bool = True) -> bool:
        """Show the rows in ``order``; whether they were moved in place (without ``repaint``, the caller then
        repaints the rows on screen: ``_syncing``)."""
        if order == self._order:
            return False
        keep = self.selected()
        locations = getattr(self, "_row_locations", None)
        # Unfiltered, the rows are every server of the structure, whatever the order. Filtered, the rows that
        # match can change with the figures: compared by identity (one object per row and structure).
        if (locations is None or len(order) != len(self._order)
                or (self.filter_text and {id(ref) for ref in order} != {id(ref) for ref in self._order})):
            self._order = order
            self.rebuild()
            return False
        # Reorder in place (what DataTable.sort does), without recreating rows.
        from textual._two_way_dict import TwoWayDict

        row_keys = self._row_keys
        locations = TwoWayDict.__new__(TwoWayDict)  # both directions at once: its __init__ would hash each key again
        # Keyed by the keys' strings, which a RowKey finds (it hashes and compares as its string): hashing 11,000
        # RowKeys is a Python call each, a string's hash is cached. Nothing iterates this map but remove_row,
        # which this table never calls (a new structure is a rebuild).
        keys = list(map(_REF_KEY, order))
        locations._forward = dict(zip(keys, range(len(keys)), strict=True))
        locations._reverse = dict(enumerate(map(row_keys.__getitem__, keys)))
        self._row_locations = locations
        self._ordered_rows = (locations, len(self.rows), None)  # made when asked for (page keys, a click)
        self._update_count += 1
        self._order = order
        if repaint:
            self.refresh()
        self._restore(keep)
        return True

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
        self._repaint_if(sum([self._sync_row(ref) for ref in self._order[start:end]]))

    def sync_all(self) -> None:
        """Every row, shown or not (tests and screenshots that read cells off screen)."""
        self._repaint_if(sum([self._sync_row(ref) for ref in self._order]))

    def _repaint_if(self, changed: int) -> None:
        if changed:
            # what update_cell does for each cell (count an update, repaint), once for all
            self.cell_updates += changed
            self._update_count += 1
            self.refresh()

    def _syncing(self, repaint: bool) -> Iterator[float]:
        """``sync_visible`` band by band, each band repainted on its own (its rows only), a frame apart; with
        ``repaint`` every row on screen is repainted (the rows moved), otherwise those whose cells changed."""
        if self.snapshot is None or not self._order:
            return
        start, end = self._visible_range()
        for band in range(start, end, SYNC_BAND):
            dirty = []
            for index in range(band, min(end, band + SYNC_BAND)):
                changed = self._sync_row(self._order[index])
                self.cell_updates += changed
                if changed or repaint:
                    dirty.append(index)
            if dirty:
                self._update_count += 1  # DataTable's line caches
                for index in dirty:
                    self.refresh_row(index)
                yield FRAME

    def _sync_row(self, ref: RowRef) -> int:
        """Put the row's new cells in (only those whose values changed); how many it changed."""
        key = ref.key
        old = self._shown.get(key)
        cells: list[Any]
        if ref.rs is None:
            vs = self._vs.get(ref.vs)
            if vs is None:
                return 0
            signature: tuple[Any, ...] = self._vs_signature(vs)
            if old == signature:
                return 0
            cells = self._vs_cells(vs)
        else:
            rs = self._rs_view(ref.vs, ref.rs)
            if rs is None:
                return 0
            signature = self._rs_signature(ref, rs)
            if old == signature:
                return 0
            cells = self._rs_cells(ref, rs)
        row = self._data[self._row_keys[key]]
        changed = 0
        for i, (column_key, cell) in enumerate(zip(_COLUMN_KEY_OBJECTS, cells, strict=True)):
            if old is None or old[i] != signature[i]:
                row[column_key] = cell
                changed += 1
        self._shown[key] = signature
        return changed

    # DataTable keys its render caches on one counter that every update_cell bumps, so one changed cell would
    # re-render every cell on screen, and finding a line's row would rebuild a list of every line of the table.
    # Here every row is one line high and a cell's value is replaced, never mutated (``_sync_row``): a cell's
    # rendering stays good while the same object sits in it, at the same row index, with the same styles.

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> list[list[Segment]]:
        if row_index < 0 or column_index < 0:  # the header
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        row = self._data.get(row_key) if row_key is not None else None
        if row is None or column_key is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        value = row.get(column_key)
        cache_key = (row_key, column_key, row_index, base_style, width, cursor, hover, self._show_hover_cursor,
                     self._pseudo_class_state)
        cached = self._cell_lines.get(cache_key)
        if cached is not None and cached[0] is value:
            return cached[1]
        # A new value: if a cell of the same shape was rendered in this column, swap the characters in and mark
        # the segments with this place (cell_template.py): after a sort moved every row on screen, or a scroll,
        # the cells are re-rendered without going through Rich.
        shape = text_shape(value) if isinstance(value, Text) else None
        if shape is None or not isinstance(value, Text):
            lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        else:
            plain = value.plain
            template_key = (shape, column_key, base_style, width, cursor, hover, self._show_hover_cursor,
                            self._pseudo_class_state)
            template = self._templates.get(template_key)
            if template is not None:
                lines = template.fill(plain, self._place(row_index, column_index))
            else:
                lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
                made = LineTemplate.of(lines, plain, place={"row": row_index, "column": column_index})
                if made is not None:
                    self._templates[template_key] = made
        self._cell_lines[cache_key] = (value, lines)
        return lines

    def _place(self, row_index: int, column_index: int) -> Style:
        """The meta DataTable gives a cell's segments (its place, for the mouse), one object per place."""
        place = self._places.get((row_index, column_index))
        if place is None:
            place = self._places[(row_index, column_index)] = Style.from_meta({"row": row_index,
                                                                                "column": column_index})
        return place

    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._cell_lines.clear()
        self._templates.clear()

    def notify_style_update(self) -> None:
        self._cell_lines.clear()
        self._templates.clear()
        super().notify_style_update()

    def _get_offsets(self, y: int) -> tuple[RowKey, int]:
        if self.show_header:
            if y < self.header_height:
                return self._header_row_key, y
            y -= self.header_height
        row_key = self._row_locations.get_key(y) if y >= 0 else None
        if row_key is None:
            raise LookupError(f"Y coord {y!r} is greater than total height")
        return row_key, 0

    @property
    def _total_row_height(self) -> int:
        return len(self.rows)

    @property
    def ordered_rows(self) -> list[Row]:
        # DataTable rebuilds this list (every row) after each cell update, and reads it each time the cursor
        # moves; the order only changes with a new location map (sort, reorder, clear, removal) or a new row.
        locations = self._row_locations
        cached = self._ordered_rows
        if cached is not None and cached[0] is locations and cached[1] == len(self.rows):
            if cached[2] is not None:
                return cached[2]
            rows = list(map(self._row_objects.__getitem__, map(_REF_KEY, self._order)))  # what _reorder installed
        else:
            rows = super().ordered_rows
        self._ordered_rows = (locations, len(self.rows), rows)
        return rows

    # DataTable finds a row's y by adding the heights of every row above it (the cursor's row, twice a key):
    # every row here is one line high.

    def _get_row_region(self, row_index: int) -> Region:
        if not self.is_valid_row_index(row_index):
            return Region(0, 0, 0, 0)
        width = sum(column.get_render_width(self) for column in self.columns.values()) + self._row_label_column_width
        return Region(0, self._row_y(row_index), max(self.size.width, width), 1)

    def _get_cell_region(self, coordinate: Coordinate) -> Region:
        if not self.is_valid_coordinate(coordinate):
            return Region(0, 0, 0, 0)
        row_index, column_index = coordinate
        x = sum(column.get_render_width(self) for column in self.ordered_columns[:column_index])
        column_key = self._column_locations.get_key(column_index)
        assert column_key is not None  # a valid coordinate
        width = self.columns[column_key].get_render_width(self)
        return Region(x + self._row_label_column_width, self._row_y(row_index), width, 1)

    def _get_fixed_offset(self) -> Spacing:
        # DataTable's adds the heights of the fixed rows (none here) out of the list of every row, each cursor move
        if self.fixed_rows:
            return super()._get_fixed_offset()
        left = sum(column.get_render_width(self) for column in self.ordered_columns[:self.fixed_columns])
        return Spacing(self._row_y(0), 0, 0, left + self._row_label_column_width)

    def _row_y(self, row_index: int) -> int:
        return row_index + (self.header_height if self.show_header else 0)

    def _spark(self, key: str) -> str:
        return sparkline(self._history.series(key), SPARK_WIDTH)

    def _vs_signature(self, vs: VirtualServerView) -> tuple[Any, ...]:
        up = sum(1 for r in vs.real_servers if r.health == "up")
        # one entry per column (a cell is redrawn when its entry changes)
        return (vs.label, (vs.scheduler, vs.persistence_timeout), None, None,
                (up, len(vs.real_servers), vs.quorum_up, self._drifted(vs.key)),
                vs.active_conns, vs.inactive_conns, vs.cps, vs.bps, self._spark(f"vs|{vs.key}"))

    def _rs_signature(self, ref: RowRef, rs: RealServerView) -> tuple[Any, ...]:
        last = self._is_last(ref)
        return ((rs.label, last), rs.forward, (rs.weight, rs.weight_override), rs.config_weight,
                (rs.health, rs.floor_kept, (ref.vs, rs.key) in self._drift), (rs.active_conns, rs.drained),
                rs.inactive_conns, rs.cps, rs.bps, self._spark(ref.key))

    def _drifted(self, vs_key: str) -> bool:
        """Whether the kernel differs from intent anywhere in this virtual server."""
        return any(vs == vs_key for vs, _ in self._drift) if self._drift else False

    def drift_ids(self, ref: RowRef) -> tuple[str, ...]:
        """The drift items of a row: a real server's own, or every item of a virtual server."""
        if ref.rs is not None:
            return tuple(view["id"] for view in self._drift.get((ref.vs, ref.rs), ()))
        return tuple(view["id"] for (vs, _), views in self._drift.items() if vs == ref.vs for view in views)

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
        if self._drifted(vs.key):  # intent and kernel differ: reconcile (R) or adopt (A)
            health = Text("⚠ drift", style=p.badge("warning"))
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
        if (ref.vs, rs.key) in self._drift:
            health = Text("⚠ drift", style=p.badge("warning"))
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

    def action_drain_view(self) -> None:
        self.post_message(self.DrainViewRequested())

    def _drift_request(self, kind: Literal["reconcile", "adopt"]) -> None:
        ref = self.selected()
        ids = self.drift_ids(ref) if ref is not None else ()
        if not ids:
            self.notify("no drift on this row (rows marked ⚠ drift have some)", severity="warning")
            return
        self.post_message(self.DriftRequested(kind, ids))

    def action_reconcile(self) -> None:
        self._drift_request("reconcile")

    def action_adopt(self) -> None:
        self._drift_request("adopt")

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
        for _ in self.update_steps(snapshot):
            pass

    def update_steps(self, snapshot: DirectorSnapshot) -> Iterator[float]:
        """``update_from`` in steps (``VsTable.update_steps``)."""
        table = self.table
        yield from table.update_steps(snapshot)
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
        sort = f"sort {table.sort_key}{arrow}"
        if table.sort_key in LIVE_SORT_KEYS:  # re-sorted every RESORT_EVERY s, not every tick: say how old it is
            sort += f" ({max(0, int(time.monotonic() - table.sorted_at))} s ago)"
        parts = [f"{n_vs} VS, {n_rs} RS", sort]
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

