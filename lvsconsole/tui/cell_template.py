"""Re-render a one-line table cell by swapping its characters into a rendering made before.

Rich's pipeline for a DataTable cell (formatter, Padding, Styled, wrap and justify) costs about 0.2 ms a cell;
a live table changes hundreds of cells a second. For a one-line ``Text`` whose characters are each one cell
wide and which does not end in a blank, the segments Rich produces depend on the text's *shape* (its length, styles,
spans, justification) and never on the characters themselves: a cell of the same shape at the same place
renders to the same segments with other characters at the same offsets. ``LineTemplate.of`` checks that on a
real rendering (and refuses anything it cannot prove), ``fill`` produces the rendering of another text of the
same shape.

DataTable marks every segment of a cell with its place (``{"row": r, "column": c}`` in the style's meta, for the
mouse). A template made with ``place`` keeps its styles without that mark and is filled for any place: a row
that moved (a sort) or a cell scrolled into view reuses the rendering of its column's cells elsewhere.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

_SHAPELESS_JUSTIFY = frozenset({None, "default", "left", "right", "center"})
"""Justifications that place the text as a whole ("full" spreads words: the segments depend on the words)."""


def plain_fits_template(plain: str) -> bool:
    """Whether a text's characters can be swapped in place: something visible, a visible last character (Rich
    strips trailing blanks when it justifies), only spaces before the first visible one, and one cell per
    character (no wide, zero-width or control characters: character offsets are cell offsets, nothing wraps)."""
    body = plain.lstrip(" ")
    return bool(body) and not body[0].isspace() and not body[-1].isspace() and cell_len(plain) == len(plain)


def _leading_spaces(text: str) -> int:
    return len(text) - len(text.lstrip(" "))


def text_shape(text: Text) -> Hashable | None:
    """What the rendering of ``text`` depends on besides its characters, or None if it may depend on them."""
    plain = text.plain
    if text.justify not in _SHAPELESS_JUSTIFY or not plain_fits_template(plain):
        return None
    return (text.style, tuple(text.spans), text.justify, text.overflow, text.no_wrap, text.end, len(plain),
            _leading_spaces(plain))


class LineTemplate:
    """One rendered line with the place of the cell's text in it."""

    __slots__ = ("_line", "_pieces", "_start", "_stop", "placed")

    def __init__(self, line: str, start: int, stop: int, pieces: tuple[tuple[int, Style | None], ...],
                 placed: bool = False) -> None:
        self._line = line
        self._start = start
        self._stop = stop
        self._pieces = pieces
        self.placed = placed
        """Made with a ``place``: filled with one (``fill(plain, place)``)."""

    @classmethod
    def of(cls, lines: Sequence[Sequence[Segment]], plain: str,
           place: Mapping[str, object] | None = None) -> LineTemplate | None:
        """The template of a rendering of a text whose characters are ``plain``, or None if the rendering is
        not made of that text surrounded by blanks, one segment sequence on one line. With ``place``, every
        segment's style must carry exactly that meta (and no link); the template keeps the styles without it."""
        if len(lines) != 1 or not plain_fits_template(plain):
            return None
        segments = lines[0]
        if any(segment.control for segment in segments):
            return None
        line = "".join(segment.text for segment in segments)
        if cell_len(line) != len(line):
            return None
        # the text's first visible character is the line's (only blanks around it)
        start = _leading_spaces(line) - _leading_spaces(plain)
        stop = start + len(plain)
        if start < 0 or line[start:stop] != plain or line[stop:].strip(" "):
            return None
        if place is None:
            return cls(line, start, stop, tuple((len(segment.text), segment.style) for segment in segments))
        pieces: list[tuple[int, Style | None]] = []
        for segment in segments:
            style = segment.style
            if style is None or style.link or style.meta != place:
                return None
            pieces.append((len(segment.text), style.clear_meta_and_links()))
        return cls(line, start, stop, tuple(pieces), placed=True)

    def fill(self, plain: str, place: Style | None = None) -> list[list[Segment]]:
        """The rendering of a text of the same shape whose characters are ``plain``; for a template made with a
        place, at the place whose meta ``place`` carries (``Style.from_meta``)."""
        if len(plain) != self._stop - self._start:
            raise ValueError("a template is filled with text of the length it was made with")
        if self.placed != (place is not None):
            raise ValueError("a template made with a place is filled with one, and only such a template")
        line = self._line[:self._start] + plain + self._line[self._stop:]
        segments: list[Segment] = []
        offset = 0
        for length, style in self._pieces:
            if place is not None and style is not None:
                style = style + place
            segments.append(Segment(line[offset:offset + length], style))
            offset += length
        return [segments]
