"""virtual_routes and virtual_rules: routes and policy rules a VRRP instance holds while it is MASTER.

keepalived (vrrp_iproute.c, vrrp_iprule.c) adds them after the virtual addresses on becoming MASTER
and deletes them, rules first, before the addresses on leaving MASTER; the syntax follows
``ip route add`` / ``ip rule add``. Routes keepalived adds carry protocol ``keepalived`` (18) unless
the config names another, so that ``ip route show proto keepalived`` lists them.

The parsers and the request encoders are pure; :class:`RouteInstaller` sends the requests over a
synchronous rtnetlink channel (vrrp/rtnl.py: the kernel applies a route inside the send call), so a takeover
adds addresses, routes and rules in one event-loop step, in keepalived's order.

Supported route syntax::

    [unicast|blackhole|unreachable|prohibit|throw|local] [src IP] [to] PREFIX [via|gw IP] [or IP] [dev IF]
        [scope SCOPE] [table T] [metric|priority|preference N] [protocol P] [onlink] [no_track]
        [nexthop [via IP] [dev IF] [weight N] [onlink]]...

(``or IP`` is keepalived's deprecated spelling of a second next hop.)

Supported rule syntax::

    [not] [from PREFIX|all] [to PREFIX|all] [iif IF] [oif IF] [fwmark N[/MASK]] [tos N]
        [priority|preference|pref N] (table T | goto N | blackhole|unreachable|prohibit) [no_track]
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from pathlib import Path
from typing import Any

from lvsconsole.vrrp.packet import IPAddress
from lvsconsole.vrrp.rtnl import Command, RtnlChannel, Templates, request_flags

log = logging.getLogger("lvsconsole.vrrp")

IPNetwork = IPv4Network | IPv6Network
RTPROT_KEEPALIVED = 18
RT_TABLE_MAIN = 254
ROUTE_TYPES = {"unicast": 1, "local": 2, "blackhole": 6, "unreachable": 7, "prohibit": 8, "throw": 9}
RULE_ACTIONS = {"table": 1, "goto": 2, "blackhole": 6, "unreachable": 7, "prohibit": 8}
SCOPES = {"global": 0, "universe": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
PROTOCOLS = {"redirect": 1, "kernel": 2, "boot": 3, "static": 4, "keepalived": RTPROT_KEEPALIVED}
STANDARD_TABLES = {"default": 253, "main": RT_TABLE_MAIN, "local": 255}
FIB_RULE_INVERT = 0x2
RTNH_F_ONLINK = 0x4

RTM_NEWROUTE, RTM_DELROUTE, RTM_NEWRULE, RTM_DELRULE = 24, 25, 32, 33


class RouteSyntaxError(ValueError):
    """A virtual_routes / virtual_rules line keepalived would reject (the message names the word)."""


@dataclass(frozen=True, slots=True)
class Nexthop:
    """One path of a multipath route."""

    via: IPAddress | None = None
    dev: str | None = None
    weight: int = 1
    onlink: bool = False


@dataclass(frozen=True, slots=True)
class VirtualRoute:
    """One virtual_routes entry."""

    text: str
    dst: IPNetwork
    kind: str = "unicast"
    src: IPAddress | None = None
    via: IPAddress | None = None
    dev: str | None = None
    scope: int | None = None
    table: int = RT_TABLE_MAIN
    metric: int | None = None
    protocol: int = RTPROT_KEEPALIVED
    onlink: bool = False
    no_track: bool = False
    nexthops: tuple[Nexthop, ...] = ()

    @property
    def family(self) -> int:
        return self.dst.version

    @property
    def devices(self) -> tuple[str, ...]:
        """Every interface the route names (its own and its next hops')."""
        names = [self.dev] + [hop.dev for hop in self.nexthops]
        return tuple(dict.fromkeys(n for n in names if n is not None))

    @property
    def effective_scope(self) -> int:
        """iproute2's default when no scope is given: host for local, link for a directly connected unicast."""
        if self.scope is not None:
            return self.scope
        if self.kind == "local":
            return SCOPES["host"]
        if self.kind == "unicast" and self.via is None and self.family == 4:
            return SCOPES["link"]
        return SCOPES["global"]


@dataclass(frozen=True, slots=True)
class VirtualRule:
    """One virtual_rules entry."""

    text: str
    family: int
    src: IPNetwork | None = None
    dst: IPNetwork | None = None
    action: str = "table"
    table: int | None = None
    goto: int | None = None
    priority: int | None = None
    fwmark: int | None = None
    fwmask: int | None = None
    iif: str | None = None
    oif: str | None = None
    tos: int = 0
    invert: bool = False
    no_track: bool = False


# -------------------------------------------------------------------------------------------- parsing


def route_tables(path: Path = Path("/etc/iproute2/rt_tables")) -> dict[str, int]:
    """Table names: the standard three plus those of iproute2's rt_tables, if the file is there."""
    tables = dict(STANDARD_TABLES)
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) >= 2 and words[0].isdigit():
                tables[words[1]] = int(words[0])
    return tables


def _table(word: str, tables: Mapping[str, int]) -> int:
    if word.isdigit():
        return int(word)
    if word in tables:
        return tables[word]
    raise RouteSyntaxError(f"unknown routing table '{word}'")


def _integer(word: str, what: str, limit: int = 0xFFFFFFFF) -> int:
    try:
        value = int(word, 0)
    except ValueError:
        raise RouteSyntaxError(f"invalid {what} '{word}'") from None
    if not 0 <= value <= limit:
        raise RouteSyntaxError(f"{what} {value} is out of range")
    return value


def _address(word: str, what: str) -> IPAddress:
    try:
        return ip_address(word)
    except ValueError:
        raise RouteSyntaxError(f"invalid {what} '{word}'") from None


def _prefix(word: str, what: str, family: int | None) -> IPNetwork:
    if word == "default":
        return ip_network("::/0" if family == 6 else "0.0.0.0/0")
    try:
        return ip_network(word, strict=False)
    except ValueError:
        raise RouteSyntaxError(f"invalid {what} '{word}'") from None


def _scope(word: str) -> int:
    if word in SCOPES:
        return SCOPES[word]
    return _integer(word, "scope", 255)


def _protocol(word: str) -> int:
    if word in PROTOCOLS:
        return PROTOCOLS[word]
    return _integer(word, "protocol", 255)


class _Words:
    """The words of one line with the one-word look-ahead the parsers need."""

    def __init__(self, words: Sequence[str]) -> None:
        self.words = list(words)
        self.at = 0

    def more(self) -> bool:
        return self.at < len(self.words)

    def take(self) -> str:
        word = self.words[self.at]
        self.at += 1
        return word

    def value(self, key: str) -> str:
        if not self.more():
            raise RouteSyntaxError(f"'{key}' needs a value")
        return self.take()


def parse_route(words: Sequence[str], *, default_family: int = 4,
                tables: Mapping[str, int] | None = None) -> VirtualRoute:
    """One virtual_routes line (its words) → :class:`VirtualRoute`; RouteSyntaxError if keepalived would not
    accept it. ``default_family`` applies to a ``default`` destination."""
    tables = STANDARD_TABLES if tables is None else tables
    line = _Words(words)
    fields: dict[str, Any] = {}
    dst: IPNetwork | None = None
    hops: list[dict[str, Any]] = []
    in_nexthop = False  # after "nexthop", via/dev/weight/onlink describe that path
    if line.more() and line.words[0] in ROUTE_TYPES:
        fields["kind"] = line.take()
    while line.more():
        word = line.take()
        if word == "nexthop":
            hops.append({})
            in_nexthop = True
        elif in_nexthop and word in ("via", "gw", "dev", "weight", "onlink"):
            hop = hops[-1]
            if word == "onlink":
                hop["onlink"] = True
            elif word == "dev":
                hop["dev"] = line.value(word)
            elif word == "weight":
                hop["weight"] = _integer(line.value(word), "weight", 256)
                if hop["weight"] == 0:
                    raise RouteSyntaxError("nexthop weight must be 1-256")
            else:
                hop["via"] = _address(line.value(word), "gateway")
        elif word == "or":
            # keepalived's old two-gateway form: the route's gateway and this one, both through its dev
            if not hops:
                hops.append({"via": fields.pop("via", None)})
            hops.append({"via": _address(line.value(word), "gateway")})
        elif word == "src":
            fields["src"] = _address(line.value(word), "source address")
        elif word in ("via", "gw"):
            fields["via"] = _address(line.value(word), "gateway")
        elif word == "dev":
            fields["dev"] = line.value(word)
        elif word == "scope":
            fields["scope"] = _scope(line.value(word))
        elif word == "table":
            fields["table"] = _table(line.value(word), tables)
        elif word in ("metric", "priority", "preference"):
            fields["metric"] = _integer(line.value(word), word)
        elif word in ("protocol", "proto"):
            fields["protocol"] = _protocol(line.value(word))
        elif word == "onlink":
            fields["onlink"] = True
        elif word == "no_track":
            fields["no_track"] = True
        elif word == "to":
            dst = _prefix(line.value(word), "destination", default_family)
        elif dst is None and (word == "default" or not word.isalpha()):
            dst = _prefix(word, "destination", default_family)
        else:
            raise RouteSyntaxError(f"unknown virtual route option '{word}'")
    if dst is None:
        raise RouteSyntaxError("virtual route has no destination")
    if fields.get("kind", "unicast") != "unicast" and (fields.get("via") is not None or hops):
        raise RouteSyntaxError(f"a {fields['kind']} route cannot have a gateway")
    if hops:
        for hop in hops:
            hop.setdefault("dev", fields.get("dev"))
        fields["nexthops"] = tuple(Nexthop(**hop) for hop in hops)
    for key, addr in [("src", fields.get("src")), ("via", fields.get("via")),
                      *(("via", hop.via) for hop in fields.get("nexthops", ()))]:
        if addr is not None and addr.version != dst.version:
            raise RouteSyntaxError(f"{key} {addr} is not of the destination's address family")
    return VirtualRoute(text=" ".join(words), dst=dst, **fields)


def parse_rule(words: Sequence[str], *, default_family: int = 4,
               tables: Mapping[str, int] | None = None) -> VirtualRule:
    """One virtual_rules line (its words) → :class:`VirtualRule`; RouteSyntaxError if keepalived would not accept
    it. The family is that of from/to, else ``default_family`` (the instance's)."""
    tables = STANDARD_TABLES if tables is None else tables
    line = _Words(words)
    fields: dict[str, Any] = {}
    family: int | None = None
    while line.more():
        word = line.take()
        if word in ("from", "to"):
            text = line.value(word)
            if text != "all":
                prefix = _prefix(text, "prefix", default_family)
                if family is not None and prefix.version != family:
                    raise RouteSyntaxError("'from' and 'to' are of different address families")
                family = prefix.version
                fields["src" if word == "from" else "dst"] = prefix
        elif word == "not":
            fields["invert"] = True
        elif word in ("table", "lookup"):
            fields["table"] = _table(line.value(word), tables)
        elif word == "goto":
            fields["action"] = "goto"
            fields["goto"] = _integer(line.value(word), "goto target")
        elif word in ("blackhole", "unreachable", "prohibit"):
            fields["action"] = word
        elif word in ("priority", "preference", "pref"):
            fields["priority"] = _integer(line.value(word), word)
        elif word == "fwmark":
            mark, _, mask = line.value(word).partition("/")
            fields["fwmark"] = _integer(mark, "fwmark")
            if mask:
                fields["fwmask"] = _integer(mask, "fwmark mask")
        elif word in ("iif", "oif"):
            fields[word] = line.value(word)
        elif word == "tos":
            fields["tos"] = _integer(line.value(word), "tos", 255)
        elif word == "no_track":
            fields["no_track"] = True
        elif word in ("family", "inet", "inet6"):
            chosen = line.value(word) if word == "family" else word
            if chosen not in ("inet", "inet6"):
                raise RouteSyntaxError(f"unknown family '{chosen}'")
            family = 6 if chosen == "inet6" else 4
        else:
            raise RouteSyntaxError(f"unknown virtual rule option '{word}'")
    action = fields.get("action", "table")
    if action == "table" and fields.get("table") is None:
        raise RouteSyntaxError("virtual rule needs a table, goto or a blackhole/unreachable/prohibit action")
    return VirtualRule(text=" ".join(words), family=family or default_family, **fields)


DEFAULT_RULE_PREFERENCE = 16384


def parse_routes(lines: Sequence[Sequence[str]], default_family: int,
                 tables: Mapping[str, int] | None = None) -> tuple[tuple[VirtualRoute, ...], list[str]]:
    """The routes of a virtual_routes block and what is wrong with the lines keepalived skips."""
    routes: list[VirtualRoute] = []
    problems: list[str] = []
    for words in lines:
        try:
            routes.append(parse_route(words, default_family=default_family, tables=tables))
        except RouteSyntaxError as exc:
            problems.append(f"{exc} in '{' '.join(words)}'")
    return tuple(routes), problems


def preference_counters() -> dict[int, int]:
    """The next preference keepalived gives a rule written without one, per family (vrrp_iprule.c)."""
    return {4: DEFAULT_RULE_PREFERENCE, 6: DEFAULT_RULE_PREFERENCE}


def parse_rules(lines: Sequence[Sequence[str]], default_family: int, tables: Mapping[str, int] | None = None,
                *, counters: dict[int, int] | None = None) -> tuple[tuple[VirtualRule, ...], list[str]]:
    """The rules of a virtual_rules (or static_rules) block and what is wrong with the lines keepalived skips.

    A rule without a preference gets one as keepalived gives it, so that the kernel does not number it itself and
    a delete finds the rule that was added: 16384, then one less for each further such rule of its family in the
    config, static and virtual rules alike. ``counters`` (from :func:`preference_counters`) carries that count
    from the blocks before this one, and is advanced; a line keepalived skips takes no number.
    """
    counters = preference_counters() if counters is None else counters
    rules: list[VirtualRule] = []
    problems: list[str] = []
    for words in lines:
        try:
            rule = parse_rule(words, default_family=default_family, tables=tables)
        except RouteSyntaxError as exc:
            problems.append(f"{exc} in '{' '.join(words)}'")
            continue
        if rule.priority is None:
            rule = replace(rule, priority=counters[rule.family])
            counters[rule.family] -= 1
        rules.append(rule)
    return tuple(rules), problems


# -------------------------------------------------------------------------------------------- requests


def _af(family: int) -> int:
    return socket.AF_INET if family == 4 else socket.AF_INET6


def _finish(msg: Any, kind: int, command: Command, seq: int) -> bytes:
    msg["header"]["type"] = kind
    msg["header"]["flags"] = request_flags(command)
    msg["header"]["sequence_number"] = seq
    msg["header"]["pid"] = 0
    msg.encode()
    return bytes(msg.data)


def encode_route(command: Command, route: VirtualRoute, indexes: Mapping[str, int], seq: int = 0) -> bytes:
    """RTM_NEWROUTE / RTM_DELROUTE for ``route`` (``indexes``: of the interfaces it names), encoded by pyroute2."""
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    msg = rtmsg()
    msg["family"] = _af(route.family)
    msg["dst_len"] = route.dst.prefixlen
    msg["table"] = route.table if route.table < 256 else 252  # RT_TABLE_COMPAT; RTA_TABLE carries the id
    msg["proto"] = route.protocol
    msg["scope"] = route.effective_scope
    msg["type"] = ROUTE_TYPES[route.kind]
    msg["flags"] = RTNH_F_ONLINK if route.onlink else 0
    attrs: list[tuple[str, Any]] = [("RTA_TABLE", route.table)]
    if route.dst.prefixlen:
        attrs.append(("RTA_DST", str(route.dst.network_address)))
    if route.via is not None:
        attrs.append(("RTA_GATEWAY", str(route.via)))
    if route.src is not None:
        attrs.append(("RTA_PREFSRC", str(route.src)))
    if route.dev is not None and not route.nexthops:
        attrs.append(("RTA_OIF", indexes[route.dev]))
    if route.nexthops:
        attrs.append(("RTA_MULTIPATH", [
            {"oif": indexes[hop.dev] if hop.dev is not None else 0, "hops": hop.weight - 1,
             "flags": RTNH_F_ONLINK if hop.onlink else 0,
             "attrs": [("RTA_GATEWAY", str(hop.via))] if hop.via is not None else []}
            for hop in route.nexthops]))
    if route.metric is not None:
        attrs.append(("RTA_PRIORITY", route.metric))
    msg["attrs"] = attrs
    return _finish(msg, RTM_NEWROUTE if command == "add" else RTM_DELROUTE, command, seq)


def encode_rule(command: Command, rule: VirtualRule, seq: int = 0) -> bytes:
    """RTM_NEWRULE / RTM_DELRULE for ``rule``, encoded by pyroute2."""
    from pyroute2.netlink.rtnl.fibmsg import fibmsg

    msg = fibmsg()
    msg["family"] = _af(rule.family)
    msg["action"] = RULE_ACTIONS[rule.action]
    msg["tos"] = rule.tos
    msg["flags"] = FIB_RULE_INVERT if rule.invert else 0
    table = rule.table or 0
    msg["table"] = table if table < 256 else 252
    attrs: list[tuple[str, Any]] = []
    if rule.table is not None:
        attrs.append(("FRA_TABLE", rule.table))
    if rule.src is not None:
        msg["src_len"] = rule.src.prefixlen
        if rule.src.prefixlen:
            attrs.append(("FRA_SRC", str(rule.src.network_address)))
    if rule.dst is not None:
        msg["dst_len"] = rule.dst.prefixlen
        if rule.dst.prefixlen:
            attrs.append(("FRA_DST", str(rule.dst.network_address)))
    if rule.priority is not None:
        attrs.append(("FRA_PRIORITY", rule.priority))
    if rule.goto is not None:
        attrs.append(("FRA_GOTO", rule.goto))
    if rule.fwmark is not None:
        attrs.append(("FRA_FWMARK", rule.fwmark))
    if rule.fwmask is not None:
        attrs.append(("FRA_FWMASK", rule.fwmask))
    if rule.iif is not None:
        attrs.append(("FRA_IIFNAME", rule.iif))
    if rule.oif is not None:
        attrs.append(("FRA_OIFNAME", rule.oif))
    if command == "add":
        attrs.append(("FRA_PROTOCOL", RTPROT_KEEPALIVED))
    msg["attrs"] = attrs
    return _finish(msg, RTM_NEWRULE if command == "add" else RTM_DELRULE, command, seq)


# -------------------------------------------------------------------------------------------- the adapter


_TemplateKey = tuple[Command, VirtualRoute | VirtualRule, tuple[int, ...]]


class RouteInstaller:
    """Adds and deletes virtual routes and rules over a synchronous rtnetlink request channel (vrrp/rtnl.py).

    An entry already present counts as added and one already gone as deleted, as keepalived treats them. Each
    request is encoded once, so a second takeover pays for sending it only. ``channel``: the rtnetlink channel to
    send on (one of its own if None).
    """

    def __init__(self, *, dry_run: bool = False, channel: RtnlChannel | None = None) -> None:
        self.dry_run = dry_run
        self._channel = channel if channel is not None else RtnlChannel()
        # a route's key holds the indexes of its interfaces: a recreated interface makes another request
        self._templates: Templates[_TemplateKey] = Templates()

    def prepare(self, routes: Sequence[VirtualRoute], rules: Sequence[VirtualRule]) -> None:
        """Open the netlink socket and encode the add and delete requests now (~150 us each with pyroute2), so
        that a takeover pays only for sending them. An interface that does not exist yet is skipped: its
        request is encoded when it is sent."""
        if self.dry_run:
            return
        with contextlib.suppress(OSError):
            self._channel.open()
        commands: tuple[Command, ...] = ("add", "del")
        for command in commands:
            for route in routes:
                try:
                    indexes = {dev: socket.if_nametoindex(dev) for dev in route.devices}
                except OSError:
                    continue
                self._templates.get((command, route, tuple(indexes.values())),
                                    functools.partial(encode_route, command, route, indexes))
            for rule in rules:
                self._templates.get((command, rule, ()), functools.partial(encode_rule, command, rule))

    def add(self, routes: Sequence[VirtualRoute], rules: Sequence[VirtualRule], instance: str) -> int:
        """Routes, then rules (keepalived's order); returns how many are now in place."""
        done = sum(self._route("add", r, instance) for r in routes)
        return done + sum(self._rule("add", r, instance) for r in rules)

    def remove(self, routes: Sequence[VirtualRoute], rules: Sequence[VirtualRule], instance: str) -> int:
        """Rules, then routes; returns how many were deleted."""
        done = sum(self._rule("del", r, instance) for r in rules)
        return done + sum(self._route("del", r, instance) for r in routes)

    def _route(self, command: Command, route: VirtualRoute, instance: str) -> int:
        verb = "add" if command == "add" else "remove"
        if self.dry_run:
            log.info("(%s) (dry run) would %s route %s", instance, verb, route.text)
            return 1
        indexes: dict[str, int] = {}
        for dev in route.devices:
            try:
                indexes[dev] = socket.if_nametoindex(dev)
            except OSError:
                log.warning("(%s) cannot %s route %s: no interface %s", instance, verb, route.text, dev)
                return 0
        return self._outcome(command, "route", route.text, instance, (command, route, tuple(indexes.values())),
                             lambda: encode_route(command, route, indexes))

    def _rule(self, command: Command, rule: VirtualRule, instance: str) -> int:
        verb = "add" if command == "add" else "remove"
        if self.dry_run:
            log.info("(%s) (dry run) would %s rule %s", instance, verb, rule.text)
            return 1
        return self._outcome(command, "rule", rule.text, instance, (command, rule, ()),
                             lambda: encode_rule(command, rule))

    def _outcome(self, command: Command, what: str, text: str, instance: str, key: _TemplateKey,
                 encode: Callable[[], bytes]) -> int:
        verb = "add" if command == "add" else "remove"
        try:
            code = self._channel.request(self._templates.get(key, encode))
        except OSError as exc:
            log.warning("(%s) cannot %s %s %s: %s", instance, verb, what, text, exc)
            return 0
        if code == 0:
            log.info("(%s) %s %s %s", instance, "Adding" if command == "add" else "Removing", what, text)
            return 1
        if command == "add" and code == errno.EEXIST:
            return 1
        if command == "del" and code in (errno.ESRCH, errno.ENOENT):
            return 0
        log.warning("(%s) cannot %s %s %s: %s", instance, verb, what, text, os.strerror(code))
        return 0

    def close(self) -> None:
        self._channel.close()
