"""Plain-text renderings of ``show`` results for the shell and ``ctl`` (the TUI draws its own panels)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from lvsconsole.config.diagnostics import Diagnostic
from lvsconsole.engine.director_api import RealServerView, VirtualServerView, VrrpInstanceView
from lvsconsole.engine.events import Event


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces; numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(r[i].lstrip("-").isdigit() or r[i] in ("", "-") for r in cells[1:]) and len(cells) > 1
               for i in range(len(headers))]
    lines = []
    for r in cells:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric, strict=True)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def clock(t: float | None) -> str:
    if t is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def vrrp(instances: Sequence[VrrpInstanceView], now: float) -> str:
    if not instances:
        return "no vrrp_instance"
    rows = []
    for i in instances:
        prio = str(i.priority) if i.priority == i.base_priority else f"{i.priority} (base {i.base_priority})"
        state = i.state if i.split_brain is None else f"{i.state} SPLIT BRAIN vs {i.split_brain}"
        rows.append((i.name, state, prio, i.vrid, i.interface or "-", i.master or "-",
                     "-" if i.since is None else duration(now - i.since), ",".join(i.vips) or "-"))
    text = table(("INSTANCE", "STATE", "PRIORITY", "VRID", "IF", "MASTER", "FOR", "VIPS"), rows)
    peers = [(i.name, p) for i in instances for p in i.peers]
    if peers:
        text += "\n\n" + table(("INSTANCE", "UNICAST PEER", "LAST ADVERT", "SEND"), [
            (name, p.get("address"), "never" if p.get("last_seen") is None else f"{p['last_seen']:.1f}s ago",
             "ok" if p.get("last_error") is None else f"FAILS: {p['last_error']}") for name, p in peers])
    return text


def vrrp_explain(instances: Sequence[VrrpInstanceView]) -> str:
    if not instances:
        return "no vrrp_instance"
    return "\n\n".join(i.election.text() if i.election is not None else f"({i.name}) no election details from "
                         "this engine" for i in instances)


def _rs_health(rs: RealServerView) -> str:
    if rs.check_stalled:
        # the health shown is stale: its checker has produced no result for 3 intervals
        return f"{rs.health} (check stalled)"
    if rs.drain_deadline is None:
        return rs.health
    # removed by a reload: say so, and when it goes at the latest
    return f"draining, removed by {time.strftime('%H:%M:%S', time.localtime(rs.drain_deadline))}"


def _rs_weight(rs: RealServerView) -> str:
    now = "-" if rs.weight is None else str(rs.weight)
    return now if rs.weight == rs.config_weight else f"{now}/{rs.config_weight}"


def virtual_servers(vss: Sequence[VirtualServerView]) -> str:
    """An ``ipvsadm -Ln``-like tree with health and the configured weight beside the effective one."""
    if not vss:
        return "no virtual_server"
    rows: list[tuple[object, ...]] = []
    for vs in vss:
        persist = f" persistent {vs.persistence_timeout}" if vs.persistence_timeout else ""
        quorum = "" if vs.quorum_up else " QUORUM LOST"
        rows.append((f"{vs.label} {vs.scheduler}{persist}{quorum}", "", "", "", vs.active_conns, vs.inactive_conns,
                     vs.cps))
        for rs in vs.real_servers:
            rows.append((f"  -> {rs.label}", rs.forward, _rs_weight(rs), _rs_health(rs), rs.active_conns,
                         rs.inactive_conns, rs.cps))
    return table(("VIRTUAL SERVER / REAL SERVER", "FORWARD", "WEIGHT", "HEALTH", "ACTIVE", "INACTIVE", "CPS"), rows)


def real_servers(pairs: Sequence[tuple[VirtualServerView, RealServerView]]) -> str:
    if not pairs:
        return "no real_server"
    rows = [(rs.label, vs.label, rs.forward, _rs_weight(rs), _rs_health(rs), rs.active_conns, rs.inactive_conns,
             rs.cps, rs.bps) for vs, rs in pairs]
    return table(("REAL SERVER", "VIRTUAL SERVER", "FORWARD", "WEIGHT", "HEALTH", "ACTIVE", "INACTIVE", "CPS",
                  "BPS"), rows)


def overrides(pairs: Sequence[tuple[VirtualServerView, RealServerView]]) -> str:
    if not pairs:
        return "no runtime overrides"
    rows = []
    for vs, rs in pairs:
        what = []
        if rs.disabled:
            what.append("disabled")
        if rs.drained:
            what.append("drain")
        if rs.weight_override is not None:
            what.append(f"weight {rs.weight_override}")
        rows.append((rs.label, vs.label, ", ".join(what), rs.config_weight, rs.active_conns))
    return table(("REAL SERVER", "VIRTUAL SERVER", "OVERRIDE", "CONFIG WEIGHT", "ACTIVE"), rows)


def events(items: Sequence[Event]) -> str:
    if not items:
        return "no events"
    return "\n".join(f"{clock(e.time)} {e.severity:<7} {e.text()}" for e in items)


def diagnostics(items: Sequence[Diagnostic]) -> str:
    errors = sum(1 for d in items if d.is_error)
    warnings = len(items) - errors
    lines = [str(d) for d in sorted(items, key=lambda d: (not d.is_error, d.location or ("", 0, 0)))]
    lines.append(f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}")
    return "\n".join(lines)
