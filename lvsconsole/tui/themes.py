"""A dark and a light theme, and the colours panels draw cells with (taken from whichever theme is active).

Table cells are Rich ``Text`` with concrete colours, so panels ask ``Palette`` (rebuilt when the app's
theme changes, from its CSS variables) rather than hard-coding colours: switching themes from the command
palette or with ``t`` recolours every badge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rich.style import Style
from textual.color import Color
from textual.theme import Theme

DARK = Theme(
    name="lvs-dark",
    primary="#4EA1FF",
    secondary="#8D96A8",
    accent="#F5A623",
    warning="#F2C14E",
    error="#FF5C5C",
    success="#3DDC84",
    foreground="#E6E9EF",
    background="#10141B",
    surface="#161B24",
    panel="#1F2633",
    dark=True,
)

LIGHT = Theme(
    name="lvs-light",
    primary="#0B5CD5",
    secondary="#5C6475",
    accent="#B85C00",
    warning="#9A6700",
    error="#C8102E",
    success="#16803C",
    foreground="#1B1F27",
    background="#F7F8FA",
    surface="#FFFFFF",
    panel="#E6E9EF",
    dark=False,
)

THEMES = (DARK, LIGHT)


@dataclass(frozen=True)
class Palette:
    """Rich styles for cell text, by meaning ("success", "warning"…, as the format module names them)."""

    colors: Mapping[str, str]

    @classmethod
    def from_variables(cls, variables: Mapping[str, str]) -> Palette:
        wanted = ("primary", "secondary", "accent", "warning", "error", "success", "foreground",
                  "foreground-muted", "text-muted", "background")
        background = _solid(variables.get("background", "#000000"), None)
        colors = {name: _solid(variables[name], background) for name in wanted if name in variables}
        colors.setdefault("foreground-muted", colors.get("text-muted", colors.get("secondary", "grey50")))
        return cls(colors)

    def color(self, name: str) -> str:
        return self.colors.get(name) or self.colors.get("foreground") or "default"

    def style(self, name: str, *, bold: bool = False, reverse: bool = False, dim: bool = False) -> Style:
        return Style(color=self.color(name), bold=bold, reverse=reverse, dim=dim)

    def badge(self, name: str) -> Style:
        """Inverse colours: a filled badge (MASTER, FAULT…)."""
        return Style(color=self.color("background"), bgcolor=self.color(name), bold=True)


def _solid(value: str, background: str | None) -> str:
    """A CSS colour as ``#rrggbb`` (translucent ones blended over the background), as Rich wants it."""
    try:
        color = Color.parse(value)
    except Exception:
        return "default"
    if color.a < 1 and background is not None:
        color = Color.parse(background) + color
    return color.hex6


DEFAULT_PALETTE = Palette({"primary": "blue", "secondary": "grey50", "accent": "yellow", "warning": "yellow",
                           "error": "red", "success": "green", "foreground": "default",
                           "foreground-muted": "grey50", "background": "black"})
