"""One running VRRP instance: its machine wired to a socket, a precise timer, the addresses and GARPs.

Actions are carried out the moment the machine returns them, in its order, as keepalived does: the
advert first, then the addresses (a synchronous rtnetlink request, tens of microseconds), then the
gratuitous ARPs / unsolicited NAs. Only announcements paced by vrrp_garp_interval / vrrp_gna_interval go
through a per-instance queue worked by one task, so that pacing never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from ipaddress import IPv4Address

from lvsconsole.vrrp.addresses import AddressManager, Announcement, GratuitousSender, vip_device
from lvsconsole.vrrp.events import (
    GratuitousSent,
    InstancePriorityChanged,
    InstanceStateChanged,
    PacketDropped,
    SplitBrainEnded,
    SplitBrainStarted,
    VrrpEvent,
)
from lvsconsole.vrrp.machine import (
    Action,
    AddAddresses,
    PriorityChanged,
    RemoveAddresses,
    SendAdvert,
    SendGratuitous,
    SplitBrainDetected,
    SplitBrainResolved,
    State,
    StateChanged,
    VrrpMachine,
)
from lvsconsole.vrrp.packet import Advert, IPAddress
from lvsconsole.vrrp.params import InstanceSpec
from lvsconsole.vrrp.routes import RouteInstaller
from lvsconsole.vrrp.timer import PreciseTimer
from lvsconsole.vrrp.transport import Received, VrrpSocket

log = logging.getLogger("lvsconsole.vrrp")

ERROR_COUNTERS = ("packet_len_err", "ip_ttl_err", "invalid_type_rcvd", "vers_err", "chk_err", "addr_list_err",
                  "invalid_authtype", "authtype_mismatch", "auth_failure", "proto_err", "advert_int_err")

WARM_UP_LEAD = 0.002  # seconds before a deadline to wake up and warm the takeover path up
Job = Callable[[], Awaitable[None]]
AfterHook = Callable[["InstanceRuntime", list[Action], float], None]
AdvertSentHook = Callable[[str, IPAddress, Advert], None]
"""Called with (interface, source, advert) once per advert that reached the wire (the wire radar's own side)."""


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_deferring = False


def _capture(buffer: list[tuple[int, object, tuple[object, ...], dict[str, object]]], level: int, msg: object,
             *args: object, **kwargs: object) -> None:
    buffer.append((level, msg, args, kwargs))


@contextlib.contextmanager
def deferred_logging(replay: bool = True) -> Iterator[None]:
    """Hold the VRRP logger's calls while the wire actions run, and log them right after.

    Building a log record costs tens of microseconds (caller lookup, formatting); a takeover makes
    several before its first advert and gratuitous ARP. Inside the block the logger's methods only
    append to a list; the records are made, in order, when the block ends (dropped without ``replay``).
    """
    global _deferring
    if _deferring:
        yield
        return
    buffer: list[tuple[int, object, tuple[object, ...], dict[str, object]]] = []
    _deferring = True
    for name, level in _LEVELS.items():
        setattr(log, name, functools.partial(_capture, buffer, level))
    try:
        yield
    finally:
        for name in _LEVELS:
            delattr(log, name)
        _deferring = False
        for level, msg, args, kwargs in buffer if replay else ():
            log.log(level, msg, *args, **kwargs)  # type: ignore[arg-type]


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection while the wire actions run: a collection triggered by the allocations of a takeover
    would stall it between the advert and the gratuitous ARPs (a full one takes milliseconds). It runs, if due,
    right after."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class InstanceRuntime:
    """Drives one :class:`VrrpMachine` on the event loop."""

    def __init__(
        self,
        spec: InstanceSpec,
        machine: VrrpMachine,
        *,
        addresses: AddressManager,
        garp: GratuitousSender,
        emit: Callable[[VrrpEvent], None],
        loop: asyncio.AbstractEventLoop,
        routes: RouteInstaller | None = None,
    ) -> None:
        self.spec = spec
        self.machine = machine
        self.socket: VrrpSocket | None = None
        self._addresses = addresses
        self._garp = garp
        self._routes = routes if routes is not None else RouteInstaller(dry_run=addresses.dry_run)
        self._extra_garp: asyncio.TimerHandle | None = None
        self._emit = emit
        self._loop = loop
        self._timer = PreciseTimer(loop, self._on_timer)
        self._deadline: float | None = None
        self._warming = False
        self._spinning = False
        """Between the warm-up and a takeover deadline: the loop turns without sleeping (``_spin``)."""
        self.spins = 0
        self._jobs: asyncio.Queue[Job] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self.after: AfterHook | None = None  # set by the service: sync-group coordination
        self.advert_sent: AdvertSentHook | None = None  # set by the service: the radar sees our side too
        self.transmit = True  # False in a dry run: the machine runs, nothing goes on the wire
        self.rx_filtered = 0
        self.tx_failed = 0
        self.garp_sent = 0
        self.vips_present = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def source(self) -> IPAddress | None:
        return self.machine.params.source

    def destinations(self) -> tuple[IPAddress, ...]:
        return self.spec.unicast_peers or (self.spec.mcast_group,)

    # -- life cycle -------------------------------------------------------------------------------

    def attach(self, sock: VrrpSocket | None) -> None:
        """Use ``sock`` (None: no network, e.g. a dry run without privileges) and start the worker."""
        self.socket = sock
        if sock is not None:
            sock.register(self.spec.params.vrid, self.on_packet)
            if not self.spec.unicast:
                sock.join(self.spec.mcast_group)
        self._worker = asyncio.create_task(self._work(), name=f"vrrp {self.name} addresses")

    def start(self) -> None:
        self.prepare_adverts()
        self.drive(lambda m, now: m.start(now))

    def prepare_adverts(self) -> None:
        """Encode the adverts this instance is about to send (its priority, and 0) before it needs them."""
        if self.socket is None or self.source is None:
            return
        for priority in (None, 0):
            for dst in self.destinations():
                with contextlib.suppress(ValueError):
                    self.socket.encoded(self.machine.advert(priority), self.source, dst,
                                        v3_checksum_as_v2=self.spec.params.v3_checksum_as_v2)

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Priority-0 advert if MASTER, addresses removed, socket detached, worker stopped."""
        self.drive(lambda m, now: m.shutdown(now))
        self._cancel_timer()
        await self.drain(timeout)
        self.detach()

    def detach(self) -> None:
        self._stop_extra_garp()
        self._timer.close()
        if self.socket is not None:
            self.socket.unregister(self.spec.params.vrid)
            self.socket = None
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until the queued address work is done."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._jobs.join(), timeout)

    # -- driving the machine ----------------------------------------------------------------------

    def drive(self, call: Callable[[VrrpMachine, float], list[Action]], now: float | None = None) -> list[Action]:
        """Call the machine, carry out its actions, let the sync group react, re-arm the timer."""
        now = self._loop.time() if now is None else now
        with collector_paused(), deferred_logging():
            actions = call(self.machine, now)
            self.execute(actions)
            if self.after is not None and actions:
                self.after(self, actions, now)
        return actions

    def restore_vips(self, addresses: Sequence[str]) -> int:
        """Add back those of our VIPs (by address, no prefix) that were removed by hand, if we hold them (MASTER);
        returns how many were asked for. The operator's ``drift reconcile`` of a removed VIP."""
        if self.machine.state is not State.MASTER or not self.vips_present:
            return 0
        wanted = [v for v in self.spec.all_vips if str(v.address.ip) in addresses]
        if wanted:
            self._addresses.add(wanted, self.spec.address_interface)
        return len(wanted)

    def execute(self, actions: Sequence[Action]) -> None:
        """Carry out actions (also those a sync group produced for this instance)."""
        announced_early = 0
        for action in actions:
            if isinstance(action, SendAdvert):
                self._send(action)
            elif isinstance(action, AddAddresses):
                if self.spec.garp_interval <= 0 and any(isinstance(a, SendGratuitous) for a in actions):
                    # RFC 5798 6.4.2's order on a takeover: advert, gratuitous ARPs, then accept the addresses.
                    # The first round goes out before the netlink request (100-200 us of kernel work): anything
                    # sent to the addresses before either is done was lost anyway, to the silent old master.
                    announced_early = 1
                    self.garp_sent += self._garp.announce_now(self.name, self._targets(), 1, self._on_announced)
                self._addresses.add(self.spec.all_vips, self.spec.address_interface)
                self.vips_present = True
                if self.spec.routes or self.spec.rules:
                    self._routes.add(self.spec.routes, self.spec.rules, self.name)
            elif isinstance(action, RemoveAddresses):
                if self.spec.routes or self.spec.rules:
                    self._routes.remove(self.spec.routes, self.spec.rules, self.name)
                self._addresses.remove(self.spec.all_vips, self.spec.address_interface)
                self.vips_present = False
            elif isinstance(action, SendGratuitous):
                if self.spec.garp_interval > 0:
                    self._queue(functools.partial(self._announce, action.count))
                else:
                    self.garp_sent += self._garp.announce_now(self.name, self._targets(),
                                                              action.count - announced_early, self._on_announced,
                                                              log_burst=not announced_early)
                    announced_early = 0
            elif isinstance(action, StateChanged):
                self._follow_extra_garp(action.new)
                self._emit(InstanceStateChanged(self.name, action.old, action.new, action.reason,
                                                self.machine.priority, time=time.time()))
            elif isinstance(action, PriorityChanged):
                self.prepare_adverts()
                self._emit(InstancePriorityChanged(self.name, action.old, action.new, time=time.time()))
            elif isinstance(action, SplitBrainDetected):
                self._emit(SplitBrainStarted(self.name, self.spec.params.vrid, action.peer, action.priority,
                                             time=time.time()))
            elif isinstance(action, SplitBrainResolved):
                self._emit(SplitBrainEnded(self.name, action.peer, action.winner, action.won, time=time.time()))
        self._reschedule()

    def _reschedule(self) -> None:
        deadline = self.machine.next_timer()
        self._deadline = deadline
        self._spinning = False
        if deadline is not None and deadline - self._loop.time() > 2 * WARM_UP_LEAD:
            self._warming = True
            self._timer.set(deadline - WARM_UP_LEAD)
        else:
            self._warming = False
            self._timer.set(deadline)

    def _cancel_timer(self) -> None:
        self._deadline = None
        self._spinning = False
        self._timer.cancel()

    def _on_timer(self) -> None:
        if self._warming and self._deadline is not None:
            # a moment before the deadline: touch what the deadline will need, so that a process
            # that slept for seconds does not run its takeover from cold caches; then the real timer
            self._warming = False
            self._warm_up()
            self._timer.set(self._deadline)
            if self.machine.state is State.BACKUP:
                # A takeover deadline. Waking from a sleep costs 250-450 us here (a timer interrupt into an idle
                # virtual CPU), as much as everything else on the takeover path together: for the last moment
                # the loop turns without sleeping instead, each turn still reading the sockets, so an advert
                # from the master that arrives meanwhile is handled (and resets the deadline) as it would be.
                # A takeover costs about WARM_UP_LEAD of CPU more; the timer stays armed as the fallback.
                self._spinning = True
                self.spins += 1
                self._loop.call_soon(self._spin)
            return
        self.drive(lambda m, now: m.handle_timer(now))

    def _spin(self) -> None:
        if not self._spinning or self._deadline is None:
            return
        if self._loop.time() < self._deadline:
            self._loop.call_soon(self._spin)  # one turn of the loop: its selector is polled without a timeout
            return
        self._spinning = False
        self._timer.cancel()
        self.drive(lambda m, now: m.handle_timer(now))

    def _warm_up(self) -> None:
        log.makeRecord(log.name, logging.DEBUG, __file__, 0, "(%s) warm-up", (self.name,), None)
        self.prepare_adverts()
        if self.machine.state is State.BACKUP:
            self._addresses.prepare(self.spec.all_vips, self.spec.address_interface)
            if self.spec.routes or self.spec.rules:
                self._routes.prepare(self.spec.routes, self.spec.rules)
            self._garp.prepare_frames(self._targets())
            if self._deadline is not None:
                self._rehearse(self._deadline)

    def _rehearse(self, deadline: float) -> None:
        """Run the deadline on a copy of the machine, its log calls dropped: the takeover's own run then finds
        its code and data in the CPU's caches. Cold, the machine's part of a takeover took 60-150 us between the
        timer and the advert in the failover bench's lab; rehearsed, 30-55 us."""
        machine = self.machine
        try:
            # the parameters are frozen and shared: copied, 255 addresses took 1.5 ms of the 2 ms lead
            rehearsal = copy.deepcopy(machine, {id(machine.params): machine.params})
            with collector_paused(), deferred_logging(replay=False):
                rehearsal.handle_timer(deadline)
        except Exception:  # only a warm-up: whatever it met, the deadline itself must run
            log.debug("(%s) takeover rehearsal failed", self.name, exc_info=True)

    # -- network ----------------------------------------------------------------------------------

    def _send(self, action: SendAdvert) -> None:
        if self.socket is None or self.source is None or not self.transmit:
            return
        sent = False
        for dst in self.destinations():
            if self.socket.send(action.advert, self.source, dst, v3_checksum_as_v2=self.spec.params.v3_checksum_as_v2):
                sent = True
            else:
                self.tx_failed += 1
        if sent and self.advert_sent is not None:
            # after this step, not inside it: on a takeover the addresses and gratuitous ARPs come next
            self._loop.call_soon(self.advert_sent, self.spec.socket_interface, self.source, action.advert)

    def on_packet(self, received: Received) -> None:
        spec = self.spec
        if spec.unicast:
            if received.multicast:
                self.rx_filtered += 1
                return
            if spec.check_unicast_src and received.src not in spec.unicast_peers:
                self.rx_filtered += 1
                log.info("(%s) advert from %s is not from a unicast peer - ignoring", self.name, received.src)
                return
        counters = self.machine.counters
        before = [getattr(counters, c) for c in ERROR_COUNTERS]
        if isinstance(received.src, IPv4Address):
            self.drive(lambda m, now: m.receive_ipv4_datagram(received.data, now), received.at)
        else:
            dst = received.dst if received.dst is not None else spec.mcast_group
            self.drive(lambda m, now: m.receive_packet(received.data, received.src, dst, received.hop_limit, now),
                       received.at)
        for counter, old in zip(ERROR_COUNTERS, before, strict=True):
            if getattr(counters, counter) != old:
                self._emit(PacketDropped(self.name, counter, f"advert from {received.src} dropped ({counter})",
                                         received.src, time=time.time()))

    # -- addresses --------------------------------------------------------------------------------

    def _queue(self, job: Job) -> None:
        self._jobs.put_nowait(job)

    async def _work(self) -> None:
        while True:
            job = await self._jobs.get()
            try:
                await job()
            except Exception:
                log.exception("(%s) address operation failed", self.name)
            finally:
                self._jobs.task_done()

    def _targets(self) -> list[tuple[str, IPAddress]]:
        return [(vip_device(v, self.spec.address_interface), v.address.ip) for v in self.spec.all_vips]

    # -- garp_extra_if ----------------------------------------------------------------------------

    def extra_targets(self) -> list[tuple[str, IPAddress]]:
        """What garp_extra_if refreshes: the VIPs on the VMACs, or with ``all`` on every interface the instance
        uses (keepalived keeps the switches' MAC tables fresh where no advert leaves from)."""
        vmacs = self.spec.vmac_names
        return [(dev, ip) for dev, ip in self._targets() if self.spec.garp_extra_all or dev in vmacs]

    def _follow_extra_garp(self, state: State) -> None:
        if state is State.MASTER and self.spec.garp_extra_interval > 0:
            if self._extra_garp is None:
                self._extra_garp = self._loop.call_later(self.spec.garp_extra_interval, self._send_extra_garp)
        else:
            self._stop_extra_garp()

    def refresh_extra_garp(self) -> None:
        """Follow a garp_extra_if a reload changed (a MASTER restarts its period)."""
        self._stop_extra_garp()
        self._follow_extra_garp(self.machine.state)

    def _stop_extra_garp(self) -> None:
        if self._extra_garp is not None:
            self._extra_garp.cancel()
            self._extra_garp = None

    def _send_extra_garp(self) -> None:
        self._extra_garp = None
        if self.machine.state is not State.MASTER or self.spec.garp_extra_interval <= 0:
            return
        targets = self.extra_targets()
        if targets and self.transmit:
            self.garp_sent += self._garp.announce_now(self.name, targets, 1, self._on_announced)
        self._extra_garp = self._loop.call_later(self.spec.garp_extra_interval, self._send_extra_garp)

    async def _announce(self, count: int) -> None:
        if self.machine.state is not State.MASTER:
            return
        self.garp_sent += await self._garp.announce(self.name, self._targets(), count, self.spec.garp_interval,
                                                    self._on_announced)

    def _on_announced(self, note: Announcement) -> None:
        self._emit(GratuitousSent(self.name, note.interface, note.address, time=time.time()))
