"""The takeover path: no garbage collection between the advert and the gratuitous ARPs."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address

from lvsconsole.config.build import load_text
from lvsconsole.config.model import VirtualAddress
from lvsconsole.vrrp.instance import collector_paused
from lvsconsole.vrrp.machine import Action, AddAddresses, SendGratuitous, VrrpMachine
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
