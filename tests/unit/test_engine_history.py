"""Config history (content-addressed, persistent), blame, rollback to any version, commit confirmed, preview ops."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from test_engine_fakes import TWO_VS, FakeDirector, run

from lvsconsole.engine.bus import EventBus
from lvsconsole.engine.commands import Result, parse
from lvsconsole.engine.confirm import ConfirmPlanner, NothingPending
from lvsconsole.engine.daemon import running_engine
from lvsconsole.engine.events import (
    CommitConfirmed,
    CommitPending,
    CommitRolledBack,
    event_from_json,
    event_to_json,
)
from lvsconsole.engine.executor import CommandExecutor
from lvsconsole.engine.history import HistoryLog, digest_of
from lvsconsole.engine.store import ConfigStore, StoreError

WHO = "uid=1000(alice)"
RS189 = "[192.168.2.188]:tcp:80 -> [192.168.2.189]:80"


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "keepalived.conf"
    path.write_text(TWO_VS)
    return path


def open_store(conf: Path, history: Path) -> ConfigStore:
    return ConfigStore.from_file(str(conf), archive=HistoryLog(str(history)))


def commit_edit(store: ConfigStore, text: str, who: str = WHO) -> None:
    store.edit(parse(text))  # type: ignore[arg-type]
    store.commit(who)


# ---------------------------------------------------------------------------------------------- the store


def test_history_is_content_addressed_and_survives_a_restart(conf: Path, tmp_path: Path) -> None:
    history = tmp_path / "history"
    store = open_store(conf, history)
    first = store.running.text
    commit_edit(store, "set rs 192.168.2.189:80 weight 3", "alice")
    store.rollback(1)
    store.commit("bob")  # the same text as the first again
    entries = store.archive.entries
    assert [(e.seq, e.who, e.how) for e in entries] == [(3, "bob", "rollback"), (2, "alice", "commit"),
                                                        (1, "startup", "startup")]
    assert entries[0].digest == entries[2].digest == digest_of(first)
    assert entries[0].parent == entries[1].digest
    objects = sorted(p.name for p in (history / "objects").iterdir())
    assert objects == sorted({digest_of(first), entries[1].digest})  # identical configs share one object
    assert (history / "objects" / entries[1].digest).read_text() == store.archive.text(entries[1].digest)

    again = open_store(conf, history)  # same dir, same config: nothing new recorded, numbering continues
    assert [e.seq for e in again.archive.entries] == [3, 2, 1]
    assert again.running.number == 3
    assert again.archive.text(entries[1].digest).count("weight 3") == 1
    assert again.archive.entries[1].changes == ({"kind": "changed", "section": "real_server", "key": RS189},)


def test_an_unwritable_history_dir_falls_back_to_memory(conf: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    store = open_store(conf, blocker / "history")
    assert not store.archive.persistent
    assert store.archive.warning is not None and "in memory" in store.archive.warning
    commit_edit(store, "set rs 192.168.2.189:80 weight 3")
    assert len(store.archive.entries) == 2


def test_rollback_to_any_version_by_position_or_digest(conf: Path, tmp_path: Path) -> None:
    store = open_store(conf, tmp_path / "h")
    original = store.running.config
    for weight in (3, 4, 5):
        commit_edit(store, f"set rs 192.168.2.189:80 weight {weight}")
    oldest = store.archive.entries[-1]
    store.rollback(oldest.digest[:8])
    assert store.candidate.config == original
    rev = store.commit("carol")
    assert rev.config == original
    assert store.archive.entries[0].how == "rollback" and store.archive.entries[0].who == "carol"
    store.rollback(2)  # weight 4
    assert store.candidate.config.virtual_servers[0].real_servers[1].weight == 4
    with pytest.raises(StoreError, match="no version with digest"):
        store.rollback("ffffffff")
    with pytest.raises(StoreError, match="neither"):
        store.rollback("xyz")


def test_blame_names_the_revision_and_who_last_changed_each_server(conf: Path, tmp_path: Path) -> None:
    store = open_store(conf, tmp_path / "h")
    commit_edit(store, "set rs 192.168.2.189:80 weight 3", "alice")
    commit_edit(store, "set vs 192.168.2.188:443 lb_algo rr", "bob")
    executor = CommandExecutor(FakeDirector(store.running.config), store, EventBus())
    result = run(executor.run("show blame", WHO))
    assert result.ok, result.message
    by_key = {row["key"]: row for row in result.data}
    assert by_key[RS189]["who"] == "alice" and by_key[RS189]["seq"] == 2
    assert by_key["[192.168.2.188]:tcp:80"]["who"] == "alice"  # its real server changed
    assert by_key["[192.168.2.188]:tcp:443"]["who"] == "bob"
    assert by_key["[192.168.2.188]:tcp:80 -> [192.168.2.187]:80"]["who"] == "startup"  # came with its VS
    only = run(executor.run("show blame rs 192.168.2.189:80", WHO))
    assert [row["key"] for row in only.data] == [RS189]
    assert "alice" in only.message


def test_show_history_and_diff_between_versions(conf: Path, tmp_path: Path) -> None:
    store = open_store(conf, tmp_path / "h")
    commit_edit(store, "set rs 192.168.2.189:80 weight 3", "alice")
    executor = CommandExecutor(FakeDirector(store.running.config), store, EventBus())
    listing = run(executor.run("show history", WHO))
    json.dumps(listing.as_json())
    assert [(r["n"], r["number"], r["who"], r["how"]) for r in listing.data] == [(0, 2, "alice", "commit"),
                                                                               (1, 1, "startup", "startup")]
    one = run(executor.run(f"show history {listing.data[1]['digest'][:10]}", WHO))
    assert one.ok and one.data["n"] == 1 and "weight 1" in one.data["text"]
    between = run(executor.run("diff 1", WHO))
    assert between.ok
    assert [(c["section"], c["key"]) for c in between.data["changes"]] == [("real_server", RS189)]
    assert "-        weight 1" in between.data["unified"] and "+        weight 3" in between.data["unified"]
    assert not run(executor.run("diff 7", WHO)).ok


# ---------------------------------------------------------------------------------------------- commit confirmed


def test_confirm_planner_with_a_virtual_clock() -> None:
    planner = ConfirmPlanner()
    planner.start(100.0, 60, restore_digest="a", restore_revision=1, revision=2, who="alice")
    assert planner.due(159.9) is None
    planner.start(150.0, 60, restore_digest="b", restore_revision=2, revision=3, who="bob")  # extends
    pending = planner.pending
    assert pending is not None
    assert (pending.deadline, pending.restore_digest, pending.restore_revision, pending.revision) == (210.0, "a", 1, 3)
    assert planner.due(200.0) is None and planner.due(210.0) is pending
    assert planner.confirm() is pending and planner.pending is None
    with pytest.raises(NothingPending):
        planner.confirm()


class Rig:
    def __init__(self, conf: Path, history: Path) -> None:
        self.store = open_store(conf, history)
        self.core = FakeDirector(self.store.running.config)
        self.bus = EventBus()
        self.events = self.bus.subscribe(kinds=[CommitPending, CommitConfirmed, CommitRolledBack])
        self.executor = CommandExecutor(self.core, self.store, self.bus)

    async def do(self, text: str) -> Result:
        result = await self.executor.run(text, WHO)
        json.dumps(result.as_json())
        return result


def test_commit_confirmed_rolls_back_unless_confirmed(conf: Path, tmp_path: Path) -> None:
    async def go() -> None:
        rig = Rig(conf, tmp_path / "h")
        original = rig.store.running.config
        assert (await rig.do("set rs 192.168.2.189:80 weight 3")).ok
        armed = await rig.do("commit confirmed 0.5")
        assert armed.ok and armed.data["pending"]["restore_revision"] == 1
        assert rig.core.config.virtual_servers[0].real_servers[1].weight == 3
        stats = await rig.do("show stats")
        assert stats.data["commit_pending"]["revision"] == 2
        rolled = await asyncio.wait_for(_next(rig, CommitRolledBack), 5.0)
        assert rolled.ok and rolled.unconfirmed_revision == 2 and rolled.revision == 3
        assert rig.core.config == original and rig.store.running.config == original
        newest = rig.store.archive.entries[0]
        assert newest.how == "confirmed-timeout" and WHO in newest.who
        assert rig.store.confirm.pending is None

        # confirmed in time: the timer is disarmed and the config stays
        assert (await rig.do("set rs 192.168.2.189:80 weight 4")).ok
        assert (await rig.do("commit confirmed 30")).ok
        assert (await rig.do("confirm")).ok
        assert rig.store.confirm.pending is None and rig.executor.confirm_timer.planner.next_deadline() is None
        assert not (await rig.do("confirm")).ok  # nothing pending any more
        assert rig.core.config.virtual_servers[0].real_servers[1].weight == 4
        kinds = [type(e) for e in rig.events.drain()]
        assert kinds == [CommitPending, CommitConfirmed]  # the first two were read above
        await rig.executor.confirm_timer.close()

    run(go())


async def _next(rig: Rig, kind: type[CommitRolledBack]) -> CommitRolledBack:
    async for event in rig.events:
        if isinstance(event, kind):
            return event
    raise AssertionError("the event stream ended")


def test_the_new_events_cross_the_control_socket_as_json() -> None:
    for event in (CommitPending(revision=2, restore_revision=1, restore_digest="ab", deadline=5.0, who="x"),
                  CommitConfirmed(revision=2, who="x"),
                  CommitRolledBack(revision=3, restore_revision=1, restore_digest="ab", unconfirmed_revision=2)):
        data = json.loads(json.dumps(event_to_json(event)))
        assert event_from_json(data) == event


# ---------------------------------------------------------------------------------------------- preview


NO_CHECKS = """\
vrrp_instance VI_1 {
    state MASTER
    interface lo
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.10
    }
}

virtual_server 192.0.2.10 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 192.0.2.21 80 {
        weight 2
    }
    real_server 192.0.2.22 80 {
        weight 1
    }
}
"""


def test_the_diff_lists_the_exact_ipvs_and_address_operations(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(NO_CHECKS)

    async def go() -> None:
        async with running_engine(str(conf), dry_run=True, socket_path=None) as engine:
            do = engine.executor.run
            for edit in ("set rs 192.0.2.21:80 weight 5", "delete rs 192.0.2.22:80 from 192.0.2.10:80",
                         "add vip 192.0.2.11 to VI_1"):
                assert (await do(edit, who="test")).ok, edit
            result = await do("diff", who="test")
            assert result.ok, result.message
            ops = [op["op"] for op in result.data["ipvs_ops"]]
            assert ops == ["delete dest TCP 192.0.2.10:80 -> 192.0.2.22:80",
                           "edit dest TCP 192.0.2.10:80 -> 192.0.2.21:80 Route weight 5"]
            assert result.data["ipvs_ops"][1]["impact"] == "weight 2 → 5, 0 active"
            assert [(a["action"], a["address"]) for a in result.data["address_ops"]] == [("add", "192.0.2.11")]
            assert "IPVS operations:" in result.message and "add VIP 192.0.2.11 on (VI_1)" in result.message
            # the preview applies nothing
            assert engine.director.live_table() == engine.director.desired_table()
            assert (await do("commit", who="test")).ok
            assert (await do("diff", who="test")).data["ipvs_ops"] == []

    run(go())
