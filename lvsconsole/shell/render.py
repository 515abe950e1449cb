"""Coloured renderings of command results for the shell (prompt-toolkit formatted text).

The renderers read the JSON ``data`` of a result (the same schema ``ctl --json`` documents), so an
embedded engine and one reached over the control socket look the same. Anything they do not know how
to draw falls back to the result's plain ``message``.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Sequence
from typing import Any

from prompt_toolkit.formatted_text import FormattedText, to_plain_text
from prompt_toolkit.styles import Style

from lvsconsole.engine.commands import Result
from lvsconsole.engine.refs import endpoint_text, vs_label
from lvsconsole.engine.showtext import duration

Cell = tuple[str, str]
"""(style, text)"""

STYLE = Style.from_dict({
    "header": "bold underline",
    "vs": "bold",
    "dim": "#888888",
    "ok": "ansigreen",
    "error": "ansired bold",
    "warning": "ansiyellow",
    "notice": "ansicyan",
    "caret": "ansired bold",
    "state.master": "ansigreen bold",
    "state.backup": "ansicyan",
    "state.fault": "ansired bold",
    "state.init": "ansiyellow",
    "health.up": "ansigreen",
    "health.down": "ansired bold",
    "health.draining": "ansiyellow",
    "health.disabled": "ansimagenta",
    "health.inhibited": "ansiyellow",
    "quorum.lost": "ansired bold",
    "prompt": "bold",
    "prompt.master": "ansigreen bold",
    "prompt.backup": "ansicyan",
    "prompt.fault": "ansired bold",
})


def _is_number(text: str) -> bool:
    return text.lstrip("-").replace(".", "", 1).isdigit()


def table(headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> FormattedText:
    """Columns two spaces apart, numbers right-aligned, cell styles kept."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, (_, text) in enumerate(row):
            widths[i] = max(widths[i], len(text))
    numeric = [bool(rows) and all(_is_number(r[i][1]) or r[i][1] in ("", "-") for r in rows)
               for i in range(len(headers))]
    out: list[tuple[str, str]] = []
    last = len(headers) - 1
    for i, h in enumerate(headers):
        out.append(("class:header", h))
        if i < last:
            out.append(("", " " * (widths[i] - len(h) + 2)))
    out.append(("", "\n"))
    for row in rows:
        line: list[tuple[str, str]] = []
        for i, (style, text) in enumerate(row):
            pad = " " * (widths[i] - len(text))
            if numeric[i]:
                line += [("", pad), (style, text)]
            else:
                line += [(style, text)] + ([("", pad)] if i < last else [])
            if i < last:
                line.append(("", "  "))
        while line and line[-1][0] == "" and not line[-1][1].strip():
            line.pop()
        out += [*line, ("", "\n")]
    return FormattedText(out)


def _text(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def _health(value: str) -> Cell:
    return (f"class:health.{value}", value)


def _state(value: str) -> Cell:
    return (f"class:state.{value.lower()}", value)


def _weight(rs: dict[str, Any]) -> str:
    now = "-" if rs.get("weight") is None else str(rs["weight"])
    return now if rs.get("weight") == rs.get("config_weight") else f"{now}/{rs.get('config_weight')}"


def _rs_label(rs: dict[str, Any]) -> str:
    return endpoint_text(ipaddress.ip_address(rs["address"]), rs.get("port"))


def vs_json_label(vs: dict[str, Any]) -> str:
    address = ipaddress.ip_address(vs["address"]) if vs.get("address") else None
    return vs_label(address=address, port=vs.get("port"), protocol=vs.get("protocol") or "TCP",
                    fwmark=vs.get("fwmark"), group=vs.get("group"))


def render_vrrp(data: list[dict[str, Any]]) -> FormattedText:
    if not data:
        return FormattedText([("class:dim", "no vrrp_instance\n")])
    now = time.time()
    rows = []
    for i in data:
        prio = str(i["priority"])
        if i["priority"] != i["base_priority"]:
            prio += f" (base {i['base_priority']})"
        since = i.get("since")
        rows.append([("class:vs", i["name"]), _state(i["state"]), ("", prio), ("", str(i["vrid"])),
                     ("", _text(i.get("interface"))), ("", _text(i.get("master"))),
                     ("", "-" if since is None else duration(now - since)), ("", ",".join(i.get("vips", [])) or "-")])
    return table(("INSTANCE", "STATE", "PRIORITY", "VRID", "IF", "MASTER", "FOR", "VIPS"), rows)


def render_vs(data: list[dict[str, Any]]) -> FormattedText:
    if not data:
        return FormattedText([("class:dim", "no virtual_server\n")])
    rows: list[list[Cell]] = []
    for vs in data:
        head = f"{vs_json_label(vs)} {vs['scheduler']}"
        if vs.get("persistence_timeout"):
            head += f" persistent {vs['persistence_timeout']}"
        label: Cell = ("class:vs", head)
        quorum: Cell = ("class:quorum.lost", "QUORUM LOST") if not vs.get("quorum_up", True) else ("", "")
        rows.append([label, ("", ""), ("", ""), quorum, ("", str(vs.get("active_conns", 0))),
                     ("", str(vs.get("inactive_conns", 0))), ("", str(vs.get("cps", 0)))])
        for rs in vs.get("real_servers", []):
            rows.append([("", f"  -> {_rs_label(rs)}"), ("", rs["forward"]), ("", _weight(rs)), _health(rs["health"]),
                         ("", str(rs.get("active_conns", 0))), ("", str(rs.get("inactive_conns", 0))),
                         ("", str(rs.get("cps", 0)))])
    return table(("VIRTUAL SERVER / REAL SERVER", "FORWARD", "WEIGHT", "HEALTH", "ACTIVE", "INACTIVE", "CPS"), rows)


def render_rs(data: list[dict[str, Any]]) -> FormattedText:
    if not data:
        return FormattedText([("class:dim", "no real_server\n")])
    rows = [[("class:vs", _rs_label(rs)), ("", str(rs["vs"])), ("", rs["forward"]), ("", _weight(rs)),
             _health(rs["health"]), ("", str(rs.get("active_conns", 0))), ("", str(rs.get("inactive_conns", 0))),
             ("", str(rs.get("cps", 0))), ("", str(rs.get("bps", 0)))] for rs in data]
    return table(("REAL SERVER", "VIRTUAL SERVER", "FORWARD", "WEIGHT", "HEALTH", "ACTIVE", "INACTIVE", "CPS", "BPS"),
                 rows)


def render_overrides(data: list[dict[str, Any]]) -> FormattedText:
    if not data:
        return FormattedText([("class:dim", "no runtime overrides\n")])
    rows = []
    for o in data:
        what = [w for w, on in (("disabled", o.get("disabled")), ("drain", o.get("drain"))) if on]
        if o.get("weight") is not None:
            what.append(f"weight {o['weight']}")
        rows.append([("class:vs", str(o["rs"])), ("", str(o["vs"])), ("class:warning", ", ".join(what)),
                     ("", str(o.get("config_weight", "")))])
    return table(("REAL SERVER", "VIRTUAL SERVER", "OVERRIDE", "CONFIG WEIGHT"), rows)


_PHASE_STYLE = {"draining": "class:warning", "held": "class:notice", "empty": "class:ok", "removed": "class:ok",
                "timed-out": "class:error"}


def render_drain(data: list[dict[str, Any]]) -> FormattedText:
    """``show drain``: each watched server's phase, counts, how fast ActiveConn falls and the fitted ETA."""
    if not data:
        return FormattedText([("class:dim", "no drain is watched (drain RS starts one)\n")])
    rows = []
    for w in data:
        plan = w.get("plan") or {}
        phase = str(w["phase"]) + (" -> maint" if plan.get("then_remove") and w["phase"] == "draining" else "")
        rate, eta, hz = w.get("rate"), w.get("eta"), w.get("sample_hz")
        rows.append([("class:vs", str(w["rs"])), ("", str(w["vs"])), (_PHASE_STYLE.get(str(w["phase"]), ""), phase),
                     ("", _text(w.get("active"))), ("", _text(w.get("inactive"))), ("", _text(w.get("persist"))),
                     ("", f"{rate:.1f}/s" if isinstance(rate, int | float) and rate > 0 else "-"),
                     ("class:vs" if isinstance(eta, int | float) else "class:dim",
                      f"{eta:.0f}s" if isinstance(eta, int | float) else "-"),
                     ("class:dim", f"{w.get('samples', 0)} @{hz:.1f}Hz" if isinstance(hz, int | float) else "-")])
    return table(("REAL SERVER", "VIRTUAL SERVER", "PHASE", "ACTIVE", "INACT", "PERSIST", "FALL", "ETA", "SAMPLES"),
                 rows)


_SEVERITY_STYLE = {"error": "class:error", "warning": "class:warning", "notice": "class:notice", "debug": "class:dim"}


def render_log(data: list[dict[str, Any]]) -> FormattedText:
    if not data:
        return FormattedText([("class:dim", "no events\n")])
    out: list[tuple[str, str]] = []
    for e in data:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(e.get("time", 0))))
        severity = str(e.get("severity", "info"))
        style = _SEVERITY_STYLE.get(severity, "")
        out += [("class:dim", f"{stamp} "), (style, f"{severity:<7} "), (style, str(e.get("text", ""))), ("", "\n")]
    return FormattedText(out)


RENDERERS: dict[str, Callable[[Any], FormattedText]] = {
    "vrrp": render_vrrp, "vs": render_vs, "rs": render_rs, "overrides": render_overrides, "log": render_log,
    "drain": render_drain,
}


def render_result(result: Result, topic: str | None = None) -> FormattedText:
    """A result as formatted text: a coloured table for ``show`` topics that have one, else the message."""
    if result.ok and topic in RENDERERS and isinstance(result.data, list):
        try:
            return RENDERERS[topic](result.data)
        except (KeyError, TypeError, ValueError):
            pass  # an unexpected shape (an older engine): the engine's own text
    if not result.ok:
        return FormattedText([("class:error", "error: "), ("", result.message), ("", "\n")])
    if not result.message:
        return FormattedText([])
    return FormattedText([("", result.message.rstrip("\n") + "\n")])


def caret_line(line: str, col: int) -> FormattedText:
    """The command as typed with a caret under column ``col`` (1-based)."""
    return FormattedText([("class:dim", "  " + line.rstrip() + "\n"), ("", "  " + " " * (col - 1)),
                          ("class:caret", "^"), ("", "\n")])


def plain(text: FormattedText) -> str:
    return to_plain_text(text)
