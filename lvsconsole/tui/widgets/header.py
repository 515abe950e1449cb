"""The header: router_id, host, engine uptime, config file and revision, whether the candidate differs, mode,
the engine's timer health (its event-loop lag, in the warning colour once it puts a VRRP instance at risk) and
the countdown of a pending ``commit confirmed`` (warning colour) and, with lvs_sync_peer_http, the connection-sync
coverage (warning colour below 100%)."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.widgets import Static

from lvsconsole.tui.format import duration
from lvsconsole.tui.link import EngineInfo
from lvsconsole.tui.themes import DEFAULT_PALETTE, Palette


def header_text(info: EngineInfo, palette: Palette, *, paused: bool = False, now: float | None = None) -> Text:
    p = palette
    sep = (" │ ", p.style("foreground-muted"))
    parts: list[Any] = [
        (" lvsconsole ", p.badge("primary")), " ",
        (info.router_id, p.style("accent", bold=True)), ("@", p.style("foreground-muted")), info.host, sep,
        ("up ", p.style("foreground-muted")), "-" if info.uptime is None else duration(info.uptime), sep,
        info.config_file or "(no file)",
    ]
    if info.revision is not None:
        parts += [(f" rev {info.revision}", p.style("foreground-muted"))]
    parts.append(sep)
    if info.candidate_dirty:
        parts.append(("● candidate differs", p.style("warning", bold=True)))
    else:
        parts.append(("candidate = running", p.style("foreground-muted")))
    if info.confirm_deadline is not None:
        left = max(0.0, info.confirm_deadline - (time.time() if now is None else now))
        parts += [sep, (f" UNCONFIRMED: rollback in {left:.0f}s ('confirm' keeps it) ", p.badge("warning"))]
    parts += [sep, (info.mode, p.style("foreground-muted"))]
    if info.sync_coverage is not None:
        # below 100% a failover now would cut some established flows: worth the warning colour
        full = info.sync_coverage == "sync 100%" or info.sync_coverage == "sync -"
        parts += [sep, (info.sync_coverage, p.style("foreground-muted") if full else p.style("warning", bold=True))]
    if info.loop_lag_ms is not None:
        parts += [sep, lag_text(info, palette)]
    if not info.connected:
        parts += [sep, (f"DISCONNECTED: {info.error}", p.badge("error"))]
    if paused:
        parts += [sep, ("LOG PAUSED", p.badge("warning"))]
    return Text.assemble(*parts, no_wrap=True, overflow="ellipsis")


def lag_text(info: EngineInfo, palette: Palette) -> Text:
    """"lag 3 ms"; over the limit (half the thinnest Skew_Time) it is a warning badge naming the limit."""
    lag = info.loop_lag_ms or 0.0
    limit = info.loop_lag_limit_ms
    if limit is not None and lag > limit:
        return Text(f" lag {lag:.0f} ms > {limit:.0f} ms ", style=palette.badge("warning"))
    return Text(f"lag {lag:.0f} ms", style=palette.style("foreground-muted"))


class EngineHeader(Static):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", **kwargs)
        self.palette = DEFAULT_PALETTE
        self.info: EngineInfo | None = None
        self.paused = False

    def show(self, info: EngineInfo, *, paused: bool = False) -> None:
        self.info = info
        self.paused = paused
        # one line high whatever it says (app.tcss): a new text needs no layout of the screen, which with a big
        # virtual-server table costs tens of milliseconds every tick
        self.update(header_text(info, self.palette, paused=paused), layout=False)

    def repaint(self, palette: Palette) -> None:
        self.palette = palette
        if self.info is not None:
            self.show(self.info, paused=self.paused)
