"""Drift in the engine's terms: bus events for the sync's drift reports, drift items placed on the ``show vs``
rows they are about, and the candidate-config edit that adopts an item (``drift adopt``).

The items themselves come from ``ipvs/drift.py`` (IPVS) and the director's VIP check; this module only
translates, so it stays pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lvsconsole.engine.events import Event, IpvsDriftCleared, IpvsDriftDetected, IpvsDriftRepaired
from lvsconsole.engine.layout import Layout, RealServerLayout, VirtualServerLayout
from lvsconsole.engine.refs import vs_label
from lvsconsole.ipvs.drift import DriftItem, ExpectedVip
from lvsconsole.ipvs.sync import SyncEvent
from lvsconsole.ipvs.table import DestKey, ServiceKey
from lvsconsole.vrrp.addresses import vip_device
from lvsconsole.vrrp.machine import State

if TYPE_CHECKING:
    from lvsconsole.vrrp.instance import InstanceRuntime

DriftView = Mapping[str, Any]
"""One drift item as JSON (``DriftItem.as_json``) plus the ``show vs`` keys and labels it belongs to:
``vs`` / ``vs_label`` (None for a service not in the running config), ``rs`` / ``rs_label``."""

ADOPTABLE = ("weight-changed", "dest-added", "dest-deleted", "vip-removed")
"""What ``drift adopt`` can write into the config; the rest (a service edited or deleted by hand) is reconciled."""


def drift_events(event: SyncEvent) -> list[Event]:
    """The bus events for one sync event: one per item it names (none for other kinds)."""
    kind: DriftEventType | None = _EVENT_TYPES.get(event.kind)
    if kind is None:
        return []
    return [item_event(kind, item) for item in event.items]


DriftEventType = type[IpvsDriftDetected] | type[IpvsDriftCleared] | type[IpvsDriftRepaired]
_EVENT_TYPES: dict[str, DriftEventType] = {
    "drift": IpvsDriftRepaired, "drift-held": IpvsDriftDetected, "drift-cleared": IpvsDriftCleared}


def item_event(kind: DriftEventType, item: DriftItem) -> Event:
    return kind(drift_id=item.id, drift_kind=item.kind, where=item.where, intent=item.intent_text,
                kernel=item.kernel_text)


def held_vips(runtimes: Iterable[InstanceRuntime]) -> list[ExpectedVip]:
    """The VIPs our instances hold now (MASTER, addresses added): each should be on its interface."""
    return [ExpectedVip(runtime.name, vip_device(vip, runtime.spec.address_interface), str(vip.address.ip))
            for runtime in runtimes if runtime.machine.state is State.MASTER and runtime.vips_present
            for vip in runtime.spec.all_vips]


def drift_views(items: Iterable[DriftItem], layout: Layout) -> tuple[DriftView, ...]:
    """``items`` as JSON, each with the virtual and real server of the running config it is about."""
    services: dict[ServiceKey, VirtualServerLayout] = {}
    dests: dict[tuple[ServiceKey, DestKey], RealServerLayout] = {}
    for vs in layout.virtual_servers:
        for key in vs.service_keys:
            services.setdefault(key, vs)
        for rs in vs.real_servers:
            for pair in rs.dests:
                dests.setdefault(pair, rs)
    views = []
    for item in items:
        data = item.as_json()
        vs_layout = services.get(item.service) if item.service is not None else None
        rs_layout = dests.get((item.service, item.dest)) if item.service is not None and item.dest else None
        data["vs"] = None if vs_layout is None else vs_layout.key
        data["vs_label"] = None if vs_layout is None else _label(vs_layout)
        data["rs"] = None if rs_layout is None else rs_layout.rid.rs
        data["rs_label"] = None if item.dest is None else str(item.dest)
        views.append(data)
    return tuple(views)


def _label(layout: VirtualServerLayout) -> str:
    vs = layout.vs
    return vs_label(address=vs.address, port=vs.port, protocol=vs.protocol, fwmark=vs.fwmark, group=vs.group)


def drifted_rows(views: Sequence[DriftView]) -> dict[tuple[str, str | None], list[DriftView]]:
    """The drift items by (vs key, rs key): rs None for an item about the virtual server itself (or a dest the
    config does not have)."""
    rows: dict[tuple[str, str | None], list[DriftView]] = {}
    for view in views:
        if view.get("vs") is not None:
            rows.setdefault((view["vs"], view.get("rs")), []).append(view)
    return rows


def adopt_command(view: DriftView) -> str:
    """The candidate edit that makes intent equal to what the kernel has for this item. Raises ValueError
    when the item cannot be adopted (a service changed or deleted by hand, or one the config does not have)."""
    kind = view["kind"]
    if kind == "vip-removed":
        return f"delete vip {view['vip']} from {view['instance']}"
    if kind not in ADOPTABLE:
        raise ValueError(f"{view['id']} ({kind} {view['where']}) cannot be adopted: reconcile it, or edit the "
                         "candidate by hand")
    if view.get("vs_label") is None:
        raise ValueError(f"{view['id']} ({kind} {view['where']}) is about a service the running config does not have")
    vs, rs = view["vs_label"], view["rs_label"]
    if kind == "weight-changed":
        return f"set rs {rs} in {vs} weight {view['kernel_weight']}"
    if kind == "dest-deleted":
        return f"delete rs {rs} from {vs}"
    return f"add rs {rs} to {vs} weight {view['kernel_weight']}"
