"""The composition root: one config → VRRP instances, health checks and the IPVS table, on one loop.

IPVS is programmed on every director whatever its VRRP state, as keepalived does: the backup's table is
warm, VRRP only moves the VIPs (and switches the connection-sync daemon between master and backup).

The IPVS table the director asks for is always recomputed from three sources of truth:
the running config (which services, which dests, their configured weights), the check policy (which
real servers are in the table and at what weight, the sorry server) and the operator's runtime
overrides (drain, weight, disable), kept apart from the config and kept across reloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from lvsconsole.check.from_config import build_checks
from lvsconsole.check.ha_suspend import HaSuspend
from lvsconsole.check.policy import Action as CheckAction
from lvsconsole.check.policy import CheckerRef, LogEvent, RealServerState
from lvsconsole.check.policy import RsRef as PolicyRef
from lvsconsole.check.recorder import CheckerHistory, CheckRecorder, ProbeNow
from lvsconsole.check.runner import CheckRecord
from lvsconsole.check.service import CheckService
from lvsconsole.check.stall import StallNotice
from lvsconsole.config import model as m
from lvsconsole.config.diff import ReloadPlan
from lvsconsole.engine.bus import EventBus
from lvsconsole.engine.checkflight import CheckFlight
from lvsconsole.engine.connsource import ConnSource
from lvsconsole.engine.desired import VsShape, VsShapes, add_entries, entries_of, table_with_retiring
from lvsconsole.engine.director_api import (
    DirectorError,
    DirectorSnapshot,
    Health,
    OverrideChange,
    RealServerView,
    RsId,
    VirtualServerView,
    VrrpInstanceView,
    real_server_view,
)
from lvsconsole.engine.drainsampler import DestRef, DrainSampler, Source, WatchedServer
from lvsconsole.engine.drainwatch import DrainPlan
from lvsconsole.engine.drift import drift_events, drift_views, held_vips, item_event
from lvsconsole.engine.events import (
    CheckResumed,
    CheckStalled,
    EngineWarning,
    IpvsDriftCleared,
    IpvsDriftDetected,
    LogLine,
    LoopLagWarning,
    PoolFloorHeld,
    RadarAlarm,
    RadarCleared,
    RealServerRetired,
    RealServerRetiring,
    RealServerStateChanged,
    SplitBrain,
    SplitBrainResolved,
    TableChanged,
    VrrpTransition,
)
from lvsconsole.engine.fdlimit import fds_needed, raise_open_file_limit
from lvsconsole.engine.guard import floor_keep
from lvsconsole.engine.keys import configured_servers, rs_id, rs_key
from lvsconsole.engine.layout import Layout, VirtualServerLayout, build_layout, table_weights
from lvsconsole.engine.listen import ListenAddress
from lvsconsole.engine.looplag import LagExceeded, LoopLagMonitor, Margin, Notice
from lvsconsole.engine.notify import Notifier
from lvsconsole.engine.retire import Removal, RetirePlanner
from lvsconsole.engine.retirees import RetiringServer, reload_removals, removed_vs_view, server_view
from lvsconsole.engine.scripts import ScriptRunLog
from lvsconsole.engine.slowstart import SlowStarter
from lvsconsole.engine.synccoverage import Coverage
from lvsconsole.ipvs.backend import ZERO_COUNTERS, ZERO_DEST_COUNTERS, Backend, Counters, Stats
from lvsconsole.ipvs.conntable import Connection
from lvsconsole.ipvs.drift import DriftLedger, detect_vips
from lvsconsole.ipvs.from_config import real_server_dest, sorry_server_dest
from lvsconsole.ipvs.sync import IpvsSync, SyncDaemonParams, SyncEvent, SyncRole
from lvsconsole.ipvs.table import Dest, DestKey, Service, ServiceEntry, ServiceKey, Table
from lvsconsole.ipvs.trace import TraceInput
from lvsconsole.scripts.report import ScriptRun
from lvsconsole.vrrp.addresses import present_addresses
from lvsconsole.vrrp.events import (
    InstanceStateChanged,
    RadarAlarmCleared,
    RadarAlarmRaised,
    SplitBrainEnded,
    SplitBrainStarted,
    VrrpEvent,
)
from lvsconsole.vrrp.machine import State
from lvsconsole.vrrp.radar import RadarReport
from lvsconsole.vrrp.service import VrrpService

log = logging.getLogger("lvsconsole.engine")

STATS_INTERVAL = 1.0
SNAPSHOT_SLICE = 0.001
"""How long ``snapshot_sliced`` holds the loop at a time (VRRP timers and a console's keys wait meanwhile). A key
reaches the screen through several turns of the loop (driver, app, screen, widget, screen update) and waits for
one slice at each: at 5 ms a key pressed during a snapshot of 11,000 servers took 50-110 ms to show, at 1 ms
under 40 ms (bench/tui_refresh.py). A pause costs ~10 us, 1 % of the snapshot's time."""
VIP_DRIFT_INTERVAL = 10.0
"""Seconds between two looks for VIPs removed by hand (the IPVS check interval when IPVS runs)."""
NOTIFY_CLOSE_GRACE = 5.0
"""How long stop() waits for notify scripts (STOP ones included) and SMTP alerts still running."""
_LEVELS = {"debug": "debug", "info": "info", "notice": "notice", "warning": "warning", "error": "error"}


@dataclass
class Override:
    drain: bool = False
    disabled: bool = False
    weight: int | None = None

    @property
    def empty(self) -> bool:
        return not self.drain and not self.disabled and self.weight is None


class Director:
    """Implements engine.director_api.DirectorCore over VrrpService, CheckService and IpvsSync."""

    def __init__(self, config: m.Config, *, backend: Backend, bus: EventBus, dry_run: bool = False,
                 run_checks: bool = True, check_concurrency: int | None = None,
                 drain_sample_hz: float | None = None) -> None:
        self.config = config
        self.check_concurrency = check_concurrency
        """Health checks in flight at most (None: from the open-file limit, see check.service)."""
        self.backend = backend
        self.bus = bus
        self.dry_run = dry_run
        self.run_checks = run_checks
        self.started_at = time.time()
        self.vrrp: VrrpService | None = None
        self.checks: CheckService | None = None
        self.ipvs: IpvsSync | None = None
        self.overrides: dict[RsId, Override] = {}
        self.runtime_priority: dict[str, int] = {}
        self._stats = Stats()
        self._table = Table()
        self._shapes = VsShapes()
        """What each virtual server becomes in the desired table, and its last entries (engine/desired.py)."""
        self._layout: Layout | None = None
        """The config-only part of the snapshot views, for ``self.config`` (see ``_current_layout``)."""
        self._weights: tuple[Layout, Table, tuple[tuple[int | None, ...], ...]] | None = None
        """``table_weights`` of that layout in ``self._table``, and which table it was read from."""
        self._health: dict[RsId, str] = {}
        self._floor_kept: dict[str, tuple[str, ...]] = {}
        """Per virtual server, the failing real servers min_healthy keeps in the table."""
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._apply_lock = asyncio.Lock()
        self._unlisten: list[object] = []
        self._masters: set[str] = set()
        """VRRP instances in MASTER state now (ha_suspend follows them)."""
        self._check_listeners: list[Callable[[CheckRecord], None]] = []
        self.notifier = Notifier(config, bus)
        self._script_log = ScriptRunLog()
        # Real servers a reload removed, kept at weight 0 until their connections end (engine/retire.py).
        self.retiring: RetirePlanner[RsId, RetiringServer] = RetirePlanner()
        self._retire_wake = asyncio.Event()
        self.loop_lag = LoopLagMonitor(self._lag_margins, self._on_lag_notice)
        self.check_recorder = CheckRecorder()
        """The last probes of every checker (``show checks``), kept across reloads."""
        self._check_flight = CheckFlight(self.check_recorder, lambda: self.checks)
        self.vip_drift = DriftLedger()
        """VIPs of our MASTER instances missing from their interfaces (listed in both ipvs_drift policies: a
        tracked VIP removed by hand comes back with a re-election (vrrp/owned.py), a ``no_track`` one stays away,
        as in keepalived, until ``drift reconcile``)."""
        self.add_check_listener(self.check_recorder.record)
        self.conns = ConnSource(backend, self._current_layout, self._absent_reason, bus.publish)
        """The connection table, the tracer's inputs and the sync-coverage watcher (engine/connshow.py)."""
        self._drain_hz = drain_sample_hz
        """A sampling rate fixed by the caller (tests); None: global_defs drain_sample_rate, followed on reload."""
        self.drains = DrainSampler(backend, bus, self._remove_drained,
                                   hz=drain_sample_hz or config.global_defs.drain_sample_rate)
        """Draining servers sampled at drain_sample_hz (``show drain``, the drain view)."""
        self.slow_starts = SlowStarter(bus, self._ramp_weight)
        """``undrain`` of a server with slow_start: its weight climbs back over that many seconds."""

    def add_check_listener(self, listener: Callable[[CheckRecord], None]) -> None:
        """Call ``listener`` with every completed check, across reloads (on the loop; keep it cheap).

        Not a bus event: thousands of checks a second would flood the bus history and every face's queue."""
        self._check_listeners.append(listener)
        if self.checks is not None:
            self.checks.add_record_listener(listener)

    def _check_service(self, config: m.Config) -> CheckService:
        service = CheckService(config, self._on_check_actions, max_concurrency=self.check_concurrency,
                               setup=build_checks(config, report_scripts=self._on_script_run))
        for listener in self._check_listeners:
            service.add_record_listener(listener)
        service.add_stall_listener(self._on_check_stall)
        for rid, override in self.overrides.items():
            if override.disabled:  # maint outlives a reload: its checks stay paused
                service.pause(PolicyRef(rid.vs, rid.rs))
        service.suspend_virtual_servers(HaSuspend.from_config(config).suspended(self._masters))
        return service

    def _fit_open_file_limit(self, config: m.Config) -> None:
        """Raise the open-file limit to what ``config`` needs, as keepalived does (engine/fdlimit.py)."""
        change = raise_open_file_limit(fds_needed(config))
        if change is None:
            return
        if change.complete:
            self.bus.publish(LogLine(message=change.message, source="engine"))
        else:
            self.bus.publish(EngineWarning(message=change.message, code="open-file-limit"))

    def _apply_ha_suspend(self) -> None:
        """ha_suspend: checks of a virtual server run only while an instance owning its address is MASTER."""
        if self.checks is not None:
            self.checks.suspend_virtual_servers(HaSuspend.from_config(self.config).suspended(self._masters))

    # ------------------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        cfg = self.config
        self.ipvs = IpvsSync.from_globals(self.backend, cfg.global_defs, on_event=self._on_ipvs_event)
        self._fit_open_file_limit(cfg)
        if self.run_checks:
            self.checks = self._check_service(cfg)
            await self.checks.start()
        table = self.desired_table()
        await self.ipvs.start(table)
        self._table = table  # what a first reload drains from, even before any check result
        self.vrrp = VrrpService(cfg, dry_run=self.dry_run, report_scripts=self._on_script_run)
        self.vrrp.add_listener(self._on_vrrp_event)
        await self.vrrp.start()
        self._tasks = [
            asyncio.create_task(self._table_loop(), name="lvsconsole-table"),
            asyncio.create_task(self._stats_loop(), name="lvsconsole-stats"),
            asyncio.create_task(self._retire_loop(), name="lvsconsole-retire"),
            asyncio.create_task(self.drains.run(), name="lvsconsole-drain"),
        ]
        if not self.dry_run:  # a dry run adds no address, so none can go missing
            self._tasks.append(asyncio.create_task(self._vip_drift_loop(), name="lvsconsole-vip-drift"))
        self.loop_lag.start()
        self.conns.configure(cfg.global_defs)
        self.bus.publish(LogLine(message=f"Director started with {len(cfg.instances)} VRRP instance(s), "
                                         f"{len(cfg.virtual_servers)} virtual server(s)", source="engine"))

    async def stop(self) -> None:
        await self.loop_lag.stop()
        await self.conns.stop()
        await self.slow_starts.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self.vrrp is not None:
            await self.vrrp.stop()
            self.notifier.notify_stop()  # keepalived's notify_shutdown: STOP for every instance and group
        if self.checks is not None:
            await self.checks.stop(shutdown=True)
        if self.ipvs is not None:
            await self.ipvs.stop()
        await self.notifier.close(NOTIFY_CLOSE_GRACE)
        self.bus.publish(LogLine(message="Director stopped", source="engine"))

    # ------------------------------------------------------------------------------ the IPVS table

    def desired_table(self, config: m.Config | None = None) -> Table:
        """Config services × the check policy's dests × the operator's overrides.

        With ``config`` it is a preview of that config (nothing changes): real servers the running config does
        not have count as up at their configured weight, as they would be once their checks pass, and one up at
        its running weight takes its new configured weight.

        A virtual server of the running config whose model object, check results, kept servers and overrides
        are those of the previous call keeps its entries (engine/desired.py): a change costs O(its virtual
        server), here and in the IPVS sync."""
        policy = self.checks.policy if self.checks is not None else None
        preview = config is not None
        running_weights = {rs_id(vs, rs): rs.weight for vs in self.config.virtual_servers
                           for rs in vs.real_servers} if preview else None
        overrides: dict[str, dict[str, Override]] = {}
        for rid, override in self.overrides.items():
            overrides.setdefault(rid.vs, {})[rid.rs] = override
        built: dict[ServiceKey, ServiceEntry] = {}
        for shape in self._shapes.of(config or self.config, remember=not preview):
            key = shape.key
            live: dict[str, int] | None = None
            if policy is not None:
                try:
                    live = policy.desired_dests(key)
                except KeyError:
                    live = {}
            kept = self._keep_floor(shape.vs, key, live) if live is not None and shape.services else ()
            vs_overrides = overrides.get(key, {})
            inputs = (live, kept, tuple((rkey, o.drain, o.disabled, o.weight) for rkey, o in vs_overrides.items()))
            entries = None if preview else shape.entries_for(inputs)
            if entries is None:
                entries = self._vs_entries(shape, live, kept, vs_overrides, running_weights)
                if not preview:
                    shape.remember(inputs, entries)
            add_entries(built, entries)
        return table_with_retiring(built, (retirement.subject for retirement in self.retiring))

    @staticmethod
    def _vs_entries(shape: VsShape, live: dict[str, int] | None, kept: tuple[str, ...], overrides: dict[str, Override],
                    running_weights: dict[RsId, int] | None) -> tuple[ServiceEntry, ...]:
        """The entries of one virtual server (see ``desired_table``; ``running_weights`` only for a preview)."""
        vs, key = shape.vs, shape.key
        pairs: list[tuple[Service, list[Dest]]] = []
        for service in shape.services:
            dests: list[Dest] = []
            for rs, rkey in zip(vs.real_servers, shape.rs_keys, strict=True):
                weight = rs.weight if live is None else live.get(rkey)
                if rkey in kept:
                    weight = rs.weight
                elif running_weights is not None and RsId(key, rkey) not in running_weights:
                    weight = rs.weight if weight is None else weight
                elif running_weights is not None and weight is not None and weight == running_weights[RsId(key, rkey)]:
                    weight = rs.weight
                override = overrides.get(rkey)
                if override is not None:
                    if override.disabled:
                        continue
                    if weight is not None and override.drain:
                        weight = 0
                    elif weight is not None and override.weight is not None and weight > 0:
                        weight = override.weight
                if weight is None:
                    continue
                dests.append(real_server_dest(vs, rs, service.key, weight))
            if shape.sorry_key is not None and live is not None:
                sorry_weight = live.get(shape.sorry_key)
                if sorry_weight is not None:
                    dests.append(sorry_server_dest(vs, service.key, sorry_weight))
            pairs.append((service, dests))
        return entries_of(pairs)

    def live_table(self) -> Table:
        """The IPVS table as last programmed (engine/impact.py previews against it)."""
        return self._table

    def dest_active(self, service: ServiceKey, dest: DestKey) -> int:
        """Active connections of one dest at the last statistics sample."""
        return self._stats.dest(service, dest).activeconns

    def _keep_floor(self, vs: m.VirtualServer, key: str, live: dict[str, int]) -> tuple[str, ...]:
        """The failing real servers kept in the table so that checks leave ``vs`` at least min_healthy healthy
        ones (those the operator took out neither count nor are kept); logs every change of the kept set."""
        previous = self._floor_kept.get(key, ())
        kept: tuple[str, ...] = ()
        policy = self.checks.policy if self.checks is not None else None
        if vs.min_healthy is not None and policy is not None:
            healthy = 0
            failing = []
            for rs in vs.real_servers:
                rkey = rs_key(vs, rs.address, rs.port if vs.fwmark is None else None)
                override = self.overrides.get(RsId(key, rkey))
                if override is not None and (override.drain or override.disabled):
                    continue
                try:
                    alive = policy.is_alive(PolicyRef(key, rkey))
                except KeyError:
                    continue
                if alive and live.get(rkey):
                    healthy += 1
                elif not alive:
                    failing.append(rkey)
            kept = floor_keep(failing, healthy, vs.min_healthy.required(len(vs.real_servers)), previous)
        if kept != previous:
            spec = str(vs.min_healthy) if vs.min_healthy is not None else "none"
            for rkey in kept:
                if rkey not in previous:
                    self.bus.publish(PoolFloorHeld(vs=key, rs=rkey, min_healthy=spec, held=True))
            for rkey in previous:
                if rkey not in kept:
                    self.bus.publish(PoolFloorHeld(vs=key, rs=rkey, min_healthy=spec, held=False))
            if kept:
                self._floor_kept[key] = kept
            else:
                self._floor_kept.pop(key, None)
        return kept

    def _mark_dirty(self) -> None:
        self._dirty.set()

    async def _table_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await self._sync_table("health checks")

    async def _sync_table(self, cause: str) -> list[str]:
        assert self.ipvs is not None
        async with self._apply_lock:
            table = self.desired_table()
            ops = await self.ipvs.set_desired(table)
            self._table = table
        texts = [str(op) for op in ops]
        if texts:
            self.bus.publish(TableChanged(ops=tuple(texts), cause=cause))
        return texts

    # ------------------------------------------------------------------------------ draining removed servers

    async def _retire_loop(self) -> None:
        """While removed servers drain: sample their counters every SAMPLE_INTERVAL, delete the finished ones."""
        while True:
            wake_at = self.retiring.next_review(time.monotonic())
            self._retire_wake.clear()
            if wake_at is None:
                await self._retire_wake.wait()
                continue
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._retire_wake.wait(), max(0.0, wake_at - time.monotonic()))
            await self._review_retirements()

    async def _review_retirements(self) -> None:
        if not len(self.retiring):
            return
        try:
            self._stats = await self.backend.read_stats()
        except OSError as exc:
            self.bus.publish(EngineWarning(message=f"cannot read IPVS statistics: {exc}", code="stats"))
            return
        active = {r.key: r.subject.active(self._stats) for r in self.retiring}
        removals = self.retiring.review(active, time.monotonic())
        if removals:
            for removal in removals:
                self.bus.publish(_retired_event(removal))
            await self._sync_table("drained")

    def _begin_retirements(self, survivors: set[RsId], removed: list[RetiringServer], stats: Stats) -> list[RsId]:
        """Drain the ``removed`` live real servers (``reload_removals``); draining ones back among ``survivors``
        are kept. Returns those now draining."""
        for rid in [r.key for r in self.retiring if r.key in survivors]:
            self.retiring.keep(rid)
            self.bus.publish(LogLine(message=f"Service {rid.rs} back in VS {rid.vs} while draining: kept",
                                     source="ipvs"))
        timeout = self.config.global_defs.drain_timeout
        begun = []
        now = time.monotonic()
        for server in removed:
            if server.rid in self.retiring:
                continue
            active = server.active(stats)
            if self.retiring.begin(server.rid, server, active, now, timeout) is not None:
                begun.append(server.rid)
                self.bus.publish(RealServerRetiring(vs=server.rid.vs, rs=server.rid.rs, active=active,
                                                    timeout=timeout))
                self.drains.ensure(server.rid, [(s.key, d.key) for s, d in server.dests()], "reload")
        self._retire_wake.set()
        return begun

    async def _stats_loop(self) -> None:
        while True:
            try:
                self._stats = await self.backend.read_stats()
            except OSError as exc:
                self.bus.publish(EngineWarning(message=f"cannot read IPVS statistics: {exc}", code="stats"))
            await asyncio.sleep(STATS_INTERVAL)

    # ------------------------------------------------------------------------------ events in

    def _on_check_stall(self, notice: StallNotice[CheckerRef]) -> None:
        ref = notice.key
        kind = self.checks.checker_kind(ref) if self.checks is not None else ""
        if notice.stalled:
            self.bus.publish(CheckStalled(vs=ref.rs.vs, rs=ref.rs.rs, checker=kind, silent_for=notice.silent_for,
                                          limit=notice.limit, running=notice.running))
        else:
            self.bus.publish(CheckResumed(vs=ref.rs.vs, rs=ref.rs.rs, checker=kind, silent_for=notice.silent_for))

    def _on_check_actions(self, actions: Sequence[CheckAction]) -> None:
        changed = False
        for action in actions:
            if isinstance(action, LogEvent):
                self.bus.publish(LogLine(message=action.message, level=_LEVELS.get(action.level, "info"),  # type: ignore[arg-type]
                                         source="check"))
            elif isinstance(action, RealServerState):
                rid = RsId(action.vs, action.rs)
                new = "up" if action.alive else "down"
                old = self._health.get(rid, "down" if action.alive else "up")
                self._health[rid] = new
                if old != new:
                    self.bus.publish(RealServerStateChanged(vs=action.vs, rs=action.rs, old=old, new=new))
            else:
                changed = True
        if changed:
            self._mark_dirty()

    def _on_script_run(self, run: ScriptRun) -> None:
        """A vrrp_script or MISC_CHECK ran (or was refused): its exit, duration and output go to the log."""
        self.bus.publish(self._script_log.event(run))

    def _on_vrrp_event(self, event: VrrpEvent) -> None:
        if isinstance(event, InstanceStateChanged):
            self.bus.publish(VrrpTransition(instance=event.instance, old=event.old.name, new=event.new.name,
                                            reason=event.reason, priority=event.priority))
            self._follow_sync_daemon(event.instance, event.new)
            if event.new.name == "MASTER":
                self._masters.add(event.instance)
            else:
                self._masters.discard(event.instance)
            self._apply_ha_suspend()
        elif isinstance(event, SplitBrainStarted):
            self.bus.publish(SplitBrain(instance=event.instance, peer=str(event.peer),
                                        peer_priority=event.peer_priority, vrid=event.vrid))
        elif isinstance(event, SplitBrainEnded):
            self.bus.publish(SplitBrainResolved(instance=event.instance, peer=str(event.peer), won=event.won,
                                                winner=None if event.winner is None else str(event.winner)))
        elif isinstance(event, RadarAlarmRaised):
            self.bus.publish(RadarAlarm(interface=event.interface, vrid=event.vrid, family=event.family,
                                        instance=event.instance, senders=tuple(str(a) for a, _ in event.senders),
                                        priorities=tuple(p for _, p in event.senders)))
        elif isinstance(event, RadarAlarmCleared):
            self.bus.publish(RadarCleared(interface=event.interface, vrid=event.vrid, family=event.family,
                                          instance=event.instance, lasted=event.lasted,
                                          remaining=None if event.remaining is None else str(event.remaining)))
        else:
            self.bus.publish(LogLine(message=event.message, source="vrrp"))
        self.notifier.on_vrrp_event(event)  # notify scripts and SMTP alerts, never blocking

    def _follow_sync_daemon(self, instance: str, state: State) -> None:
        daemon = self.config.global_defs.lvs_sync_daemon
        if daemon is None or self.ipvs is None:
            return
        if daemon.instance is not None and daemon.instance != instance:
            return
        role: SyncRole = "master" if state is State.MASTER else "backup" if state is State.BACKUP else "none"
        params = SyncDaemonParams.from_config(daemon)
        task = asyncio.get_running_loop().create_task(self.ipvs.set_sync_role(role, params))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    def _lag_margins(self) -> list[Margin]:
        """Half the Skew_Time of every instance whose timers run (BACKUP: Master_Down; MASTER: adverts)."""
        if self.vrrp is None:
            return []
        return [Margin(name, runtime.machine.skew_time) for name, runtime in self.vrrp.instances.items()
                if runtime.machine.state in (State.BACKUP, State.MASTER)]

    def _on_lag_notice(self, notice: Notice) -> None:
        if isinstance(notice, LagExceeded):
            event = LoopLagWarning(instance=notice.instance, lag_ms=notice.lag * 1000, limit_ms=notice.limit * 1000,
                                   skew_ms=notice.skew_time * 1000)
        else:
            event = LoopLagWarning(instance=notice.instance, lag_ms=notice.worst * 1000,
                                   limit_ms=notice.limit * 1000, recovered=True, lasted=notice.lasted)
        self.bus.publish(event)

    def _on_ipvs_event(self, event: SyncEvent) -> None:
        for drift_event in drift_events(event):
            self.bus.publish(drift_event)
        if event.kind == "error":
            self.bus.publish(EngineWarning(message=str(event.message), code="ipvs"))

    # ------------------------------------------------------------------------------ DirectorCore

    def snapshot(self) -> DirectorSnapshot:
        return self._assemble(list(self._vs_views()))

    async def snapshot_sliced(self, slice_seconds: float = SNAPSHOT_SLICE) -> DirectorSnapshot:
        """``snapshot()`` taken in slices of about ``slice_seconds``, letting the loop run between them.

        With thousands of real servers a snapshot takes tens of milliseconds: taken at once, it would hold up
        VRRP timers, checks and a console's keys for that long. Each virtual server's view is taken whole, with
        the counters, table weights and stalled checks as they were when the snapshot began; the VRRP
        instances and engine figures are taken at the end."""
        views = []
        clock = time.perf_counter
        deadline = clock() + slice_seconds
        for view in self._vs_views():
            views.append(view)
            if clock() >= deadline:
                await asyncio.sleep(0)
                deadline = clock() + slice_seconds
        return self._assemble(views)

    def _vs_views(self) -> Iterator[VirtualServerView]:
        """The running config's virtual servers, one view at a time (see ``snapshot_sliced``)."""
        stalled = self.checks.stalled_servers() if self.checks is not None else set()
        layout = self._current_layout()
        stats = self._stats
        for vs_layout, weights in zip(layout.virtual_servers, self._table_weights(layout), strict=True):
            yield self._vs_view(vs_layout, weights, stalled, stats)

    def _assemble(self, views: list[VirtualServerView]) -> DirectorSnapshot:
        """The snapshot: ``views`` (with the servers draining after a reload), VRRP instances, engine figures."""
        now = time.time()
        instances = []
        if self.vrrp is not None:
            for snap in self.vrrp.snapshot():
                instances.append(VrrpInstanceView(
                    name=snap.name, state=snap.state, priority=snap.priority, base_priority=snap.base_priority,
                    vrid=snap.vrid, interface=snap.interface, advert_int=snap.advert_int,
                    master=snap.master_address, since=now - snap.in_state_for,
                    runtime_priority=self.runtime_priority.get(snap.name), sync_group=snap.sync_group,
                    vips=snap.vips, counters=dict(snap.counters),
                    split_brain=", ".join(snap.split_brain) or None,
                    peers=tuple(p.as_json() for p in snap.peer_status), election=self.vrrp.explain(snap.name),
                ))
        if len(self.retiring):
            views = self._with_retiring(views, now)
        stats = {
            "uptime": now - self.started_at,
            "ipvs_in_sync": self.ipvs.in_sync if self.ipvs is not None else False,
            "ipvs_drift": len(self.vip_drift.items) + (len(self.ipvs.drift) if self.ipvs is not None else 0),
            "dry_run": self.dry_run,
            **self.loop_lag.stats(),
        }
        if self.checks is not None:
            cs = self.checks.snapshot(servers=False)
            stats.update(checks=cs.checks, checks_in_flight=cs.in_flight, check_lateness_p99=cs.lateness_p99)
        sync_coverage = self.conns.coverage_json()
        if sync_coverage is not None:
            stats["sync_coverage"] = sync_coverage
        radar = self.vrrp.radar_report() if self.vrrp is not None else RadarReport()
        held = (*(self.ipvs.drift if self.ipvs is not None else ()), *self.vip_drift.items)
        drift = drift_views(held, self._current_layout()) if held else ()
        return DirectorSnapshot(now, tuple(instances), tuple(views), stats, radar=radar, drift=tuple(
            dict(view) for view in drift))

    def _with_retiring(self, views: list[VirtualServerView], now: float) -> list[VirtualServerView]:
        """``views`` plus the draining servers a reload removed, under their VS (kept in the list if it went too)."""
        clock_offset = now - time.monotonic()
        extra: dict[str, list[RealServerView]] = {}
        removed_vs: dict[str, RetiringServer] = {}
        for retirement in self.retiring:
            server = retirement.subject
            view = server_view(server, retirement.deadline + clock_offset, self._table, self._stats)
            extra.setdefault(server.rid.vs, []).append(view)
            removed_vs.setdefault(server.rid.vs, server)
        out = []
        for vs_view in views:
            added = extra.pop(vs_view.key, None)
            out.append(vs_view if added is None else
                       dataclasses.replace(vs_view, real_servers=vs_view.real_servers + tuple(added)))
        for key, rs_views in extra.items():
            first = removed_vs[key]
            out.append(removed_vs_view(first.vs, first.services, rs_views, self._stats))
        return out

    def _current_layout(self) -> Layout:
        """The layout of the running config: rebuilt when the config object changes (reload, rollback)."""
        layout = self._layout
        if layout is None or not layout.is_for(self.config):
            layout = self._layout = build_layout(self.config)
        return layout

    def _table_weights(self, layout: Layout) -> tuple[tuple[int | None, ...], ...]:
        """``table_weights(layout, self._table)``, read again only when the table or the layout changed."""
        cached = self._weights
        if cached is not None and cached[0] is layout and cached[1] is self._table:
            return cached[2]
        weights = table_weights(layout, self._table)
        self._weights = (layout, self._table, weights)
        return weights

    def _vs_view(self, layout: VirtualServerLayout, weights: tuple[int | None, ...], stalled: set[PolicyRef],
                 stats: Stats) -> VirtualServerView:
        """The config's part from ``layout``, combined with what changes: health, overrides, table weights
        (``weights``, one per real server), counters, stalled checks."""
        overrides = self.overrides
        policy = self.checks.policy if self.checks is not None else None
        dest_stats = stats.dests
        vs_traffic = [stats.service(key) for key in layout.service_keys]
        cps = sum(c.cps for c in vs_traffic)
        bps = sum(c.inbps + c.outbps for c in vs_traffic)
        rs_views = []
        for rs, weight in zip(layout.real_servers, weights, strict=True):
            override = overrides.get(rs.rid) if overrides else None
            drained = override is not None and override.drain
            disabled = override is not None and override.disabled
            alive = True
            if policy is not None:
                try:
                    alive = policy.is_alive(rs.check_ref)
                except KeyError:
                    alive = True
            health: Health
            if disabled:
                health = "disabled"
            elif drained:
                health = "draining"
            elif not alive:
                health = "inhibited" if weight is not None else "down"
            else:
                health = "up"
            traffic: Counters
            if weight is None:
                active = inactive = persist = rs_cps = rs_bps = 0
                traffic = ZERO_COUNTERS
            elif len(rs.dests) == 1:
                dc = dest_stats.get(rs.dests[0], ZERO_DEST_COUNTERS)
                active, inactive, persist = dc.activeconns, dc.inactconns, dc.persistconns
                rs_cps, rs_bps = dc.cps, dc.inbps + dc.outbps
                traffic = dc
            else:
                parts = [dest_stats.get(pair, ZERO_DEST_COUNTERS) for pair in rs.dests]
                active = sum(dc.activeconns for dc in parts)
                inactive = sum(dc.inactconns for dc in parts)
                persist = sum(dc.persistconns for dc in parts)
                rs_cps = sum(dc.cps for dc in parts)
                rs_bps = sum(dc.inbps + dc.outbps for dc in parts)
                traffic = _summed(parts)
            rs_views.append(real_server_view(
                key=rs.rid.rs, address=rs.address, port=rs.port, forward=rs.forward,
                weight=weight, config_weight=rs.config_weight, health=health,
                active_conns=active, inactive_conns=inactive, persist_conns=persist, cps=rs_cps, bps=rs_bps,
                drained=drained, disabled=disabled, weight_override=None if override is None else override.weight,
                traffic=traffic, check_stalled=bool(stalled) and rs.check_ref in stalled,
                floor_kept=rs.rid.rs in self._floor_kept.get(layout.key, ()),
            ))
        quorum_up = True
        if policy is not None:
            try:
                quorum_up = policy.quorum_up(layout.key)
            except KeyError:
                quorum_up = True
        vs = layout.vs
        return VirtualServerView(
            key=layout.key, address=vs.address, port=vs.port, protocol=vs.protocol, fwmark=vs.fwmark,
            group=vs.group, scheduler=vs.lvs_sched, persistence_timeout=vs.persistence_timeout, quorum_up=quorum_up,
            real_servers=tuple(rs_views), cps=cps, bps=bps, traffic=_summed(vs_traffic),
            quorum=vs.quorum, min_healthy=vs.min_healthy,
        )

    async def set_override(self, targets: Sequence[RsId], change: OverrideChange) -> Sequence[str]:
        ramps: list[tuple[RsId, int, float]] = []
        for target in targets:
            self.slow_starts.cancel(target)  # the operator's latest word wins over a ramp in progress
            override = self.overrides.setdefault(target, Override())
            if change.kind == "drain":
                override.drain = True
            elif change.kind == "undrain":
                ramp = self._slow_start_of(target) if override.drain else None
                override.drain = False
                override.weight = None
                if ramp is not None:
                    override.weight = 1
                    ramps.append((target, *ramp))
            elif change.kind == "weight":
                override.weight = change.weight
            elif change.kind == "disable":
                override.disabled = True
            elif change.kind == "enable":
                override.disabled = False
            elif change.kind == "state":
                override.drain = change.state == "drain"
                override.disabled = change.state == "maint"
            if self.checks is not None:
                if override.disabled:
                    self.checks.pause(PolicyRef(target.vs, target.rs))
                else:
                    self.checks.resume(PolicyRef(target.vs, target.rs))
            if override.empty:
                del self.overrides[target]
        cause = f"operator state {change.state}" if change.kind == "state" else f"operator {change.kind}"
        applied = await self._sync_table(cause)
        self._follow_drains(targets, "state" if change.kind == "state" else "operator")
        for target, weight, seconds in ramps:
            self.slow_starts.start(target, weight, seconds)
        return applied

    def _slow_start_of(self, target: RsId) -> tuple[int, float] | None:
        """(configured weight, slow_start seconds) of the real server, when it has a slow start (rs wins over vs)."""
        for vs in self.config.virtual_servers:
            for rs in vs.real_servers:
                if rs_id(vs, rs) == target:
                    seconds = rs.slow_start if rs.slow_start is not None else vs.slow_start
                    return (rs.weight, seconds) if seconds and rs.weight > 1 else None
        return None

    async def _ramp_weight(self, target: RsId, weight: int | None) -> None:
        """A slow start's step: the runtime weight, straight (``set_override`` would cancel the ramp)."""
        override = self.overrides.get(target)
        if override is None or override.drain or override.disabled:
            return
        override.weight = weight
        if override.empty:
            del self.overrides[target]
        await self._sync_table("slow start")

    # ------------------------------------------------------------------------------ drain watches

    def _follow_drains(self, targets: Sequence[RsId], source: Source) -> None:
        """Draining targets are watched; those now in maint end their watch; the others are no longer watched."""
        for target in targets:
            override = self.overrides.get(target)
            if override is not None and override.disabled:
                self.drains.end(target)
            elif override is not None and override.drain:
                self.drains.ensure(target, self._dests_of(target), source)
            else:
                self.drains.forget(target)

    def _dests_of(self, target: RsId) -> tuple[DestRef, ...]:
        for vs in self._current_layout().virtual_servers:
            if vs.key == target.vs:
                for rs in vs.real_servers:
                    if rs.rid == target:
                        return rs.dests
        return ()

    async def _remove_drained(self, target: RsId) -> None:
        """``then remove``: the drained server goes into maint, as ``disable`` would put it."""
        await self.set_override([target], OverrideChange("disable"))

    def watch_drain(self, targets: Sequence[RsId], plan: DrainPlan) -> list[WatchedServer]:
        """Watch the (drained) targets with ``plan``; returns their watches."""
        return [self.drains.watch(t, self._dests_of(t), plan, "operator") for t in targets]

    def drain_watches(self) -> list[WatchedServer]:
        return self.drains.watches()

    async def apply_config(self, config: m.Config, plan: ReloadPlan) -> Sequence[str]:
        old = self.config
        old_table = self._table
        self.config = config
        self.notifier.config = config
        if self._drain_hz is None:
            self.drains.hz = config.global_defs.drain_sample_rate
        begun: list[RsId] = []
        try:
            if self.vrrp is not None:
                removed = [inst for inst in old.instances if config.instance(inst.name) is None]
                priorities = {name: r.machine.priority for name, r in self.vrrp.instances.items()}
                await self.vrrp.reload(config)
                for inst in removed:  # keepalived: FAULT (DELETED with notify_deleted) for a deleted instance
                    self.notifier.notify_removed(inst, priorities.get(inst.name, inst.priority))
            self._fit_open_file_limit(config)
            if self.checks is not None and _checks_changed(plan) and self.checks.reload(config, plan):
                # In place: only the virtual servers the plan touches are rebuilt, the other checks run on.
                self.check_recorder.retain(self.checks.setup.checkers.keys())  # the refs, without building them
            elif self.checks is not None and _checks_changed(plan):
                # A change that reaches every check: a new service, which adopts the unchanged servers' state.
                replacement = self._check_service(config)
                replacement.policy.adopt(self.checks.policy)
                await self.checks.stop(shutdown=False)
                self.checks = replacement
                self.check_recorder.retain(replacement.policy.checker_refs())
                await replacement.start()
            self._masters &= {inst.name for inst in config.instances}
            self._apply_ha_suspend()  # new or changed ha_suspend servers, new real servers of suspended ones
            # Overrides of real servers that no longer exist are dropped with them.
            known = configured_servers(config) if self.overrides else set()
            for rid in [r for r in self.overrides if r not in known]:
                del self.overrides[rid]
            # Removed servers still carrying connections drain at weight 0 first: counters read now, not the
            # last sample, so a connection opened this second is not cut.
            survivors, lost = reload_removals(old, config, old_table, (r.key for r in self.retiring),
                                              key_of=self._shapes.key_of)
            if lost:
                with contextlib.suppress(OSError):
                    self._stats = await self.backend.read_stats()
            begun = self._begin_retirements(survivors, lost, self._stats)
            if self.ipvs is not None:
                self.ipvs.drift_policy = config.global_defs.ipvs_drift
            changes = await self._sync_table("reload")
            self.conns.configure(config.global_defs)
            return changes
        except Exception as exc:
            self.config = old
            self.notifier.config = old
            for rid in begun:
                self.retiring.keep(rid)
            raise DirectorError(f"could not apply the new configuration: {exc}") from exc

    async def reconcile_drift(self, ids: Sequence[str]) -> Sequence[str]:
        """Push intent back over the held drift items ``ids`` (DriftCore)."""
        if self.ipvs is None:
            raise DirectorError("IPVS is not running")
        wanted = set(ids)
        items = [item for item in self.ipvs.drift if item.id in wanted]
        vips = [item for item in self.vip_drift.items if item.id in wanted]
        missing = wanted - {item.id for item in (*items, *vips)}
        if missing:
            raise DirectorError(f"no drift item {', '.join(sorted(missing))} (any more)")
        texts: list[str] = []
        if items:
            async with self._apply_lock:
                ops = await self.ipvs.reconcile(items)
            if not ops:
                raise DirectorError(self.ipvs.last_error or "the kernel refused the repair")
            texts = [str(op) for op in ops]
            self.bus.publish(TableChanged(ops=tuple(texts), cause="drift reconcile"))
        if vips and self.vrrp is not None:
            for item in vips:
                runtime = self.vrrp.instances.get(item.instance or "")
                if runtime is None or not runtime.restore_vips([item.vip or ""]):
                    raise DirectorError(f"{item.where}: the instance no longer holds it (not MASTER)")
                texts.append(f"add VIP {item.vip} on {item.interface} ({item.instance})")
            await self.check_vip_drift()
        return texts

    async def _vip_drift_loop(self) -> None:
        while True:
            await asyncio.sleep(self.ipvs.check_interval if self.ipvs is not None else VIP_DRIFT_INTERVAL)
            try:
                await self.check_vip_drift()
            except OSError as exc:
                self.bus.publish(EngineWarning(message=f"cannot read the interface addresses: {exc}", code="drift"))

    async def check_vip_drift(self) -> None:
        """Compare the VIPs our MASTER instances hold with the addresses on their interfaces; publish what went
        missing or came back."""
        if self.vrrp is None:
            return
        before = held_vips(self.vrrp.instances.values())
        present = await present_addresses() if before else set()
        # a transition during the read is no drift: only VIPs held before and after count
        still = set(held_vips(self.vrrp.instances.values()))
        appeared, cleared = self.vip_drift.update(detect_vips([v for v in before if v in still], present))
        for item in cleared:
            self.bus.publish(item_event(IpvsDriftCleared, item))
        for item in appeared:
            self.bus.publish(item_event(IpvsDriftDetected, item))

    async def set_priority(self, instance: str, priority: int | None) -> str:
        if self.vrrp is None or instance not in self.vrrp.instances:
            raise DirectorError(f"no VRRP instance {instance}")
        try:
            text = self.vrrp.set_runtime_priority(instance, priority)
        except ValueError as exc:
            raise DirectorError(str(exc)) from exc
        if priority is None:
            self.runtime_priority.pop(instance, None)
        else:
            self.runtime_priority[instance] = priority
        return text

    async def failover(self, instance: str) -> str:
        if self.vrrp is None or instance not in self.vrrp.instances:
            raise DirectorError(f"no VRRP instance {instance}")
        try:
            return self.vrrp.failover(instance)
        except ValueError as exc:
            raise DirectorError(str(exc)) from exc

    # ------------------------------------------------------------------------------ CheckFlightCore

    def check_history(self, targets: Sequence[RsId]) -> Sequence[CheckerHistory]:
        return self._check_flight.history(targets)

    async def check_now(self, targets: Sequence[RsId]) -> Sequence[ProbeNow]:
        return await self._check_flight.run_now(targets)

    # ------------------------------------------------------------------------------ ConnTableCore

    async def read_connections(self) -> Sequence[Connection]:
        return await self.conns.read_connections()

    async def trace_inputs(self, vs_keys: Sequence[str]) -> Sequence[tuple[str, TraceInput]]:
        return await self.conns.trace_inputs(vs_keys)

    async def sync_coverage(self, peer: ListenAddress | None) -> tuple[ListenAddress, Coverage]:
        return await self.conns.sync_coverage(peer)

    def _absent_reason(self, rid: RsId) -> str:
        """Why a configured real server is not in the table, for the tracer."""
        override = self.overrides.get(rid)
        if override is not None and override.disabled:
            return "maint: out of the table, checks paused"
        return "health check failed" if self._health.get(rid) == "down" else "not in the table"


_COUNTER_FIELDS = tuple(f.name for f in dataclasses.fields(Counters))


def _summed(parts: Sequence[Counters]) -> Counters:
    """One virtual server may be several IPVS services (a group, a dual-stack fwmark): add them up."""
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return ZERO_COUNTERS
    return Counters(**{name: sum(getattr(p, name) for p in parts) for name in _COUNTER_FIELDS})


def _retired_event(removal: Removal[RsId, RetiringServer]) -> RealServerRetired:
    return RealServerRetired(vs=removal.key.vs, rs=removal.key.rs, reason=removal.reason, active=removal.active,
                             drained_for=removal.drained_for)


def _checks_changed(plan: ReloadPlan) -> bool:
    return any(c.section in ("virtual_server", "real_server", "checker", "track_file", "virtual_server_group",
                             "global_defs", "SSL") for c in plan.changes)
