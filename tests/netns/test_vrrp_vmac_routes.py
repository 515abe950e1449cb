"""use_vmac, garp_extra_if and virtual_routes / virtual_rules on the wire, with Debian's keepalived as the peer.

Node a runs our engine, node b keepalived, node c is a client on the same bridge. Conditions are polled with
bounded timeouts; frames are read back from a tcpdump capture of the bridge.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lvsconsole.lab.netns import Namespace, Process, wait_for
from lvsconsole.lab.vrrp import A4, DirectorPair, InstanceConf, render_config, start_keepalived, start_lvsconsole

pytestmark = pytest.mark.netns

VIP = "10.9.0.100"
VIP_ETH1 = "10.9.0.110"
VMAC = "00:00:5e:00:01:33"  # VRID 51
CLIENT = "10.9.0.50"


def sysctl(ns: Namespace, interface: str, key: str) -> int:
    return int(ns.run(["cat", f"/proc/sys/net/ipv4/conf/{interface}/{key}"]).stdout.strip())


def link_exists(ns: Namespace, name: str) -> bool:
    return ns.ip("link", "show", name, check=False).returncode == 0


def resolved(ns: Namespace, address: str) -> str | None:
    """The neighbour entry of ``address`` once it has a MAC, else None."""
    entry = ns.ip("neigh", "show", address).stdout
    return entry if "lladdr" in entry else None


def frames(pcap: Path, capture: Process, expression: str) -> list[str]:
    """The capture's frames matching ``expression``, one line each with the link-level header (-e)."""
    if capture.running():
        capture.stop()
    out = subprocess.run(["tcpdump", "-r", str(pcap), "-e", "-n", "-tt", expression], capture_output=True,
                         text=True, timeout=30, check=False).stdout
    return [line for line in out.splitlines() if line.strip()]


def client(pair: DirectorPair) -> Namespace:
    node = pair.lab.node("c")
    pair.lab.link(node, pair.sw, "eth0", [f"{CLIENT}/24"])
    return node


def test_use_vmac_master_answers_arp_with_the_virtual_mac_and_keepalived_stays_backup(pair: DirectorPair) -> None:
    c = client(pair)
    ours_conf = render_config([InstanceConf(priority=150, vips=(f"{VIP}/24",), extra=("use_vmac",))], router_id="a")
    theirs_conf = render_config([InstanceConf(priority=100, vips=(f"{VIP}/24",))], router_id="b")
    ours = start_lvsconsole(pair.a, ours_conf, pair.workdir, "a")
    wait_for(lambda: pair.a.has_address(VIP, "vrrp.51"), 10, what="the VIP on vrrp.51")
    details = pair.a.ip("-d", "link", "show", "vrrp.51").stdout
    assert "macvlan mode private" in details and f"link/ether {VMAC}" in details
    assert not pair.a.has_address(VIP, "eth0"), "the VIP belongs on the VMAC, not on its parent"
    # keepalived's sysctls: the VMAC answers only for its own addresses, its parent never for the VIP
    assert (sysctl(pair.a, "vrrp.51", "arp_ignore"), sysctl(pair.a, "vrrp.51", "accept_local"),
            sysctl(pair.a, "vrrp.51", "rp_filter")) == (1, 1, 0)
    assert (sysctl(pair.a, "eth0", "arp_ignore"), sysctl(pair.a, "eth0", "arp_filter")) == (1, 1)

    capture, pcap = pair.capture("vmac")
    theirs = start_keepalived(pair.b, theirs_conf, pair.workdir, "b")
    theirs.wait_log("Entering BACKUP STATE", 10)
    # a datagram to the VIP makes the client ask for the VIP's MAC
    c.run([sys.executable, "-c", f"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', "
           f"('{VIP}', 9))"])
    wait_for(lambda: resolved(c, VIP), 3, what="the client's ARP entry for the VIP")
    time.sleep(3.5)  # several adverts: keepalived hears them from the VMAC and stays backup
    assert "Entering MASTER STATE" not in theirs.log()
    assert not pair.b.has_address(VIP, "eth0")

    answers = frames(pcap, capture, f"arp and arp[6:2] = 2 and src host {VIP}")
    assert answers and all(f"is-at {VMAC}" in line for line in answers), answers
    adverts = frames(pcap, capture, f"ip proto 112 and src host {A4}")
    assert len(adverts) >= 3
    assert all(line.split()[1] == VMAC for line in adverts), adverts[:3]

    ours.stop()
    wait_for(lambda: pair.b.has_address(VIP, "eth0"), 5, what="keepalived taking over after our stop")
    assert not link_exists(pair.a, "vrrp.51"), "the VMAC outlived the instance"
    assert (sysctl(pair.a, "eth0", "arp_ignore"), sysctl(pair.a, "eth0", "arp_filter")) == (0, 0)


def test_garp_extra_if_all_refreshes_the_vmac_and_the_other_interface(pair: DirectorPair) -> None:
    port = pair.lab.link(pair.a, pair.sw, "eth1", ["10.9.0.11/24"])
    assert port
    mac_eth1 = re.search(r"link/ether (\S+)", pair.a.ip("link", "show", "eth1").stdout)
    assert mac_eth1 is not None
    conf = render_config([InstanceConf(priority=150, vips=(f"{VIP}/24", f"{VIP_ETH1}/24 dev eth1"),
                                       extra=("use_vmac", "garp_extra_if all 1"))],
                         router_id="a", global_lines=("vrrp_garp_master_delay 0",))
    ours = start_lvsconsole(pair.a, conf, pair.workdir, "a")
    wait_for(lambda: pair.a.has_address(VIP, "vrrp.51"), 10, what="the VIP on vrrp.51")
    ours.wait_log("Entering MASTER STATE", 5)
    capture, pcap = pair.capture("garp")
    time.sleep(3.6)  # the takeover burst is over: only garp_extra_if sends now, once a second
    arps = frames(pcap, capture, "arp")
    garps = [(line.split()[1], re.search(r"who-has (\S+) .*tell (\S+),", line)) for line in arps]
    sent = [(mac, found.group(1)) for mac, found in garps if found is not None and found.group(1) == found.group(2)]
    assert 3 <= sent.count((VMAC, VIP)) <= 5, arps
    assert 3 <= sent.count((mac_eth1.group(1), VIP_ETH1)) <= 5, arps
    assert len(sent) == sent.count((VMAC, VIP)) + sent.count((mac_eth1.group(1), VIP_ETH1)), arps
    assert "Sending gratuitous ARP on eth1 for 10.9.0.110" in ours.log()


ROUTED = ("virtual_routes {", "    10.20.0.0/16 via 10.9.0.254", "    blackhole 10.30.0.0/16",
          "    10.40.0.0/16 via 10.9.0.254 table 100", "}",
          "virtual_rules {", f"    from {VIP} table 100 priority 100", "}")


def routes_present(ns: Namespace) -> tuple[bool, bool, bool, bool]:
    main = ns.ip("route", "show", "proto", "keepalived").stdout
    table = ns.ip("route", "show", "table", "100", check=False).stdout
    rules = ns.ip("rule", "show").stdout
    return ("10.20.0.0/16 via 10.9.0.254" in main, "blackhole 10.30.0.0/16" in main,
            "10.40.0.0/16 via 10.9.0.254" in table, f"from {VIP} lookup 100" in rules)


def test_virtual_routes_and_rules_exist_only_while_master(pair: DirectorPair) -> None:
    ours_conf = render_config([InstanceConf(priority=150, vips=(f"{VIP}/24",), extra=ROUTED)], router_id="a")
    ours = start_lvsconsole(pair.a, ours_conf, pair.workdir, "a")
    ours.wait_log("Entering BACKUP STATE", 5)
    assert routes_present(pair.a) == (False, False, False, False), "routes before MASTER"
    wait_for(lambda: pair.a.has_address(VIP, "eth0"), 10, what="our VIP")
    wait_for(lambda: routes_present(pair.a) == (True, True, True, True), 2, what="the virtual routes and rule")

    # keepalived with a higher priority preempts us: the routes and the rule go with the mastership
    theirs_conf = render_config([InstanceConf(priority=200, vips=(f"{VIP}/24",))], router_id="b")
    theirs = start_keepalived(pair.b, theirs_conf, pair.workdir, "b")
    theirs.wait_log("Entering MASTER STATE", 10)
    wait_for(lambda: not pair.a.has_address(VIP, "eth0"), 5, what="our VIP gone")
    assert routes_present(pair.a) == (False, False, False, False), "routes outlived MASTER"

    theirs.stop()
    wait_for(lambda: routes_present(pair.a) == (True, True, True, True), 5, what="the routes back with MASTER")
    ours.stop()
    assert routes_present(pair.a) == (False, False, False, False), "routes left behind by a stop"


def test_reload_of_only_the_routes_keeps_master_and_swaps_them(pair: DirectorPair) -> None:
    conf = render_config([InstanceConf(priority=150, vips=(f"{VIP}/24",), extra=ROUTED)], router_id="a")
    ours = start_lvsconsole(pair.a, conf, pair.workdir, "a")
    wait_for(lambda: routes_present(pair.a) == (True, True, True, True), 10, what="the virtual routes")
    changed = conf.replace("10.20.0.0/16 via 10.9.0.254", "10.21.0.0/16 via 10.9.0.254")
    assert changed != conf
    ours.conf.write_text(changed)
    mark = len(ours.log())
    assert ours.proc is not None
    ours.proc.send_signal(1)  # SIGHUP: reload
    ours.wait_log("Reload finished", 10, after=mark)
    wait_for(lambda: "10.21.0.0/16" in pair.a.ip("route", "show", "proto", "keepalived").stdout, 3,
             what="the new route")
    assert "10.20.0.0/16" not in pair.a.ip("route", "show", "proto", "keepalived").stdout
    assert routes_present(pair.a)[1:] == (True, True, True)
    assert "Entering MASTER STATE" not in ours.log()[mark:], "the reload restarted the instance"
    assert pair.a.has_address(VIP, "eth0")


def test_use_vmac_tracks_the_parent_link_and_the_peer_takes_over(pair: DirectorPair) -> None:
    ours_conf = render_config([InstanceConf(priority=150, vips=(f"{VIP}/24",), extra=("use_vmac",))], router_id="a")
    theirs_conf = render_config([InstanceConf(priority=100, vips=(f"{VIP}/24",))], router_id="b")
    ours = start_lvsconsole(pair.a, ours_conf, pair.workdir, "a")
    wait_for(lambda: pair.a.has_address(VIP, "vrrp.51"), 10, what="the VIP on vrrp.51")
    theirs = start_keepalived(pair.b, theirs_conf, pair.workdir, "b")
    theirs.wait_log("Entering BACKUP STATE", 10)
    mark = len(ours.log())
    pair.a.set_link("eth0", False)  # the parent goes: the VMAC with it, and the instance to FAULT
    ours.wait_log("Entering FAULT STATE", 5, after=mark)
    wait_for(lambda: pair.b.has_address(VIP, "eth0"), 6, what="keepalived taking over")
    assert not pair.a.has_address(VIP, "vrrp.51")
    pair.a.set_link("eth0", True)
    ours.wait_log("Entering", 5, after=ours.log().index("Entering FAULT STATE", mark) + 1)
    wait_for(lambda: pair.a.has_address(VIP, "vrrp.51"), 10, what="the VIP back on vrrp.51 (preempt)")
    wait_for(lambda: not pair.b.has_address(VIP, "eth0"), 5, what="keepalived back to backup")


def test_ipv6_use_vmac_with_keepalived_as_backup(pair: DirectorPair) -> None:
    vip6 = "fd00:9::100"
    ours_conf = render_config([InstanceConf(priority=150, version=3, vips=(f"{vip6}/64",), extra=("use_vmac",))],
                              router_id="a")
    theirs_conf = render_config([InstanceConf(priority=100, version=3, vips=(f"{vip6}/64",))], router_id="b")
    ours = start_lvsconsole(pair.a, ours_conf, pair.workdir, "a")
    wait_for(lambda: pair.a.has_address(vip6, "vrrp6.51"), 10, what="the IPv6 VIP on vrrp6.51")
    assert "link/ether 00:00:5e:00:02:33" in pair.a.ip("link", "show", "vrrp6.51").stdout
    # the virtual MAC is the same on every router: the VMAC carries its parent's link-local, not one made from it
    parent_ll = [a for a in pair.a.addresses("eth0") if a.startswith("fe80:")]
    assert parent_ll and pair.a.has_address(parent_ll[0], "vrrp6.51")
    assert not any(a == "fe80::200:5eff:fe00:233" for a in pair.a.addresses("vrrp6.51"))
    theirs = start_keepalived(pair.b, theirs_conf, pair.workdir, "b")
    theirs.wait_log("Entering BACKUP STATE", 10)
    time.sleep(3.5)
    assert "Entering MASTER STATE" not in theirs.log()
    ours.stop()
    wait_for(lambda: pair.b.has_address(vip6, "eth0"), 5, what="keepalived taking over the IPv6 VIP")
    assert not link_exists(pair.a, "vrrp6.51")


def test_use_vmac_addr_puts_addresses_on_other_interfaces_on_vmacs_of_their_own(pair: DirectorPair) -> None:
    pair.lab.link(pair.a, pair.sw, "eth1", ["10.9.0.11/24"])
    conf = render_config([InstanceConf(priority=150, version=3, advert_int=0.1,
                                       vips=(f"{VIP}/24 dev eth0", f"{VIP_ETH1}/24 dev eth1"),
                                       extra=("use_vmac", "use_vmac_addr"))], router_id="a")
    ours = start_lvsconsole(pair.a, conf, pair.workdir, "a")
    wait_for(lambda: pair.a.has_address(VIP, "vrrp.51") and pair.a.has_address(VIP_ETH1, "vrrp1.51"), 10,
             what="the VIPs on their VMACs")
    details = pair.a.ip("-d", "link", "show", "vrrp1.51").stdout
    assert "vrrp1.51@eth1" in details and "macvlan mode private" in details and f"link/ether {VMAC}" in details
    assert not pair.a.has_address(VIP, "eth0") and not pair.a.has_address(VIP_ETH1, "eth1")
    assert sysctl(pair.a, "vrrp1.51", "arp_ignore") == 1 and sysctl(pair.a, "eth1", "arp_filter") == 1
    ours.stop()
    assert not link_exists(pair.a, "vrrp.51") and not link_exists(pair.a, "vrrp1.51"), "a VMAC outlived the instance"
    assert sysctl(pair.a, "eth1", "arp_filter") == 0
