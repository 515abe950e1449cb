"""Reload drain against the real kernel: a long-lived TCP connection through the VIP to rs1 survives the
reload that removes rs1; rs1 stays in the kernel's table at weight 0 meanwhile (new connections go to rs2)
and is deleted once the client closes. The whole Director runs, over the kernel IPVS backend of a
director namespace; the reload goes through the command language like an operator's. The drain lab of
_drainlab.py (client → NAT director → two echo real servers), in namespaces ``kd-*``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from _drainlab import RS_ADDR, RS_PORT, VIP, Topology, ask, config_text, connect, drain_lab, wait_until
from _netns import NetnsWorker

from lvsconsole.engine.bus import EventBus
from lvsconsole.engine.director import Director
from lvsconsole.engine.events import RealServerRetired, RealServerRetiring
from lvsconsole.engine.executor import CommandExecutor
from lvsconsole.engine.store import ConfigStore
from lvsconsole.ipvs.kernel import KernelBackend

pytestmark = pytest.mark.kernel

LAB = Topology("kd-")
DIRECTOR = LAB.director


@pytest.fixture(scope="module")
def client() -> Iterator[NetnsWorker]:
    with drain_lab(LAB) as worker:
        yield worker


def kernel_dests() -> dict[str, tuple[int, int]]:
    return LAB.kernel_dests()


def test_long_lived_connection_survives_the_reload_that_removes_its_server(client: NetnsWorker,
                                                                            tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(config_text(["rs1", "rs2"]))

    async def scenario() -> None:
        store = ConfigStore.from_file(str(conf))
        bus = EventBus()
        director = Director(store.running.config, backend=KernelBackend(DIRECTOR), bus=bus, dry_run=True,
                            run_checks=False)
        executor = CommandExecutor(director, store, bus)
        await director.start()
        held: socket.socket | None = None
        others: list[socket.socket] = []
        try:
            await wait_until("both real servers in the kernel table",
                             lambda: set(kernel_dests()) == set(RS_ADDR.values()))
            # rr alternates: among a few connections one lands on rs1; keep that one open
            for n in range(4):
                sock = await asyncio.to_thread(client.call, connect)
                answer = await asyncio.to_thread(ask, sock, f"hello{n}")
                if answer == f"rs1:hello{n}" and held is None:
                    held = sock
                else:
                    others.append(sock)
            assert held is not None, "no connection reached rs1"
            for sock in others:
                sock.close()
            rs1_key = f"[{RS_ADDR['rs1']}]:tcp:{RS_PORT}"
            await wait_until("rs1's ActiveConn to count the held connection", lambda: kernel_dests()[
                RS_ADDR["rs1"]][1] >= 1)
            # the preview works from the director's sampled counters (once a second)
            await wait_until("the director's sample to see it", lambda: {
                rs.key: rs.active_conns for rs in director.snapshot().virtual_servers[0].real_servers}[rs1_key] >= 1)

            # the reload that removes rs1: the preview says it will drain, the reload keeps it at weight 0
            store.set_candidate_text(config_text(["rs2"]))
            preview = await executor.run("diff", who="test")
            assert f"will drain: [{RS_ADDR['rs1']}]:tcp:{RS_PORT} in VS [{VIP}]:tcp:80" in preview.message
            conf.write_text(config_text(["rs2"]))
            result = await executor.run("reload", who="test")
            assert result.ok, result.message
            dests = kernel_dests()
            assert dests[RS_ADDR["rs1"]][0] == 0 and dests[RS_ADDR["rs1"]][1] >= 1, dests
            assert dests[RS_ADDR["rs2"]][0] == 1, dests
            assert any(isinstance(e, RealServerRetiring) for e in bus.history())
            view = {rs.key: rs for rs in director.snapshot().virtual_servers[0].real_servers}
            assert view[rs1_key].health == "draining"

            # the connection keeps working after the reload; new ones all go to rs2
            assert await asyncio.to_thread(ask, held, "still-there") == "rs1:still-there"
            for n in range(3):
                sock = await asyncio.to_thread(client.call, connect)
                with sock:
                    assert await asyncio.to_thread(ask, sock, f"new{n}") == f"rs2:new{n}"
            await asyncio.sleep(1.5)  # a few drain samples later, still there
            assert kernel_dests()[RS_ADDR["rs1"]][0] == 0
            assert await asyncio.to_thread(ask, held, "later") == "rs1:later"

            # the client closes: rs1's last active connection ends, and rs1 is deleted
            held.close()
            held = None
            await wait_until("rs1 deleted from the kernel table", lambda: RS_ADDR["rs1"] not in kernel_dests())
            retired = [e for e in bus.history() if isinstance(e, RealServerRetired)]
            assert [(e.rs, e.reason) for e in retired] == [(rs1_key, "drained")]
            assert set(kernel_dests()) == {RS_ADDR["rs2"]}
        finally:
            if held is not None:
                held.close()
            await director.stop()
            await director.backend.close()

    asyncio.run(asyncio.wait_for(scenario(), 240))


def test_operator_drain_lets_connections_finish_and_undrain_restores(client: NetnsWorker, tmp_path: Path) -> None:
    """`drain`: weight 0 in the kernel, the established connections keep working and end one by one
    (ActiveConn falls to 0) while every new connection goes to rs2; `undrain` puts the config weight back."""
    conf = tmp_path / "keepalived.conf"
    conf.write_text(config_text(["rs1", "rs2"]))
    rs1 = RS_ADDR["rs1"]

    async def scenario() -> None:
        store = ConfigStore.from_file(str(conf))
        bus = EventBus()
        director = Director(store.running.config, backend=KernelBackend(DIRECTOR), bus=bus, dry_run=True,
                            run_checks=False)
        executor = CommandExecutor(director, store, bus)
        await director.start()
        held: list[socket.socket] = []
        try:
            await wait_until("both real servers in the kernel table",
                             lambda: set(kernel_dests()) == set(RS_ADDR.values()))
            for n in range(6):  # rr: three of them land on rs1
                sock = await asyncio.to_thread(client.call, connect)
                if await asyncio.to_thread(ask, sock, f"c{n}") == f"rs1:c{n}":
                    held.append(sock)
                else:
                    sock.close()
            assert len(held) == 3
            await wait_until("rs1 counts three active connections", lambda: kernel_dests()[rs1][1] == 3)

            result = await executor.run(f"drain {rs1}:{RS_PORT}", who="test")
            assert result.ok, result.message
            assert kernel_dests()[rs1] == (0, 3)
            for n in range(4):
                sock = await asyncio.to_thread(client.call, connect)
                with sock:
                    assert await asyncio.to_thread(ask, sock, f"new{n}") == f"rs2:new{n}"
            while held:
                sock = held.pop()
                assert await asyncio.to_thread(ask, sock, "bye") == "rs1:bye"  # still served while draining
                sock.close()
                left = len(held)
                await wait_until(f"rs1's ActiveConn to fall to {left}",
                                 lambda left=left: kernel_dests()[rs1][1] == left)  # type: ignore[misc]
            assert kernel_dests()[rs1] == (0, 0)  # drained, and still in the table (a drain is not a delete)

            result = await executor.run(f"undrain {rs1}:{RS_PORT}", who="test")
            assert result.ok, result.message
            assert kernel_dests()[rs1][0] == 1
            answers = set()
            for _ in range(4):
                sock = await asyncio.to_thread(client.call, connect)
                with sock:
                    answers.add((await asyncio.to_thread(ask, sock, "x")).split(":")[0])
            assert answers == {"rs1", "rs2"}
        finally:
            for sock in held:
                sock.close()
            await director.stop()
            await director.backend.close()

    asyncio.run(asyncio.wait_for(scenario(), 240))
