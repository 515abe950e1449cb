#!/usr/bin/env python3
"""Console refresh cost at scale (issue 7): 1000 VS x 10 RS on the memory backend, stats changing every second.

Runs the real app (headless, ``App.run_test``, 160x48) on an embedded dry-run engine and reports:

- the CPU the console uses over the run (process CPU time minus what this harness spends changing the stats,
  so the figure covers the engine's snapshot, the panels, rendering), as % of one core;
- key-to-screen latency: for each key (Down in the virtual-server table, alternating with live sort changes),
  the time from the key press to the end of the screen refresh that shows it (p50/p95/max);
- the cell updates and table rebuilds the virtual-server table did (rebuilds must stay at 1).

Target: <= 15 % of one core, p95 <= 50 ms. There is no external anchor for this figure; the line after the
numbers is the ratio to the target.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual import events  # noqa: E402

from lvsconsole.engine.daemon import running_engine  # noqa: E402
from lvsconsole.ipvs.backend import Counters, DestCounters, Stats  # noqa: E402
from lvsconsole.ipvs.memory import MemoryBackend  # noqa: E402
from lvsconsole.tui.app import LvsConsoleApp  # noqa: E402
from lvsconsole.tui.link import EmbeddedLink  # noqa: E402
from lvsconsole.tui.widgets import vs_table  # noqa: E402

CPU_TARGET = 15.0
P95_TARGET_MS = 50.0


def generate(n_vs: int, n_rs: int) -> str:
    lines = ["global_defs {", "    router_id BENCH", "}"]
    for v in range(n_vs):
        a, b = divmod(v, 250)
        lines += [f"virtual_server 10.{a}.{b}.1 80 {{", "    lb_algo wrr", "    lb_kind DR", "    protocol TCP"]
        for r in range(n_rs):
            lines += [f"    real_server 10.{100 + a}.{b}.{r + 2} 80 {{", f"        weight {r % 5 + 1}", "    }"]
        lines.append("}")
    return "\n".join(lines) + "\n"


def _differs(now: Callable[[], object], before: object) -> bool:
    return now() != before


async def key_to_screen(app: LvsConsoleApp, key: str, changed: Callable[[], bool]) -> tuple[float, float]:
    """Milliseconds from handing ``key`` to the driver to the end of the first screen refresh that shows its
    effect (the app's compositor refresh, which in a real terminal is followed by the write), as wall time and
    as the process's CPU time over the same span (what it is when this process has a core to itself: on a
    machine busy with other work the wall time also counts the waits for a CPU)."""
    screen = app.screen
    done = asyncio.Event()
    original = screen._compositor_refresh

    def refresh() -> None:
        original()
        if changed():
            done.set()

    screen._compositor_refresh = refresh  # type: ignore[method-assign]
    event = events.Key(key, None)
    event.set_sender(app)
    assert app._driver is not None
    started, started_cpu = time.perf_counter(), time.process_time()
    app._driver.send_message(event)
    try:
        await asyncio.wait_for(done.wait(), 10)
    finally:
        del screen._compositor_refresh
    return (time.perf_counter() - started) * 1000, (time.process_time() - started_cpu) * 1000


def changing_stats(backend: MemoryBackend, rng: random.Random) -> Stats:
    services = {}
    dests = {}
    for key, service in backend.table.items():
        total = 0
        for dkey in service.dests:
            active = rng.randrange(0, 500)
            bps = rng.randrange(0, 5_000_000)
            total += bps
            dests[(key, dkey)] = DestCounters(activeconns=active, inactconns=rng.randrange(0, 2000),
                                              cps=rng.randrange(0, 200), inbps=bps)
        services[key] = Counters(cps=rng.randrange(0, 2000), inbps=total)
    return Stats(services=services, dests=dests)


async def run(n_vs: int, n_rs: int, seconds: float, keys: int, profile: str | None = None) -> dict[str, float]:
    directory = tempfile.mkdtemp(prefix="lvsbench-")
    conf = Path(directory) / "keepalived.conf"
    conf.write_text(generate(n_vs, n_rs))
    rng = random.Random(7)
    async with running_engine(str(conf), dry_run=True, socket_path=None) as engine:
        backend = engine.director.backend
        assert isinstance(backend, MemoryBackend)
        harness_cpu = 0.0
        # Built beforehand, so that the harness does not block the loop it measures for long: each second the
        # backend gets the next one (every counter of every entry changes), as the kernel's would change.
        # The kernel changes its counters outside this process: the backend's counter maps for each second are
        # made here too (set_stats of 11,000 entries would block the measured loop ~35 ms a second, a pause the
        # console does not have in front of a kernel), and each second they are swapped in.
        samples = []
        for _ in range(8):
            backend.set_stats(changing_stats(backend, rng))
            samples.append((backend._svc_stats, backend._dest_stats))

        def swap_in(sample: tuple[Any, Any]) -> None:
            backend._svc_stats, backend._dest_stats = sample
            backend._stats_view = None

        async def feed() -> None:
            nonlocal harness_cpu
            n = 0
            while True:
                t = time.process_time()
                swap_in(samples[n % len(samples)])
                n += 1
                harness_cpu += time.process_time() - t
                await asyncio.sleep(1.0)

        feeder = asyncio.create_task(feed())
        # The console takes the director's snapshot in slices (Director.snapshot_sliced), with the loop running
        # other work between them: its CPU is what the slices themselves take (one view per virtual server,
        # then the assembly), timed around each.
        snapshot_cpu = 0.0
        director = engine.director

        def timed(method: Callable[..., Any]) -> Callable[..., Any]:
            def call(*args: Any) -> Any:
                nonlocal snapshot_cpu
                t = time.process_time()
                try:
                    return method(*args)
                finally:
                    snapshot_cpu += time.process_time() - t
            return call

        director._vs_view = timed(director._vs_view)  # type: ignore[method-assign]
        director._assemble = timed(director._assemble)  # type: ignore[method-assign]
        stats_cpu = 0.0
        read_stats = backend.read_stats

        async def timed_read_stats() -> Stats:
            nonlocal stats_cpu
            t = time.process_time()
            try:
                return await read_stats()
            finally:
                stats_cpu += time.process_time() - t

        backend.read_stats = timed_read_stats  # type: ignore[method-assign]
        # settle_heap: as the entry points run the console (tui/heap.py)
        app = LvsConsoleApp(EmbeddedLink(engine, dry_run=True), tick=1.0, replay=200, settle_heap=True)
        latencies: list[float] = []
        latencies_cpu: list[float] = []
        sort_latencies: list[float] = []
        async with app.run_test(size=(160, 48)) as pilot:
            table = app.vs_table
            deadline = time.monotonic() + 60
            while table.row_count < n_vs * (n_rs + 1):
                if time.monotonic() > deadline:
                    raise TimeoutError("the table did not fill")
                await asyncio.sleep(0.1)
            await pilot.pause(2.0)
            table.focus()
            cpu0, wall0, harness0, snap0, stats0 = (time.process_time(), time.monotonic(), harness_cpu, snapshot_cpu,
                                                    stats_cpu)
            updates0, ticks0 = table.cell_updates, app.ticks
            profiler = cProfile.Profile(time.process_time) if profile else None
            if profiler is not None:
                profiler.enable()
            gap = seconds / (keys + 1)
            for i in range(keys):
                await asyncio.sleep(gap * rng.uniform(0.5, 1.5))
                if i % 10 == 9:
                    before = table.sort_key
                    wall, _ = await key_to_screen(app, "s", partial(_differs, lambda: table.sort_key, before))
                    sort_latencies.append(wall)
                else:
                    row = table.cursor_row
                    key = "down" if i % 2 == 0 else "up"
                    wall, cpu_ms = await key_to_screen(app, key, partial(_differs, lambda: table.cursor_row, row))
                    latencies.append(wall)
                    latencies_cpu.append(cpu_ms)
            await asyncio.sleep(max(0.0, seconds - (time.monotonic() - wall0)))
            cpu = time.process_time() - cpu0 - (harness_cpu - harness0)
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(str(profile))
            wall = time.monotonic() - wall0
            result = {
                "cpu_percent": 100 * cpu / wall,
                "p50_ms": statistics.median(latencies),
                "p95_ms": statistics.quantiles(latencies, n=20)[18],
                "max_ms": max(latencies),
                "cpu_p50_ms": statistics.median(latencies_cpu),
                "cpu_p95_ms": statistics.quantiles(latencies_cpu, n=20)[18],
                "cpu_max_ms": max(latencies_cpu),
                "loadavg": os.getloadavg()[0],
                "sort_p50_ms": statistics.median(sort_latencies) if sort_latencies else 0.0,
                "sort_max_ms": max(sort_latencies) if sort_latencies else 0.0,
                "cell_updates_per_s": (table.cell_updates - updates0) / wall,
                "rebuilds": float(table.rebuilds),
                "rows": float(table.row_count),
                "harness_cpu_percent": 100 * (harness_cpu - harness0) / wall,
                "snapshot_cpu_percent": 100 * (snapshot_cpu - snap0) / wall,
                "stats_cpu_percent": 100 * (stats_cpu - stats0) / wall,
                "refresh_period": app.refresh_period,
                "snapshot_ms": 1000 * (snapshot_cpu - snap0) / max(1, app.ticks - ticks0),
                "poll_ms": app.poll_cost * 1000,
            }
        feeder.cancel()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vs", type=int, default=1000)
    parser.add_argument("--rs", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--keys", type=int, default=60)
    parser.add_argument("--resort-every", type=float, metavar="SECONDS",
                        help="re-sort a live order every SECONDS on the tick (the console's default: "
                             f"{vs_table.RESORT_EVERY:g} s; 0: every tick)")
    parser.add_argument("--profile", metavar="FILE",
                        help="cProfile the measured window into FILE (the figures then include the profiler's cost)")
    args = parser.parse_args()
    if args.resort_every is not None:
        vs_table.RESORT_EVERY = args.resort_every
    r = asyncio.run(run(args.vs, args.rs, args.seconds, args.keys, args.profile))
    print(f"{args.vs} VS x {args.rs} RS ({int(r['rows'])} rows), stats changing every second, {args.seconds:g} s, "
          f"pid {os.getpid()}")
    ui = r["cpu_percent"] - r["snapshot_cpu_percent"] - r["stats_cpu_percent"]
    print(f"process CPU: {r['cpu_percent']:.1f} % of one core (harness excluded: {r['harness_cpu_percent']:.1f} %)")
    print(f"  engine, Director.snapshot() for the console: {r['snapshot_cpu_percent']:.1f} % "
          f"({r['snapshot_ms']:.0f} ms CPU each, {r['poll_ms']:.0f} ms from start to end with the loop running "
          f"between its slices; the console refreshes every {r['refresh_period']:.1f} s)")
    print(f"  engine, its own stats loop (backend.read_stats): {r['stats_cpu_percent']:.1f} %")
    print(f"  console (panels, table, rendering, events): {ui:.1f} %")
    print(f"key-to-screen: p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms, max {r['max_ms']:.1f} ms "
          f"({len(range(args.keys)) - args.keys // 10} cursor keys); sort key: p50 {r['sort_p50_ms']:.1f} ms, "
          f"max {r['sort_max_ms']:.1f} ms")
    print(f"  the same keys in this process's CPU time: p50 {r['cpu_p50_ms']:.1f} ms, p95 {r['cpu_p95_ms']:.1f} ms, "
          f"max {r['cpu_max_ms']:.1f} ms (load average {r['loadavg']:.1f} on {os.cpu_count()} CPUs: wall times "
          f"above the CPU times are waits for a CPU)")
    print(f"table: {r['cell_updates_per_s']:.0f} cell updates/s, {int(r['rebuilds'])} rebuild(s); live orders "
          f"re-sorted every {vs_table.RESORT_EVERY:g} s")
    print(f"vs target: CPU {r['cpu_percent'] / CPU_TARGET:.2f}x of {CPU_TARGET:g} % (console alone "
          f"{ui / CPU_TARGET:.2f}x), "
          f"p95 {r['p95_ms'] / P95_TARGET_MS:.2f}x of {P95_TARGET_MS:g} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
