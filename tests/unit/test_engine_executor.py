"""CommandExecutor against a fake director: results, audit events, the commit/reload path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_engine_fakes import TWO_VS, FakeDirector, run

from lvsconsole.engine.bus import EventBus
from lvsconsole.engine.commands import Result
from lvsconsole.engine.director_api import DirectorCore, OverrideChange, RsId
from lvsconsole.engine.events import OperatorAction, ReloadApplied, ReloadRefused, ReloadStarted
from lvsconsole.engine.executor import CommandExecutor
from lvsconsole.engine.store import ConfigStore

WHO = "uid=1000(alice)"
VS80 = "[192.168.2.188]:tcp:80"
VS443 = "[192.168.2.188]:tcp:443"


class Rig:
    def __init__(self, conf: Path) -> None:
        self.store = ConfigStore.from_file(str(conf))
        self.core = FakeDirector(self.store.running.config, active={"192.168.2.187": 12})
        self.bus = EventBus()
        self.audit = self.bus.subscribe(kinds=[OperatorAction])
        self.events = self.bus.subscribe()
        self.executor = CommandExecutor(self.core, self.store, self.bus)

    def do(self, text: str, who: str = WHO) -> Result:
        result = run(self.executor.run(text, who))
        json.dumps(result.as_json())  # every result is JSON-serialisable
        return result

    def audited(self) -> list[OperatorAction]:
        return [e for e in self.audit.drain() if isinstance(e, OperatorAction)]


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "keepalived.conf"
    path.write_text(TWO_VS)
    return path


@pytest.fixture
def rig(conf: Path) -> Rig:
    return Rig(conf)


def test_the_fake_is_a_director_core(rig: Rig) -> None:
    assert isinstance(rig.core, DirectorCore)


@pytest.mark.parametrize("text", [
    "show vrrp", "show vrrp VI_1", "show vs", "show vs 192.168.2.188:443", "show rs", "show rs 192.168.2.187",
    "show rs 192.168.2.187 in 192.168.2.188:80", "show log", "show log 5", "show config", "show config candidate",
    "show diff", "show stats", "show history", "show overrides", "validate", "diff", "help", "help drain",
])
def test_reading_commands_succeed_and_audit_nothing(rig: Rig, text: str) -> None:
    result = rig.do(text)
    assert result.ok, result.message
    assert result.message
    assert rig.audited() == []


def test_show_vs_has_the_documented_schema(rig: Rig) -> None:
    data = rig.do("show vs").data
    assert [vs["port"] for vs in data] == [80, 443]
    vs = data[0]
    assert {"address", "port", "protocol", "fwmark", "scheduler", "persistence_timeout", "real_servers"} <= set(vs)
    assert (vs["address"], vs["protocol"], vs["fwmark"], vs["scheduler"]) == ("192.168.2.188", "TCP", None, "rr")
    rs = vs["real_servers"][0]
    assert {"address", "port", "forward", "weight", "config_weight", "health", "active_conns", "inactive_conns",
            "cps", "bps"} <= set(rs)
    assert (rs["address"], rs["port"], rs["forward"], rs["weight"], rs["config_weight"], rs["health"],
            rs["active_conns"]) == ("192.168.2.187", 80, "DR", 4, 4, "up", 12)
    assert "192.168.2.188:80 rr" in rig.do("show vs").message


def test_show_errors_name_the_word(rig: Rig) -> None:
    result = rig.do("show vrrp VI_9")
    assert not result.ok
    assert result.data["error"] == {"message": "no vrrp_instance VI_9 (instances: VI_1)", "word": "VI_9", "col": 11}
    result = rig.do("show vs 10.0.0.1:80")
    assert not result.ok and result.data["error"]["col"] == 9
    result = rig.do("show bogus")
    assert not result.ok and result.data["error"]["word"] == "bogus"


def test_drain_everywhere_and_audit(rig: Rig) -> None:
    result = rig.do("drain 192.168.2.187 --force")  # the last healthy server of 192.168.2.188:443: confirmed
    assert result.ok
    targets, change = rig.core.calls[-1][1]
    assert change == OverrideChange("drain")
    assert set(targets) == {RsId(VS80, "[192.168.2.187]:tcp:80"), RsId(VS443, "[192.168.2.187]:tcp:443")}
    assert "drained 192.168.2.187:80 in 192.168.2.188:80: weight 4 -> weight 0, 12 active connections finishing" \
        in result.message
    assert [t["vs"] for t in result.data["targets"]] == ["192.168.2.188:80", "192.168.2.188:443"]
    (audit,) = rig.audited()
    assert (audit.who, audit.command, audit.ok) == (WHO, "drain 192.168.2.187 --force", True)
    assert len(audit.changes) == 2
    assert rig.do("show vs 192.168.2.188:80").data[0]["real_servers"][0]["health"] == "draining"
    assert rig.do("show overrides").data[0]["drain"] is True


def test_drain_in_one_vs_then_undrain(rig: Rig) -> None:
    assert rig.do("drain 192.168.2.187:80 in 192.168.2.188:80").ok
    assert rig.core.drained == {RsId(VS80, "[192.168.2.187]:tcp:80")}
    result = rig.do("undrain 192.168.2.187:80")
    assert result.ok and "weight 4 (configured)" in result.message
    assert rig.core.drained == set()


def test_unknown_real_server_is_refused_and_audited(rig: Rig) -> None:
    result = rig.do("drain 10.0.0.9:80 in 192.168.2.188:80")
    assert not result.ok
    assert result.data["error"] == {"message": "no real server 10.0.0.9:80 in virtual server 192.168.2.188:80",
                                    "word": "10.0.0.9:80", "col": 7}
    (audit,) = rig.audited()
    assert not audit.ok and audit.command == "drain 10.0.0.9:80 in 192.168.2.188:80"
    assert not [c for c in rig.core.calls if c[0] == "override"]


def test_weight_absolute_and_percent(rig: Rig) -> None:
    assert rig.do("weight 192.168.2.187 50%").ok
    calls = [c[1] for c in rig.core.calls if c[0] == "override"]
    assert {(t.vs, ch.weight) for ts, ch in calls for t in ts} == {(VS80, 2), (VS443, 1)}
    assert rig.do("weight 192.168.2.189:80 7").ok
    assert rig.core.weights[RsId(VS80, "[192.168.2.189]:tcp:80")] == 7
    assert rig.do("disable 192.168.2.189:80").ok and rig.core.disabled
    assert rig.do("enable 192.168.2.189:80").ok and not rig.core.disabled


def test_vrrp_priority_and_failover(rig: Rig) -> None:
    result = rig.do("vrrp priority VI_1 90")
    assert result.ok and rig.core.priorities == {"VI_1": 90}
    assert rig.do("vrrp priority VI_1 default").ok and rig.core.priorities == {"VI_1": None}
    assert not rig.do("vrrp priority VI_1 300").ok
    assert rig.do("vrrp failover VI_1").ok
    refused = rig.do("vrrp failover VI_1")  # now BACKUP: the director refuses
    assert not refused.ok and "not MASTER" in refused.message
    missing = rig.do("vrrp failover VI_7")
    assert missing.data["error"]["word"] == "VI_7"
    assert [a.ok for a in rig.audited()] == [True, True, False, True, False, False]


def test_edit_then_commit_applies_the_plan(rig: Rig) -> None:
    edited = rig.do("set rs 192.168.2.189:80 weight 3")
    assert edited.ok and "weight: 1 -> 3" in edited.message
    assert edited.data["dirty"] is True
    assert "weight: 1 -> 3" in rig.do("diff").message
    rig.events.drain()
    result = rig.do("commit")
    assert result.ok, result.message
    assert result.data["revision"]["number"] == 2
    (apply_call,) = [c for c in rig.core.calls if c[0] == "apply"]
    assert [ch.key for ch in apply_call[1].changes] == [f"{VS80} -> [192.168.2.189]:80"]
    kinds = [type(e) for e in rig.events.drain()]
    assert kinds == [ReloadStarted, ReloadApplied, OperatorAction]
    assert rig.store.running.who == WHO
    assert rig.do("show history").data[0]["who"] == WHO
    assert rig.do("commit").message == "no changes to apply"


def test_commit_of_a_bad_candidate_is_refused_without_touching_the_director(rig: Rig) -> None:
    rig.store.set_candidate_text(TWO_VS.replace("virtual_router_id 51", "virtual_router_id 0"))
    running = rig.store.running
    result = rig.do("commit")
    assert not result.ok
    assert result.data["diagnostics"][0]["file"] == "<candidate>"
    assert not [c for c in rig.core.calls if c[0] == "apply"]
    assert rig.store.running is running
    refused = [e for e in rig.events.drain() if isinstance(e, ReloadRefused)]
    assert refused and refused[0].diagnostics[0]["severity"] == "error"


def test_a_director_failure_keeps_the_running_config(rig: Rig) -> None:
    rig.do("set rs 192.168.2.189:80 weight 3")
    rig.core.fail_apply = "netlink: Operation not permitted"
    result = rig.do("commit")
    assert not result.ok and "Operation not permitted" in result.message
    assert rig.store.running.number == 1
    assert rig.store.dirty  # the candidate is still there to retry


def test_reload_refuses_a_broken_file_with_its_location(rig: Rig, conf: Path) -> None:
    conf.write_text(TWO_VS.replace("lvs_sched rr", "lvs_sched nope"))
    result = rig.do("reload", who="SIGHUP")
    assert not result.ok
    diag = result.data["diagnostics"][0]
    assert (diag["file"], diag["line"], diag["col"]) == (str(conf), 17, 15)
    (refused,) = [e for e in rig.events.drain() if isinstance(e, ReloadRefused)]
    assert f"{conf}:17:15" in refused.text()
    conf.write_text(TWO_VS.replace("weight 4", "weight 5"))
    rig.do("set vs 192.168.2.188:443 lb_algo rr")
    result = rig.do("reload", who="SIGHUP")
    assert result.ok and "discarded" in result.message
    assert rig.core.config.virtual_servers[0].real_servers[0].weight == 5


def test_rollback_then_commit_and_write(rig: Rig, conf: Path) -> None:
    rig.do("set rs 192.168.2.189:80 weight 3")
    rig.do("commit")
    result = rig.do("rollback")
    assert result.ok and "weight: 3 -> 1" in result.message
    assert rig.do("commit").ok
    assert rig.store.running.number == 3
    assert not rig.do("rollback 40").ok
    written = rig.do("write")
    assert written.ok and written.data["path"] == str(conf)
    assert conf.with_name("keepalived.conf.bak").exists()


def test_edit_errors_keep_their_column(rig: Rig) -> None:
    result = rig.do("set vs 192.168.2.188:80 lb_algo nope")
    assert not result.ok
    assert result.data["error"]["word"] == "nope" and result.data["error"]["col"] == 33


def test_run_line_stops_at_the_first_failure(rig: Rig) -> None:
    results = run(rig.executor.run_line("set rs 192.168.2.189:80 weight 3; show nothing; commit", WHO))
    assert [r.ok for r in results] == [True, False]
    assert results[1].data["error"]["col"] == 40
    assert rig.store.running.number == 1


def test_names_for_completion(rig: Rig) -> None:
    names = rig.executor.names()
    assert names.instances == ("VI_1",)
    assert names.virtual_servers == ("192.168.2.188:80", "192.168.2.188:443")
    assert names.real_servers == ("192.168.2.187:80", "192.168.2.189:80", "192.168.2.187:443")
    assert names.vips == ("192.168.2.188",)


def test_show_log_lists_recent_events(rig: Rig) -> None:
    rig.do("drain 192.168.2.187:80")
    log = rig.do("show log")
    assert log.data[-1]["type"] == "OperatorAction"
    assert "drain 192.168.2.187:80" in log.message


def test_run_accepts_several_commands(rig: Rig) -> None:
    result = rig.do("set rs 192.168.2.189:80 weight 3; commit")
    assert result.ok and [r["ok"] for r in result.data] == [True, True]
    assert rig.store.running.number == 2
