"""The VRRP wire radar (``show vrrp radar``), refreshed every second while open.

One row per (interface, VRID, sender) heard on the wire, the dual-master alarms above them. The rows come from
the command's JSON, so an attached console shows exactly what ``lvsconsole ctl --json show vrrp radar`` would.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from lvsconsole.tui.screens.live import Fetch, LiveTableScreen


def _state(row: dict[str, Any]) -> Text:
    if row.get("dual_master"):
        return Text(" DUAL MASTER ", style="bold white on red")
    if row.get("advertising"):
        return Text("master", style="green")
    return Text("resigned" if row.get("priority") == 0 else "quiet", style="dim")


def _notes(row: dict[str, Any]) -> Text:
    notes = Text()
    for mismatch in row.get("mismatches") or ():
        if mismatch != "vips":
            notes.append(f"{mismatch} differs  ", style="yellow")
    if row.get("collision"):
        notes.append(f"COLLISION: {row['collision']}  ", style="bold red")
    if row.get("malformed"):
        notes.append(f"{row['malformed']} malformed ({row.get('last_error')})", style="red")
    return notes if notes.plain else Text("-", style="dim")


def _seconds(value: object, unit: str = "s") -> str:
    if not isinstance(value, int | float):
        return "-"
    return f"{value * 1000:.0f}ms" if unit == "ms" else f"{value:.3f}s"


def _advert(row: dict[str, Any]) -> str:
    """Version, interval and (VRRPv2) authentication type: "v2 1s PASS"."""
    if row.get("version") is None:
        return "-"
    parts = [f"v{row['version']}", f"{row.get('interval', 0):g}s"]
    if row.get("auth_type"):
        parts.append(str(row["auth_type"]))
    return " ".join(parts)


def radar_row(row: dict[str, Any]) -> list[object]:
    """The cells of one sender, from its ``show vrrp radar`` JSON."""
    return [
        row.get("interface", "-"), str(row.get("vrid", "-")), row.get("instance") or "-",
        f"{row.get('sender', '-')} (self)" if row.get("ours") else row.get("sender", "-"),
        "-" if row.get("priority") is None else str(row["priority"]), _advert(row),
        f"{row.get('age', 0):.1f}s ago", str(row.get("count", 0)),
        _seconds(row.get("mean_interval")), _seconds(row.get("jitter"), "ms"),
        ", ".join(row.get("vips") or ()) or "-", _state(row), _notes(row),
    ]


def alarm_text(data: dict[str, Any]) -> Text:
    alarms = data.get("alarms") or []
    if not alarms:
        heard = len(data.get("senders") or [])
        return Text(f"no dual master · {heard} sender{'s' * (heard != 1)} heard · {data.get('packets', 0)} packets",
                    style="green")
    text = Text()
    for alarm in alarms:
        who = ", ".join(f"{s['sender']} (priority {s['priority']})" for s in alarm.get("senders", ()))
        ours = f" ({alarm['instance']})" if alarm.get("instance") else ""
        text.append(f" DUAL MASTER: VRID {alarm['vrid']}{ours} on {alarm['interface']} for {alarm['for']:.0f}s: "
                    f"{who} \n", style="bold white on red")
    text.rstrip()
    return text


class RadarScreen(LiveTableScreen[dict[str, Any]]):
    ID_PREFIX = "radar"
    HEADING = "VRRP wire radar: every advert heard, per VRID and sender"
    SUMMARY_PART = "alarms"
    COLUMNS = ("IF", "VRID", "OURS", "SENDER", "PRIO", "ADVERT", "LAST", "COUNT", "MEAN", "JITTER", "VIPS", "STATE",
               "NOTES")

    def __init__(self, fetch: Fetch) -> None:
        super().__init__(fetch, {})

    def parse(self, data: object) -> dict[str, Any] | None:
        return data if isinstance(data, dict) else None

    def records(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        return list(data.get("senders") or ())

    def row_key(self, record: dict[str, Any]) -> str:
        return f"{record['interface']}|{record['family']}|{record['vrid']}|{record['sender']}"

    def cells(self, record: dict[str, Any]) -> list[object]:
        return radar_row(record)

    def summary(self, data: dict[str, Any]) -> Text:
        return alarm_text(data)
