"""The VRRP service in-process, as a dry run on the loopback interface: no packet sent, no address touched."""

from __future__ import annotations

import asyncio

import pytest

from lvsconsole.config.build import load_text
from lvsconsole.config.model import Config
from lvsconsole.vrrp.events import GratuitousSent, InstanceStateChanged, VrrpEvent
from lvsconsole.vrrp.machine import State
from lvsconsole.vrrp.service import VrrpService, run_vrrp

CONF = """
vrrp_instance VI_1 {{
    interface lo
    virtual_router_id 51
    priority {prio}
    version 3
    advert_int 0.05
    garp_master_repeat 2
    virtual_ipaddress {{
        192.0.2.188/32
    }}
}}
vrrp_instance VI_2 {{
    interface lo
    virtual_router_id 52
    priority 100
    version 3
    advert_int 0.05
    virtual_ipaddress {{
        192.0.2.189/32
    }}
}}
"""


def config(prio: int = 100) -> Config:
    result = load_text(CONF.format(prio=prio))
    assert result.ok, result.diagnostics
    return result.config


async def wait_state(service: VrrpService, name: str, state: str, timeout: float = 3.0) -> None:
    async def poll() -> None:
        while next(s for s in service.snapshot() if s.name == name).state != state:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)


def test_dry_run_service_events_snapshot_reload_stop() -> None:
    async def main() -> tuple[list[VrrpEvent], list[VrrpEvent]]:
        service = VrrpService(config(), dry_run=True)
        events: list[VrrpEvent] = []
        service.add_listener(events.append)
        streamed: list[VrrpEvent] = []

        async def reader() -> None:
            async for event in service.subscribe():
                streamed.append(event)
        task = asyncio.create_task(reader())
        await asyncio.sleep(0)
        await service.start()
        await wait_state(service, "VI_1", "MASTER")
        snap = {s.name: s for s in service.snapshot()}["VI_1"]
        assert snap.priority == snap.base_priority == 100 and snap.vrid == 51 and snap.version == 3
        assert snap.vips == ("192.0.2.188",) and snap.advert_int == 0.05 and snap.in_state_for >= 0
        assert snap.counters["become_master"] == 1
        assert service.set_runtime_priority("VI_2", 150).endswith("effective priority 100 -> 150")
        assert {s.name: s.priority for s in service.snapshot()}["VI_2"] == 150
        assert service.set_runtime_priority("VI_2", None).endswith("150 -> 100")
        with pytest.raises(ValueError):
            service.set_runtime_priority("VI_2", 255)
        with pytest.raises(ValueError):
            service.failover("VI_9")
        await wait_state(service, "VI_2", "MASTER")
        assert "released VI_2" in service.failover("VI_2")
        assert service.instances["VI_2"].machine.state is State.BACKUP
        assert service.instances["VI_2"].machine.holding
        before = service.instances["VI_1"]
        # an identical config leaves both instances alone; a new priority is applied to VI_1 in place
        await service.reload(config())
        assert service.instances["VI_1"] is before
        await service.reload(config(prio=120))
        assert service.instances["VI_1"] is before
        assert before.machine.state is State.MASTER
        assert before.machine.base_priority == before.machine.priority == 120
        await wait_state(service, "VI_1", "MASTER")
        await service.stop()
        await asyncio.wait_for(task, 2)
        return events, streamed

    events, streamed = asyncio.run(main())
    changes = [(e.instance, e.new) for e in events if isinstance(e, InstanceStateChanged)]
    assert changes[:2] == [("VI_1", State.BACKUP), ("VI_2", State.BACKUP)]
    assert ("VI_1", State.MASTER) in changes and changes[-1][1] is State.INIT
    first = next(e for e in events if isinstance(e, InstanceStateChanged) and e.new is State.MASTER)
    assert first.message == f"({first.instance}) Entering MASTER STATE"
    garps = [e for e in events if isinstance(e, GratuitousSent) and e.instance == "VI_1"]
    assert garps and garps[0].message == "Sending gratuitous ARP on lo for 192.0.2.188"
    assert streamed == events


def test_run_vrrp_stops_on_the_event() -> None:
    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.2, stop.set)
        await asyncio.wait_for(run_vrrp(config(), stop, dry_run=True), 5)
    asyncio.run(main())
