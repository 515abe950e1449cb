"""``drain … --until-empty … then remove`` and ``show drain`` end to end: the real Director and executor over the
memory IPVS backend, whose dest counters the test lowers step by step as connections would end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from lvsconsole.config.build import load_text
from lvsconsole.config.render import render
from lvsconsole.engine.bus import EventBus, Subscription
from lvsconsole.engine.director import Director
from lvsconsole.engine.events import DrainEmpty, DrainProgress, DrainRemoved, DrainTimedOut, Event
from lvsconsole.engine.executor import CommandExecutor
from lvsconsole.engine.store import ConfigStore
from lvsconsole.ipvs.backend import DestCounters
from lvsconsole.ipvs.memory import MemoryBackend
from lvsconsole.ipvs.table import DestKey, Proto, ServiceKey

VS_PORT = 18190
VS = f"[127.0.0.1]:tcp:{VS_PORT}"
RS = "[127.0.0.2]:tcp:80"
SERVICE = ServiceKey.inet(Proto.TCP, "127.0.0.1", VS_PORT)
RS1 = DestKey.of("127.0.0.2", 80)
RS2 = DestKey.of("127.0.0.3", 80)
CONFIG = f"""virtual_server 127.0.0.1 {VS_PORT} {{
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.2 80 {{
        weight 3
    }}
    real_server 127.0.0.3 80 {{
        weight 2
    }}
}}
"""


@dataclass
class Rig:
    backend: MemoryBackend
    bus: EventBus
    director: Director
    executor: CommandExecutor

    def weights(self) -> dict[DestKey, int]:
        return {key: d.weight for key, d in self.backend.table[SERVICE].dests.items()}

    def connections(self, active: int, inactive: int = 0, persist: int = 0) -> None:
        self.backend.set_dest_stats(SERVICE, RS1, DestCounters(activeconns=active, inactconns=inactive,
                                                                persistconns=persist))


@asynccontextmanager
async def running(tmp_path: Path, hz: float = 10.0) -> AsyncIterator[Rig]:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONFIG)
    store = ConfigStore.from_file(str(conf))
    backend = MemoryBackend()
    bus = EventBus()
    # no health checks: the servers are up at their configured weights from the start
    director = Director(store.running.config, backend=backend, bus=bus, dry_run=True, run_checks=False,
                        drain_sample_hz=hz)
    await director.start()
    try:
        yield Rig(backend, bus, director, CommandExecutor(director, store, bus))
    finally:
        await director.stop()


async def next_of(sub: Subscription, kind: type[Event], timeout: float = 5.0) -> Event:
    async def wait() -> Event:
        async for event in sub:
            if isinstance(event, kind):
                return event
        raise AssertionError("the bus closed")

    return await asyncio.wait_for(wait(), timeout)


def test_drain_until_empty_then_remove_puts_the_server_into_maint(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as rig:
            assert rig.weights() == {RS1: 3, RS2: 2}
            rig.connections(40, 2)
            sub = rig.bus.subscribe(kinds=[DrainProgress, DrainEmpty, DrainRemoved])
            result = await rig.executor.run("drain 127.0.0.2:80 --until-empty then remove", who="test")
            assert result.ok, result.message
            assert "watching the drain until 0 active and 0 inactive" in result.message
            assert [(w["rs"], w["vs"], w["phase"]) for w in result.data["watches"]] == [(RS, VS, "draining")]
            assert result.data["watches"][0]["plan"] == {"until_empty": True, "timeout": None, "then_remove": True}
            assert rig.weights() == {RS1: 0, RS2: 2}

            first = await next_of(sub, DrainProgress)
            assert isinstance(first, DrainProgress) and (first.active, first.inactive) == (40, 2)
            for active in (30, 20, 12, 6, 2):  # connections end; the watch sees each step
                rig.connections(active, 2)
                await next_of(sub, DrainProgress)
            shown = await rig.executor.run("show drain", who="test")
            [row] = shown.data
            assert row["phase"] == "draining" and row["samples"] >= 5 and row["eta"] is not None
            assert RS in shown.message and "draining" in shown.message

            rig.connections(0, 0, persist=3)
            empty = await next_of(sub, DrainEmpty)
            assert isinstance(empty, DrainEmpty) and empty.persist == 3 and not empty.held
            removed = await next_of(sub, DrainRemoved)
            assert isinstance(removed, DrainRemoved) and not removed.timed_out
            assert rig.weights() == {RS2: 2}  # out of IPVS
            [vs] = rig.director.snapshot().virtual_servers
            assert {rs.key: rs.admin_state for rs in vs.real_servers}[RS] == "maint"
            [row] = (await rig.executor.run(f"show drain 127.0.0.2:80 in 127.0.0.1:{VS_PORT}", who="test")).data
            assert row["phase"] == "removed"

            assert (await rig.executor.run("enable 127.0.0.2:80", who="test")).ok
            assert rig.weights()[RS1] == 0  # enable brings it back into the table, still drained
            sub.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_timeout_without_remove_reports_and_holds_at_weight_zero(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as rig:
            rig.connections(9)
            sub = rig.bus.subscribe(kinds=[DrainTimedOut])
            result = await rig.executor.run("drain 127.0.0.2:80 --timeout 0.5", who="test")
            assert result.ok, result.message
            timed = await next_of(sub, DrainTimedOut)
            assert isinstance(timed, DrainTimedOut) and timed.active == 9 and not timed.removing
            assert rig.weights() == {RS1: 0, RS2: 2}
            [row] = (await rig.executor.run("show drain", who="test")).data
            assert row["phase"] == "timed-out"
            sub.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_set_state_drain_is_watched_and_undrain_forgets_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as rig:
            rig.connections(5)
            sub = rig.bus.subscribe(kinds=[DrainProgress])
            assert (await rig.executor.run("set rs 127.0.0.2:80 state drain", who="test")).ok
            progress = await next_of(sub, DrainProgress)
            assert isinstance(progress, DrainProgress) and progress.active == 5
            [row] = (await rig.executor.run("show drain", who="test")).data
            assert row["source"] == "state"
            assert (await rig.executor.run("undrain 127.0.0.2:80", who="test")).ok
            assert (await rig.executor.run("show drain", who="test")).data == []
            sub.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_samples_arrive_at_the_configured_rate(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path, hz=5.0) as rig:
            rig.connections(100)
            sub = rig.bus.subscribe(kinds=[DrainProgress])
            assert (await rig.executor.run("drain 127.0.0.2:80", who="test")).ok
            for active in (90, 80, 70):  # progress, once a second at most: three of them span 2 s of samples
                await next_of(sub, DrainProgress)
                rig.connections(active)
            await next_of(sub, DrainProgress)
            [row] = (await rig.executor.run("show drain", who="test")).data
            assert 4.0 <= row["sample_hz"] <= 6.0
            sub.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_the_sampling_rate_comes_from_global_defs_and_is_validated() -> None:
    text = "global_defs {\n    drain_sample_rate 8\n}\n" + CONFIG
    built = load_text(text, strict=True)
    assert not [d for d in built.diagnostics if d.is_error]
    assert built.config.global_defs.drain_sample_rate == 8.0
    assert "drain_sample_rate 8" in render(built.config)
    director = Director(built.config, backend=MemoryBackend(), bus=EventBus(), dry_run=True, run_checks=False)
    assert director.drains.hz == 8.0
    too_fast = load_text(text.replace("drain_sample_rate 8", "drain_sample_rate 20"))
    assert any("drain_sample_rate 20 is outside the range 4-10" in d.message for d in too_fast.diagnostics)
