"""What a VIP, route or rule deleted from outside means, as keepalived decides it (keepalived_netlink.c).

The kernel reports every address, route and rule that goes away. keepalived reacts to those it holds:

- a virtual address (virtual_ipaddress / virtual_ipaddress_excluded) of a MASTER instance, matched by family,
  address, prefix length and interface: the instance leaves MASTER (set_vrrp_backup: priority 0 sent, BACKUP,
  down timer of one Skew_Time), so that it wins the next election at once and puts the address back, unless a
  peer takes over. Not FAULT: nothing is broken on this router;
- a virtual route (protocol keepalived only: table, family, prefix, metric, tos, interface and destination
  equal) or a virtual rule (same family, preference, action, table, selectors; protocol keepalived when the
  kernel reports one) of a MASTER instance: the same;
- a static address, route or rule: it is added again;
- anything written with ``no_track``: nothing happens; it comes back with the next transition to MASTER (or,
  for a static one, the next start or reload).

The decoders turn pyroute2 messages into the small records below; :func:`owner_of` is the decision. Both are
pure: the adapter (vrrp/netwatch.py) feeds them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import ip_address, ip_network
from typing import Any, Protocol

from lvsconsole.config.model import VirtualAddress
from lvsconsole.vrrp.addresses import vip_device
from lvsconsole.vrrp.packet import IPAddress
from lvsconsole.vrrp.routes import RTPROT_KEEPALIVED, RULE_ACTIONS, IPNetwork, VirtualRoute, VirtualRule

FIB_RULE_INVERT = 0x2
RT_TABLE_COMPAT = 252
NO_FWMASK = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class AddressGone:
    """RTM_DELADDR."""

    address: IPAddress
    prefixlen: int
    interface: str


@dataclass(frozen=True, slots=True)
class RouteGone:
    """RTM_DELROUTE."""

    dst: IPNetwork
    table: int
    metric: int = 0
    tos: int = 0
    oif: str | None = None
    protocol: int = RTPROT_KEEPALIVED

    @property
    def family(self) -> int:
        return self.dst.version


@dataclass(frozen=True, slots=True)
class RuleGone:
    """RTM_DELRULE."""

    family: int
    action: int
    table: int
    priority: int | None = None
    goto: int | None = None
    invert: bool = False
    src: IPNetwork | None = None
    dst: IPNetwork | None = None
    tos: int = 0
    fwmark: int | None = None
    fwmask: int | None = None
    iif: str | None = None
    oif: str | None = None
    protocol: int | None = None


Gone = AddressGone | RouteGone | RuleGone


class HolderView(Protocol):
    """What the decision needs of one running instance (vrrp/params.InstanceSpec fits)."""

    @property
    def name(self) -> str: ...
    @property
    def address_interface(self) -> str: ...
    @property
    def all_vips(self) -> tuple[VirtualAddress, ...]: ...
    @property
    def routes(self) -> tuple[VirtualRoute, ...]: ...
    @property
    def rules(self) -> tuple[VirtualRule, ...]: ...


@dataclass(frozen=True, slots=True)
class InstanceHit:
    """A tracked object of a MASTER instance went: the instance leaves MASTER."""

    instance: str
    what: str


@dataclass(frozen=True, slots=True)
class StaticHit:
    """A tracked static object went: it is added again."""

    obj: VirtualAddress | VirtualRoute | VirtualRule


Hit = InstanceHit | StaticHit


@dataclass(frozen=True, slots=True)
class StaticView:
    """The static addresses (interface resolved), routes and rules in place."""

    addresses: tuple[VirtualAddress, ...] = ()
    routes: tuple[VirtualRoute, ...] = ()
    rules: tuple[VirtualRule, ...] = ()


# -------------------------------------------------------------------------------------------- decoders


class Message(Protocol):
    def __getitem__(self, key: str) -> Any: ...
    def get_attr(self, name: str) -> Any: ...


InterfaceName = Callable[[int], str | None]


def _network(text: str | None, prefixlen: int, family: int) -> IPNetwork:
    base = text if text is not None else ("0.0.0.0" if family == 4 else "::")
    return ip_network(f"{base}/{prefixlen}", strict=False)


def _family(af: int) -> int | None:
    return {2: 4, 10: 6}.get(af)


def address_gone(msg: Message, interface_name: InterfaceName) -> AddressGone | None:
    """An RTM_DELADDR message as an :class:`AddressGone` (None: not IPv4/IPv6, or the interface is gone too)."""
    if _family(msg["family"]) is None:
        return None
    text = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
    name = interface_name(msg["index"])
    if text is None or name is None:
        return None
    return AddressGone(ip_address(text), msg["prefixlen"], name)


def route_gone(msg: Message, interface_name: InterfaceName) -> RouteGone | None:
    """An RTM_DELROUTE message as a :class:`RouteGone` (None: not IPv4/IPv6)."""
    family = _family(msg["family"])
    if family is None:
        return None
    table = msg.get_attr("RTA_TABLE")
    oif = msg.get_attr("RTA_OIF")
    return RouteGone(dst=_network(msg.get_attr("RTA_DST"), msg["dst_len"], family),
                     table=table if table is not None else msg["table"],
                     metric=msg.get_attr("RTA_PRIORITY") or 0, tos=msg["tos"],
                     oif=interface_name(oif) if oif else None, protocol=msg["proto"])


def rule_gone(msg: Message) -> RuleGone | None:
    """An RTM_DELRULE message as a :class:`RuleGone` (None: not IPv4/IPv6)."""
    family = _family(msg["family"])
    if family is None:
        return None
    table = msg.get_attr("FRA_TABLE")
    src, dst = msg.get_attr("FRA_SRC"), msg.get_attr("FRA_DST")
    return RuleGone(
        family=family, action=msg["action"], table=table if table is not None else msg["table"],
        priority=msg.get_attr("FRA_PRIORITY"), goto=msg.get_attr("FRA_GOTO"),
        invert=bool(msg["flags"] & FIB_RULE_INVERT),
        src=_network(src, msg["src_len"], family) if src is not None else None,
        dst=_network(dst, msg["dst_len"], family) if dst is not None else None,
        tos=msg["tos"], fwmark=msg.get_attr("FRA_FWMARK"), fwmask=msg.get_attr("FRA_FWMASK"),
        iif=msg.get_attr("FRA_IIFNAME"), oif=msg.get_attr("FRA_OIFNAME"), protocol=msg.get_attr("FRA_PROTOCOL"))


# -------------------------------------------------------------------------------------------- matching


def address_matches(gone: AddressGone, vip: VirtualAddress, default_dev: str) -> bool:
    return (vip.address.ip == gone.address and vip.address.network.prefixlen == gone.prefixlen
            and vip_device(vip, default_dev) == gone.interface)


def route_matches(gone: RouteGone, route: VirtualRoute, *, static: bool = False) -> bool:
    """keepalived's route_is_ours: a static route is matched without its metric and interface."""
    if (gone.table, gone.family, gone.tos) != (route.table, route.family, 0) \
            or gone.dst.prefixlen != route.dst.prefixlen or gone.dst.network_address != route.dst.network_address:
        return False
    if static:
        return True
    if gone.metric != (route.metric or 0):
        return False
    return route.dev is None or route.nexthops != () or gone.oif == route.dev


def rule_matches(gone: RuleGone, rule: VirtualRule) -> bool:
    """keepalived's compare_rule (the selectors lvsconsole's rules can have)."""
    table = rule.table or 0
    if (gone.family, gone.priority, gone.action, gone.invert, gone.tos) != (
            rule.family, rule.priority, RULE_ACTIONS[rule.action], rule.invert, rule.tos):
        return False
    if rule.action == "goto" and gone.goto != rule.goto:
        return False
    if gone.table != table and not (table > 255 and gone.table == RT_TABLE_COMPAT):
        return False
    if (gone.src, gone.dst, gone.iif, gone.oif) != (rule.src if rule.src is None or rule.src.prefixlen else None,
                                                     rule.dst if rule.dst is None or rule.dst.prefixlen else None,
                                                     rule.iif, rule.oif):
        return False
    if gone.fwmark != rule.fwmark:
        return False
    return (gone.fwmask if gone.fwmask != NO_FWMASK else None) == rule.fwmask


def owner_of(gone: Gone, masters: Iterable[HolderView], statics: StaticView) -> Hit | None:
    """What the deletion ``gone`` means given the instances now MASTER (with their addresses in place) and the
    static objects in place; None: nothing to do."""
    if isinstance(gone, AddressGone):
        for holder in masters:
            for vip in holder.all_vips:
                if address_matches(gone, vip, holder.address_interface):
                    # keepalived stops at the first match: a no_track VIP shields the address
                    return None if "no_track" in vip.flags else InstanceHit(holder.name, f"address {vip.address}")
        for static_vip in statics.addresses:
            if "no_track" not in static_vip.flags and address_matches(gone, static_vip, ""):
                return StaticHit(static_vip)
        return None
    if isinstance(gone, RouteGone):
        if gone.protocol != RTPROT_KEEPALIVED:
            return None  # keepalived watches only the routes it added (protocol keepalived)
        for holder in masters:
            for route in holder.routes:
                if route_matches(gone, route):
                    return None if route.no_track else InstanceHit(holder.name, f"route {route.text}")
        for static_route in statics.routes:
            if route_matches(gone, static_route, static=True):
                return None if static_route.no_track else StaticHit(static_route)
        return None
    if gone.protocol is not None and gone.protocol != RTPROT_KEEPALIVED:
        return None
    for holder in masters:
        for rule in holder.rules:
            if not rule.no_track and rule_matches(gone, rule):
                return InstanceHit(holder.name, f"rule {rule.text}")
    for static_rule in statics.rules:
        if not static_rule.no_track and rule_matches(gone, static_rule):
            return StaticHit(static_rule)
    return None
