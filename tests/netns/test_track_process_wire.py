"""track_process end to end: our engine (MASTER, priority 150) tracks a real ``sleep`` with a distinctive argv
with weight -60; killing it drops us to 90 and keepalived (BACKUP, 100) preempts us; starting it again gives
the mastership back. Inside a network namespace the proc connector is refused, so /proc is scanned (1 s)."""

from __future__ import annotations

import time
import uuid

import pytest

from lvsconsole.lab.netns import wait_for
from lvsconsole.lab.vrrp import DirectorPair, InstanceConf, render_config, start_keepalived, start_lvsconsole

pytestmark = pytest.mark.netns

VIP = "10.9.0.100"
SCAN = 1.0
MDI_100 = 3 + (256 - 100) / 256  # keepalived's Master_Down_Interval at priority 100


def ours_conf(marker: str) -> str:
    inst = InstanceConf(priority=150, extra=["track_process {", "    marker", "}"])
    block = f"""
vrrp_track_process marker {{
    process sleep 1000 {marker}
    weight -60
}}
"""
    return render_config([inst], router_id="a") + block


def test_killing_a_tracked_process_lowers_priority_and_the_peer_takes_over(pair: DirectorPair) -> None:
    marker = f"0.{uuid.uuid4().int % 10**12:012d}"  # sleep sums its arguments: distinctive and harmless
    tracked = pair.a.spawn(["sleep", "1000", marker])
    ours = start_lvsconsole(pair.a, ours_conf(marker), pair.workdir, "a")
    theirs = start_keepalived(pair.b, render_config([InstanceConf(priority=100)], router_id="b"), pair.workdir, "b")
    wait_for(lambda: pair.a.has_address(VIP, "eth0"), 10, what="our VIP")
    theirs.wait_log("Entering BACKUP STATE", 10)
    assert ours.instance_stats()["priority"] == 150
    mark = len(ours.log())
    killed_at = time.monotonic()
    tracked.kill()
    ours.wait_log("Quorum lost for tracked process marker", SCAN + 1.0, after=mark)
    noticed = time.monotonic() - killed_at
    wait_for(lambda: pair.b.has_address(VIP, "eth0"), MDI_100 + SCAN + 2.0, interval=0.02, what="keepalived's VIP")
    took_over = time.monotonic() - killed_at
    wait_for(lambda: ours.instance_stats()["state"] == "BACKUP", 5, what="us to yield")
    stats = ours.instance_stats()
    assert stats["priority"] == 90 and stats["base_priority"] == 150
    assert not pair.a.has_address(VIP, "eth0")
    assert noticed <= SCAN + 1.0 and took_over <= MDI_100 + SCAN + 2.0

    # the process is back: 150 again, and we preempt keepalived
    back = pair.a.spawn(["sleep", "1000", marker])
    try:
        ours.wait_log("Quorum gained for tracked process marker", SCAN + 1.0, after=mark)
        wait_for(lambda: pair.a.has_address(VIP, "eth0"), 3 * 1 + 1 + SCAN + 2.0, interval=0.02,
                 what="our VIP again")
        assert ours.instance_stats()["priority"] == 150
    finally:
        back.kill()
