"""A demo director's engine when the kernel has no ip_vs: ``python -m lvsconsole.lab.director -f CONF --socket S``.

``lvsconsole run --dry-run`` uses the memory IPVS backend *and* keeps VRRP silent (no adverts, no
addresses), which would leave both directors MASTER. The demo wants the opposite mix: VRRP and health
checks for real (adverts on the wire, the VIP moving between namespaces, real TCP checks) and only the
IPVS table simulated. This entry point runs the same engine as ``lvsconsole run --headless`` (same
events on stderr, same control socket, SIGHUP reload, clean SIGTERM) over the memory backend, and says
so at start-up, on stderr and as an engine warning that every face shows. With ``--feed PATH`` it takes the
flows the demo's forwarder proxies into that table (lab/flowfeed.py), so its counters move as the kernel's would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence
from typing import TextIO

from lvsconsole.engine import daemon
from lvsconsole.engine.events import EngineWarning

SIMULATED = ("IPVS table SIMULATED (memory backend): this kernel has no ip_vs, so nothing is forwarded by the "
             "kernel; VRRP and health checks are real")


async def serve_simulated(path: str, socket_path: str | None, *, config_id: str | None = None,
                          out: TextIO = sys.stderr, feed: str | None = None) -> int:
    """``daemon.serve`` with real VRRP and the memory IPVS backend (fed by the forwarder's flows if ``feed``)."""
    from lvsconsole.ipvs.memory import MemoryBackend
    from lvsconsole.lab.flowfeed import receive_feed

    print(f"*** {SIMULATED} ***", file=out, flush=True)
    backend = MemoryBackend()
    feeding = None
    if feed:
        feeding = asyncio.create_task(receive_feed(feed, backend, lambda text: print(text, file=out, flush=True)))
    try:
        return await daemon.serve(path, dry_run=False, socket_path=socket_path, config_id=config_id, out=out,
                                  backend=backend, warning=EngineWarning(message=SIMULATED, code="simulated-ipvs"))
    finally:
        if feeding is not None:
            feeding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeding


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lvsconsole.lab.director",
                                     description="the engine with real VRRP and a simulated (memory) IPVS table")
    parser.add_argument("-f", "--file", required=True)
    parser.add_argument("--socket", default="", help="control socket ('' for none)")
    parser.add_argument("-i", "--config-id")
    parser.add_argument("--feed", default="", help="Unix datagram socket for the forwarder's flows ('' for none)")
    args = parser.parse_args(argv)
    return asyncio.run(serve_simulated(args.file, args.socket or None, config_id=args.config_id,
                                       feed=args.feed or None))


if __name__ == "__main__":
    sys.exit(main())
