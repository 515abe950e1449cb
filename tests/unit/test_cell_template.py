"""A cell re-rendered from a template must be exactly what Rich renders for it (tui/cell_template.py)."""

from __future__ import annotations

import random

import pytest
from rich.console import Console, RenderableType
from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.renderables.styled import Styled

from lvsconsole.tui.cell_template import LineTemplate, plain_fits_template, text_shape

CONSOLE = Console(width=200, color_system="truecolor")
# what DataTable layers around a body cell: the row's style with its (row, column) meta, the component's
BASE = Style(color="#e0e0e0", bgcolor="#1e1e1e") + Style.from_meta({"row": 7, "column": 3})
POST = Style(bold=False)


def render(cell: RenderableType, width: int, cursor: bool = False) -> list[list[Segment]]:
    """What DataTable._render_cell does for a one-line body cell."""
    pre = BASE + (Style(bgcolor="#004578", bold=True) if cursor else Style())
    options = CONSOLE.options.update_dimensions(width, 1).update(no_wrap=True)
    return CONSOLE.render_lines(Styled(Padding(cell, (0, 1)), pre_style=pre, post_style=POST), options)


def shaped(plain: str, kind: int) -> Text:
    """Texts like the table's cells: plain, styled, right-justified, with a styled prefix, centred."""
    if kind == 0:
        return Text(plain)
    if kind == 1:
        return Text(plain, style=Style(color="green", bold=True))
    if kind == 2:
        return Text(plain, justify="right")
    if kind == 3:
        head = min(3, len(plain) - 1)
        return Text.assemble((plain[:head], Style(color="grey50")), plain[head:], justify="right")
    if kind == 4:
        return Text(plain, style="bold", justify="center")
    return Text(" " + plain, style=Style(color="cyan"))  # the sparkline cell: a blank, then the bars


def test_a_filled_template_is_what_rich_renders_for_every_shape_and_width() -> None:
    rng = random.Random(5)
    alphabet = "0123456789,.kMG ├─●↘/abc:"
    checked = 0
    for _ in range(600):
        kind = rng.randrange(6)
        width = rng.randrange(4, 20)
        length = rng.randrange(2, width + 4)  # some do not fit: those must be refused
        first = "".join(rng.choice(alphabet) for _ in range(length)).strip() or "x"
        second = "".join(rng.choice(alphabet) for _ in range(len(first) - 2)).join(("y", "z"))[:len(first)]
        a, b = shaped(first, kind), shaped(second, kind)
        cursor = rng.random() < 0.3
        template = LineTemplate.of(render(a, width, cursor), a.plain)
        if text_shape(a) is None or text_shape(b) != text_shape(a) or template is None:
            continue
        assert template.fill(b.plain) == render(b, width, cursor), (first, second, kind, width)
        checked += 1
    assert checked > 200  # the property was exercised, not skipped


def test_text_that_is_cropped_or_blank_at_an_end_gets_no_template() -> None:
    assert LineTemplate.of(render(Text("123456789"), 6), "123456789") is None  # cropped to fit
    assert plain_fits_template(" 12") and not plain_fits_template("12 ") and not plain_fits_template("   ")
    assert not plain_fits_template("12\t")
    assert not plain_fits_template("日本")  # two cells a character
    assert not plain_fits_template("")
    assert text_shape(Text("a b", justify="full")) is None  # spreads its words: depends on them


def test_a_template_is_filled_only_with_text_of_its_length() -> None:
    template = LineTemplate.of(render(Text("123", justify="right"), 8), "123")
    assert template is not None
    assert template.fill("456") == render(Text("456", justify="right"), 8)
    with pytest.raises(ValueError):
        template.fill("4567")


def render_at(cell: RenderableType, width: int, row: int, column: int, cursor: bool = False) -> list[list[Segment]]:
    """As ``render``, at another place of the table (DataTable puts the place in every segment's meta)."""
    pre = (Style(color="#e0e0e0", bgcolor="#1e1e1e") + Style.from_meta({"row": row, "column": column})
           + (Style(bgcolor="#004578", bold=True) if cursor else Style()))
    options = CONSOLE.options.update_dimensions(width, 1).update(no_wrap=True)
    return CONSOLE.render_lines(Styled(Padding(cell, (0, 1)), pre_style=pre, post_style=POST), options)


def test_a_template_made_at_one_place_renders_a_cell_of_its_shape_at_any_other() -> None:
    rng = random.Random(11)
    checked = 0
    for _ in range(300):
        kind = rng.randrange(6)
        width = rng.randrange(6, 16)
        first = "".join(rng.choice("0123456789,.k") for _ in range(rng.randrange(2, width - 2)))
        second = "".join(rng.choice("0123456789,.k") for _ in range(len(first)))
        a, b = shaped(first, kind), shaped(second, kind)
        cursor = rng.random() < 0.3
        template = LineTemplate.of(render(a, width, cursor), a.plain, place={"row": 7, "column": 3})
        if text_shape(a) is None or text_shape(b) != text_shape(a) or template is None:
            continue
        row = rng.randrange(0, 11_000)
        filled = template.fill(b.plain, Style.from_meta({"row": row, "column": 3}))
        expected = render_at(b, width, row, 3, cursor)
        assert filled == expected
        # equal styles compare by colours and attributes; the place must really be the new one
        assert all(segment.style is not None and segment.style.meta == {"row": row, "column": 3}
                   for segment in filled[0])
        checked += 1
    assert checked > 100


def test_a_template_is_made_with_a_place_only_if_every_segment_carries_that_place() -> None:
    lines = render(Text("123", justify="right"), 8)
    assert LineTemplate.of(lines, "123", place={"row": 8, "column": 3}) is None  # rendered at (7, 3)
    placed = LineTemplate.of(lines, "123", place={"row": 7, "column": 3})
    assert placed is not None and placed.placed
    with pytest.raises(ValueError):
        placed.fill("456")  # a placed template needs the place it fills
    plain = LineTemplate.of(lines, "123")
    assert plain is not None
    with pytest.raises(ValueError):
        plain.fill("456", Style.from_meta({"row": 1, "column": 3}))
