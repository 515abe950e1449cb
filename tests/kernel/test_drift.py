"""Drift against the real kernel: with ``ipvs_drift hold``, ``ipvsadm -e`` of a weight and ``ipvsadm -d`` of a
dest behind the engine's back are listed by ``show drift`` and left alone; ``drift adopt`` puts the kernel's
weight into the candidate config; ``drift reconcile`` gives the kernel its dest back. The whole engine runs
over the kernel IPVS backend; the commands go through the command language like an operator's."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lvsconsole.engine.daemon import running_engine
from lvsconsole.engine.events import IpvsDriftCleared, IpvsDriftDetected
from lvsconsole.ipvs.kernel import KernelBackend

pytestmark = pytest.mark.kernel

VIP = "10.99.0.100:80"
RS1, RS2 = "10.99.1.1:80", "10.99.1.2:80"

CONFIG = """\
global_defs {
    router_id DRIFT
    ipvs_drift hold
}
virtual_server 10.99.0.100 80 {
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    real_server 10.99.1.1 80 {
        weight 3
    }
    real_server 10.99.1.2 80 {
        weight 2
    }
}
"""


def dest_weights(listing: str) -> dict[str, int]:
    """RS -> weight from ``ipvsadm -Ln``."""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"->\s+(\S+)\s+\S+\s+(\d+)\s", listing)}


def test_hold_lists_adopts_and_reconciles_kernel_drift(tmp_path: Path, ipvs: Any,
                                                       ipvsadm: Callable[..., str]) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_text(CONFIG)

    async def scenario() -> None:
        async with running_engine(str(path), socket_path=None, syslog=None, backend=KernelBackend()) as engine:
            sync = engine.director.ipvs
            assert sync is not None
            await sync.wait_synced(10)
            assert dest_weights(ipvsadm("-Ln")) == {RS1: 3, RS2: 2}
            events = engine.bus.subscribe()
            run = engine.executor.run

            ipvsadm("-e", "-t", VIP, "-r", RS1, "-m", "-w", "7")
            ipvsadm("-d", "-t", VIP, "-r", RS2)
            await sync.check()

            shown = await run("show drift", "kernel-test")
            assert shown.ok
            items = {view["kind"]: view for view in shown.data}
            assert set(items) == {"weight-changed", "dest-deleted"}, shown.message
            weight, deleted = items["weight-changed"], items["dest-deleted"]
            assert (weight["intent"], weight["kernel"]) == ("weight 3", "weight 7")
            assert deleted["rs_label"] == RS2 and deleted["kernel"] == "absent"
            # held: another check leaves the kernel as the operator left it
            await sync.check()
            assert dest_weights(ipvsadm("-Ln")) == {RS1: 7}

            adopted = await run(f"drift adopt {weight['id']}", "kernel-test")
            assert adopted.ok, adopted.message
            assert "weight 7" in engine.store.candidate.text and engine.store.dirty

            fixed = await run(f"drift reconcile {deleted['id']}", "kernel-test")
            assert fixed.ok, fixed.message
            assert dest_weights(ipvsadm("-Ln")) == {RS1: 7, RS2: 2}
            left = await run("show drift", "kernel-test")
            assert [view["id"] for view in left.data] == [weight["id"]]

            # committing the adopted weight: intent now equals the kernel and the last item clears
            assert (await run("commit", "kernel-test")).ok
            await sync.check()
            assert (await run("show drift", "kernel-test")).data == []
            assert dest_weights(ipvsadm("-Ln")) == {RS1: 7, RS2: 2}
            seen = events.drain()
            assert {e.drift_id for e in seen if isinstance(e, IpvsDriftDetected)} == {weight["id"], deleted["id"]}
            assert {e.drift_id for e in seen if isinstance(e, IpvsDriftCleared)} == {weight["id"], deleted["id"]}

    asyncio.run(asyncio.wait_for(scenario(), 60))
