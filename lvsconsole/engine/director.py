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
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from lvsconsole.check.policy import Action as CheckAction
from lvsconsole.check.policy import LogEvent, RealServerState, format_trio
from lvsconsole.check.policy import RsRef as PolicyRef
from lvsconsole.check.service import CheckService
from lvsconsole.config import model as m
from lvsconsole.config.diff import ReloadPlan
from lvsconsole.engine.bus import EventBus
from lvsconsole.engine.director_api import (
    DirectorError,
    DirectorSnapshot,
    OverrideChange,
    RealServerView,
    RsId,
    VirtualServerView,
    VrrpInstanceView,
)
from lvsconsole.engine.events import EngineWarning, LogLine, RealServerStateChanged, TableChanged, VrrpTransition
from lvsconsole.engine.notify import Notifier
from lvsconsole.ipvs.backend import Backend, Stats
from lvsconsole.ipvs.from_config import real_server_dest, sorry_server_dest, virtual_services
from lvsconsole.ipvs.sync import IpvsSync, SyncDaemonParams, SyncEvent, SyncRole
from lvsconsole.ipvs.table import Dest, Service, Table
from lvsconsole.vrrp.events import InstanceStateChanged, VrrpEvent
from lvsconsole.vrrp.machine import State
from lvsconsole.vrrp.service import VrrpService

log = logging.getLogger("lvsconsole.engine")

STATS_INTERVAL = 1.0
NOTIFY_CLOSE_GRACE = 5.0
"""How long stop() waits for notify scripts (STOP ones included) and SMTP alerts still running."""
_LEVELS = {"debug": "debug", "info": "info", "notice": "notice", "warning": "warning", "error": "error"}


def vs_key(vs: m.VirtualServer) -> str:
    """keepalived's name of a virtual server (FMT_VS), the identity every face uses."""
    if vs.group is not None:
        return f"[{vs.group}]:{vs.port or 0}"
    if vs.fwmark is not None:
        return f"FWM {vs.fwmark}"
    return format_trio(str(vs.address), vs.protocol.lower(), vs.port or 0)


def rs_key(vs: m.VirtualServer, address: m.IPAddress, port: int | None) -> str:
    protocol = "none" if vs.fwmark is not None else vs.protocol.lower()
    return format_trio(str(address), protocol, port or 0)


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
                 run_checks: bool = True) -> None:
        self.config = config
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
        self._health: dict[RsId, str] = {}
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._apply_lock = asyncio.Lock()
        self._unlisten: list[object] = []
        self.notifier = Notifier(config, bus)

    # ------------------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        cfg = self.config
        self.ipvs = IpvsSync.from_globals(self.backend, cfg.global_defs, on_event=self._on_ipvs_event)
        if self.run_checks:
            self.checks = CheckService(cfg, self._on_check_actions)
            await self.checks.start()
        await self.ipvs.start(self.desired_table())
        self.vrrp = VrrpService(cfg, dry_run=self.dry_run)
        self.vrrp.add_listener(self._on_vrrp_event)
        await self.vrrp.start()
        self._tasks = [
            asyncio.create_task(self._table_loop(), name="lvsconsole-table"),
            asyncio.create_task(self._stats_loop(), name="lvsconsole-stats"),
        ]
        self.bus.publish(LogLine(message=f"Director started with {len(cfg.instances)} VRRP instance(s), "
                                         f"{len(cfg.virtual_servers)} virtual server(s)", source="engine"))

    async def stop(self) -> None:
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

    def desired_table(self) -> Table:
        """Config services × the check policy's dests × the operator's overrides."""
        policy = self.checks.policy if self.checks is not None else None
        entries: list[tuple[Service, list[Dest]]] = []
        for item in virtual_services(self.config):
            vs = item.vs
            key = vs_key(vs)
            live: dict[str, int] | None = None
            if policy is not None:
                try:
                    live = policy.desired_dests(key)
                except KeyError:
                    live = {}
            for service in item.services:
                dests: list[Dest] = []
                for rs in vs.real_servers:
                    rkey = rs_key(vs, rs.address, rs.port if vs.fwmark is None else None)
                    weight = rs.weight if live is None else live.get(rkey)
                    override = self.overrides.get(RsId(key, rkey))
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
                if vs.sorry_server is not None and live is not None:
                    skey = rs_key(vs, vs.sorry_server.address, vs.sorry_server.port or vs.port)
                    sorry_weight = live.get(skey)
                    if sorry_weight is not None:
                        dests.append(sorry_server_dest(vs, service.key, sorry_weight))
                entries.append((service, dests))
        return Table(entries)

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

    async def _stats_loop(self) -> None:
        while True:
            try:
                self._stats = await self.backend.read_stats()
            except OSError as exc:
                self.bus.publish(EngineWarning(message=f"cannot read IPVS statistics: {exc}", code="stats"))
            await asyncio.sleep(STATS_INTERVAL)

    # ------------------------------------------------------------------------------ events in

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

    def _on_vrrp_event(self, event: VrrpEvent) -> None:
        if isinstance(event, InstanceStateChanged):
            self.bus.publish(VrrpTransition(instance=event.instance, old=event.old.name, new=event.new.name,
                                            reason=event.reason, priority=event.priority))
            self._follow_sync_daemon(event.instance, event.new)
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

    def _on_ipvs_event(self, event: SyncEvent) -> None:
        if event.kind == "drift":
            self.bus.publish(EngineWarning(message=str(event.message), code="drift"))
        elif event.kind == "error":
            self.bus.publish(EngineWarning(message=str(event.message), code="ipvs"))

    # ------------------------------------------------------------------------------ DirectorCore

    def snapshot(self) -> DirectorSnapshot:
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
                ))
        views = [self._vs_view(item.vs, item.services) for item in virtual_services(self.config)]
        stats = {
            "uptime": now - self.started_at,
            "ipvs_in_sync": self.ipvs.in_sync if self.ipvs is not None else False,
            "dry_run": self.dry_run,
        }
        if self.checks is not None:
            cs = self.checks.snapshot()
            stats.update(checks=cs.checks, checks_in_flight=cs.in_flight, check_lateness_p99=cs.lateness_p99)
        return DirectorSnapshot(now, tuple(instances), tuple(views), stats)

    def _vs_view(self, vs: m.VirtualServer, services: tuple[Service, ...]) -> VirtualServerView:
        key = vs_key(vs)
        policy = self.checks.policy if self.checks is not None else None
        rs_views = []
        cps = bps = 0
        for service in services:
            counters = self._stats.service(service.key)
            cps += counters.cps
            bps += counters.inbps + counters.outbps
        first = services[0] if services else None
        for rs in vs.real_servers:
            rkey = rs_key(vs, rs.address, rs.port if vs.fwmark is None else None)
            rid = RsId(key, rkey)
            override = self.overrides.get(rid, Override())
            dest = None
            if first is not None:
                probe = real_server_dest(vs, rs, first.key)
                dest = self._table[first.key].dests.get(probe.key) if first.key in self._table else None
            alive = True
            if policy is not None:
                try:
                    alive = policy.is_alive(PolicyRef(key, rkey))
                except KeyError:
                    alive = True
            if override.disabled:
                health = "disabled"
            elif override.drain:
                health = "draining"
            elif not alive:
                health = "inhibited" if dest is not None else "down"
            else:
                health = "up"
            active = inactive = persist = rs_cps = rs_bps = 0
            for service in services:
                if dest is None:
                    break
                dc = self._stats.dest(service.key, dest.key)
                active += dc.activeconns
                inactive += dc.inactconns
                persist += dc.persistconns
                rs_cps += dc.cps
                rs_bps += dc.inbps + dc.outbps
            method = rs.lvs_method or vs.lvs_method
            rs_views.append(RealServerView(
                key=rkey, address=rs.address, port=rs.port, forward=method.kind,
                weight=None if dest is None else dest.weight, config_weight=rs.weight, health=health,  # type: ignore[arg-type]
                active_conns=active, inactive_conns=inactive, persist_conns=persist, cps=rs_cps, bps=rs_bps,
                drained=override.drain, disabled=override.disabled, weight_override=override.weight,
            ))
        quorum_up = True
        if policy is not None:
            try:
                quorum_up = policy.quorum_up(key)
            except KeyError:
                quorum_up = True
        return VirtualServerView(
            key=key, address=vs.address, port=vs.port, protocol=vs.protocol, fwmark=vs.fwmark, group=vs.group,
            scheduler=vs.lvs_sched, persistence_timeout=vs.persistence_timeout, quorum_up=quorum_up,
            real_servers=tuple(rs_views), cps=cps, bps=bps,
        )

    async def set_override(self, targets: Sequence[RsId], change: OverrideChange) -> Sequence[str]:
        for target in targets:
            override = self.overrides.setdefault(target, Override())
            if change.kind == "drain":
                override.drain = True
            elif change.kind == "undrain":
                override.drain = False
                override.weight = None
            elif change.kind == "weight":
                override.weight = change.weight
            elif change.kind == "disable":
                override.disabled = True
            elif change.kind == "enable":
                override.disabled = False
            if override.empty:
                del self.overrides[target]
        return await self._sync_table(f"operator {change.kind}")

    async def apply_config(self, config: m.Config, plan: ReloadPlan) -> Sequence[str]:
        old = self.config
        self.config = config
        self.notifier.config = config
        try:
            if self.vrrp is not None:
                await self.vrrp.reload(config)
            if self.checks is not None and _checks_changed(plan):
                # Unchanged real servers keep their check state and schedule; only what changed restarts.
                replacement = CheckService(config, self._on_check_actions)
                replacement.policy.adopt(self.checks.policy)
                await self.checks.stop(shutdown=False)
                self.checks = replacement
                await replacement.start()
            # Overrides of real servers that no longer exist are dropped with them.
            known = {RsId(vs_key(vs), rs_key(vs, rs.address, rs.port if vs.fwmark is None else None))
                     for vs in config.virtual_servers for rs in vs.real_servers}
            for rid in [r for r in self.overrides if r not in known]:
                del self.overrides[rid]
            return await self._sync_table("reload")
        except Exception as exc:
            self.config = old
            self.notifier.config = old
            raise DirectorError(f"could not apply the new configuration: {exc}") from exc

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


def _checks_changed(plan: ReloadPlan) -> bool:
    return any(c.section in ("virtual_server", "real_server", "checker", "track_file", "virtual_server_group")
               for c in plan.changes)
