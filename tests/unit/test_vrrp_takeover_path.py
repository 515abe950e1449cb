"""The takeover path: no garbage collection between the advert and the gratuitous ARPs."""

from __future__ import annotations

import asyncio
import gc

from lvsconsole.config.build import load_text
from lvsconsole.vrrp.instance import collector_paused
from lvsconsole.vrrp.machine import Action, VrrpMachine
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
