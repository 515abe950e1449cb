"""Two Config models → a structured ReloadPlan: what was added, removed or changed, field by field.

Objects are matched by the identity keepalived uses across a reload: instances, groups and scripts by
name, virtual servers by address/protocol/port (or fwmark, or group), real servers by address and
port within their virtual server, checkers by type and position among checkers of that type.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from lvsconsole.config import model as m
from lvsconsole.config.diagnostics import Location
from lvsconsole.config.render import number

ChangeKind = Literal["added", "removed", "changed"]


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.field}: {show(self.old)} -> {show(self.new)}"


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    section: str
    key: str
    fields: tuple[FieldChange, ...] = ()
    location: Location | None = None

    def __str__(self) -> str:
        sign = {"added": "+", "removed": "-", "changed": "~"}[self.kind]
        head = f"{sign} {self.section} {self.key}"
        if not self.fields:
            return head
        return head + "\n" + "\n".join(f"    {fc}" for fc in self.fields)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "section": self.section,
            "key": self.key,
            "fields": [{"field": f.field, "old": show(f.old), "new": show(f.new)} for f in self.fields],
        }


@dataclass(frozen=True)
class ReloadPlan:
    changes: tuple[Change, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.changes

    def of(self, section: str, kind: ChangeKind | None = None) -> list[Change]:
        return [c for c in self.changes if c.section == section and (kind is None or c.kind == kind)]

    def __str__(self) -> str:
        if not self.changes:
            return "no changes"
        return "\n".join(str(c) for c in self.changes)

    def as_json(self) -> list[dict[str, Any]]:
        return [c.as_json() for c in self.changes]


# ---------------------------------------------------------------------------------------------- display


def show(value: Any) -> str:
    """A field value the way an operator writes it in keepalived.conf."""
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return number(value)  # 0.000001 and 31536000, not 1e-06 and 3.1536e+07
    if isinstance(value, bytes):
        return value.hex().upper() or '""'  # a UDP_CHECK payload, as it is written
    if isinstance(value, m.Script):
        return shlex.join(value.argv) + (f" (as {value.user})" if value.user else "")
    if isinstance(value, m.LvsMethod):
        return " ".join(str(p) for p in (value.kind, value.tunnel_type, value.tunnel_port, value.tunnel_csum) if p)
    if isinstance(value, m.Endpoint):
        return f"{value.address}" + ("" if value.port is None else f" {value.port}")
    if isinstance(value, m.VirtualAddress):
        return str(value.address.ip if value.address.network.prefixlen == value.address.max_prefixlen
                   else value.address) + (f" dev {value.dev}" if value.dev else "")
    if isinstance(value, m.TrackRef):
        return value.name + (f" weight {value.weight}" if value.weight is not None else "")
    if isinstance(value, m.UnicastPeer):
        return str(value.address)
    if isinstance(value, m.Authentication):
        return value.auth_type
    if isinstance(value, m.StaticLine):
        return " ".join(value.words) + (f" track_group {value.track_group}" if value.track_group else "")
    if isinstance(value, tuple):
        if value and all(isinstance(v, tuple) and len(v) == 2 and all(isinstance(x, int) for x in v) for v in value):
            return " ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in value)
        return "[" + ", ".join(show(v) for v in value) + "]"
    if dataclasses.is_dataclass(value):
        return type(value).__name__
    return str(value)


# ---------------------------------------------------------------------------------------------- diffing


def field_changes(old: Any, new: Any, skip: Iterable[str] = ()) -> tuple[FieldChange, ...]:
    skipped = {"locs", *skip}
    out = []
    for fld in dataclasses.fields(old):
        if fld.name in skipped or not fld.compare:
            continue
        a = getattr(old, fld.name)
        b = getattr(new, fld.name)
        if a != b:
            out.append(FieldChange(fld.name, a, b))
    return tuple(out)


def _keyed(objects: Iterable[Any], key: Any) -> dict[Any, Any]:
    return {key(obj): obj for obj in objects}


def _match(old: Mapping[Any, Any], new: Mapping[Any, Any]) -> Iterator[tuple[Any, Any | None, Any | None]]:
    """(key, old, new) for every key of either side: new order first, then the removed ones."""
    for key, obj in new.items():
        yield key, old.get(key), obj
    for key, obj in old.items():
        if key not in new:
            yield key, obj, None


def _loc(obj: Any, name: str) -> Location | None:
    locs: Mapping[str, Location] = getattr(obj, "locs", {}) or {}
    return locs.get(name)


def rs_label(rs: m.RealServer) -> str:
    return f"[{rs.address}]:{rs.port if rs.port is not None else 0}"


def diff(old: m.Config, new: m.Config) -> ReloadPlan:
    changes: list[Change] = []
    fc = field_changes(old.global_defs, new.global_defs)
    if fc:
        changes.append(Change("changed", "global_defs", "", fc, None))
    for attr, section in (("static_ipaddress", "static_ipaddress"), ("static_routes", "static_routes"),
                          ("static_rules", "static_rules"), ("ssl", "SSL"), ("extra", "top-level")):
        a, b = getattr(old, attr), getattr(new, attr)
        if a != b:
            changes.append(Change("changed", section, "", (FieldChange(attr, a, b),)))
    named = (
        ("vrrp_scripts", "vrrp_script"),
        ("track_files", "track_file"),
        ("sync_groups", "vrrp_sync_group"),
        ("instances", "vrrp_instance"),
        ("virtual_server_groups", "virtual_server_group"),
    )
    for attr, section in named:
        olds = _keyed(getattr(old, attr), lambda o: o.name)
        news = _keyed(getattr(new, attr), lambda o: o.name)
        for key, a, b in _match(olds, news):
            if a is None:
                changes.append(Change("added", section, key, (), _loc(b, "name")))
            elif b is None:
                changes.append(Change("removed", section, key, (), _loc(a, "name")))
            elif a != b:
                changes.append(Change("changed", section, key, field_changes(a, b), _loc(b, "name")))
    _diff_virtual_servers(old, new, changes)
    return ReloadPlan(tuple(changes))


def _diff_virtual_servers(old: m.Config, new: m.Config, changes: list[Change]) -> None:
    olds = _keyed(old.virtual_servers, lambda vs: vs.key)
    news = _keyed(new.virtual_servers, lambda vs: vs.key)
    for key, a, b in _match(olds, news):
        if a is None:
            changes.append(Change("added", "virtual_server", key, (), _loc(b, "key")))
            continue
        if b is None:
            changes.append(Change("removed", "virtual_server", key, (), _loc(a, "key")))
            continue
        if a == b:
            continue
        fc = field_changes(a, b, skip=("real_servers",))
        if fc:
            changes.append(Change("changed", "virtual_server", key, fc, _loc(b, "key")))
        if a.real_servers == b.real_servers:
            continue
        old_rs = _keyed(a.real_servers, lambda rs: rs.key)
        new_rs = _keyed(b.real_servers, lambda rs: rs.key)
        for _, ra, rb in _match(old_rs, new_rs):
            if ra is None:
                assert rb is not None
                changes.append(Change("added", "real_server", f"{key} -> {rs_label(rb)}", (), _loc(rb, "address")))
            elif rb is None:
                changes.append(Change("removed", "real_server", f"{key} -> {rs_label(ra)}", (), _loc(ra, "address")))
            elif ra != rb:
                label = f"{key} -> {rs_label(rb)}"
                rfc = field_changes(ra, rb, skip=("checkers",))
                if rfc:
                    changes.append(Change("changed", "real_server", label, rfc, _loc(rb, "address")))
                if ra.checkers != rb.checkers:
                    _diff_checkers(label, ra.checkers, rb.checkers, changes)


def _checker_keys(checkers: tuple[m.Checker, ...]) -> dict[str, m.Checker]:
    counts: dict[str, int] = {}
    out: dict[str, m.Checker] = {}
    for checker in checkers:
        n = counts.get(checker.kind, 0)
        counts[checker.kind] = n + 1
        out[f"{checker.kind}#{n}" if n else checker.kind] = checker
    return out


def _diff_checkers(label: str, old: tuple[m.Checker, ...], new: tuple[m.Checker, ...], changes: list[Change]) -> None:
    for ckey, ca, cb in _match(_checker_keys(old), _checker_keys(new)):
        where = f"{label} {ckey}"
        if ca is None:
            changes.append(Change("added", "checker", where))
        elif cb is None:
            changes.append(Change("removed", "checker", where))
        elif ca != cb:
            changes.append(Change("changed", "checker", where, field_changes(ca, cb)))
