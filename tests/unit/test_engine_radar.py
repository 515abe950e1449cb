"""The radar through the engine: packets given to the VRRP service come out as RadarAlarm / RadarCleared events on
the bus and as ``show vrrp radar`` (text and JSON, which validates against the documented schema)."""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address
from pathlib import Path

import jsonschema

from lvsconsole.engine.daemon import running_engine
from lvsconsole.engine.events import RadarAlarm, RadarCleared, event_from_json, event_to_json
from lvsconsole.engine.json_schema import result_schema
from lvsconsole.vrrp.packet import MCAST_GROUP4, Advert, Auth, encode_ipv4_datagram
from lvsconsole.vrrp.transport import Received

CONFIG = """
vrrp_instance VI_R {
    state BACKUP
    interface lo
    virtual_router_id 51
    priority 50
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass secret
    }
    virtual_ipaddress {
        192.0.2.51/32
    }
}
"""

KEEPALIVED = IPv4Address("192.0.2.1")
ROGUE = IPv4Address("192.0.2.2")


def datagram(src: IPv4Address, priority: int, vip: str, password: str = "secret") -> bytes:
    auth = Auth.pass_(password)
    advert = Advert(version=2, vrid=51, priority=priority, addresses=(IPv4Address(vip),), interval_cs=100,
                    auth_type=auth.type, auth_data=auth.data)
    return encode_ipv4_datagram(advert, src, MCAST_GROUP4)


def test_a_dual_master_is_an_event_and_a_show(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONFIG)

    async def go() -> None:
        async with running_engine(str(conf), dry_run=True, socket_path=None, syslog=None) as engine:
            vrrp = engine.director.vrrp
            assert vrrp is not None
            events = engine.bus.subscribe(kinds=(RadarAlarm, RadarCleared))
            loop = asyncio.get_running_loop()
            start = loop.time() - 3.0
            legit = datagram(KEEPALIVED, 100, "192.0.2.51")
            rogue = datagram(ROGUE, 200, "192.0.2.99", password="other")
            for step in range(7):  # three seconds of both advertising, half a second apart
                src, data = (KEEPALIVED, legit) if step % 2 == 0 else (ROGUE, rogue)
                vrrp.observe("lo", Received(data, src, MCAST_GROUP4, None, start + step * 0.5))

            alarm = await asyncio.wait_for(events.get(), 5.0)
            assert isinstance(alarm, RadarAlarm)
            assert (alarm.interface, alarm.vrid, alarm.instance) == ("lo", 51, "VI_R")
            assert alarm.senders == (str(ROGUE), str(KEEPALIVED)) and alarm.priorities == (200, 100)
            assert event_from_json(event_to_json(alarm)) == alarm  # it crosses the control socket unchanged

            result = await engine.executor.run("show vrrp radar", who="test")
            assert result.ok
            jsonschema.validate(result.as_json(), result_schema("show vrrp radar"),
                                cls=jsonschema.Draft202012Validator)
            rows = {row["sender"]: row for row in result.data["senders"]}
            assert rows[str(KEEPALIVED)]["priority"] == 100 and rows[str(KEEPALIVED)]["mismatches"] == []
            assert rows[str(ROGUE)]["mismatches"] == ["auth", "vips"]
            assert rows[str(ROGUE)]["collision"] == "VIP set differs from VI_R"
            assert result.data["alarms"][0]["vrid"] == 51
            assert "DUAL MASTER: VRID 51 (VI_R) on lo" in result.message
            assert str(ROGUE) in result.message and "COLLISION" in result.message

            # only the legitimate master goes on: the radar's tick clears the alarm once the rogue is quiet
            async def keepalived_advertises() -> None:
                while True:
                    vrrp.observe("lo", Received(legit, KEEPALIVED, MCAST_GROUP4, None, loop.time()))
                    await asyncio.sleep(0.5)

            feeder = asyncio.create_task(keepalived_advertises())
            try:
                cleared = await asyncio.wait_for(events.get(), 9.0)  # five intervals of silence, then a tick
            finally:
                feeder.cancel()
            assert isinstance(cleared, RadarCleared)
            assert cleared.remaining == str(KEEPALIVED) and cleared.instance == "VI_R"
            after = await engine.executor.run("show vrrp radar", who="test")
            assert after.data["alarms"] == [] and "DUAL MASTER" not in after.message

    asyncio.run(go())


def test_show_vrrp_radar_with_nothing_heard(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONFIG)

    async def go() -> None:
        async with running_engine(str(conf), dry_run=True, socket_path=None, syslog=None) as engine:
            result = await engine.executor.run("show vrrp radar", who="test")
            assert result.ok and result.data["senders"] == [] and result.message.startswith("no VRRP advert heard")

    asyncio.run(go())
