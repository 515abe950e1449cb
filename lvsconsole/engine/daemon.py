"""The engine as a process: `lvsconsole run -f FILE [--headless] [--dry-run]` (and the TUI's embedded engine).

It loads the config into a ConfigStore, builds the Director over the kernel IPVS backend (or the memory
backend with --dry-run), serves the control socket, logs every event on stderr in keepalived's wording,
reloads on SIGHUP through the same path as `commit`, and stops cleanly on SIGTERM/SIGINT (priority-0
adverts, VIPs released, IPVS as lvs_flush_on_stop says).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from lvsconsole.config.lexer import ConfigReadError
from lvsconsole.engine.audit import DEFAULT_SYSLOG, SyslogAudit, forward_audit
from lvsconsole.engine.bus import EventBus, Subscription
from lvsconsole.engine.commands import grammar
from lvsconsole.engine.control import DEFAULT_SOCKET, ControlServer, ControlSocketError
from lvsconsole.engine.director import Director
from lvsconsole.engine.events import EngineWarning, Event, OperatorAction
from lvsconsole.engine.executor import CommandExecutor
from lvsconsole.engine.history import HistoryLog
from lvsconsole.engine.listen import ListenAddress
from lvsconsole.engine.store import ConfigRefused, ConfigStore
from lvsconsole.ipvs.backend import Backend

if TYPE_CHECKING:
    from lvsconsole.engine.metrics_http import MetricsServer

log = logging.getLogger("lvsconsole")
# Every alarm the engine logs also reaches the operator as a bus event (print_events). Without a handler of its
# own, a warning of an `lvsconsole.*` logger would fall to Python's lastResort handler and be printed on stderr
# a second time. Records still propagate to whatever handlers the root logger has.
if not any(isinstance(handler, logging.NullHandler) for handler in log.handlers):
    log.addHandler(logging.NullHandler())


@dataclass
class Engine:
    """A running engine: what a face (the TUI, the shell) embeds."""

    store: ConfigStore
    bus: EventBus
    director: Director
    executor: CommandExecutor
    server: ControlServer | None
    metrics: MetricsServer | None = None


def open_backend(dry_run: bool) -> Backend:
    if dry_run:
        from lvsconsole.ipvs.memory import MemoryBackend

        return MemoryBackend()
    from lvsconsole.ipvs.kernel import KernelBackend

    return KernelBackend()


@contextlib.asynccontextmanager
async def running_engine(path: str, *, dry_run: bool = False, socket_path: str | None = DEFAULT_SOCKET,
                         config_id: str | None = None, metrics: ListenAddress | None = None,
                         syslog: str | None = DEFAULT_SYSLOG,
                         history_dir: str | None = None, backend: Backend | None = None) -> AsyncIterator[Engine]:
    """Start the engine for ``path``; stop it (cleanly) when the block exits.

    ``backend`` overrides the IPVS backend that ``dry_run`` would choose (the demo runs real VRRP over a
    memory table where the kernel has no ip_vs).

    ``history_dir`` keeps every applied config there (engine/history.py); None keeps the history in memory.
    Raises ConfigReadError / ConfigRefused for a config that cannot run, OSError for a missing IPVS, a
    socket already served by another engine or a ``metrics`` address that cannot be listened on.
    """
    archive = HistoryLog(history_dir)
    store = ConfigStore.from_file(path, config_id=config_id, archive=archive)
    bus = EventBus()
    if archive.warning:
        bus.publish(EngineWarning(message=archive.warning, code="history"))
    if backend is None:
        backend = open_backend(dry_run)
    director = Director(store.running.config, backend=backend, bus=bus, dry_run=dry_run)
    executor = CommandExecutor(director, store, bus)
    grammar()  # built now rather than by the first command, often a SIGHUP reload that should be quick
    server = None
    exporter: MetricsServer | None = None
    await director.start()
    audit = SyslogAudit(syslog) if syslog else None
    auditing = None
    if audit is not None and audit.open():
        auditing = asyncio.get_running_loop().create_task(forward_audit(bus.subscribe(kinds=(OperatorAction,)), audit))
    try:
        if socket_path:
            server = ControlServer(socket_path, executor.run, bus)
            await server.start()
        if metrics is not None:
            from lvsconsole.engine.metrics_http import MetricsServer

            exporter = MetricsServer(director, metrics)
            await exporter.start()
        yield Engine(store, bus, director, executor, server, exporter)
    finally:
        if auditing is not None:
            auditing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await auditing
        if audit is not None:
            audit.close()
        if exporter is not None:
            await exporter.close()
        if server is not None:
            await server.close()
        await executor.confirm_timer.close()
        await director.stop()
        with contextlib.suppress(Exception):
            await backend.close()


async def print_events(subscription: Subscription, out: TextIO) -> None:
    """Events in keepalived's wording, one line each; a vanished terminal stops the printing, not the engine."""
    async for event in subscription:
        if _printed(event):
            try:
                print(format_event(event), file=out, flush=True)
            except OSError:
                return


def _printed(event: Event) -> bool:
    return event.LOGGED


def format_event(event: Event) -> str:
    import time

    stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(event.time))
    return f"{stamp}: {event.text()}"


async def run_headless(engine: Engine, subscription: Subscription, out: TextIO) -> None:
    """Log the engine's events (from ``subscription``) on ``out``, reload on SIGHUP, return on SIGTERM/SIGINT.

    What `lvsconsole run --headless` does with its engine, and what a console does with its embedded engine
    when the console goes away. The reload's outcome reaches ``out`` as its audit event. Events the engine's
    shutdown logs stay in ``subscription`` for ``print_remaining``.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    pending: set[asyncio.Task[object]] = set()

    def reload() -> None:
        task = loop.create_task(engine.executor.run("reload", who="SIGHUP"))
        pending.add(task)
        task.add_done_callback(pending.discard)

    printer = asyncio.create_task(print_events(subscription, out))
    loop.add_signal_handler(signal.SIGHUP, reload)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        printer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await printer


def print_remaining(subscription: Subscription, out: TextIO) -> None:
    """What the engine logged after the printer stopped: its shutdown (priority-0 adverts, VIPs removed …)."""
    with contextlib.suppress(OSError):
        for event in subscription.drain():
            if _printed(event):
                print(format_event(event), file=out, flush=True)


def start_failure(exc: Exception, path: str, out: TextIO) -> int | None:
    """The message and exit status for an engine that could not start; None for an unexpected exception."""
    if isinstance(exc, ConfigReadError):
        print(f"{path}: cannot read: {exc.strerror or exc}", file=out)
        return 2
    if isinstance(exc, ConfigRefused):
        for diag in exc.diagnostics:
            print(diag, file=out)
        print(f"{path}: {exc.reason}; not started", file=out)
        return 1
    if isinstance(exc, (ControlSocketError, OSError)):
        print(f"lvsconsole: {exc}", file=out)
        return 1
    return None


async def serve(path: str, *, dry_run: bool, socket_path: str | None, config_id: str | None,
                out: TextIO = sys.stderr, metrics: ListenAddress | None = None,
                history_dir: str | None = None, backend: Backend | None = None,
                warning: EngineWarning | None = None) -> int:
    """`lvsconsole run --headless`: the engine until SIGTERM; exit status 0, or 1/2 when it cannot start.

    ``warning`` is published at start so that every face shows it (the demo's simulated IPVS table)."""
    try:
        async with running_engine(path, dry_run=dry_run, socket_path=socket_path, config_id=config_id,
                                  metrics=metrics, history_dir=history_dir, backend=backend) as engine:
            # The loaded config and the engine built from it live as long as the daemon; moved out of the
            # collector's generations, they are not traversed again by every full collection, which at ten
            # thousand checks a second (each allocating a few short-lived objects) is a measurable share of
            # the CPU. Only here, in the long-running daemon: tests and the TUI keep the default collector.
            gc.collect()
            gc.freeze()
            subscription = engine.bus.subscribe(replay=1000)
            if warning is not None:
                engine.bus.publish(warning)
            await run_headless(engine, subscription, out)
        print_remaining(subscription, out)
    except Exception as exc:
        status = start_failure(exc, path, out)
        if status is None:
            raise
        return status
    return 0
