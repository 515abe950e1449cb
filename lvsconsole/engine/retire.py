"""Drain-then-delete for real servers a reload removes (sans-IO).

A reload that removes a real server does not delete its IPVS dest at once: that would cut the connections
it carries (keepalived's #1228/#2240). The dest stays in the table at weight 0 ("draining": established
connections continue, new ones go elsewhere) until the kernel's ActiveConn for it reaches 0 or
``drain_timeout`` elapses, then it is deleted. A server with no active connection, or with a drain_timeout
of 0 (keepalived's behaviour), goes at once.

``RetirePlanner`` only decides: the director tells it what a reload removed (``begin``), what a later
reload brought back (``keep``), and feeds it the active-connection counts it samples (``review``), with
the time as an argument. Times are monotonic seconds.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

SAMPLE_INTERVAL = 0.5
"""How often the counters of draining servers are read while something drains."""

K = TypeVar("K", bound=Hashable)
P = TypeVar("P")

RemovalReason = Literal["drained", "timeout"]


@dataclass(frozen=True, slots=True)
class Retirement(Generic[K, P]):
    """A removed server kept at weight 0 until ``deadline`` or until it has no active connection."""

    key: K
    subject: P
    """What the caller needs to keep the dest in its table (the server's old config), opaque here."""
    since: float
    deadline: float
    active: int
    """Active connections when last sampled."""


@dataclass(frozen=True, slots=True)
class Removal(Generic[K, P]):
    """A retirement that is over: delete the dest now."""

    retirement: Retirement[K, P]
    reason: RemovalReason
    active: int
    """Active connections left behind (0 unless the drain timed out)."""
    at: float

    @property
    def key(self) -> K:
        return self.retirement.key

    @property
    def drained_for(self) -> float:
        return self.at - self.retirement.since


class RetirePlanner(Generic[K, P]):
    """The servers being drained before removal, and when each is to go."""

    def __init__(self) -> None:
        self._pending: dict[K, Retirement[K, P]] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._pending

    def __iter__(self) -> Iterator[Retirement[K, P]]:
        return iter(list(self._pending.values()))

    def __len__(self) -> int:
        return len(self._pending)

    def get(self, key: K) -> Retirement[K, P] | None:
        return self._pending.get(key)

    def begin(self, key: K, subject: P, active: int, now: float, timeout: float) -> Retirement[K, P] | None:
        """A reload removed ``key``: its retirement, or None when it is to be deleted at once.

        A server already draining keeps its first deadline: a second reload does not extend the wait.
        """
        current = self._pending.get(key)
        if current is not None:
            return current
        if active <= 0 or timeout <= 0:
            return None
        retirement = Retirement(key, subject, now, now + timeout, active)
        self._pending[key] = retirement
        return retirement

    def keep(self, key: K) -> Retirement[K, P] | None:
        """A reload brought ``key`` back while it drained: it stays, at its configured weight again."""
        return self._pending.pop(key, None)

    def review(self, active: Mapping[K, int], now: float) -> list[Removal[K, P]]:
        """The retirements that are over given the sampled ``active`` counts (a missing key counts as 0:
        the dest is gone from the kernel's table, so nothing is left to wait for)."""
        done: list[Removal[K, P]] = []
        for key, retirement in list(self._pending.items()):
            count = active.get(key, 0)
            if count <= 0:
                done.append(Removal(retirement, "drained", 0, now))
            elif now >= retirement.deadline:
                done.append(Removal(retirement, "timeout", count, now))
            else:
                if count != retirement.active:
                    self._pending[key] = Retirement(key, retirement.subject, retirement.since, retirement.deadline,
                                                    count)
                continue
            del self._pending[key]
        return done

    def next_review(self, now: float) -> float | None:
        """When to sample and review again: soon while anything drains, never when nothing does."""
        if not self._pending:
            return None
        earliest = min(r.deadline for r in self._pending.values())
        return max(now, min(now + SAMPLE_INTERVAL, earliest))
