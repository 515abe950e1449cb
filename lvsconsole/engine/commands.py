"""The operator command language: one pyparsing grammar shared by the TUI prompt, the shell and ``ctl``.

The grammar in brief is ``SYNOPSIS`` below (``help`` prints it).

``parse(text)`` returns a typed ``Command`` or raises ``CommandError`` naming the offending word and its
1-based column; ``completions(text, cursor, names)`` proposes keywords and live names from the same grammar.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal, TypeAlias

import pyparsing as pp

from lvsconsole.config import model as m
from lvsconsole.config import schema as s
from lvsconsole.engine.director_api import ADMIN_STATES, AdminState
from lvsconsole.engine.errors import CommandError
from lvsconsole.engine.listen import parse_listen_address
from lvsconsole.engine.refs import RsRef, VsRef, parse_vip
from lvsconsole.engine.walk import Token, UnterminatedQuote, Walker, tokenize

SYNOPSIS = """\
show vrrp [INSTANCE] | show vrrp explain [INSTANCE] | show vs [VS] | show rs [RS [in VS]] | show log [N]
show vrrp radar           every VRRP sender heard on the wire: priority, jitter, mismatches, dual masters
show config [running|candidate] | show diff | show stats | show overrides
show history [VERSION]    applied configs (who, when, how), or one of them
show blame [vs VS|rs RS [in VS]]   the version that last changed each virtual/real server, and who
drain RS [in VS] [--force] [--until-empty] [--timeout S] [then remove]
                          = state drain: existing connections finish, new ones go elsewhere; the engine samples
                          the server's connections at 5 Hz and fits an ETA (show drain). --until-empty: the watch
                          ends at 0 active and 0 inactive (persistence templates may remain); then remove: then
                          maint (enable brings it back); --timeout S: give up after S s (removes with then remove)
show drain [RS [in VS]]   watched drains: counts, sample rate, decay rate, ETA, phase
undrain RS [in VS]        back to the configured weight (clears drain and a runtime weight)
weight RS N|N% [in VS]    a runtime weight (N% of the configured weight)
disable RS [in VS] [--force]  = state maint;  enable RS [in VS] puts it back (checks resume)
set rs RS [in VS] state ready|drain|maint [--force]
                          ready: in service; drain: weight 0, checks continue, persistent clients may still
                          land; maint: out of IPVS, checks paused
--force: confirm a drain/maint/commit that leaves a VS with 0 healthy servers, below quorum or min_healthy
set vs VS FIELD VALUE...  |  set rs RS [in VS] FIELD VALUE...  (candidate config)
set vrrp INSTANCE FIELD VALUE...  |  set global FIELD VALUE...
unset vs VS FIELD  |  unset rs RS [in VS] FIELD  |  unset vrrp INSTANCE FIELD  |  unset global FIELD
add vs VS [FIELD VALUE]...  |  add rs RS to [vs] VS [FIELD VALUE]...
add vip IP[/LEN] to [vrrp] INSTANCE [dev IF] [label L]...
delete vs VS  |  delete rs RS [from [vs] VS]  |  delete vip IP from [vrrp] INSTANCE  |  delete vrrp INSTANCE
vrrp priority INSTANCE N|default  |  vrrp failover INSTANCE
script test SCRIPT  |  script test misc RS [in VS]   run a vrrp_script / MISC_CHECK once now (a dry test)
show checks RS [in VS]    the health-check flight recorder: last probes, reasons, latency, flap score
check now RS [in VS]      run the real server's health checks once now (the result counts, as a scheduled one)
show conns [client IP[:PORT]] [server RS] [vs VS] [--json]   the IPVS connection table, searched (flows and
                          persistence templates)
trace IP[:PORT] to VS [--json]   which real server gets that client, and why (connection, persistence template,
                          scheduler)
show sync coverage [from HOST:PORT] [--json]   the share of our established flows the peer director holds (its
                          metrics endpoint; default global_defs lvs_sync_peer_http): what a failover now would keep
validate | diff [VERSION [VERSION]] | commit [--force] | rollback [VERSION] | reload | write | help [WORD]
commit confirmed SECONDS [--force]   apply; rolls back by itself unless 'confirm' follows in time (again: extends)
show drift [--json]       kernel state that differs from intent (dest deleted/added by hand, weight changed
                          outside, service edited or deleted, VIP removed), each with a stable ID
drift reconcile [ID|all]  push intent back to the kernel;  drift adopt [ID|all]  write the kernel's value into
                          the candidate config (then diff and commit). global_defs ipvs_drift repair|hold
confirm                   keep the pending 'commit confirmed'

RS: IP:port, [IPv6]:port or IP (every port).  VS: IP:port[/tcp|/udp|/sctp], fwmark N or group NAME.
Without 'in VS' a real-server command applies to every virtual server that has that real server.
FIELD: a keepalived keyword of that block (aliases such as lb_algo and lb_kind are accepted).
VERSION: N versions back in the history (0 = running) or a digest prefix (4+ hex digits).
Commands on one line are separated by ';'.
"""


# ---------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Result:
    """What every command returns. ``data`` is JSON-serialisable; ``message`` is for a human."""

    ok: bool
    message: str = ""
    data: Any = None

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "message": self.message, "data": self.data}

    @classmethod
    def error(cls, exc: CommandError, data: dict[str, Any] | None = None) -> Result:
        return cls(False, str(exc), {"error": exc.as_json(), **(data or {})})


# ---------------------------------------------------------------------------------------------- command types


@dataclass(frozen=True)
class Word:
    """A word as typed (unquoted) and its 1-based column; equality ignores the column."""

    text: str
    col: int | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, kw_only=True)
class Command:
    """Base of every command. ``text`` is the command as typed (set by ``parse``)."""

    text: str = field(default="", compare=False)

    MUTATES: ClassVar[bool] = False
    """True when the command changes something (runtime state, candidate, running config, files)."""


ShowTopic: TypeAlias = Literal["vrrp", "vs", "rs", "log", "config", "diff", "stats", "history", "overrides",
                              "blame", "checks", "conns", "sync", "drain", "drift"]
Version: TypeAlias = int | str
"""A version of the config history: N back from running (0 = running), or a digest prefix (lower-case hex)."""


@dataclass(frozen=True, kw_only=True)
class Show(Command):
    topic: ShowTopic
    instance: Word | None = None
    vs: VsRef | None = None
    rs: RsRef | None = None
    count: int | None = None
    which: Literal["running", "candidate"] = "running"
    explain: bool = False
    """``show vrrp explain``: who is master, who would win an election now, and why."""
    radar: bool = False
    """``show vrrp radar``: every VRRP sender heard on the wire, and the dual-master alarms."""
    version: Version | None = None
    """``show history VERSION``: that one version."""
    client: RsRef | None = None
    """``show conns client IP[:PORT]``: the client's connections (any port when it has none)."""
    peer: Word | None = None
    """``show sync coverage from HOST:PORT``: the peer director's metrics endpoint."""
    json: bool = False
    """``show drift --json``: the message is the JSON of the data."""


@dataclass(frozen=True, kw_only=True)
class RsCommand(Command):
    """A runtime override of one real server (in one virtual server, or in every one that has it)."""

    rs: RsRef
    vs: VsRef | None = None
    force: bool = False
    """``--force``: confirmed, so a change that endangers a virtual server (guard.py) is not refused."""
    MUTATES: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class SetState(RsCommand):
    """HAProxy's operator states: ready, drain (weight 0, checks continue) or maint (out of IPVS, checks paused)."""

    state: AdminState


@dataclass(frozen=True, kw_only=True)
class Drain(RsCommand):
    """Weight 0: existing connections finish, new ones go elsewhere; the engine watches the counts fall."""

    until_empty: bool = False
    """``--until-empty``: the watch ends when ActiveConn and InActConn are 0 (persistence templates may remain)."""
    timeout: float | None = None
    """``--timeout S``: stop waiting after S seconds (then remove, or report timed-out and hold at weight 0)."""
    then_remove: bool = False
    """``then remove``: when empty (or at the timeout), put the server into maint (out of IPVS, checks paused)."""


@dataclass(frozen=True, kw_only=True)
class Undrain(RsCommand):
    """Back to the configured weight (clears drain and any weight override)."""


@dataclass(frozen=True, kw_only=True)
class Weight(RsCommand):
    """A runtime weight: absolute, or ``percent`` of the configured weight."""

    weight: int
    percent: bool = False


@dataclass(frozen=True, kw_only=True)
class Disable(RsCommand):
    """Maint: take the real server out of IPVS and pause its checks."""


@dataclass(frozen=True, kw_only=True)
class Enable(RsCommand):
    """Undo ``disable``."""


# -- edit targets


@dataclass(frozen=True)
class GlobalTarget:
    def __str__(self) -> str:
        return "global_defs"


@dataclass(frozen=True)
class InstanceTarget:
    name: Word

    def __str__(self) -> str:
        return f"vrrp_instance {self.name}"


@dataclass(frozen=True)
class VsTarget:
    vs: VsRef

    def __str__(self) -> str:
        return f"virtual_server {self.vs}"


@dataclass(frozen=True)
class RsTarget:
    rs: RsRef
    vs: VsRef | None = None

    def __str__(self) -> str:
        return f"real_server {self.rs}" + ("" if self.vs is None else f" in {self.vs}")


EditTarget: TypeAlias = GlobalTarget | InstanceTarget | VsTarget | RsTarget


@dataclass(frozen=True)
class Option:
    """``FIELD VALUE`` given to ``add``."""

    keyword: Word
    value: Word


@dataclass(frozen=True, kw_only=True)
class EditCommand(Command):
    """Changes the candidate config only; ``commit`` applies it."""

    MUTATES: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class Set(EditCommand):
    target: EditTarget
    keyword: Word
    values: tuple[Word, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Unset(EditCommand):
    target: EditTarget
    keyword: Word


@dataclass(frozen=True, kw_only=True)
class AddVs(EditCommand):
    vs: VsRef
    options: tuple[Option, ...] = ()


@dataclass(frozen=True, kw_only=True)
class AddRs(EditCommand):
    rs: RsRef
    vs: VsRef
    options: tuple[Option, ...] = ()


@dataclass(frozen=True, kw_only=True)
class AddVip(EditCommand):
    vip: Word
    instance: Word
    options: tuple[Word, ...] = ()


@dataclass(frozen=True, kw_only=True)
class DeleteVs(EditCommand):
    vs: VsRef


@dataclass(frozen=True, kw_only=True)
class DeleteRs(EditCommand):
    rs: RsRef
    vs: VsRef | None = None


@dataclass(frozen=True, kw_only=True)
class DeleteVip(EditCommand):
    vip: Word
    instance: Word


@dataclass(frozen=True, kw_only=True)
class DeleteInstance(EditCommand):
    instance: Word


# -- VRRP and the config lifecycle


@dataclass(frozen=True, kw_only=True)
class VrrpPriority(Command):
    """A runtime priority for an instance (``priority`` None = back to the configured one)."""

    instance: Word
    priority: int | None
    MUTATES: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class VrrpFailover(Command):
    """Hand mastership of an instance over to the peer (like Seesaw's failover)."""

    instance: Word
    MUTATES: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class Validate(Command):
    pass


@dataclass(frozen=True, kw_only=True)
class Diff(Command):
    """Candidate vs running; ``diff OLD``: version OLD vs running; ``diff OLD NEW``: between two versions."""

    old: Version | None = None
    new: Version | None = None


@dataclass(frozen=True, kw_only=True)
class Commit(Command):
    force: bool = False
    """``--force``: apply even if deleted real servers leave a virtual server endangered (guard.py)."""
    confirmed: float | None = None
    """``commit confirmed SECONDS``: roll back by itself unless ``confirm`` comes within that time."""
    MUTATES: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class Confirm(Command):
    """Keep the pending ``commit confirmed`` (cancel its automatic rollback)."""

    MUTATES: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class Rollback(Command):
    """Load a version of the history into the candidate (0 = discard candidate edits); ``commit`` applies."""

    version: Version = 1
    MUTATES: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class Reload(Command):
    """Re-read the config file and apply it the way ``commit`` does."""

    MUTATES: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class Write(Command):
    """Save the running config to its file (atomically; the previous file is kept as FILE.bak)."""

    MUTATES: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class Help(Command):
    words: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CheckNow(Command):
    """Probe the real server's health checks once now, outside the schedule; the result feeds the check state
    as a scheduled probe's would (see ``CheckService.run_now``)."""

    rs: RsRef
    vs: VsRef | None = None
    MUTATES: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class Trace(Command):
    """Which real server of ``vs`` a packet from ``client`` reaches, and why (ipvs/trace.py)."""

    client: RsRef
    vs: VsRef
    json: bool = False
    """``--json``: the message is the JSON of the data."""


@dataclass(frozen=True, kw_only=True)
class DriftReconcile(Command):
    """Push intent back over drift items (``item`` an id or id prefix; None = all of them)."""

    item: str | None = None
    MUTATES: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class DriftAdopt(EditCommand):
    """Write the kernel's side of drift items into the candidate config (``item`` None = all of them)."""

    item: str | None = None


@dataclass(frozen=True, kw_only=True)
class ScriptTest(Command):
    """Run the vrrp_script ``name``, or the MISC_CHECK(s) of real server ``rs``, once now; the result reaches
    neither the tracking nor the check state."""

    name: Word | None = None
    rs: RsRef | None = None
    vs: VsRef | None = None


# ---------------------------------------------------------------------------------------------- field tables

_NOT_FIELDS = {"real_server"}


def _fields(table: dict[str, s.Kw], *aliases: dict[str, Any]) -> tuple[str, ...]:
    names = [k for k in table if k not in _NOT_FIELDS]
    for alias in aliases:
        names.extend(alias)
    return tuple(sorted(set(names)))


FIELDS: dict[str, tuple[str, ...]] = {
    "global": _fields(s.GLOBAL),
    "vrrp": _fields(s.INSTANCE, s.INSTANCE_ALIASES),
    "vs": _fields(s.VIRTUAL_SERVER, s.LVS_ALIASES),
    "rs": _fields(s.REAL_SERVER, {"lb_kind": None}),
}

_VALUE_CHOICES: dict[str, tuple[str, ...]] = {
    "lvs_sched": m.SCHEDULERS,
    "lb_algo": m.SCHEDULERS,
    "lvs_method": ("NAT", "DR", "TUN"),
    "lb_kind": ("NAT", "DR", "TUN"),
    "protocol": ("TCP", "UDP", "SCTP"),
}


def value_choices(keyword: str) -> tuple[str, ...]:
    """Words that make sense after ``keyword`` (enumerations and booleans of keepalived.conf)."""
    if keyword in _VALUE_CHOICES:
        return _VALUE_CHOICES[keyword]
    for table in (s.VIRTUAL_SERVER, s.REAL_SERVER, s.INSTANCE, s.GLOBAL):
        spec = table.get(keyword)
        if spec is None:
            continue
        if spec.kind == "enum":
            return spec.choices
        if spec.kind == "bool":
            return ("true", "false")
    return ()


# ---------------------------------------------------------------------------------------------- grammar

SLOT_KINDS = ("instance", "vs", "rs", "vip", "int", "weight", "value", "word", "script", "version", "seconds",
              "client", "peer", "drift",
              "field:global", "field:vrrp", "field:vs", "field:rs")


def _col(loc: int) -> int:
    return loc + 1


def _fatal(s_: str, loc: int, message: str) -> pp.ParseFatalException:
    return pp.ParseFatalException(s_, loc, message)


def _rs_action(s_: str, loc: int, toks: pp.ParseResults) -> RsRef:
    try:
        return RsRef.parse(toks[0], _col(loc))
    except ValueError as exc:
        raise _fatal(s_, loc, str(exc)) from None


def _vs_action(s_: str, loc: int, toks: pp.ParseResults) -> VsRef:
    try:
        return VsRef.parse(toks[0], _col(loc))
    except ValueError as exc:
        raise _fatal(s_, loc, str(exc)) from None


def _vip_action(s_: str, loc: int, toks: pp.ParseResults) -> Word:
    try:
        parse_vip(toks[0])
    except ValueError as exc:
        raise _fatal(s_, loc, str(exc)) from None
    return Word(toks[0], _col(loc))


def _word_action(s_: str, loc: int, toks: pp.ParseResults) -> Word:
    return Word(toks[0], _col(loc))


def _peer_action(s_: str, loc: int, toks: pp.ParseResults) -> Word:
    try:
        parse_listen_address(toks[0])
    except ValueError as exc:
        raise _fatal(s_, loc, str(exc)) from None
    return Word(toks[0], _col(loc))


def _value_action(s_: str, loc: int, toks: pp.ParseResults) -> Word:
    text: str = toks[0]
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        body = text[1:-1]
        if text[0] == '"':
            body = re.sub(r"\\(.)", r"\1", body)
        return Word(body, _col(loc))
    return Word(text, _col(loc))


def _int_action(s_: str, loc: int, toks: pp.ParseResults) -> int:
    return int(toks[0])


MAX_POSITION_DIGITS = 5
"""A version of at most this many digits is a position in the history, a longer one a digest prefix."""


def _version_action(s_: str, loc: int, toks: pp.ParseResults) -> Version:
    text: str = toks[0].lower()
    return int(text) if text.isdigit() and len(text) <= MAX_POSITION_DIGITS else text


def _get(t: pp.ParseResults, name: str) -> Any:
    """A named result, unwrapped when pyparsing kept it as a one-element group."""
    value = t.get(name)  # type: ignore[no-untyped-call]
    if isinstance(value, pp.ParseResults):
        return value[0] if len(value) else None
    return value


def _slot(kind: str, expr: pp.ParserElement) -> pp.ParserElement:
    assert kind in SLOT_KINDS
    return expr.set_name(kind)


class _Grammar:
    """Builds the grammar once; ``command`` parses one command, ``walker`` explores it."""

    def __init__(self) -> None:
        kw = pp.Keyword
        endpoint = r"(?:\[|[0-9]|[0-9A-Fa-f]*:)\S*"
        self.rs = _slot("rs", pp.Regex(endpoint)).add_parse_action(_rs_action)
        vs_addr = _slot("vs", pp.Regex(endpoint)).add_parse_action(_vs_action)
        integer = _slot("int", pp.Regex(r"[0-9]+")).add_parse_action(_int_action)
        self.instance = _slot("instance", pp.Regex(r"[^\s\"';]+")).add_parse_action(_word_action)
        group_name = _slot("word", pp.Regex(r"[^\s\"';]+")).add_parse_action(_word_action)
        fwmark = (kw("fwmark") + integer.copy()).add_parse_action(
            lambda s_, loc, t: VsRef.of_fwmark(t[1], _col(loc)))
        group = (kw("group") + group_name).add_parse_action(lambda s_, loc, t: VsRef.of_group(t[1].text, _col(loc)))
        self.vs = fwmark | group | vs_addr
        vip = _slot("vip", pp.Regex(r"[0-9A-Fa-f.:/]*[0-9:][0-9A-Fa-f.:/]*")).add_parse_action(_vip_action)
        value = _slot("value", pp.Regex(r""""(?:[^"\\]|\\.)*"|'[^']*'|[^\s"';]+""")).add_parse_action(_value_action)
        weight = _slot("weight", pp.Regex(r"[0-9]+%?"))
        version = _slot("version", pp.Regex(r"[0-9A-Fa-f]+")).add_parse_action(_version_action)
        client = _slot("client", pp.Regex(endpoint)).add_parse_action(_rs_action)
        peer = _slot("peer", pp.Regex(r"[^\s;]+")).add_parse_action(_peer_action)
        seconds = _slot("seconds", pp.Regex(r"[0-9]+(?:\.[0-9]+)?")).add_parse_action(lambda t: float(t[0]))

        def field_slot(target: str) -> pp.ParserElement:
            return _slot(f"field:{target}", pp.Regex(r"(?!(?:in|to|from)(?:\s|$))[A-Za-z_][\w-]*")).add_parse_action(
                _word_action)

        in_vs = kw("in") + self.vs("vs")
        rs_in = self.rs("rs") + pp.Opt(in_vs)

        show = kw("show") + (
            (kw("vrrp")("topic") + pp.Opt(kw("radar")("radar")
                                          | (kw("explain")("explain") + pp.Opt(self.instance("instance")))
                                          | self.instance("instance")))
            | (kw("vs")("topic") + pp.Opt(self.vs("vs")))
            | (kw("rs")("topic") + pp.Opt(rs_in))
            | (kw("log")("topic") + pp.Opt(integer("count")))
            | (kw("config")("topic") + pp.Opt((kw("running") | kw("candidate"))("which")))
            | kw("diff")("topic") | kw("stats")("topic") | (kw("history")("topic") + pp.Opt(version("version")))
            | kw("overrides")("topic")
            | (kw("blame")("topic") + pp.Opt((kw("vs") + self.vs("vs")) | (kw("rs") + rs_in)))
            | (kw("checks")("topic") + rs_in)
            | (kw("conns")("topic") + pp.Opt(kw("client") + client("client")) + pp.Opt(kw("server") + self.rs("rs"))
               + pp.Opt(kw("vs") + self.vs("vs")) + pp.Opt(kw("--json")("json")))
            | (kw("sync")("topic") + kw("coverage") + pp.Opt(kw("from") + peer("peer")) + pp.Opt(kw("--json")("json")))
            | (kw("drain")("topic") + pp.Opt(rs_in))
            | (kw("drift")("topic") + pp.Opt(kw("--json")("json")))
        )
        show.add_parse_action(lambda t: Show(
            topic=t["topic"], instance=t.get("instance"), vs=_get(t, "vs"), rs=t.get("rs"), count=t.get("count"),
            which=t.get("which", "running"), explain="explain" in t, radar="radar" in t,
            version=_get(t, "version"), client=_get(t, "client"), peer=_get(t, "peer"), json="json" in t))

        force = pp.Opt(kw("--force")("force"))

        drain_option = (kw("--force")("force") | kw("--until-empty")("until_empty")
                        | (kw("--timeout") + seconds("timeout")))
        drain_cmd = (kw("drain") + rs_in + pp.ZeroOrMore(drain_option)
                     + pp.Opt(kw("then") + kw("remove")("then_remove")))
        drain_cmd.add_parse_action(lambda t: Drain(
            rs=t["rs"], vs=_get(t, "vs"), force="force" in t, until_empty="until_empty" in t,
            timeout=_get(t, "timeout"), then_remove="then_remove" in t))

        def rs_command(verb: str, cls: type[RsCommand], guarded: bool = False) -> pp.ParserElement:
            expr = kw(verb) + rs_in + force if guarded else kw(verb) + rs_in
            return expr.add_parse_action(lambda t: cls(rs=t["rs"], vs=_get(t, "vs"), force="force" in t))

        state_cmd = (kw("set") + kw("rs") + rs_in + kw("state")
                     + pp.MatchFirst([kw(s) for s in ADMIN_STATES])("state") + force)
        state_cmd.add_parse_action(lambda t: SetState(rs=t["rs"], vs=_get(t, "vs"), state=t["state"],
                                                      force="force" in t))

        weight_cmd = kw("weight") + self.rs("rs") + weight("weight") + pp.Opt(in_vs)
        weight_cmd.add_parse_action(lambda t: Weight(
            rs=t["rs"], vs=_get(t, "vs"), weight=int(t["weight"].rstrip("%")), percent=t["weight"].endswith("%")))

        def target(kind: str) -> pp.ParserElement:
            if kind == "global":
                return kw("global").add_parse_action(lambda: GlobalTarget())
            if kind == "vrrp":
                return (kw("vrrp") + self.instance("name")).add_parse_action(lambda t: InstanceTarget(t["name"]))
            if kind == "vs":
                return (kw("vs") + self.vs("vs")).add_parse_action(lambda t: VsTarget(_get(t, "vs")))
            return (kw("rs") + rs_in).add_parse_action(lambda t: RsTarget(t["rs"], _get(t, "vs")))

        kinds = ("vs", "rs", "vrrp", "global")
        set_cmd = kw("set") + pp.MatchFirst(
            [target(k)("target") + field_slot(k)("keyword") + pp.ZeroOrMore(value)("values") for k in kinds])
        set_cmd.add_parse_action(lambda t: Set(
            target=t["target"], keyword=t["keyword"], values=tuple(t.get("values", ()))))
        unset_cmd = kw("unset") + pp.MatchFirst([target(k)("target") + field_slot(k)("keyword") for k in kinds])
        unset_cmd.add_parse_action(lambda t: Unset(target=t["target"], keyword=t["keyword"]))

        def options(kind: str) -> pp.ParserElement:
            pair = (field_slot(kind) + value).add_parse_action(lambda t: Option(t[0], t[1]))
            return pp.ZeroOrMore(pair)("options")

        add_cmd = pp.Suppress(kw("add")) + (
            (kw("vs") + self.vs("vs") + options("vs")).add_parse_action(
                lambda t: AddVs(vs=_get(t, "vs"), options=tuple(t.get("options", ()))))
            | (kw("rs") + self.rs("rs") + kw("to") + pp.Opt(kw("vs")) + self.vs("vs") + options("rs")).add_parse_action(
                lambda t: AddRs(rs=t["rs"], vs=_get(t, "vs"), options=tuple(t.get("options", ()))))
            | (kw("vip") + vip("vip") + kw("to") + pp.Opt(kw("vrrp")) + self.instance("instance")
               + pp.ZeroOrMore(value)("options")).add_parse_action(
                lambda t: AddVip(vip=t["vip"], instance=t["instance"], options=tuple(t.get("options", ()))))
        )
        delete_cmd = pp.Suppress(kw("delete")) + (
            (kw("vs") + self.vs("vs")).add_parse_action(lambda t: DeleteVs(vs=_get(t, "vs")))
            | (kw("rs") + self.rs("rs") + pp.Opt((kw("from") | kw("in")) + pp.Opt(kw("vs")) + self.vs("vs")))
            .add_parse_action(lambda t: DeleteRs(rs=t["rs"], vs=_get(t, "vs")))
            | (kw("vip") + vip("vip") + kw("from") + pp.Opt(kw("vrrp")) + self.instance("instance"))
            .add_parse_action(lambda t: DeleteVip(vip=t["vip"], instance=t["instance"]))
            | (kw("vrrp") + self.instance("instance")).add_parse_action(
                lambda t: DeleteInstance(instance=t["instance"]))
        )
        vrrp_cmd = pp.Suppress(kw("vrrp")) + (
            (kw("priority") + self.instance("instance") + (integer | kw("default"))("priority")).add_parse_action(
                lambda t: VrrpPriority(
                    instance=t["instance"], priority=None if t["priority"] == "default" else t["priority"]))
            | (kw("failover") + self.instance("instance")).add_parse_action(
                lambda t: VrrpFailover(instance=t["instance"]))
        )

        def bare(verb: str, make: Callable[[], Command]) -> pp.ParserElement:
            return kw(verb).add_parse_action(lambda: make())

        rollback = (kw("rollback") + pp.Opt(version("version"))).add_parse_action(
            lambda t: Rollback(version=_get(t, "version") if "version" in t else 1))
        diff_cmd = (kw("diff") + pp.Opt(version("old") + pp.Opt(version("new")))).add_parse_action(
            lambda t: Diff(old=_get(t, "old"), new=_get(t, "new")))
        script_name = _slot("script", pp.Regex(r"[^\s\"';]+")).add_parse_action(_word_action)
        script_cmd = pp.Suppress(kw("script") + kw("test")) + (
            (pp.Suppress(kw("misc")) + rs_in).add_parse_action(lambda t: ScriptTest(rs=t["rs"], vs=_get(t, "vs")))
            | script_name("name").add_parse_action(lambda t: ScriptTest(name=t["name"]))
        )
        check_cmd = (pp.Suppress(kw("check") + kw("now")) + rs_in).add_parse_action(
            lambda t: CheckNow(rs=t["rs"], vs=_get(t, "vs")))
        trace_cmd = (kw("trace") + client("client") + kw("to") + pp.Opt(kw("vs")) + self.vs("vs")
                     + pp.Opt(kw("--json")("json"))).add_parse_action(
            lambda t: Trace(client=_get(t, "client"), vs=_get(t, "vs"), json="json" in t))
        drift_id = _slot("drift", pp.Regex(r"all\b|[0-9A-Fa-f]{1,8}\b"))
        drift_cmd = (pp.Suppress(kw("drift")) + (kw("reconcile") | kw("adopt"))("action")
                     + pp.Opt(drift_id("item"))).add_parse_action(
            lambda t: (DriftReconcile if t["action"] == "reconcile" else DriftAdopt)(
                item=None if t.get("item") in (None, "all") else str(t["item"]).lower()))
        help_cmd = (kw("help") + pp.ZeroOrMore(_slot("word", pp.Regex(r"\S+")))("words")).add_parse_action(
            lambda t: Help(words=tuple(t.get("words", ()))))

        self.command = pp.MatchFirst([
            show,
            drain_cmd, rs_command("undrain", Undrain), weight_cmd,
            rs_command("disable", Disable, guarded=True), rs_command("enable", Enable),
            state_cmd, set_cmd, unset_cmd, add_cmd, delete_cmd, vrrp_cmd,
            bare("validate", Validate), diff_cmd,
            (kw("commit") + pp.Opt(kw("confirmed") + seconds("seconds")) + force).add_parse_action(
                lambda t: Commit(force="force" in t, confirmed=_get(t, "seconds"))),
            bare("confirm", Confirm), rollback,
            bare("reload", Reload), bare("write", Write), help_cmd, script_cmd, check_cmd, trace_cmd, drift_cmd,
        ])
        self.walker = Walker(self.command)


_GRAMMAR: _Grammar | None = None


def grammar() -> _Grammar:
    global _GRAMMAR
    if _GRAMMAR is None:
        _GRAMMAR = _Grammar()
    return _GRAMMAR


VERBS = ("show", "drain", "undrain", "weight", "disable", "enable", "set", "unset", "add", "delete", "vrrp",
         "validate", "diff", "commit", "confirm", "rollback", "reload", "write", "help", "script", "check", "trace",
         "drift")


# ---------------------------------------------------------------------------------------------- parsing


_BLOCK_NAMES = {"global": "global_defs", "vrrp": "vrrp_instance", "vs": "virtual_server", "rs": "real_server"}


def _describe(terminal: pp.ParserElement) -> str:
    if isinstance(terminal, pp.Keyword):
        return terminal.match
    name = terminal.customName or ""
    if name.startswith("field:"):
        return f"a {_BLOCK_NAMES[name[6:]]} keyword"
    return {
        "rs": "a real server (IP:port)", "vs": "a virtual server (IP:port)",
        "instance": "a vrrp_instance name", "vip": "an address (IP or IP/len)", "int": "a number",
        "weight": "a weight (N or N%)", "value": "a value", "word": "a word", "script": "a vrrp_script name",
        "version": "a version (N back, or a digest prefix)", "seconds": "a number of seconds",
        "client": "a client address (IP or IP:PORT)", "peer": "the peer's metrics endpoint (HOST:PORT)",
    }.get(name, name or "a word")


def _expected_text(terminals: Sequence[pp.ParserElement]) -> str:
    words: list[str] = []
    for t in terminals:
        d = _describe(t)
        if d not in words:
            words.append(d)
    if not words:
        return "nothing more"
    return words[0] if len(words) == 1 else "one of: " + ", ".join(words)


def parse(text: str, *, offset: int = 0) -> Command:
    """Parse one command. ``offset`` is added to columns (for a command cut out of a longer line)."""
    line = " " * offset + text
    pieces = split_commands(text)
    if len(pieces) > 1:
        col = offset + pieces[1][0]
        raise CommandError("';' separates commands: give one command here (or use parse_many)", ";", col)
    try:
        tokens = tokenize(line)
    except UnterminatedQuote as exc:
        raise CommandError("unterminated quote", line[exc.start:].strip(), _col(exc.start)) from None
    if not tokens:
        raise CommandError("empty command (try 'help')", "", _col(len(line)))
    g = grammar()
    words = [t.text for t in tokens]
    bad = g.walker.first_bad(words)
    if bad is not None:
        k, candidates, message = bad
        tok = tokens[k]
        if k == 0:
            raise CommandError(f"unknown command '{tok.text}' (one of: {', '.join(VERBS)})", tok.text, _col(tok.start))
        if message:
            raise CommandError(message, tok.text, _col(tok.start))
        raise CommandError(f"unexpected '{tok.text}': expected {_expected_text(candidates)}", tok.text,
                           _col(tok.start))
    candidates, complete = g.walker.expected(words)
    if not complete:
        end = tokens[-1].end
        raise CommandError(f"incomplete command after '{tokens[-1].text}': expected {_expected_text(candidates)}",
                           "", _col(end))
    try:
        parsed = g.command.parse_string(line, parse_all=True)
    except pp.ParseBaseException as exc:  # the walker and pyparsing disagree: report pyparsing's view
        rest = line[exc.loc:].split()
        raise CommandError(exc.msg, rest[0] if rest else "", _col(exc.loc)) from None
    command = parsed[0]
    assert isinstance(command, Command)
    return replace(command, text=text.strip())


def split_commands(line: str) -> list[tuple[int, str]]:
    """Cut a line at ``;`` outside quotes: (offset, piece) for every non-blank piece."""
    pieces: list[tuple[int, str]] = []
    start = 0
    quote = ""
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == ";":
            pieces.append((start, line[start:i]))
            start = i + 1
        i += 1
    pieces.append((start, line[start:]))
    return [(off, piece) for off, piece in pieces if piece.strip()]


def parse_many(line: str) -> list[Command]:
    """``cmd; cmd; …`` → commands; errors carry columns in the whole line."""
    return [parse(piece, offset=off) for off, piece in split_commands(line)]


# ---------------------------------------------------------------------------------------------- completion


@dataclass(frozen=True)
class Names:
    """Live names the completion may offer (from the running director)."""

    instances: tuple[str, ...] = ()
    virtual_servers: tuple[str, ...] = ()
    real_servers: tuple[str, ...] = ()
    vips: tuple[str, ...] = ()
    scripts: tuple[str, ...] = ()
    """vrrp_script names (for ``script test``)."""
    drift: tuple[str, ...] = ()
    """Ids of the drift items now (for ``drift reconcile`` / ``drift adopt``)."""


CompletionKind: TypeAlias = Literal["keyword", "instance", "vs", "rs", "vip", "field", "value", "script"]


@dataclass(frozen=True)
class Completion:
    """Insert ``text`` in place of ``line[start:cursor]``; ``meta`` says what it is."""

    text: str
    start: int
    kind: CompletionKind
    meta: str = ""


def _slot_candidates(kind: str, names: Names, previous: str) -> list[tuple[str, CompletionKind, str]]:
    if kind == "instance":
        return [(n, "instance", "vrrp_instance") for n in names.instances]
    if kind == "vs":
        return [(n, "vs", "virtual server") for n in names.virtual_servers]
    if kind == "rs":
        return [(n, "rs", "real server") for n in names.real_servers]
    if kind == "script":
        return [(n, "script", "vrrp_script") for n in names.scripts]
    if kind == "vip":
        return [(n, "vip", "virtual address") for n in names.vips]
    if kind == "drift":
        return [("all", "keyword", "every drift item"), *((n, "keyword", "drift item") for n in names.drift)]
    if kind.startswith("field:"):
        target = kind.partition(":")[2]
        return [(f, "field", f"{target} keyword") for f in FIELDS[target]]
    if kind == "value":
        return [(v, "value", previous) for v in value_choices(previous)]
    return []


def completions(text: str, cursor: int | None = None, names: Names | None = None) -> list[Completion]:
    """Candidates for the word under the cursor, from the grammar's keywords and ``names``.

    Only the command the cursor is in counts (commands are separated by ``;``).
    """
    names = names or Names()
    cursor = len(text) if cursor is None else cursor
    head = text[:cursor]
    offset = max((off for off, _ in split_commands(head + "x")), default=0)
    segment = head[offset:]
    tokens: list[Token] = tokenize(segment, partial=True)
    if tokens and tokens[-1].end == len(segment):
        partial = tokens.pop()
    else:
        partial = Token("", len(segment))
    g = grammar()
    words = [t.text for t in tokens]
    if g.walker.first_bad(words) is not None:
        return []
    terminals, _ = g.walker.expected(words)
    previous = words[-1] if words else ""
    out: list[Completion] = []
    seen: set[str] = set()
    start = offset + partial.start
    for t in terminals:
        if isinstance(t, pp.Keyword):
            found: Iterable[tuple[str, CompletionKind, str]] = [(t.match, "keyword", "")]
        else:
            found = _slot_candidates(t.customName or "", names, previous)
        for word, kind, meta in found:
            if word.startswith(partial.text) and word not in seen:
                seen.add(word)
                out.append(Completion(word, start, kind, meta))
    return out


def help_text(words: Sequence[str] = ()) -> str:
    """The grammar summary, or its lines that mention ``words[0]``."""
    if not words:
        return SYNOPSIS.rstrip()
    wanted = [ln for ln in SYNOPSIS.splitlines() if re.search(rf"(^|\s|\|){re.escape(words[0])}\b", ln)]
    return "\n".join(wanted) if wanted else SYNOPSIS.rstrip()
