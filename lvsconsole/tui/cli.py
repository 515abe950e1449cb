"""Entry points: ``lvsconsole [-f FILE]`` (the console with its engine embedded) and ``lvsconsole attach``.

Wiring into ``lvsconsole/cli.py`` (which this module does not edit)::

    from lvsconsole.tui.cli import add_parser, add_root_arguments, run_embedded
    add_root_arguments(parser)          # -f/--file, --dry-run, --socket, --keymap, -i on the bare command
    add_parser(sub)                     # the ``attach`` subcommand
    ...
    if args.command is None:
        return run_embedded(args)

The root options use their own ``dest`` names (``tui_file``…) so that they never clobber a subcommand's
``file``/``socket``. ``python -m lvsconsole.tui`` takes the same arguments (``main``).

Safety of the embedded engine: only an explicit "stop the director" in the quit dialog (or SIGTERM) stops it.
A hand-off leaves the process without stopping anything (the background engine has answered by then). If
the console crashes or loses its terminal, the director keeps running headless in this process, logging on
stderr, until SIGTERM/SIGINT: a broken face never takes the VIPs down.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from lvsconsole.engine.listen import ListenAddress

DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"


def history_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "lvsconsole" / "tui_history"


def add_root_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the bare ``lvsconsole`` command (the console with an embedded engine)."""
    from lvsconsole.engine.listen import add_metrics_argument
    from lvsconsole.paths import add_history_dir_argument

    parser.add_argument("-f", "--file", dest="tui_file", default=DEFAULT_CONFIG,
                        help=f"config file for the embedded engine (default {DEFAULT_CONFIG})")
    parser.add_argument("--dry-run", dest="tui_dry_run", action="store_true",
                        help="memory IPVS backend, no address changes")
    parser.add_argument("--socket", dest="tui_socket", default=None,
                        help="control socket of the embedded engine (default /run/lvsconsole/lvsconsole.sock, or "
                             "$XDG_RUNTIME_DIR/lvsconsole.sock when /run/lvsconsole is not writable; '' for none)")
    parser.add_argument("--keymap", dest="tui_keymap", default=None,
                        help="default, vim, emacs or a TOML file (ids → keys)")
    parser.add_argument("-i", "--config-id", dest="tui_config_id", default=None, help="config id for @ID lines")
    add_metrics_argument(parser, dest="tui_metrics")
    add_history_dir_argument(parser, dest="tui_history_dir")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """The ``attach`` subcommand: the console on a running engine, over its control socket."""
    from lvsconsole.paths import DEFAULT_SOCKET

    p = subparsers.add_parser("attach", help="open the console on a running engine (its control socket)")
    p.add_argument("--socket", default=DEFAULT_SOCKET, help=f"control socket (default {DEFAULT_SOCKET})")
    p.add_argument("--keymap", default=None, help="default, vim, emacs or a TOML file (ids → keys)")
    p.set_defaults(func=run_attach)
    return p


def _keymap(name: str | None) -> tuple[dict[str, str], str] | None:
    from lvsconsole.tui.keymap import KeymapError, load_keymap

    try:
        return load_keymap(name), name or "default"
    except KeymapError as exc:
        print(f"lvsconsole: {exc}", file=sys.stderr)
        return None


def choose_socket(requested: str | None) -> str | None:
    """The embedded engine's socket: as asked ('' = none); by default the system path if we may create it
    there, else one in $XDG_RUNTIME_DIR (or /tmp/lvsconsole-UID)."""
    from lvsconsole.paths import DEFAULT_SOCKET

    if requested is not None:
        return requested or None
    directory = os.path.dirname(DEFAULT_SOCKET)
    probe = directory if os.path.isdir(directory) else os.path.dirname(directory)
    if os.access(probe, os.W_OK):
        return DEFAULT_SOCKET
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime) and os.access(runtime, os.W_OK):
        return os.path.join(runtime, "lvsconsole.sock")
    return os.path.join(f"/tmp/lvsconsole-{os.getuid()}", "lvsconsole.sock")


def run_embedded(args: argparse.Namespace) -> int:
    """``lvsconsole [-f FILE]``: the console with the engine in this process."""
    from lvsconsole.paths import history_dir_for

    keymap = _keymap(getattr(args, "tui_keymap", None))
    if keymap is None:
        return 2
    dry_run = getattr(args, "tui_dry_run", False)
    return asyncio.run(embedded(getattr(args, "tui_file", DEFAULT_CONFIG), dry_run=dry_run,
                                socket_path=choose_socket(getattr(args, "tui_socket", None)),
                                config_id=getattr(args, "tui_config_id", None), keymap=keymap[0],
                                keymap_name=keymap[1], metrics=getattr(args, "tui_metrics", None),
                                history_dir=history_dir_for(getattr(args, "tui_history_dir", None), dry_run)))


def run_attach(args: argparse.Namespace) -> int:
    """``lvsconsole attach [--socket PATH]``: the console on a running engine."""
    keymap = _keymap(getattr(args, "keymap", None))
    if keymap is None:
        return 2
    return asyncio.run(attached(args.socket, keymap=keymap[0], keymap_name=keymap[1]))


async def attached(socket_path: str, *, keymap: dict[str, str], keymap_name: str) -> int:
    from lvsconsole.engine.control import ControlSocketError
    from lvsconsole.tui.app import LvsConsoleApp
    from lvsconsole.tui.link import RemoteLink

    link = RemoteLink(socket_path)
    try:
        await link.start()
    except (ControlSocketError, OSError) as exc:
        print(f"lvsconsole attach: {exc}", file=sys.stderr)
        return 2
    try:
        app = LvsConsoleApp(link, keymap=keymap, keymap_name=keymap_name, history_path=history_path(),
                            settle_heap=True)
        await app.run_async()
    finally:
        await link.close()
    return 0 if app.return_code in (0, None) else 1


async def embedded(path: str, *, dry_run: bool, socket_path: str | None, config_id: str | None,
                   keymap: dict[str, str], keymap_name: str, out: TextIO = sys.stderr,
                   metrics: ListenAddress | None = None, history_dir: str | None = None) -> int:
    from lvsconsole.engine.daemon import run_headless, running_engine, start_failure
    from lvsconsole.tui.app import LvsConsoleApp
    from lvsconsole.tui.link import EmbeddedLink

    try:
        async with running_engine(path, dry_run=dry_run, socket_path=socket_path, config_id=config_id,
                                  metrics=metrics, history_dir=history_dir) as engine:
            link = EmbeddedLink(engine, socket_path=socket_path, dry_run=dry_run, config_id=config_id)
            app = LvsConsoleApp(link, keymap=keymap, keymap_name=keymap_name, history_path=history_path(),
                                settle_heap=True)
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGTERM, app.exit, "stop")
            loop.add_signal_handler(signal.SIGHUP, app.exit, "hangup")
            result: str | None
            try:
                result = await app.run_async()
            except Exception as exc:  # the console broke: the director must not
                print(f"lvsconsole: the console failed: {type(exc).__name__}: {exc}", file=out)
                result = None
            finally:
                for sig in (signal.SIGTERM, signal.SIGHUP):
                    loop.remove_signal_handler(sig)
            if result == "stop":
                return 0
            if result == "handoff":
                for stream in (sys.stdout, sys.stderr):
                    with contextlib.suppress(Exception):
                        stream.flush()
                os._exit(0)  # leave VIPs, IPVS and the socket to the background engine: no stop, no cleanup
            why = "lost its terminal" if result == "hangup" else "closed without stopping the director"
            if app.return_code not in (0, None):
                why = "failed"
            with contextlib.suppress(OSError):
                print(f"lvsconsole: the console {why}; the director keeps running headless (pid {os.getpid()}). "
                      f"Attach with: lvsconsole attach --socket {socket_path}; stop with SIGTERM.", file=out,
                      flush=True)
            # only new events: the console has shown the history already
            await run_headless(engine, engine.bus.subscribe(), out)
    except Exception as exc:
        status = start_failure(exc, path, out)
        if status is None:
            raise
        return status
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lvsconsole.tui",
                                     description="the lvsconsole console (embedded engine, or attach)")
    add_root_arguments(parser)
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command is None:
        return run_embedded(args)
    status: int = args.func(args)
    return status
