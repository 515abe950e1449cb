"""The text a command printed (``show vs``, ``help``…), scrollable; Escape or q closes it."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from lvsconsole.tui import bindings


class OutputScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = list(bindings.CLOSE)

    def __init__(self, title: str, text: str, *, ok: bool = True) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.text = text
        self.ok = ok

    def compose(self) -> ComposeResult:
        with Vertical(id="output-dialog"):
            yield Label(self.title_text, id="dialog-title")
            with VerticalScroll(id="output-body"):
                yield Static(Text(self.text, style="" if self.ok else "red", no_wrap=True), id="output-text")
            yield Static("Esc/q closes", id="output-hint")

    def action_close(self) -> None:
        self.dismiss(None)
