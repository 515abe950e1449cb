"""Small text helpers shared by the panels: scaled numbers, durations, sparklines, severity and state colours."""

from __future__ import annotations

from collections.abc import Sequence

from lvsconsole.engine.showtext import duration

__all__ = ["SPARKS", "duration", "scaled", "sparkline"]

SPARKS = " ▁▂▃▄▅▆▇█"


def scaled(value: int | float, *, unit: str = "") -> str:
    """ipvsadm's K/M/G/T scaling (powers of 1000), e.g. ``12.3K``; small numbers as they are."""
    number = float(value)
    for suffix in ("", "K", "M", "G", "T"):
        if abs(number) < 1000 or suffix == "T":
            if suffix == "":
                return f"{int(number)}{unit}"
            return f"{number:.1f}{suffix}{unit}" if abs(number) < 100 else f"{number:.0f}{suffix}{unit}"
        number /= 1000
    return f"{number:.0f}T{unit}"  # pragma: no cover - the loop returns


def sparkline(values: Sequence[int | float], width: int) -> str:
    """The last ``width`` buckets of ``values`` (each bucket the max of its samples) as block characters.

    Scaled to the largest value shown; all-zero data is a flat baseline so that "no traffic" is visible.
    """
    if width <= 0:
        return ""
    if not values:
        return " " * width
    per = max(1, -(-len(values) // width))
    buckets = [max(values[i:i + per]) for i in range(0, len(values), per)][-width:]
    top = max(buckets)
    if top <= 0:
        line = "▁" * len(buckets)
    else:
        steps = len(SPARKS) - 1
        line = "".join(SPARKS[max(1, round(v / top * steps))] if v > 0 else "▁" for v in buckets)
    return line.rjust(width)


STATE_STYLES = {"MASTER": "success", "BACKUP": "primary", "FAULT": "error", "INIT": "warning",
                "STOP": "warning", "MIXED": "warning"}
HEALTH_STYLES = {"up": "success", "down": "error", "draining": "warning", "disabled": "secondary",
                 "inhibited": "error"}
SEVERITY_STYLES = {"debug": "foreground-muted", "info": "foreground", "notice": "primary", "warning": "warning",
                   "error": "error"}
