"""`show vrrp explain` and the timer-health figures through the executor, on a real director (dry run, memory IPVS,
VRRP on the loopback interface)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lvsconsole.engine.bus import EventBus
from lvsconsole.engine.director import Director
from lvsconsole.engine.executor import CommandExecutor
from lvsconsole.engine.store import ConfigStore
from lvsconsole.ipvs.memory import MemoryBackend

CONFIG = """
track_file maint {{
    file {path}
    weight -5
}}

vrrp_instance VI_EX {{
    interface lo
    virtual_router_id 81
    priority 120
    advert_int 1
    unicast_src_ip 127.0.0.1
    unicast_peer {{
        127.0.0.2
    }}
    track_file {{
        maint
    }}
    virtual_ipaddress {{
        192.0.2.81/32
    }}
}}
"""


def test_show_vrrp_explain_through_the_executor(tmp_path: Path) -> None:
    maint = tmp_path / "maint"
    maint.write_text("2\n")  # 2 x weight -5: the priority drops by 10
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONFIG.format(path=maint))

    async def scenario() -> None:
        store = ConfigStore.from_file(str(conf))
        bus = EventBus()
        director = Director(store.running.config, backend=MemoryBackend(), bus=bus, dry_run=True, run_checks=False)
        executor = CommandExecutor(director, store, bus)
        await director.start()
        try:
            result = await executor.run("show vrrp explain VI_EX", "test")
            assert result.ok, result.message
            [data] = result.data
            assert data["instance"] == "VI_EX" and data["state"] == "BACKUP"
            assert data["priority"] == 110
            assert data["priority_text"] == "110 = base 120 -10 track file maint (weight -5)"
            assert {"kind": "file", "name": "maint", "weight": -5, "reverse": False, "effect": -10} \
                in data["contributions"]
            assert data["winner"] == "us" and data["rule"] == "alone"
            assert data["peers"] == [{"address": "127.0.0.2", "last_seen": None, "last_error": None}]
            lines = result.message.splitlines()
            assert lines[0] == "(VI_EX) BACKUP, master: none known"
            assert "  our priority 110 = base 120 -10 track file maint (weight -5)" in lines
            assert any(line.startswith("  next: no master heard: we become MASTER when the down timer expires")
                       for line in lines)
            assert "    127.0.0.2 never heard" in lines

            every = await executor.run("show vrrp explain", "test")
            assert every.ok and [d["instance"] for d in every.data] == ["VI_EX"]

            missing = await executor.run("show vrrp explain VI_NOPE", "test")
            assert not missing.ok and "no vrrp_instance VI_NOPE" in missing.message
            assert missing.data["error"]["col"] == 19

            shown = await executor.run("show vrrp", "test")
            assert shown.data[0]["peers"] == [{"address": "127.0.0.2", "last_seen": None, "last_error": None}]
            assert "UNICAST PEER" in shown.message and "127.0.0.2" in shown.message

            stats = await executor.run("show stats", "test")
            assert stats.data["loop_lag_instance"] == "VI_EX"
            assert stats.data["loop_lag_limit_ms"] == round((256 - 110) / 256 / 2 * 1000, 1)
            assert {"loop_lag_ms", "loop_lag_p99_ms", "loop_lag_max_ms"} <= set(stats.data)
        finally:
            await director.stop()

    asyncio.run(asyncio.wait_for(scenario(), 20))
