"""``python -m lvsconsole.tui [-f FILE] [--dry-run] [--socket PATH] [--keymap NAME]`` or ``… attach``."""

from __future__ import annotations

import sys

from lvsconsole.tui.cli import main

sys.exit(main())
