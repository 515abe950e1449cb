"""``python -m lvsconsole.vrrp -f FILE``: the VRRP service alone, logging on stderr like ``keepalived -l``.

Signals as keepalived: TERM/INT stop (priority-0 adverts, VIPs removed), HUP reloads the file, USR2 writes
the per-instance statistics (JSON) to ``--stats-file``. Used by the netns tests and the failover bench;
``lvsconsole run --headless`` is the operator's command.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

from lvsconsole.config.build import load_file
from lvsconsole.vrrp.service import VrrpService


def _load(path: str) -> object | None:
    result = load_file(path)
    for diag in result.diagnostics:
        logging.getLogger("lvsconsole.vrrp").warning("%s", diag)
    return result.config if result.ok else None


async def _main(args: argparse.Namespace) -> int:
    log = logging.getLogger("lvsconsole.vrrp")
    config = _load(args.file)
    if config is None:
        log.error("configuration %s is invalid; not starting", args.file)
        return 1
    service = VrrpService(config, dry_run=args.dry_run)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reloads: asyncio.Queue[None] = asyncio.Queue()

    def write_stats() -> None:
        if args.stats_file:
            data = [snap.as_json() for snap in service.snapshot()]
            tmp = Path(args.stats_file + ".tmp")
            tmp.write_text(json.dumps(data, indent=1, default=str))
            os.replace(tmp, args.stats_file)

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reloads.put_nowait, None)
    loop.add_signal_handler(signal.SIGUSR2, write_stats)
    if args.pid_file:
        Path(args.pid_file).write_text(f"{os.getpid()}\n")
    log.info("Starting VRRP child process, pid=%d", os.getpid())
    await service.start()

    async def reloader() -> None:
        while True:
            await reloads.get()
            log.info("Reloading")
            new = _load(args.file)
            if new is None:
                log.error("configuration %s is invalid; keeping the running one", args.file)
                continue
            await service.reload(new)  # type: ignore[arg-type]

    task = asyncio.create_task(reloader())
    try:
        await stop.wait()
    finally:
        task.cancel()
        log.info("Stopping")
        await service.stop()
        write_stats()
        if args.pid_file:
            Path(args.pid_file).unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lvsconsole.vrrp", description=__doc__)
    parser.add_argument("-f", "--file", required=True, help="keepalived.conf")
    parser.add_argument("--dry-run", action="store_true", help="send nothing, change no address")
    parser.add_argument("--stats-file", help="JSON statistics written on SIGUSR2 and on exit")
    parser.add_argument("-p", "--pid-file", help="write the process id here")
    parser.add_argument("-D", "--debug", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO, stream=sys.stderr,
        format="%(asctime)s.%(msecs)03d lvsconsole_vrrp[%(process)d]: %(message)s", datefmt="%a %b %d %H:%M:%S %Y")
    return asyncio.run(_main(args))


if __name__ == "__main__":
    status = main()
    # Everything is released by now (adverts sent, addresses removed, sockets closed): skip the
    # interpreter's teardown, whose CPU burst would land right when the backup takes over.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
