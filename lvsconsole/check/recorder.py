"""The health-check flight recorder: per checker, the last N probes, kept in memory (sans-IO).

Every completed check (:class:`~lvsconsole.check.runner.CheckRecord`) is written into a fixed-size ring per
(VS, RS, checker): when it finished, how long it took, a reason code (see :func:`reason_code`), the checker's
own reason text ("connection refused", "status 503 for /health") and its log sentence. Nothing goes on the
event bus: at ten thousand checks a second the bus and every face's queue would drown.

Memory stays small and flat: a ring is two ``array('d')`` (time, latency), one ``bytearray`` (the reason
code) and two lists of references to the checker's strings (mostly shared constants), grown up to the
capacity and then overwritten in place; nothing is allocated per probe beyond what the checker already made.

Summaries over the window:

* **transitions**: how many times consecutive probes went from ok to failed or back.
* **flap score** (0.0–1.0): the transitions weighted by recency and divided by the most a full window can
  hold. A transition whose newer probe is the ``a``-th newest (``a`` = 0 for the newest) weighs
  ``1 - a / (N - 1)`` with ``N`` the ring's capacity; a full window alternating at every probe sums to
  ``N / 2`` and scores 1.0. One fresh transition scores ``2 / N`` (0.04 for N = 50): a server that went down
  once is not flapping; one that goes up and down every few probes scores high, and the score decays as its
  flaps age out. Dividing by the capacity rather than the probes so far keeps a young ring from looking flappy.
* **latency p50 / p95**: nearest-rank percentiles of the *successful* probes' durations (a refused connect
  is fast and a timeout is the timeout: neither says how quickly the server answers). None without one.
* **sparkline**: one character per probe, oldest first: a block scaled to the window's slowest success, or
  ``×`` for a failure.
"""

from __future__ import annotations

import itertools
import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lvsconsole.check.policy import CheckerRef, CheckOutcome
from lvsconsole.check.runner import CheckRecord

__all__ = [
    "DEFAULT_CAPACITY",
    "REASON_CODES",
    "CheckRecorder",
    "CheckerHistory",
    "Probe",
    "ProbeNow",
    "ProbeRing",
    "flap_score",
    "latency_sparkline",
    "percentile",
    "probe_of",
    "reason_code",
    "transitions",
]

DEFAULT_CAPACITY = 50
"""Probes kept per checker."""

REASON_CODES: tuple[str, ...] = (
    "ok", "refused", "timeout", "reset", "unreachable", "http_status", "digest_mismatch", "regex_mismatch",
    "tls_error", "dns_rcode", "script_exit", "script_signal", "no_response", "protocol", "error",
)
"""Every reason code, by its index in the ring (``ok`` is 0)."""

_CODE_INDEX = {code: i for i, code in enumerate(REASON_CODES)}

# The checkers' own reason texts (check/_net.os_reason, http, smtp, dns, udp, misc) → a code. Matched on the
# lower-cased reason, first hit wins: a "TLS handshake timeout" is a timeout before it is a TLS problem.
_REASON_PATTERNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("timeout", ("timeout", "timed out")),
    ("refused", ("connection refused",)),
    ("reset", ("connection reset", "broken pipe", "connection aborted")),
    ("unreachable", ("unreachable", "no route to host", "cannot resolve", "network is down",
                     "cannot assign requested address")),
    ("script_signal", ("killed by signal",)),
    ("script_exit", ("exit status",)),
    ("http_status", ("status ",)),
    ("digest_mismatch", ("digest ",)),
    ("regex_mismatch", ("regex ",)),
    ("tls_error", ("ssl", "tls", "certificate", "handshake")),
    ("dns_rcode", ("rcode ",)),
    ("no_response", ("no reply", "no http response", "connection closed")),
    ("protocol", ("bad greeting", "bad helo", "mismatch", "unexpected")),
)


def reason_code(outcome: CheckOutcome) -> str:
    """The reason code of one probe's outcome (one of :data:`REASON_CODES`)."""
    if outcome.ok:
        return "ok"
    if outcome.timed_out:
        return "timeout"
    if outcome.signal is not None:
        return "script_signal"
    text = outcome.reason.lower()
    for code, needles in _REASON_PATTERNS:
        if any(n in text for n in needles):
            return code
    if outcome.exit_status is not None:
        return "script_exit"
    if "ssl" in outcome.detail.lower():  # HTTP's TLS failures carry the OpenSSL text as their reason
        return "tls_error"
    return "error"


@dataclass(frozen=True, slots=True)
class Probe:
    """One recorded probe (built on demand from the ring; the ring itself holds no objects per probe)."""

    time: float
    latency: float
    code: str
    reason: str
    detail: str

    @property
    def ok(self) -> bool:
        return self.code == "ok"

    def as_json(self) -> dict[str, Any]:
        return {"time": self.time, "ok": self.ok, "latency": self.latency, "code": self.code,
                "reason": self.reason, "detail": self.detail}


class ProbeRing:
    """The last ``capacity`` probes of one checker, oldest overwritten first."""

    __slots__ = ("_codes", "_details", "_latencies", "_next", "_reasons", "_times", "capacity")

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 2:
            raise ValueError("a probe ring holds at least 2 probes")
        self.capacity = capacity
        self._times = array("d")
        self._latencies = array("d")
        self._codes = bytearray()
        self._reasons: list[str] = []
        self._details: list[str] = []
        self._next = -1
        """Where the next probe goes once the ring is full (the oldest slot); -1 until it is full."""

    def __len__(self) -> int:
        return len(self._codes)

    def add(self, finished: float, latency: float, code: str, reason: str = "", detail: str = "") -> None:
        self.add_index(finished, latency, _CODE_INDEX[code], reason, detail)

    def add_index(self, finished: float, latency: float, index: int, reason: str, detail: str) -> None:
        """:meth:`add` with the code as its index in :data:`REASON_CODES` (the recorder's per-check call)."""
        slot = self._next
        if slot < 0:  # still filling up
            self._times.append(finished)
            self._latencies.append(latency)
            self._codes.append(index)
            self._reasons.append(reason)
            self._details.append(detail)
            if len(self._codes) == self.capacity:
                self._next = 0
            return
        self._times[slot] = finished
        self._latencies[slot] = latency
        self._codes[slot] = index
        self._reasons[slot] = reason
        self._details[slot] = detail
        slot += 1
        self._next = slot if slot < self.capacity else 0

    def _order(self) -> Iterable[int]:
        size = len(self._codes)
        start = self._next if size == self.capacity else 0
        return ((start + i) % size for i in range(size))

    def oks(self) -> list[bool]:
        """Whether each probe succeeded, oldest first."""
        codes = self._codes
        return [codes[i] == 0 for i in self._order()]

    def probes(self, *, clock_offset: float = 0.0) -> list[Probe]:
        """The probes, oldest first; ``clock_offset`` is added to their times (loop time → wall clock)."""
        return [Probe(self._times[i] + clock_offset, self._latencies[i], REASON_CODES[self._codes[i]],
                      self._reasons[i], self._details[i]) for i in self._order()]

    def clear(self) -> None:
        self._times = array("d")
        self._latencies = array("d")
        self._codes = bytearray()
        self._reasons.clear()
        self._details.clear()
        self._next = -1


# ---------------------------------------------------------------------------------------------- summaries


def transitions(oks: Sequence[bool]) -> int:
    """How many times consecutive probes changed between ok and failed."""
    return sum(1 for a, b in itertools.pairwise(oks) if a != b)


def flap_score(oks: Sequence[bool], capacity: int) -> float:
    """Recency-weighted transitions over the most a full window of ``capacity`` probes can hold (0.0–1.0);
    see the module docstring."""
    if capacity < 2 or len(oks) < 2:
        return 0.0
    newest = len(oks) - 1
    total = 0.0
    for k in range(1, len(oks)):
        if oks[k] != oks[k - 1]:
            age = newest - k
            total += max(0.0, 1.0 - age / (capacity - 1))
    return min(1.0, total / (capacity / 2))


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending sequence; None when it is empty."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[k]


SPARK_LEVELS = "▁▂▃▄▅▆▇█"
FAILED_MARK = "×"


def latency_sparkline(probes: Sequence[Probe]) -> str:
    """One character per probe, oldest first: successes scaled to the slowest success shown, failures ``×``."""
    slowest = max((p.latency for p in probes if p.ok), default=0.0)
    top = len(SPARK_LEVELS) - 1
    out = []
    for p in probes:
        if not p.ok:
            out.append(FAILED_MARK)
        elif slowest <= 0:
            out.append(SPARK_LEVELS[0])
        else:
            out.append(SPARK_LEVELS[min(top, round(p.latency / slowest * top))])
    return "".join(out)


@dataclass(frozen=True, slots=True)
class CheckerHistory:
    """The flight recorder of one checker of one real server in one virtual server, with its summaries."""

    vs: str
    rs: str
    index: int
    kind: str
    target: str
    capacity: int
    probes: tuple[Probe, ...]
    transitions: int
    flap_score: float
    latency_p50: float | None
    latency_p95: float | None

    @classmethod
    def of(cls, vs: str, rs: str, index: int, kind: str, target: str, capacity: int,
           probes: Sequence[Probe]) -> CheckerHistory:
        oks = [p.ok for p in probes]
        latencies = sorted(p.latency for p in probes if p.ok)
        return cls(vs, rs, index, kind, target, capacity, tuple(probes), transitions(oks),
                   flap_score(oks, capacity), percentile(latencies, 0.50), percentile(latencies, 0.95))

    @property
    def sparkline(self) -> str:
        return latency_sparkline(self.probes)

    @property
    def failures(self) -> int:
        return sum(1 for p in self.probes if not p.ok)

    def as_json(self) -> dict[str, Any]:
        return {
            "vs": self.vs, "rs": self.rs, "checker": self.index, "kind": self.kind, "target": self.target,
            "capacity": self.capacity, "transitions": self.transitions, "flap_score": round(self.flap_score, 4),
            "latency_p50": self.latency_p50, "latency_p95": self.latency_p95, "failures": self.failures,
            "sparkline": self.sparkline, "probes": [p.as_json() for p in self.probes],
        }


# ---------------------------------------------------------------------------------------------- recorder


class CheckRecorder:
    """Rings for every checker that has reported; feed it :meth:`record` from the check service's record
    listener. The details keep the checker's ``{rs}``/``{vs}`` tokens; :meth:`history` fills them in."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 2:
            raise ValueError("the flight recorder keeps at least 2 probes per checker")
        self.capacity = capacity
        self._rings: dict[CheckerRef, ProbeRing] = {}

    def __len__(self) -> int:
        return len(self._rings)

    def record(self, record: CheckRecord) -> None:
        ref, outcome, _, started, finished, _ = record
        ring = self._rings.get(ref)
        if ring is None:
            ring = self._rings[ref] = ProbeRing(self.capacity)
        index = 0 if outcome.ok else _CODE_INDEX[reason_code(outcome)]
        ring.add_index(finished, finished - started, index, outcome.reason, outcome.detail)

    def ring(self, ref: CheckerRef) -> ProbeRing | None:
        return self._rings.get(ref)

    def history(self, ref: CheckerRef, *, kind: str = "", target: str = "", clock_offset: float = 0.0
                ) -> CheckerHistory:
        """The checker's recorder (empty if it has not reported yet), times moved by ``clock_offset``."""
        ring = self._rings.get(ref)
        vs, rs = ref.rs.vs, ref.rs.rs
        probes = [] if ring is None else ring.probes(clock_offset=clock_offset)
        filled = [Probe(p.time, p.latency, p.code, p.reason, p.detail.replace("{rs}", rs).replace("{vs}", vs))
                  for p in probes]
        return CheckerHistory.of(vs, rs, ref.index, kind, target, self.capacity, filled)

    def retain(self, refs: Iterable[CheckerRef]) -> None:
        """Forget every checker not in ``refs`` (after a reload removed or renumbered them)."""
        keep = set(refs)
        for ref in [r for r in self._rings if r not in keep]:
            del self._rings[ref]


@dataclass(frozen=True, slots=True)
class ProbeNow:
    """One probe run on demand (``check now``) for one checker of one real server in one virtual server."""

    vs: str
    rs: str
    index: int
    kind: str
    target: str
    probe: Probe

    def as_json(self) -> dict[str, Any]:
        return {"vs": self.vs, "rs": self.rs, "checker": self.index, "kind": self.kind, "target": self.target,
                **self.probe.as_json()}


def probe_of(record: CheckRecord, *, clock_offset: float = 0.0) -> Probe:
    """A check record as a recorder probe, its detail's ``{rs}``/``{vs}`` filled in."""
    outcome = record.outcome
    vs, rs = record.ref.rs.vs, record.ref.rs.rs
    return Probe(record.finished + clock_offset, record.duration, reason_code(outcome), outcome.reason,
                 outcome.detail.replace("{rs}", rs).replace("{vs}", vs))
