"""Sync groups on a virtual clock: the machine's hooks (WantMaster, promote, demote) and the group rules."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from lvsconsole.vrrp.machine import (
    Action,
    AddAddresses,
    Params,
    RemoveAddresses,
    SendAdvert,
    State,
    StateChanged,
    VrrpMachine,
    WantMaster,
)
from lvsconsole.vrrp.packet import Advert, Auth, AuthType
from lvsconsole.vrrp.syncgroup import SYNC_FAULT, SyncGroup

OWN = IPv4Address("10.0.0.2")
PEER = IPv4Address("10.0.0.3")


def member(name: str, vrid: int, **overrides: Any) -> VrrpMachine:
    values: dict[str, Any] = {"name": name, "vrid": vrid, "priority": 100, "source": OWN, "sync_group": True,
                              "addresses": (IPv4Address(f"10.0.0.{100 + vrid}"),)}
    values.update(overrides)
    return VrrpMachine(Params(**values), 0.0)


def advert(vrid: int, priority: int) -> Advert:
    return Advert(2, vrid, priority, (IPv4Address(f"10.0.0.{100 + vrid}"),), 100, AuthType.NONE, Auth().data)


def states(group: SyncGroup) -> list[State]:
    return [m.state for m in group.members]


def changes(actions: list[Action]) -> list[tuple[State, State]]:
    return [(a.old, a.new) for a in actions if isinstance(a, StateChanged)]


def run(group: SyncGroup, machine: VrrpMachine, actions: list[Action], now: float) -> list[Action]:
    """What an adapter does: the member's actions, then the group's reaction for the others."""
    out = list(actions)
    for _, acts in group.react(machine, actions, now):
        out += acts
    return out


# -------------------------------------------------------------------------------------------- machine hooks


def test_expired_down_timer_in_a_sync_group_only_wants_master() -> None:
    m = member("VI_1", 1)
    m.start(0.0)
    deadline = m.next_timer()
    assert deadline == m.master_down_interval
    actions = m.handle_timer(deadline)
    assert actions == [WantMaster("master down timer expired")]
    assert m.state is State.BACKUP and m.wants_master
    assert m.next_timer() == deadline + m.master_down_interval  # re-armed while the group decides
    # an accepted advert means there is a master: the wish is gone
    m.receive_advert(advert(1, 120), PEER, deadline + 0.5)
    assert not m.wants_master


def test_promote_and_demote() -> None:
    m = member("VI_1", 1)
    m.start(0.0)
    assert m.demote(1.0, "x") == []  # not MASTER: nothing
    actions = m.promote(1.0, "sync group G went MASTER")
    assert [type(a) for a in actions][:2] == [SendAdvert, AddAddresses]
    assert changes(actions) == [(State.BACKUP, State.MASTER)]
    assert m.promote(2.0) == []  # already MASTER
    actions = m.demote(3.0, "sync group G went BACKUP")
    assert not any(isinstance(a, SendAdvert) for a in actions)  # no priority-0 advert
    assert RemoveAddresses(m.params.addresses) in actions
    assert changes(actions) == [(State.MASTER, State.BACKUP)]
    assert m.counters.release_master == 1 and m.next_timer() == 3.0 + m.master_down_interval


def test_an_owner_in_a_sync_group_waits_for_its_group() -> None:
    m = member("VI_1", 1, priority=255)
    assert changes(m.start(0.0)) == [(State.INIT, State.BACKUP)]
    assert m.handle_timer(0.0) == [WantMaster("address owner")]


def test_outside_sync_groups_nothing_changes() -> None:
    m = member("VI_1", 1, sync_group=False)
    m.start(0.0)
    assert changes(m.handle_timer(m.master_down_interval)) == [(State.BACKUP, State.MASTER)]


# -------------------------------------------------------------------------------------------- group rules


def test_group_goes_master_only_when_every_member_wants_it() -> None:
    a, b = member("A", 1), member("B", 2, priority=50)  # b's down timer expires later
    group = SyncGroup("G", [a, b])
    a.start(0.0)
    b.start(0.0)
    t_a, t_b = a.master_down_interval, b.master_down_interval
    assert t_a < t_b
    out = run(group, a, a.handle_timer(t_a), t_a)
    assert states(group) == [State.BACKUP, State.BACKUP] and a.wants_master
    out = run(group, b, b.handle_timer(t_b), t_b)
    assert states(group) == [State.MASTER, State.MASTER]
    assert sorted(changes(out)) == [(State.BACKUP, State.MASTER)] * 2


def test_a_member_hearing_a_master_holds_the_group_in_backup() -> None:
    a, b = member("A", 1), member("B", 2)
    group = SyncGroup("G", [a, b])
    a.start(0.0)
    b.start(0.0)
    t = a.master_down_interval
    b.receive_advert(advert(2, 200), PEER, t - 0.1)  # the peer is master for B
    run(group, a, a.handle_timer(t), t)
    assert states(group) == [State.BACKUP, State.BACKUP]


def test_one_member_back_to_backup_pulls_the_others() -> None:
    a, b = member("A", 1), member("B", 2)
    group = SyncGroup("G", [a, b])
    a.start(0.0)
    b.start(0.0)
    t = a.master_down_interval
    run(group, a, a.handle_timer(t), t)
    run(group, b, b.handle_timer(t), t)
    assert states(group) == [State.MASTER, State.MASTER]
    out = run(group, a, a.receive_advert(advert(1, 200), PEER, t + 1), t + 1)
    assert states(group) == [State.BACKUP, State.BACKUP]
    assert sorted(changes(out)) == [(State.MASTER, State.BACKUP)] * 2
    assert not any(isinstance(x, SendAdvert) and x.advert.priority == 0 for x in out)


def test_a_fault_pulls_the_group_to_fault_and_it_leaves_together() -> None:
    a, b = member("A", 1), member("B", 2)
    group = SyncGroup("G", [a, b])
    a.start(0.0)
    b.start(0.0)
    t = a.master_down_interval
    run(group, a, a.handle_timer(t), t)
    run(group, b, b.handle_timer(t), t)
    batch = group.set_fault(a, "interface eth1 down", t + 1)
    assert states(group) == [State.FAULT, State.FAULT]
    assert b.faults == {SYNC_FAULT}
    zero = [x for _, acts in batch for x in acts if isinstance(x, SendAdvert) and x.advert.priority == 0]
    assert len(zero) == 2  # both masters released with priority 0
    # a second fault source on b: the group stays in FAULT until both are gone
    group.set_fault(b, "script chk failed", t + 2)
    group.clear_fault(a, "interface eth1 down", t + 3)
    assert states(group) == [State.FAULT, State.FAULT] and a.faults == {SYNC_FAULT}
    batch = group.clear_fault(b, "script chk failed", t + 4)
    assert states(group) == [State.BACKUP, State.BACKUP] and not a.faults and not b.faults
    assert sorted(c for _, acts in batch for c in changes(acts)) == [(State.FAULT, State.BACKUP)] * 2


def test_group_state() -> None:
    a, b = member("A", 1), member("B", 2)
    group = SyncGroup("G", [a, b])
    assert group.state is State.INIT
    a.start(0.0)
    b.start(0.0)
    assert group.state is State.BACKUP
    group.set_fault(b, "x", 1.0)
    assert group.state is State.FAULT


# -------------------------------------------------------------------------------------------- operator failover


def test_release_hands_over_and_does_not_preempt_the_new_master() -> None:
    m = member("VI_1", 1, sync_group=False, priority=200)
    m.start(0.0)
    t = m.master_down_interval
    m.handle_timer(t)
    assert m.state is State.MASTER
    actions = m.release(t + 1)
    assert [a.advert.priority for a in actions if isinstance(a, SendAdvert)] == [0]
    assert RemoveAddresses(m.params.addresses) in actions and m.state is State.BACKUP and m.holding
    # the peer (lower priority) takes over: accepted, no preemption, the down timer follows its adverts
    for k in range(5):
        assert m.receive_advert(advert(1, 100), PEER, t + 2 + k) == []
    assert m.state is State.BACKUP and m.master_address == PEER
    assert m.next_timer() == t + 6 + m.master_down_interval
    # the peer dies: we take over again and the hold ends
    assert changes(m.handle_timer(t + 6 + m.master_down_interval)) == [(State.BACKUP, State.MASTER)]
    assert not m.holding
    assert m.release(t + 20) != [] and m.release(t + 21) == []  # not MASTER any more: nothing
