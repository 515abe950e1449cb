"""The VRRP panel shows a split brain in red, naming the other master, until it is resolved (stub link)."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest
from _lab import StubLink, vrrp_instances, wait_until
from conftest import screen_text
from rich.text import Text
from textual.pilot import Pilot

from lvsconsole.engine.director_api import VrrpInstanceView
from lvsconsole.engine.events import SplitBrain, SplitBrainResolved
from lvsconsole.tui.app import LvsConsoleApp

pytestmark = pytest.mark.tui

SIZE = (160, 48)
PEER = "192.168.2.159"


def with_split_brain(peer: str | None) -> tuple[VrrpInstanceView, ...]:
    now = time.time()
    return tuple(dataclasses.replace(i, split_brain=peer) if i.name == "VI_DB" else i for i in vrrp_instances(now))


def row_of(app: LvsConsoleApp, name: str) -> str:
    return next(line for line in screen_text(app).splitlines() if f"{name} " in line)


async def until(pilot: Pilot[str], condition: object, what: str, timeout: float = 10.0) -> None:
    await wait_until(condition, timeout, what)  # type: ignore[arg-type]
    await pilot.pause()


def test_split_brain_row_is_red_names_the_peer_and_clears_when_resolved() -> None:
    async def main() -> None:
        stub = StubLink(with_split_brain(PEER))
        app = LvsConsoleApp(stub, tick=0.2)
        async with app.run_test(size=SIZE) as pilot:
            table = app.vrrp_panel.table
            await until(pilot, lambda: table.row_count == 4, "VRRP rows")
            row = row_of(app, "VI_DB")
            assert f"SPLIT BRAIN vs {PEER}" in row
            assert " 50 " in row and "10.1.0.3" in row  # the wider badge leaves the row's other cells alone
            cell = table.get_cell("i|VI_DB", "state")
            assert isinstance(cell, Text) and cell.style == table.palette.badge("error")
            other = table.get_cell("i|VI_1", "state")
            assert isinstance(other, Text) and other.style == table.palette.badge("success")
            assert "SPLIT BRAIN" not in row_of(app, "VI_1")

            stub.bus.publish(SplitBrain(instance="VI_DB", peer=PEER, peer_priority=40, vrid=60))
            await until(pilot, lambda: any(f"split brain: another MASTER {PEER} (priority 40)" in ln
                                           for ln in app.health_log.lines()), "the split-brain log line")

            stub.set_instances(with_split_brain(None))
            stub.bus.publish(SplitBrainResolved(instance="VI_DB", peer=PEER, winner="10.1.0.2", won=True))
            await until(pilot, lambda: "SPLIT BRAIN" not in screen_text(app), "the badge to clear")
            cleared = table.get_cell("i|VI_DB", "state")
            assert isinstance(cleared, Text) and cleared.plain == " BACKUP "
            assert cleared.style == table.palette.badge("primary")

    asyncio.run(main())
