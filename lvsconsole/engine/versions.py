"""``show history [VERSION]``, ``diff VERSION [VERSION]`` and ``show blame``: the config history as results.

Positions count back from running (0 = running, 1 = the config before it…); a digest prefix names a version
whatever its position. JSON:

- ``show history`` → ``[{"n", "number", "time", "who", "source" (= "how"), "how", "digest", "parent",
  "summary", "changes" (how many), "changed" ([{"kind", "section", "key"}])}, …]`` newest first; a pending
  ``commit confirmed`` is ``"commit_pending"`` in ``show stats``.
- ``show history V`` → that entry plus ``"text"`` (the config) and ``"plan"`` (``ReloadPlan.as_json()`` from
  its parent).
- ``diff A [B]`` → ``{"old": entry, "new": entry, "changes": plan, "unified": text}`` (B default: running).
- ``show blame`` → ``[{"section": "virtual_server"|"real_server", "key", "seq", "digest", "who", "when",
  "how"}, …]`` for every virtual and real server of the running config.
"""

from __future__ import annotations

from typing import Any

from lvsconsole.config import model as m
from lvsconsole.config.diff import diff, rs_label
from lvsconsole.engine import showtext
from lvsconsole.engine.commands import Result, Version
from lvsconsole.engine.history import HistoryEntry, unified
from lvsconsole.engine.refs import RsRef, VsRef
from lvsconsole.engine.store import ConfigStore


def _entry_json(n: int, entry: HistoryEntry) -> dict[str, Any]:
    return {"n": n, "number": entry.seq, "time": entry.when, "who": entry.who, "source": entry.how,
            "how": entry.how, "digest": entry.digest, "parent": entry.parent, "summary": entry.summary,
            "changes": len(entry.changes), "changed": [dict(c) for c in entry.changes]}


def _who_when(entry: HistoryEntry) -> str:
    return f"{entry.who or '?'}, {showtext.clock(entry.when)}, {entry.how}"


def history(store: ConfigStore, version: Version | None = None) -> Result:
    archive = store.archive
    if version is None:
        entries = archive.entries
        rows = [(n, e.seq, showtext.clock(e.when), e.who, e.how, e.digest[:12], e.summary)
                for n, e in enumerate(entries)]
        text = showtext.table(("N", "REV", "TIME", "WHO", "HOW", "DIGEST", "SUMMARY"), rows)
        pending = store.confirm.pending
        if pending is not None:
            text += (f"\nrevision {pending.revision} is unconfirmed: rolls back to revision "
                     f"{pending.restore_revision} at {showtext.clock(pending.deadline)} unless 'confirm'")
        if not archive.persistent:
            text += "\n(history kept in memory only" + (f": {archive.warning})" if archive.warning else ")")
        return Result(True, text, [_entry_json(n, e) for n, e in enumerate(entries)])
    n, entry = store.resolve(version)
    config_text = store.version_text(entry)
    plan = None
    if entry.parent is not None:
        parent = next((e for e in archive.entries if e.digest == entry.parent), None)
        if parent is not None:
            plan = diff(store.version_config(parent), store.version_config(entry))
    head = f"version {n} (revision {entry.seq}) {entry.digest}\n{_who_when(entry)}: {entry.summary}"
    if plan is not None and not plan.empty:
        head += f"\n{plan}"
    return Result(True, f"{head}\n\n{config_text}",
                  {**_entry_json(n, entry), "text": config_text, "plan": None if plan is None else plan.as_json()})


def diff_versions(store: ConfigStore, old: Version, new: Version | None) -> Result:
    """Version ``old`` → version ``new`` (default: running) as a plan and as a unified text diff."""
    old_n, old_entry = store.resolve(old)
    new_n, new_entry = store.resolve(new if new is not None else 0)
    plan = diff(store.version_config(old_entry), store.version_config(new_entry))
    old_name = f"version {old_n} ({old_entry.digest[:12]})"
    new_name = f"version {new_n} ({new_entry.digest[:12]})" + (" running" if new_n == 0 else "")
    text_diff = unified(store.version_text(old_entry), store.version_text(new_entry), old_name, new_name)
    message = f"{old_name} -> {new_name}\n" + (str(plan) if not plan.empty else "no changes")
    if text_diff:
        message += "\n\n" + text_diff.rstrip("\n")
    return Result(True, message, {"old": _entry_json(old_n, old_entry), "new": _entry_json(new_n, new_entry),
                                  "changes": plan.as_json(), "unified": text_diff})


def blame(store: ConfigStore, vs_ref: VsRef | None = None, rs_ref: RsRef | None = None) -> Result:
    """For each virtual/real server of the running config (or those named), the version that last changed it."""
    archive = store.archive
    positions = {e.digest: n for n, e in reversed(list(enumerate(archive.entries)))}
    rows: list[tuple[str, str, HistoryEntry | None]] = []
    for vs in store.running.config.virtual_servers:
        if vs_ref is not None and not _vs_matches(vs_ref, vs):
            continue
        if rs_ref is None:
            rows.append(("virtual_server", vs.key, archive.blame("virtual_server", vs.key)))
        for rs in vs.real_servers:
            if rs_ref is not None and not rs_ref.matches(rs.address, rs.port):
                continue
            key = f"{vs.key} -> {rs_label(rs)}"
            # a real server never changed on its own came with its virtual server
            rows.append(("real_server", key, archive.blame("real_server", key)
                         or archive.blame("virtual_server", vs.key, added_only=True)))
    if not rows:
        what = rs_ref if rs_ref is not None else vs_ref
        return Result(False, f"nothing in the running config matches {what}", {"error": {"message": "no match"}})
    table_rows = [(key, "-" if e is None else positions.get(e.digest, "-"), "-" if e is None else e.seq,
                   "-" if e is None else e.who, "-" if e is None else showtext.clock(e.when),
                   "-" if e is None else e.how, "-" if e is None else e.digest[:12]) for _, key, e in rows]
    text = showtext.table(("OBJECT", "N", "REV", "WHO", "TIME", "HOW", "DIGEST"), table_rows)
    data = [{"section": section, "key": key, **({} if e is None else {
        "n": positions.get(e.digest), "seq": e.seq, "digest": e.digest, "who": e.who, "when": e.when, "how": e.how})}
        for section, key, e in rows]
    return Result(True, text, data)


def _vs_matches(ref: VsRef, vs: m.VirtualServer) -> bool:
    return ref.matches(address=vs.address, port=vs.port, protocol=vs.protocol, fwmark=vs.fwmark, group=vs.group)
