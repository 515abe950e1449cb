"""Leaving a console whose engine is embedded: stop the director, or hand it to a background engine.

Closing the console must never drop the VIPs by accident, so there is no default: ``s`` stops the director
(priority-0 adverts, VIPs released, IPVS as ``lvs_flush_on_stop`` says), ``b`` hands it to a background
``lvsconsole run --headless`` and leaves it running, ``n``/Escape stays.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from lvsconsole.tui import bindings

Handoff = Callable[[Callable[[str], None]], Awaitable[str]]


class QuitScreen(ModalScreen[str]):
    """Dismisses with "stop", "handoff" (after the background engine answered) or "cancel"."""

    BINDINGS: ClassVar[list[BindingType]] = list(bindings.QUIT)

    def __init__(self, *, config_file: str | None, handoff: Handoff | None, unsaved: bool, instances: int,
                 socket_path: str | None) -> None:
        super().__init__(classes="dialog")
        self.config_file = config_file
        self.handoff = handoff
        self.unsaved = unsaved
        self.instances = instances
        self.socket_path = socket_path
        self.busy = False

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="-danger"):
            yield Label("Leave lvsconsole: the director runs inside this console", id="dialog-title")
            body = Text()
            body.append("[s] ", style="bold")
            body.append("Stop the director", style="bold red")
            body.append(f": {self.instances} VRRP instance(s) send priority 0 and release their VIPs; "
                        "IPVS is cleared as lvs_flush_on_stop says.\n")
            body.append("[b] ", style="bold")
            body.append("Hand off to a background engine", style="bold green")
            body.append(": this console exits once the new engine answers on its socket, leaving the VIPs and "
                        "the IPVS table in place; runtime overrides (drain, weight) are replayed to it.\n")
            body.append(f"    lvsconsole run --headless -f {self.config_file or '?'}\n", style="bold")
            body.append(f"        --socket {self.socket_path or '?'}\n", style="bold")
            if self.unsaved:
                body.append("    The running configuration is not saved in the file: handing off writes it first "
                            "(the previous file is kept as .bak).\n", style="yellow")
            if self.handoff is None:
                body.append("    (hand-off is not possible here: no config file)\n", style="yellow")
            body.append("[n/Esc] ", style="bold")
            body.append("Stay")
            yield Static(body, id="dialog-body")
            yield Static("", id="quit-status")

    def action_choose(self, choice: str) -> None:
        if self.busy:
            return
        if choice == "handoff":
            if self.handoff is None:
                self.app.bell()
                return
            self.busy = True
            self._run_handoff()
            return
        self.dismiss(choice)

    def status(self, text: str, style: str = "") -> None:
        self.query_one("#quit-status", Static).update(Text(text, style=style))

    @work(exclusive=True, exit_on_error=False)
    async def _run_handoff(self) -> None:
        assert self.handoff is not None
        try:
            message = await self.handoff(lambda text: self.status(text))
        except Exception as exc:
            self.busy = False
            self.status(f"hand-off failed, the director keeps running here:\n{exc}", "bold red")
            return
        self.status(message, "green")
        self.dismiss("handoff")
