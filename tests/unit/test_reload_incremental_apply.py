"""A one-change reload touches only what changed, with the same outcome as from scratch: the director's desired
table keeps the entries of unchanged virtual servers (the same objects, so the IPVS sync compares only the
changed one), validation findings are reused only while what they depend on is unchanged, and a reload through
the store builds the file incrementally."""

from __future__ import annotations

import asyncio
import dataclasses
from ipaddress import IPv4Address
from pathlib import Path

from lvsconsole.config.build import load_text
from lvsconsole.config.localaddr import LocalAddressMemo
from lvsconsole.config.validate import validate
from lvsconsole.engine.bus import EventBus
from lvsconsole.engine.director import Director
from lvsconsole.engine.director_api import OverrideChange, RsId
from lvsconsole.engine.executor import CommandExecutor
from lvsconsole.engine.store import ConfigStore
from lvsconsole.ipvs.from_config import configured_table
from lvsconsole.ipvs.memory import MemoryBackend


def config_text(n_vs: int = 5, *, changed: int | None = None, vip: str = "10.255.0.1") -> str:
    parts = [
        "vrrp_instance VI_1 {\n    state BACKUP\n    interface lo\n    virtual_router_id 51\n    priority 100\n"
        f"    virtual_ipaddress {{\n        {vip}/32\n    }}\n}}\n"
    ]
    for v in range(n_vs):
        weight = 3 if v == changed else 2
        parts.append(
            f"virtual_server 10.100.0.{v + 1} 80 {{\n    lb_algo wrr\n    lb_kind DR\n    protocol TCP\n"
            f"    real_server 10.0.{v}.10 80 {{\n        weight {weight}\n    }}\n"
            f"    real_server 10.0.{v}.11 80 {{\n        weight 1\n    }}\n}}\n")
    return "".join(parts)


def test_reload_reuses_the_entries_of_unchanged_virtual_servers(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(config_text())

    async def scenario() -> None:
        store = ConfigStore.from_file(str(conf))
        backend = MemoryBackend()
        bus = EventBus()
        director = Director(store.running.config, backend=backend, bus=bus, dry_run=True, run_checks=False)
        executor = CommandExecutor(director, store, bus)
        await director.start()
        try:
            before = director.desired_table()
            assert all(director.desired_table()[key] is entry for key, entry in before.items())
            old_vss = store.running.config.virtual_servers

            conf.write_text(config_text(changed=2))
            result = await executor.run("reload", who="test")
            assert result.ok, result.message
            assert result.data["applied"] == ["edit dest TCP 10.100.0.3:80 -> 10.0.2.10:80 Route weight 3"]
            new_config = store.running.config
            assert [a is b for a, b in zip(old_vss, new_config.virtual_servers, strict=True)] == [
                True, True, False, True, True]

            after = director.desired_table()
            assert after == configured_table(new_config)
            assert backend.table == configured_table(new_config)
            reused = [after[key] is entry for key, entry in before.items()]
            assert reused == [True, True, False, True, True]

            # an override rebuilds only the entry of its virtual server
            await director.set_override([RsId("[10.100.0.4]:tcp:80", "[10.0.3.11]:tcp:80")],
                                        OverrideChange("drain"))
            drained = director.desired_table()
            assert [drained[key] is entry for key, entry in after.items()] == [True, True, True, False, True]
            assert {dest.weight for dest in list(drained.values())[3].dests.values()} == {2, 0}
        finally:
            await director.stop()

    asyncio.run(scenario())


def test_validation_findings_follow_what_they_depend_on() -> None:
    config = load_text(config_text(), filename="/nonexistent/keepalived.conf").config
    assert validate(config) == validate(config)
    # A real server that is the VRRP instance's VIP is the LVS-DR trap: the same virtual server objects, a
    # different VIP, must give the finding although the virtual servers' findings were kept.
    trap = dataclasses.replace(config, instances=load_text(config_text(vip="10.0.1.10"),
                                                           filename="/nonexistent/keepalived.conf").config.instances)
    assert all(a is b for a, b in zip(config.virtual_servers, trap.virtual_servers, strict=True))
    messages = [d.message for d in validate(trap)]
    assert any("real_server 10.0.1.10 is a VIP of (VI_1)" in message for message in messages)
    assert not any("is a VIP of" in d.message for d in validate(config))


def test_bind_answers_are_forgotten_when_the_host_state_changes(tmp_path: Path) -> None:
    state = tmp_path / "fib_trie"
    state.write_text("Local:\n  127.0.0.1 /32 host LOCAL\n")
    memo = LocalAddressMemo((str(state),))
    answers = memo.answers()
    answers[IPv4Address("10.0.0.1")] = True
    assert memo.answers() is answers
    state.write_text("Local:\n  127.0.0.1 /32 host LOCAL\n  10.0.0.1 /32 host LOCAL\n")
    assert memo.answers() == {}
    state.unlink()  # unreadable: nothing is remembered from one call to the next
    first = memo.answers()
    first[IPv4Address("10.0.0.1")] = True
    assert memo.answers() == {}
