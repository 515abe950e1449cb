"""IpvsSync over the memory backend: adopt, minimal changes, drift repair, ownership, flush rules, daemons."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any, TypeVar

import pytest

from lvsconsole.config.model import GlobalDefs, LvsSyncDaemon, LvsTimeouts
from lvsconsole.ipvs.backend import SyncState, Timeouts
from lvsconsole.ipvs.memory import MemoryBackend
from lvsconsole.ipvs.reconcile import AddDest, AddService, DeleteDest, DeleteService, EditDest, Flush, plan
from lvsconsole.ipvs.sync import IpvsSync, SyncDaemonParams, SyncEvent
from lvsconsole.ipvs.table import (
    EMPTY,
    Dest,
    DestRef,
    Fwd,
    IpvsError,
    Overrides,
    Service,
    ServiceKey,
    Table,
    apply_overrides,
)

T = TypeVar("T")

WEB = ServiceKey.inet("tcp", "10.0.0.100", 80)
DNS = ServiceKey.inet("udp", "10.0.0.100", 53)
FOREIGN = ServiceKey.inet("tcp", "10.9.9.9", 22)
RS1 = Dest.of("10.0.1.1", 80, fwd=Fwd.MASQ)
RS2 = Dest.of("10.0.1.2", 80, fwd=Fwd.MASQ, weight=2)
NS1 = Dest.of("10.0.1.1", 53, fwd=Fwd.ROUTE)
DESIRED = Table([(Service(WEB, "wlc"), [RS1, RS2]), (Service(DNS, "rr"), [NS1])])


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def big_table(services: int, dests: int) -> Table:
    entries = []
    for i in range(services):
        key = ServiceKey.inet("tcp", ipaddress.IPv4Address(0x0A000001 + i * 256), 80)
        entries.append(
            (
                Service(key, "wlc"),
                [Dest.of(ipaddress.IPv4Address(0x0A640001 + j), 80, fwd=Fwd.MASQ) for j in range(dests)],
            )
        )
    return Table(entries)


class Recorder:
    def __init__(self) -> None:
        self.events: list[SyncEvent] = []

    def __call__(self, event: SyncEvent) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


def test_start_loads_then_adopts_without_touching() -> None:
    async def scenario() -> None:
        be = MemoryBackend()
        sync = IpvsSync(be)
        ops = await sync.start(DESIRED)
        assert len(ops) == 5 and be.ops_applied == 5
        await sync.stop(clear=False)
        # a second run over the same kernel table: nothing to do
        events = Recorder()
        sync2 = IpvsSync(be, on_event=events)
        assert await sync2.start(DESIRED) == []
        assert be.ops_applied == 5
        assert events.kinds() == ["adopted"]
        assert await sync2.check() == []
        await sync2.stop(clear=False)

    run(scenario())


def test_partial_adoption_only_adds_the_difference() -> None:
    async def scenario() -> None:
        be = MemoryBackend(Table([(Service(WEB, "wlc"), [RS1])]))
        sync = IpvsSync(be)
        ops = await sync.start(DESIRED)
        assert ops == [AddService(Service(DNS, "rr")), AddDest(DNS, NS1), AddDest(WEB, RS2)]
        assert be.table == DESIRED
        await sync.stop(clear=False)

    run(scenario())


def test_weight_change_is_one_op() -> None:
    async def scenario() -> None:
        be = MemoryBackend()
        sync = IpvsSync(be)
        await sync.start(DESIRED)
        before = be.ops_applied
        drained = apply_overrides(DESIRED, Overrides().with_drain(DestRef(RS2.key)))
        assert await sync.set_desired(drained) == [EditDest(WEB, replace(RS2, weight=0))]
        assert be.ops_applied == before + 1
        # removing one real server: one op
        assert await sync.set_desired(DESIRED.without_dest(WEB, RS2.key)) == [DeleteDest(WEB, RS2.key)]
        assert be.ops_applied == before + 2
        await sync.wait_synced(5)
        assert sync.in_sync
        await sync.stop(clear=False)

    run(scenario())


def test_incremental_plan_on_a_large_table() -> None:
    async def scenario() -> None:
        table = big_table(300, 10)
        be = MemoryBackend()
        sync = IpvsSync(be)
        await sync.start(table)
        await sync.wait_synced(5)
        key = list(table)[123]
        dest = next(iter(table[key].dests.values()))
        changed = table.with_dest(key, replace(dest, weight=7))
        assert await sync.set_desired(changed) == [EditDest(key, replace(dest, weight=7))]
        # the same table again: nothing
        assert await sync.set_desired(changed) == []
        # a different shape (a service less) goes through the full plan
        smaller = changed.without_service(key)
        assert await sync.set_desired(smaller) == [DeleteService(key)]
        assert be.table == smaller
        await sync.stop(clear=False)

    run(scenario())


def test_drift_is_reported_and_repaired() -> None:
    async def scenario() -> None:
        events = Recorder()
        be = MemoryBackend()
        sync = IpvsSync(be, on_event=events)
        await sync.start(DESIRED)
        await sync.wait_synced(5)
        events.events.clear()
        # someone edits a weight and deletes a dest behind our back
        await be.apply([EditDest(WEB, replace(RS1, weight=9)), DeleteDest(DNS, NS1.key)])
        repairs = await sync.check()
        assert set(repairs) == {EditDest(WEB, RS1), AddDest(DNS, NS1)}
        assert be.table == DESIRED
        assert events.kinds()[:2] == ["drift", "applied"]
        assert sync.counters.drift_repairs == 1
        # ipvsadm -C
        await be.flush()
        await sync.check()
        assert be.table == DESIRED
        await sync.stop(clear=False)

    run(scenario())


def test_background_check_repairs_a_flush() -> None:
    async def scenario() -> None:
        events = Recorder()
        be = MemoryBackend()
        sync = IpvsSync(be, check_interval=0.05, on_event=events)
        await sync.start(DESIRED)
        await sync.wait_synced(5)
        await be.flush()
        async with asyncio.timeout(5):
            while be.table != DESIRED:
                await asyncio.sleep(0.01)
        assert "drift" in events.kinds()
        await sync.stop(clear=False)

    run(scenario())


def test_foreign_services_are_left_alone_and_ours_removed() -> None:
    async def scenario() -> None:
        foreign = Table([(Service(FOREIGN, "rr"), [Dest.of("10.9.9.10", 22)])])
        be = MemoryBackend(foreign)
        sync = IpvsSync(be)
        await sync.start(DESIRED)
        assert FOREIGN in be.table and WEB in be.table
        # DNS leaves the config: it was ours, so it goes; the foreign one stays
        assert await sync.set_desired(DESIRED.without_service(DNS)) == [DeleteService(DNS)]
        await sync.wait_synced(5)
        assert FOREIGN in be.table
        # stop (no lvs_flush_on_stop): our services go, the foreign one stays
        await sync.stop()
        assert list(be.table) == [FOREIGN]

    run(scenario())


def test_owned_none_makes_everything_ours() -> None:
    async def scenario() -> None:
        be = MemoryBackend(Table([(Service(FOREIGN, "rr"), [])]))
        sync = IpvsSync(be, owned=None)
        await sync.start(DESIRED)
        assert FOREIGN not in be.table
        await sync.stop(clear=False)

    run(scenario())


def test_lvs_flush_at_start_and_flush_all_at_stop() -> None:
    async def scenario() -> None:
        be = MemoryBackend(Table([(Service(FOREIGN, "rr"), []), (Service(WEB, "wlc"), [RS1, RS2])]))
        sync = IpvsSync(be, flush_at_start=True, flush_on_stop="ALL")
        ops = await sync.start(DESIRED)
        assert ops[0] == Flush() and len(ops) == 6
        assert be.table == DESIRED
        await sync.wait_synced(5)
        await be.apply([AddService(Service(FOREIGN, "rr"))])
        await sync.stop()
        assert be.table == EMPTY

    run(scenario())


def test_flush_on_stop_vs_keeps_foreign() -> None:
    async def scenario() -> None:
        be = MemoryBackend()
        sync = IpvsSync(be, flush_on_stop="VS")
        await sync.start(DESIRED)
        await be.apply([AddService(Service(FOREIGN, "rr"))])
        await sync.stop()
        assert list(be.table) == [FOREIGN]

    run(scenario())


def test_from_globals_and_timeouts() -> None:
    async def scenario() -> None:
        g = GlobalDefs(lvs_flush=True, lvs_flush_on_stop="VS", lvs_timeouts=LvsTimeouts(tcp=7200, udp=60))
        be = MemoryBackend()
        events = Recorder()
        sync = IpvsSync.from_globals(be, g, on_event=events)
        assert sync.flush_at_start and sync.flush_on_stop == "VS"
        await sync.start(DESIRED)
        assert await be.read_timeouts() == Timeouts(7200, 120, 60)
        assert events.kinds()[0] == "timeouts"
        await sync.stop()

    run(scenario())


def test_errors_are_reported_once_and_retried() -> None:
    async def scenario() -> None:
        events = Recorder()
        be = MemoryBackend()
        fail = True
        be.fail_hook = lambda op: (
            IpvsError(errno.ENOMEM, "Memory allocation problem") if fail and isinstance(op, AddDest) else None
        )
        sync = IpvsSync(be, retry_interval=0.02, check_interval=60, on_event=events)
        await sync.start(DESIRED)
        assert "error" in events.kinds()
        error = next(e for e in events.events if e.kind == "error")
        assert error.error is not None and error.error.errno == errno.ENOMEM
        assert isinstance(error.ops[0], AddDest)
        assert not sync.in_sync and sync.last_error is not None
        fail = False
        await sync.wait_synced(5)
        assert be.table == DESIRED
        assert sync.last_error is None
        await sync.stop(clear=False)

    run(scenario())


def test_sync_daemon_follows_the_role() -> None:
    async def scenario() -> None:
        be = MemoryBackend()
        events = Recorder()
        sync = IpvsSync(be, on_event=events)
        params = SyncDaemonParams("eth1", 51)
        await sync.set_sync_role("backup", params)
        assert [(d.state, d.ifname, d.syncid) for d in await be.read_sync_daemons()] == [(SyncState.BACKUP, "eth1", 51)]
        await sync.set_sync_role("master")
        assert [d.state for d in await be.read_sync_daemons()] == [SyncState.MASTER]
        await sync.set_sync_role("master")  # idempotent
        assert [d.state for d in await be.read_sync_daemons()] == [SyncState.MASTER]
        # new parameters restart it
        await sync.set_sync_role("master", SyncDaemonParams("eth1", 52))
        assert [d.syncid for d in await be.read_sync_daemons()] == [52]
        await sync.set_sync_role("none")
        assert await be.read_sync_daemons() == []
        assert [e.kind for e in events.events] == ["daemon"] * 6
        with pytest.raises(ValueError):
            await IpvsSync(be).set_sync_role("master")

    run(scenario())


def test_sync_daemon_params_from_config() -> None:
    cfg = LvsSyncDaemon("eth0", "VI_1", maxlen=1400, port=8848, group=ipaddress.IPv4Address("224.0.0.81"))
    params = SyncDaemonParams.from_config(cfg, default_syncid=51)
    assert params == SyncDaemonParams("eth0", 51, 1400, 8848, 0, ipaddress.IPv4Address("224.0.0.81"))


def test_plan_equals_full_plan_after_incremental_changes() -> None:
    async def scenario() -> None:
        table = big_table(50, 4)
        be = MemoryBackend()
        sync = IpvsSync(be)
        await sync.start(table)
        current = table
        for i, key in enumerate(list(table)[::7]):
            dest = next(iter(current[key].dests.values()))
            current = current.with_dest(key, replace(dest, weight=10 + i))
            await sync.set_desired(current)
            assert plan(current, await be.read_table()) == []
        await sync.stop(clear=False)

    run(scenario())


class SlowReadBackend(MemoryBackend):
    """Takes the snapshot at once, returns it when ``release`` is set (a read overlapping a change)."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = False
        self.reading = asyncio.Event()
        self.release = asyncio.Event()

    async def read_table(self) -> Table:
        snapshot = await super().read_table()
        if self.hold:
            self.reading.set()
            await self.release.wait()
        return snapshot


def test_a_read_overlapping_a_change_is_not_drift() -> None:
    async def scenario() -> None:
        events = Recorder()
        be = SlowReadBackend()
        sync = IpvsSync(be, check_interval=3600, on_event=events)
        await sync.start(DESIRED)
        await sync.wait_synced(5)
        be.hold = True
        check = asyncio.create_task(sync.check())
        await be.reading.wait()
        # a change lands while the (now stale) snapshot is on its way: it must not be "repaired" back
        drained = DESIRED.with_dest(WEB, replace(RS2, weight=0))
        assert await sync.set_desired(drained) == [EditDest(WEB, replace(RS2, weight=0))]
        be.hold = False
        be.release.set()
        assert await check == []
        assert sync.counters.partial_reads == 1
        assert "drift" not in events.kinds()
        await sync.wait_synced(5)
        assert be.table == drained and sync.in_sync
        await sync.stop(clear=False)

    run(scenario())
