"""static_ipaddress, static_routes and static_rules: what the host holds whatever the VRRP states.

keepalived (vrrp_daemon.c) adds them when the VRRP process starts, whatever any instance does, adds back one
that is deleted from outside unless it says ``no_track`` (keepalived_netlink.c: reinstate_static_*), removes on
a reload the ones the new config no longer has (clear_diff_static_*), and removes them all when it stops
(rules, then routes, then addresses). Static rules without a preference are numbered from 16384 down, per
family, before any virtual rule (vrrp/routes.py).

:func:`static_set` reads them from the config (pure); :class:`StaticInstaller` puts them in place with the same
rtnetlink requesters the instances use.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address, ip_interface
from typing import Any

from lvsconsole.config import model as m
from lvsconsole.vrrp.addresses import AddressManager
from lvsconsole.vrrp.owned import StaticView
from lvsconsole.vrrp.routes import (
    RouteInstaller,
    VirtualRoute,
    VirtualRule,
    parse_routes,
    parse_rules,
    preference_counters,
    route_tables,
)

log = logging.getLogger("lvsconsole.vrrp")

OWNER = "static"  # how the route installer's log lines name the holder
_VALUED = ("brd", "dev", "scope", "label", "peer", "preferred_lft", "track_group")
_FLAGS = ("home", "-nodad", "nodad", "mngtmpaddr", "noprefixroute", "autojoin", "no_track")
_SCOPES = ("global", "site", "link", "host", "nowhere")


def static_address(entry: m.StaticAddress, default_interface: str | None) -> m.VirtualAddress:
    """One static_ipaddress line as the address to add; ValueError with keepalived's reason if it cannot be."""
    kwargs: dict[str, Any] = {}
    flags: list[str] = []
    words = list(entry.options)
    i = 0
    while i < len(words):
        key = words[i]
        if key in _FLAGS:
            flags.append(key)
            i += 1
            continue
        if key not in _VALUED:
            raise ValueError(f"unknown static address option '{key}'")
        if i + 1 >= len(words):
            raise ValueError(f"'{key}' needs a value")
        value = words[i + 1]
        i += 2
        if key == "brd":
            kwargs["brd"] = ip_address(value)
        elif key == "peer":
            kwargs["peer"] = ip_interface(value)
        elif key == "scope":
            if value not in _SCOPES and not value.isdigit():
                raise ValueError(f"invalid scope '{value}'")
            kwargs["scope"] = value
        elif key == "preferred_lft":
            flags += [key, value]
        elif key == "track_group":
            pass  # no instance follows it here: config/validate.py says so at the line (static_track_groups)
        else:
            kwargs[key] = value
    kwargs.setdefault("dev", default_interface)
    if kwargs["dev"] is None:
        raise ValueError("no dev given and no default_interface")
    return m.VirtualAddress(entry.address, flags=tuple(flags), **kwargs)


@dataclass(frozen=True)
class StaticSet:
    """The static objects of a config, ready to install, and what is wrong with the lines keepalived skips."""

    addresses: tuple[m.VirtualAddress, ...] = ()
    routes: tuple[VirtualRoute, ...] = ()
    rules: tuple[VirtualRule, ...] = ()
    problems: tuple[str, ...] = field(default=(), compare=False)

    @property
    def view(self) -> StaticView:
        return StaticView(self.addresses, self.routes, self.rules)

    def __bool__(self) -> bool:
        return bool(self.addresses or self.routes or self.rules)


def static_set(config: m.Config, tables: dict[str, int] | None = None) -> StaticSet:
    """The config's static addresses, routes and rules (pure but for reading iproute2's table names)."""
    tables = route_tables() if tables is None else tables
    problems: list[str] = []
    addresses: list[m.VirtualAddress] = []
    for entry in config.static_ipaddress:
        try:
            addresses.append(static_address(entry, config.global_defs.default_interface))
        except ValueError as exc:
            problems.append(f"static_ipaddress {entry.address}: {exc}")
    # keepalived takes the family of a route or rule that does not show one as IPv4
    routes, route_problems = parse_routes([line.words for line in config.static_routes], 4, tables)
    rules, rule_problems = parse_rules([line.words for line in config.static_rules], 4, tables,
                                       counters=preference_counters())
    problems += [f"static_routes: {p}" for p in route_problems] + [f"static_rules: {p}" for p in rule_problems]
    return StaticSet(tuple(addresses), routes, rules, tuple(problems))


class StaticInstaller:
    """Keeps the static set in place: added at start, diffed on reload, reinstated, removed at stop."""

    def __init__(self, addresses: AddressManager, routes: RouteInstaller) -> None:
        self._addresses = addresses
        self._routes = routes
        self.current = StaticSet()

    def apply(self, wanted: StaticSet) -> None:
        """Make ``wanted`` the static set: what the old one had and this one has not goes, everything of this one
        is added (an entry already there counts as added)."""
        for problem in wanted.problems:
            log.warning("%s - skipped", problem)
        old = self.current
        self._remove([a for a in old.addresses if a not in wanted.addresses],
                     [r for r in old.routes if r not in wanted.routes],
                     [r for r in old.rules if r not in wanted.rules])
        self.current = wanted
        if wanted.addresses:
            self._addresses.add(wanted.addresses, "")
        if wanted.routes or wanted.rules:
            self._routes.add(wanted.routes, wanted.rules, OWNER)

    def reinstate(self, obj: m.VirtualAddress | VirtualRoute | VirtualRule) -> None:
        """One static object was deleted from outside: add it back (keepalived's reinstate_static_*)."""
        if isinstance(obj, m.VirtualAddress):
            if obj in self.current.addresses:
                log.info("Reinstating static address %s on %s", obj.address, obj.dev)
                self._addresses.add([obj], "")
        elif isinstance(obj, VirtualRoute):
            if obj in self.current.routes:
                log.info("Reinstating static route %s", obj.text)
                self._routes.add([obj], [], OWNER)
        elif obj in self.current.rules:
            log.info("Reinstating static rule %s", obj.text)
            self._routes.add([], [obj], OWNER)

    def clear(self) -> None:
        """Remove every static object (at stop): rules, then routes, then addresses."""
        old, self.current = self.current, StaticSet()
        self._remove(old.addresses, old.routes, old.rules)

    def _remove(self, addresses: Sequence[m.VirtualAddress], routes: Sequence[VirtualRoute],
                rules: Sequence[VirtualRule]) -> None:
        if routes or rules:
            self._routes.remove(routes, rules, OWNER)
        if addresses:
            self._addresses.remove(addresses, "")
