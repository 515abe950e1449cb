"""Semantic rules over a built Config: references, conflicts, and the traps keepalived lets through.

Each rule appends Diagnostics located at the keyword that causes the problem. Structural and value
errors are the builder's; what is here needs the whole config (or the host) to decide.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address

from lvsconsole.config import model as m
from lvsconsole.config.build import instance_family
from lvsconsole.config.diagnostics import Diagnostic, Location, error, warning
from lvsconsole.config.localaddr import HOST_LOCAL
from lvsconsole.config.memo import VS_FINDINGS, PerObject
from lvsconsole.engine.listen import parse_listen_address
from lvsconsole.scripts.vet import (
    USER_CODES,
    Refusal,
    configured_user,
    run_user,
    runs_as_root,
    unsafe_component,
    vet,
)
from lvsconsole.vrrp.static_track import track_groups
from lvsconsole.vrrp.trackprocess import parse_track_process


def _raw_statements(words: tuple[str, ...]) -> list[list[str]]:
    """A raw block's words (``{ a b ; c ; }``) as statements."""
    out: list[list[str]] = [[]]
    for word in words:
        if word in ("{", "}", ";"):
            out.append([])
        else:
            out[-1].append(word)
    return [s for s in out if s]


def _weight_words(words: list[str]) -> bool:
    """``weight N [reverse|noreverse]`` with N in -254..254."""
    if len(words) not in (2, 3) or words[0] != "weight" or (len(words) == 3 and words[2] not in ("reverse",
                                                                                                 "noreverse")):
        return False
    try:
        return -254 <= int(words[1]) <= 254
    except ValueError:
        return False


class Validator:
    def __init__(self, config: m.Config, *, strict: bool = False, check_host: bool = True) -> None:
        self.config = config
        self.strict = strict
        self.check_host = check_host
        self.out: list[Diagnostic] = []
        # bind answers outlive this validation while the host's addresses stay the same (config/localaddr.py)
        self._local_cache = HOST_LOCAL.answers() if check_host else {}
        self._unsure_binds = 0

    def err(self, message: str, loc: Location | None) -> None:
        self.out.append(error(message, loc))

    def warn(self, message: str, loc: Location | None) -> None:
        self.out.append(warning(message, loc))

    def run(self) -> list[Diagnostic]:
        self.unique_names()
        self.instances()
        self.instance_network()
        self.static_network()
        self.sync_groups()
        self.tracking_references()
        self.bfd_tracking()
        self.sync_daemon()
        self.virtual_servers()
        self.scripts()
        return self.out

    # ------------------------------------------------------------------------------ names

    def unique_names(self) -> None:
        c = self.config
        for kind, objects in (
            ("vrrp_instance", c.instances),
            ("vrrp_sync_group", c.sync_groups),
            ("vrrp_script", c.vrrp_scripts),
            ("track_file", c.track_files),
            ("virtual_server_group", c.virtual_server_groups),
        ):
            seen: dict[str, Location | None] = {}
            for obj in objects:
                name = obj.name
                loc = obj.locs.get("name")
                if name in seen:
                    first = seen[name]
                    where = f" (first at line {first.line})" if first else ""
                    self.err(f"duplicate {kind} '{name}'{where}", loc)
                else:
                    seen[name] = loc
        seen_vs: dict[str, Location | None] = {}
        for vs in c.virtual_servers:
            key = vs.key
            loc = vs.locs.get("key")
            if key in seen_vs:
                first = seen_vs[key]
                where = f" (first at line {first.line})" if first else ""
                self.err(f"duplicate virtual_server {key}{where}", loc)
            else:
                seen_vs[key] = loc

    # ------------------------------------------------------------------------------ VRRP

    def instances(self) -> None:
        c = self.config
        by_vrid: dict[tuple[str | None, int, int], m.VrrpInstance] = {}
        for inst in c.instances:
            loc = inst.locs.get("name")
            interface = inst.interface or c.global_defs.default_interface
            if interface is None:
                self.err(f"({inst.name}) has no interface (and global_defs has no default_interface)", loc)
            vips = inst.virtual_ipaddress
            family = instance_family(inst)
            strict_mode = inst.strict_mode if inst.strict_mode is not None else c.global_defs.vrrp_strict
            stray = next((vip for vip in vips if vip.address.version != family), None)
            if stray is not None:
                self.err(f"({inst.name}) virtual address {stray.address.ip} is not IPv{family} like "
                         f"{vips[0].address.ip}: keepalived ignores it; put the other family in "
                         "virtual_ipaddress_excluded", stray.locs.get("address"))
            if inst.version == 2 and family == 6:
                # Only an explicit `version 2` gets here (an IPv6 instance defaults to v3). keepalived then sends
                # non-standard VRRPv2 over IPv6, unless strict mode makes it switch to version 3.
                message = f"({inst.name}) VRRP version 2 is IPv4-only (RFC 3768)"
                if strict_mode:
                    self.err(message + "; under strict mode keepalived would switch to version 3",
                             inst.locs.get("version"))
                else:
                    self.warn(message + ": only keepalived peers understand VRRPv2 over IPv6; use version 3",
                              inst.locs.get("version"))
            key = (interface, family, inst.virtual_router_id)
            if inst.virtual_router_id and key in by_vrid:
                other = by_vrid[key]
                self.err(
                    f"({inst.name}) virtual_router_id {inst.virtual_router_id} is already used by "
                    f"({other.name}) on {interface}",
                    inst.locs.get("virtual_router_id"),
                )
            else:
                by_vrid[key] = inst
            if not vips:
                if inst.version == 3 or family == 6 or strict_mode:
                    why = "VRRPv3" if inst.version == 3 else "IPv6" if family == 6 else "strict mode"
                    self.err(f"({inst.name}) has no virtual_ipaddress: with {why} keepalived requires at least one "
                             "and rejects the instance", loc)
                else:
                    self.warn(f"({inst.name}) has no virtual_ipaddress", loc)
            self.advert_room(inst, family)
            adv = inst.advert_int
            if inst.version == 2:
                if adv < 1:
                    self.err(f"({inst.name}) advert_int {adv:g} is below 1 s, which VRRPv2 cannot carry; "
                             "use version 3", inst.locs.get("advert_int"))
                elif adv != int(adv):
                    self.warn(f"({inst.name}) advert_int {adv:g} is rounded to {round(adv)} s for VRRPv2",
                              inst.locs.get("advert_int"))
            elif adv > 40.95:
                self.err(f"({inst.name}) advert_int {adv:g} exceeds VRRPv3's maximum of 40.95 s",
                         inst.locs.get("advert_int"))
            auth = inst.authentication
            if auth is not None:
                if inst.version == 3:
                    self.warn(f"({inst.name}) authentication is not part of VRRPv3 and is ignored",
                              inst.locs.get("authentication"))
                elif auth.auth_type == "AH":
                    self.warn(f"({inst.name}) auth_type AH is not supported by lvsconsole; adverts will be "
                              "sent without authentication", inst.locs.get("authentication"))
            if inst.unicast_peer:
                if inst.unicast_src_ip is None and interface is None:
                    self.err(f"({inst.name}) unicast_peer needs unicast_src_ip or an interface to take the "
                             "source address from", inst.locs.get("unicast_peer"))
                if all(peer.address.version != family for peer in inst.unicast_peer):
                    self.err(f"({inst.name}) no unicast peer is IPv{family} like the instance: keepalived would "
                             "skip them all and silently fall back to multicast", inst.locs.get("unicast_peer"))
                else:
                    for peer in inst.unicast_peer:
                        if peer.address.version != family:
                            self.err(f"({inst.name}) unicast peer {peer.address} is not of the instance's address "
                                     "family", peer.locs.get("address"))
                if inst.unicast_src_ip is not None and inst.unicast_src_ip.version != family:
                    self.err(f"({inst.name}) unicast_src_ip {inst.unicast_src_ip} is not of the instance's "
                             "address family", inst.locs.get("unicast_src_ip"))
            elif "unicast_peer" in inst.locs:
                self.err(f"({inst.name}) unicast_peer is empty: keepalived would silently fall back to "
                         "multicast", inst.locs.get("unicast_peer"))
            elif inst.unicast_src_ip is not None:
                self.err(f"({inst.name}) unicast_src_ip without unicast_peer: keepalived would silently fall back "
                         "to multicast; list the peers (or use mcast_src_ip for a multicast source address)",
                         inst.locs.get("unicast_src_ip"))
            if strict_mode:
                self.strict_instance(inst, family)
            if inst.priority == 255 and inst.state == "BACKUP" and "state" in inst.locs:
                self.warn(f"({inst.name}) priority 255 makes it the address owner; state BACKUP is ignored",
                          inst.locs.get("state"))
            if self.check_host and interface is not None and not _interface_exists(interface):
                self.warn(f"({inst.name}) interface {interface} does not exist on this host",
                          inst.locs.get("interface"))
            if self.check_host:
                for tracked in inst.track_interface:
                    if not _interface_exists(tracked.name):
                        self.warn(f"({inst.name}) tracked interface {tracked.name} does not exist on this host",
                                  tracked.locs.get("name"))

    def instance_network(self) -> None:
        """virtual_routes / virtual_rules, use_vmac and garp_extra_if: what the instance would fail to start on."""
        from lvsconsole.vrrp.params import extra_args, garp_extra_args
        from lvsconsole.vrrp.routes import RouteSyntaxError, parse_route, parse_rule, route_tables
        from lvsconsole.vrrp.vmac import vmac_spec

        c = self.config
        tables = route_tables()
        try:
            garp_extra_args(extra_args(c.global_defs.extra, "vrrp_garp_extra_if"))
        except ValueError as exc:  # keepalived reports it and goes on without
            self.warn(f"vrrp_{exc}; ignored", c.global_defs.locs.get("vrrp_garp_extra_if"))
        for inst in c.instances:
            family = instance_family(inst)
            for key, lines in (("virtual_routes", inst.virtual_routes), ("virtual_rules", inst.virtual_rules)):
                parse = parse_route if key == "virtual_routes" else parse_rule
                for i, words in enumerate(lines):
                    try:
                        parse(words, default_family=family, tables=tables)
                    except RouteSyntaxError as exc:
                        # keepalived logs the line and skips it; the instance runs without it
                        self.warn(f"({inst.name}) {key}: {exc} in '{' '.join(words)}'; the line is skipped",
                                  inst.locs.get(f"{key}[{i}]", inst.locs.get(key)))
            try:
                garp_extra_args(extra_args(inst.extra, "garp_extra_if"))
            except ValueError as exc:
                self.warn(f"({inst.name}) {exc}; ignored", inst.locs.get("garp_extra_if"))
            if inst.use_vmac is None:
                continue
            interface = inst.interface or c.global_defs.default_interface or ""
            for problem in vmac_spec(inst.use_vmac, vrid=inst.virtual_router_id, base=interface, family=family)[1]:
                self.warn(f"({inst.name}) {problem}", inst.locs.get("use_vmac"))
            if inst.unicast_peer and extra_args(inst.extra, "vmac_xmit_base") is None:
                self.warn(f"({inst.name}) use_vmac with unicast peers requires vmac_xmit_base; it is set "
                          "(as keepalived does)", inst.locs.get("use_vmac"))

    def static_network(self) -> None:
        """static_ipaddress / static_routes / static_rules lines keepalived would skip, and the preferences it gives
        rules written without one (it warns: "This is probably not what you want")."""
        from lvsconsole.vrrp.routes import (
            RouteSyntaxError,
            parse_route,
            parse_rule,
            parse_rules,
            preference_counters,
            route_tables,
        )
        from lvsconsole.vrrp.statics import static_address

        c = self.config
        tables = route_tables()
        for entry in c.static_ipaddress:
            try:
                static_address(entry, c.global_defs.default_interface)
            except ValueError as exc:
                self.warn(f"static_ipaddress {entry.address}: {exc}; the line is skipped", entry.locs.get("address"))
        for key, lines in (("static_routes", c.static_routes), ("static_rules", c.static_rules)):
            parse = parse_route if key == "static_routes" else parse_rule
            for line in lines:
                try:
                    # keepalived takes the family of a route or rule that does not show one as IPv4
                    parse(line.words, default_family=4, tables=tables)
                except RouteSyntaxError as exc:
                    self.warn(f"{key}: {exc} in '{' '.join(line.words)}'; the line is skipped", line.locs.get("words"))
        self.static_track_groups()
        unnumbered: list[tuple[str, tuple[str, ...], int, Location | None]] = [
            ("static_rules", line.words, 4, line.locs.get("words")) for line in c.static_rules]
        unnumbered += [(f"({i.name}) virtual_rules", line, instance_family(i), i.locs.get(f"virtual_rules[{n}]"))
                       for i in c.instances for n, line in enumerate(i.virtual_rules)]
        counters = preference_counters()
        for owner, words, family, where in unnumbered:
            rules, _ = parse_rules([words], family, tables, counters=counters)
            if rules and not {"priority", "preference", "pref"} & set(words):
                self.warn(f"{owner}: rule '{' '.join(words)}' has no preference - setting it to {rules[0].priority}, "
                          "as keepalived does; give one", where)

    def static_track_groups(self) -> None:
        """track_group on a static address, route or rule: the instances of that top-level track_group follow the
        interface of the entry, FAULT while it is down (vrrp/static_track.py). A group or a member instance that
        does not exist, and an entry also marked no_track, are reported in keepalived's words."""
        c = self.config
        groups = track_groups(c)
        instances = {inst.name for inst in c.instances}
        for group, members in groups.items():
            for member in members:
                if member not in instances:  # top-level blocks kept verbatim carry no place: the names say where
                    self.warn(f"Virtual router {member} specified in track group {group} doesn't exist - ignoring",
                              None)
        entries: list[tuple[str, str, bool, Location | None]] = []
        for address in c.static_ipaddress:
            options = list(address.options)
            if "track_group" in options[:-1]:
                where = address.locs.get("track_group", address.locs.get("address"))
                entries.append((f"static_ipaddress {address.address}", options[options.index("track_group") + 1],
                                "no_track" in options, where))
        for key, lines in (("static_routes", c.static_routes), ("static_rules", c.static_rules)):
            entries += [(f"{key} '{' '.join(line.words)}'", line.track_group, "no_track" in line.words,
                         line.locs.get("track_group", line.locs.get("words")))
                        for line in lines if line.track_group is not None]
        for what, group, no_track, where in entries:
            if group not in groups:
                self.warn(f"{what}: track_group {group} not found", where)
            elif no_track:
                self.warn(f"{what}: has both track_group and no_track set - not tracking (as keepalived)", where)

    def bfd_tracking(self) -> None:
        """A track_bfd entry naming no bfd_instance: keepalived (vrrp_track.c alloc_track_bfd) reports it and
        ignores the entry."""
        c = self.config
        bfds = {words[0] for key, words in c.extra if key == "bfd_instance" and words}
        holders = [(f"({i.name})", i.extra, i.locs) for i in c.instances]
        holders += [(f"({g.name})", g.extra, g.locs) for g in c.sync_groups]
        for owner, extra, locs in holders:
            entries = [words[0] for key, raw in extra if key == "track_bfd" for words in _raw_statements(raw)]
            for n, name in enumerate(entries):
                if name not in bfds:
                    self.warn(f"{owner} track bfd {name} not found, ignoring...", locs.get(f"track_bfd[{n}]"))

    def advert_room(self, inst: m.VrrpInstance, family: int) -> None:
        """An advert carries at most 255 addresses, and only as many as fit in one frame (keepalived moves the
        rest to the excluded addresses, which are then never advertised). With a 1500-byte MTU that is 89
        IPv6 addresses; any IPv4 count up to 255 fits."""
        count = sum(1 for vip in inst.virtual_ipaddress if vip.address.version == family)
        room = 255 if family == 4 else (1500 - 14 - 40 - 8) // 16
        if count <= room:
            return
        where = inst.virtual_ipaddress[room].locs.get("address") or inst.locs.get("virtual_ipaddress")
        if count > 255:
            self.err(f"({inst.name}) {count} virtual addresses: an advert carries at most 255 (keepalived moves the "
                     "rest to virtual_ipaddress_excluded); put them there", where)
        else:
            self.warn(f"({inst.name}) {count} IPv6 virtual addresses do not fit in one advert at MTU 1500 (at most "
                      f"{room}); keepalived advertises the first ones only", where)

    def strict_instance(self, inst: m.VrrpInstance, family: int) -> None:
        """vrrp_strict (or strict_mode): keepalived's RFC-compliance rules for one instance.

        keepalived rejects unicast; it resets the rest with a log line, which we report as warnings. It drops
        authentication silently, which makes its adverts unacceptable to peers that authenticate: an error
        here. Accept mode (the iptables rules keepalived adds without it) is out of lvsconsole's scope.
        """
        name = inst.name
        where = inst.locs.get("name")
        if inst.unicast_peer or "unicast_peer" in inst.locs:
            self.err(f"({name}) unicast_peer is not allowed under vrrp_strict (VRRP is multicast): keepalived "
                     "rejects the instance", inst.locs.get("unicast_peer"))
        if inst.authentication is not None:
            self.err(f"({name}) authentication is not allowed under vrrp_strict: keepalived would drop it and send "
                     "unauthenticated adverts, which peers that authenticate ignore", inst.locs.get("authentication"))
        if inst.state == "MASTER" and inst.priority != 255 and "state" in inst.locs:
            self.warn(f"({name}) under vrrp_strict state MASTER must match being the address owner (priority 255): "
                      "it starts as BACKUP (as keepalived does)", inst.locs.get("state"))
        if inst.preempt_delay > 0:
            self.warn(f"({name}) preempt_delay is incompatible with vrrp_strict and is ignored (as keepalived does)",
                      inst.locs.get("preempt_delay"))
        if inst.accept and inst.version == 2 and inst.priority != 255:
            self.warn(f"({name}) accept mode with VRRPv2 does not comply with RFC 3768 and is reset under "
                      "vrrp_strict (as keepalived does)", inst.locs.get("accept"))
        resets = {
            "garp_lower_prio_repeat": lambda a: bool(a) and a[0] not in ("0",),
            "garp_lower_prio_delay": lambda a: bool(a) and a[0] not in ("0", "0.0"),
            "lower_prio_no_advert": lambda a: bool(a) and a[0].lower() in ("false", "no", "off", "0"),
            "higher_prio_send_advert": lambda a: not a or a[0].lower() not in ("false", "no", "off", "0"),
            "skip_check_adv_addr": lambda a: not a or a[0].lower() not in ("false", "no", "off", "0"),
        }
        for keyword, args in inst.extra:
            check = resets.get(keyword)
            if check is not None and check(args):
                text = " ".join((keyword, *args))
                self.warn(f"({name}) '{text}' is reset under vrrp_strict (as keepalived does)", where)
        if inst.use_vmac is not None and "vmac_xmit_base" in (k for k, _ in inst.extra):
            self.warn(f"({name}) vmac_xmit_base is incompatible with vrrp_strict and is reset (as keepalived does)",
                      where)
        vips = inst.virtual_ipaddress
        if family == 6 and vips and not inst.unicast_peer:
            first = vips[0].address.ip
            if isinstance(first, IPv6Address) and not first.is_link_local:
                self.warn(f"({name}) under vrrp_strict the first IPv6 VIP must be link-local (RFC 5798 §5.2.9), not "
                          f"{first}", vips[0].locs.get("address"))

    def sync_groups(self) -> None:
        names = {inst.name for inst in self.config.instances}
        member_of: dict[str, str] = {}
        for group in self.config.sync_groups:
            for i, member in enumerate(group.group):
                loc = group.locs.get(f"group.{i}")
                if member not in names:
                    self.err(f"vrrp_sync_group {group.name}: no vrrp_instance named '{member}'", loc)
                elif member in member_of and member_of[member] != group.name:
                    self.err(f"vrrp_instance {member} is already in vrrp_sync_group {member_of[member]}", loc)
                else:
                    member_of[member] = group.name
            if len(group.group) == 1:
                self.warn(f"vrrp_sync_group {group.name} has only one instance; a sync group of one does "
                          "nothing", group.locs.get("name"))
            for inst_name in group.group:
                inst = self.config.instance(inst_name)
                if inst is None:
                    continue
                weighted = [t for t in (*inst.track_script, *inst.track_interface, *inst.track_file) if t.weight]
                if weighted and not any(k == "sync_group_tracking_weight" for k, _ in group.extra):
                    self.warn(
                        f"({inst_name}) is in sync group {group.name}: its weighted tracking is ignored "
                        "(keepalived sets the weights to 0 unless sync_group_tracking_weight is given)",
                        weighted[0].locs.get("name"),
                    )

    def tracking_references(self) -> None:
        c = self.config
        scripts = {sc.name for sc in c.vrrp_scripts}
        files = {tf.name for tf in c.track_files}
        holders: list[tuple[str, tuple[m.TrackRef, ...], tuple[m.TrackRef, ...]]] = []
        holders += [(f"({i.name})", i.track_script, i.track_file) for i in c.instances]
        holders += [(f"vrrp_sync_group {g.name}", g.track_script, g.track_file) for g in c.sync_groups]
        for owner, track_scripts, track_files in holders:
            for ref in track_scripts:
                if ref.name not in scripts:
                    self.err(f"{owner} track_script: no vrrp_script named '{ref.name}'", ref.locs.get("name"))
            for ref in track_files:
                if ref.name not in files:
                    self.err(f"{owner} track_file: no track_file named '{ref.name}'", ref.locs.get("name"))
        # vrrp_track_process and track_process are kept as raw words (no locations): the holder's name is the place
        processes = {words[0] for key, words in c.extra if key == "vrrp_track_process" and words}
        for key, words in c.extra:
            if key == "vrrp_track_process":
                try:
                    parse_track_process(words)
                except ValueError as exc:
                    self.err(str(exc), None)
        raw_holders = [(f"({i.name})", i.extra, i.locs.get("name")) for i in c.instances]
        raw_holders += [(f"vrrp_sync_group {g.name}", g.extra, g.locs.get("name")) for g in c.sync_groups]
        for owner, extra, where in raw_holders:
            for key, words in extra:
                if key != "track_process":
                    continue
                for name, *rest in _raw_statements(words):
                    if name not in processes:
                        self.err(f"{owner} track_process: no vrrp_track_process named '{name}'", where)
                    elif rest and not _weight_words(rest):
                        self.err(f"{owner} track_process {name}: expected 'weight N [reverse|noreverse]' with N in "
                                 f"-254..254, not '{' '.join(rest)}'", where)
        for file_checks in _VS_FILE_CHECKS.each(c.virtual_servers):
            for checker in file_checks:
                if checker.track_file not in files:
                    self.err(f"FILE_CHECK: no track_file named '{checker.track_file}'", checker.locs.get("track_file"))

    def sync_daemon(self) -> None:
        peer = self.config.global_defs.lvs_sync_peer_http
        if peer is not None:
            try:
                parse_listen_address(peer)
            except ValueError as exc:
                self.err(f"lvs_sync_peer_http: {exc}", self.config.global_defs.locs.get("lvs_sync_peer_http"))
        daemon = self.config.global_defs.lvs_sync_daemon
        if daemon is None:
            return
        locs = self.config.global_defs.locs
        loc = locs.get("lvs_sync_daemon.instance") or locs.get("lvs_sync_daemon")
        if daemon.instance is not None and self.config.instance(daemon.instance) is None:
            self.err(f"lvs_sync_daemon: no vrrp_instance named '{daemon.instance}'", loc)

    # ------------------------------------------------------------------------------ LVS

    def virtual_servers(self) -> None:
        c = self.config
        groups = {g.name: g for g in c.virtual_server_groups}
        vips: dict[IPv4Address | IPv6Address, str] = {}
        for inst in c.instances:
            for vip in inst.virtual_ipaddress + inst.virtual_ipaddress_excluded:
                vips[vip.address.ip] = inst.name
        for group in c.virtual_server_groups:
            if not group.entries:
                self.warn(f"virtual_server_group {group.name} has no entries", group.locs.get("name"))
        # a virtual server's findings depend on it, the VIPs, the group names and the host: kept while those stay
        memo = VS_FINDINGS.start((frozenset(vips.items()), frozenset(groups), self.check_host),
                                 self._local_cache if self.check_host else None)
        for vs in c.virtual_servers:
            found = memo.get(vs)
            if found is None:
                mark, unsure = len(self.out), self._unsure_binds
                self._virtual_server(vs, groups, vips)
                if self._unsure_binds == unsure:
                    memo.put(vs, tuple(self.out[mark:]))
            else:
                self.out.extend(found)

    def _virtual_server(self, vs: m.VirtualServer, groups: dict[str, m.VirtualServerGroup],
                        vips: dict[IPv4Address | IPv6Address, str]) -> None:
        loc = vs.locs.get("key")
        label = vs.key
        if vs.group is not None and vs.group not in groups:
            self.err(f"virtual_server group {vs.group}: no virtual_server_group named '{vs.group}'",
                     vs.locs.get("group", loc))
        if vs.address is not None and vs.port in (None, 0) and vs.persistence_timeout is None:
            self.err(f"virtual_server {label} has no port: a port-0 service needs persistence_timeout", loc)
        if vs.persistence_granularity is not None and vs.persistence_timeout is None:
            self.warn(f"virtual_server {label}: persistence_granularity has no effect without "
                      "persistence_timeout", vs.locs.get("persistence_granularity"))
        if "ops" in vs.sched_flags and vs.protocol != "UDP" and vs.fwmark is None:
            self.warn(f"virtual_server {label}: ops (one-packet scheduling) only applies to UDP",
                      vs.locs.get("sched_flags"))
        if vs.persistence_timeout is not None and "ops" in vs.sched_flags:
            self.warn(f"virtual_server {label}: persistence and ops together pin each packet's client, "
                      "not its connection", vs.locs.get("persistence_timeout"))
        if not vs.real_servers and vs.sorry_server is None:
            self.warn(f"virtual_server {label} has no real_server (keepalived ignores it)", loc)
        total = sum(rs.weight for rs in vs.real_servers)
        if vs.real_servers and vs.quorum > total:
            self.warn(f"virtual_server {label}: quorum {vs.quorum} exceeds the total weight {total}, "
                      "so quorum can never be reached", vs.locs.get("quorum"))
        if vs.min_healthy is not None and vs.real_servers and vs.min_healthy.required(len(vs.real_servers)) > len(
                vs.real_servers):
            self.warn(f"virtual_server {label}: min_healthy {vs.min_healthy} exceeds its "
                      f"{len(vs.real_servers)} real servers, so checks can never depool one",
                      vs.locs.get("min_healthy"))
        if vs.hysteresis and vs.hysteresis >= vs.quorum:
            self.warn(f"virtual_server {label}: hysteresis {vs.hysteresis} >= quorum {vs.quorum}",
                      vs.locs.get("hysteresis"))
        vs_family = vs.address.version if vs.address is not None else None
        for rs in vs.real_servers:
            rs_loc = rs.locs.get("address")
            method = rs.lvs_method or vs.lvs_method
            if vs_family is not None and rs.address.version != vs_family and method.kind != "TUN":
                self.err(f"real_server {rs.address} is not of the address family of virtual_server {label}; "
                         "only TUN can mix families", rs_loc)
            if rs.address in vips:
                self.warn(
                    f"real_server {rs.address} is a VIP of ({vips[rs.address]}): the director would "
                    "forward to itself (the LVS-DR trap; the VIP belongs on the real servers' lo)",
                    rs_loc,
                )
            elif rs.address.is_loopback or (self.check_host and self._is_local(rs.address)):
                self.warn(f"real_server {rs.address} is a local address of this director: traffic would be "
                          "forwarded to the director itself", rs_loc)
            if rs.lthreshold and rs.uthreshold and rs.lthreshold > rs.uthreshold:
                self.err(f"real_server {rs.address}: lthreshold {rs.lthreshold} > uthreshold {rs.uthreshold}",
                         rs.locs.get("lthreshold"))

    def _is_local(self, address: IPv4Address | IPv6Address) -> bool:
        """An address is local when the kernel lets us bind to it (no freebind): cheap and exact."""
        cached = self._local_cache.get(address)
        if cached is not None:
            return cached
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.bind((str(address), 0))
        except OSError as exc:
            if exc.errno not in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EINVAL):
                self._unsure_binds += 1
                return True  # not a clear no (out of sockets …): said local, asked again next time
            self._local_cache[address] = False
            return False
        self._local_cache[address] = True
        return True

    # ------------------------------------------------------------------------------ scripts

    def scripts(self) -> None:
        g = self.config.global_defs
        secure = g.enable_script_security
        seen: set[tuple[str, str | None, str | None]] = set()
        no_default = run_user(None, None, secure) if not g.script_user else None
        warned_default = False
        for owner, script, own_user, loc in self._all_scripts():
            user, group = configured_user(own_user, g.script_user)
            if user is None and isinstance(no_default, Refusal):
                if not warned_default:  # one cause for every script without a user: said once, where it is set
                    warned_default = True
                    self.warn(f"enable_script_security: {no_default}", g.locs.get("enable_script_security"))
                user = "root"  # judge the file as keepalived would once a script_user exists: as root
            if not script.path or (script.path, user, group) in seen:
                continue
            seen.add((script.path, user, group))
            verdict = vet(script.argv, user, secure, group=group)
            if isinstance(verdict, Refusal):
                # A bare name and the run user depend on the PATH and the user database of the host that
                # runs the config, which need not be this one: those stay warnings even under security.
                if verdict.code == "bad-name" or (secure and verdict.code not in USER_CODES and "/" in script.path):
                    suffix = " (enable_script_security disables it)" if secure else ""
                    self.err(f"{owner}: {verdict}{suffix}", loc)
                else:
                    self.warn(f"{owner}: {verdict}", loc)
                continue
            unsafe = unsafe_component(verdict.path) if not secure and runs_as_root(verdict.run_as) else None
            if unsafe is not None:  # keepalived: "SECURITY VIOLATION - scripts are being executed but …"
                self.warn(f"{owner}: script {verdict.path} is unsafe: {unsafe}; keepalived runs it anyway as "
                          "enable_script_security is not set", loc)

    def _all_scripts(self) -> Iterator[tuple[str, m.Script, tuple[str | None, ...], Location | None]]:
        """Every script: who has it, the script, its own ``user [group]`` (or nothing) and where it is."""
        c = self.config
        notify_keys = ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify")
        for inst in c.instances:
            for key in notify_keys:
                script = getattr(inst, key)
                if script is not None:
                    yield f"({inst.name}) {key}", script, (script.user, script.group), inst.locs.get(key)
        for group in c.sync_groups:
            for key in notify_keys:
                script = getattr(group, key)
                if script is not None:
                    yield (f"vrrp_sync_group {group.name} {key}", script, (script.user, script.group),
                           group.locs.get(key))
        for sc in c.vrrp_scripts:
            if sc.script is not None:
                own = sc.user or (sc.script.user, sc.script.group)
                yield f"vrrp_script {sc.name}", sc.script, tuple(own), sc.locs.get("script")
        for found in _VS_SCRIPTS.each(c.virtual_servers):
            yield from found


def _vs_scripts(vs: m.VirtualServer) -> tuple[tuple[str, m.Script, tuple[str | None, ...], Location | None], ...]:
    """The scripts of one virtual server, as ``Validator._all_scripts`` lists them."""
    out: list[tuple[str, m.Script, tuple[str | None, ...], Location | None]] = []
    for key in ("quorum_up", "quorum_down"):
        script = getattr(vs, key)
        if script is not None:
            out.append((f"virtual_server {vs.key} {key}", script, (script.user, script.group), vs.locs.get(key)))
    for rs in vs.real_servers:
        for key in ("notify_up", "notify_down"):
            script = getattr(rs, key)
            if script is not None:
                out.append((f"real_server {rs.address} {key}", script, (script.user, script.group), rs.locs.get(key)))
        for checker in rs.checkers:
            if isinstance(checker, m.MiscCheck) and checker.misc_path is not None:
                out.append((f"real_server {rs.address} MISC_CHECK", checker.misc_path, tuple(checker.user),
                            checker.locs.get("misc_path")))
    return tuple(out)


def _vs_file_checks(vs: m.VirtualServer) -> tuple[m.FileCheck, ...]:
    return tuple(checker for rs in vs.real_servers for checker in rs.checkers
                 if isinstance(checker, m.FileCheck) and checker.track_file)


# what is listed from each virtual server is kept per model object: a reload shares most of them
_VS_SCRIPTS = PerObject(_vs_scripts, key=lambda vs: vs.key)
_VS_FILE_CHECKS = PerObject(_vs_file_checks, key=lambda vs: vs.key)


def _interface_exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


def validate(config: m.Config, *, strict: bool = False, check_host: bool = True) -> list[Diagnostic]:
    return Validator(config, strict=strict, check_host=check_host).run()
