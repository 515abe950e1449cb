"""VIPs, virtual routes and static addresses/routes/rules deleted from outside, as keepalived handles them.

Our engine runs alone in node a (it becomes MASTER); the test deletes what it holds with ``ip`` and watches the
engine's log and the namespace: a tracked VIP or route deleted → BACKUP with priority 0 and a re-election one
Skew_Time later that puts it back; ``no_track`` → nothing until the next transition; a static object → added
back at once; a stop removes the static objects.
"""

from __future__ import annotations

import pytest

from lvsconsole.lab.netns import Namespace, wait_for
from lvsconsole.lab.vrrp import DirectorPair, InstanceConf, render_config, start_lvsconsole

pytestmark = pytest.mark.netns

VIP, VIP_UNTRACKED, STATIC = "10.9.0.100", "10.9.0.101", "10.9.5.1"
STATICS = """
static_ipaddress {
    10.9.5.1/24 dev eth0
}
static_routes {
    10.50.0.0/16 via 10.9.0.254 dev eth0
}
static_rules {
    from 10.9.5.1 table 200 priority 300
}
"""
ROUTES = ("virtual_routes {", "    10.20.0.0/16 via 10.9.0.254", "}")


def has_route(ns: Namespace, prefix: str) -> bool:
    return prefix in ns.ip("route", "show").stdout


def has_rule(ns: Namespace) -> bool:
    return f"300:\tfrom {STATIC} lookup 200" in ns.ip("rule", "show").stdout


def test_deleted_objects_are_put_back_the_keepalived_way(pair: DirectorPair) -> None:
    a = pair.a
    conf = render_config([InstanceConf(priority=150, version=3, advert_int=0.1,
                                       vips=(f"{VIP}/24", f"{VIP_UNTRACKED}/24 no_track"), extra=ROUTES)],
                         router_id="a") + STATICS
    ours = start_lvsconsole(a, conf, pair.workdir, "a")
    wait_for(lambda: a.has_address(STATIC, "eth0") and has_route(a, "10.50.0.0/16") and has_rule(a), 5,
             what="the static address, route and rule")
    mark = ours.wait_log("Entering MASTER STATE", 10)
    wait_for(lambda: a.has_address(VIP, "eth0") and has_route(a, "10.20.0.0/16"), 2, what="the VIP and route")

    # a tracked VIP: BACKUP (priority 0 sent), then MASTER again one Skew_Time later, the VIP back
    a.ip("addr", "del", f"{VIP}/24", "dev", "eth0")
    left = ours.wait_log("Entering BACKUP STATE (address 10.9.0.100/24 deleted)", 3, after=mark)
    mark = ours.wait_log("Entering MASTER STATE", 2, after=left)
    wait_for(lambda: a.has_address(VIP, "eth0"), 2, what="the VIP put back")

    # an untracked VIP: nothing happens until the next transition, which a tracked route's deletion brings
    a.ip("addr", "del", f"{VIP_UNTRACKED}/24", "dev", "eth0")
    a.ip("route", "del", "10.20.0.0/16", "via", "10.9.0.254", "proto", "keepalived")
    left = ours.wait_log("Entering BACKUP STATE (route 10.20.0.0/16 via 10.9.0.254 deleted)", 3, after=mark)
    assert "10.9.0.101/24 deleted" not in ours.log()
    ours.wait_log("Entering MASTER STATE", 2, after=left)
    wait_for(lambda: a.has_address(VIP_UNTRACKED, "eth0") and has_route(a, "10.20.0.0/16"), 2,
             what="the untracked VIP and the route back with the mastership")

    # static objects: added back at once, the instance untouched
    transitions = ours.log().count("Entering BACKUP STATE")
    a.ip("addr", "del", f"{STATIC}/24", "dev", "eth0")
    ours.wait_log(f"Reinstating static address {STATIC}/24 on eth0", 3)
    wait_for(lambda: a.has_address(STATIC, "eth0"), 2, what="the static address back")
    a.ip("route", "del", "10.50.0.0/16")
    wait_for(lambda: has_route(a, "10.50.0.0/16"), 3, what="the static route back")
    a.ip("rule", "del", "priority", "300")
    wait_for(lambda: has_rule(a), 3, what="the static rule back")
    assert ours.log().count("Entering BACKUP STATE") == transitions

    ours.stop()
    assert not a.has_address(STATIC, "eth0") and not has_route(a, "10.50.0.0/16") and not has_rule(a)
    assert not a.has_address(VIP, "eth0")


def test_a_static_address_in_a_track_group_makes_the_group_follow_its_interface(pair: DirectorPair) -> None:
    # keepalived's track_group on a static entry: the group's instances track the entry's interface (weight 0)
    a = pair.a
    pair.lab.veth(a, "trk0", "trk1")
    conf = render_config([InstanceConf(priority=150, version=3, advert_int=0.1)], router_id="a") + """
track_group TG1 {
    group {
        VI_1
    }
}
static_ipaddress {
    10.9.6.1/24 dev trk0 track_group TG1
}
"""
    ours = start_lvsconsole(a, conf, pair.workdir, "a")
    mark = ours.wait_log("Entering MASTER STATE", 10)
    wait_for(lambda: a.has_address(VIP, "eth0") and a.has_address("10.9.6.1", "trk0"), 2,
             what="the VIP and the static address")
    a.set_link("trk1", False)  # trk0 loses its carrier
    mark = ours.wait_log("Entering FAULT STATE", 3, after=mark)
    wait_for(lambda: not a.has_address(VIP, "eth0"), 2, what="the VIP dropped in FAULT")
    assert ours.instance_stats()["state"] == "FAULT"
    a.set_link("trk1", True)
    ours.wait_log("Entering MASTER STATE", 5, after=mark)
    wait_for(lambda: a.has_address(VIP, "eth0"), 2, what="the VIP back with the mastership")
    ours.stop()
