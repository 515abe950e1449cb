"""keepalived.conf → the run-time settings of a VRRP instance (defaults, precedence, trackers)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest

from lvsconsole.config.build import load_text
from lvsconsole.config.model import Config
from lvsconsole.vrrp.machine import State
from lvsconsole.vrrp.packet import Auth, AuthType
from lvsconsole.vrrp.params import TrackSpec, instance_spec, pick_source, v2_interval, v3_interval


def config(text: str) -> Config:
    result = load_text(text)
    errors = [d for d in result.diagnostics if d.is_error]
    assert not errors, errors
    return result.config


def spec_of(text: str, name: str = "VI_1"):  # type: ignore[no-untyped-def]
    cfg = config(text)
    inst = cfg.instance(name)
    assert inst is not None
    return instance_spec(cfg, inst)


BASIC = """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.168.2.188
    }
}
"""


def test_defaults_follow_keepalived() -> None:
    spec = spec_of(BASIC)
    p = spec.params
    assert (spec.interface, spec.family, p.vrid, p.priority, p.version) == ("eth0", 4, 51, 100, 2)
    assert p.advert_int == 1.0 and p.initial_state is State.BACKUP and p.preempt
    assert (p.garp_master_delay, p.garp_master_repeat, p.garp_master_refresh, p.garp_master_refresh_repeat) == (
        5.0, 5, 0.0, 1)
    # keepalived: a MASTER hearing a lower priority re-sends the global garp_master set, then again after its delay
    assert (p.garp_lower_prio_delay, p.garp_lower_prio_repeat) == (5.0, 5)
    assert p.down_timer_adverts == 3
    assert p.auth == Auth()  # v2 without authentication expects none
    assert p.addresses == (IPv4Address("192.168.2.188"),)
    assert spec.mcast_group == IPv4Address("224.0.0.18") and not spec.unicast
    assert spec.tracks == (TrackSpec("interface", "eth0"),)  # its own interface, weight 0
    assert p.source is None and spec.configured_source is None
    assert not p.sync_group and spec.sync_group is None


def test_globals_apply_and_instances_override_them() -> None:
    spec = spec_of("""
global_defs {
    vrrp_garp_master_delay 2
    vrrp_garp_master_repeat 3
    vrrp_garp_master_refresh 60
    vrrp_version 3
    vrrp_mcast_group4 224.0.0.200
    vrrp_garp_interval 0.001
    vrrp_lower_prio_no_advert
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    advert_int 0.25
    garp_master_repeat 7
    down_timer_adverts 5
    virtual_ipaddress {
        10.0.0.1/24 dev eth1 label eth1:vip
    }
}
""")
    p = spec.params
    assert p.version == 3 and p.advert_int == 0.25 and p.auth is None
    assert (p.garp_master_delay, p.garp_master_repeat, p.garp_master_refresh) == (2.0, 7, 60.0)
    # the lower-priority defaults are the global garp_master values, not the instance's own
    assert (p.garp_lower_prio_delay, p.garp_lower_prio_repeat) == (2.0, 3)
    assert p.down_timer_adverts == 5 and p.lower_prio_no_advert
    assert spec.mcast_group == IPv4Address("224.0.0.200")
    assert spec.garp_interval == 0.001
    assert spec.vips[0].dev == "eth1" and spec.vips[0].label == "eth1:vip"
    # the VIP's interface is tracked too (weight 0)
    assert TrackSpec("interface", "eth1") in spec.tracks


def test_state_master_priority_255_and_auth_pass() -> None:
    spec = spec_of("""
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 9
    authentication {
        auth_type PASS
        auth_pass 123456789
    }
    virtual_ipaddress {
        10.1.1.1
    }
}
""")
    p = spec.params
    assert p.priority == 255 and p.owner and p.initial_state is State.MASTER
    assert p.auth is not None and p.auth.type is AuthType.PASS and p.auth.data == b"12345678"


def test_ipv6_family_unicast_and_source() -> None:
    spec = spec_of("""
vrrp_instance VI_6 {
    interface eth0
    virtual_router_id 60
    version 3
    unicast_src_ip fd00::1
    unicast_peer {
        fd00::2
    }
    virtual_ipaddress {
        fd00::100/64
    }
}
""", "VI_6")
    assert spec.family == 6 and spec.unicast and spec.params.unicast
    assert spec.unicast_peers == (IPv6Address("fd00::2"),)
    assert spec.configured_source == IPv6Address("fd00::1") == spec.params.source
    assert spec.mcast_group == IPv6Address("ff02::12")


def test_v2_interval_rounding_and_v3_centiseconds() -> None:
    assert v2_interval(1.4) == 1.0 and v2_interval(0.2) == 1.0 and v2_interval(300) == 255.0
    assert v3_interval(0.1) == 0.1 and v3_interval(0.001) == 0.01 and v3_interval(100) == 40.95


SCRIPTS = """
vrrp_script chk_up {
    script "/bin/true"
    weight 10
}
vrrp_script chk_down {
    script "/bin/false"
    weight -20
    rise 2
    fall 3
}
track_file tf {
    file "/tmp/lvsconsole-test-track"
    weight 2
}
"""


def test_trackers_resolve_weights_and_directions() -> None:
    spec = spec_of(SCRIPTS + """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    track_interface {
        eth1 weight -30
        eth2 weight 5 reverse
    }
    track_script {
        chk_up
        chk_down weight 15 reverse
    }
    track_file {
        tf
    }
    virtual_ipaddress {
        10.0.0.1
    }
}
""")
    tracks = set(spec.tracks)
    assert TrackSpec("interface", "eth0") in tracks
    assert TrackSpec("interface", "eth1", -30) in tracks
    assert TrackSpec("interface", "eth2", 5, True) in tracks
    assert TrackSpec("script", "chk_up", 10) in tracks
    assert TrackSpec("script", "chk_down", 15, True) in tracks
    assert TrackSpec("file", "tf", 2) in tracks


def test_sync_group_members_lose_their_weights_and_get_the_group_trackers() -> None:
    text = SCRIPTS + """
vrrp_sync_group G {
    group {
        VI_1
        VI_2
    }
    track_script {
        chk_down weight -5
    }
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    track_script {
        chk_up weight 10
    }
    virtual_ipaddress {
        10.0.0.1
    }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    virtual_ipaddress {
        10.0.0.2
    }
}
"""
    spec = spec_of(text)
    assert spec.sync_group == "G" and spec.params.sync_group
    assert TrackSpec("script", "chk_up", 0) in spec.tracks  # weight ignored: failure means FAULT
    assert TrackSpec("script", "chk_down", -5) in spec.tracks  # the group's own tracker keeps its weight
    spec2 = spec_of(text.replace("    track_script {\n        chk_down weight -5\n    }\n",
                                 "    sync_group_tracking_weight\n"))
    assert TrackSpec("script", "chk_up", 10) in spec2.tracks


@pytest.mark.parametrize(("addresses", "family", "expected"), [
    ([("10.0.0.100", 0, False), ("10.0.0.1", 0, False)], 4, "10.0.0.1"),  # the VIP is skipped
    ([("10.0.0.1", 0, True), ("10.0.0.2", 0, False)], 4, "10.0.0.2"),  # primary before secondary
    ([("fd00::1", 0, False), ("fe80::1", 253, False)], 6, "fe80::1"),  # IPv6: the link-local address
    ([("fd00::1", 0, False)], 6, None),
    ([], 4, None),
])
def test_pick_source(addresses: list[tuple[str, int, bool]], family: int, expected: str | None) -> None:
    found = [(ip_address(a), scope, sec) for a, scope, sec in addresses]
    picked = pick_source(found, family, exclude=[IPv4Address("10.0.0.100")])
    assert picked == (ip_address(expected) if expected else None)
