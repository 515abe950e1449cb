"""Help (``?``): every binding with the keys the active keymap gives it, by section, and the command grammar."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from lvsconsole.engine.commands import help_text
from lvsconsole.tui import bindings


def keys_for(binding: Binding, keymap: Mapping[str, str], display: Callable[[Binding], str]) -> str:
    keys = keymap.get(binding.id or "", binding.key)
    return ", ".join(display(binding.with_key(k.strip())) for k in keys.split(",") if k.strip())


def help_table(keymap: Mapping[str, str], display: Callable[[Binding], str], active: set[str]) -> Table:
    table = Table(box=None, show_header=True, header_style="bold", expand=False, padding=(0, 2, 0, 0))
    table.add_column("KEYS", no_wrap=True)
    table.add_column("ACTION")
    table.add_column("BINDING ID", style="dim", no_wrap=True)
    for section, group in bindings.SECTIONS.items():
        table.add_row(Text(section, style="bold underline"), "", "")
        seen: set[str] = set()
        for binding in group:
            if binding.id is None or binding.id in seen:
                continue
            seen.add(binding.id)
            marker = "•" if binding.id in active else " "
            table.add_row(Text(f"{marker} {keys_for(binding, keymap, display)}", style="bold"),
                          binding.description, binding.id)
        table.add_row("", "", "")
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = list(bindings.CLOSE)

    def __init__(self, keymap: Mapping[str, str], keymap_name: str, active: set[str]) -> None:
        super().__init__(classes="dialog")
        self.keymap = keymap
        self.keymap_name = keymap_name
        self.active = active

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog"):
            yield Label(f"Keys (keymap: {self.keymap_name}; • = active where you were)", id="dialog-title")
            with VerticalScroll(id="help-body"):
                yield Static(help_table(self.keymap, self.app.get_key_display, self.active), id="help-keys")
                yield Label("Command language (the : prompt and Ctrl+P)", classes="section")
                yield Static(Text(help_text(), no_wrap=True), id="help-grammar")
            yield Static("Esc/q closes", id="help-hint")

    def action_close(self) -> None:
        self.dismiss(None)
