"""The size that killed keepalived's reload (#2318: 2,284 virtual servers, 37,298 real servers) loads into the
memory IPVS backend, and a reload that changes one real server's weight applies exactly one IPVS operation,
leaving every other entry as it was. (bench/scale.py measures the same with the checks running.)"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from lvsconsole.engine.bus import EventBus
from lvsconsole.engine.director import Director
from lvsconsole.engine.executor import CommandExecutor
from lvsconsole.engine.store import ConfigStore
from lvsconsole.ipvs.memory import MemoryBackend

N_VS, N_RS = 2284, 37298


def bench_scale() -> ModuleType:
    """bench/scale.py, for its config generator (one generator for the benchmark and this test)."""
    path = Path(__file__).resolve().parents[2] / "bench" / "scale.py"
    spec = importlib.util.spec_from_file_location("bench_scale", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_scale", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_one_change_reload_at_keepalived_2318_size_is_one_ipvs_op(tmp_path: Path) -> None:
    scale = bench_scale()
    conf = tmp_path / "keepalived.conf"
    changed_vs = N_VS // 2
    text = scale.generate(N_VS, N_RS, live_port=9, refused_port=9, delay_loop=6)
    conf.write_text(text)

    async def scenario() -> None:
        store = ConfigStore.from_file(str(conf))
        backend = MemoryBackend()
        bus = EventBus()
        # No checks: every real server keeps its configured weight, so the table is the config's, exactly.
        director = Director(store.running.config, backend=backend, bus=bus, dry_run=True, run_checks=False)
        executor = CommandExecutor(director, store, bus)
        await director.start()
        try:
            before = backend.table
            assert len(before) == N_VS
            assert sum(len(entry.dests) for entry in before.values()) == N_RS

            conf.write_text(scale.generate(N_VS, N_RS, live_port=9, refused_port=9, delay_loop=6,
                                           changed=(changed_vs, 0)))
            ops_before = backend.ops_applied
            result = await executor.run("reload", who="test")
            assert result.ok, result.message
            assert backend.ops_applied - ops_before == 1
            assert len(result.data["applied"]) == 1
            assert result.data["applied"][0].startswith("edit dest")

            after = backend.table
            changed = [(key, dkey) for key, entry in after.items() for dkey, dest in entry.dests.items()
                       if before[key].dests[dkey] != dest]
            assert len(changed) == 1
            key, dkey = changed[0]
            assert after[key].dests[dkey].weight == before[key].dests[dkey].weight + 1
            assert after.keys() == before.keys()
        finally:
            await director.stop()

    asyncio.run(scenario())
