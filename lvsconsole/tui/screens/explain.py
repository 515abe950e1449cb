"""The election of one VRRP instance explained (``show vrrp explain NAME``), refreshed while it is open.

Who is master, our priority tracker by tracker, who would win an election now and why, and what happens
next (a preempt_delay counting down, a nopreempt hold), with the unicast peers' reachability. The text comes
from the engine's command, so an attached console shows exactly what ``lvsconsole ctl`` would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from lvsconsole.engine.commands import Result
from lvsconsole.tui import bindings

REFRESH = 1.0
"""Seconds between refreshes: the countdowns in the text (down timer, preempt_delay) move this fast."""

Fetch = Callable[[], Awaitable[Result]]


class ExplainScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = list(bindings.CLOSE)

    DEFAULT_CSS = """
    #explain-dialog {
        width: 90%;
        height: 85%;
        border: thick $primary;
        background: $surface;
        padding: 1 2;
    }
    #explain-body {
        height: 1fr;
    }
    #explain-hint {
        color: $foreground-muted;
    }
    """

    def __init__(self, instance: str, fetch: Fetch) -> None:
        super().__init__(classes="dialog")
        self.instance = instance
        self.fetch = fetch
        self.text = ""
        self.ok = True

    def compose(self) -> ComposeResult:
        with Vertical(id="explain-dialog"):
            yield Label(f"Election of {self.instance}", id="dialog-title")
            with VerticalScroll(id="explain-body"):
                yield Static("…", id="explain-text")
            yield Static("refreshed every second · Esc/q closes", id="explain-hint")

    async def on_mount(self) -> None:
        await self.reload()
        self.set_interval(REFRESH, self.reload)

    async def reload(self) -> None:
        try:
            result = await self.fetch()
        except Exception as exc:  # the engine went away: say so, keep the screen
            result = Result(False, f"cannot reach the engine: {exc}")
        self.text, self.ok = result.message, result.ok
        if self.is_attached:
            self.query_one("#explain-text", Static).update(
                Text(self.text, style="" if self.ok else "red", no_wrap=True))

    def action_close(self) -> None:
        self.dismiss(None)
