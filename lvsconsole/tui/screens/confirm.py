"""Confirmation (``y``/Enter accept, ``n``/Escape cancel) and a one-line question (weight N or N%)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from lvsconsole.tui import bindings


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question. Dismisses with True (accept) or False (cancel)."""

    BINDINGS: ClassVar[list[BindingType]] = list(bindings.DIALOG)

    def __init__(self, title: str, body: str | Text, *, yes: str = "Yes", no: str = "No",
                 danger: bool = True) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.body = body
        self.yes_label = yes
        self.no_label = no
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="-danger" if self.danger else ""):
            yield Label(self.title_text, id="dialog-title")
            yield Static(self.body, id="dialog-body")
            with Horizontal(id="dialog-buttons"):
                yield Button(f"{self.yes_label} [y/Enter]", id="yes", variant="error" if self.danger else "primary",
                             compact=True)
                yield Button(f"{self.no_label} [n/Esc]", id="no", compact=True)

    def on_mount(self) -> None:
        for button in self.query(Button):
            button.can_focus = False

    def action_accept(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


WEIGHT = re.compile(r"^\s*(\d+)\s*(%?)\s*$")


def weight_error(text: str) -> str | None:
    """None for ``N`` or ``N%``; otherwise what is wrong."""
    if WEIGHT.match(text) is None:
        return "a weight is a number N, or N% of the configured weight"
    return None


class AskScreen(ModalScreen[str | None]):
    """One value. Enter submits (if ``check`` accepts it), Escape cancels (None)."""

    BINDINGS: ClassVar[list[BindingType]] = list(bindings.ASK)

    def __init__(self, title: str, body: str | Text, *, value: str = "", placeholder: str = "",
                 check: Callable[[str], str | None] | None = None) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.body = body
        self.initial = value
        self.placeholder = placeholder
        self.check = check

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            yield Static(self.body, id="dialog-body")
            yield Input(self.initial, placeholder=self.placeholder, id="ask-input")
            yield Static("Enter applies · Esc cancels", id="ask-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        problem = self.check(event.value) if self.check is not None else None
        if problem:
            self.query_one("#ask-hint", Static).update(Text(problem, style="bold red"))
            self.app.bell()
            return
        self.dismiss(event.value.strip())

    def value_of(self) -> Any:
        return self.query_one(Input).value
