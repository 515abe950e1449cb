"""The `lvsconsole` command line.

Subcommands import what they need lazily: `validate` must start fast (no Textual, no pyroute2).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"


def _validate(args: argparse.Namespace) -> int:
    from lvsconsole.config.build import load_file
    from lvsconsole.config.lexer import ConfigReadError

    try:
        result = load_file(args.file, strict=args.strict, config_id=args.config_id)
    except ConfigReadError as exc:
        if args.json:
            print(json.dumps({"file": args.file, "error": str(exc), "diagnostics": []}))
        else:
            print(f"{args.file}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return 2
    diagnostics = sorted(
        result.diagnostics,
        key=lambda d: (d.location is None, d.location or ("", 0, 0)),
    )
    errors = sum(1 for d in diagnostics if d.is_error)
    warnings = len(diagnostics) - errors
    if args.json:
        print(json.dumps([d.as_json() for d in diagnostics], indent=1))
    else:
        out = sys.stdout
        for diag in diagnostics:
            print(_printable(str(diag)), file=out)
        config = result.config
        rs_count = sum(len(vs.real_servers) for vs in config.virtual_servers)
        verdict = "invalid" if errors else "valid"
        print(
            f"{_printable(args.file)}: {verdict}: {errors} error{'s' * (errors != 1)}, "
            f"{warnings} warning{'s' * (warnings != 1)} "
            f"({len(config.instances)} vrrp_instance, {len(config.virtual_servers)} virtual_server, "
            f"{rs_count} real_server, {len(result.files)} file{'s' * (len(result.files) != 1)})",
            file=out,
        )
    return 1 if errors else 0


def _printable(text: str) -> str:
    """Bytes of a file that are not UTF-8 come back as surrogates; show them escaped, never crash."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from lvsconsole.engine.daemon import serve
    from lvsconsole.paths import history_dir_for

    if not args.headless:
        from lvsconsole.tui.cli import run_embedded

        return run_embedded(argparse.Namespace(tui_file=args.file, tui_dry_run=args.dry_run, tui_socket=args.socket,
                                               tui_keymap=None, tui_config_id=args.config_id,
                                               tui_metrics=args.metrics, tui_history_dir=args.history_dir))
    return asyncio.run(serve(args.file, dry_run=args.dry_run, socket_path=args.socket or None,
                             config_id=args.config_id, metrics=args.metrics,
                             history_dir=history_dir_for(args.history_dir, args.dry_run)))


def _ctl(args: argparse.Namespace) -> int:
    from lvsconsole.engine.control import ControlSocketError, run_command

    command = " ".join(args.words)
    try:
        result = run_command(command, args.socket, who="ctl")
    except (OSError, ControlSocketError) as exc:
        print(f"lvsconsole ctl: cannot reach the engine at {args.socket}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.as_json(), indent=1, default=str))
    elif result.message:
        print(result.message, file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lvsconsole", description="LVS director console (keepalived-compatible)")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command")

    p_validate = sub.add_parser("validate", help="check a keepalived.conf and print its diagnostics")
    p_validate.add_argument("-f", "--file", default=DEFAULT_CONFIG, help=f"config file (default {DEFAULT_CONFIG})")
    p_validate.add_argument("--strict", action="store_true", help="unknown keywords are errors")
    p_validate.add_argument("--json", action="store_true", help="print the diagnostics as a JSON list")
    p_validate.add_argument("-i", "--config-id", help="config id for @ID lines (default: the host name's first label)")
    p_validate.set_defaults(func=_validate)

    from lvsconsole.engine.listen import add_metrics_argument
    from lvsconsole.paths import DEFAULT_SOCKET, add_history_dir_argument

    p_run = sub.add_parser("run", help="run the director engine (VRRP, checks, IPVS)")
    p_run.add_argument("-f", "--file", default=DEFAULT_CONFIG, help=f"config file (default {DEFAULT_CONFIG})")
    p_run.add_argument("--headless", action="store_true", help="no TUI: log on stderr (systemd)")
    p_run.add_argument("--dry-run", action="store_true", help="memory IPVS backend, no address changes")
    p_run.add_argument("--socket", default=DEFAULT_SOCKET,
                       help=f"control socket (default {DEFAULT_SOCKET}; '' for none)")
    p_run.add_argument("-i", "--config-id", help="config id for @ID lines")
    add_history_dir_argument(p_run)
    add_metrics_argument(p_run)
    p_run.set_defaults(func=_run)

    p_ctl = sub.add_parser("ctl", help="send one command to a running engine")
    p_ctl.add_argument("--json", action="store_true", help="print the structured result as JSON")
    p_ctl.add_argument("--socket", default=DEFAULT_SOCKET, help=f"control socket (default {DEFAULT_SOCKET})")
    p_ctl.add_argument("words", nargs=argparse.REMAINDER, help="the command, e.g. 'show vs' or 'drain 10.0.0.2:80'")
    p_ctl.set_defaults(func=_ctl)

    _add_faces(parser, sub)
    return parser


def _add_faces(parser: argparse.ArgumentParser, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The other subcommands live beside their code (argparse only there; Textual, prompt-toolkit and
    pyroute2 load when a subcommand runs), so `validate` stays fast."""
    from lvsconsole.ipvs.cli import add_parser as add_ipvs
    from lvsconsole.lab.cli import add_parser as add_demo
    from lvsconsole.realserver import add_parser as add_realserver
    from lvsconsole.shell.cli import add_parser as add_shell
    from lvsconsole.tui.cli import add_parser as add_attach
    from lvsconsole.tui.cli import add_root_arguments

    add_root_arguments(parser)
    add_attach(sub)
    add_shell(sub)
    add_realserver(sub)
    add_demo(sub)
    add_ipvs(sub)


def _version() -> str:
    from lvsconsole import __version__

    return f"lvsconsole {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from lvsconsole.tui.cli import run_embedded

        return run_embedded(args)
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
