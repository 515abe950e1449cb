"""A drain you can watch, against the real kernel: 24 connections held through the VIP to rs1, then
``drain rs1 --until-empty then remove``; the client closes them one by one while the engine samples rs1's
ActiveConn/InActConn straight from IPVS at 5 Hz, fits an ETA, sees the count reach 0 and takes rs1 out of the
table. Meanwhile every new connection goes to rs2 without a single error. The drain lab of _drainlab.py (client →
NAT director → rs1, rs2) in namespaces of its own, the whole Director over the kernel IPVS backend.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _drainlab import RS_ADDR, RS_PORT, Topology, ask, config_text, connect, drain_lab, reset_close, wait_until
from _netns import NetnsWorker

from lvsconsole.engine.bus import EventBus
from lvsconsole.engine.director import Director
from lvsconsole.engine.events import DrainEmpty, DrainProgress, DrainRemoved
from lvsconsole.engine.executor import CommandExecutor
from lvsconsole.engine.store import ConfigStore
from lvsconsole.ipvs.kernel import KernelBackend

pytestmark = pytest.mark.kernel

LAB = Topology("kw-")
HELD = 24
CLOSE_EVERY = 0.3
"""Seconds between two client closes: the count falls at a steady pace the ETA can be fitted to."""


@pytest.fixture(scope="module")
def client() -> Iterator[NetnsWorker]:
    with drain_lab(LAB) as worker:
        yield worker


def kernel_dests() -> dict[str, tuple[int, int]]:
    return LAB.kernel_dests()


def test_drain_until_empty_then_remove_with_live_connections(client: NetnsWorker, tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(config_text(["rs1", "rs2"]))
    rs1 = RS_ADDR["rs1"]
    rs1_key = f"[{rs1}]:tcp:{RS_PORT}"

    async def scenario() -> None:
        store = ConfigStore.from_file(str(conf))
        bus = EventBus(history=10_000)
        director = Director(store.running.config, backend=KernelBackend(LAB.director), bus=bus, dry_run=True,
                            run_checks=False, drain_sample_hz=5.0)
        executor = CommandExecutor(director, store, bus)
        await director.start()
        held: list[socket.socket] = []
        errors: list[str] = []
        answers: list[str] = []
        try:
            await wait_until("both real servers in the kernel table",
                             lambda: set(kernel_dests()) == set(RS_ADDR.values()))
            while len(held) < HELD:  # rr alternates: every other connection lands on rs1
                sock = await asyncio.to_thread(client.call, connect)
                if (await asyncio.to_thread(ask, sock, "hi")).startswith("rs1:"):
                    held.append(sock)
                else:
                    sock.close()
            await wait_until(f"rs1 to count {HELD} active connections", lambda: kernel_dests()[rs1][1] == HELD)

            sub = bus.subscribe(kinds=[DrainProgress, DrainEmpty, DrainRemoved], maxsize=10_000)
            started = time.monotonic()
            result = await executor.run(f"drain {rs1}:{RS_PORT} --until-empty then remove", who="test")
            assert result.ok, result.message
            [watch] = result.data["watches"]
            assert watch["rs"] == rs1_key and watch["phase"] == "draining"
            assert kernel_dests()[rs1] == (0, HELD)

            async def new_clients(stop: asyncio.Event) -> None:
                """New connections all through the drain: each must be answered, and by rs2."""
                n = 0
                while not stop.is_set():
                    n += 1
                    try:
                        sock = await asyncio.to_thread(client.call, connect)
                        with sock:
                            answers.append(await asyncio.to_thread(ask, sock, f"new{n}"))
                    except OSError as exc:
                        errors.append(f"new{n}: {exc}")
                    await asyncio.sleep(0.2)

            stop = asyncio.Event()
            prober = asyncio.create_task(new_clients(stop))
            await asyncio.sleep(1.0)  # a few samples at the full count first
            while held:  # the client ends its connections one by one
                sock = held.pop()
                assert await asyncio.to_thread(ask, sock, "bye") == "rs1:bye"  # still served while draining
                reset_close(sock)
                await asyncio.sleep(CLOSE_EVERY)

            seen: list[DrainProgress] = []
            removed: DrainRemoved | None = None
            empty: DrainEmpty | None = None
            deadline = time.monotonic() + 60
            while removed is None:
                event = await asyncio.wait_for(sub.get(), max(0.1, deadline - time.monotonic()))
                if isinstance(event, DrainProgress) and event.rs == rs1_key:
                    seen.append(event)
                elif isinstance(event, DrainEmpty) and event.rs == rs1_key:
                    empty = event
                elif isinstance(event, DrainRemoved) and event.rs == rs1_key:
                    removed = event
            stop.set()
            await prober
            elapsed = time.monotonic() - started

            # sampled straight from IPVS at >= 4 Hz over the whole drain
            [row] = [w for w in director.drain_watches() if w.rid.rs == rs1_key]
            assert row.watch.phase == "removed"
            assert row.watch.ended_at is not None
            span = row.watch.ended_at - row.watch.started
            assert (row.watch.count - 1) / span >= 4.0, (row.watch.count, span, elapsed)
            rate = row.watch.rate_hz()  # the same over the last minute's window
            assert rate is not None and rate >= 4.0, rate
            # the count fell from HELD to 0, and an ETA was fitted while it fell
            assert seen and seen[0].active == HELD
            assert any(e.eta is not None and e.active > 0 for e in seen), [(e.active, e.eta) for e in seen]
            assert empty is not None and not empty.held
            assert not removed.timed_out
            # rs1 left the table; rs2 is untouched
            await wait_until("rs1 gone from ipvsadm -Ln", lambda: rs1 not in kernel_dests(), timeout=10)
            assert set(kernel_dests()) == {RS_ADDR["rs2"]}
            [vs] = director.snapshot().virtual_servers
            assert {rs.key: rs.admin_state for rs in vs.real_servers}[rs1_key] == "maint"
            # and not one new client suffered
            assert errors == []
            assert answers and all(a.startswith("rs2:") for a in answers), answers
            sub.close()
        finally:
            for sock in held:
                sock.close()
            await director.stop()
            await director.backend.close()

    asyncio.run(asyncio.wait_for(scenario(), 240))
