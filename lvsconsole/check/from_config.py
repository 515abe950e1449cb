"""Config model → what the check policy and runner need: virtual-server parameters and checker objects.

:func:`from_config` returns ``(virtual_servers, checkers)``: a :class:`VirtualServerParams` per virtual
server (its real servers and their resolved :class:`CheckParams`) and, per :class:`CheckerRef`, the object
that runs the probe. :func:`build_checks` returns the same plus what the check service needs besides
(checker kinds and targets, FILE_CHECK readers, notify scripts and their users, warnings).

keepalived rules applied here rather than in the checkers:

* Targets: ``connect_ip`` / ``connect_port`` default to the real server's address and port.
* HTTP/SSL ``virtualhost`` is inherited url → checker → real server → virtual server; with
  ``enable_sni`` the SNI name is ``sni_name`` or that virtualhost.
* ``inhibit_on_failure`` on the virtual server is the default of its real servers.
* ``checker_log_all_failures`` (global_defs) turns on every checker's ``log_all_failures``.
* MISC_CHECK: ``misc_timeout`` defaults to the checker's delay_loop; the script runs as the checker's
  ``user``, else global ``script_user``, else as the director itself.
* SMTP_CHECK ``host { }`` blocks (deprecated) each become one more SMTP checker on the same real server,
  inheriting the connection options of the enclosing block; the enclosing block is checked itself only
  when it names a ``connect_ip`` or ``connect_port`` of its own.
* FILE_CHECK's weight defaults to its track_file's weight and direction; it never retries and has no
  alpha. BFD_CHECK is reported as unsupported and gets no checker (the real server is judged by its
  other checkers, as if the BFD session were up).
* Log names follow keepalived's messages: HTTP_GET and SSL_GET log as ``HTTP_CHECK``, PING_CHECK as
  ``ICMP CHECK``.
* A virtual server without real servers is ignored, as keepalived does.

Shared checks (not in keepalived, which probes a real server once per virtual server it serves): when
two checkers would send exactly the same probe (same checker class and every field of the built
checker equal: target address and port, bindings, URLs with their inherited virtualhost, script, …)
under exactly the same :class:`CheckParams` (kind, delay_loop, retry, delay_before_retry, warmup,
timeouts, alpha, rise/fall, …), they get one checker object, which the runner then runs once for all
of them. Checkers that differ in anything, timing included, are not merged. FILE_CHECK is never merged
(its reader keeps per-file state and costs a stat()).
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import ssl
from collections.abc import Container, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lvsconsole.check import _net
from lvsconsole.check.dns import DnsChecker
from lvsconsole.check.file import POLL_INTERVAL, FileChecker
from lvsconsole.check.http import HttpChecker, HttpUrlSpec, make_ssl_context
from lvsconsole.check.misc import MiscChecker, RunAs, ScriptVetting
from lvsconsole.check.ping import PingChecker
from lvsconsole.check.policy import CheckerRef, CheckParams, RealServerParams, RsRef, VirtualServerParams
from lvsconsole.check.runner import Checker
from lvsconsole.check.smtp import DEFAULT_HELO, SmtpChecker
from lvsconsole.check.tcp import TcpChecker
from lvsconsole.check.udp import UdpChecker, parse_reply_pattern
from lvsconsole.config import model as m
from lvsconsole.scripts.report import ScriptReporter
from lvsconsole.scripts.vet import configured_user

__all__ = ["LOG_KINDS", "CheckSetup", "build_checks", "from_config", "same_probe", "script_text"]

LOG_KINDS = {
    "TCP_CHECK": "TCP_CHECK",
    "HTTP_GET": "HTTP_CHECK",
    "SSL_GET": "HTTP_CHECK",
    "MISC_CHECK": "MISC_CHECK",
    "SMTP_CHECK": "SMTP_CHECK",
    "DNS_CHECK": "DNS_CHECK",
    "UDP_CHECK": "UDP_CHECK",
    "PING_CHECK": "ICMP CHECK",
    "FILE_CHECK": "FILE_CHECK",
}
"""Config block name → the name keepalived's log lines use for it (CheckParams.kind)."""

_CONNECTION_FIELDS = ("connect_ip", "connect_port", "bindto", "bind_port", "bind_if", "fwmark", "connect_timeout")


@dataclass(slots=True)
class CheckSetup:
    virtual_servers: list[VirtualServerParams] = field(default_factory=list)
    checkers: dict[CheckerRef, Checker] = field(default_factory=dict)
    kinds: dict[CheckerRef, str] = field(default_factory=dict)
    """The config block name of each checker (HTTP_GET, SSL_GET, …)."""
    targets: dict[CheckerRef, str] = field(default_factory=dict)
    """What each checker probes, for people: ``[10.0.0.2]:80``, a script, a file."""
    file_checkers: dict[CheckerRef, FileChecker] = field(default_factory=dict)
    scripts: dict[str, m.Script] = field(default_factory=dict)
    """Notify / quorum script lines (as in the params) → the Script, for its run-as user."""
    script_user: RunAs | None = None
    """global_defs script_user, for scripts without a user of their own."""
    warnings: list[str] = field(default_factory=list)
    origin: dict[str, str] = field(default_factory=dict)
    """Config key of each virtual server built (``VirtualServer.key``) → its key in the check policy."""
    ssl_context: ssl.SSLContext | None = None
    """The client context SSL_GET checks use (built once, kept for the virtual servers a reload builds)."""
    report_scripts: ScriptReporter | None = None


def script_text(script: m.Script | None) -> str | None:
    """A Script as one command line (quoted so that shlex.split gives back its argv)."""
    if script is None or not script.argv:
        return None
    return shlex.join(script.argv)


def from_config(config: m.Config) -> tuple[list[VirtualServerParams], dict[CheckerRef, Checker]]:
    setup = build_checks(config)
    return setup.virtual_servers, setup.checkers


def build_checks(config: m.Config, *, ssl_context: ssl.SSLContext | None = None,
                 report_scripts: ScriptReporter | None = None, only: Container[str] | None = None) -> CheckSetup:
    """``report_scripts`` receives every MISC_CHECK run (exit, duration, output, or why it was refused).
    ``only``: build just the virtual servers with these config keys (``VirtualServer.key``), for a reload."""
    return _Builder(config, ssl_context, report_scripts).build(only)


def same_probe(old: Checker, new: Checker, params: CheckParams) -> bool:
    """Whether two checkers send the same probe (so a reload may keep the old one and its state)."""
    if isinstance(old, FileChecker) and isinstance(new, FileChecker):
        return (old.path, old.weight, old.reverse, old.name) == (new.path, new.weight, new.reverse, new.name)
    identity = probe_identity(old, params)
    return identity is not None and identity == probe_identity(new, params)


@dataclass(slots=True)
class _Built:
    params: CheckParams
    checker: Checker
    kind: str
    target: str


def probe_identity(checker: Checker, params: CheckParams) -> Hashable | None:
    """What makes two checks the same check (see the module docstring), or None if ``checker`` is not
    to be shared (FILE_CHECK, or a checker whose fields cannot be compared by hashing)."""
    probe: Any = checker  # a dataclass in practice; the Checker protocol does not say so
    if isinstance(checker, FileChecker) or not dataclasses.is_dataclass(probe):
        return None
    values = tuple(getattr(probe, f.name) for f in dataclasses.fields(probe) if f.compare)
    identity = (type(checker), values, params)
    try:
        hash(identity)
    except TypeError:
        return None
    return identity


def _url_flag(extra: m.Extra, name: str, default: bool) -> bool:
    """A boolean a url block sets among its raw keywords (``tls_compliant [<BOOL>]``), else ``default``."""
    for key, args in extra:
        if key == name:
            return not args or args[0].lower() not in ("off", "false", "no", "0")
    return default


class _Builder:
    def __init__(self, config: m.Config, ssl_context: ssl.SSLContext | None,
                 report_scripts: ScriptReporter | None = None) -> None:
        self.config = config
        self._report_scripts = report_scripts
        self.setup = CheckSetup(ssl_context=ssl_context, report_scripts=report_scripts)
        self._probes: dict[Hashable, Checker] = {}
        """One checker object per distinct probe: identical checks of one real server share it."""
        self._ssl_context = ssl_context
        self._ssl_built = ssl_context is not None
        self._track_files = {tf.name: tf for tf in config.track_files}
        g = config.global_defs
        self._log_all = g.checker_log_all_failures
        if g.script_user:
            try:
                group = g.script_user[1] if len(g.script_user) > 1 else None
                self.setup.script_user = RunAs.lookup(g.script_user[0], group)
            except KeyError as exc:
                self.warn(f"script_user: {exc.args[0]}; scripts run as the director's own user")

    def warn(self, text: str) -> None:
        self.setup.warnings.append(text)

    def build(self, only: Container[str] | None = None) -> CheckSetup:
        seen: set[str] = set()
        for vs in self.config.virtual_servers:
            if not vs.real_servers or (only is not None and vs.key not in only):
                continue
            vsp = self.virtual_server(vs)
            if vsp is None:
                continue
            if vsp.key in seen:
                self.warn(f"virtual server {vsp.key} is defined twice; the second definition is ignored")
                continue
            seen.add(vsp.key)
            self.setup.virtual_servers.append(vsp)
            self.setup.origin[vs.key] = vsp.key
        self.setup.ssl_context = self._ssl_context
        return self.setup

    # ---- virtual and real servers --------------------------------------------------------------

    def script(self, script: m.Script | None) -> str | None:
        text = script_text(script)
        if text is not None and script is not None:
            self.setup.scripts.setdefault(text, script)
        return text

    def virtual_server(self, vs: m.VirtualServer) -> VirtualServerParams | None:
        protocol = vs.protocol.lower()
        base = VirtualServerParams(
            address=str(vs.address) if vs.address is not None else None,
            port=vs.port or 0,
            protocol=protocol,
            fwmark=vs.fwmark,
            group=vs.group,
        )
        real_servers: list[RealServerParams] = []
        seen: set[RsRef] = set()
        for rs in vs.real_servers:
            port = 0 if vs.fwmark is not None and vs.group is None else (rs.port or 0)
            rsp = RealServerParams(str(rs.address), port)
            ref = base.ref(rsp)
            if ref in seen:
                self.warn(f"VS {ref.vs}: real server {ref.rs} is duplicated - removing second rs")
                continue
            seen.add(ref)
            built: list[_Built] = []
            for checker in rs.checkers:
                built.extend(self.checker(checker, vs, rs, port, ref))
            for index, b in enumerate(built):
                cref = CheckerRef(ref, index)
                identity = probe_identity(b.checker, b.params)
                if identity is not None:
                    b.checker = self._probes.setdefault(identity, b.checker)
                self.setup.checkers[cref] = b.checker
                self.setup.kinds[cref] = b.kind
                self.setup.targets[cref] = b.target
                if isinstance(b.checker, FileChecker):
                    self.setup.file_checkers[cref] = b.checker
            real_servers.append(
                RealServerParams(
                    str(rs.address),
                    port,
                    weight=rs.weight,
                    inhibit_on_failure=rs.inhibit_on_failure or vs.inhibit_on_failure,
                    notify_up=self.script(rs.notify_up),
                    notify_down=self.script(rs.notify_down),
                    checkers=tuple(b.params for b in built),
                )
            )
        sorry = vs.sorry_server
        try:
            return VirtualServerParams(
                address=base.address,
                port=base.port,
                protocol=protocol,
                fwmark=vs.fwmark,
                group=vs.group,
                real_servers=tuple(real_servers),
                quorum=vs.quorum,
                hysteresis=vs.hysteresis,
                quorum_up=self.script(vs.quorum_up),
                quorum_down=self.script(vs.quorum_down),
                sorry_server=str(sorry.address) if sorry is not None else None,
                sorry_server_port=sorry.port if sorry is not None else None,
                sorry_server_inhibit=vs.sorry_server_inhibit,
                omega=vs.omega,
            )
        except ValueError as exc:
            self.warn(f"virtual server {base.key}: {exc}")
            return None

    # ---- checkers ------------------------------------------------------------------------------

    def params(self, c: m.CheckerBase, kind: str, **extra: object) -> CheckParams:
        fields: dict[str, object] = {
            "kind": LOG_KINDS.get(kind, kind),
            "delay_loop": c.delay_loop,
            "retry": c.retry,
            "delay_before_retry": c.delay_before_retry,
            "warmup": c.warmup,
            "connect_timeout": c.connect_timeout,
            "alpha": c.alpha,
            "log_all_failures": c.log_all_failures or self._log_all,
            "rise": c.rise,
            "fall": c.fall,
        }
        fields.update(extra)
        return CheckParams(**fields)  # type: ignore[arg-type]

    @staticmethod
    def binding(c: m.CheckerBase) -> _net.Binding:
        return _net.Binding(
            bind_to=str(c.bindto) if c.bindto is not None else None,
            bind_port=c.bind_port,
            bind_if=c.bind_if,
            fwmark=c.fwmark,
        )

    @staticmethod
    def target(c: m.CheckerBase, rs: m.RealServer, rs_port: int) -> tuple[str, int]:
        host = str(c.connect_ip) if c.connect_ip is not None else str(rs.address)
        return host, c.connect_port if c.connect_port is not None else rs_port

    def checker(
        self, c: m.Checker, vs: m.VirtualServer, rs: m.RealServer, rs_port: int, ref: RsRef
    ) -> Sequence[_Built]:
        kind = c.kind
        where = f"{kind} of real server {ref.rs} in VS {ref.vs}"
        if isinstance(c, m.BfdCheck):
            self.warn(f"{where}: BFD_CHECK is not supported by lvsconsole; the checker is ignored")
            return ()
        if isinstance(c, m.FileCheck):
            return self.file_check(c, where)
        if isinstance(c, m.MiscCheck):
            return self.misc_check(c, where, f"{ref.rs} in VS {ref.vs}")
        if isinstance(c, m.SmtpCheck):
            return self.smtp_checks(c, rs, rs_port)
        host, port = self.target(c, rs, rs_port)
        pair = _net.format_pair(host, port)
        binding = self.binding(c)
        ct = c.connect_timeout
        checker: Checker
        if isinstance(c, m.HttpCheck):
            return self.http_check(c, vs, rs, host, port, where)
        if isinstance(c, m.DnsCheck):
            checker = DnsChecker(host, port, c.type, c.name, ct, binding)
        elif isinstance(c, m.UdpCheck):
            data, mask = parse_reply_pattern(c.require_reply_pattern) if c.require_reply_pattern else (b"", b"")
            checker = UdpChecker(
                host, port, c.payload, c.require_reply, data, mask, c.min_reply_length, c.max_reply_length, ct, binding
            )
        elif isinstance(c, m.PingCheck):
            checker = PingChecker(host, ct, binding)
            pair = f"[{host}]"
        else:
            checker = TcpChecker(host, port, ct, binding.bind_to, binding.bind_port, binding.bind_if, binding.fwmark)
        return (_Built(self.params(c, kind), checker, kind, pair),)

    def http_check(
        self, c: m.HttpCheck, vs: m.VirtualServer, rs: m.RealServer, host: str, port: int, where: str
    ) -> Sequence[_Built]:
        urls: list[HttpUrlSpec] = []
        for u in c.urls:
            vhost = u.virtualhost or c.virtualhost or rs.virtualhost or vs.virtualhost
            regex: re.Pattern[bytes] | None = None
            if u.regex is not None:
                try:
                    regex = re.compile(u.regex.encode())
                except re.error as exc:
                    self.warn(f"{where}: url {u.path}: invalid regex {u.regex!r} ({exc}); the regex is ignored")
            urls.append(
                HttpUrlSpec(
                    path=u.path,
                    digest=u.digest.lower() if u.digest else None,
                    status_codes=u.effective_status_codes,
                    virtualhost=vhost,
                    regex=regex,
                    regex_no_match=u.regex_no_match and regex is not None,
                    sni=(c.sni_name or vhost) if c.ssl and c.enable_sni else None,
                    tls_compliant=c.ssl and _url_flag(u.extra, "tls_compliant", c.tls_compliant),
                )
            )
        if not urls:
            self.warn(f"{where}: no url blocks; the checker is ignored")
            return ()
        checker = HttpChecker(
            host,
            port,
            tuple(urls),
            c.connect_timeout,
            c.http_protocol,
            self.ssl_context() if c.ssl else None,
            self.binding(c),
        )
        # keepalived checks one url per delay_loop, so without fast_recovery a checker coming up (alpha at
        # start-up, or after a failure) needs one passing tick per url; one check here fetches every url, so
        # the same wait is asked of it as that many passing checks in a row (a rise of at least len(urls)).
        extra: dict[str, object] = {}
        if not c.fast_recovery and len(urls) > 1:
            extra["rise"] = max(c.rise or 1, len(urls))
        return (_Built(self.params(c, c.kind, **extra), checker, c.kind, _net.format_pair(host, port)),)

    def ssl_context(self) -> ssl.SSLContext:
        if not self._ssl_built:
            self._ssl_built = True
            opts = {k: v[0] for k, v in self.config.ssl if v}
            try:
                self._ssl_context = make_ssl_context(
                    opts.get("ca"), opts.get("certificate"), opts.get("key"), opts.get("password")
                )
            except (OSError, ssl.SSLError, ValueError) as exc:
                self.warn(f"SSL: cannot build the client context from the SSL block ({exc}); using a default one")
                self._ssl_context = make_ssl_context()
        assert self._ssl_context is not None
        return self._ssl_context

    def smtp_checks(self, c: m.SmtpCheck, rs: m.RealServer, rs_port: int) -> Sequence[_Built]:
        helo = c.helo_name or DEFAULT_HELO
        entries: list[m.CheckerBase] = []
        if not c.hosts or "connect_ip" in c.locs or "connect_port" in c.locs:
            entries.append(c)
        for h in c.hosts:
            merged = {f: getattr(h if f in h.locs else c, f) for f in _CONNECTION_FIELDS}
            entries.append(m.CheckerBase(**merged))
        out = []
        for e in entries:
            host, port = self.target(e, rs, rs_port)
            checker = SmtpChecker(host, port, helo, e.connect_timeout, self.binding(e))
            params = self.params(c, "SMTP_CHECK", connect_timeout=e.connect_timeout)
            out.append(_Built(params, checker, "SMTP_CHECK", _net.format_pair(host, port)))
        return out

    def misc_check(self, c: m.MiscCheck, where: str, name: str) -> Sequence[_Built]:
        if c.misc_path is None or not c.misc_path.argv:
            self.warn(f"{where}: no misc_path; the checker is ignored")
            return ()
        run_as = self.setup.script_user
        if c.user:
            try:
                run_as = RunAs.lookup(c.user[0], c.user[1] if len(c.user) > 1 else None)
            except KeyError as exc:
                self.warn(f"{where}: {exc.args[0]}; the checker is ignored")
                return ()
        argv = tuple(c.misc_path.argv)
        timeout = c.misc_timeout if c.misc_timeout is not None else c.delay_loop
        g = self.config.global_defs
        user, group = configured_user(c.user, g.script_user)
        checker = MiscChecker(argv, timeout, c.misc_dynamic, run_as, name=name,
                              vetting=ScriptVetting(user, group, g.enable_script_security),
                              report=self._report_scripts)
        text = shlex.join(argv)
        params = self.params(c, "MISC_CHECK", misc_dynamic=c.misc_dynamic, script=text)
        return (_Built(params, checker, "MISC_CHECK", text),)

    def file_check(self, c: m.FileCheck, where: str) -> Sequence[_Built]:
        tf = self._track_files.get(c.track_file)
        if tf is None:
            self.warn(f"{where}: track_file {c.track_file!r} not found; the checker is ignored")
            return ()
        if not tf.file:
            self.warn(f"{where}: track_file {tf.name!r} names no file; the checker is ignored")
            return ()
        if "weight" in c.locs:
            weight, reverse = c.weight, c.weight_reverse
        else:
            weight, reverse = tf.weight, tf.weight_reverse
        checker = FileChecker(tf.file, weight, reverse, tf.name)
        params = CheckParams(
            kind="FILE_CHECK", delay_loop=POLL_INTERVAL, retry=0, delay_before_retry=0.0, warmup=0.0, alpha=False
        )
        return (_Built(params, checker, "FILE_CHECK", tf.file),)
