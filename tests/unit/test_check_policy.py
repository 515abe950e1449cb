"""The sans-IO check policy, driven by a virtual clock."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pytest

from lvsconsole.check.policy import (
    Action,
    CheckerRef,
    CheckParams,
    CheckPolicy,
    DestDown,
    DestUp,
    DestWeight,
    LogEvent,
    QuorumGained,
    QuorumLost,
    RealServerParams,
    RealServerState,
    RsRef,
    RunNotify,
    SorryServerOff,
    SorryServerOn,
    VirtualServerParams,
    format_trio,
    real_weight,
)

T = TypeVar("T")

VIP = "192.168.2.188"
VS_KEY = "[192.168.2.188]:tcp:80"
FAILED = "TCP connection to {rs} failed."
SUCCESS = "TCP connection to {rs} success."


def tcp(**kw: Any) -> CheckParams:
    base: dict[str, Any] = {"delay_loop": 10.0, "retry": 3, "delay_before_retry": 1.0, "warmup": 0.0}
    base.update(kw)
    return CheckParams(**base)


def rs(n: int, *checkers: CheckParams, **kw: Any) -> RealServerParams:
    return RealServerParams(f"192.168.2.{n}", 80, checkers=checkers or (tcp(),), **kw)


def vs(*servers: RealServerParams, **kw: Any) -> VirtualServerParams:
    return VirtualServerParams(address=VIP, port=80, real_servers=servers, **kw)


def ref(n: int) -> RsRef:
    return RsRef(VS_KEY, f"[192.168.2.{n}]:tcp:80")


def policy(*vss: VirtualServerParams, **kw: Any) -> CheckPolicy:
    kw.setdefault("bootstrap_delay", 0.0)
    return CheckPolicy(vss, rng=random.Random(7), **kw)


def of(actions: Sequence[Action], kind: type[T]) -> list[T]:
    return [a for a in actions if isinstance(a, kind)]


def info(actions: Sequence[Action]) -> list[str]:
    return [a.message for a in actions if isinstance(a, LogEvent) and a.level != "debug"]


class Clock:
    """A virtual clock: runs every due check in time order, asking ``health`` for the result."""

    def __init__(self, p: CheckPolicy) -> None:
        self.p = p
        self.now = 0.0
        self.start_actions = p.start(0.0)
        self.times: dict[CheckerRef, list[float]] = {}

    def run_until(self, t: float, health: Callable[[RsRef], bool]) -> list[Action]:
        out: list[Action] = []
        refs = self.p.checker_refs()
        while True:
            due, r = min(((self.p.next_check_time(c.rs, c.index), c) for c in refs), key=lambda x: x[0])
            if due > t:
                break
            self.now = due
            self.times.setdefault(r, []).append(due)
            ok = health(r.rs)
            out += self.p.record_result(r.rs, r.index, ok, due, detail=SUCCESS if ok else FAILED)
        self.now = t
        return out


def up(_: RsRef) -> bool:
    return True


def down(_: RsRef) -> bool:
    return False


# ---- formatting -------------------------------------------------------------------------------


def test_keepalived_names() -> None:
    assert format_trio("10.0.0.1", "tcp", 80) == "[10.0.0.1]:tcp:80"
    assert format_trio("2001:db8::1", "udp", 53) == "[2001:db8::1]:udp:53"
    assert VirtualServerParams(fwmark=5).key == "FWM 5"
    assert VirtualServerParams(group="web", port=443).key == "[web]:443"
    v = VirtualServerParams(fwmark=5, real_servers=(rs(3),))
    assert v.rs_key(v.real_servers[0]) == "[192.168.2.3]:none:80"
    assert real_weight(-3) == 0 and real_weight(2**40) == 2**31 - 1


# ---- start-up -----------------------------------------------------------------------------------


def test_start_adds_servers_and_gains_quorum() -> None:
    p = policy(vs(rs(1), rs(2), quorum_up="/bin/qup"))
    acts = p.start(0.0)
    assert of(acts, DestUp) == [
        DestUp(VS_KEY, "[192.168.2.1]:tcp:80", "192.168.2.1", 80, 1),
        DestUp(VS_KEY, "[192.168.2.2]:tcp:80", "192.168.2.2", 80, 1),
    ]
    assert "Activating healthchecker for service [192.168.2.1]:tcp:80 for VS [192.168.2.188]:tcp:80" in info(acts)
    assert f"Gained quorum 1+0=1 <= 2 for VS {VS_KEY}" in info(acts)
    assert of(acts, QuorumGained) == [QuorumGained(VS_KEY, 1, 0, 1, 2, init=True)]
    assert of(acts, RunNotify) == [RunNotify("/bin/qup", "quorum_up", VS_KEY)]
    assert p.desired_dests(VS_KEY) == {"[192.168.2.1]:tcp:80": 1, "[192.168.2.2]:tcp:80": 1}
    with pytest.raises(RuntimeError):
        p.start(1.0)


def test_warmup_spreads_first_checks_without_bursts() -> None:
    servers = [rs(i, tcp(delay_loop=6.0, warmup=None)) for i in range(1, 101)]
    p = policy(vs(*servers), bootstrap_delay=1.0)
    p.start(100.0)
    firsts = sorted(p.next_check_time(r.rs, r.index) for r in p.checker_refs())
    assert all(101.0 <= t <= 107.0 for t in firsts)
    gaps = [b - a for a, b in itertools.pairwise(firsts)]
    # A golden-ratio sequence leaves no two first checks bunched and no long hole.
    assert min(gaps) > 0.01
    assert max(gaps) < 3 * 6.0 / 100


def test_warmup_zero_means_first_check_at_bootstrap() -> None:
    p = policy(vs(rs(1, tcp(warmup=0.0))), bootstrap_delay=1.0)
    p.start(5.0)
    assert p.next_check_time(ref(1), 0) == 6.0


# ---- retry / delay_before_retry -----------------------------------------------------------------


def test_up_checker_goes_down_after_retry_plus_one_failures() -> None:
    p = policy(vs(rs(1)))
    clock = Clock(p)
    first = clock.run_until(0.0, up)
    assert info(first) == ["TCP connection to [192.168.2.1]:tcp:80 success."]
    assert p.next_check_time(ref(1), 0) == 10.0

    acts = clock.run_until(12.5, down)  # failures at 10, 11, 12: the retries
    assert clock.times[CheckerRef(ref(1), 0)] == [0.0, 10.0, 11.0, 12.0]
    assert not of(acts, DestDown)
    assert p.is_alive(ref(1)) and p.checker_up(ref(1), 0)
    # the per-attempt failure text is there, at debug level without log_all_failures
    assert [a.level for a in acts if isinstance(a, LogEvent)] == ["debug"] * 3
    assert acts[0] == LogEvent(
        "TCP connection to [192.168.2.1]:tcp:80 failed.", "debug", VS_KEY, "[192.168.2.1]:tcp:80"
    )

    acts = clock.run_until(13.0, down)  # the 4th consecutive failure
    assert info(acts) == [
        "TCP_CHECK on service [192.168.2.1]:tcp:80 failed after 3 retries.",
        "Removing service [192.168.2.1]:tcp:80 from VS [192.168.2.188]:tcp:80",
        "Lost quorum 1-0=1 > 0 for VS [192.168.2.188]:tcp:80",
    ]
    assert of(acts, DestDown) == [DestDown(VS_KEY, "[192.168.2.1]:tcp:80", "192.168.2.1", 80, None)]
    assert of(acts, QuorumLost) == [QuorumLost(VS_KEY, 1, 0, 1, 0)]
    assert not p.is_alive(ref(1))
    assert p.next_check_time(ref(1), 0) == 23.0  # back to delay_loop
    assert p.desired_dests(VS_KEY) == {}


def test_success_between_retries_resets_the_count() -> None:
    p = policy(vs(rs(1, tcp(retry=2))))
    p.start(0.0)
    r = ref(1)
    p.record_result(r, 0, True, 0.0)
    p.record_result(r, 0, False, 10.0)
    p.record_result(r, 0, False, 11.0)
    p.record_result(r, 0, True, 12.0)
    assert p.next_check_time(r, 0) == 22.0
    p.record_result(r, 0, False, 22.0)
    acts = p.record_result(r, 0, False, 23.0)
    assert not of(acts, DestDown) and p.is_alive(r)
    acts = p.record_result(r, 0, False, 24.0)
    assert of(acts, DestDown) and not p.is_alive(r)


def test_retry_zero_is_down_on_first_failure() -> None:
    p = policy(vs(rs(1, tcp(retry=0))))
    p.start(0.0)
    p.record_result(ref(1), 0, True, 0.0)
    acts = p.record_result(ref(1), 0, False, 10.0, detail=FAILED)
    assert "TCP_CHECK on service [192.168.2.1]:tcp:80 failed." in info(acts)
    assert of(acts, DestDown)
    assert p.next_check_time(ref(1), 0) == 20.0


def test_dead_at_startup_goes_down_on_first_failure_despite_retries() -> None:
    # keepalived starts every checker with its retry counter exhausted.
    p = policy(vs(rs(1, tcp(retry=3)), rs(2)))
    p.start(0.0)
    acts = p.record_result(ref(1), 0, False, 0.0, detail=FAILED)
    assert info(acts) == [
        "TCP_CHECK on service [192.168.2.1]:tcp:80 failed.",
        "Removing service [192.168.2.1]:tcp:80 from VS [192.168.2.188]:tcp:80",
    ]
    assert p.next_check_time(ref(1), 0) == 10.0


def test_down_checker_comes_back_on_first_success_and_keeps_retrying_while_down() -> None:
    p = policy(vs(rs(1, notify_up="/bin/up", notify_down="/bin/down"), rs(2)))
    clock = Clock(p)
    health = {ref(1): False, ref(2): True}
    acts = clock.run_until(0.0, health.__getitem__)
    assert of(acts, RunNotify) == [RunNotify("/bin/down", "rs_down", VS_KEY, "[192.168.2.1]:tcp:80")]
    assert of(acts, RealServerState) == [RealServerState(VS_KEY, "[192.168.2.1]:tcp:80", False)]
    # While down, failing checks still walk through the retries at delay_before_retry pace.
    acts = clock.run_until(35.0, health.__getitem__)
    assert clock.times[CheckerRef(ref(1), 0)] == [0.0, 10.0, 11.0, 12.0, 13.0, 23.0, 24.0, 25.0, 26.0]
    assert not info(acts)  # nothing logged for a checker that is already down

    health[ref(1)] = True
    acts = clock.run_until(36.0, health.__getitem__)
    assert info(acts) == [
        "TCP connection to [192.168.2.1]:tcp:80 success.",
        "Adding service [192.168.2.1]:tcp:80 to VS [192.168.2.188]:tcp:80",
    ]
    assert of(acts, DestUp) == [DestUp(VS_KEY, "[192.168.2.1]:tcp:80", "192.168.2.1", 80, 1)]
    assert of(acts, RunNotify) == [RunNotify("/bin/up", "rs_up", VS_KEY, "[192.168.2.1]:tcp:80")]


def test_log_all_failures_raises_attempt_failures_to_info() -> None:
    p = policy(vs(rs(1, tcp(log_all_failures=True))))
    p.start(0.0)
    p.record_result(ref(1), 0, True, 0.0)
    acts = p.record_result(ref(1), 0, False, 10.0, detail=FAILED)
    assert info(acts) == ["TCP connection to [192.168.2.1]:tcp:80 failed."]


def test_real_server_is_alive_only_when_all_checkers_are_up() -> None:
    p = policy(vs(rs(1, tcp(retry=0), tcp(retry=0)), rs(2)))
    p.start(0.0)
    r = ref(1)
    p.record_result(r, 0, True, 0.0)
    p.record_result(r, 1, True, 0.0)
    acts = p.record_result(r, 0, False, 10.0)
    assert of(acts, DestDown) and not p.is_alive(r)
    acts = p.record_result(r, 1, False, 10.0)
    assert not of(acts, DestDown) and not of(acts, DestUp)
    acts = p.record_result(r, 0, True, 20.0)
    assert not of(acts, DestUp) and not p.is_alive(r)  # checker 1 still down
    acts = p.record_result(r, 1, True, 20.0)
    assert of(acts, DestUp) and p.is_alive(r)


# ---- alpha ----------------------------------------------------------------------------------------


def test_alpha_starts_down_until_first_success() -> None:
    p = policy(vs(rs(1, tcp(alpha=True), notify_down="/bin/down"), rs(2, tcp(alpha=True))))
    acts = p.start(0.0)
    assert not of(acts, DestUp)
    assert not p.is_alive(ref(1)) and not p.checker_up(ref(1), 0)
    assert not p.quorum_up(VS_KEY)
    assert not [m for m in info(acts) if "quorum" in m]  # no sorry server: nothing to announce

    acts = p.record_result(ref(1), 0, False, 0.0, detail=FAILED)
    # First failure under alpha: logged, notify_down runs, IPVS untouched.
    assert info(acts) == ["TCP_CHECK on service [192.168.2.1]:tcp:80 failed."]
    assert of(acts, RunNotify) == [RunNotify("/bin/down", "rs_down", VS_KEY, "[192.168.2.1]:tcp:80")]
    assert not of(acts, DestDown)

    acts = p.record_result(ref(2), 0, True, 0.5, detail=SUCCESS)
    assert info(acts) == [
        "TCP connection to [192.168.2.2]:tcp:80 success.",
        "Adding service [192.168.2.2]:tcp:80 to VS [192.168.2.188]:tcp:80",
        "Gained quorum 1+0=1 <= 1 for VS [192.168.2.188]:tcp:80",
    ]
    assert of(acts, DestUp) == [DestUp(VS_KEY, "[192.168.2.2]:tcp:80", "192.168.2.2", 80, 1)]


# ---- quorum and hysteresis ------------------------------------------------------------------------


def test_quorum_with_hysteresis() -> None:
    servers = [rs(i, tcp(retry=0), weight=1) for i in (1, 2, 3, 4)]
    p = policy(vs(*servers, quorum=3, hysteresis=1, quorum_up="/bin/qup", quorum_down="/bin/qdown"))
    acts = p.start(0.0)
    assert f"Gained quorum 3+1=4 <= 4 for VS {VS_KEY}" in info(acts)
    for i in (1, 2, 3, 4):
        p.record_result(ref(i), 0, True, 0.0)

    acts = p.record_result(ref(1), 0, False, 10.0)
    acts += p.record_result(ref(2), 0, False, 10.0)
    assert p.weight_sum(VS_KEY) == 2
    assert p.quorum_up(VS_KEY) and not of(acts, QuorumLost)  # 2 is not < 3-1

    acts = p.record_result(ref(3), 0, False, 10.0)
    assert f"Lost quorum 3-1=2 > 1 for VS {VS_KEY}" in info(acts)
    assert of(acts, QuorumLost) == [QuorumLost(VS_KEY, 3, 1, 2, 1)]
    assert of(acts, RunNotify) == [RunNotify("/bin/qdown", "quorum_down", VS_KEY)]

    acts = p.record_result(ref(1), 0, True, 20.0)
    acts += p.record_result(ref(2), 0, True, 20.0)
    assert p.weight_sum(VS_KEY) == 3
    assert not p.quorum_up(VS_KEY) and not of(acts, QuorumGained)  # 3 is not >= 3+1

    acts = p.record_result(ref(3), 0, True, 20.0)
    assert f"Gained quorum 3+1=4 <= 4 for VS {VS_KEY}" in info(acts)
    assert of(acts, QuorumGained) == [QuorumGained(VS_KEY, 3, 1, 4, 4)]
    assert of(acts, RunNotify) == [RunNotify("/bin/qup", "quorum_up", VS_KEY)]


def test_quorum_is_clamped_like_keepalived() -> None:
    p = policy(vs(rs(1), rs(2), quorum=5, hysteresis=4))
    assert p.quorum(VS_KEY) == (2, 1)
    acts = p.start(0.0)
    assert f"Warning - quorum 5 for {VS_KEY} exceeds total weight of real servers 2, reducing quorum to 2" in info(acts)
    assert f"Virtual server {VS_KEY}: hysteresis 4 >= quorum 2; setting hysteresis to 1" in info(acts)


# ---- inhibit_on_failure --------------------------------------------------------------------------


def test_inhibit_on_failure_keeps_the_dest_at_weight_zero() -> None:
    p = policy(vs(rs(1, tcp(retry=0), weight=5, inhibit_on_failure=True), rs(2)))
    p.start(0.0)
    p.record_result(ref(1), 0, True, 0.0)
    acts = p.record_result(ref(1), 0, False, 10.0)
    assert "Disabling service [192.168.2.1]:tcp:80 of VS [192.168.2.188]:tcp:80" in info(acts)
    assert of(acts, DestDown) == [DestDown(VS_KEY, "[192.168.2.1]:tcp:80", "192.168.2.1", 80, 0)]
    assert p.desired_dests(VS_KEY)["[192.168.2.1]:tcp:80"] == 0
    acts = p.record_result(ref(1), 0, True, 20.0)
    assert "Enabling service [192.168.2.1]:tcp:80 of VS [192.168.2.188]:tcp:80" in info(acts)
    assert of(acts, DestUp) == [DestUp(VS_KEY, "[192.168.2.1]:tcp:80", "192.168.2.1", 80, 5)]


def test_inhibit_with_alpha_is_added_at_weight_zero_at_start() -> None:
    p = policy(vs(rs(1, tcp(alpha=True), inhibit_on_failure=True), rs(2)))
    acts = p.start(0.0)
    assert DestDown(VS_KEY, "[192.168.2.1]:tcp:80", "192.168.2.1", 80, 0) in acts
    assert p.desired_dests(VS_KEY) == {"[192.168.2.1]:tcp:80": 0, "[192.168.2.2]:tcp:80": 1}


# ---- sorry server ---------------------------------------------------------------------------------


def sorry_vs(**kw: Any) -> VirtualServerParams:
    return vs(rs(1, tcp(retry=0)), rs(2, tcp(retry=0)), sorry_server="192.168.2.200", **kw)


SORRY = "[192.168.2.200]:tcp:80"


def test_sorry_server_stands_in_when_no_real_server_is_alive() -> None:
    p = policy(sorry_vs())
    acts = p.start(0.0)
    assert not of(acts, SorryServerOn) and not of(acts, SorryServerOff)
    p.record_result(ref(1), 0, True, 0.0)
    p.record_result(ref(2), 0, True, 0.0)

    acts = p.record_result(ref(1), 0, False, 10.0)
    assert not of(acts, SorryServerOn)
    acts = p.record_result(ref(2), 0, False, 10.0)
    assert info(acts) == [
        "TCP_CHECK on service [192.168.2.2]:tcp:80 failed.",
        "Removing service [192.168.2.2]:tcp:80 from VS [192.168.2.188]:tcp:80",
        f"Lost quorum 1-0=1 > 0 for VS {VS_KEY}",
        f"Adding sorry server {SORRY} to VS {VS_KEY}",
        f"Removing alive servers from the pool for VS {VS_KEY}",
    ]
    assert of(acts, SorryServerOn) == [SorryServerOn(VS_KEY, SORRY, "192.168.2.200", 80, 1)]
    assert p.sorry_server_active(VS_KEY)
    assert p.desired_dests(VS_KEY) == {SORRY: 1}

    acts = p.record_result(ref(1), 0, True, 20.0)
    assert info(acts) == [
        "TCP_CHECK on service [192.168.2.1]:tcp:80 succeeded.",
        "Adding service [192.168.2.1]:tcp:80 to VS [192.168.2.188]:tcp:80",
        f"Gained quorum 1+0=1 <= 1 for VS {VS_KEY}",
        f"Removing sorry server {SORRY} from VS {VS_KEY}",
        f"Adding alive servers to the pool for VS {VS_KEY}",
    ]
    # the real server reaches IPVS once, after the sorry server has gone
    kinds = [type(a) for a in acts if isinstance(a, DestUp | SorryServerOff)]
    assert kinds == [SorryServerOff, DestUp]
    assert of(acts, SorryServerOff) == [SorryServerOff(VS_KEY, SORRY, "192.168.2.200", 80, None)]
    assert p.desired_dests(VS_KEY) == {"[192.168.2.1]:tcp:80": 1}


def test_sorry_server_inhibit_keeps_it_at_weight_zero() -> None:
    p = policy(sorry_vs(sorry_server_inhibit=True))
    acts = p.start(0.0)
    assert of(acts, SorryServerOff) == [SorryServerOff(VS_KEY, SORRY, "192.168.2.200", 80, 0)]
    p.record_result(ref(1), 0, False, 0.0)
    acts = p.record_result(ref(2), 0, False, 0.0)
    assert f"Enabling sorry server {SORRY} to VS {VS_KEY}" in info(acts)
    assert of(acts, SorryServerOn) == [SorryServerOn(VS_KEY, SORRY, "192.168.2.200", 80, 1)]
    acts = p.record_result(ref(2), 0, True, 10.0)
    assert f"Disabling sorry server {SORRY} from VS {VS_KEY}" in info(acts)
    assert of(acts, SorryServerOff) == [SorryServerOff(VS_KEY, SORRY, "192.168.2.200", 80, 0)]
    assert p.desired_dests(VS_KEY) == {SORRY: 0, "[192.168.2.2]:tcp:80": 1}


def test_sorry_server_at_start_when_all_servers_start_down() -> None:
    p = policy(vs(rs(1, tcp(alpha=True)), sorry_server="192.168.2.200", sorry_server_port=8080))
    acts = p.start(0.0)
    sorry = "[192.168.2.200]:tcp:8080"
    assert f"Starting with quorum down 1-0=1 > 0 for VS {VS_KEY}" in info(acts)
    assert of(acts, SorryServerOn) == [SorryServerOn(VS_KEY, sorry, "192.168.2.200", 8080, 1)]
    assert of(acts, QuorumLost) == [QuorumLost(VS_KEY, 1, 0, 1, 0, init=True)]


# ---- misc_dynamic -------------------------------------------------------------------------------


def misc(**kw: Any) -> CheckParams:
    base: dict[str, Any] = {"delay_loop": 10.0, "retry": 0, "warmup": 0.0, "script": "/bin/chk --x"}
    base.update(kw)
    return CheckParams(kind="MISC_CHECK", **base)


def test_misc_dynamic_weights() -> None:
    p = policy(vs(rs(1, misc(misc_dynamic=True), weight=4), rs(2)))
    p.start(0.0)
    r = ref(1)
    acts = p.record_result(r, 0, True, 0.0, exit_status=0)
    assert info(acts) == [f"Misc check for [[192.168.2.1]:tcp:80 VS {VS_KEY}] by [/bin/chk] succeeded."]
    assert p.effective_weight(r) == 4

    acts = p.record_result(r, 0, True, 10.0, exit_status=12)
    assert info(acts) == [f"Changing weight from 4 to 10 for active service [192.168.2.1]:tcp:80 of VS {VS_KEY}"]
    assert of(acts, DestWeight) == [DestWeight(VS_KEY, "[192.168.2.1]:tcp:80", "192.168.2.1", 80, 10)]
    assert p.weight_sum(VS_KEY) == 11

    acts = p.record_result(r, 0, False, 20.0, exit_status=1)
    assert info(acts) == [
        f"Misc check for [[192.168.2.1]:tcp:80 VS {VS_KEY}] by [/bin/chk] failed (exited with status 1).",
        f"Removing service [192.168.2.1]:tcp:80 from VS {VS_KEY}",
    ]
    acts = p.record_result(r, 0, True, 30.0, exit_status=2)  # up, weight 0
    assert info(acts) == [
        f"Changing weight from 10 to 0 for inactive service [192.168.2.1]:tcp:80 of VS {VS_KEY}",
        f"Misc check for [[192.168.2.1]:tcp:80 VS {VS_KEY}] by [/bin/chk] succeeded.",
        f"Adding service [192.168.2.1]:tcp:80 to VS {VS_KEY}",
    ]
    assert of(acts, DestUp) == [DestUp(VS_KEY, "[192.168.2.1]:tcp:80", "192.168.2.1", 80, 0)]
    assert p.weight_sum(VS_KEY) == 1

    acts = p.record_result(r, 0, True, 40.0, exit_status=0)  # back to the configured weight
    assert of(acts, DestWeight) == [DestWeight(VS_KEY, "[192.168.2.1]:tcp:80", "192.168.2.1", 80, 4)]


def test_misc_without_dynamic_treats_other_exits_as_failure() -> None:
    p = policy(vs(rs(1, misc(retry=1)), rs(2)))
    p.start(0.0)
    r = ref(1)
    p.record_result(r, 0, True, 0.0, exit_status=0, started=0.0)
    acts = p.record_result(r, 0, False, 10.5, exit_status=7, started=10.0)
    assert not info(acts)  # first failure: a retry
    assert p.next_check_time(r, 0) == 10.0 + 1.0  # misc counts from the start of the script
    acts = p.record_result(r, 0, False, 11.2, timed_out=True, started=11.0)
    assert (
        info(acts)[0] == f"Misc check for [[192.168.2.1]:tcp:80 VS {VS_KEY}] by [/bin/chk] timed out after 1 retries."
    )
    assert of(acts, DestDown)


# ---- shutdown -----------------------------------------------------------------------------------


def test_shutdown_with_omega_runs_down_notifies() -> None:
    p = policy(vs(rs(1, notify_down="/bin/down"), rs(2), omega=True, quorum_down="/bin/qdown"))
    p.start(0.0)
    acts = p.shutdown(1.0)
    assert of(acts, DestDown) == [
        DestDown(VS_KEY, "[192.168.2.1]:tcp:80", "192.168.2.1", 80, None),
        DestDown(VS_KEY, "[192.168.2.2]:tcp:80", "192.168.2.2", 80, None),
    ]
    assert "Shutting down service [192.168.2.1]:tcp:80 from VS [192.168.2.188]:tcp:80" in info(acts)
    assert of(acts, RunNotify) == [
        RunNotify("/bin/down", "rs_down", VS_KEY, "[192.168.2.1]:tcp:80"),
        RunNotify("/bin/qdown", "quorum_down", VS_KEY),
    ]
    without = policy(vs(rs(1, notify_down="/bin/down"), quorum_down="/bin/qdown"))
    without.start(0.0)
    assert not of(without.shutdown(1.0), RunNotify)


def test_unknown_refs_and_unstarted_policy() -> None:
    p = policy(vs(rs(1)))
    with pytest.raises(RuntimeError):
        p.record_result(ref(1), 0, True, 0.0)
    p.start(0.0)
    with pytest.raises(KeyError):
        p.record_result(ref(9), 0, True, 0.0)
    with pytest.raises(KeyError):
        p.record_result(ref(1), 3, True, 0.0)


# ---- reload: state carried over -----------------------------------------------------------------


def test_reload_keeps_the_state_and_schedule_of_unchanged_real_servers() -> None:
    old = policy(vs(rs(1, tcp(retry=0)), rs(2)))
    old.start(0.0)
    old.record_result(ref(1), 0, False, 0.0, detail=FAILED)  # .1 is down and out of the table
    assert old.desired_dests(VS_KEY) == {"[192.168.2.2]:tcp:80": 1}

    # The new config changes .2's weight and adds .3; .1 is unchanged.
    new = policy(vs(rs(1, tcp(retry=0)), rs(2, weight=5), rs(3)))
    assert new.adopt(old) == ["[192.168.2.1]:tcp:80"]
    acts = new.start(12.0)
    assert not new.is_alive(ref(1)), "an adopted dead server stays dead: no re-add, no flap"
    assert new.next_check_time(ref(1), 0) == old.next_check_time(ref(1), 0) == 10.0
    assert "Activating healthchecker for service [192.168.2.1]:tcp:80 for VS [192.168.2.188]:tcp:80" \
        not in info(acts)
    assert new.desired_dests(VS_KEY) == {"[192.168.2.2]:tcp:80": 5, "[192.168.2.3]:tcp:80": 1}


def test_adopt_after_start_is_refused() -> None:
    p = policy(vs(rs(1)))
    p.start(0.0)
    with pytest.raises(RuntimeError):
        p.adopt(policy(vs(rs(1))))
