"""A dry-run engine (memory IPVS) over real TCP listeners on 127.0.0.1, and a stub link for VRRP (tests only)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lvsconsole.engine.bus import EventBus, Subscription
from lvsconsole.engine.commands import Result
from lvsconsole.engine.daemon import Engine, running_engine
from lvsconsole.engine.director_api import DirectorSnapshot, RealServerView, VirtualServerView, VrrpInstanceView
from lvsconsole.ipvs.backend import DestCounters
from lvsconsole.ipvs.memory import MemoryBackend
from lvsconsole.ipvs.table import Proto, ServiceKey
from lvsconsole.tui.link import Candidate, EmbeddedLink, EngineInfo, EngineLink, Preview

CHECK = """        TCP_CHECK {
            connect_timeout 1
            retry 0
            delay_before_retry 0.1
        }"""

CONFIG = """global_defs {{
    router_id LAB_DIRECTOR
}}

virtual_server 127.0.0.1 {web} {{
    delay_loop 0.2
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.1 {a} {{
        weight 3
{check}
    }}
    real_server 127.0.0.1 {b} {{
        weight 2
{check}
    }}
    real_server 127.0.0.1 {dead} {{
        weight 1
{check}
    }}
}}

virtual_server 127.0.0.1 {api} {{
    delay_loop 0.2
    lb_algo rr
    lb_kind NAT
    persistence_timeout 50
    protocol TCP
    real_server 127.0.0.1 {c} {{
        weight 1
{check}
    }}
}}
"""


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.02)


@dataclass
class Lab:
    engine: Engine
    link: EmbeddedLink
    ports: dict[str, int]
    conf: Path
    socket_path: str
    servers: list[asyncio.Server] = field(default_factory=list)

    @property
    def backend(self) -> MemoryBackend:
        backend = self.engine.director.backend
        assert isinstance(backend, MemoryBackend)
        return backend

    def service(self, name: str = "web") -> ServiceKey:
        return ServiceKey.inet(Proto.TCP, "127.0.0.1", self.ports[name])

    def weights(self, name: str = "web") -> dict[int, int]:
        table = self.backend.table
        key = self.service(name)
        if key not in table:
            return {}
        return {dkey.port: dest.weight for dkey, dest in table[key].dests.items()}

    def rs_key(self, port_name: str) -> str:
        return f"[127.0.0.1]:tcp:{self.ports[port_name]}"

    def vs_key(self, name: str = "web") -> str:
        return f"[127.0.0.1]:tcp:{self.ports[name]}"

    def set_conns(self, port_name: str, active: int, inactive: int = 0, bps: int = 0, cps: int = 0,
                  vs: str = "web") -> None:
        """Pretend traffic: connection gauges and rates for one dest of the memory backend."""
        backend = self.backend
        service = self.service(vs)
        dest_key = next(k for k in backend.table[service].dests if k.port == self.ports[port_name])
        backend.set_dest_stats(service, dest_key, DestCounters(activeconns=active, inactconns=inactive, inbps=bps,
                                                                cps=cps))


@contextlib.asynccontextmanager
async def lab(*, text: str | None = None) -> AsyncIterator[Lab]:
    servers = [await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0) for _ in range(3)]
    ports = {name: s.sockets[0].getsockname()[1] for name, s in zip(("a", "b", "c"), servers, strict=True)}
    ports.update(dead=closed_port(), web=closed_port(), api=closed_port())
    directory = tempfile.mkdtemp(prefix="lvstui-")
    conf = Path(directory) / "keepalived.conf"
    conf.write_text(text if text is not None else CONFIG.format(check=CHECK, **ports))
    socket_path = os.path.join(directory, "lvs.sock")
    try:
        async with running_engine(str(conf), dry_run=True, socket_path=socket_path) as engine:
            link = EmbeddedLink(engine, socket_path=socket_path, dry_run=True)
            the_lab = Lab(engine, link, ports, conf, socket_path, servers)
            if text is None:
                def settled() -> bool:
                    health = {rs.key: rs.health for vs in engine.director.snapshot().virtual_servers
                              for rs in vs.real_servers}
                    return health.get(the_lab.rs_key("dead")) == "down" and health.get(the_lab.rs_key("a")) == "up"

                await wait_until(settled, what="health checks to settle")
            yield the_lab
    finally:
        for s in servers:
            s.close()
        shutil.rmtree(directory, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- stub (VRRP)


def vrrp_instances(now: float) -> tuple[VrrpInstanceView, ...]:
    return (
        VrrpInstanceView(name="VI_1", state="MASTER", priority=100, base_priority=100, vrid=51, interface="eth0",
                         advert_int=1.0, master="192.168.2.158", since=now - 754, sync_group="VGM",
                         vips=("192.168.2.188/32",), counters={"advert_sent": 754, "advert_rcvd": 2,
                                                               "become_master": 1}),
        VrrpInstanceView(name="VI_2", state="MASTER", priority=90, base_priority=100, vrid=52, interface="eth0",
                         advert_int=1.0, master="192.168.2.158", since=now - 754, sync_group="VGM",
                         vips=("192.168.2.189/32",), counters={"advert_sent": 751, "become_master": 1}),
        VrrpInstanceView(name="VI_DB", state="BACKUP", priority=50, base_priority=50, vrid=60, interface="eth1",
                         advert_int=2.0, master="10.1.0.3", since=now - 3600, runtime_priority=None,
                         vips=("10.1.0.100/24",), counters={"advert_rcvd": 1800, "chk_err": 3}),
    )


class StubLink(EngineLink):
    """A link with VRRP instances (no root needed): snapshots are set by the test; commands are recorded."""

    kind = "stub"

    def __init__(self, instances: tuple[VrrpInstanceView, ...] | None = None,
                 virtual_servers: tuple[VirtualServerView, ...] = (), *, now: float | None = None,
                 candidate_text: str = "", commit_preview: Preview | None = None) -> None:
        super().__init__()
        self.host = "director1"
        self.bus = EventBus()
        self.commands: list[str] = []
        now = time.time() if now is None else now
        self._snapshot = DirectorSnapshot(now, instances if instances is not None else vrrp_instances(now),
                                          virtual_servers, {"uptime": 12.0})
        self.candidate_text = candidate_text
        self.commit_preview = commit_preview

    def set_instances(self, instances: tuple[VrrpInstanceView, ...]) -> None:
        self._snapshot = DirectorSnapshot(time.time(), instances, (), {"uptime": 13.0})

    async def poll(self) -> DirectorSnapshot:
        return self._snapshot

    def info(self) -> EngineInfo:
        return EngineInfo(router_id="LVS_DEVEL", host=self.host, uptime=5421.0,
                          config_file="/etc/keepalived/keepalived.conf",
                          candidate_dirty=self.commit_preview is not None, revision=3, mode="stub")

    async def run(self, command: str) -> Result:
        self.commands.append(command)
        return Result(True, f"ran {command}")

    async def subscribe(self, replay: int = 0) -> Subscription:
        return self.bus.subscribe(replay=replay)

    async def candidate(self) -> Candidate:
        return Candidate(self.candidate_text, None, editable=True)

    async def save_candidate(self, text: str) -> Result:
        self.candidate_text = text
        return Result(True, "candidate saved")

    async def preview_commit(self) -> Preview:
        return self.commit_preview or Preview("commit")

    async def preview_reload(self) -> Preview:
        return Preview("reload /etc/keepalived/keepalived.conf")


def ip(text: str) -> Any:
    return ipaddress.ip_address(text)


def virtual_servers() -> tuple[VirtualServerView, ...]:
    """A fixed table for rendering snapshots: two VS, one drained and one down real server."""
    def rs(addr: str, weight: int | None, cfg: int, health: str, active: int, inact: int, cps: int, bps: int,
           drained: bool = False) -> RealServerView:
        return RealServerView(key=f"[{addr}]:tcp:80", address=ip(addr), port=80, forward="DR", weight=weight,
                              config_weight=cfg, health=health, active_conns=active,  # type: ignore[arg-type]
                              inactive_conns=inact, cps=cps, bps=bps, drained=drained)

    web = VirtualServerView(key="[192.168.2.188]:tcp:80", address=ip("192.168.2.188"), port=80, protocol="TCP",
                            fwmark=None, group=None, scheduler="wlc", persistence_timeout=None, quorum_up=True,
                            real_servers=(rs("192.168.2.187", 3, 3, "up", 412, 1290, 57, 8_400_000),
                                          rs("192.168.2.189", 3, 3, "up", 398, 1207, 55, 8_100_000),
                                          rs("192.168.2.190", 0, 2, "draining", 37, 96, 0, 310_000, drained=True),
                                          rs("192.168.2.191", None, 1, "down", 0, 0, 0, 0)),
                            cps=112, bps=16_810_000)
    api = VirtualServerView(key="[192.168.2.188]:tcp:443", address=ip("192.168.2.188"), port=443, protocol="TCP",
                            fwmark=None, group=None, scheduler="rr", persistence_timeout=300, quorum_up=True,
                            real_servers=(dataclass_replace(rs("192.168.2.187", 1, 1, "up", 120, 300, 20, 2_000_000),
                                                            key="[192.168.2.187]:tcp:443", port=443),),
                            cps=20, bps=2_000_000)
    return (web, api)


def dataclass_replace(obj: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(obj, **changes)
