"""Health-check policy, sans-IO: check results and the time go in, IPVS/notify/log actions come out.

This mirrors keepalived 2.x (``check_*.c`` epilogues, ``ipwrapper.c``, the checker fix-ups at the end of
``check_data.c``), including its log wording:

* **Per checker.** After start-up an UP checker that fails is retried ``retry`` more times, spaced by
  ``delay_before_retry``; the failure after the last retry marks it DOWN ("TCP_CHECK on service X failed
  after N retries."), so DOWN comes after ``retry + 1`` consecutive failures and ``retry 0`` means down on
  the first failure. The very first result is special: keepalived starts each checker with its retry
  counter exhausted, so a server that is already dead at start-up goes down on its first failure
  ("... failed."). A DOWN checker comes back UP on its first success; there is no rise count.
  A DOWN checker that keeps failing still walks through its retries at ``delay_before_retry`` pace
  (TCP/HTTP/… epilogue); MISC_CHECK does not. The next check is due ``delay_loop`` (or
  ``delay_before_retry`` while retrying) after the result arrived; MISC_CHECK counts from the start
  of the script.
* **rise / fall** (an lvsconsole extension; unset = keepalived exactly). ``retry`` counts *attempts within
  one check*: a check has failed once its last retry has failed. ``fall N`` counts *failed checks*: an UP
  checker goes DOWN at the N-th consecutive failed check (each one walking through its own retries at
  ``delay_before_retry`` pace, the next check due ``delay_loop`` later), so ``fall 3`` with ``retry 2``
  means nine failed attempts in a row. ``rise N``: a DOWN checker comes back UP at the N-th consecutive
  success; any failed attempt in between starts the count again. Checks held back by rise/fall are
  logged ("... failed (1 of 3 for fall); keeping it up."). The first result keeps keepalived's rule: a
  server already dead at start-up goes down on its first failed check whatever ``fall`` says (it has
  no history to protect; HAProxy likewise starts a server at the bottom of its UP range), while
  ``alpha`` with ``rise N`` needs N successes before the server is first added.
* **alpha**: the checker starts DOWN (the real server is not added) until its first success.
* **warmup**: the first check of each checker is due ``bootstrap_delay`` plus an offset in
  ``[0, warmup]`` (``warmup`` defaults to ``delay_loop``; 0 disables). keepalived draws the offset at
  random; here the offsets follow a golden-ratio sequence from a random origin, so they are just as
  unpredictable across directors but never bunch up on one director.
* **Per real server**: alive iff all its checkers are up. A server going down is removed from IPVS, or
  with ``inhibit_on_failure`` kept at weight 0. ``notify_up`` / ``notify_down`` run on each change.
* **Per virtual server**: the alive weight is the sum of the (clamped) effective weights of alive real
  servers. Quorum is gained when it reaches ``quorum + hysteresis`` and lost when it drops below
  ``quorum - hysteresis`` (or to 0). Losing quorum with a ``sorry_server`` takes every alive real server
  out of IPVS and puts the sorry server in; gaining quorum reverses that. ``sorry_server_inhibit`` keeps
  the sorry server in IPVS at weight 0 while it is not needed. ``quorum_up`` / ``quorum_down`` run.
* **misc_dynamic**: MISC_CHECK exit 0 is up at the configured weight, 1 (or anything else) is down,
  2..255 is up with weight ``exit - 2``.
* **FILE_CHECK** (keepalived's track_file on a real server): each result carries the checker's weight
  contribution (``CheckOutcome.weight``: the file's number times the checker's weight, reversed as
  configured) or a fault (``ok`` false). A fault takes the checker down and its contribution out of the
  server's weight; leaving the fault puts the contribution back first, then brings the checker up; any
  other change edits the weight. There are no retries, and no alpha: the state is known from the file,
  which the caller reads before :meth:`CheckPolicy.start` and hands over with
  :meth:`CheckPolicy.preset_file_state`.

Log texts that name a checker-specific outcome ("TCP connection to X failed.") are produced by the
checker; it writes ``{rs}`` (:data:`RS_TOKEN`) where keepalived prints the real server, and the policy
substitutes keepalived's ``[ip]:proto:port`` form (and :data:`VS_TOKEN` the virtual server's).
keepalived 2.x logs a per-attempt failure only with ``log_all_failures``; here it is always emitted, at
level ``debug`` unless ``log_all_failures`` is set.
"""

from __future__ import annotations

import math
import random
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, TypeAlias

__all__ = [
    "BOOTSTRAP_DELAY",
    "IPVS_WEIGHT_LIMIT",
    "RS_TOKEN",
    "VS_TOKEN",
    "Action",
    "CheckOutcome",
    "CheckParams",
    "CheckPolicy",
    "CheckerRef",
    "DestDown",
    "DestUp",
    "DestWeight",
    "LogEvent",
    "PolicyUpdate",
    "QuorumGained",
    "QuorumLost",
    "RealServerParams",
    "RealServerState",
    "RsRef",
    "RunNotify",
    "SorryServerOff",
    "SorryServerOn",
    "VirtualServerParams",
    "format_trio",
    "real_weight",
]

BOOTSTRAP_DELAY = 1.0
"""keepalived's BOOTSTRAP_DELAY: seconds between start-up and the earliest first check."""

IPVS_WEIGHT_LIMIT = 2**31 - 1
RS_TOKEN = "{rs}"
"""Placeholder a checker writes in ``CheckOutcome.detail`` where the real server's name goes."""
VS_TOKEN = "{vs}"
"""Placeholder for the virtual server's name (keepalived's FMT_VS) in ``CheckOutcome.detail``."""

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0

LogLevel: TypeAlias = Literal["debug", "info", "notice", "warning"]


def real_weight(weight: int) -> int:
    """The weight IPVS gets for an effective weight (keepalived clamps to 0..INT_MAX)."""
    return max(0, min(weight, IPVS_WEIGHT_LIMIT))


def format_trio(address: str, protocol: str, port: int) -> str:
    """keepalived's ``inet_sockaddrtotrio``: ``[192.168.2.187]:tcp:80`` (IPv6 alike, in brackets)."""
    return f"[{address}]:{protocol or 'none'}:{port}"


# --------------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True, slots=True)
class CheckParams:
    """One checker, with inheritance (VS → RS → checker) and defaults already resolved.

    ``kind`` is the keepalived block name (TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK, …); it names the
    checker in log lines and selects MISC_CHECK's variant of the retry rules.
    """

    kind: str = "TCP_CHECK"
    delay_loop: float = 60.0
    retry: int = 1
    delay_before_retry: float = 1.0
    warmup: float | None = None
    """Upper bound of the random first-check offset; None = delay_loop (keepalived's default), 0 = none."""
    connect_timeout: float = 5.0
    alpha: bool = False
    log_all_failures: bool = False
    misc_dynamic: bool = False
    script: str = ""
    """MISC_CHECK ``misc_path`` (its first word names the script in log lines)."""
    rise: int | None = None
    """Consecutive successes a DOWN checker needs to come back UP; None = 1 (keepalived)."""
    fall: int | None = None
    """Consecutive failed checks (each after its retries) that take an UP checker DOWN; None = 1 (keepalived)."""

    def __post_init__(self) -> None:
        if not self.delay_loop > 0:
            raise ValueError(f"delay_loop must be > 0, not {self.delay_loop!r}")
        if self.retry < 0:
            raise ValueError(f"retry must be >= 0, not {self.retry!r}")
        if self.delay_before_retry < 0:
            raise ValueError(f"delay_before_retry must be >= 0, not {self.delay_before_retry!r}")
        if self.warmup is not None and self.warmup < 0:
            raise ValueError(f"warmup must be >= 0, not {self.warmup!r}")
        for name, count in (("rise", self.rise), ("fall", self.fall)):
            if count is not None and count < 1:
                raise ValueError(f"{name} must be >= 1, not {count!r}")

    @property
    def effective_warmup(self) -> float:
        return self.delay_loop if self.warmup is None else self.warmup


@dataclass(frozen=True, slots=True)
class RealServerParams:
    address: str
    port: int
    weight: int = 1
    inhibit_on_failure: bool = False
    notify_up: str | None = None
    notify_down: str | None = None
    checkers: tuple[CheckParams, ...] = ()


@dataclass(frozen=True, slots=True)
class VirtualServerParams:
    """A virtual server: an address (``address``/``port``/``protocol``), a ``fwmark`` or a ``group``."""

    address: str | None = None
    port: int = 0
    protocol: str = "tcp"
    fwmark: int | None = None
    group: str | None = None
    real_servers: tuple[RealServerParams, ...] = ()
    quorum: int = 1
    hysteresis: int = 0
    quorum_up: str | None = None
    quorum_down: str | None = None
    sorry_server: str | None = None
    sorry_server_port: int | None = None
    """None: the VS port."""
    sorry_server_weight: int = 1
    sorry_server_inhibit: bool = False
    omega: bool = False

    def __post_init__(self) -> None:
        if self.group is None and self.fwmark is None and self.address is None:
            raise ValueError("a virtual server needs an address, a fwmark or a group")
        if self.quorum < 0 or self.hysteresis < 0:
            raise ValueError("quorum and hysteresis must be >= 0")

    @property
    def service_protocol(self) -> str:
        """The protocol keepalived prints for this VS's servers ("none" for a fwmark)."""
        return "none" if self.fwmark is not None and self.group is None else self.protocol

    @property
    def key(self) -> str:
        """keepalived's FMT_VS: ``[ip]:tcp:80``, ``FWM 5`` or ``[group]:80``."""
        if self.group is not None:
            return f"[{self.group}]:{self.port}"
        if self.fwmark is not None:
            return f"FWM {self.fwmark}"
        assert self.address is not None
        return format_trio(self.address, self.protocol, self.port)

    def rs_key(self, rs: RealServerParams) -> str:
        """keepalived's FMT_RS for a real server of this VS."""
        return format_trio(rs.address, self.service_protocol, rs.port)

    def ref(self, rs: RealServerParams) -> RsRef:
        return RsRef(self.key, self.rs_key(rs))


class RsRef(NamedTuple):
    """A real server within a virtual server, by their keepalived names."""

    vs: str
    rs: str


class CheckerRef(NamedTuple):
    """One checker: its real server and its position in ``RealServerParams.checkers``.

    A NamedTuple (like :class:`RsRef`) because it keys the runner's per-check dictionaries."""

    rs: RsRef
    index: int  # type: ignore[assignment]  # (shadows tuple.index, which nothing here uses)


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """What one run of a checker found.

    ``detail`` is a log sentence with :data:`RS_TOKEN` for the server ("TCP connection to {rs} failed.").
    MISC_CHECK fills ``exit_status`` (or ``signal`` / ``timed_out``); the policy then decides up/down
    and the dynamic weight itself.
    """

    ok: bool
    detail: str = ""
    reason: str = ""
    """Short machine-ish cause for the UI ("connection refused", "timeout"); not logged by the policy."""
    exit_status: int | None = None
    signal: int | None = None
    timed_out: bool = False
    weight: int | None = None
    """FILE_CHECK: the checker's contribution to the real server's weight (when ``ok``)."""


# --------------------------------------------------------------------------------------------------
# Actions


@dataclass(frozen=True, slots=True)
class DestUp:
    """Put the real server in the VS's IPVS table (add, or edit if present) with ``weight``."""

    vs: str
    rs: str
    address: str
    port: int
    weight: int


@dataclass(frozen=True, slots=True)
class DestDown:
    """Take the real server out: ``weight`` None = delete the dest, 0 = keep it at weight 0 (inhibit)."""

    vs: str
    rs: str
    address: str
    port: int
    weight: int | None


@dataclass(frozen=True, slots=True)
class DestWeight:
    """Edit the weight of a dest that stays in the table (misc_dynamic)."""

    vs: str
    rs: str
    address: str
    port: int
    weight: int


@dataclass(frozen=True, slots=True)
class SorryServerOn:
    vs: str
    rs: str
    address: str
    port: int
    weight: int


@dataclass(frozen=True, slots=True)
class SorryServerOff:
    """``weight`` None = delete the sorry server's dest, 0 = keep it at weight 0 (sorry_server_inhibit)."""

    vs: str
    rs: str
    address: str
    port: int
    weight: int | None


@dataclass(frozen=True, slots=True)
class QuorumGained:
    vs: str
    quorum: int
    hysteresis: int
    threshold: int
    weight_sum: int
    init: bool = False


@dataclass(frozen=True, slots=True)
class QuorumLost:
    vs: str
    quorum: int
    hysteresis: int
    threshold: int
    weight_sum: int
    init: bool = False


@dataclass(frozen=True, slots=True)
class RealServerState:
    """A real server's alive state was (re)asserted; keepalived's notify FIFO line ``RS … UP|DOWN``.

    Unlike DestUp/DestDown this is emitted even when IPVS is untouched (sorry server in charge).
    """

    vs: str
    rs: str
    alive: bool


@dataclass(frozen=True, slots=True)
class RunNotify:
    """Run a notify script, as configured (keepalived adds no arguments to checker notifies)."""

    script: str
    event: Literal["rs_up", "rs_down", "quorum_up", "quorum_down"]
    vs: str
    rs: str | None = None


@dataclass(frozen=True, slots=True)
class LogEvent:
    message: str
    level: LogLevel = "info"
    vs: str | None = None
    rs: str | None = None


Action: TypeAlias = (
    DestUp
    | DestDown
    | DestWeight
    | SorryServerOn
    | SorryServerOff
    | QuorumGained
    | QuorumLost
    | RealServerState
    | RunNotify
    | LogEvent
)

_NO_ACTIONS: tuple[Action, ...] = ()
_OWN_RECORDERS = frozenset({"MISC_CHECK", "FILE_CHECK"})
"""Checker kinds whose results the generic steady-state path must not record (exit codes, weights)."""


@dataclass(frozen=True, slots=True)
class PolicyUpdate:
    """What :meth:`CheckPolicy.update` did: the actions to carry out, and the real servers it kept (their
    checkers' state and schedule unchanged; every other real server of an updated virtual server starts
    afresh)."""

    actions: list[Action]
    kept: set[RsRef]


# --------------------------------------------------------------------------------------------------
# State


@dataclass(slots=True)
class _Checker:
    params: CheckParams
    index: int
    is_up: bool = True
    has_run: bool = False
    retry_it: int = 0
    last_exit_code: int = 0
    next_time: float = math.inf
    last_ok: bool | None = None
    fail_streak: int = 0
    """Consecutive failed checks held back by ``fall`` (the checker is still UP)."""
    rise_streak: int = 0
    """Consecutive successes held back by ``rise`` (the checker is still DOWN)."""
    cur_weight: int = 0
    """FILE_CHECK: the contribution currently included in the real server's effective weight."""


@dataclass(slots=True)
class _Rs:
    params: RealServerParams
    key: str
    inhibit: bool
    effective_weight: int
    alive: bool = False
    set: bool = False
    ipvs_weight: int | None = None
    num_failed: int = 0
    checkers: list[_Checker] = field(default_factory=list)


@dataclass(slots=True)
class _Sorry:
    address: str
    port: int
    key: str
    weight: int
    inhibit: bool
    alive: bool = False
    set: bool = False
    ipvs_weight: int | None = None


@dataclass(slots=True)
class _Vs:
    params: VirtualServerParams
    key: str
    quorum: int
    hysteresis: int
    quorum_up: bool = False
    rs: dict[str, _Rs] = field(default_factory=dict)
    sorry: _Sorry | None = None


# --------------------------------------------------------------------------------------------------
# Policy


class CheckPolicy:
    """All checkers, real servers and virtual servers of one configuration.

    Call :meth:`start` once, then feed every check result to :meth:`record_result` (or
    :meth:`record_outcome`) and run each checker again at :meth:`next_check_time`. Every call returns
    the actions to carry out, in order.
    """

    def __init__(
        self,
        virtual_servers: Iterable[VirtualServerParams],
        *,
        rng: random.Random | None = None,
        bootstrap_delay: float = BOOTSTRAP_DELAY,
        rs_init_notifies: bool = False,
    ) -> None:
        self._rng = rng if rng is not None else random.Random()
        self._bootstrap_delay = bootstrap_delay
        self._rs_init_notifies = rs_init_notifies
        self._vs: dict[str, _Vs] = {}
        self._setup_log: list[Action] = []
        self._started = False
        self._warmup_origin = 0.0
        self._warmup_ordinal = 0
        """Where the golden-ratio sequence of first-check offsets goes on (checkers added by a reload)."""
        for vsp in virtual_servers:
            self._add_vs(vsp)

    # ---- construction ----------------------------------------------------------------------------

    def _add_vs(self, vsp: VirtualServerParams) -> None:
        if vsp.key in self._vs:
            raise ValueError(f"duplicate virtual server {vsp.key}")
        self._vs[vsp.key] = self._build_vs(vsp, self._setup_log)

    def _build_vs(self, vsp: VirtualServerParams, log: list[Action]) -> _Vs:
        key = vsp.key
        vs = _Vs(vsp, key, vsp.quorum, vsp.hysteresis)
        weight_sum = 0
        for rsp in vsp.real_servers:
            rkey = vsp.rs_key(rsp)
            if rkey in vs.rs:
                msg = f"VS {key}: real server {rkey} is duplicated - removing second rs"
                log.append(LogEvent(msg, "warning", key))
                continue
            rs = _Rs(rsp, rkey, rsp.inhibit_on_failure, rsp.weight)
            for i, cp in enumerate(rsp.checkers):
                ch = _Checker(cp, i)
                if cp.alpha:
                    self._set_checker_state(rs, ch, False)
                # "For non alpha mode, one failure is enough initially."
                ch.retry_it = cp.retry
                rs.checkers.append(ch)
            vs.rs[rkey] = rs
            weight_sum += rsp.weight
        if vsp.sorry_server is not None:
            sport = vsp.port if vsp.sorry_server_port is None else vsp.sorry_server_port
            vs.sorry = _Sorry(
                vsp.sorry_server,
                sport,
                format_trio(vsp.sorry_server, vsp.service_protocol, sport),
                vsp.sorry_server_weight,
                vsp.sorry_server_inhibit,
            )
        if vs.quorum > weight_sum:
            log.append(
                LogEvent(
                    f"Warning - quorum {vs.quorum} for {key} exceeds total weight of real servers "
                    f"{weight_sum}, reducing quorum to {weight_sum}",
                    "warning",
                    key,
                )
            )
            vs.quorum = max(weight_sum, 0)
        if vs.hysteresis >= vs.quorum and (vs.hysteresis or vs.quorum):
            new_h = max(vs.quorum - 1, 0)
            log.append(
                LogEvent(
                    f"Virtual server {key}: hysteresis {vs.hysteresis} >= quorum {vs.quorum}; "
                    f"setting hysteresis to {new_h}",
                    "warning",
                    key,
                )
            )
            vs.hysteresis = new_h
        # set_quorum_states(): nothing is alive before start-up.
        vs.quorum_up = vs.quorum + vs.hysteresis <= 0
        return vs

    # ---- queries ---------------------------------------------------------------------------------

    def virtual_servers(self) -> list[str]:
        return list(self._vs)

    def real_servers(self, vs: str) -> list[RsRef]:
        return [RsRef(vs, k) for k in self._vs[vs].rs]

    def checker_refs(self) -> list[CheckerRef]:
        return [
            CheckerRef(RsRef(v.key, r.key), c.index)
            for v in self._vs.values()
            for r in v.rs.values()
            for c in r.checkers
        ]

    def checker_count(self, rs: RsRef) -> int:
        return len(self._rs(rs)[1].checkers)

    def checker_params(self, rs: RsRef, checker: int) -> CheckParams:
        return self._lookup(rs, checker)[2].params

    def next_check_time(self, rs: RsRef, checker: int) -> float:
        """When this checker should run next (``inf`` before :meth:`start`)."""
        return self._lookup(rs, checker)[2].next_time

    def checker_up(self, rs: RsRef, checker: int) -> bool:
        return self._lookup(rs, checker)[2].is_up

    def is_alive(self, rs: RsRef) -> bool:
        return self._rs(rs)[1].alive

    def effective_weight(self, rs: RsRef) -> int:
        return self._rs(rs)[1].effective_weight

    def quorum_up(self, vs: str) -> bool:
        return self._vs[vs].quorum_up

    def quorum(self, vs: str) -> tuple[int, int]:
        """(quorum, hysteresis) after keepalived's clamping."""
        v = self._vs[vs]
        return v.quorum, v.hysteresis

    def weight_sum(self, vs: str) -> int:
        return self._weight_sum(self._vs[vs])

    def sorry_server_active(self, vs: str) -> bool:
        s = self._vs[vs].sorry
        return s is not None and s.alive

    def desired_dests(self, vs: str) -> dict[str, int]:
        """The dests the actions so far have put in this VS's IPVS table: name → weight."""
        v = self._vs[vs]
        out = {r.key: r.ipvs_weight for r in v.rs.values() if r.ipvs_weight is not None}
        if v.sorry is not None and v.sorry.ipvs_weight is not None:
            out[v.sorry.key] = v.sorry.ipvs_weight
        return out

    def preset_file_state(self, rs: RsRef, checker: int, ok: bool, weight: int = 0) -> None:
        """FILE_CHECK's state read from its file before :meth:`start` (keepalived reads track files before
        it programs IPVS): a fault starts the checker down, otherwise ``weight`` is added to the server's."""
        if self._started:
            raise RuntimeError("preset_file_state() must be called before start()")
        _, r, ch = self._lookup(rs, checker)
        if ch.params.kind != "FILE_CHECK":
            raise ValueError(f"checker #{checker} of {rs.rs} is a {ch.params.kind}, not a FILE_CHECK")
        self._preset_file(r, ch, ok, weight)

    def _preset_file(self, r: _Rs, ch: _Checker, ok: bool, weight: int) -> None:
        r.effective_weight -= ch.cur_weight
        ch.cur_weight = 0
        self._set_checker_state(r, ch, ok)
        if ok:
            ch.cur_weight = weight
            r.effective_weight += weight
        ch.has_run = True
        ch.last_ok = ok

    def adopt(self, old: CheckPolicy) -> list[str]:
        """Carry the state of ``old`` (the policy of the config being replaced) over to this one, before
        :meth:`start`: every real server whose parameters did not change keeps its alive state, IPVS
        weight, retry counters and schedule, so a reload neither re-adds it nor re-checks it from scratch
        (keepalived's migrate_checkers). Returns the keys of the real servers adopted."""
        if self._started:
            raise RuntimeError("adopt() must be called before start()")
        adopted: list[str] = []
        for key, vs in self._vs.items():
            prev = old._vs.get(key)
            if prev is None:
                continue
            for rkey, rs in vs.rs.items():
                before = prev.rs.get(rkey)
                if before is None or before.params != rs.params:
                    continue
                self._carry_rs(rs, before)
                adopted.append(rkey)
            self._carry_vs(vs, prev)
        return adopted

    @staticmethod
    def _carry_rs(rs: _Rs, before: _Rs) -> None:
        rs.alive, rs.set, rs.ipvs_weight = before.alive, before.set, before.ipvs_weight
        rs.num_failed, rs.effective_weight = before.num_failed, before.effective_weight
        for ch, was in zip(rs.checkers, before.checkers, strict=True):
            ch.is_up, ch.has_run, ch.retry_it = was.is_up, was.has_run, was.retry_it
            ch.last_exit_code, ch.next_time = was.last_exit_code, was.next_time
            ch.last_ok, ch.cur_weight = was.last_ok, was.cur_weight
            ch.fail_streak, ch.rise_streak = was.fail_streak, was.rise_streak

    @staticmethod
    def _carry_vs(vs: _Vs, prev: _Vs) -> None:
        vs.quorum_up = prev.quorum_up
        if vs.sorry is not None and prev.sorry is not None and vs.sorry.key == prev.sorry.key:
            vs.sorry.alive, vs.sorry.set = prev.sorry.alive, prev.sorry.set
            vs.sorry.ipvs_weight = prev.sorry.ipvs_weight

    def update(
        self,
        updated: Iterable[VirtualServerParams],
        removed: Iterable[str],
        now: float,
        *,
        restart: Container[RsRef] = frozenset(),
        file_states: Mapping[CheckerRef, tuple[bool, int]] | None = None,
    ) -> PolicyUpdate:
        """Apply a reload to a running policy, one virtual server at a time; the others are not touched.

        ``removed`` virtual servers go (no actions: their dests leave IPVS with the config). Each of
        ``updated`` replaces the virtual server of its key, or is added. A real server whose checkers'
        parameters are unchanged (and that is not in ``restart``: the caller knows when a probe's target
        changed although its timing did not) keeps its checkers' state and schedule; a changed weight or
        inhibit_on_failure is applied to it in place. Every other real server starts afresh, as at
        :meth:`start`, its FILE_CHECKs preset from ``file_states`` (ok, weight). Quorum is then
        re-evaluated for each updated virtual server."""
        if not self._started:
            raise RuntimeError("update() is for a started policy; before start(), use adopt()")
        acts: list[Action] = []
        kept: set[RsRef] = set()
        for key in removed:
            self._vs.pop(key, None)
        fresh: list[_Vs] = []
        for vsp in updated:
            vs = self._build_vs(vsp, acts)
            prev = self._vs.get(vs.key)
            if prev is not None:
                self._carry_vs(vs, prev)
                kept |= self._carry_unchanged(vs, prev, restart, acts)
            self._vs[vs.key] = vs  # a replaced virtual server keeps its place in the order
            for rs in vs.rs.values():
                if RsRef(vs.key, rs.key) in kept:
                    continue
                for ch in rs.checkers:
                    state = (file_states or {}).get(CheckerRef(RsRef(vs.key, rs.key), ch.index))
                    if state is not None and ch.params.kind == "FILE_CHECK":
                        self._preset_file(rs, ch, *state)
            fresh.append(vs)
        for vs in fresh:
            self._schedule_first_checks(vs, now, acts)
        for vs in fresh:
            self._settle_vs(vs, acts)
        return PolicyUpdate(acts, kept)

    def _carry_unchanged(self, vs: _Vs, prev: _Vs, restart: Container[RsRef], acts: list[Action]) -> set[RsRef]:
        kept: set[RsRef] = set()
        for rkey, rs in vs.rs.items():
            before = prev.rs.get(rkey)
            ref = RsRef(vs.key, rkey)
            if before is None or before.params.checkers != rs.params.checkers or ref in restart:
                continue
            self._carry_rs(rs, before)
            kept.add(ref)
            if rs.params.weight != before.params.weight and not self._dynamic_weight_in_force(rs):
                # FILE_CHECK contributions stay on top of the configured weight
                self._update_svr_wgt(vs, rs, rs.effective_weight + rs.params.weight - before.params.weight, False,
                                     acts)
            if not rs.alive and rs.set and not rs.inhibit:  # inhibit_on_failure turned off while down
                acts.append(self._ipvs_del(vs, rs, force=True))
        return kept

    @staticmethod
    def _dynamic_weight_in_force(rs: _Rs) -> bool:
        """A misc_dynamic exit status (2..255) sets the weight: the configured one does not apply."""
        return any(ch.params.misc_dynamic and ch.last_exit_code >= 2 for ch in rs.checkers)

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Initial IPVS state and first-check times (keepalived's init_services + checker registration)."""
        if self._started:
            raise RuntimeError("CheckPolicy.start() called twice")
        self._started = True
        acts: list[Action] = list(self._setup_log)
        self._setup_log.clear()
        self._warmup_origin = self._rng.random()
        for vs in self._vs.values():
            self._schedule_first_checks(vs, now, acts)
        for vs in self._vs.values():
            self._settle_vs(vs, acts)
        return acts

    def _schedule_first_checks(self, vs: _Vs, now: float, acts: list[Action]) -> None:
        for rs in vs.rs.values():
            for ch in rs.checkers:
                if ch.next_time != math.inf:
                    continue  # adopted from the previous config: its schedule goes on
                acts.append(
                    LogEvent(f"Activating healthchecker for service {rs.key} for VS {vs.key}", "info", vs.key, rs.key)
                )
                fraction = (self._warmup_origin + self._warmup_ordinal * _GOLDEN) % 1.0
                ch.next_time = now + self._bootstrap_delay + ch.params.effective_warmup * fraction
                self._warmup_ordinal += 1

    def _settle_vs(self, vs: _Vs, acts: list[Action]) -> None:
        """Put the virtual server's real servers where their state says, then its quorum and sorry server."""
        for rs in vs.rs.values():
            if (rs.num_failed == 0 and not rs.alive) or (rs.inhibit and not rs.set):
                acts.append(self._ipvs_add(vs, rs))
                if rs.num_failed == 0:
                    rs.alive = True
                    if self._rs_init_notifies:
                        self._rs_notifies(vs, rs, acts)
            elif rs.alive and self._rs_changes_reach_ipvs(vs) and (
                not rs.set or rs.ipvs_weight != real_weight(rs.effective_weight)
            ):
                acts.append(self._ipvs_add(vs, rs))  # a reload took away the sorry server standing in for it
        self._update_quorum(vs, True, acts)
        s = vs.sorry
        if s is not None and s.inhibit and not s.set:
            s.set = True
            s.ipvs_weight = 0
            acts.append(SorryServerOff(vs.key, s.key, s.address, s.port, 0))

    def shutdown(self, now: float) -> list[Action]:
        """Remove everything from IPVS; with ``omega`` run notify_down / quorum_down on the way out."""
        del now
        acts: list[Action] = []
        for vs in self._vs.values():
            s = vs.sorry
            if s is not None and s.set:
                s.set = False
                s.ipvs_weight = None
                acts.append(SorryServerOff(vs.key, s.key, s.address, s.port, None))
                s.alive = False
            for rs in vs.rs.values():
                inhibited = "(inhibited) " if rs.inhibit and not rs.alive else ""
                acts.append(
                    LogEvent(f"Shutting down {inhibited}service {rs.key} from VS {vs.key}", "info", vs.key, rs.key)
                )
                if not rs.set:
                    continue
                acts.append(self._ipvs_del(vs, rs, force=True))
                if not rs.alive:
                    continue
                rs.alive = False
                if vs.params.omega:
                    self._rs_notifies(vs, rs, acts)
            vs.quorum_up = False
            if vs.params.omega and vs.params.quorum_down:
                acts.append(RunNotify(vs.params.quorum_down, "quorum_down", vs.key))
        for vs in self._vs.values():
            for rs in vs.rs.values():
                for ch in rs.checkers:
                    ch.next_time = math.inf
        return acts

    # ---- results ---------------------------------------------------------------------------------

    def record_outcome(
        self, rs: RsRef, checker: int, outcome: CheckOutcome, now: float, *, started: float | None = None
    ) -> list[Action]:
        return self.record_result(
            rs,
            checker,
            outcome.ok,
            now,
            detail=outcome.detail,
            exit_status=outcome.exit_status,
            signal=outcome.signal,
            timed_out=outcome.timed_out,
            started=started,
            weight=outcome.weight,
        )

    def record_outcome_and_due(
        self, rs: RsRef, checker: int, outcome: CheckOutcome, now: float, *, started: float | None = None
    ) -> tuple[Sequence[Action], float]:
        """:meth:`record_outcome`, and the checker's :meth:`next_check_time` after it: the runner's per-check
        call, which looks the checker up once instead of twice and, in the steady state (a success of a
        checker that is up), builds no action list at all."""
        try:  # _lookup(), inline: this runs once per check
            ch = self._vs[rs.vs].rs[rs.rs].checkers[checker] if checker >= 0 else self._lookup(rs, checker)[2]
        except (KeyError, IndexError):
            ch = self._lookup(rs, checker)[2]  # raises the KeyError that says which
        p = ch.params
        if outcome.ok and ch.is_up and ch.has_run and p.kind not in _OWN_RECORDERS and self._started:
            ch.last_ok = True
            ch.retry_it = 0
            ch.fail_streak = 0
            due = ch.next_time = now + p.delay_loop
            return _NO_ACTIONS, due
        acts = self.record_outcome(rs, checker, outcome, now, started=started)
        return acts, ch.next_time

    def record_result(
        self,
        rs: RsRef,
        checker: int,
        ok: bool,
        now: float,
        *,
        detail: str = "",
        exit_status: int | None = None,
        signal: int | None = None,
        timed_out: bool = False,
        started: float | None = None,
        weight: int | None = None,
    ) -> list[Action]:
        """Feed one check result (completed at ``now``; ``started`` matters only to MISC_CHECK,
        ``weight`` only to FILE_CHECK)."""
        if not self._started:
            raise RuntimeError("CheckPolicy.start() must be called before results are recorded")
        vs, r, ch = self._lookup(rs, checker)
        acts: list[Action] = []
        if ch.params.kind == "MISC_CHECK":
            if exit_status is None and signal is None and not timed_out:
                exit_status = 0 if ok else 1
            self._record_misc(vs, r, ch, now, started, exit_status, signal, timed_out, acts)
        elif ch.params.kind == "FILE_CHECK":
            self._record_file(vs, r, ch, ok, weight or 0, now, acts)
        else:
            self._record_generic(vs, r, ch, ok, now, detail, acts)
        return acts

    def _record_generic(
        self, vs: _Vs, r: _Rs, ch: _Checker, ok: bool, now: float, detail: str, acts: list[Action]
    ) -> None:
        p = ch.params
        ch.last_ok = ok
        if ok and ch.is_up and ch.has_run:  # the steady state: nothing to log, nothing changes
            ch.retry_it = 0
            ch.fail_streak = 0
            ch.next_time = now + p.delay_loop
            return
        text = detail.replace(RS_TOKEN, r.key).replace(VS_TOKEN, vs.key)
        if not ok and ch.is_up and text:
            acts.append(LogEvent(text, "info" if p.log_all_failures else "debug", vs.key, r.key))
        if ok or ch.retry_it >= p.retry:
            delay = p.delay_loop
            ch.retry_it = 0
            if ok and (not ch.is_up or not ch.has_run):
                held = self._held_by_rise(vs, r, ch, acts)
                if not held:
                    msg = text or f"{p.kind} on service {r.key} succeeded."
                    acts.append(LogEvent(msg, "info", vs.key, r.key))
                    self._update_checker_state(vs, r, ch, True, acts)
            elif not ok and (ch.is_up or not ch.has_run):
                held = self._held_by_fall(vs, r, ch, acts)
                if not held:
                    if p.retry and ch.has_run:
                        msg = f"{p.kind} on service {r.key} failed after {p.retry} retries."
                    else:
                        msg = f"{p.kind} on service {r.key} failed."
                    acts.append(LogEvent(msg, "info", vs.key, r.key))
                    self._update_checker_state(vs, r, ch, False, acts)
        else:
            delay = p.delay_before_retry
            ch.retry_it += 1
        if ok:
            ch.fail_streak = 0
        else:
            ch.rise_streak = 0
        ch.has_run = True
        ch.next_time = now + delay

    # ---- rise / fall (lvsconsole's extension; with both unset these never hold anything back) ---------

    def _held_by_rise(self, vs: _Vs, r: _Rs, ch: _Checker, acts: list[Action]) -> bool:
        """A success of a DOWN checker: True (and the progress logged) while it is short of ``rise``."""
        rise = ch.params.rise or 1
        if ch.is_up or rise <= 1:
            return False
        ch.rise_streak += 1
        if ch.rise_streak >= rise:
            ch.rise_streak = 0
            return False
        acts.append(
            LogEvent(
                f"{ch.params.kind} on service {r.key} succeeded ({ch.rise_streak} of {rise} for rise); "
                "keeping it down.",
                "info",
                vs.key,
                r.key,
            )
        )
        if not ch.has_run:
            # The first result asserts the state it leaves the checker in, as a first failure does.
            self._update_checker_state(vs, r, ch, False, acts)
        return True

    @staticmethod
    def _held_by_fall(vs: _Vs, r: _Rs, ch: _Checker, acts: list[Action]) -> bool:
        """A failed check of an UP checker: True (and the progress logged) while it is short of ``fall``.

        Not before the first result: a server dead at start-up goes at once, as in keepalived."""
        fall = ch.params.fall or 1
        if not ch.is_up or not ch.has_run or fall <= 1:
            return False
        ch.fail_streak += 1
        if ch.fail_streak >= fall:
            ch.fail_streak = 0
            return False
        acts.append(
            LogEvent(
                f"{ch.params.kind} on service {r.key} failed ({ch.fail_streak} of {fall} for fall); keeping it up.",
                "info",
                vs.key,
                r.key,
            )
        )
        return True

    def _record_misc(
        self,
        vs: _Vs,
        r: _Rs,
        ch: _Checker,
        now: float,
        started: float | None,
        exit_status: int | None,
        signal: int | None,
        timed_out: bool,
        acts: list[Action],
    ) -> None:
        p = ch.params
        exit_type: str | None = None
        success = False
        reason: str | None = None
        code = 0
        message_only = False
        if exit_status is not None:
            status = exit_status
            if status == 0 or (p.misc_dynamic and 2 <= status <= 255):
                ch.last_ok = True
                new_weight = status - 2 if status >= 2 else r.params.weight
                if status != ch.last_exit_code:
                    self._update_svr_wgt(vs, r, new_weight, True, acts)
                    ch.last_exit_code = status
                if not ch.is_up or not ch.has_run:
                    exit_type = "succeeded"
                    success = True
                ch.retry_it = 0
            else:
                ch.last_ok = False
                if ch.is_up or not ch.has_run:
                    exit_type, reason, code = "failed", "exited with status", status
                    if ch.retry_it < p.retry:
                        ch.retry_it += 1
                        if p.log_all_failures:
                            message_only = True
                        else:
                            exit_type = None
                    else:
                        ch.retry_it = 0
                        ch.last_exit_code = status
        else:
            ch.last_ok = False
            if ch.is_up or not ch.has_run:
                if timed_out:
                    exit_type = "timed out"
                else:
                    exit_type = "failed"
                    if signal is not None:
                        reason, code = "due to signal", signal
                if ch.retry_it < p.retry:
                    ch.retry_it += 1
                    if p.log_all_failures:
                        message_only = True
                    else:
                        exit_type = None
                else:
                    ch.retry_it = 0
        if exit_type is not None:
            suffix = f" after {p.retry} retries" if not success and p.retry else ""
            script = p.script.split()[0] if p.script.strip() else ""
            head = f"Misc check for [{r.key} VS {vs.key}] by [{script}] {exit_type}{suffix}"
            msg = f"{head} ({reason} {code})." if reason else f"{head}."
            progress: list[Action] = []
            held = not message_only and (
                self._held_by_rise(vs, r, ch, progress) if success else self._held_by_fall(vs, r, ch, progress)
            )
            # A result held back by rise/fall changes no state: keepalived's line goes to debug, then the
            # progress line.
            acts.append(LogEvent(msg, "debug" if held else "info", vs.key, r.key))
            acts.extend(progress)
            if not held and not message_only:
                self._update_checker_state(vs, r, ch, success, acts)
        if ch.last_ok:
            ch.fail_streak = 0
        else:
            ch.rise_streak = 0
        base = now if started is None else started
        ch.next_time = max(now, base + (p.delay_before_retry if ch.retry_it else p.delay_loop))
        ch.has_run = True

    def _record_file(
        self, vs: _Vs, r: _Rs, ch: _Checker, ok: bool, weight: int, now: float, acts: list[Action]
    ) -> None:
        """keepalived's process_update_checker_track_file_status()."""
        if not ok and ch.is_up:
            self._update_checker_state(vs, r, ch, False, acts)
            r.effective_weight -= ch.cur_weight
            ch.cur_weight = 0
        elif ok and not ch.is_up:
            ch.cur_weight = weight
            r.effective_weight += weight
            self._update_checker_state(vs, r, ch, True, acts)
        elif ok and weight != ch.cur_weight:
            self._update_svr_wgt(vs, r, r.effective_weight + weight - ch.cur_weight, True, acts)
            ch.cur_weight = weight
        ch.last_ok = ok
        ch.has_run = True
        ch.next_time = now + ch.params.delay_loop

    # ---- keepalived's ipwrapper.c ------------------------------------------------------------------

    @staticmethod
    def _set_checker_state(rs: _Rs, ch: _Checker, up: bool) -> None:
        if ch.is_up == up:
            return
        ch.is_up = up
        if not up:
            rs.num_failed += 1
        elif rs.num_failed:
            rs.num_failed -= 1

    def _update_checker_state(self, vs: _Vs, rs: _Rs, ch: _Checker, alive: bool, acts: list[Action]) -> None:
        if ch.is_up == alive:
            if not ch.has_run:
                if ch.params.alpha or not alive:
                    self._rs_notifies(vs, rs, acts)
                ch.has_run = True
            return
        ch.has_run = True
        if alive:
            if rs.num_failed <= 1:
                self._perform_svr_state(vs, rs, True, acts)
        elif rs.num_failed == 0:
            self._perform_svr_state(vs, rs, False, acts)
        self._set_checker_state(rs, ch, alive)

    def _perform_svr_state(self, vs: _Vs, rs: _Rs, alive: bool, acts: list[Action]) -> None:
        if rs.alive == alive:
            return
        if alive:
            verb = "Enabling" if rs.inhibit else "Adding"
        else:
            verb = "Disabling" if rs.inhibit else "Removing"
        prep = "of" if rs.inhibit else ("to" if alive else "from")
        # keepalived logs both at LOG_INFO; a server leaving the pool is what an operator must notice
        acts.append(LogEvent(f"{verb} service {rs.key} {prep} VS {vs.key}", "notice" if alive else "warning",
                             vs.key, rs.key))
        if self._rs_changes_reach_ipvs(vs):
            acts.append(self._ipvs_add(vs, rs) if alive else self._ipvs_del(vs, rs))
        rs.alive = alive
        self._rs_notifies(vs, rs, acts)
        self._update_quorum(vs, False, acts)

    @staticmethod
    def _rs_changes_reach_ipvs(vs: _Vs) -> bool:
        """Real-server changes go to IPVS unless the sorry server is standing in."""
        return vs.quorum_up or vs.sorry is None or not vs.sorry.alive

    def _rs_notifies(self, vs: _Vs, rs: _Rs, acts: list[Action]) -> None:
        acts.append(RealServerState(vs.key, rs.key, rs.alive))
        script = rs.params.notify_up if rs.alive else rs.params.notify_down
        if script:
            acts.append(RunNotify(script, "rs_up" if rs.alive else "rs_down", vs.key, rs.key))

    @staticmethod
    def _weight_sum(vs: _Vs) -> int:
        return sum(real_weight(r.effective_weight) for r in vs.rs.values() if r.alive)

    def _update_quorum(self, vs: _Vs, init: bool, acts: list[Action]) -> None:
        weight_sum = self._weight_sum(vs)
        threshold = vs.quorum + (-vs.hysteresis if vs.quorum_up else vs.hysteresis)
        s = vs.sorry
        if not vs.quorum_up and weight_sum >= threshold:
            vs.quorum_up = True
            acts.append(
                LogEvent(
                    f"Gained quorum {vs.quorum}+{vs.hysteresis}={threshold} <= {weight_sum} for VS {vs.key}",
                    "info",
                    vs.key,
                )
            )
            if s is not None and s.alive:
                verb = "Disabling" if s.inhibit else "Removing"
                acts.append(LogEvent(f"{verb} sorry server {s.key} from VS {vs.key}", "info", vs.key))
                acts.append(self._sorry_del(vs, s))
                s.alive = False
                self._perform_quorum_state(vs, True, acts)
            self._vs_notifies(vs, init, threshold, weight_sum, acts)
        elif (vs.quorum_up and (weight_sum == 0 or weight_sum < threshold)) or (
            init and not vs.quorum_up and s is not None and not s.alive
        ):
            vs.quorum_up = False
            what = "Starting with quorum down" if init else "Lost quorum"
            acts.append(
                LogEvent(
                    f"{what} {vs.quorum}-{vs.hysteresis}={threshold} > {weight_sum} for VS {vs.key}",
                    "info",
                    vs.key,
                )
            )
            if s is not None and not s.alive:
                verb = "Enabling" if s.inhibit else "Adding"
                acts.append(LogEvent(f"{verb} sorry server {s.key} to VS {vs.key}", "info", vs.key))
                self._perform_quorum_state(vs, False, acts)
                acts.append(self._sorry_add(vs, s))
                s.alive = True
            self._vs_notifies(vs, init, threshold, weight_sum, acts)

    def _perform_quorum_state(self, vs: _Vs, add: bool, acts: list[Action]) -> None:
        what = "Adding alive servers to" if add else "Removing alive servers from"
        acts.append(LogEvent(f"{what} the pool for VS {vs.key}", "info", vs.key))
        for rs in vs.rs.values():
            if rs.alive:
                acts.append(self._ipvs_add(vs, rs) if add else self._ipvs_del(vs, rs))

    def _vs_notifies(self, vs: _Vs, init: bool, threshold: int, weight_sum: int, acts: list[Action]) -> None:
        q, h = vs.quorum, vs.hysteresis
        if vs.quorum_up:
            acts.append(QuorumGained(vs.key, q, h, threshold, weight_sum, init))
            if vs.params.quorum_up:
                acts.append(RunNotify(vs.params.quorum_up, "quorum_up", vs.key))
        else:
            acts.append(QuorumLost(vs.key, q, h, threshold, weight_sum, init))
            if vs.params.quorum_down:
                acts.append(RunNotify(vs.params.quorum_down, "quorum_down", vs.key))

    def _update_svr_wgt(self, vs: _Vs, rs: _Rs, weight: int, update_quorum: bool, acts: list[Action]) -> None:
        new, old = real_weight(weight), real_weight(rs.effective_weight)
        rs.effective_weight = weight
        if new == old:
            return
        state = "" if rs.alive else "in"
        acts.append(
            LogEvent(
                f"Changing weight from {old} to {new} for {state}active service {rs.key} of VS {vs.key}",
                "info",
                vs.key,
                rs.key,
            )
        )
        if rs.set and rs.alive and self._rs_changes_reach_ipvs(vs):
            rs.ipvs_weight = new
            acts.append(DestWeight(vs.key, rs.key, rs.params.address, rs.params.port, new))
        if update_quorum:
            self._update_quorum(vs, False, acts)

    # ---- keepalived's ipvs_cmd() for dests: inhibit turns a delete into weight 0 -----------------------

    @staticmethod
    def _ipvs_add(vs: _Vs, rs: _Rs) -> Action:
        a = rs.params
        weight = real_weight(rs.effective_weight)
        if not rs.set:
            rs.set = True
            if rs.inhibit and rs.num_failed:
                rs.ipvs_weight = 0
                return DestDown(vs.key, rs.key, a.address, a.port, 0)
        rs.ipvs_weight = weight
        return DestUp(vs.key, rs.key, a.address, a.port, weight)

    @staticmethod
    def _ipvs_del(vs: _Vs, rs: _Rs, *, force: bool = False) -> Action:
        a = rs.params
        if rs.inhibit and not force:
            rs.ipvs_weight = 0
            return DestDown(vs.key, rs.key, a.address, a.port, 0)
        rs.set = False
        rs.ipvs_weight = None
        return DestDown(vs.key, rs.key, a.address, a.port, None)

    @staticmethod
    def _sorry_add(vs: _Vs, s: _Sorry) -> Action:
        s.set = True
        s.ipvs_weight = real_weight(s.weight)
        return SorryServerOn(vs.key, s.key, s.address, s.port, s.ipvs_weight)

    @staticmethod
    def _sorry_del(vs: _Vs, s: _Sorry) -> Action:
        if s.inhibit:
            s.ipvs_weight = 0
            return SorryServerOff(vs.key, s.key, s.address, s.port, 0)
        s.set = False
        s.ipvs_weight = None
        return SorryServerOff(vs.key, s.key, s.address, s.port, None)

    # ---- lookup ------------------------------------------------------------------------------------

    def _rs(self, ref: RsRef) -> tuple[_Vs, _Rs]:
        try:
            vs = self._vs[ref.vs]
            return vs, vs.rs[ref.rs]
        except KeyError:
            raise KeyError(f"unknown real server {ref.rs} in VS {ref.vs}") from None

    def _lookup(self, ref: RsRef, checker: int) -> tuple[_Vs, _Rs, _Checker]:
        vs, rs = self._rs(ref)
        if not 0 <= checker < len(rs.checkers):
            raise KeyError(f"real server {ref.rs} in VS {ref.vs} has no checker #{checker}")
        return vs, rs, rs.checkers[checker]
