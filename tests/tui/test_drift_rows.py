"""Drift in the console: with ``ipvs_drift hold``, a weight edited and a dest deleted behind the engine's back
mark their rows (and their virtual server) "⚠ drift"; A on a row adopts its drift into the candidate, R
reconciles (the kernel gets intent back) and the mark goes away."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from _lab import Lab, lab, wait_until

from lvsconsole.ipvs.reconcile import DeleteDest, EditDest
from lvsconsole.tui.app import LvsConsoleApp

pytestmark = pytest.mark.tui

SIZE = (160, 48)


def health_text(app: LvsConsoleApp, row_key: str) -> str:
    return app.vs_table.cell(row_key, "health").plain


async def drift_behind_the_back(the_lab: Lab) -> None:
    """ipvsadm -e on a's weight, ipvsadm -d on b, in the memory backend; the sync then reads the kernel."""
    backend = the_lab.backend
    service = the_lab.service("web")
    dests = backend.table[service].dests
    a = next(d for k, d in dests.items() if k.port == the_lab.ports["a"])
    b = next(k for k in dests if k.port == the_lab.ports["b"])
    await backend.apply([EditDest(service, replace(a, weight=9)), DeleteDest(service, b)])
    sync = the_lab.engine.director.ipvs
    assert sync is not None
    await sync.check()


def test_drifted_rows_are_marked_and_the_keys_adopt_and_reconcile() -> None:
    async def main() -> None:
        async with lab() as the_lab:
            sync = the_lab.engine.director.ipvs
            assert sync is not None
            sync.drift_policy = "hold"
            app = LvsConsoleApp(the_lab.link, tick=0.2)
            async with app.run_test(size=SIZE) as pilot:
                await wait_until(lambda: app.vs_table.row_count == 6, what="the table to fill")
                web, a, b = the_lab.vs_key("web"), the_lab.rs_key("a"), the_lab.rs_key("b")
                row_a, row_b = f"rs|{web}|{a}", f"rs|{web}|{b}"
                assert "drift" not in health_text(app, row_a)
                await drift_behind_the_back(the_lab)
                await wait_until(lambda: "⚠ drift" in health_text(app, row_a) and "⚠ drift" in health_text(app, row_b),
                                 what="the drifted rows to be marked")
                assert "⚠ drift" in health_text(app, f"vs|{web}")
                assert "drift" not in health_text(app, f"vs|{the_lab.vs_key('api')}")
                # A on a: its kernel weight goes into the candidate
                assert app.vs_table.select(web, a)
                app.vs_table.focus()
                await pilot.press("A")
                await wait_until(lambda: the_lab.engine.store.dirty, what="the candidate to change")
                assert "weight 9" in the_lab.engine.store.candidate.text
                # R on b: the kernel gets b back, and b's mark goes
                assert app.vs_table.select(web, b)
                await pilot.press("R")
                await wait_until(lambda: the_lab.ports["b"] in the_lab.weights("web"), what="b back in the kernel")
                await wait_until(lambda: "drift" not in health_text(app, row_b), what="b's mark to clear")
                assert "⚠ drift" in health_text(app, row_a), "a's drift is held until the adopted weight is committed"
                # a row without drift says so instead of running anything
                assert app.vs_table.select(the_lab.vs_key("api"), the_lab.rs_key("c"))
                ran = len(app.results)
                await pilot.press("R")
                await pilot.pause()
                assert len(app.results) == ran

    asyncio.run(asyncio.wait_for(main(), 60))
