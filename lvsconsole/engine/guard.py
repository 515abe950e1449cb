"""Guarded actions and the minimum-pool floor (sans-IO).

Before an operator takes real servers out of service (drain, maint, a commit that deletes them) the executor
asks :func:`blast_radius` what each affected virtual server is left with: healthy servers and serving weight
before and after, against its quorum and its ``min_healthy``. A change that leaves a virtual server with no
healthy server, below quorum or below min_healthy is refused unless confirmed (``--force``).

The same floor holds for automated depools: :func:`floor_keep` picks which failing servers the director keeps
in the table so that health checks never leave fewer than ``min_healthy`` (PyBal's depool-threshold).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lvsconsole.config.model import MinHealthy
from lvsconsole.engine.director_api import RealServerView, VirtualServerView


def serving(rs: RealServerView) -> bool:
    """Healthy and taking new connections: checks say up, and the table holds it at a weight above 0."""
    return rs.health == "up" and rs.weight is not None and rs.weight > 0


@dataclass(frozen=True)
class BlastRadius:
    """What one virtual server is left with after a proposed change."""

    vs: str
    """The virtual server's label ("10.0.0.100:80")."""
    vs_key: str
    removed: tuple[str, ...]
    """Labels of its real servers the change takes out of service."""
    healthy_before: int
    healthy_after: int
    weight_before: int
    weight_after: int
    quorum: int
    min_healthy: MinHealthy | None
    required: int
    """Healthy servers min_healthy asks for (0 without min_healthy)."""

    @property
    def problems(self) -> tuple[str, ...]:
        """Why the change is dangerous; empty when it is not. A change that makes nothing worse is never
        dangerous, even for a virtual server already in trouble."""
        if self.healthy_after >= self.healthy_before and self.weight_after >= self.weight_before:
            return ()
        found = []
        if self.healthy_after == 0:
            found.append(f"leaves VS {self.vs} with 0 healthy servers")
        elif self.weight_after < self.quorum:
            found.append(f"leaves VS {self.vs} below quorum (weight {self.weight_after} < quorum {self.quorum})")
        if self.min_healthy is not None and 0 < self.healthy_after < self.required:
            found.append(f"leaves VS {self.vs} with {self.healthy_after} healthy server"
                         f"{'s' * (self.healthy_after != 1)}, below min_healthy {self.min_healthy}")
        return tuple(found)

    @property
    def dangerous(self) -> bool:
        return bool(self.problems)

    def text(self) -> str:
        floor = "" if self.min_healthy is None else f", min_healthy {self.min_healthy} ({self.required})"
        return (f"VS {self.vs}: healthy {self.healthy_before} -> {self.healthy_after}, "
                f"weight {self.weight_before} -> {self.weight_after} (quorum {self.quorum}{floor})")

    def as_json(self) -> dict[str, Any]:
        return {
            "vs": self.vs, "vs_key": self.vs_key, "removed": list(self.removed),
            "healthy_before": self.healthy_before, "healthy_after": self.healthy_after,
            "weight_before": self.weight_before, "weight_after": self.weight_after, "quorum": self.quorum,
            "min_healthy": None if self.min_healthy is None else str(self.min_healthy), "required": self.required,
            "dangerous": self.dangerous, "problems": list(self.problems),
        }


def blast_radius(virtual_servers: Iterable[VirtualServerView],
                 removing: Mapping[str, Collection[str]]) -> list[BlastRadius]:
    """The effect of taking out of service, per virtual-server key, the real servers keyed in ``removing``."""
    out = []
    for vs in virtual_servers:
        gone = removing.get(vs.key)
        if not gone:
            continue
        before = [rs for rs in vs.real_servers if serving(rs)]
        after = [rs for rs in before if rs.key not in gone]
        required = 0 if vs.min_healthy is None else vs.min_healthy.required(len(vs.real_servers))
        out.append(BlastRadius(
            vs=vs.label, vs_key=vs.key, removed=tuple(rs.label for rs in vs.real_servers if rs.key in gone),
            healthy_before=len(before), healthy_after=len(after),
            weight_before=sum(rs.weight or 0 for rs in before), weight_after=sum(rs.weight or 0 for rs in after),
            quorum=vs.quorum, min_healthy=vs.min_healthy, required=required,
        ))
    return out


def refusal(radii: Sequence[BlastRadius], verb: str) -> str | None:
    """The message refusing an unconfirmed dangerous change, or None when no virtual server is endangered."""
    problems = [p for r in radii for p in r.problems]
    if not problems:
        return None
    lines = [f"refused: '{verb}' {'; '.join(problems)}"]
    lines += [r.text() for r in radii if r.dangerous]
    lines.append("add --force to confirm")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- the floor


def floor_keep(failing: Sequence[str], healthy: int, required: int, already_kept: Collection[str]) -> tuple[str, ...]:
    """The failing real servers (keys, in config order) to keep in the table so that at least ``required``
    stay; those kept already come first, so a kept server is not swapped for another while the floor holds."""
    missing = required - healthy
    if missing <= 0:
        return ()
    ordered = [k for k in failing if k in already_kept] + [k for k in failing if k not in already_kept]
    return tuple(ordered[:missing])
