"""``lvsconsole demo`` on the command line: argparse only (the lab loads when the demo runs)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """``lvsconsole demo [--check]``."""
    parser = subparsers.add_parser(
        "demo", help="two directors, two real servers and a client in network namespaces",
        description="Build a lab of network namespaces (two directors running our engine, two DR real servers, "
                    "a client), open the console on the master, tear it all down on exit. --check runs the "
                    "scenario unattended: exit 0 when every step passed, 1 naming the failed step.")
    configure_parser(parser)
    return parser


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true",
                        help="run the scenario unattended (failover, a real server leaving and returning)")
    parser.add_argument("--userns", action="store_true",
                        help="run the lab in a user namespace even as root (what a normal user gets)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lvsconsole.lab.demo import run_demo

    return run_demo(args.check, argv=["--check"] if args.check else [], userns=args.userns)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lvsconsole demo")
    configure_parser(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    import sys

    sys.exit(main())
