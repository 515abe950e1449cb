"""The drain view (``show drain``), refreshed several times a second while open.

One row per watched real server: phase, ActiveConn / InActConn / PersistConn at the last sample, a sparkline
of ActiveConn at the sampling rate, how fast it falls and the ETA fitted to the decay. The rows come from the
command's JSON, so an attached console shows exactly what ``lvsconsole ctl --json show drain`` would.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from lvsconsole.tui.format import sparkline
from lvsconsole.tui.screens.live import Fetch, LiveTableScreen

SPARK_WIDTH = 20
PHASE_STYLES = {"draining": "yellow", "held": "cyan", "empty": "green", "removed": "green", "timed-out": "bold red"}


def _count(value: object) -> str:
    return str(value) if isinstance(value, int) else "-"


def _phase(row: dict[str, Any]) -> Text:
    phase = str(row.get("phase", "-"))
    plan = row.get("plan") or {}
    then = "→maint" if plan.get("then_remove") and phase == "draining" else ""
    return Text(phase + then, style=PHASE_STYLES.get(phase, ""))


def _eta(row: dict[str, Any]) -> Text:
    eta = row.get("eta")
    if row.get("phase") != "draining":
        return Text("-", style="dim")
    if not isinstance(eta, int | float):
        return Text("unknown", style="dim")
    return Text(f"{eta:.0f}s" if eta < 600 else f"{eta / 60:.0f}m", style="bold")


def _fall(row: dict[str, Any]) -> str:
    rate = row.get("rate")
    if not isinstance(rate, int | float) or rate <= 0:
        return "-"
    model = "exp" if row.get("model") == "exponential" else "lin"
    return f"{rate:.1f}/s {model}"


def _samples(row: dict[str, Any]) -> str:
    hz = row.get("sample_hz")
    rate = f" @{hz:.1f}Hz" if isinstance(hz, int | float) else ""
    return f"{row.get('samples', 0)}{rate}"


def drain_row(row: dict[str, Any], spark_width: int = SPARK_WIDTH) -> list[object]:
    """The cells of one watched server, from its ``show drain`` JSON."""
    series = [int(v) for v in row.get("active_series") or ()]
    return [
        row.get("rs", "-"), row.get("vs", "-"), _phase(row), _count(row.get("active")), _count(row.get("inactive")),
        _count(row.get("persist")), Text(sparkline(series, spark_width), style="yellow"), _fall(row), _eta(row),
        _samples(row),
    ]


def drain_summary(rows: list[dict[str, Any]]) -> Text:
    if not rows:
        return Text("no drain is watched: drain a real server (d) to watch its connections end", style="dim")
    live = [r for r in rows if r.get("phase") == "draining"]
    etas = [r["eta"] for r in live if isinstance(r.get("eta"), int | float)]
    text = Text(f"{len(live)} draining, {len(rows) - len(live)} settled")
    if etas:
        text.append(f" · all empty in about {max(etas):.0f}s", style="bold")
    if any(r.get("persist") for r in rows):
        text.append(" · persistence templates may bring clients back until they expire", style="dim")
    return text


class DrainScreen(LiveTableScreen[list[dict[str, Any]]]):
    ID_PREFIX = "drain"
    HEADING = "Drains: connections of draining real servers, sampled from the IPVS table"
    HINT = "ETA fitted to the fall of ActiveConn · Esc/q closes"
    REFRESH = 0.25
    """Faster than the default 5 Hz sampling would need to look smooth; each refresh is one ``show drain``."""
    COLUMNS = ("REAL SERVER", "VIRTUAL SERVER", "PHASE", "ACTIVE", "INACT", "PERSIST", "ACTIVE, LAST MINUTE",
               "FALL", "ETA", "SAMPLES")

    def __init__(self, fetch: Fetch, *, refresh: float | None = None) -> None:
        super().__init__(fetch, [], refresh=refresh)

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The watched servers of the last ``show drain``."""
        return self.data

    def parse(self, data: object) -> list[dict[str, Any]] | None:
        return data if isinstance(data, list) else None

    def records(self, data: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return data

    def row_key(self, record: dict[str, Any]) -> str:
        return f"{record.get('vs')}|{record.get('rs')}"

    def cells(self, record: dict[str, Any]) -> list[object]:
        return drain_row(record)

    def summary(self, data: list[dict[str, Any]]) -> Text:
        return drain_summary(data)
