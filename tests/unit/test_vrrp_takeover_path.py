"""The takeover path: no garbage collection between the advert and the gratuitous ARPs, the first round of
announcements before the addresses, and the spin through the last moment before a takeover deadline."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address

import pytest

from lvsconsole.config.build import load_text
from lvsconsole.config.model import VirtualAddress
from lvsconsole.vrrp.instance import collector_paused
from lvsconsole.vrrp.machine import Action, AddAddresses, SendGratuitous, VrrpMachine
from lvsconsole.vrrp.packet import Advert
from lvsconsole.vrrp.service import VrrpService

CONF = """
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 51
    version 3
    advert_int 0.05
    virtual_ipaddress { 192.0.2.188/32 }
}
"""


def test_collector_paused_restores_the_previous_setting() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():  # nested: still paused, and the outer one re-enables
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # it was off before: left off
    finally:
        gc.enable()


def test_machine_calls_and_their_actions_run_with_the_collector_paused() -> None:
    async def main() -> list[bool]:
        service = VrrpService(load_text(CONF).config, dry_run=True)
        await service.start()
        seen: list[bool] = []

        def probe(machine: VrrpMachine, now: float) -> list[Action]:
            seen.append(gc.isenabled())
            return []

        try:
            service.instances["VI_1"].drive(probe)
            seen.append(gc.isenabled())
        finally:
            await service.stop()
        return seen

    assert asyncio.run(asyncio.wait_for(main(), 10)) == [False, True]


IPAddress = IPv4Address | IPv6Address

TWO_VIPS = """
global_defs { vrrp_garp_interval %s }
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 51
    advert_int 1
    garp_master_repeat 3
    virtual_ipaddress { 192.0.2.188/32
                        192.0.2.189/32 }
}
"""


def _takeover_order(garp_interval: str) -> tuple[list[str], int]:
    """What the adapter does at once, in order, with the actions of a takeover (addresses, announcements),
    and how many paced announcement jobs it queued."""
    async def main() -> tuple[list[str], int]:
        service = VrrpService(load_text(TWO_VIPS % garp_interval).config, dry_run=True)
        await service.start()
        runtime = service.instances["VI_1"]
        order: list[str] = []
        add, send_one = runtime._addresses.add, runtime._garp.send_one

        def recorded_add(vips: Sequence[VirtualAddress], default_dev: str) -> int:
            order.append("add")
            return add(vips, default_dev)

        def recorded_send_one(interface: str, address: IPAddress) -> bool:
            order.append(f"garp {address}")
            return send_one(interface, address)

        runtime._addresses.add = recorded_add  # type: ignore[method-assign]
        runtime._garp.send_one = recorded_send_one  # type: ignore[method-assign]
        addresses = tuple(v.address.ip for v in runtime.spec.all_vips)

        def takeover(machine: VrrpMachine, now: float) -> list[Action]:
            return [AddAddresses(addresses), SendGratuitous(addresses, 3, "master")]

        try:
            runtime.drive(takeover)
            queued = runtime._jobs.qsize()
        finally:
            await service.stop()
        return order, queued

    return asyncio.run(asyncio.wait_for(main(), 10))


def test_the_first_round_of_announcements_leaves_before_the_addresses_are_added() -> None:
    one_round = ["garp 192.0.2.188", "garp 192.0.2.189"]
    assert _takeover_order("0") == (one_round + ["add"] + one_round * 2, 0)


def test_paced_announcements_all_follow_the_addresses() -> None:
    # vrrp_garp_interval: the whole burst is one paced job, queued behind the addresses
    assert _takeover_order("0.001") == (["add"], 1)


ALONE = """
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 51
    version 3
    priority 70
    advert_int 0.05
    virtual_ipaddress { 192.0.2.188/32 }
}
"""


def _spin_run(master_speaks_during_spin: bool) -> tuple[int, list[float], str]:
    """A backup alone on its link (dry run): its down timer runs out and it takes over. Returns how many spins
    it did, for each call of the down timer how far past its deadline it ran, and its state at the end. With
    ``master_speaks_during_spin``, a higher-priority advert arrives in the middle of the first spin."""
    async def main() -> tuple[int, list[float], str]:
        service = VrrpService(load_text(ALONE).config, dry_run=True)
        await service.start()  # BACKUP, its down timer ~0.19 s away: patched below well before it runs out
        runtime = service.instances["VI_1"]
        machine = runtime.machine
        past_deadline: list[float] = []
        handle_timer = VrrpMachine.handle_timer

        def recorded(self: VrrpMachine, now: float) -> list[Action]:
            deadline = self.next_timer()
            if self is machine and self.state.name == "BACKUP" and deadline is not None:  # not the rehearsal's copy
                past_deadline.append(now - deadline)
            return handle_timer(self, now)

        VrrpMachine.handle_timer = recorded  # type: ignore[method-assign]
        loop = asyncio.get_running_loop()
        spoke = False
        spin = runtime._spin

        def spin_then_maybe_an_advert() -> None:
            nonlocal spoke
            if master_speaks_during_spin and not spoke and runtime._spinning:
                spoke = True
                advert = Advert(version=3, vrid=51, priority=200, addresses=(IPv4Address("192.0.2.188"),),
                                interval_cs=5)
                runtime.drive(lambda m, now: m.receive_advert(advert, IPv4Address("192.0.2.1"), now))
            spin()

        runtime._spin = spin_then_maybe_an_advert  # type: ignore[method-assign]
        try:
            deadline = loop.time() + 5
            while machine.state.name != "MASTER" and loop.time() < deadline:
                await asyncio.sleep(0.01)
        finally:
            VrrpMachine.handle_timer = handle_timer  # type: ignore[method-assign]
            state = machine.state.name
            await service.stop()
        return runtime.spins, past_deadline, state

    return asyncio.run(asyncio.wait_for(main(), 10))


def test_a_backup_spins_through_the_last_moment_before_its_takeover_and_never_takes_over_early() -> None:
    spins, past_deadline, state = _spin_run(master_speaks_during_spin=False)
    assert state == "MASTER"
    assert spins == 1
    assert len(past_deadline) == 1 and past_deadline[0] >= 0.0


def test_an_advert_from_the_master_during_the_spin_resets_the_down_timer_as_it_would_any_time() -> None:
    spins, past_deadline, state = _spin_run(master_speaks_during_spin=True)
    # the advert stopped the first spin and pushed the deadline one Master_Down_Interval on; the master then
    # fell silent, so the backup spun again before the later deadline and took over then, not at the first
    assert state == "MASTER"
    assert spins == 2
    assert len(past_deadline) == 1 and past_deadline[0] >= 0.0


def test_the_rehearsal_of_a_takeover_leaves_the_machine_as_it_was_and_logs_nothing(
        caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> tuple[str, str, float | None, int]:
        service = VrrpService(load_text(ALONE).config, dry_run=True)
        await service.start()
        try:
            runtime = service.instances["VI_1"]
            machine = runtime.machine
            before = (machine.state.name, repr(machine.counters), machine.next_timer())
            with caplog.at_level(logging.DEBUG, logger="lvsconsole.vrrp"):
                caplog.clear()
                deadline = machine.next_timer()
                assert deadline is not None
                runtime._rehearse(deadline)
                logged = len(caplog.records)
            assert (machine.state.name, repr(machine.counters), machine.next_timer()) == before
            return before[0], machine.state.name, machine.next_timer(), logged
        finally:
            await service.stop()

    before, after, _, logged = asyncio.run(asyncio.wait_for(main(), 10))
    assert before == after == "BACKUP"
    assert logged == 0
