"""A reload that moves a VIP between two MASTER instances (dry run on loopback): both stay MASTER, the
address is never removed, its new owner announces it. What the dry run would do to addresses is logged."""

from __future__ import annotations

import asyncio
import logging
from ipaddress import ip_address

import pytest

from lvsconsole.config.build import load_text
from lvsconsole.config.model import Config
from lvsconsole.vrrp.events import GratuitousSent, InstanceStateChanged, VrrpEvent
from lvsconsole.vrrp.service import VrrpService

INSTANCE = """
vrrp_instance {name} {{
    interface lo
    virtual_router_id {vrid}
    priority {prio}
    version 3
    advert_int 0.05
    garp_master_repeat 1
    virtual_ipaddress {{
{vips}
    }}
}}
"""
MOVED = "192.0.2.189/32"


def config(vi1: list[str], vi2: list[str], *, vi2_vrid: int = 52) -> Config:
    text = INSTANCE.format(name="VI_1", vrid=51, prio=100, vips="\n".join(f"        {v}" for v in vi1))
    text += INSTANCE.format(name="VI_2", vrid=vi2_vrid, prio=100, vips="\n".join(f"        {v}" for v in vi2))
    result = load_text(text)
    assert result.ok, result.diagnostics
    return result.config


def address_log(caplog: pytest.LogCaptureFixture, verb: str) -> list[str]:
    """The addresses the dry run would have added or removed, in order."""
    out = []
    for record in caplog.records:
        if record.msg == "(dry run) would %s %s on %s" and record.args and record.args[0] == verb:  # type: ignore[index]
            out.append(str(record.args[1]))  # type: ignore[index]
    return out


async def both_master(service: VrrpService) -> None:
    async def poll() -> None:
        while {s.state for s in service.snapshot()} != {"MASTER"}:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), 5)


def vips(service: VrrpService) -> dict[str, tuple[str, ...]]:
    return {s.name: s.vips for s in service.snapshot()}


@pytest.mark.parametrize("restart_source", [False, True], ids=["only-vips-change", "source-instance-restarts"])
def test_vip_moves_between_masters_in_one_step(caplog: pytest.LogCaptureFixture, restart_source: bool) -> None:
    async def main() -> None:
        service = VrrpService(config(["192.0.2.188/32"], ["192.0.2.189/32", "192.0.2.190/32"]), dry_run=True)
        events: list[VrrpEvent] = []
        service.add_listener(events.append)
        await service.start()
        try:
            await both_master(service)
            caplog.clear()
            events.clear()
            # VI_2 gives 192.0.2.189 to VI_1; with restart_source VI_2 also changes its VRID, so it restarts
            await service.reload(config(["192.0.2.188/32", "192.0.2.189/32"], ["192.0.2.190/32"],
                                        vi2_vrid=53 if restart_source else 52))
            assert vips(service) == {"VI_1": ("192.0.2.188", "192.0.2.189"), "VI_2": ("192.0.2.190",)}
            assert MOVED not in address_log(caplog, "remove")
            assert MOVED in address_log(caplog, "add")
            announced = {(e.instance, str(e.address)) for e in events if isinstance(e, GratuitousSent)}
            assert ("VI_1", "192.0.2.189") in announced
            transitions = [(e.instance, e.new.name) for e in events if isinstance(e, InstanceStateChanged)]
            if restart_source:
                # VI_2 restarted (its own address went with it and comes back when it is MASTER again)
                assert ("VI_2", "INIT") in transitions and "192.0.2.190/32" in address_log(caplog, "remove")
            else:
                assert transitions == []  # both kept their state and timers
            # its adverts carry the new list
            assert service.instances["VI_1"].machine.params.addresses == (ip_address("192.0.2.188"),
                                                                          ip_address(MOVED.split("/")[0]))

            # a VIP removed from the config altogether is removed from the host
            caplog.clear()
            await both_master(service)
            await service.reload(config(["192.0.2.188/32"], ["192.0.2.190/32"],
                                        vi2_vrid=53 if restart_source else 52))
            assert address_log(caplog, "remove") == [MOVED]
            assert vips(service)["VI_1"] == ("192.0.2.188",)
        finally:
            await service.stop()

    with caplog.at_level(logging.INFO, logger="lvsconsole.vrrp"):
        asyncio.run(asyncio.wait_for(main(), 20))
