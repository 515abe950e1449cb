"""The in-memory backend behaves like the kernel: same errors, HASHED flag, partial batches, daemons."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any, TypeVar

import pytest

from lvsconsole.ipvs.backend import Backend, Counters, DestCounters, Info, Stats, SyncState, Timeouts
from lvsconsole.ipvs.listing import render_daemons, render_list
from lvsconsole.ipvs.memory import MemoryBackend
from lvsconsole.ipvs.reconcile import AddDest, AddService, DeleteDest, DeleteService, EditDest, Op, plan
from lvsconsole.ipvs.table import (
    Dest,
    DestRef,
    Fwd,
    IpvsError,
    Overrides,
    Service,
    ServiceKey,
    SvcFlags,
    Table,
    apply_overrides,
)

T = TypeVar("T")

WEB = ServiceKey.inet("tcp", "10.0.0.100", 80)
RS1 = Dest.of("10.0.1.1", 80)
RS2 = Dest.of("10.0.1.2", 80, weight=2)
DESIRED = Table([(Service(WEB, "wlc"), [RS1, RS2])])


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def test_is_a_backend() -> None:
    assert isinstance(MemoryBackend(), Backend)


def test_reconcile_against_memory() -> None:
    async def scenario() -> None:
        be = MemoryBackend()
        await be.apply(plan(DESIRED, await be.read_table()))
        assert be.ops_applied == 3 and be.apply_calls == 1
        actual = await be.read_table()
        assert all(s.flags & SvcFlags.HASHED for s in actual.services())  # like the kernel
        assert be.table == DESIRED  # what was applied, without the kernel's bit
        assert plan(DESIRED, actual) == []  # adopt: nothing to do
        drained = apply_overrides(DESIRED, Overrides().with_drain(DestRef(RS2.key)))
        ops = plan(drained, await be.read_table())
        assert ops == [EditDest(WEB, replace(RS2, weight=0))]
        await be.apply(ops)
        assert be.ops_applied == 4
        assert (await be.read_table()).dests(WEB)[RS2.key].weight == 0

    run(scenario())


def test_kernel_errors() -> None:
    async def scenario() -> None:
        be = MemoryBackend(DESIRED)
        cases: list[tuple[Op, int]] = [
            (AddService(Service(WEB)), errno.EEXIST),
            (DeleteService(ServiceKey.fwm(1)), errno.ESRCH),
            (AddDest(ServiceKey.fwm(1), RS1), errno.ESRCH),
            (AddDest(WEB, RS1), errno.EEXIST),
            (DeleteDest(WEB, Dest.of("10.9.9.9", 80).key), errno.ENOENT),
            (EditDest(WEB, replace(RS1, weight=-5)), errno.ERANGE),
        ]
        for op, err in cases:
            with pytest.raises(IpvsError) as info:
                await be.apply([op])
            assert info.value.errno == err
            assert isinstance(info.value, OSError)
        assert be.table == DESIRED and be.ops_applied == 0

    run(scenario())


def test_batch_stops_at_first_refusal_keeping_earlier_ops() -> None:
    async def scenario() -> None:
        be = MemoryBackend(DESIRED)
        rs3 = Dest.of("10.0.1.3", 80)
        ops: list[Op] = [AddDest(WEB, rs3), AddDest(WEB, RS1), DeleteDest(WEB, RS2.key)]
        with pytest.raises(IpvsError):
            await be.apply(ops)
        assert set(be.table.dests(WEB)) == {RS1.key, RS2.key, rs3.key}
        assert be.ops_applied == 1 and be.history == [AddDest(WEB, rs3)]

    run(scenario())


def test_fail_hook() -> None:
    async def scenario() -> None:
        be = MemoryBackend(DESIRED)
        be.fail_hook = lambda op: IpvsError(errno.ENOMEM, "Memory allocation problem") if isinstance(
            op, DeleteDest
        ) else None
        with pytest.raises(IpvsError) as info:
            await be.apply([EditDest(WEB, replace(RS1, weight=4)), DeleteDest(WEB, RS2.key)])
        assert info.value.errno == errno.ENOMEM
        assert be.table.dests(WEB)[RS1.key].weight == 4 and RS2.key in be.table.dests(WEB)

    run(scenario())


def test_read_dests_is_one_service_s_gauges() -> None:
    async def scenario() -> None:
        be = MemoryBackend(DESIRED)
        be.set_dest_stats(WEB, RS1.key, DestCounters(activeconns=12, inactconns=3, persistconns=2))
        dests = await be.read_dests(WEB)
        assert dests == {RS1.key: DestCounters(activeconns=12, inactconns=3, persistconns=2),
                         RS2.key: DestCounters()}
        with pytest.raises(IpvsError) as info:
            await be.read_dests(ServiceKey.fwm(4))
        assert info.value.errno == errno.ESRCH

    run(scenario())


def test_stats_settable_and_gone_with_their_entry() -> None:
    async def scenario() -> None:
        be = MemoryBackend(DESIRED)
        be.set_service_stats(WEB, Counters(conns=10, inpkts=20))
        be.set_dest_stats(WEB, RS1.key, DestCounters(conns=7, activeconns=3, inactconns=4))
        stats = await be.read_stats()
        assert stats.service(WEB).conns == 10
        assert stats.dest(WEB, RS1.key).activeconns == 3
        assert stats.dest(WEB, RS2.key) == DestCounters()
        text = render_list(await be.read_table(), stats)
        assert "  -> 10.0.1.1:80                  Route   1      3          4         \n" in text
        with pytest.raises(IpvsError):
            be.set_dest_stats(WEB, Dest.of("10.9.9.9", 80).key, DestCounters())
        await be.apply([DeleteDest(WEB, RS1.key)])
        await be.apply([AddDest(WEB, RS1)])
        assert (await be.read_stats()).dest(WEB, RS1.key) == DestCounters()
        be.set_stats(Stats({WEB: Counters(conns=1), ServiceKey.fwm(4): Counters(conns=2)}))
        assert (await be.read_stats()).services == {WEB: Counters(conns=1)}
        await be.flush()
        assert len(await be.read_table()) == 0 and (await be.read_stats()).services == {}

    run(scenario())


def test_sync_daemons() -> None:
    async def scenario() -> None:
        be = MemoryBackend()
        await be.start_sync_daemon(SyncState.BACKUP, "eth1", 7)
        await be.start_sync_daemon(SyncState.MASTER, "eth0", 1, group=ipaddress.ip_address("239.1.1.1"))
        with pytest.raises(IpvsError) as info:
            await be.start_sync_daemon(SyncState.MASTER, "eth0", 1)
        assert info.value.errno == errno.EEXIST
        assert render_daemons(await be.read_sync_daemons()) == (
            "master sync daemon (mcast=eth0, syncid=1, maxlen=1472, group=239.1.1.1, port=8848, ttl=1)\n"
            "backup sync daemon (mcast=eth1, syncid=7, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"
        )
        await be.stop_sync_daemon(SyncState.MASTER)
        with pytest.raises(IpvsError) as info:
            await be.stop_sync_daemon(SyncState.MASTER)
        assert info.value.errno == errno.ESRCH
        assert [d.state for d in await be.read_sync_daemons()] == [SyncState.BACKUP]

    run(scenario())


def test_timeouts_info_close() -> None:
    async def scenario() -> None:
        be = MemoryBackend(info=Info.from_code(0x010201, 1 << 20))
        assert await be.read_timeouts() == Timeouts(900, 120, 300)
        await be.set_timeouts(Timeouts(tcp=7200, tcpfin=0, udp=0))  # 0 = unchanged, as in the kernel
        assert await be.read_timeouts() == Timeouts(7200, 120, 300)
        info = await be.read_info()
        assert info == Info((1, 2, 1), 1048576)
        assert render_list(Table(), version=info.version, size=info.size).startswith(
            "IP Virtual Server version 1.2.1 (size=1048576)\n"
        )
        await be.close()
        assert be.closed

    run(scenario())


def test_large_table_single_edit_is_cheap() -> None:
    """1000 services x 10 dests: building, planning, one weight edit."""
    services = []
    for i in range(1000):
        key = ServiceKey.inet("tcp", ipaddress.IPv4Address(0x0A000000 + i), 80)
        rs = [Dest(ipaddress.IPv4Address(0x0B000000 + i * 16 + j), 80) for j in range(10)]
        services.append((Service(key, "wrr"), rs))
    desired = Table(services)

    async def scenario() -> None:
        be = MemoryBackend()
        await be.apply(plan(desired, await be.read_table()))
        assert be.ops_applied == 11000
        key = services[500][0].key
        dest = services[500][1][3]
        changed = desired.with_dest(key, replace(dest, weight=0, fwd=Fwd.MASQ))
        ops = plan(changed, await be.read_table())
        assert len(ops) == 1
        await be.apply(ops)
        assert plan(changed, await be.read_table()) == []

    run(scenario())


def test_dests_are_read_newest_first_as_the_kernel_dumps_them() -> None:
    # the kernel adds a new (or re-added) dest at the head of svc->destinations and keeps an edited one in place;
    # the schedulers' ties and the sh/dh buckets follow that order, so a dry-run trace must see it too
    rs3 = Dest.of("10.0.1.3", 80)

    async def scenario() -> list[str]:
        be = MemoryBackend()
        await be.apply([AddService(Service(WEB, "wlc")), AddDest(WEB, RS1), AddDest(WEB, RS2), AddDest(WEB, rs3)])
        assert [str(k.address) for k in (await be.read_table())[WEB].dests] == ["10.0.1.3", "10.0.1.2", "10.0.1.1"]
        await be.apply([EditDest(WEB, replace(RS1, weight=5)), DeleteDest(WEB, RS2.key), AddDest(WEB, RS2)])
        entry = (await be.read_table())[WEB]
        assert entry.dests[RS1.key].weight == 5
        return [str(k.address) for k in entry.dests]

    assert run(scenario()) == ["10.0.1.2", "10.0.1.3", "10.0.1.1"]
