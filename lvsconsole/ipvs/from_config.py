"""The IPVS services and dests a keepalived config asks for.

keepalived programs one kernel service per virtual_server (and one per address and fwmark of a
virtual_server_group), and one dest per real server that its checkers consider alive (or at weight 0
when inhibit_on_failure), plus the sorry server while quorum is lost. This module gives the static part:
the services, and the dest each real server or sorry server becomes when it is in the table.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from lvsconsole.config import model as m
from lvsconsole.ipvs.table import (
    NO_FLAGS,
    Dest,
    Family,
    Fwd,
    Proto,
    Service,
    ServiceKey,
    SvcFlags,
    Table,
    TunFlags,
    TunType,
    netmask_prefix,
    sched_flags,
)

FORWARD = {"NAT": Fwd.MASQ, "DR": Fwd.ROUTE, "TUN": Fwd.TUNNEL}
TUNNEL_TYPES = {None: TunType.IPIP, "ipip": TunType.IPIP, "gue": TunType.GUE, "gre": TunType.GRE}
TUNNEL_CSUM = {None: TunFlags.NOCSUM, "nocsum": TunFlags.NOCSUM, "csum": TunFlags.CSUM, "remcsum": TunFlags.REMCSUM}
# A virtual_server_group range is expanded into one kernel service per address, as keepalived does;
# past this size a typo (a /8 instead of a /28) would swamp the kernel, so we refuse instead.
MAX_GROUP_ADDRESSES = 65536


class ConfigTableError(ValueError):
    """The config asks for something the kernel table cannot hold."""


@dataclass(frozen=True)
class VirtualService:
    """One virtual_server of the config with the kernel services it becomes."""

    vs: m.VirtualServer
    services: tuple[Service, ...]


def _service_attrs(vs: m.VirtualServer, family: Family) -> tuple[SvcFlags, int, int | None]:
    flags = NO_FLAGS
    names = [f for f in vs.sched_flags if f not in ("ops", "hashed")]
    if names:
        flags |= sched_flags(names)
    if "ops" in vs.sched_flags:
        flags |= SvcFlags.ONEPACKET
    timeout = 0
    netmask = None
    if vs.persistence_timeout is not None:
        flags |= SvcFlags.PERSISTENT
        timeout = vs.persistence_timeout
        if vs.persistence_granularity is not None:
            prefix = netmask_prefix(vs.persistence_granularity)
            netmask = None if prefix == family.max_prefix else prefix
    return flags, timeout, netmask


def _fwmark_family(vs: m.VirtualServer) -> Family:
    if vs.ip_family is not None:
        return Family.INET6 if vs.ip_family == "inet6" else Family.INET
    for rs in vs.real_servers:
        return Family.of(rs.address)
    return Family.INET


def service_keys(vs: m.VirtualServer, groups: dict[str, m.VirtualServerGroup]) -> Iterator[ServiceKey]:
    protocol = Proto[vs.protocol]
    if vs.fwmark is not None:
        yield ServiceKey.fwm(vs.fwmark, _fwmark_family(vs))
        return
    if vs.group is None:
        assert vs.address is not None
        yield ServiceKey.inet(protocol, vs.address, vs.port or 0)
        return
    group = groups.get(vs.group)
    if group is None:
        raise ConfigTableError(f"virtual_server group {vs.group}: no such virtual_server_group")
    for entry in group.entries:
        if entry.fwmark is not None:
            family = Family.INET6 if entry.family == "inet6" else Family.INET
            yield ServiceKey.fwm(entry.fwmark, family)
            continue
        assert entry.first is not None
        last = entry.last if entry.last is not None else entry.first
        count = int(last) - int(entry.first) + 1
        if count > MAX_GROUP_ADDRESSES:
            raise ConfigTableError(
                f"virtual_server_group {group.name}: range {entry.first}-{last} has {count} addresses "
                f"(more than {MAX_GROUP_ADDRESSES})")
        start = int(entry.first)
        for offset in range(count):
            address: IPv4Address | IPv6Address = type(entry.first)(start + offset)
            yield ServiceKey.inet(protocol, address, entry.port or 0)


def vs_services(vs: m.VirtualServer, groups: dict[str, m.VirtualServerGroup]) -> tuple[Service, ...]:
    """The kernel services one virtual_server becomes."""
    services = []
    for key in service_keys(vs, groups):
        flags, timeout, netmask = _service_attrs(vs, key.family)
        services.append(Service(key, vs.lvs_sched, flags, timeout, netmask, vs.persistence_engine or ""))
    return tuple(services)


def virtual_services(config: m.Config) -> list[VirtualService]:
    groups = {g.name: g for g in config.virtual_server_groups}
    return [VirtualService(vs, vs_services(vs, groups)) for vs in config.virtual_servers]


def _dest(address: m.IPAddress, port: int, method: m.LvsMethod, weight: int,
          uthreshold: int | None = None, lthreshold: int | None = None) -> Dest:
    tunnel = method.kind == "TUN"
    return Dest(
        address,
        port,
        FORWARD[method.kind],
        weight,
        uthreshold or 0,
        lthreshold or 0,
        TUNNEL_TYPES[method.tunnel_type] if tunnel else TunType.IPIP,
        method.tunnel_port or 0 if tunnel else 0,
        TUNNEL_CSUM[method.tunnel_csum] if tunnel else TunFlags.NOCSUM,
    )


def dest_port(service: ServiceKey, port: int | None, method: m.LvsMethod) -> int:
    """keepalived's rule: fwmark services have port-less dests; only NAT may remap the port."""
    if service.is_fwmark:
        return 0
    if method.kind != "NAT" or port is None:
        return service.port
    return port


def real_server_dest(vs: m.VirtualServer, rs: m.RealServer, service: ServiceKey, weight: int | None = None) -> Dest:
    method = rs.lvs_method or vs.lvs_method
    return _dest(rs.address, dest_port(service, rs.port, method), method,
                 rs.weight if weight is None else weight, rs.uthreshold, rs.lthreshold)


def sorry_server_dest(vs: m.VirtualServer, service: ServiceKey, weight: int = 1) -> Dest:
    assert vs.sorry_server is not None
    method = vs.sorry_server_lvs_method or vs.lvs_method
    return _dest(vs.sorry_server.address, dest_port(service, vs.sorry_server.port, method), method, weight)


def configured_table(config: m.Config) -> Table:
    """Every service with every real server at its configured weight: the table when all checks pass."""
    entries: list[tuple[Service, list[Dest]]] = []
    for item in virtual_services(config):
        for service in item.services:
            dests = [real_server_dest(item.vs, rs, service.key) for rs in item.vs.real_servers]
            entries.append((service, dests))
    return Table(entries)
