"""Guarded actions and the minimum pool: the sans-IO guard (engine/guard.py), and a dry-run engine on loopback
with real TCP checks: a dangerous drain refused without --force, min_healthy keeping a failing server in the
table, maint pausing a server's checks."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path

from lvsconsole.check.policy import RsRef
from lvsconsole.config.model import MinHealthy
from lvsconsole.engine.daemon import Engine, running_engine
from lvsconsole.engine.director_api import Health, RealServerView, VirtualServerView
from lvsconsole.engine.events import PoolFloorHeld
from lvsconsole.engine.guard import blast_radius, floor_keep, refusal

# ---------------------------------------------------------------------------------------------- sans-IO


def rs(n: int, health: Health = "up", weight: int | None = 1) -> RealServerView:
    return RealServerView(key=f"[10.0.0.{n}]:tcp:80", address=IPv4Address(f"10.0.0.{n}"), port=80, forward="DR",
                          weight=weight, config_weight=weight or 1, health=health)


def vs(*servers: RealServerView, quorum: int = 1, min_healthy: MinHealthy | None = None) -> VirtualServerView:
    return VirtualServerView(key="[10.0.0.100]:tcp:80", address=IPv4Address("10.0.0.100"), port=80, protocol="TCP",
                             fwmark=None, group=None, scheduler="rr", real_servers=servers, quorum=quorum,
                             min_healthy=min_healthy)


def test_removing_the_last_healthy_server_is_dangerous() -> None:
    view = vs(rs(1), rs(2, health="down", weight=None))
    (radius,) = blast_radius([view], {view.key: {rs(1).key}})
    assert (radius.healthy_before, radius.healthy_after, radius.weight_before, radius.weight_after) == (1, 0, 1, 0)
    assert radius.problems == ("leaves VS 10.0.0.100:80 with 0 healthy servers",)
    message = refusal([radius], "drain 10.0.0.1:80")
    assert message is not None and message.startswith("refused: 'drain 10.0.0.1:80' leaves VS 10.0.0.100:80")
    assert "--force" in message


def test_quorum_and_min_healthy_are_checked() -> None:
    view = vs(rs(1, weight=3), rs(2, weight=3), rs(3, weight=3), quorum=5, min_healthy=MinHealthy(60, percent=True))
    (radius,) = blast_radius([view], {view.key: {rs(1).key}})
    assert radius.required == 2 and radius.healthy_after == 2 and not radius.dangerous  # 6 >= quorum 5, 2 >= 2
    (radius,) = blast_radius([view], {view.key: {rs(1).key, rs(2).key}})
    assert radius.problems == ("leaves VS 10.0.0.100:80 below quorum (weight 3 < quorum 5)",
                               "leaves VS 10.0.0.100:80 with 1 healthy server, below min_healthy 60%")
    assert radius.as_json()["dangerous"] is True and radius.as_json()["min_healthy"] == "60%"


def test_a_change_that_makes_nothing_worse_is_not_dangerous() -> None:
    view = vs(rs(1, health="down", weight=None), rs(2, health="draining", weight=0))
    (radius,) = blast_radius([view], {view.key: {rs(1).key}})
    assert radius.healthy_before == radius.healthy_after == 0
    assert not radius.dangerous and refusal([radius], "drain") is None


def test_a_safe_drain_needs_no_confirmation() -> None:
    view = vs(rs(1), rs(2))
    assert refusal(blast_radius([view], {view.key: {rs(1).key}}), "drain") is None
    assert blast_radius([view], {"[other]:tcp:80": {rs(1).key}}) == []


def test_floor_keep_prefers_servers_already_kept() -> None:
    assert floor_keep(["a", "b", "c"], healthy=0, required=2, already_kept=()) == ("a", "b")
    assert floor_keep(["a", "b", "c"], healthy=1, required=2, already_kept={"c"}) == ("c",)
    assert floor_keep(["a"], healthy=2, required=2, already_kept={"a"}) == ()


def test_min_healthy_percentages_round_up() -> None:
    assert MinHealthy(50, percent=True).required(3) == 2
    assert MinHealthy(2).required(10) == 2 and str(MinHealthy(25, percent=True)) == "25%"


# ---------------------------------------------------------------------------------------------- engine on loopback

CONFIG = """
virtual_server 127.0.0.1 {vport} {{
    delay_loop 0.1
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    min_healthy 2
    real_server 127.0.0.1 {a} {{
        weight 3
        TCP_CHECK {{
            connect_timeout 1
            retry 0
        }}
    }}
    real_server 127.0.0.1 {b} {{
        weight 2
        TCP_CHECK {{
            connect_timeout 1
            retry 0
        }}
    }}
}}
"""

TIMEOUT = 15.0


class CountingServer:
    """A loopback TCP listener that counts the connections it accepts (health checks, here)."""

    def __init__(self) -> None:
        self.accepted = 0
        self.connected = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._on_client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.connected.set()
        writer.close()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def wait_until(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), TIMEOUT)


def health(engine: Engine) -> dict[int | None, RealServerView]:
    return {rs.port: rs for vs in engine.director.snapshot().virtual_servers for rs in vs.real_servers}


async def with_engine(tmp_path: Path, body: Callable[[Engine, CountingServer, CountingServer], object]) -> None:
    a, b = CountingServer(), CountingServer()
    await a.start()
    await b.start()
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONFIG.format(vport=free_port(), a=a.port, b=b.port))
    try:
        async with running_engine(str(conf), dry_run=True, socket_path=None, syslog=None) as engine:
            await wait_until(lambda: all(rs.health == "up" for rs in health(engine).values()))
            result = body(engine, a, b)
            assert asyncio.iscoroutine(result)
            await result
    finally:
        await a.stop()
        await b.stop()


def test_a_dangerous_drain_is_refused_without_force(tmp_path: Path) -> None:
    async def body(engine: Engine, a: CountingServer, b: CountingServer) -> None:
        run = engine.executor.run
        refused = await run(f"drain 127.0.0.1:{a.port}", who="test")
        assert not refused.ok and "below min_healthy 2" in refused.message
        assert refused.data["refused"] is True and refused.data["blast_radius"][0]["healthy_after"] == 1
        assert health(engine)[a.port].weight == 3  # nothing changed
        forced = await run(f"drain 127.0.0.1:{a.port} --force", who="test")
        assert forced.ok, forced.message
        assert health(engine)[a.port].weight == 0 and health(engine)[a.port].admin_state == "drain"
        ready = await run(f"set rs 127.0.0.1:{a.port} state ready", who="test")
        assert ready.ok and health(engine)[a.port].admin_state == "ready" and health(engine)[a.port].weight == 3

    asyncio.run(with_engine(tmp_path, body))


def test_min_healthy_keeps_a_failing_server_in_the_table(tmp_path: Path) -> None:
    async def body(engine: Engine, a: CountingServer, b: CountingServer) -> None:
        held = engine.bus.subscribe(kinds=[PoolFloorHeld])
        await b.stop()  # b's checks now fail: depooling it would leave 1 < min_healthy 2
        event = await asyncio.wait_for(held.get(), TIMEOUT)
        assert isinstance(event, PoolFloorHeld) and event.held
        assert event.text() == f"Keeping service [127.0.0.1]:tcp:{b.port} in VS {event.vs}: min_healthy 2 would be " \
                               "broken"
        checks = engine.director.checks
        assert checks is not None
        await wait_until(lambda: not checks.policy.is_alive(RsRef(event.vs, event.rs)))
        view = health(engine)[b.port]
        assert view.floor_kept and view.weight == 2
        table = await engine.director.backend.read_table()
        weights = {dest.key.port: dest.weight for service in table.services() for dest in table.dests(service.key)
                   .values()}
        assert weights == {a.port: 3, b.port: 2}
        shown = await engine.executor.run(f"show rs 127.0.0.1:{b.port}", who="test")
        assert "kept: min_healthy" in shown.message and shown.data[0]["floor_kept"] is True

    asyncio.run(with_engine(tmp_path, body))


def test_maint_pauses_the_checks_until_ready(tmp_path: Path) -> None:
    async def body(engine: Engine, a: CountingServer, b: CountingServer) -> None:
        run = engine.executor.run
        assert (await run(f"set rs 127.0.0.1:{b.port} state maint --force", who="test")).ok
        assert health(engine)[b.port].admin_state == "maint" and health(engine)[b.port].weight is None
        before_b, before_a = b.accepted, a.accepted
        # a's checks run every 0.1 s: ten of them prove b's were due several times, and none was sent
        await wait_until(lambda: a.accepted >= before_a + 10)
        assert b.accepted <= before_b + 1  # at most the one already connecting when maint began
        paused_at = b.accepted
        b.connected.clear()
        assert (await run(f"set rs 127.0.0.1:{b.port} state ready", who="test")).ok
        await asyncio.wait_for(b.connected.wait(), TIMEOUT)
        assert b.accepted > paused_at and health(engine)[b.port].weight == 2

    asyncio.run(with_engine(tmp_path, body))


def test_a_commit_deleting_a_healthy_server_below_min_healthy_needs_force(tmp_path: Path) -> None:
    async def body(engine: Engine, a: CountingServer, b: CountingServer) -> None:
        run = engine.executor.run
        (vs_view,) = engine.director.snapshot().virtual_servers
        assert (await run(f"delete rs 127.0.0.1:{b.port} from {vs_view.label}", who="test")).ok
        refused = await run("commit", who="test")
        assert not refused.ok and "below min_healthy 2" in refused.message
        assert b.port in health(engine)  # still running
        forced = await run("commit --force", who="test")
        assert forced.ok, forced.message
        assert b.port not in health(engine) or health(engine)[b.port].drain_deadline is not None

    asyncio.run(with_engine(tmp_path, body))
