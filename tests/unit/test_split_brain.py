"""Split brain seen and healed, on a virtual clock: the machine's episodes and the watch behind them."""

from __future__ import annotations

import dataclasses
import json
from ipaddress import IPv4Address
from typing import Any

import pytest

from lvsconsole.engine import events as engine_events
from lvsconsole.engine import showtext
from lvsconsole.engine.director_api import VrrpInstanceView
from lvsconsole.vrrp.events import SplitBrainEnded, SplitBrainStarted
from lvsconsole.vrrp.machine import (
    Action,
    MasterRxLowerPri,
    Params,
    SendAdvert,
    SendGratuitous,
    SplitBrainDetected,
    SplitBrainResolved,
    State,
    StateChanged,
    VrrpMachine,
)
from lvsconsole.vrrp.packet import Advert, AuthType
from lvsconsole.vrrp.splitbrain import SplitBrainWatch

VIP = IPv4Address("10.0.0.100")
OWN = IPv4Address("10.0.0.2")
PEER = IPv4Address("10.0.0.3")  # higher than OWN
LOW_PEER = IPv4Address("10.0.0.1")  # lower than OWN
OTHER_LOW = IPv4Address("10.0.0.0")


def make(**overrides: Any) -> VrrpMachine:
    values: dict[str, Any] = {
        "name": "VI_1", "vrid": 51, "priority": 100, "addresses": (VIP,), "source": OWN, "garp_master_delay": 0,
    }
    values.update(overrides)
    return VrrpMachine(Params(**values), 0.0)


def advert(priority: int, *, version: int = 2, interval_cs: int = 100) -> Advert:
    return Advert(version, 51, priority, (VIP,), interval_cs, AuthType.NONE, b"")


def master(**overrides: Any) -> VrrpMachine:
    """A MASTER since t=3.609375 (its down timer), long past the handover window by t=10."""
    machine = make(**overrides)
    machine.start(0.0)
    deadline = machine.next_timer()
    assert deadline is not None
    machine.handle_timer(deadline)
    assert machine.state is State.MASTER
    return machine


def of_type(actions: list[Action], kind: type[Any]) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]


def run_until(machine: VrrpMachine, until: float) -> list[tuple[float, Action]]:
    fired: list[tuple[float, Action]] = []
    while (deadline := machine.next_timer()) is not None and deadline <= until:
        fired += [(deadline, action) for action in machine.handle_timer(deadline)]
    return fired


# ---------------------------------------------------------------------------------------------- detection


def test_lower_master_is_a_split_brain_announced_once_with_advert_first_then_garp() -> None:
    m = master()
    actions = m.receive_advert(advert(70), LOW_PEER, 10.0)
    assert [type(a) for a in actions] == [SendAdvert, SendGratuitous, SplitBrainDetected, MasterRxLowerPri]
    assert actions[0].advert.priority == 100  # type: ignore[union-attr]
    assert actions[1] == SendGratuitous((VIP,), 5, "split_brain")
    assert actions[2] == SplitBrainDetected(LOW_PEER, 70)
    assert m.state is State.MASTER and m.split_brain_peers == (LOW_PEER,)
    # the same peer again: the usual answer, but no second announcement in the same episode
    again = m.receive_advert(advert(70), LOW_PEER, 10.5)
    assert of_type(again, SplitBrainDetected) == [] and of_type(again, SendGratuitous) == []
    assert len(of_type(again, SendAdvert)) == 1


def test_equal_priority_and_lower_address_is_a_split_brain_higher_address_is_not() -> None:
    m = master()
    assert SplitBrainDetected(LOW_PEER, 100) in m.receive_advert(advert(100), LOW_PEER, 10.0)
    loser = master()
    actions = loser.receive_advert(advert(100), PEER, 10.0)
    assert of_type(actions, SplitBrainDetected) == []
    assert [(a.old, a.new) for a in of_type(actions, StateChanged)] == [(State.MASTER, State.BACKUP)]


def test_split_brain_advert_is_sent_even_with_lower_prio_no_advert() -> None:
    m = master(lower_prio_no_advert=True)
    actions = m.receive_advert(advert(70), LOW_PEER, 10.0)
    assert [a.advert.priority for a in of_type(actions, SendAdvert)] == [100]
    assert of_type(m.receive_advert(advert(70), LOW_PEER, 10.5), SendAdvert) == []


def test_split_brain_garp_replaces_the_immediate_lower_prio_garp() -> None:
    m = master(garp_lower_prio_repeat=2, garp_master_repeat=3)
    actions = m.receive_advert(advert(70), LOW_PEER, 10.0)
    assert of_type(actions, SendGratuitous) == [SendGratuitous((VIP,), 3, "split_brain")]
    later = m.receive_advert(advert(70), LOW_PEER, 10.5)
    assert of_type(later, SendGratuitous) == [SendGratuitous((VIP,), 2, "lower_prio")]


def test_garp_master_repeat_zero_still_announces_once() -> None:
    m = master(garp_master_repeat=0)
    assert SendGratuitous((VIP,), 1, "split_brain") in m.receive_advert(advert(70), LOW_PEER, 10.0)


def test_lower_master_within_the_handover_window_is_not_a_split_brain() -> None:
    m = make(priority=100)
    m.start(0.0)
    m.receive_advert(advert(70), LOW_PEER, 1.0)  # preempting: discarded, the down timer runs on
    became = m.next_timer()
    assert became is not None
    m.handle_timer(became)
    assert m.state is State.MASTER
    # the old master's advert crossed ours, then it yields
    actions = m.receive_advert(advert(70), LOW_PEER, became + 0.01)
    assert of_type(actions, SplitBrainDetected) == [] and m.split_brain_peers == ()
    assert MasterRxLowerPri(LOW_PEER, 70) in actions
    # a Master_Down_Interval later the same peer as master is a split brain
    later = became + m.master_down_interval
    assert of_type(m.receive_advert(advert(70), LOW_PEER, later), SplitBrainDetected) == [
        SplitBrainDetected(LOW_PEER, 70)]


def test_two_peers_two_episodes() -> None:
    m = master()
    m.receive_advert(advert(70), LOW_PEER, 10.0)
    assert of_type(m.receive_advert(advert(50), OTHER_LOW, 10.2), SplitBrainDetected) == [
        SplitBrainDetected(OTHER_LOW, 50)]
    assert m.split_brain_peers == (LOW_PEER, OTHER_LOW)


# ---------------------------------------------------------------------------------------------- resolution


def test_resolved_after_three_quiet_intervals_and_announced_again() -> None:
    m = master()
    m.receive_advert(advert(70), LOW_PEER, 10.0)
    m.receive_advert(advert(70), LOW_PEER, 10.9)  # still there: the episode runs on
    fired = run_until(m, 13.89)
    assert not [a for _, a in fired if isinstance(a, SplitBrainResolved)]
    assert m.next_timer() == pytest.approx(13.9)
    fired = run_until(m, 13.9)
    assert [round(t, 6) for t, _ in fired] == [13.9] * len(fired)  # everything below fired at 13.9
    assert of_type([a for _, a in fired], SplitBrainResolved) == [SplitBrainResolved(LOW_PEER, OWN, True)]
    assert SendGratuitous((VIP,), 5, "split_brain_resolved") in [a for _, a in fired]
    assert m.split_brain_peers == () and m.state is State.MASTER
    # a new advert from the peer later is a new episode
    assert of_type(m.receive_advert(advert(70), LOW_PEER, 20.0), SplitBrainDetected)


def test_quiet_period_uses_the_slower_peers_interval() -> None:
    m = master(version=3, advert_int=0.1)
    m.receive_advert(advert(70, version=3, interval_cs=100), LOW_PEER, 10.0)
    assert of_type([a for _, a in run_until(m, 12.9)], SplitBrainResolved) == []
    assert of_type([a for _, a in run_until(m, 13.0)], SplitBrainResolved) == [
        SplitBrainResolved(LOW_PEER, OWN, True)]


def test_losing_the_election_resolves_with_the_peer_winning_and_says_goodbye() -> None:
    m = master()
    m.receive_advert(advert(70), LOW_PEER, 10.0)
    actions = m.receive_advert(advert(200), PEER, 10.5)
    assert [(a.old, a.new) for a in of_type(actions, StateChanged)] == [(State.MASTER, State.BACKUP)]
    assert of_type(actions, SplitBrainResolved) == [SplitBrainResolved(LOW_PEER, PEER, False)]
    assert [a.advert.priority for a in of_type(actions, SendAdvert)] == [100]
    assert m.split_brain_peers == ()


@pytest.mark.parametrize("leave", ["fault", "shutdown", "release", "demote"])
def test_leaving_master_otherwise_ends_the_episode_without_a_winner(leave: str) -> None:
    m = master()
    m.receive_advert(advert(70), LOW_PEER, 10.0)
    if leave == "fault":
        actions = m.set_fault("interface eth0 down", 11.0)
    elif leave == "shutdown":
        actions = m.shutdown(11.0)
    elif leave == "release":
        actions = m.release(11.0)
    else:
        actions = m.demote(11.0, "sync group")
    assert of_type(actions, SplitBrainResolved) == [SplitBrainResolved(LOW_PEER, None, False)]
    assert m.state is not State.MASTER and m.split_brain_peers == ()


def test_next_timer_includes_the_episode_deadline_only_while_master() -> None:
    m = master(advert_int=10)
    start = m.last_transition
    m.receive_advert(advert(70, interval_cs=1000), LOW_PEER, start + 50.0)
    # adverts every 10 s from the advert just sent; the episode ends 30 s after the peer's last advert
    assert m.next_timer() == pytest.approx(start + 60.0)
    m.set_fault("interface eth0 down", start + 51.0)
    assert m.next_timer() is None


# ---------------------------------------------------------------------------------------------- the watch


def test_watch_opens_keeps_and_expires_episodes() -> None:
    watch = SplitBrainWatch(quiet_adverts=3)
    first = watch.heard(LOW_PEER, 70, 1.0, 5.0)
    assert first is not None and first.started == 5.0
    assert watch.heard(LOW_PEER, 80, 1.0, 6.0) is None
    assert watch.episodes[0].priority == 80 and watch.episodes[0].started == 5.0
    assert watch.next_deadline() == 9.0
    assert watch.expire(8.99) == []
    assert [e.peer for e in watch.expire(9.0)] == [LOW_PEER]
    assert watch.next_deadline() is None and watch.end_all() == []
    with pytest.raises(ValueError):
        SplitBrainWatch(quiet_adverts=0)


# ---------------------------------------------------------------------------------------------- events


def test_engine_events_wording_severity_and_json_round_trip() -> None:
    seen = engine_events.SplitBrain(time=1.0, instance="VI_1", peer="10.0.0.2", peer_priority=70, vrid=51)
    assert seen.text() == ("(VI_1) split brain: another MASTER 10.0.0.2 (priority 70) on VRID 51; "
                           "sending gratuitous ARPs")
    assert seen.severity == "error"
    won = engine_events.SplitBrainResolved(time=2.0, instance="VI_1", peer="10.0.0.2", winner="10.0.0.1", won=True)
    lost = engine_events.SplitBrainResolved(time=2.0, instance="VI_1", peer="10.0.0.2", winner="10.0.0.3")
    left = engine_events.SplitBrainResolved(time=2.0, instance="VI_1", peer="10.0.0.2")
    assert won.text() == "(VI_1) split brain with 10.0.0.2 resolved: it went quiet, this node stays MASTER"
    assert lost.text() == "(VI_1) split brain with 10.0.0.2 resolved: 10.0.0.3 won the election"
    assert left.text() == "(VI_1) split brain with 10.0.0.2 ended: this node left MASTER"
    assert {e.severity for e in (won, lost, left)} == {"notice"}
    for event in (seen, won, lost, left):
        assert engine_events.EVENT_TYPES[event.KIND] is type(event)
        assert engine_events.event_from_json(json.loads(json.dumps(engine_events.event_to_json(event)))) == event


def test_vrrp_events_carry_the_same_wording() -> None:
    started = SplitBrainStarted("VI_1", 51, LOW_PEER, 70, time=1.0)
    assert started.message == ("(VI_1) split brain: another MASTER 10.0.0.1 (priority 70) on VRID 51; "
                               "sending gratuitous ARPs")
    assert SplitBrainEnded("VI_1", LOW_PEER, OWN, True, time=2.0).message.endswith("this node stays MASTER")
    assert SplitBrainEnded("VI_1", LOW_PEER, PEER, False, time=2.0).message.endswith("10.0.0.3 won the election")
    assert SplitBrainEnded("VI_1", LOW_PEER, None, False, time=2.0).message.endswith("this node left MASTER")


def test_show_vrrp_marks_the_instance_until_resolved() -> None:
    view = VrrpInstanceView(name="VI_1", state="MASTER", priority=100, base_priority=100, vrid=51,
                            interface="eth0", master="10.0.0.2", split_brain="10.0.0.1")
    text = showtext.vrrp([view], now=0.0)
    assert "MASTER SPLIT BRAIN vs 10.0.0.1" in text.splitlines()[1]
    assert view.as_json()["split_brain"] == "10.0.0.1"
    healed = dataclasses.replace(view, split_brain=None)
    assert "SPLIT BRAIN" not in showtext.vrrp([healed], now=0.0)
    assert healed.as_json()["split_brain"] is None
