"""``slow_start``: the ramp schedule (sans-IO), the keyword in the config, and ``undrain`` ramping for real over
the memory IPVS backend."""

from __future__ import annotations

import asyncio
from pathlib import Path

from test_engine_drain_watch_flow import RS1, RS2, SERVICE, VS_PORT, next_of

from lvsconsole.config.build import load_text
from lvsconsole.config.render import render
from lvsconsole.engine.bus import EventBus
from lvsconsole.engine.director import Director
from lvsconsole.engine.events import UndrainRamped
from lvsconsole.engine.executor import CommandExecutor
from lvsconsole.engine.slowstart import Ramp
from lvsconsole.engine.store import ConfigStore
from lvsconsole.ipvs.memory import MemoryBackend


def test_ramp_climbs_from_one_to_the_target_over_the_duration() -> None:
    ramp = Ramp(target=10, duration=5.0, started=100.0)
    weights = [ramp.weight(100.0 + t / 2) for t in range(12)]
    assert weights[0] == 1
    assert weights == sorted(weights)  # never goes down
    assert weights[-2:] == [10, 10] and ramp.done(105.0) and not ramp.done(104.0)
    assert ramp.weight(102.5) == 5


def test_ramp_steps_at_least_once_a_second() -> None:
    assert Ramp(target=3, duration=600.0, started=0.0).interval() == 1.0
    assert Ramp(target=1000, duration=10.0, started=0.0).interval() == 0.1
    assert Ramp(target=10, duration=5.0, started=0.0).interval() == 0.5


def test_zero_duration_is_immediate() -> None:
    assert Ramp(target=7, duration=0.0, started=0.0).weight(0.0) == 7


SLOW_CONFIG = f"""virtual_server 127.0.0.1 {VS_PORT} {{
    lb_algo rr
    lb_kind NAT
    protocol TCP
    slow_start 30
    real_server 127.0.0.2 80 {{
        weight 8
        slow_start 1.6
    }}
    real_server 127.0.0.3 80 {{
        weight 2
    }}
}}
"""


def test_slow_start_round_trips_and_is_validated() -> None:
    config = load_text(SLOW_CONFIG, strict=True).config
    [vs] = config.virtual_servers
    assert vs.slow_start == 30.0 and [rs.slow_start for rs in vs.real_servers] == [1.6, None]
    assert load_text(render(config)).config == config
    bad = load_text(SLOW_CONFIG.replace("slow_start 30", "slow_start 3601"))
    assert any("slow_start 3601 is outside the range 0-3600" in d.message for d in bad.diagnostics)


def test_undrain_ramps_the_weight_back_then_clears_the_override(tmp_path: Path) -> None:
    async def scenario() -> None:
        conf = tmp_path / "keepalived.conf"
        conf.write_text(SLOW_CONFIG)
        store = ConfigStore.from_file(str(conf))
        backend = MemoryBackend()
        bus = EventBus()
        director = Director(store.running.config, backend=backend, bus=bus, dry_run=True, run_checks=False)
        executor = CommandExecutor(director, store, bus)
        await director.start()
        try:
            def weights() -> dict[object, int]:
                return {key: d.weight for key, d in backend.table[SERVICE].dests.items()}

            assert (await executor.run("drain 127.0.0.2:80", who="test")).ok
            assert weights() == {RS1: 0, RS2: 2}
            sub = bus.subscribe(kinds=[UndrainRamped])
            assert (await executor.run("undrain 127.0.0.2:80", who="test")).ok
            assert weights()[RS1] == 1  # not straight back to 8
            seen: list[int] = []
            while True:
                event = await next_of(sub, UndrainRamped, timeout=5.0)
                assert isinstance(event, UndrainRamped)
                seen.append(event.weight)
                if event.done:
                    break
                assert weights()[RS1] == event.weight
            assert seen[0] == 1 and seen[-1] == 8 and seen == sorted(seen) and len(seen) >= 4
            assert weights() == {RS1: 8, RS2: 2}
            assert not director.overrides  # nothing left over: the configured weight rules again
            sub.close()
        finally:
            await director.stop()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_a_drain_during_the_ramp_stops_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        conf = tmp_path / "keepalived.conf"
        conf.write_text(SLOW_CONFIG.replace("slow_start 1.6", "slow_start 60"))
        store = ConfigStore.from_file(str(conf))
        backend = MemoryBackend()
        bus = EventBus()
        director = Director(store.running.config, backend=backend, bus=bus, dry_run=True, run_checks=False)
        executor = CommandExecutor(director, store, bus)
        await director.start()
        try:
            assert (await executor.run("drain 127.0.0.2:80", who="test")).ok
            assert (await executor.run("undrain 127.0.0.2:80", who="test")).ok
            assert director.slow_starts.ramping(next(iter(director.overrides)))
            assert (await executor.run("drain 127.0.0.2:80", who="test")).ok
            assert not any(director.slow_starts.ramping(rid) for rid in director.overrides)
            assert backend.table[SERVICE].dests[RS1].weight == 0
        finally:
            await director.stop()

    asyncio.run(asyncio.wait_for(scenario(), 30))
