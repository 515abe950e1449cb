"""Test tiers: unit (always), netns (root + iproute2), kernel (QEMU guest with ip_vs), tui (Textual).

A tier that cannot run here is skipped with a reason naming what is missing. Under CI (CI=true, as root)
nothing may skip: a missing prerequisite fails the run instead of hiding a tier.
"""

from __future__ import annotations

import gc
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

SAMPLES_DIR = Path("/usr/share/doc/keepalived/samples")
SEED_DIR = Path(__file__).resolve().parent.parent / "lvsconsole" / "examples"


def _netns_missing() -> str | None:
    if os.geteuid() != 0:
        return "netns tier needs root (uid 0)"
    if shutil.which("ip") is None:
        return "netns tier needs iproute2 (`ip`)"
    return None


def _tui_missing() -> str | None:
    try:
        import textual  # noqa: F401
    except ImportError:
        return "tui tier needs the textual package"
    return None


def _kernel_missing() -> str | None:
    if not Path("/proc/net/ip_vs").exists():
        return "kernel tier: no ip_vs in this kernel; it runs inside the QEMU guest (tests/kernel/guest.sh)"
    return None


_TIER_CHECKS = {"netns": _netns_missing, "tui": _tui_missing, "kernel": _kernel_missing}


@pytest.hookimpl(trylast=True)  # after `-m` deselection: only the tiers that will run must be runnable
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    strict = os.environ.get("CI", "").lower() == "true"
    for tier, check in _TIER_CHECKS.items():
        tier_items = [item for item in items if item.get_closest_marker(tier)]
        if not tier_items:
            continue
        missing = check()
        if missing is None:
            continue
        if strict:
            raise pytest.UsageError(f"CI must run every tier, but {missing} ({len(tier_items)} tests)")
        for item in tier_items:
            item.add_marker(pytest.mark.skip(reason=missing))


@pytest.fixture(autouse=True)
def _gc_unfrozen_after_each_test() -> Iterator[None]:
    """Give back what a test froze: the console's engine link freezes the heap (tui/link.py) for a process that
    lives as long as its engine, but in the test process the frozen Textual apps would pile up, never be
    collected, and make gc.get_freeze_count() (a walk of the permanent generation) ever slower."""
    yield
    if gc.get_freeze_count():
        gc.unfreeze()
