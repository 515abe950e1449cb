#!/usr/bin/env python3
"""IPVS data plane speed: loading a 1000 VS x 10 RS table, and changing one weight, against `ipvsadm -R`.

Runs where the kernel has ip_vs, i.e. inside the test guest:

    bash tests/kernel/guest.sh .venv/bin/python bench/reconcile.py

Figures, all in the same run on the same kernel:
- `ipvsadm -R` of the table (one process, libnl, one netlink request and ack at a time): the anchor;
- KernelBackend.apply of the plan from an empty table (batched netlink), and IpvsSync.start from empty
  (read the kernel + plan + apply), each as a ratio to the anchor;
- one weight change through IpvsSync.set_desired: netlink requests and sends it took, and its latency;
- reading the table back (KernelBackend.read_table / read_stats) beside `ipvsadm -Ln`, with the longest
  stall of the event loop during read_stats.

Targets (issue 5): a one-weight change issues exactly 1 netlink request and completes in <= 20 ms; the
initial apply is no slower than 3x `ipvsadm -R`. Under software emulation only the ratios mean much.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lvsconsole.ipvs.kernel import KernelBackend  # noqa: E402
from lvsconsole.ipvs.reconcile import plan  # noqa: E402
from lvsconsole.ipvs.sync import IpvsSync  # noqa: E402
from lvsconsole.ipvs.table import (  # noqa: E402
    EMPTY,
    Dest,
    Fwd,
    Proto,
    Service,
    ServiceKey,
    SvcFlags,
    Table,
)

IPVSADM = shutil.which("ipvsadm") or "/usr/sbin/ipvsadm"


def build_table(n_vs: int, n_rs: int) -> Table:
    """The shape of bench/config_parse.py's config: wrr, DR, persistence 50, weights 1..3."""
    entries = []
    for v in range(n_vs):
        key = ServiceKey.inet("tcp", f"10.{100 + v // 250}.{v % 250}.1", 80)
        dests = [
            Dest(ipaddress.IPv4Address(f"10.{200 + v // 250}.{v % 250}.{r + 1}"), 80, Fwd.ROUTE, 1 + r % 3)
            for r in range(n_rs)
        ]
        entries.append((Service(key, "wrr", SvcFlags.PERSISTENT, 50), dests))
    return Table(entries)


_FWD_OPT = {Fwd.MASQ: "-m", Fwd.ROUTE: "-g", Fwd.TUNNEL: "-i"}
_PROTO_OPT = {Proto.TCP: "-t", Proto.UDP: "-u", Proto.SCTP: "--sctp-service"}


def ipvsadm_rules(table: Table) -> str:
    """The table as `ipvsadm -R` input (the `ipvsadm -S` format; the bench's subset of options)."""
    lines = []
    for key, entry in table.items():
        svc = entry.service
        assert key.protocol is not None and key.address is not None
        name = f"{_PROTO_OPT[key.protocol]} {key.address}:{key.port}"
        line = f"-A {name} -s {svc.scheduler}"
        if svc.flags & SvcFlags.PERSISTENT:
            line += f" -p {svc.timeout}"
        lines.append(line)
        lines.extend(f"-a {name} -r {d.address}:{d.port} {_FWD_OPT[d.fwd]} -w {d.weight}" for d in entry.dests.values())
    return "\n".join(lines) + "\n"


def ipvsadm(*args: str, stdin: str | None = None) -> float:
    start = time.perf_counter()
    subprocess.run([IPVSADM, *args], input=stdin, text=True, check=True, capture_output=True)
    return time.perf_counter() - start


async def loop_stall(during: asyncio.Future[object], tick: float = 0.001) -> float:
    """The longest gap between ticks of a 1 ms sleeper while ``during`` runs."""
    worst = 0.0
    last = time.perf_counter()
    while not during.done():
        await asyncio.sleep(tick)
        now = time.perf_counter()
        worst = max(worst, now - last - tick)
        last = now
    return worst


async def bench(n_vs: int, n_rs: int, rounds: int, changes: int) -> int:
    table = build_table(n_vs, n_rs)
    entries = len(table) + table.num_dests
    rules = ipvsadm_rules(table)
    print(f"table: {n_vs} virtual services x {n_rs} real servers = {entries} entries", flush=True)

    anchor, backend_apply, sync_start = [], [], []
    backend = KernelBackend()
    try:
        for _ in range(rounds):
            ipvsadm("-C")
            anchor.append(ipvsadm("-R", stdin=rules))
            assert plan(table, await backend.read_table()) == [], "ipvsadm -R loaded something else"
            ipvsadm("-C")
            ops = plan(table, EMPTY)
            requests, sends = backend.requests_sent, backend.sends
            start = time.perf_counter()
            await backend.apply(ops)
            backend_apply.append(time.perf_counter() - start)
            assert backend.requests_sent - requests == entries
            batch_sends = backend.sends - sends
            ipvsadm("-C")
            sync = IpvsSync(backend, check_interval=3600)
            start = time.perf_counter()
            await sync.start(table)
            sync_start.append(time.perf_counter() - start)
            await sync.stop(clear=False)
            assert plan(table, await backend.read_table()) == []
        a, b, s = min(anchor), min(backend_apply), min(sync_start)
        print(f"ipvsadm -R (anchor)          {a:8.3f} s   ({entries / a:,.0f} entries/s)")
        print(
            f"KernelBackend.apply          {b:8.3f} s   ratio {b / a:.2f}x   "
            f"({entries} requests in {batch_sends} sends)"
        )
        print(f"IpvsSync.start (read+plan+apply) {s:6.3f} s   ratio {s / a:.2f}x")

        # one weight change at a time, through the sync (plan against the kernel model + apply)
        sync = IpvsSync(backend, check_interval=3600)
        await sync.start(table)
        keys = list(table)
        latencies, requests_per_change, sends_per_change = [], [], []
        current = table
        for i in range(changes):
            key = keys[(i * 97) % len(keys)]
            dest = list(current[key].dests.values())[i % n_rs]
            changed = current.with_dest(key, replace(dest, weight=dest.weight + 10))
            requests, sends = backend.requests_sent, backend.sends
            start = time.perf_counter()
            ops = await sync.set_desired(changed)
            latencies.append(time.perf_counter() - start)
            requests_per_change.append(backend.requests_sent - requests)
            sends_per_change.append(backend.sends - sends)
            assert len(ops) == 1, ops
            current = changed
            await asyncio.sleep(0)
        await sync.stop(clear=False)
        assert plan(current, await backend.read_table()) == []
        med, worst = statistics.median(latencies), max(latencies)
        p90 = statistics.quantiles(latencies, n=10)[-1]
        one_request = set(requests_per_change) == {1} and set(sends_per_change) == {1}
        print(
            f"one weight change ({changes}x)   median {med * 1000:6.2f} ms   p90 {p90 * 1000:6.2f} ms   "
            f"max {worst * 1000:6.2f} ms   "
            f"netlink requests per change: {sorted(set(requests_per_change))}, sends: {sorted(set(sends_per_change))}"
        )

        # reading it back
        start = time.perf_counter()
        await backend.read_table()
        t_read = time.perf_counter() - start
        task: asyncio.Future[object] = asyncio.ensure_future(backend.read_stats())
        start = time.perf_counter()
        stall = await loop_stall(task)
        await task
        t_stats = time.perf_counter() - start
        t_list = ipvsadm("-Ln")
        print(f"ipvsadm -Ln                  {t_list:8.3f} s")
        print(f"KernelBackend.read_table     {t_read:8.3f} s   ratio {t_read / t_list:.2f}x")
        print(
            f"KernelBackend.read_stats     {t_stats:8.3f} s   ratio {t_stats / t_list:.2f}x   "
            f"longest event-loop stall {stall * 1000:.1f} ms"
        )
        ipvsadm("-C")
    finally:
        await backend.close()

    ok_change = one_request and worst <= 0.020
    ok_apply = s <= 3 * a and b <= 3 * a
    print(f"target one-weight change: 1 request and <= 20 ms: {'met' if ok_change else 'NOT met'}")
    print(f"target initial apply <= 3x ipvsadm -R: {'met' if ok_apply else 'NOT met'}")
    return 0 if ok_change and ok_apply else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vs", type=int, default=1000)
    parser.add_argument("--rs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2, help="loads of each kind (the best counts)")
    parser.add_argument("--changes", type=int, default=50, help="single weight changes to time")
    args = parser.parse_args()
    if not Path("/proc/net/ip_vs").exists():
        print(
            "bench/reconcile.py: no ip_vs here; run it in the guest: "
            "bash tests/kernel/guest.sh .venv/bin/python bench/reconcile.py",
            file=sys.stderr,
        )
        return 2
    return asyncio.run(bench(args.vs, args.rs, args.rounds, args.changes))


if __name__ == "__main__":
    sys.exit(main())
