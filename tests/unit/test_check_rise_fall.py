"""rise / fall on checkers: the policy on a virtual clock (fall counts failed checks, each with its own
retries; rise counts successes; unset is keepalived exactly), and the config keywords (parse, ranges,
strict validation, render round trip, into CheckParams)."""

from __future__ import annotations

import random
import textwrap
from collections.abc import Callable
from typing import Any

import pytest

from lvsconsole.check.from_config import build_checks
from lvsconsole.check.policy import (
    Action,
    CheckParams,
    CheckPolicy,
    DestDown,
    DestUp,
    LogEvent,
    RealServerParams,
    RealServerState,
    RsRef,
    VirtualServerParams,
)
from lvsconsole.config import model as m
from lvsconsole.config.build import load_text
from lvsconsole.config.render import render

VS_KEY = "[10.9.9.9]:tcp:80"
RS_KEY = "[10.0.0.2]:tcp:80"
REF = RsRef(VS_KEY, RS_KEY)


def make_policy(**params: Any) -> CheckPolicy:
    base: dict[str, Any] = {"delay_loop": 10.0, "retry": 1, "delay_before_retry": 1.0, "warmup": 0.0}
    base.update(params)
    server = RealServerParams("10.0.0.2", 80, checkers=(CheckParams(**base),))
    return CheckPolicy(
        [VirtualServerParams("10.9.9.9", 80, real_servers=(server,))], rng=random.Random(1), bootstrap_delay=0.0
    )


class Clock:
    """Runs the one checker at its due times until ``until``, asking ``healthy(t)`` for each result."""

    def __init__(self, policy: CheckPolicy) -> None:
        self.policy = policy
        self.start_actions = policy.start(0.0)
        self.log: list[tuple[float, Action]] = []
        self.times: list[float] = []

    def run(self, until: float, healthy: Callable[[float], bool]) -> None:
        while (due := self.policy.next_check_time(REF, 0)) <= until:
            self.times.append(due)
            ok = healthy(due)
            detail = "TCP connection to {rs} success." if ok else "TCP connection to {rs} failed."
            for action in self.policy.record_result(REF, 0, ok, due, detail=detail):
                self.log.append((due, action))

    def when(self, kind: type[Any]) -> list[float]:
        return [t for t, a in self.log if isinstance(a, kind)]

    def messages(self) -> list[str]:
        return [a.message for _, a in self.log if isinstance(a, LogEvent) and a.level != "debug"]


def test_fall_counts_failed_checks_each_with_its_retries() -> None:
    clock = Clock(make_policy(fall=3))
    clock.run(60.0, lambda t: t < 5)
    # checks at 0 (up), then failed checks at 10+11, 21+22, 32+33 (each retried once after 1 s, the next
    # due delay_loop later): the third failed check takes it down
    assert clock.times[:7] == [0.0, 10.0, 11.0, 21.0, 22.0, 32.0, 33.0]
    assert clock.when(DestDown) == [33.0]
    assert "TCP_CHECK on service [10.0.0.2]:tcp:80 failed (1 of 3 for fall); keeping it up." in clock.messages()
    assert "TCP_CHECK on service [10.0.0.2]:tcp:80 failed (2 of 3 for fall); keeping it up." in clock.messages()
    assert "TCP_CHECK on service [10.0.0.2]:tcp:80 failed after 1 retries." in clock.messages()


def test_a_success_between_failed_checks_starts_fall_again() -> None:
    clock = Clock(make_policy(fall=2))
    # failed check at 10/11, success at 21, then failing for good from 25
    clock.run(80.0, lambda t: t < 5 or 20 < t < 25)
    assert clock.times[:6] == [0.0, 10.0, 11.0, 21.0, 31.0, 32.0]
    assert clock.when(DestDown) == [43.0]  # failed checks at 31/32 and 42/43


def test_rise_needs_consecutive_successes_and_a_failure_restarts_it() -> None:
    clock = Clock(make_policy(rise=3, retry=0))
    # down at 10; successes from 15, except a failure at 30
    clock.run(100.0, lambda t: t < 5 or (t > 15 and t != 30.0))
    assert clock.when(DestDown) == [10.0]
    assert clock.when(DestUp) == [60.0]  # successes 20 (1), failure 30, then 40, 50, 60
    assert "TCP_CHECK on service [10.0.0.2]:tcp:80 succeeded (2 of 3 for rise); keeping it down." in clock.messages()


def test_first_failure_still_removes_a_server_dead_at_start_up() -> None:
    clock = Clock(make_policy(fall=5))
    clock.run(0.0, lambda t: False)
    assert clock.when(DestDown) == [0.0]


def test_alpha_with_rise_adds_the_server_only_after_rise_successes() -> None:
    clock = Clock(make_policy(alpha=True, rise=2))
    assert not any(isinstance(a, DestUp) for a in clock.start_actions)
    clock.run(30.0, lambda t: True)
    assert clock.when(DestUp) == [10.0]
    # the first result asserted the down state (keepalived notifies an alpha checker's first result)
    states = [a for _, a in clock.log if isinstance(a, RealServerState)]
    assert [(s.alive) for s in states] == [False, True]


@pytest.mark.parametrize("seed", range(5))
def test_rise_and_fall_of_one_are_keepalived_exactly(seed: int) -> None:
    rng = random.Random(seed)
    pattern = [rng.random() < 0.6 for _ in range(400)]

    def healthy(t: float) -> bool:
        return pattern[int(t) % len(pattern)]

    plain, explicit = Clock(make_policy(retry=2)), Clock(make_policy(retry=2, rise=1, fall=1))
    plain.run(2000.0, healthy)
    explicit.run(2000.0, healthy)
    assert plain.log == explicit.log and plain.start_actions == explicit.start_actions
    assert plain.when(DestDown) and plain.when(DestUp)  # the pattern does exercise both transitions


def test_misc_check_fall() -> None:
    policy = make_policy(kind="MISC_CHECK", retry=0, fall=2, script="/usr/local/bin/probe")
    policy.start(0.0)
    policy.record_result(REF, 0, True, 0.0, exit_status=0)
    held = policy.record_result(REF, 0, False, 10.0, exit_status=1)
    assert not [a for a in held if isinstance(a, DestDown)]
    levels = {a.message: a.level for a in held if isinstance(a, LogEvent)}
    assert levels["MISC_CHECK on service [10.0.0.2]:tcp:80 failed (1 of 2 for fall); keeping it up."] == "info"
    keepalived_line = f"Misc check for [{RS_KEY} VS {VS_KEY}] by [/usr/local/bin/probe] failed (exited with status 1)."
    assert levels[keepalived_line] == "debug"
    gone = policy.record_result(REF, 0, False, 20.0, exit_status=1)
    assert [a for a in gone if isinstance(a, DestDown)] and policy.is_alive(REF) is False


def test_misc_check_rise() -> None:
    policy = make_policy(kind="MISC_CHECK", retry=0, rise=2, script="/bin/probe")
    policy.start(0.0)
    policy.record_result(REF, 0, False, 0.0, exit_status=1)
    assert not policy.is_alive(REF)
    first = policy.record_result(REF, 0, True, 10.0, exit_status=0)
    assert not [a for a in first if isinstance(a, DestUp)] and not policy.is_alive(REF)
    policy.record_result(REF, 0, True, 20.0, exit_status=0)
    assert policy.is_alive(REF)


def test_params_reject_zero() -> None:
    with pytest.raises(ValueError, match="rise must be >= 1"):
        CheckParams(rise=0)
    with pytest.raises(ValueError, match="fall must be >= 1"):
        CheckParams(fall=0)


def test_adopt_keeps_the_fall_count_across_a_reload() -> None:
    old = make_policy(fall=3)
    old.start(0.0)
    old.record_result(REF, 0, True, 0.0)
    old.record_result(REF, 0, False, 10.0)
    old.record_result(REF, 0, False, 11.0)  # failed check 1 of 3
    new = make_policy(fall=3)
    assert new.adopt(old) == [RS_KEY]
    new.start(12.0)
    new.record_result(REF, 0, False, 21.0)
    new.record_result(REF, 0, False, 22.0)  # 2 of 3
    assert new.is_alive(REF)
    new.record_result(REF, 0, False, 32.0)
    out = new.record_result(REF, 0, False, 33.0)  # 3 of 3
    assert [a for a in out if isinstance(a, DestDown)]


# ---- config ----------------------------------------------------------------------------------------

CONFIG = """
virtual_server 10.9.9.9 80 {
    protocol TCP
    lvs_sched rr
    lvs_method NAT
    delay_loop 5
    real_server 10.0.0.2 80 {
        TCP_CHECK {
            connect_timeout 2
            rise 3
            fall 2
        }
        HTTP_GET {
            url {
                path /health
            }
            fall 4
        }
        MISC_CHECK {
            misc_path "/bin/true"
            rise 2
        }
        SMTP_CHECK {
        }
    }
}
"""


def load(text: str, *, strict: bool = True) -> tuple[m.Config, list[str]]:
    result = load_text(textwrap.dedent(text), strict=strict)
    return result.config, [str(d) for d in result.diagnostics]


def test_config_accepts_rise_and_fall_in_checkers_strictly() -> None:
    config, diagnostics = load(CONFIG)
    assert not [d for d in diagnostics if "error" in d or "unknown" in d], diagnostics
    tcp, http, misc, smtp = config.virtual_servers[0].real_servers[0].checkers
    assert (tcp.rise, tcp.fall) == (3, 2)
    assert (http.rise, http.fall) == (None, 4)
    assert (misc.rise, misc.fall) == (2, None)
    assert (smtp.rise, smtp.fall) == (None, None)


def test_config_rise_and_fall_round_trip() -> None:
    config, _ = load(CONFIG)
    text = render(config)
    assert "rise 3" in text and "fall 2" in text and "fall 4" in text and "rise 2" in text
    again, diagnostics = load(text)
    assert again == config, diagnostics


@pytest.mark.parametrize("line", ["rise 0", "fall 0", "rise -1", "fall x"])
def test_config_rejects_counts_below_one(line: str) -> None:
    _, diagnostics = load(CONFIG.replace("rise 3", line), strict=False)
    word = line.split()[0]
    assert any("error" in d and word in d for d in diagnostics), diagnostics


def test_rise_and_fall_reach_the_check_params() -> None:
    config, _ = load(CONFIG)
    setup = build_checks(config)
    params = setup.virtual_servers[0].real_servers[0].checkers
    assert [(p.kind, p.rise, p.fall) for p in params] == [
        ("TCP_CHECK", 3, 2),
        ("HTTP_CHECK", None, 4),
        ("MISC_CHECK", 2, None),
        ("SMTP_CHECK", None, None),
    ]
