"""How hard the slowest property tests search: a share of their full example counts on every run (CI included),
the full counts under ``make fuzz`` (LVSCONSOLE_FUZZ=1)."""

from __future__ import annotations

import os

FULL = os.environ.get("LVSCONSOLE_FUZZ") == "1"


def examples(full: int, everyday: int) -> int:
    """``full`` under ``make fuzz``, else ``everyday`` (still enough to reach every strategy's branches)."""
    return full if FULL else everyday
