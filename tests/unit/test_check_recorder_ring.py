"""The probe ring's per-check write (add_index) at the edges: filling up, wrapping, clearing."""

from __future__ import annotations

from lvsconsole.check.recorder import REASON_CODES, ProbeRing


def test_ring_wraps_exactly_at_capacity_and_again_after_clear() -> None:
    ring = ProbeRing(3)
    for i in range(3):
        ring.add_index(float(i), 0.0, 0, "", "")
    assert [p.time for p in ring.probes()] == [0.0, 1.0, 2.0]  # full, nothing overwritten yet
    ring.add_index(3.0, 0.0, REASON_CODES.index("refused"), "connection refused", "")
    assert [(p.time, p.code) for p in ring.probes()] == [(1.0, "ok"), (2.0, "ok"), (3.0, "refused")]
    ring.clear()
    for i in range(4):
        ring.add(float(10 + i), 0.0, "ok")
    assert [p.time for p in ring.probes()] == [11.0, 12.0, 13.0]
    assert len(ring) == 3
