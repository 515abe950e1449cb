"""Every key binding of the console, each with an id (``keymaps/*.toml`` map ids to keys).

The ids are grouped by owner; each widget or screen takes its ``BINDINGS`` from here, so that the keymap
loader can tell a known id from a typo and the help screen can list every binding with its current keys.
"""

from __future__ import annotations

from textual.binding import Binding

APP: list[Binding] = [
    Binding("ctrl+q", "quit", "Quit", id="app.quit"),
    Binding("question_mark", "help", "Help", id="app.help"),
    Binding("colon", "prompt", "Command", id="app.prompt"),
    Binding("ctrl+p", "command_palette", "Palette", id="app.palette", priority=True, show=False),
    Binding("c", "commit", "Commit", id="app.commit"),
    Binding("v", "diff", "Diff", id="app.diff", show=False),
    Binding("ctrl+r", "reload", "Reload", id="app.reload", show=False),
    Binding("e", "edit", "Edit config", id="app.edit"),
    Binding("p", "pause_log", "Pause log", id="app.pause_log", show=False),
    Binding("t", "toggle_theme", "Light/dark", id="app.theme", show=False),
    Binding("1", "focus_panel('vrrp')", "VRRP panel", id="app.focus_vrrp", show=False),
    Binding("2", "focus_panel('vs')", "Servers panel", id="app.focus_vs", show=False),
    Binding("3", "focus_panel('log')", "Log panel", id="app.focus_log", show=False),
]

NAV_TABLE: list[Binding] = [
    Binding("down", "cursor_down", "Down", id="nav.down", show=False),
    Binding("up", "cursor_up", "Up", id="nav.up", show=False),
    Binding("home", "scroll_top", "Top", id="nav.top", show=False),
    Binding("end", "scroll_bottom", "Bottom", id="nav.bottom", show=False),
    Binding("pagedown", "page_down", "Page down", id="nav.page_down", show=False),
    Binding("pageup", "page_up", "Page up", id="nav.page_up", show=False),
]

NAV_LOG: list[Binding] = [
    Binding("down", "scroll_down", "Down", id="nav.down", show=False),
    Binding("up", "scroll_up", "Up", id="nav.up", show=False),
    Binding("home", "scroll_home", "Top", id="nav.top", show=False),
    Binding("end", "scroll_end", "Bottom", id="nav.bottom", show=False),
    Binding("pagedown", "page_down", "Page down", id="nav.page_down", show=False),
    Binding("pageup", "page_up", "Page up", id="nav.page_up", show=False),
]

VS: list[Binding] = [
    Binding("d", "drain", "Drain", id="vs.drain"),
    Binding("u", "undrain", "Undrain", id="vs.undrain"),
    Binding("w", "weight", "Weight", id="vs.weight"),
    Binding("plus", "weight_step(1)", "Weight +1", id="vs.weight_up", show=False),
    Binding("minus", "weight_step(-1)", "Weight -1", id="vs.weight_down", show=False),
    Binding("D", "disable", "Disable", id="vs.disable", show=False),
    Binding("E", "enable", "Enable", id="vs.enable", show=False),
    Binding("slash", "filter", "Filter", id="vs.filter"),
    Binding("h", "checks", "Checks", id="vs.checks"),
    Binding("W", "drain_view", "Drains", id="vs.drain_view", show=False),
    Binding("R", "reconcile", "Reconcile drift", id="vs.reconcile", show=False),
    Binding("A", "adopt", "Adopt drift", id="vs.adopt", show=False),
    Binding("s", "sort", "Sort", id="vs.sort", show=False),
    Binding("S", "sort_reverse", "Reverse sort", id="vs.sort_reverse", show=False),
]

VRRP: list[Binding] = [
    Binding("f", "failover", "Failover", id="vrrp.failover"),
    Binding("enter", "explain", "Explain election", id="vrrp.explain"),
    Binding("r", "radar", "Wire radar", id="vrrp.radar"),
]

CHECKS: list[Binding] = [
    Binding("n", "check_now", "Check now", id="checks.now"),
]

LOG: list[Binding] = [
    Binding("slash", "filter", "Filter log", id="log.filter"),
    Binding("l", "cycle_level", "Min level", id="log.level", show=False),
]

FILTER: list[Binding] = [
    Binding("escape", "clear", "Clear filter", id="filter.clear", show=False),
]

PROMPT: list[Binding] = [
    Binding("tab", "complete", "Complete", id="prompt.complete", show=False),
    Binding("up", "history(-1)", "Previous", id="prompt.history_prev", show=False),
    Binding("down", "history(1)", "Next", id="prompt.history_next", show=False),
    Binding("escape", "cancel", "Close prompt", id="prompt.cancel", show=False),
]

DIALOG: list[Binding] = [
    Binding("y,enter", "accept", "Yes", id="dialog.yes"),
    Binding("n,escape", "cancel", "No", id="dialog.no"),
]

QUIT: list[Binding] = [
    Binding("s", "choose('stop')", "Stop director", id="quit.stop"),
    Binding("b", "choose('handoff')", "Hand off", id="quit.handoff"),
    Binding("n,escape", "choose('cancel')", "Cancel", id="quit.cancel"),
]

ASK: list[Binding] = [
    Binding("escape", "cancel", "Cancel", id="ask.cancel"),
]

EDITOR: list[Binding] = [
    Binding("ctrl+s", "save", "Save candidate", id="editor.save", priority=True),
    Binding("escape", "close", "Close", id="editor.close", priority=True),
]

CLOSE: list[Binding] = [
    Binding("escape,q", "close", "Close", id="screen.close"),
]

SECTIONS: dict[str, list[Binding]] = {
    "Global": APP,
    "Virtual servers (selected real server)": VS,
    "VRRP (selected instance)": VRRP,
    "Health-check flight recorder": CHECKS,
    "Health log": LOG,
    "Moving around (tables and log)": NAV_TABLE,
    "Command prompt": PROMPT,
    "Confirmations and the diff view": DIALOG,
    "Quit dialog (embedded engine)": QUIT,
    "Editor": EDITOR,
    "Help and output screens": CLOSE,
    "Filter bars": FILTER,
    "Value prompts": ASK,
}

ALL: list[Binding] = [b for group in (*SECTIONS.values(), NAV_LOG) for b in group]

DEFAULT_KEYS: dict[str, str] = {}
for _b in ALL:
    assert _b.id is not None
    DEFAULT_KEYS.setdefault(_b.id, _b.key)

KNOWN_IDS: frozenset[str] = frozenset(DEFAULT_KEYS)
