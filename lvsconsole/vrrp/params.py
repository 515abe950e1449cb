"""From the config model to what one VRRP instance runs with: machine Params plus the adapter settings.

keepalived's defaults and precedence rules live here (vrrp_complete_instance and friends):

- instance settings override global_defs ones (garp_master_*, version, lower_prio_no_advert ...);
- the address family is the first virtual address's (else the unicast peers', else IPv4);
- the source address is unicast_src_ip, else mcast_src_ip, else the interface's primary address
  (IPv4: its first address; IPv6: its link-local address), read with pyroute2 by :func:`interface_source`;
- v2 advert intervals are whole seconds (rounded, as keepalived does), v3 ones centiseconds;
- trackers: an instance tracks its own interface (unless dont_track_primary) and the interfaces of its
  virtual addresses with weight 0; a sync group's trackers apply to every member; inside a sync group
  the member's own tracker weights are forced to 0 unless the group sets sync_group_tracking_weight.

Everything but :func:`interface_source` is pure.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Literal

from lvsconsole.config import model as m
from lvsconsole.vrrp.machine import Params, State
from lvsconsole.vrrp.packet import Auth, IPAddress
from lvsconsole.vrrp.routes import (
    VirtualRoute,
    VirtualRule,
    parse_routes,
    parse_rules,
    preference_counters,
    route_tables,
)
from lvsconsole.vrrp.static_track import static_tracked_interfaces
from lvsconsole.vrrp.trackprocess import process_specs, track_process_refs
from lvsconsole.vrrp.vmac import VmacSpec, address_vmacs, vmac_spec

log = logging.getLogger("lvsconsole.vrrp")

TrackKind = Literal["interface", "script", "file", "process"]


@dataclass(frozen=True, slots=True)
class TrackSpec:
    """One tracked object of an instance with the weight and direction that apply to it."""

    kind: TrackKind
    name: str
    weight: int = 0
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    """Everything one vrrp_instance needs at run time.

    ``params.source`` is the configured source address if any; :meth:`with_source` fills in the
    interface's own address once it is known.
    """

    name: str
    interface: str
    family: int
    params: Params
    vips: tuple[m.VirtualAddress, ...] = ()
    excluded: tuple[m.VirtualAddress, ...] = ()
    unicast_peers: tuple[IPAddress, ...] = ()
    mcast_group: IPAddress = IPv4Address("224.0.0.18")
    configured_source: IPAddress | None = None
    tracks: tuple[TrackSpec, ...] = ()
    sync_group: str | None = None
    garp_interval: float = 0.0
    check_unicast_src: bool = False
    vmac: VmacSpec | None = None
    routes: tuple[VirtualRoute, ...] = ()
    rules: tuple[VirtualRule, ...] = ()
    garp_extra_interval: float = 0.0
    garp_extra_all: bool = False
    addr_vmacs: tuple[VmacSpec, ...] = ()
    """The macvlans of the virtual addresses on other interfaces (use_vmac_addr, or use_vmac on an address)."""

    @property
    def vmac_names(self) -> tuple[str, ...]:
        """Every macvlan this instance's addresses live on."""
        return tuple(v.name for v in (self.vmac, *self.addr_vmacs) if v is not None)

    @property
    def unicast(self) -> bool:
        return bool(self.unicast_peers)

    @property
    def address_interface(self) -> str:
        """Where a virtual address without ``dev`` goes: the VMAC if use_vmac, else the interface."""
        return self.vmac.name if self.vmac is not None else self.interface

    @property
    def socket_interface(self) -> str:
        """Where adverts are sent and received: the VMAC if use_vmac (unless vmac_xmit_base), else the interface."""
        return self.vmac.name if self.vmac is not None and not self.vmac.xmit_base else self.interface

    @property
    def all_vips(self) -> tuple[m.VirtualAddress, ...]:
        """virtual_ipaddress then virtual_ipaddress_excluded: what is added, removed and announced."""
        return self.vips + self.excluded

    def with_source(self, source: IPAddress | None) -> InstanceSpec:
        return replace(self, params=replace(self.params, source=source))


# -------------------------------------------------------------------------------------------- helpers


def extra_args(extra: m.Extra, keyword: str) -> tuple[str, ...] | None:
    """The arguments of the last ``keyword`` kept verbatim in a block's ``extra``, or None if absent."""
    found: tuple[str, ...] | None = None
    for key, args in extra:
        if key == keyword:
            found = args
    return found


def _flag(extra: m.Extra, keyword: str, default: bool = False) -> bool:
    args = extra_args(extra, keyword)
    if args is None:
        return default
    if not args:
        return True
    return args[0].lower() not in ("false", "no", "off", "0")


def _number(extra: m.Extra, keyword: str, default: float) -> float:
    args = extra_args(extra, keyword)
    if not args:
        return default
    try:
        return float(args[0])
    except ValueError:
        log.warning("ignoring %s %r: not a number", keyword, args[0])
        return default


def v2_interval(advert_int: float) -> float:
    """VRRPv2 carries whole seconds 1-255; keepalived rounds a fractional advert_int."""
    return float(min(max(round(advert_int), 1), 255))


def v3_interval(advert_int: float) -> float:
    """VRRPv3 carries centiseconds 1-4095."""
    return min(max(round(advert_int * 100), 1), 0x0FFF) / 100


def instance_family(inst: m.VrrpInstance) -> int:
    if inst.virtual_ipaddress:
        return inst.virtual_ipaddress[0].address.version
    if inst.unicast_peer:
        return inst.unicast_peer[0].address.version
    for addr in (inst.unicast_src_ip, inst.mcast_src_ip):
        if addr is not None:
            return addr.version
    return 4


def sync_group_of(config: m.Config, name: str) -> m.SyncGroup | None:
    for group in config.sync_groups:
        if name in group.group:
            return group
    return None


def _script(config: m.Config, name: str) -> m.VrrpScript | None:
    return next((s for s in config.vrrp_scripts if s.name == name), None)


def _track_file(config: m.Config, name: str) -> m.TrackFile | None:
    return next((f for f in config.track_files if f.name == name), None)


def _clamp_weight(weight: int, limit: int) -> int:
    return max(-limit, min(limit, weight))


def track_specs(
    config: m.Config,
    interfaces: Iterable[m.TrackRef],
    scripts: Iterable[m.TrackRef],
    files: Iterable[m.TrackRef],
    *,
    force_zero: bool = False,
) -> list[TrackSpec]:
    """Resolve track_interface / track_script / track_file entries to weights and directions.

    Unknown scripts and files are skipped (the validator reports them). ``force_zero``: a sync-group
    member's own trackers, whose weights keepalived ignores (failure means FAULT).
    """
    out: list[TrackSpec] = []
    for ref in interfaces:
        weight = _clamp_weight(ref.weight or 0, 253)
        out.append(TrackSpec("interface", ref.name, 0 if force_zero else weight, ref.reverse))
    for ref in scripts:
        script = _script(config, ref.name)
        if script is None:
            continue
        weight = script.weight if ref.weight is None else ref.weight
        reverse = script.weight_reverse if ref.weight is None else (ref.reverse or script.weight_reverse)
        out.append(TrackSpec("script", ref.name, 0 if force_zero else _clamp_weight(weight, 253), reverse))
    for ref in files:
        tfile = _track_file(config, ref.name)
        if tfile is None:
            continue
        weight = tfile.weight if ref.weight is None else ref.weight
        reverse = tfile.weight_reverse if ref.weight is None else (ref.reverse or tfile.weight_reverse)
        out.append(TrackSpec("file", ref.name, 0 if force_zero else _clamp_weight(weight, 254), reverse))
    return out


def process_track_specs(config: m.Config, extra: m.Extra, *, force_zero: bool = False) -> list[TrackSpec]:
    """The track_process entries among an instance's (or group's) raw keywords, with the blocks' weights.

    Unknown or invalid ones are logged and skipped (the validator reports them).
    """
    blocks = {spec.name: spec for spec in process_specs(config)}
    try:
        refs = track_process_refs(extra)
    except ValueError as exc:
        log.error("%s", exc)
        return []
    out = []
    for ref in refs:
        block = blocks.get(ref.name)
        if block is None:
            log.error("track_process %s: no such vrrp_track_process", ref.name)
            continue
        weight = block.weight if ref.weight is None else ref.weight
        reverse = block.reverse if ref.weight is None else (ref.reverse or block.reverse)
        out.append(TrackSpec("process", ref.name, 0 if force_zero else _clamp_weight(weight, 254), reverse))
    return out


# -------------------------------------------------------------------------------------------- the mapping


def instance_spec(config: m.Config, inst: m.VrrpInstance) -> InstanceSpec:
    """The run-time settings of ``inst`` (a built, validated config)."""
    g = config.global_defs
    family = instance_family(inst)
    interface = inst.interface or g.default_interface
    if interface is None:
        raise ValueError(f"({inst.name}) has no interface")
    version = inst.version
    advert_int = v2_interval(inst.advert_int) if version == 2 else v3_interval(inst.advert_int)
    if version == 2 and advert_int != inst.advert_int:
        log.warning("(%s) advert_int %g rounded to %g s for VRRPv2", inst.name, inst.advert_int, advert_int)

    auth: Auth | None = None
    if version == 2:
        auth = Auth()
        if inst.authentication is not None:
            if inst.authentication.auth_type == "PASS":
                auth = Auth.pass_(inst.authentication.auth_pass)
            else:
                log.warning("(%s) auth_type AH is not supported; adverts are sent without authentication",
                            inst.name)
                auth = None

    group = sync_group_of(config, inst.name)
    ge, ie = g.extra, inst.extra
    min_garp = _flag(ge, "vrrp_min_garp")
    garp_delay = inst.garp_master_delay if inst.garp_master_delay is not None else (
        0.0 if min_garp else g.vrrp_garp_master_delay)
    garp_repeat = inst.garp_master_repeat if inst.garp_master_repeat is not None else (
        1 if min_garp else g.vrrp_garp_master_repeat)
    garp_refresh = (inst.garp_master_refresh if inst.garp_master_refresh is not None
                    else g.vrrp_garp_master_refresh)
    garp_refresh_repeat = (inst.garp_master_refresh_repeat if inst.garp_master_refresh_repeat is not None
                           else g.vrrp_garp_master_refresh_repeat)
    # keepalived: the global lower-priority defaults are the global garp_master ones (vrrp_complete_init), so a
    # MASTER hearing a lower priority re-announces its addresses unless told otherwise
    lower_delay = _number(ie, "garp_lower_prio_delay", _number(ge, "vrrp_garp_lower_prio_delay",
                                                                g.vrrp_garp_master_delay))
    lower_repeat = int(_number(ie, "garp_lower_prio_repeat", _number(ge, "vrrp_garp_lower_prio_repeat",
                                                                     g.vrrp_garp_master_repeat)))
    down_adverts = int(_number(ie, "down_timer_adverts", _number(ge, "vrrp_down_timer_adverts", 3)))

    vips = tuple(v for v in inst.virtual_ipaddress if v.address.version == family)
    peers = tuple(p.address for p in inst.unicast_peer if p.address.version == family)
    if not peers and (inst.unicast_peer or inst.unicast_src_ip is not None or "unicast_peer" in inst.locs):
        # keepalived falls back to multicast here, silently: a VIP then answers on a network that may hear
        # nobody (or the wrong peers), so the instance does not run at all
        raise ValueError(f"unicast is configured but there is no IPv{family} unicast peer; refusing to fall back "
                         "to multicast")
    configured_source = inst.unicast_src_ip or inst.mcast_src_ip
    if configured_source is not None and configured_source.version != family:
        configured_source = None
    mcast: IPAddress = g.vrrp_mcast_group4 if family == 4 else g.vrrp_mcast_group6
    mcast_dst = extra_args(ie, "mcast_dst_ip")
    if mcast_dst:
        try:
            candidate = ip_address(mcast_dst[0])
            if candidate.version == family:
                mcast = candidate
        except ValueError:
            log.warning("(%s) ignoring mcast_dst_ip %r", inst.name, mcast_dst[0])

    strict = inst.strict_mode if inst.strict_mode is not None else g.vrrp_strict
    preempt_delay = inst.preempt_delay
    higher_prio_send_advert = _flag(ie, "higher_prio_send_advert", _flag(ge, "vrrp_higher_prio_send_advert"))
    lower_prio_no_advert = _flag(ie, "lower_prio_no_advert", _flag(ge, "vrrp_lower_prio_no_advert"))
    skip_check_adv_addr = _flag(ie, "skip_check_adv_addr", g.vrrp_skip_check_adv_addr)
    initial_state = State.MASTER if inst.state == "MASTER" else State.BACKUP
    if strict:
        # keepalived's strict mode (vrrp_complete_instance): RFC behaviour, whatever the other keywords say;
        # and every advert must list exactly our addresses
        preempt_delay = 0.0
        higher_prio_send_advert = skip_check_adv_addr = False
        lower_prio_no_advert = True
        lower_delay, lower_repeat = 0.0, 0
        initial_state = State.MASTER if inst.priority == 255 else State.BACKUP
        auth = Auth() if version == 2 else None  # adverts with authentication are dropped

    params = Params(
        name=inst.name,
        vrid=inst.virtual_router_id,
        priority=inst.priority,
        addresses=tuple(v.address.ip for v in vips),
        version=version,
        family=family,
        advert_int=advert_int,
        initial_state=initial_state,
        preempt=not inst.nopreempt,
        preempt_delay=preempt_delay,
        auth=auth,
        source=configured_source,
        down_timer_adverts=min(max(down_adverts, 1), 100),
        garp_master_delay=garp_delay,
        garp_master_repeat=garp_repeat,
        garp_master_refresh=garp_refresh,
        garp_master_refresh_repeat=garp_refresh_repeat,
        garp_lower_prio_delay=lower_delay,
        garp_lower_prio_repeat=lower_repeat,
        lower_prio_no_advert=lower_prio_no_advert,
        higher_prio_send_advert=higher_prio_send_advert,
        skip_check_adv_addr=skip_check_adv_addr,
        unicast=bool(peers),
        v3_checksum_as_v2=_flag(ie, "v3_checksum_as_v2", _flag(ge, "v3_checksum_as_v2")),
        sync_group=group is not None,
    )

    # trackers: own interface and the VIPs' interfaces (weight 0), then the configured ones
    tracks: list[TrackSpec] = []
    if not inst.dont_track_primary:
        tracks.append(TrackSpec("interface", interface))
    for vip in (*vips, *inst.virtual_ipaddress_excluded):
        if vip.dev and vip.dev != interface and all(t.name != vip.dev for t in tracks):
            tracks.append(TrackSpec("interface", vip.dev))
    for dev in static_tracked_interfaces(config).get(inst.name, ()):  # track_group on static entries
        if all(not (t.kind == "interface" and t.name == dev) for t in tracks):
            tracks.append(TrackSpec("interface", dev))
    group_weights = group is not None and extra_args(group.extra, "sync_group_tracking_weight") is not None
    configured = track_specs(config, inst.track_interface, inst.track_script, inst.track_file,
                             force_zero=group is not None and not group_weights)
    configured += process_track_specs(config, inst.extra, force_zero=group is not None and not group_weights)
    if group is not None:
        configured += track_specs(config, group.track_interface, group.track_script, group.track_file)
        configured += process_track_specs(config, group.extra)
    for spec in configured:
        if spec.kind == "interface":
            # an explicitly tracked interface replaces the implicit weight-0 entry
            tracks = [t for t in tracks if not (t.kind == "interface" and t.name == spec.name)]
        if spec not in tracks:
            tracks.append(spec)

    garp_extra = _garp_extra(inst.name, ie, ge)
    vmac = _vmac(inst, interface, family, unicast=bool(peers), prefix=_vmac_prefix(ge))
    use_vmac_addr = _flag(ie, "use_vmac_addr")
    all_vips = vips + inst.virtual_ipaddress_excluded
    taken: set[str] = set()
    if use_vmac_addr or any("use_vmac" in v.flags for v in all_vips):
        # the names of the instances' own VMACs are not free for the addresses' ones
        taken = {_default_vmac_name(config, other) for other in config.instances if other.use_vmac is not None}
    addr_prefix = (extra_args(ge, "vmac_addr_prefix") or (_vmac_prefix(ge),))[0]
    placed, addr_vmacs = address_vmacs(all_vips, interface=interface, family=family, vrid=inst.virtual_router_id,
                                       use_vmac_addr=use_vmac_addr, instance_vmac=vmac, prefix=addr_prefix,
                                       taken=taken)
    return InstanceSpec(
        name=inst.name,
        interface=interface,
        family=family,
        params=params,
        vips=placed[:len(vips)],
        excluded=placed[len(vips):],
        unicast_peers=peers,
        mcast_group=mcast,
        configured_source=configured_source,
        tracks=tuple(tracks),
        sync_group=group.name if group is not None else None,
        garp_interval=g.vrrp_gna_interval if family == 6 else g.vrrp_garp_interval,
        check_unicast_src=_flag(ie, "check_unicast_src", g.vrrp_check_unicast_src),
        vmac=vmac,
        routes=_routes(inst, family),
        rules=_rules(config, inst, family),
        garp_extra_interval=garp_extra[0],
        garp_extra_all=garp_extra[1],
        addr_vmacs=addr_vmacs,
    )


def _vmac_prefix(ge: m.Extra) -> str:
    return (extra_args(ge, "vmac_prefix") or ("vrrp",))[0]


def _default_vmac_name(config: m.Config, inst: m.VrrpInstance) -> str:
    """The instance VMAC's name, without the warnings (for choosing the names of the address VMACs)."""
    interface = inst.interface or config.global_defs.default_interface or ""
    spec, _ = vmac_spec(inst.use_vmac or (), vrid=inst.virtual_router_id, base=interface,
                        family=instance_family(inst), prefix=_vmac_prefix(config.global_defs.extra))
    return spec.name


def _vmac(inst: m.VrrpInstance, interface: str, family: int, *, unicast: bool,
          prefix: str = "vrrp") -> VmacSpec | None:
    if inst.use_vmac is None:
        return None
    xmit_base = _flag(inst.extra, "vmac_xmit_base")
    if unicast and not xmit_base:
        # keepalived sets it for a unicast instance: the peers' unicast adverts arrive addressed to the parent's MAC
        log.warning("(%s) unicast with use_vmac requires vmac_xmit_base - setting it", inst.name)
        xmit_base = True
    spec, problems = vmac_spec(inst.use_vmac, vrid=inst.virtual_router_id, base=interface, family=family,
                               xmit_base=xmit_base, prefix=prefix)
    for problem in problems:
        log.warning("(%s) %s", inst.name, problem)
    return spec


def _routes(inst: m.VrrpInstance, family: int) -> tuple[VirtualRoute, ...]:
    if not inst.virtual_routes:
        return ()
    routes, problems = parse_routes(inst.virtual_routes, family, route_tables())
    for problem in problems:  # keepalived skips such a line and runs the instance
        log.warning("(%s) virtual_routes: %s - skipped", inst.name, problem)
    return routes


def _rules(config: m.Config, inst: m.VrrpInstance, family: int) -> tuple[VirtualRule, ...]:
    if not inst.virtual_rules:
        return ()
    tables = route_tables()
    counters = rule_counters_before(config, inst.name, tables)
    rules, problems = parse_rules(inst.virtual_rules, family, tables, counters=counters)
    for problem in problems:
        log.warning("(%s) virtual_rules: %s - skipped", inst.name, problem)
    return rules


def rule_counters_before(config: m.Config, name: str | None, tables: dict[str, int]) -> dict[int, int]:
    """keepalived's preference counters as they stand when the rules of instance ``name`` are read (None: before
    any instance). The static rules are counted first: exact when static_rules comes before the vrrp_instance
    blocks, as it does in keepalived's documentation and samples."""
    counters = preference_counters()
    parse_rules([line.words for line in config.static_rules], 4, tables, counters=counters)
    if name is None:
        return counters
    for other in config.instances:
        if other.name == name:
            break
        if other.virtual_rules:
            parse_rules(other.virtual_rules, instance_family(other), tables, counters=counters)
    return counters


def garp_extra_args(args: tuple[str, ...] | None) -> tuple[float, bool] | None:
    """``garp_extra_if [all] SECONDS`` → (interval, all); None if absent; ValueError if malformed (pure)."""
    if args is None:
        return None
    words = [a for a in args if a != "all"]
    if len(words) != 1:
        raise ValueError("garp_extra_if needs an interval in seconds (and optionally 'all')")
    try:
        interval = float(words[0])
    except ValueError:
        raise ValueError(f"garp_extra_if interval '{words[0]}' is not a number") from None
    if not 0 <= interval <= 86400:
        raise ValueError(f"garp_extra_if interval {interval:g} is outside 0-86400 s")
    return interval, "all" in args


def _garp_extra(name: str, ie: m.Extra, ge: m.Extra) -> tuple[float, bool]:
    """The instance's garp_extra_if, else global_defs' vrrp_garp_extra_if: (interval, all). A malformed one is
    ignored with a warning, as keepalived does."""
    for extra, keyword in ((ie, "garp_extra_if"), (ge, "vrrp_garp_extra_if")):
        try:
            found = garp_extra_args(extra_args(extra, keyword))
        except ValueError as exc:
            log.warning("(%s) %s; ignored", name, exc)
            continue
        if found is not None:
            return found
    return 0.0, False


def instance_specs(config: m.Config) -> list[InstanceSpec]:
    return [instance_spec(config, inst) for inst in config.instances]


# -------------------------------------------------------------------------------------------- source address


def pick_source(addresses: Iterable[tuple[IPAddress, int, bool]], family: int,
                exclude: Iterable[IPAddress] = ()) -> IPAddress | None:
    """keepalived's choice among an interface's addresses, given as (address, scope, secondary).

    IPv4: the first primary address that is not one of our VIPs. IPv6: the first link-local address.
    """
    excluded = set(exclude)
    candidates = [(a, scope, sec) for a, scope, sec in addresses if a.version == family and a not in excluded]
    if family == 6:
        for addr, _, _ in candidates:
            if isinstance(addr, IPv6Address) and addr.is_link_local:
                return addr
        return None
    for addr, _, secondary in candidates:
        if not secondary:
            return addr
    return candidates[0][0] if candidates else None


async def interface_source(interface: str, family: int, exclude: Iterable[IPAddress] = ()) -> IPAddress | None:
    """The interface's own address keepalived would send from (None if it has none, or no such interface)."""
    from pyroute2 import AsyncIPRoute

    ifa_f_secondary = 0x01
    async with AsyncIPRoute() as ipr:
        indexes = await ipr.link_lookup(ifname=interface)
        if not indexes:
            return None
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        found: list[tuple[IPAddress, int, bool]] = []
        async for msg in await ipr.addr("dump", index=indexes[0], family=af):
            text = msg.get("address")
            if text is None:
                continue
            flags = msg.get("IFA_FLAGS") or msg["flags"]
            found.append((ip_address(text), msg["scope"], bool(flags & ifa_f_secondary)))
    return pick_source(found, family, exclude)
