#!/usr/bin/env python3
"""Health checks at scale: N real TCP servers checked every second by one lvsconsole process.

A child process binds N listening sockets, one per address, on one port, and accepts and closes every
connection. Where they live is the ``--topology``:

* ``netns`` (the default when root): the listeners in namespace ``lvscs-rs``, their addresses
  (10.201.x.y) on its end of a veth pair, the checker in ``lvscs-dir`` with a route to them over the pair,
  as a director reaches its real servers over a link. The listener process is pinned to CPU 1 and the
  receive processing of the listener-side veth is steered there too (RPS, ``rps_cpus``), the checker is
  pinned to CPU 0: the kernel's work for the real servers (SYN handling, child sockets, accept) is then
  not charged to the checker, as on a real director. The namespaces go on every way out.
* ``loopback``: the listeners on 127.1.x.y in this namespace (all of 127/8 is local on Linux). The kernel
  does the listener's side of each handshake in softirq inside the checker's connect() and charges it to
  the checker (about half its kernel time): an upper bound on the director's cost, not its figure.

The parent loads a keepalived.conf with N/10 virtual servers of 10 real servers each (TCP_CHECK,
delay_loop 1 s, connect_timeout 3 s, retry 1) and runs the real check service on it: config → from_config
→ CheckPolicy → CheckRunner → TcpChecker, with the director's flight recorder (check/recorder.py)
listening to every check. After a warm-up (bootstrap delay plus the warmup spread) it measures, over
``--seconds``:

* checks/s sustained (completed checks in the window / window length), and how many failed;
* lateness of each check against its schedule (start time minus due time): p50, p99, max;
* CPU seconds (user + system, this process only, resource.getrusage) per 1,000 checks, and the share of
  one core; the listener's accepts/s as an outside count of the same checks;
* what else ran on the checker's CPU during the window (/proc/stat of CPU 0 minus the checker's own CPU;
  more than 10 % is flagged LOADED), where the NET_RX softirqs ran (/proc/softirqs per CPU: with RPS
  most are on CPU 1), and the machine's busy time. Throughput and lateness need the core to be ours;
  CPU per 1,000 checks does not (much), and is the figure to compare across runs.

The run is bounded (SIGALRM; the bound is printed first) and a SIGTERM also tears the namespaces down.

Target (issue 4): 10,000 checks/s sustained on one core with p99 lateness <= 50 ms.

Anchor: keepalived's own checker, run against the same listeners, needs IPVS (its checker process
programs the table and exits without it). On a kernel with ip_vs (the QEMU guest of the kernel tier) the
script runs ``keepalived -n -C`` on an equivalent config for the same window and prints checks per
CPU-second for both and their ratio (keepalived's CPU is its checker child's, from /proc/<pid>/stat);
elsewhere it says that the anchor is unavailable, and why. In the netns topology keepalived runs in
``lvscs-dir``, pinned to CPU 0, against the same listeners, as ours does. The guest is software-emulated and about two
hundred times slower than this machine: use ``--n 100`` there (N = 1,000 already overruns it), e.g.
``bash tests/kernel/guest.sh .venv/bin/python bench/checks_scale.py --n 100 --seconds 30 --warm 10``.

Usage: bench/checks_scale.py [--n 1000] [--seconds 60] [--topology netns|loopback] [--no-rps] [--no-anchor]
                             [--port 8080] [--concurrency 1024] [--warm 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import math
import os
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lvsconsole.lab.netns import Lab  # noqa: E402 - after the path above

RS_PER_VS = 10
TARGET_RATE = 10_000
TARGET_P99 = 0.050


CHECKER_CPU = 0
LISTENER_CPU = 1
LAB_PREFIX = "lvscs-"
DIRECTOR_LINK = ("10.250.0.1", "10.250.0.2")
"""The veth pair's addresses (/30): director side, listener side."""


def address(i: int, topology: str = "loopback") -> str:
    """The i-th real server's address: a loopback alias (all of 127/8 is local on Linux) or, in the netns
    topology, an address of the listener namespace's end of the veth pair, routed to from the checker's."""
    if topology == "netns":
        return f"10.201.{i // 250}.{i % 250 + 1}"
    return f"127.1.{i // 250}.{i % 250 + 1}"


def raise_nofile(need: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, need)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


# ---- the topology -------------------------------------------------------------------------------------


class Topology:
    """Loopback: the listeners on 127.1.x.y in this namespace. The kernel then does the listener's side of
    every handshake (SYN handling, child socket creation) in softirq on the *sending* CPU, inside the
    checker's connect(), and charges it to the checker: on a real director that work is the real servers'.

    Each process is pinned (checker on CPU 0, listeners on CPU 1) when there are two CPUs, so that CPU 0's
    busy time during the window is the checker's plus whatever else ran there."""

    name = "loopback"

    def __init__(self, n: int, *, rps: bool = True) -> None:
        self.n = n
        self.steer = rps
        two = (os.cpu_count() or 1) >= 2 and {CHECKER_CPU, LISTENER_CPU} <= os.sched_getaffinity(0)
        self.checker_cpu: int | None = CHECKER_CPU if two else None
        self.listener_cpu: int | None = LISTENER_CPU if two else None
        self.rps = ""
        """The listener-side veth's rps_cpus as read back (netns only)."""

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def describe(self, port: int) -> str:
        return f"TCP listeners on 127.1.x.y:{port}, loopback in this namespace"

    def listener_argv(self, argv: list[str]) -> list[str]:
        return argv

    def entered(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def checker_argv(self, argv: list[str]) -> list[str]:
        return argv


class NetnsTopology(Topology):
    """The listeners in namespace ``lvscs-rs`` (addresses on its end of the veth), the checker in ``lvscs-dir``,
    one veth pair between them (10.250.0.0/30) and a route to the listeners' 10.201.0.0/16 through it. The
    listener-side veth's receive processing is steered to the listener's CPU (RPS on its rx-0), so what the
    kernel does for the real servers is not done on the checker's CPU. Both namespaces are deleted on every
    way out (the lab's context, and a leftover lab of a killed run is removed on entry)."""

    name = "netns"

    def __enter__(self) -> NetnsTopology:
        self.lab = Lab(LAB_PREFIX).__enter__()
        try:
            self.director, self.servers = self.lab.node("dir"), self.lab.node("rs")
            d_addr, r_addr = DIRECTOR_LINK
            self.lab.pair(self.director, self.servers, "d0", "r0", [f"{d_addr}/30"], [f"{r_addr}/30"])
            # On the veth itself: the host kernel here has no dummy driver, and the route makes them as remote.
            self.servers.batch(f"addr add {address(i, 'netns')}/32 dev r0" for i in range(self.n))
            self.director.ip("route", "add", "10.201.0.0/16", "via", r_addr)
            if self.listener_cpu is not None and self.steer:
                mask = f"{1 << self.listener_cpu:x}"
                self.rps = self.servers.write_sysfs("/sys/class/net/r0/queues/rx-0/rps_cpus", mask)
        except BaseException:
            self.lab.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.lab.close()

    def describe(self, port: int) -> str:
        steer = f"rx of the listener-side veth steered by RPS (rps_cpus={self.rps})" if self.rps else "no RPS"
        return (
            f"TCP listeners on 10.201.x.y:{port} in netns {LAB_PREFIX}rs (on its veth r0), checker in {LAB_PREFIX}dir, "
            f"one veth pair between them; {steer}"
        )

    def listener_argv(self, argv: list[str]) -> list[str]:
        return self.servers.exec_argv(argv)

    def entered(self) -> contextlib.AbstractContextManager[None]:
        return self.director.entered()

    def checker_argv(self, argv: list[str]) -> list[str]:
        return self.director.exec_argv(argv)


# ---- the listeners (child process) ------------------------------------------------------------------


def serve(n: int, port: int, topology: str) -> None:
    """Bind n listeners, say READY, accept-and-close until stdin closes; answer "COUNT" with the count."""
    limit = raise_nofile(n + 64)
    if limit < n + 16:
        print(f"ERROR fd limit {limit} is too low for {n} listeners", flush=True)
        return
    sel = selectors.DefaultSelector()
    listeners = []
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((address(i, topology), port))
        s.listen(256)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, None)
        listeners.append(s)
    stdin = sys.stdin.buffer.raw  # type: ignore[union-attr]
    os.set_blocking(stdin.fileno(), False)
    sel.register(stdin, selectors.EVENT_READ, "ctl")
    print("READY", flush=True)
    accepted = 0
    pending = b""
    while True:
        for key, _ in sel.select():
            if key.data == "ctl":
                data = stdin.read(4096)
                if not data:
                    return
                pending += data
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if line.strip() == b"COUNT":
                        print(accepted, flush=True)
                continue
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            while True:
                try:
                    conn, _ = sock.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                conn.close()
                accepted += 1


def pin(cpu: int | None) -> Callable[[], None] | None:
    """A preexec_fn that pins the child to ``cpu`` (None: leave it be)."""
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


class Listeners:
    def __init__(self, n: int, port: int, topology: Topology) -> None:
        argv = [sys.executable, __file__, "--serve", "--n", str(n), "--port", str(port), "--topology", topology.name]
        self.proc = subprocess.Popen(
            topology.listener_argv(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            preexec_fn=pin(topology.listener_cpu),  # (no threads yet in this process)
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if line != "READY":
            self.close()
            raise SystemExit(f"listener process failed: {line or 'no output'}")

    def count(self) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(b"COUNT\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---- the config ---------------------------------------------------------------------------------------


def config_text(n: int, port: int, delay_loop: float, connect_timeout: float, topology: str = "loopback") -> str:
    lines = ["global_defs {", "    router_id CHECKS_SCALE", "}"]
    for v in range((n + RS_PER_VS - 1) // RS_PER_VS):
        lines += [
            f"virtual_server 10.{100 + v // 250}.{v % 250}.1 {port} {{",
            f"    delay_loop {delay_loop:g}",
            "    lb_algo wrr",
            "    lb_kind NAT",
            "    protocol TCP",
        ]
        for i in range(v * RS_PER_VS, min(n, (v + 1) * RS_PER_VS)):
            lines += [
                f"    real_server {address(i, topology)} {port} {{",
                "        weight 1",
                "        TCP_CHECK {",
                f"            connect_timeout {connect_timeout:g}",
                "            retry 1",
                "            delay_before_retry 1",
                "        }",
                "    }",
            ]
        lines.append("}")
    return "\n".join(lines) + "\n"


# ---- our run ----------------------------------------------------------------------------------------------


@dataclass
class Result:
    checks: int = 0
    failures: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    accepts: int = 0
    lateness: list[float] = field(default_factory=list)
    sys_cpu: float = 0.0
    machine_busy: float = 0.0
    """CPU-seconds all CPUs spent busy (user, system, irq, softirq, steal) during the window."""
    listener_cpu: float = 0.0
    tree_cpu: float = 0.0
    """keepalived only: CPU-seconds of its whole process tree (parent and checker child)."""
    cpu0: CpuShare = field(default_factory=lambda: CpuShare(0.0, 0.0))
    """The checker's CPU over the window (all of it, with the checker pinned there)."""
    cpu1: CpuShare = field(default_factory=lambda: CpuShare(0.0, 0.0))
    """The listeners' CPU over the window (they and the steered receive processing run there)."""
    net_rx: dict[str, int] = field(default_factory=dict)
    """NET_RX softirqs per CPU over the window (/proc/softirqs): where the receive processing ran."""


@dataclass(frozen=True)
class CpuShare:
    busy: float
    """CPU-seconds busy (user, nice, system, irq, softirq, steal)."""
    irq: float
    """Of which hard and soft interrupt time (as far as the kernel accounts it separately)."""

    def __sub__(self, other: CpuShare) -> CpuShare:
        return CpuShare(self.busy - other.busy, self.irq - other.irq)


def cpu_share(cpu: int | None) -> CpuShare:
    """Busy CPU-seconds so far of one CPU (None: the checker is not pinned, so of none)."""
    if cpu is None:
        return CpuShare(0.0, 0.0)
    tick = os.sysconf("SC_CLK_TCK")
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in line.split()[1:9])
            return CpuShare((user + nice + system + irq + softirq + steal) / tick, (irq + softirq) / tick)
    return CpuShare(0.0, 0.0)


def net_rx_softirqs() -> dict[str, int]:
    lines = Path("/proc/softirqs").read_text().splitlines()
    cpus = lines[0].split()
    for line in lines[1:]:
        if line.split(":", 1)[0].strip() == "NET_RX":
            return dict(zip(cpus, (int(x) for x in line.split()[1:]), strict=False))
    return {}


def machine_busy() -> float:
    """Busy CPU-seconds of the whole machine so far (from /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def cpu_now() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def sys_now() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    k = max(0, min(len(values) - 1, int(q * len(values) + 0.999999) - 1))
    return values[k]


async def run_ours(
    text: str, listeners: Listeners, warm: float, seconds: float, concurrency: int, topology: Topology
) -> Result:
    from lvsconsole.check.recorder import CheckRecorder
    from lvsconsole.check.runner import CheckRecord
    from lvsconsole.check.service import CheckService
    from lvsconsole.config.build import load_text

    result = load_text(text)
    errors = [str(d) for d in result.diagnostics if d.is_error]
    if errors:
        raise SystemExit("config errors:\n" + "\n".join(errors[:5]))
    out = Result()
    measuring = False

    def on_record(rec: CheckRecord) -> None:
        if measuring:
            out.lateness.append(rec.lateness)
            if not rec.outcome.ok:
                out.failures += 1

    service = CheckService(result.config, None, max_concurrency=concurrency, run_notifies=False)
    service.add_record_listener(on_record)
    service.add_record_listener(CheckRecorder().record)  # the director's flight recorder sees every check too
    await service.start()
    gc.collect()
    gc.freeze()  # as `lvsconsole run` does once its config is loaded (engine/daemon.py serve())
    try:
        await asyncio.sleep(warm)
        loop = asyncio.get_running_loop()
        m0, l0, s0 = machine_busy(), process_cpu(listeners.proc.pid), sys_now()
        k0, j0, r0 = cpu_share(topology.checker_cpu), cpu_share(topology.listener_cpu), net_rx_softirqs()
        c0, t0, a0, n0 = cpu_now(), loop.time(), listeners.count(), service.runner.stats.checks
        measuring = True
        await asyncio.sleep(seconds)
        measuring = False
        c1, t1, a1, n1 = cpu_now(), loop.time(), listeners.count(), service.runner.stats.checks
        m1, l1, s1 = machine_busy(), process_cpu(listeners.proc.pid), sys_now()
        k1, j1, r1 = cpu_share(topology.checker_cpu), cpu_share(topology.listener_cpu), net_rx_softirqs()
    finally:
        await service.stop(shutdown=False)
    out.checks, out.wall, out.cpu, out.accepts = n1 - n0, t1 - t0, c1 - c0, a1 - a0
    out.machine_busy, out.listener_cpu, out.sys_cpu = m1 - m0, l1 - l0, s1 - s0
    out.cpu0, out.cpu1, out.net_rx = k1 - k0, j1 - j0, {cpu: r1[cpu] - r0.get(cpu, 0) for cpu in r1}
    return out


# ---- keepalived's run (where IPVS exists) --------------------------------------------------------------------


def anchor_unavailable() -> str | None:
    if shutil.which("keepalived") is None:
        return "keepalived is not installed"
    if not Path("/proc/net/ip_vs").exists():
        return (
            "this kernel has no ip_vs (/proc/net/ip_vs is missing) and keepalived's checker needs IPVS; "
            "run this script inside the QEMU guest of the kernel tier (tests/kernel) for the anchor"
        )
    if os.geteuid() != 0:
        return "keepalived's checker needs root to program IPVS"
    return None


def _proc_tree_cpu(root: int) -> float:
    """user+system CPU seconds of a process and its descendants (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(stat[11]) + int(stat[12])) / tick
            for task in Path(f"/proc/{pid}/task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(c) for c in children)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids.extend(int(c) for c in (task / "children").read_text().split())
    return kids


def _checker_child(proc: subprocess.Popen[bytes], limit: float) -> int:
    """The pid of keepalived's checker child (``-C``: the only child), once it exists (a slow machine may
    take a while to parse the config and fork it)."""
    deadline = time.monotonic() + limit
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"keepalived exited with status {proc.returncode}")
        children = _children(proc.pid)
        if len(children) == 1:
            return children[0]
        if time.monotonic() > deadline:
            raise RuntimeError(f"expected one checker child of keepalived -C after {limit:g} s, found {children}")
        time.sleep(0.2)


def run_keepalived(text: str, listeners: Listeners, warm: float, seconds: float, topology: Topology) -> Result:
    """keepalived's checker on the same listeners; its CPU is the checker child's (/proc/<pid>/stat), with
    the whole tree's beside it (the parent only watches its children)."""
    with tempfile.TemporaryDirectory(prefix="checks-scale-") as d:
        conf = Path(d) / "keepalived.conf"
        conf.write_text(text)
        argv = [
            "keepalived", "-n", "-C", "-l", "-f", str(conf), "-p", f"{d}/k.pid", "-c", f"{d}/c.pid",
        ]  # fmt: skip
        proc = subprocess.Popen(
            topology.checker_argv(argv),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=pin(topology.checker_cpu),  # (the event loop has stopped: no threads)
        )
        try:
            time.sleep(warm + 2.0)  # keepalived's own start-up (IPVS programming) plus the warm-up
            if proc.poll() is not None:
                raise RuntimeError(f"keepalived exited with status {proc.returncode}")
            checker = _checker_child(proc, limit=120.0)
            c0, t0, a0, p0 = process_cpu(checker), time.monotonic(), listeners.count(), _proc_tree_cpu(proc.pid)
            k0 = cpu_share(topology.checker_cpu)
            time.sleep(seconds)
            c1, t1, a1, p1 = process_cpu(checker), time.monotonic(), listeners.count(), _proc_tree_cpu(proc.pid)
            k1 = cpu_share(topology.checker_cpu)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    # keepalived does not report its checks: the listener's accepts are its TCP_CHECKs.
    return Result(checks=a1 - a0, wall=t1 - t0, cpu=c1 - c0, accepts=a1 - a0, tree_cpu=p1 - p0, cpu0=k1 - k0)


# ---- report -------------------------------------------------------------------------------------------------


def others_on_checker_cpu(result: Result, topology: Topology) -> str:
    """What else ran on the checker's CPU during the window (it is pinned there, so busy minus its own CPU)."""
    if topology.checker_cpu is None:
        return "checker not pinned (fewer than 2 CPUs usable): no per-CPU figure"
    others = max(0.0, result.cpu0.busy - result.cpu)
    wall = result.wall or 1.0
    return (
        f"CPU {topology.checker_cpu} busy {result.cpu0.busy / wall:.0%} of the window: "
        f"checker {result.cpu / wall:.0%}, "
        f"others {others / wall:.0%} (irq+softirq accounted {result.cpu0.irq / wall:.0%})"
        + ("  << LOADED: figures other than CPU per 1,000 checks are suspect" if others / wall > 0.10 else "")
    )


def report(args: argparse.Namespace, ours: Result, topology: Topology) -> None:
    rate = ours.checks / ours.wall if ours.wall else 0.0
    p50, p99 = percentile(ours.lateness, 0.50), percentile(ours.lateness, 0.99)
    worst = max(ours.lateness, default=0.0)
    per_k = ours.cpu / ours.checks * 1000 if ours.checks else float("nan")
    core = ours.cpu / ours.wall if ours.wall else 0.0
    pins = (
        f"checker pinned to CPU {topology.checker_cpu}, listeners to CPU {topology.listener_cpu}"
        if topology.checker_cpu is not None
        else "nothing pinned"
    )
    print(
        f"checks_scale: N={args.n} real servers, TCP_CHECK every {args.delay_loop:g} s, measured {ours.wall:.1f} s "
        f"after {args.warm:g} s warm-up"
    )
    print(f"  topology              {topology.name}: {topology.describe(args.port)}; {pins}")
    asked = args.n / args.delay_loop
    print(f"  checks                {ours.checks} = {rate:,.0f}/s sustained (schedule asks {asked:,.0f}/s)")
    print(f"  failed checks         {ours.failures}")
    print(f"  lateness p50 / p99    {p50 * 1e3:.2f} ms / {p99 * 1e3:.2f} ms (max {worst * 1e3:.1f} ms)")
    print(
        f"  checker CPU           {ours.cpu:.2f} s (user {ours.cpu - ours.sys_cpu:.2f}, sys {ours.sys_cpu:.2f}) = "
        f"{per_k:.3f} s per 1,000 checks ({core:.0%} of one core)"
    )
    accepts = ours.accepts / ours.wall if ours.wall else 0.0
    print(f"  listener accepts      {accepts:,.0f}/s ({ours.listener_cpu:.2f} CPU s)")
    print(f"  checker's CPU         {others_on_checker_cpu(ours, topology)}")
    if topology.listener_cpu is not None:
        wall = ours.wall or 1.0
        busy = ours.cpu1.busy / wall
        print(
            f"  listeners' CPU        CPU {topology.listener_cpu} busy {busy:.0%} of the window (listener process "
            f"{ours.listener_cpu / wall:.0%}, the rest its receive processing and other jobs)"
            + ("  << SATURATED: the real servers answer late, so checks wait in flight" if busy > 0.95 else "")
        )
    if ours.net_rx:
        wall = ours.wall or 1.0
        per_cpu = ", ".join(f"{cpu} {count / wall:,.0f}/s" for cpu, count in ours.net_rx.items())
        print(f"  NET_RX softirqs       {per_cpu} (where packet receive processing ran)")
    ncpu = os.cpu_count() or 1
    others = max(0.0, ours.machine_busy - ours.cpu - ours.listener_cpu)
    load1 = Path("/proc/loadavg").read_text().split()[0]
    print(
        f"  machine               {ncpu} CPUs, load average {load1}; busy {ours.machine_busy:.1f} CPU s of "
        f"{ncpu * ours.wall:.1f}, of which {others:.1f} s neither the checker nor the listener (kernel "
        f"softirq work, other jobs)"
    )
    cap = 1000 / per_k if per_k == per_k and per_k > 0 else 0.0
    kept = rate >= asked * 0.97
    print(
        f"  target                {TARGET_RATE:,} checks/s on one core with p99 lateness <= {TARGET_P99 * 1e3:.0f} ms;"
        f" here the schedule was {'kept' if kept else 'NOT kept'} with p99 {p99 * 1e3:.1f} ms"
        f" ({'within' if p99 <= TARGET_P99 else 'over'} the bound), and the checker's CPU cost"
        f" extrapolates to ~{cap:,.0f} checks per core-second"
    )


def report_anchor(ours: Result, theirs: Result, topology: Topology) -> None:
    ours_eff = ours.checks / ours.cpu if ours.cpu else 0.0
    theirs_eff = theirs.checks / theirs.cpu if theirs.cpu else float("inf")
    per_k = theirs.cpu / theirs.checks * 1000 if theirs.checks else float("nan")
    our_k = ours.cpu / ours.checks * 1000 if ours.checks else float("nan")
    print(
        f"keepalived anchor ({topology.name} topology): {theirs.checks / theirs.wall:,.0f} checks/s, checker child "
        f"{theirs.cpu:.2f} CPU s (whole keepalived tree {theirs.tree_cpu:.2f}) = {theirs_eff:,.0f} checks per "
        f"CPU-second ({per_k:.3f} s per 1,000); ours {ours_eff:,.0f} ({our_k:.3f} s per 1,000); "
        f"ours / keepalived = {ours_eff / theirs_eff:.2f}"
    )
    print(f"  keepalived's CPU      {others_on_checker_cpu(theirs, topology)}")


def _bounded(seconds: float) -> None:
    """Stop the whole run (namespaces torn down on the way out) if it overruns ``seconds``, or on SIGTERM."""

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(f"checks_scale: stopped by signal {signum} (the run is bounded to {seconds:.0f} s)")

    signal.signal(signal.SIGALRM, stop)
    signal.signal(signal.SIGTERM, stop)
    signal.alarm(max(1, math.ceil(seconds)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--n", type=int, default=1000, help="real servers (listeners), default 1000")
    ap.add_argument("--seconds", type=float, default=60.0, help="measured window, default 60")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--delay-loop", type=float, default=1.0)
    ap.add_argument("--connect-timeout", type=float, default=3.0)
    ap.add_argument("--concurrency", type=int, default=1024, help="max checks in flight")
    ap.add_argument("--warm", type=float, default=3.0, help="seconds before measuring (bootstrap + warmup spread)")
    ap.add_argument(
        "--topology",
        choices=("netns", "loopback"),
        default="netns" if os.geteuid() == 0 else "loopback",
        help="where the listeners live (default netns when root, else loopback; see the module docstring)",
    )
    ap.add_argument("--no-rps", action="store_true", help="netns: leave the listener-side veth's rx unsteered")
    ap.add_argument("--no-anchor", action="store_true", help="do not run keepalived even where IPVS exists")
    ap.add_argument("--bound", type=float, default=0.0, help="stop after this many seconds (default: from the run)")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.n, args.port, args.topology)
        return
    limit = raise_nofile(args.concurrency + 256)
    if limit < args.concurrency + 64:
        raise SystemExit(f"fd limit {limit} is too low for --concurrency {args.concurrency}")
    why = "disabled (--no-anchor)" if args.no_anchor else anchor_unavailable()
    runs = 1 if why is not None else 2
    # set-up (addresses, listeners: a few seconds at N=10,000) + each run's warm-up, window and slack
    bound = args.bound or 60 + args.n / 500 + runs * (args.warm + args.seconds + 30) + (150 if runs == 2 else 0)
    _bounded(bound)
    text = config_text(args.n, args.port, args.delay_loop, args.connect_timeout, args.topology)
    kind = NetnsTopology if args.topology == "netns" else Topology
    print(f"checks_scale: {args.topology} topology, N={args.n}, about {runs * (args.warm + args.seconds):.0f} s of "
          f"runs, bounded to {bound:.0f} s", flush=True)
    with kind(args.n, rps=not args.no_rps) as topology:
        listeners = Listeners(args.n, args.port, topology)
        try:
            if topology.checker_cpu is not None:
                os.sched_setaffinity(0, {topology.checker_cpu})
            with topology.entered():
                ours = asyncio.run(
                    run_ours(text, listeners, args.warm, args.seconds, args.concurrency, topology)
                )
            report(args, ours, topology)
            if why is not None:
                print(f"keepalived anchor: unavailable - {why}")
                return
            theirs = run_keepalived(text, listeners, args.warm, args.seconds, topology)
            report_anchor(ours, theirs, topology)
        finally:
            listeners.close()


if __name__ == "__main__":
    main()
