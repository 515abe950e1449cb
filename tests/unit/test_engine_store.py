"""The config store: candidate edits with exact diffs, commit/refusal, rollback, reload, atomic write."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from test_engine_fakes import EXAMPLES, TWO_VS

from lvsconsole.config.diff import ReloadPlan
from lvsconsole.engine.commands import parse
from lvsconsole.engine.errors import CommandError
from lvsconsole.engine.store import ConfigRefused, ConfigStore, StoreError, atomic_write, load_text

SECOND_INSTANCE = """
vrrp_instance VI_2 {
    state BACKUP
    interface lo
    virtual_router_id 52
    priority 90
    virtual_ipaddress {
        192.168.3.1
    }
}
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "keepalived.conf"
    path.write_text(TWO_VS)
    return path


@pytest.fixture
def store(conf: Path) -> ConfigStore:
    return ConfigStore.from_file(str(conf), clock=Clock())


def edit(store: ConfigStore, text: str) -> ReloadPlan:
    return store.edit(parse(text)).changes  # type: ignore[arg-type]


def fields(plan: ReloadPlan) -> list[tuple[str, str, str, list[tuple[str, object, object]]]]:
    return [(c.kind, c.section, c.key, [(f.field, f.old, f.new) for f in c.fields]) for c in plan.changes]


# ---------------------------------------------------------------------------------------------- loading


def test_starts_from_the_file(store: ConfigStore, conf: Path) -> None:
    run = store.running
    assert run.number == 1
    assert run.text == TWO_VS
    assert run.source == f"load {conf}"
    assert store.candidate.config == run.config
    assert not store.dirty
    assert store.diff().empty
    assert len(store.history) == 1


def test_a_config_with_errors_cannot_start(tmp_path: Path) -> None:
    path = tmp_path / "bad.conf"
    path.write_text(TWO_VS.replace("priority 100", "priority 300"))
    with pytest.raises(ConfigRefused) as info:
        ConfigStore.from_file(str(path))
    first = info.value.errors[0]
    assert first.location is not None
    assert (first.location.file, first.location.line) == (str(path), 9)


def test_the_seed_configs_load() -> None:
    for name in ("master.conf", "backup.conf"):
        store = ConfigStore.from_file(str(EXAMPLES / name))
        assert store.running.config.virtual_servers


# ---------------------------------------------------------------------------------------------- edits


def test_set_vs_scheduler_via_alias_is_one_field_change(store: ConfigStore) -> None:
    plan = edit(store, "set vs 192.168.2.188:80 lb_algo wlc")
    assert fields(plan) == [("changed", "virtual_server", "[192.168.2.188]:tcp:80", [("lvs_sched", "rr", "wlc")])]
    assert fields(store.diff()) == fields(plan)
    assert store.dirty
    assert "lvs_sched wlc" in store.candidate.text


def test_add_rs_with_weight(store: ConfigStore) -> None:
    plan = edit(store, "add rs 192.168.2.190:80 to vs 192.168.2.188:80 weight 2")
    assert fields(plan) == [("added", "real_server", "[192.168.2.188]:tcp:80 -> [192.168.2.190]:80", [])]
    vs = store.candidate.config.virtual_servers[0]
    assert [(str(rs.address), rs.port, rs.weight) for rs in vs.real_servers][-1] == ("192.168.2.190", 80, 2)


def test_set_rs_weight_in_one_vs_or_everywhere(store: ConfigStore) -> None:
    plan = edit(store, "set rs 192.168.2.187 in 192.168.2.188:443 weight 7")
    assert fields(plan) == [("changed", "real_server", "[192.168.2.188]:tcp:443 -> [192.168.2.187]:443",
                             [("weight", 2, 7)])]
    plan = edit(store, "set rs 192.168.2.187 weight 9")  # no 'in VS': every virtual server that has it
    assert [c.key for c in plan.changes] == ["[192.168.2.188]:tcp:80 -> [192.168.2.187]:80",
                                            "[192.168.2.188]:tcp:443 -> [192.168.2.187]:443"]


def test_set_vrrp_priority_and_global(store: ConfigStore) -> None:
    assert fields(edit(store, "set vrrp VI_1 priority 90")) == [
        ("changed", "vrrp_instance", "VI_1", [("priority", 100, 90)])]
    assert fields(edit(store, 'set global router_id "LVS 2"')) == [
        ("changed", "global_defs", "", [("router_id", "LVS_TEST", "LVS 2")])]


def test_vs_timing_reaches_inherited_checker_timing(store: ConfigStore) -> None:
    plan = edit(store, "set vs 192.168.2.188:80 delay_loop 10")
    assert fields(plan) == [
        ("changed", "virtual_server", "[192.168.2.188]:tcp:80", [("delay_loop", 6.0, 10.0)]),
        ("changed", "checker", "[192.168.2.188]:tcp:80 -> [192.168.2.187]:80 TCP_CHECK", [("delay_loop", 6.0, 10.0)]),
    ]
    # a checker's own value is not inherited, so it stays
    assert store.candidate.config.virtual_servers[0].real_servers[0].checkers[0].connect_timeout == 3.0
    plan = edit(store, "set vs 192.168.2.188:80 connect_timeout 9")
    assert [c.section for c in plan.changes] == ["virtual_server"]


def test_unset_and_delete(store: ConfigStore) -> None:
    edit(store, "set vs 192.168.2.188:80 persistence_timeout 50")
    assert fields(edit(store, "unset vs 192.168.2.188:80 persistence_timeout")) == [
        ("changed", "virtual_server", "[192.168.2.188]:tcp:80", [("persistence_timeout", 50, None)])]
    assert fields(edit(store, "delete rs 192.168.2.189:80")) == [
        ("removed", "real_server", "[192.168.2.188]:tcp:80 -> [192.168.2.189]:80", [])]
    assert fields(edit(store, "delete vs 192.168.2.188:443")) == [
        ("removed", "virtual_server", "[192.168.2.188]:tcp:443", [])]


def test_add_and_delete_vip_and_vs(store: ConfigStore) -> None:
    plan = edit(store, "add vip 192.168.2.200/24 to vrrp VI_1 dev lo")
    assert plan.changes[0].fields[0].field == "virtual_ipaddress"
    assert len(store.candidate.config.instances[0].virtual_ipaddress) == 2
    edit(store, "delete vip 192.168.2.200 from VI_1")
    assert store.candidate.config == store.running.config
    plan = edit(store, "add vs 10.0.0.1:53/udp lvs_sched rr")
    assert fields(plan) == [("added", "virtual_server", "[10.0.0.1]:udp:53", [])]
    assert store.candidate.config.virtual_servers[-1].protocol == "UDP"


@pytest.mark.parametrize(("command", "word", "col", "message"), [
    ("set vs 192.168.2.188:80 lb_algo foo", "foo", 33, "unknown scheduler 'foo'"),
    ("set vrrp VI_1 priority 300", "300", 24, "priority 300 is outside the range 1-255"),
    ("set vrrp VI_9 priority 3", "VI_9", 10, "no vrrp_instance VI_9"),
    ("set rs 10.9.9.9:80 weight 1", "10.9.9.9:80", 8, "no real_server 10.9.9.9:80"),
    ("set vs 192.168.2.188:80 bogus 1", "bogus", 25, "'bogus' is not a virtual_server keyword"),
    ("set vs 192.168.2.188 lb_algo rr", "192.168.2.188", 8, "names several virtual servers"),
    ("add rs 192.168.2.187:80 to vs 192.168.2.188:80", "192.168.2.187:80", 8, "already in virtual_server"),
    ("add vs 192.168.2.188:80", "192.168.2.188:80", 8, "already exists"),
    ("set vrrp VI_1 virtual_ipaddress 1.2.3.4", "virtual_ipaddress", 15, "use 'add vip"),
    ("delete vip 10.1.1.1 from VI_1", "10.1.1.1", 12, "not a virtual address of VI_1"),
])
def test_edit_errors_name_the_word_and_leave_the_candidate(
        store: ConfigStore, command: str, word: str, col: int, message: str) -> None:
    before = store.candidate
    with pytest.raises(CommandError) as info:
        store.edit(parse(command))  # type: ignore[arg-type]
    assert (info.value.word, info.value.col) == (word, col)
    assert message in info.value.message
    assert store.candidate is before


# ---------------------------------------------------------------------------------------------- commit


def test_commit_refused_on_a_bad_candidate_leaves_running_untouched(store: ConfigStore) -> None:
    running = store.running
    store.set_candidate_text(TWO_VS + SECOND_INSTANCE.replace("virtual_router_id 52", "virtual_router_id 51"))
    assert not store.candidate.ok
    with pytest.raises(ConfigRefused) as info:
        store.commit("alice")
    assert store.running is running
    assert len(store.history) == 1
    err = info.value.errors[0]
    assert err.location is not None and err.location.file == "<candidate>"
    assert err.location.line == TWO_VS.count("\n") + 5  # the second instance's virtual_router_id line
    assert "virtual_router_id 51" in str(err) or "51" in err.message
    assert store.dirty  # the candidate is kept for fixing


def test_an_edit_may_leave_errors_that_commit_then_refuses(store: ConfigStore) -> None:
    store.set_candidate_text(TWO_VS + SECOND_INSTANCE)
    store.commit("alice")
    result = store.edit(parse("set vrrp VI_2 virtual_router_id 51"))  # type: ignore[arg-type]
    assert result.candidate.errors
    with pytest.raises(ConfigRefused):
        store.commit("alice")
    assert store.running.number == 2


def test_commit_records_who_when_and_the_plan(store: ConfigStore) -> None:
    edit(store, "set rs 192.168.2.189:80 weight 3")
    rev = store.commit("uid=1000(alice)")
    assert (rev.number, rev.who, rev.source) == (2, "uid=1000(alice)", "commit")
    assert fields(rev.plan) == [("changed", "real_server", "[192.168.2.188]:tcp:80 -> [192.168.2.189]:80",
                                 [("weight", 1, 3)])]
    assert rev.time > store.history[1].time
    assert store.running is rev and not store.dirty
    assert rev.digest != store.history[1].digest
    assert rev.summary()["changes"] == 1


def test_an_empty_commit_records_nothing(store: ConfigStore) -> None:
    assert store.commit("alice") is store.history[0]
    assert len(store.history) == 1


def test_two_phase_commit_detects_a_race(store: ConfigStore) -> None:
    edit(store, "set rs 192.168.2.189:80 weight 3")
    proposal = store.propose_commit()
    store.commit("bob")
    with pytest.raises(StoreError, match="changed"):
        store.accept(proposal, "alice")


def test_rollback_loads_a_revision_into_the_candidate(store: ConfigStore) -> None:
    first = store.running.config
    edit(store, "set rs 192.168.2.189:80 weight 3")
    store.commit("alice")
    edit(store, "set vs 192.168.2.188:80 lb_algo wlc")
    store.rollback(0)  # discard the candidate edit
    assert not store.dirty
    store.rollback(1)
    assert store.candidate.config == first
    assert fields(store.diff()) == [("changed", "real_server", "[192.168.2.188]:tcp:80 -> [192.168.2.189]:80",
                                     [("weight", 3, 1)])]
    assert store.running.number == 2  # rollback alone applies nothing
    rev = store.commit("alice")
    assert rev.number == 3 and rev.config == first
    with pytest.raises(StoreError, match="no revision 9"):
        store.rollback(9)


def test_history_keeps_the_last_20(store: ConfigStore) -> None:
    for weight in range(2, 27):
        edit(store, f"set rs 192.168.2.189:80 weight {weight}")
        store.commit("alice")
    history = store.history
    assert len(history) == 20
    assert [r.number for r in history[:2]] == [26, 25]
    assert history[-1].number == 7


# ---------------------------------------------------------------------------------------------- reload


def test_reload_rereads_the_file_through_the_commit_path(store: ConfigStore, conf: Path) -> None:
    conf.write_text(TWO_VS.replace("weight 4", "weight 5"))
    rev = store.reload(who="SIGHUP")
    assert rev.source == f"reload {conf}"
    assert fields(rev.plan) == [("changed", "real_server", "[192.168.2.188]:tcp:80 -> [192.168.2.187]:80",
                                 [("weight", 4, 5)])]
    assert rev.text == conf.read_text()


def test_a_broken_file_is_refused_with_file_line_col(store: ConfigStore, conf: Path) -> None:
    running = store.running
    conf.write_text(TWO_VS.replace("lvs_sched rr", "lvs_sched nope"))
    with pytest.raises(ConfigRefused) as info:
        store.reload(who="SIGHUP")
    err = info.value.errors[0]
    assert err.location is not None
    assert (err.location.file, err.location.line, err.location.col) == (str(conf), 17, 15)
    assert store.running is running
    conf.unlink()
    with pytest.raises(ConfigRefused, match="cannot read"):
        store.reload()


# ---------------------------------------------------------------------------------------------- write


def test_write_is_atomic_and_keeps_a_backup(store: ConfigStore, conf: Path) -> None:
    os.chmod(conf, 0o640)
    edit(store, "set rs 192.168.2.189:80 weight 3")
    store.commit("alice")
    written = store.write()
    assert written == str(conf)
    assert conf.read_text() == store.running.text
    assert (conf.parent / "keepalived.conf.bak").read_text() == TWO_VS
    assert stat.S_IMODE(conf.stat().st_mode) == 0o640
    assert sorted(p.name for p in conf.parent.iterdir()) == ["keepalived.conf", "keepalived.conf.bak"]
    assert load_text(conf.read_text()).config == store.running.config


def test_a_failed_write_leaves_the_file_alone(conf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_replace = os.replace

    def failing(src: str, dst: str) -> None:
        if dst == str(conf):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError, match="No space"):
        atomic_write(str(conf), "new text\n")
    assert conf.read_text() == TWO_VS
    assert not [p for p in conf.parent.iterdir() if p.name.startswith(".")]


def test_write_to_a_new_file_and_without_a_file(tmp_path: Path, store: ConfigStore) -> None:
    target = tmp_path / "sub"
    target.mkdir()
    store.write(str(target / "copy.conf"))
    assert (target / "copy.conf").read_text() == TWO_VS
    assert not (target / "copy.conf.bak").exists()
    textual = ConfigStore.from_text(TWO_VS)
    with pytest.raises(StoreError):
        textual.write()
    with pytest.raises(StoreError):
        textual.reload()


def test_include_relative_to_the_config_file(tmp_path: Path) -> None:
    head, tail = TWO_VS.split("virtual_server 192.168.2.188 80", 1)
    (tmp_path / "vs.conf").write_text("virtual_server 192.168.2.188 80" + tail)
    main = tmp_path / "keepalived.conf"
    main.write_text(head + "include vs.conf\n")
    store = ConfigStore.from_file(str(main))
    assert len(store.running.config.virtual_servers) == 2
    assert "include" not in store.running.text  # a multi-file config is kept rendered
    edit(store, "set rs 192.168.2.189:80 weight 3")  # the candidate resolves includes next to the file too
    assert store.candidate.ok
