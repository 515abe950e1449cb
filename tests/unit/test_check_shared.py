"""Shared checks: identical checks of one real server under several virtual servers are probed once and
feed every (VS, RS) pair; checks that differ in anything (timing included) stay apart."""

from __future__ import annotations

import asyncio
import socket
import textwrap
from collections.abc import Sequence

from _checkutil import run

from lvsconsole.check.from_config import build_checks, probe_identity
from lvsconsole.check.policy import Action, CheckerRef, CheckParams, DestDown, RsRef
from lvsconsole.check.runner import CheckRecord
from lvsconsole.check.service import CheckService
from lvsconsole.check.tcp import TcpChecker
from lvsconsole.config.build import load_text
from lvsconsole.config.model import Config


def config(text: str) -> Config:
    result = load_text(textwrap.dedent(text))
    errors = [str(d) for d in result.diagnostics if d.is_error]
    assert not errors, errors
    return result.config


def two_vs(port: int, first: str, second: str, *, vs_extra: str = "") -> Config:
    return config(f"""
        virtual_server 10.9.9.1 80 {{
            protocol TCP
            lvs_sched rr
            lvs_method NAT
            delay_loop 0.2
            warmup 0
            {vs_extra}
            real_server 127.0.0.1 {port} {{
                {first}
            }}
        }}
        virtual_server 10.9.9.2 80 {{
            protocol TCP
            lvs_sched rr
            lvs_method NAT
            delay_loop 0.2
            warmup 0
            real_server 127.0.0.1 {port} {{
                {second}
            }}
        }}
    """)


TCP = "TCP_CHECK { connect_timeout 1 retry 0 }"
VS1, VS2 = "[10.9.9.1]:tcp:80", "[10.9.9.2]:tcp:80"


def refs(port: int) -> tuple[CheckerRef, CheckerRef]:
    rs = f"[127.0.0.1]:tcp:{port}"
    return CheckerRef(RsRef(VS1, rs), 0), CheckerRef(RsRef(VS2, rs), 0)


# ---- which checks are the same check ----------------------------------------------------------------


def test_identical_checks_get_one_checker_object() -> None:
    setup = build_checks(two_vs(8080, TCP, TCP))
    a, b = refs(8080)
    assert setup.checkers[a] is setup.checkers[b]


def test_checks_differing_in_timing_or_probe_stay_apart() -> None:
    a, b = refs(8080)
    slower = TCP.replace("retry 0", "retry 0 delay_loop 0.5")
    other_target = TCP.replace("retry 0", "retry 0 connect_port 8081")
    falls = TCP.replace("retry 0", "retry 0 fall 2")
    for second in (slower, other_target, falls):
        setup = build_checks(two_vs(8080, TCP, second))
        assert setup.checkers[a] is not setup.checkers[b], second


def test_http_checks_differing_only_in_inherited_virtualhost_stay_apart() -> None:
    http = "HTTP_GET { url { path /health } }"
    a, b = refs(8080)
    same = build_checks(two_vs(8080, http, http))
    assert same.checkers[a] is same.checkers[b]
    apart = build_checks(two_vs(8080, http, http, vs_extra="virtualhost shop.example"))
    assert apart.checkers[a] is not apart.checkers[b]


def test_identity_covers_the_probe_and_the_params() -> None:
    params = CheckParams(delay_loop=5.0)
    probe = TcpChecker("10.0.0.2", 80, 1.0)
    assert probe_identity(probe, params) == probe_identity(TcpChecker("10.0.0.2", 80, 1.0), params)
    assert probe_identity(probe, params) != probe_identity(TcpChecker("10.0.0.2", 80, 2.0), params)
    assert probe_identity(probe, params) != probe_identity(probe, CheckParams(delay_loop=5.0, rise=2))


# ---- one probe per interval, both virtual servers follow ----------------------------------------------


def test_one_connection_per_interval_feeds_both_virtual_servers() -> None:
    async def scenario() -> None:
        # A listener that never accepts: every completed handshake waits in its backlog, so after the
        # checks stop the backlog holds exactly the connections they made.
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        a, b = refs(port)
        records: list[CheckRecord] = []
        probes = asyncio.Event()
        removed: dict[str, asyncio.Event] = {VS1: asyncio.Event(), VS2: asyncio.Event()}

        def on_record(record: CheckRecord) -> None:
            records.append(record)
            if sum(r.primary for r in records) >= 5:
                probes.set()

        def apply(actions: Sequence[Action]) -> None:
            for action in actions:
                if isinstance(action, DestDown) and action.vs in removed:
                    removed[action.vs].set()

        service = CheckService(two_vs(port, TCP, TCP), apply, bootstrap_delay=0.0, run_notifies=False)
        service.add_record_listener(on_record)
        assert service.runner.stats.shared == 1 and service.runner.sharing(a) == 2
        try:
            await service.start()
            async with asyncio.timeout(10):
                await probes.wait()
            made = sum(r.primary for r in records)
            copies = [r for r in records if not r.primary]
            assert {r.ref for r in records} == {a, b}
            assert len(copies) == made  # every probe's result reached the other VS too
            snapshot = service.snapshot()
            assert all(rs.checkers[0].shared == 2 for vs in snapshot.virtual_servers for rs in vs.real_servers)

            accepted = 0
            while True:
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    break
                conn.close()
                accepted += 1
            # one connection per interval, not one per virtual server (plus a probe in flight if the
            # loop was too late to resume us before the next one was due)
            assert made <= accepted <= made + service.runner.stats.in_flight

            listener.close()  # now refused: both virtual servers must drop the server
            async with asyncio.timeout(10):
                await asyncio.gather(removed[VS1].wait(), removed[VS2].wait())
            assert not service.policy.is_alive(a.rs) and not service.policy.is_alive(b.rs)
        finally:
            await service.stop(shutdown=False)
            listener.close()

    run(scenario(), limit=30)
