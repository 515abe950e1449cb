"""ha_suspend: which virtual servers follow which VRRP instances, and the check service holding their checks
(against real loopback listeners: a held VS produces no probe while another VS goes on being checked)."""

from __future__ import annotations

import asyncio
import textwrap

from _checkutil import LIMIT, run

from lvsconsole.check.ha_suspend import HaSuspend
from lvsconsole.check.runner import CheckRecord
from lvsconsole.check.service import CheckService
from lvsconsole.config.build import load_text
from lvsconsole.config.model import Config


def config(text: str) -> Config:
    result = load_text(textwrap.dedent(text))
    errors = [str(d) for d in result.diagnostics if d.is_error]
    assert not errors, errors
    return result.config


INSTANCES = """
vrrp_instance VI_1 {
    state BACKUP
    interface lo
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        10.1.1.1/32
    }
}
vrrp_instance VI_2 {
    state BACKUP
    interface lo
    virtual_router_id 52
    priority 100
    virtual_ipaddress {
        10.1.1.2/32
    }
    virtual_ipaddress_excluded {
        10.1.1.3/32
    }
}
"""


def vs(address: str, port: int, *, ha_suspend: bool, rs: str = "127.0.0.1", delay: float = 60) -> str:
    return f"""
virtual_server {address} {port} {{
    delay_loop {delay:g}
    lb_kind NAT
    protocol TCP
    {"ha_suspend" if ha_suspend else ""}
    real_server {rs} {port} {{
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
}}
"""


def test_a_virtual_server_follows_the_instances_owning_its_address() -> None:
    cfg = config(
        INSTANCES
        + vs("10.1.1.1", 80, ha_suspend=True)
        + vs("10.1.1.3", 80, ha_suspend=True)  # an excluded VIP is owned too
        + vs("10.1.1.2", 81, ha_suspend=False)
        + vs("10.9.9.9", 80, ha_suspend=True)  # no instance owns it
    )
    plan = HaSuspend.from_config(cfg)
    assert plan.owners == {"[10.1.1.1]:tcp:80": {"VI_1"}, "[10.1.1.3]:tcp:80": {"VI_2"}}
    assert plan.unowned == ("[10.9.9.9]:tcp:80",)
    assert plan.suspended(set()) == {"[10.1.1.1]:tcp:80", "[10.1.1.3]:tcp:80"}
    assert plan.suspended({"VI_1"}) == {"[10.1.1.3]:tcp:80"}
    assert plan.suspended({"VI_1", "VI_2"}) == frozenset()


def test_held_checks_stay_silent_and_resume_when_lifted() -> None:
    async def main() -> None:
        listener = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        # Two virtual servers checking the same listener every 50 ms; only the first is held.
        cfg = config(
            INSTANCES
            + vs("10.1.1.1", port, ha_suspend=True, delay=0.05)
            + vs("10.1.1.2", port, ha_suspend=False, delay=0.05)
        )
        held_key, free_key = f"[10.1.1.1]:tcp:{port}", f"[10.1.1.2]:tcp:{port}"
        records: dict[str, list[CheckRecord]] = {held_key: [], free_key: []}
        enough_free = asyncio.Event()
        held_again = asyncio.Event()

        def on_record(record: CheckRecord) -> None:
            records[record.ref.rs.vs].append(record)
            if len(records[free_key]) >= 10:
                enough_free.set()
            if records[held_key]:
                held_again.set()

        service = CheckService(cfg, None, run_notifies=False)
        service.add_record_listener(on_record)
        service.suspend_virtual_servers(HaSuspend.from_config(cfg).suspended(set()))
        assert service.suspended_virtual_servers == {held_key}
        async with listener:
            await service.start()
            try:
                async with asyncio.timeout(LIMIT):
                    await enough_free.wait()
                assert records[held_key] == []  # ten rounds of the other VS, none of the held one
                service.suspend_virtual_servers(HaSuspend.from_config(cfg).suspended({"VI_1"}))
                async with asyncio.timeout(LIMIT):
                    await held_again.wait()
                assert records[held_key][0].outcome.ok
            finally:
                await service.stop(shutdown=False)
        texts = [e.message for e in service.history]
        rs = f"[127.0.0.1]:tcp:{port}"
        assert f"Suspending healthchecker for service {rs} for VS {held_key}" in texts
        assert f"Activating healthchecker for service {rs} for VS {held_key}" in texts

    run(main())


def test_lifting_ha_suspend_leaves_an_operators_maint_paused() -> None:
    async def main() -> None:
        listener = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        cfg = config(
            INSTANCES
            + vs("10.1.1.1", port, ha_suspend=True, delay=0.05)
            + vs("10.1.1.2", port, ha_suspend=False, delay=0.05)
        )
        held_key, free_key = f"[10.1.1.1]:tcp:{port}", f"[10.1.1.2]:tcp:{port}"
        counts = {held_key: 0, free_key: 0}
        rounds = asyncio.Event()

        def on_record(record: CheckRecord) -> None:
            counts[record.ref.rs.vs] += 1
            if counts[free_key] >= 10:
                rounds.set()

        service = CheckService(cfg, None, run_notifies=False)
        service.add_record_listener(on_record)
        (held_rs,) = service.policy.real_servers(held_key)
        service.suspend_virtual_servers({held_key})
        service.pause(held_rs)  # maint while held
        async with listener:
            await service.start()
            try:
                service.suspend_virtual_servers(set())  # VRRP became MASTER: maint still holds it
                async with asyncio.timeout(LIMIT):
                    await rounds.wait()
                assert counts[held_key] == 0
            finally:
                await service.stop(shutdown=False)

    run(main())


def test_the_director_runs_ha_suspend_checks_only_while_the_owning_instance_is_master() -> None:
    from lvsconsole.engine.bus import EventBus
    from lvsconsole.engine.director import Director
    from lvsconsole.ipvs.memory import MemoryBackend
    from lvsconsole.vrrp.machine import State

    async def main() -> None:
        listener = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        cfg = config(f"""
            vrrp_instance VI_1 {{
                interface lo
                virtual_router_id 51
                priority 100
                version 3
                advert_int 0.05
                virtual_ipaddress {{
                    192.0.2.188/32
                }}
            }}
            virtual_server 192.0.2.188 {port} {{
                delay_loop 0.05
                lb_kind NAT
                protocol TCP
                ha_suspend
                real_server 127.0.0.1 {port} {{
                    TCP_CHECK {{
                        connect_timeout 1
                    }}
                }}
            }}
        """)
        director = Director(cfg, backend=MemoryBackend(), bus=EventBus(), dry_run=True)
        states_at_records: list[State | None] = []  # None: before VRRP even started
        five = asyncio.Event()

        def on_check(record: CheckRecord) -> None:
            vrrp = director.vrrp
            states_at_records.append(vrrp.instances["VI_1"].machine.state if vrrp is not None else None)
            if len(states_at_records) >= 5:
                five.set()

        director.add_check_listener(on_check)
        async with listener:
            await director.start()
            try:
                assert director.checks is not None
                assert director.checks.suspended_virtual_servers == {f"[192.0.2.188]:tcp:{port}"}
                async with asyncio.timeout(LIMIT):
                    await five.wait()
            finally:
                await director.stop()
        assert set(states_at_records) == {State.MASTER}  # nothing was checked before VI_1 took the address

    run(main())
