"""Live command screens: a modal dialog that runs one engine command on a timer and redraws from its Result.

The drain view, the wire radar, the health-check flight recorder and the election explained all have this
shape: a title, a body, a hint, Esc/q to close, and an error line instead of a crash when the engine cannot
be reached. A subclass says only what differs: its widget ids, texts, and how it keeps and draws a Result.
The command is all a screen knows of the engine, so an attached console (the control socket) shows exactly
what an embedded one does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from lvsconsole.engine.commands import Result
from lvsconsole.tui import bindings

Fetch = Callable[[], Awaitable[Result]]
DataT = TypeVar("DataT")


async def call_engine(command: Fetch) -> Result:
    """Run one engine command; a link that raises becomes a failed Result, so the screen stays open and says so."""
    try:
        return await command()
    except Exception as exc:  # the engine went away (socket closed, engine stopped): not the screen's bug
        return Result(False, f"cannot reach the engine: {exc}")


class LiveScreen(ModalScreen[None]):
    """Runs ``fetch`` when mounted and every ``refresh_every`` seconds, then ``draw()``s what ``accept()`` kept."""

    BINDINGS: ClassVar[list[BindingType]] = list(bindings.CLOSE)

    DEFAULT_CSS = """
    LiveScreen .live-dialog {
        width: 90%;
        height: 85%;
        border: thick $primary;
        background: $surface;
        padding: 1 2;
    }
    LiveScreen .live-body {
        height: 1fr;
    }
    LiveScreen .live-muted {
        color: $foreground-muted;
    }
    """

    ID_PREFIX: ClassVar[str]
    """Widget ids are ``ID_PREFIX-dialog``, ``ID_PREFIX-hint`` and so on: tests and screenshots select them."""
    HEADING: ClassVar[str] = ""
    HINT: ClassVar[str] = "refreshed every second · Esc/q closes"
    REFRESH: ClassVar[float] = 1.0
    """Seconds between two runs of the command."""

    def __init__(self, fetch: Fetch, *, refresh: float | None = None) -> None:
        super().__init__(classes="dialog")
        self.fetch = fetch
        self.refresh_every = self.REFRESH if refresh is None else refresh
        self.error: str | None = None
        """The message of the last result ``accept()`` refused; None once one is accepted again."""

    def part_id(self, part: str) -> str:
        return f"{self.ID_PREFIX}-{part}"

    def heading(self) -> str:
        return self.HEADING

    def hint(self) -> str:
        return self.HINT

    def compose(self) -> ComposeResult:
        with Vertical(id=self.part_id("dialog"), classes="live-dialog"):
            yield Label(self.heading(), id="dialog-title")
            yield from self.compose_body()
            yield Static(self.hint(), id=self.part_id("hint"), classes="live-muted")

    def compose_body(self) -> ComposeResult:
        """The widgets between the title and the hint."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Called once mounted, before the first run of the command (Textual calls every on_mount of the MRO, so
        subclasses extend this rather than on_mount)."""

    async def on_mount(self) -> None:
        self.prepare()
        await self.reload()
        self.set_interval(self.refresh_every, self.reload)

    async def reload(self) -> None:
        result = await call_engine(self.fetch)
        self.error = None if self.accept(result) else result.message
        if self.is_attached:  # the command may return after the screen was dismissed
            self.draw()

    def accept(self, result: Result) -> bool:
        """Keep what the screen shows from ``result``; False makes its message the screen's error instead."""
        raise NotImplementedError

    def draw(self) -> None:
        raise NotImplementedError

    def action_close(self) -> None:
        self.dismiss(None)


class LiveTableScreen(LiveScreen, Generic[DataT]):
    """A summary line over a table with one row per record of the command's JSON.

    An error replaces the summary and leaves the last good rows on screen; a refill keeps the cursor on the same
    row index, so a refresh does not throw the operator back to the top.
    """

    DEFAULT_CSS = """
    LiveTableScreen .live-dialog {
        width: 96%;
        height: 90%;
    }
    LiveTableScreen .live-summary {
        margin-bottom: 1;
    }
    """

    COLUMNS: ClassVar[Sequence[str]]
    SUMMARY_PART: ClassVar[str] = "summary"
    """The summary's id is ``ID_PREFIX-SUMMARY_PART``."""

    def __init__(self, fetch: Fetch, empty: DataT, *, refresh: float | None = None) -> None:
        super().__init__(fetch, refresh=refresh)
        self.data = empty

    def compose_body(self) -> ComposeResult:
        yield Static("…", id=self.part_id(self.SUMMARY_PART), classes="live-summary")
        yield DataTable(id=self.part_id("table"), classes="live-body", cursor_type="row", zebra_stripes=True)

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one(f"#{self.part_id('table')}", DataTable)

    def prepare(self) -> None:
        for label in self.COLUMNS:
            self.table.add_column(label, key=label)

    def parse(self, data: object) -> DataT | None:
        """The command's JSON as this screen's data, or None when it is not the shape this screen shows."""
        raise NotImplementedError

    def records(self, data: DataT) -> Iterable[dict[str, Any]]:
        raise NotImplementedError

    def row_key(self, record: dict[str, Any]) -> str:
        raise NotImplementedError

    def cells(self, record: dict[str, Any]) -> Sequence[object]:
        raise NotImplementedError

    def summary(self, data: DataT) -> RenderableType:
        raise NotImplementedError

    def accept(self, result: Result) -> bool:
        data = self.parse(result.data) if result.ok else None
        if data is None:
            return False
        self.data = data
        return True

    def draw(self) -> None:
        line = Text(self.error, style="red") if self.error is not None else self.summary(self.data)
        self.query_one(f"#{self.part_id(self.SUMMARY_PART)}", Static).update(line)
        table = self.table
        cursor = table.cursor_row
        table.clear(columns=False)
        for record in self.records(self.data):
            table.add_row(*self.cells(record), key=self.row_key(record))
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))


class LiveTextScreen(LiveScreen):
    """A scrollable body rendered from the last result; an error shows in the body, in red, unwrapped."""

    def __init__(self, fetch: Fetch, *, refresh: float | None = None) -> None:
        super().__init__(fetch, refresh=refresh)
        self.result: Result | None = None
        """The last result, accepted or not (tests and screenshots wait for the first one)."""

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id=self.part_id("body"), classes="live-body"):
            yield Static("…", id=self.part_id("text"))

    def body(self, result: Result) -> RenderableType:
        """The body of an accepted result."""
        raise NotImplementedError

    def accept(self, result: Result) -> bool:
        self.result = result
        return result.ok

    def draw(self) -> None:
        if self.result is None:  # nothing fetched yet
            return
        shown = self.body(self.result) if self.error is None else Text(self.error, style="red", no_wrap=True)
        self.query_one(f"#{self.part_id('text')}", Static).update(shown)
