"""The candidate config in a TextArea with keepalived.conf highlighting and live diagnostics.

Validation runs as you type (debounced, in a thread: the same loader the engine uses, so a diagnostic here is
one ``commit`` would refuse), the diagnostics are listed beside the text (select one to jump to its line) and
the offending words are underlined. ``Ctrl+S`` saves the text as the candidate; ``c`` on the main screen then
shows the diff and commits. Highlighting needs no tree-sitter: lines are tokenised lazily, when drawn.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Sequence
from typing import Any, ClassVar

from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Label, OptionList, Static, TextArea
from textual.widgets.option_list import Option
from textual.widgets.text_area import TextAreaTheme

from lvsconsole.config.diagnostics import Diagnostic
from lvsconsole.tui import bindings
from lvsconsole.tui.link import Candidate, EngineLink
from lvsconsole.tui.screens.confirm import ConfirmScreen

VALIDATE_AFTER = 0.5

_TOKEN = re.compile(
    r"""(?P<comment>[#!].*$)
      | (?P<string>"(?:[^"\\]|\\.)*"?)
      | (?P<bracket>[{}])
      | (?P<macro>[@$~][\w{}]*)
      | (?P<address>\b(?:\d{1,3}\.){3}\d{1,3}(?:/\d+)?\b|\b[0-9a-fA-F]*:[0-9a-fA-F:.]+(?:/\d+)?)
      | (?P<number>\b\d+(?:\.\d+)?\b)
      | (?P<word>[^\s{}"]+)""",
    re.VERBOSE,
)
_CONSTANTS = frozenset({"MASTER", "BACKUP", "NAT", "DR", "TUN", "TCP", "UDP", "SCTP", "PASS", "AH", "true", "false",
                        "on", "off", "yes", "no", "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq",
                        "fo", "ovf", "mh", "twos"})

Highlight = tuple[int, int | None, str]


def line_highlights(line: str, marks: Sequence[tuple[int, bool]] = ()) -> list[Highlight]:
    """(start byte, end byte, name) spans of one line; ``marks`` are (1-based column, is_error) of diagnostics,
    whose words are underlined (red for errors, yellow for warnings)."""
    spans: list[tuple[int, int, str]] = []
    first = True
    for match in _TOKEN.finditer(line):
        kind = match.lastgroup or "word"
        start, end = match.span()
        if kind == "word":
            word = match.group()
            if first:
                kind = "keyword" if line.rstrip().endswith("{") or word.endswith("_CHECK") else "function"
            elif word in _CONSTANTS:
                kind = "constant.builtin"
            else:
                first = False
                continue
        name = {"comment": "comment", "string": "string", "bracket": "punctuation.bracket", "macro": "include",
                "address": "number", "number": "number"}.get(kind, kind)
        if kind not in ("comment", "bracket"):
            first = False
        spans.append((start, end, name))
    for col, is_error in marks:
        start = max(0, col - 1)
        end = start
        while end < len(line) and not line[end].isspace():
            end += 1
        spans.append((start, max(end, start + 1), "lvs.error" if is_error else "lvs.warning"))
    if line.isascii():
        return [(s, e, n) for s, e, n in spans]
    offsets = [0]
    for ch in line:
        offsets.append(offsets[-1] + len(ch.encode("utf-8")))
    return [(offsets[s], offsets[min(e, len(line))], n) for s, e, n in spans]


class _LazyHighlights(dict[int, list[Highlight]]):
    """TextArea's per-line highlight map, computed for a line the first time it is drawn."""

    def __init__(self, area: KeepalivedArea) -> None:
        super().__init__()
        self._area = area

    def __missing__(self, index: int) -> list[Highlight]:
        area = self._area
        try:
            line = area.document.get_line(index)
        except IndexError:
            line = ""
        value = line_highlights(line, area.error_columns.get(index + 1, ()))
        self[index] = value
        return value

    def __bool__(self) -> bool:
        return True


def _theme(base_name: str, name: str) -> TextAreaTheme:
    base = TextAreaTheme.get_builtin_theme(base_name)
    assert base is not None
    styles = {**base.syntax_styles, "lvs.error": Style(color="#FF5C5C", underline=True, bold=True),
              "lvs.warning": Style(underline=True)}
    return dataclasses.replace(base, name=name, syntax_styles=styles)


class KeepalivedArea(TextArea):
    def __init__(self, text: str, **kwargs: Any) -> None:
        self.error_columns: dict[int, list[tuple[int, bool]]] = {}
        super().__init__(text, language=None, soft_wrap=False, show_line_numbers=True, tab_behavior="indent",
                         **kwargs)
        self.register_theme(_theme("vscode_dark", "lvs-dark"))
        self.register_theme(_theme("github_light", "lvs-light"))

    def _build_highlight_map(self) -> None:
        self._line_cache.clear()
        self._highlights = _LazyHighlights(self)

    def set_errors(self, diagnostics: Sequence[Diagnostic]) -> None:
        columns: dict[int, list[tuple[int, bool]]] = {}
        for d in diagnostics:
            if d.location is not None and d.location.file == "<candidate>":
                columns.setdefault(d.location.line, []).append((d.location.col, d.is_error))
        self.error_columns = columns
        self._build_highlight_map()
        self.refresh()


class EditorScreen(Screen[bool]):
    """Dismisses True when the candidate was saved at least once."""

    BINDINGS: ClassVar[list[BindingType]] = list(bindings.EDITOR)

    def __init__(self, link: EngineLink, candidate: Candidate) -> None:
        super().__init__()
        self.link = link
        self.candidate = candidate
        self.saved_text = candidate.text
        self.saved_once = False
        self.diagnostics: list[Diagnostic] = []
        self._timer: Timer | None = None
        self.validations = 0

    def compose(self) -> ComposeResult:
        title = "Candidate configuration" + ("" if self.candidate.editable else " (read-only)")
        yield Label(title, id="editor-title")
        if not self.candidate.editable:
            yield Static(Text(self.candidate.why_not, style="yellow"), id="editor-readonly")
        with Horizontal(id="editor-main"):
            yield KeepalivedArea(self.candidate.text, id="editor-area", read_only=not self.candidate.editable)
            with Vertical(id="editor-side"):
                yield Label("Diagnostics", classes="section")
                yield OptionList(id="editor-diagnostics")
        yield Static("", id="editor-status")
        yield Footer()

    @property
    def area(self) -> KeepalivedArea:
        return self.query_one(KeepalivedArea)

    def on_mount(self) -> None:
        self.area.theme = "lvs-dark" if self.app.current_theme.dark else "lvs-light"
        self.area.focus()
        self.validate_now()

    @on(TextArea.SelectionChanged)
    def _moved(self, event: TextArea.SelectionChanged) -> None:
        self._status()

    @on(TextArea.Changed)
    def _changed(self, event: TextArea.Changed) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(VALIDATE_AFTER, self.validate_now)
        self._status()

    def validate_now(self) -> None:
        self._validate(self.area.text)

    @work(exclusive=True, group="validate", exit_on_error=False)
    async def _validate(self, text: str) -> None:
        from lvsconsole.engine.store import load_text

        try:
            loaded = await asyncio.to_thread(load_text, text, base_dir=self.candidate.base_dir)
        except Exception as exc:  # a loader bug must not close the editor
            self.query_one("#editor-status", Static).update(Text(f"validation failed: {exc}", style="red"))
            return
        if text != self.area.text:
            return  # typed meanwhile: the next run will report
        self.validations += 1
        self.diagnostics = sorted(loaded.diagnostics, key=lambda d: (not d.is_error, d.location or ("", 0, 0)))
        self.area.set_errors(self.diagnostics)
        options = self.query_one(OptionList)
        options.clear_options()
        for i, d in enumerate(self.diagnostics):
            where = f"{d.location.line}:{d.location.col}" if d.location else "-"
            style = "red" if d.is_error else "yellow"
            options.add_option(Option(Text.assemble((f"{where} ", "bold"), (d.message, style)), id=str(i)))
        if not self.diagnostics:
            options.add_option(Option(Text("no problems", style="green"), disabled=True))
        self._status()

    def _status(self) -> None:
        errors = sum(1 for d in self.diagnostics if d.is_error)
        warnings = len(self.diagnostics) - errors
        dirty = self.area.text != self.saved_text
        parts: list[Any] = [(f"{errors} error{'s' * (errors != 1)}", "bold red" if errors else "green"), ", ",
                            (f"{warnings} warning{'s' * (warnings != 1)}", "yellow" if warnings else ""), "  │  "]
        parts.append(("modified (Ctrl+S saves to the candidate)", "bold yellow") if dirty else ("saved", "dim"))
        row, col = self.area.cursor_location
        parts.append(f"  │  line {row + 1}, col {col + 1}")
        self.query_one("#editor-status", Static).update(Text.assemble(*parts))

    @on(OptionList.OptionSelected)
    def _jump(self, event: OptionList.OptionSelected) -> None:
        index = int(event.option.id or -1)
        if 0 <= index < len(self.diagnostics):
            loc = self.diagnostics[index].location
            if loc is not None and loc.file == "<candidate>":
                self.area.move_cursor((loc.line - 1, max(0, loc.col - 1)), center=True)
                self.area.focus()

    async def action_save(self) -> None:
        if not self.candidate.editable:
            self.notify(self.candidate.why_not, severity="warning")
            return
        text = self.area.text
        result = await self.link.save_candidate(text)
        if result.ok:
            self.saved_text = text
            self.saved_once = True
        self.notify(result.message.splitlines()[0] if result.message else "saved",
                    severity="information" if result.ok else "error")
        self._status()

    def action_close(self) -> None:
        if self.area.text == self.saved_text:
            self.dismiss(self.saved_once)
            return

        def answered(discard: bool | None) -> None:
            if discard:
                self.dismiss(self.saved_once)

        self.app.push_screen(ConfirmScreen("Discard unsaved edits?",
                                           "The text differs from the candidate. Close the editor without saving?",
                                           yes="Discard", no="Keep editing"), answered)
