"""The VRRP wire radar, sans-IO: every advert heard, per (interface, family, VRID, sender), and a dual-master alarm.

The instances drop what does not fit their configuration (another auth, another VIP list, another version,
a VRID they do not run) and only count it. The radar keeps it instead: fed every packet the raw sockets
receive, it remembers per sender what it advertises (priority, version, interval, auth type, VIP list), how
regularly it sends (mean and standard deviation of the inter-arrival times) and how it differs from our own
instance of that VRID. Two routers advertising the same VRID at the same time is a dual master: each believes
it owns the VIPs, and which one a host reaches depends on whose ARP it heard last.

    radar = Radar()
    radar.configure({RadarKey("eth0", 4, 51): Expected("VI_1", 2, 100, Auth.pass_("secret"), {vip})})
    changes = radar.observe_packet("eth0", src, dst, data, ip_header=True, now=now)   # every packet
    changes += radar.observe_own("eth0", source, advert, now)                           # every advert we send
    changes += radar.tick(now)                                                          # now and then
    radar.report(now)                                                                   # what to show

Our own adverts are fed too (``observe_own``), under our source address and marked ``ours``: the radar then
shows both sides of a VRID, and a rogue master against our MASTER interleaves with our adverts like any other
dual master. A packet received from one of our own sending addresses (a looped-back copy) is only counted, never
taken as a second sender's advert, so our adverts can never clash with themselves.

Times are seconds on the caller's monotonic clock. Memory is bounded: at most ``max_senders`` senders (the one
heard least recently makes room), a sender is forgotten ``expiry`` seconds after its last advert, and each
keeps only its last ``GAP_WINDOW`` inter-arrival gaps.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from typing import Any

from lvsconsole.vrrp.packet import (
    MCAST_GROUP4,
    MCAST_GROUP6,
    Advert,
    Auth,
    AuthType,
    IPAddress,
    PacketError,
    decode,
    decode_ipv4_datagram,
    peek_vrid,
)

EXPIRY = 60.0
MAX_SENDERS = 256
GAP_WINDOW = 20
ALARM_INTERVALS = 3.0
"""A sender counts as advertising (a master: a backup never sends) while heard within this many of its intervals."""
CLEAR_INTERVALS = 5.0
"""Once alarmed, a sender counts until quiet for this many intervals: two keepalived masters that each reset their
advert timer on the other's (rejected) advert share one advert slot and fall silent for seconds in turn."""
HISTORY_INTERVALS = 10.0
"""How far back the adverts of two senders are compared for interleaving."""
MIN_SWITCHES = 4
"""Turns between two senders in their merged adverts that make a dual master. A preemption makes one turn, two
with the loser's advert in flight and three if that one arrives after the winner's: A A B A B B."""
MIN_INTERVAL = 0.01
"""What an advertised interval of 0 is taken as (VRRPv3 can carry 0 centiseconds)."""


@dataclass(frozen=True, slots=True, order=True)
class RadarKey:
    """One VRID's namespace: VRIDs of IPv4 and IPv6 are separate, and so are interfaces."""

    interface: str
    family: int
    vrid: int

    def __str__(self) -> str:
        return f"VRID {self.vrid} on {self.interface} (IPv{self.family})"


@dataclass(frozen=True, slots=True)
class Expected:
    """What our own instance of a VRID advertises: the yardstick for the mismatches."""

    instance: str
    version: int
    interval_cs: int
    auth: Auth | None
    addresses: frozenset[IPAddress]


# ---------------------------------------------------------------------------------------------- changes out


@dataclass(frozen=True, slots=True)
class AlarmRaised:
    """Two or more routers are advertising ``key`` at once (``senders``: address and priority, highest first)."""

    key: RadarKey
    senders: tuple[tuple[IPAddress, int], ...]
    instance: str | None


@dataclass(frozen=True, slots=True)
class AlarmCleared:
    """Only one router (``remaining``, None if none) still advertises ``key``; the alarm lasted ``lasted`` s."""

    key: RadarKey
    remaining: IPAddress | None
    lasted: float
    instance: str | None


RadarChange = AlarmRaised | AlarmCleared


# ---------------------------------------------------------------------------------------------- views


@dataclass(frozen=True, slots=True)
class SenderView:
    """One sender of one VRID as the radar saw it (``age``: seconds since its last packet)."""

    key: RadarKey
    sender: IPAddress
    instance: str | None
    age: float
    count: int
    priority: int | None
    version: int | None
    interval: float | None
    auth_type: int | None
    vips: tuple[IPAddress, ...]
    mean_gap: float | None
    jitter: float | None
    mismatches: tuple[str, ...]
    collision: str | None
    malformed: int
    last_error: str | None
    advertising: bool
    alarm: bool
    ours: bool = False
    """The adverts are the ones this director sent."""

    def as_json(self) -> dict[str, Any]:
        return {
            "interface": self.key.interface, "family": self.key.family, "vrid": self.key.vrid,
            "sender": str(self.sender), "instance": self.instance, "age": round(self.age, 3), "count": self.count,
            "priority": self.priority, "version": self.version, "interval": self.interval,
            "auth_type": None if self.auth_type is None else _auth_name(self.auth_type),
            "vips": [str(v) for v in self.vips],
            "mean_interval": None if self.mean_gap is None else round(self.mean_gap, 4),
            "jitter": None if self.jitter is None else round(self.jitter, 4),
            "mismatches": list(self.mismatches), "collision": self.collision, "malformed": self.malformed,
            "last_error": self.last_error, "advertising": self.advertising, "dual_master": self.alarm,
            "ours": self.ours,
        }


@dataclass(frozen=True, slots=True)
class AlarmView:
    key: RadarKey
    instance: str | None
    senders: tuple[tuple[IPAddress, int], ...]
    since_s: float
    """Seconds since the alarm was raised."""

    def as_json(self) -> dict[str, Any]:
        return {"interface": self.key.interface, "family": self.key.family, "vrid": self.key.vrid,
                "instance": self.instance, "for": round(self.since_s, 3),
                "senders": [{"sender": str(a), "priority": p} for a, p in self.senders]}


@dataclass(frozen=True, slots=True)
class RadarReport:
    senders: tuple[SenderView, ...] = ()
    alarms: tuple[AlarmView, ...] = ()
    packets: int = 0
    evicted: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"senders": [s.as_json() for s in self.senders], "alarms": [a.as_json() for a in self.alarms],
                "packets": self.packets, "evicted": self.evicted}


def _auth_name(auth_type: int) -> str:
    try:
        return AuthType(auth_type).name
    except ValueError:
        return str(auth_type)


# ---------------------------------------------------------------------------------------------- the radar


@dataclass(slots=True)
class _Sender:
    first_seen: float
    last_seen: float
    """Its last packet, decodable or not."""
    count: int = 0
    last_advert: float | None = None
    advert: Advert | None = None
    malformed: int = 0
    last_error: str | None = None
    gaps: deque[float] = field(default_factory=lambda: deque(maxlen=GAP_WINDOW))
    arrivals: deque[float] = field(default_factory=lambda: deque(maxlen=GAP_WINDOW + 1))
    """Arrival times of its adverts with a non-zero priority since it last resigned (priority 0)."""
    ours: bool = False
    """We send these adverts (``observe_own``); received copies are echoes, not adverts."""
    echoes: int = 0

    @property
    def interval(self) -> float:
        return max(self.advert.interval, MIN_INTERVAL) if self.advert is not None else 1.0

    def window(self) -> float:
        return ALARM_INTERVALS * self.interval

    def live(self, now: float, intervals: float = ALARM_INTERVALS) -> bool:
        """It sent a non-zero priority advert within ``intervals`` of its advert intervals."""
        return bool(self.arrivals) and now - self.arrivals[-1] <= intervals * self.interval


def _turns(first: _Sender, second: _Sender, since: float) -> int:
    """How often the sender changes in the two senders' adverts since ``since``, merged in time order."""
    merged = sorted([(t, 0) for t in first.arrivals if t >= since] + [(t, 1) for t in second.arrivals if t >= since])
    return sum(1 for (_, a), (_, b) in itertools.pairwise(merged) if a != b)


@dataclass(slots=True)
class _Alarm:
    since: float
    senders: tuple[tuple[IPAddress, int], ...]


class Radar:
    def __init__(self, *, max_senders: int = MAX_SENDERS, expiry: float = EXPIRY) -> None:
        if max_senders < 1 or expiry <= 0:
            raise ValueError("max_senders must be at least 1 and expiry positive")
        self.max_senders = max_senders
        self.expiry = expiry
        self.packets = 0
        self.evicted = 0
        self._expected: dict[RadarKey, Expected] = {}
        self._senders: dict[tuple[RadarKey, IPAddress], _Sender] = {}
        self._alarms: dict[RadarKey, _Alarm] = {}

    # -- configuration ----------------------------------------------------------------------------

    def configure(self, expected: Mapping[RadarKey, Expected]) -> None:
        """Our own instances, by the VRID namespace they advertise in (after a start or a reload)."""
        self._expected = dict(expected)

    # -- input ------------------------------------------------------------------------------------

    def observe_packet(self, interface: str, src: IPAddress, dst: IPAddress | None, data: bytes, *,
                       ip_header: bool, now: float) -> list[RadarChange]:
        """A packet as a raw socket delivered it (IPv4: with its IP header), whatever its content."""
        vrid = peek_vrid(data, ip_header=ip_header)
        if vrid is None:
            return []
        key = RadarKey(interface, 6 if isinstance(src, IPv6Address) else 4, vrid)
        try:
            advert = _decode_leniently(data, src, dst, ip_header=ip_header)
        except PacketError as exc:
            return self.observe_malformed(key, src, exc.message, now)
        return self.observe_advert(interface, src, advert, now)

    def observe_advert(self, interface: str, src: IPAddress, advert: Advert, now: float) -> list[RadarChange]:
        """A decoded advert from ``src`` (decoded without any instance's expectations)."""
        key = RadarKey(interface, 6 if isinstance(src, IPv6Address) else 4, advert.vrid)
        sender = self._sender(key, src, now)
        if sender.ours:
            # a copy of our own advert: counting it as an advert would make our adverts interleave with themselves
            sender.echoes += 1
            return []
        return self._record(key, sender, advert, now)

    def observe_own(self, interface: str, src: IPAddress, advert: Advert, now: float) -> list[RadarChange]:
        """An advert we sent from ``src`` (once per advert, whatever the number of unicast peers)."""
        key = RadarKey(interface, 6 if isinstance(src, IPv6Address) else 4, advert.vrid)
        sender = self._sender(key, src, now)
        if not sender.ours:
            # whatever was heard from this address before was our own advert coming back, or a stranger now
            # impersonating it: start its record afresh from what we send
            sender.ours = True
            sender.arrivals.clear()
            sender.gaps.clear()
            sender.last_advert = None
        return self._record(key, sender, advert, now)

    def _record(self, key: RadarKey, sender: _Sender, advert: Advert, now: float) -> list[RadarChange]:
        sender.count += 1
        if sender.last_advert is not None and sender.arrivals and now - sender.last_advert <= sender.window():
            # only gaps within one advertising streak: the silence of a backup is not jitter
            sender.gaps.append(now - sender.last_advert)
        sender.last_seen = sender.last_advert = now
        sender.advert = advert
        if advert.priority == 0:
            sender.arrivals.clear()  # it resigned: whatever it sent before no longer makes it a master
        else:
            sender.arrivals.append(now)
        return self._evaluate(key, now)

    def observe_malformed(self, key: RadarKey, src: IPAddress, error: str, now: float) -> list[RadarChange]:
        """A packet of ``key`` from ``src`` that could not be decoded at all (bad length, checksum ...)."""
        sender = self._sender(key, src, now)
        sender.malformed += 1
        sender.last_error = error
        sender.last_seen = now
        return []

    def tick(self, now: float) -> list[RadarChange]:
        """Forget the senders quiet for ``expiry`` and re-evaluate the alarms (call about once a second)."""
        for ident in [i for i, s in self._senders.items() if now - s.last_seen >= self.expiry]:
            del self._senders[ident]
        changes: list[RadarChange] = []
        for key in {k for k, _ in self._senders} | set(self._alarms):
            changes.extend(self._evaluate(key, now))
        return changes

    # -- output -----------------------------------------------------------------------------------

    def advertising(self, key: RadarKey, now: float) -> list[tuple[IPAddress, int]]:
        """The senders of ``key`` acting as master now (address, priority), highest priority first."""
        return _by_priority((src, s) for (k, src), s in self._senders.items() if k == key and s.live(now))

    def dual_masters(self, key: RadarKey, now: float) -> list[tuple[IPAddress, int]]:
        """The senders of ``key`` that are masters at the same time (none, or two and more).

        Two live senders are a dual master when their adverts interleave (MIN_SWITCHES turns within the last
        HISTORY_INTERVALS): one router taking over from another makes a turn or three, two masters keep turning.
        An alarm holds while two of its senders are heard within CLEAR_INTERVALS.
        """
        senders = [(src, s) for (k, src), s in self._senders.items() if k == key]
        if key in self._alarms:
            still = [(src, s) for src, s in senders if s.live(now, CLEAR_INTERVALS)]
            return _by_priority(still) if len(still) >= 2 else []
        live = [(src, s) for src, s in senders if s.live(now)]
        clashing: dict[IPAddress, _Sender] = {}
        for i, (src, sender) in enumerate(live):
            for other_src, other in live[i + 1:]:
                since = now - HISTORY_INTERVALS * max(sender.interval, other.interval)
                if _turns(sender, other, since) >= MIN_SWITCHES:
                    clashing[src], clashing[other_src] = sender, other
        return _by_priority(clashing.items()) if len(clashing) >= 2 else []

    def report(self, now: float) -> RadarReport:
        views = []
        for (key, src), sender in sorted(self._senders.items(), key=lambda item: (item[0][0], int(item[0][1]))):
            expected = self._expected.get(key)
            advert = sender.advert
            gaps = list(sender.gaps)
            mean = sum(gaps) / len(gaps) if gaps else None
            jitter = math.sqrt(sum((g - mean) ** 2 for g in gaps) / len(gaps)) if gaps and mean is not None else None
            alarm = self._alarms.get(key)
            views.append(SenderView(
                key=key, sender=src, instance=expected.instance if expected is not None else None,
                age=max(0.0, now - sender.last_seen), count=sender.count,
                priority=None if advert is None else advert.priority,
                version=None if advert is None else advert.version,
                interval=None if advert is None else advert.interval,
                auth_type=None if advert is None or advert.version != 2 else advert.auth_type,
                vips=() if advert is None else advert.addresses, mean_gap=mean, jitter=jitter,
                mismatches=() if advert is None else mismatches(advert, expected, ipv6=key.family == 6),
                collision=None if advert is None else collision(advert, expected),
                malformed=sender.malformed, last_error=sender.last_error, advertising=sender.live(now),
                alarm=alarm is not None and any(src == a for a, _ in alarm.senders), ours=sender.ours,
            ))
        alarms = tuple(AlarmView(key, self._instance(key), alarm.senders, max(0.0, now - alarm.since))
                       for key, alarm in sorted(self._alarms.items()))
        return RadarReport(tuple(views), alarms, self.packets, self.evicted)

    @property
    def alarms(self) -> frozenset[RadarKey]:
        return frozenset(self._alarms)

    def __len__(self) -> int:
        return len(self._senders)

    # -- internals --------------------------------------------------------------------------------

    def _instance(self, key: RadarKey) -> str | None:
        expected = self._expected.get(key)
        return expected.instance if expected is not None else None

    def _sender(self, key: RadarKey, src: IPAddress, now: float) -> _Sender:
        self.packets += 1
        ident = (key, src)
        sender = self._senders.get(ident)
        if sender is None:
            if len(self._senders) >= self.max_senders:
                # spoofed sources must not grow memory: the sender heard least recently makes room
                oldest = min(self._senders, key=lambda i: self._senders[i].last_seen)
                del self._senders[oldest]
                self.evicted += 1
            sender = _Sender(first_seen=now, last_seen=now)
            self._senders[ident] = sender
        return sender

    def _evaluate(self, key: RadarKey, now: float) -> list[RadarChange]:
        masters = self.dual_masters(key, now)
        alarm = self._alarms.get(key)
        if masters:
            if alarm is None:
                self._alarms[key] = _Alarm(now, tuple(masters))
                return [AlarmRaised(key, tuple(masters), self._instance(key))]
            joined = {src for src, _ in masters} - {src for src, _ in alarm.senders}
            alarm.senders = tuple(masters)
            # a router that starts advertising into an ongoing dual master is news of its own (a rogue arriving
            # while a takeover's overlap is still held): announce the alarm again with everyone in it
            return [AlarmRaised(key, alarm.senders, self._instance(key))] if joined else []
        if alarm is not None:
            del self._alarms[key]
            remaining = self.advertising(key, now)
            return [AlarmCleared(key, remaining[0][0] if remaining else None, now - alarm.since,
                                 self._instance(key))]
        return []


def _by_priority(senders: Iterable[tuple[IPAddress, _Sender]]) -> list[tuple[IPAddress, int]]:
    out = [(src, s.advert.priority) for src, s in senders if s.advert is not None]
    return sorted(out, key=lambda item: (-item[1], int(item[0])))


# ---------------------------------------------------------------------------------------------- judging an advert


def mismatches(advert: Advert, expected: Expected | None, *, ipv6: bool = False) -> tuple[str, ...]:
    """How ``advert`` differs from our instance of its VRID: "version", "auth", "interval", "vips"."""
    if expected is None:
        return ()
    out = []
    if advert.version != expected.version:
        out.append("version")
    elif advert.version == 2 and expected.auth is not None and _auth_differs(advert, expected.auth, ipv6=ipv6):
        out.append("auth")
    if advert.interval_cs != expected.interval_cs:
        out.append("interval")
    if frozenset(advert.addresses) != expected.addresses:
        out.append("vips")
    return tuple(out)


def collision(advert: Advert, expected: Expected | None) -> str | None:
    """Why ``advert`` collides with our use of VRIDs: a VRID we do not run, or ours with another VIP set."""
    if expected is None:
        return "VRID not configured here"
    if frozenset(advert.addresses) != expected.addresses:
        return f"VIP set differs from {expected.instance}"
    return None


def _auth_differs(advert: Advert, auth: Auth, *, ipv6: bool) -> bool:
    if advert.auth_type != auth.type:
        return True
    return auth.type is AuthType.PASS and not ipv6 and advert.auth_data != auth.data


def _decode_leniently(data: bytes, src: IPAddress, dst: IPAddress | None, *, ip_header: bool) -> Advert:
    """Decode without any instance's expectations (version, auth, TTL); a v3 checksum keepalived computes
    without the pseudo-header (vrrp_v3_checksum_as_v2) is accepted too."""
    try:
        return _decode(data, src, dst, ip_header=ip_header, v3_checksum_as_v2=False)
    except PacketError as exc:
        if exc.counter != "chk_err":
            raise
        return _decode(data, src, dst, ip_header=ip_header, v3_checksum_as_v2=True)


def _decode(data: bytes, src: IPAddress, dst: IPAddress | None, *, ip_header: bool,
            v3_checksum_as_v2: bool) -> Advert:
    if ip_header:
        return decode_ipv4_datagram(data, check_ttl=False, v3_checksum_as_v2=v3_checksum_as_v2).advert
    group: IPAddress = MCAST_GROUP6 if isinstance(src, IPv6Address) else MCAST_GROUP4
    return decode(data, src, dst if dst is not None else group, None, v3_checksum_as_v2=v3_checksum_as_v2)
