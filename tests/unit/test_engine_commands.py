"""The operator command language: every form parses to its dataclass, errors point at the word, completion."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from lvsconsole.engine.commands import (
    AddRs,
    AddVip,
    AddVs,
    Command,
    Commit,
    Completion,
    Confirm,
    DeleteInstance,
    DeleteRs,
    DeleteVip,
    DeleteVs,
    Diff,
    Disable,
    Drain,
    Enable,
    GlobalTarget,
    Help,
    InstanceTarget,
    Names,
    Option,
    Reload,
    Rollback,
    RsTarget,
    Set,
    Show,
    Undrain,
    Unset,
    Validate,
    VrrpFailover,
    VrrpPriority,
    VsTarget,
    Weight,
    Word,
    completions,
    help_text,
    parse,
    parse_many,
    split_commands,
)
from lvsconsole.engine.errors import CommandError
from lvsconsole.engine.refs import RsRef, VsRef

RS = RsRef(ip_address("192.168.2.187"), 80)
VS = VsRef(ip_address("192.168.2.188"), 80)
VS6 = VsRef(ip_address("2001:db8::100"), 80)
RS6 = RsRef(ip_address("2001:db8::1"), 80)
W = Word

FORMS: list[tuple[str, Command]] = [
    ("show vrrp", Show(topic="vrrp")),
    ("show vrrp VI_1", Show(topic="vrrp", instance=W("VI_1"))),
    ("show vs", Show(topic="vs")),
    ("show vs 192.168.2.188:80", Show(topic="vs", vs=VS)),
    ("show vs 192.168.2.188:53/udp", Show(topic="vs", vs=VsRef(ip_address("192.168.2.188"), 53, "UDP"))),
    ("show vs fwmark 5", Show(topic="vs", vs=VsRef(fwmark=5))),
    ("show vs group WEB", Show(topic="vs", vs=VsRef(group="WEB"))),
    ("show rs", Show(topic="rs")),
    ("show rs 192.168.2.187:80", Show(topic="rs", rs=RS)),
    ("show rs 192.168.2.187:80 in 192.168.2.188:80", Show(topic="rs", rs=RS, vs=VS)),
    ("show log", Show(topic="log")),
    ("show log 20", Show(topic="log", count=20)),
    ("show config", Show(topic="config")),
    ("show config candidate", Show(topic="config", which="candidate")),
    ("show config running", Show(topic="config", which="running")),
    ("show diff", Show(topic="diff")),
    ("show stats", Show(topic="stats")),
    ("show history", Show(topic="history")),
    ("show overrides", Show(topic="overrides")),
    ("drain 192.168.2.187:80", Drain(rs=RS)),
    ("drain 192.168.2.187:80 in 192.168.2.188:80", Drain(rs=RS, vs=VS)),
    ("drain [2001:db8::1]:80 in [2001:db8::100]:80", Drain(rs=RS6, vs=VS6)),
    ("drain 2001:db8::1", Drain(rs=RsRef(ip_address("2001:db8::1")))),
    ("undrain 192.168.2.187:80", Undrain(rs=RS)),
    ("undrain 192.168.2.187:80 in 192.168.2.188:80", Undrain(rs=RS, vs=VS)),
    ("weight 192.168.2.187:80 5", Weight(rs=RS, weight=5)),
    ("weight 192.168.2.187:80 50% in 192.168.2.188:80", Weight(rs=RS, weight=50, percent=True, vs=VS)),
    ("disable 192.168.2.187", Disable(rs=RsRef(ip_address("192.168.2.187")))),
    ("disable 192.168.2.187:80 in fwmark 3", Disable(rs=RS, vs=VsRef(fwmark=3))),
    ("enable 192.168.2.187:80", Enable(rs=RS)),
    ("set vs 192.168.2.188:80 lb_algo wlc", Set(target=VsTarget(VS), keyword=W("lb_algo"), values=(W("wlc"),))),
    ("set vs 192.168.2.188:80 lvs_method TUN type gue port 6080",
     Set(target=VsTarget(VS), keyword=W("lvs_method"), values=tuple(map(W, ("TUN", "type", "gue", "port", "6080"))))),
    ("set vs 192.168.2.188:80 ops", Set(target=VsTarget(VS), keyword=W("ops"))),
    ("set rs 192.168.2.187:80 weight 2", Set(target=RsTarget(RS), keyword=W("weight"), values=(W("2"),))),
    ("set rs 192.168.2.187:80 in 192.168.2.188:80 weight 2",
     Set(target=RsTarget(RS, VS), keyword=W("weight"), values=(W("2"),))),
    ("set vrrp VI_1 priority 90", Set(target=InstanceTarget(W("VI_1")), keyword=W("priority"), values=(W("90"),))),
    ('set global router_id "LVS DEVEL"', Set(target=GlobalTarget(), keyword=W("router_id"), values=(W("LVS DEVEL"),))),
    ("set vrrp VI_1 notify_master '/bin/run me'",
     Set(target=InstanceTarget(W("VI_1")), keyword=W("notify_master"), values=(W("/bin/run me"),))),
    ("unset vs 192.168.2.188:80 persistence_timeout", Unset(target=VsTarget(VS), keyword=W("persistence_timeout"))),
    ("unset rs 192.168.2.187:80 in 192.168.2.188:80 weight", Unset(target=RsTarget(RS, VS), keyword=W("weight"))),
    ("unset vrrp VI_1 nopreempt", Unset(target=InstanceTarget(W("VI_1")), keyword=W("nopreempt"))),
    ("unset global router_id", Unset(target=GlobalTarget(), keyword=W("router_id"))),
    ("add vs 10.0.0.5:443", AddVs(vs=VsRef(ip_address("10.0.0.5"), 443))),
    ("add vs 10.0.0.5:443 lvs_sched rr lvs_method DR", AddVs(vs=VsRef(ip_address("10.0.0.5"), 443), options=(
        Option(W("lvs_sched"), W("rr")), Option(W("lvs_method"), W("DR"))))),
    ("add rs 192.168.2.190:80 to vs 192.168.2.188:80 weight 2", AddRs(
        rs=RsRef(ip_address("192.168.2.190"), 80), vs=VS, options=(Option(W("weight"), W("2")),))),
    ("add rs 192.168.2.190:80 to 192.168.2.188:80", AddRs(rs=RsRef(ip_address("192.168.2.190"), 80), vs=VS)),
    ("add vip 192.168.2.189/24 to vrrp VI_1 dev eth0", AddVip(
        vip=W("192.168.2.189/24"), instance=W("VI_1"), options=(W("dev"), W("eth0")))),
    ("add vip 192.168.2.189 to VI_1", AddVip(vip=W("192.168.2.189"), instance=W("VI_1"))),
    ("delete vs 192.168.2.188:80", DeleteVs(vs=VS)),
    ("delete rs 192.168.2.187:80", DeleteRs(rs=RS)),
    ("delete rs 192.168.2.187:80 from vs 192.168.2.188:80", DeleteRs(rs=RS, vs=VS)),
    ("delete rs 192.168.2.187:80 in 192.168.2.188:80", DeleteRs(rs=RS, vs=VS)),
    ("delete vip 192.168.2.189 from vrrp VI_1", DeleteVip(vip=W("192.168.2.189"), instance=W("VI_1"))),
    ("delete vip 192.168.2.189 from VI_1", DeleteVip(vip=W("192.168.2.189"), instance=W("VI_1"))),
    ("delete vrrp VI_2", DeleteInstance(instance=W("VI_2"))),
    ("vrrp priority VI_1 90", VrrpPriority(instance=W("VI_1"), priority=90)),
    ("vrrp priority VI_1 default", VrrpPriority(instance=W("VI_1"), priority=None)),
    ("vrrp failover VI_1", VrrpFailover(instance=W("VI_1"))),
    ("validate", Validate()),
    ("diff", Diff()),
    ("commit", Commit()),
    ("rollback", Rollback(version=1)),
    ("rollback 3", Rollback(version=3)),
    ("rollback 0a1b2c", Rollback(version="0a1b2c")),
    ("diff 2 0a1b", Diff(old=2, new="0a1b")),
    ("commit confirmed 60", Commit(confirmed=60.0)),
    ("confirm", Confirm()),
    ("show history 3", Show(topic="history", version=3)),
    ("show blame", Show(topic="blame")),
    ("reload", Reload()),
    ("write", __import__("lvsconsole.engine.commands", fromlist=["Write"]).Write()),
    ("help", Help()),
    ("help drain", Help(words=("drain",))),
]


@pytest.mark.parametrize(("text", "expected"), FORMS, ids=[t for t, _ in FORMS])
def test_every_form_parses(text: str, expected: Command) -> None:
    command = parse(f"  {text}  ")
    assert command == expected
    assert type(command) is type(expected)
    assert command.text == text


def test_every_verb_is_covered() -> None:
    verbs = {text.split()[0] for text, _ in FORMS}
    assert verbs == {"show", "drain", "undrain", "weight", "disable", "enable", "set", "unset", "add", "delete",
                     "vrrp", "validate", "diff", "commit", "confirm", "rollback", "reload", "write", "help"}


def test_columns_are_recorded() -> None:
    cmd = parse("set rs 192.168.2.187:80 in 192.168.2.188:80 weight 2")
    assert isinstance(cmd, Set) and isinstance(cmd.target, RsTarget)
    assert cmd.target.rs.col == 8
    assert cmd.target.vs is not None and cmd.target.vs.col == 28
    assert (cmd.keyword.col, cmd.values[0].col) == (45, 52)


def test_mutating_flags() -> None:
    assert not parse("show vs").MUTATES
    assert not parse("diff").MUTATES and not parse("validate").MUTATES
    for text in ("drain 1.2.3.4:80", "set vrrp V priority 9", "commit", "rollback", "reload", "write",
                 "vrrp failover V", "add vip 1.2.3.4 to V"):
        assert parse(text).MUTATES, text


@pytest.mark.parametrize(("text", "word", "col", "message"), [
    ("frobnicate", "frobnicate", 1, "unknown command 'frobnicate'"),
    ("show foo", "foo", 6, "expected one of: vrrp, vs, rs, log, config"),
    ("drain 10.0.0.300:80", "10.0.0.300:80", 7, "bad address '10.0.0.300'"),
    ("drain 10.0.0.1:99999", "10.0.0.1:99999", 7, "bad port '99999'"),
    ("drain [10.0.0.1]:80", "[10.0.0.1]:80", 7, "brackets are for IPv6"),
    ("drain", "", 6, "incomplete command after 'drain': expected a real server"),
    ("drain 10.0.0.1:80 in", "", 21, "expected one of: fwmark, group, a virtual server (IP:port)"),
    ("drain 10.0.0.1:80 on 10.0.0.2:80", "on", 19, "unexpected 'on': expected one of: in, --force"),
    ("weight 10.0.0.1:80 heavy", "heavy", 20, "expected a weight (N or N%)"),
    ("show vs 10.0.0.1:80/icmp", "10.0.0.1:80/icmp", 9, "unknown protocol 'icmp'"),
    ("set vs 1.2.3.4:80", "", 18, "expected a virtual_server keyword"),
    ("show log 5 6", "6", 12, "expected nothing more"),
    ('set global router_id "abc', '"abc', 22, "unterminated quote"),
    ("add rs 10.0.0.1:80 vs 10.0.0.2:80", "vs", 20, "expected to"),
    ("vrrp priority VI_1 high", "high", 20, "expected one of: a number, default"),
    ("", "", 1, "empty command"),
])
def test_errors_name_the_word_and_column(text: str, word: str, col: int, message: str) -> None:
    with pytest.raises(CommandError) as info:
        parse(text)
    err = info.value
    assert (err.word, err.col) == (word, col), err
    assert message in err.message
    assert str(err).startswith(f"column {col}: ")
    assert err.as_json() == {"message": err.message, "word": word, "col": col}


def test_several_commands_on_a_line() -> None:
    assert split_commands('drain 1.2.3.4:80; set global router_id "a;b" ;; commit') == [
        (0, "drain 1.2.3.4:80"), (17, ' set global router_id "a;b" '), (47, " commit")]
    commands = parse_many("drain 1.2.3.4:80; commit")
    assert [type(c) for c in commands] == [Drain, Commit]
    with pytest.raises(CommandError) as info:
        parse_many("drain 1.2.3.4:80; show nothing")
    assert (info.value.word, info.value.col) == ("nothing", 24)


# ---------------------------------------------------------------------------------------------- completion

NAMES = Names(instances=("VI_1", "VI_2"), virtual_servers=("192.168.2.188:80", "192.168.2.188:443"),
              real_servers=("192.168.2.187:80", "192.168.2.189:80", "10.0.0.9:80"), vips=("192.168.2.188",))


def texts(items: list[Completion]) -> list[str]:
    return [c.text for c in items]


def test_completes_verbs() -> None:
    assert texts(completions("")) == ["show", "drain", "undrain", "weight", "disable", "enable", "set", "unset",
                                      "add", "delete", "vrrp", "validate", "diff", "commit", "confirm", "rollback",
                                      "reload", "write", "help", "script", "check", "trace", "drift"]
    got = completions("d")
    assert texts(got) == ["drain", "disable", "delete", "diff", "drift"]
    assert all(c.start == 0 and c.kind == "keyword" for c in got)


def test_completes_keywords_after_a_verb() -> None:
    assert texts(completions("show ")) == ["vrrp", "vs", "rs", "log", "config", "diff", "stats", "history",
                                           "overrides", "blame", "checks", "conns", "sync", "drain", "drift"]
    assert texts(completions("show config ")) == ["running", "candidate"]
    assert texts(completions("vrrp ")) == ["priority", "failover"]


def test_completes_live_names() -> None:
    got = completions("drain 192", names=NAMES)
    assert texts(got) == ["192.168.2.187:80", "192.168.2.189:80"]
    assert {c.kind for c in got} == {"rs"} and got[0].start == 6
    assert texts(completions("drain 192.168.2.187:80 ", names=NAMES)) == [
        "in", "--force", "--until-empty", "--timeout", "then"]
    assert texts(completions("drain 192.168.2.187:80 --until-empty then ", names=NAMES)) == ["remove"]
    assert texts(completions("drain 192.168.2.187:80 in ", names=NAMES)) == [
        "fwmark", "group", "192.168.2.188:80", "192.168.2.188:443"]
    assert texts(completions("vrrp failover ", names=NAMES)) == ["VI_1", "VI_2"]
    assert texts(completions("add vip 10.0.0.1 to ", names=NAMES)) == ["vrrp", "VI_1", "VI_2"]
    assert texts(completions("delete vip ", names=NAMES)) == ["192.168.2.188"]


def test_completes_keepalived_keywords_and_values() -> None:
    fields = texts(completions("set vs 192.168.2.188:80 lb_", names=NAMES))
    assert fields == ["lb_algo", "lb_kind"]
    assert "lvs_sched" in texts(completions("set vs 192.168.2.188:80 ", names=NAMES))
    assert "priority" in texts(completions("set vrrp VI_1 pri", names=NAMES))
    assert texts(completions("set vs 192.168.2.188:80 lb_kind ", names=NAMES)) == ["NAT", "DR", "TUN"]
    assert texts(completions("set vrrp VI_1 state ", names=NAMES)) == ["MASTER", "BACKUP"]
    assert "wlc" in texts(completions("set vs 192.168.2.188:80 lvs_sched w", names=NAMES))
    assert texts(completions("set rs 10.0.0.9:80 wei", names=NAMES)) == ["weight"]


def test_completion_follows_the_cursor_and_semicolons() -> None:
    line = "show vs; drain 10"
    got = completions(line, names=NAMES)
    assert texts(got) == ["10.0.0.9:80"]
    assert got[0].start == len("show vs; drain ")
    assert texts(completions("dr 192.168.2.187:80", cursor=2)) == ["drain", "drift"]
    assert completions("show foo ", names=NAMES) == []  # nothing fits after an error


def test_help_text() -> None:
    assert "drain RS [in VS]" in help_text()
    assert help_text(["drain"]).splitlines()[0].startswith("drain RS")
    assert all("rollback" in line for line in help_text(["rollback"]).splitlines())


def test_parse_takes_one_command() -> None:
    with pytest.raises(CommandError) as info:
        parse("drain 1.2.3.4:80; commit")
    assert (info.value.word, info.value.col) == (";", 17)


def test_drain_options_parse_in_any_order_before_then_remove() -> None:
    got = parse("drain 10.0.0.2:80 in 10.0.0.100:80 --timeout 30 --until-empty --force then remove")
    assert isinstance(got, Drain)
    assert (got.until_empty, got.timeout, got.then_remove, got.force) == (True, 30.0, True, True)
    plain = parse("drain 10.0.0.2:80")
    assert isinstance(plain, Drain)
    assert (plain.until_empty, plain.timeout, plain.then_remove) == (False, None, False)
    with pytest.raises(CommandError, match="expected a number of seconds"):
        parse("drain 10.0.0.2:80 --timeout")
    with pytest.raises(CommandError, match="expected nothing more"):
        parse("drain 10.0.0.2:80 then remove --until-empty")
    shown = parse("show drain 10.0.0.2:80")
    assert isinstance(shown, Show) and shown.topic == "drain" and shown.rs is not None
