"""virtual_routes / virtual_rules: parsing with keepalived's syntax, and the rtnetlink requests pyroute2 encodes."""

from __future__ import annotations

from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest
from pyroute2.netlink.rtnl.fibmsg import fibmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from lvsconsole.config.build import load_text
from lvsconsole.config.validate import validate
from lvsconsole.vrrp.params import instance_spec
from lvsconsole.vrrp.routes import (
    RTM_DELROUTE,
    RTM_NEWROUTE,
    RTM_NEWRULE,
    RTPROT_KEEPALIVED,
    RouteSyntaxError,
    encode_route,
    encode_rule,
    parse_route,
    parse_routes,
    parse_rule,
    parse_rules,
    route_tables,
)


def words(line: str) -> list[str]:
    """A config line as the builder hands it over: its words."""
    return line.split()

def test_route_with_every_common_option() -> None:
    route = parse_route(words("src 10.9.0.100 to 10.20.0.0/16 via 10.9.0.254 dev eth0 table 100 metric 7"))
    assert route.dst == ip_network("10.20.0.0/16")
    assert route.src == ip_address("10.9.0.100")
    assert route.via == ip_address("10.9.0.254")
    assert (route.dev, route.table, route.metric) == ("eth0", 100, 7)
    assert route.protocol == RTPROT_KEEPALIVED
    assert route.effective_scope == 0  # through a gateway: universe


def test_route_defaults_follow_iproute2() -> None:
    connected = parse_route(words("192.168.111.0/24 dev eth2 no_track"))
    assert connected.effective_scope == 253 and connected.no_track and connected.table == 254
    hole = parse_route(words("blackhole 192.168.114.0/24"))
    assert hole.kind == "blackhole" and hole.effective_scope == 0
    default = parse_route(words("default gw 192.168.0.1 table main"))
    assert default.dst == ip_network("0.0.0.0/0") and default.table == 254
    v6 = parse_route(words("2001:db8:1::/48 via fe80::1 dev eth0"))
    assert v6.family == 6 and v6.via == ip_address("fe80::1")


@pytest.mark.parametrize(("line", "message"), [
    ("10.1.0.0/16 bogus 1", "unknown virtual route option 'bogus'"),
    ("via 10.0.0.1", "no destination"),
    ("10.1.0.0/16 via", "'via' needs a value"),
    ("10.1.0.0/16 via fe80::1", "not of the destination's address family"),
    ("blackhole 10.1.0.0/16 via 10.0.0.1", "cannot have a gateway"),
    ("10.1.0.0/16 table nosuchtable", "unknown routing table 'nosuchtable'"),
    ("10.1.0.0/16 metric -3", "metric -3 is out of range"),
])
def test_route_errors_name_the_problem(line: str, message: str) -> None:
    with pytest.raises(RouteSyntaxError, match=message):
        parse_route(line.split())


def test_rules() -> None:
    rule = parse_rule(words("from 192.168.2.0/24 table 1 priority 100"))
    assert rule.src == ip_network("192.168.2.0/24") and rule.table == 1 and rule.priority == 100
    assert rule.family == 4 and rule.action == "table"
    marked = parse_rule(words("not fwmark 24/0xff iif eth0 goto 40"), default_family=6)
    assert marked.invert and (marked.fwmark, marked.fwmask) == (24, 0xFF) and marked.action == "goto"
    assert marked.family == 6 and marked.iif == "eth0"
    with pytest.raises(RouteSyntaxError, match="needs a table"):
        parse_rule(words("from 10.0.0.0/8"))
    with pytest.raises(RouteSyntaxError, match="different address families"):
        parse_rule(words("from 10.0.0.0/8 to fd00::/8 table 5"))


def test_route_tables_read_iproute2_names(tmp_path: Path) -> None:
    path = tmp_path / "rt_tables"
    path.write_text("255 local\n100 vips  # ours\n#200 off\n")
    tables = route_tables(path)
    assert tables["vips"] == 100 and tables["main"] == 254 and "off" not in tables
    assert parse_route(words("10.0.0.0/8 dev eth0 table vips"), tables=tables).table == 100


def _decoded_route(data: bytes) -> rtmsg:
    msg = rtmsg(data)
    msg.decode()
    return msg


def test_route_request_carries_what_was_configured() -> None:
    route = parse_route(words("src 10.9.0.100 10.20.0.0/16 via 10.9.0.254 table 1000 metric 7"))
    msg = _decoded_route(encode_route("add", parse_route([*words(route.text), "dev", "eth0"]), {"eth0": 3}, seq=9))
    assert msg["header"]["type"] == RTM_NEWROUTE and msg["header"]["sequence_number"] == 9
    assert msg["dst_len"] == 16 and msg["proto"] == RTPROT_KEEPALIVED and msg["type"] == 1
    assert msg.get_attr("RTA_DST") == "10.20.0.0" and msg.get_attr("RTA_GATEWAY") == "10.9.0.254"
    assert msg.get_attr("RTA_PREFSRC") == "10.9.0.100" and msg.get_attr("RTA_OIF") == 3
    assert msg.get_attr("RTA_TABLE") == 1000 and msg.get_attr("RTA_PRIORITY") == 7
    delete = _decoded_route(encode_route("del", parse_route(["blackhole", "10.30.0.0/16"]), {}))
    assert delete["header"]["type"] == RTM_DELROUTE and delete["type"] == 6
    assert delete.get_attr("RTA_OIF") is None and delete.get_attr("RTA_GATEWAY") is None


def test_multipath_routes_with_nexthop_and_keepalived_s_old_or() -> None:
    route = parse_route(words("10.50.0.0/16 nexthop via 10.9.0.253 dev eth0 weight 2 nexthop via 10.9.1.253 dev eth1"))
    assert [(str(h.via), h.dev, h.weight) for h in route.nexthops] == [("10.9.0.253", "eth0", 2),
                                                                       ("10.9.1.253", "eth1", 1)]
    assert route.devices == ("eth0", "eth1")
    msg = _decoded_route(encode_route("add", route, {"eth0": 2, "eth1": 5}))
    paths = msg.get_attr("RTA_MULTIPATH")
    assert [(p["oif"], p["hops"], dict(p["attrs"])["RTA_GATEWAY"]) for p in paths] == [
        (2, 1, "10.9.0.253"), (5, 0, "10.9.1.253")]
    assert msg.get_attr("RTA_OIF") is None and msg.get_attr("RTA_GATEWAY") is None
    old = parse_route(words("192.168.113.0/24 via 192.168.200.254 or 192.168.100.254 dev eth1"))
    assert old.via is None and [(str(h.via), h.dev) for h in old.nexthops] == [
        ("192.168.200.254", "eth1"), ("192.168.100.254", "eth1")]


def test_bad_lines_are_skipped_and_rules_get_keepalived_s_preferences() -> None:
    routes, problems = parse_routes([["10.1.0.0/16", "dev", "eth0"], ["10.2.0.0/16", "bogus"]], 4)
    assert [str(r.dst) for r in routes] == ["10.1.0.0/16"]
    assert problems == ["unknown virtual route option 'bogus' in '10.2.0.0/16 bogus'"]
    lines = [["from", "10.0.0.0/8", "table", "5"], ["to", "10.1.0.0/16", "table", "6", "pref", "7"],
             ["to", "10.2.0.", "table", "6"], ["from", "10.3.0.0/16", "table", "8"]]
    counters = {4: 16383, 6: 16384}  # one IPv4 rule without a preference came before
    rules, problems = parse_rules(lines, 4, counters=counters)
    assert [r.priority for r in rules] == [16383, 7, 16382] and len(problems) == 1
    assert counters == {4: 16381, 6: 16384}


def test_rule_request_carries_what_was_configured() -> None:
    rule = parse_rule(words("from 10.9.0.0/24 fwmark 3/0xff table 100 pref 50"))
    msg = fibmsg(encode_rule("add", rule))
    msg.decode()
    assert msg["header"]["type"] == RTM_NEWRULE and msg["src_len"] == 24 and msg["action"] == 1
    assert msg.get_attr("FRA_SRC") == "10.9.0.0" and msg.get_attr("FRA_TABLE") == 100
    assert msg.get_attr("FRA_PRIORITY") == 50 and msg.get_attr("FRA_FWMARK") == 3
    assert msg.get_attr("FRA_FWMASK") == 0xFF


CONF = """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        10.9.0.100/24
    }
    virtual_routes {
        10.20.0.0/16 via 10.9.0.254
        blackhole 10.30.0.0/16 no_track
    }
    virtual_rules {
        from 10.9.0.100 table 100
    }
}
"""


def test_instance_spec_carries_parsed_routes_and_rules() -> None:
    result = load_text(CONF)
    spec = instance_spec(result.config, result.config.instances[0])
    assert [r.dst for r in spec.routes] == [ip_network("10.20.0.0/16"), ip_network("10.30.0.0/16")]
    assert spec.routes[1].no_track and spec.rules[0].table == 100 and spec.rules[0].priority == 16384


def test_validation_points_at_the_bad_line_keepalived_skips() -> None:
    result = load_text(CONF.replace("blackhole 10.30.0.0/16 no_track", "10.30.0.0/16 hops 3"), filename="k.conf")
    found = [d for d in validate(result.config, check_host=False) if "virtual_routes" in d.message]
    assert len(found) == 1 and not found[0].is_error
    assert "unknown virtual route option 'hops'" in found[0].message and "skipped" in found[0].message
    assert found[0].location is not None and found[0].location.line == 10
    spec = instance_spec(result.config, result.config.instances[0])
    assert [str(r.dst) for r in spec.routes] == ["10.20.0.0/16"]
