"""Well-known paths, in a module with no run-time imports so that argparse set-up stays cheap."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"
DEFAULT_SOCKET = "/run/lvsconsole/lvsconsole.sock"
DEFAULT_HISTORY_DIR = "/var/lib/lvsconsole/history"


def history_dir_for(option: str | None, dry_run: bool) -> str | None:
    """Where an engine keeps its applied configs: ``option`` when given ('' = in memory, None returned),
    else DEFAULT_HISTORY_DIR; a dry run keeps it in memory unless told, so it never interleaves with the
    real engine's history."""
    if option is not None:
        return option or None
    return None if dry_run else DEFAULT_HISTORY_DIR


def add_history_dir_argument(parser: argparse.ArgumentParser, dest: str = "history_dir") -> None:
    """``--history-dir`` on every command that starts an engine (run, the bare console, shell -f)."""
    parser.add_argument("--history-dir", dest=dest, default=None, metavar="DIR",
                        help=f"where every applied config is kept (default {DEFAULT_HISTORY_DIR}, in memory with "
                             "--dry-run; '' for in memory)")
