"""vrrp_track_process: whether enough matching processes run, as keepalived's track_process.c decides it.

    vrrp_track_process haproxy {
        process haproxy              # name (/proc/PID/comm), or path + parameters (argv)
        param_match partial          # initial | partial; exact when parameters are given without it
        weight -20 [reverse]         # default 1; the arithmetic is track_script's (tracking.up_down_effect)
        quorum 1                     # minimum number of matching processes (default 1)
        quorum_max 1                 # maximum (default: no limit; 0 = must not run at all)
        fork_delay 0.5               # a quorum change caused by a new process counts only this much later
        terminate_delay 0.5          # one caused by a process ending, likewise; `delay` sets both
        full_command                 # match the whole command line (argv joined by spaces)
    }

Matching (keepalived's check_process): without parameters or ``param_match`` the process name is compared
with /proc/PID/comm (the kernel keeps its first 15 characters); with them argv[0] must equal the path and
the parameters must match exactly, as a prefix list (``partial``) or as a prefix of the NUL-joined parameter
string (``initial``: the last one may be longer); ``full_command`` compares the whole command line.

Pure parts: :func:`parse_track_process` and :func:`track_process_refs` read the keywords as the config keeps
them (raw words), :func:`matches`, :class:`QuorumCounter` and :class:`ProcessTracker` (a process table fed
with scans and kernel events, time given as an argument, status changes returned). The adapter
:class:`ProcessWatcher` feeds it from the kernel's proc connector (netlink; events within microseconds of
an exec or exit, as keepalived does) when the process may listen to it: root in the initial network
namespace. Elsewhere (e.g. inside a network namespace, where the connector refuses subscriptions) it scans
/proc every :data:`SCAN_INTERVAL` seconds. With the connector a full scan still runs every
:data:`RESCAN_INTERVAL` seconds, and at once when the kernel reports lost events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from lvsconsole.config import model as m

log = logging.getLogger("lvsconsole.vrrp")

SCAN_INTERVAL = 1.0
"""Seconds between /proc scans when the proc connector is not available."""
RESCAN_INTERVAL = 10.0
"""Seconds between safety-net /proc scans while proc connector events arrive."""
COMM_LEN = 15
"""The kernel keeps this many characters of a process name (TASK_COMM_LEN - 1)."""
WEIGHT_LIMIT = 254

ParamMatch = Literal["exact", "partial", "initial"]
StatusChange = tuple[str, bool]
"""(vrrp_track_process name, quorum now held)."""


# -------------------------------------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """One vrrp_track_process block."""

    name: str
    process: tuple[str, ...]
    param_match: ParamMatch | None = None
    weight: int = 1
    reverse: bool = False
    quorum: int = 1
    quorum_max: int | None = None
    fork_delay: float = 0.0
    terminate_delay: float = 0.0
    full_command: bool = False

    def __post_init__(self) -> None:
        if not self.process or not self.process[0]:
            raise ValueError(f"vrrp_track_process {self.name} has no process")
        if not -WEIGHT_LIMIT <= self.weight <= WEIGHT_LIMIT:
            raise ValueError(f"vrrp_track_process {self.name}: weight {self.weight} not in -254..254")
        if self.quorum < 0 or (self.quorum_max is not None and self.quorum_max < self.quorum):
            raise ValueError(f"vrrp_track_process {self.name}: quorum {self.quorum} and quorum_max "
                             f"{self.quorum_max} do not make a range")
        if self.fork_delay < 0 or self.terminate_delay < 0:
            raise ValueError(f"vrrp_track_process {self.name}: delays cannot be negative")


@dataclass(frozen=True, slots=True)
class ProcessRef:
    """An entry of an instance's (or sync group's) track_process block: None weight means the block's."""

    name: str
    weight: int | None = None
    reverse: bool = False


def _statements(words: Sequence[str]) -> Iterator[list[str]]:
    """The raw words of a block's body, ``{ a b ; c ; }``, as statements."""
    current: list[str] = []
    for word in words:
        if word in ("{", "}", ";"):
            if current:
                yield current
            current = []
        else:
            current.append(word)
    if current:
        yield current


def _number(keyword: str, args: list[str], name: str) -> float:
    if len(args) != 1:
        raise ValueError(f"vrrp_track_process {name}: '{keyword}' takes one value")
    try:
        value = float(args[0])
    except ValueError:
        raise ValueError(f"vrrp_track_process {name}: '{keyword}' {args[0]!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"vrrp_track_process {name}: '{keyword}' {args[0]!r} is not a number")
    return value


def _weight(args: list[str], what: str) -> tuple[int, bool]:
    if not args:
        raise ValueError(f"{what}: 'weight' needs a value")
    try:
        weight = int(args[0])
    except ValueError:
        raise ValueError(f"{what}: weight {args[0]!r} is not an integer") from None
    if not -WEIGHT_LIMIT <= weight <= WEIGHT_LIMIT:
        raise ValueError(f"{what}: weight {weight} not in -254..254")
    direction = args[1] if len(args) > 1 else "noreverse"
    if direction not in ("reverse", "noreverse") or len(args) > 2:
        raise ValueError(f"{what}: unexpected {' '.join(args[1:])!r} after the weight")
    return weight, direction == "reverse"


def parse_track_process(words: Sequence[str]) -> ProcessSpec:
    """A ``vrrp_track_process NAME { ... }`` block from its raw words (NAME first). ValueError if invalid."""
    if not words or words[0] in ("{", "}", ";"):
        raise ValueError("vrrp_track_process needs a name")
    name = words[0]
    values: dict[str, Any] = {}
    for keyword, *args in _statements(words[1:]):
        if keyword == "process":
            values["process"] = tuple(args)
        elif keyword == "param_match":
            if args not in (["initial"], ["partial"]):
                raise ValueError(f"vrrp_track_process {name}: param_match must be 'initial' or 'partial'")
            values["param_match"] = args[0]
        elif keyword == "weight":
            values["weight"], values["reverse"] = _weight(args, f"vrrp_track_process {name}")
        elif keyword in ("quorum", "quorum_max"):
            number = _number(keyword, args, name)
            if number != int(number) or number < 0:
                raise ValueError(f"vrrp_track_process {name}: '{keyword}' must be a whole number")
            values[keyword] = int(number)
        elif keyword in ("delay", "fork_delay", "terminate_delay"):
            seconds = _number(keyword, args, name)
            for key in (("fork_delay", "terminate_delay") if keyword == "delay" else (keyword,)):
                values[key] = seconds
        elif keyword == "full_command":
            values["full_command"] = not args or args[0].lower() not in ("false", "no", "off", "0")
        # any other keyword: keepalived logs "Unknown keyword" and goes on; the config builder reports it with its
        # location (an error under --strict), so the block stays valid here
    if not values.get("process"):
        raise ValueError(f"vrrp_track_process {name} has no process")
    if "param_match" not in values and len(values["process"]) > 1:
        values["param_match"] = "exact"
    return ProcessSpec(name=name, **values)


def process_specs(config: m.Config) -> tuple[ProcessSpec, ...]:
    """Every valid vrrp_track_process block of ``config`` (an invalid one is logged and skipped)."""
    out = []
    for keyword, words in config.extra:
        if keyword != "vrrp_track_process":
            continue
        try:
            out.append(parse_track_process(words))
        except ValueError as exc:
            log.error("%s", exc)
    return tuple(out)


def track_process_refs(extra: m.Extra) -> tuple[ProcessRef, ...]:
    """The entries of the ``track_process { ... }`` blocks among an instance's or sync group's raw keywords."""
    out = []
    for keyword, words in extra:
        if keyword != "track_process":
            continue
        for name, *rest in _statements(words):
            if not rest:
                out.append(ProcessRef(name))
                continue
            if rest[0] != "weight":
                raise ValueError(f"track_process {name}: unexpected {' '.join(rest)!r}")
            weight, reverse = _weight(rest[1:], f"track_process {name}")
            out.append(ProcessRef(name, weight, reverse))
    return tuple(out)


# -------------------------------------------------------------------------------------------- matching


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """What matching needs of a process: its name (/proc/PID/comm) and its argv (/proc/PID/cmdline)."""

    comm: str
    argv: tuple[str, ...]


def matches(spec: ProcessSpec, info: ProcessInfo) -> bool:
    want = spec.process
    if spec.full_command:
        return " ".join(info.argv) == " ".join(want)
    if spec.param_match is None:
        return info.comm == want[0][:COMM_LEN]
    if not info.argv or info.argv[0] != want[0]:
        return False
    wanted, have = want[1:], info.argv[1:]
    if spec.param_match == "exact":
        return have == wanted
    if spec.param_match == "partial":
        return have[:len(wanted)] == wanted
    return "\0".join(have).startswith("\0".join(wanted))


# -------------------------------------------------------------------------------------------- counting


class QuorumCounter:
    """Quorum of one vrrp_track_process with its fork/terminate delays (sans-IO).

    A change of the count that moves the quorum waits ``fork_delay`` when the count went up (a fork, an
    exec) and ``terminate_delay`` when it went down; the status changes only if the quorum still differs
    when the delay ends. The first count (the start-up scan) sets the status at once.
    """

    def __init__(self, spec: ProcessSpec) -> None:
        self.spec = spec
        self.count = 0
        self.up: bool | None = None
        self._pending: tuple[float, bool] | None = None

    def quorate(self, count: int) -> bool:
        spec = self.spec
        return spec.quorum <= count and (spec.quorum_max is None or count <= spec.quorum_max)

    def set_count(self, count: int, now: float) -> bool | None:
        """The number of matching processes is now ``count``; returns the new status if it changed now."""
        old, self.count = self.count, count
        want = self.quorate(count)
        if self.up is None:
            self.up = want
            return want
        if want == self.up:
            self._pending = None
            return None
        delay = self.spec.fork_delay if count > old else self.spec.terminate_delay
        if delay <= 0:
            self._pending = None
            self.up = want
            return want
        if self._pending is None or self._pending[1] != want:
            self._pending = (now + delay, want)
        return None

    def next_timer(self) -> float | None:
        return self._pending[0] if self._pending is not None else None

    def handle_timer(self, now: float) -> bool | None:
        if self._pending is None or now < self._pending[0]:
            return None
        _, want = self._pending
        self._pending = None
        if want == self.up:
            return None
        self.up = want
        return want


@dataclass
class ProcessTracker:
    """The process table and one :class:`QuorumCounter` per vrrp_track_process (sans-IO).

    Feed it full scans (:meth:`load`) and the kernel's events (:meth:`exec`, :meth:`fork`, :meth:`exit`);
    each returns the status changes, as does :meth:`handle_timer` at :meth:`next_timer`. Nothing is counted
    before the first full scan.
    """

    specs: tuple[ProcessSpec, ...] = ()
    _loaded: bool = False
    _table: dict[int, ProcessInfo] = field(default_factory=dict)
    _matching: dict[str, set[int]] = field(default_factory=dict)
    _counters: dict[str, QuorumCounter] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.configure(self.specs, 0.0)

    def configure(self, specs: Iterable[ProcessSpec], now: float) -> list[StatusChange]:
        """Track ``specs`` (a reload); an unchanged spec keeps its counter and status."""
        self.specs = tuple(specs)
        counters = {}
        for spec in self.specs:
            old = self._counters.get(spec.name)
            counters[spec.name] = old if old is not None and old.spec == spec else QuorumCounter(spec)
        self._counters = counters
        self._matching = {spec.name: {pid for pid, info in self._table.items() if matches(spec, info)}
                          for spec in self.specs}
        return self._recount(now, only_new=True)

    def status(self, name: str) -> bool | None:
        counter = self._counters.get(name)
        return counter.up if counter is not None else None

    def count(self, name: str) -> int:
        return len(self._matching.get(name, ()))

    def load(self, table: dict[int, ProcessInfo], now: float) -> list[StatusChange]:
        """A full scan of /proc."""
        self._table = dict(table)
        self._loaded = True
        for spec in self.specs:
            self._matching[spec.name] = {pid for pid, info in self._table.items() if matches(spec, info)}
        return self._recount(now)

    def exec(self, pid: int, info: ProcessInfo | None, now: float) -> list[StatusChange]:
        """``pid`` exec'd or renamed itself (its new ``info``), or is already gone (None)."""
        if info is None:
            return self.exit(pid, now)
        self._table[pid] = info
        for spec in self.specs:
            if matches(spec, info):
                self._matching[spec.name].add(pid)
            else:
                self._matching[spec.name].discard(pid)
        return self._recount(now)

    def fork(self, parent: int, child: int, now: float) -> list[StatusChange]:
        """A new process: a copy of its parent until it execs (keepalived counts forks too)."""
        info = self._table.get(parent)
        if info is None:
            return []
        return self.exec(child, info, now)

    def exit(self, pid: int, now: float) -> list[StatusChange]:
        if self._table.pop(pid, None) is None:
            return []
        for pids in self._matching.values():
            pids.discard(pid)
        return self._recount(now)

    def next_timer(self) -> float | None:
        times = [t for c in self._counters.values() if (t := c.next_timer()) is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> list[StatusChange]:
        out = []
        for name, counter in self._counters.items():
            changed = counter.handle_timer(now)
            if changed is not None:
                out.append((name, changed))
        return out

    def _recount(self, now: float, *, only_new: bool = False) -> list[StatusChange]:
        if not self._loaded:
            return []
        out = []
        for name, counter in self._counters.items():
            if only_new and counter.up is not None:
                continue
            changed = counter.set_count(len(self._matching.get(name, ())), now)
            if changed is not None:
                out.append((name, changed))
        return out


# -------------------------------------------------------------------------------------------- /proc


def read_process(pid: int, proc: str = "/proc") -> ProcessInfo | None:
    """The name and argv of ``pid``; None if it is gone (or a kernel thread, which has no argv)."""
    try:
        with open(f"{proc}/{pid}/comm", "rb") as f:
            comm = f.read().rstrip(b"\n").decode(errors="replace")
        with open(f"{proc}/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    argv = tuple(part.decode(errors="replace") for part in raw.split(b"\0")[:-1]) if raw else ()
    return ProcessInfo(comm, argv)


def scan(proc: str = "/proc") -> dict[int, ProcessInfo]:
    """Every process (thread group) visible in ``proc``."""
    out: dict[int, ProcessInfo] = {}
    try:
        entries = os.listdir(proc)
    except OSError:
        return out
    for entry in entries:
        if entry.isdigit():
            info = read_process(int(entry), proc)
            if info is not None:
                out[int(entry)] = info
    return out


# -------------------------------------------------------------------------------------------- proc connector

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
NLMSG_DONE = 3


def open_proc_connector() -> socket.socket:
    """A non-blocking netlink socket subscribed to the kernel's process events (OSError if refused)."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
    try:
        sock.bind((0, CN_IDX_PROC))
        payload = struct.pack("=IIIIHHI", CN_IDX_PROC, CN_VAL_PROC, 0, 0, 4, 0, PROC_CN_MCAST_LISTEN)
        sock.send(struct.pack("=IHHII", 16 + len(payload), NLMSG_DONE, 0, 0, 0) + payload)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


@dataclass(frozen=True, slots=True)
class ProcEvent:
    """One process event: ``kind`` "fork" (``pid`` the child, ``parent``), "exec", "comm" or "exit"."""

    kind: Literal["fork", "exec", "comm", "exit"]
    pid: int
    parent: int = 0


_KINDS: dict[str, Literal["exec", "comm", "exit"]] = {
    "PROC_EVENT_EXEC": "exec", "PROC_EVENT_COMM": "comm", "PROC_EVENT_EXIT": "exit"}


def decode_proc_events(data: bytes) -> list[ProcEvent]:
    """The process events (of whole processes, not threads) in one netlink datagram, decoded by pyroute2."""
    from pyroute2.netlink.connector.cn_proc import ProcEventMarshal

    out: list[ProcEvent] = []
    for msg in ProcEventMarshal().parse(data):
        event = msg.get("event")
        if event == "PROC_EVENT_FORK":
            if msg.get("child_pid") == msg.get("child_tgid"):
                out.append(ProcEvent("fork", int(msg["child_tgid"]), int(msg["parent_tgid"])))
        elif event in _KINDS and msg.get("process_pid") == msg.get("process_tgid"):
            out.append(ProcEvent(_KINDS[event], int(msg["process_tgid"])))
    return out


# -------------------------------------------------------------------------------------------- the adapter


class ProcessWatcher:
    """Keeps a :class:`ProcessTracker` current on the running loop; ``on_change(name, up)`` on each change."""

    def __init__(self, specs: Iterable[ProcessSpec], on_change: Callable[[str, bool], None], *,
                 proc: str = "/proc", use_connector: bool = True) -> None:
        self.tracker = ProcessTracker(tuple(specs))
        self._on_change = on_change
        self._proc = proc
        self._use_connector = use_connector
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scanner: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def event_driven(self) -> bool:
        """True while kernel events drive the tracking (else /proc is scanned every SCAN_INTERVAL)."""
        return self._sock is not None

    def status(self, name: str) -> bool | None:
        return self.tracker.status(name)

    def start(self) -> None:
        """Scan /proc at once (so that the status is known before the instances start), then keep watching."""
        self._loop = asyncio.get_running_loop()
        if self._use_connector and self.tracker.specs:
            self._open_connector()
        self._report(self.tracker.load(scan(self._proc), self._loop.time()))
        self._scanner = self._loop.create_task(self._scan_forever(), name="vrrp track_process scan")

    def update(self, specs: Iterable[ProcessSpec]) -> None:
        """A reload: track ``specs`` from now on (unchanged ones keep their status)."""
        now = self._loop.time() if self._loop is not None else 0.0
        self._report(self.tracker.configure(specs, now))
        if self._loop is not None and self._use_connector and self.tracker.specs and self._sock is None:
            self._open_connector()
        self._rearm()

    async def stop(self) -> None:
        if self._scanner is not None:
            self._scanner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scanner
            self._scanner = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._close_connector()

    # -- inputs -------------------------------------------------------------------------------------

    def _open_connector(self) -> None:
        assert self._loop is not None
        try:
            self._sock = open_proc_connector()
        except OSError as exc:
            log.info("process events unavailable (%s): tracked processes are scanned every %gs", exc, SCAN_INTERVAL)
            return
        self._loop.add_reader(self._sock.fileno(), self._on_readable)

    def _close_connector(self) -> None:
        if self._sock is None:
            return
        if self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None

    def _on_readable(self) -> None:
        assert self._loop is not None and self._sock is not None
        while True:
            try:
                data = self._sock.recv(65536)
            except BlockingIOError:
                break
            except OSError as exc:  # ENOBUFS: events were lost, the table may be stale
                log.debug("process events lost (%s); rescanning /proc", exc)
                self._report(self.tracker.load(scan(self._proc), self._loop.time()))
                continue
            now = self._loop.time()
            for event in decode_proc_events(data):
                if event.kind == "fork":
                    self._report(self.tracker.fork(event.parent, event.pid, now))
                elif event.kind == "exit":
                    self._report(self.tracker.exit(event.pid, now))
                else:
                    self._report(self.tracker.exec(event.pid, read_process(event.pid, self._proc), now))
        self._rearm()

    async def _scan_forever(self) -> None:
        assert self._loop is not None
        while True:
            await asyncio.sleep(RESCAN_INTERVAL if self._sock is not None else SCAN_INTERVAL)
            if self.tracker.specs:
                self._report(self.tracker.load(scan(self._proc), self._loop.time()))
                self._rearm()

    # -- outputs ------------------------------------------------------------------------------------

    def _rearm(self) -> None:
        if self._loop is None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.tracker.next_timer()
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        assert self._loop is not None
        self._timer = None
        self._report(self.tracker.handle_timer(self._loop.time()))
        self._rearm()

    def _report(self, changes: list[StatusChange]) -> None:
        for name, up in changes:
            log.info("Quorum %s for tracked process %s", "gained" if up else "lost", name)
            try:
                self._on_change(name, up)
            except Exception:
                log.exception("track_process listener failed")
