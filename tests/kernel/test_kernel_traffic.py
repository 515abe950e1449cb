"""Real traffic through IPVS inside the guest: a client namespace, a director namespace, two real servers
(NAT and DR), and a second director that receives the first one's connections over the sync daemon.

    client  eth0 10.10.0.2 ─────────────── eth0 10.10.0.1 + VIP 10.10.0.100 (NAT)   director (kt-dir)
            eth1 192.168.50.2 ─┐      ┌── eth1 192.168.50.1 + VIP 192.168.50.100 (DR)
                               └─ br0 ┤                                 eth2 172.16.0.1 ── sync ──┐
    rs1 eth0 192.168.50.11 ───────────┤  (kt-sw)                                                   │
    rs2 eth0 192.168.50.12 ───────────┘                         backup director (kt-dirb) eth0 172.16.0.2

Real servers answer every connection with their name (threads of this process, see ``_netns``); for DR
they hold the VIP on lo with arp_ignore=1 / arp_announce=2, as the source document's lvs_real script
does. IPVS is per network namespace, so both directors have tables of their own.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from _netns import NameServer, NetnsWorker, fetch_names, ip_batch, ns_exec, run, wait_for

from lvsconsole.ipvs.kernel import KernelBackend
from lvsconsole.ipvs.listing import render_daemons
from lvsconsole.ipvs.sync import IpvsSync, SyncDaemonParams
from lvsconsole.ipvs.table import Dest, Fwd, IpvsError, Service, ServiceKey, SvcFlags, Table

pytestmark = pytest.mark.kernel

P = "kt-"
CLIENT, DIRECTOR, BACKUP, RS1, RS2, SWITCH = (P + n for n in ("client", "dir", "dirb", "rs1", "rs2", "sw"))
NAMESPACES = (CLIENT, DIRECTOR, BACKUP, RS1, RS2, SWITCH)
NAT_VIP, DR_VIP = "10.10.0.100", "192.168.50.100"
RS_ADDR = {"rs1": "192.168.50.11", "rs2": "192.168.50.12"}
CONNECTIONS = 400


@dataclass
class Net:
    client: NetnsWorker
    servers: list[NameServer]


def _cleanup() -> None:
    existing = run(["ip", "netns", "list"], check=False)
    for ns in NAMESPACES:
        if re.search(rf"^{re.escape(ns)}\b", existing, re.M):
            run(["ip", "netns", "del", ns], check=False)


def build_topology() -> None:
    """The namespaces, links and addresses of the module docstring (removing leftovers first)."""
    _cleanup()
    ip_batch(
        [f"netns add {ns}" for ns in NAMESPACES]
        + [
            f"link add name eth0 netns {CLIENT} type veth peer name eth0 netns {DIRECTOR}",
            f"link add name eth1 netns {CLIENT} type veth peer name sw-c netns {SWITCH}",
            f"link add name eth1 netns {DIRECTOR} type veth peer name sw-d netns {SWITCH}",
            f"link add name eth0 netns {RS1} type veth peer name sw-r1 netns {SWITCH}",
            f"link add name eth0 netns {RS2} type veth peer name sw-r2 netns {SWITCH}",
            f"link add name eth2 netns {DIRECTOR} type veth peer name eth0 netns {BACKUP}",
        ]
    )
    ip_batch(
        ["link add br0 type bridge forward_delay 0 stp_state 0", "link set br0 up"]
        + [f"link set {port} master br0\nlink set {port} up" for port in ("sw-c", "sw-d", "sw-r1", "sw-r2")]
        + ["link set lo up"],
        SWITCH,
    )
    ip_batch(
        [
            "link set lo up",
            "addr add 10.10.0.2/24 dev eth0",
            "addr add 192.168.50.2/24 dev eth1",
            "link set eth0 up",
            "link set eth1 up",
        ],
        CLIENT,
    )
    ip_batch(
        [
            "link set lo up",
            "addr add 10.10.0.1/24 dev eth0",
            f"addr add {NAT_VIP}/32 dev eth0",
            "addr add 192.168.50.1/24 dev eth1",
            f"addr add {DR_VIP}/32 dev eth1",
            "addr add 172.16.0.1/24 dev eth2",
            "link set eth0 up",
            "link set eth1 up",
            "link set eth2 up",
        ],
        DIRECTOR,
    )
    ip_batch(["link set lo up", "addr add 172.16.0.2/24 dev eth0", "link set eth0 up"], BACKUP)
    for name, ns in (("rs1", RS1), ("rs2", RS2)):
        ip_batch(
            [
                "link set lo up",
                f"addr add {RS_ADDR[name]}/24 dev eth0",
                "link set eth0 up",
                "route add default via 192.168.50.1",
                f"addr add {DR_VIP}/32 dev lo",  # lvs_real: the VIP on lo ...
            ],
            ns,
        )
        # ... and never answer ARP for it, nor announce it
        ns_exec(
            ns,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.conf.all.arp_ignore=1",
            "net.ipv4.conf.all.arp_announce=2",
            "net.ipv4.conf.lo.arp_ignore=1",
            "net.ipv4.conf.lo.arp_announce=2",
        )
    ns_exec(DIRECTOR, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")


@pytest.fixture(scope="module")
def net(ipvs_schedulers: frozenset[str]) -> Iterator[Net]:
    build_topology()
    client = NetnsWorker(CLIENT)
    servers = [
        NameServer(NetnsWorker(ns), name, port) for name, ns in (("rs1", RS1), ("rs2", RS2)) for port in (80, 8080)
    ]
    try:
        # every real server answers directly before any IPVS is involved
        for name, address in RS_ADDR.items():
            assert client.call(fetch_names, address, 8080, 1) == Counter({name: 1})
        yield Net(client, servers)
    finally:
        for server in servers:
            server.close()
        client.close()
        _cleanup()


def two_rs(key: ServiceKey, fwd: Fwd, port: int, weights: tuple[int, int] = (3, 1)) -> list[Dest]:
    return [Dest.of(RS_ADDR[n], port, fwd=fwd, weight=w) for n, w in zip(("rs1", "rs2"), weights, strict=True)]


NAT_WRR = ServiceKey.inet("tcp", NAT_VIP, 80)
NAT_PERSIST = ServiceKey.inet("tcp", NAT_VIP, 81)
DR_WRR = ServiceKey.inet("tcp", DR_VIP, 80)
DR_PERSIST = ServiceKey.inet("tcp", DR_VIP, 8080)


def director_table() -> Table:
    return Table(
        [
            (Service(NAT_WRR, "wrr"), two_rs(NAT_WRR, Fwd.MASQ, 8080)),
            (Service(NAT_PERSIST, "rr", SvcFlags.PERSISTENT, 50), two_rs(NAT_PERSIST, Fwd.MASQ, 8080, (1, 1))),
            (Service(DR_WRR, "wrr"), two_rs(DR_WRR, Fwd.ROUTE, 80)),
            (Service(DR_PERSIST, "rr", SvcFlags.PERSISTENT, 50), two_rs(DR_PERSIST, Fwd.ROUTE, 8080, (1, 1))),
        ]
    )


def assert_three_to_one(counts: Counter[str]) -> None:
    assert sum(counts.values()) == CONNECTIONS and set(counts) == {"rs1", "rs2"}, counts
    ratio = counts["rs1"] / counts["rs2"]
    assert abs(ratio - 3) <= 0.05 * 3, f"wrr 3:1 split {dict(counts)} (ratio {ratio:.3f})"


def director_listing(*flags: str) -> str:
    return ns_exec(DIRECTOR, "ipvsadm", "-Ln", *flags)


def ours(mode: str) -> str:
    import argparse

    from lvsconsole.ipvs.cli import list_text

    args = argparse.Namespace(numeric=True, mode=mode, exact=False, nosort=False, netns=DIRECTOR)
    return asyncio.run(list_text(args))


def test_nat_and_dr_traffic(net: Net) -> None:
    async def scenario() -> dict[str, Any]:
        backend = KernelBackend(DIRECTOR)
        sync = IpvsSync(backend)
        try:
            await sync.start(director_table())
            await sync.wait_synced(30)
            results: dict[str, Any] = {}
            call = net.client.call
            results["nat"] = await asyncio.to_thread(call, fetch_names, NAT_VIP, 80, CONNECTIONS)
            results["dr"] = await asyncio.to_thread(call, fetch_names, DR_VIP, 80, CONNECTIONS, "192.168.50.2")
            results["nat-persist"] = await asyncio.to_thread(call, fetch_names, NAT_VIP, 81, 20)
            results["dr-persist"] = await asyncio.to_thread(call, fetch_names, DR_VIP, 8080, 20, "192.168.50.2")
            # the kernel folds its per-CPU counters into what it reports every 2 s (the estimator)
            async with asyncio.timeout(20):
                while True:
                    stats = await backend.read_stats()
                    if stats.service(NAT_WRR).conns == stats.service(DR_WRR).conns == CONNECTIONS:
                        break
                    await asyncio.sleep(0.2)
            results["stats"] = stats
            await sync.stop(clear=False)
            return results
        finally:
            await backend.close()

    results = asyncio.run(scenario())
    print({k: dict(v) for k, v in results.items() if isinstance(v, Counter)})  # shown with pytest -rP
    assert_three_to_one(results["nat"])
    assert_three_to_one(results["dr"])
    # persistence: one client, one real server, for every connection
    for name in ("nat-persist", "dr-persist"):
        assert len(results[name]) == 1 and sum(results[name].values()) == 20, (name, results[name])
    stats = results["stats"]
    assert stats.dest(NAT_WRR, two_rs(NAT_WRR, Fwd.MASQ, 8080)[0].key).conns == results["nat"]["rs1"]
    # the listings with real counters: --stats once traffic has stopped, --rate within one estimator tick
    for mode, flags in (("plain", ()), ("stats", ("--stats",)), ("rate", ("--rate",))):
        wait_for(lambda m=mode, f=flags: ours(m) == director_listing(*f), 20, f"lvsconsole ipvs list {mode} == ipvsadm")
    assert "Masq" in director_listing() and "Route" in director_listing()


def test_sync_daemon_replicates_connections(net: Net) -> None:
    params_master = SyncDaemonParams("eth2", 51)
    params_backup = SyncDaemonParams("eth0", 51)

    async def scenario() -> Counter[str]:
        master_be, backup_be = KernelBackend(DIRECTOR), KernelBackend(BACKUP)
        master = IpvsSync(master_be)
        backup = IpvsSync(backup_be)
        try:
            await master.start(director_table())
            await backup.start(director_table())  # the backup director holds the same table, as keepalived's
            await backup.set_sync_role("backup", params_backup)
            await master.set_sync_role("master", params_master)
            daemons = await master_be.read_sync_daemons()
            assert render_daemons(daemons) == ns_exec(DIRECTOR, "ipvsadm", "-L", "--daemon")
            assert [(d.state.name, d.ifname, d.syncid) for d in daemons] == [("MASTER", "eth2", 51)]
            with pytest.raises(IpvsError) as info:
                await master_be.start_sync_daemon(daemons[0].state, "eth2", 51)
            assert "Daemon has already run" in str(info.value.strerror)
            counts = await asyncio.to_thread(net.client.call, fetch_names, NAT_VIP, 80, 8)
            # the connections made through the master show up in the backup's connection table
            await asyncio.to_thread(
                wait_for,
                lambda: re.search(
                    rf"^TCP .* 10\.10\.0\.2:\d+ +{re.escape(NAT_VIP)}:80 ", ns_exec(BACKUP, "ipvsadm", "-Lnc"), re.M
                ),
                30,
                "the backup director's ipvsadm -Lnc to show the synced connection",
            )
            # VRRP transition: the backup becomes master (and vice versa): the daemons switch
            await master.set_sync_role("backup", params_master)
            await backup.set_sync_role("master", params_backup)
            assert [d.state.name for d in await master_be.read_sync_daemons()] == ["BACKUP"]
            assert [d.state.name for d in await backup_be.read_sync_daemons()] == ["MASTER"]
            await master.stop()
            await backup.stop()
            assert await master_be.read_sync_daemons() == [] and await backup_be.read_sync_daemons() == []
            return counts
        finally:
            await master_be.close()
            await backup_be.close()

    counts = asyncio.run(scenario())
    assert sum(counts.values()) == 8
