"""What the director's desired IPVS table is made of, kept per virtual server so a change costs O(that server).

The director rebuilds its desired table after every check result, operator override and reload. For keepalived
#2318's 37,298 real servers, building every dest again (names formatted from addresses, Dest objects validated)
takes seconds and gives the IPVS sync a table whose every entry is new, so it compares them all. Here:

- ``VsShape``: what a virtual_server model object becomes whatever the checks say: its name, its kernel
  services, its real servers' names. ``VsShapes.of(config)`` reuses the shape of every virtual server that is
  the same object as in the previous config (config/incremental.py keeps unchanged blocks' objects), or an
  equal one (model equality ignores source lines).
- A shape remembers the entries it last gave with the inputs they came from (check results, the servers
  min_healthy keeps, the operator's overrides); equal inputs give the same ServiceEntry objects, which the
  IPVS sync recognises by identity (``ipvs/sync.py``: only entries that changed are planned).
- ``table_with_retiring``: the table with the weight-0 dests of the servers a reload removed (as
  ``retirees.add_retiring`` does for lists), rebuilding only the entries that get one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from types import MappingProxyType

from lvsconsole.config import model as m
from lvsconsole.engine.keys import rs_key, vs_key
from lvsconsole.engine.retirees import RetiringServer
from lvsconsole.ipvs.from_config import vs_services
from lvsconsole.ipvs.table import Dest, DestKey, Service, ServiceEntry, ServiceKey, Table


@dataclass(slots=True)
class VsShape:
    """A virtual server's name, kernel services and real servers' names (in ``vs.real_servers`` order)."""

    vs: m.VirtualServer
    group: m.VirtualServerGroup | None
    key: str
    services: tuple[Service, ...]
    rs_keys: tuple[str, ...]
    sorry_key: str | None
    _inputs: Hashable = None
    _entries: tuple[ServiceEntry, ...] | None = None

    @classmethod
    def of(cls, vs: m.VirtualServer, groups: dict[str, m.VirtualServerGroup]) -> VsShape:
        """Raises ConfigTableError (ipvs/from_config.py) as ``virtual_services`` does."""
        port_of = (lambda rs: rs.port) if vs.fwmark is None else (lambda rs: None)
        sorry = vs.sorry_server
        return cls(
            vs, groups.get(vs.group) if vs.group is not None else None, vs_key(vs), vs_services(vs, groups),
            tuple(rs_key(vs, rs.address, port_of(rs)) for rs in vs.real_servers),
            rs_key(vs, sorry.address, sorry.port or vs.port) if sorry is not None else None,
        )

    def entries_for(self, inputs: Hashable) -> tuple[ServiceEntry, ...] | None:
        """The entries last remembered, if they were built from equal ``inputs``."""
        if self._entries is not None and self._inputs == inputs:
            return self._entries
        return None

    def remember(self, inputs: Hashable, entries: tuple[ServiceEntry, ...]) -> None:
        self._inputs = inputs
        self._entries = entries


class VsShapes:
    """The shapes of the running config's virtual servers, reused across configs by object identity."""

    def __init__(self) -> None:
        self._config: m.Config | None = None
        self._shapes: list[VsShape] = []
        self._by_id: dict[int, VsShape] = {}

    def of(self, config: m.Config, *, remember: bool = True) -> list[VsShape]:
        """The shapes of ``config``'s virtual servers; with ``remember`` false (a preview) the ones kept for
        the running config stay as they are."""
        if config is self._config:
            return self._shapes
        groups = {g.name: g for g in config.virtual_server_groups}
        known = self._by_id
        by_key: dict[str, VsShape] | None = None
        shapes: list[VsShape] = []
        by_id: dict[int, VsShape] = {}
        for vs in config.virtual_servers:
            group = groups.get(vs.group) if vs.group is not None else None
            shape = known.get(id(vs))
            if shape is None or shape.vs is not vs or shape.group is not group:
                # an equal object (an edit above it moved its lines) has the same shape and entries
                if by_key is None:
                    by_key = {s.vs.key: s for s in self._shapes}
                twin = by_key.get(vs.key)
                if twin is not None and twin.group == group and twin.vs == vs:
                    shape = dataclasses.replace(twin, vs=vs, group=group)
                else:
                    shape = VsShape.of(vs, groups)
            shapes.append(shape)
            by_id[id(vs)] = shape
        if remember:
            self._config, self._shapes, self._by_id = config, shapes, by_id
        return shapes

    def key_of(self, vs: m.VirtualServer) -> str:
        """``vs_key(vs)``, from the shape when the running config has this very object."""
        shape = self._by_id.get(id(vs))
        return shape.key if shape is not None and shape.vs is vs else vs_key(vs)


def entries_of(pairs: Iterable[tuple[Service, Iterable[Dest]]]) -> tuple[ServiceEntry, ...]:
    """ServiceEntry objects of (service, dests) pairs, checked as ``Table`` checks them (duplicate dests)."""
    return tuple(Table(pairs).values())


def add_entries(built: dict[ServiceKey, ServiceEntry], entries: Iterable[ServiceEntry]) -> None:
    for entry in entries:
        key = entry.service.key
        if key in built:
            raise ValueError(f"duplicate service {key}")
        built[key] = entry


def table_with_retiring(built: dict[ServiceKey, ServiceEntry], servers: Iterable[RetiringServer]) -> Table:
    """``built`` plus the weight-0 dests of draining ``servers``: a dest goes into the service of the same key
    when there is one (a live dest of the same key wins), else into its old service, added for it."""
    for server in servers:
        for service, dest in server.dests():
            entry = built.get(service.key)
            if entry is None:
                built[service.key] = ServiceEntry(service, MappingProxyType({dest.key: dest}))
            elif dest.key not in entry.dests:
                dests: dict[DestKey, Dest] = {**entry.dests, dest.key: dest}
                built[service.key] = ServiceEntry(entry.service, MappingProxyType(dests))
    return Table._wrap(built)
