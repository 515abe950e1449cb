"""A reload applied to running checks in place (CheckService.reload): only what the plan changes restarts.

Unchanged checks keep their exact next-due time, state and place in the runner's schedule; removed ones stop;
added ones start; a changed checker restarts for its real server only; a shared probe stays right when one of
the (VS, RS) pairs it feeds changes; VS-level changes (quorum) re-evaluate just that virtual server. Real TCP
checks against loopback: a listener for the live servers, a closed port for the dead ones.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import pytest
from _checkutil import free_port, run

from lvsconsole.check.policy import Action, CheckerRef, DestWeight, QuorumLost, RsRef
from lvsconsole.check.runner import CheckRecord
from lvsconsole.check.service import CheckService
from lvsconsole.config.build import load_text
from lvsconsole.config.diff import diff
from lvsconsole.config.model import Config

A = TypeVar("A")
VS_A, VS_B = "[10.9.9.1]:tcp:80", "[10.9.9.2]:tcp:80"


def config(text: str) -> Config:
    result = load_text(textwrap.dedent(text))
    errors = [str(d) for d in result.diagnostics if d.is_error]
    assert not errors, errors
    return result.config


def tcp(port: int, extra: str = "") -> str:
    lines = ["connect_ip 127.0.0.1", f"connect_port {port}", "connect_timeout 1", "retry 0", extra]
    return "TCP_CHECK {\n" + "".join(f"            {line}\n" for line in lines if line) + "        }"


def virtual_server(address: str, servers: dict[str, tuple[int, str]], extra: str = "") -> str:
    """``servers``: real server address → (weight, checker block)."""
    body = "".join(f"    real_server {rs} 80 {{\n        weight {w}\n        {check}\n    }}\n"
                   for rs, (w, check) in servers.items())
    return (f"virtual_server {address} 80 {{\n    protocol TCP\n    delay_loop 30\n    warmup 0\n    {extra}\n"
            f"{body}}}\n")


def rs(address: str) -> str:
    return f"[{address}]:tcp:80"


@dataclass
class Probe:
    """The checks of one running service, as they complete, and the actions they produce."""

    records: list[CheckRecord] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    applied: asyncio.Event = field(default_factory=asyncio.Event)

    def on_record(self, record: CheckRecord) -> None:
        self.records.append(record)
        self.arrived.set()

    def apply(self, actions: Sequence[Action]) -> None:
        self.actions.extend(actions)
        self.applied.set()

    async def applied_of(self, kind: type[A]) -> list[A]:
        """The actions of this type applied so far, once there is one (bounded by the caller's timeout)."""
        while not any(isinstance(a, kind) for a in self.actions):
            self.applied.clear()
            await self.applied.wait()
        return [a for a in self.actions if isinstance(a, kind)]

    async def until(self, refs: set[CheckerRef]) -> None:
        """Wait until every ref in ``refs`` has a result (bounded by the caller's timeout)."""
        while not refs <= {r.ref for r in self.records}:
            self.arrived.clear()
            await self.arrived.wait()


@asynccontextmanager
async def running(cfg: Config) -> AsyncIterator[tuple[CheckService, Probe]]:
    probe = Probe()
    service = CheckService(cfg, probe.apply, bootstrap_delay=0.0, run_notifies=False)
    service.add_record_listener(probe.on_record)
    await service.start()
    try:
        yield service, probe
    finally:
        await service.stop(shutdown=False)


@asynccontextmanager
async def listener() -> AsyncIterator[int]:
    async def close(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(close, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def state(service: CheckService, ref: CheckerRef) -> tuple[float, bool, bool, object, int]:
    """Everything a reload must leave alone on an unchanged check: due time, up, alive, its runner group
    (the same object) and that group's heap entry (the same scheduled probe)."""
    p = service.policy
    group = service.runner._group_of[ref]
    return (p.next_check_time(ref.rs, ref.index), p.checker_up(ref.rs, ref.index), p.is_alive(ref.rs), group,
            group.entry)


def reload(service: CheckService, new: Config) -> bool:
    return service.reload(new, diff(service.config, new))


def test_one_weight_change_leaves_every_check_as_it_was() -> None:
    async def scenario() -> None:
        dead = free_port()
        async with listener() as live:
            servers = {"10.0.0.1": (1, tcp(live)), "10.0.0.2": (2, tcp(dead)), "10.0.0.3": (3, tcp(live))}
            old = config(virtual_server("10.9.9.1", servers) + virtual_server("10.9.9.2", servers))
            async with running(old) as (service, probe):
                refs = {CheckerRef(RsRef(vs, rs(a)), 0) for vs in (VS_A, VS_B) for a in servers}
                await probe.until(refs)
                before = {ref: state(service, ref) for ref in refs}
                assert not before[CheckerRef(RsRef(VS_A, rs("10.0.0.2")), 0)][1]  # the dead one is down
                checks_before = service.runner.stats.checks

                new = config(virtual_server("10.9.9.1", {**servers, "10.0.0.3": (7, tcp(live))})
                             + virtual_server("10.9.9.2", servers))
                probe.actions.clear()
                assert reload(service, new)

                assert {ref: state(service, ref) for ref in refs} == before
                assert service.runner.stats.checks == checks_before  # nothing probed early
                changed = RsRef(VS_A, rs("10.0.0.3"))
                assert service.policy.effective_weight(changed) == 7
                assert await probe.applied_of(DestWeight) == [
                    DestWeight(VS_A, changed.rs, "10.0.0.3", 80, 7)
                ]
                snapshot = {r.rs: r for v in service.snapshot().virtual_servers if v.vs == VS_A for r in v.real_servers}
                assert snapshot[changed.rs].weight == 7 and snapshot[changed.rs].ipvs_weight == 7
                assert snapshot[changed.rs].checkers[0].last_ok is True  # its check history survives

    run(scenario(), 20)


def test_removed_checks_stop_added_start_and_a_changed_checker_restarts_only_its_server() -> None:
    async def scenario() -> None:
        dead = free_port()
        async with listener() as live:
            old = config(virtual_server("10.9.9.1", {
                "10.0.0.1": (1, tcp(live)), "10.0.0.2": (1, tcp(dead)), "10.0.0.3": (1, tcp(live)),
            }))
            async with running(old) as (service, probe):
                first = {CheckerRef(RsRef(VS_A, rs(a)), 0) for a in ("10.0.0.1", "10.0.0.2", "10.0.0.3")}
                await probe.until(first)
                gone, kept, fixed = (CheckerRef(RsRef(VS_A, rs(a)), 0) for a in ("10.0.0.1", "10.0.0.3", "10.0.0.2"))
                kept_before = state(service, kept)
                fixed_due = service.policy.next_check_time(fixed.rs, 0)

                new = config(virtual_server("10.9.9.1", {
                    "10.0.0.2": (1, tcp(live)),  # its checker now probes the live port
                    "10.0.0.3": (1, tcp(live)),
                    "10.0.0.4": (1, tcp(live)),  # added
                }))
                assert reload(service, new)

                added = CheckerRef(RsRef(VS_A, rs("10.0.0.4")), 0)
                assert gone not in service.runner._group_of and gone.rs not in service.policy.real_servers(VS_A)
                assert state(service, kept) == kept_before
                assert service.policy.next_check_time(fixed.rs, 0) < fixed_due  # restarted: checked again soon
                probe.records.clear()
                await probe.until({added, fixed})
                assert {r.ref for r in probe.records} <= {added, fixed}  # the kept one was not probed again
                assert service.policy.is_alive(fixed.rs) and service.policy.checker_up(fixed.rs, 0)
                assert service.policy.is_alive(added.rs)
                assert service.setup.checkers.keys() == {kept, fixed, added}

    run(scenario(), 20)


def test_a_shared_probe_goes_on_for_the_pairs_that_did_not_change() -> None:
    async def scenario() -> None:
        async with listener() as live:
            same = {"10.0.0.1": (1, tcp(live))}
            old = config(virtual_server("10.9.9.1", same) + virtual_server("10.9.9.2", same))
            async with running(old) as (service, probe):
                a, b = CheckerRef(RsRef(VS_A, rs("10.0.0.1")), 0), CheckerRef(RsRef(VS_B, rs("10.0.0.1")), 0)
                assert service.runner.sharing(a) == 2
                await probe.until({a, b})
                b_before = state(service, b)

                new = config(virtual_server("10.9.9.1", {"10.0.0.1": (1, tcp(live, "delay_before_retry 2"))})
                             + virtual_server("10.9.9.2", same))
                assert reload(service, new)

                assert service.runner.sharing(a) == 1 and service.runner.sharing(b) == 1
                assert service.runner.stats.shared == 0
                due, up, alive, group, _ = state(service, b)
                assert (due, up, alive, group) == b_before[:4]
                assert service.runner._group_of[b].refs == (b,)
                probe.records.clear()
                await probe.until({a})
                assert all(r.ref == a for r in probe.records)

    run(scenario(), 20)


def test_a_quorum_change_re_evaluates_just_that_virtual_server() -> None:
    async def scenario() -> None:
        dead = free_port()
        async with listener() as live:
            servers = {"10.0.0.1": (1, tcp(live)), "10.0.0.2": (1, tcp(dead))}
            old = config(virtual_server("10.9.9.1", servers) + virtual_server("10.9.9.2", servers))
            async with running(old) as (service, probe):
                refs = {CheckerRef(RsRef(vs, rs(a)), 0) for vs in (VS_A, VS_B) for a in servers}
                await probe.until(refs)
                before = {ref: state(service, ref) for ref in refs}
                assert service.policy.quorum_up(VS_A)
                probe.actions.clear()

                new = config(virtual_server("10.9.9.1", servers, "quorum 2") + virtual_server("10.9.9.2", servers))
                assert reload(service, new)

                assert not service.policy.quorum_up(VS_A) and service.policy.quorum_up(VS_B)
                assert [a.vs for a in await probe.applied_of(QuorumLost)] == [VS_A]
                assert {ref: state(service, ref) for ref in refs} == before

    run(scenario(), 20)


def test_a_global_checker_setting_asks_for_a_whole_new_service() -> None:
    async def scenario() -> None:
        port = free_port()
        servers = {"10.0.0.1": (1, tcp(port))}
        old = config(virtual_server("10.9.9.1", servers))
        async with running(old) as (service, _):
            new = config("global_defs {\n    checker_log_all_failures\n}\n" + virtual_server("10.9.9.1", servers))
            assert not reload(service, new)
            assert service.config is old

    run(scenario(), 20)


def test_a_reload_takes_the_concurrency_bound_from_the_open_file_limit_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # the engine raises the limit to what the new config needs before reloading the checks (engine/fdlimit.py)
    import lvsconsole.check.service as service_module

    async def scenario() -> None:
        dead = free_port()
        old = config(virtual_server("10.9.9.1", {"10.0.0.1": (1, tcp(dead))}))
        new = config(virtual_server("10.9.9.1", {"10.0.0.1": (1, tcp(dead)), "10.0.0.2": (1, tcp(dead))}))
        async with running(old) as (service, _):
            assert service.runner.max_concurrency == service_module.default_concurrency()
            monkeypatch.setattr(service_module, "default_concurrency", lambda: 7777)
            assert reload(service, new)
            assert service.runner.max_concurrency == 7777
        fixed = CheckService(old, bootstrap_delay=0.0, run_notifies=False, max_concurrency=5)
        await fixed.start()
        try:
            assert reload(fixed, new) and fixed.runner.max_concurrency == 5  # an explicit bound stays
        finally:
            await fixed.stop(shutdown=False)

    run(scenario(), 20)
