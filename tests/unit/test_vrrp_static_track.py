"""track_group on static entries (vrrp/static_track.py): the instances of the group follow, with weight 0, the
interface of each static address (its dev or default_interface), route (its dev) and rule (its iif) naming the
group, as keepalived's vrrp_data.c sets them up; no_track entries and groups that do not exist track nothing."""

from __future__ import annotations

from lvsconsole.config.build import load_text
from lvsconsole.config.validate import validate
from lvsconsole.vrrp.params import instance_spec
from lvsconsole.vrrp.static_track import static_tracked_interfaces, track_groups, tracked_entries

CONF = """\
global_defs {
    default_interface eth0
}
track_group TG1 {
    group {
        VI_1
        VI_2
    }
}
track_group TG2 { group { VI_2 } }
static_ipaddress {
    192.0.2.10/24 dev eth1 track_group TG1
    192.0.2.11/24 track_group TG2
    192.0.2.12/24 dev eth5 track_group TG1 no_track
    192.0.2.13/24 dev eth6
    192.0.2.14/24 dev eth7 track_group NOPE
}
static_routes {
    198.51.100.0/24 via 192.0.2.1 dev eth2 track_group TG1
    198.51.101.0/24 via 192.0.2.1 track_group TG1
    198.51.102.0/24 dev eth1 track_group TG2
}
static_rules {
    from 192.0.2.10 iif eth3 table 200 preference 10 track_group TG2
    from 192.0.2.11 table 200 preference 11 track_group TG1
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress { 10.9.0.100/24 }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    virtual_ipaddress { 10.9.0.101/24 }
}
vrrp_instance VI_3 {
    interface eth0
    virtual_router_id 53
    virtual_ipaddress { 10.9.0.102/24 }
}
"""


def test_track_groups_list_their_instances_in_order() -> None:
    assert track_groups(load_text(CONF).config) == {"TG1": ("VI_1", "VI_2"), "TG2": ("VI_2",)}


def test_each_tracking_entry_gives_its_interface() -> None:
    assert tracked_entries(load_text(CONF).config) == [
        ("TG1", "eth1"), ("TG2", "eth0"), ("NOPE", "eth7"),  # addresses: dev, else default_interface
        ("TG1", "eth2"), ("TG2", "eth1"),  # routes with a dev (the one without has no interface to follow)
        ("TG2", "eth3"),  # rules with an iif
    ]


def test_instances_follow_the_interfaces_of_their_groups_entries() -> None:
    config = load_text(CONF).config
    assert static_tracked_interfaces(config) == {"VI_1": ("eth1", "eth2"), "VI_2": ("eth1", "eth0", "eth2", "eth3")}
    tracks = {inst.name: [(t.kind, t.name, t.weight) for t in instance_spec(config, inst).tracks]
              for inst in config.instances}
    # eth0 is the instances' own interface, tracked already: not twice
    assert tracks["VI_1"] == [("interface", "eth0", 0), ("interface", "eth1", 0), ("interface", "eth2", 0)]
    assert tracks["VI_2"] == [("interface", "eth0", 0), ("interface", "eth1", 0), ("interface", "eth2", 0),
                              ("interface", "eth3", 0)]
    assert tracks["VI_3"] == [("interface", "eth0", 0)]


def test_a_member_that_is_no_instance_is_reported_as_keepalived_does() -> None:
    config = load_text(CONF.replace("        VI_2\n    }", "        VI_9\n    }")).config
    messages = [d.message for d in validate(config)]
    assert "Virtual router VI_9 specified in track group TG1 doesn't exist - ignoring" in messages
    assert "VI_9" not in static_tracked_interfaces(config)
    assert not [m for m in validate(load_text(CONF).config) if "doesn't exist" in m.message]
