"""Reload drain with the real Director over the memory IPVS backend: a removed real server with active
connections stays at weight 0 until they end (or drain_timeout), then goes; an idle one goes at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from lvsconsole.engine.bus import EventBus
from lvsconsole.engine.director import Director
from lvsconsole.engine.director_api import RealServerView
from lvsconsole.engine.events import RealServerRetired, RealServerRetiring
from lvsconsole.engine.executor import CommandExecutor
from lvsconsole.engine.store import ConfigStore
from lvsconsole.ipvs.backend import DestCounters
from lvsconsole.ipvs.memory import MemoryBackend
from lvsconsole.ipvs.table import DestKey, Proto, ServiceKey

VS_PORT = 18090
VS = f"[127.0.0.1]:tcp:{VS_PORT}"
SERVICE = ServiceKey.inet(Proto.TCP, "127.0.0.1", VS_PORT)
OTHER_SERVICE = ServiceKey.inet(Proto.TCP, "127.0.0.1", VS_PORT + 1)
RS1 = DestKey.of("127.0.0.2", 80)
RS2 = DestKey.of("127.0.0.3", 80)


def config_text(servers: list[str], *, drain_timeout: float | None = None, other_vs: bool = False) -> str:
    head = "" if drain_timeout is None else f"global_defs {{\n    drain_timeout {drain_timeout:g}\n}}\n"
    weights = {"127.0.0.2": 3, "127.0.0.3": 2}
    body = "".join(f"    real_server {address} 80 {{\n        weight {weights[address]}\n    }}\n"
                   for address in servers)
    vs = f"virtual_server 127.0.0.1 {VS_PORT} {{\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n{body}}}\n"
    if other_vs:
        vs += (f"virtual_server 127.0.0.1 {VS_PORT + 1} {{\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n"
               "    real_server 127.0.0.3 80 {\n        weight 1\n    }\n}\n")
    return head + vs


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


def weights(backend: MemoryBackend, service: ServiceKey = SERVICE) -> dict[DestKey, int]:
    if service not in backend.table:
        return {}
    return {key: dest.weight for key, dest in backend.table[service].dests.items()}


@dataclass
class Rig:
    conf: Path
    backend: MemoryBackend
    bus: EventBus
    director: Director
    executor: CommandExecutor

    async def reload(self, text: str) -> None:
        self.conf.write_text(text)
        result = await self.executor.run("reload", who="test")
        assert result.ok, result.message

    def rs_view(self, key: str) -> RealServerView:
        [vs_view] = self.director.snapshot().virtual_servers
        return {rs.key: rs for rs in vs_view.real_servers}[key]

    def events(self, kind: type) -> list[object]:
        return [e for e in self.bus.history() if isinstance(e, kind)]


@asynccontextmanager
async def running(tmp_path: Path, text: str, *, run_checks: bool = True) -> AsyncIterator[Rig]:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(text)
    store = ConfigStore.from_file(str(conf))
    backend = MemoryBackend()
    bus = EventBus()
    director = Director(store.running.config, backend=backend, bus=bus, dry_run=True, run_checks=run_checks)
    executor = CommandExecutor(director, store, bus)
    await director.start()
    try:
        yield Rig(conf, backend, bus, director, executor)
    finally:
        await director.stop()


def test_removed_server_drains_until_its_connections_end(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path, config_text(["127.0.0.2", "127.0.0.3"])) as rig:
            await wait_until(lambda: weights(rig.backend) == {RS1: 3, RS2: 2})
            rig.backend.set_dest_stats(SERVICE, RS1, DestCounters(activeconns=312))

            # the preview says what will drain
            await wait_until(lambda: rig.rs_view("[127.0.0.2]:tcp:80").active_conns == 312)  # the stats loop's sample
            rig.executor.store.set_candidate_text(config_text(["127.0.0.3"]))
            preview = await rig.executor.run("diff", who="test")
            assert f"will drain: [127.0.0.2]:tcp:80 in VS {VS}, 312 active" in preview.message
            assert isinstance(preview.data, dict)
            assert preview.data["removals"] == [
                {"vs": VS, "rs": "[127.0.0.2]:tcp:80", "active": 312, "drains": True, "timeout": 60.0}]

            await rig.reload(config_text(["127.0.0.3"]))
            assert weights(rig.backend) == {RS1: 0, RS2: 2}
            [retiring] = rig.events(RealServerRetiring)
            assert isinstance(retiring, RealServerRetiring)
            assert retiring.text() == f"Draining service [127.0.0.2]:tcp:80 from VS {VS} before removal (312 active)"

            rs_view = rig.rs_view("[127.0.0.2]:tcp:80")
            assert (rs_view.health, rs_view.weight, rs_view.active_conns) == ("draining", 0, 312)
            assert rs_view.drain_deadline is not None and 55 < rs_view.drain_deadline - time.time() <= 60
            shown = await rig.executor.run(f"show vs 127.0.0.1:{VS_PORT}", who="test")
            assert "draining, removed by" in shown.message

            # still busy: still there at weight 0, several samples later
            await asyncio.sleep(1.2)
            assert weights(rig.backend) == {RS1: 0, RS2: 2}
            rig.backend.set_dest_stats(SERVICE, RS1, DestCounters(activeconns=0, inactconns=4))
            await wait_until(lambda: weights(rig.backend) == {RS2: 2}, timeout=5)
            [retired] = rig.events(RealServerRetired)
            assert isinstance(retired, RealServerRetired) and retired.reason == "drained"
            assert retired.text().startswith(f"Removing drained service [127.0.0.2]:tcp:80 from VS {VS}")
            assert [rs.key for rs in rig.director.snapshot().virtual_servers[0].real_servers] == [
                "[127.0.0.3]:tcp:80"]

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_drain_timeout_removes_a_server_still_busy(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path, config_text(["127.0.0.2", "127.0.0.3"], drain_timeout=0.6)) as rig:
            await wait_until(lambda: weights(rig.backend) == {RS1: 3, RS2: 2})
            rig.backend.set_dest_stats(SERVICE, RS1, DestCounters(activeconns=5))
            started = time.monotonic()
            await rig.reload(config_text(["127.0.0.3"], drain_timeout=0.6))
            assert weights(rig.backend) == {RS1: 0, RS2: 2}
            await wait_until(lambda: RS1 not in weights(rig.backend), timeout=5)
            assert time.monotonic() - started >= 0.6
            [retired] = rig.events(RealServerRetired)
            assert isinstance(retired, RealServerRetired)
            assert (retired.reason, retired.active) == ("timeout", 5)
            assert retired.severity == "warning"

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_idle_server_and_zero_timeout_go_at_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path, config_text(["127.0.0.2", "127.0.0.3"])) as rig:
            await wait_until(lambda: weights(rig.backend) == {RS1: 3, RS2: 2})
            rig.executor.store.set_candidate_text(config_text(["127.0.0.3"]))
            preview = await rig.executor.run("diff", who="test")
            assert f"will remove: [127.0.0.2]:tcp:80 in VS {VS}, 0 active" in preview.message
            await rig.reload(config_text(["127.0.0.3"]))  # no active connection: nothing to wait for
            assert weights(rig.backend) == {RS2: 2}
            assert rig.events(RealServerRetiring) == []

        async with running(tmp_path, config_text(["127.0.0.2", "127.0.0.3"], drain_timeout=0)) as rig:
            await wait_until(lambda: weights(rig.backend) == {RS1: 3, RS2: 2})
            rig.backend.set_dest_stats(SERVICE, RS1, DestCounters(activeconns=7))
            await rig.reload(config_text(["127.0.0.3"], drain_timeout=0))  # keepalived's behaviour
            assert weights(rig.backend) == {RS2: 2}

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_server_brought_back_while_draining_is_kept(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path, config_text(["127.0.0.2", "127.0.0.3"])) as rig:
            await wait_until(lambda: weights(rig.backend) == {RS1: 3, RS2: 2})
            rig.backend.set_dest_stats(SERVICE, RS1, DestCounters(activeconns=9))
            await rig.reload(config_text(["127.0.0.3"]))
            assert weights(rig.backend) == {RS1: 0, RS2: 2}
            ops_before = rig.backend.ops_applied
            await rig.reload(config_text(["127.0.0.2", "127.0.0.3"]))
            assert weights(rig.backend) == {RS1: 3, RS2: 2}
            assert rig.backend.ops_applied - ops_before == 1  # one edit: weight 0 -> 3, no delete and add
            assert len(rig.director.retiring) == 0
            # its connections end later: nothing happens to it
            rig.backend.set_dest_stats(SERVICE, RS1, DestCounters(activeconns=0))
            await asyncio.sleep(0.7)
            assert weights(rig.backend) == {RS1: 3, RS2: 2}
            assert rig.events(RealServerRetired) == []

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_removed_virtual_server_keeps_its_service_until_drained(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path, config_text(["127.0.0.2"], other_vs=True)) as rig:
            await wait_until(lambda: weights(rig.backend, OTHER_SERVICE) == {RS2: 1})
            rig.backend.set_dest_stats(OTHER_SERVICE, RS2, DestCounters(activeconns=2))
            await rig.reload(config_text(["127.0.0.2"]))
            # the service stays, holding only its draining dest at weight 0: nothing new is scheduled
            assert weights(rig.backend, OTHER_SERVICE) == {RS2: 0}
            views = {vs.key: vs for vs in rig.director.snapshot().virtual_servers}
            removed = views[f"[127.0.0.1]:tcp:{VS_PORT + 1}"]
            assert [(rs.key, rs.health, rs.active_conns) for rs in removed.real_servers] == [
                ("[127.0.0.3]:tcp:80", "draining", 2)]
            rig.backend.set_dest_stats(OTHER_SERVICE, RS2, DestCounters(activeconns=0))
            await wait_until(lambda: OTHER_SERVICE not in rig.backend.table, timeout=5)
            assert [vs.key for vs in rig.director.snapshot().virtual_servers] == [VS]

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_first_reload_after_start_drains_without_any_check_result(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path, config_text(["127.0.0.2", "127.0.0.3"]), run_checks=False) as rig:
            assert weights(rig.backend) == {RS1: 3, RS2: 2}
            assert rig.rs_view("[127.0.0.2]:tcp:80").weight == 3  # the table as started, before any sync
            rig.backend.set_dest_stats(SERVICE, RS1, DestCounters(activeconns=1))
            await rig.reload(config_text(["127.0.0.3"]))
            assert weights(rig.backend) == {RS1: 0, RS2: 2}

    asyncio.run(asyncio.wait_for(scenario(), 30))
