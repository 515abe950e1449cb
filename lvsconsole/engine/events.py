"""Typed, timestamped engine events and their JSON form.

Every event is a frozen dataclass with keyword-only fields, a wall-clock ``time`` (seconds since the
epoch), a ``severity`` and a one-line ``text()`` worded as keepalived logs it where keepalived has a
wording ("(VI_1) Entering MASTER STATE", "Removing service [10.0.0.2]:tcp:80 from VS [10.0.0.1]:tcp:80").

Fields hold plain data only (str, int, float, bool, None, tuples of those, dicts of JSON values), so
``event_to_json`` / ``event_from_json`` round-trip exactly: a face attached over the control socket gets
the same objects as an embedded one.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeAlias

from lvsconsole.check.stall import stall_text
from lvsconsole.config.diagnostics import Diagnostic
from lvsconsole.config.diff import ReloadPlan

Severity: TypeAlias = Literal["debug", "info", "notice", "warning", "error"]
SEVERITIES: tuple[Severity, ...] = ("debug", "info", "notice", "warning", "error")
JsonDict: TypeAlias = dict[str, Any]


def _now() -> float:
    return time.time()


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every event. ``time`` defaults to now."""

    time: float = field(default_factory=_now)

    KIND: ClassVar[str] = "Event"
    LOGGED: ClassVar[bool] = True
    """False when the same fact already reaches the log in keepalived's words as another event."""

    @property
    def severity(self) -> Severity:
        return "info"

    def text(self) -> str:
        return self.KIND


# ---------------------------------------------------------------------------------------------- VRRP


@dataclass(frozen=True, kw_only=True)
class VrrpTransition(Event):
    """An instance (or a sync group, ``group=True``) changed state: INIT, BACKUP, MASTER, FAULT."""

    instance: str
    old: str
    new: str
    reason: str = ""
    priority: int | None = None
    group: bool = False

    KIND: ClassVar[str] = "VrrpTransition"

    @property
    def severity(self) -> Severity:
        return "warning" if self.new == "FAULT" else "notice"

    def text(self) -> str:
        if self.group:
            return f"VRRP_Group({self.instance}) Syncing instances to {self.new} state"
        line = f"({self.instance}) Entering {self.new} STATE"
        return f"{line} ({self.reason})" if self.reason else line


@dataclass(frozen=True, kw_only=True)
class VrrpAdvertStats(Event):
    """Periodic counters of one instance (names as keepalived's ``vrrp->stats``: advert_rcvd, …)."""

    instance: str
    state: str
    priority: int
    master: str | None = None
    counters: dict[str, int] = field(default_factory=dict)

    KIND: ClassVar[str] = "VrrpAdvertStats"

    @property
    def severity(self) -> Severity:
        return "debug"

    def text(self) -> str:
        sent = self.counters.get("advert_sent", 0)
        rcvd = self.counters.get("advert_rcvd", 0)
        return f"({self.instance}) {self.state} priority {self.priority}: {sent} adverts sent, {rcvd} received"


@dataclass(frozen=True, kw_only=True)
class SplitBrain(Event):
    """A MASTER heard another MASTER of its VRID that it wins against; it re-sent its gratuitous ARPs."""

    instance: str
    peer: str
    peer_priority: int
    vrid: int | None = None

    KIND: ClassVar[str] = "SplitBrain"

    @property
    def severity(self) -> Severity:
        return "error"

    def text(self) -> str:
        vrid = "" if self.vrid is None else f" on VRID {self.vrid}"
        return (f"({self.instance}) split brain: another MASTER {self.peer} (priority {self.peer_priority}){vrid}; "
                "sending gratuitous ARPs")


@dataclass(frozen=True, kw_only=True)
class SplitBrainResolved(Event):
    """The split brain with ``peer`` is over. ``winner``: the master now (our address when ``won``); None
    when the instance left MASTER for a fault, a stop or a failover."""

    instance: str
    peer: str
    winner: str | None = None
    won: bool = False

    KIND: ClassVar[str] = "SplitBrainResolved"

    @property
    def severity(self) -> Severity:
        return "notice"

    def text(self) -> str:
        head = f"({self.instance}) split brain with {self.peer} resolved"
        if self.won:
            return f"{head}: it went quiet, this node stays MASTER"
        if self.winner is not None:
            return f"{head}: {self.winner} won the election"
        return f"({self.instance}) split brain with {self.peer} ended: this node left MASTER"


@dataclass(frozen=True, kw_only=True)
class RadarAlarm(Event):
    """The VRRP wire radar hears two or more routers advertising one VRID at once: a dual master.

    ``senders`` and ``priorities`` go together, highest priority first; ``instance`` is ours of that VRID, if any.
    """

    interface: str
    vrid: int
    senders: tuple[str, ...]
    priorities: tuple[int, ...]
    family: int = 4
    instance: str | None = None

    KIND: ClassVar[str] = "RadarAlarm"

    @property
    def severity(self) -> Severity:
        return "error"

    def text(self) -> str:
        who = ", ".join(f"{s} (priority {p})" for s, p in zip(self.senders, self.priorities, strict=False))
        ours = f" ({self.instance})" if self.instance else ""
        return f"VRRP radar: dual master on VRID {self.vrid}{ours} on {self.interface}: {who}"


@dataclass(frozen=True, kw_only=True)
class RadarCleared(Event):
    """The dual master of a VRID is over: only ``remaining`` (None: nobody) still advertises it."""

    interface: str
    vrid: int
    remaining: str | None = None
    lasted: float = 0.0
    family: int = 4
    instance: str | None = None

    KIND: ClassVar[str] = "RadarCleared"

    @property
    def severity(self) -> Severity:
        return "notice"

    def text(self) -> str:
        ours = f" ({self.instance})" if self.instance else ""
        now = f"{self.remaining} is the only master" if self.remaining is not None else "nobody advertises"
        return f"VRRP radar: dual master on VRID {self.vrid}{ours} on {self.interface} over after " \
               f"{self.lasted:.1f} s: {now}"


# ---------------------------------------------------------------------------------------------- checks


@dataclass(frozen=True, kw_only=True)
class CheckResult(Event):
    """One run of one checker. ``vs``/``rs`` are keepalived's names ("[10.0.0.1]:tcp:80")."""

    vs: str
    rs: str
    checker: str
    ok: bool
    detail: str = ""
    reason: str = ""
    latency: float | None = None

    KIND: ClassVar[str] = "CheckResult"

    @property
    def severity(self) -> Severity:
        return "debug" if self.ok else "warning"

    def text(self) -> str:
        if self.detail:
            return self.detail
        verdict = "succeeded" if self.ok else f"failed ({self.reason})" if self.reason else "failed"
        return f"{self.checker} on service {self.rs} {verdict}."


@dataclass(frozen=True, kw_only=True)
class CheckStalled(Event):
    """A checker produced no result for ``limit`` seconds (3 of its intervals, each delay_loop — or
    delay_before_retry while retrying — plus its timeout): the checker engine, not the server, is stuck."""

    vs: str
    rs: str
    checker: str
    """The config block: TCP_CHECK, HTTP_GET, MISC_CHECK, …"""
    silent_for: float
    limit: float
    running: bool = False
    """A check was in flight (rather than waiting for a free slot or a starved loop)."""

    KIND: ClassVar[str] = "CheckStalled"

    @property
    def severity(self) -> Severity:
        return "warning"

    def text(self) -> str:
        return stall_text(self.checker, self.rs, self.vs, self.silent_for, stalled=True, running=self.running)


@dataclass(frozen=True, kw_only=True)
class CheckResumed(Event):
    """A stalled checker produced a result again, ``silent_for`` seconds after its previous one."""

    vs: str
    rs: str
    checker: str
    silent_for: float

    KIND: ClassVar[str] = "CheckResumed"

    @property
    def severity(self) -> Severity:
        return "notice"

    def text(self) -> str:
        return stall_text(self.checker, self.rs, self.vs, self.silent_for, stalled=False)


RsHealth: TypeAlias = Literal["up", "down", "draining", "disabled", "inhibited"]


@dataclass(frozen=True, kw_only=True)
class RealServerStateChanged(Event):
    """A real server's health changed (checks, quorum, or an operator override)."""

    vs: str
    rs: str
    old: str
    new: str
    weight: int | None = None

    KIND: ClassVar[str] = "RealServerStateChanged"
    LOGGED: ClassVar[bool] = False  # the checker logs it ("Removing service ...", "Disabling service ...")

    @property
    def severity(self) -> Severity:
        return "warning" if self.new == "down" else "notice"

    def text(self) -> str:
        if self.new == "up" and self.old in ("down", "disabled"):
            return f"Adding service {self.rs} to VS {self.vs}"
        if self.new in ("down", "disabled") and self.old not in ("down", "disabled"):
            return f"Removing service {self.rs} from VS {self.vs}"
        weight = "" if self.weight is None else f" (weight {self.weight})"
        return f"Service {self.rs} in VS {self.vs}: {self.old} -> {self.new}{weight}"


@dataclass(frozen=True, kw_only=True)
class RealServerRetiring(Event):
    """A reload removed a real server that still carries connections: it drains at weight 0 first."""

    vs: str
    rs: str
    active: int
    timeout: float
    """drain_timeout: the longest it waits before the dest is deleted anyway."""

    KIND: ClassVar[str] = "RealServerRetiring"

    @property
    def severity(self) -> Severity:
        return "notice"

    def text(self) -> str:
        return f"Draining service {self.rs} from VS {self.vs} before removal ({self.active} active)"


@dataclass(frozen=True, kw_only=True)
class RealServerRetired(Event):
    """A draining real server was deleted: its connections finished, or drain_timeout expired (``timeout``)."""

    vs: str
    rs: str
    reason: str
    """"drained" or "timeout"."""
    active: int = 0
    drained_for: float = 0.0

    KIND: ClassVar[str] = "RealServerRetired"

    @property
    def severity(self) -> Severity:
        return "warning" if self.reason == "timeout" else "notice"

    def text(self) -> str:
        line = f"Removing drained service {self.rs} from VS {self.vs}"
        if self.reason == "timeout":
            return f"{line}: drain_timeout expired after {self.drained_for:.0f}s with {self.active} active"
        return f"{line} after {self.drained_for:.1f}s"


@dataclass(frozen=True, kw_only=True)
class PoolFloorHeld(Event):
    """Checks failed a real server but removing it would leave its virtual server below ``min_healthy``: it
    stays in the table (``held``); or it is no longer held (it recovered, or enough others did)."""

    vs: str
    rs: str
    min_healthy: str
    held: bool = True

    KIND: ClassVar[str] = "PoolFloorHeld"

    @property
    def severity(self) -> Severity:
        return "warning" if self.held else "notice"

    def text(self) -> str:
        if self.held:
            return f"Keeping service {self.rs} in VS {self.vs}: min_healthy {self.min_healthy} would be broken"
        return f"Service {self.rs} in VS {self.vs} no longer kept by min_healthy {self.min_healthy}"


# ---------------------------------------------------------------------------------------------- drain watch


def _eta_text(eta: float | None) -> str:
    return "ETA unknown" if eta is None else f"ETA {eta:.0f} s"


@dataclass(frozen=True, kw_only=True)
class DrainProgress(Event):
    """A watched drain's counts (at most once a second per server) and the ETA fitted to their decay."""

    vs: str
    rs: str
    active: int
    inactive: int
    persist: int
    eta: float | None = None
    rate: float | None = None
    """Connections per second the ActiveConn count falls by now (None until enough samples)."""

    KIND: ClassVar[str] = "DrainProgress"

    @property
    def severity(self) -> Severity:
        return "debug"

    def text(self) -> str:
        persist = f", {self.persist} persistent" if self.persist else ""
        return (f"Drain of {self.rs} in VS {self.vs}: {self.active} active, {self.inactive} inactive{persist}, "
                f"{_eta_text(self.eta)}")


@dataclass(frozen=True, kw_only=True)
class DrainEmpty(Event):
    """A draining server has no active and no inactive connection left (persistence templates may remain)."""

    vs: str
    rs: str
    elapsed: float
    persist: int = 0
    held: bool = True
    """True when it stays at weight 0 (no ``then remove``)."""

    KIND: ClassVar[str] = "DrainEmpty"

    @property
    def severity(self) -> Severity:
        return "notice"

    def text(self) -> str:
        persist = f" ({self.persist} persistence templates remain)" if self.persist else ""
        hold = ", holding at weight 0" if self.held else ""
        return f"Drain of {self.rs} in VS {self.vs}: empty after {self.elapsed:.1f} s{persist}{hold}"


@dataclass(frozen=True, kw_only=True)
class DrainRemoved(Event):
    """``then remove``: the drained server went into maint (out of IPVS, checks paused; ``enable`` undoes)."""

    vs: str
    rs: str
    active: int = 0
    inactive: int = 0
    timed_out: bool = False

    KIND: ClassVar[str] = "DrainRemoved"

    @property
    def severity(self) -> Severity:
        return "warning" if self.timed_out and (self.active or self.inactive) else "notice"

    def text(self) -> str:
        why = (f" at its timeout with {self.active} active, {self.inactive} inactive" if self.timed_out
               else " after draining")
        return f"Removing service {self.rs} from VS {self.vs}{why} (maint)"


@dataclass(frozen=True, kw_only=True)
class DrainTimedOut(Event):
    """A watched drain reached ``--timeout`` with connections left."""

    vs: str
    rs: str
    elapsed: float
    active: int
    inactive: int
    removing: bool = False

    KIND: ClassVar[str] = "DrainTimedOut"

    @property
    def severity(self) -> Severity:
        return "warning"

    def text(self) -> str:
        then = "removing it" if self.removing else "holding at weight 0"
        return (f"Drain of {self.rs} in VS {self.vs} timed out after {self.elapsed:.0f} s with {self.active} "
                f"active, {self.inactive} inactive: {then}")


@dataclass(frozen=True, kw_only=True)
class UndrainRamped(Event):
    """``undrain`` with slow_start: the weight went up a step (debug), or reached the configured one (done)."""

    vs: str
    rs: str
    weight: int
    target: int
    done: bool = False

    KIND: ClassVar[str] = "UndrainRamped"

    @property
    def severity(self) -> Severity:
        return "notice" if self.done else "debug"

    def text(self) -> str:
        if self.done:
            return f"Slow start of {self.rs} in VS {self.vs} done: weight {self.weight}"
        return f"Slow start of {self.rs} in VS {self.vs}: weight {self.weight} of {self.target}"


# ---------------------------------------------------------------------------------------------- IPVS


@dataclass(frozen=True, kw_only=True)
class TableChanged(Event):
    """IPVS operations applied to the kernel (or the memory backend), in order, with their cause."""

    ops: tuple[str, ...]
    cause: str = ""

    KIND: ClassVar[str] = "TableChanged"

    def text(self) -> str:
        n = len(self.ops)
        head = f"IPVS: {n} operation{'s' * (n != 1)}"
        if self.cause:
            head += f" ({self.cause})"
        if n == 1:
            return f"{head}: {self.ops[0]}"
        return head


@dataclass(frozen=True, kw_only=True)
class _DriftEvent(Event):
    """One drift item (ipvs/drift.py): ``drift_id`` is stable while the item lasts, ``drift_kind`` says what
    differs (dest-deleted, weight-changed, vip-removed …), ``where`` what it is about, ``intent`` and
    ``kernel`` both sides."""

    drift_id: str
    drift_kind: str
    where: str
    intent: str = ""
    kernel: str = ""

    def _item(self) -> str:
        return f"{self.drift_kind} {self.where} (intent {self.intent}, kernel {self.kernel}) [{self.drift_id}]"


@dataclass(frozen=True, kw_only=True)
class IpvsDriftDetected(_DriftEvent):
    """Kernel state differs from intent and is held for the operator (``ipvs_drift hold``): ``drift reconcile``
    pushes intent back, ``drift adopt`` writes the kernel's value into the candidate config."""

    KIND: ClassVar[str] = "IpvsDriftDetected"

    @property
    def severity(self) -> Severity:
        return "warning"

    def text(self) -> str:
        return f"Drift held: {self._item()}"


@dataclass(frozen=True, kw_only=True)
class IpvsDriftCleared(_DriftEvent):
    """A held drift item is gone: reconciled, adopted and committed, or undone by hand."""

    KIND: ClassVar[str] = "IpvsDriftCleared"

    @property
    def severity(self) -> Severity:
        return "notice"

    def text(self) -> str:
        return f"Drift cleared: {self.drift_kind} {self.where} [{self.drift_id}]"


@dataclass(frozen=True, kw_only=True)
class IpvsDriftRepaired(_DriftEvent):
    """A drift item was repaired at once (``ipvs_drift repair``, the default)."""

    KIND: ClassVar[str] = "IpvsDriftRepaired"

    @property
    def severity(self) -> Severity:
        return "warning"

    def text(self) -> str:
        return f"Drift repaired: {self._item()}"


@dataclass(frozen=True, kw_only=True)
class SyncCoverage(Event):
    """Connection-sync coverage against the peer director (global_defs ``lvs_sync_peer_http``) moved by 5 points
    or more, or the peer became unreachable (``error``) or reachable again (engine/synccoverage.py)."""

    peer: str
    percent: float | None
    """Share of this director's established flows the peer holds; None: no established flow, or ``error``."""
    established: int = 0
    kept: int = 0
    error: str = ""

    KIND: ClassVar[str] = "SyncCoverage"

    @property
    def severity(self) -> Severity:
        return "warning" if self.error else "notice"

    def text(self) -> str:
        if self.error:
            return f"Sync coverage unknown: peer {self.peer} unreachable: {self.error}"
        if self.percent is None:
            return f"Sync coverage against {self.peer}: no established flows to keep"
        return (f"Sync coverage against {self.peer}: a failover now would keep {self.percent:.0f}% of established "
                f"flows ({self.kept} of {self.established})")


# ---------------------------------------------------------------------------------------------- config lifecycle


def _diagnostic_text(d: Mapping[str, Any]) -> str:
    where = "<config>" if d.get("file") is None else f"{d['file']}:{d['line']}:{d['col']}"
    return f"{where}: {d.get('severity', 'error')}: {d.get('message', '')}"


@dataclass(frozen=True, kw_only=True)
class ReloadStarted(Event):
    """A commit, rollback commit or reload is being applied. ``source``: "commit", "reload FILE", "SIGHUP"…"""

    source: str
    who: str = ""

    KIND: ClassVar[str] = "ReloadStarted"

    def text(self) -> str:
        by = f" by {self.who}" if self.who else ""
        return f"Reloading ({self.source}){by}"


@dataclass(frozen=True, kw_only=True)
class ReloadApplied(Event):
    """A config became running. ``changes`` is ``ReloadPlan.as_json()``; ``revision`` its history number."""

    source: str
    revision: int
    who: str = ""
    changes: tuple[JsonDict, ...] = ()
    applied: tuple[str, ...] = ()

    KIND: ClassVar[str] = "ReloadApplied"

    @property
    def severity(self) -> Severity:
        return "notice"

    @classmethod
    def of(cls, source: str, revision: int, plan: ReloadPlan, who: str = "",
           applied: Iterable[str] = ()) -> ReloadApplied:
        return cls(source=source, revision=revision, who=who, changes=tuple(plan.as_json()), applied=tuple(applied))

    def text(self) -> str:
        n = len(self.changes)
        by = f" by {self.who}" if self.who else ""
        return f"Configuration revision {self.revision} applied ({self.source}){by}: {n} change{'s' * (n != 1)}"


@dataclass(frozen=True, kw_only=True)
class ReloadRefused(Event):
    """A config was not applied. ``diagnostics`` are ``Diagnostic.as_json()`` dicts (file, line, col, …)."""

    source: str
    reason: str
    who: str = ""
    diagnostics: tuple[JsonDict, ...] = ()

    KIND: ClassVar[str] = "ReloadRefused"

    @property
    def severity(self) -> Severity:
        return "error"

    @classmethod
    def of(cls, source: str, reason: str, diagnostics: Iterable[Diagnostic] = (), who: str = "") -> ReloadRefused:
        return cls(source=source, reason=reason, who=who, diagnostics=tuple(d.as_json() for d in diagnostics))

    def text(self) -> str:
        errors = [d for d in self.diagnostics if d.get("severity") == "error"]
        head = f"Configuration not applied ({self.source}): {self.reason}"
        if errors:
            head += f"; first error: {_diagnostic_text(errors[0])}"
        return head


@dataclass(frozen=True, kw_only=True)
class CommitPending(Event):
    """``commit confirmed``: revision ``revision`` is running and goes back to ``restore_revision`` at
    ``deadline`` (wall clock) unless ``confirm`` comes first. A second ``commit confirmed`` publishes another
    one with the later deadline."""

    revision: int
    restore_revision: int
    restore_digest: str
    deadline: float
    who: str = ""

    KIND: ClassVar[str] = "CommitPending"

    @property
    def severity(self) -> Severity:
        return "warning"

    def text(self) -> str:
        by = f" by {self.who}" if self.who else ""
        return (f"Configuration revision {self.revision} committed{by}, rolls back to revision "
                f"{self.restore_revision} in {max(0.0, self.deadline - self.time):.0f}s unless confirmed")


@dataclass(frozen=True, kw_only=True)
class CommitConfirmed(Event):
    """The pending ``commit confirmed`` was confirmed (``confirm`` or a plain ``commit``): it stays."""

    revision: int
    who: str = ""

    KIND: ClassVar[str] = "CommitConfirmed"

    @property
    def severity(self) -> Severity:
        return "notice"

    def text(self) -> str:
        by = f" by {self.who}" if self.who else ""
        return f"Configuration revision {self.revision} confirmed{by}"


@dataclass(frozen=True, kw_only=True)
class CommitRolledBack(Event):
    """Nobody confirmed in time: the config of ``restore_revision`` was applied again as ``revision``
    (``ok`` False: the rollback itself failed, ``reason`` says why, and the unconfirmed config still runs)."""

    revision: int | None
    restore_revision: int
    restore_digest: str
    unconfirmed_revision: int
    ok: bool = True
    reason: str = ""

    KIND: ClassVar[str] = "CommitRolledBack"

    @property
    def severity(self) -> Severity:
        return "warning" if self.ok else "error"

    def text(self) -> str:
        if not self.ok:
            return (f"Commit confirmed timed out but rolling back revision {self.unconfirmed_revision} failed: "
                    f"{self.reason}")
        return (f"Commit confirmed timed out: revision {self.unconfirmed_revision} rolled back to the config of "
                f"revision {self.restore_revision} (now revision {self.revision})")


# ---------------------------------------------------------------------------------------------- operators, logs


@dataclass(frozen=True, kw_only=True)
class OperatorAction(Event):
    """Audit record of one state-changing command: who, what they typed, the outcome and what changed."""

    who: str
    command: str
    ok: bool
    message: str = ""
    changes: tuple[str, ...] = ()

    KIND: ClassVar[str] = "OperatorAction"

    @property
    def severity(self) -> Severity:
        return "notice" if self.ok else "warning"

    def text(self) -> str:
        verdict = "done" if self.ok else "refused"
        line = f"{self.who}: {self.command!r} {verdict}"
        return f"{line}: {self.message}" if self.message else line


@dataclass(frozen=True, kw_only=True)
class LogLine(Event):
    """A log message worded as keepalived words it; ``source`` is "vrrp", "check", "ipvs", "engine"…"""

    message: str
    level: Severity = "info"
    source: str = ""

    KIND: ClassVar[str] = "LogLine"

    @property
    def severity(self) -> Severity:
        return self.level

    def text(self) -> str:
        return self.message


@dataclass(frozen=True, kw_only=True)
class ScriptRan(Event):
    """One run of a notify script, a vrrp_script (``track``) or a MISC_CHECK (``misc``), or its refusal.

    ``refused`` is the refusal code (lvsconsole.scripts.vet) and ``error`` the reason; ``stdout`` and
    ``stderr`` hold the first lines of each; ``changed`` says the verdict differs from the previous run.
    Periodic runs that keep succeeding are debug, so the health log does not fill with them.
    """

    script_kind: str
    name: str
    argv: tuple[str, ...]
    ok: bool
    exit_status: int | None = None
    signal: int | None = None
    timed_out: bool = False
    error: str = ""
    refused: str = ""
    duration: float = 0.0
    stdout: tuple[str, ...] = ()
    stderr: tuple[str, ...] = ()
    changed: bool = False

    KIND: ClassVar[str] = "ScriptRan"

    @property
    def severity(self) -> Severity:
        if not self.ok or self.changed:
            return "warning"
        return "info" if self.script_kind == "notify" else "debug"

    @property
    def outcome(self) -> str:
        if self.timed_out:
            return "timed out" if self.signal is None else f"timed out (killed by signal {self.signal})"
        if self.error:
            return self.error
        if self.signal is not None:
            return f"killed by signal {self.signal}"
        return f"exited with status {self.exit_status}"

    def text(self) -> str:
        label = {"track": f"VRRP_Script({self.name})", "misc": f"MISC_CHECK of {self.name} by"}.get(
            self.script_kind, f"{self.name} script")
        line = f"{label} {self.argv[0] if self.argv else '?'} {self.outcome}"
        if not self.refused:
            line += f" after {self.duration:.2f}s"
        said = self.stderr[:1] or (self.stdout[:1] if not self.ok else ())
        return f"{line}: {said[0]}" if said else line


@dataclass(frozen=True, kw_only=True)
class EngineWarning(Event):
    """Something the operator should look at (loop lag, a failed notify script, drift…). ``code`` is stable."""

    message: str
    code: str = ""

    KIND: ClassVar[str] = "EngineWarning"

    @property
    def severity(self) -> Severity:
        return "warning"

    def text(self) -> str:
        return self.message


@dataclass(frozen=True, kw_only=True)
class LoopLagWarning(Event):
    """The event loop ran late by more than half the Skew_Time of ``instance`` (the thinnest timer margin),
    or, with ``recovered``, stayed under that limit again for a while. One of each per episode."""

    instance: str
    lag_ms: float
    limit_ms: float
    skew_ms: float = 0.0
    recovered: bool = False
    lasted: float = 0.0
    """Seconds from the first to the last sample over the limit (``recovered`` only)."""

    KIND: ClassVar[str] = "LoopLagWarning"

    @property
    def severity(self) -> Severity:
        return "notice" if self.recovered else "warning"

    def text(self) -> str:
        if self.recovered:
            return (f"Event loop lag back under {self.limit_ms:.0f} ms for ({self.instance}) "
                    f"(worst {self.lag_ms:.0f} ms over {self.lasted:.1f} s)")
        return (f"Event loop lag {self.lag_ms:.0f} ms exceeds {self.limit_ms:.0f} ms, half the Skew_Time of "
                f"({self.instance}): its VRRP timers risk a false failover (keepalived: 'A thread timer expired')")


@dataclass(frozen=True, kw_only=True)
class Dropped(Event):
    """Marker in a subscriber's stream: ``count`` events were lost here because it read too slowly."""

    count: int

    KIND: ClassVar[str] = "Dropped"

    @property
    def severity(self) -> Severity:
        return "warning"

    def text(self) -> str:
        return f"{self.count} event{'s' * (self.count != 1)} dropped (subscriber too slow)"


EVENT_TYPES: dict[str, type[Event]] = {
    cls.KIND: cls
    for cls in (
        VrrpTransition, VrrpAdvertStats, SplitBrain, SplitBrainResolved, CheckResult, CheckStalled, CheckResumed,
        RadarAlarm, RadarCleared,
        RealServerStateChanged,
        RealServerRetiring,
        RealServerRetired, PoolFloorHeld, TableChanged, IpvsDriftDetected, IpvsDriftCleared, IpvsDriftRepaired,
        ReloadStarted,
        DrainProgress, DrainEmpty, DrainRemoved, DrainTimedOut, UndrainRamped,
        ReloadApplied, ReloadRefused, OperatorAction, LogLine, ScriptRan, EngineWarning, LoopLagWarning, Dropped,
        CommitPending, CommitConfirmed, CommitRolledBack,
        SyncCoverage,
    )
}


# ---------------------------------------------------------------------------------------------- JSON


def event_to_json(event: Event) -> JsonDict:
    """``{"type": KIND, "time": …, "severity": …, "text": …, <fields>}``; tuples become lists."""
    out: JsonDict = {"type": event.KIND, "severity": event.severity, "text": event.text()}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def event_from_json(data: Mapping[str, Any]) -> Event:
    """The inverse of ``event_to_json`` (``severity`` and ``text`` are derived, so they are ignored).

    Raises ``ValueError`` for an unknown type or fields that do not fit it.
    """
    kind = data.get("type")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown event type {kind!r}")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            value = data[f.name]
            kwargs[f.name] = tuple(value) if isinstance(value, list) else value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"bad {kind} event: {exc}") from None
