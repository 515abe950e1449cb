"""The VRRP state machine on a virtual clock: no sockets, no sleeps, no real time."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

import pytest

from lvsconsole.vrrp.machine import (
    Action,
    AddAddresses,
    MasterRxLowerPri,
    Params,
    PriorityChanged,
    RemoveAddresses,
    SendAdvert,
    SendGratuitous,
    State,
    StateChanged,
    VrrpMachine,
)
from lvsconsole.vrrp.packet import (
    MCAST_GROUP4,
    MCAST_GROUP6,
    Advert,
    Auth,
    AuthType,
    encode,
    encode_ipv4_datagram,
)

VIP = IPv4Address("10.0.0.100")
OWN = IPv4Address("10.0.0.2")
PEER = IPv4Address("10.0.0.3")  # higher than OWN
LOW_PEER = IPv4Address("10.0.0.1")  # lower than OWN


def make(now: float = 0.0, **overrides: Any) -> VrrpMachine:
    values: dict[str, Any] = {
        "name": "VI_1", "vrid": 51, "priority": 100, "addresses": (VIP,), "source": OWN, "version": 2,
    }
    values.update(overrides)
    return VrrpMachine(Params(**values), now)


def advert(priority: int, *, version: int = 2, interval_cs: int = 100, addresses: tuple[Any, ...] = (VIP,),
           vrid: int = 51, auth: Auth | None = None) -> Advert:
    auth = auth or Auth()
    return Advert(version, vrid, priority, addresses, interval_cs,
                  auth.type if version == 2 else AuthType.NONE,
                  auth.data if version == 2 and addresses and addresses[0].version == 4 else b"")


def adverts(actions: list[Action]) -> list[Advert]:
    return [a.advert for a in actions if isinstance(a, SendAdvert)]


def changes(actions: list[Action]) -> list[tuple[State, State]]:
    return [(a.old, a.new) for a in actions if isinstance(a, StateChanged)]


def run_until(machine: VrrpMachine, until: float) -> list[tuple[float, Action]]:
    """Fire every timer due up to ``until`` at exactly its deadline, as a perfect adapter would."""
    fired: list[tuple[float, Action]] = []
    while (deadline := machine.next_timer()) is not None and deadline <= until:
        fired += [(deadline, action) for action in machine.handle_timer(deadline)]
    return fired


def become_master(machine: VrrpMachine, now: float = 0.0) -> float:
    """Start a non-owner and let its down timer expire; returns the time it became MASTER."""
    machine.start(now)
    deadline = machine.next_timer()
    assert deadline is not None
    assert changes(machine.handle_timer(deadline)) == [(State.BACKUP, State.MASTER)]
    return deadline


# --------------------------------------------------------------------------------------------------
# Timers


def test_backup_takes_over_exactly_master_down_interval_after_last_advert() -> None:
    m = make(priority=70)
    assert changes(m.start(0.0)) == [(State.INIT, State.BACKUP)]
    assert m.skew_time == 186 / 256
    assert m.master_down_interval == 3.7265625
    assert m.next_timer() == 3.7265625
    for t in (1.0, 2.0, 3.0):
        assert m.receive_advert(advert(100), PEER, t) == []
    assert m.next_timer() == 3.0 + 3.7265625
    assert m.handle_timer(6.7265624) == []
    assert m.state is State.BACKUP
    actions = m.handle_timer(6.7265625)
    assert [type(a) for a in actions] == [SendAdvert, AddAddresses, SendGratuitous, StateChanged]
    assert adverts(actions)[0].priority == 70
    assert actions[1] == AddAddresses((VIP,))
    assert actions[2] == SendGratuitous((VIP,), 5, "master")
    assert changes(actions) == [(State.BACKUP, State.MASTER)]
    assert m.counters.become_master == 1 and m.counters.advert_rcvd == 3
    assert m.next_timer() == 6.7265625 + 1.0  # next advert (the GARP burst is 5 s away)


def test_fast_takeover_skew_time_after_priority_zero() -> None:
    m = make(priority=70)
    m.start(0.0)
    m.receive_advert(advert(100), PEER, 1.0)
    assert m.receive_advert(advert(0), PEER, 1.5) == []
    assert m.counters.pri_zero_rcvd == 1
    assert m.next_timer() == 1.5 + 0.7265625
    actions = m.handle_timer(1.5 + 0.7265625)
    assert changes(actions) == [(State.BACKUP, State.MASTER)]
    assert "priority 0" in next(a.reason for a in actions if isinstance(a, StateChanged))


def test_master_sends_adverts_every_interval_and_second_garp_burst() -> None:
    m = make()
    t0 = become_master(m)
    fired = run_until(m, t0 + 5.5)
    times = [t for t, a in fired if isinstance(a, SendAdvert)]
    assert times == [t0 + k for k in range(1, 6)]
    garps = [(t, a) for t, a in fired if isinstance(a, SendGratuitous)]
    assert garps == [(t0 + 5.0, SendGratuitous((VIP,), 5, "master_delay"))]
    assert m.counters.advert_sent == 6


def test_garp_refresh_on_the_first_advert_after_refresh_time() -> None:
    m = make(garp_master_delay=0, garp_master_refresh=3.0, garp_master_refresh_repeat=2)
    t0 = become_master(m)
    fired = run_until(m, t0 + 8.0)
    refresh = [t for t, a in fired if isinstance(a, SendGratuitous)]
    # keepalived checks "now > refresh time" on advert ticks: not at t0+3, at t0+4; then again at t0+8
    assert refresh == [t0 + 4.0, t0 + 8.0]


def test_v3_sub_second_interval_and_learnt_master_interval() -> None:
    fast = make(version=3, advert_int=0.1, priority=100)
    fast.start(0.0)
    assert fast.master_down_interval == pytest.approx(0.3 + 156 * 0.1 / 256)

    slow = make(version=3, advert_int=1.0, priority=100)
    slow.start(0.0)
    assert slow.master_down_interval == pytest.approx(3 + 156 / 256)
    slow.receive_advert(advert(200, version=3, interval_cs=10), PEER, 0.5)
    assert slow.master_adver_int == pytest.approx(0.1)
    assert slow.skew_time == pytest.approx(156 * 0.1 / 256)
    assert slow.next_timer() == pytest.approx(0.5 + 0.3 + 156 * 0.1 / 256)
    deadline = slow.next_timer()
    assert deadline is not None
    actions = slow.handle_timer(deadline)
    assert changes(actions) == [(State.BACKUP, State.MASTER)]
    assert adverts(actions)[0].interval_cs == 100  # a master advertises its own interval
    assert slow.master_adver_int == 1.0
    assert slow.next_timer() == pytest.approx(deadline + 1.0)


def test_v2_interval_mismatch_is_dropped() -> None:
    m = make()
    m.start(0.0)
    before = m.next_timer()
    assert m.receive_advert(advert(200, interval_cs=200), PEER, 1.0) == []
    assert m.next_timer() == before
    assert m.counters.advert_int_err == 1 and m.counters.advert_rcvd == 0


# --------------------------------------------------------------------------------------------------
# Preemption


def test_preempt_discards_lower_priority_master_and_takes_over() -> None:
    m = make(priority=150)
    m.start(0.0)
    mdi = 3 + 106 / 256
    for t in (1.0, 2.0, 3.0):
        m.receive_advert(advert(100), PEER, t)
        assert m.next_timer() == mdi  # the down timer runs on from start
    assert m.master_address == PEER
    assert changes(m.handle_timer(mdi)) == [(State.BACKUP, State.MASTER)]


def test_nopreempt_honours_lower_priority_master() -> None:
    m = make(priority=150, preempt=False)
    m.start(0.0)
    for t in range(1, 20):
        m.receive_advert(advert(100), PEER, float(t))
        assert m.handle_timer(float(t)) == []
    assert m.state is State.BACKUP
    assert m.next_timer() == 19.0 + 3 + 106 / 256


def test_preempt_delay() -> None:
    m = make(priority=150, preempt_delay=10.0)
    m.start(0.0)
    mdi = 3 + 106 / 256
    m.receive_advert(advert(100), PEER, 1.0)
    assert m.preempt_deadline == 11.0
    for t in range(2, 11):  # honoured while the delay runs
        m.receive_advert(advert(100), PEER, float(t))
        assert m.handle_timer(float(t)) == []
    assert m.next_timer() == 10.0 + mdi
    m.receive_advert(advert(100), PEER, 11.0)  # delay over: discarded, the timer keeps running
    assert m.next_timer() == 10.0 + mdi
    fired = run_until(m, 20.0)
    assert [(t, (a.old, a.new)) for t, a in fired if isinstance(a, StateChanged)] == [
        (10.0 + mdi, (State.BACKUP, State.MASTER))
    ]


def test_preempt_delay_stops_on_higher_priority_advert() -> None:
    m = make(priority=150, preempt_delay=10.0)
    m.start(0.0)
    m.receive_advert(advert(100), PEER, 1.0)
    assert m.preempt_deadline == 11.0
    m.receive_advert(advert(200), PEER, 2.0)
    assert m.preempt_deadline is None


def test_backup_accepts_equal_priority() -> None:
    m = make()
    m.start(0.0)
    m.receive_advert(advert(100), LOW_PEER, 2.0)
    assert m.next_timer() == 2.0 + 3 + 156 / 256
    assert m.master_priority == 100


# --------------------------------------------------------------------------------------------------
# MASTER receiving


def test_master_goes_backup_on_higher_priority_without_priority_zero() -> None:
    m = make()
    become_master(m)
    actions = m.receive_advert(advert(200), PEER, 10.0)
    assert changes(actions) == [(State.MASTER, State.BACKUP)]
    assert RemoveAddresses((VIP,)) in actions
    # one advert with our own priority, so that a split brain's winner hears us (test_split_brain.py)
    assert [a.priority for a in adverts(actions)] == [100]
    assert m.counters.release_master == 1 and m.counters.pri_zero_sent == 0
    assert m.next_timer() == 10.0 + 3 + 156 / 256


def test_tie_break_by_primary_address() -> None:
    higher = make()
    become_master(higher)
    assert changes(higher.receive_advert(advert(100), PEER, 10.0)) == [(State.MASTER, State.BACKUP)]

    lower = make()
    become_master(lower)
    actions = lower.receive_advert(advert(100), LOW_PEER, 10.0)
    assert lower.state is State.MASTER
    assert [a.priority for a in adverts(actions)] == [100]  # forcing a new election
    assert MasterRxLowerPri(LOW_PEER, 100) in actions


def test_master_answers_lower_priority_and_priority_zero_at_once() -> None:
    m = make(garp_lower_prio_repeat=2, garp_lower_prio_delay=3.0, garp_master_delay=0)
    become_master(m)
    run_until(m, 10.1)
    m.receive_advert(advert(50), LOW_PEER, 10.1)  # opens a split-brain episode (test_split_brain.py)
    run_until(m, 10.2)
    actions = m.receive_advert(advert(50), LOW_PEER, 10.2)
    assert [a.priority for a in adverts(actions)] == [100]
    assert SendGratuitous((VIP,), 2, "lower_prio") in actions
    assert m.next_timer() == 11.2  # the advert timer restarts from the advert just sent
    later = run_until(m, 13.5)
    assert (13.2, SendGratuitous((VIP,), 2, "lower_prio_delay")) in later

    actions = m.receive_advert(advert(0), LOW_PEER, 20.0)
    assert [a.priority for a in adverts(actions)] == [100]
    assert m.state is State.MASTER and m.counters.pri_zero_rcvd == 1


def test_lower_prio_no_advert() -> None:
    m = make(lower_prio_no_advert=True)
    become_master(m)
    m.receive_advert(advert(50), LOW_PEER, 10.0)  # a split brain is answered all the same (test_split_brain.py)
    actions = m.receive_advert(advert(50), LOW_PEER, 10.5)
    assert adverts(actions) == [] and m.state is State.MASTER


def test_two_address_owners() -> None:
    m = make(priority=255)
    m.start(0.0)
    actions = m.receive_advert(advert(255), PEER, 1.0)
    assert PriorityChanged(255, 254) in actions
    assert changes(actions) == [(State.MASTER, State.BACKUP)]
    assert m.priority == 254 and m.base_priority == 254


# --------------------------------------------------------------------------------------------------
# Start, fault, shutdown


def test_owner_starts_master_at_once() -> None:
    m = make(priority=255)
    actions = m.start(0.0)
    assert changes(actions) == [(State.INIT, State.MASTER)]
    assert [a.priority for a in adverts(actions)] == [255]
    assert AddAddresses((VIP,)) in actions
    assert m.counters.become_master == 1
    assert m.next_timer() == 1.0


def test_non_owner_state_master_still_waits() -> None:
    m = make(initial_state=State.MASTER)
    assert changes(m.start(0.0)) == [(State.INIT, State.BACKUP)]
    assert m.next_timer() == 3 + 156 / 256


def test_owner_with_state_backup_waits() -> None:
    m = make(priority=255, initial_state=State.BACKUP)
    assert changes(m.start(0.0)) == [(State.INIT, State.BACKUP)]
    assert m.next_timer() == 3 + 1 / 256


def test_fault_and_recovery_from_backup() -> None:
    m = make()
    m.start(0.0)
    assert changes(m.set_fault("eth0 down", 1.0)) == [(State.BACKUP, State.FAULT)]
    assert m.next_timer() is None
    assert m.receive_advert(advert(200), PEER, 2.0) == []
    assert m.counters.advert_rcvd == 0
    assert m.set_fault("chk_script", 2.5) == []
    assert m.clear_fault(3.0, "eth0 down") == []
    assert m.state is State.FAULT
    assert changes(m.clear_fault(4.0, "chk_script")) == [(State.FAULT, State.BACKUP)]
    assert m.next_timer() == 4.0 + 3 + 156 / 256


def test_fault_from_master_sends_priority_zero() -> None:
    m = make()
    become_master(m)
    actions = m.set_fault("eth0 down", 10.0)
    assert [a.priority for a in adverts(actions)] == [0]
    assert RemoveAddresses((VIP,)) in actions
    assert changes(actions) == [(State.MASTER, State.FAULT)]
    assert m.counters.pri_zero_sent == 1 and m.counters.release_master == 1
    assert m.next_timer() is None
    assert changes(m.clear_fault(12.0)) == [(State.FAULT, State.BACKUP)]


def test_fault_before_start() -> None:
    m = make()
    m.set_fault("eth0 down", 0.0)
    assert changes(m.start(0.0)) == [(State.INIT, State.FAULT)]
    with pytest.raises(RuntimeError):
        m.start(1.0)


def test_shutdown_sends_priority_zero_when_master() -> None:
    m = make()
    become_master(m)
    actions = m.shutdown(20.0)
    assert [a.priority for a in adverts(actions)] == [0]
    assert RemoveAddresses((VIP,)) in actions
    assert changes(actions) == [(State.MASTER, State.INIT)]
    assert m.counters.pri_zero_sent == 1
    assert m.next_timer() is None

    backup = make()
    backup.start(0.0)
    actions = backup.shutdown(1.0)
    assert adverts(actions) == [] and changes(actions) == [(State.BACKUP, State.INIT)]


# --------------------------------------------------------------------------------------------------
# Tracking


def test_priority_change_moves_backup_down_timer() -> None:
    m = make(priority=100)
    m.start(0.0)
    m.receive_advert(advert(200), PEER, 1.0)
    assert m.next_timer() == 1.0 + 3 + 156 / 256
    assert m.set_priority(150, 1.5) == [PriorityChanged(100, 150)]
    assert m.next_timer() == 1.0 + 3 + 106 / 256
    assert m.set_priority(300, 2.0) == [PriorityChanged(150, 254)]
    m.set_priority(90, 2.5)  # decreasing: the running timer stays
    assert m.next_timer() == 1.0 + 3 + 2 / 256
    assert m.set_priority(-5, 3.0) == [PriorityChanged(90, 1)]
    assert m.priority == 1


def test_owner_priority_is_not_tracked() -> None:
    m = make(priority=255)
    assert m.set_priority(100, 0.0) == []
    assert m.priority == 255


def test_lowered_master_is_preempted_by_backup() -> None:
    master, backup = make(priority=150), make(priority=120, source=PEER)
    become_master(master)
    backup.start(0.0)
    master.set_priority(100, 10.0)
    # the backup now discards the master's lower-priority adverts and times out
    for t in (11.0, 12.0, 13.0):
        backup.receive_advert(advert(master.priority), OWN, t)
    deadline = backup.next_timer()
    assert deadline is not None and deadline < 14.0
    takeover = backup.handle_timer(deadline)
    assert changes(takeover) == [(State.BACKUP, State.MASTER)]
    assert changes(master.receive_advert(adverts(takeover)[0], PEER, deadline)) == [(State.MASTER, State.BACKUP)]


# --------------------------------------------------------------------------------------------------
# Validation done by the machine, and the byte-level entry points


def test_vip_list_mismatch_counted_and_ignored() -> None:
    m = make()
    m.start(0.0)
    before = m.next_timer()
    other = IPv4Address("10.0.0.200")
    assert m.receive_advert(advert(200, addresses=(other,)), PEER, 1.0) == []
    assert m.receive_advert(advert(200, addresses=(VIP, other)), PEER, 1.5) == []
    assert m.counters.addr_list_err == 2
    assert m.counters.advert_rcvd == 1  # keepalived counts the advert before the per-address check
    assert m.next_timer() == before


def test_skip_check_adv_addr_for_the_known_master() -> None:
    m = make(skip_check_adv_addr=True)
    m.start(0.0)
    other = IPv4Address("10.0.0.200")
    m.receive_advert(advert(200, addresses=(other,)), PEER, 1.0)
    assert m.counters.addr_list_err == 1
    m.receive_advert(advert(200), PEER, 2.0)
    m.receive_advert(advert(200, addresses=(other,)), PEER, 3.0)
    assert m.counters.addr_list_err == 1
    assert m.next_timer() == 3.0 + 3 + 156 / 256


def test_auth_checked_for_pre_decoded_adverts() -> None:
    m = make(auth=Auth.pass_("secret12"))
    m.start(0.0)
    m.receive_advert(advert(200), PEER, 1.0)
    m.receive_advert(advert(200, auth=Auth.pass_("wrong")), PEER, 1.0)
    m.receive_advert(advert(200, version=3), PEER, 1.0)
    assert (m.counters.authtype_mismatch, m.counters.auth_failure, m.counters.vers_err) == (1, 1, 1)
    m.receive_advert(advert(200, auth=Auth.pass_("secret12")), PEER, 1.0)
    assert m.counters.advert_rcvd == 1
    sent = adverts(m.handle_timer(100.0))[0]
    assert sent.auth_type == AuthType.PASS and sent.auth_data == b"secret12"


def test_receive_ipv4_datagram_and_ttl() -> None:
    m = make(priority=70)
    m.start(0.0)
    good = encode_ipv4_datagram(advert(100), PEER, MCAST_GROUP4)
    m.receive_ipv4_datagram(good, 1.0)
    assert m.next_timer() == 1.0 + 3.7265625
    m.receive_ipv4_datagram(encode_ipv4_datagram(advert(100), PEER, MCAST_GROUP4, ttl=1), 2.0)
    assert m.counters.ip_ttl_err == 1
    m.receive_ipv4_datagram(encode_ipv4_datagram(advert(100, vrid=52), PEER, MCAST_GROUP4), 2.0)
    assert m.counters.advert_rcvd == 1  # another VRID: not ours, not counted
    unicast = make(priority=70, unicast=True)
    unicast.start(0.0)
    unicast.receive_ipv4_datagram(encode_ipv4_datagram(advert(100), PEER, OWN, ttl=64), 1.0)
    assert unicast.counters.advert_rcvd == 1


def test_receive_packet_ipv6_v3() -> None:
    vip6, own6, peer6 = IPv6Address("fe80::100"), IPv6Address("fe80::2"), IPv6Address("fe80::3")
    m = make(family=6, version=3, addresses=(vip6,), source=own6, advert_int=0.5)
    m.start(0.0)
    wire = encode(advert(200, version=3, interval_cs=50, addresses=(vip6,)), peer6, MCAST_GROUP6)
    m.receive_packet(wire, peer6, MCAST_GROUP6, 255, 1.0)
    assert m.counters.advert_rcvd == 1
    assert m.next_timer() == pytest.approx(1.0 + 1.5 + 156 * 0.5 / 256)
    m.receive_packet(wire[:-1], peer6, MCAST_GROUP6, 255, 1.0)
    m.receive_packet(wire, peer6, IPv6Address("ff02::13"), 255, 1.0)
    assert m.counters.packet_len_err == 1 and m.counters.chk_err == 1


def test_params_validation() -> None:
    base = Params(name="VI_1", vrid=1, priority=100)
    for bad in (
        {"vrid": 0}, {"priority": 0}, {"priority": 256}, {"version": 4}, {"advert_int": 1.5},
        {"version": 3, "advert_int": 0.005}, {"version": 3, "advert_int": 41.0},
        {"addresses": (ip_address("fe80::1"),)}, {"preempt_delay": 1001},
        {"auth": Auth(AuthType.AH, b"key")}, {"version": 3, "auth": Auth.pass_("x")},
        {"initial_state": State.FAULT},
    ):
        with pytest.raises(ValueError):
            replace(base, **bad)
    assert replace(base, version=3, advert_int=0.05).interval_cs == 5
    assert Params(name="x", vrid=1, priority=255).wants_master
