"""A servers-table row made by ``render_row`` shows, character by character, what Rich renders for the same cells
(each fitted to its column: cut with an ellipsis or padded, on the left for numbers), in the same styles."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from lvsconsole.tui.widgets.vs_table import COLUMNS, _fit, render_row

BOLD_RED = Style(color="red", bold=True)
BADGE = Style(color="black", bgcolor="yellow", bold=True)


def rich_row(cells: list[Any], console: Console) -> list[Segment]:
    line = Text(no_wrap=True, end="")
    for column, cell in zip(COLUMNS, cells, strict=True):
        text = cell.copy() if isinstance(cell, Text) else Text(str(cell))
        line.append(" ")
        line.append_text(_fit(text, column.width, column.right))
        line.append(" ")
    return list(line.render(console, end=""))


def styled_chars(segments: list[Segment]) -> list[tuple[str, Style]]:
    return [(char, segment.style or Style.null()) for segment in segments for char in segment.text]


ROWS: list[list[Any]] = [
    [Text.assemble(("TCP  ", "dim"), ("10.0.0.1:80", BOLD_RED)), Text("wrr persist 50", style=BOLD_RED), "", "",
     Text("2/4 up", style="green"), Text("1,234", justify="right"), Text("0", justify="right"),
     Text("12", justify="right"), Text("8.4M", justify="right"), Text(" ▁▂▃▄▅▆▇█", style="yellow")],
    [Text(" ├─ a-real-server-with-a-name-far-too-long-for-its-column:8080"), Text("DR", style="dim"),
     Text("3", style=BOLD_RED, justify="right"), Text("13", justify="right"), Text("⚠ drift", style=BADGE),
     Text.assemble(("↘ ", "yellow"), "37", justify="right"), Text("96", justify="right"),
     Text("0", justify="right"), Text("310K", justify="right"), Text(" " + "x" * 40, style="yellow")],
    ["VIRTUAL / REAL SERVER↑", "SCHED/FWD", "WEIGHT", "CFG", "HEALTH", "ACTIVE↓", "INACT", "CONN/S", "BYTES/S",
     "BYTES/S, 1 MIN"],
]


def test_render_row_is_what_rich_renders_for_the_same_cells() -> None:
    console = Console(width=200, color_system="truecolor")
    for cells in ROWS:
        ours = styled_chars(render_row([c.copy() if isinstance(c, Text) else c for c in cells], console))
        theirs = styled_chars(rich_row(cells, console))
        assert "".join(c for c, _ in ours) == "".join(c for c, _ in theirs)
        assert ours == theirs
        assert len(ours) == sum(column.width + 2 for column in COLUMNS)
