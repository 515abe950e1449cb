"""Deletions from outside: what keepalived does when a VIP, route or rule it holds goes (vrrp/owned.py), the
static set (vrrp/statics.py), and the machine's leave_master."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from ipaddress import ip_address, ip_interface

import pytest
from pyroute2.netlink.rtnl.fibmsg import fibmsg
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from lvsconsole.config.build import load_text
from lvsconsole.config.model import Config
from lvsconsole.vrrp.addresses import AddressManager
from lvsconsole.vrrp.events import InstanceStateChanged
from lvsconsole.vrrp.machine import Params, RemoveAddresses, SendAdvert, State, StateChanged, VrrpMachine
from lvsconsole.vrrp.owned import (
    AddressGone,
    InstanceHit,
    RouteGone,
    RuleGone,
    StaticHit,
    address_gone,
    owner_of,
    route_gone,
    rule_gone,
)
from lvsconsole.vrrp.params import InstanceSpec, instance_spec
from lvsconsole.vrrp.routes import STANDARD_TABLES, RouteInstaller, encode_route, encode_rule
from lvsconsole.vrrp.service import VrrpService
from lvsconsole.vrrp.statics import StaticInstaller, StaticSet, static_set

CONF = """
static_ipaddress {
    192.0.2.10/24 dev eth1 scope link
    192.0.2.11/24 dev eth1 no_track
}
static_routes {
    198.51.100.0/24 via 192.0.2.1 dev eth1
}
static_rules {
    from 192.0.2.10 table 200
    to 192.0.2.99 table 200 no_track
    from 2001:db8::/64 table 200
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        10.9.0.100/24
        10.9.0.101/24 no_track
        10.9.1.100/24 dev eth1
    }
    virtual_routes {
        10.20.0.0/16 via 10.9.0.254
        10.21.0.0/16 via 10.9.0.254 no_track
        10.22.0.0/16 dev eth0 metric 7
        10.23.0.0/16 via 10.9.0.254 protocol static
    }
    virtual_rules {
        from 10.9.0.100 table 100
        from 10.9.0.101 table 100 no_track
        fwmark 5/0xff table 101 priority 50
    }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    virtual_ipaddress { 10.9.0.200/24 }
    virtual_rules { from 10.9.0.200 table 100 }
}
"""


@pytest.fixture(scope="module")
def config() -> Config:
    result = load_text(CONF)
    assert result.ok, result.diagnostics
    return result.config


@pytest.fixture(scope="module")
def spec(config: Config) -> InstanceSpec:
    inst = config.instance("VI_1")
    assert inst is not None
    return instance_spec(config, inst)


@pytest.fixture(scope="module")
def statics(config: Config) -> StaticSet:
    return static_set(config, dict(STANDARD_TABLES))


def addr(text: str, interface: str = "eth0") -> AddressGone:
    iface = ip_interface(text)
    return AddressGone(iface.ip, iface.network.prefixlen, interface)


# -------------------------------------------------------------------------------------------- addresses


def test_a_deleted_vip_of_a_master_makes_it_leave_master(spec: InstanceSpec, statics: StaticSet) -> None:
    assert owner_of(addr("10.9.0.100/24"), [spec], statics.view) == InstanceHit("VI_1", "address 10.9.0.100/24")
    assert owner_of(addr("10.9.1.100/24", "eth1"), [spec], statics.view) == InstanceHit("VI_1",
                                                                                        "address 10.9.1.100/24")


def test_a_vip_matches_only_on_its_interface_with_its_prefix(spec: InstanceSpec, statics: StaticSet) -> None:
    assert owner_of(addr("10.9.0.100/24", "eth1"), [spec], statics.view) is None
    assert owner_of(addr("10.9.0.100/32"), [spec], statics.view) is None
    assert owner_of(addr("10.9.0.100/24"), [], statics.view) is None  # not MASTER: it does not hold it


def test_no_track_vips_and_static_addresses(spec: InstanceSpec, statics: StaticSet) -> None:
    assert owner_of(addr("10.9.0.101/24"), [spec], statics.view) is None
    hit = owner_of(addr("192.0.2.10/24", "eth1"), [spec], statics.view)
    assert isinstance(hit, StaticHit) and str(hit.obj.address) == "192.0.2.10/24"  # type: ignore[union-attr]
    assert owner_of(addr("192.0.2.11/24", "eth1"), [spec], statics.view) is None


def test_address_gone_decodes_a_real_message() -> None:
    msg = ifaddrmsg()
    msg["family"], msg["prefixlen"], msg["index"] = 2, 24, 7
    msg["attrs"] = [("IFA_LOCAL", "10.9.0.100"), ("IFA_ADDRESS", "10.9.0.100")]
    msg.encode()
    decoded = ifaddrmsg(msg.data)
    decoded.decode()
    names: dict[int, str] = {7: "eth0"}
    assert address_gone(decoded, names.get) == addr("10.9.0.100/24")
    names.clear()  # the interface went with it
    assert address_gone(decoded, names.get) is None


# -------------------------------------------------------------------------------------------- routes


def decoded_route(data: bytes) -> RouteGone:
    msg = rtmsg(data)
    msg.decode()
    gone = route_gone(msg, {3: "eth0", 4: "eth1"}.get)
    assert gone is not None
    return gone


def test_the_kernel_s_view_of_our_own_route_matches_it(spec: InstanceSpec, statics: StaticSet) -> None:
    for route in spec.routes[:3]:
        gone = decoded_route(encode_route("del", route, {"eth0": 3}))
        hit = owner_of(gone, [spec], statics.view)
        assert hit == (None if route.no_track else InstanceHit("VI_1", f"route {route.text}")), route.text


def test_a_route_not_of_protocol_keepalived_is_not_watched(spec: InstanceSpec, statics: StaticSet) -> None:
    route = spec.routes[3]
    assert route.protocol == 4
    assert owner_of(decoded_route(encode_route("del", route, {})), [spec], statics.view) is None


def test_a_route_differing_in_metric_or_interface_is_not_ours(spec: InstanceSpec, statics: StaticSet) -> None:
    gone = decoded_route(encode_route("del", spec.routes[2], {"eth0": 3}))
    assert owner_of(RouteGone(gone.dst, gone.table, 8, 0, "eth0"), [spec], statics.view) is None
    assert owner_of(RouteGone(gone.dst, gone.table, 7, 0, "eth1"), [spec], statics.view) is None


def test_a_static_route_is_reinstated(spec: InstanceSpec, statics: StaticSet) -> None:
    route = statics.routes[0]
    hit = owner_of(decoded_route(encode_route("del", route, {"eth1": 4})), [spec], statics.view)
    assert hit == StaticHit(route)


# -------------------------------------------------------------------------------------------- rules


def decoded_rule(data: bytes) -> RuleGone:
    msg = fibmsg(data)
    msg.decode()
    gone = rule_gone(msg)
    assert gone is not None
    return gone


def test_rules_match_as_keepalived_compares_them(spec: InstanceSpec, statics: StaticSet) -> None:
    tracked, untracked, marked = spec.rules
    assert owner_of(decoded_rule(encode_rule("add", tracked)), [spec], statics.view) == InstanceHit(
        "VI_1", f"rule {tracked.text}")
    assert owner_of(decoded_rule(encode_rule("add", untracked)), [spec], statics.view) is None
    assert owner_of(decoded_rule(encode_rule("add", marked)), [spec], statics.view) == InstanceHit(
        "VI_1", f"rule {marked.text}")


def test_a_rule_of_another_protocol_or_preference_is_not_ours(spec: InstanceSpec, statics: StaticSet) -> None:
    gone = decoded_rule(encode_rule("add", spec.rules[0]))
    assert owner_of(replace(gone, protocol=4), [spec], statics.view) is None
    assert owner_of(replace(gone, priority=(gone.priority or 0) + 1), [spec], statics.view) is None


def test_static_rules_are_reinstated_unless_no_track(spec: InstanceSpec, statics: StaticSet) -> None:
    tracked, untracked, _ = statics.rules
    assert owner_of(decoded_rule(encode_rule("add", tracked)), [spec], statics.view) == StaticHit(tracked)
    assert owner_of(decoded_rule(encode_rule("add", untracked)), [spec], statics.view) is None


# -------------------------------------------------------------------------------------------- numbering, statics


def test_rule_preferences_count_down_per_family_static_rules_first(config: Config, spec: InstanceSpec,
                                                                   statics: StaticSet) -> None:
    assert [r.priority for r in statics.rules] == [16384, 16383, 16384]  # the IPv6 one has its own count
    assert [r.family for r in statics.rules] == [4, 4, 6]
    assert [r.priority for r in spec.rules] == [16382, 16381, 50]
    vi2 = config.instance("VI_2")
    assert vi2 is not None
    assert [r.priority for r in instance_spec(config, vi2).rules] == [16380]


def test_static_addresses_take_their_options(statics: StaticSet) -> None:
    first, second = statics.addresses
    assert (str(first.address), first.dev, first.scope, first.flags) == ("192.0.2.10/24", "eth1", "link", ())
    assert second.flags == ("no_track",)
    assert not statics.problems


def test_a_static_address_without_an_interface_is_skipped_with_a_reason() -> None:
    config = load_text("static_ipaddress {\n 192.0.2.5/24\n 192.0.2.6/24 dev eth0 colour red\n}\n").config
    found = static_set(config, dict(STANDARD_TABLES))
    assert found.addresses == ()
    assert found.problems == ("static_ipaddress 192.0.2.5/24: no dev given and no default_interface",
                              "static_ipaddress 192.0.2.6/24: unknown static address option 'colour'")
    with_default = load_text("global_defs {\n default_interface eth3\n}\nstatic_ipaddress {\n 192.0.2.5/24\n}\n")
    assert [a.dev for a in static_set(with_default.config, dict(STANDARD_TABLES)).addresses] == ["eth3"]


def test_validate_names_rules_without_a_preference() -> None:
    result = load_text(CONF, filename="k.conf")
    found = [str(d) for d in result.diagnostics if "has no preference" in d.message]
    assert found[0] == ("k.conf:10:5: warning: static_rules: rule 'from 192.0.2.10 table 200' has no preference - "
                        "setting it to 16384, as keepalived does; give one")
    assert found[-1] == ("k.conf:38:21: warning: (VI_2) virtual_rules: rule 'from 10.9.0.200 table 100' has no "
                         "preference - setting it to 16380, as keepalived does; give one")
    assert len(found) == 6


# -------------------------------------------------------------------------------------------- the machine


def test_leave_master_sends_priority_0_and_re_elects_after_skew_time() -> None:
    params = Params(name="VI_1", vrid=51, priority=100, addresses=(ip_address("10.9.0.100"),), version=3,
                    family=4, advert_int=1.0, source=ip_address("10.9.0.1"))
    machine = VrrpMachine(params, 0.0)
    machine.start(0.0)
    machine.handle_timer(machine.next_timer() or 0.0)
    assert machine.state is State.MASTER
    actions = machine.leave_master(10.0, "address 10.9.0.100/24 deleted")
    assert isinstance(actions[0], SendAdvert) and actions[0].advert.priority == 0
    assert any(isinstance(a, RemoveAddresses) for a in actions)
    assert actions[-1] == StateChanged(State.MASTER, State.BACKUP, "address 10.9.0.100/24 deleted")
    assert machine.counters.release_master == 1 and machine.counters.pri_zero_sent == 1
    assert machine.next_timer() == pytest.approx(10.0 + machine.skew_time)
    back = machine.handle_timer(10.0 + machine.skew_time)
    assert machine.state is State.MASTER and any(type(a).__name__ == "AddAddresses" for a in back)
    assert machine.leave_master(11.0, "again") != [] and machine.leave_master(11.0, "again") == []


def test_static_set_equality_ignores_the_problems() -> None:
    assert StaticSet(problems=("x",)) == StaticSet() and not StaticSet()


# -------------------------------------------------------------------------------------------- the service


GROUP_CONF = """
vrrp_sync_group G {
    group { VI_1 VI_2 }
}
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 61
    priority 150
    version 3
    advert_int 0.05
    virtual_ipaddress { 192.0.2.61/32 }
}
vrrp_instance VI_2 {
    interface lo
    virtual_router_id 62
    priority 150
    version 3
    advert_int 0.05
    virtual_ipaddress { 192.0.2.62/32 no_track }
}
"""


def test_a_deleted_vip_takes_its_sync_group_to_backup_and_back() -> None:
    async def main() -> list[tuple[str, str, str]]:
        service = VrrpService(load_text(GROUP_CONF).config, dry_run=True)
        changes: list[tuple[str, str, str]] = []
        service.add_listener(lambda e: changes.append((e.instance, e.new.name, e.reason))
                             if isinstance(e, InstanceStateChanged) else None)
        await service.start()
        try:
            await wait_masters(service, ("VI_1", "VI_2"))
            service.object_deleted(addr("192.0.2.62/32", "lo"))  # no_track: nothing happens
            assert all(r.machine.state is State.MASTER for r in service.instances.values())
            mark = len(changes)
            service.object_deleted(addr("192.0.2.61/32", "lo"))
            assert changes[mark:] == [("VI_1", "BACKUP", "address 192.0.2.61/32 deleted"),
                                      ("VI_2", "BACKUP", "address 192.0.2.61/32 deleted")]
            assert service.instances["VI_1"].machine.counters.pri_zero_sent == 1
            await wait_masters(service, ("VI_1", "VI_2"))
            return changes[mark:]
        finally:
            await service.stop()

    assert [c[1] for c in asyncio.run(main())] == ["BACKUP", "BACKUP", "MASTER", "MASTER"]


async def wait_masters(service: VrrpService, names: tuple[str, ...]) -> None:
    async def poll() -> None:
        while any(service.instances[n].machine.state is not State.MASTER for n in names):
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), 5)


def test_validate_places_a_bad_static_address() -> None:
    result = load_text("static_ipaddress {\n    192.0.2.5/24 dev eth0 colour red\n}\n", filename="k.conf")
    assert [str(d) for d in result.diagnostics] == [
        "k.conf:2:5: warning: static_ipaddress 192.0.2.5/24: unknown static address option 'colour'; the line is "
        "skipped"]


def test_a_reload_removes_only_the_static_objects_that_went(caplog: pytest.LogCaptureFixture) -> None:
    installer = StaticInstaller(AddressManager(dry_run=True), RouteInstaller(dry_run=True))
    first = static_set(load_text(CONF).config, dict(STANDARD_TABLES))
    installer.apply(first)
    assert installer.current == first
    second = static_set(load_text(CONF.replace("    192.0.2.11/24 dev eth1 no_track\n", "").replace(
        "    to 192.0.2.99 table 200 no_track\n", "")).config, dict(STANDARD_TABLES))
    caplog.clear()
    with caplog.at_level("INFO", logger="lvsconsole.vrrp"):
        installer.apply(second)
    removed = [r.getMessage() for r in caplog.records if "would remove" in r.getMessage()]
    assert removed == ["(static) (dry run) would remove rule to 192.0.2.99 table 200 no_track",
                       "(dry run) would remove 192.0.2.11/24 on eth1"]
    assert installer.current == second
    caplog.clear()
    with caplog.at_level("INFO", logger="lvsconsole.vrrp"):
        installer.clear()
    assert sum("would remove" in r.getMessage() for r in caplog.records) == 2 + 1 + 1  # rules, route, address
    assert not installer.current
