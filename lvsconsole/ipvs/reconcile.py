"""Desired vs actual IPVS table -> the minimal ordered list of operations (sans-IO).

What the kernel can change in place decides what "minimal" means. ``ip_vs_edit_service`` updates the
scheduler, flags, persistence timeout, netmask and persistence engine of a live service;
``ip_vs_edit_dest`` (``__ip_vs_update_dest``) updates a dest's weight, thresholds, forwarding method and
tunnel type/port/flags (re-hashing it when the method changes). Only identity cannot be edited: the service
key (family, protocol, address, port / fwmark) and the dest key (address, port). A change of identity *is*
a different key here, so it is planned as a delete of the old key plus an add of the new one; everything
else is one edit. Consequences:

- equal tables -> ``[]`` (adopting a kernel table that already matches costs nothing);
- a weight change (drain, undrain, weight override) -> exactly one ``EditDest``;
- a real server leaving -> exactly one ``DeleteDest``; a service leaving -> one ``DeleteService`` (the
  kernel drops its dests with it, so no ``DeleteDest`` precedes it);
- the kernel-owned HASHED flag is never compared.

Order of the plan: dest deletes, service deletes, service edits, dest edits, new services each followed by
their dests, dests added to existing services. Deletes come first so that an address moving between
services (or a VIP being renumbered) never exists twice, and a service is always added before its dests.
Within each group the order is the desired table's (keepalived's config order) or, for deletes, the
actual table's.

``flush=True`` mirrors keepalived's ``lvs_flush``: one ``Flush`` then the whole desired table.
``owned`` mirrors keepalived's ownership rule (it only removes what it created): services in ``actual``
that are not desired are deleted only if they are in ``owned`` (``None`` = everything is ours). Dests of a
desired service are always reconciled.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TypeAlias

from lvsconsole.ipvs.table import Dest, DestKey, Service, ServiceKey, Table, TableBuilder


@dataclass(frozen=True, slots=True)
class AddService:
    service: Service

    def __str__(self) -> str:
        return f"add service {self.service.key} {self.service.scheduler}"


@dataclass(frozen=True, slots=True)
class EditService:
    service: Service  # the complete new attributes

    def __str__(self) -> str:
        return f"edit service {self.service.key} {self.service.scheduler}"


@dataclass(frozen=True, slots=True)
class DeleteService:
    key: ServiceKey

    def __str__(self) -> str:
        return f"delete service {self.key}"


@dataclass(frozen=True, slots=True)
class AddDest:
    service: ServiceKey
    dest: Dest

    def __str__(self) -> str:
        return f"add dest {self.service} -> {self.dest} {self.dest.fwd.label} weight {self.dest.weight}"


@dataclass(frozen=True, slots=True)
class EditDest:
    service: ServiceKey
    dest: Dest  # the complete new attributes

    def __str__(self) -> str:
        return f"edit dest {self.service} -> {self.dest} {self.dest.fwd.label} weight {self.dest.weight}"


@dataclass(frozen=True, slots=True)
class DeleteDest:
    service: ServiceKey
    dest: DestKey

    def __str__(self) -> str:
        return f"delete dest {self.service} -> {self.dest}"


@dataclass(frozen=True, slots=True)
class Flush:
    """Remove every service (and so every dest) from the table."""

    def __str__(self) -> str:
        return "flush"


Op: TypeAlias = AddService | EditService | DeleteService | AddDest | EditDest | DeleteDest | Flush


def plan(
    desired: Table,
    actual: Table,
    *,
    flush: bool = False,
    owned: Collection[ServiceKey] | None = None,
) -> list[Op]:
    """The minimal ordered operations that turn ``actual`` into ``desired`` (see the module docstring)."""
    if flush:
        ops: list[Op] = [Flush()]
        for entry in desired.values():
            ops.append(AddService(entry.service))
            ops.extend(AddDest(entry.key, d) for d in entry.dests.values())
        return ops

    del_dests: list[Op] = []
    del_services: list[Op] = []
    edit_services: list[Op] = []
    edit_dests: list[Op] = []
    new_services: list[Op] = []
    add_dests: list[Op] = []

    for key, current_entry in actual.items():
        wanted_entry = desired.get(key)
        if wanted_entry is None:
            if owned is None or key in owned:
                del_services.append(DeleteService(key))
            continue
        del_dests.extend(
            DeleteDest(key, dkey) for dkey in current_entry.dests if dkey not in wanted_entry.dests
        )

    for key, want in desired.items():
        have = actual.get(key)
        if have is None:
            new_services.append(AddService(want.service))
            new_services.extend(AddDest(key, d) for d in want.dests.values())
            continue
        if not want.service.same_config(have.service):
            edit_services.append(EditService(want.service))
        if want.dests == have.dests:
            continue
        for dkey, dest in want.dests.items():
            current = have.dests.get(dkey)
            if current is None:
                add_dests.append(AddDest(key, dest))
            elif current != dest:
                edit_dests.append(EditDest(key, dest))

    return del_dests + del_services + edit_services + edit_dests + new_services + add_dests


def apply_op(builder: TableBuilder, op: Op) -> None:
    """Apply one operation to a builder (raises ``IpvsError`` exactly where the kernel would)."""
    match op:
        case AddService(service):
            builder.add_service(service)
        case EditService(service):
            builder.edit_service(service)
        case DeleteService(key):
            builder.delete_service(key)
        case AddDest(service, dest):
            builder.add_dest(service, dest)
        case EditDest(service, dest):
            builder.edit_dest(service, dest)
        case DeleteDest(service, dkey):
            builder.delete_dest(service, dkey)
        case Flush():
            builder.flush()


def apply_ops(table: Table, ops: Iterable[Op]) -> Table:
    """The table after ``ops`` (pure: ``table`` is not changed). Raises ``IpvsError`` at the first
    operation the kernel would refuse (e.g. adding a service twice: EEXIST)."""
    builder = TableBuilder(table)
    for op in ops:
        apply_op(builder, op)
    return builder.build()
