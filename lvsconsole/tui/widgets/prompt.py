"""The command prompt (``:``): the engine's command language with completion from its grammar (Tab, and the
first candidate as ghost text), errors shown inline under the word they name, and a history (Up/Down)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.suggester import Suggester
from textual.timer import Timer
from textual.widgets import Input, Label, Static

from lvsconsole.engine.commands import Completion, Names, Result, completions, parse
from lvsconsole.engine.errors import CommandError
from lvsconsole.tui import bindings
from lvsconsole.tui.themes import DEFAULT_PALETTE, Palette

HISTORY_SIZE = 500
SHOW_CANDIDATES = 12
PREFIX = ": "


def common_prefix(words: list[str]) -> str:
    if not words:
        return ""
    first, last = min(words), max(words)
    n = 0
    while n < len(first) and n < len(last) and first[n] == last[n]:
        n += 1
    return first[:n]


def complete(text: str, cursor: int, names: Names) -> tuple[str, int, list[Completion]]:
    """Tab: (new text, new cursor, the candidates). One candidate is inserted with a space after it; several
    insert their common prefix."""
    found = completions(text, cursor, names)
    if not found:
        return text, cursor, found
    start = found[0].start
    if len(found) == 1:
        insert = found[0].text + " "
    else:
        insert = common_prefix([c.text for c in found])
        if len(insert) < cursor - start:
            insert = text[start:cursor]
    new = text[:start] + insert + text[cursor:]
    return new, start + len(insert), found


def live_error(text: str) -> CommandError | None:
    """An error worth showing while typing: a wrong word, not a command that is merely unfinished."""
    if not text.strip():
        return None
    try:
        parse(text)
    except CommandError as exc:
        if exc.message.startswith(("incomplete command", "empty command")):
            return None
        if exc.col is not None and exc.col - 1 + len(exc.word) >= len(text.rstrip()) and not text.endswith(" "):
            return None  # the word being typed: wait until it is finished
        return exc
    except Exception:
        return None
    return None


def error_text(exc_message: str, col: int | None, palette: Palette) -> Text:
    caret = "" if col is None else " " * (len(PREFIX) + col - 1) + "^ "
    return Text.assemble((caret, palette.style("error", bold=True)), (exc_message, palette.style("error")))


class GrammarSuggester(Suggester):
    """The first completion as ghost text (accepted with Right or End, like a shell's autosuggestion)."""

    def __init__(self, names: Callable[[], Names]) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self._names = names

    async def get_suggestion(self, value: str) -> str | None:
        if not value or value.endswith(" "):
            return None
        found = completions(value, len(value), self._names())
        if not found:
            return None
        first = found[0]
        return value[:first.start] + first.text


class PromptInput(Input):
    BINDINGS: ClassVar[list[BindingType]] = list(bindings.PROMPT)

    class Completed(Message):
        def __init__(self, candidates: list[Completion]) -> None:
            super().__init__()
            self.candidates = candidates

    class Cancelled(Message):
        pass

    class History(Message):
        def __init__(self, step: int) -> None:
            super().__init__()
            self.step = step

    def __init__(self, names: Callable[[], Names], **kwargs: Any) -> None:
        super().__init__(suggester=GrammarSuggester(names), **kwargs)
        self._names = names

    def action_complete(self) -> None:
        text, cursor, found = complete(self.value, self.cursor_position, self._names())
        if not found:
            self.app.bell()
        self.value = text
        self.cursor_position = cursor
        self.post_message(self.Completed(found))

    def action_cancel(self) -> None:
        self.post_message(self.Cancelled())

    def action_history(self, step: int) -> None:
        self.post_message(self.History(step))


class CommandPrompt(Vertical):
    """Hidden until ``:``; ``Submitted`` carries the line to the app, which runs it and calls ``show_result``."""

    class Submitted(Message):
        def __init__(self, command: str) -> None:
            super().__init__()
            self.command = command

    class Closed(Message):
        pass

    DEBOUNCE = 0.25

    def __init__(self, names: Callable[[], Names], *, history_path: Path | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._names = names
        self.palette = DEFAULT_PALETTE
        self.history_path = history_path
        self.history: list[str] = self._load_history()
        self._index = len(self.history)
        self._draft = ""
        self._debounce: Timer | None = None
        self._hint_kind = ""
        """What the hint line shows: "" (nothing), "candidates", "live" (error while typing), "result"."""
        self._result_for = ""
        self.input = PromptInput(names, id="prompt-input", placeholder="a command: drain 10.0.0.2:80, show vs, "
                                                                      "help …  (Tab completes, Esc closes)")

    def compose(self) -> ComposeResult:
        with Horizontal(id="prompt-line"):
            yield Label(PREFIX.rstrip(), id="prompt-prefix")
            yield self.input
        yield Static("", id="prompt-hint")

    def open(self, text: str = "") -> None:
        self.display = True
        self.input.value = text
        self.input.cursor_position = len(text)
        self.hint("")
        self.input.focus()

    def close(self) -> None:
        self.display = False
        self.post_message(self.Closed())

    def hint(self, text: str | Text, kind: str = "") -> None:
        self._hint_kind = kind if text else ""
        self.query_one("#prompt-hint", Static).update(text)

    def hint_text(self) -> str:
        renderable = self.query_one("#prompt-hint", Static).render()
        return str(renderable)

    def show_error(self, message: str, col: int | None, kind: str = "live") -> None:
        self.hint(error_text(message, col, self.palette), kind)

    def show_result(self, command: str, result: Result) -> None:
        """After the app ran ``command``: an error stays on screen under its word; success closes the prompt."""
        if result.ok:
            self.close()
            return
        error = result.data.get("error") if isinstance(result.data, dict) else None
        col = error.get("col") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) and error.get("message") else result.message
        self.open(command)
        self._result_for = command
        self.show_error(str(message), col if isinstance(col, int) else None, "result")

    # ------------------------------------------------------------------------------ history

    def _load_history(self) -> list[str]:
        if self.history_path is None:
            return []
        try:
            lines = self.history_path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
        return [ln for ln in lines if ln.strip()][-HISTORY_SIZE:]

    def remember(self, command: str) -> None:
        command = command.strip()
        if not command:
            return
        if not self.history or self.history[-1] != command:
            self.history.append(command)
            del self.history[:-HISTORY_SIZE]
            if self.history_path is not None:
                with contextlib.suppress(OSError):
                    self.history_path.parent.mkdir(parents=True, exist_ok=True)
                    with open(self.history_path, "a", encoding="utf-8") as fh:
                        fh.write(command + "\n")
                    os.chmod(self.history_path, 0o600)
        self._index = len(self.history)

    @on(PromptInput.History)
    def _history(self, event: PromptInput.History) -> None:
        event.stop()
        if not self.history:
            return
        if self._index == len(self.history):
            self._draft = self.input.value
        self._index = max(0, min(len(self.history), self._index + event.step))
        text = self._draft if self._index == len(self.history) else self.history[self._index]
        self.input.value = text
        self.input.cursor_position = len(text)

    # ------------------------------------------------------------------------------ events

    @on(PromptInput.Completed)
    def _completed(self, event: PromptInput.Completed) -> None:
        event.stop()
        found = event.candidates
        if len(found) <= 1:
            self.hint("")
            return
        p = self.palette
        shown = found[:SHOW_CANDIDATES]
        parts: list[Any] = [(" " * len(PREFIX), "")]
        for c in shown:
            parts += [(c.text, p.style("primary", bold=True)), (f" {c.meta}" if c.meta else "",
                                                                p.style("foreground-muted")), "   "]
        if len(found) > len(shown):
            parts.append((f"… {len(found) - len(shown)} more", p.style("foreground-muted")))
        self.hint(Text.assemble(*parts), "candidates")

    @on(PromptInput.Cancelled)
    def _cancelled(self, event: PromptInput.Cancelled) -> None:
        event.stop()
        self.close()

    @on(Input.Changed, "#prompt-input")
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._debounce is not None:
            self._debounce.stop()
        value = event.value
        self._debounce = self.set_timer(self.DEBOUNCE, lambda: self._check(value))

    def _check(self, value: str) -> None:
        if value != self.input.value:
            return
        if self._hint_kind == "result" and value == self._result_for:
            return  # the error of the command as submitted stays until it is edited
        exc = live_error(value)
        if exc is not None:
            self.show_error(exc.message, exc.col)
        elif self._hint_kind in ("live", "result"):
            self.hint("")

    @on(Input.Submitted, "#prompt-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        command = event.value.strip()
        if not command:
            self.close()
            return
        self.remember(command)
        self.post_message(self.Submitted(command))
