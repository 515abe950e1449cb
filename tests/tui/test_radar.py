"""The wire radar screen ('r' on the VRRP panel) against a dry-run engine whose VRRP service is given the adverts
of two routers fighting over VRID 91 (as its raw socket would hand them over), refreshed while open."""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address

import pytest
from _lab import lab, wait_until
from conftest import screen_text

from lvsconsole.tui.app import LvsConsoleApp
from lvsconsole.tui.screens.radar import RadarScreen
from lvsconsole.vrrp.packet import MCAST_GROUP4, Advert, encode_ipv4_datagram
from lvsconsole.vrrp.transport import Received

pytestmark = pytest.mark.tui

SIZE = (160, 48)
CONFIG = """
global_defs {
    router_id LAB_RADAR
}

vrrp_instance VI_TUI {
    state BACKUP
    interface lo
    virtual_router_id 91
    priority 50
    advert_int 1
    virtual_ipaddress {
        192.0.2.91/32
    }
}
"""
LEGIT = IPv4Address("192.0.2.1")
ROGUE = IPv4Address("192.0.2.2")


def datagram(src: IPv4Address, priority: int, vip: str) -> bytes:
    advert = Advert(version=2, vrid=91, priority=priority, addresses=(IPv4Address(vip),), interval_cs=100)
    return encode_ipv4_datagram(advert, src, MCAST_GROUP4)


def test_r_on_the_vrrp_panel_opens_the_radar_with_the_dual_master() -> None:
    async def main() -> None:
        async with lab(text=CONFIG) as the_lab:
            vrrp = the_lab.engine.director.vrrp
            assert vrrp is not None
            loop = asyncio.get_running_loop()
            app = LvsConsoleApp(the_lab.link, tick=0.2)
            async with app.run_test(size=SIZE) as pilot:
                table = app.vrrp_panel.table
                await wait_until(lambda: table.row_count == 1, what="the VRRP row")
                # the adverts of the last 3 s, heard just now: a slow start of the console cannot age them out
                start = loop.time() - 3.0
                for step in range(7):
                    src, data = (LEGIT, datagram(LEGIT, 100, "192.0.2.91")) if step % 2 == 0 else \
                        (ROGUE, datagram(ROGUE, 200, "192.0.2.99"))
                    vrrp.observe("lo", Received(data, src, MCAST_GROUP4, None, start + step * 0.5))
                await pilot.press("1")  # focus the VRRP panel
                await pilot.press("r")
                await wait_until(lambda: isinstance(app.screen, RadarScreen) and bool(app.screen.data),
                                 what="the radar screen")
                screen = app.screen
                assert isinstance(screen, RadarScreen) and screen.error is None
                await pilot.pause()
                text = screen_text(app)
                assert "VRRP wire radar" in text
                assert "DUAL MASTER: VRID 91 (VI_TUI) on lo" in text
                assert "192.0.2.2 (priority 200), 192.0.2.1 (priority 100)" in text
                assert "COLLISION: VIP set differs from VI_TUI" in text
                assert {row["sender"] for row in screen.data["senders"]} == {str(LEGIT), str(ROGUE)}
                # live: a newer advert shows on the next refresh
                before = next(r["count"] for r in screen.data["senders"] if r["sender"] == str(LEGIT))
                vrrp.observe("lo", Received(datagram(LEGIT, 100, "192.0.2.91"), LEGIT, MCAST_GROUP4, None,
                                            loop.time()))
                await wait_until(lambda: next(r["count"] for r in screen.data["senders"]
                                              if r["sender"] == str(LEGIT)) == before + 1, what="a refresh")
                await pilot.press("escape")
                await wait_until(lambda: not isinstance(app.screen, RadarScreen), what="the screen to close")
                assert not app.panel_errors

    asyncio.run(asyncio.wait_for(main(), 60))
