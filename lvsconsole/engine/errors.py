"""Errors an operator sees: they name the offending word and its column."""

from __future__ import annotations


class CommandError(ValueError):
    """A command that cannot be parsed or carried out, pointing at the word responsible.

    ``col`` is 1-based in the command text as typed; ``word`` is that word ("" at the end of the line).
    """

    def __init__(self, message: str, word: str = "", col: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.word = word
        self.col = col

    def __str__(self) -> str:
        return self.message if self.col is None else f"column {self.col}: {self.message}"

    def as_json(self) -> dict[str, object]:
        return {"message": self.message, "word": self.word, "col": self.col}
