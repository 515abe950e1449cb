"""TUI tier: every test module here sets ``pytestmark = pytest.mark.tui``; helpers live in ``_lab``."""

from __future__ import annotations

import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def screen_text(app: object) -> str:
    """The current screen as plain text, as a terminal would show it (no colours)."""
    from rich.console import Console
    from textual.app import App

    assert isinstance(app, App)
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True, color_system=None,
                      legacy_windows=False, force_terminal=False)
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens, simplify=True)
    console.print(update)
    return console.export_text()
