"""KernelBackend and IpvsSync against the real kernel, checked with ipvsadm (the reference).

Runs inside the QEMU guest (tests/kernel/guest.sh); each test starts from an empty IPVS table.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import ipaddress
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from lvsconsole.ipvs.cli import list_text
from lvsconsole.ipvs.kernel import KernelBackend
from lvsconsole.ipvs.memory import MemoryBackend
from lvsconsole.ipvs.reconcile import AddDest, AddService, DeleteDest, EditDest, plan
from lvsconsole.ipvs.sync import IpvsSync, SyncEvent
from lvsconsole.ipvs.table import (
    EMPTY,
    Dest,
    Family,
    Fwd,
    IpvsError,
    Service,
    ServiceKey,
    SvcFlags,
    Table,
    TunFlags,
    TunType,
)

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "lvsconsole" / "examples"

#: What keepalived programs for the seed configs (both directors: same virtual_server) when every real
#: server is up, as ipvsadm 1.31 lists it.
SEED_LISTING = "".join(
    line + "\n"
    for line in (
        "IP Virtual Server version 1.2.1 (size=4096)",
        "Prot LocalAddress:Port Scheduler Flags",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
        "TCP  192.168.2.188:80 rr persistent 50",
        "  -> 192.168.2.187:80             Route   3      0          0" + " " * 9,  # ipvsadm pads InActConn
        "  -> 192.168.2.189:80             Route   1      0          0" + " " * 9,
    )
)

MODES: dict[str, list[str]] = {
    "plain": [],
    "stats": ["--stats"],
    "rate": ["--rate"],
    "thresholds": ["--thresholds"],
    "persistent-conn": ["--persistent-conn"],
    "tun-info": ["--tun-info"],
}


def list_args(mode: str = "plain", *, exact: bool = False, netns: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(numeric=True, mode=mode, exact=exact, nosort=False, netns=netns)


def ours(mode: str = "plain", *, exact: bool = False, netns: str | None = None) -> str:
    return asyncio.run(list_text(list_args(mode, exact=exact, netns=netns)))


def seed_table(name: str) -> Table:
    from lvsconsole.config.build import load_file
    from lvsconsole.ipvs.from_config import configured_table

    result = load_file(str(EXAMPLES / name))
    assert not [d for d in result.diagnostics if d.is_error]
    return configured_table(result.config)


@pytest.mark.parametrize("conf", ["master.conf", "backup.conf"])
def test_seed_config_table(conf: str, kernel_backend: KernelBackend, ipvsadm: Callable[..., str]) -> None:
    table = seed_table(conf)

    async def load() -> list[Any]:
        sync = IpvsSync(kernel_backend)
        ops = await sync.start(table)
        await sync.wait_synced(30)
        await sync.stop(clear=False)
        return ops

    ops = asyncio.run(load())
    assert len(ops) == 3  # one service, two real servers
    assert ipvsadm("-Ln") == SEED_LISTING
    assert ours() == SEED_LISTING

    # a restart over the same kernel table adopts it: not one request
    before = kernel_backend.requests_sent

    async def restart() -> list[Any]:
        events: list[SyncEvent] = []
        sync = IpvsSync(kernel_backend, on_event=events.append)
        ops = await sync.start(table)
        await sync.stop(clear=False)
        assert [e.kind for e in events] == ["adopted"]
        return ops

    assert asyncio.run(restart()) == []
    assert kernel_backend.requests_sent == before
    assert ipvsadm("-Ln") == SEED_LISTING


def test_lvsconsole_binary_lists_like_ipvsadm(kernel_backend: KernelBackend, ipvsadm: Callable[..., str]) -> None:
    asyncio.run(kernel_backend.apply(plan(seed_table("master.conf"), EMPTY)))
    out = subprocess.run(
        [sys.executable, "-m", "lvsconsole.cli", "ipvs", "list", "-n"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=REPO,
    ).stdout
    assert out == ipvsadm("-Ln") == SEED_LISTING


def every_kind_table(schedulers: frozenset[str], *, sip: bool) -> Table:
    """One service per available scheduler, with the scheduler flags, persistence, masks, ops, a
    persistence engine, IPv6, fwmarks (one above 2^31), SCTP, and every forwarding method and tunnel."""
    v4_dests = [
        Dest.of("10.60.0.1", 8080, fwd=Fwd.MASQ, weight=3),
        Dest.of("10.60.0.2", 80, fwd=Fwd.ROUTE, u_threshold=100, l_threshold=10),
        Dest.of("10.60.0.3", 80, fwd=Fwd.TUNNEL, weight=0),
        Dest.of("10.60.0.4", 80, fwd=Fwd.TUNNEL, tun_type=TunType.GUE, tun_port=6080, tun_flags=TunFlags.REMCSUM),
        Dest.of("10.60.0.5", 80, fwd=Fwd.TUNNEL, tun_type=TunType.GRE, tun_flags=TunFlags.CSUM),
    ]
    flags = {
        "sh": SvcFlags.SH_FALLBACK | SvcFlags.SH_PORT,
        "mh": SvcFlags.MH_PORT,
        "rr": SvcFlags.SCHED1,
        "wrr": SvcFlags.SCHED3,
        "lc": SvcFlags.PERSISTENT,
        "wlc": SvcFlags.PERSISTENT,
    }
    entries: list[tuple[Service, list[Dest]]] = []
    for i, sched in enumerate(sorted(schedulers)):
        key = ServiceKey.inet("tcp", f"10.50.0.{i + 1}", 80)
        f = flags.get(sched, SvcFlags(0))
        timeout = 300 if f & SvcFlags.PERSISTENT else 0
        netmask = 24 if sched == "lc" else None
        entries.append((Service(key, sched, f, timeout, netmask), v4_dests[: 1 + i % len(v4_dests)]))
    entries.append((Service(ServiceKey.inet("udp", "10.50.1.1", 53), "rr", SvcFlags.ONEPACKET), v4_dests[:2]))
    if sip:
        entries.append(
            (
                Service(ServiceKey.inet("udp", "10.50.1.2", 5060), "rr", SvcFlags.PERSISTENT, 60, None, "sip"),
                v4_dests[:1],
            )
        )
    entries.append((Service(ServiceKey.inet("sctp", "10.50.1.3", 9), "rr"), [Dest.of("10.60.0.9", 9)]))
    v6 = ServiceKey.inet("tcp", "2001:db8::100", 443)
    entries.append(
        (
            Service(v6, "wlc", SvcFlags.PERSISTENT, 120, 64),
            [
                Dest.of("2001:db8::1", 8443, fwd=Fwd.MASQ, weight=2),
                Dest.of("2001:db8::2", 443, fwd=Fwd.ROUTE),
                Dest.of("2001:db8::3", 443, fwd=Fwd.TUNNEL, tun_type=TunType.GUE, tun_port=6081),
            ],
        )
    )
    entries.append((Service(ServiceKey.fwm(10), "wrr"), [Dest.of("10.60.1.1", 0, weight=5), Dest.of("10.60.1.2", 0)]))
    entries.append((Service(ServiceKey.fwm(11, Family.INET6), "rr"), [Dest.of("2001:db8::11", 0)]))
    entries.append((Service(ServiceKey.fwm(3_000_000_000), "rr"), [Dest.of("10.60.1.3", 0, fwd=Fwd.TUNNEL)]))
    # a mixed-family pool (an IPv6 real server behind an IPv4 VIP) needs tunnel forwarding
    entries.append(
        (Service(ServiceKey.inet("tcp", "10.50.2.1", 80), "rr"), [Dest.of("2001:db8::60", 80, fwd=Fwd.TUNNEL)])
    )
    return Table(entries)


def test_listing_every_scheduler_and_method(
    kernel_backend: KernelBackend, ipvsadm: Callable[..., str], ipvs_schedulers: frozenset[str]
) -> None:
    from lvsconsole.ipvs.table import SCHEDULERS

    # Debian 12's kernel (6.1) predates the twos scheduler (6.3); every other mainline one must be there
    assert SCHEDULERS - ipvs_schedulers <= {"twos"}, sorted(SCHEDULERS - ipvs_schedulers)
    sip = Path("/sys/module/ip_vs_pe_sip").exists()
    table = every_kind_table(ipvs_schedulers, sip=sip)
    asyncio.run(kernel_backend.apply(plan(table, EMPTY)))
    assert plan(table, asyncio.run(kernel_backend.read_table())) == []  # read back exactly
    for mode, flags in MODES.items():
        for exact in (False, True):
            args = ["-Ln", *flags] + (["--exact"] if exact else [])
            assert ours(mode, exact=exact) == ipvsadm(*args), f"ipvsadm {' '.join(args)}"
    listing = ipvsadm("-Ln")
    for sched in ipvs_schedulers:
        assert f" {sched}" in listing
    for word in (
        "Masq",
        "Route",
        "Tunnel",
        "(sh-fallback,sh-port)",
        "(mh-port)",
        "mask 255.255.255.0",
        " ops",
        "FWM  -",
    ):
        assert word in listing, word
    if sip:
        assert "pe sip" in listing


def test_weight_change_and_removal_are_one_request(kernel_backend: KernelBackend, ipvsadm: Callable[..., str]) -> None:
    key = ServiceKey.inet("tcp", "10.70.0.1", 80)
    dests = [Dest.of(f"10.71.0.{i}", 80, fwd=Fwd.MASQ) for i in range(1, 5)]
    table = Table([(Service(key, "wrr"), dests)])

    async def scenario() -> None:
        sync = IpvsSync(kernel_backend)
        await sync.start(table)
        await sync.wait_synced(30)
        requests, sends = kernel_backend.requests_sent, kernel_backend.sends
        heavier = table.with_dest(key, replace(dests[1], weight=7))
        assert await sync.set_desired(heavier) == [EditDest(key, replace(dests[1], weight=7))]
        assert (kernel_backend.requests_sent - requests, kernel_backend.sends - sends) == (1, 1)
        assert "10.71.0.2:80                 Masq    7" in ipvsadm("-Ln")
        requests = kernel_backend.requests_sent
        fewer = heavier.without_dest(key, dests[3].key)
        assert await sync.set_desired(fewer) == [DeleteDest(key, dests[3].key)]
        assert kernel_backend.requests_sent - requests == 1
        assert "10.71.0.4" not in ipvsadm("-Ln")
        await sync.wait_synced(30)
        assert sync.counters.drift_repairs == 0
        await sync.stop(clear=False)

    asyncio.run(scenario())


def test_drift_from_outside_is_repaired(kernel_backend: KernelBackend, ipvsadm: Callable[..., str]) -> None:
    table = seed_table("master.conf")
    events: list[SyncEvent] = []

    async def repaired() -> bool:
        return plan(table, await kernel_backend.read_table()) == []

    async def scenario() -> None:
        sync = IpvsSync(kernel_backend, check_interval=0.5, on_event=events.append)
        await sync.start(table)
        await sync.wait_synced(30)
        for argv in (
            ["-C"],  # flushed from outside
            ["-e", "-t", "192.168.2.188:80", "-r", "192.168.2.187:80", "-g", "-w", "9"],  # weight changed
            ["-d", "-t", "192.168.2.188:80", "-r", "192.168.2.189:80"],  # real server deleted
        ):
            drifts = sum(e.kind == "drift" for e in events)
            await asyncio.to_thread(ipvsadm, *argv)
            async with asyncio.timeout(30):
                while not (await repaired() and sum(e.kind == "drift" for e in events) > drifts):
                    await asyncio.sleep(0.1)
        # a foreign service is not ours: left alone
        await asyncio.to_thread(ipvsadm, "-A", "-t", "10.99.0.1:22", "-s", "rr")
        await sync.check()
        assert "10.99.0.1:22" in ipvsadm("-Ln")
        await sync.stop()  # lvs_flush_on_stop unset: our services go, the foreign one stays
        assert "192.168.2.188" not in ipvsadm("-Ln") and "10.99.0.1:22" in ipvsadm("-Ln")

    asyncio.run(scenario())
    assert ipvsadm("-Ln").count("\n") == 4
    assert sum(e.kind == "drift" for e in events) >= 3


def test_the_kernel_dumps_dests_newest_first_as_the_memory_backend_reads_them(kernel_backend: KernelBackend) -> None:
    # the order decides the schedulers' ties and the sh/dh buckets of a trace: a dry run must see the kernel's
    key = ServiceKey.inet("tcp", "10.82.0.1", 80)
    d1, d2, d3 = Dest.of("10.83.0.1", 80), Dest.of("10.83.0.2", 80), Dest.of("10.83.0.3", 80)
    batches: list[list[Any]] = [[AddService(Service(key, "sh")), AddDest(key, d1), AddDest(key, d2), AddDest(key, d3)],
                                [EditDest(key, replace(d1, weight=5)), DeleteDest(key, d2.key), AddDest(key, d2)]]

    async def orders(backend: Any) -> list[list[str]]:
        out = []
        for ops in batches:
            await backend.apply(ops)
            out.append([str(k.address) for k in (await backend.read_table())[key].dests])
        return out

    kernel = asyncio.run(orders(kernel_backend))
    assert kernel == [["10.83.0.3", "10.83.0.2", "10.83.0.1"], ["10.83.0.2", "10.83.0.3", "10.83.0.1"]]
    assert asyncio.run(orders(MemoryBackend())) == kernel


def test_errors_carry_errno_and_op(kernel_backend: KernelBackend, ipvsadm: Callable[..., str]) -> None:
    key = ServiceKey.inet("tcp", "10.80.0.1", 80)
    svc = Service(key, "rr")
    d1, d2 = Dest.of("10.81.0.1", 80), Dest.of("10.81.0.2", 80)

    async def scenario() -> None:
        await kernel_backend.apply([AddService(svc), AddDest(key, d1)])
        with pytest.raises(IpvsError) as info:
            # the kernel works through a whole batch: d2 after the refused op is added all the same
            await kernel_backend.apply([AddService(svc), AddDest(key, d2)])
        assert info.value.errno == errno.EEXIST
        assert info.value.op == AddService(svc)
        assert str(info.value.strerror).startswith("Service already exists (add service TCP 10.80.0.1:80")
        assert set((await kernel_backend.read_table())[key].dests) == {d1.key, d2.key}
        with pytest.raises(IpvsError) as info:
            await kernel_backend.apply([EditDest(key, Dest.of("10.81.0.9", 80))])
        assert info.value.errno == errno.ENOENT and "No such destination" in str(info.value.strerror)
        with pytest.raises(IpvsError) as info:
            await kernel_backend.apply([AddService(Service(ServiceKey.inet("tcp", "10.80.0.2", 80), "nosuch"))])
        assert info.value.errno == errno.ENOENT and "Scheduler" in str(info.value.strerror)
        # a later batch is not sent after a refusal
        small = KernelBackend(batch_bytes=1024)
        try:
            ops: list[Any] = [AddService(svc)] + [
                AddDest(key, Dest.of(ipaddress.IPv4Address(0x0A520001 + i), 80)) for i in range(40)
            ]
            with pytest.raises(IpvsError):
                await small.apply(ops)
            assert 1 < small.requests_sent < len(ops)
            assert small.sends == 1
        finally:
            await small.close()

    asyncio.run(scenario())


def test_batched_apply_of_a_larger_table(kernel_backend: KernelBackend, ipvsadm: Callable[..., str]) -> None:
    entries = []
    for i in range(100):
        key = ServiceKey.inet("tcp" if i % 2 else "udp", ipaddress.IPv4Address(0x0A5A0001 + i), 80 + i)
        entries.append(
            (Service(key, "wlc"), [Dest.of(ipaddress.IPv4Address(0x0A5B0001 + j), 80, weight=j) for j in range(10)])
        )
    table = Table(entries)

    async def scenario() -> None:
        small = KernelBackend(batch_bytes=8192)
        try:
            ops = plan(table, EMPTY)
            await small.apply(ops)
            assert small.requests_sent == len(ops) == 1100
            assert 10 < small.sends < 100  # batched: many requests per send
            assert plan(table, await small.read_table()) == []
            stats = await small.read_stats()
            assert len(stats.services) == 100 and len(stats.dests) == 1000
        finally:
            await small.close()

    asyncio.run(scenario())
    assert ours() == ipvsadm("-Ln")
    assert ours("stats") == ipvsadm("-Ln", "--stats")


def test_timeouts_and_info(kernel_backend: KernelBackend, ipvsadm: Callable[..., str]) -> None:
    from lvsconsole.ipvs.backend import Timeouts
    from lvsconsole.ipvs.listing import render_timeouts

    async def scenario() -> None:
        info = await kernel_backend.read_info()
        assert (
            ipvsadm("-Ln").splitlines()[0]
            == f"IP Virtual Server version {'.'.join(map(str, info.version))} (size={info.size})"
        )
        original = await kernel_backend.read_timeouts()
        try:
            await kernel_backend.set_timeouts(Timeouts(7200, 0, 60))  # 0: unchanged
            now = await kernel_backend.read_timeouts()
            assert now == Timeouts(7200, original.tcpfin, 60)
            assert render_timeouts(now) == ipvsadm("-L", "--timeout")
            assert await list_text(list_args("timeout")) == ipvsadm("-L", "--timeout")
            with pytest.raises(IpvsError):
                await kernel_backend.set_timeouts(Timeouts(-1, 0, 0))
        finally:
            await kernel_backend.set_timeouts(original)

    asyncio.run(scenario())
