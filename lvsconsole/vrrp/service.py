"""The VRRP service: every vrrp_instance of a config running on the host, with tracking and sync groups.

    service = VrrpService(config)
    await service.start()
    async for event in service.subscribe(): ...     # or service.add_listener(callback)
    service.snapshot()                              # per-instance state for the UI
    await service.reload(new_config)                # unchanged instances are left alone
    await service.stop()                            # priority-0 adverts, VIPs removed

``dry_run``: nothing is ever sent and no address is touched. The instances still run (and listen, if
the process may open raw sockets), so their states show what would happen. Sending adverts without
taking the addresses could make a real peer drop them, so a dry run stays silent.

:func:`run_vrrp` is the one call the ``lvsconsole run`` command needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace

from lvsconsole.config import model as m
from lvsconsole.scripts.report import ScriptReporter
from lvsconsole.vrrp.addresses import AddressManager, GratuitousSender, describe, vip_device
from lvsconsole.vrrp.events import (
    GroupStateChanged,
    RadarAlarmCleared,
    RadarAlarmRaised,
    TrackerChanged,
    VrrpEvent,
)
from lvsconsole.vrrp.explain import Explanation, PeerStatus, explain, inputs_from
from lvsconsole.vrrp.instance import InstanceRuntime
from lvsconsole.vrrp.machine import Action, State, VrrpMachine
from lvsconsole.vrrp.netwatch import DeletionWatch
from lvsconsole.vrrp.owned import Gone, InstanceHit, StaticHit, owner_of
from lvsconsole.vrrp.packet import Advert, IPAddress
from lvsconsole.vrrp.params import InstanceSpec, instance_spec, interface_source, sync_group_of
from lvsconsole.vrrp.radar import AlarmRaised, Expected, Radar, RadarChange, RadarKey, RadarReport
from lvsconsole.vrrp.routes import RouteInstaller
from lvsconsole.vrrp.rtnl import RtnlChannel
from lvsconsole.vrrp.statics import StaticInstaller, static_set
from lvsconsole.vrrp.syncgroup import SyncGroup
from lvsconsole.vrrp.tracking import FileWatcher, InstanceTracking, LinkMonitor, ScriptRunner
from lvsconsole.vrrp.trackprocess import ProcessSpec, ProcessWatcher, process_specs, track_process_refs
from lvsconsole.vrrp.transport import Received, TransportPool
from lvsconsole.vrrp.vmac import VmacManager, VmacSpec

log = logging.getLogger("lvsconsole.vrrp")

RADAR_TICK = 0.5
"""Seconds between the radar's checks for senders gone quiet (an alarm clears without a packet to say so)."""

__all__ = ["InstanceSnapshot", "VrrpService", "run_vrrp"]


@dataclass(frozen=True, slots=True)
class InstanceSnapshot:
    """What the UI shows of one instance."""

    name: str
    interface: str
    family: int
    vrid: int
    version: int
    state: str
    priority: int
    base_priority: int
    master_address: str | None
    master_priority: int
    advert_int: float
    master_adver_int: float
    in_state_for: float
    source: str | None
    vips: tuple[str, ...]
    unicast_peers: tuple[str, ...]
    sync_group: str | None
    faults: tuple[str, ...]
    counters: dict[str, int] = field(default_factory=dict)
    split_brain: tuple[str, ...] = ()
    """Other masters heard while MASTER whose split-brain episode is still open."""
    peer_status: tuple[PeerStatus, ...] = ()
    """Each unicast peer: when it was last heard, and why the last send to it failed."""

    def as_json(self) -> dict[str, object]:
        out = {f: getattr(self, f) for f in self.__dataclass_fields__}
        out["peer_status"] = [p.as_json() for p in self.peer_status]
        return out


Fingerprint = tuple[tuple[object, ...], tuple[object, ...]]
HeldAddress = tuple[str, m.IPInterface]


def _fingerprint(config: m.Config, spec: InstanceSpec) -> Fingerprint:
    """What must be equal across a reload for an instance to be left alone: (everything but its virtual
    addresses, its virtual addresses). When only the addresses differ, the instance keeps running too."""
    inst = config.instance(spec.name)
    if inst is not None:
        inst = replace(inst, virtual_ipaddress=(), virtual_ipaddress_excluded=())
    bare = replace(spec, vips=(), excluded=(), params=replace(spec.params, addresses=()))
    scripts = tuple(s for s in config.vrrp_scripts if any(t.kind == "script" and t.name == s.name
                                                         for t in spec.tracks))
    files = tuple(f for f in config.track_files if any(t.kind == "file" and t.name == f.name for t in spec.tracks))
    processes = tuple(p for p in process_specs(config)
                      if any(t.kind == "process" and t.name == p.name for t in spec.tracks))
    return (inst, bare, scripts, files, processes, sync_group_of(config, spec.name)), (spec.vips, spec.excluded)


def _identity(spec: InstanceSpec) -> tuple[object, ...]:
    """What a reload cannot change in place: keepalived's instance identity (vrid, family, interface, unicast-ness
    and source, multicast group), plus the VRRP version, address ownership and the sync group. Everything else
    (priority, advert_int, preempt, preempt_delay, trackers and their weights, addresses ...) is applied to the
    running instance."""
    p = spec.params
    return (spec.interface, spec.family, p.vrid, p.version, p.owner, spec.unicast, spec.mcast_group,
            spec.configured_source, spec.sync_group, spec.vmac, spec.addr_vmacs)


def _held(spec: InstanceSpec) -> set[HeldAddress]:
    return {(vip_device(v, spec.address_interface), v.address) for v in spec.all_vips}


def _unheld(spec: InstanceSpec, vips: tuple[m.VirtualAddress, ...],
            held: set[HeldAddress]) -> tuple[m.VirtualAddress, ...]:
    return tuple(v for v in vips if (vip_device(v, spec.address_interface), v.address) not in held)


class VrrpService:
    def __init__(self, config: m.Config, *, dry_run: bool = False,
                 report_scripts: ScriptReporter | None = None) -> None:
        """``report_scripts`` receives every vrrp_script run (exit, duration, output, or why it was refused)."""
        self.config = config
        self.dry_run = dry_run
        self._runtimes: dict[str, InstanceRuntime] = {}
        self._fingerprints: dict[str, Fingerprint] = {}
        self._tracking: dict[str, InstanceTracking] = {}
        self._groups: dict[str, SyncGroup] = {}
        self._group_states: dict[str, State] = {}
        self._listeners: list[Callable[[VrrpEvent], None]] = []
        self._queues: list[asyncio.Queue[VrrpEvent | None]] = []
        self._pool: TransportPool | None = None
        rtnl = RtnlChannel()  # one request socket for the addresses, routes and rules of every instance
        self._addresses = AddressManager(dry_run=dry_run, channel=rtnl)
        self._routes = RouteInstaller(dry_run=dry_run, channel=rtnl)
        self._vmacs = VmacManager(dry_run=dry_run)
        self._garp = GratuitousSender(dry_run=dry_run)
        self._links = LinkMonitor(self._on_link)
        self._statics = StaticInstaller(self._addresses, self._routes)
        self._deletions = DeletionWatch(self.object_deleted)
        self._scripts = ScriptRunner((), self._on_script, script_user=config.global_defs.script_user,
                                     script_security=config.global_defs.enable_script_security,
                                     report=report_scripts)
        self._files = FileWatcher((), self._on_file)
        self._processes = ProcessWatcher((), self._on_process)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        self.radar = Radar()
        self._radar_ticker: asyncio.Task[None] | None = None

    # -- life cycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            raise RuntimeError("VrrpService already started")
        self._loop = asyncio.get_running_loop()
        self._pool = TransportPool(self._loop, observer=self.observe)
        self._started = True
        try:
            await self._links.start()
        except OSError as exc:
            log.warning("cannot watch links (%s); interfaces are assumed up", exc)
        if not self.dry_run:
            try:
                await self._deletions.start()
            except OSError as exc:
                log.warning("cannot watch address/route/rule deletions (%s); they go unnoticed", exc)
        self._statics.apply(static_set(self.config))
        self._scripts.update(self._used_scripts(self.config))
        self._files.update(self._used_files(self.config))
        self._files.start()
        self._processes.update(self._used_processes(self.config))
        self._processes.start()
        specs = self._build_specs(self.config)
        self._addresses.prepare()
        self._garp.prepare(sorted({v.dev or s.address_interface for s in specs for v in s.all_vips}))
        for spec in specs:
            await self._create(spec)
        self._rebuild_groups()
        self._configure_radar()
        self._radar_ticker = asyncio.create_task(self._tick_radar(), name="vrrp radar")
        for spec in specs:
            if spec.name in self._runtimes:
                self._runtimes[spec.name].start()

    async def stop(self) -> None:
        """Stop every instance: a MASTER sends priority 0 and its addresses are removed."""
        if not self._started:
            return
        if self._radar_ticker is not None:
            self._radar_ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._radar_ticker
            self._radar_ticker = None
        await self._scripts.stop()
        await self._files.stop()
        await self._processes.stop()
        await self._links.stop()
        await self._deletions.stop()
        runtimes = list(self._runtimes.values())
        for runtime in runtimes:
            runtime.after = None
            runtime.drive(lambda mach, now: mach.shutdown(now))
        await asyncio.gather(*(r.shutdown() for r in runtimes))
        for runtime in runtimes:
            self._release(runtime)
            await self._release_vmac(runtime.spec)
        self._runtimes.clear()
        self._statics.clear()
        if self._pool is not None:
            self._pool.close()
        self._garp.close()
        self._addresses.close()
        self._routes.close()
        self._started = False
        for queue in self._queues:
            queue.put_nowait(None)

    async def reload(self, config: m.Config) -> None:
        """Apply a new config: unchanged instances keep their state; removed ones stop; others change in place.

        A changed instance keeps running (state, timers, counters) unless its identity changed (see
        :func:`_identity`): that one is stopped and started anew. As MASTER an instance changed in place
        configures and announces the addresses it gained and removes the ones it lost. An address held through
        the reload by an instance that stays MASTER is never removed, even by the instance it moved from: a VIP
        moved between two masters stays configured throughout and is announced by its new owner.
        """
        specs = {s.name: s for s in self._build_specs(config)}
        prints = {name: _fingerprint(config, spec) for name, spec in specs.items()}
        running = {name: self._fingerprints[name] for name in specs
                   if name in self._runtimes and name in self._fingerprints}
        keep = {name for name, old in running.items() if old == prints[name]}
        retarget = {name for name in running if name not in keep
                    and _identity(self._runtimes[name].spec) == _identity(specs[name])}
        held: set[HeldAddress] = set()
        for name in keep | retarget:
            if self._runtimes[name].machine.state is State.MASTER:
                held |= _held(specs[name])
        for name in [n for n in self._runtimes if n not in keep and n not in retarget]:
            runtime = self._runtimes.pop(name)
            log.info("(%s) %s on reload", name, "removed" if name not in specs else "changed")
            runtime.after = None
            spec = runtime.spec  # its shutdown leaves alone the addresses a master keeps
            runtime.spec = replace(spec, vips=_unheld(spec, spec.vips, held),
                                   excluded=_unheld(spec, spec.excluded, held))
            await runtime.shutdown()
            self._release(runtime)
            await self._release_vmac(runtime.spec)
            self._tracking.pop(name, None)
            self._fingerprints.pop(name, None)
        self.config = config
        self._statics.apply(static_set(config))
        self._scripts.set_policy(config.global_defs.script_user, config.global_defs.enable_script_security)
        self._scripts.update(self._used_scripts(config))
        self._files.update(self._used_files(config))
        self._processes.update(self._used_processes(config))
        for name in retarget:
            self._retarget(self._runtimes[name], specs[name], prints[name], held)
        fresh = [spec for name, spec in specs.items() if name not in keep and name not in retarget]
        for spec in fresh:
            await self._create(spec)
        self._rebuild_groups()
        self._configure_radar()
        for spec in fresh:
            if spec.name in self._runtimes:
                self._runtimes[spec.name].start()
        log.info("Reload finished: %d instance(s) kept, %d changed in place, %d (re)started", len(keep),
                 len(retarget), len(fresh))

    def _retarget(self, runtime: InstanceRuntime, spec: InstanceSpec, fingerprint: Fingerprint,
                  held: set[HeldAddress]) -> None:
        """Apply a reload's changes to a running instance of the same identity, keeping its state and timers."""
        assert self._loop is not None
        old = runtime.spec
        was_master = runtime.machine.state is State.MASTER
        runtime.spec = spec.with_source(old.params.source)
        self._fingerprints[spec.name] = fingerprint
        self._addresses.prepare(spec.all_vips, spec.address_interface)
        self._garp.prepare(sorted({vip_device(v, spec.address_interface) for v in spec.all_vips}))
        new_vips = spec.all_vips != old.all_vips
        # gained addresses are added and announced; the new priority follows from the tracking below
        runtime.execute(runtime.machine.reconfigure(runtime.spec.params, self._loop.time()))
        runtime.prepare_adverts()
        if was_master and new_vips:
            self._addresses.remove(_unheld(old, old.all_vips, held), old.address_interface)
        if was_master and (old.routes, old.rules) != (spec.routes, spec.rules):
            self._change_routes(runtime, old)
        if (old.garp_extra_interval, old.garp_extra_all) != (spec.garp_extra_interval, spec.garp_extra_all):
            runtime.refresh_extra_garp()
        tracking = self._new_tracking(spec)
        old_tracking = self._tracking.get(spec.name)
        if old_tracking is not None and old_tracking.base_priority != old.params.priority:
            tracking.base_priority = old_tracking.base_priority  # an operator's runtime priority outlives a reload
        self._tracking[spec.name] = tracking
        if old_tracking is not None:  # faults of trackers the reload took away
            for reason in sorted(runtime.machine.faults & (old_tracking.all_reasons - tracking.all_reasons)):
                self._set_fault(runtime, reason, False)
        self._apply_tracking(runtime, tracking)
        if new_vips:
            log.info("(%s) virtual addresses changed on reload: %s", spec.name,
                     ", ".join(describe(v) for v in spec.all_vips) or "none")
        log.info("(%s) changed in place on reload (%s kept)", spec.name, runtime.machine.state.name)

    def _new_tracking(self, spec: InstanceSpec) -> InstanceTracking:
        """The tracking of ``spec`` with every tracker's current status."""
        tracking = InstanceTracking(spec.params.priority, spec.tracks)
        for name in tracking.tracks_kind("interface"):
            tracking.set_up_down("interface", name, self._links.is_up(name) if self._links.state else True)
        for name in tracking.tracks_kind("script"):
            tracking.set_up_down("script", name, self._scripts.status(name))
        for name in tracking.tracks_kind("file"):
            tracking.set_file_value(name, self._files.values.get(name, 0))
        for name in tracking.tracks_kind("process"):
            tracking.set_up_down("process", name, self._processes.status(name))
        return tracking

    # -- building ---------------------------------------------------------------------------------

    def _build_specs(self, config: m.Config) -> list[InstanceSpec]:
        specs = []
        for inst in config.instances:
            try:
                specs.append(instance_spec(config, inst))
            except ValueError as exc:
                log.error("(%s) cannot run: %s", inst.name, exc)
        return specs

    @staticmethod
    def _used_scripts(config: m.Config) -> list[m.VrrpScript]:
        names = {r.name for i in config.instances for r in i.track_script}
        names |= {r.name for g in config.sync_groups for r in g.track_script}
        return [s for s in config.vrrp_scripts if s.name in names]

    @staticmethod
    def _used_processes(config: m.Config) -> list[ProcessSpec]:
        names: set[str] = set()
        for extra in (*(i.extra for i in config.instances), *(g.extra for g in config.sync_groups)):
            try:
                names |= {ref.name for ref in track_process_refs(extra)}
            except ValueError:
                continue  # reported when the instance's trackers are resolved
        return [p for p in process_specs(config) if p.name in names]

    @staticmethod
    def _used_files(config: m.Config) -> list[m.TrackFile]:
        names = {r.name for i in config.instances for r in i.track_file}
        names |= {r.name for g in config.sync_groups for r in g.track_file}
        return [f for f in config.track_files if f.name in names]

    async def _create(self, spec: InstanceSpec) -> None:
        assert self._loop is not None and self._pool is not None
        fingerprint = _fingerprint(self.config, spec)
        source = spec.configured_source
        if source is None:
            exclude = [v.address.ip for s in self.config.instances for v in
                       (*s.virtual_ipaddress, *s.virtual_ipaddress_excluded)]
            try:
                source = await interface_source(spec.interface, spec.family, exclude)
            except OSError as exc:
                log.warning("(%s) cannot read the addresses of %s: %s", spec.name, spec.interface, exc)
        spec = spec.with_source(source)
        machine = VrrpMachine(spec.params, self._loop.time())
        runtime = InstanceRuntime(spec, machine, addresses=self._addresses, garp=self._garp, emit=self._emit,
                                  loop=self._loop, routes=self._routes)
        if self.dry_run:
            runtime.transmit = False
        runtime.advert_sent = self.observe_own
        tracking = self._new_tracking(spec)
        if source is None:
            reason = f"no IPv{spec.family} address for interface"
            log.info("(%s) entering FAULT state (%s)", spec.name, reason)
            machine.set_fault(reason, self._loop.time())
        for reason in tracking.faults:
            machine.set_fault(reason, self._loop.time())
        machine.set_priority(tracking.total_priority, self._loop.time())
        made: list[VmacSpec] = []
        for vmac in (spec.vmac, *spec.addr_vmacs):
            if vmac is None:
                continue
            try:
                await self._vmacs.ensure(vmac)
            except OSError as exc:
                log.error("(%s) cannot run: %s", spec.name, exc)
                for undo in reversed(made):
                    await self._vmacs.release(undo)
                return
            made.append(vmac)
        if made:
            self._garp.prepare([v.name for v in made])  # they did not exist when start() opened the others
        sock = None
        try:
            sock = self._pool.acquire(spec.socket_interface, spec.family)
        except OSError as exc:
            if not self.dry_run:
                log.error("(%s) cannot open the VRRP socket on %s: %s", spec.name, spec.socket_interface, exc)
            else:
                log.warning("(%s) dry run without a VRRP socket on %s: %s", spec.name, spec.socket_interface, exc)
        self._addresses.prepare(spec.all_vips, spec.address_interface)
        try:
            runtime.attach(sock)
        except ValueError as exc:
            log.error("(%s) %s", spec.name, exc)
            self._pool.release(spec.socket_interface, spec.family)
            await self._release_vmac(spec)
            return
        self._runtimes[spec.name] = runtime
        self._tracking[spec.name] = tracking
        self._fingerprints[spec.name] = fingerprint

    def _release(self, runtime: InstanceRuntime) -> None:
        runtime.detach()
        if self._pool is not None:
            self._pool.release(runtime.spec.socket_interface, runtime.spec.family)

    async def _release_vmac(self, spec: InstanceSpec) -> None:
        """After the instance's shutdown: its macvlans go (the addresses on them went with the shutdown)."""
        for vmac in (spec.vmac, *spec.addr_vmacs):
            if vmac is None:
                continue
            try:
                await self._vmacs.release(vmac)
            except OSError as exc:
                log.warning("(%s) cannot remove VMAC %s: %s", spec.name, vmac.name, exc)

    def _change_routes(self, runtime: InstanceRuntime, old: InstanceSpec) -> None:
        """A MASTER's virtual routes / rules after a reload changed only them: the lost ones go, the new ones come."""
        spec = runtime.spec
        self._routes.remove([r for r in old.routes if r not in spec.routes],
                            [r for r in old.rules if r not in spec.rules], spec.name)
        if runtime.machine.state is State.MASTER:
            self._routes.add(spec.routes, spec.rules, spec.name)

    def _rebuild_groups(self) -> None:
        self._groups.clear()
        for runtime in self._runtimes.values():
            runtime.after = None
        for group in self.config.sync_groups:
            members = [self._runtimes[n] for n in group.group if n in self._runtimes]
            if len(members) < 2:
                continue
            self._groups[group.name] = SyncGroup(group.name, [r.machine for r in members])
            for runtime in members:
                runtime.after = self._after
        for name, group_obj in self._groups.items():
            self._group_states.setdefault(name, group_obj.state)

    # -- the wire radar ---------------------------------------------------------------------------

    def _configure_radar(self) -> None:
        self.radar.configure({
            RadarKey(r.spec.socket_interface, r.spec.family, r.spec.params.vrid): Expected(
                r.name, r.spec.params.version, r.spec.params.interval_cs, r.spec.params.auth,
                frozenset(r.spec.params.addresses))
            for r in self._runtimes.values()})

    def observe(self, interface: str, received: Received) -> None:
        """A packet the raw socket of ``interface`` received (the transport calls it for every one): to the radar."""
        changes = self.radar.observe_packet(interface, received.src, received.dst, received.data,
                                            ip_header=received.src.version == 4, now=received.at)
        self._radar_changes(changes)

    def observe_own(self, interface: str, source: IPAddress, advert: Advert) -> None:
        """An advert one of our instances just sent: to the radar, as our side of its VRID."""
        assert self._loop is not None
        self._radar_changes(self.radar.observe_own(interface, source, advert, self._loop.time()))

    async def _tick_radar(self) -> None:
        assert self._loop is not None
        while True:
            await asyncio.sleep(RADAR_TICK)
            self._radar_changes(self.radar.tick(self._loop.time()))

    def _radar_changes(self, changes: list[RadarChange]) -> None:
        for change in changes:
            key = change.key
            event: RadarAlarmRaised | RadarAlarmCleared
            if isinstance(change, AlarmRaised):
                event = RadarAlarmRaised(key.interface, key.family, key.vrid, change.instance, change.senders,
                                         time=time.time())
                log.warning("%s", event.message)
            else:
                event = RadarAlarmCleared(key.interface, key.family, key.vrid, change.instance, change.remaining,
                                          change.lasted, time=time.time())
                log.info("%s", event.message)
            self._emit(event)

    def radar_report(self) -> RadarReport:
        """Every sender the radar heard recently, and the open dual-master alarms."""
        now = self._loop.time() if self._loop is not None else time.monotonic()
        return self.radar.report(now)

    # -- sync groups ------------------------------------------------------------------------------

    def _group_of(self, runtime: InstanceRuntime) -> SyncGroup | None:
        name = runtime.spec.sync_group
        return self._groups.get(name) if name is not None else None

    def _runtime_of(self, machine: VrrpMachine) -> InstanceRuntime:
        return self._runtimes[machine.name]

    def _after(self, runtime: InstanceRuntime, actions: list[Action], now: float) -> None:
        group = self._group_of(runtime)
        if group is None:
            return
        for member, member_actions in group.react(runtime.machine, actions, now):
            self._runtime_of(member).execute(member_actions)
        self._note_group(group)

    def _note_group(self, group: SyncGroup) -> None:
        state = group.state
        if self._group_states.get(group.name) != state:
            self._group_states[group.name] = state
            if state is not State.INIT:
                self._emit(GroupStateChanged(group.name, state, time=time.time()))

    # -- tracking ---------------------------------------------------------------------------------

    def _on_link(self, name: str, up: bool) -> None:
        self._emit(TrackerChanged("interface", name, "UP" if up else "DOWN", time=time.time()))
        self._track_update(lambda t: t.set_up_down("interface", name, up))

    def _on_script(self, name: str, ok: bool) -> None:
        self._emit(TrackerChanged("script", name, "succeeded" if ok else "failed", time=time.time()))
        self._track_update(lambda t: t.set_up_down("script", name, ok))

    def _on_process(self, name: str, up: bool) -> None:
        self._emit(TrackerChanged("process", name, "gained" if up else "lost", time=time.time()))
        self._track_update(lambda t: t.set_up_down("process", name, up))

    def _on_file(self, name: str, value: int) -> None:
        self._emit(TrackerChanged("file", name, str(value), time=time.time()))
        self._track_update(lambda t: t.set_file_value(name, value))

    def _track_update(self, update: Callable[[InstanceTracking], bool]) -> None:
        for name, tracking in list(self._tracking.items()):
            if update(tracking) and name in self._runtimes:
                self._apply_tracking(self._runtimes[name], tracking)

    def _apply_tracking(self, runtime: InstanceRuntime, tracking: InstanceTracking) -> None:
        assert self._loop is not None
        machine = runtime.machine
        wanted = tracking.faults
        for reason in sorted(wanted - machine.faults):
            self._set_fault(runtime, reason, True)
        for reason in sorted((machine.faults & tracking.all_reasons) - wanted):
            self._set_fault(runtime, reason, False)
        total = tracking.total_priority
        runtime.drive(lambda mach, now: mach.set_priority(total, now))

    def _set_fault(self, runtime: InstanceRuntime, reason: str, on: bool) -> None:
        assert self._loop is not None
        group = self._group_of(runtime)
        if group is None:
            if on:
                runtime.drive(lambda mach, now: mach.set_fault(reason, now))
            else:
                runtime.drive(lambda mach, now: mach.clear_fault(now, reason))
            return
        now = self._loop.time()
        batch = group.set_fault(runtime.machine, reason, now) if on else \
            group.clear_fault(runtime.machine, reason, now)
        for member, actions in batch:
            self._runtime_of(member).execute(actions)
        self._note_group(group)

    # -- addresses, routes and rules deleted from outside -----------------------------------------

    def object_deleted(self, gone: Gone) -> None:
        """The kernel reports an address, route or rule deleted: act on it as keepalived does (vrrp/owned.py)."""
        masters = [r.spec for r in self._runtimes.values() if r.machine.state is State.MASTER]
        hit = owner_of(gone, masters, self._statics.current.view)
        if isinstance(hit, StaticHit):
            self._statics.reinstate(hit.obj)
        elif isinstance(hit, InstanceHit) and hit.instance in self._runtimes:
            self._leave_master(self._runtimes[hit.instance], f"{hit.what} deleted")

    def _leave_master(self, runtime: InstanceRuntime, reason: str) -> None:
        """keepalived's set_vrrp_backup: the instance and the masters of its sync group go BACKUP at once, each with
        a priority-0 advert and a Skew_Time down timer, so that the election that puts things back follows."""
        log.info("(%s) %s - leaving MASTER state", runtime.name, reason)
        group = self._group_of(runtime)
        members = [runtime] + ([self._runtime_of(m) for m in group.members if m is not runtime.machine]
                               if group is not None else [])
        for member in members:
            if member.machine.state is State.MASTER:
                after, member.after = member.after, None  # the group must not demote the others its own way
                member.drive(lambda mach, now: mach.leave_master(now, reason))
                member.after = after
        if group is not None:
            self._note_group(group)

    # -- operator overrides -----------------------------------------------------------------------

    def set_runtime_priority(self, name: str, priority: int | None) -> str:
        """Override an instance's base priority at run time (None: back to the configured one).

        Trackers still apply on top; the effective priority stays in 1-254, and an address owner
        (255) is never changed, as with keepalived. Returns what happened. ValueError for an unknown
        instance, a priority outside 1-254, or an address owner.
        """
        runtime = self._runtimes.get(name)
        tracking = self._tracking.get(name)
        if runtime is None or tracking is None:
            raise ValueError(f"no vrrp_instance {name}")
        configured = runtime.spec.params.priority
        if configured == 255:
            raise ValueError(f"({name}) is the address owner: its priority stays 255")
        base = configured if priority is None else priority
        if not 1 <= base <= 254:
            raise ValueError(f"priority {base} is outside 1-254")
        old = runtime.machine.priority
        tracking.base_priority = base
        self._apply_tracking(runtime, tracking)
        new = runtime.machine.priority
        source = "configured" if priority is None else "runtime"
        return f"({name}) base priority {base} ({source}), effective priority {old} -> {new}"

    def failover(self, name: str) -> str:
        """Hand mastership of ``name`` (and of its sync group's other masters) to the peer.

        Each sends priority 0, removes its addresses and stays BACKUP without preempting the peer that
        takes over (see :meth:`VrrpMachine.release`). ValueError if the instance is not MASTER.
        """
        runtime = self._runtimes.get(name)
        if runtime is None:
            raise ValueError(f"no vrrp_instance {name}")
        if runtime.machine.state is not State.MASTER:
            raise ValueError(f"({name}) is {runtime.machine.state.name}, not MASTER: nothing to hand over")
        group = self._group_of(runtime)
        members = [runtime] + ([self._runtime_of(m) for m in group.members if m is not runtime.machine]
                               if group is not None else [])
        released = []
        for member in members:
            if member.machine.state is State.MASTER:
                after, member.after = member.after, None  # the group must not re-promote its members
                member.drive(lambda mach, now: mach.release(now))
                member.after = after
                released.append(member.name)
        if group is not None:
            self._note_group(group)
        return f"released {', '.join(released)}: priority 0 sent, addresses removed, BACKUP"

    # -- events -----------------------------------------------------------------------------------

    def _emit(self, event: VrrpEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("VRRP event listener failed")
        for queue in self._queues:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)

    def add_listener(self, listener: Callable[[VrrpEvent], None]) -> Callable[[], None]:
        """Call ``listener`` for every event; returns a function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def subscribe(self, maxsize: int = 1000) -> AsyncIterator[VrrpEvent]:
        """Events as an async iterator, until the service stops (a slow reader loses the overflow)."""
        queue: asyncio.Queue[VrrpEvent | None] = asyncio.Queue(maxsize)
        self._queues.append(queue)
        try:
            while (event := await queue.get()) is not None:
                yield event
        finally:
            self._queues.remove(queue)

    @property
    def events(self) -> AsyncIterator[VrrpEvent]:
        return self.subscribe()

    # -- observation ------------------------------------------------------------------------------

    @property
    def instances(self) -> dict[str, InstanceRuntime]:
        return dict(self._runtimes)

    @property
    def groups(self) -> dict[str, SyncGroup]:
        return dict(self._groups)

    def snapshot(self) -> list[InstanceSnapshot]:
        now = self._loop.time() if self._loop is not None else time.monotonic()
        out = []
        for runtime in self._runtimes.values():
            mach, spec = runtime.machine, runtime.spec
            out.append(InstanceSnapshot(
                name=spec.name,
                interface=spec.interface,
                family=spec.family,
                vrid=spec.params.vrid,
                version=spec.params.version,
                state=mach.state.name,
                priority=mach.priority,
                base_priority=mach.base_priority,
                master_address=str(mach.master_address) if mach.master_address is not None else None,
                master_priority=mach.master_priority,
                advert_int=spec.params.advert_int,
                master_adver_int=mach.master_adver_int,
                in_state_for=max(0.0, now - mach.last_transition),
                source=str(runtime.source) if runtime.source is not None else None,
                vips=tuple(describe(v) for v in spec.all_vips),
                unicast_peers=tuple(str(p) for p in spec.unicast_peers),
                sync_group=spec.sync_group,
                faults=tuple(sorted(mach.faults)),
                counters={**mach.counters.as_dict(), "garp_sent": runtime.garp_sent,
                          "tx_failed": runtime.tx_failed, "rx_filtered": runtime.rx_filtered},
                split_brain=tuple(str(p) for p in mach.split_brain_peers),
                peer_status=self._peer_status(runtime, now),
            ))
        return out

    def _peer_status(self, runtime: InstanceRuntime, now: float) -> tuple[PeerStatus, ...]:
        sock = runtime.socket
        if not runtime.spec.unicast_peers:
            return ()
        heard = sock.heard(runtime.spec.params.vrid) if sock is not None else {}
        out = []
        for peer in runtime.spec.unicast_peers:
            record = heard.get(peer)
            out.append(PeerStatus(str(peer), None if record is None else max(0.0, now - record.at),
                                  sock.send_error(peer) if sock is not None else None))
        return tuple(out)

    def explain(self, name: str) -> Explanation:
        """Who is master of ``name``, who would win an election now and why (KeyError: no such instance)."""
        runtime = self._runtimes[name]
        now = self._loop.time() if self._loop is not None else time.monotonic()
        tracking = self._tracking.get(name)
        sock = runtime.socket
        heard = {src: (h.at, h.priority) for src, h in sock.heard(runtime.spec.params.vrid).items()} \
            if sock is not None else {}
        return explain(inputs_from(
            runtime.machine, now, base_priority=tracking.base_priority if tracking is not None else None,
            contributions=tracking.contributions() if tracking is not None else (), heard=heard,
            peers=self._peer_status(runtime, now), sync_group=runtime.spec.sync_group))


async def run_vrrp(config: m.Config, stop_event: asyncio.Event, *, dry_run: bool = False) -> None:
    """Run the VRRP part of ``config`` until ``stop_event`` is set, then stop cleanly."""
    service = VrrpService(config, dry_run=dry_run)
    await service.start()
    try:
        await stop_event.wait()
    finally:
        await service.stop()
