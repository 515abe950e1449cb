"""Election explained: who is master of an instance, who would win an election now, and why.

keepalived's users keep asking why a BACKUP with the higher priority does not take over, or why the
"wrong" router is master (nopreempt, preempt_delay, a tracker that took 20 off, equal priorities broken
by the address). This module answers from the same facts the state machine uses, sans-IO:

- our effective priority as the configured (or runtime) base plus each tracker's contribution, named;
- the peer we compare with: the master we follow (BACKUP) or the last other router heard (MASTER), with the
  priority it advertised;
- the rules in keepalived's order: the address owner (255) always wins; else the higher priority; equal
  priorities go to the higher primary address; then whether a winner that is BACKUP actually takes over
  (preempt, nopreempt, preempt_delay, a failover hold, a sync group) and when.

:func:`inputs_from` gathers the facts from a running machine; :func:`explain` is pure over them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from lvsconsole.vrrp.machine import PRIO_OWNER, State, VrrpMachine
from lvsconsole.vrrp.packet import IPAddress
from lvsconsole.vrrp.params import TrackKind, TrackSpec

Winner: TypeAlias = Literal["us", "peer", "none"]

_KIND_WORDS = {"interface": "interface", "script": "script", "file": "track file", "process": "tracked process"}


# ---------------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one tracker adds to the priority now; ``effect`` None means it holds the instance in FAULT."""

    kind: TrackKind
    name: str
    weight: int
    reverse: bool
    effect: int | None

    def text(self) -> str:
        weight = f"weight {self.weight}{', reverse' if self.reverse else ''}"
        what = f"{_KIND_WORDS[self.kind]} {self.name} ({weight})"
        return f"{what}: FAULT" if self.effect is None else f"{self.effect:+d} {what}"

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "weight": self.weight, "reverse": self.reverse,
                "effect": self.effect}


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """One unicast peer: how long ago it was heard (None: never) and why the last send to it failed."""

    address: str
    last_seen: float | None
    last_error: str | None = None

    def text(self) -> str:
        heard = "never heard" if self.last_seen is None else f"heard {self.last_seen:.1f} s ago"
        if self.last_error is not None:
            return f"{self.address} SEND FAILS ({self.last_error}), {heard}"
        return f"{self.address} {heard}"

    def as_json(self) -> dict[str, Any]:
        return {"address": self.address, "last_seen": self.last_seen, "last_error": self.last_error}


@dataclass(frozen=True, slots=True)
class ElectionInputs:
    """The facts an explanation is made of (times are seconds relative to now)."""

    name: str
    state: State
    configured_priority: int
    base_priority: int
    """The base trackers add to: the configured priority, or the runtime one (``vrrp priority``)."""
    effective_priority: int
    """What our adverts carry (base + trackers, clamped to 1-254; 255 for an owner)."""
    contributions: tuple[Contribution, ...] = ()
    source: IPAddress | None = None
    preempt: bool = True
    preempt_delay: float = 0.0
    preempt_remaining: float | None = None
    """preempt_delay running: seconds until lower-priority adverts stop being honoured."""
    holding: bool = False
    """Released by an operator's failover: does not preempt until MASTER again."""
    peer_address: IPAddress | None = None
    peer_priority: int | None = None
    peer_age: float | None = None
    down_timer_in: float | None = None
    """BACKUP: seconds until the Master_Down timer expires."""
    faults: tuple[str, ...] = ()
    sync_group: str | None = None
    peers: tuple[PeerStatus, ...] = ()


def contributions_of(pairs: Iterable[tuple[TrackSpec, int | None]]) -> tuple[Contribution, ...]:
    return tuple(Contribution(spec.kind, spec.name, spec.weight, spec.reverse, effect) for spec, effect in pairs)


def inputs_from(machine: VrrpMachine, now: float, *, base_priority: int | None = None,
                contributions: Iterable[tuple[TrackSpec, int | None]] = (),
                heard: Mapping[IPAddress, tuple[float, int | None]] | None = None,
                peers: Iterable[PeerStatus] = (), sync_group: str | None = None) -> ElectionInputs:
    """The facts of a running machine at ``now`` (its own clock).

    ``heard`` maps each source heard on the VRID to (time, advertised priority): it gives the priority of
    the master we follow (the machine keeps only that of adverts it accepts) and, as MASTER, the last
    other router that spoke up.
    """
    params = machine.params
    heard = heard or {}
    state = machine.state
    peer: IPAddress | None = None
    peer_priority: int | None = None
    peer_age: float | None = None
    if state is State.BACKUP and machine.master_address is not None and machine.master_address != params.source:
        peer = machine.master_address
        record = heard.get(peer)
        peer_priority = record[1] if record is not None and record[1] is not None else machine.master_priority
        if record is not None:
            peer_age = max(0.0, now - record[0])
        elif machine.last_advert_at is not None:
            peer_age = max(0.0, now - machine.last_advert_at)
    elif state is State.MASTER:
        # a master hears only routers that claim mastership too (backups are silent): the latest one
        others = [(at, src, prio) for src, (at, prio) in heard.items() if src != params.source]
        recent = [o for o in others if now - o[0] <= 3 * machine.master_adver_int + machine.skew_time]
        if recent:
            at, peer, peer_priority = max(recent, key=lambda o: o[0])
            peer_age = max(0.0, now - at)
    preempt_at = machine.preempt_deadline
    deadline = machine.next_timer() if state is State.BACKUP else None
    return ElectionInputs(
        name=params.name, state=state, configured_priority=params.priority,
        base_priority=params.priority if base_priority is None else base_priority,
        effective_priority=machine.priority, contributions=contributions_of(contributions), source=params.source,
        preempt=params.preempt, preempt_delay=params.preempt_delay,
        preempt_remaining=None if preempt_at is None or preempt_at <= now else preempt_at - now,
        holding=machine.holding, peer_address=peer, peer_priority=peer_priority, peer_age=peer_age,
        down_timer_in=None if deadline is None else max(0.0, deadline - now), faults=tuple(sorted(machine.faults)),
        sync_group=sync_group, peers=tuple(peers),
    )


# ---------------------------------------------------------------------------------------------- the explanation


@dataclass(frozen=True, slots=True)
class Explanation:
    instance: str
    state: str
    master: str | None
    """The master's address ("" when it is us without a known address), None when nobody is master."""
    master_is_us: bool
    priority: int
    priority_text: str
    """How the effective priority is made: "80 = base 100 −20 script chk (weight -20)"."""
    contributions: tuple[Contribution, ...]
    peer: str | None
    peer_priority: int | None
    peer_age: float | None
    winner: Winner
    """Who would win an election held now: us, the peer, or nobody (we take no part, nobody heard)."""
    rule: str
    """Why, as the rule that decided: "owner", "priority", "address", "fault", "alone", "stopped"."""
    why: str
    next: str
    """What happens next: who takes over, when, or why not (preempt, nopreempt, preempt_delay …)."""
    peers: tuple[PeerStatus, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "instance": self.instance, "state": self.state, "master": self.master, "master_is_us": self.master_is_us,
            "priority": self.priority, "priority_text": self.priority_text,
            "contributions": [c.as_json() for c in self.contributions], "peer": self.peer,
            "peer_priority": self.peer_priority, "peer_age": self.peer_age, "winner": self.winner,
            "rule": self.rule, "why": self.why, "next": self.next, "peers": [p.as_json() for p in self.peers],
        }

    def text(self) -> str:
        if self.master_is_us:
            head = "master: us"
        elif self.master:
            prio = "" if self.peer_priority is None else f"priority {self.peer_priority}"
            age = "" if self.peer_age is None else f"last advert {self.peer_age:.1f} s ago"
            detail = ", ".join(p for p in (prio, age) if p)
            head = f"master: {self.master}" + (f" ({detail})" if detail else "")
        else:
            head = "master: none known"
        lines = [f"({self.instance}) {self.state}, {head}", f"  our priority {self.priority_text}",
                 f"  election now: {self.why}", f"  next: {self.next}"]
        if self.peers:
            lines.append("  unicast peers:")
            lines += [f"    {p.text()}" for p in self.peers]
        return "\n".join(lines)


def priority_text(inp: ElectionInputs) -> str:
    if inp.configured_priority == PRIO_OWNER and inp.effective_priority == PRIO_OWNER:
        return "255: the address owner (trackers never change an owner's priority)"
    base = f"base {inp.base_priority}"
    if inp.base_priority != inp.configured_priority:
        base += f" (runtime; configured {inp.configured_priority})"
    parts = [f"{inp.effective_priority} = {base}"]
    acting = [c for c in inp.contributions if c.effect != 0 or c.weight != 0]
    parts += [c.text() for c in acting]
    text = " ".join(parts)
    total = inp.base_priority + sum(c.effect for c in inp.contributions if c.effect is not None)
    if inp.configured_priority == PRIO_OWNER:
        text += " (both routers were address owners: reduced to 254)"
    elif total != inp.effective_priority:
        text += f" (the sum {total} is clamped to 1-254)"
    return text


def _decide(inp: ElectionInputs, peer: IPAddress, theirs: int) -> tuple[Winner, str, str]:
    """Who wins an election between us and ``peer`` now: (winner, rule, why)."""
    ours = inp.effective_priority
    if ours == PRIO_OWNER and theirs != PRIO_OWNER:
        return "us", "owner", "we win: priority 255 makes us the address owner, which always wins"
    if theirs == PRIO_OWNER and ours != PRIO_OWNER:
        return "peer", "owner", f"{peer} wins: priority 255 makes it the address owner, which always wins"
    if ours > theirs:
        return "us", "priority", f"we win: our priority {ours} is higher than {peer}'s {theirs}"
    if ours < theirs:
        return "peer", "priority", f"{peer} wins: its priority {theirs} is higher than our {ours}"
    if inp.source is None or inp.source.version != peer.version:
        return "peer", "address", (f"equal priority {ours} and our own address is unknown, so no tie break: "
                                   f"{peer} keeps mastership")
    if int(inp.source) > int(peer):
        return "us", "address", (f"we win: equal priority {ours}, and the higher primary address wins "
                                 f"({inp.source} > {peer})")
    return "peer", "address", (f"{peer} wins: equal priority {ours}, and the higher primary address wins "
                               f"({peer} > {inp.source})")


def _down_timer(inp: ElectionInputs) -> str:
    return "" if inp.down_timer_in is None else f" (in {inp.down_timer_in:.1f} s)"


def _backup_next(inp: ElectionInputs, winner: Winner, rule: str, peer: IPAddress | None) -> str:
    group = (f"; as a member of sync group {inp.sync_group} it takes over only when the whole group goes MASTER"
             if inp.sync_group else "")
    if peer is None:
        return f"no master heard: we become MASTER when the down timer expires{_down_timer(inp)}{group}"
    if winner == "peer":
        return (f"we stay BACKUP while {peer} advertises; if its adverts stop we take over when the down "
                f"timer expires{_down_timer(inp)}{group}")
    if rule == "address":
        return ("we stay BACKUP: an equal priority never preempts a running master; we would win only a fresh "
                f"election (both starting, or {peer} stopping){group}")
    if inp.holding:
        return (f"we stay BACKUP: released by the operator (vrrp failover), so we do not preempt {peer} "
                f"until we are MASTER again{group}")
    if not inp.preempt:
        return (f"we stay BACKUP: nopreempt means a higher-priority BACKUP does not take over from a running "
                f"master; we take over only if {peer} stops advertising{_down_timer(inp)}{group}")
    if inp.preempt_delay > 0 and inp.preempt_remaining is not None:
        return (f"preempt_delay {inp.preempt_delay:g} s is running: {peer}'s adverts are honoured for "
                f"{inp.preempt_remaining:.1f} s more, then we take over when the down timer expires{group}")
    return (f"we preempt: {peer}'s lower-priority adverts are ignored and we take over when the down timer "
            f"expires{_down_timer(inp)}{group}")


def explain(inp: ElectionInputs) -> Explanation:
    """Who is master, who would win an election now and why, and what happens next."""
    peer = inp.peer_address
    theirs = inp.peer_priority
    state = inp.state
    master: str | None = None
    master_is_us = state is State.MASTER
    if master_is_us:
        master = str(inp.source) if inp.source is not None else ""
    elif state is State.BACKUP and peer is not None:
        master = str(peer)
    winner: Winner
    if state is State.INIT:
        winner, rule, why = "none", "stopped", "we take no part: the instance is not running"
        nxt = "nothing until it starts"
    elif state is State.FAULT:
        faults = ", ".join(inp.faults) or "a fault"
        winner, rule = ("peer" if peer is not None else "none"), "fault"
        why = f"we take no part: FAULT ({faults}) sends no adverts, so any other router wins"
        nxt = f"back to BACKUP when {faults} clears, then an election as usual"
    elif peer is None or theirs is None:
        winner, rule = "us", "alone"
        if master_is_us:
            why = "we win: no other router claims mastership (a BACKUP stays silent while we advertise)"
            nxt = ("we stay MASTER while we advertise; a silent BACKUP takes over only with a higher priority "
                   "and preempt, or when our adverts stop")
        else:
            why = "we win: no advert heard from another router yet"
            nxt = _backup_next(inp, winner, rule, None)
    else:
        winner, rule, why = _decide(inp, peer, theirs)
        if master_is_us:
            if winner == "us":
                nxt = (f"we stay MASTER; {peer} advertised as master {inp.peer_age or 0:.1f} s ago with a lower "
                       "claim, and our adverts make it step down")
            else:
                nxt = f"we step down to BACKUP at {peer}'s next advert"
        else:
            nxt = _backup_next(inp, winner, rule, peer)
    return Explanation(
        instance=inp.name, state=state.name, master=master, master_is_us=master_is_us,
        priority=inp.effective_priority, priority_text=priority_text(inp), contributions=inp.contributions,
        peer=None if peer is None else str(peer), peer_priority=theirs, peer_age=inp.peer_age, winner=winner,
        rule=rule, why=why, next=nxt, peers=inp.peers,
    )
