"""Candidate edits on the config model: ``set``/``unset`` a keyword, ``add``/``delete`` servers and addresses.

A value is never interpreted here. The keyword line is built into a tiny keepalived.conf snippet
("probe") around a copy of the object's head and read by the config builder itself, so every keyword,
alias, range and special form means exactly what it means in keepalived.conf, and an error comes back
worded by the builder and pinned to the word the operator typed. The value the builder produced is then
put into the model with ``dataclasses.replace``; the store renders the result and loads it again, so the
candidate's diagnostics and locations are exact.

Edits raise ``CommandError`` and leave their input untouched.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from lvsconsole.config import model as m
from lvsconsole.config import schema as s
from lvsconsole.config.build import build
from lvsconsole.config.diagnostics import Severity
from lvsconsole.config.lexer import parse_text
from lvsconsole.config.render import INDENT, inherited_timing, method, quote
from lvsconsole.engine.commands import (
    AddRs,
    AddVip,
    AddVs,
    DeleteInstance,
    DeleteRs,
    DeleteVip,
    DeleteVs,
    EditCommand,
    GlobalTarget,
    InstanceTarget,
    Option,
    RsTarget,
    Set,
    Unset,
    VsTarget,
    Word,
)
from lvsconsole.engine.errors import CommandError
from lvsconsole.engine.refs import RsRef, VsRef, endpoint_text, parse_vip, vs_label

# Keywords that open blocks an edit cannot express in one line, with what to do instead.
_BLOCKS: dict[str, str] = {
    "real_server": "use 'add rs … to vs …' and 'delete rs …'",
    "virtual_ipaddress": "use 'add vip … to vrrp …' and 'delete vip … from vrrp …'",
    "virtual_ipaddress_excluded": "edit the config file",
    "virtual_routes": "edit the config file",
    "virtual_rules": "edit the config file",
    "unicast_peer": "edit the config file",
    "track_interface": "edit the config file",
    "track_script": "edit the config file",
    "track_file": "edit the config file",
    "authentication": "edit the config file",
    "notification_email": "edit the config file",
}
_RS_ALIASES: dict[str, tuple[str, str | None]] = {"lb_kind": ("lvs_method", None)}


@dataclass(frozen=True)
class EditOutcome:
    """The edited model and the builder's warnings about the words typed (deprecated aliases …)."""

    config: m.Config
    warnings: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------- probing


@dataclass(frozen=True)
class _Block:
    """Where a keyword line goes: the lines before and after it, and how to find the built object."""

    prefix: tuple[str, ...]
    suffix: tuple[str, ...]
    depth: int


def _probe(block: _Block, lines: Sequence[Sequence[Word]], blame: Word) -> tuple[m.Config, tuple[str, ...]]:
    """Build ``block`` with ``lines`` inside; raise CommandError at the typed word behind the first new error."""
    text = list(block.prefix)
    spans: dict[int, list[tuple[int, int, Word]]] = {}
    indent = INDENT * block.depth
    for words in lines:
        lineno = len(text) + 1
        col = len(indent) + 1
        parts: list[str] = []
        span: list[tuple[int, int, Word]] = []
        for w in words:
            q = quote(w.text)
            span.append((col, col + len(q), w))
            parts.append(q)
            col += len(q) + 1
        text.append(indent + " ".join(parts))
        spans[lineno] = span
    text.extend(block.suffix)
    result = build(parse_text("\n".join(text) + "\n", filename="<edit>"))
    baseline = build(parse_text("\n".join(block.prefix + block.suffix) + "\n", filename="<edit>"))
    known = {(d.severity, d.message) for d in baseline.diagnostics}
    fresh = [d for d in result.diagnostics if (d.severity, d.message) not in known]
    for d in fresh:
        if d.severity is not Severity.ERROR:
            continue
        word = blame
        if d.location is not None and d.location.line in spans:
            line_words = spans[d.location.line]
            word = line_words[0][2]
            for start, end, w in line_words:
                if start <= d.location.col < end:
                    word = w
        message = d.message
        if "needs a { } block" in message:
            message = f"'{word.text}' is a block: edit the config file"
        raise CommandError(message, word.text, word.col)
    warnings = tuple(d.message for d in fresh if d.severity is Severity.WARNING)
    return result.config, warnings


def _vs_head(vs: m.VirtualServer) -> str:
    if vs.group is not None:
        return f"virtual_server group {quote(vs.group)} {{"
    if vs.fwmark is not None:
        return f"virtual_server fwmark {vs.fwmark} {{"
    port = "" if vs.port is None else f" {vs.port}"
    return f"virtual_server {vs.address}{port} {{"


def _vs_scaffold(vs: m.VirtualServer, skip: str = "") -> tuple[str, ...]:
    lines = []
    if vs.fwmark is None and skip != "protocol":
        lines.append(f"{INDENT}protocol {vs.protocol}")
    if skip != "lvs_sched":
        lines.append(f"{INDENT}lvs_sched {vs.lvs_sched}")
    if skip != "lvs_method":
        lines.append(f"{INDENT}lvs_method {method(vs.lvs_method)}")
    return tuple(lines)


def _vs_block(vs: m.VirtualServer, skip: str = "") -> _Block:
    return _Block((_vs_head(vs), *_vs_scaffold(vs, skip)), ("}",), 1)


def _rs_block(vs: m.VirtualServer, rs: m.RealServer) -> _Block:
    port = "" if rs.port is None or vs.fwmark is not None else f" {rs.port}"
    return _Block((_vs_head(vs), *_vs_scaffold(vs), f"{INDENT}real_server {rs.address}{port} {{"),
                  (f"{INDENT}}}", "}"), 2)


def _instance_block(inst: m.VrrpInstance, skip: str = "") -> _Block:
    suffix = () if skip == "virtual_router_id" else (f"{INDENT}virtual_router_id {inst.virtual_router_id or 1}",)
    return _Block((f"vrrp_instance {quote(inst.name)} {{",), (*suffix, "}"), 1)


_GLOBAL_BLOCK = _Block(("global_defs {",), ("}",), 1)


# ---------------------------------------------------------------------------------------------- lookup


def _vs_matches(ref: VsRef, vs: m.VirtualServer) -> bool:
    return ref.matches(address=vs.address, port=vs.port, protocol=vs.protocol, fwmark=vs.fwmark, group=vs.group)


def label(vs: m.VirtualServer) -> str:
    return vs_label(address=vs.address, port=vs.port, protocol=vs.protocol, fwmark=vs.fwmark, group=vs.group)


def find_vs(config: m.Config, ref: VsRef) -> list[int]:
    """Indexes of the virtual servers ``ref`` names; CommandError when there is none."""
    found = [i for i, vs in enumerate(config.virtual_servers) if _vs_matches(ref, vs)]
    if not found:
        raise CommandError(f"no virtual_server {ref} in the candidate config", str(ref), ref.col)
    return found


def one_vs(config: m.Config, ref: VsRef) -> int:
    found = find_vs(config, ref)
    if len(found) > 1:
        names = ", ".join(label(config.virtual_servers[i]) for i in found)
        raise CommandError(f"'{ref}' names several virtual servers ({names}): add /tcp, /udp or the port",
                           str(ref), ref.col)
    return found[0]


def find_rs(config: m.Config, ref: RsRef, vs_ref: VsRef | None) -> list[tuple[int, int]]:
    """(vs index, rs index) of every real server ``ref`` names (in ``vs_ref``, or in any virtual server)."""
    vs_indexes = find_vs(config, vs_ref) if vs_ref is not None else range(len(config.virtual_servers))
    found = [(i, j) for i in vs_indexes for j, rs in enumerate(config.virtual_servers[i].real_servers)
             if ref.matches(rs.address, rs.port)]
    if not found:
        where = f" in virtual_server {vs_ref}" if vs_ref is not None else ""
        raise CommandError(f"no real_server {ref}{where} in the candidate config", str(ref), ref.col)
    return found


def _instance_index(config: m.Config, name: Word) -> int:
    for i, inst in enumerate(config.instances):
        if inst.name == name.text:
            return i
    known = ", ".join(inst.name for inst in config.instances) or "none"
    raise CommandError(f"no vrrp_instance {name.text} in the candidate config (instances: {known})",
                       name.text, name.col)


# ---------------------------------------------------------------------------------------------- keywords


def _resolve(keyword: Word, table: dict[str, s.Kw], aliases: dict[str, tuple[str, str | None]],
             block: str) -> tuple[str, s.Kw]:
    name = aliases[keyword.text][0] if keyword.text in aliases else keyword.text
    if name in _BLOCKS:
        raise CommandError(f"'{keyword.text}' is a block: {_BLOCKS[name]}", keyword.text, keyword.col)
    spec = table.get(name)
    if spec is None:
        raise CommandError(f"'{keyword.text}' is not a {block} keyword", keyword.text, keyword.col)
    return name, spec


def _field_default(obj: Any, name: str) -> Any:
    for f in dataclasses.fields(obj):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
    raise AssertionError(f"{type(obj).__name__} has no field {name}")


def _assign(obj: Any, built: Any, name: str, spec: s.Kw) -> Any:
    """``obj`` with the value the builder gave ``built`` for keyword ``name``."""
    if spec.field is None:  # kept verbatim in `extra`
        kept = tuple(e for e in obj.extra if e[0] != name)
        return dataclasses.replace(obj, extra=kept + tuple(e for e in built.extra if e[0] == name))
    if spec.field == "sched_flags":
        flags = (*(f for f in obj.sched_flags if f != name), name)
        return dataclasses.replace(obj, sched_flags=flags)
    return dataclasses.replace(obj, **{spec.field: getattr(built, spec.field)})


def _clear(obj: Any, name: str, spec: s.Kw) -> Any:
    if spec.field is None:
        return dataclasses.replace(obj, extra=tuple(e for e in obj.extra if e[0] != name))
    if spec.field == "sched_flags":
        return dataclasses.replace(obj, sched_flags=tuple(f for f in obj.sched_flags if f != name))
    return dataclasses.replace(obj, **{spec.field: _field_default(obj, spec.field)})


_TIMING_KEYS = ("delay_loop", "retry", "delay_before_retry", "warmup", "connect_timeout")


def _reinherit(old_vs: m.VirtualServer, new_vs: m.VirtualServer, old_rs: m.RealServer,
               new_rs: m.RealServer) -> m.RealServer:
    """Checker timing that was inherited from the RS or VS follows the new RS/VS value (keepalived's rule)."""
    checkers = []
    changed = False
    for c in new_rs.checkers:
        if c.kind in ("FILE_CHECK", "BFD_CHECK"):
            checkers.append(c)
            continue
        before = inherited_timing(c.kind, old_rs, old_vs)
        after = inherited_timing(c.kind, new_rs, new_vs)
        keys = [k for k in _TIMING_KEYS if not (k == "connect_timeout" and c.kind == "MISC_CHECK")] + ["alpha"]
        updates: dict[str, Any] = {k: after[k] for k in keys if before[k] != after[k] and getattr(c, k) == before[k]}
        if updates:
            changed = True
            c = dataclasses.replace(c, **updates)
        checkers.append(c)
    return dataclasses.replace(new_rs, checkers=tuple(checkers)) if changed else new_rs


def _replace_vs(config: m.Config, index: int, vs: m.VirtualServer) -> m.Config:
    servers = list(config.virtual_servers)
    servers[index] = vs
    return dataclasses.replace(config, virtual_servers=tuple(servers))


def _with_vs_change(config: m.Config, index: int, new_vs: m.VirtualServer) -> m.Config:
    old_vs = config.virtual_servers[index]
    rss = tuple(_reinherit(old_vs, new_vs, rs, rs) for rs in new_vs.real_servers)
    return _replace_vs(config, index, dataclasses.replace(new_vs, real_servers=rss))


def _with_rs_change(config: m.Config, vi: int, ri: int, new_rs: m.RealServer) -> m.Config:
    vs = config.virtual_servers[vi]
    rss = list(vs.real_servers)
    rss[ri] = _reinherit(vs, vs, rss[ri], new_rs)
    return _replace_vs(config, vi, dataclasses.replace(vs, real_servers=tuple(rss)))


def _replace_instance(config: m.Config, index: int, inst: m.VrrpInstance) -> m.Config:
    instances = list(config.instances)
    instances[index] = inst
    return dataclasses.replace(config, instances=tuple(instances))


# ---------------------------------------------------------------------------------------------- set / unset


def _set(config: m.Config, cmd: Set) -> EditOutcome:
    line = [cmd.keyword, *cmd.values]
    target = cmd.target
    if isinstance(target, GlobalTarget):
        name, spec = _resolve(cmd.keyword, s.GLOBAL, s.GLOBAL_ALIASES, "global_defs")
        built, warnings = _probe(_GLOBAL_BLOCK, [line], cmd.keyword)
        g = _assign(config.global_defs, built.global_defs, name, spec)
        return EditOutcome(dataclasses.replace(config, global_defs=g), warnings)
    if isinstance(target, InstanceTarget):
        index = _instance_index(config, target.name)
        inst = config.instances[index]
        name, spec = _resolve(cmd.keyword, s.INSTANCE, s.INSTANCE_ALIASES, "vrrp_instance")
        built, warnings = _probe(_instance_block(inst, name), [line], cmd.keyword)
        if not built.instances:
            raise CommandError(f"cannot set '{cmd.keyword.text}' here", cmd.keyword.text, cmd.keyword.col)
        new_inst = _assign(inst, built.instances[0], name, spec)
        return EditOutcome(_replace_instance(config, index, new_inst), warnings)
    if isinstance(target, VsTarget):
        index = one_vs(config, target.vs)
        vs = config.virtual_servers[index]
        name, spec = _resolve(cmd.keyword, s.VIRTUAL_SERVER, s.LVS_ALIASES, "virtual_server")
        if spec.field == "sched_flags" and cmd.values:
            raise CommandError(f"'{name}' takes no value", cmd.values[0].text, cmd.values[0].col)
        built, warnings = _probe(_vs_block(vs, name), [line], cmd.keyword)
        if not built.virtual_servers:
            raise CommandError(f"cannot set '{cmd.keyword.text}' here", cmd.keyword.text, cmd.keyword.col)
        new_vs = _assign(vs, built.virtual_servers[0], name, spec)
        return EditOutcome(_with_vs_change(config, index, new_vs), warnings)
    assert isinstance(target, RsTarget)
    name, spec = _resolve(cmd.keyword, s.REAL_SERVER, _RS_ALIASES, "real_server")
    rs_warnings: tuple[str, ...] = ()
    for vi, ri in find_rs(config, target.rs, target.vs):
        vs = config.virtual_servers[vi]
        rs = vs.real_servers[ri]
        built, rs_warnings = _probe(_rs_block(vs, rs), [line], cmd.keyword)
        if not built.virtual_servers or not built.virtual_servers[0].real_servers:
            raise CommandError(f"cannot set '{cmd.keyword.text}' here", cmd.keyword.text, cmd.keyword.col)
        new_rs = _assign(rs, built.virtual_servers[0].real_servers[0], name, spec)
        config = _with_rs_change(config, vi, ri, new_rs)
    return EditOutcome(config, rs_warnings)


def _unset(config: m.Config, cmd: Unset) -> EditOutcome:
    target = cmd.target
    if isinstance(target, GlobalTarget):
        name, spec = _resolve(cmd.keyword, s.GLOBAL, s.GLOBAL_ALIASES, "global_defs")
        return EditOutcome(dataclasses.replace(config, global_defs=_clear(config.global_defs, name, spec)))
    if isinstance(target, InstanceTarget):
        index = _instance_index(config, target.name)
        name, spec = _resolve(cmd.keyword, s.INSTANCE, s.INSTANCE_ALIASES, "vrrp_instance")
        return EditOutcome(_replace_instance(config, index, _clear(config.instances[index], name, spec)))
    if isinstance(target, VsTarget):
        index = one_vs(config, target.vs)
        name, spec = _resolve(cmd.keyword, s.VIRTUAL_SERVER, s.LVS_ALIASES, "virtual_server")
        return EditOutcome(_with_vs_change(config, index, _clear(config.virtual_servers[index], name, spec)))
    assert isinstance(target, RsTarget)
    name, spec = _resolve(cmd.keyword, s.REAL_SERVER, _RS_ALIASES, "real_server")
    for vi, ri in find_rs(config, target.rs, target.vs):
        rs = config.virtual_servers[vi].real_servers[ri]
        config = _with_rs_change(config, vi, ri, _clear(rs, name, spec))
    return EditOutcome(config)


# ---------------------------------------------------------------------------------------------- add / delete


def _option_lines(options: Sequence[Option]) -> list[list[Word]]:
    return [[o.keyword, o.value] for o in options]


def _check_option_keywords(options: Sequence[Option], table: dict[str, s.Kw],
                           aliases: dict[str, tuple[str, str | None]], block: str) -> None:
    for o in options:
        _resolve(o.keyword, table, aliases, block)


def _add_vs(config: m.Config, cmd: AddVs) -> EditOutcome:
    ref = cmd.vs
    if ref.address is not None and ref.port is None:
        raise CommandError(f"a new virtual server needs a port ({ref}:PORT)", str(ref), ref.col)
    _check_option_keywords(cmd.options, s.VIRTUAL_SERVER, s.LVS_ALIASES, "virtual_server")
    if any(_vs_matches(VsRef(ref.address, ref.port, ref.protocol or "TCP", ref.fwmark, ref.group), vs)
           for vs in config.virtual_servers):
        raise CommandError(f"virtual_server {ref} already exists", str(ref), ref.col)
    proto = cast(m.Protocol, ref.protocol or "TCP")
    head = m.VirtualServer(address=ref.address, port=ref.port, fwmark=ref.fwmark, group=ref.group, protocol=proto)
    given = {s.LVS_ALIASES.get(o.keyword.text, (o.keyword.text,))[0] for o in cmd.options}
    prefix = [_vs_head(head)]
    if head.fwmark is None and "protocol" not in given:
        prefix.append(f"{INDENT}protocol {proto}")
    blame = Word(str(ref), ref.col)
    built, warnings = _probe(_Block(tuple(prefix), ("}",), 1), _option_lines(cmd.options), blame)
    if not built.virtual_servers:
        raise CommandError(f"cannot add virtual_server {ref}", str(ref), ref.col)
    vs = built.virtual_servers[0]
    vs = dataclasses.replace(vs, locs=m.NO_LOCS)
    return EditOutcome(dataclasses.replace(config, virtual_servers=(*config.virtual_servers, vs)), warnings)


def _add_rs(config: m.Config, cmd: AddRs) -> EditOutcome:
    index = one_vs(config, cmd.vs)
    vs = config.virtual_servers[index]
    _check_option_keywords(cmd.options, s.REAL_SERVER, _RS_ALIASES, "real_server")
    # A real server written without a port takes the virtual server's (keepalived's rule, applied by the builder).
    block = _rs_block(vs, m.RealServer(address=cmd.rs.address, port=cmd.rs.port))
    built, warnings = _probe(block, _option_lines(cmd.options), Word(str(cmd.rs), cmd.rs.col))
    if not built.virtual_servers or not built.virtual_servers[0].real_servers:
        raise CommandError(f"cannot add real_server {cmd.rs}", str(cmd.rs), cmd.rs.col)
    rs = built.virtual_servers[0].real_servers[0]
    if any(r.key == rs.key for r in vs.real_servers):
        raise CommandError(f"real_server {endpoint_text(rs.address, rs.port)} is already in virtual_server "
                           f"{label(vs)}", str(cmd.rs), cmd.rs.col)
    rs = dataclasses.replace(rs, locs=m.NO_LOCS)
    return EditOutcome(_replace_vs(config, index, dataclasses.replace(vs, real_servers=(*vs.real_servers, rs))),
                       warnings)


def _add_vip(config: m.Config, cmd: AddVip) -> EditOutcome:
    index = _instance_index(config, cmd.instance)
    inst = config.instances[index]
    try:
        address = parse_vip(cmd.vip.text)
    except ValueError as exc:
        raise CommandError(str(exc), cmd.vip.text, cmd.vip.col) from None
    if any(v.address.ip == address.ip for v in inst.virtual_ipaddress):
        raise CommandError(f"{address.ip} is already a virtual address of {inst.name}", cmd.vip.text, cmd.vip.col)
    block = _Block((f"vrrp_instance {quote(inst.name)} {{", f"{INDENT}virtual_ipaddress {{"),
                   (f"{INDENT}}}", f"{INDENT}virtual_router_id 1", "}"), 2)
    built, warnings = _probe(block, [[cmd.vip, *cmd.options]], cmd.vip)
    vips = built.instances[0].virtual_ipaddress if built.instances else ()
    if not vips:
        raise CommandError(f"cannot add {cmd.vip.text}", cmd.vip.text, cmd.vip.col)
    vip = dataclasses.replace(vips[0], locs=m.NO_LOCS)
    new_inst = dataclasses.replace(inst, virtual_ipaddress=(*inst.virtual_ipaddress, vip))
    return EditOutcome(_replace_instance(config, index, new_inst), warnings)


def _delete_vs(config: m.Config, cmd: DeleteVs) -> EditOutcome:
    index = one_vs(config, cmd.vs)
    servers = tuple(vs for i, vs in enumerate(config.virtual_servers) if i != index)
    return EditOutcome(dataclasses.replace(config, virtual_servers=servers))


def _delete_rs(config: m.Config, cmd: DeleteRs) -> EditOutcome:
    doomed: dict[int, set[int]] = {}
    for vi, ri in find_rs(config, cmd.rs, cmd.vs):
        doomed.setdefault(vi, set()).add(ri)
    for vi, ris in doomed.items():
        vs = config.virtual_servers[vi]
        kept = tuple(rs for j, rs in enumerate(vs.real_servers) if j not in ris)
        config = _replace_vs(config, vi, dataclasses.replace(vs, real_servers=kept))
    return EditOutcome(config)


def _delete_vip(config: m.Config, cmd: DeleteVip) -> EditOutcome:
    index = _instance_index(config, cmd.instance)
    inst = config.instances[index]
    try:
        address = parse_vip(cmd.vip.text)
    except ValueError as exc:
        raise CommandError(str(exc), cmd.vip.text, cmd.vip.col) from None
    kept = tuple(v for v in inst.virtual_ipaddress if v.address.ip != address.ip)
    if len(kept) == len(inst.virtual_ipaddress):
        raise CommandError(f"{address.ip} is not a virtual address of {inst.name}", cmd.vip.text, cmd.vip.col)
    return EditOutcome(_replace_instance(config, index, dataclasses.replace(inst, virtual_ipaddress=kept)))


def _delete_instance(config: m.Config, cmd: DeleteInstance) -> EditOutcome:
    index = _instance_index(config, cmd.instance)
    instances = tuple(inst for i, inst in enumerate(config.instances) if i != index)
    return EditOutcome(dataclasses.replace(config, instances=instances))


def apply_edit(config: m.Config, cmd: EditCommand) -> EditOutcome:
    """``cmd`` applied to ``config`` (which is not changed). Raises CommandError naming the word at fault."""
    if isinstance(cmd, Set):
        return _set(config, cmd)
    if isinstance(cmd, Unset):
        return _unset(config, cmd)
    if isinstance(cmd, AddVs):
        return _add_vs(config, cmd)
    if isinstance(cmd, AddRs):
        return _add_rs(config, cmd)
    if isinstance(cmd, AddVip):
        return _add_vip(config, cmd)
    if isinstance(cmd, DeleteVs):
        return _delete_vs(config, cmd)
    if isinstance(cmd, DeleteRs):
        return _delete_rs(config, cmd)
    if isinstance(cmd, DeleteVip):
        return _delete_vip(config, cmd)
    if isinstance(cmd, DeleteInstance):
        return _delete_instance(config, cmd)
    raise TypeError(f"not an edit: {type(cmd).__name__}")
