"""The reconciler: minimal ordered plans, kernel-faithful replay, runtime overrides."""

from __future__ import annotations

import errno
import ipaddress
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lvsconsole.ipvs.reconcile import (
    AddDest,
    AddService,
    DeleteDest,
    DeleteService,
    EditDest,
    EditService,
    Flush,
    Op,
    apply_ops,
    plan,
)
from lvsconsole.ipvs.table import (
    SCHEDULERS,
    Dest,
    DestKey,
    DestRef,
    Family,
    Fwd,
    IPAddress,
    IpvsError,
    Overrides,
    Proto,
    Service,
    ServiceKey,
    SvcFlags,
    Table,
    TunFlags,
    TunType,
    apply_overrides,
    netmask_prefix,
    sched_flag_names,
    sched_flags,
)

WEB = ServiceKey.inet("tcp", "10.0.0.100", 80)
DNS = ServiceKey.inet("udp", "10.0.0.100", 53)
RS1 = Dest.of("10.0.1.1", 80, weight=1)
RS2 = Dest.of("10.0.1.2", 80, weight=2)
RS3 = Dest.of("10.0.1.3", 80, weight=3)


def base() -> Table:
    return Table(
        [
            (Service(WEB, "wlc", SvcFlags.PERSISTENT, 300), [RS1, RS2, RS3]),
            (Service(DNS, "rr"), [Dest.of("10.0.2.1", 53, fwd=Fwd.MASQ)]),
        ]
    )


# ------------------------------------------------------------------------------------------ model


def test_keys_and_text() -> None:
    assert str(WEB) == "TCP 10.0.0.100:80"
    assert str(ServiceKey.inet(Proto.TCP, "2001:db8::1", 443)) == "TCP [2001:db8::1]:443"
    assert str(ServiceKey.fwm(5)) == "FWM 5"
    assert str(ServiceKey.fwm(5, Family.INET6)) == "FWM 5 IPv6"
    assert ServiceKey.inet("tcp", "10.0.0.100", 80) == WEB
    assert RS1.key == DestKey.of("10.0.1.1", 80)
    with pytest.raises(ValueError):
        ServiceKey(Family.INET6, Proto.TCP, ipaddress.IPv4Address("10.0.0.1"), 80)
    with pytest.raises(ValueError):
        ServiceKey.inet("tcp", "10.0.0.1", 70000)
    with pytest.raises(ValueError):
        ServiceKey.inet("icmp", "10.0.0.1", 1)
    with pytest.raises(ValueError):
        ServiceKey(Family.INET, Proto.TCP, fwmark=3)


def test_normalisation() -> None:
    # host masks are the default
    assert Service(WEB, netmask=32) == Service(WEB)
    assert Service(WEB, netmask=24).netmask_text == "255.255.255.0"
    assert netmask_prefix("255.255.255.0") == 24
    with pytest.raises(ValueError):
        netmask_prefix("255.0.255.0")
    # tunnel fields mean nothing outside tunnels (and ipip has no port/flags, gre no port)
    assert Dest.of("10.0.0.1", 80, tun_type=TunType.GUE, tun_port=5) == Dest.of("10.0.0.1", 80)
    ipip = Dest.of("10.0.0.1", 80, fwd=Fwd.TUNNEL, tun_port=5, tun_flags=TunFlags.CSUM)
    assert ipip == Dest.of("10.0.0.1", 80, fwd=Fwd.TUNNEL)
    gre = Dest.of("10.0.0.1", 80, fwd=2, tun_type=2, tun_port=9, tun_flags=1)  # plain ints, as from netlink
    assert (gre.fwd, gre.tun_type, gre.tun_port, gre.tun_flags) == (Fwd.TUNNEL, TunType.GRE, 0, TunFlags.CSUM)


def test_sched_flag_names() -> None:
    bits = sched_flags(["sh-fallback", "sh-port"])
    assert bits == SvcFlags.SCHED1 | SvcFlags.SCHED2
    assert sched_flag_names("sh", bits) == ["sh-fallback", "sh-port"]
    assert sched_flag_names("mh", SvcFlags.MH_PORT) == ["mh-port"]
    assert sched_flag_names("rr", bits | SvcFlags.SCHED3) == ["flag-1", "flag-2", "flag-3"]
    with pytest.raises(ValueError):
        sched_flags(["sh-nope"])


def test_table_is_immutable_value() -> None:
    t = base()
    t2 = t.with_dest(WEB, replace(RS1, weight=9))
    assert t.dests(WEB)[RS1.key].weight == 1 and t2.dests(WEB)[RS1.key].weight == 9
    assert t.without_dest(WEB, RS1.key).dests(WEB).keys() == {RS2.key, RS3.key}
    assert WEB not in t.without_service(WEB)
    # equality ignores insertion order
    reordered = Table([(t[DNS].service, t[DNS].dests.values()), (t[WEB].service, [RS3, RS2, RS1])])
    assert reordered == t
    assert t.num_dests == 4
    with pytest.raises(ValueError):
        Table([(Service(WEB), [RS1, RS1])])


# ------------------------------------------------------------------------------------------ plan


def test_idempotent() -> None:
    assert plan(base(), base()) == []
    assert plan(Table(), Table()) == []


def test_weight_change_is_one_edit() -> None:
    desired = base().with_dest(WEB, replace(RS2, weight=7))
    assert plan(desired, base()) == [EditDest(WEB, replace(RS2, weight=7))]


def test_real_server_removal_is_one_delete() -> None:
    desired = base().without_dest(WEB, RS2.key)
    assert plan(desired, base()) == [DeleteDest(WEB, RS2.key)]


def test_service_removal_takes_its_dests() -> None:
    assert plan(base().without_service(WEB), base()) == [DeleteService(WEB)]


def test_new_service_then_its_dests_in_config_order() -> None:
    ops = plan(base(), Table())
    assert ops == [
        AddService(base()[WEB].service),
        AddDest(WEB, RS1),
        AddDest(WEB, RS2),
        AddDest(WEB, RS3),
        AddService(base()[DNS].service),
        AddDest(DNS, Dest.of("10.0.2.1", 53, fwd=Fwd.MASQ)),
    ]


def test_attribute_changes_are_edits_in_place() -> None:
    svc = replace(base()[WEB].service, scheduler="rr", timeout=60, netmask=24)
    assert plan(base().with_service(svc), base()) == [EditService(svc)]
    tunnel = replace(RS1, fwd=Fwd.TUNNEL, tun_type=TunType.GUE, tun_port=6080)
    assert plan(base().with_dest(WEB, tunnel), base()) == [EditDest(WEB, tunnel)]


def test_hashed_flag_is_ignored() -> None:
    hashed = replace(base()[WEB].service, flags=SvcFlags.PERSISTENT | SvcFlags.HASHED)
    assert plan(base(), base().with_service(hashed)) == []


def test_deletes_before_adds_when_an_address_moves() -> None:
    """RS1 moves from WEB to a new service on another VIP, and the DNS VIP is renumbered."""
    new_vip = ServiceKey.inet("udp", "10.0.0.101", 53)
    web2 = ServiceKey.inet("tcp", "10.0.0.200", 80)
    desired = Table(
        [
            (base()[WEB].service, [RS2, RS3]),
            (Service(new_vip, "rr"), [Dest.of("10.0.2.1", 53, fwd=Fwd.MASQ)]),
            (Service(web2), [RS1]),
        ]
    )
    ops = plan(desired, base())
    assert ops == [
        DeleteDest(WEB, RS1.key),
        DeleteService(DNS),
        AddService(Service(new_vip, "rr")),
        AddDest(new_vip, Dest.of("10.0.2.1", 53, fwd=Fwd.MASQ)),
        AddService(Service(web2)),
        AddDest(web2, RS1),
    ]
    assert apply_ops(base(), ops) == desired


def test_flush_then_everything() -> None:
    ops = plan(base(), base(), flush=True)
    assert ops[0] == Flush()
    assert len(ops) == 1 + 2 + 4
    assert apply_ops(base(), ops) == base()


def test_foreign_services_kept_unless_owned() -> None:
    foreign = ServiceKey.inet("tcp", "10.9.9.9", 22)
    actual = base().with_service(Service(foreign, "rr"), [Dest.of("10.9.9.10", 22)])
    assert plan(base(), actual, owned=set()) == []
    assert plan(base(), actual, owned={foreign}) == [DeleteService(foreign)]
    assert plan(base(), actual) == [DeleteService(foreign)]
    # dests of a service we manage are always reconciled
    extra = base().with_dest(WEB, Dest.of("10.0.1.9", 80))
    assert plan(base(), extra, owned=set()) == [DeleteDest(WEB, DestKey.of("10.0.1.9", 80))]


# ------------------------------------------------------------------------------------------ apply_ops


def test_apply_ops_is_pure_and_kernel_strict() -> None:
    t = base()
    assert apply_ops(t, [DeleteDest(WEB, RS1.key)]) != t
    assert RS1.key in t.dests(WEB)
    cases: list[tuple[Op, int]] = [
        (AddService(Service(WEB)), errno.EEXIST),
        (EditService(Service(ServiceKey.fwm(9))), errno.ESRCH),
        (DeleteService(ServiceKey.fwm(9)), errno.ESRCH),
        (AddDest(ServiceKey.fwm(9), RS1), errno.ESRCH),
        (AddDest(WEB, RS1), errno.EEXIST),
        (EditDest(WEB, Dest.of("10.0.1.99", 80)), errno.ENOENT),
        (DeleteDest(WEB, DestKey.of("10.0.1.99", 80)), errno.ENOENT),
        (AddService(Service(ServiceKey.fwm(9), "nope")), errno.ENOENT),
        (AddService(Service(ServiceKey.fwm(9), pe="xyz")), errno.ENOENT),
        (EditDest(WEB, replace(RS1, weight=-1)), errno.ERANGE),
        (EditDest(WEB, replace(RS1, u_threshold=5, l_threshold=6)), errno.ERANGE),
        (EditDest(WEB, replace(RS1, fwd=Fwd.TUNNEL, tun_type=TunType.GUE, tun_port=0)), errno.EINVAL),
        (AddDest(WEB, Dest.of("2001:db8::5", 80)), errno.EINVAL),
        (AddService(Service(ServiceKey.fwm(9, Family.INET6), netmask=0)), errno.EINVAL),
    ]
    for op, err in cases:
        with pytest.raises(IpvsError) as info:
            apply_ops(t, [op])
        assert info.value.errno == err, op
    # a mixed-family dest is fine with tunnel forwarding
    v6 = Dest.of("2001:db8::5", 80, fwd=Fwd.TUNNEL)
    assert apply_ops(t, [AddDest(WEB, v6)]).dests(WEB)[v6.key] == v6


def test_ops_have_readable_text() -> None:
    assert str(EditDest(WEB, replace(RS1, weight=0))) == "edit dest TCP 10.0.0.100:80 -> 10.0.1.1:80 Route weight 0"
    assert str(DeleteService(DNS)) == "delete service UDP 10.0.0.100:53"


# ------------------------------------------------------------------------------------------ overrides


def test_drain_is_one_edit_to_weight_zero() -> None:
    desired = apply_overrides(base(), Overrides().with_drain(DestRef(RS2.key)))
    assert plan(desired, base()) == [EditDest(WEB, replace(RS2, weight=0))]


def test_disable_is_one_delete_and_enable_one_add() -> None:
    ref = DestRef(RS3.key, WEB)
    disabled = apply_overrides(base(), Overrides().with_disabled(ref))
    assert plan(disabled, base()) == [DeleteDest(WEB, RS3.key)]
    assert plan(apply_overrides(base(), Overrides().with_disabled(ref).cleared(ref)), disabled) == [
        AddDest(WEB, RS3)
    ]


def test_override_precedence() -> None:
    shared = DestKey.of("10.0.9.9", 80)
    other = ServiceKey.inet("tcp", "10.0.0.101", 80)
    t = Table([(Service(WEB), [Dest(shared.address, 80, weight=5)]), (Service(other), [Dest(shared.address, 80)])])
    ov = Overrides().with_weight(DestRef(shared), 3).with_weight(DestRef(shared, other), 8)
    got = apply_overrides(t, ov)
    assert got.dests(WEB)[shared].weight == 3  # wildcard
    assert got.dests(other)[shared].weight == 8  # specific beats wildcard
    got = apply_overrides(t, ov.with_drain(DestRef(shared, WEB)))
    assert got.dests(WEB)[shared].weight == 0 and got.dests(other)[shared].weight == 8
    got = apply_overrides(t, ov.with_drain(DestRef(shared)).with_disabled(DestRef(shared, other)))
    assert got.dests(WEB)[shared].weight == 0 and shared not in got.dests(other)
    assert apply_overrides(t, Overrides()) is t
    # overrides on dests that are not configured do nothing
    assert apply_overrides(t, Overrides().with_drain(DestRef(DestKey.of("1.2.3.4", 1)))) == t
    with pytest.raises(ValueError):
        Overrides().with_weight(DestRef(shared), -1)


# ------------------------------------------------------------------------------------------ properties

# few values: collisions likely
_ADDR4: st.SearchStrategy[IPAddress] = st.integers(0x0A000000, 0x0A00000F).map(ipaddress.IPv4Address)
_ADDR6: st.SearchStrategy[IPAddress] = st.integers(0x2001_0DB8 << 96, (0x2001_0DB8 << 96) + 7).map(
    ipaddress.IPv6Address
)
_PORTS = st.sampled_from([80, 443, 8080])


@st.composite
def service_keys(draw: st.DrawFn) -> ServiceKey:
    if draw(st.integers(0, 5)) == 0:
        return ServiceKey.fwm(draw(st.integers(1, 3)), draw(st.sampled_from(list(Family))))
    return ServiceKey.inet(
        draw(st.sampled_from(list(Proto))), draw(st.one_of(_ADDR4, _ADDR6)), draw(_PORTS)
    )


@st.composite
def dests(draw: st.DrawFn, family: Family) -> Dest:
    fwd = draw(st.sampled_from([Fwd.MASQ, Fwd.TUNNEL, Fwd.ROUTE]))
    v4 = family is Family.INET
    if fwd is Fwd.TUNNEL and draw(st.booleans()):
        v4 = not v4
    tun_type = draw(st.sampled_from(list(TunType)))
    u = draw(st.integers(0, 3))
    return Dest(
        draw(_ADDR4 if v4 else _ADDR6),
        draw(_PORTS),
        fwd,
        draw(st.integers(0, 3)),
        u,
        draw(st.integers(0, u)),
        tun_type,
        draw(st.integers(1, 3)),
        draw(st.sampled_from([TunFlags.NOCSUM, TunFlags.CSUM])),
    )


@st.composite
def tables(draw: st.DrawFn) -> Table:
    keys = draw(st.lists(service_keys(), max_size=6, unique=True))
    entries = []
    for key in keys:
        flags = SvcFlags(draw(st.integers(0, 0x3F)) & ~SvcFlags.HASHED)
        service = Service(
            key,
            draw(st.sampled_from(sorted(SCHEDULERS))),
            flags,
            draw(st.sampled_from([0, 60, 300])),
            draw(st.one_of(st.none(), st.integers(1, key.family.max_prefix))),
            draw(st.sampled_from(["", "sip"])),
        )
        dmap = {d.key: d for d in draw(st.lists(dests(key.family), max_size=5))}
        entries.append((service, list(dmap.values())))
    return Table(entries)


def _check_order(ops: list[Op]) -> None:
    kinds = [type(op) for op in ops]
    deleted = {op.key for op in ops if isinstance(op, DeleteService)}
    added_at = {op.service.key: i for i, op in enumerate(ops) if isinstance(op, AddService)}
    last_delete = max((i for i, k in enumerate(kinds) if k in (DeleteDest, DeleteService)), default=-1)
    first_add = min((i for i, k in enumerate(kinds) if k in (AddDest, AddService)), default=len(ops))
    assert last_delete < first_add
    for i, op in enumerate(ops):
        if isinstance(op, DeleteDest):
            assert op.service not in deleted  # a service delete takes its dests
        if isinstance(op, AddDest) and op.service in added_at:
            assert added_at[op.service] < i


@settings(max_examples=300, deadline=None)
@given(tables(), tables())
def test_plan_round_trip(desired: Table, actual: Table) -> None:
    ops = plan(desired, actual)
    assert apply_ops(actual, ops) == desired
    _check_order(ops)
    assert plan(desired, apply_ops(actual, ops)) == []
    # one op per changed entry, never more
    changed_services = {k for k in desired.keys() | actual.keys() if k not in desired or k not in actual} | {
        k for k in desired.keys() & actual.keys() if not desired[k].service.same_config(actual[k].service)
    }
    changed_dests = sum(
        1
        for k in desired.keys() & actual.keys()
        for d in desired[k].dests.keys() | actual[k].dests.keys()
        if desired[k].dests.get(d) != actual[k].dests.get(d)
    )
    added_dests = sum(len(desired[k].dests) for k in desired.keys() - actual.keys())
    assert len(ops) == len(changed_services) + changed_dests + added_dests


@settings(max_examples=100, deadline=None)
@given(tables(), tables())
def test_flush_round_trip(desired: Table, actual: Table) -> None:
    assert apply_ops(actual, plan(desired, actual, flush=True)) == desired
