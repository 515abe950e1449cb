"""The `lvsconsole` command line.

Subcommands import what they need lazily: `validate` must start fast (no Textual, no pyroute2).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"
EXAMPLES = Path(__file__).resolve().parent / "examples"


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
            print(diag, file=out)
        config = result.config
        rs_count = sum(len(vs.real_servers) for vs in config.virtual_servers)
        verdict = "invalid" if errors else "valid"
        print(
            f"{args.file}: {verdict}: {errors} error{'s' * (errors != 1)}, "
            f"{warnings} warning{'s' * (warnings != 1)} "
            f"({len(config.instances)} vrrp_instance, {len(config.virtual_servers)} virtual_server, "
            f"{rs_count} real_server, {len(result.files)} file{'s' * (len(result.files) != 1)})",
            file=out,
        )
    return 1 if errors else 0


def _demo(args: argparse.Namespace) -> int:
    # The namespace lab is not built yet: until it is, the demo validates the bundled example configs.
    print("lvsconsole demo: validating the bundled example configs (the namespace lab comes with the demo issue)")
    status = 0
    for conf in sorted(EXAMPLES.glob("*.conf")):
        ns = argparse.Namespace(file=str(conf), strict=False, json=False, config_id=None)
        status = max(status, _validate(ns))
    return status


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

    p_demo = sub.add_parser("demo", help="the embedded demo")
    p_demo.add_argument("--check", action="store_true", help="run non-interactively and exit")
    p_demo.set_defaults(func=_demo)
    return parser


def _version() -> str:
    from lvsconsole import __version__

    return f"lvsconsole {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
