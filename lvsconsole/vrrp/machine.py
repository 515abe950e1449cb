"""The VRRP state machine of one instance, sans-IO, following keepalived 2.x (RFC 3768 / RFC 5798 §6.4).

Shaped like aioquic's connection object: every input takes the current time and returns the actions the
adapter must carry out, and the timers are data::

    m = VrrpMachine(params, now)
    run(m.start(now))
    loop:
        deadline = m.next_timer()              # absolute time, or None
        ... wait for a packet or the deadline ...
        run(m.receive_packet(data, src, dst, hop_limit, now))   # or receive_ipv4_datagram / receive_advert
        run(m.handle_timer(now))
    run(m.shutdown(now))

States are INIT, BACKUP, MASTER and FAULT (keepalived's numbering 0-3). Times are seconds as floats on
whatever monotonic clock the adapter uses. The machine logs with keepalived's wording on the
``lvsconsole.vrrp`` logger ("(VI_1) Entering MASTER STATE"); the adapter need not log transitions again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from enum import IntEnum
from ipaddress import IPv6Address

from lvsconsole.vrrp.packet import (
    V2_MAX_INTERVAL_S,
    V3_MAX_INTERVAL_CS,
    Advert,
    Auth,
    AuthType,
    Counters,
    IPAddress,
    PacketError,
    check_advert,
    decode,
    decode_ipv4_datagram,
    peek_vrid,
)
from lvsconsole.vrrp.splitbrain import Episode, SplitBrainWatch

log = logging.getLogger("lvsconsole.vrrp")

PRIO_STOP = 0
PRIO_OWNER = 255


class State(IntEnum):
    INIT = 0
    BACKUP = 1
    MASTER = 2
    FAULT = 3


# --------------------------------------------------------------------------------------------------
# Actions: what the adapter must do, in the order given.


@dataclass(frozen=True, slots=True)
class SendAdvert:
    """Send this advert (to the multicast group, or to each unicast peer)."""

    advert: Advert


@dataclass(frozen=True, slots=True)
class AddAddresses:
    """Configure the virtual addresses (becoming MASTER)."""

    addresses: tuple[IPAddress, ...]


@dataclass(frozen=True, slots=True)
class RemoveAddresses:
    """Remove the virtual addresses (leaving MASTER)."""

    addresses: tuple[IPAddress, ...]


@dataclass(frozen=True, slots=True)
class SendGratuitous:
    """Send ``count`` gratuitous ARPs / unsolicited NAs for each address, paced by the adapter.

    ``reason``: "master" (becoming master), "master_delay" (the burst garp_master_delay later),
    "refresh" (garp_master_refresh), "lower_prio" and "lower_prio_delay" (after a lower-priority advert),
    "split_brain" and "split_brain_resolved" (another master heard; gone quiet again), "reload" (a reload
    gave a MASTER new addresses).
    """

    addresses: tuple[IPAddress, ...]
    count: int
    reason: str


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The instance changed state; ``reason`` is human-readable (notify scripts, events, the TUI).

    ``shutdown`` ends in INIT with reason "shutdown" (keepalived's STOP notify).
    """

    old: State
    new: State
    reason: str


@dataclass(frozen=True, slots=True)
class PriorityChanged:
    """The effective priority changed (tracking, or the two-owners workaround)."""

    old: int
    new: int


@dataclass(frozen=True, slots=True)
class MasterRxLowerPri:
    """As MASTER we heard a lower-priority master (keepalived's notify_master_rx_lower_pri / FIFO event)."""

    source: IPAddress
    priority: int


@dataclass(frozen=True, slots=True)
class SplitBrainDetected:
    """As MASTER we heard another MASTER of our VRID that we win against: the two were partitioned.

    Comes once per episode (see :mod:`lvsconsole.vrrp.splitbrain`), after the advert and the
    gratuitous ARPs that make the peer yield and the neighbours re-learn the VIPs' MAC address.
    """

    peer: IPAddress
    priority: int


@dataclass(frozen=True, slots=True)
class SplitBrainResolved:
    """A split-brain episode with ``peer`` ended.

    ``won``: the peer went quiet and we are still MASTER (``winner`` is our own address). Otherwise we
    left MASTER: ``winner`` is the master that beat us, or None when we left for a fault, a stop, an
    operator's failover or our sync group.
    """

    peer: IPAddress
    winner: IPAddress | None
    won: bool


@dataclass(frozen=True, slots=True)
class WantMaster:
    """A sync-group member's down timer expired: it wants MASTER but stays BACKUP until its group agrees.

    keepalived's ``wantstate = MASTER``: the group promotes every member (:meth:`VrrpMachine.promote`) once
    all of them want MASTER ("prefer backup to avoid thrashing"). Meanwhile the down timer is re-armed.
    """

    reason: str


Action = (
    SendAdvert
    | AddAddresses
    | RemoveAddresses
    | SendGratuitous
    | StateChanged
    | PriorityChanged
    | MasterRxLowerPri
    | SplitBrainDetected
    | SplitBrainResolved
    | WantMaster
)


# --------------------------------------------------------------------------------------------------
# Parameters


@dataclass(frozen=True, slots=True)
class Params:
    """What the machine needs of one vrrp_instance (the director maps the config model onto this).

    ``priority`` is the base priority; 255 makes the address owner. ``initial_state`` None derives
    keepalived's default (MASTER for priority 255, else BACKUP); only an owner with MASTER skips the
    Master_Down wait. keepalived clears ``nopreempt``/``preempt_delay`` (with a warning) on ``state MASTER``
    instances: that is the config layer's job, the machine takes ``preempt`` and ``preempt_delay`` as given.
    ``source`` is the instance's own primary address (unicast_src_ip or the interface's), used for the
    equal-priority tie break; None disables the tie break (keepalived with no address compares equal).
    ``advert_int`` is in seconds: whole seconds 1-255 for v2, 0.01-40.95 s (centisecond steps) for v3.
    ``unicast`` skips the TTL/hop-limit 255 check (keepalived does, with unicast peers).
    ``sync_group``: the instance belongs to a vrrp_sync_group, so an expired down timer yields
    :class:`WantMaster` instead of a takeover, and the group decides (:mod:`lvsconsole.vrrp.syncgroup`).
    """

    name: str
    vrid: int
    priority: int
    addresses: tuple[IPAddress, ...] = ()
    version: int = 2
    family: int = 4
    advert_int: float = 1.0
    initial_state: State | None = None
    preempt: bool = True
    preempt_delay: float = 0.0
    auth: Auth | None = None
    source: IPAddress | None = None
    down_timer_adverts: int = 3
    garp_master_delay: float = 5.0
    garp_master_repeat: int = 5
    garp_master_refresh: float = 0.0
    garp_master_refresh_repeat: int = 1
    garp_lower_prio_delay: float = 0.0
    garp_lower_prio_repeat: int = 0
    lower_prio_no_advert: bool = False
    higher_prio_send_advert: bool = False
    skip_check_adv_addr: bool = False
    unicast: bool = False
    v3_checksum_as_v2: bool = False
    sync_group: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.vrid <= 255:
            raise ValueError(f"virtual_router_id {self.vrid} not in 1-255")
        if not 1 <= self.priority <= PRIO_OWNER:
            raise ValueError(f"priority {self.priority} not in 1-255")
        if self.version not in (2, 3):
            raise ValueError(f"VRRP version {self.version} is not 2 or 3")
        if self.family not in (4, 6):
            raise ValueError(f"family {self.family} is not 4 or 6")
        for addr in (*self.addresses, *((self.source,) if self.source is not None else ())):
            if addr.version != self.family:
                raise ValueError(f"address {addr} is not IPv{self.family}")
        if len(self.addresses) > 255:
            raise ValueError("at most 255 virtual addresses fit in an advert")
        centis = round(self.advert_int * 100)
        if self.version == 2:
            if self.advert_int != int(self.advert_int) or not 1 <= self.advert_int <= V2_MAX_INTERVAL_S:
                raise ValueError(f"VRRPv2 advert_int must be whole seconds 1-255, not {self.advert_int}")
        elif not 1 <= centis <= V3_MAX_INTERVAL_CS or abs(centis - self.advert_int * 100) > 1e-6:
            raise ValueError(f"VRRPv3 advert_int must be 0.01-40.95 s in 0.01 steps, not {self.advert_int}")
        if self.initial_state not in (None, State.MASTER, State.BACKUP):
            raise ValueError("initial_state must be MASTER or BACKUP")
        if not 0 <= self.preempt_delay <= 1000:
            raise ValueError("preempt_delay must be 0-1000 s")
        if not 1 <= self.down_timer_adverts <= 100:
            raise ValueError("down_timer_adverts must be 1-100")
        if self.auth is not None:
            if self.version != 2 and self.auth.type is not AuthType.NONE:
                raise ValueError("authentication exists only in VRRPv2")
            if self.auth.type is AuthType.AH:
                raise ValueError("IPSEC-AH authentication is not supported")

    @property
    def owner(self) -> bool:
        return self.priority == PRIO_OWNER

    @property
    def wants_master(self) -> bool:
        if self.initial_state is None:
            return self.owner
        return self.initial_state is State.MASTER

    @property
    def interval_cs(self) -> int:
        return round(self.advert_int * 100)


# --------------------------------------------------------------------------------------------------
# The machine


class VrrpMachine:
    """One VRRP instance. Not thread-safe; drive it from one task."""

    def __init__(self, params: Params, now: float) -> None:
        self.params = params
        self.counters = Counters()
        self._state = State.INIT
        self._base_priority = params.priority
        self._priority = params.priority
        self._adver_int = params.interval_cs / 100
        self._master_adver_int = self._adver_int
        self._deadline: float | None = None  # BACKUP: master down; MASTER: next advert
        self._takeover_reason = "master down timer expired"
        self._preempt_time: float | None = None  # preempt_delay running until this time
        self._master_address: IPAddress | None = None
        self._master_priority = 0
        self._faults: set[str] = set()
        self._vipset = False
        self._garp_delay_at: float | None = None
        self._garp_lower_prio_at: float | None = None
        self._garp_refresh_at: float | None = None
        self._last_transition = now
        self._last_advert_at: float | None = None
        self._wants_master = False
        self._hold = False  # after release(): do not preempt the master we handed over to
        self._takeover_priority = params.priority  # the effective priority when we last became MASTER
        self._split_brain = SplitBrainWatch()

    # -- observation ------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.params.name

    @property
    def state(self) -> State:
        return self._state

    @property
    def priority(self) -> int:
        """The effective priority (what our adverts carry)."""
        return self._priority

    @property
    def base_priority(self) -> int:
        return self._base_priority

    @property
    def master_adver_int(self) -> float:
        """Master_Adver_Interval in seconds (v3 learns it from the master's adverts while BACKUP)."""
        return self._master_adver_int

    @property
    def skew_time(self) -> float:
        """Skew_Time: v2 (256-Priority)/256 s; v3 ((256-Priority) × Master_Adver_Interval)/256."""
        if self.params.version == 3:
            return (256 - self._priority) * self._master_adver_int / 256
        return (256 - self._priority) / 256

    @property
    def master_down_interval(self) -> float:
        """Master_Down_Interval = down_timer_adverts (3) × Master_Adver_Interval + Skew_Time."""
        return self.params.down_timer_adverts * self._master_adver_int + self.skew_time

    @property
    def master_address(self) -> IPAddress | None:
        """Source of the last advert accepted (or discarded as lower priority) while BACKUP."""
        return self._master_address

    @property
    def master_priority(self) -> int:
        return self._master_priority

    @property
    def faults(self) -> frozenset[str]:
        return frozenset(self._faults)

    @property
    def last_transition(self) -> float:
        return self._last_transition

    @property
    def last_advert_at(self) -> float | None:
        """When the last valid advert was received."""
        return self._last_advert_at

    @property
    def wants_master(self) -> bool:
        """MASTER, or a sync-group member in BACKUP whose down timer expired (keepalived's wantstate)."""
        return self._state is State.MASTER or (self._state is State.BACKUP and self._wants_master)

    @property
    def preempt_deadline(self) -> float | None:
        """While BACKUP with preempt_delay: when lower-priority adverts stop being honoured."""
        return self._preempt_time

    @property
    def split_brain_peers(self) -> tuple[IPAddress, ...]:
        """Other masters heard while MASTER whose split-brain episode is still open (oldest first)."""
        return self._split_brain.peers

    @property
    def split_brain_episodes(self) -> tuple[Episode, ...]:
        return self._split_brain.episodes

    def next_timer(self) -> float | None:
        """Absolute time of the next deadline, or None when nothing is scheduled (INIT, FAULT)."""
        times = [self._deadline]
        if self._state is State.MASTER:
            times += [self._garp_delay_at, self._garp_lower_prio_at, self._split_brain.next_deadline()]
        pending = [t for t in times if t is not None]
        return min(pending) if pending else None

    # -- life cycle --------------------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Leave INIT: FAULT if a fault is set, MASTER at once for an owner in state MASTER, else BACKUP."""
        if self._state is not State.INIT:
            raise RuntimeError(f"({self.name}) start() in state {self._state.name}")
        self._master_adver_int = self._adver_int
        self._preempt_time = None
        if self._faults:
            return [self._transition(State.FAULT, "init", now)]
        if self.params.owner and self.params.wants_master:
            self._takeover_reason = "address owner"
            if not self.params.sync_group:
                return self._become_master(now)
            # in a sync group the owner too waits for its group: its down timer expires at once
            self._deadline = now
            return [self._transition(State.BACKUP, "init", now)]
        self._deadline = now + self.master_down_interval
        self._takeover_reason = "master down timer expired"
        return [self._transition(State.BACKUP, "init", now)]

    def shutdown(self, now: float) -> list[Action]:
        """Stop the instance: a MASTER sends a priority-0 advert and removes its addresses. Ends in INIT."""
        if self._state is State.INIT:
            return []
        actions: list[Action] = []
        if self._state is State.MASTER:
            actions.append(self._advert(PRIO_STOP))
            actions += self._release_addresses()
        actions.append(self._transition(State.INIT, "shutdown", now))
        actions += self._end_split_brain(None, "shutdown")
        self._deadline = None
        return actions

    # -- faults and tracking -----------------------------------------------------------------------

    def set_fault(self, reason: str, now: float) -> list[Action]:
        """Add a fault source (interface down, weight-0 tracker failing ...); the first one enters FAULT.

        From MASTER: a priority-0 advert, the addresses removed, release_master counted.
        """
        first = not self._faults
        self._faults.add(reason)
        if not first or self._state in (State.INIT, State.FAULT):
            return []
        actions: list[Action] = []
        if self._state is State.MASTER:
            actions.append(self._advert(PRIO_STOP))
            actions += self._release_addresses()
            self.counters.release_master += 1
        actions.append(self._transition(State.FAULT, reason, now))
        actions += self._end_split_brain(None, reason)
        self._deadline = None
        return actions

    def clear_fault(self, now: float, reason: str | None = None) -> list[Action]:
        """Remove one fault source (or all with None); when none is left, FAULT goes to BACKUP."""
        if reason is None:
            self._faults.clear()
        else:
            self._faults.discard(reason)
        if self._faults or self._state is not State.FAULT:
            return []
        self._master_adver_int = self._adver_int
        self._preempt_time = None
        self._deadline = now + self.master_down_interval
        self._takeover_reason = "master down timer expired"
        why = "fault cleared" if reason is None else f"{reason} cleared"
        return [self._transition(State.BACKUP, why, now)]

    def set_priority(self, priority: int, now: float) -> list[Action]:
        """Set the effective priority from tracking (base + Σ weights), clamped to 1-254; not for an owner.

        A BACKUP whose priority rises moves its running down timer earlier by the Skew_Time difference
        (keepalived moves it only when the priority increases).
        """
        del now  # no time-dependent effect beyond moving the existing deadline
        if self._base_priority == PRIO_OWNER:
            return []
        new = min(max(priority, 1), PRIO_OWNER - 1)
        if new == self._priority:
            return []
        old = self._priority
        old_mdi = self.master_down_interval
        self._priority = new
        log.info("(%s) Changing effective priority from %d to %d", self.name, old, new)
        if self._state is State.BACKUP and new > old and self._deadline is not None:
            self._deadline -= old_mdi - self.master_down_interval
        return [PriorityChanged(old, new)]

    # -- timers ------------------------------------------------------------------------------------

    def handle_timer(self, now: float) -> list[Action]:
        """Run whatever is due at ``now``: the down timer (BACKUP → MASTER), the advert timer, GARP bursts."""
        actions: list[Action] = []
        if self._state is State.MASTER:
            if self._garp_delay_at is not None and now >= self._garp_delay_at:
                self._garp_delay_at = None
                actions += self._garp(self.params.garp_master_repeat, "master_delay")
            if self._garp_lower_prio_at is not None and now >= self._garp_lower_prio_at:
                self._garp_lower_prio_at = None
                actions += self._garp(self.params.garp_lower_prio_repeat, "lower_prio_delay")
            actions += self._expire_split_brain(now)
        if self._deadline is None or now < self._deadline:
            return actions
        if self._state is State.BACKUP:
            if self.params.sync_group:
                if not self._wants_master:
                    log.info("(%s) Receive advertisement timeout", self.name)
                self._wants_master = True
                self._deadline = now + self.master_down_interval
                actions.append(WantMaster(self._takeover_reason))
                return actions
            log.info("(%s) Receive advertisement timeout", self.name)
            actions += self._become_master(now)
        elif self._state is State.MASTER:
            actions.append(self._advert(self._priority))
            self._deadline = now + self._adver_int
            # keepalived checks the refresh on advert ticks, strictly after the refresh time
            if self._garp_refresh_at is not None and now > self._garp_refresh_at:
                actions += self._garp(self.params.garp_master_refresh_repeat, "refresh")
                self._garp_refresh_at = now + self.params.garp_master_refresh
        return actions

    # -- sync groups -------------------------------------------------------------------------------

    def promote(self, now: float, reason: str | None = None) -> list[Action]:
        """BACKUP → MASTER because the sync group goes MASTER (keepalived's vrrp_sync_master)."""
        if self._state is not State.BACKUP:
            return []
        if reason is not None:
            self._takeover_reason = reason
        return self._become_master(now)

    def demote(self, now: float, reason: str) -> list[Action]:
        """MASTER → BACKUP because the sync group goes BACKUP (keepalived's vrrp_sync_backup).

        Like a higher-priority advert, and unlike a stop or a fault, it sends no priority-0 advert.
        """
        if self._state is not State.MASTER:
            return []
        return self._step_down(now, reason, resign=False)

    # -- reload -------------------------------------------------------------------------------------

    def set_addresses(self, addresses: tuple[IPAddress, ...]) -> list[Action]:
        """A reload changed only the virtual addresses: state and timers stay, adverts carry the new list.

        As MASTER: the addresses are configured (the ones already there stay) and announced, so that an
        address moved here from another instance answers from its new owner at once. Removing the addresses
        this instance no longer has is the caller's: another instance may have taken them over.
        """
        self.params = replace(self.params, addresses=addresses)
        if self._state is not State.MASTER or not self._vipset:
            return []
        return [AddAddresses(addresses), *self._garp(self.params.garp_master_repeat, "reload")]

    def reconfigure(self, params: Params, now: float) -> list[Action]:
        """A reload changed settings keepalived applies in place: state, timers and counters stay.

        The identity (VRID, version, family, address ownership) must not change: that is a new instance.
        The base priority is taken as given; the effective one follows from :meth:`set_priority`, which the
        caller makes next with the tracking total (keepalived: old effective + new base - old base). A MASTER
        keeps its advert schedule, brought forward if the new interval is shorter, so no advert is skipped or
        doubled; a BACKUP's running down timer stays and the next advert re-arms it with the new values.
        New virtual addresses are handled as :meth:`set_addresses` does.
        """
        old = self.params
        if (params.vrid, params.version, params.family, params.owner) != (old.vrid, old.version, old.family,
                                                                          old.owner):
            raise ValueError(f"({self.name}) VRID, version, family or address ownership changed: not in place")
        addresses_changed = params.addresses != old.addresses
        self.params = params
        if self._base_priority != PRIO_OWNER - 1 or not old.owner:  # the two-owners workaround outlives a reload
            self._base_priority = params.priority
        interval = params.interval_cs / 100
        if interval != self._adver_int:
            log.info("(%s) advert interval changed from %gs to %gs on reload", self.name, self._adver_int, interval)
            self._adver_int = interval
            if self._state is State.MASTER:
                self._master_adver_int = interval
                if self._deadline is not None:
                    self._deadline = min(self._deadline, now + interval)
            elif params.version == 2:
                self._master_adver_int = interval  # a v2 master must advertise our interval anyway
        if params.preempt_delay <= 0 or not params.preempt:
            self._preempt_time = None
        if self._state is State.MASTER:
            if old.garp_master_refresh != params.garp_master_refresh:
                self._garp_refresh_at = now + params.garp_master_refresh if params.garp_master_refresh > 0 else None
            if params.garp_master_delay <= 0:
                self._garp_delay_at = None
            if params.garp_lower_prio_repeat <= 0:
                self._garp_lower_prio_at = None
        if addresses_changed and self._state is State.MASTER and self._vipset:
            return [AddAddresses(params.addresses), *self._garp(params.garp_master_repeat, "reload")]
        return []

    # -- operator -----------------------------------------------------------------------------------

    def release(self, now: float, reason: str = "released by operator") -> list[Action]:
        """Hand mastership over: a priority-0 advert, the addresses removed, BACKUP (an operator's failover).

        Until this instance is MASTER again it does not preempt: it accepts the adverts of whichever peer
        took over, even of a lower priority (as with nopreempt). Its down timer still runs, so if no peer
        takes over it becomes MASTER again one Master_Down_Interval later. Not MASTER: nothing happens.
        """
        if self._state is not State.MASTER:
            return []
        actions = self._step_down(now, reason, resign=True)
        self._hold = True
        return actions

    def leave_master(self, now: float, reason: str) -> list[Action]:
        """MASTER → BACKUP because a tracked VIP, route or rule was deleted from outside (keepalived's
        set_vrrp_backup): a priority-0 advert, the addresses removed, and a down timer of one Skew_Time, so that a
        new election follows at once. Unless a peer wins it, this instance is MASTER again and puts back what was
        deleted. Not MASTER: nothing happens."""
        if self._state is not State.MASTER:
            return []
        return self._step_down(now, reason, resign=True, down_after=self.skew_time)

    def _step_down(self, now: float, reason: str, *, resign: bool, down_after: float | None = None) -> list[Action]:
        """MASTER → BACKUP: a priority-0 advert if ``resign``, the addresses released, the down timer set to
        ``down_after`` (default one Master_Down_Interval at our own advert interval)."""
        actions: list[Action] = [self._advert(PRIO_STOP)] if resign else []
        actions += self._release_addresses()
        self.counters.release_master += 1
        self._preempt_time = None
        self._master_adver_int = self._adver_int
        self._deadline = now + (self.master_down_interval if down_after is None else down_after)
        self._takeover_reason = "master down timer expired"
        actions.append(self._transition(State.BACKUP, reason, now))
        actions += self._end_split_brain(None, reason)
        return actions

    @property
    def holding(self) -> bool:
        """Released by :meth:`release` and not MASTER since: lower-priority masters are accepted."""
        return self._hold

    # -- receiving ---------------------------------------------------------------------------------

    def record_error(self, error: PacketError) -> None:
        """Count a packet the adapter failed to decode (e.g. from decode_ipv4_datagram)."""
        log.info("(%s) %s", self.name, error.message)
        self.counters.increment(error.counter)

    def receive_packet(self, data: bytes, src: IPAddress, dst: IPAddress, ttl: int | None,
                       now: float) -> list[Action]:
        """A VRRP message without IP header (the IPv6 socket, or an IPv4 payload), with its hop limit/TTL."""
        if self._state not in (State.BACKUP, State.MASTER) or len(data) < 2 or data[1] != self.params.vrid:
            return []
        try:
            advert = decode(data, src, dst, None if self.params.unicast else ttl,
                            version=self.params.version, auth=self.params.auth,
                            v3_checksum_as_v2=self.params.v3_checksum_as_v2)
        except PacketError as exc:
            self.record_error(exc)
            return []
        return self._process(advert, src, now)

    def receive_ipv4_datagram(self, data: bytes, now: float) -> list[Action]:
        """What the IPv4 raw socket delivers (IP header first)."""
        if self._state not in (State.BACKUP, State.MASTER):
            return []
        if peek_vrid(data, ip_header=True) != self.params.vrid:
            return []
        try:
            datagram = decode_ipv4_datagram(data, check_ttl=not self.params.unicast,
                                            version=self.params.version, auth=self.params.auth,
                                            v3_checksum_as_v2=self.params.v3_checksum_as_v2)
        except PacketError as exc:
            self.record_error(exc)
            return []
        return self._process(datagram.advert, datagram.src, now)

    def receive_advert(self, advert: Advert, src: IPAddress, now: float) -> list[Action]:
        """An advert already decoded (without version/auth expectations) from ``src``."""
        if self._state not in (State.BACKUP, State.MASTER) or advert.vrid != self.params.vrid:
            return []
        try:
            check_advert(advert, version=self.params.version, auth=self.params.auth,
                         ipv6=isinstance(src, IPv6Address))
        except PacketError as exc:
            self.record_error(exc)
            return []
        return self._process(advert, src, now)

    def _process(self, advert: Advert, src: IPAddress, now: float) -> list[Action]:
        params = self.params
        if advert.version == 2 and advert.interval_cs != params.interval_cs:
            # keepalived: "to prevent concurrent VRID running => multiple master in 1 VRID"
            log.info("(%s) advertisement interval mismatch mine=%g sec rcv'd=%g sec",
                     self.name, self._adver_int, advert.interval)
            self.counters.advert_int_err += 1
            return []
        check_addr = (self._state is State.MASTER or not params.skip_check_adv_addr
                      or src != self._master_address)
        if check_addr and len(advert.addresses) != len(params.addresses):
            log.info("(%s) received an unexpected ip number count %d, expected %d!",
                     self.name, len(advert.addresses), len(params.addresses))
            self.counters.addr_list_err += 1
            return []
        self.counters.advert_rcvd += 1
        if check_addr:
            received = set(advert.addresses)
            for addr in params.addresses:
                if addr not in received:
                    log.info("(%s) ip address associated with VRID %d not present in MASTER advert : %s",
                             self.name, params.vrid, addr)
                    self.counters.addr_list_err += 1
                    return []
        if advert.priority == PRIO_STOP:
            self.counters.pri_zero_rcvd += 1
        self._last_advert_at = now
        if self._state is State.BACKUP:
            return self._backup_rx(advert, src, now)
        return self._master_rx(advert, src, now)

    def _backup_rx(self, advert: Advert, src: IPAddress, now: float) -> list[Action]:
        params = self.params
        prio = advert.priority
        if prio == PRIO_STOP:
            log.debug("(%s) Backup received priority 0 advertisement", self.name)
            self._deadline = now + self.skew_time
            self._takeover_reason = "master released (priority 0 advert)"
            return []
        preempt_delay_running = params.preempt_delay > 0 and (
            self._preempt_time is None or self._preempt_time > now)
        if not params.preempt or self._hold or prio >= self._priority or preempt_delay_running:
            if params.version == 3 and advert.interval_cs / 100 != self._master_adver_int:
                log.debug("(%s) advertisement interval updated from %gs to %gs by master",
                          self.name, self._master_adver_int, advert.interval)
                self._master_adver_int = advert.interval_cs / 100
            self._deadline = now + self.master_down_interval
            self._takeover_reason = "master down timer expired"
            self._master_address = src
            self._master_priority = prio
            self._wants_master = False
            if params.preempt_delay > 0:
                if prio >= self._priority:
                    if self._preempt_time is not None:
                        log.debug("(%s) stop preempt delay", self.name)
                    self._preempt_time = None
                elif self._preempt_time is None:
                    log.debug("(%s) start preempt delay (%gs)", self.name, params.preempt_delay)
                    self._preempt_time = now + params.preempt_delay
            return []
        # preempt on, a lower priority master, and any preempt delay over: ignore it, the down timer runs on
        log.info("(%s) received lower priority (%d) advert from %s - discarding", self.name, prio, src)
        self._master_address = src
        self._takeover_reason = "preempting lower priority master"
        return []

    def _master_rx(self, advert: Advert, src: IPAddress, now: float) -> list[Action]:
        params = self.params
        prio = advert.priority
        addr_cmp = self._compare_source(src)
        actions: list[Action] = []
        higher = prio > self._priority or (prio == self._priority and addr_cmp > 0)
        if prio == PRIO_STOP or (params.higher_prio_send_advert and higher):
            actions.append(self._advert(self._priority))
            self._deadline = now + self._adver_int
            if prio == PRIO_STOP:
                log.debug("(%s) Master received priority 0 message", self.name)
                return actions
        if prio == self._priority:
            if addr_cmp == 0:
                log.info("(%s) WARNING - equal priority advert received from remote host with our IP "
                         "address.", self.name)
            elif self._priority == PRIO_OWNER:
                log.info("(%s) CONFIGURATION ERROR: local instance and a remote instance are both configured "
                         "as address owner, please fix - reducing local priority", self.name)
                self._base_priority = self._priority = PRIO_OWNER - 1
                actions.append(PriorityChanged(PRIO_OWNER, PRIO_OWNER - 1))
        if prio < self._priority or (prio == self._priority and addr_cmp < 0):
            log.info("(%s) Received advert from %s with lower priority %d, ours %d%s", self.name, src, prio,
                     self._priority, "" if params.lower_prio_no_advert else ", forcing new election")
            episode = self._split_brain_heard(advert, src, now)
            if not params.lower_prio_no_advert or episode is not None:
                # the advert goes first so that the peer drops the addresses before our gratuitous ARPs
                actions.append(self._advert(self._priority))
                self._deadline = now + self._adver_int
            if episode is not None:
                log.warning("(%s) split brain: another MASTER %s (priority %d) on VRID %d; sending gratuitous "
                            "ARPs", self.name, src, prio, params.vrid)
                actions += self._garp(max(params.garp_master_repeat, 1), "split_brain")
            if params.garp_lower_prio_repeat > 0:
                if episode is None:
                    actions += self._garp(params.garp_lower_prio_repeat, "lower_prio")
                if params.garp_lower_prio_delay > 0:
                    self._garp_lower_prio_at = now + params.garp_lower_prio_delay
            if episode is not None:
                actions.append(SplitBrainDetected(src, prio))
            actions.append(MasterRxLowerPri(src, prio))
            return actions
        if prio > self._priority or (prio == self._priority and addr_cmp > 0):
            if prio > self._priority:
                log.info("(%s) Master received advert from %s with higher priority %d, ours %d",
                         self.name, src, prio, self._priority)
                reason = f"higher priority advert from {src}"
            else:
                log.info("(%s) Master received advert from %s with same priority %d but higher IP address "
                         "than ours", self.name, src, prio)
                reason = f"equal priority advert from higher address {src}"
            if not any(isinstance(a, SendAdvert) for a in actions) and self._priority >= self._takeover_priority:
                # Unlike keepalived (only with higher_prio_send_advert): if we were the other side of a split
                # brain, the winner may never hear from us otherwise (its advert reached us first), and only
                # hearing us tells it to re-announce the VIPs we had taken. A master whose own priority fell
                # since it took over was preempted as intended: it leaves silently, as keepalived does.
                actions.append(self._advert(self._priority))
            if params.version == 3:
                self._master_adver_int = advert.interval_cs / 100
            self._master_address = src
            self._master_priority = prio
            actions += self._release_addresses()
            self.counters.release_master += 1
            self._preempt_time = None
            self._deadline = now + self.master_down_interval
            self._takeover_reason = "master down timer expired"
            actions.append(self._transition(State.BACKUP, reason, now))
            actions += self._end_split_brain(src, reason)
        return actions

    # -- split brain -------------------------------------------------------------------------------

    def _split_brain_heard(self, advert: Advert, src: IPAddress, now: float) -> Episode | None:
        """Note a lower master's advert; returns the episode it opens, if it opens one.

        Within one Master_Down_Interval of our takeover a lower master is the ordinary handover (its advert
        crossed our first one, or it says it yielded), not a split brain: a peer can only become MASTER
        behind our back after a Master_Down_Interval without our adverts, so by the time a partition heals
        we have been MASTER at least that long.
        """
        if now - self._last_transition < self.master_down_interval:
            return None
        interval = max(self._adver_int, advert.interval_cs / 100)
        return self._split_brain.heard(src, advert.priority, interval, now)

    def _expire_split_brain(self, now: float) -> list[Action]:
        ended = self._split_brain.expire(now)
        if not ended:
            return []
        actions: list[Action] = []
        for episode in ended:
            log.info("(%s) split brain with %s resolved: no advert from it for %d intervals, we stay MASTER; "
                     "sending gratuitous ARPs", self.name, episode.peer, self._split_brain.quiet_adverts)
        # once more, in case one of the peer's own late announcements overtook ours
        actions += self._garp(max(self.params.garp_master_repeat, 1), "split_brain_resolved")
        actions += [SplitBrainResolved(e.peer, self.params.source, True) for e in ended]
        return actions

    def _end_split_brain(self, winner: IPAddress | None, reason: str) -> list[Action]:
        actions: list[Action] = []
        for episode in self._split_brain.end_all():
            if winner is not None:
                log.info("(%s) split brain with %s resolved: %s won the election", self.name, episode.peer, winner)
            else:
                log.info("(%s) split brain with %s ended: leaving MASTER (%s)", self.name, episode.peer, reason)
            actions.append(SplitBrainResolved(episode.peer, winner, False))
        return actions

    # -- helpers -----------------------------------------------------------------------------------

    def _compare_source(self, src: IPAddress) -> int:
        own = self.params.source
        if own is None or own.version != src.version:
            return 0
        return (int(src) > int(own)) - (int(src) < int(own))

    def advert(self, priority: int | None = None) -> Advert:
        """The advert this instance sends with ``priority`` (default: its effective priority).

        Pure: nothing is counted. Adapters use it to prepare the encoding of the adverts ahead of time.
        """
        params = self.params
        auth = params.auth if params.version == 2 and params.auth is not None else Auth()
        return Advert(
            version=params.version,
            vrid=params.vrid,
            priority=self._priority if priority is None else priority,
            addresses=params.addresses,
            interval_cs=params.interval_cs,
            auth_type=auth.type if params.version == 2 else AuthType.NONE,
            auth_data=auth.data if params.version == 2 and params.family == 4 else b"",
        )

    def _advert(self, priority: int) -> SendAdvert:
        advert = self.advert(priority)
        self.counters.advert_sent += 1
        if priority == PRIO_STOP:
            self.counters.pri_zero_sent += 1
            log.debug("(%s) sent 0 priority", self.name)
        return SendAdvert(advert)

    def _garp(self, count: int, reason: str) -> list[Action]:
        if count <= 0 or not self.params.addresses:
            return []
        return [SendGratuitous(self.params.addresses, count, reason)]

    def _become_master(self, now: float) -> list[Action]:
        params = self.params
        if params.version == 3 and self._master_adver_int != self._adver_int:
            log.debug("(%s) changing advert interval from %gs to locally configured %gs",
                      self.name, self._master_adver_int, self._adver_int)
        self._master_adver_int = self._adver_int
        # The advert goes first so that the old master drops the addresses before our gratuitous ARPs.
        actions: list[Action] = [self._advert(self._priority)]
        self._deadline = now + self._adver_int
        self.counters.become_master += 1
        if params.addresses:
            actions.append(AddAddresses(params.addresses))
        self._vipset = True
        actions += self._garp(params.garp_master_repeat, "master")
        self._garp_delay_at = now + params.garp_master_delay if params.garp_master_delay > 0 else None
        self._garp_refresh_at = now + params.garp_master_refresh if params.garp_master_refresh > 0 else None
        self._garp_lower_prio_at = None
        self._master_address = params.source
        self._master_priority = self._priority
        self._takeover_priority = self._priority
        actions.append(self._transition(State.MASTER, self._takeover_reason, now))
        return actions

    def _release_addresses(self) -> list[Action]:
        self._garp_delay_at = self._garp_lower_prio_at = self._garp_refresh_at = None
        if not self._vipset:
            return []
        self._vipset = False
        return [RemoveAddresses(self.params.addresses)] if self.params.addresses else []

    def _transition(self, new: State, reason: str, now: float) -> StateChanged:
        old = self._state
        self._state = new
        self._wants_master = False
        if new is not State.BACKUP:
            self._hold = False
        self._last_transition = now
        if new is State.INIT:
            log.info("(%s) Stopped (%s)", self.name, reason)
        elif reason == "init":
            log.info("(%s) Entering %s STATE (init)", self.name, new.name)
        else:
            log.info("(%s) Entering %s STATE (%s)", self.name, new.name, reason)
        return StateChanged(old, new, reason)
