"""Plain-text renderings of ``show`` results for the shell and ``ctl`` (the TUI draws its own panels)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence

from lvsconsole.check.recorder import CheckerHistory, ProbeNow
from lvsconsole.config.diagnostics import Diagnostic
from lvsconsole.engine.director_api import RealServerView, VirtualServerView, VrrpInstanceView
from lvsconsole.engine.events import Event
from lvsconsole.vrrp.radar import RadarReport, SenderView


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


def _radar_note(s: SenderView) -> str:
    notes = [f"{m} differs" for m in s.mismatches if m != "vips"]
    if s.collision is not None:
        notes.append(f"COLLISION: {s.collision}")
    if s.malformed:
        notes.append(f"{s.malformed} malformed ({s.last_error})")
    return "; ".join(notes) or "-"


def _radar_state(s: SenderView) -> str:
    if s.alarm:
        return "DUAL MASTER"
    if s.advertising:
        return "master"
    return "resigned" if s.priority == 0 else "quiet"


def radar(report: RadarReport) -> str:
    """``show vrrp radar``: the dual-master alarms, then one row per (interface, VRID, sender)."""
    if not report.senders:
        return f"no VRRP advert heard ({report.packets} packets)"
    lines = [f"DUAL MASTER: VRID {a.key.vrid}{f' ({a.instance})' if a.instance else ''} on {a.key.interface} for "
             f"{duration(a.since_s)}: " + ", ".join(f"{addr} (priority {prio})" for addr, prio in a.senders)
             for a in report.alarms]
    rows = []
    for s in report.senders:
        rows.append((
            s.key.interface, s.key.vrid, s.instance or "-", f"{s.sender} (self)" if s.ours else str(s.sender),
            s.priority, s.version,
            "-" if s.interval is None else f"{s.interval:g}s", _auth_text(s),
            f"{s.age:.1f}s ago", s.count,
            "-" if s.mean_gap is None else f"{s.mean_gap:.3f}s",
            "-" if s.jitter is None else f"{s.jitter * 1000:.0f}ms",
            ",".join(str(v) for v in s.vips) or "-", _radar_state(s), _radar_note(s)))
    table_text = table(("IF", "VRID", "OURS", "SENDER", "PRIO", "VER", "INT", "AUTH", "LAST", "ADVERTS", "MEAN",
                        "JITTER", "VIPS", "STATE", "NOTES"), rows)
    footer = f"{report.packets} packets" + (f", {report.evicted} senders evicted" if report.evicted else "")
    return "\n".join([*lines, *([""] if lines else []), table_text, footer])


def _auth_text(s: SenderView) -> str:
    if s.version != 2 or s.auth_type is None:
        return "-"
    return {0: "none", 1: "PASS", 2: "AH"}.get(s.auth_type, str(s.auth_type))


def _rs_health(rs: RealServerView) -> str:
    if rs.check_stalled:
        # the health shown is stale: its checker has produced no result for 3 intervals
        return f"{rs.health} (check stalled)"
    if rs.floor_kept:
        return f"{rs.health} (kept: min_healthy)"
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
        floor = "" if vs.min_healthy is None else f" min_healthy {vs.min_healthy}"
        rows.append((f"{vs.label} {vs.scheduler}{persist}{floor}{quorum}", "", "", "", vs.active_conns,
                     vs.inactive_conns, vs.cps))
        for rs in vs.real_servers:
            rows.append((f"  -> {rs.label}", rs.forward, _rs_weight(rs), _rs_health(rs), rs.active_conns,
                         rs.inactive_conns, rs.cps))
    return table(("VIRTUAL SERVER / REAL SERVER", "FORWARD", "WEIGHT", "HEALTH", "ACTIVE", "INACTIVE", "CPS"), rows)


def real_servers(pairs: Sequence[tuple[VirtualServerView, RealServerView]]) -> str:
    if not pairs:
        return "no real_server"
    rows = [(rs.label, vs.label, rs.forward, _rs_weight(rs), rs.admin_state, _rs_health(rs), rs.active_conns,
             rs.inactive_conns, rs.cps, rs.bps) for vs, rs in pairs]
    return table(("REAL SERVER", "VIRTUAL SERVER", "FORWARD", "WEIGHT", "STATE", "HEALTH", "ACTIVE", "INACTIVE",
                  "CPS", "BPS"), rows)


def overrides(pairs: Sequence[tuple[VirtualServerView, RealServerView]]) -> str:
    if not pairs:
        return "no runtime overrides"
    rows = []
    for vs, rs in pairs:
        what = []
        if rs.disabled:
            what.append("maint")
        elif rs.drained:
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


def latency(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def _probe_time(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t % 1 * 1000):03d}"


def check_history(histories: Sequence[CheckerHistory]) -> str:
    """``show checks``: per checker a summary line, the latency sparkline and its probes, newest first."""
    if not histories:
        return "no health checks on that real server"
    blocks = []
    for h in histories:
        head = f"{h.rs} in {h.vs}: {h.kind or 'check'} #{h.index}" + (f" -> {h.target}" if h.target else "")
        summary = (f"  last {len(h.probes)} of {h.capacity} probes: {h.failures} failed, {h.transitions} "
                   f"transition{'s' * (h.transitions != 1)}, flap score {h.flap_score:.2f}, "
                   f"latency p50 {latency(h.latency_p50)} p95 {latency(h.latency_p95)}")
        lines = [head, summary]
        if h.probes:
            lines.append(f"  {h.sparkline}  (oldest -> newest; x = failed)")
            rows = [(_probe_time(p.time), "ok" if p.ok else "FAIL", latency(p.latency), p.code,
                     p.reason or p.detail) for p in reversed(h.probes)]
            lines.append(table(("TIME", "RESULT", "LATENCY", "CODE", "REASON"), rows))
        else:
            lines.append("  no probe recorded yet")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def probes_now(probes: Sequence[ProbeNow]) -> str:
    """``check now``: one line per checker probed."""
    if not probes:
        return "no health checks on that real server"
    return "\n".join(
        f"{p.rs} in {p.vs}: {p.kind} #{p.index} {'ok' if p.probe.ok else 'FAILED'} in {latency(p.probe.latency)}"
        + ("" if p.probe.ok else f" ({p.probe.code}: {p.probe.reason or p.probe.detail})")
        for p in probes)


def _eta(value: object) -> str:
    return f"{value:.0f}s" if isinstance(value, int | float) else "-"


def drain_watches(watches: Sequence[dict[str, object]]) -> str:
    """``show drain`` from its JSON rows (so an attached face renders exactly what ``--json`` says)."""
    if not watches:
        return "no drain is watched (drain RS starts one)"
    rows = []
    for w in watches:
        rate = w.get("rate")
        hz = w.get("sample_hz")
        rows.append((w["rs"], w["vs"], w["phase"], w["samples"], f"{hz:.1f}" if isinstance(hz, float) else "-",
                     w["active"], w["inactive"], w["persist"],
                     f"{rate:.1f}/s" if isinstance(rate, float) else "-", _eta(w.get("eta"))))
    text = table(("RS", "VS", "PHASE", "SAMPLES", "HZ", "ACTIVE", "INACT", "PERSIST", "FALL", "ETA"), rows)
    if any(w["phase"] == "empty" and w.get("persist") for w in watches):
        text += "\n(persistence templates remain: they expire by themselves and may bring clients back)"
    return text


def drift(views: Sequence[Mapping[str, object]]) -> str:
    """``show drift``: one row per item where the kernel differs from intent, with what each side says."""
    if not views:
        return "no drift: the kernel matches intent"
    rows = [(v["id"], v["kind"], v["where"], v["intent"], v["kernel"]) for v in views]
    return (table(("ID", "KIND", "WHERE", "INTENT", "KERNEL"), rows)
            + "\n'drift reconcile ID|all' pushes intent back; 'drift adopt ID|all' writes the kernel's value into "
              "the candidate")
