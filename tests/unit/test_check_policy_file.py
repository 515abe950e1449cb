"""FILE_CHECK in the sans-IO policy: keepalived's track-file weight arithmetic, on a virtual clock."""

from __future__ import annotations

from lvsconsole.check.policy import (
    CheckOutcome,
    CheckParams,
    CheckPolicy,
    DestDown,
    DestUp,
    DestWeight,
    LogEvent,
    RealServerParams,
    VirtualServerParams,
)

FILE = CheckParams(kind="FILE_CHECK", delay_loop=1.0, retry=0, delay_before_retry=0.0, warmup=0.0)


def setup(ok: bool, weight: int) -> tuple[CheckPolicy, list[object]]:
    vs = VirtualServerParams(
        "10.0.0.1", 80, real_servers=(RealServerParams("10.0.0.2", 80, weight=10, checkers=(FILE,)),)
    )
    pol = CheckPolicy([vs], bootstrap_delay=0.0)
    (ref,) = pol.checker_refs()
    pol.preset_file_state(ref.rs, 0, ok, weight)
    return pol, list(pol.start(0.0))


def test_a_fault_at_start_up_keeps_the_server_out() -> None:
    _, acts = setup(False, 0)
    assert not any(isinstance(a, DestUp) for a in acts)


def test_weight_contribution_is_added_at_start_up() -> None:
    pol, acts = setup(True, -6)
    (up,) = [a for a in acts if isinstance(a, DestUp)]
    assert up.weight == 4
    assert pol.effective_weight(pol.checker_refs()[0].rs) == 4


def test_changes_faults_and_recovery() -> None:
    pol, _ = setup(True, 2)
    ref = pol.checker_refs()[0]

    def feed(ok: bool, weight: int, now: float) -> list[object]:
        return list(pol.record_outcome(ref.rs, 0, CheckOutcome(ok, weight=weight), now))

    acts = feed(True, 5, 1.0)  # 10 + 2 → 10 + 5
    assert [a.weight for a in acts if isinstance(a, DestWeight)] == [15]
    assert any(isinstance(a, LogEvent) and a.message.startswith("Changing weight from 12 to 15") for a in acts)
    assert feed(True, 5, 2.0) == []  # unchanged: nothing to do
    acts = feed(False, 0, 3.0)  # fault: out, and the contribution with it
    assert any(isinstance(a, DestDown) for a in acts)
    assert pol.effective_weight(ref.rs) == 10 and not pol.is_alive(ref.rs)
    acts = feed(True, -3, 4.0)  # back: contribution first, then up at 7
    (up,) = [a for a in acts if isinstance(a, DestUp)]
    assert up.weight == 7
    assert pol.next_check_time(ref.rs, 0) == 5.0  # polled every delay_loop, no retries
