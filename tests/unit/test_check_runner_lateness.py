"""Per-ref lateness as the runner reports it (kept on the probe, built on demand), on the callback path of a
real TCP_CHECK against a loopback listener, and for a probe shared by two refs."""

from __future__ import annotations

import asyncio
import socket

from _checkutil import run

from lvsconsole.check.policy import CheckParams, CheckPolicy, RealServerParams, VirtualServerParams
from lvsconsole.check.runner import CheckRecord, CheckRunner
from lvsconsole.check.tcp import TcpChecker


async def checked(listener: socket.socket, vss: int, count: int) -> tuple[CheckRunner, list[CheckRecord]]:
    host, port = listener.getsockname()
    rs = RealServerParams(host, port, checkers=(CheckParams(delay_loop=0.02, warmup=0),))
    pol = CheckPolicy([VirtualServerParams(f"10.9.9.{i + 1}", 80, real_servers=(rs,)) for i in range(vss)],
                      bootstrap_delay=0.0)
    checker = TcpChecker(host, port, connect_timeout=1.0)  # one object: the refs share one probe
    records: list[CheckRecord] = []
    enough = asyncio.Event()

    def on_record(rec: CheckRecord) -> None:
        records.append(rec)
        if len(records) >= count:
            enough.set()

    runner = CheckRunner(pol, dict.fromkeys(pol.checker_refs(), checker), lambda a: None, on_record=on_record)
    assert runner.last_lateness == {}  # nothing has run yet
    runner.start()
    async with asyncio.timeout(10):
        await enough.wait()
    await runner.stop()
    return runner, records


def test_last_lateness_is_each_refs_last_record() -> None:
    with socket.create_server(("127.0.0.1", 0), backlog=64) as listener:
        runner, records = run(checked(listener, 1, 5))
    assert all(r.outcome.ok for r in records)
    (ref,) = runner.last_lateness
    assert runner.last_lateness[ref] == records[-1].lateness >= 0.0


def test_a_shared_probe_reports_its_lateness_for_every_ref() -> None:
    with socket.create_server(("127.0.0.1", 0), backlog=64) as listener:
        runner, records = run(checked(listener, 2, 6))
    assert runner.stats.shared == 1
    last = {r.ref: r.lateness for r in records}
    assert runner.last_lateness == last and len(last) == 2
