"""Drift items (sans-IO) and the sync's ``hold`` policy over the memory backend: a weight edited and a dest
deleted behind the engine's back are listed with stable ids, held, then reconciled one by one."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from lvsconsole.ipvs.drift import DriftLedger, ExpectedVip, detect, detect_vips, held_back, repair_ops, select
from lvsconsole.ipvs.memory import MemoryBackend
from lvsconsole.ipvs.reconcile import AddDest, AddService, DeleteDest, EditDest, EditService
from lvsconsole.ipvs.sync import IpvsSync, SyncEvent
from lvsconsole.ipvs.table import Dest, Fwd, Service, ServiceKey, Table

WEB = ServiceKey.inet("tcp", "10.0.0.100", 80)
DNS = ServiceKey.inet("udp", "10.0.0.100", 53)
RS1 = Dest.of("10.0.1.1", 80, fwd=Fwd.MASQ, weight=3)
RS2 = Dest.of("10.0.1.2", 80, fwd=Fwd.MASQ, weight=2)
NS1 = Dest.of("10.0.1.1", 53, fwd=Fwd.ROUTE)
DESIRED = Table([(Service(WEB, "wlc"), [RS1, RS2]), (Service(DNS, "rr"), [NS1])])


def test_every_kind_of_ipvs_drift_is_one_item_with_both_sides() -> None:
    stray = Dest.of("10.0.1.9", 80, fwd=Fwd.MASQ)
    actual = Table([(Service(WEB, "rr"), [replace(RS1, weight=7), stray])])
    items = {item.kind: item for item in detect(DESIRED, actual)}
    assert set(items) == {"dest-added", "service-changed", "weight-changed", "dest-deleted", "service-deleted"}
    weight = items["weight-changed"]
    assert (weight.intent_text, weight.kernel_text) == ("weight 3", "weight 7")
    assert weight.repair == (EditDest(WEB, RS1),)
    assert items["dest-deleted"].dest == RS2.key and items["dest-deleted"].kernel_text == "absent"
    assert items["dest-added"].repair == (DeleteDest(WEB, stray.key),)
    assert (items["service-changed"].intent_text, items["service-changed"].kernel_text) == ("wlc", "rr")
    # a deleted service is one item whose repair brings its dests back with it
    assert items["service-deleted"].repair == (AddService(Service(DNS, "rr")), AddDest(DNS, NS1))
    assert detect(DESIRED, DESIRED) == []


def test_ids_are_stable_across_values_and_distinct_across_subjects() -> None:
    seven = detect(DESIRED, DESIRED.with_dest(WEB, replace(RS1, weight=7)))
    nine = detect(DESIRED, DESIRED.with_dest(WEB, replace(RS1, weight=9)))
    other = detect(DESIRED, DESIRED.with_dest(WEB, replace(RS2, weight=9)))
    assert len(seven[0].id) == 8 and seven[0].id == nine[0].id != other[0].id
    assert select(seven + other, seven[0].id[:4]) == seven
    assert select(seven + other, "all") == seven + other
    with pytest.raises(KeyError, match="no drift item"):
        select(seven, "ffffffff")


def test_a_forwarding_change_is_a_dest_change_not_a_weight_change() -> None:
    items = detect(DESIRED, DESIRED.with_dest(WEB, replace(RS1, fwd=Fwd.ROUTE)))
    assert [i.kind for i in items] == ["dest-changed"]
    assert items[0].intent_text == "Masq weight 3" and items[0].kernel_text == "Route weight 3"


def test_a_removed_vip_of_a_master_is_an_item() -> None:
    want = [ExpectedVip("VI_1", "eth0", "10.0.0.100"), ExpectedVip("VI_1", "eth0", "10.0.0.101")]
    items = detect_vips(want, {("eth0", "10.0.0.100")})
    assert [(i.kind, i.vip, i.where) for i in items] == [("vip-removed", "10.0.0.101", "VIP 10.0.0.101 on eth0 (VI_1)")]
    assert items[0].repair == ()


def test_held_repairs_are_held_back_but_a_new_intent_goes_through() -> None:
    held = detect(DESIRED, DESIRED.with_dest(WEB, replace(RS1, weight=7)))
    assert held_back([EditDest(WEB, RS1)], held) == []
    assert held_back([EditDest(WEB, replace(RS1, weight=0))], held) == [EditDest(WEB, replace(RS1, weight=0))]
    gone = detect(DESIRED, DESIRED.without_service(DNS))
    assert held_back([AddService(Service(DNS, "rr")), AddDest(DNS, replace(NS1, weight=5))], gone) == []


def test_repairs_run_removals_first() -> None:
    stray = Dest.of("10.0.1.9", 80, fwd=Fwd.MASQ)
    items = detect(DESIRED, Table([(Service(WEB, "rr"), [RS1, RS2, stray]), (Service(DNS, "rr"), [])]))
    ops = repair_ops(reversed(items))
    assert isinstance(ops[0], DeleteDest) and isinstance(ops[1], EditService) and isinstance(ops[-1], AddDest)


def test_the_ledger_reports_what_appeared_and_cleared() -> None:
    ledger = DriftLedger()
    first = detect(DESIRED, DESIRED.with_dest(WEB, replace(RS1, weight=7)))
    assert ledger.update(first) == (first, [])
    again = detect(DESIRED, DESIRED.with_dest(WEB, replace(RS1, weight=8)))
    assert ledger.update(again) == ([], [])
    assert ledger.items[0].kernel_text == "weight 8"
    assert ledger.update([], keep={WEB}) == ([], [])  # not compared this time: kept
    assert ledger.update([]) == ([], again)


class Recorder:
    def __init__(self) -> None:
        self.events: list[SyncEvent] = []

    def __call__(self, event: SyncEvent) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


def test_hold_lists_drift_instead_of_repairing_it_until_reconciled() -> None:
    async def scenario() -> None:
        events = Recorder()
        backend = MemoryBackend()
        sync = IpvsSync(backend, on_event=events, drift_policy="hold")
        await sync.start(DESIRED)
        await sync.wait_synced(5)
        events.events.clear()
        # behind the engine's back: a weight edited, a dest deleted (through the backend, as ipvsadm would)
        await backend.apply([EditDest(WEB, replace(RS1, weight=9)), DeleteDest(WEB, RS2.key)])
        assert await sync.check() == []
        assert backend.table != DESIRED
        assert [sync.in_sync] == [False]  # (a list: mypy would keep the narrowing past the awaits below)
        kinds = sorted(item.kind for item in sync.drift)
        assert kinds == ["dest-deleted", "weight-changed"]
        assert events.kinds() == ["drift-held"] and len(events.events[0].items) == 2
        # a second check holds the same items without reporting them again
        await sync.check()
        assert events.kinds() == ["drift-held"]
        # a change elsewhere goes through and leaves the held items alone
        ops = await sync.set_desired(DESIRED.with_dest(DNS, replace(NS1, weight=4)))
        assert ops == [EditDest(DNS, replace(NS1, weight=4))]
        assert backend.table[WEB].dests[RS1.key].weight == 9 and RS2.key not in backend.table[WEB].dests
        # reconcile one item: only that one is repaired, the other stays held
        deleted = next(item for item in sync.drift if item.kind == "dest-deleted")
        assert await sync.reconcile([deleted]) == [AddDest(WEB, RS2)]
        assert backend.table[WEB].dests[RS2.key] == RS2
        assert [item.kind for item in sync.drift] == ["weight-changed"]
        assert events.kinds()[-1] == "drift-cleared" and events.events[-1].items == (deleted,)
        await sync.reconcile(sync.drift)
        assert list(sync.drift) == [] and sync.in_sync
        assert backend.table[WEB].dests[RS1.key].weight == 3
        await sync.stop(clear=False)

    asyncio.run(scenario())


def test_repair_names_each_item_it_repairs() -> None:
    async def scenario() -> None:
        events = Recorder()
        backend = MemoryBackend()
        sync = IpvsSync(backend, on_event=events)
        await sync.start(DESIRED)
        await sync.wait_synced(5)
        events.events.clear()
        await backend.apply([EditDest(WEB, replace(RS1, weight=9))])
        await sync.check()
        drift = events.events[0]
        assert drift.kind == "drift" and [i.kind for i in drift.items] == ["weight-changed"]
        assert "weight-changed TCP 10.0.0.100:80 -> 10.0.1.1:80: intent weight 3, kernel weight 9" in drift.message
        assert backend.table == DESIRED and sync.drift == ()
        await sync.stop(clear=False)

    asyncio.run(scenario())


def test_switching_to_repair_repairs_and_clears_what_was_held() -> None:
    async def scenario() -> None:
        events = Recorder()
        backend = MemoryBackend()
        sync = IpvsSync(backend, on_event=events, drift_policy="hold")
        await sync.start(DESIRED)
        await backend.apply([DeleteDest(DNS, NS1.key)])
        await sync.check()
        assert [item.kind for item in sync.drift] == ["dest-deleted"]
        sync.drift_policy = "repair"
        await sync.check()
        assert list(sync.drift) == [] and backend.table == DESIRED
        assert "drift-cleared" in events.kinds() and "drift" in events.kinds()
        await sync.stop(clear=False)

    asyncio.run(scenario())
