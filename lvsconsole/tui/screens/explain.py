"""The election of one VRRP instance explained (``show vrrp explain NAME``), refreshed while it is open.

Who is master, our priority tracker by tracker, who would win an election now and why, and what happens
next (a preempt_delay counting down, a nopreempt hold), with the unicast peers' reachability. The text comes
from the engine's command, so an attached console shows exactly what ``lvsconsole ctl`` would.
"""

from __future__ import annotations

from rich.text import Text

from lvsconsole.engine.commands import Result
from lvsconsole.tui.screens.live import Fetch, LiveTextScreen


class ExplainScreen(LiveTextScreen):
    ID_PREFIX = "explain"
    REFRESH = 1.0
    """The countdowns in the text (down timer, preempt_delay) move this fast."""

    def __init__(self, instance: str, fetch: Fetch) -> None:
        super().__init__(fetch)
        self.instance = instance

    @property
    def text(self) -> str:
        """The explanation (or the error) of the last ``show vrrp explain``; empty before the first."""
        return self.result.message if self.result is not None else ""

    @property
    def ok(self) -> bool:
        return self.result is None or self.result.ok

    def heading(self) -> str:
        return f"Election of {self.instance}"

    def body(self, result: Result) -> Text:
        return Text(result.message, no_wrap=True)
