"""Config model → canonical keepalived.conf text.

The output parses back to an equal model (parse(render(c)) == c). Values equal to the default that
the builder would fill in are left out, so a rendered config reads like one an operator would write.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

from lvsconsole.config import model as m

INDENT = "    "
_SAFE = re.compile(r"[A-Za-z0-9_./:@%+=,\-\[\]*?]+")  # used with fullmatch: "$" would allow a final \n
# Bare words the lexer would act on at the start of a line: include directives, @conditionals, ~SEQ.
_DIRECTIVES = frozenset({"include", "includer", "includem", "includew", "includeb", "includea"})
# What the lexer would expand inside quotes too: $NAME and ${NAME}; and characters that need an escape.
_NEEDS_ESCAPE = re.compile(r'[\\"\x00-\x1f\x7f]|\$(?=[A-Za-z_{])')
_ESCAPE = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _ESCAPE.get(char) or f"\\x{ord(char):02x}"


def quote(text: str) -> str:
    """A word as keepalived's lexer reads it back: bare when safe, else double-quoted with escapes.

    Quoted text is taken literally except for escapes, and except for parameter references, which the
    lexer expands before it splits words: a `$` that would start one is written as `\\x24`.
    """
    if text and _SAFE.fullmatch(text) and text[0] not in "@~" and text not in _DIRECTIVES:
        return text
    return '"' + _NEEDS_ESCAPE.sub(_escape, text) + '"'


def number(value: float) -> str:
    if value == int(value):
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _addr(address: object) -> str:
    return str(address)


def _iface(address: m.IPInterface) -> str:
    if address.network.prefixlen == address.max_prefixlen:
        return str(address.ip)
    return str(address)


def script(value: m.Script) -> str:
    if len(value.argv) == 1 and _SAFE.fullmatch(value.argv[0]):
        text = value.argv[0]
    else:
        text = quote(shlex.join(value.argv))
        if text[0] != '"':
            text = f'"{text}"'
    if value.user is not None:
        text += f" {quote(value.user)}"
        if value.group is not None:
            text += f" {quote(value.group)}"
    return text


def command(value: m.Script) -> str:
    text = quote(shlex.join(value.argv))
    return text if text.startswith('"') else f'"{text}"'


def method(value: m.LvsMethod) -> str:
    parts: list[str] = [value.kind]
    if value.tunnel_type is not None:
        parts += ["type", value.tunnel_type]
    if value.tunnel_port is not None:
        parts += ["port", str(value.tunnel_port)]
    if value.tunnel_csum is not None:
        parts.append(value.tunnel_csum)
    return " ".join(parts)


def _bool(value: bool) -> str:
    return "true" if value else "false"


class Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0

    def line(self, *words: str) -> None:
        self.lines.append(INDENT * self.depth + " ".join(w for w in words if w != ""))

    def open(self, *words: str) -> None:
        if self.depth == 0 and self.lines:
            self.lines.append("")
        self.line(*words, "{")
        self.depth += 1

    def close(self) -> None:
        self.depth -= 1
        self.line("}")

    def extra(self, extra: m.Extra) -> None:
        for keyword, args in extra:
            self.raw(keyword, args)

    def raw(self, keyword: str, args: tuple[str, ...]) -> None:
        words = [keyword]
        i = 0
        while i < len(args) and args[i] != "{":
            words.append(quote(args[i]))
            i += 1
        if i == len(args):
            self.line(*words)
            return
        self.open(*words)
        current: list[str] = []
        depth_here = self.depth
        for word in args[i + 1 :]:
            if word == "{":
                self.open(*current)
                current = []
            elif word == ";":
                if current:
                    self.line(*current)
                current = []
            elif word == "}":
                if current:
                    self.line(*current)
                current = []
                self.close()
            else:
                current.append(quote(word))
        while self.depth >= depth_here:
            self.close()

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


# ---------------------------------------------------------------------------------------------- blocks


def render_global(w: Writer, g: m.GlobalDefs) -> None:
    default = m.GlobalDefs()
    if g == default:
        return
    w.open("global_defs")
    if g.router_id is not None:
        w.line("router_id", quote(g.router_id))
    if g.notification_email:
        w.open("notification_email")
        for email in g.notification_email:
            w.line(quote(email))
        w.close()
    if g.notification_email_from is not None:
        w.line("notification_email_from", quote(g.notification_email_from))
    if g.smtp_server is not None:
        port = "" if g.smtp_server.port is None else str(g.smtp_server.port)
        w.line("smtp_server", _addr(g.smtp_server.address), port)
    if g.smtp_helo_name is not None:
        w.line("smtp_helo_name", quote(g.smtp_helo_name))
    if g.smtp_connect_timeout != default.smtp_connect_timeout:
        w.line("smtp_connect_timeout", number(g.smtp_connect_timeout))
    if g.smtp_alert is not None:
        w.line("smtp_alert", _bool(g.smtp_alert))
    if g.script_user:
        w.line("script_user", *map(quote, g.script_user))
    if g.enable_script_security:
        w.line("enable_script_security")
    if g.vrrp_version != default.vrrp_version:
        w.line("vrrp_version", str(g.vrrp_version))
    if g.vrrp_strict:
        w.line("vrrp_strict")
    for key in ("vrrp_mcast_group4", "vrrp_mcast_group6"):
        if getattr(g, key) != getattr(default, key):
            w.line(key, _addr(getattr(g, key)))
    for key in ("vrrp_garp_master_delay", "vrrp_garp_master_refresh", "vrrp_garp_interval", "vrrp_gna_interval"):
        if getattr(g, key) != getattr(default, key):
            w.line(key, number(getattr(g, key)))
    for key in ("vrrp_garp_master_repeat", "vrrp_garp_master_refresh_repeat"):
        if getattr(g, key) != getattr(default, key):
            w.line(key, str(getattr(g, key)))
    for key in ("vrrp_skip_check_adv_addr", "vrrp_check_unicast_src", "lvs_flush"):
        if getattr(g, key):
            w.line(key)
    if g.default_interface is not None:
        w.line("default_interface", quote(g.default_interface))
    if g.lvs_sync_daemon is not None:
        d = g.lvs_sync_daemon
        words = ["lvs_sync_daemon", quote(d.interface)]
        if d.instance is not None:
            words += [quote(d.instance)]
        for key in ("syncid", "maxlen", "ttl"):
            val = getattr(d, key)
            if val is not None:
                words += ["id" if key == "syncid" else key, str(val)]
        if d.port != 8848:
            words += ["port", str(d.port)]
        if d.group is not None:
            words += ["group", _addr(d.group)]
        w.line(*words)
    if g.lvs_flush_on_stop:
        w.line("lvs_flush_on_stop", "" if g.lvs_flush_on_stop == "ALL" else "VS")
    if g.lvs_timeouts is not None:
        words = ["lvs_timeouts"]
        for key in ("tcp", "tcpfin", "udp"):
            val = getattr(g.lvs_timeouts, key)
            if val is not None:
                words += [key, str(val)]
        w.line(*words)
    if g.checker_log_all_failures:
        w.line("checker_log_all_failures", "true")
    if g.drain_timeout != default.drain_timeout:
        w.line("drain_timeout", number(g.drain_timeout))
    if g.drain_sample_rate != default.drain_sample_rate:
        w.line("drain_sample_rate", number(g.drain_sample_rate))
    if g.lvs_sync_peer_http is not None:
        w.line("lvs_sync_peer_http", quote(g.lvs_sync_peer_http))
    if g.ipvs_drift != default.ipvs_drift:
        w.line("ipvs_drift", g.ipvs_drift)
    w.extra(g.extra)
    w.close()


def _track_refs(w: Writer, keyword: str, refs: tuple[m.TrackRef, ...]) -> None:
    if not refs:
        return
    w.open(keyword)
    for ref in refs:
        words = [quote(ref.name)]
        if ref.weight is not None:
            words += ["weight", str(ref.weight)]
        if ref.reverse:
            words.append("reverse")
        w.line(*words)
    w.close()


def _addresses(w: Writer, keyword: str, addrs: tuple[m.VirtualAddress, ...]) -> None:
    if not addrs:
        return
    w.open(keyword)
    for a in addrs:
        words = [_iface(a.address)]
        if a.brd is not None:
            words += ["brd", _addr(a.brd)]
        if a.dev is not None:
            words += ["dev", quote(a.dev)]
        if a.scope is not None:
            words += ["scope", a.scope]
        if a.label is not None:
            words += ["label", quote(a.label)]
        if a.peer is not None:
            words += ["peer", str(a.peer)]
        words += [quote(f) for f in a.flags]
        w.line(*words)
    w.close()


def _notify(w: Writer, obj: m.VrrpInstance | m.SyncGroup) -> None:
    for key in ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify"):
        val = getattr(obj, key)
        if val is not None:
            w.line(key, script(val))
    if obj.smtp_alert is not None:
        w.line("smtp_alert", _bool(obj.smtp_alert))


def default_version(inst: m.VrrpInstance, g: m.GlobalDefs) -> int:
    """The version the builder gives an instance that does not say: v3 for IPv6, else the global one."""
    from lvsconsole.config.build import instance_family

    return 3 if instance_family(inst) == 6 else g.vrrp_version


def render_instance(w: Writer, inst: m.VrrpInstance, g: m.GlobalDefs) -> None:
    w.open("vrrp_instance", quote(inst.name))
    w.line("state", inst.state)
    if inst.interface is not None:
        w.line("interface", quote(inst.interface))
    w.line("virtual_router_id", str(inst.virtual_router_id))
    w.line("priority", str(inst.priority))
    if inst.advert_int != 1.0:
        w.line("advert_int", number(inst.advert_int))
    if inst.version != default_version(inst, g):
        w.line("version", str(inst.version))
    if inst.nopreempt:
        w.line("nopreempt")
    if inst.preempt_delay:
        w.line("preempt_delay", number(inst.preempt_delay))
    if inst.dont_track_primary:
        w.line("dont_track_primary")
    if inst.mcast_src_ip is not None:
        w.line("mcast_src_ip", _addr(inst.mcast_src_ip))
    if inst.unicast_src_ip is not None:
        w.line("unicast_src_ip", _addr(inst.unicast_src_ip))
    if inst.unicast_peer:
        w.open("unicast_peer")
        for peer in inst.unicast_peer:
            words = [_addr(peer.address)]
            if peer.min_ttl is not None:
                words += ["min_ttl", str(peer.min_ttl)]
            if peer.max_ttl is not None:
                words += ["max_ttl", str(peer.max_ttl)]
            w.line(*words)
        w.close()
    if inst.authentication is not None:
        w.open("authentication")
        w.line("auth_type", inst.authentication.auth_type)
        if inst.authentication.auth_pass:
            w.line("auth_pass", quote(inst.authentication.auth_pass))
        w.close()
    _addresses(w, "virtual_ipaddress", inst.virtual_ipaddress)
    _addresses(w, "virtual_ipaddress_excluded", inst.virtual_ipaddress_excluded)
    for keyword, routes in (("virtual_routes", inst.virtual_routes), ("virtual_rules", inst.virtual_rules)):
        if routes:
            w.open(keyword)
            for route in routes:
                w.line(*map(quote, route))
            w.close()
    _track_refs(w, "track_interface", inst.track_interface)
    _track_refs(w, "track_script", inst.track_script)
    _track_refs(w, "track_file", inst.track_file)
    _notify(w, inst)
    for key in ("garp_master_delay", "garp_master_refresh"):
        val = getattr(inst, key)
        if val is not None:
            w.line(key, number(val))
    for key in ("garp_master_repeat", "garp_master_refresh_repeat"):
        val = getattr(inst, key)
        if val is not None:
            w.line(key, str(val))
    if inst.use_vmac is not None:
        w.line("use_vmac", *map(quote, inst.use_vmac))
    if inst.accept is not None:
        w.line("accept" if inst.accept else "no_accept")
    if inst.strict_mode is not None:
        w.line("strict_mode", _bool(inst.strict_mode))
    w.extra(inst.extra)
    w.close()


def render_sync_group(w: Writer, group: m.SyncGroup) -> None:
    w.open("vrrp_sync_group", quote(group.name))
    w.open("group")
    for name in group.group:
        w.line(quote(name))
    w.close()
    _track_refs(w, "track_interface", group.track_interface)
    _track_refs(w, "track_script", group.track_script)
    _track_refs(w, "track_file", group.track_file)
    _notify(w, group)
    w.extra(group.extra)
    w.close()


def render_vrrp_script(w: Writer, sc: m.VrrpScript) -> None:
    w.open("vrrp_script", quote(sc.name))
    if sc.script is not None:
        w.line("script", command(sc.script))
    if sc.interval != 1.0:
        w.line("interval", number(sc.interval))
    if sc.timeout is not None:
        w.line("timeout", number(sc.timeout))
    if sc.weight or sc.weight_reverse:
        w.line("weight", str(sc.weight), "reverse" if sc.weight_reverse else "")
    if sc.rise != 1:
        w.line("rise", str(sc.rise))
    if sc.fall != 1:
        w.line("fall", str(sc.fall))
    if sc.user:
        w.line("user", *map(quote, sc.user))
    if sc.init_fail:
        w.line("init_fail")
    w.close()


def render_track_file(w: Writer, tf: m.TrackFile) -> None:
    w.open("track_file", quote(tf.name))
    if tf.file is not None:
        w.line("file", quote(tf.file))
    if tf.weight != 1 or tf.weight_reverse:
        w.line("weight", str(tf.weight), "reverse" if tf.weight_reverse else "")
    if tf.init_file is not None:
        w.line("init_file", *map(quote, tf.init_file))
    w.close()


def render_vsg(w: Writer, group: m.VirtualServerGroup) -> None:
    w.open("virtual_server_group", quote(group.name))
    for entry in group.entries:
        if entry.fwmark is not None:
            w.line("fwmark", str(entry.fwmark), entry.family or "")
            continue
        text = _addr(entry.first)
        if entry.last is not None and entry.last != entry.first:
            text += f"-{entry.last}"
        w.line(text, "" if entry.port is None else str(entry.port))
    w.close()


# ---------------------------------------------------------------------------------------------- LVS


def render_virtual_server(w: Writer, vs: m.VirtualServer) -> None:
    if vs.group is not None:
        w.open("virtual_server", "group", quote(vs.group))
    elif vs.fwmark is not None:
        w.open("virtual_server", "fwmark", str(vs.fwmark))
    else:
        w.open("virtual_server", _addr(vs.address), "" if vs.port is None else str(vs.port))
    if vs.delay_loop != 60.0:
        w.line("delay_loop", number(vs.delay_loop))
    w.line("lvs_sched", vs.lvs_sched)
    w.line("lvs_method", method(vs.lvs_method))
    for flag in vs.sched_flags:
        w.line(flag)
    if vs.fwmark is None:
        w.line("protocol", vs.protocol)
    if vs.persistence_timeout is not None:
        w.line("persistence_timeout", str(vs.persistence_timeout))
    if vs.persistence_granularity is not None:
        w.line("persistence_granularity", _addr(vs.persistence_granularity))
    if vs.persistence_engine is not None:
        w.line("persistence_engine", quote(vs.persistence_engine))
    if vs.connect_timeout != 5.0:
        w.line("connect_timeout", number(vs.connect_timeout))
    if vs.retry is not None:
        w.line("retry", str(vs.retry))
    for key in ("delay_before_retry", "warmup", "slow_start"):
        val = getattr(vs, key)
        if val is not None:
            w.line(key, number(val))
    for key in ("alpha", "omega", "ha_suspend"):
        if getattr(vs, key):
            w.line(key)
    if vs.quorum != 1:
        w.line("quorum", str(vs.quorum))
    if vs.hysteresis:
        w.line("hysteresis", str(vs.hysteresis))
    for key in ("quorum_up", "quorum_down"):
        val = getattr(vs, key)
        if val is not None:
            w.line(key, script(val))
    if vs.min_healthy is not None:
        w.line("min_healthy", str(vs.min_healthy))
    if vs.inhibit_on_failure:
        w.line("inhibit_on_failure")
    if vs.sorry_server is not None:
        w.line("sorry_server", _addr(vs.sorry_server.address),
               "" if vs.sorry_server.port is None else str(vs.sorry_server.port))
    if vs.sorry_server_inhibit:
        w.line("sorry_server_inhibit")
    if vs.sorry_server_lvs_method is not None:
        w.line("sorry_server_lvs_method", method(vs.sorry_server_lvs_method))
    if vs.virtualhost is not None:
        w.line("virtualhost", quote(vs.virtualhost))
    if vs.smtp_alert is not None:
        w.line("smtp_alert", _bool(vs.smtp_alert))
    if vs.ip_family is not None:
        w.line("ip_family", vs.ip_family)
    w.extra(vs.extra)
    for rs in vs.real_servers:
        render_real_server(w, rs, vs)
    w.close()


def render_real_server(w: Writer, rs: m.RealServer, vs: m.VirtualServer) -> None:
    port = "" if rs.port is None else str(rs.port)
    w.open("real_server", _addr(rs.address), port)
    if rs.weight != 1:
        w.line("weight", str(rs.weight))
    if rs.lvs_method is not None:
        w.line("lvs_method", method(rs.lvs_method))
    if rs.inhibit_on_failure:
        w.line("inhibit_on_failure")
    for key in ("notify_up", "notify_down"):
        val = getattr(rs, key)
        if val is not None:
            w.line(key, script(val))
    for key in ("uthreshold", "lthreshold"):
        val = getattr(rs, key)
        if val is not None:
            w.line(key, str(val))
    if rs.smtp_alert is not None:
        w.line("smtp_alert", _bool(rs.smtp_alert))
    if rs.virtualhost is not None:
        w.line("virtualhost", quote(rs.virtualhost))
    if rs.alpha:
        w.line("alpha")
    if rs.retry is not None:
        w.line("retry", str(rs.retry))
    for key in ("connect_timeout", "delay_before_retry", "warmup", "delay_loop", "slow_start"):
        val = getattr(rs, key)
        if val is not None:
            w.line(key, number(val))
    w.extra(rs.extra)
    for checker in rs.checkers:
        render_checker(w, checker, rs, vs)
    w.close()


def _first(*candidates: object) -> object:
    for candidate in candidates:
        if candidate is not None:
            return candidate
    return None


def inherited_timing(
    kind: str, rs: m.RealServer, vs: m.VirtualServer, own_delay_loop: float | None = None
) -> dict[str, object]:
    """What a checker gets when it does not say: the builder's inheritance rule, mirrored.

    A DNS_CHECK's default delay_before_retry is its own delay_loop (always rendered when it differs
    from the inherited one), not the inherited delay_loop.
    """
    delay_loop = _first(rs.delay_loop, vs.delay_loop)
    default_dbr = {"HTTP_GET": 3.0, "SSL_GET": 3.0, "DNS_CHECK": _first(own_delay_loop, delay_loop)}.get(kind, 1.0)
    return {
        "delay_loop": delay_loop,
        "retry": _first(rs.retry, vs.retry, {"MISC_CHECK": 0, "DNS_CHECK": 3}.get(kind, 1)),
        "delay_before_retry": _first(rs.delay_before_retry, vs.delay_before_retry, default_dbr),
        "warmup": _first(rs.warmup, vs.warmup),
        "alpha": bool(rs.alpha or vs.alpha),
        "connect_timeout": _first(rs.connect_timeout, vs.connect_timeout),
    }


def render_checker(w: Writer, c: m.Checker, rs: m.RealServer, vs: m.VirtualServer) -> None:
    w.open(c.kind)
    for key in ("connect_ip", "bindto"):
        val = getattr(c, key)
        if val is not None:
            w.line(key, _addr(val))
    for key in ("connect_port", "bind_port", "fwmark"):
        val = getattr(c, key)
        if val is not None:
            w.line(key, str(val))
    if c.bind_if is not None:
        w.line("bind_if", quote(c.bind_if))
    if c.kind not in ("FILE_CHECK", "BFD_CHECK"):
        inherit = inherited_timing(c.kind, rs, vs, c.delay_loop)
        keys = ["delay_loop", "retry", "delay_before_retry", "warmup"]
        if c.kind != "MISC_CHECK":
            keys.append("connect_timeout")
        for key in keys:
            val = getattr(c, key)
            if val != inherit[key] and val is not None:
                w.line(key, str(val) if key == "retry" else number(float(val)))
        if c.alpha != inherit["alpha"]:
            w.line("alpha", _bool(c.alpha))
        if c.log_all_failures:
            w.line("log_all_failures", "true")
        for key in ("rise", "fall"):
            count = getattr(c, key)
            if count is not None:
                w.line(key, str(count))
    if isinstance(c, m.HttpCheck):
        if c.http_protocol != "1.0":
            w.line("http_protocol", c.http_protocol)
        if c.virtualhost is not None:
            w.line("virtualhost", quote(c.virtualhost))
        for key in ("fast_recovery", "enable_sni", "tls_compliant"):
            if getattr(c, key):
                w.line(key, "true")
        if c.sni_name is not None:
            w.line("sni_name", quote(c.sni_name))
        for url in c.urls:
            w.open("url")
            w.line("path", quote(url.path))
            if url.digest is not None:
                w.line("digest", url.digest)
            if url.status_code:
                w.line("status_code", *(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in url.status_code))
            if url.virtualhost is not None:
                w.line("virtualhost", quote(url.virtualhost))
            if url.regex is not None:
                w.line("regex", quote(url.regex))
            if url.regex_no_match:
                w.line("regex_no_match")
            w.extra(url.extra)
            w.close()
    elif isinstance(c, m.MiscCheck):
        if c.misc_path is not None:
            w.line("misc_path", command(c.misc_path))
        if c.misc_timeout is not None:
            w.line("misc_timeout", number(c.misc_timeout))
        if c.misc_dynamic:
            w.line("misc_dynamic")
        if c.user:
            w.line("user", *map(quote, c.user))
    elif isinstance(c, m.SmtpCheck):
        if c.helo_name is not None:
            w.line("helo_name", quote(c.helo_name))
        for host in c.hosts:
            w.open("host")
            for key in ("connect_ip", "bindto"):
                val = getattr(host, key)
                if val is not None:
                    w.line(key, _addr(val))
            for key in ("connect_port", "bind_port", "fwmark"):
                val = getattr(host, key)
                if val is not None:
                    w.line(key, str(val))
            if host.bind_if is not None:
                w.line("bind_if", quote(host.bind_if))
            if host.connect_timeout != 5.0:
                w.line("connect_timeout", number(host.connect_timeout))
            w.extra(host.extra)
            w.close()
    elif isinstance(c, m.DnsCheck):
        if c.type != "SOA":
            w.line("type", c.type)
        if c.name != ".":
            w.line("name", quote(c.name))
    elif isinstance(c, m.UdpCheck):
        if c.payload is not None:
            w.line("payload", c.payload.hex().upper())
        if c.require_reply:
            w.line("require_reply", c.require_reply_pattern or "")
        if c.min_reply_length:
            w.line("min_reply_length", str(c.min_reply_length))
        if c.max_reply_length != 255:
            w.line("max_reply_length", str(c.max_reply_length))
    elif isinstance(c, m.FileCheck):
        w.line("track_file", quote(c.track_file))
        if c.weight != 1 or c.weight_reverse:
            w.line("weight", str(c.weight), "reverse" if c.weight_reverse else "")
    elif isinstance(c, m.BfdCheck):
        if c.name:
            w.line("name", quote(c.name))
        if c.alpha:
            w.line("alpha", "true")
    w.extra(c.extra)
    w.close()


# ---------------------------------------------------------------------------------------------- root


def render(config: m.Config) -> str:
    w = Writer()
    render_global(w, config.global_defs)
    for keyword, args in config.extra:
        w.raw(keyword, args)
    if config.static_ipaddress:
        w.open("static_ipaddress")
        for sa in config.static_ipaddress:
            w.line(_iface(sa.address), *map(quote, sa.options))
        w.close()
    for keyword, lines in (("static_routes", config.static_routes), ("static_rules", config.static_rules)):
        if lines:
            w.open(keyword)
            for line in lines:
                w.line(*map(quote, line.words), *(("track_group", quote(line.track_group)) if line.track_group else ()))
            w.close()
    if config.ssl:
        w.open("SSL")
        w.extra(config.ssl)
        w.close()
    for sc in config.vrrp_scripts:
        render_vrrp_script(w, sc)
    for tf in config.track_files:
        render_track_file(w, tf)
    for group in config.sync_groups:
        render_sync_group(w, group)
    for inst in config.instances:
        render_instance(w, inst, config.global_defs)
    for vsg in config.virtual_server_groups:
        render_vsg(w, vsg)
    for vs in config.virtual_servers:
        render_virtual_server(w, vs)
    return w.text()


def render_lines(config: m.Config) -> Iterable[str]:
    return render(config).splitlines()

