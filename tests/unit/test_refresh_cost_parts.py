"""Pieces that keep a big table's 1 Hz refresh cheap: they must stay exactly what they replace."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import pickle

import pytest

from lvsconsole.engine.director_api import RealServerView, real_server_view
from lvsconsole.ipvs.backend import Counters, DestCounters, Stats
from lvsconsole.ipvs.memory import MemoryBackend
from lvsconsole.ipvs.reconcile import DeleteDest
from lvsconsole.ipvs.table import Dest, DestKey, Family, Service, ServiceKey, Table
from lvsconsole.tui.series import SeriesRing

WEB = ServiceKey.inet("tcp", "10.0.0.100", 80)
RS1 = Dest.of("10.0.1.1", 80)
RS2 = Dest.of("10.0.1.2", 80, weight=2)


# ---------------------------------------------------------------------------------------------- keys


def test_keys_with_equal_fields_are_equal_and_hash_alike() -> None:
    assert ServiceKey.inet("TCP", "10.0.0.1", 80) == ServiceKey.inet("tcp", ipaddress.ip_address("10.0.0.1"), 80)
    assert hash(ServiceKey.inet("TCP", "10.0.0.1", 80)) == hash(ServiceKey.inet("tcp", "10.0.0.1", 80))
    assert hash(ServiceKey.fwm(5)) == hash(ServiceKey.fwm(5))
    assert hash(DestKey.of("2001:db8::1", 80)) == hash(DestKey.of("2001:db8::1", 80))
    # the cached hash follows a replaced field
    moved = dataclasses.replace(WEB, port=81)
    assert moved != WEB and moved == ServiceKey.inet("tcp", "10.0.0.100", 81)
    assert hash(moved) == hash(ServiceKey.inet("tcp", "10.0.0.100", 81))
    # and is not part of equality, repr or a pickle's meaning
    assert "_hash" not in repr(WEB)
    assert pickle.loads(pickle.dumps(WEB)) == WEB and hash(pickle.loads(pickle.dumps(WEB))) == hash(WEB)
    assert ServiceKey.fwm(5) != ServiceKey.fwm(5, Family.INET6)
    assert {WEB: 1}[ServiceKey.inet("tcp", "10.0.0.100", 80)] == 1


def test_key_hash_is_made_of_ints_only() -> None:
    # a string hash differs per process (PYTHONHASHSEED); ints do not: the hash is the same everywhere
    assert hash(DestKey.of("10.0.1.1", 80)) == hash((4, int(ipaddress.ip_address("10.0.1.1")), 80))


# ---------------------------------------------------------------------------------------------- memory stats


def test_read_stats_is_a_stable_copy_until_something_changes() -> None:
    async def scenario() -> None:
        be = MemoryBackend(Table([(Service(WEB, "wlc"), [RS1, RS2])]))
        first = await be.read_stats()
        assert first.dest(WEB, RS1.key) == DestCounters() and first.service(WEB) == Counters()
        assert await be.read_stats() is first  # nothing changed: the same object, nothing rebuilt
        be.set_dest_stats(WEB, RS1.key, DestCounters(activeconns=5))
        second = await be.read_stats()
        assert second is not first
        assert first.dest(WEB, RS1.key).activeconns == 0  # what was read stays what it was
        assert second.dest(WEB, RS1.key).activeconns == 5
        # set_stats replaces every counter: entries it does not name are zero again, unknown ones ignored
        be.set_stats(Stats(services={WEB: Counters(cps=3)},
                           dests={(WEB, RS2.key): DestCounters(activeconns=2),
                                  (WEB, DestKey.of("10.9.9.9", 80)): DestCounters(activeconns=9)}))
        third = await be.read_stats()
        assert third.service(WEB).cps == 3
        assert third.dest(WEB, RS1.key) == DestCounters() and third.dest(WEB, RS2.key).activeconns == 2
        assert set(third.dests) == {(WEB, RS1.key), (WEB, RS2.key)}
        # a counter vanishes with its entry, and the next read shows it
        await be.apply([DeleteDest(WEB, RS2.key)])
        fourth = await be.read_stats()
        assert set(fourth.dests) == {(WEB, RS1.key)}

    asyncio.run(scenario())


# ---------------------------------------------------------------------------------------------- views


def test_real_server_view_is_the_dataclass_s_own_object() -> None:
    values = dict(key="[10.0.1.1]:tcp:80", address=ipaddress.ip_address("10.0.1.1"), port=80, forward="DR",
                  weight=3, config_weight=3, health="up", active_conns=4, bps=1000, floor_kept=True)
    fast = real_server_view(**values)
    slow = RealServerView(**values)  # type: ignore[arg-type]
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert fast.as_json() == slow.as_json()
    assert dataclasses.replace(fast, weight=0) == dataclasses.replace(slow, weight=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.weight = 1  # type: ignore[misc]


def test_real_server_view_refuses_missing_or_unknown_fields() -> None:
    with pytest.raises(TypeError, match="missing fields"):
        real_server_view(key="k", port=80)
    with pytest.raises(TypeError, match=r"unknown fields \['colour'\]"):
        real_server_view(key="k", address=ipaddress.ip_address("10.0.1.1"), port=80, forward="DR", weight=1,
                         config_weight=1, health="up", colour="red")


# ---------------------------------------------------------------------------------------------- history


def test_series_ring_keeps_the_last_samples_of_each_name_across_shapes() -> None:
    ring = SeriesRing(3)
    before = {"vs|a": 0, "rs|a|1": 1}
    ring.push(before, [10, 1])
    ring.push(before, [20, 2])
    after = {"vs|a": 0, "rs|a|2": 1, "rs|a|1": 2}  # a server added: a new shape, the history carries over
    ring.push(after, [30, 5, 3])
    assert ring.series("vs|a") == [10, 20, 30]
    assert ring.series("rs|a|1") == [1, 2, 3]
    assert ring.series("rs|a|2") == [5]
    ring.push(after, [40, 6, 4])  # depth 3: the oldest sample goes
    assert ring.series("vs|a") == [20, 30, 40] and len(ring) == 3
    assert ring.series("nobody") == []
    with pytest.raises(ValueError, match="2 values for an index of 3"):
        ring.push(after, [1, 2])
