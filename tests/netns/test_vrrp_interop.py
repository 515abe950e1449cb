"""Our VRRP engine against Debian's real keepalived, in network namespaces on one bridge.

Node a runs lvsconsole (``python -m lvsconsole.vrrp``), node b runs ``keepalived -P`` unless a test swaps
them. Conditions are polled with bounded timeouts; takeover times are measured from the kill/stop.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from lvsconsole.lab.netns import Namespace, wait_for
from lvsconsole.lab.vrrp import (
    A4,
    A6,
    B4,
    B6,
    Daemon,
    InstanceConf,
    render_config,
    start_keepalived,
    start_lvsconsole,
)
from lvsconsole.lab.vrrp import (
    DirectorPair as Pair,
)

pytestmark = pytest.mark.netns

VIP = "10.9.0.100"
VIP2 = "10.9.0.101"
VIP6 = "fd00:9::100"
TOLERANCE = 0.5  # polling with `ip` (a few ms per call), process scheduling, GARP after the address


def mdi(priority: int, advert_int: float = 1.0, version: int = 2) -> float:
    """Master_Down_Interval of a backup with ``priority``."""
    return 3 * advert_int + skew(priority, advert_int, version)


def skew(priority: int, advert_int: float = 1.0, version: int = 2) -> float:
    return (256 - priority) * (advert_int if version == 3 else 1.0) / 256


def vip_on(ns: Namespace, vip: str = VIP) -> bool:
    return ns.has_address(vip, "eth0")


def conf(priority: int, router_id: str, **kwargs: object) -> str:
    instances = kwargs.pop("instances", None)
    sync = kwargs.pop("sync_groups", None)
    if instances is None:
        instances = [InstanceConf(priority=priority, **kwargs)]  # type: ignore[arg-type]
    return render_config(instances, router_id=router_id, sync_groups=sync)  # type: ignore[arg-type]


def takeover_time(new_master: Namespace, vip: str = VIP, timeout: float = 10.0) -> float:
    start = time.monotonic()
    wait_for(lambda: vip_on(new_master, vip), timeout, interval=0.01, what=f"{vip} on {new_master.ns}")
    return time.monotonic() - start


def start_pair(pair: Pair, conf_a: str, conf_b: str, *, ours_on: str = "a") -> tuple[Daemon, Daemon]:
    """lvsconsole on ``ours_on`` (a or b), keepalived on the other; returns (a's daemon, b's daemon)."""
    if ours_on == "a":
        return (start_lvsconsole(pair.a, conf_a, pair.workdir, "a"),
                start_keepalived(pair.b, conf_b, pair.workdir, "b"))
    return (start_keepalived(pair.a, conf_a, pair.workdir, "a"),
            start_lvsconsole(pair.b, conf_b, pair.workdir, "b"))


# -------------------------------------------------------------------------------------------- roles


def test_we_are_master_keepalived_is_backup(pair: Pair) -> None:
    ours, theirs = start_pair(pair, conf(150, "a", auth_pass="1111"), conf(100, "b", auth_pass="1111"))
    wait_for(lambda: vip_on(pair.a), mdi(150) + 3, what="VIP on our side")
    theirs.wait_log("Entering BACKUP STATE", 10)
    time.sleep(2.5)  # a few adverts later keepalived is still happy as backup
    assert vip_on(pair.a) and not vip_on(pair.b)
    assert ours.running() and theirs.running()
    assert "(VI_1) Entering MASTER STATE" in ours.log()
    assert "Sending gratuitous ARP on eth0 for 10.9.0.100" in ours.log()
    stats = ours.instance_stats()
    assert stats["state"] == "MASTER"
    assert stats["counters"]["advert_sent"] >= 2
    assert stats["counters"]["auth_failure"] == 0 and stats["counters"]["chk_err"] == 0


def test_keepalived_is_master_we_are_backup(pair: Pair) -> None:
    ours, _theirs = start_pair(pair, conf(100, "a", auth_pass="1111"), conf(150, "b", auth_pass="1111"))
    wait_for(lambda: vip_on(pair.b), mdi(150) + 3, what="VIP on keepalived's side")
    ours.wait_log("Entering BACKUP STATE", 10)
    time.sleep(mdi(100) + 0.5)  # longer than our down timer: the adverts keep us backup
    assert vip_on(pair.b) and not vip_on(pair.a)
    stats = ours.instance_stats()
    assert stats["state"] == "BACKUP"
    assert stats["master_address"] == B4 and stats["master_priority"] == 150
    assert stats["counters"]["advert_rcvd"] >= 3
    assert "Entering MASTER STATE" not in ours.log()


# -------------------------------------------------------------------------------------------- failover


@pytest.mark.parametrize("master", ["ours", "keepalived"])
def test_sigkill_of_the_master_and_takeover_within_master_down_interval(pair: Pair, master: str) -> None:
    ours_on = "a" if master == "ours" else "b"
    old, new = (pair.a, pair.b)
    daemon_a, daemon_b = start_pair(pair, conf(150, "a"), conf(100, "b"), ours_on=ours_on)
    wait_for(lambda: vip_on(old), mdi(150) + 3, what="VIP on the master")
    daemon_b.wait_log("Entering BACKUP STATE", 10)
    time.sleep(1.5)
    daemon_a.crash()
    elapsed = takeover_time(new)
    assert elapsed <= mdi(100) + TOLERANCE, f"takeover {elapsed:.3f}s, Master_Down_Interval {mdi(100):.3f}s"
    assert elapsed >= mdi(100) - 1.0 - 0.05, f"took over too early ({elapsed:.3f}s)"


@pytest.mark.parametrize("master", ["ours", "keepalived"])
def test_graceful_stop_sends_priority_zero_and_backup_takes_over_within_skew_time(pair: Pair, master: str) -> None:
    ours_on = "a" if master == "ours" else "b"
    daemon_a, daemon_b = start_pair(pair, conf(150, "a"), conf(100, "b"), ours_on=ours_on)
    wait_for(lambda: vip_on(pair.a), mdi(150) + 3, what="VIP on the master")
    daemon_b.wait_log("Entering BACKUP STATE", 10)
    time.sleep(1.2)
    start = time.monotonic()
    daemon_a.stop()
    elapsed = takeover_time(pair.b, timeout=5)
    stopped_in = time.monotonic() - start
    assert elapsed <= skew(100) + TOLERANCE, f"takeover {elapsed:.3f}s after the stop, Skew_Time {skew(100):.3f}s"
    assert not vip_on(pair.a), "the stopped master left its VIP behind"
    assert stopped_in < 5
    if master == "keepalived":
        assert "priority 0" in daemon_b.log() or "released" in daemon_b.log()


def test_preempt_when_the_old_master_returns(pair: Pair) -> None:
    ours, theirs = start_pair(pair, conf(150, "a"), conf(100, "b"))
    wait_for(lambda: vip_on(pair.a), mdi(150) + 3, what="VIP on our side")
    ours.crash()
    pair.a.ip("addr", "del", f"{VIP}/24", "dev", "eth0")  # a rebooted machine comes back without it
    wait_for(lambda: vip_on(pair.b), mdi(100) + 2, what="keepalived taking over")
    again = start_lvsconsole(pair.a, conf(150, "a"), pair.workdir, "a2")
    wait_for(lambda: vip_on(pair.a), mdi(150) + 3, what="our engine preempting")
    wait_for(lambda: not vip_on(pair.b), 3, what="keepalived releasing the VIP")
    assert "higher priority 150" in theirs.log()
    assert again.running()


def test_nopreempt_keeps_the_current_master(pair: Pair) -> None:
    ours = start_lvsconsole(pair.a, conf(150, "a", nopreempt=True), pair.workdir, "a")
    wait_for(lambda: vip_on(pair.a), mdi(150) + 3, what="VIP on our side")
    theirs = start_keepalived(pair.b, conf(100, "b", nopreempt=True), pair.workdir, "b")
    theirs.wait_log("Entering BACKUP STATE", 10)
    ours.crash()
    pair.a.ip("addr", "del", f"{VIP}/24", "dev", "eth0")
    wait_for(lambda: vip_on(pair.b), mdi(100) + 2, what="keepalived taking over")
    again = start_lvsconsole(pair.a, conf(150, "a", nopreempt=True), pair.workdir, "a2")
    again.wait_log("Entering BACKUP STATE", 10)
    time.sleep(mdi(150) + 1.0)
    assert vip_on(pair.b) and not vip_on(pair.a)
    assert again.instance_stats()["state"] == "BACKUP"


@pytest.mark.parametrize("master", ["ours", "keepalived"])
def test_v3_with_advert_int_0_1(pair: Pair, master: str) -> None:
    ours_on = "a" if master == "ours" else "b"
    v3 = {"version": 3, "advert_int": 0.1}
    daemon_a, daemon_b = start_pair(pair, conf(150, "a", **v3), conf(100, "b", **v3), ours_on=ours_on)
    wait_for(lambda: vip_on(pair.a), 5, what="VIP on the master")
    daemon_b.wait_log("Entering BACKUP STATE", 10)
    time.sleep(1.0)
    assert not vip_on(pair.b)
    daemon_a.crash()
    elapsed = takeover_time(pair.b, timeout=5)
    limit = mdi(100, 0.1, 3)
    assert elapsed <= limit + TOLERANCE, f"takeover {elapsed:.3f}s, Master_Down_Interval {limit:.3f}s"
    ours = daemon_a if master == "ours" else daemon_b
    if master == "keepalived":
        stats = ours.instance_stats()
        assert stats["state"] == "MASTER" and stats["counters"]["chk_err"] == 0


def test_unicast_peers(pair: Pair) -> None:
    conf_a = conf(150, "a", unicast_src=A4, unicast_peers=[B4])
    conf_b = conf(100, "b", unicast_src=B4, unicast_peers=[A4])
    ours, theirs = start_pair(pair, conf_a, conf_b)
    wait_for(lambda: vip_on(pair.a), mdi(150) + 3, what="VIP on our side")
    theirs.wait_log("Entering BACKUP STATE", 10)
    time.sleep(2.5)
    assert vip_on(pair.a) and not vip_on(pair.b)
    stats = ours.instance_stats()
    assert stats["unicast_peers"] == [B4] and stats["counters"]["advert_sent"] >= 3
    ours.stop()
    elapsed = takeover_time(pair.b, timeout=5)
    assert elapsed <= skew(100) + TOLERANCE


def test_ipv6_vip_with_v3(pair: Pair) -> None:
    v6 = {"version": 3, "vips": [f"{VIP6}/64"]}
    ours, theirs = start_pair(pair, conf(150, "a", **v6), conf(100, "b", **v6))
    wait_for(lambda: vip_on(pair.a, VIP6), mdi(150) + 3, what="IPv6 VIP on our side")
    theirs.wait_log("Entering BACKUP STATE", 10)
    time.sleep(2.5)
    assert vip_on(pair.a, VIP6) and not vip_on(pair.b, VIP6)
    stats = ours.instance_stats()
    assert stats["family"] == 6 and stats["source"].startswith("fe80::")
    assert "Sending unsolicited Neighbour Advert on eth0 for fd00:9::100" in ours.log()
    ours.crash()
    assert takeover_time(pair.b, VIP6) <= mdi(100) + TOLERANCE
    # and the other way round: keepalived is master, we are the backup that takes over
    again = start_lvsconsole(pair.a, conf(50, "a", **v6), pair.workdir, "a2")
    again.wait_log("Entering BACKUP STATE", 10)
    pair.a.ip("addr", "flush", "dev", "eth0", "to", f"{VIP6}/128", check=False)
    time.sleep(1.5)
    stats = again.instance_stats()
    assert stats["state"] == "BACKUP" and stats["master_address"] and stats["master_address"].startswith("fe80::")
    assert stats["counters"]["advert_rcvd"] >= 1 and stats["counters"]["chk_err"] == 0
    theirs.stop()
    assert takeover_time(pair.a, VIP6, timeout=5) <= skew(50) + TOLERANCE


def test_auth_mismatch_is_ignored_and_counted(pair: Pair) -> None:
    ours, _theirs = start_pair(pair, conf(150, "a", auth_pass="right"), conf(100, "b", auth_pass="wrong"))
    # neither accepts the other's adverts: both end up MASTER (split brain by misconfiguration)
    wait_for(lambda: vip_on(pair.a) and vip_on(pair.b), mdi(100) + 4, what="both sides MASTER")
    time.sleep(1.5)
    counters = ours.instance_stats()["counters"]
    assert counters["auth_failure"] >= 1
    assert counters["advert_rcvd"] == 0
    assert "received an invalid passwd" in ours.log()


# -------------------------------------------------------------------------------------------- tracking


def test_track_interface_down_means_fault_and_the_peer_takes_over(pair: Pair) -> None:
    pair.lab.veth(pair.a, "trk0", "trk1")
    ours, theirs = start_pair(pair, conf(150, "a", track_interfaces=["trk0"]), conf(100, "b"))
    wait_for(lambda: vip_on(pair.a), mdi(150) + 3, what="VIP on our side")
    theirs.wait_log("Entering BACKUP STATE", 10)
    time.sleep(1.2)
    pair.a.set_link("trk1", False)  # trk0 loses its carrier
    elapsed = takeover_time(pair.b, timeout=5)
    assert elapsed <= skew(100) + TOLERANCE, "FAULT should send priority 0"
    wait_for(lambda: not vip_on(pair.a), 2, what="our VIP removed")
    ours.wait_log("Entering FAULT STATE", 2)
    assert ours.instance_stats()["state"] == "FAULT"
    pair.a.set_link("trk1", True)
    ours.wait_log("Entering BACKUP STATE (interface trk0 down cleared)", 5)
    wait_for(lambda: vip_on(pair.a), mdi(150) + 2, what="our engine preempting again")
    wait_for(lambda: not vip_on(pair.b), 3, what="keepalived releasing")


def test_sync_group_members_move_together(pair: Pair) -> None:
    pair.lab.veth(pair.a, "trk0", "trk1")
    ours_instances = [
        InstanceConf("VI_1", 51, 150, track_interfaces=["trk0"]),
        InstanceConf("VI_2", 52, 150, vips=(f"{VIP2}/24",)),
    ]
    their_instances = [InstanceConf("VI_1", 51, 100), InstanceConf("VI_2", 52, 100, vips=(f"{VIP2}/24",))]
    groups = {"G": ["VI_1", "VI_2"]}
    ours, _theirs = start_pair(pair, conf(0, "a", instances=ours_instances, sync_groups=groups),
                              conf(0, "b", instances=their_instances, sync_groups=groups))
    wait_for(lambda: vip_on(pair.a) and vip_on(pair.a, VIP2), mdi(150) + 4, what="both VIPs on our side")
    assert not vip_on(pair.b) and not vip_on(pair.b, VIP2)
    time.sleep(1.2)
    pair.a.set_link("trk1", False)  # only VI_1 tracks it; the group pulls VI_2 along
    wait_for(lambda: vip_on(pair.b) and vip_on(pair.b, VIP2), skew(100) + 2, what="keepalived taking both")
    wait_for(lambda: not vip_on(pair.a) and not vip_on(pair.a, VIP2), 2, what="our VIPs removed")
    log = ours.log()
    assert "VRRP_Group(G) Syncing instances to FAULT state" in log
    assert {s["name"]: s["state"] for s in ours.stats()} == {"VI_1": "FAULT", "VI_2": "FAULT"}
    pair.a.set_link("trk1", True)
    wait_for(lambda: vip_on(pair.a) and vip_on(pair.a, VIP2), mdi(150) + 4, what="both VIPs back on our side")
    assert {s["name"]: s["state"] for s in ours.stats()} == {"VI_1": "MASTER", "VI_2": "MASTER"}


# -------------------------------------------------------------------------------------------- wire checks


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_decodes_our_adverts_with_good_checksums(pair: Pair) -> None:
    instances = [
        InstanceConf("V2", 51, 150, auth_pass="1111"),
        InstanceConf("V3", 52, 150, version=3, advert_int=0.5, vips=(f"{VIP2}/24",)),
        InstanceConf("V6", 53, 150, version=3, vips=(f"{VIP6}/64",)),
    ]
    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump is not installed")
    cap, path = pair.capture()
    ours = start_lvsconsole(pair.a, conf(0, "a", instances=instances), pair.workdir, "a")
    # no peer: MASTER after Master_Down_Interval, plus the engine's start-up (seconds on a loaded machine)
    wait_for(lambda: vip_on(pair.a) and vip_on(pair.a, VIP2) and vip_on(pair.a, VIP6), mdi(150) + 10,
             what="our VIPs")
    time.sleep(2.0)
    ours.stop()
    cap.stop()
    out = subprocess.run(
        ["tshark", "-r", str(path), "-Y", "vrrp", "-T", "fields", "-e", "vrrp.version", "-e", "vrrp.virt_rtr_id",
         "-e", "vrrp.prio", "-e", "vrrp.checksum.status"],
        capture_output=True, text=True, check=True).stdout
    rows = [line.split("\t") for line in out.splitlines() if line.strip()]
    by_vrid: dict[str, list[list[str]]] = {}
    for row in rows:
        by_vrid.setdefault(row[1], []).append(row)
    assert set(by_vrid) == {"51", "52", "53"}, rows
    assert {r[0] for r in by_vrid["51"]} == {"2"} and {r[0] for r in by_vrid["52"] + by_vrid["53"]} == {"3"}
    assert all(r[3] == "1" for r in rows), f"checksum status not all good: {rows}"
    assert any(r[2] == "0" for r in by_vrid["51"]), "no priority-0 advert on stop"
    garp = subprocess.run(["tshark", "-r", str(path), "-Y", "arp.isgratuitous == 1", "-T", "fields", "-e",
                           "arp.src.proto_ipv4"], capture_output=True, text=True, check=True).stdout.split()
    assert {VIP, VIP2} <= set(garp)
    na = subprocess.run(["tshark", "-r", str(path), "-Y", "icmpv6.type == 136 && icmpv6.nd.na.flag.o == 1",
                         "-T", "fields", "-e", "icmpv6.nd.na.target_address", "-e", "icmpv6.checksum.status"],
                        capture_output=True, text=True, check=True).stdout.split("\n")
    na_rows = [line.split("\t") for line in na if line.strip()]
    assert na_rows and all(r[0] == VIP6 and r[1] == "1" for r in na_rows), na_rows


def test_reload_keeps_unchanged_instances(pair: Pair) -> None:
    instances = [InstanceConf("VI_1", 51, 150), InstanceConf("VI_2", 52, 150, vips=(f"{VIP2}/24",))]
    ours = start_lvsconsole(pair.a, conf(0, "a", instances=instances), pair.workdir, "a")
    wait_for(lambda: vip_on(pair.a) and vip_on(pair.a, VIP2), mdi(150) + 3, what="our VIPs")
    before = {s["name"]: s for s in ours.stats()}
    changed = [InstanceConf("VI_1", 51, 150), InstanceConf("VI_2", 52, 120, vips=(f"{VIP2}/24",))]
    ours.conf.write_text(conf(0, "a", instances=changed))
    mark = len(ours.log())
    assert ours.proc is not None
    ours.proc.send_signal(1)  # SIGHUP
    ours.wait_log("Reload finished: 1 instance(s) kept, 1 changed in place, 0 (re)started", 10, after=mark)
    after = {s["name"]: s for s in ours.stats()}
    assert after["VI_1"]["state"] == "MASTER"
    assert after["VI_1"]["in_state_for"] > before["VI_1"]["in_state_for"]
    assert after["VI_1"]["counters"]["advert_sent"] >= before["VI_1"]["counters"]["advert_sent"]
    assert "(VI_1)" not in ours.log()[mark:]
    assert after["VI_2"]["base_priority"] == 120
    assert after["VI_2"]["state"] == "MASTER"  # a new priority is applied in place, as keepalived does
    assert A6 and B6  # the lab's IPv6 addresses exist for the IPv6 tests


def test_track_script_weight_lowers_our_priority_and_keepalived_preempts(pair: Pair) -> None:
    flag = pair.workdir / "healthy"
    flag.write_text("1")
    script = (f'vrrp_script chk_flag {{\n    script "/usr/bin/test -e {flag}"\n    interval 0.2\n'
              "    weight -60\n    fall 2\n    rise 2\n}\n\n")
    ours, theirs = start_pair(pair, script + conf(150, "a", extra=["track_script {", "    chk_flag", "}"]),
                              conf(100, "b"))
    wait_for(lambda: vip_on(pair.a), mdi(150) + 3, what="VIP on our side")
    theirs.wait_log("Entering BACKUP STATE", 10)
    flag.unlink()  # the check fails: 150 - 60 = 90 < 100
    ours.wait_log("Changing effective priority from 150 to 90", 5)
    wait_for(lambda: vip_on(pair.b), mdi(100) + 2, what="keepalived preempting our lowered priority")
    wait_for(lambda: not vip_on(pair.a), 3, what="our VIP removed")
    assert ours.instance_stats()["priority"] == 90
    flag.write_text("1")  # healthy again: 150 > 100, we preempt back
    ours.wait_log("Changing effective priority from 90 to 150", 5)
    wait_for(lambda: vip_on(pair.a), mdi(150) + 2, what="our engine preempting again")
