"""The health log: the engine's event stream in keepalived's wording, coloured by severity, with the audit
entries of operator actions; filterable (words, minimum level) and pausable (events keep arriving and are
shown on resume)."""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, RichLog

from lvsconsole.engine.events import SEVERITIES, Event, OperatorAction, Severity
from lvsconsole.tui import bindings
from lvsconsole.tui.format import SEVERITY_STYLES
from lvsconsole.tui.themes import DEFAULT_PALETTE, Palette
from lvsconsole.tui.widgets.vs_table import FilterBar

KEEP = 5000
LEVELS: tuple[Severity, ...] = ("info", "notice", "warning", "error", "debug")
"""The order ``l`` cycles the minimum level through (debug last: it shows every check result)."""


def event_line(event: Event, palette: Palette) -> Text:
    p = palette
    stamp = time.strftime("%H:%M:%S", time.localtime(event.time))
    severity = event.severity
    style = p.style(SEVERITY_STYLES.get(severity, "foreground"), bold=severity in ("warning", "error"))
    parts: list[Any] = [(stamp, p.style("foreground-muted")), " ", (f"{severity:<7}", style), " "]
    if isinstance(event, OperatorAction):
        parts += [(" AUDIT ", p.badge("accent" if event.ok else "warning")), " "]
    parts.append((event.text(), style))
    return Text.assemble(*parts)


class EventLog(RichLog):
    BINDINGS: ClassVar[list[BindingType]] = [*bindings.NAV_LOG, *bindings.LOG]

    class FilterRequested(Message):
        pass

    class LevelCycled(Message):
        pass

    def action_filter(self) -> None:
        self.post_message(self.FilterRequested())

    def action_cycle_level(self) -> None:
        self.post_message(self.LevelCycled())


class HealthLog(Vertical):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.border_title = "Health log"
        self.palette = DEFAULT_PALETTE
        self.events: collections.deque[Event] = collections.deque(maxlen=KEEP)
        self.paused = False
        self.held = 0
        self.filter_text = ""
        self.level: Severity = "info"
        self.view = EventLog(id="log-view", max_lines=KEEP, wrap=False, markup=False, auto_scroll=True)

    def compose(self) -> ComposeResult:
        yield self.view
        yield FilterBar(placeholder="filter the log: words to match; Enter keeps, Esc clears", id="log-filter",
                        classes="filter-bar")

    def on_mount(self) -> None:
        self._retitle()

    # ------------------------------------------------------------------------------ feeding

    def shows(self, event: Event) -> bool:
        if not event.LOGGED:
            return False
        if SEVERITIES.index(event.severity) < SEVERITIES.index(self.level):
            return False
        if not self.filter_text:
            return True
        text = f"{event.severity} {event.KIND} {event.text()}".lower()
        return all(word in text for word in self.filter_text.lower().split())

    def add(self, events: Iterable[Event]) -> None:
        view = self.view
        for event in events:
            self.events.append(event)
            if self.paused:
                if self.shows(event):
                    self.held += 1
                continue
            if self.shows(event):
                view.write(event_line(event, self.palette))
        if self.paused:
            self._retitle()

    def redraw(self) -> None:
        view = self.view
        view.clear()
        for event in self.events:
            if self.shows(event):
                view.write(event_line(event, self.palette))
        self.held = 0
        self._retitle()

    def lines(self) -> list[str]:
        """The shown lines as plain text (tests)."""
        return [strip.text for strip in self.view.lines]

    # ------------------------------------------------------------------------------ controls

    def toggle_pause(self) -> bool:
        self.paused = not self.paused
        if not self.paused:
            self.redraw()
        self._retitle()
        return self.paused

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip()
        self.redraw()

    def cycle_level(self) -> None:
        self.level = LEVELS[(LEVELS.index(self.level) + 1) % len(LEVELS)]
        self.redraw()

    def repaint(self, palette: Palette) -> None:
        self.palette = palette
        self.redraw()

    def _retitle(self) -> None:
        parts = [f"level ≥ {self.level}"]
        if self.filter_text:
            parts.append(f"filter '{self.filter_text}'")
        if self.paused:
            parts.append(f"PAUSED ({self.held} new)")
        self.border_subtitle = " · ".join(parts)
        self.set_class(self.paused, "-paused")

    @on(EventLog.FilterRequested)
    def _open_filter(self, event: EventLog.FilterRequested) -> None:
        event.stop()
        bar = self.query_one(FilterBar)
        bar.display = True
        bar.focus()

    @on(EventLog.LevelCycled)
    def _level(self, event: EventLog.LevelCycled) -> None:
        event.stop()
        self.cycle_level()

    @on(Input.Changed, "#log-filter")
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        self.set_filter(event.value)

    @on(Input.Submitted, "#log-filter")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one(FilterBar).display = bool(event.value.strip())
        self.view.focus()

    @on(FilterBar.Cleared)
    def _cleared(self, event: FilterBar.Cleared) -> None:
        event.stop()
        self.set_filter("")
        self.query_one(FilterBar).display = False
        self.view.focus()
