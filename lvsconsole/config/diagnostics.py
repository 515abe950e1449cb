"""Locations and diagnostics shared by every stage of the configuration language."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple


class Location(NamedTuple):
    """Where a token came from: the file that held it (after includes), 1-based line and column.

    A NamedTuple rather than a dataclass because the lexer makes one per word of a 100k-line file.
    """

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    severity: Severity
    message: str
    location: Location | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def __str__(self) -> str:
        where = str(self.location) if self.location else "<config>"
        return f"{where}: {self.severity.value}: {self.message}"

    def as_json(self) -> dict[str, object]:
        loc = self.location
        return {
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "col": loc.col if loc else None,
            "severity": self.severity.value,
            "message": self.message,
        }


def error(message: str, location: Location | None = None) -> Diagnostic:
    return Diagnostic(Severity.ERROR, message, location)


def warning(message: str, location: Location | None = None) -> Diagnostic:
    return Diagnostic(Severity.WARNING, message, location)
