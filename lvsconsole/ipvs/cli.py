"""``lvsconsole ipvs list``: the kernel's IPVS table as ``ipvsadm -L`` prints it (byte for byte).

    lvsconsole ipvs list [-n] [--stats | --rate | --thresholds | --persistent-conn | --tun-info |
                          --timeout | --daemon] [--exact] [--nosort] [--netns NAME]

Importing this module is cheap (argparse only): the kernel backend is imported when the command runs.
Exit status: 0, or 1 when IPVS cannot be read (the reason on stderr, as ipvsadm does).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

_MODES = ("stats", "rate", "thresholds", "persistent-conn", "tun-info")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``ipvs`` (with ``list``) to the subparsers ``sub`` of the main parser."""
    p_ipvs: argparse.ArgumentParser = sub.add_parser("ipvs", help="the kernel IPVS table (ipvsadm-compatible)")
    isub = p_ipvs.add_subparsers(dest="ipvs_command", metavar="{list}")
    isub.required = True
    p_list = isub.add_parser("list", help="list the IPVS table like ipvsadm -L")
    p_list.add_argument("-n", "--numeric", action="store_true", help="numeric addresses and ports")
    what = p_list.add_mutually_exclusive_group()
    what.add_argument("--stats", dest="mode", action="store_const", const="stats", help="counters")
    what.add_argument("--rate", dest="mode", action="store_const", const="rate", help="rates")
    what.add_argument("--thresholds", dest="mode", action="store_const", const="thresholds", help="thresholds")
    what.add_argument(
        "--persistent-conn", dest="mode", action="store_const", const="persistent-conn", help="persistent conns"
    )
    what.add_argument("--tun-info", dest="mode", action="store_const", const="tun-info", help="tunnel details")
    what.add_argument("--timeout", dest="mode", action="store_const", const="timeout", help="tcp tcpfin udp timeouts")
    what.add_argument("--daemon", dest="mode", action="store_const", const="daemon", help="sync daemons")
    p_list.add_argument("--exact", action="store_true", help="exact counters (no K/M/G/T)")
    p_list.add_argument("--nosort", action="store_true", help="kernel order instead of ipvsadm's")
    p_list.add_argument("--netns", metavar="NAME", help="the IPVS table of network namespace NAME")
    p_list.set_defaults(func=run_list, mode="plain")
    return p_ipvs


def run_list(args: argparse.Namespace) -> int:
    from lvsconsole.ipvs.table import IpvsError

    try:
        text = asyncio.run(list_text(args))
    except IpvsError as exc:
        print(f"lvsconsole ipvs: {exc.strerror or exc}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0


async def list_text(args: argparse.Namespace) -> str:
    """The listing ``args`` asks for (namespace of ``add_parser``'s ``list``)."""
    from lvsconsole.ipvs.kernel import KernelBackend
    from lvsconsole.ipvs.listing import render_daemons, render_list, render_timeouts

    backend = KernelBackend(getattr(args, "netns", None))
    try:
        mode = args.mode
        if mode == "timeout":
            return render_timeouts(await backend.read_timeouts())
        if mode == "daemon":
            return render_daemons(await backend.read_sync_daemons())
        info = await backend.read_info()
        table, stats = await backend.read_snapshot()
    finally:
        await backend.close()
    return render_list(
        table,
        stats,
        numeric=args.numeric,
        mode=mode,
        version=info.version,
        size=info.size,
        sort=not args.nosort,
        exact=args.exact,
    )
