"""The VRRP wire radar against real keepalived: a legitimate master, a rogue second master, our engine as BACKUP.

Three directors on one bridge: a runs our engine (``python -m lvsconsole.lab.director``: real VRRP, IPVS in
memory since this kernel has no ip_vs) as BACKUP priority 50 of VRID 51; b runs keepalived as its MASTER,
priority 100, with the same password and VIP; c runs a rogue keepalived with VRID 51 too, MASTER priority 150,
another password and another VIP. b and c each drop the other's adverts (authentication failure), so both keep
advertising: a dual master on the wire. Our instance also drops c's adverts, but the radar sees them.
(keepalived 2.2.7 re-arms its advert timer when it receives an advert, even one it rejects, so b and c end up
sharing one advert a second between them, in no fixed order: the radar's interleaving test is made for that. When
c happens to take four slots in a row, b is silent past our Master_Down_Interval and our engine takes over until
b's next advert: then a is one of the dual masters too, rightly, and the test allows it, at priority 50.)

The test talks to our engine over its control socket (what ``lvsconsole ctl`` does): it awaits the RadarAlarm
event, reads ``show vrrp radar``, then SIGKILLs the rogue (no priority-0 advert: the radar must notice the
silence) and awaits RadarCleared. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from lvsconsole.engine.control import ControlClient
from lvsconsole.engine.events import Event, RadarAlarm, RadarCleared
from lvsconsole.lab.netns import Lab, Namespace, Process, wait_for
from lvsconsole.lab.vrrp import A4, B4, InstanceConf, keepalived_daemon, render_config, start_keepalived
from lvsconsole.lab.vrrp import DirectorPair as Pair

pytestmark = pytest.mark.netns

C4 = "10.9.0.3"
VIP = "10.9.0.100/24"
ROGUE_VIP = "10.9.0.200/24"
ALARM_WITHIN = 25.0  # keepalived's start-up, its Master_Down wait (~3.6 s), then four turns between b and c
CLEAR_WITHIN = 9.0   # five intervals of silence (CLEAR_INTERVALS) plus the radar's tick


def start_our_engine(ns: Namespace, workdir: Path, conf: str) -> tuple[Process, Path]:
    path = workdir / "a.conf"
    path.write_text(conf)
    sock = workdir / "a.sock"
    proc = ns.spawn([sys.executable, "-m", "lvsconsole.lab.director", "-f", str(path), "--socket", str(sock)],
                    log=workdir / "a.engine.log")
    wait_for(sock.exists, 20, what="our engine's control socket")
    return proc, sock


async def next_event(events: Any, kind: type[Event], timeout: float) -> Event:
    async def first() -> Event:
        async for event in events:
            if isinstance(event, kind):
                return event
        raise AssertionError("the event stream ended")

    return await asyncio.wait_for(first(), timeout)


def test_the_radar_sees_a_rogue_second_master(lab: Lab, pair: Pair) -> None:
    rogue_ns = lab.node("c")
    lab.link(rogue_ns, pair.sw, "eth0", [f"{C4}/24"])
    ours_conf = render_config([InstanceConf(priority=50, auth_pass="1111", vips=(VIP,))], router_id="a")
    engine, sock = start_our_engine(pair.a, pair.workdir, ours_conf)
    legit_conf = render_config([InstanceConf(priority=100, state="MASTER", auth_pass="1111", vips=(VIP,))],
                               router_id="b")
    keepalived_b = start_keepalived(pair.b, legit_conf, pair.workdir, "b")
    rogue_conf = render_config([InstanceConf(priority=150, state="MASTER", auth_pass="rogue", vips=(ROGUE_VIP,))],
                               router_id="c")
    rogue = keepalived_daemon(rogue_ns, rogue_conf, pair.workdir, "c")

    async def go() -> None:
        async with await ControlClient.connect(str(sock), timeout=10.0) as client:
            events = await client.subscribe(types=["RadarAlarm", "RadarCleared"], replay=50)
            # The legitimate pair settles first. On a loaded machine keepalived b can start after our
            # Master_Down_Interval: we are MASTER alone for a moment, and b's arrival is a short, legitimate dual
            # master of its own, held for CLEAR_INTERVALS. The rogue comes once that is over.
            await asyncio.to_thread(keepalived_b.wait_log, "Entering MASTER STATE", ALARM_WITHIN)
            if (await client.request("show vrrp radar", timeout=10.0)).data["alarms"]:
                await next_event(events, RadarCleared, CLEAR_WITHIN)
            await asyncio.to_thread(rogue.start)
            alarm = await next_event(events, RadarAlarm, ALARM_WITHIN)
            while isinstance(alarm, RadarAlarm) and C4 not in alarm.senders:  # an earlier one, replayed
                alarm = await next_event(events, RadarAlarm, ALARM_WITHIN)
            assert isinstance(alarm, RadarAlarm)
            assert (alarm.interface, alarm.vrid, alarm.instance) == ("eth0", 51, "VI_1")
            named = dict(zip(alarm.senders, alarm.priorities, strict=True))
            assert {C4: 150, B4: 100}.items() <= named.items() <= {C4: 150, B4: 100, A4: 50}.items(), named

            result = await client.request("show vrrp radar", timeout=10.0)
            assert result.ok, result.message
            rows = {row["sender"]: row for row in result.data["senders"] if row["vrid"] == 51}
            # a's own adverts are there only if it was MASTER for a moment (at the start, or while c starved b)
            assert set(rows) - {A4} == {B4, C4}, result.message
            assert A4 not in rows or (rows[A4]["ours"] and rows[A4]["priority"] == 50), result.message
            legit, bad = rows[B4], rows[C4]
            assert (legit["priority"], legit["mismatches"], legit["collision"]) == (100, [], None)
            # b and c each reset their advert timer on the other's rejected advert: one slot a second between them
            assert legit["count"] >= 2 and bad["count"] >= 2
            assert bad["priority"] == 150 and set(bad["mismatches"]) == {"auth", "vips"}
            assert bad["vips"] == ["10.9.0.200"] and bad["collision"] == "VIP set differs from VI_1"
            assert legit["dual_master"] and bad["dual_master"]
            assert [a["vrid"] for a in result.data["alarms"]] == [51]
            assert "DUAL MASTER" in result.message and C4 in result.message

            state = (await client.request("show vrrp VI_1", timeout=10.0)).data[0]
            assert state["counters"]["auth_failure"] >= 1 and state["master"] != C4  # the instance ignored c

            rogue.crash()  # no priority-0 advert: only the silence tells
            cleared = await next_event(events, RadarCleared, CLEAR_WITHIN)
            assert isinstance(cleared, RadarCleared)
            assert (cleared.vrid, cleared.remaining) == (51, B4) and cleared.lasted > 0

            after = await client.request("show vrrp radar", timeout=10.0)
            assert after.data["alarms"] == []
            still = {row["sender"]: row for row in after.data["senders"]}
            assert still[B4]["advertising"] and not still[C4]["advertising"]

    try:
        asyncio.run(go())
    finally:
        engine.stop()
