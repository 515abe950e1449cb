"""A reload that changes a MASTER's priority is applied in place: it stays MASTER, keepalived (the BACKUP peer)
sees no change of master, and the adverts on the wire never pause (inter-advert gaps measured with tcpdump)."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import time

import pytest

from lvsconsole.lab.netns import wait_for
from lvsconsole.lab.vrrp import A4, DirectorPair, InstanceConf, render_config, start_keepalived, start_lvsconsole

pytestmark = pytest.mark.netns

VIP = "10.9.0.100"
ADVERT_INT = 0.1


def conf(priority: int, router_id: str) -> str:
    return render_config([InstanceConf(priority=priority, version=3, advert_int=ADVERT_INT)], router_id=router_id)


def our_adverts(pcap: str) -> list[tuple[float, int]]:
    """(time, priority) of every VRRP advert from our node in the capture."""
    out = subprocess.run(["tshark", "-r", pcap, "-Y", f"vrrp && ip.src == {A4}", "-T", "fields",
                          "-e", "frame.time_epoch", "-e", "vrrp.prio"], capture_output=True, text=True, check=True)
    rows = [line.split("\t") for line in out.stdout.splitlines() if line.strip()]
    return [(float(at), int(prio)) for at, prio in rows]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_master_priority_reload_keeps_master_and_advert_rhythm(pair: DirectorPair) -> None:
    ours = start_lvsconsole(pair.a, conf(150, "a"), pair.workdir, "a")
    theirs = start_keepalived(pair.b, conf(100, "b"), pair.workdir, "b")
    wait_for(lambda: pair.a.has_address(VIP, "eth0"), 10, what="our VIP")
    theirs.wait_log("Entering BACKUP STATE", 10)
    wait_for(lambda: not pair.b.has_address(VIP, "eth0"), 10, what="keepalived to settle as BACKUP")
    cap, pcap = pair.capture("reload")
    try:
        time.sleep(1.0)
        before = ours.instance_stats()
        ours.conf.write_text(conf(120, "a"))
        mark = len(ours.log())
        their_mark = len(theirs.log())
        reloaded_at = time.time()
        assert ours.proc is not None
        ours.proc.send_signal(1)  # SIGHUP
        ours.wait_log("Reload finished: 0 instance(s) kept, 1 changed in place, 0 (re)started", 10, after=mark)
        time.sleep(1.0)
    finally:
        cap.stop()
    after = ours.instance_stats()
    assert after["state"] == "MASTER" and after["priority"] == 120
    assert after["counters"]["become_master"] == before["counters"]["become_master"]
    assert after["in_state_for"] > before["in_state_for"]
    assert "Entering MASTER STATE" not in theirs.log()[their_mark:]
    assert pair.a.has_address(VIP, "eth0") and not pair.b.has_address(VIP, "eth0")
    adverts = our_adverts(str(pcap))
    priorities = [p for _, p in adverts]
    assert 150 in priorities and priorities[-1] == 120 and 0 not in priorities
    # 150 until the reload, 120 after: one switch, never back
    assert priorities == sorted(priorities, reverse=True)
    times = [at for at, _ in adverts]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    around = [g for a, g in zip(times, gaps, strict=False) if reloaded_at - 0.5 <= a <= reloaded_at + 0.5]
    assert around, "no adverts captured around the reload"
    assert max(gaps) < ADVERT_INT * 1.5, f"advert gap {max(gaps):.3f}s around the reload"
