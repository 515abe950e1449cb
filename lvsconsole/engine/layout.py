"""The part of a virtual-server snapshot that only the running config decides, computed once per config.

``Director.snapshot()`` runs on the engine loop at every console refresh, over every real server (10,000 at
scale). Keepalived's names of the servers, the check policy's references, the kernel service keys and the
dest key each real server has in each service, the configured weight and forwarding method all follow from
the config alone; formatting and constructing them again at every snapshot was most of its cost. A
``Layout`` holds them, so that a snapshot only has to look up what changes: health, operator overrides, the
weights the IPVS table holds and the traffic counters.

Pure: built from a ``Config``; the director keeps one per running config.
"""

from __future__ import annotations

from dataclasses import dataclass

from lvsconsole.check.policy import RsRef
from lvsconsole.config import model as m
from lvsconsole.engine.director_api import Forward, RsId
from lvsconsole.engine.keys import rs_id, vs_key
from lvsconsole.ipvs.from_config import real_server_dest, virtual_services
from lvsconsole.ipvs.table import DestKey, IPAddress, Service, ServiceKey, Table


@dataclass(frozen=True, slots=True)
class RealServerLayout:
    """One real server of a virtual server, as far as the config decides it."""

    rid: RsId
    check_ref: RsRef
    """The check policy's name of it (the same keys as ``rid``, in the policy's type)."""
    address: IPAddress
    port: int | None
    forward: Forward
    config_weight: int
    dests: tuple[tuple[ServiceKey, DestKey], ...]
    """For each kernel service of its virtual server: that service's key and this server's dest key in it (the
    key the IPVS table and the statistics know it by). The first is where its table weight is read."""


@dataclass(frozen=True, slots=True)
class VirtualServerLayout:
    """One virtual server with its kernel services and real servers, as far as the config decides them."""

    key: str
    vs: m.VirtualServer
    services: tuple[Service, ...]
    service_keys: tuple[ServiceKey, ...]
    real_servers: tuple[RealServerLayout, ...]


@dataclass(frozen=True, slots=True)
class Layout:
    """Every virtual server of ``config`` in config order (the order of ``show vs``)."""

    config: m.Config
    """The config it was built from: a layout is current while this is the running config (by identity)."""
    virtual_servers: tuple[VirtualServerLayout, ...]

    def is_for(self, config: m.Config) -> bool:
        return self.config is config


def build_layout(config: m.Config) -> Layout:
    """The static part of the snapshot views of ``config``'s virtual servers."""
    out = []
    for item in virtual_services(config):
        vs = item.vs
        key = vs_key(vs)
        service_keys = tuple(service.key for service in item.services)
        servers = []
        for rs in vs.real_servers:
            rid = rs_id(vs, rs)
            method = rs.lvs_method or vs.lvs_method
            # Built exactly as the desired table builds the dest, so the keys match the table's.
            dests = tuple((skey, real_server_dest(vs, rs, skey).key) for skey in service_keys)
            servers.append(RealServerLayout(
                rid=rid, check_ref=RsRef(rid.vs, rid.rs), address=rs.address, port=rs.port, forward=method.kind,
                config_weight=rs.weight, dests=dests,
            ))
        out.append(VirtualServerLayout(key=key, vs=vs, services=item.services, service_keys=service_keys,
                                       real_servers=tuple(servers)))
    return Layout(config, tuple(out))


def table_weights(layout: Layout, table: Table) -> tuple[tuple[int | None, ...], ...]:
    """The weight each real server of ``layout`` has in ``table`` (None: not in it), per virtual server, in
    layout order. Read from the first service of each virtual server, where a real server is in all or none.

    The table changes far less often than snapshots are taken (on health changes, overrides, reloads), so the
    director keeps this per table rather than looking every server up at every snapshot."""
    out: list[tuple[int | None, ...]] = []
    for vs in layout.virtual_servers:
        dests = table.dests(vs.service_keys[0]) if vs.service_keys and vs.service_keys[0] in table else None
        if dests is None:
            out.append((None,) * len(vs.real_servers))
            continue
        weights: list[int | None] = []
        for rs in vs.real_servers:
            dest = dests.get(rs.dests[0][1])
            weights.append(None if dest is None else dest.weight)
        out.append(tuple(weights))
    return tuple(out)
