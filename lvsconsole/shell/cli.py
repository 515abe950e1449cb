"""``lvsconsole shell`` on the command line: argparse only (the REPL and prompt-toolkit load on use)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"
EXIT_OK, EXIT_FAILED, EXIT_UNREACHABLE = 0, 1, 2


def default_history_path() -> Path:
    """``$XDG_STATE_HOME/lvsconsole/history`` when XDG_STATE_HOME is set, else ``~/.lvsconsole_history``."""
    state = os.environ.get("XDG_STATE_HOME")
    if state:
        return Path(state) / "lvsconsole" / "history"
    return Path.home() / ".lvsconsole_history"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """``lvsconsole shell [-f FILE | --attach [--socket PATH]] [-c "cmd; cmd"] [--json]``."""
    parser = subparsers.add_parser(
        "shell", help="a command shell on an embedded or running engine (completion, history, -c, stdin)",
        description="A REPL over the operator command language. With neither -f nor --attach it attaches to "
                    "the engine at --socket if one answers, else embeds one for the default config. Commands "
                    "from -c or from stdin (not a terminal) run in order and stop at the first failure. Exit "
                    "status: 0 ok, 1 a command failed, 2 the engine could not be started or reached.")
    configure_parser(parser)
    return parser


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from lvsconsole.engine.listen import add_metrics_argument
    from lvsconsole.paths import DEFAULT_SOCKET, add_history_dir_argument

    source = parser.add_mutually_exclusive_group()
    source.add_argument("-f", "--file", help="embed an engine running this config")
    source.add_argument("--attach", action="store_true", help="talk to a running engine over its socket")
    parser.add_argument("--socket", default=DEFAULT_SOCKET,
                        help=f"control socket (default {DEFAULT_SOCKET}); an embedded engine serves it too "
                             "('' for none)")
    parser.add_argument("--dry-run", action="store_true", help="embedded engine: memory IPVS, no address changes")
    parser.add_argument("-i", "--config-id", help="config id for @ID lines (embedded engine)")
    add_metrics_argument(parser)
    add_history_dir_argument(parser)
    parser.add_argument("-c", "--command", dest="commands", metavar="'CMD; CMD'",
                        help="run these commands and exit (non-zero at the first failure)")
    parser.add_argument("--json", action="store_true", help="print each result as a JSON object (one per line)")
    parser.add_argument("--history", default=None, metavar="FILE",
                        help=f"history file (default {default_history_path()}; '' for none)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from lvsconsole.shell.repl import amain

    try:
        return asyncio.run(amain(args))
    except KeyboardInterrupt:
        return 130


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lvsconsole shell")
    configure_parser(parser)
    return parser.parse_args(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_args(sys.argv[1:] if argv is None else argv))
