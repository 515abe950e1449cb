"""The configuration model: frozen dataclasses with keepalived's defaults filled in.

Equality ignores source locations (`locs`), so two configs that say the same thing compare equal
whatever their layout; this is what reload diffs and the render round-trip rely on.

Keywords that keepalived knows but that the engine does not act on are kept verbatim in `extra`
(keyword, argument words) so that nothing an operator wrote is lost when the config is rendered back.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from types import MappingProxyType
from typing import ClassVar, Literal, TypeAlias

from lvsconsole.config.diagnostics import Location

IPAddress: TypeAlias = IPv4Address | IPv6Address
IPInterface: TypeAlias = IPv4Interface | IPv6Interface
Extra: TypeAlias = tuple[tuple[str, tuple[str, ...]], ...]
Locs: TypeAlias = Mapping[str, Location]

NO_LOCS: Locs = MappingProxyType({})


def _locs() -> Locs:
    return NO_LOCS


def loc_field() -> Locs:
    return field(default_factory=_locs, compare=False, repr=False)


# ---------------------------------------------------------------------------------------------- shared


@dataclass(frozen=True)
class Script:
    """A script line as keepalived splits it: argv (quotes respected) plus an optional run-as user/group."""

    argv: tuple[str, ...]
    user: str | None = None
    group: str | None = None

    @property
    def path(self) -> str:
        return self.argv[0] if self.argv else ""


@dataclass(frozen=True)
class Endpoint:
    address: IPAddress
    port: int | None = None


ForwardingMethod = Literal["NAT", "DR", "TUN"]


@dataclass(frozen=True)
class LvsMethod:
    """lvs_method NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]."""

    kind: ForwardingMethod = "NAT"
    tunnel_type: Literal["ipip", "gue", "gre"] | None = None
    tunnel_port: int | None = None
    tunnel_csum: Literal["nocsum", "csum", "remcsum"] | None = None


# ---------------------------------------------------------------------------------------------- global


@dataclass(frozen=True)
class LvsSyncDaemon:
    interface: str
    instance: str | None = None
    syncid: int | None = None
    maxlen: int | None = None
    port: int = 8848
    ttl: int | None = None
    group: IPAddress | None = None


@dataclass(frozen=True)
class LvsTimeouts:
    tcp: int | None = None
    tcpfin: int | None = None
    udp: int | None = None


@dataclass(frozen=True)
class GlobalDefs:
    router_id: str | None = None
    notification_email: tuple[str, ...] = ()
    notification_email_from: str | None = None
    smtp_server: Endpoint | None = None
    smtp_helo_name: str | None = None
    smtp_connect_timeout: float = 30.0
    smtp_alert: bool | None = None
    script_user: tuple[str, ...] = ()
    enable_script_security: bool = False
    vrrp_version: int = 2
    vrrp_strict: bool = False
    vrrp_mcast_group4: IPv4Address = IPv4Address("224.0.0.18")
    vrrp_mcast_group6: IPv6Address = IPv6Address("ff02::12")
    vrrp_garp_master_delay: float = 5.0
    vrrp_garp_master_repeat: int = 5
    vrrp_garp_master_refresh: float = 0.0
    vrrp_garp_master_refresh_repeat: int = 1
    vrrp_garp_interval: float = 0.0
    vrrp_gna_interval: float = 0.0
    vrrp_skip_check_adv_addr: bool = False
    vrrp_check_unicast_src: bool = False
    default_interface: str | None = None
    lvs_sync_daemon: LvsSyncDaemon | None = None
    lvs_flush: bool = False
    lvs_flush_on_stop: Literal["", "VS", "ALL"] = ""
    lvs_timeouts: LvsTimeouts | None = None
    checker_log_all_failures: bool = False
    drain_timeout: float = 60.0
    """lvsconsole extension: seconds a removed real server drains (weight 0) before it is deleted; 0: at once."""
    drain_sample_rate: float = 5.0
    """lvsconsole extension: samples a second (4-10) of a draining server's connections (``show drain``)."""
    lvs_sync_peer_http: str | None = None
    """lvsconsole extension: HOST:PORT of the peer director's metrics endpoint; its connection table is compared
    with ours every 5 s (connection-sync coverage, engine/synccoverage.py)."""
    ipvs_drift: Literal["repair", "hold"] = "repair"
    """lvsconsole extension: kernel IPVS drift is repaired at once, or held (listed) until the operator acts."""
    extra: Extra = ()
    locs: Locs = loc_field()


@dataclass(frozen=True)
class StaticAddress:
    address: IPInterface
    options: tuple[str, ...] = ()
    locs: Locs = loc_field()


@dataclass(frozen=True)
class StaticLine:
    """One line of static_routes or static_rules: its words as ``ip route add`` / ``ip rule add`` take them, and
    the keepalived-only ``track_group NAME`` taken out of them. locs: "words" (the line), "track_group"."""

    words: tuple[str, ...]
    track_group: str | None = None
    locs: Locs = loc_field()


# ---------------------------------------------------------------------------------------------- VRRP


@dataclass(frozen=True)
class VirtualAddress:
    """One line of virtual_ipaddress: IP[/len] [brd X] [dev IF] [scope S] [label L] [...]."""

    address: IPInterface
    brd: IPAddress | None = None
    dev: str | None = None
    scope: str | None = None
    label: str | None = None
    peer: IPInterface | None = None
    flags: tuple[str, ...] = ()
    locs: Locs = loc_field()


@dataclass(frozen=True)
class UnicastPeer:
    address: IPAddress
    min_ttl: int | None = None
    max_ttl: int | None = None
    locs: Locs = loc_field()


@dataclass(frozen=True)
class TrackRef:
    """An entry of track_interface / track_script / track_file: name, weight and its direction."""

    name: str
    weight: int | None = None
    reverse: bool = False
    locs: Locs = loc_field()


@dataclass(frozen=True)
class Authentication:
    auth_type: Literal["PASS", "AH"]
    auth_pass: str = ""
    locs: Locs = loc_field()


VrrpState = Literal["MASTER", "BACKUP"]


@dataclass(frozen=True)
class VrrpInstance:
    name: str
    state: VrrpState = "BACKUP"
    interface: str | None = None
    virtual_router_id: int = 0
    priority: int = 100
    advert_int: float = 1.0
    version: int = 2
    authentication: Authentication | None = None
    virtual_ipaddress: tuple[VirtualAddress, ...] = ()
    virtual_ipaddress_excluded: tuple[VirtualAddress, ...] = ()
    virtual_routes: tuple[tuple[str, ...], ...] = ()
    virtual_rules: tuple[tuple[str, ...], ...] = ()
    unicast_src_ip: IPAddress | None = None
    unicast_peer: tuple[UnicastPeer, ...] = ()
    mcast_src_ip: IPAddress | None = None
    track_interface: tuple[TrackRef, ...] = ()
    track_script: tuple[TrackRef, ...] = ()
    track_file: tuple[TrackRef, ...] = ()
    nopreempt: bool = False
    preempt_delay: float = 0.0
    notify_master: Script | None = None
    notify_backup: Script | None = None
    notify_fault: Script | None = None
    notify_stop: Script | None = None
    notify: Script | None = None
    smtp_alert: bool | None = None
    garp_master_delay: float | None = None
    garp_master_repeat: int | None = None
    garp_master_refresh: float | None = None
    garp_master_refresh_repeat: int | None = None
    dont_track_primary: bool = False
    use_vmac: tuple[str, ...] | None = None
    accept: bool | None = None
    strict_mode: bool | None = None
    extra: Extra = ()
    locs: Locs = loc_field()


@dataclass(frozen=True)
class SyncGroup:
    name: str
    group: tuple[str, ...] = ()
    notify_master: Script | None = None
    notify_backup: Script | None = None
    notify_fault: Script | None = None
    notify_stop: Script | None = None
    notify: Script | None = None
    smtp_alert: bool | None = None
    track_interface: tuple[TrackRef, ...] = ()
    track_script: tuple[TrackRef, ...] = ()
    track_file: tuple[TrackRef, ...] = ()
    extra: Extra = ()
    locs: Locs = loc_field()


@dataclass(frozen=True)
class VrrpScript:
    name: str
    script: Script | None = None
    interval: float = 1.0
    timeout: float | None = None
    weight: int = 0
    weight_reverse: bool = False
    rise: int = 1
    fall: int = 1
    user: tuple[str, ...] = ()
    init_fail: bool = False
    locs: Locs = loc_field()

    @property
    def effective_timeout(self) -> float:
        return self.timeout if self.timeout is not None else self.interval


@dataclass(frozen=True)
class TrackFile:
    name: str
    file: str | None = None
    weight: int = 1
    weight_reverse: bool = False
    init_file: tuple[str, ...] | None = None
    locs: Locs = loc_field()


# ---------------------------------------------------------------------------------------------- checkers


@dataclass(frozen=True)
class CheckerBase:
    """Options every checker shares; timing fields are already inherited from RS/VS (keepalived's rule)."""

    connect_ip: IPAddress | None = None
    connect_port: int | None = None
    bindto: IPAddress | None = None
    bind_port: int | None = None
    bind_if: str | None = None
    fwmark: int | None = None
    connect_timeout: float = 5.0
    retry: int = 1
    delay_before_retry: float = 1.0
    warmup: float | None = None
    delay_loop: float = 60.0
    alpha: bool = False
    log_all_failures: bool = False
    rise: int | None = None
    """lvsconsole extension: consecutive successes before a DOWN checker is UP again (None: keepalived's 1)."""
    fall: int | None = None
    """lvsconsole extension: consecutive failed checks before an UP checker is DOWN (None: keepalived's 1)."""
    extra: Extra = ()
    locs: Locs = loc_field()

    KIND: ClassVar[str] = ""

    @property
    def kind(self) -> str:
        return self.KIND


@dataclass(frozen=True)
class TcpCheck(CheckerBase):
    KIND: ClassVar[str] = "TCP_CHECK"


@dataclass(frozen=True)
class HttpUrl:
    path: str = "/"
    digest: str | None = None
    status_code: tuple[tuple[int, int], ...] = ()
    virtualhost: str | None = None
    regex: str | None = None
    regex_no_match: bool = False
    extra: Extra = ()
    locs: Locs = loc_field()

    @property
    def effective_status_codes(self) -> tuple[tuple[int, int], ...]:
        return self.status_code or ((200, 299),)


@dataclass(frozen=True)
class HttpCheck(CheckerBase):
    """HTTP_GET, or SSL_GET when `ssl` is true."""

    ssl: bool = False
    urls: tuple[HttpUrl, ...] = ()
    http_protocol: Literal["1.0", "1.0C", "1.1"] = "1.0"
    virtualhost: str | None = None
    fast_recovery: bool = False
    enable_sni: bool = False
    sni_name: str | None = None
    tls_compliant: bool = False
    KIND: ClassVar[str] = "HTTP_GET"

    @property
    def kind(self) -> str:
        return "SSL_GET" if self.ssl else "HTTP_GET"


@dataclass(frozen=True)
class MiscCheck(CheckerBase):
    misc_path: Script | None = None
    misc_timeout: float | None = None
    misc_dynamic: bool = False
    user: tuple[str, ...] = ()
    KIND: ClassVar[str] = "MISC_CHECK"


@dataclass(frozen=True)
class SmtpCheck(CheckerBase):
    helo_name: str | None = None
    hosts: tuple[CheckerBase, ...] = ()
    KIND: ClassVar[str] = "SMTP_CHECK"


@dataclass(frozen=True)
class DnsCheck(CheckerBase):
    type: str = "SOA"
    name: str = "."
    KIND: ClassVar[str] = "DNS_CHECK"


@dataclass(frozen=True)
class UdpCheck(CheckerBase):
    payload: bytes | None = None
    require_reply: bool = False
    require_reply_pattern: str | None = None
    min_reply_length: int = 0
    max_reply_length: int = 255
    KIND: ClassVar[str] = "UDP_CHECK"


@dataclass(frozen=True)
class PingCheck(CheckerBase):
    KIND: ClassVar[str] = "PING_CHECK"


@dataclass(frozen=True)
class FileCheck(CheckerBase):
    track_file: str = ""
    weight: int = 1
    weight_reverse: bool = False
    KIND: ClassVar[str] = "FILE_CHECK"


@dataclass(frozen=True)
class BfdCheck(CheckerBase):
    name: str = ""
    KIND: ClassVar[str] = "BFD_CHECK"


Checker: TypeAlias = (
    TcpCheck | HttpCheck | MiscCheck | SmtpCheck | DnsCheck | UdpCheck | PingCheck | FileCheck | BfdCheck
)


# ---------------------------------------------------------------------------------------------- LVS

Protocol = Literal["TCP", "UDP", "SCTP"]
@dataclass(frozen=True)
class MinHealthy:
    """lvsconsole extension ``min_healthy N|P%``: the fewest healthy real servers a virtual server keeps.

    Like PyBal's depool-threshold: health checks never depool a server when that would leave fewer, and the
    operator's drain/maint needs a second confirmation."""

    count: int
    percent: bool = False

    def required(self, pool: int) -> int:
        """Healthy servers required out of ``pool`` configured ones (a percentage rounds up)."""
        if not self.percent:
            return self.count
        return -(-self.count * pool // 100)

    def __str__(self) -> str:
        return f"{self.count}%" if self.percent else str(self.count)


SCHEDULERS = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos")


@dataclass(frozen=True)
class RealServer:
    address: IPAddress
    port: int | None = None
    weight: int = 1
    lvs_method: LvsMethod | None = None
    inhibit_on_failure: bool = False
    notify_up: Script | None = None
    notify_down: Script | None = None
    uthreshold: int | None = None
    lthreshold: int | None = None
    smtp_alert: bool | None = None
    virtualhost: str | None = None
    alpha: bool = False
    connect_timeout: float | None = None
    retry: int | None = None
    delay_before_retry: float | None = None
    warmup: float | None = None
    delay_loop: float | None = None
    slow_start: float | None = None
    """lvsconsole extension: as the virtual server's ``slow_start``, for this real server (it wins)."""
    checkers: tuple[Checker, ...] = ()
    extra: Extra = ()
    locs: Locs = loc_field()

    @property
    def key(self) -> tuple[IPAddress, int | None]:
        return (self.address, self.port)


@dataclass(frozen=True)
class VsgEntry:
    """One line of virtual_server_group: an address or address range with a port, or a fwmark."""

    first: IPAddress | None = None
    last: IPAddress | None = None
    port: int | None = None
    fwmark: int | None = None
    family: Literal["inet", "inet6"] | None = None
    locs: Locs = loc_field()


@dataclass(frozen=True)
class VirtualServerGroup:
    name: str
    entries: tuple[VsgEntry, ...] = ()
    locs: Locs = loc_field()


@dataclass(frozen=True)
class VirtualServer:
    """virtual_server IP [port] | fwmark N | group NAME."""

    address: IPAddress | None = None
    port: int | None = None
    fwmark: int | None = None
    group: str | None = None
    lvs_sched: str = "wlc"
    lvs_method: LvsMethod = LvsMethod()
    protocol: Protocol = "TCP"
    persistence_timeout: int | None = None
    persistence_granularity: IPAddress | None = None
    persistence_engine: str | None = None
    sched_flags: tuple[str, ...] = ()
    delay_loop: float = 60.0
    connect_timeout: float = 5.0
    retry: int | None = None
    delay_before_retry: float | None = None
    warmup: float | None = None
    alpha: bool = False
    omega: bool = False
    quorum: int = 1
    hysteresis: int = 0
    quorum_up: Script | None = None
    quorum_down: Script | None = None
    min_healthy: MinHealthy | None = None
    """lvsconsole extension: the fewest healthy real servers checks may leave (see MinHealthy)."""
    slow_start: float | None = None
    """lvsconsole extension: seconds ``undrain`` ramps a real server's weight back over (None/0: at once)."""
    inhibit_on_failure: bool = False
    sorry_server: Endpoint | None = None
    sorry_server_inhibit: bool = False
    sorry_server_lvs_method: LvsMethod | None = None
    ha_suspend: bool = False
    virtualhost: str | None = None
    smtp_alert: bool | None = None
    ip_family: Literal["inet", "inet6"] | None = None
    real_servers: tuple[RealServer, ...] = ()
    extra: Extra = ()
    locs: Locs = loc_field()

    @functools.cached_property
    def key(self) -> str:
        """The identity keepalived uses to match a VS across reloads (computed once: diff and validate ask for
        it for every virtual server on every reload)."""
        if self.group is not None:
            return f"group {self.group}"
        if self.fwmark is not None:
            return f"fwmark {self.fwmark}"
        return f"[{self.address}]:{self.protocol.lower()}:{self.port if self.port is not None else 0}"


# ---------------------------------------------------------------------------------------------- root


@dataclass(frozen=True)
class Config:
    global_defs: GlobalDefs = GlobalDefs()
    static_ipaddress: tuple[StaticAddress, ...] = ()
    static_routes: tuple[StaticLine, ...] = ()
    static_rules: tuple[StaticLine, ...] = ()
    vrrp_scripts: tuple[VrrpScript, ...] = ()
    track_files: tuple[TrackFile, ...] = ()
    sync_groups: tuple[SyncGroup, ...] = ()
    instances: tuple[VrrpInstance, ...] = ()
    virtual_server_groups: tuple[VirtualServerGroup, ...] = ()
    virtual_servers: tuple[VirtualServer, ...] = ()
    ssl: tuple[tuple[str, tuple[str, ...]], ...] = ()
    extra: Extra = ()
    source: str | None = field(default=None, compare=False)

    def instance(self, name: str) -> VrrpInstance | None:
        for inst in self.instances:
            if inst.name == name:
                return inst
        return None
