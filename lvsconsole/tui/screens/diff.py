"""The plan of a commit or a reload, before it is applied: every change (+ added, - removed, ~ changed, with
old -> new fields), its connection impact where the live table knows one, the exact IPVS and address
operations it will cause (engine/impact.py: what each touches and how many connections are on it), and the
config's diagnostics. A plan whose config has errors cannot be applied: the screen says so and ``y`` does
nothing."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from lvsconsole.engine.director_api import DirectorSnapshot
from lvsconsole.tui import bindings
from lvsconsole.tui.link import Preview

SIGNS = {"added": ("+", "green"), "removed": ("-", "red"), "changed": ("~", "yellow")}


def _rs_matches(label: str, address: str, port: int | None) -> bool:
    host, _, rest = label.strip().partition("]:")
    return host.lstrip("[") == address and rest == str(port if port is not None else 0)


def impact(change: dict[str, Any], snapshot: DirectorSnapshot | None) -> str | None:
    """What a change does to live traffic, from the current table (None when nothing is known)."""
    if snapshot is None:
        return None
    section, kind, key = change.get("section"), change.get("kind"), str(change.get("key", ""))
    if section == "virtual_server" and kind == "removed":
        vs = next((v for v in snapshot.virtual_servers if v.key == key), None)
        if vs is not None:
            drain = "; its real servers drain first (weight 0 until they end, at most drain_timeout)" \
                if vs.active_conns else ""
            return (f"removes {vs.label}: {vs.active_conns} active, {vs.inactive_conns} inactive connections "
                    f"on {len(vs.real_servers)} real servers{drain}")
    if section == "real_server" and " -> " in key:
        vs_key, _, rs_label = key.partition(" -> ")
        vs = next((v for v in snapshot.virtual_servers if v.key == vs_key), None)
        rs = None if vs is None else next(
            (r for r in vs.real_servers if _rs_matches(rs_label, str(r.address), r.port)), None)
        if rs is not None and vs is not None:
            if kind == "removed":
                if rs.active_conns:
                    return (f"will drain: {rs.key} in VS {vs.key}, {rs.active_conns} active (weight 0 until they "
                            "end, at most drain_timeout)")
                return f"removes {rs.label} from {vs.label}: no active connection"
            weights = [f for f in change.get("fields", ()) if f.get("field") == "weight"]
            if weights:
                return f"{rs.label}: weight {weights[0]['old']} -> {weights[0]['new']}, {rs.active_conns} active now"
    return None


def plan_text(preview: Preview, snapshot: DirectorSnapshot | None) -> Text:
    out = Text()
    if not preview.changes:
        out.append("no changes: the configuration to apply is the running one\n", style="dim")
    for change in preview.changes:
        sign, color = SIGNS.get(str(change.get("kind")), ("?", "white"))
        out.append(f"{sign} {change.get('section')} {change.get('key', '')}".rstrip() + "\n", style=f"bold {color}")
        for f in change.get("fields", ()):
            out.append(f"    {f.get('field')}: ", style="bold")
            out.append(str(f.get("old")), style="red")
            out.append(" -> ")
            out.append(str(f.get("new")) + "\n", style="green")
        note = impact(change, snapshot)
        if note:
            out.append(f"    ⚠ {note}\n", style="yellow")
    return out


def operations_text(preview: Preview) -> Text:
    """The IPVS operations, then the address operations, one a line; those that touch live connections stand out."""
    out = Text()
    for op in preview.ipvs_ops:
        active = int(op.get("active") or 0)
        out.append(f"  {op.get('op', '')}", style="bold yellow" if active else "")
        if op.get("impact"):
            out.append(f": {op['impact']}", style="yellow" if active else "dim")
        out.append("\n")
    for address in preview.address_ops:
        action, state = address.get("action", ""), address.get("state") or "unknown"
        when = "now" if state == "MASTER" else f"when MASTER (now {state})"
        active = int(address.get("active") or 0)
        cuts = action == "remove" and active
        out.append(f"  {action} VIP {address.get('address')} on ({address.get('instance')}) {when}",
                   style="bold yellow" if cuts else "")
        if cuts:
            out.append(f": {active} active connection{'s' * (active != 1)} to it", style="yellow")
        out.append("\n")
    return out


def diagnostics_text(preview: Preview) -> Text:
    out = Text()
    for d in sorted(preview.diagnostics, key=lambda d: d.get("severity") != "error"):
        where = "<config>" if d.get("file") is None else f"{d['file']}:{d['line']}:{d['col']}"
        color = "red" if d.get("severity") == "error" else "yellow"
        out.append(f"{where}: ", style="bold")
        out.append(f"{d.get('severity')}: {d.get('message')}\n", style=color)
    return out


class DiffScreen(ModalScreen[bool]):
    """Dismisses True when the operator accepts an applicable plan, False otherwise."""

    BINDINGS: ClassVar[list[BindingType]] = list(bindings.DIALOG)

    def __init__(self, preview: Preview, snapshot: DirectorSnapshot | None, *, action: str = "Apply") -> None:
        super().__init__(classes="dialog")
        self.preview = preview
        self.snapshot = snapshot
        self.action = action

    def compose(self) -> ComposeResult:
        p = self.preview
        n = len(p.changes)
        title = (f"{'Commit: candidate → running' if p.source == 'commit' else p.source.capitalize()}"
                 f" — {n} change{'s' * (n != 1)}")
        with Vertical(id="diff-dialog"):
            yield Label(title, id="dialog-title")
            with VerticalScroll(id="diff-body"):
                yield Static(plan_text(p, self.snapshot), id="diff-plan")
                if p.ipvs_ops or p.address_ops:
                    n_ops = len(p.ipvs_ops) + len(p.address_ops)
                    yield Label(f"Operations ({n_ops}): what the kernel will be told, and the connections on it",
                                classes="section")
                    yield Static(operations_text(p), id="diff-operations")
                if p.diagnostics:
                    yield Label("Diagnostics", classes="section")
                    yield Static(diagnostics_text(p), id="diff-diagnostics")
            if p.applicable and p.changes:
                verdict = Text(f"[y/Enter] {self.action}   [n/Esc] Cancel", style="bold")
            elif p.applicable:
                verdict = Text(f"[y/Enter] {self.action} (records the revision)   [n/Esc] Close", style="bold")
            else:
                reason = p.refused or f"{len(p.errors)} error(s)"
                verdict = Text(f"Cannot be applied: {reason}.   [n/Esc] Close", style="bold red")
            yield Static(verdict, id="diff-verdict")

    def action_accept(self) -> None:
        if not self.preview.applicable:
            self.app.bell()
            self.notify("this configuration has errors: fix them (e opens the editor) before committing",
                        severity="error")
            return
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
