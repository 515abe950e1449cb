"""Election explained: each rule from the facts, then from a real machine driven on a virtual clock."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address
from typing import Any

import pytest

from lvsconsole.vrrp.explain import (
    Contribution,
    ElectionInputs,
    PeerStatus,
    explain,
    inputs_from,
    priority_text,
)
from lvsconsole.vrrp.machine import Params, State, VrrpMachine
from lvsconsole.vrrp.packet import Advert, AuthType
from lvsconsole.vrrp.params import TrackSpec
from lvsconsole.vrrp.tracking import InstanceTracking

VIP = IPv4Address("10.0.0.100")
OWN = IPv4Address("10.0.0.2")
HIGH_PEER = IPv4Address("10.0.0.3")
LOW_PEER = IPv4Address("10.0.0.1")


def facts(**overrides: Any) -> ElectionInputs:
    values: dict[str, Any] = {
        "name": "VI_1", "state": State.BACKUP, "configured_priority": 100, "base_priority": 100,
        "effective_priority": 100, "source": OWN, "peer_address": HIGH_PEER, "peer_priority": 150,
        "peer_age": 0.4, "down_timer_in": 2.7,
    }
    values.update(overrides)
    return ElectionInputs(**values)


# ---------------------------------------------------------------------------------------------- the rules


def test_higher_priority_peer_wins_and_we_stay_backup() -> None:
    e = explain(facts())
    assert (e.winner, e.rule, e.master, e.master_is_us) == ("peer", "priority", "10.0.0.3", False)
    assert "its priority 150 is higher than our 100" in e.why
    assert "we stay BACKUP while 10.0.0.3 advertises" in e.next and "in 2.7 s" in e.next
    assert e.text().splitlines()[0] == "(VI_1) BACKUP, master: 10.0.0.3 (priority 150, last advert 0.4 s ago)"


def test_higher_priority_backup_preempts_when_the_down_timer_expires() -> None:
    e = explain(facts(peer_priority=90))
    assert (e.winner, e.rule) == ("us", "priority")
    assert "our priority 100 is higher than 10.0.0.3's 90" in e.why
    assert e.next.startswith("we preempt") and "in 2.7 s" in e.next


def test_nopreempt_keeps_a_higher_priority_backup_backup() -> None:
    e = explain(facts(peer_priority=90, preempt=False))
    assert e.winner == "us"
    assert "nopreempt" in e.next and "does not take over from a running master" in e.next


def test_preempt_delay_pending_says_for_how_long() -> None:
    e = explain(facts(peer_priority=90, preempt_delay=30.0, preempt_remaining=12.34))
    assert e.winner == "us"
    assert "preempt_delay 30 s is running" in e.next and "12.3 s more" in e.next


def test_operator_failover_hold_does_not_preempt() -> None:
    e = explain(facts(peer_priority=90, holding=True))
    assert "released by the operator" in e.next


def test_equal_priority_goes_to_the_higher_address() -> None:
    lost = explain(facts(peer_priority=100))
    assert (lost.winner, lost.rule) == ("peer", "address")
    assert "higher primary address wins (10.0.0.3 > 10.0.0.2)" in lost.why
    won = explain(facts(peer_priority=100, peer_address=LOW_PEER))
    assert (won.winner, won.rule) == ("us", "address")
    assert "(10.0.0.2 > 10.0.0.1)" in won.why
    # winning the tie does not preempt a running master
    assert "an equal priority never preempts a running master" in won.next


def test_equal_priority_without_our_address_has_no_tie_break() -> None:
    e = explain(facts(peer_priority=100, source=None))
    assert e.winner == "peer" and "no tie break" in e.why


def test_the_address_owner_always_wins() -> None:
    theirs = explain(facts(peer_priority=255, effective_priority=254, base_priority=254, configured_priority=254))
    assert (theirs.winner, theirs.rule) == ("peer", "owner") and "address owner" in theirs.why
    ours = explain(facts(state=State.MASTER, configured_priority=255, base_priority=255, effective_priority=255,
                         peer_priority=254, peer_address=HIGH_PEER))
    assert (ours.winner, ours.rule, ours.master_is_us) == ("us", "owner", True)
    assert ours.priority_text.startswith("255: the address owner")


def test_fault_takes_no_part() -> None:
    e = explain(facts(state=State.FAULT, faults=("interface eth0 down",), peer_address=None, peer_priority=None))
    assert (e.winner, e.rule, e.master) == ("none", "fault", None)
    assert "FAULT (interface eth0 down)" in e.why and "clears" in e.next


def test_master_alone_and_backup_without_any_advert() -> None:
    master = explain(facts(state=State.MASTER, peer_address=None, peer_priority=None, down_timer_in=None))
    assert (master.winner, master.rule, master.master, master.master_is_us) == ("us", "alone", "10.0.0.2", True)
    assert master.text().splitlines()[0] == "(VI_1) MASTER, master: us"
    backup = explain(facts(peer_address=None, peer_priority=None))
    assert backup.winner == "us" and "no master heard" in backup.next and "in 2.7 s" in backup.next


def test_sync_group_member_waits_for_its_group() -> None:
    e = explain(facts(peer_priority=90, sync_group="VG_1"))
    assert "sync group VG_1" in e.next


def test_priority_is_explained_tracker_by_tracker() -> None:
    inp = facts(effective_priority=75, base_priority=110, contributions=(
        Contribution("script", "chk_nginx", -20, False, -20),
        Contribution("interface", "eth1", -15, False, -15),
        Contribution("interface", "eth0", 0, False, 0),  # implicit weight-0 tracker that is up: not shown
    ))
    text = priority_text(inp)
    assert text == ("75 = base 110 (runtime; configured 100) -20 script chk_nginx (weight -20) "
                    "-15 interface eth1 (weight -15)")
    clamped = priority_text(replace(inp, base_priority=10, effective_priority=1))
    assert clamped.endswith("(the sum -25 is clamped to 1-254)")
    fault = priority_text(facts(contributions=(Contribution("file", "maint", 0, False, None),)))
    assert "track file maint (weight 0): FAULT" in fault


def test_unicast_peers_are_listed_with_reachability() -> None:
    peers = (PeerStatus("10.0.0.3", 0.4), PeerStatus("10.0.0.9", None, "No route to host (EHOSTUNREACH)"))
    e = explain(facts(peers=peers))
    text = e.text()
    assert "10.0.0.3 heard 0.4 s ago" in text
    assert "10.0.0.9 SEND FAILS (No route to host (EHOSTUNREACH)), never heard" in text
    assert e.as_json()["peers"][1] == {"address": "10.0.0.9", "last_seen": None,
                                       "last_error": "No route to host (EHOSTUNREACH)"}


# ---------------------------------------------------------------------------------------------- from a machine


def machine(**overrides: Any) -> VrrpMachine:
    values: dict[str, Any] = {"name": "VI_1", "vrid": 51, "priority": 100, "addresses": (VIP,), "source": OWN}
    values.update(overrides)
    return VrrpMachine(Params(**values), 0.0)


def advert(priority: int) -> Advert:
    return Advert(2, 51, priority, (VIP,), 100, AuthType.NONE, b"")


def test_inputs_from_a_backup_following_a_higher_master() -> None:
    m = machine()
    m.start(0.0)
    m.receive_advert(advert(150), HIGH_PEER, 1.0)
    e = explain(inputs_from(m, 1.5))
    assert e.master == "10.0.0.3" and e.peer_priority == 150 and e.peer_age == pytest.approx(0.5)
    assert e.winner == "peer"
    assert "in 3.1 s" in e.next  # down timer: 1.0 + 3 + 156/256 - 1.5


def test_inputs_from_a_preempting_backup_use_the_priority_heard_on_the_wire() -> None:
    m = machine(preempt_delay=10.0)
    m.start(0.0)
    m.receive_advert(advert(90), LOW_PEER, 1.0)  # honoured: the preempt delay starts
    e = explain(inputs_from(m, 4.0, heard={LOW_PEER: (1.0, 90)}))
    assert e.winner == "us" and e.peer_priority == 90
    assert "preempt_delay 10 s is running" in e.next and "7.0 s more" in e.next


def test_inputs_from_a_master_that_heard_a_lower_claim() -> None:
    m = machine(priority=200, initial_state=State.BACKUP)
    m.start(0.0)
    m.handle_timer(10.0)  # no master: takes over
    assert m.state is State.MASTER
    e = explain(inputs_from(m, 10.5, heard={LOW_PEER: (10.2, 90), OWN: (10.4, 200)}))
    assert e.master_is_us and e.peer == "10.0.0.1" and e.peer_priority == 90
    assert e.winner == "us" and "our adverts make it step down" in e.next
    stale = explain(inputs_from(m, 30.0, heard={LOW_PEER: (10.2, 90)}))
    assert stale.rule == "alone"


def test_inputs_from_tracking_contributions() -> None:
    tracking = InstanceTracking(100, [TrackSpec("script", "chk", -30), TrackSpec("interface", "eth0")])
    tracking.set_up_down("script", "chk", False)
    tracking.set_up_down("interface", "eth0", True)
    m = machine()
    m.start(0.0)
    m.set_priority(tracking.total_priority, 0.0)
    e = explain(inputs_from(m, 0.1, contributions=tracking.contributions()))
    assert e.priority == 70
    assert e.priority_text == "70 = base 100 -30 script chk (weight -30)"
    assert [c.name for c in e.contributions] == ["chk", "eth0"]


def test_inputs_from_a_machine_in_fault() -> None:
    m = machine()
    m.set_fault("interface eth0 down", 0.0)
    m.start(0.0)
    e = explain(inputs_from(m, 1.0))
    assert e.state == "FAULT" and e.rule == "fault"
