"""A demo director's engine when the kernel has no ip_vs: ``python -m lvsconsole.lab.director -f CONF --socket S``.

``lvsconsole run --dry-run`` uses the memory IPVS backend *and* keeps VRRP silent (no adverts, no
addresses), which would leave both directors MASTER. The demo wants the opposite mix: VRRP and health
checks for real (adverts on the wire, the VIP moving between namespaces, real TCP checks) and only the
IPVS table simulated. This entry point runs the same engine as ``lvsconsole run --headless`` (same
events on stderr, same control socket, SIGHUP reload, clean SIGTERM) over the memory backend, and says
so at start-up, on stderr and as an engine warning that every face shows.

(If ``running_engine`` grows a way to choose the IPVS backend apart from ``dry_run``, this module
becomes a call to ``serve``.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from typing import TextIO

from lvsconsole.engine import daemon
from lvsconsole.engine.events import EngineWarning
from lvsconsole.ipvs.backend import Backend

SIMULATED = ("IPVS table SIMULATED (memory backend): this kernel has no ip_vs, so nothing is forwarded by the "
             "kernel; VRRP and health checks are real")


def _memory_backend(dry_run: bool) -> Backend:
    from lvsconsole.ipvs.memory import MemoryBackend

    return MemoryBackend()


async def serve_simulated(path: str, socket_path: str | None, *, config_id: str | None = None,
                          out: TextIO = sys.stderr) -> int:
    """``daemon.serve`` with real VRRP and the memory IPVS backend."""
    from lvsconsole.config.lexer import ConfigReadError
    from lvsconsole.engine.control import ControlSocketError
    from lvsconsole.engine.store import ConfigRefused

    daemon.open_backend = _memory_backend  # this process only: it exists for this
    print(f"*** {SIMULATED} ***", file=out, flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    pending: set[asyncio.Task[None]] = set()
    try:
        async with daemon.running_engine(path, dry_run=False, socket_path=socket_path,
                                         config_id=config_id) as engine:
            subscription = engine.bus.subscribe(replay=1000)
            engine.bus.publish(EngineWarning(message=SIMULATED, code="simulated-ipvs"))
            printer = asyncio.create_task(daemon.print_events(subscription, out))

            def reload() -> None:
                async def go() -> None:
                    result = await engine.executor.run("reload", who="SIGHUP")
                    print(f"reload: {result.message}", file=out, flush=True)

                task = loop.create_task(go())
                pending.add(task)
                task.add_done_callback(pending.discard)

            loop.add_signal_handler(signal.SIGHUP, reload)
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
            for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            printer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await printer
        for event in subscription.drain():
            print(daemon.format_event(event), file=out, flush=True)
    except ConfigReadError as exc:
        print(f"{path}: cannot read: {exc.strerror or exc}", file=out)
        return 2
    except ConfigRefused as exc:
        for diag in exc.diagnostics:
            print(diag, file=out)
        print(f"{path}: {exc.reason}; not started", file=out)
        return 1
    except (ControlSocketError, OSError) as exc:
        print(f"lvsconsole: {exc}", file=out)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lvsconsole.lab.director",
                                     description="the engine with real VRRP and a simulated (memory) IPVS table")
    parser.add_argument("-f", "--file", required=True)
    parser.add_argument("--socket", default="", help="control socket ('' for none)")
    parser.add_argument("-i", "--config-id")
    args = parser.parse_args(argv)
    return asyncio.run(serve_simulated(args.file, args.socket or None, config_id=args.config_id))


if __name__ == "__main__":
    sys.exit(main())
