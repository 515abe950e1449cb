"""The real Director over the memory IPVS backend: real TCP checks on loopback drive the table;
operator overrides and reloads change only what they must."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path

from lvsconsole.engine.bus import EventBus
from lvsconsole.engine.director import Director
from lvsconsole.engine.director_api import OverrideChange, RsId
from lvsconsole.engine.executor import CommandExecutor
from lvsconsole.engine.store import ConfigStore
from lvsconsole.ipvs.memory import MemoryBackend
from lvsconsole.ipvs.table import Proto, ServiceKey

VS = "[127.0.0.1]:tcp:18080"
CONFIG = """
virtual_server 127.0.0.1 18080 {{
    delay_loop 0.05
    lb_algo wrr
    lb_kind NAT
    protocol TCP
{servers}
}}
"""
SERVER = """    real_server 127.0.0.1 {port} {{
        weight {weight}
        TCP_CHECK {{
            connect_timeout 1
            retry 0
            delay_before_retry 0.05
        }}
    }}
"""


def config_text(servers: list[tuple[int, int]]) -> str:
    return CONFIG.format(servers="".join(SERVER.format(port=p, weight=w) for p, w in servers))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


SERVICE = ServiceKey.inet(Proto.TCP, "127.0.0.1", 18080)


def weights(backend: MemoryBackend) -> dict[int, int]:
    table = backend.table
    if SERVICE not in table:
        return {}
    return {dkey.port: dest.weight for dkey, dest in table[SERVICE].dests.items()}


def test_checks_overrides_and_reload_drive_the_table(tmp_path: Path) -> None:
    async def scenario() -> None:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        up = server.sockets[0].getsockname()[1]
        down = closed_port()
        conf = tmp_path / "keepalived.conf"
        conf.write_text(config_text([(up, 3), (down, 1)]))
        store = ConfigStore.from_file(str(conf))
        backend = MemoryBackend()
        bus = EventBus()
        director = Director(store.running.config, backend=backend, bus=bus, dry_run=True)
        executor = CommandExecutor(director, store, bus)
        await director.start()
        try:
            # The live server stays at weight 3, the dead one leaves the table after its first failure.
            await wait_until(lambda: weights(backend) == {up: 3})
            view = director.snapshot().virtual_servers[0]
            health = {rs.port: rs.health for rs in view.real_servers}
            assert health == {up: "up", down: "down"}

            # drain = weight 0 with the dest kept; undrain restores the configured weight
            rid = RsId(VS, f"[127.0.0.1]:tcp:{up}")
            ops = await director.set_override([rid], OverrideChange("drain"))
            assert len(ops) == 1 and weights(backend) == {up: 0}
            assert director.snapshot().virtual_servers[0].real_servers[0].health == "draining"
            await director.set_override([rid], OverrideChange("undrain"))
            assert weights(backend) == {up: 3}

            # the command language reaches the same director
            result = await executor.run(f"weight 127.0.0.1:{up} 7", who="test")
            assert result.ok, result.message
            assert weights(backend) == {up: 7}
            await executor.run(f"undrain 127.0.0.1:{up}", who="test")

            # a reload that changes one weight touches exactly that dest
            before = backend.ops_applied
            conf.write_text(config_text([(up, 5), (down, 1)]))
            result = await executor.run("reload", who="test")
            assert result.ok, result.message
            await wait_until(lambda: weights(backend) == {up: 5})
            assert backend.ops_applied - before == 1

            # a bad config is refused and nothing changes
            conf.write_text("virtual_server 127.0.0.1 18080 {\n    lb_algo nonsense\n")
            result = await executor.run("reload", who="test")
            assert not result.ok
            assert weights(backend) == {up: 5}
        finally:
            await director.stop()
            server.close()
            await server.wait_closed()
        # lvs_flush_on_stop unset: the director removes the services it owns when it stops
        assert SERVICE not in backend.table

    asyncio.run(asyncio.wait_for(scenario(), 60))
