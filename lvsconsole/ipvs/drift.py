"""Drift: where the kernel's state differs from intent, item by item (sans-IO).

The reconciler (``reconcile.plan``) says *how* to make the kernel equal to the desired table; this module says
*what* differs, in the operator's terms, so that each difference can be shown, repaired, held or adopted on
its own:

- ``dest-deleted``: a dest we want is missing (``ipvsadm -d``);
- ``dest-added``: a dest we do not want is there (``ipvsadm -a``);
- ``weight-changed`` / ``dest-changed``: a dest's weight (or its forwarding method, thresholds, tunnel)
  was edited outside;
- ``service-changed``: scheduler, flags, persistence edited outside (``ipvsadm -E``);
- ``service-deleted``: one of our services is gone, with its dests (``ipvsadm -D``, ``ipvsadm -C``);
- ``service-added``: a service that is ours (we created it once) but no longer wanted is there;
- ``vip-removed``: a VIP of a MASTER instance is missing from its interface (``ip addr del``).

Every item has a stable ``id`` (a hash of what it is about, not of the values), so the same drift keeps its
id from one check to the next and an operator can name it: ``drift reconcile 3f9a01c2``.
``DriftLedger`` turns successive detections into "appeared" and "cleared" sets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeAlias

from lvsconsole.ipvs.reconcile import (
    AddDest,
    AddService,
    DeleteDest,
    DeleteService,
    EditDest,
    EditService,
    Op,
    plan,
)
from lvsconsole.ipvs.table import Dest, DestKey, Service, ServiceKey, SvcFlags, Table

DriftKind: TypeAlias = Literal[
    "dest-deleted", "dest-added", "weight-changed", "dest-changed", "service-changed", "service-deleted",
    "service-added", "vip-removed",
]
DRIFT_KINDS: tuple[DriftKind, ...] = (
    "dest-deleted", "dest-added", "weight-changed", "dest-changed", "service-changed", "service-deleted",
    "service-added", "vip-removed",
)
DriftPolicy: TypeAlias = Literal["repair", "hold"]


@dataclass(frozen=True, slots=True)
class DriftItem:
    """One difference between intent (``intended``) and the kernel (``actual``); None where one side has
    nothing. ``repair`` are the IPVS operations that push intent back (empty for a VIP: the VRRP side re-adds
    it). A VIP item names its ``instance``, ``interface`` and ``vip``."""

    kind: DriftKind
    service: ServiceKey | None = None
    dest: DestKey | None = None
    intended: Service | Dest | None = None
    actual: Service | Dest | None = None
    repair: tuple[Op, ...] = ()
    instance: str | None = None
    interface: str | None = None
    vip: str | None = None
    id: str = field(init=False)

    def __post_init__(self) -> None:
        subject = "|".join(str(part) for part in (self.kind, self.service, self.dest, self.interface, self.vip))
        object.__setattr__(self, "id", hashlib.sha1(subject.encode(), usedforsecurity=False).hexdigest()[:8])

    @property
    def where(self) -> str:
        """What the item is about: ``TCP 10.0.0.100:80 -> 10.0.1.12:80``, ``VIP 10.0.0.100 on eth0 (VI_1)``."""
        if self.kind == "vip-removed":
            return f"VIP {self.vip} on {self.interface}" + (f" ({self.instance})" if self.instance else "")
        return f"{self.service}" + (f" -> {self.dest}" if self.dest is not None else "")

    @property
    def intent_text(self) -> str:
        return _describe(self.intended, self.kind, intent=True)

    @property
    def kernel_text(self) -> str:
        return _describe(self.actual, self.kind, intent=False)

    def text(self) -> str:
        return f"{self.id} {self.kind} {self.where}: intent {self.intent_text}, kernel {self.kernel_text}"

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "where": self.where,
            "service": None if self.service is None else str(self.service),
            "dest": None if self.dest is None else str(self.dest),
            "intent": self.intent_text, "kernel": self.kernel_text,
            "intent_weight": self.intended.weight if isinstance(self.intended, Dest) else None,
            "kernel_weight": self.actual.weight if isinstance(self.actual, Dest) else None,
            "instance": self.instance, "interface": self.interface, "vip": self.vip,
            "repair": [str(op) for op in self.repair],
        }


def _describe(side: Service | Dest | None, kind: DriftKind, *, intent: bool) -> str:
    if kind == "vip-removed":
        return "present" if intent else "absent"
    if side is None:
        return "absent"
    if isinstance(side, Dest):
        if kind == "weight-changed":
            return f"weight {side.weight}"
        return f"{side.fwd.label} weight {side.weight}" + (
            f" thresholds {side.l_threshold}-{side.u_threshold}" if side.u_threshold or side.l_threshold else "")
    text = side.scheduler
    if side.persistent:
        text += f" persistent {side.timeout}s"
    flags = int(side.flags & ~(SvcFlags.HASHED | SvcFlags.PERSISTENT))  # HASHED is the kernel's
    return text + (f" flags {flags:#x}" if flags else "")


def detect(desired: Table, actual: Table, *, owned: Collection[ServiceKey] | None = None) -> list[DriftItem]:
    """The items that make ``actual`` differ from ``desired``, in the order their repairs must run
    (``reconcile.plan``'s order: removals first, a service before its dests). ``owned`` as in ``plan``:
    services that are not ours are never drift."""
    items: list[DriftItem] = []
    restored: dict[ServiceKey, int] = {}  # a deleted service: index of its item, which collects its dests
    for op in plan(desired, actual, owned=owned):
        match op:
            case DeleteDest(key, dkey):
                items.append(DriftItem("dest-added", key, dkey, None, actual[key].dests[dkey], (op,)))
            case DeleteService(key):
                items.append(DriftItem("service-added", key, None, None, actual[key].service, (op,)))
            case EditService(service):
                items.append(DriftItem("service-changed", service.key, None, service, actual[service.key].service,
                                       (op,)))
            case EditDest(key, dest):
                have = actual[key].dests[dest.key]
                kind: DriftKind = "weight-changed" if replace(have, weight=dest.weight) == dest else "dest-changed"
                items.append(DriftItem(kind, key, dest.key, dest, have, (op,)))
            case AddService(service):
                restored[service.key] = len(items)
                items.append(DriftItem("service-deleted", service.key, None, service, None, (op,)))
            case AddDest(key, _) if key in restored:
                item = items[restored[key]]
                items[restored[key]] = replace(item, repair=(*item.repair, op))
            case AddDest(key, dest):
                items.append(DriftItem("dest-deleted", key, dest.key, dest, None, (op,)))
    return items


@dataclass(frozen=True, slots=True)
class ExpectedVip:
    """A VIP a MASTER instance holds: ``address`` (no prefix) on ``interface``."""

    instance: str
    interface: str
    address: str


def detect_vips(expected: Iterable[ExpectedVip], present: Collection[tuple[str, str]]) -> list[DriftItem]:
    """``vip-removed`` items: the expected VIPs that are not in ``present`` ((interface, address) pairs)."""
    return [DriftItem("vip-removed", instance=vip.instance, interface=vip.interface, vip=vip.address)
            for vip in expected if (vip.interface, vip.address) not in present]


def select(items: Sequence[DriftItem], which: str | None) -> list[DriftItem]:
    """The items ``which`` names: an id (or a unique prefix of one), ``all`` or None for every item.
    Raises KeyError naming what did not match."""
    ids = select_ids([item.id for item in items], which)
    return [item for item in items if item.id in ids]


def select_ids(ids: Sequence[str], which: str | None) -> list[str]:
    """``select`` over bare ids (a face holds items as JSON)."""
    if which is None or which == "all":
        return list(ids)
    wanted = which.lower()
    if wanted in ids:
        return [wanted]
    chosen = [item_id for item_id in ids if item_id.startswith(wanted)]
    if not chosen:
        raise KeyError(f"no drift item {which}" + ("" if ids else " (no drift now)"))
    if len(chosen) > 1:
        raise KeyError(f"drift id {which} is ambiguous: " + ", ".join(chosen))
    return chosen


def repair_ops(items: Iterable[DriftItem]) -> list[Op]:
    """The repairs of ``items`` in a safe order: every removal, then every change, then every addition."""
    ops = [op for item in items for op in item.repair]
    rank = {DeleteDest: 0, DeleteService: 1, EditService: 2, EditDest: 3, AddService: 4, AddDest: 5}
    return sorted(ops, key=lambda op: rank.get(type(op), 6))


def held_back(ops: Sequence[Op], held: Iterable[DriftItem]) -> list[Op]:
    """``ops`` without the repairs of ``held`` items (the ``hold`` policy): an operation equal to a held repair
    would push the old intent over the drift; one that differs carries a new intent and goes through. The dests
    of a held deleted service stay out with it (the kernel would refuse them)."""
    blocked = {op for item in held for op in item.repair}
    if not blocked:
        return list(ops)
    missing = {op.service.key for op in blocked if isinstance(op, AddService)}
    return [op for op in ops if op not in blocked and not (isinstance(op, AddDest) and op.service in missing)]


class DriftLedger:
    """The drift items now, and which appeared or cleared since the last update."""

    def __init__(self) -> None:
        self._items: dict[str, DriftItem] = {}

    @property
    def items(self) -> tuple[DriftItem, ...]:
        return tuple(self._items.values())

    def update(self, items: Iterable[DriftItem], *, keep: Collection[ServiceKey] = ()) -> tuple[
            list[DriftItem], list[DriftItem]]:
        """Replace the items with ``items``, keeping the current ones about a service in ``keep`` (not compared
        this time). Returns (appeared, cleared); an item whose values changed (a weight edited again) is
        replaced without appearing anew."""
        fresh = {item.id: item for item in items}
        for item_id, item in self._items.items():
            if item.service is not None and item.service in keep and item_id not in fresh:
                fresh[item_id] = item
        appeared = [item for item_id, item in fresh.items() if item_id not in self._items]
        cleared = [item for item_id, item in self._items.items() if item_id not in fresh]
        self._items = fresh
        return appeared, cleared

    def clear(self) -> list[DriftItem]:
        cleared = list(self._items.values())
        self._items = {}
        return cleared
