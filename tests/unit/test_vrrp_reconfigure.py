"""Reload in place (VrrpMachine.reconfigure) on a virtual clock: priority, advert_int, preempt, nopreempt and
preempt_delay change without a transition or a skipped advert; only the identity forces a new instance."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from ipaddress import IPv4Address
from typing import Any

import pytest

from lvsconsole.config.build import load_text
from lvsconsole.config.model import Script, VrrpScript
from lvsconsole.vrrp.machine import (
    Action,
    AddAddresses,
    Params,
    PriorityChanged,
    SendAdvert,
    SendGratuitous,
    State,
    StateChanged,
    VrrpMachine,
)
from lvsconsole.vrrp.packet import Advert, AuthType
from lvsconsole.vrrp.service import VrrpService
from lvsconsole.vrrp.tracking import ScriptState, carry_script_state

VIP = IPv4Address("10.0.0.100")
VIP2 = IPv4Address("10.0.0.101")
OWN = IPv4Address("10.0.0.2")
PEER = IPv4Address("10.0.0.3")


def params(**overrides: Any) -> Params:
    values: dict[str, Any] = {"name": "VI_1", "vrid": 51, "priority": 100, "addresses": (VIP,), "source": OWN,
                              "version": 3, "advert_int": 1.0, "garp_master_delay": 0.0}
    values.update(overrides)
    return Params(**values)


def peer_advert(priority: int, interval_cs: int = 100, version: int = 3) -> Advert:
    return Advert(version, 51, priority, (VIP,), interval_cs, AuthType.NONE, b"")


def sent_times(machine: VrrpMachine, start: float, end: float) -> list[float]:
    """Drive the timers from ``start`` to ``end``; the times at which adverts went out."""
    out: list[float] = []
    now = start
    while True:
        deadline = machine.next_timer()
        if deadline is None or deadline > end:
            return out
        now = max(now, deadline)
        if any(isinstance(a, SendAdvert) for a in machine.handle_timer(now)):
            out.append(now)


def master(**overrides: Any) -> VrrpMachine:
    machine = VrrpMachine(params(**overrides), 0.0)
    machine.start(0.0)
    assert sent_times(machine, 0.0, 3.7)  # down timer expired at 3.61: MASTER
    assert machine.state is State.MASTER
    return machine


def transitions(actions: list[Action]) -> list[StateChanged]:
    return [a for a in actions if isinstance(a, StateChanged)]


def test_master_priority_change_keeps_state_and_advert_schedule() -> None:
    machine = master()
    before = sent_times(machine, 3.7, 10.0)
    assert before and machine.next_timer() is not None
    due = machine.next_timer()
    actions = machine.reconfigure(params(priority=60), 10.2)
    actions += machine.set_priority(60, 10.2)
    assert transitions(actions) == [] and machine.state is State.MASTER
    assert machine.next_timer() == due  # nothing skipped, nothing doubled
    assert [a for a in actions if isinstance(a, PriorityChanged)] == [PriorityChanged(100, 60)]
    assert machine.base_priority == 60
    out = machine.handle_timer(due)  # type: ignore[arg-type]
    assert [a.advert.priority for a in out if isinstance(a, SendAdvert)] == [60]


def test_master_shorter_interval_brings_the_next_advert_forward_and_keeps_the_gap_bounded() -> None:
    machine = master()
    sent_times(machine, 3.7, 10.0)
    last = 10.0 - ((10.0 - 3.61) % 1.0)  # the last advert before 10.0 (one per second from 3.61)
    machine.reconfigure(params(advert_int=0.2), 10.05)
    times = sent_times(machine, 10.05, 12.0)
    gaps = [b - a for a, b in zip([last, *times], times, strict=False)]
    assert max(gaps) <= 1.0 + 1e-9  # no advert skipped
    assert all(abs(g - 0.2) < 1e-9 for g in gaps[1:])  # then the new interval
    assert machine.master_adver_int == pytest.approx(0.2)


def test_master_longer_interval_keeps_the_advert_already_due() -> None:
    machine = master()
    sent_times(machine, 3.7, 10.0)
    due = machine.next_timer()
    machine.reconfigure(params(advert_int=2.0), 10.0)
    assert machine.next_timer() == due
    times = sent_times(machine, 10.0, 15.0)
    assert times[0] == due and times[1] - times[0] == pytest.approx(2.0)


def test_backup_keeps_its_down_timer_and_takes_the_new_priority() -> None:
    machine = VrrpMachine(params(priority=90), 0.0)
    machine.start(0.0)
    machine.receive_advert(peer_advert(100), PEER, 1.0)
    deadline = machine.next_timer()
    actions = machine.reconfigure(params(priority=80), 1.5)
    actions += machine.set_priority(80, 1.5)
    assert transitions(actions) == [] and machine.state is State.BACKUP
    assert machine.next_timer() == deadline  # a lower priority does not move the timer (keepalived)
    # raising it above the master's: preempt on, so the next advert is discarded and the timer runs out
    machine.reconfigure(params(priority=120), 2.0)
    machine.set_priority(120, 2.0)
    assert machine.receive_advert(peer_advert(100), PEER, 2.0) == []
    assert machine.master_address == PEER
    out = machine.handle_timer(machine.next_timer())  # type: ignore[arg-type]
    assert [t.new for t in transitions(out)] == [State.MASTER] and machine.state.name == "MASTER"


def test_nopreempt_applied_in_place() -> None:
    machine = VrrpMachine(params(priority=120), 0.0)
    machine.start(0.0)
    machine.reconfigure(params(priority=120, preempt=False), 0.5)
    machine.receive_advert(peer_advert(100), PEER, 1.0)  # lower master, but nopreempt: accepted
    deadline = machine.next_timer()
    assert deadline == pytest.approx(1.0 + machine.master_down_interval)
    # preempt back on: the next lower advert is discarded, the timer is not re-armed
    machine.reconfigure(params(priority=120, preempt=True), 1.5)
    machine.receive_advert(peer_advert(100), PEER, 2.0)
    assert machine.next_timer() == deadline


def test_preempt_delay_removed_stops_a_running_delay() -> None:
    machine = VrrpMachine(params(priority=120, preempt_delay=30.0), 0.0)
    machine.start(0.0)
    machine.receive_advert(peer_advert(100), PEER, 1.0)
    assert machine.preempt_deadline == pytest.approx(31.0)
    machine.reconfigure(params(priority=120), 2.0)
    assert machine.preempt_deadline is None
    deadline = machine.next_timer()
    machine.receive_advert(peer_advert(100), PEER, 3.0)  # now discarded: preempt without delay
    assert machine.next_timer() == deadline


def test_new_addresses_on_a_master_are_added_and_announced() -> None:
    machine = master()
    actions = machine.reconfigure(params(addresses=(VIP, VIP2), priority=110), 5.0)
    assert [a for a in actions if isinstance(a, AddAddresses)] == [AddAddresses((VIP, VIP2))]
    assert any(isinstance(a, SendGratuitous) and a.reason == "reload" for a in actions)
    assert transitions(actions) == []


@pytest.mark.parametrize("change", [{"vrid": 52}, {"version": 2}, {"priority": 255}],
                         ids=["vrid", "version", "owner"])
def test_identity_changes_are_refused(change: dict[str, Any]) -> None:
    machine = master()
    with pytest.raises(ValueError):
        machine.reconfigure(replace(params(), **change), 5.0)
    assert machine.state is State.MASTER


# -------------------------------------------------------------------------------------------- leaving MASTER


def test_master_lowered_then_preempted_leaves_silently_as_keepalived() -> None:
    machine = master(priority=100)
    machine.reconfigure(params(priority=60), 5.0)
    machine.set_priority(60, 5.0)
    actions = machine.receive_advert(peer_advert(80), PEER, 9.0)  # the peer took over after its down timer
    assert [(t.old, t.new) for t in transitions(actions)] == [(State.MASTER, State.BACKUP)]
    assert [a for a in actions if isinstance(a, SendAdvert)] == []  # no departure advert
    assert machine.counters.pri_zero_sent == 0


def test_master_preempted_at_its_takeover_priority_still_says_goodbye_for_split_brains() -> None:
    machine = master(priority=100)
    actions = machine.receive_advert(peer_advert(120), PEER, 9.0)
    assert [a.advert.priority for a in actions if isinstance(a, SendAdvert)] == [100]


# -------------------------------------------------------------------------------------------- the service


SERVICE_CONF = """
vrrp_script ok {{
    script /bin/true
    interval 0.05
    weight {weight}
}}
vrrp_instance VI_1 {{
    interface lo
    virtual_router_id 51
    priority {priority}
    version 3
    advert_int {advert_int}
    virtual_ipaddress {{ 192.0.2.188/32 }}
    track_script {{ ok }}
}}
"""


def test_service_applies_priority_interval_and_track_weight_in_place() -> None:
    def conf(weight: int, priority: int = 100, advert_int: float = 0.05) -> Any:
        result = load_text(SERVICE_CONF.format(weight=weight, priority=priority, advert_int=advert_int))
        assert result.ok, result.diagnostics
        return result.config

    async def wait(condition: Any) -> None:
        async def poll() -> None:
            while not condition():
                await asyncio.sleep(0.01)
        await asyncio.wait_for(poll(), 10)

    async def main() -> None:
        service = VrrpService(conf(20), dry_run=True)
        await service.start()
        try:
            runtime = service.instances["VI_1"]
            machine = runtime.machine
            await wait(lambda: machine.state is State.MASTER and machine.priority == 120)
            became = machine.counters.become_master
            await service.reload(conf(30, priority=90, advert_int=0.1))
            assert service.instances["VI_1"] is runtime and machine.state is State.MASTER
            assert machine.priority == 120 and machine.base_priority == 90  # 90 + 30
            assert machine.params.interval_cs == 10 and machine.counters.become_master == became
        finally:
            await service.stop()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_a_changed_vrrp_script_keeps_its_status_as_keepalived() -> None:
    def script(rise: int, fall: int) -> VrrpScript:
        return VrrpScript(name="s", script=Script(("/bin/true",)), rise=rise, fall=fall)

    up = ScriptState(2, 3)
    for _ in range(2):
        up.record(True)
    assert up.up is True and up.result == 4
    carried = carry_script_state(up, script(3, 2))
    assert carried.up is True and carried.result == 4  # fully up stays fully up (rise + fall - 1)
    down = ScriptState(2, 3)
    down.record(False)
    assert down.up is False
    assert carry_script_state(down, script(5, 1)).up is False
    fresh = ScriptState(2, 2)  # not reported yet: starts afresh
    assert carry_script_state(fresh, script(1, 1)).up is None
