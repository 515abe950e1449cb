"""CheckPolicy.record_outcome_and_due (the runner's per-check call) against record_outcome + next_check_time."""

from __future__ import annotations

import random

from lvsconsole.check.policy import (
    CheckOutcome,
    CheckParams,
    CheckPolicy,
    DestDown,
    DestUp,
    RealServerParams,
    RsRef,
    VirtualServerParams,
)

VS_KEY = "[192.168.2.188]:tcp:80"
RS = RsRef(VS_KEY, "[192.168.2.1]:tcp:80")
UP = CheckOutcome(True, "TCP connection to {rs} success.")
FAILED = CheckOutcome(False, "TCP connection to {rs} failed.", reason="connection refused")


def twin_policies(kind: str = "TCP_CHECK", *, misc_dynamic: bool = False) -> tuple[CheckPolicy, CheckPolicy]:
    check = CheckParams(
        kind=kind, delay_loop=10.0, retry=2, delay_before_retry=1.0, warmup=0.0, misc_dynamic=misc_dynamic
    )
    server = RealServerParams("192.168.2.1", 80, checkers=(check,))
    vs = VirtualServerParams(address="192.168.2.188", port=80, real_servers=(server,))
    return (
        CheckPolicy([vs], rng=random.Random(7), bootstrap_delay=0.0),
        CheckPolicy([vs], rng=random.Random(7), bootstrap_delay=0.0),
    )


def test_matches_record_outcome_through_retries_failure_and_recovery() -> None:
    reference, fast = twin_policies()
    assert reference.start(0.0) == fast.start(0.0)
    # steady successes, a blip inside the retries, three failures (down), a recovery, steady again
    pattern = [True, True, False, True, True, False, False, False, False, True, True, True]
    now = 0.0
    seen_down = seen_up = False
    for ok in pattern:
        outcome = UP if ok else FAILED
        expected = reference.record_outcome(RS, 0, outcome, now)
        actions, due = fast.record_outcome_and_due(RS, 0, outcome, now)
        assert list(actions) == expected
        assert due == fast.next_check_time(RS, 0) == reference.next_check_time(RS, 0)
        assert fast.checker_up(RS, 0) == reference.checker_up(RS, 0)
        seen_down |= any(isinstance(a, DestDown) for a in actions)
        seen_up |= seen_down and any(isinstance(a, DestUp) for a in actions)
        now = due
    assert seen_down and seen_up  # the sequence did cross both transitions


def test_steady_state_success_returns_no_actions_and_the_next_due_time() -> None:
    _, policy = twin_policies()
    policy.start(0.0)
    first, _ = policy.record_outcome_and_due(RS, 0, UP, 0.0)
    assert first  # the first success is logged
    actions, due = policy.record_outcome_and_due(RS, 0, UP, 10.0)
    assert not actions
    assert due == 20.0 == policy.next_check_time(RS, 0)


def test_misc_check_success_still_goes_through_its_own_recorder() -> None:
    reference, fast = twin_policies("MISC_CHECK", misc_dynamic=True)
    reference.start(0.0)
    fast.start(0.0)
    for now, status in ((0.0, 0), (10.0, 0), (20.0, 5)):  # exit 5 with misc_dynamic: weight 3
        outcome = CheckOutcome(True, exit_status=status)
        expected = reference.record_outcome(RS, 0, outcome, now, started=now)
        actions, due = fast.record_outcome_and_due(RS, 0, outcome, now, started=now)
        assert list(actions) == expected
        assert due == reference.next_check_time(RS, 0)
    assert fast.effective_weight(RS) == reference.effective_weight(RS) == 3
