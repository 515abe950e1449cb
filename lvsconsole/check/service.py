"""The check service: one config's health checks, running, with an event stream and a snapshot.

:class:`CheckService` builds the policy and the runner from a :class:`~lvsconsole.config.model.Config`
(:mod:`lvsconsole.check.from_config`), reads FILE_CHECK files before the first IPVS decision (as keepalived
reads its track files), starts the runner, and hands every batch of actions to ``apply_actions`` in order
(a plain or an async callable; an async one is awaited before the next batch). Alongside it:

* LogEvents go to subscribers (:meth:`CheckService.subscribe`, :meth:`CheckService.events`) and to a
  bounded history, in keepalived's wording ("TCP connection to [192.168.2.187]:tcp:80 failed.",
  "Removing service [192.168.2.187]:tcp:80 from VS [192.168.2.188]:tcp:80", "Gained quorum 1+0=1 <= 2 for
  VS …"); configuration warnings come first.
* notify_up / notify_down / quorum_up / quorum_down scripts run (no shell, as their user or
  ``script_user``, bounded by :data:`NOTIFY_TIMEOUT`) unless ``run_notifies`` is off; each is vetted
  (enable_script_security) and its run, or why it was refused, goes to ``report_scripts``.
* :meth:`CheckService.snapshot` reports, per virtual server, quorum and the weight sum and, per real
  server, alive/down, weights, and each checker's state, last result, lateness, whether it is stalled
  and how many (VS, RS) pairs its probe feeds.
* Stalled checks (no result for several intervals, :mod:`lvsconsole.check.stall`) are logged as
  warnings ("TCP_CHECK on [10.0.0.2]:tcp:80 in VS [10.0.0.1]:tcp:80 produced no result for 18 s"), as is
  their recovery, and reported to stall listeners (:meth:`CheckService.add_stall_listener`).

:func:`run_checks` is the headless form: run until an event is set, logging every LogEvent through
:mod:`logging` and passing every action to a callback.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import random
import resource
import shlex
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from lvsconsole.check.from_config import CheckSetup, build_checks, same_probe
from lvsconsole.check.policy import (
    BOOTSTRAP_DELAY,
    Action,
    CheckerRef,
    CheckOutcome,
    CheckPolicy,
    DestDown,
    DestUp,
    DestWeight,
    LogEvent,
    RealServerParams,
    RealServerState,
    RsRef,
    RunNotify,
    VirtualServerParams,
)
from lvsconsole.check.reload import touched_virtual_servers
from lvsconsole.check.runner import TIMEOUT_GRACE, Checker, CheckRecord, CheckRunner
from lvsconsole.check.stall import StallNotice, stall_text
from lvsconsole.config.diff import ReloadPlan
from lvsconsole.config.model import Config
from lvsconsole.scripts.report import run_vetted
from lvsconsole.scripts.vet import configured_user

__all__ = [
    "NOTIFY_TIMEOUT",
    "CheckService",
    "CheckerSnapshot",
    "EventSubscription",
    "RealServerSnapshot",
    "ServiceSnapshot",
    "VirtualServerSnapshot",
    "run_checks",
]

_log = logging.getLogger("lvsconsole.check")

NOTIFY_TIMEOUT = 30.0
"""Seconds a notify script may run before its process group is terminated."""

LATENESS_WINDOW = 10_000
"""Recent checks kept for the lateness percentiles of the snapshot."""

ApplyActions = Callable[[Sequence[Action]], Awaitable[None] | None]

_RS_ACTIONS = (DestUp, DestDown, DestWeight, RealServerState)
"""Actions that move one real server's IPVS or alive state (a quorum change moves others' than the checked one)."""


def default_concurrency() -> int:
    """Checks allowed in flight: half the open-file limit (each check holds a socket), 64..8192.

    keepalived has no such bound; a bound this high only matters when thousands of servers are dead
    and every check waits out its connect_timeout."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 8192
    return max(64, min(8192, soft // 2))


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "notice": logging.INFO, "warning": logging.WARNING}


_NOTIFY_NAMES = {"rs_up": "notify_up", "rs_down": "notify_down", "quorum_up": "quorum_up",
                 "quorum_down": "quorum_down"}


def notify_label(action: RunNotify) -> str:
    """Which checker script ran, for the health log: ``notify_up of [10.0.0.2]:tcp:80 in VS [10.0.0.1]:tcp:80``."""
    name = _NOTIFY_NAMES[action.event]
    return f"{name} of {action.rs} in VS {action.vs}" if action.rs else f"{name} of VS {action.vs}"


def _rs_keys(refs: Sequence[CheckerRef]) -> list[str]:
    """The real servers of ``refs``, each once, in order."""
    return list(dict.fromkeys(ref.rs.rs for ref in refs))


def _log_event(log: logging.Logger, event: LogEvent) -> None:
    log.log(_LEVELS[event.level], "%s", event.message)


# --------------------------------------------------------------------------------------------------
# Snapshot


@dataclass(frozen=True, slots=True)
class CheckerSnapshot:
    index: int
    kind: str
    """The config block: TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK, …"""
    target: str
    up: bool
    last_ok: bool | None
    last_detail: str
    last_reason: str
    last_finished: float | None
    last_duration: float | None
    lateness: float | None
    """How late (s) the last check started against its schedule."""
    next_due: float
    stalled: bool = False
    """No result for several intervals (see :mod:`lvsconsole.check.stall`)."""
    shared: int = 1
    """How many (VS, RS) pairs this checker's probe feeds (identical checks run once)."""


@dataclass(frozen=True, slots=True)
class RealServerSnapshot:
    vs: str
    rs: str
    address: str
    port: int
    alive: bool
    weight: int
    """Configured weight."""
    effective_weight: int
    """After misc_dynamic / FILE_CHECK adjustments (before clamping to IPVS's range)."""
    ipvs_weight: int | None
    """The weight the actions so far put in IPVS; None when the dest is not there."""
    checkers: tuple[CheckerSnapshot, ...]

    @property
    def check_stalled(self) -> bool:
        return any(c.stalled for c in self.checkers)


@dataclass(frozen=True, slots=True)
class VirtualServerSnapshot:
    vs: str
    quorum_up: bool
    quorum: int
    hysteresis: int
    weight_sum: int
    sorry_server_active: bool
    real_servers: tuple[RealServerSnapshot, ...]


@dataclass(frozen=True, slots=True)
class ServiceSnapshot:
    time: float
    running: bool
    checks: int
    in_flight: int
    errors: int
    lateness_p50: float
    lateness_p99: float
    lateness_max: float
    virtual_servers: tuple[VirtualServerSnapshot, ...]


# --------------------------------------------------------------------------------------------------
# Event stream


class EventSubscription:
    """An async iterator of LogEvents; ends when the service stops or :meth:`close` is called.

    A subscriber that falls ``maxsize`` events behind loses the oldest ones (``dropped`` counts them);
    the checks never wait for a reader.
    """

    def __init__(self, service: CheckService, maxsize: int) -> None:
        self._service = service
        self._queue: deque[LogEvent | None] = deque()
        self._maxsize = maxsize
        self._ready = asyncio.Event()
        self.dropped = 0

    def _put(self, item: LogEvent | None) -> None:
        if item is not None and len(self._queue) >= self._maxsize:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(item)
        self._ready.set()

    def __aiter__(self) -> EventSubscription:
        return self

    async def __anext__(self) -> LogEvent:
        while not self._queue:
            self._ready.clear()
            await self._ready.wait()
        item = self._queue.popleft()
        if item is None:
            self._queue.appendleft(None)  # stay ended
            raise StopAsyncIteration
        return item

    def close(self) -> None:
        self._service._subscribers.discard(self)
        self._put(None)


# --------------------------------------------------------------------------------------------------
# Service


class CheckService:
    """All health checks of one config. ``apply_actions`` receives every action batch, in order."""

    def __init__(
        self,
        config: Config,
        apply_actions: ApplyActions | None = None,
        *,
        max_concurrency: int | None = None,
        rng: random.Random | None = None,
        bootstrap_delay: float = BOOTSTRAP_DELAY,
        run_notifies: bool = True,
        history: int = 1000,
        setup: CheckSetup | None = None,
    ) -> None:
        self.config = config
        self.setup = setup if setup is not None else build_checks(config)
        self.policy = CheckPolicy(self.setup.virtual_servers, rng=rng, bootstrap_delay=bootstrap_delay)
        self.runner = CheckRunner(
            self.policy,
            self.setup.checkers,
            self._on_actions,
            max_concurrency=max_concurrency if max_concurrency is not None else default_concurrency(),
            on_record=self._on_record,
            on_stall=self._on_stall,
        )
        self._apply = apply_actions
        self._run_notifies = run_notifies
        self._auto_concurrency = max_concurrency is None
        """The bound follows the open-file limit (which a reload may raise: engine/fdlimit.py)."""
        self._subscribers: set[EventSubscription] = set()
        self._record_listeners: list[Callable[[CheckRecord], None]] = []
        self._stall_listeners: list[Callable[[StallNotice[CheckerRef]], None]] = []
        self.history: deque[LogEvent] = deque(maxlen=history)
        self._records: dict[CheckerRef, CheckRecord] = {}
        self._maint: set[RsRef] = set()
        """Real servers an operator paused (:meth:`pause`)."""
        self._suspended: frozenset[str] = frozenset()
        """Virtual servers whose checks ha_suspend holds (:meth:`suspend_virtual_servers`)."""
        self._rs_snapshots: dict[RsRef, RealServerSnapshot] = {}
        """Per real server, its last snapshot; dropped when a result, a stall or an IPVS action concerns it,
        so that a snapshot of tens of thousands of servers builds again only the few that moved."""
        self._lateness: deque[float] = deque(maxlen=LATENESS_WINDOW)
        self._pending: deque[Sequence[Action] | None] = deque()
        self._pending_ready: asyncio.Event | None = None
        self._applier: asyncio.Task[None] | None = None
        self._notify_tasks: set[asyncio.Task[None]] = set()
        self._running = False
        self._started = False

    # ---- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            raise RuntimeError("CheckService already started")
        self._started = True
        self._pending_ready = asyncio.Event()
        self._applier = asyncio.get_running_loop().create_task(self._apply_loop(), name="lvsconsole-check-apply")
        self._on_actions([LogEvent(w, "warning") for w in self.setup.warnings])
        for ref, reader in self.setup.file_checkers.items():
            out = reader.read()
            self.policy.preset_file_state(ref.rs, ref.index, out.ok, out.weight or 0)
        self.runner.start()
        self._rs_snapshots.clear()
        self._running = True

    async def stop(self, *, shutdown: bool = True, notify_grace: float = 5.0) -> None:
        """Stop checking; with ``shutdown`` deliver keepalived's shutdown actions (dests removed, omega
        notifies) first. Waits for queued actions and, up to ``notify_grace`` s, for notify scripts."""
        if not self._running:
            return
        self._running = False
        await self.runner.stop(shutdown=shutdown)
        self._enqueue(None)
        if self._applier is not None:
            await self._applier
            self._applier = None
        if self._notify_tasks:
            _, still = await asyncio.wait(self._notify_tasks, timeout=notify_grace)
            for t in still:
                t.cancel()
            await asyncio.gather(*still, return_exceptions=True)
        for sub in list(self._subscribers):
            sub.close()

    async def __aenter__(self) -> CheckService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._running

    def reload(self, config: Config, plan: ReloadPlan) -> bool:
        """Apply a reload to the running checks, touching only the virtual servers ``plan`` changes.

        In those, a real server whose checkers are unchanged (same parameters, same probe) keeps its
        checker objects, state and schedule (a new weight or inhibit_on_failure is applied in place);
        removed checks stop, added and changed ones start as at start-up. Every other virtual server is
        left alone. Returns False, having changed nothing, when the change reaches every check (global
        checker settings, the SSL block) or cannot be applied in place: the caller then builds a new
        service (and :meth:`CheckPolicy.adopt` carries the state over)."""
        if not self._running:
            return False
        if self._auto_concurrency:
            self.runner.max_concurrency = default_concurrency()
        touched = touched_virtual_servers(plan, self.config, config)
        if touched is None:
            return False
        setup = self.setup
        part = build_checks(config, ssl_context=setup.ssl_context, report_scripts=setup.report_scripts,
                            only=touched)
        old_keys = {setup.origin[key] for key in touched if key in setup.origin}
        new_keys = {vsp.key for vsp in part.virtual_servers}
        if len(new_keys) != len(part.virtual_servers) or any(
            vsp.key not in old_keys and vsp.key in self._vs_params() for vsp in part.virtual_servers
        ):
            return False  # a key collision between virtual servers: the whole build reports it
        old_refs = [ref for key in old_keys for ref in self._refs_of(key)]
        restart = self._changed_probes(part)
        file_states = {}
        for ref, reader in part.file_checkers.items():
            out = reader.read()
            file_states[ref] = (out.ok, out.weight or 0)
        update = self.policy.update(part.virtual_servers, old_keys - new_keys, asyncio.get_running_loop().time(),
                                    restart=restart, file_states=file_states)
        removed = [ref for ref in old_refs if ref.rs not in update.kept]
        added = {ref: checker for ref, checker in part.checkers.items() if ref.rs not in update.kept}
        self._splice_setup(config, touched, part, removed, added)
        self.runner.update(removed, added)
        self.config = config
        self._rs_snapshots.clear()  # shared probes outside the touched servers may have lost a member
        self._on_actions([*(LogEvent(w, "warning") for w in part.warnings), *update.actions])
        return True

    def _vs_params(self) -> dict[str, VirtualServerParams]:
        return {vsp.key: vsp for vsp in self.setup.virtual_servers}

    def _refs_of(self, vs: str) -> list[CheckerRef]:
        return [CheckerRef(rs, i) for rs in self.policy.real_servers(vs) for i in range(self.policy.checker_count(rs))]

    def _changed_probes(self, part: CheckSetup) -> set[RsRef]:
        """Real servers of ``part`` whose checkers keep their parameters but would now probe differently
        (another connect_port, URL, script …): those start afresh."""
        changed: set[RsRef] = set()
        for vsp in part.virtual_servers:
            for rsp in vsp.real_servers:
                ref = vsp.ref(rsp)
                for index, params in enumerate(rsp.checkers):
                    cref = CheckerRef(ref, index)
                    old, new = self.setup.checkers.get(cref), part.checkers.get(cref)
                    if old is None or new is None or not same_probe(old, new, params):
                        changed.add(ref)
                        break
        return changed

    def _splice_setup(self, config: Config, touched: set[str], part: CheckSetup, removed: Sequence[CheckerRef],
                      added: Mapping[CheckerRef, Checker]) -> None:
        setup = self.setup
        for ref in removed:
            setup.checkers.pop(ref, None)
            setup.kinds.pop(ref, None)
            setup.targets.pop(ref, None)
            setup.file_checkers.pop(ref, None)
            self._records.pop(ref, None)
        for ref, checker in added.items():
            setup.checkers[ref] = checker
            setup.kinds[ref] = part.kinds[ref]
            setup.targets[ref] = part.targets[ref]
            if ref in part.file_checkers:
                setup.file_checkers[ref] = part.file_checkers[ref]
        setup.scripts.update(part.scripts)
        if setup.ssl_context is None:
            setup.ssl_context = part.ssl_context
        for key in touched:
            setup.origin.pop(key, None)
        setup.origin.update(part.origin)
        params = self._vs_params()
        params.update((vsp.key, vsp) for vsp in part.virtual_servers)
        ordered: dict[str, VirtualServerParams] = {}
        for vs in config.virtual_servers:  # in the config's order, as a whole build lists them
            policy_key = setup.origin.get(vs.key)
            if policy_key is not None and policy_key in params:
                ordered.setdefault(policy_key, params[policy_key])
        setup.virtual_servers = list(ordered.values())

    # ---- events --------------------------------------------------------------------------------

    def subscribe(self, maxsize: int = 10_000) -> EventSubscription:
        sub = EventSubscription(self, maxsize)
        self._subscribers.add(sub)
        return sub

    async def events(self) -> AsyncIterator[LogEvent]:
        sub = self.subscribe()
        try:
            async for ev in sub:
                yield ev
        finally:
            sub.close()

    def add_record_listener(self, listener: Callable[[CheckRecord], None]) -> None:
        """Call ``listener`` with every completed check (on the loop; keep it cheap)."""
        self._record_listeners.append(listener)

    def add_stall_listener(self, listener: Callable[[StallNotice[CheckerRef]], None]) -> None:
        """Call ``listener`` when a check stalls and when it produces a result again (one notice per
        (VS, RS) pair the check feeds)."""
        self._stall_listeners.append(listener)

    async def run_now(self, rs: RsRef) -> list[CheckRecord]:
        """Probe every checker of ``rs`` once, now, outside the schedule (``check now``); one record each.

        The result feeds the policy as a scheduled run's would (retry, rise/fall, up/down, IPVS): a probe
        is an observation of the server whenever it runs, and keepalived's rules (retry+1 failures to go
        down) still hold. The runner's schedule is left alone: the next scheduled probe runs when it was
        due. A probe shared by several (VS, RS) pairs feeds all of them, as the runner's does.
        Raises KeyError for a real server the policy does not know."""
        count = self.policy.checker_count(rs)
        records = await asyncio.gather(*(self._probe_now(CheckerRef(rs, i)) for i in range(count)))
        return [r for r in records if r is not None]

    async def _probe_now(self, ref: CheckerRef) -> CheckRecord | None:
        checker = self.setup.checkers.get(ref)
        if checker is None:
            return None
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(checker.timeout + TIMEOUT_GRACE):
                outcome = await checker.check()
        except TimeoutError:
            outcome = CheckOutcome(False, f"Check on service {{rs}} timed out after {checker.timeout:g}s.",
                                   reason="timeout", timed_out=True)
        except Exception as exc:  # as the runner: a broken checker is a failed check
            outcome = CheckOutcome(False, f"Check on service {{rs}} raised {type(exc).__name__}: {exc}",
                                   reason=type(exc).__name__)
        finished = loop.time()
        params = self.policy.checker_params(ref.rs, ref.index)
        peers = [ref, *(r for r in self.policy.checker_refs() if r != ref and self.setup.checkers.get(r) is checker
                        and self.policy.checker_params(r.rs, r.index) == params)]
        actions: list[Action] = []
        for peer in peers:
            record = CheckRecord(peer, outcome, started, started, finished, primary=False)  # no lateness: unscheduled
            if self._running:
                actions += self.policy.record_outcome(peer.rs, peer.index, outcome, finished, started=started)
            self._on_record(record)
        self._on_actions(actions)
        return CheckRecord(ref, outcome, started, started, finished)

    def checker_kind(self, ref: CheckerRef) -> str:
        """The config block of a checker (TCP_CHECK, HTTP_GET, …)."""
        return self.setup.kinds.get(ref) or self.policy.checker_params(ref.rs, ref.index).kind

    def check_stalled(self, rs: RsRef) -> bool:
        """Whether any checker of this real server has stalled."""
        try:
            count = self.policy.checker_count(rs)
        except KeyError:
            return False
        return any(self.runner.is_stalled(CheckerRef(rs, i)) for i in range(count))

    def stalled_servers(self) -> set[RsRef]:
        """The real servers ``check_stalled`` is true of, all at once (a snapshot of thousands asks this)."""
        return {ref.rs for ref in self.runner.stalled_refs()}

    def pause(self, rs: RsRef) -> None:
        """Stop checking this real server in this virtual server (an operator's maint); its state is kept."""
        self._maint.add(rs)
        self.runner.pause(self._checker_refs(rs))

    def resume(self, rs: RsRef) -> None:
        """Check it again (an overdue check runs at once), unless ha_suspend holds its virtual server."""
        self._maint.discard(rs)
        if rs.vs not in self._suspended:
            self.runner.resume(self._checker_refs(rs))

    def suspend_virtual_servers(self, keys: Collection[str]) -> None:
        """ha_suspend: hold the checks of exactly the virtual servers ``keys`` (:mod:`lvsconsole.check.ha_suspend`);
        their checkers keep their state. Idempotent: call it again after a reload to cover new real servers."""
        keys = frozenset(keys)
        known = self._vs_params()
        held, lifted = keys - self._suspended, self._suspended - keys
        self._suspended = keys
        events: list[Action] = []
        for key in sorted(keys & known.keys()):
            refs = self._refs_of(key)
            self.runner.pause(refs)
            if key in held:
                events += [LogEvent(f"Suspending healthchecker for service {rs} for VS {key}", "info", key, rs)
                           for rs in _rs_keys(refs)]
        for key in sorted(lifted & known.keys()):
            refs = [ref for ref in self._refs_of(key) if ref.rs not in self._maint]
            self.runner.resume(refs)
            events += [LogEvent(f"Activating healthchecker for service {rs} for VS {key}", "info", key, rs)
                       for rs in _rs_keys(refs)]
        if events:
            self._on_actions(events)

    @property
    def suspended_virtual_servers(self) -> frozenset[str]:
        return self._suspended

    def _checker_refs(self, rs: RsRef) -> list[CheckerRef]:
        try:
            return [CheckerRef(rs, i) for i in range(self.policy.checker_count(rs))]
        except KeyError:
            return []

    def _on_record(self, record: CheckRecord) -> None:
        # Once per check: no property or method calls beyond the listeners', no lookup that can be skipped.
        ref, _, scheduled, started, _, primary = record
        self._records[ref] = record
        cached = self._rs_snapshots
        if cached:  # _stale(), inline (nothing to drop until a snapshot has been taken)
            cached.pop(ref.rs, None)
        if primary:  # a shared probe's lateness counts once
            self._lateness.append(started - scheduled if started > scheduled else 0.0)
        for listener in self._record_listeners:
            listener(record)

    def stall_log_event(self, notice: StallNotice[CheckerRef]) -> LogEvent:
        ref = notice.key
        text = stall_text(
            self.checker_kind(ref), ref.rs.rs, ref.rs.vs, notice.silent_for, stalled=notice.stalled,
            running=notice.running,
        )
        return LogEvent(text, "warning" if notice.stalled else "notice", ref.rs.vs, ref.rs.rs)

    def _on_stall(self, notice: StallNotice[CheckerRef]) -> None:
        # Not an action: the director publishes its own CheckStalled event, which is logged.
        self._stale(notice.key.rs)
        event = self.stall_log_event(notice)
        self.history.append(event)
        for sub in self._subscribers:
            sub._put(event)
        for listener in self._stall_listeners:
            try:
                listener(notice)
            except Exception:
                _log.exception("check stall listener failed")

    def _on_actions(self, actions: Sequence[Action]) -> None:
        if not actions:
            return
        for a in actions:
            if isinstance(a, LogEvent):
                self.history.append(a)
                for sub in self._subscribers:
                    sub._put(a)
            elif isinstance(a, RunNotify) and self._run_notifies:
                task = asyncio.get_running_loop().create_task(self._notify(a), name=f"notify {a.event}")
                self._notify_tasks.add(task)
                task.add_done_callback(self._notify_tasks.discard)
            elif isinstance(a, _RS_ACTIONS):
                self._stale(RsRef(a.vs, a.rs))
        if self._apply is not None:
            self._enqueue(actions)

    def _enqueue(self, item: Sequence[Action] | None) -> None:
        self._pending.append(item)
        if self._pending_ready is not None:
            self._pending_ready.set()

    async def _apply_loop(self) -> None:
        assert self._pending_ready is not None
        while True:
            while not self._pending:
                self._pending_ready.clear()
                await self._pending_ready.wait()
            batch = self._pending.popleft()
            if batch is None:
                return
            if self._apply is None:
                continue
            try:
                result = self._apply(batch)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                _log.exception("applying check actions failed")

    async def _notify(self, action: RunNotify) -> None:
        """A notify_up/down or quorum_up/down script, through the same vetting, running and reporting as VRRP
        notify scripts and MISC_CHECKs (:func:`lvsconsole.scripts.report.run_vetted`): a refused script says
        why, and every run reaches ``report_scripts`` with its exit, duration and first lines of output."""
        script = self.setup.scripts.get(action.script)
        argv = list(script.argv) if script is not None else shlex.split(action.script)
        g = self.config.global_defs
        own = (script.user, script.group) if script is not None else ()
        user, group = configured_user(own, g.script_user)
        ran = await run_vetted("notify", notify_label(action), argv, user=user, group=group,
                               security=g.enable_script_security, timeout=NOTIFY_TIMEOUT)
        report = self.setup.report_scripts
        if report is not None:
            report(ran)
        elif not ran.ok:  # nobody reports runs (a bare service): the log still hears of a failure
            r = ran.result
            why = r.error or ("timed out" if r.timed_out else f"exit status {r.exit_status}")
            _log.warning("%s script %s: %s", ran.name, argv[0] if argv else "?", why)

    # ---- snapshot ------------------------------------------------------------------------------

    def snapshot(self, *, servers: bool = True) -> ServiceSnapshot:
        """``servers=False``: the service-wide figures only, without the per-server part (which costs as much
        as there are checkers: the director's snapshot, taken at every console refresh, needs the figures)."""
        loop_time = asyncio.get_running_loop().time() if self._running else 0.0
        p = self.policy
        vss = []
        for vsp in self.setup.virtual_servers if servers else ():
            vkey = vsp.key
            cached = self._rs_snapshots
            dests: dict[str, int] | None = None
            rss = []
            for rsp in vsp.real_servers:
                ref = RsRef(vkey, vsp.rs_key(rsp))
                snap = cached.get(ref)
                if snap is None:
                    if dests is None:
                        dests = p.desired_dests(vkey) if self._started else {}
                    snap = cached[ref] = self._rs_snapshot(vkey, rsp, ref, dests)
                rss.append(snap)
            q, h = p.quorum(vkey)
            vss.append(
                VirtualServerSnapshot(
                    vs=vkey,
                    quorum_up=p.quorum_up(vkey),
                    quorum=q,
                    hysteresis=h,
                    weight_sum=p.weight_sum(vkey),
                    sorry_server_active=p.sorry_server_active(vkey),
                    real_servers=tuple(rss),
                )
            )
        stats = self.runner.stats
        late = sorted(self._lateness)
        return ServiceSnapshot(
            time=loop_time,
            running=self._running,
            checks=stats.checks,
            in_flight=stats.in_flight,
            errors=stats.errors,
            lateness_p50=_percentile(late, 0.50),
            lateness_p99=_percentile(late, 0.99),
            lateness_max=stats.max_lateness,
            virtual_servers=tuple(vss),
        )


    def _rs_snapshot(self, vkey: str, rsp: RealServerParams, ref: RsRef, dests: dict[str, int]) -> RealServerSnapshot:
        p = self.policy
        checkers = []
        for i in range(len(rsp.checkers)):
            cref = CheckerRef(ref, i)
            rec = self._records.get(cref)
            checkers.append(
                CheckerSnapshot(
                    index=i,
                    kind=self.setup.kinds.get(cref, rsp.checkers[i].kind),
                    target=self.setup.targets.get(cref, ""),
                    up=p.checker_up(ref, i),
                    last_ok=rec.outcome.ok if rec else None,
                    last_detail=rec.outcome.detail.replace("{rs}", ref.rs).replace("{vs}", vkey) if rec else "",
                    last_reason=rec.outcome.reason if rec else "",
                    last_finished=rec.finished if rec else None,
                    last_duration=rec.duration if rec else None,
                    lateness=rec.lateness if rec else None,
                    next_due=p.next_check_time(ref, i),
                    stalled=self.runner.is_stalled(cref),
                    shared=self.runner.sharing(cref),
                )
            )
        return RealServerSnapshot(
            vs=vkey,
            rs=ref.rs,
            address=rsp.address,
            port=rsp.port,
            alive=p.is_alive(ref),
            weight=rsp.weight,
            effective_weight=p.effective_weight(ref),
            ipvs_weight=dests.get(ref.rs),
            checkers=tuple(checkers),
        )

    def _stale(self, ref: RsRef) -> None:
        """This real server's snapshot must be built again (its checks or its IPVS state moved)."""
        self._rs_snapshots.pop(ref, None)


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    k = max(0, min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[k]


# --------------------------------------------------------------------------------------------------
# Headless


async def run_checks(
    config: Config,
    on_action: Callable[[Action], Awaitable[None] | None],
    stop_event: asyncio.Event,
    *,
    logger: logging.Logger | None = None,
    run_notifies: bool = True,
) -> None:
    """Check ``config``'s real servers until ``stop_event`` is set, then shut down as keepalived does.

    Every action goes to ``on_action`` in order (awaited if it returns an awaitable); every LogEvent is
    also logged through ``logger`` (default ``lvsconsole.check``) at its level.
    """
    log = logger if logger is not None else _log

    async def apply(actions: Sequence[Action]) -> None:
        for a in actions:
            if isinstance(a, LogEvent):
                _log_event(log, a)
            result = on_action(a)
            if inspect.isawaitable(result):
                await result

    service = CheckService(config, apply, run_notifies=run_notifies)
    service.add_stall_listener(lambda notice: _log_event(log, service.stall_log_event(notice)))
    await service.start()
    try:
        await stop_event.wait()
    finally:
        await service.stop(shutdown=True)
