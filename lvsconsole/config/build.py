"""Block tree → Config model, with keepalived's defaults, aliases and inheritance applied.

Every problem becomes a Diagnostic at the word that caused it. Where keepalived would quietly replace
a bad value with a default or drop an object, this builder reports an error: the operator must learn
it from `validate`, not in production.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from types import MappingProxyType
from typing import Any

from lvsconsole.config import model as m
from lvsconsole.config import schema as s
from lvsconsole.config import values as v
from lvsconsole.config.diagnostics import Diagnostic, Location, error, warning
from lvsconsole.config.lexer import Node, ParseResult, Word, parse_file, parse_text
from lvsconsole.config.values import BadValue


@dataclass
class BuildResult:
    config: m.Config
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


@dataclass
class ConfigParts:
    """What the top-level statements built so far contribute to a Config, each list in file order."""

    global_defs: m.GlobalDefs = field(default_factory=m.GlobalDefs)
    seen_global: bool = False
    static_ipaddress: list[m.StaticAddress] = field(default_factory=list)
    static_routes: list[m.StaticLine] = field(default_factory=list)
    static_rules: list[m.StaticLine] = field(default_factory=list)
    vrrp_scripts: list[m.VrrpScript] = field(default_factory=list)
    track_files: list[m.TrackFile] = field(default_factory=list)
    sync_groups: list[m.SyncGroup] = field(default_factory=list)
    instances: list[m.VrrpInstance] = field(default_factory=list)
    virtual_server_groups: list[m.VirtualServerGroup] = field(default_factory=list)
    virtual_servers: list[m.VirtualServer] = field(default_factory=list)
    ssl: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    extra: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)


PART_LISTS = ("static_ipaddress", "static_routes", "static_rules", "vrrp_scripts", "track_files", "sync_groups",
              "instances", "virtual_server_groups", "virtual_servers", "ssl", "extra")
"""The list fields of ConfigParts."""


Fields = dict[str, Any]
LocMap = dict[str, Location]
Special = Callable[[Node, str, Fields, LocMap], None]


def _where(word: Word, col_offset: int = 0) -> Location:
    return Location(word.file, word.line, word.col + col_offset)


class Builder:
    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict
        self.diagnostics: list[Diagnostic] = []

    # ------------------------------------------------------------------------------ reporting

    def err(self, message: str, word: Word, col_offset: int = 0) -> None:
        self.diagnostics.append(error(message, _where(word, col_offset)))

    def warn(self, message: str, word: Word) -> None:
        self.diagnostics.append(warning(message, _where(word)))

    def bad(self, exc: BadValue, fallback: Word) -> None:
        self.err(exc.message, exc.word or fallback, exc.col_offset if exc.word else 0)

    def unknown(self, word: Word, block: str) -> None:
        message = f"unknown keyword '{word.text}' in {block}"
        if self.strict:
            self.err(message, word)
        else:
            self.warn(message, word)

    # ------------------------------------------------------------------------------ generic block reading

    def split_inline(self, nodes: Sequence[Node], table: Mapping[str, s.Kw], aliases: Mapping[str, Any]) -> list[Node]:
        """Split `auth_type PASS auth_pass 1111` (a one-line block) into one statement per keyword.

        A word starts a new statement only when it is a keyword of this block and the statement before it
        already has all the arguments it takes, so values that happen to be keyword names stay values.
        """

        def lookup(word: Word) -> s.Kw | None:
            if word.quoted:
                return None
            text = word.text
            return table.get(aliases[text][0] if text in aliases else text)

        out: list[Node] = []
        for node in nodes:
            if node.children is not None or not node.args:
                out.append(node)
                continue
            words = [node.keyword, *node.args]
            head = lookup(words[0])
            start = 0
            for i in range(1, len(words)):
                if head is None or head.max_args >= 99:
                    break
                following = lookup(words[i])
                if following is None:
                    continue
                taken = i - start - 1
                optional_bool = head.kind in ("bool", "flag") and words[i].text.lower() not in (
                    v.TRUE_WORDS | v.FALSE_WORDS)
                if taken >= head.max_args or optional_bool:
                    out.append(Node(words[start], words[start + 1 : i]))
                    start = i
                    head = following
            out.append(node if start == 0 else Node(words[start], words[start + 1 :]))
        return out

    def read_block(
        self,
        nodes: Sequence[Node] | None,
        table: Mapping[str, s.Kw],
        block: str,
        *,
        aliases: Mapping[str, tuple[str, str | None]] = MappingProxyType({}),
        deprecated: Mapping[str, str] = MappingProxyType({}),
        specials: Mapping[str, Special] = MappingProxyType({}),
        fields: Fields | None = None,
        locs: LocMap | None = None,
    ) -> tuple[Fields, LocMap, m.Extra]:
        fields = {} if fields is None else fields
        locs = {} if locs is None else locs
        extra: list[tuple[str, tuple[str, ...]]] = []
        if not nodes:
            return fields, locs, ()
        for node in self._statements(nodes, table, aliases):
            word = node.keyword
            name = word.text
            if name in aliases:
                name, note = aliases[name]
                if note:
                    self.warn(note, word)
            spec = table.get(name)
            if spec is None:
                self.unknown(word, block)
                continue
            if name in deprecated:
                self.warn(deprecated[name], word)
            if spec.field is None:
                extra.append((name, tuple(a.text for a in node.args) + self._raw_children(node)))
                continue
            if spec.kind == "special":
                specials[spec.field](node, name, fields, locs)
                if spec.field not in locs:
                    locs[spec.field] = Location(word.file, word.line, word.col)
                continue
            if node.children is not None:
                self.err(f"'{word.text}' does not open a block", word)
                continue
            if spec.field in fields and spec.field in locs:
                prev = locs[spec.field]
                self.warn(f"'{name}' given again; the one at line {prev.line} is overridden", word)
            try:
                fields[spec.field] = self.scalar(spec, word, node.args)
            except BadValue as exc:
                self.bad(exc, word)
                continue
            locs[spec.field] = Location(word.file, word.line, word.col)
        return fields, locs, tuple(extra)

    def _statements(
        self, nodes: Sequence[Node], table: Mapping[str, s.Kw], aliases: Mapping[str, Any]
    ) -> Sequence[Node]:
        """The nodes, with one-line blocks split only when some statement carries more words than it takes."""
        for node in nodes:
            if node.children is None and node.args:
                name = node.keyword.text
                spec = table.get(aliases[name][0] if name in aliases else name)
                if spec is not None and len(node.args) > spec.max_args:
                    return self.split_inline(nodes, table, aliases)
        return nodes

    def _raw_children(self, node: Node) -> tuple[str, ...]:
        if node.children is None:
            return ()
        words: list[str] = ["{"]
        for child in node.children:
            words.append(child.keyword.text)
            words.extend(a.text for a in child.args)
            words.extend(self._raw_children(child))
            words.append(";")
        words.append("}")
        return tuple(words)

    def scalar(self, spec: s.Kw, word: Word, args: Sequence[Word]) -> Any:
        kind = spec.kind
        if kind == "flag":
            if args:
                # keepalived's flags ignore trailing words; a value here is usually a typo worth seeing
                value = v.boolean(word, args)
                self._too_many(word, args, 1)
                return value
            return True
        if kind == "bool":
            self._too_many(word, args, 1)
            return v.boolean(word, args)
        if kind in ("script",):
            return v.script(word, args)
        if kind == "command":
            return v.command(word, args)
        if kind == "words":
            if not args:
                raise BadValue(f"'{word.text}' needs a value", word)
            self._too_many(word, args, spec.max_args)
            return tuple(a.text for a in args)
        if kind == "method":
            return v.lvs_method(word, args)
        first = v.one(word, args, "a value")
        self._too_many(word, args, 1)
        if kind == "int":
            return v.integer(first, int(spec.lo), int(spec.hi), word.text)
        if kind == "timer":
            return v.timer(first, spec.lo, spec.hi, word.text)
        if kind == "str":
            return first.text
        if kind == "ip":
            return v.address(first, word.text)
        if kind == "iface":
            return v.interface_address(first, word.text)
        if kind == "port":
            return v.port(first, word.text)
        if kind == "enum":
            text = first.text
            for choice in spec.choices:
                if choice == text:
                    return choice
                if choice.lower() == text.lower():
                    if not spec.exact:
                        return choice
                    raise BadValue(f"{word.text} '{text}' must be written '{choice}': keepalived is case-sensitive "
                                   f"here and would ignore '{text}'", first)
            raise BadValue(f"invalid {word.text} '{text}' (one of: {', '.join(spec.choices)})", first)
        raise AssertionError(f"unhandled keyword kind {kind}")

    def _too_many(self, word: Word, args: Sequence[Word], limit: int) -> None:
        if len(args) > limit:
            extra = args[limit]
            raise BadValue(f"unexpected '{extra.text}' after '{word.text}'", extra)

    def need_block(self, node: Node) -> list[Node] | None:
        if node.children is None:
            self.err(f"'{node.keyword.text}' needs a {{ }} block", node.keyword)
            return None
        return node.children

    def no_block(self, node: Node) -> bool:
        if node.children is not None:
            self.err(f"'{node.keyword.text}' does not open a block", node.keyword)
            return False
        return True

    # ------------------------------------------------------------------------------ root

    def build(self, nodes: Sequence[Node], source: str | None = None) -> m.Config:
        parts = ConfigParts()
        for node in nodes:
            self.add_node(node, parts)
        return self.assemble(parts, self.finish_instances(parts.instances, parts.global_defs), source)

    def add_node(self, node: Node, parts: ConfigParts) -> None:
        """Build one top-level statement into ``parts`` (config/incremental.py rebuilds only the changed ones)."""
        word = node.keyword
        name = word.text
        if name == "global_defs":
            if parts.seen_global:
                self.warn("a second global_defs block: its values are merged into the first", word)
            parts.seen_global = True
            parts.global_defs = self.global_defs(node, parts.global_defs)
        elif name == "vrrp_instance":
            inst = self.instance(node)
            if inst is not None:
                parts.instances.append(inst)
        elif name == "virtual_server":
            vs = self.virtual_server(node)
            if vs is not None:
                parts.virtual_servers.append(vs)
        elif name == "vrrp_sync_group":
            group = self.sync_group(node)
            if group is not None:
                parts.sync_groups.append(group)
        elif name == "vrrp_script":
            script = self.vrrp_script(node)
            if script is not None:
                parts.vrrp_scripts.append(script)
        elif name in ("track_file", "vrrp_track_file"):
            if name == "vrrp_track_file":
                self.warn("'vrrp_track_file' is deprecated; use 'track_file'", word)
            tf = self.track_file_block(node)
            if tf is not None:
                parts.track_files.append(tf)
        elif name == "virtual_server_group":
            vsg = self.vsg(node)
            if vsg is not None:
                parts.virtual_server_groups.append(vsg)
        elif name == "static_ipaddress":
            parts.static_ipaddress.extend(self.static_addresses(node))
        elif name == "static_routes":
            parts.static_routes.extend(self.static_lines(node))
        elif name == "static_rules":
            parts.static_rules.extend(self.static_lines(node))
        elif name == "SSL":
            children = self.need_block(node)
            _, _, ssl_extra = self.read_block(children, s.SSL_BLOCK, "SSL")
            parts.ssl.extend(ssl_extra)
        elif name in s.ROOT_RAW:
            if name == "vrrp_track_process":
                self.raw_block_keywords(node, s.TRACK_PROCESS_KEYWORDS)
            elif name == "bfd_instance":
                self.warn("bfd_instance is not supported by lvsconsole: no BFD session is run, the block is parsed "
                          "and ignored", word)
                self.raw_block_keywords(node, s.BFD_INSTANCE_KEYWORDS)
            parts.extra.append((name, tuple(a.text for a in node.args) + self._raw_children(node)))
        elif name in s.GLOBAL or name in s.INSTANCE:
            self.err(f"'{name}' must be inside a block, not at the top level", word)
        else:
            self.unknown(word, "the top level")

    @staticmethod
    def assemble(parts: ConfigParts, instances: Sequence[m.VrrpInstance], source: str | None) -> m.Config:
        """The Config of ``parts``, with ``instances`` (``finish_instances`` of the parts' instances)."""
        return m.Config(
            global_defs=parts.global_defs,
            static_ipaddress=tuple(parts.static_ipaddress),
            static_routes=tuple(parts.static_routes),
            static_rules=tuple(parts.static_rules),
            vrrp_scripts=tuple(parts.vrrp_scripts),
            track_files=tuple(parts.track_files),
            sync_groups=tuple(parts.sync_groups),
            instances=tuple(instances),
            virtual_server_groups=tuple(parts.virtual_server_groups),
            virtual_servers=tuple(parts.virtual_servers),
            ssl=tuple(parts.ssl),
            extra=tuple(parts.extra),
            source=source,
        )

    def block_name(self, node: Node, what: str) -> str | None:
        if not node.args:
            self.err(f"{what} needs a name", node.keyword)
            return None
        if len(node.args) > 1:
            self.err(f"unexpected '{node.args[1].text}' after the {what} name", node.args[1])
        return node.args[0].text

    def raw_block_keywords(self, node: Node, known: tuple[str, ...]) -> None:
        """Report the unknown keywords of a block kept verbatim (an error under --strict, as in any block)."""
        block = f"{node.keyword.text} {' '.join(a.text for a in node.args)}".strip()
        for child in node.children or ():
            if child.keyword.text not in known:
                self.unknown(child.keyword, block)

    def unsupported_bfd_tracking(self, children: Sequence[Node], locs: LocMap) -> None:
        """track_bfd is accepted (keepalived knows it) but lvsconsole runs no BFD: say so where it is written. Each
        entry's place goes in ``locs`` as track_bfd[N], N counting the entries of every track_bfd block in order,
        for validate.py to point at one that names no bfd_instance."""
        entries = 0
        for child in children:
            if child.keyword.text == "track_bfd":
                self.warn("track_bfd is not supported by lvsconsole: no BFD session is run, the tracking is parsed "
                          "and ignored", child.keyword)
                for entry in child.children or ():
                    locs[f"track_bfd[{entries}]"] = entry.keyword.loc
                    entries += 1

    def raw_lines(self, node: Node) -> list[tuple[str, ...]]:
        children = self.need_block(node) or []
        return [(c.keyword.text, *(a.text for a in c.args)) for c in children]

    # ------------------------------------------------------------------------------ global_defs

    def global_defs(self, node: Node, previous: m.GlobalDefs) -> m.GlobalDefs:
        children = self.need_block(node)
        fields: Fields = {}
        locs: LocMap = dict(previous.locs)

        def emails(n: Node, _: str, f: Fields, lc: LocMap) -> None:
            block = self.need_block(n) or []
            addrs = [c.keyword.text for c in block] + [a.text for c in block for a in c.args]
            f["notification_email"] = tuple(addrs)

        def smtp_server(n: Node, _: str, f: Fields, lc: LocMap) -> None:
            try:
                addr_word = v.one(n.keyword, n.args, "an address")
                addr = v.address(addr_word, "smtp_server address")
                port = v.port(n.args[1], "smtp_server port") if len(n.args) > 1 else None
                self._too_many(n.keyword, n.args, 2)
                f["smtp_server"] = m.Endpoint(addr, port)
            except BadValue as exc:
                self.bad(exc, n.keyword)

        def sync_daemon(n: Node, _: str, f: Fields, lc: LocMap) -> None:
            try:
                f["lvs_sync_daemon"] = self.lvs_sync_daemon(n, lc)
                lc["lvs_sync_daemon"] = n.keyword.loc
            except BadValue as exc:
                self.bad(exc, n.keyword)

        def flush_on_stop(n: Node, _: str, f: Fields, lc: LocMap) -> None:
            if not n.args:
                f["lvs_flush_on_stop"] = "ALL"
                return
            text = n.args[0].text.upper()
            if text not in ("VS", "ALL"):
                self.err(f"lvs_flush_on_stop takes VS or nothing, not '{n.args[0].text}'", n.args[0])
                return
            f["lvs_flush_on_stop"] = text

        def timeouts(n: Node, _: str, f: Fields, lc: LocMap) -> None:
            vals: dict[str, int] = {}
            args = list(n.args)
            try:
                if len(args) % 2:
                    raise BadValue(f"'{args[-1].text}' needs a value", args[-1])
                for i in range(0, len(args), 2):
                    key = args[i].text
                    if key not in ("tcp", "tcpfin", "udp"):
                        raise BadValue(f"unknown lvs_timeouts '{key}' (tcp, tcpfin or udp)", args[i])
                    vals[key] = v.integer(args[i + 1], 1, 86400 * 365, f"lvs_timeouts {key}")
                f["lvs_timeouts"] = m.LvsTimeouts(**vals)
            except BadValue as exc:
                self.bad(exc, n.keyword)

        fields, locs, extra = self.read_block(
            children,
            s.GLOBAL,
            "global_defs",
            aliases=s.GLOBAL_ALIASES,
            specials={
                "notification_email": emails,
                "smtp_server": smtp_server,
                "lvs_sync_daemon": sync_daemon,
                "lvs_flush_on_stop": flush_on_stop,
                "lvs_timeouts": timeouts,
                "lvs_id": lambda n, k, f, lc: self.err(s.GLOBAL_REMOVED["lvs_id"], n.keyword),
            },
            fields=fields,
            locs=locs,
        )
        for key in ("vrrp_mcast_group4", "vrrp_mcast_group6"):
            group = fields.get(key)
            want = IPv4Address if key.endswith("4") else IPv6Address
            if group is not None and (not isinstance(group, want) or not group.is_multicast):
                self.err(f"{key} {group} is not an IPv{'4' if want is IPv4Address else '6'} multicast address",
                         next(c.keyword for c in children or [] if c.keyword.text == key))
                del fields[key]
        merged = {**{k: getattr(previous, k) for k in previous.__dataclass_fields__ if k not in ("locs",)}}
        merged.update(fields)
        merged["extra"] = previous.extra + extra
        return m.GlobalDefs(**merged, locs=MappingProxyType(locs))

    def lvs_sync_daemon(self, node: Node, locs: LocMap) -> m.LvsSyncDaemon:
        args = list(node.args)
        iface = v.one(node.keyword, args, "an interface").text
        rest = args[1:]
        kwargs: dict[str, Any] = {}
        i = 0
        # the instance is positional and optional, the options come in pairs: an odd count means the first word
        # is the instance even when it is named like an option (an instance called "port")
        if rest and (len(rest) % 2 == 1 or rest[0].text not in ("inst", "id", "maxlen", "port", "ttl", "group")):
            kwargs["instance"] = rest[0].text
            locs["lvs_sync_daemon.instance"] = rest[0].loc
            i = 1
        while i < len(rest):
            key = rest[i].text
            if i + 1 >= len(rest):
                raise BadValue(f"'{key}' needs a value", rest[i])
            val = rest[i + 1]
            if key == "inst":
                kwargs["instance"] = val.text
                locs["lvs_sync_daemon.instance"] = val.loc
            elif key == "id":
                kwargs["syncid"] = v.integer(val, 0, 255, "lvs_sync_daemon id")
            elif key == "maxlen":
                kwargs["maxlen"] = v.integer(val, 1, 65535 - 20 - 8, "lvs_sync_daemon maxlen")
            elif key == "port":
                kwargs["port"] = v.integer(val, 1, 65535, "lvs_sync_daemon port")
            elif key == "ttl":
                kwargs["ttl"] = v.integer(val, 1, 255, "lvs_sync_daemon ttl")
            elif key == "group":
                group = v.address(val, "lvs_sync_daemon group")
                if not group.is_multicast:
                    raise BadValue(f"lvs_sync_daemon group {group} is not a multicast address", val)
                kwargs["group"] = group
            else:
                raise BadValue(f"unknown lvs_sync_daemon option '{key}'", rest[i])
            i += 2
        return m.LvsSyncDaemon(iface, **kwargs)

    # ------------------------------------------------------------------------------ static addresses

    def static_addresses(self, node: Node) -> list[m.StaticAddress]:
        out = []
        for child in self.need_block(node) or []:
            try:
                addr = v.interface_address(child.keyword, "static address")
            except BadValue as exc:
                self.bad(exc, child.keyword)
                continue
            locs = {"address": child.keyword.loc}
            group = next((w for w in child.args if w.text == "track_group"), None)
            if group is not None:
                locs["track_group"] = group.loc
            out.append(m.StaticAddress(addr, tuple(a.text for a in child.args), MappingProxyType(locs)))
        return out

    def static_lines(self, node: Node) -> list[m.StaticLine]:
        """The lines of static_routes / static_rules, located, with ``track_group NAME`` (valid on static entries
        only, keepalived's vrrp_ip_rule_route_parser.c) taken out of the words the route or rule is read from."""
        out = []
        for child in self.need_block(node) or []:
            words = [child.keyword, *child.args]
            locs = {"words": child.keyword.loc}
            group = None
            at = next((i for i, w in enumerate(words[:-1]) if w.text == "track_group"), None)
            if at is not None:
                group = words[at + 1].text
                locs["track_group"] = words[at].loc
                del words[at:at + 2]
            out.append(m.StaticLine(tuple(w.text for w in words), group, MappingProxyType(locs)))
        return out

    # ------------------------------------------------------------------------------ vrrp_instance

    def instance(self, node: Node) -> m.VrrpInstance | None:
        name = self.block_name(node, "vrrp_instance")
        children = self.need_block(node)
        if name is None or children is None:
            return None
        fields: Fields = {}
        locs: LocMap = {"name": node.args[0].loc}

        def addresses(n: Node, key: str, f: Fields, lc: LocMap) -> None:
            f[key] = f.get(key, ()) + tuple(self.virtual_addresses(n))

        def routes(n: Node, key: str, f: Fields, lc: LocMap) -> None:
            done = len(f.get(key, ()))
            for i, child in enumerate(n.children or []):  # validate.py points at a bad line
                lc[f"{key}[{done + i}]"] = child.keyword.loc
            f[key] = f.get(key, ()) + tuple(self.raw_lines(n))

        def auth(n: Node, key: str, f: Fields, lc: LocMap) -> None:
            block = self.need_block(n)
            if block is None:
                return
            af, al, _ = self.read_block(block, s.AUTHENTICATION, "authentication")
            words = [w for c in block for w in (c.keyword, *c.args)]
            if "auth_type" not in af:
                if not any(w.text == "auth_type" for w in words):  # else its bad value is reported already
                    self.err("authentication needs auth_type PASS or AH", n.keyword)
                return
            password = af.get("auth_pass", "")
            if af["auth_type"] == "PASS" and not password:
                self.err("auth_type PASS needs an auth_pass", n.keyword)
            if len(password) > 8:
                # keepalived truncates with a warning; point at the password itself (also in a one-line block)
                pass_loc = al["auth_pass"]
                at = next(i for i, w in enumerate(words) if w.loc == pass_loc)
                self.warn(f"auth_pass is longer than 8 characters; only '{password[:8]}' is used", words[at + 1])
                password = password[:8]
            f[key] = m.Authentication(af["auth_type"], password, MappingProxyType(al))

        def peers(n: Node, key: str, f: Fields, lc: LocMap) -> None:
            f[key] = f.get(key, ()) + tuple(self.unicast_peers(n))

        def tracks(n: Node, key: str, f: Fields, lc: LocMap) -> None:
            f[key] = f.get(key, ()) + tuple(self.track_refs(n, key))

        def use_vmac(n: Node, key: str, f: Fields, lc: LocMap) -> None:
            if self.no_block(n):
                f[key] = tuple(a.text for a in n.args)

        def accept(n: Node, key: str, f: Fields, lc: LocMap) -> None:
            if self.no_block(n):
                f["accept"] = n.keyword.text == "accept"

        fields, locs, extra = self.read_block(
            children,
            s.INSTANCE,
            f"vrrp_instance {name}",
            aliases=s.INSTANCE_ALIASES,
            deprecated=s.INSTANCE_DEPRECATED,
            specials={
                "virtual_ipaddress": addresses,
                "virtual_ipaddress_excluded": addresses,
                "virtual_routes": routes,
                "virtual_rules": routes,
                "authentication": auth,
                "unicast_peer": peers,
                "track_interface": tracks,
                "track_script": tracks,
                "track_file": tracks,
                "accept": accept,
                "use_vmac": use_vmac,
            },
            fields=fields,
            locs=locs,
        )
        if "virtual_router_id" not in fields and not any(c.keyword.text == "virtual_router_id" for c in children):
            self.err(f"vrrp_instance {name} has no virtual_router_id", node.keyword)
        self.unsupported_bfd_tracking(children, locs)
        inst = m.VrrpInstance(name=name, **fields, extra=extra, locs=MappingProxyType(locs))
        return inst

    def finish_instances(self, instances: list[m.VrrpInstance], g: m.GlobalDefs) -> list[m.VrrpInstance]:
        """Apply keepalived's defaults that depend on several keywords (vrrp_complete_instance)."""
        out = []
        for inst in instances:
            changes: dict[str, Any] = {}
            has_state = "state" in inst.locs
            has_prio = "priority" in inst.locs
            if not has_prio and inst.state == "MASTER" and has_state:
                changes["priority"] = 255
            if not has_state:
                changes["state"] = "MASTER" if inst.priority == 255 else "BACKUP"
            if "version" not in inst.locs:
                # keepalived (vrrp_complete_instance): an IPv6 instance is VRRPv3 whatever vrrp_version says
                changes["version"] = 3 if instance_family(inst) == 6 else g.vrrp_version
            state = changes.get("state", inst.state)
            prio = changes.get("priority", inst.priority)
            if inst.nopreempt and (state == "MASTER" or prio == 255):
                why = "state MASTER" if state == "MASTER" else "priority 255"
                self.diagnostics.append(warning(
                    f"({inst.name}) nopreempt is incompatible with {why}; it is ignored (as keepalived does)",
                    inst.locs.get("nopreempt")))
                changes["nopreempt"] = False
            if inst.preempt_delay and state == "MASTER":
                self.diagnostics.append(warning(
                    f"({inst.name}) preempt_delay is incompatible with state MASTER; it is ignored",
                    inst.locs.get("preempt_delay")))
                changes["preempt_delay"] = 0.0
            if changes:
                inst = m.VrrpInstance(**{**_fields_of(inst), **changes})
            out.append(inst)
        return out

    def virtual_addresses(self, node: Node) -> list[m.VirtualAddress]:
        out = []
        for child in self.need_block(node) or []:
            words = [child.keyword, *child.args]
            try:
                addr = v.interface_address(words[0], "virtual address")
                kwargs: dict[str, Any] = {}
                flags: list[str] = []
                i = 1
                while i < len(words):
                    key = words[i].text
                    if key in ("brd", "dev", "scope", "label", "peer", "preferred_lft"):
                        if i + 1 >= len(words):
                            raise BadValue(f"'{key}' needs a value", words[i])
                        val = words[i + 1]
                        if key == "brd":
                            kwargs["brd"] = v.address(val, "broadcast address")
                        elif key == "peer":
                            kwargs["peer"] = v.interface_address(val, "peer address")
                        elif key == "scope":
                            if val.text not in ("global", "site", "link", "host", "nowhere") and not val.text.isdigit():
                                raise BadValue(f"invalid scope '{val.text}'", val)
                            kwargs["scope"] = val.text
                        elif key == "preferred_lft":
                            flags.extend((key, val.text))
                        else:
                            kwargs[key] = val.text
                        i += 2
                    elif key in ("home", "-nodad", "nodad", "mngtmpaddr", "noprefixroute", "autojoin",
                                 "no_track", "use_vmac"):
                        flags.append(key)
                        i += 1
                    else:
                        raise BadValue(f"unknown virtual address option '{key}'", words[i])
                label = kwargs.get("label")
                if label is not None and kwargs.get("dev") is None and ":" not in label:
                    pass
                out.append(m.VirtualAddress(addr, flags=tuple(flags), locs=MappingProxyType({"address": words[0].loc}),
                                            **kwargs))
            except BadValue as exc:
                self.bad(exc, child.keyword)
        return out

    def unicast_peers(self, node: Node) -> list[m.UnicastPeer]:
        out = []
        for child in self.need_block(node) or []:
            try:
                addr = v.address(child.keyword, "unicast peer")
                kwargs: dict[str, int] = {}
                args = list(child.args)
                for i in range(0, len(args), 2):
                    key = args[i].text
                    if key not in ("min_ttl", "max_ttl") or i + 1 >= len(args):
                        raise BadValue(f"unexpected '{key}' after a unicast peer", args[i])
                    kwargs[key] = v.integer(args[i + 1], 0, 255, key)
                out.append(m.UnicastPeer(addr, locs=MappingProxyType({"address": child.keyword.loc}), **kwargs))
            except BadValue as exc:
                self.bad(exc, child.keyword)
        return out

    def track_refs(self, node: Node, key: str) -> list[m.TrackRef]:
        out = []
        for child in self.need_block(node) or []:
            args = list(child.args)
            weight = None
            reverse = False
            try:
                i = 0
                while i < len(args):
                    word = args[i]
                    if word.text == "weight" and i + 1 < len(args):
                        lo, hi = (-254, 254) if key != "track_file" else (-(2**31 - 1), 2**31 - 1)
                        weight = v.integer(args[i + 1], lo, hi, "weight")
                        i += 2
                    elif word.text == "reverse":
                        reverse = True
                        i += 1
                    elif word.text == "noreverse":
                        i += 1
                    else:
                        raise BadValue(f"unexpected '{word.text}' in {key}", word)
            except BadValue as exc:
                self.bad(exc, child.keyword)
                continue
            out.append(m.TrackRef(child.keyword.text, weight, reverse,
                                  MappingProxyType({"name": child.keyword.loc})))
        return out

    # ------------------------------------------------------------------------------ sync group

    def sync_group(self, node: Node) -> m.SyncGroup | None:
        name = self.block_name(node, "vrrp_sync_group")
        children = self.need_block(node)
        if name is None or children is None:
            return None
        refs_locs: list[Location] = []

        def members(n: Node, key: str, f: Fields, lc: LocMap) -> None:
            block = self.need_block(n) or []
            names: list[str] = list(f.get("group", ()))
            for c in block:
                for w in (c.keyword, *c.args):
                    names.append(w.text)
                    refs_locs.append(w.loc)
            f["group"] = tuple(names)

        def tracks(n: Node, key: str, f: Fields, lc: LocMap) -> None:
            f[key] = f.get(key, ()) + tuple(self.track_refs(n, key))

        old_style = [c for c in children if c.keyword.text not in s.SYNC_GROUP and c.children is None and not c.args]
        if old_style:
            # keepalived 1.x listed the instances directly in the block (the lvs_syncd sample still does);
            # 2.x reports them as unknown keywords and leaves the group empty. We keep the intent.
            self.warn(f"vrrp_sync_group {name}: instances listed without 'group {{ }}' (keepalived 1.x syntax); "
                      "keepalived 2.x ignores them", old_style[0].keyword)
            children = [c for c in children if c not in old_style]
            children.append(Node(Word("group", old_style[0].keyword.file, old_style[0].keyword.line,
                                      old_style[0].keyword.col), [], old_style))
        fields, locs, extra = self.read_block(
            children, s.SYNC_GROUP, f"vrrp_sync_group {name}",
            deprecated=s.SYNC_GROUP_DEPRECATED,
            specials={"group": members, "track_interface": tracks, "track_script": tracks, "track_file": tracks},
        )
        locs["name"] = node.args[0].loc
        self.unsupported_bfd_tracking(children, locs)
        for i, loc in enumerate(refs_locs):
            locs[f"group.{i}"] = loc
        if not fields.get("group"):
            self.err(f"vrrp_sync_group {name} has no group {{ }} of instances", node.keyword)
        return m.SyncGroup(name=name, **fields, extra=extra, locs=MappingProxyType(locs))

    # ------------------------------------------------------------------------------ scripts and files

    def _weight(self, n: Node, f: Fields, lo: int, hi: int) -> None:
        try:
            word = v.one(n.keyword, n.args, "a weight")
            f["weight"] = v.integer(word, lo, hi, "weight")
            if len(n.args) > 1:
                if n.args[1].text == "reverse":
                    f["weight_reverse"] = True
                elif n.args[1].text != "noreverse":
                    raise BadValue(f"unexpected '{n.args[1].text}' after the weight", n.args[1])
            self._too_many(n.keyword, n.args, 2)
        except BadValue as exc:
            self.bad(exc, n.keyword)

    def vrrp_script(self, node: Node) -> m.VrrpScript | None:
        name = self.block_name(node, "vrrp_script")
        children = self.need_block(node)
        if name is None or children is None:
            return None
        fields, locs, _ = self.read_block(
            children, s.VRRP_SCRIPT, f"vrrp_script {name}",
            specials={"weight": lambda n, k, f, lc: self._weight(n, f, -253, 253)},
        )
        locs["name"] = node.args[0].loc
        if "script" not in fields:
            self.err(f"vrrp_script {name} has no script", node.keyword)
        return m.VrrpScript(name=name, **fields, locs=MappingProxyType(locs))

    def track_file_block(self, node: Node) -> m.TrackFile | None:
        name = self.block_name(node, "track_file")
        children = self.need_block(node)
        if name is None or children is None:
            return None
        fields, locs, _ = self.read_block(
            children, s.TRACK_FILE, f"track_file {name}",
            specials={"weight": lambda n, k, f, lc: self._weight(n, f, -254, 254)},
        )
        locs["name"] = node.args[0].loc
        if "file" not in fields:
            self.err(f"track_file {name} has no file", node.keyword)
        return m.TrackFile(name=name, **fields, locs=MappingProxyType(locs))

    # ------------------------------------------------------------------------------ virtual_server_group

    def vsg(self, node: Node) -> m.VirtualServerGroup | None:
        name = self.block_name(node, "virtual_server_group")
        children = self.need_block(node)
        if name is None or children is None:
            return None
        entries = []
        for child in children:
            word = child.keyword
            try:
                if word.text == "fwmark":
                    mark = v.integer(v.one(word, child.args, "a mark"), 1, s.UINT32, "fwmark")
                    family = None
                    if len(child.args) > 1:
                        family = child.args[1].text
                        if family not in ("inet", "inet6"):
                            raise BadValue(f"unexpected '{family}' after fwmark (inet or inet6)", child.args[1])
                    self._too_many(word, child.args, 2)
                    entries.append(m.VsgEntry(fwmark=mark, family=family,  # type: ignore[arg-type]
                                              locs=MappingProxyType({"entry": word.loc})))
                    continue
                first, last = v.address_range(word)
                port = v.port(child.args[0], "port") if child.args else None
                self._too_many(word, child.args, 1)
                entries.append(m.VsgEntry(first, last, port, locs=MappingProxyType({"entry": word.loc})))
            except BadValue as exc:
                self.bad(exc, word)
        return m.VirtualServerGroup(name, tuple(entries), MappingProxyType({"name": node.args[0].loc}))

    # ------------------------------------------------------------------------------ virtual_server

    def virtual_server(self, node: Node) -> m.VirtualServer | None:
        word = node.keyword
        args = node.args
        children = self.need_block(node)
        head: Fields = {}
        locs: LocMap = {}
        try:
            first = v.one(word, args, "an address, 'fwmark N' or 'group NAME'")
            locs["key"] = first.loc
            if first.text == "fwmark":
                mark_word = v.one(first, args[1:], "a mark")
                head["fwmark"] = v.integer(mark_word, 1, s.UINT32, "fwmark")
                self._too_many(word, args, 2)
            elif first.text == "group":
                group_word = v.one(first, args[1:], "a group name")
                head["group"] = group_word.text
                locs["group"] = group_word.loc
                self._too_many(word, args, 2)
            else:
                head["address"] = v.address(first, "virtual server address")
                if len(args) > 1:
                    head["port"] = v.port(args[1], "virtual server port")
                self._too_many(word, args, 2)
        except BadValue as exc:
            self.bad(exc, word)
            return None
        if children is None:
            return None
        flags: list[str] = []
        rs_nodes: list[Node] = []

        def sched(n: Node, key: str, f: Fields, lc: LocMap) -> None:
            try:
                w = v.one(n.keyword, n.args, "a scheduler")
                self._too_many(n.keyword, n.args, 1)
            except BadValue as exc:
                self.bad(exc, n.keyword)
                return
            if w.text not in m.SCHEDULERS:
                self.err(f"unknown scheduler '{w.text}' (one of: {' '.join(m.SCHEDULERS)})", w)
                return
            f["lvs_sched"] = w.text
            lc["lvs_sched"] = n.keyword.loc

        def protocol(n: Node, key: str, f: Fields, lc: LocMap) -> None:
            try:
                w = v.one(n.keyword, n.args, "TCP, UDP or SCTP")
                self._too_many(n.keyword, n.args, 1)
            except BadValue as exc:
                self.bad(exc, n.keyword)
                return
            if w.text.upper() not in ("TCP", "UDP", "SCTP"):
                self.err(f"unknown protocol '{w.text}' (TCP, UDP or SCTP)", w)
                return
            f["protocol"] = w.text.upper()
            lc["protocol"] = n.keyword.loc

        def persistence(n: Node, key: str, f: Fields, lc: LocMap) -> None:
            try:
                if not n.args:
                    f[key] = 360
                else:
                    f[key] = v.integer(n.args[0], 1, s.UINT32, key)
                    self._too_many(n.keyword, n.args, 1)
            except BadValue as exc:
                self.bad(exc, n.keyword)

        def granularity(n: Node, key: str, f: Fields, lc: LocMap) -> None:
            try:
                w = v.one(n.keyword, n.args, "a netmask")
                if w.text.isdigit():
                    f[key] = w.text  # resolved against the family below
                else:
                    mask = v.address(w, "persistence_granularity")
                    f[key] = mask
            except BadValue as exc:
                self.bad(exc, n.keyword)

        def sorry(n: Node, key: str, f: Fields, lc: LocMap) -> None:
            try:
                addr = v.address(v.one(n.keyword, n.args, "an address"), "sorry_server address")
                port = v.port(n.args[1], "sorry_server port") if len(n.args) > 1 else None
                self._too_many(n.keyword, n.args, 2)
                f[key] = m.Endpoint(addr, port)
            except BadValue as exc:
                self.bad(exc, n.keyword)

        def min_healthy(n: Node, key: str, f: Fields, lc: LocMap) -> None:
            try:
                w = v.one(n.keyword, n.args, "N or P%")
                self._too_many(n.keyword, n.args, 1)
                percent = w.text.endswith("%")
                count = v.integer(w._replace(text=w.text[:-1]) if percent else w, 0, 100 if percent else s.UINT32,
                                  key)
            except BadValue as exc:
                self.bad(exc, n.keyword)
                return
            f[key] = m.MinHealthy(count, percent)
            lc[key] = n.keyword.loc

        def sched_flag(n: Node, key: str, f: Fields, lc: LocMap) -> None:
            if self.no_block(n):
                name = n.keyword.text
                if name not in flags:
                    flags.append(name)

        def real_server(n: Node, key: str, f: Fields, lc: LocMap) -> None:
            rs_nodes.append(n)

        fields, locs, extra = self.read_block(
            children, s.VIRTUAL_SERVER, f"virtual_server {' '.join(a.text for a in args)}",
            aliases=s.LVS_ALIASES,
            specials={
                "lvs_sched": sched, "protocol": protocol, "persistence_timeout": persistence,
                "persistence_granularity": granularity, "sorry_server": sorry, "sched_flags": sched_flag,
                "min_healthy": min_healthy,
                "real_servers": real_server,
            },
            fields=dict(head),
            locs=locs,
        )
        if flags:
            fields["sched_flags"] = tuple(flags)
        vs_label = self._vs_label(fields)
        if "address" in fields and "protocol" not in fields:
            self.err(f"virtual_server {vs_label} has no protocol (keepalived would silently use UDP)", word)
        if "lvs_sched" not in locs:
            self.warn(f"virtual_server {vs_label} has no lvs_sched (lb_algo): keepalived uses wlc", word)
        if not any(c.keyword.text in ("lvs_method", "lb_kind") for c in children):
            self.warn(f"virtual_server {vs_label} has no lvs_method (lb_kind): keepalived uses NAT", word)
        if ("fwmark" in fields) and "protocol" in fields:
            self.warn(f"virtual_server {vs_label}: protocol is ignored for a fwmark service", word)
        gran = fields.get("persistence_granularity")
        if isinstance(gran, str):
            family_v6 = isinstance(fields.get("address"), IPv6Address) or fields.get("ip_family") == "inet6"
            prefix = int(gran)
            if not 0 < prefix <= (128 if family_v6 else 32):
                self.err(f"persistence_granularity /{prefix} is out of range", word)
                del fields["persistence_granularity"]
            elif family_v6:
                fields["persistence_granularity"] = IPv6Address(((1 << 128) - 1) ^ ((1 << (128 - prefix)) - 1))
            else:
                fields["persistence_granularity"] = IPv4Address(((1 << 32) - 1) ^ ((1 << (32 - prefix)) - 1))
        vs_method: m.LvsMethod = fields.get("lvs_method", m.LvsMethod())
        real_servers: list[m.RealServer] = []
        seen: dict[tuple[Any, Any], Location] = {}
        for rs_node in rs_nodes:
            rs = self.real_server(rs_node, fields, vs_method)
            if rs is None:
                continue
            if rs.key in seen:
                prev = seen[rs.key]
                self.err(
                    f"duplicate real_server {rs.address} {rs.port or ''} in virtual_server {vs_label} "
                    f"(first at line {prev.line})".replace("  ", " "),
                    rs_node.keyword,
                )
                continue
            seen[rs.key] = rs_node.keyword.loc
            real_servers.append(rs)
        fields["real_servers"] = tuple(real_servers)
        try:
            return m.VirtualServer(**fields, extra=extra, locs=MappingProxyType(locs))
        except TypeError as exc:  # a field set twice by head and body; reported above
            self.err(f"cannot build virtual_server: {exc}", word)
            return None

    @staticmethod
    def _vs_label(fields: Fields) -> str:
        if "fwmark" in fields:
            return f"fwmark {fields['fwmark']}"
        if "group" in fields:
            return f"group {fields['group']}"
        port = fields.get("port")
        return f"{fields.get('address')}{'' if port is None else ' ' + str(port)}"

    def real_server(self, node: Node, vs: Fields, vs_method: m.LvsMethod) -> m.RealServer | None:
        word = node.keyword
        try:
            addr_word = v.one(word, node.args, "an address")
            address = v.address(addr_word, "real server address")
            port = v.port(node.args[1], "real server port") if len(node.args) > 1 else None
            self._too_many(word, node.args, 2)
        except BadValue as exc:
            self.bad(exc, word)
            return None
        children = node.children or []
        if node.children is None:
            children = []
        checker_nodes: list[Node] = []
        fields, locs, extra = self.read_block(
            children, _REAL_SERVER_TABLE, f"real_server {address}",
            specials={"checkers": lambda n, k, f, lc: checker_nodes.append(n)},
        )
        locs["address"] = addr_word.loc
        method = fields.get("lvs_method") or vs_method
        if "fwmark" in vs:
            if port is not None:
                self.warn(f"real_server {address}: the port is ignored for a fwmark service", node.args[1])
            port = None
        elif port is None:
            port = vs.get("port")
        elif method.kind != "NAT" and vs.get("port") not in (None, 0) and port != vs.get("port"):
            self.err(
                f"real_server {address} port {port} differs from the virtual server's port {vs.get('port')}: "
                f"only NAT can remap ports ({method.kind} would silently use {vs.get('port')})",
                node.args[1],
            )
        checkers = []
        for cnode in checker_nodes:
            checker = self.checker(cnode, fields, vs)
            if checker is not None:
                checkers.append(checker)
        fields["checkers"] = tuple(checkers)
        return m.RealServer(address=address, port=port, **fields, extra=extra, locs=MappingProxyType(locs))

    # ------------------------------------------------------------------------------ checkers

    def checker(self, node: Node, rs: Fields, vs: Fields) -> m.Checker | None:
        kind = node.keyword.text
        children = self.need_block(node)
        if children is None:
            return None
        table = _CHECKER_TABLES.get(kind, _CHECKER_TABLES["TCP_CHECK"])
        urls: list[m.HttpUrl] = []
        hosts: list[m.CheckerBase] = []

        def url(n: Node, key: str, f: Fields, lc: LocMap) -> None:
            u = self.url(n)
            if u is not None:
                urls.append(u)

        def host(n: Node, key: str, f: Fields, lc: LocMap) -> None:
            self.warn("the SMTP_CHECK host { } block is deprecated; use one SMTP_CHECK per host", n.keyword)
            block = self.need_block(n) or []
            hf, hl, hx = self.read_block(block, s.CHECKER_COMMON, "host", aliases=s.CHECKER_ALIASES)
            hosts.append(m.CheckerBase(**hf, extra=hx, locs=MappingProxyType(hl)))

        def hexes(n: Node, key: str, f: Fields, lc: LocMap) -> None:
            try:
                if key == "payload":
                    f[key] = bytes.fromhex(v.hex_bytes(n.args))
                else:
                    f["require_reply"] = True
                    if n.args:
                        f["require_reply_pattern"] = v.hex_bytes(n.args, wildcards=True)
            except BadValue as exc:
                self.bad(exc, n.keyword)

        def weight(n: Node, key: str, f: Fields, lc: LocMap) -> None:
            self._weight(n, f, -(2**31 - 1), 2**31 - 1)

        fields, locs, extra = self.read_block(
            children, table, kind, aliases=s.CHECKER_ALIASES,
            specials={"urls": url, "hosts": host, "payload": hexes, "require_reply": hexes, "weight": weight},
        )
        if kind == "BFD_CHECK":
            self.warn("BFD_CHECK is not supported by lvsconsole: the checker is parsed and ignored", node.keyword)
        # keepalived's inheritance: checker ← real_server ← virtual_server ← checker default.
        default_retry = {"MISC_CHECK": 0, "DNS_CHECK": 3}.get(kind, 1)
        delay_loop = _first(fields.get("delay_loop"), rs.get("delay_loop"), vs.get("delay_loop"), 60.0)
        default_dbr = {"HTTP_GET": 3.0, "SSL_GET": 3.0, "DNS_CHECK": delay_loop}.get(kind, 1.0)
        if kind not in ("FILE_CHECK", "BFD_CHECK"):
            fields["delay_loop"] = delay_loop
            fields["retry"] = _first(fields.get("retry"), rs.get("retry"), vs.get("retry"), default_retry)
            fields["delay_before_retry"] = _first(
                fields.get("delay_before_retry"), rs.get("delay_before_retry"), vs.get("delay_before_retry"),
                default_dbr)
            warm = _first(fields.get("warmup"), rs.get("warmup"), vs.get("warmup"), None)
            if warm is not None:
                fields["warmup"] = warm
            fields["alpha"] = bool(_first(fields.get("alpha"), rs.get("alpha"), vs.get("alpha"), False))
        if kind not in ("FILE_CHECK", "BFD_CHECK", "MISC_CHECK"):
            fields["connect_timeout"] = _first(
                fields.get("connect_timeout"), rs.get("connect_timeout"), vs.get("connect_timeout"), 5.0)
        frozen_locs = MappingProxyType(locs)
        if kind in ("HTTP_GET", "SSL_GET"):
            if not urls:
                self.err(f"{kind} needs at least one url {{ }} block", node.keyword)
            return m.HttpCheck(ssl=kind == "SSL_GET", urls=tuple(urls), **fields, extra=extra, locs=frozen_locs)
        if kind == "MISC_CHECK":
            if "misc_path" not in fields:
                self.err("MISC_CHECK needs a misc_path", node.keyword)
            return m.MiscCheck(**fields, extra=extra, locs=frozen_locs)
        if kind == "SMTP_CHECK":
            return m.SmtpCheck(hosts=tuple(hosts), **fields, extra=extra, locs=frozen_locs)
        if kind == "FILE_CHECK":
            if "track_file" not in fields:
                self.err("FILE_CHECK needs a track_file", node.keyword)
            return m.FileCheck(**fields, extra=extra, locs=frozen_locs)
        cls: type[m.Checker] = {
            "TCP_CHECK": m.TcpCheck, "DNS_CHECK": m.DnsCheck, "UDP_CHECK": m.UdpCheck,
            "PING_CHECK": m.PingCheck, "BFD_CHECK": m.BfdCheck,
        }[kind]
        return cls(**fields, extra=extra, locs=frozen_locs)

    def url(self, node: Node) -> m.HttpUrl | None:
        children = self.need_block(node)
        if children is None:
            return None

        def digest(n: Node, key: str, f: Fields, lc: LocMap) -> None:
            try:
                w = v.one(n.keyword, n.args, "an MD5 digest")
                text = w.text.lower()
                bad = next((i for i, ch in enumerate(text) if ch not in "0123456789abcdef"), None)
                if len(text) != 32 or bad is not None:
                    raise BadValue(f"digest '{w.text}' is not 32 hex digits (an MD5 from genhash)", w, bad or 0)
                f["digest"] = text
            except BadValue as exc:
                self.bad(exc, n.keyword)

        def status(n: Node, key: str, f: Fields, lc: LocMap) -> None:
            try:
                if not n.args:
                    raise BadValue("status_code needs at least one code or range", n.keyword)
                f["status_code"] = f.get("status_code", ()) + v.status_codes(n.args)
            except BadValue as exc:
                self.bad(exc, n.keyword)

        fields, locs, extra = self.read_block(
            children, s.URL, "url", specials={"digest": digest, "status_code": status})
        if "path" not in fields:
            self.err("url needs a path", node.keyword)
        return m.HttpUrl(**fields, extra=extra, locs=MappingProxyType(locs))


_REAL_SERVER_TABLE: dict[str, s.Kw] = {**s.REAL_SERVER, **{k: s.Kw("checkers", "special") for k in s.CHECKER_KINDS}}


def _checker_table(kind: str) -> dict[str, s.Kw]:
    specific: dict[str, s.Kw] = {
        "HTTP_GET": s.HTTP, "SSL_GET": s.HTTP, "MISC_CHECK": s.MISC, "SMTP_CHECK": s.SMTP,
        "DNS_CHECK": s.DNS, "UDP_CHECK": s.UDP, "FILE_CHECK": s.FILE_CHECK, "BFD_CHECK": s.BFD,
    }.get(kind, {})
    if kind in ("FILE_CHECK", "BFD_CHECK"):
        return dict(specific)
    if kind == "MISC_CHECK":
        return {**s.CHECKER_TIMING, **specific}
    return {**s.CHECKER_COMMON, **s.CHECKER_TIMING, **specific}


_CHECKER_TABLES = {kind: _checker_table(kind) for kind in s.CHECKER_KINDS}


def instance_family(inst: m.VrrpInstance) -> int:
    """The address family of an instance as keepalived fixes it: by its first VIP, else its unicast addresses."""
    if inst.virtual_ipaddress:
        return inst.virtual_ipaddress[0].address.version
    if inst.unicast_src_ip is not None:
        return inst.unicast_src_ip.version
    if inst.unicast_peer:
        return inst.unicast_peer[0].address.version
    return 4


def _first(*candidates: Any) -> Any:
    for candidate in candidates:
        if candidate is not None:
            return candidate
    return None


def _fields_of(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}


# ---------------------------------------------------------------------------------------------- entry points


def build(parsed: ParseResult, *, strict: bool = False, source: str | None = None) -> BuildResult:
    builder = Builder(strict=strict)
    config = builder.build(parsed.nodes, source)
    return BuildResult(config, [*parsed.diagnostics, *builder.diagnostics], list(parsed.files))


@contextmanager
def _no_gc() -> Iterator[None]:
    """Building a big config allocates ~10^6 acyclic objects; the cyclic GC would rescan them for nothing."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_file(path: str, *, strict: bool = False, config_id: str | None = None) -> BuildResult:
    """Read, build and validate a config file. Raises ConfigReadError when the file cannot be read."""
    from lvsconsole.config.validate import validate

    with _no_gc():
        parsed = parse_file(path, config_id=config_id)
        result = build(parsed, strict=strict, source=os.path.abspath(path))
        result.diagnostics.extend(validate(result.config, strict=strict))
    return result


def load_text(text: str, *, filename: str = "<string>", strict: bool = False,
              config_id: str | None = None) -> BuildResult:
    from lvsconsole.config.validate import validate

    with _no_gc():
        parsed = parse_text(text, filename=filename, config_id=config_id)
        result = build(parsed, strict=strict)
        result.diagnostics.extend(validate(result.config, strict=strict))
    return result
