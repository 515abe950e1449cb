"""The virtual-server panel: the ipvsadm tree (VS rows, their real servers below), live.

Built for thousands of rows: the table is a list of row references in display order, and only the rows on
screen are ever drawn (a line-API widget: Textual asks for the lines in view, nothing exists for the others).
Each row's line is made once per change of what it shows (its signature: the figures, health, sparkline) and
kept; the tick compares the signatures of the rows on screen and repaints those that changed. Sorting or
filtering rebuilds the list of references, and the cursor stays on the same server; an order by a live figure
is renewed by the tick every ``RESORT_EVERY`` seconds (the title says how old it is). A tick's work is done in
steps with the loop running between them (``update_steps``), so that keys are served while 11,000 rows are
refreshed. Histories (the sparkline of the last minute) are kept per server whatever is shown.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NamedTuple

from rich.cells import cell_len, set_cell_size
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.timer import Timer
from textual.widgets import Input, Static

from lvsconsole.engine.director_api import DirectorSnapshot, RealServerView, VirtualServerView
from lvsconsole.engine.drift import DriftView, drifted_rows
from lvsconsole.tui import bindings
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
"""Rows on screen brought up to date between two pauses of a tick (a few ms: a changed row's line is made
through Rich, an unchanged row is one comparison)."""
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
CELL_PADDING = 1
TABLE_WIDTH = sum(c.width + 2 * CELL_PADDING for c in COLUMNS)


_SPACE = Segment(" ")


def _fit_plain(text: str, width: int, right: bool) -> str:
    """``_fit`` for a string: cut with an ellipsis, or padded on the left (``right``) or the right."""
    length = cell_len(text)
    if length > width:
        text = set_cell_size(text, width - 1) + "…"
        length = width
    return " " * (width - length) + text if right else text + " " * (width - length)


def _fit(text: Text, width: int, right: bool) -> Text:
    """``text`` cut (with an ellipsis) or padded to ``width`` cells, on the right or the left; changes ``text``,
    which is made for the one line."""
    if text.cell_len > width:
        text.truncate(width, overflow="ellipsis")
    pad = width - text.cell_len
    if pad > 0:
        if right or text.justify == "right":
            text.pad_left(pad)
        else:
            text.pad_right(pad)
    return text


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


def render_row(cells: list[Any], console: Console) -> list[Segment]:
    """A row's segments: each cell padded to its column, one space either side. Most cells are one string in
    one style and become one segment here (what Rich makes of them, in a tenth of the time); a cell of several
    styles goes through Rich."""
    out: list[Segment] = []
    for column, cell in zip(COLUMNS, cells, strict=True):
        out.append(_SPACE)
        if isinstance(cell, Text) and cell.spans:
            out.extend(_fit(cell, column.width, column.right).render(console, end=""))
        else:
            text, style = (cell.plain, cell.style) if isinstance(cell, Text) else (str(cell), "")
            right = column.right or (isinstance(cell, Text) and cell.justify == "right")
            out.append(Segment(_fit_plain(text, column.width, right),
                               style if isinstance(style, Style) else console.get_style(style) if style else None))
        out.append(_SPACE)
    return out


class _Line:
    """A row's line as last made: what it showed (its signature), its segments (cells padded, palette styles),
    the snapshot it was last checked against, and the styled strip last drawn from it with the look it had."""

    __slots__ = ("look", "seen", "segments", "signature", "strip")

    def __init__(self, signature: tuple[Any, ...], segments: list[Segment], seen: int) -> None:
        self.signature = signature
        self.segments = segments
        self.seen = seen
        self.strip: Strip | None = None
        self.look: tuple[int, _LineStyles] | None = None


class _LineStyles(NamedTuple):
    """The styles of one screen update: the widget's, the header's, the cursor's (under and over the cells')
    and the hover's."""

    base: Style
    header: Style
    cursor: Style
    cursor_over: Style
    hover: Style


class VsTable(ScrollView, can_focus=True):
    """The tree as a line-based table; see the module docstring for how it stays cheap."""

    DEFAULT_CSS = """
    VsTable {
        background: $surface;
        color: $foreground;
        &:focus {
            background-tint: $foreground 5%;
            & > .vs-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
        & > .vs-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground-muted;
        }
        & > .vs-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .vs-table--hover {
            background: $block-hover-background;
        }
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"vs-table--header", "vs-table--cursor", "vs-table--hover"}
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
        super().__init__(**kwargs)
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
        self._index: dict[str, int] = {}
        """Row key → its position in ``_order``."""
        self._ref_cache: dict[tuple[str, str | None], RowRef] = {}
        self._groups: dict[str, tuple[RowRef, dict[str, RowRef]]] = {}
        self._lines: dict[str, _Line] = {}
        self._generation = 0
        """Counts snapshots and orders: a line last checked in an older one is checked again when drawn."""
        self._pass_styles: _LineStyles | None = None
        self._header: tuple[tuple[Any, ...], list[Segment]] | None = None
        self._cursor = 0
        self._hover: int | None = None
        """The row under the mouse (highlighted until a key moves the cursor)."""
        self._history = SeriesRing(HISTORY)
        self._history_index: dict[str, int] = {}
        """Row key → position in a history sample (the snapshot's order: each VS, then its real servers)."""
        self._drain_watch: dict[tuple[str, str], int] = {}
        self._drift: dict[tuple[str, str | None], list[DriftView]] = {}
        """Drift items by (vs key, rs key): those rows are highlighted."""
        self.rebuilds = 0
        self.cell_updates = 0
        self.virtual_size = Size(TABLE_WIDTH, 1)

    # ------------------------------------------------------------------------------ model

    @property
    def row_count(self) -> int:
        return len(self._order)

    @property
    def cursor_row(self) -> int:
        return self._cursor

    def selected(self) -> RowRef | None:
        if not self._order:
            return None
        return self._order[min(self._cursor, len(self._order) - 1)]

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
        index = self._index.get(self._ref(vs_key, rs_key).key)
        if index is None:
            return False
        self.move_cursor(row=index)
        return True

    def visible_refs(self) -> list[RowRef]:
        """Rows in table order (what is shown, after the filter)."""
        return list(self._order)

    def cell(self, row_key: str, column: str) -> Text:
        """What a row shows in a column (any row, on screen or not), e.g. ``cell("vs|…", "health")``."""
        ref = self._refs_by_key().get(row_key)
        content = self._content(ref) if ref is not None else None
        if content is None:
            raise KeyError(row_key)
        value = content[1][_COLUMN_KEYS.index(column)]
        return value if isinstance(value, Text) else Text(str(value))

    def _refs_by_key(self) -> dict[str, RowRef]:
        return {ref.key: ref for ref in self._order}

    def update_from(self, snapshot: DirectorSnapshot) -> None:
        """A new snapshot: record histories, reshape if the structure changed, refresh visible rows."""
        for _ in self.update_steps(snapshot):
            pass

    def update_steps(self, snapshot: DirectorSnapshot) -> Iterator[float]:
        """``update_from`` in steps of a few ms each at 11,000 rows; each step yields how long the caller should
        let the loop run before the next (``await asyncio.sleep(pause)`` in the tick's worker), so that a key
        typed meanwhile waits for one step, not for the whole refresh.

        Runs every tick over thousands of servers: the per-server work is kept to reading two attributes
        (the keys, to detect a new structure, and the bytes/s for the history); the rest is per row on screen.
        Between steps the table shows the new figures in the previous order; a sort or filter changed by a key
        meanwhile orders the rows itself, and the order computed here for the old one is dropped."""
        servers = snapshot.virtual_servers
        # the shape and the history samples, SORT_STEP virtual servers at a time (10 ms for 11,000 servers);
        # the table keeps showing the previous snapshot until they are read
        parts: list[tuple[str, tuple[str, ...]]] = []
        bps: list[int] = []
        for start in range(0, len(servers), SORT_STEP):
            chunk = servers[start:start + SORT_STEP]
            parts.extend([(vs.key, tuple([rs.key for rs in vs.real_servers])) for vs in chunk])
            for vs in chunk:
                bps.append(vs.bps)
                bps.extend([rs.bps for rs in vs.real_servers])
            if len(servers) > SORT_STEP:
                yield 0.0
        structure = tuple(parts)
        self.snapshot = snapshot
        self._generation += 1
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
        self._history.push(self._history_index, bps)
        if reshaped:
            self.rebuild()
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
                moved = self._show(order)
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

    def set_sort(self, key: SortKey, reverse: bool | None = None) -> None:
        if reverse is None:
            reverse = not self.reverse if key == self.sort_key else False
        self.sort_key = key
        self.reverse = reverse
        if self.snapshot is not None:
            self._show(self._sorted(self._filtered()))
            self.sorted_at = time.monotonic()
        self.refresh_lines(0)  # the header marks the sorted column
        self.post_message(self.SortChanged(key, reverse))

    def rebuild(self) -> None:
        """Order the rows afresh (structure or filter changed); each row is drawn when it is on screen."""
        if self.snapshot is None:
            return
        self.rebuilds += 1
        self._lines.clear()
        self._show(self._sorted(self._filtered()), force=True)
        self.sorted_at = time.monotonic()

    def _show(self, order: list[RowRef], force: bool = False) -> bool:
        """Show the rows in ``order``, the cursor staying on its server; whether anything moved."""
        if order == self._order and not force:
            return False
        keep = self.selected()
        self._order = order
        self._generation += 1  # a real server's branch (├─ or └─) depends on the order
        self._index = {ref.key: i for i, ref in enumerate(order)}
        if self.virtual_size.height != len(order) + 1:
            self.virtual_size = Size(TABLE_WIDTH, len(order) + 1)
        cursor = self._index.get(keep.key) if keep is not None else None
        self._cursor = min(self._cursor if cursor is None else cursor, max(0, len(order) - 1))
        self._hover = None
        self.refresh()
        return True

    # ------------------------------------------------------------------------------ rows on screen

    def _visible_range(self) -> tuple[int, int]:
        top = int(self.scroll_y)
        lines = self.scrollable_content_region.height  # the header's line and the rows under it
        rows = lines - 1 if lines > 1 else 100  # not laid out yet: a screenful or two
        return max(0, top), min(len(self._order), top + rows)

    def _syncing(self, repaint: bool) -> Iterator[float]:
        """The rows on screen brought up to date, ``SYNC_BAND`` at a time with the loop running between bands:
        each changed row's line is made here and the row repainted (with ``repaint``, every row on screen: the
        rows moved), so that drawing the screen only copies lines."""
        if self.snapshot is None or not self._order:
            return
        start, end = self._visible_range()
        for band in range(start, end, SYNC_BAND):
            # a key between two bands may have filtered the rows: the range is re-read against them
            for index in range(band, min(end, band + SYNC_BAND, len(self._order))):
                if self._fresh(self._order[index])[1] and not repaint:
                    self.refresh_lines(index + 1)
            yield 0.0
        if repaint:
            self.refresh()

    def sync_visible(self) -> None:
        """Bring the rows on screen up to date now (``_syncing`` in one go)."""
        for _ in self._syncing(repaint=False):
            pass

    def _content(self, ref: RowRef) -> tuple[tuple[Any, ...], list[Any]] | None:
        """A row's signature and cells (None: its server is gone)."""
        if ref.rs is None:
            vs = self._vs.get(ref.vs)
            return None if vs is None else (self._vs_signature(vs), self._vs_cells(vs))
        rs = self._rs_view(ref.vs, ref.rs)
        return None if rs is None else (self._rs_signature(ref, rs), self._rs_cells(ref, rs))

    def _signature(self, ref: RowRef) -> tuple[Any, ...] | None:
        if ref.rs is None:
            vs = self._vs.get(ref.vs)
            return None if vs is None else self._vs_signature(vs)
        rs = self._rs_view(ref.vs, ref.rs)
        return None if rs is None else self._rs_signature(ref, rs)

    def _fresh(self, ref: RowRef) -> tuple[_Line | None, bool]:
        """The row's line, made again if what the row shows changed (None: its server is gone), and whether it
        was. A line checked against this snapshot (``_generation``) is taken as it is: drawing the screen after a
        tick costs no signature for the rows the tick brought up to date."""
        line = self._lines.get(ref.key)
        if line is not None and line.seen == self._generation:
            return line, False
        signature = self._signature(ref)
        if signature is None:
            return None, False
        if line is not None and line.signature == signature:
            line.seen = self._generation
            return line, False
        content = self._content(ref)
        assert content is not None
        new = self._lines[ref.key] = _Line(signature, render_row(content[1], self.app.console), self._generation)
        self.cell_updates += len(COLUMNS) if line is None else sum(
            1 for before, now in zip(line.signature, signature, strict=True) if before != now)
        return new, True

    def _line_styles(self) -> _LineStyles:
        # a widget's rich_style walks every ancestor's styles: once per screen update, not once per line
        base = self.rich_style
        cursor = self.get_component_rich_style("vs-table--cursor")
        # the cursor's colours over every cell's (as DataTable does); the cells keep their text styles
        return _LineStyles(base, base + self.get_component_rich_style("vs-table--header"),
                           base + Style(bold=cursor.bold, italic=cursor.italic, underline=cursor.underline),
                           Style(color=cursor.color, bgcolor=cursor.bgcolor),
                           base + self.get_component_rich_style("vs-table--hover"))

    def render_lines(self, crop: Region) -> list[Strip]:
        self._pass_styles = self._line_styles()
        try:
            return super().render_lines(crop)
        finally:
            self._pass_styles = None

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        styles = self._pass_styles or self._line_styles()
        base = styles.base
        if y == 0:
            strip = Strip(Segment.apply_style(self._header_line(), styles.header), TABLE_WIDTH)
            return strip.crop_extend(scroll_x, scroll_x + width, base)
        index = scroll_y + y - 1
        if not 0 <= index < len(self._order):
            return Strip.blank(width, base)
        line, _ = self._fresh(self._order[index])
        if line is None:
            return Strip.blank(width, base)
        look = 1 if index == self._cursor else 2 if index == self._hover else 0
        if line.strip is None or line.look != (look, styles):
            if look == 1:
                segments = Segment.apply_style(line.segments, styles.cursor, styles.cursor_over)
            else:
                segments = Segment.apply_style(line.segments, styles.hover if look == 2 else base)
            line.strip = Strip(segments, TABLE_WIDTH)
            line.look = (look, styles)
        return line.strip.crop_extend(scroll_x, scroll_x + width, base)

    def _header_line(self) -> list[Segment]:
        signature = (self.sort_key, self.reverse)
        if self._header is None or self._header[0] != signature:
            arrow = "↑" if (self.reverse != (self.sort_key in ("health", "name"))) else "↓"
            labels = [column.label + (arrow if column.sort == self.sort_key else "") for column in COLUMNS]
            self._header = (signature, render_row(labels, self.app.console))
        return self._header[1]

    def repaint(self, palette: Palette) -> None:
        """New colours (theme switch): every row is drawn again as it comes into view."""
        self.palette = palette
        self._lines.clear()
        self.refresh()

    # ------------------------------------------------------------------------------ cursor and mouse

    def move_cursor(self, row: int, *, animate: bool = False, scroll: bool = True) -> None:
        """Put the cursor on row ``row`` (clamped), scrolled into view."""
        del animate  # the table scrolls at once
        old = self._cursor
        self._cursor = max(0, min(row, len(self._order) - 1))
        if old != self._cursor:
            self.refresh_lines(old + 1)
            self.refresh_lines(self._cursor + 1)
        if scroll:
            self._scroll_to_cursor()

    def _scroll_to_cursor(self) -> None:
        rows = max(1, self.scrollable_content_region.height - 1)
        top = int(self.scroll_y)
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, force=True)
        elif self._cursor >= top + rows:
            self.scroll_to(y=self._cursor - rows + 1, animate=False, force=True)

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _key_move(self, row: int) -> None:
        if self._hover is not None:
            self.refresh_lines(self._hover + 1)
            self._hover = None
        self.move_cursor(row=row)

    def action_cursor_down(self) -> None:
        self._key_move(self._cursor + 1)

    def action_cursor_up(self) -> None:
        self._key_move(self._cursor - 1)

    def action_page_down(self) -> None:
        self._key_move(self._cursor + self._page())

    def action_page_up(self) -> None:
        self._key_move(self._cursor - self._page())

    def action_scroll_top(self) -> None:
        self._key_move(0)

    def action_scroll_bottom(self) -> None:
        self._key_move(len(self._order) - 1)

    def _row_at(self, y: int) -> int | None:
        """The row at the widget's line ``y`` (None: the header or below the last row)."""
        index = int(self.scroll_y) + y - 1
        return index if y > 0 and 0 <= index < len(self._order) else None

    def on_mouse_move(self, event: events.MouseMove) -> None:
        offset = event.get_content_offset(self)
        row = self._row_at(offset.y) if offset is not None else None
        if row != self._hover:
            for old in (self._hover, row):
                if old is not None:
                    self.refresh_lines(old + 1)
            self._hover = row

    def on_leave(self, event: events.Leave) -> None:
        if self._hover is not None:
            self.refresh_lines(self._hover + 1)
            self._hover = None

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:  # a column's header sorts by it
            x = offset.x + int(self.scroll_x)
            for column in COLUMNS:
                x -= column.width + 2
                if x < 0:
                    if column.sort is not None:
                        self.set_sort(column.sort)
                    return
            return
        row = self._row_at(offset.y)
        if row is not None:
            self.move_cursor(row=row)

    def on_focus(self) -> None:
        self.refresh_lines(self._cursor + 1)

    def on_blur(self) -> None:
        self.refresh_lines(self._cursor + 1)

    # ------------------------------------------------------------------------------ cells

    def _spark(self, key: str) -> str:
        return sparkline(self._history.series(key), SPARK_WIDTH)

    def _vs_signature(self, vs: VirtualServerView) -> tuple[Any, ...]:
        up = sum(1 for r in vs.real_servers if r.health == "up")
        # one entry per column (a row is redrawn when one changes)
        return (vs.label, (vs.scheduler, vs.persistence_timeout), None, None,
                (up, len(vs.real_servers), vs.quorum_up, self._drifted(vs.key)),
                vs.active_conns, vs.inactive_conns, vs.cps, vs.bps, self._spark(f"vs|{vs.key}"))

    def _rs_signature(self, ref: RowRef, rs: RealServerView) -> tuple[Any, ...]:
        last = self._is_last(ref)
        return ((rs.label, last), rs.forward, (rs.weight, rs.weight_override), rs.config_weight,
                (rs.health, rs.admin_state, rs.floor_kept, (ref.vs, rs.key) in self._drift),
                (rs.active_conns, rs.drained), rs.inactive_conns, rs.cps, rs.bps, self._spark(ref.key))

    def _drifted(self, vs_key: str) -> bool:
        """Whether the kernel differs from intent anywhere in this virtual server."""
        return any(vs == vs_key for vs, _ in self._drift) if self._drift else False

    def drift_ids(self, ref: RowRef) -> tuple[str, ...]:
        """The drift items of a row: a real server's own, or every item of a virtual server."""
        if ref.rs is not None:
            return tuple(view["id"] for view in self._drift.get((ref.vs, ref.rs), ()))
        return tuple(view["id"] for (vs, _), views in self._drift.items() if vs == ref.vs for view in views)

    def _is_last(self, ref: RowRef) -> bool:
        """Whether the row is the last of its virtual server's real servers as shown (└─ rather than ├─)."""
        index = self._index.get(ref.key)
        if index is None:
            return True
        index += 1
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

