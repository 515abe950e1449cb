"""The IPVS table as frozen data: services, real servers (dests), runtime overrides.

Identity follows the kernel (and keepalived): a service is keyed by (family, protocol, address, port) or by
(fwmark, family); a dest inside a service by (address, port). Every other attribute is editable in place by
the kernel, so it is *value*, not identity.

Numeric values of the enums are the kernel's (``include/uapi/linux/ip_vs.h``), so a backend can pass them
through unchanged.

``TableBuilder`` is the one mutable piece: it applies single operations with the kernel's checks and errno
values (``ip_vs_ctl.c``), and is shared by ``reconcile.apply_ops`` and the memory backend.
"""

from __future__ import annotations

import enum
import errno
import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, TypeAlias

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address


def _ip(value: IPAddress | str) -> IPAddress:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    return ipaddress.ip_address(value)


def _addr_port(address: IPAddress, port: int) -> str:
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


def _check_port(port: int, what: str) -> None:
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"{what} port {port} out of range 0..65535")


# --------------------------------------------------------------------------------------------------------
# Enumerations (kernel values)
# --------------------------------------------------------------------------------------------------------


class Family(enum.IntEnum):
    """Address family (AF_INET / AF_INET6 on Linux)."""

    INET = 2
    INET6 = 10

    @classmethod
    def of(cls, address: IPAddress) -> Family:
        return cls.INET if address.version == 4 else cls.INET6

    @property
    def max_prefix(self) -> int:
        return 32 if self is Family.INET else 128


class Proto(enum.IntEnum):
    """Service protocol (IPPROTO_*). Named ``Proto`` so it never shadows ``typing.Protocol``."""

    TCP = 6
    UDP = 17
    SCTP = 132


class SvcFlags(enum.IntFlag):
    """IP_VS_SVC_F_* bits. The scheduler flags are shared bits whose meaning depends on the scheduler:
    SH_FALLBACK == MH_FALLBACK == SCHED1, SH_PORT == MH_PORT == SCHED2 (exactly as in the kernel)."""

    PERSISTENT = 0x0001
    HASHED = 0x0002  # set by the kernel on every live service; never requested, ignored by the reconciler
    ONEPACKET = 0x0004  # "ops"
    SCHED1 = 0x0008
    SCHED2 = 0x0010
    SCHED3 = 0x0020
    SH_FALLBACK = 0x0008
    SH_PORT = 0x0010
    MH_FALLBACK = 0x0008
    MH_PORT = 0x0010


NO_FLAGS = SvcFlags(0)
SCHED_FLAGS = SvcFlags.SCHED1 | SvcFlags.SCHED2 | SvcFlags.SCHED3

#: Schedulers shipped with mainline Linux (net/netfilter/ipvs/ip_vs_*.c).
SCHEDULERS = frozenset(
    {"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}
)
#: Persistence engines shipped with mainline Linux ("" = none).
PERSISTENCE_ENGINES = frozenset({"", "sip"})

_SCHED_FLAG_NAMES: dict[str, SvcFlags] = {
    "sh-fallback": SvcFlags.SCHED1,
    "sh-port": SvcFlags.SCHED2,
    "mh-fallback": SvcFlags.SCHED1,
    "mh-port": SvcFlags.SCHED2,
    "flag-1": SvcFlags.SCHED1,
    "flag-2": SvcFlags.SCHED2,
    "flag-3": SvcFlags.SCHED3,
}


def sched_flags(names: Iterable[str]) -> SvcFlags:
    """``["sh-fallback", "sh-port"]`` -> the flag bits (ipvsadm ``-b``, keepalived's sh/mh flags)."""
    bits = NO_FLAGS
    for name in names:
        try:
            bits |= _SCHED_FLAG_NAMES[name]
        except KeyError:
            raise ValueError(f"unknown scheduler flag {name!r}") from None
    return bits


def sched_flag_names(scheduler: str, flags: SvcFlags) -> list[str]:
    """The names ipvsadm prints for the scheduler bits of ``flags`` (ipvsadm.c ``print_sched_flags``):
    sh -> sh-fallback/sh-port, mh -> mh-fallback/mh-port, anything else -> flag-1/2/3. SCHED3 on sh or mh
    has no name (ipvsadm prints nothing for it)."""
    names: list[str] = []
    if scheduler in ("sh", "mh"):
        if flags & SvcFlags.SCHED1:
            names.append(f"{scheduler}-fallback")
        if flags & SvcFlags.SCHED2:
            names.append(f"{scheduler}-port")
    else:
        for number, bit in enumerate((SvcFlags.SCHED1, SvcFlags.SCHED2, SvcFlags.SCHED3), start=1):
            if flags & bit:
                names.append(f"flag-{number}")
    return names


class Fwd(enum.IntEnum):
    """Forwarding method (IP_VS_CONN_F_* & IP_VS_CONN_F_FWD_MASK). LOCAL only appears when read back."""

    MASQ = 0  # NAT
    LOCAL = 1
    TUNNEL = 2  # TUN
    ROUTE = 3  # DR
    NAT = 0
    TUN = 2
    DR = 3

    @property
    def label(self) -> str:
        """The word ipvsadm prints in the Forward column."""
        return _FWD_LABEL[self]


_FWD_LABEL = {Fwd.MASQ: "Masq", Fwd.LOCAL: "Local", Fwd.TUNNEL: "Tunnel", Fwd.ROUTE: "Route"}


class TunType(enum.IntEnum):
    """IP_VS_CONN_F_TUNNEL_TYPE_*."""

    IPIP = 0
    GUE = 1
    GRE = 2


class TunFlags(enum.IntEnum):
    """IP_VS_TUNNEL_ENCAP_FLAG_*: checksum handling for GUE/GRE tunnels."""

    NOCSUM = 0
    CSUM = 1
    REMCSUM = 2  # GUE only


# --------------------------------------------------------------------------------------------------------
# Keys and entries
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceKey:
    """Identity of a virtual service: (family, protocol, address, port) or (fwmark, family).

    Build with ``ServiceKey.inet(Proto.TCP, "10.0.0.1", 80)`` or ``ServiceKey.fwm(1)``.
    """

    family: Family
    protocol: Proto | None = None
    address: IPAddress | None = None
    port: int = 0
    fwmark: int = 0
    _hash: int = field(init=False, repr=False, compare=False)
    """Keys are hashed on every lookup of every stats or table map (tens of thousands per second at scale);
    the generated hash would hash each field again, the address through its text. Made of ints only, so it
    means the same in any process."""

    def __post_init__(self) -> None:
        address = None if self.address is None else int(self.address)
        object.__setattr__(self, "_hash", hash((self.family, self.protocol, address, self.port, self.fwmark)))
        if self.fwmark:
            if not 0 < self.fwmark <= 0xFFFFFFFF:
                raise ValueError(f"fwmark {self.fwmark} out of range 1..4294967295")
            if self.protocol is not None or self.address is not None or self.port:
                raise ValueError("a fwmark service has no protocol, address or port")
            return
        if self.protocol is None or self.address is None:
            raise ValueError("a service needs (protocol, address, port) or a fwmark")
        if Family.of(self.address) is not self.family:
            raise ValueError(f"address {self.address} is not of family {self.family.name}")
        _check_port(self.port, "service")

    @classmethod
    def inet(cls, protocol: Proto | str, address: IPAddress | str, port: int) -> ServiceKey:
        addr = _ip(address)
        if isinstance(protocol, str):
            try:
                protocol = Proto[protocol.upper()]
            except KeyError:
                raise ValueError(f"unknown protocol {protocol!r}") from None
        return cls(Family.of(addr), Proto(protocol), addr, port)

    @classmethod
    def fwm(cls, mark: int, family: Family = Family.INET) -> ServiceKey:
        return cls(family, fwmark=mark)

    @property
    def is_fwmark(self) -> bool:
        return self.fwmark != 0

    def __hash__(self) -> int:
        return self._hash

    def __str__(self) -> str:
        if self.fwmark:
            return f"FWM {self.fwmark}" + (" IPv6" if self.family is Family.INET6 else "")
        assert self.protocol is not None and self.address is not None
        return f"{self.protocol.name} {_addr_port(self.address, self.port)}"


@dataclass(frozen=True, slots=True)
class DestKey:
    """Identity of a real server inside a service."""

    address: IPAddress
    port: int
    _hash: int = field(init=False, repr=False, compare=False)
    """As for ``ServiceKey``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.address.version, int(self.address), self.port)))

    def __hash__(self) -> int:
        return self._hash

    @classmethod
    def of(cls, address: IPAddress | str, port: int) -> DestKey:
        return cls(_ip(address), port)

    @property
    def family(self) -> Family:
        return Family.of(self.address)

    def __str__(self) -> str:
        return _addr_port(self.address, self.port)


@dataclass(frozen=True, slots=True)
class Service:
    """A virtual service's attributes (all editable in place by the kernel except ``key``).

    ``netmask`` is the persistence granularity as a prefix length; ``None`` means the host mask (/32 or
    /128, the kernel default) and a full-length prefix is normalised to ``None``. ``timeout`` is the
    persistence timeout in seconds, ``pe`` the persistence engine ("" or "sip").
    """

    key: ServiceKey
    scheduler: str = "wlc"
    flags: SvcFlags = NO_FLAGS
    timeout: int = 0
    netmask: int | None = None
    pe: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "flags", SvcFlags(self.flags))  # accept plain ints (netlink)
        if self.netmask is not None:
            maxlen = self.key.family.max_prefix
            if not 0 <= self.netmask <= maxlen:
                raise ValueError(f"persistence netmask /{self.netmask} out of range 0..{maxlen}")
            if self.netmask == maxlen:
                object.__setattr__(self, "netmask", None)
        if self.timeout < 0:
            raise ValueError(f"persistence timeout {self.timeout} is negative")

    @property
    def persistent(self) -> bool:
        return bool(self.flags & SvcFlags.PERSISTENT)

    @property
    def one_packet(self) -> bool:
        return bool(self.flags & SvcFlags.ONEPACKET)

    @property
    def netmask_text(self) -> str | None:
        """The mask as ipvsadm prints it: dotted for IPv4, a prefix length for IPv6 (None: host mask)."""
        if self.netmask is None:
            return None
        if self.key.family is Family.INET:
            return str(ipaddress.IPv4Network(f"0.0.0.0/{self.netmask}").netmask)
        return str(self.netmask)

    def same_config(self, other: Service) -> bool:
        """Equal apart from the kernel-owned HASHED bit."""
        return (
            self.key == other.key
            and self.scheduler == other.scheduler
            and (self.flags & ~SvcFlags.HASHED) == (other.flags & ~SvcFlags.HASHED)
            and self.timeout == other.timeout
            and self.netmask == other.netmask
            and self.pe == other.pe
        )


def netmask_prefix(mask: IPAddress | str | int) -> int:
    """An IPv4 dotted netmask (or its 32-bit value) as a prefix length; non-contiguous masks are refused."""
    value = int(_ip(mask) if isinstance(mask, str) else mask)
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"netmask {mask} is not an IPv4 mask")
    prefix = bin(value).count("1")
    if value != (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF:
        raise ValueError(f"netmask {ipaddress.IPv4Address(value)} is not contiguous")
    return prefix


@dataclass(frozen=True, slots=True)
class Dest:
    """A real server. Tunnel fields only mean something for ``Fwd.TUNNEL`` and are normalised away
    otherwise (IPIP has no port or checksum flags; GRE has no port), so that a table read back from the
    kernel compares equal to the one that was written."""

    address: IPAddress
    port: int
    fwd: Fwd = Fwd.ROUTE
    weight: int = 1
    u_threshold: int = 0
    l_threshold: int = 0
    tun_type: TunType = TunType.IPIP
    tun_port: int = 0
    tun_flags: TunFlags = TunFlags.NOCSUM

    def __post_init__(self) -> None:
        _check_port(self.port, "real server")
        _check_port(self.tun_port, "tunnel")
        # Accept plain ints (as read from netlink) but store the enums.
        object.__setattr__(self, "fwd", Fwd(self.fwd))
        if self.fwd is not Fwd.TUNNEL:
            object.__setattr__(self, "tun_type", TunType.IPIP)
        else:
            object.__setattr__(self, "tun_type", TunType(self.tun_type))
        if self.tun_type is TunType.IPIP:
            object.__setattr__(self, "tun_flags", TunFlags.NOCSUM)
        else:
            object.__setattr__(self, "tun_flags", TunFlags(self.tun_flags))
        if self.tun_type is not TunType.GUE:
            object.__setattr__(self, "tun_port", 0)

    @classmethod
    def of(cls, address: IPAddress | str, port: int, **attrs: Any) -> Dest:
        """``Dest.of("10.0.0.2", 80, fwd=Fwd.MASQ, weight=3)``."""
        return cls(_ip(address), port, **attrs)

    @property
    def key(self) -> DestKey:
        return DestKey(self.address, self.port)

    @property
    def family(self) -> Family:
        return Family.of(self.address)

    def __str__(self) -> str:
        return _addr_port(self.address, self.port)


@dataclass(frozen=True, slots=True, eq=True)
class ServiceEntry:
    """One service of a table with its dests (read-only mapping in insertion order)."""

    service: Service
    dests: Mapping[DestKey, Dest] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def key(self) -> ServiceKey:
        return self.service.key


class Table(Mapping[ServiceKey, ServiceEntry]):
    """Immutable IPVS table: ServiceKey -> ServiceEntry(service, {DestKey: Dest}).

    Iteration follows insertion order (keepalived's config order); equality ignores order. The ``with_*``
    / ``without_*`` methods return new tables; for many changes use ``TableBuilder``.
    """

    __slots__ = ("_entries",)
    _entries: dict[ServiceKey, ServiceEntry]

    def __init__(self, entries: Iterable[tuple[Service, Iterable[Dest]]] = ()) -> None:
        built: dict[ServiceKey, ServiceEntry] = {}
        for service, dests in entries:
            if service.key in built:
                raise ValueError(f"duplicate service {service.key}")
            dmap: dict[DestKey, Dest] = {}
            for dest in dests:
                if dest.key in dmap:
                    raise ValueError(f"duplicate real server {dest.key} in {service.key}")
                dmap[dest.key] = dest
            built[service.key] = ServiceEntry(service, MappingProxyType(dmap))
        self._entries = built

    @classmethod
    def _wrap(cls, entries: dict[ServiceKey, ServiceEntry]) -> Table:
        table = cls.__new__(cls)
        table._entries = entries
        return table

    # Mapping protocol
    def __getitem__(self, key: ServiceKey) -> ServiceEntry:
        return self._entries[key]

    def __iter__(self) -> Iterator[ServiceKey]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Table):
            return self._entries == other._entries
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = [f"{k}: {len(e.dests)} dests" for k, e in self._entries.items()]
        return f"Table({', '.join(parts)})"

    # Conveniences
    def services(self) -> Iterator[Service]:
        return (e.service for e in self._entries.values())

    def dests(self, key: ServiceKey) -> Mapping[DestKey, Dest]:
        return self._entries[key].dests

    @property
    def num_dests(self) -> int:
        return sum(len(e.dests) for e in self._entries.values())

    def with_service(self, service: Service, dests: Iterable[Dest] | None = None) -> Table:
        """Add or replace a service (keeping its dests unless ``dests`` is given)."""
        entries = dict(self._entries)
        old = entries.get(service.key)
        if dests is None:
            dmap: Mapping[DestKey, Dest] = old.dests if old else MappingProxyType({})
        else:
            dmap = MappingProxyType({d.key: d for d in dests})
        entries[service.key] = ServiceEntry(service, dmap)
        return Table._wrap(entries)

    def without_service(self, key: ServiceKey) -> Table:
        entries = dict(self._entries)
        del entries[key]
        return Table._wrap(entries)

    def with_dest(self, key: ServiceKey, dest: Dest) -> Table:
        entry = self._entries[key]
        dmap = dict(entry.dests)
        dmap[dest.key] = dest
        entries = dict(self._entries)
        entries[key] = ServiceEntry(entry.service, MappingProxyType(dmap))
        return Table._wrap(entries)

    def without_dest(self, key: ServiceKey, dest: DestKey) -> Table:
        entry = self._entries[key]
        dmap = dict(entry.dests)
        del dmap[dest]
        entries = dict(self._entries)
        entries[key] = ServiceEntry(entry.service, MappingProxyType(dmap))
        return Table._wrap(entries)


EMPTY = Table()


# --------------------------------------------------------------------------------------------------------
# Kernel-faithful single operations
# --------------------------------------------------------------------------------------------------------


class IpvsError(OSError):
    """An operation the kernel would refuse; ``errno`` is the kernel's, the text is libipvs's.

    ``op`` is the operation that failed when the error comes from ``Backend.apply`` (a ``reconcile.Op``;
    typed ``object`` here because ``reconcile`` builds on this module), else None.
    """

    def __init__(self, err: int, message: str, op: object | None = None) -> None:
        super().__init__(err, message)
        self.op = op


def _check_service(service: Service) -> None:
    if service.scheduler not in SCHEDULERS or service.pe not in PERSISTENCE_ENGINES:
        raise IpvsError(errno.ENOENT, f"Scheduler or persistence engine not found ({service.key})")
    if service.key.family is Family.INET6 and service.netmask == 0:
        # ip_vs_ctl.c: an IPv6 persistence netmask must be 1..128
        raise IpvsError(errno.EINVAL, f"Invalid operation: IPv6 netmask /0 ({service.key})")


def _check_dest(service: ServiceKey, dest: Dest) -> None:
    if dest.weight < 0:
        raise IpvsError(errno.ERANGE, f"server weight less than zero ({service} -> {dest})")
    if dest.l_threshold > dest.u_threshold:
        raise IpvsError(errno.ERANGE, f"lower threshold is higher than upper threshold ({service} -> {dest})")
    if dest.fwd is Fwd.TUNNEL and dest.tun_type is TunType.GUE and dest.tun_port == 0:
        raise IpvsError(errno.EINVAL, f"tunnel port is zero ({service} -> {dest})")
    if dest.family is not service.family and dest.fwd is not Fwd.TUNNEL:
        raise IpvsError(
            errno.EINVAL, f"mixed address families need tunnel forwarding ({service} -> {dest})"
        )


class TableBuilder:
    """Applies one IPVS operation at a time with the kernel's checks and errno values.

    Errors (``IpvsError``): add an existing service EEXIST; edit/delete a missing service ESRCH; add a dest
    to a missing service ESRCH; add an existing dest EEXIST; edit/delete a missing dest ENOENT; unknown
    scheduler or persistence engine ENOENT; negative weight or l_threshold > u_threshold ERANGE; GUE
    without port, or a dest of the other family without tunnel forwarding, EINVAL.

    Copy-on-write: building from a table copies only the service index plus the dest maps it touches.
    """

    __slots__ = ("_entries", "_mutable")

    def __init__(self, table: Table = EMPTY) -> None:
        self._entries: dict[ServiceKey, ServiceEntry] = dict(table._entries)
        self._mutable: dict[ServiceKey, tuple[Service, dict[DestKey, Dest]]] = {}

    def _dests(self, key: ServiceKey) -> dict[DestKey, Dest] | None:
        """The mutable dest map of a service (None if the service does not exist)."""
        mut = self._mutable.get(key)
        if mut is not None:
            return mut[1]
        entry = self._entries.get(key)
        if entry is None:
            return None
        dmap = dict(entry.dests)
        self._mutable[key] = (entry.service, dmap)
        return dmap

    def has_service(self, key: ServiceKey) -> bool:
        return key in self._entries

    def add_service(self, service: Service) -> None:
        if service.key in self._entries:
            raise IpvsError(errno.EEXIST, f"Service already exists ({service.key})")
        _check_service(service)
        self._entries[service.key] = ServiceEntry(service, MappingProxyType({}))
        self._mutable.pop(service.key, None)

    def edit_service(self, service: Service) -> None:
        entry = self._entries.get(service.key)
        if entry is None:
            raise IpvsError(errno.ESRCH, f"No such service ({service.key})")
        _check_service(service)
        mut = self._mutable.get(service.key)
        if mut is not None:
            self._mutable[service.key] = (service, mut[1])
        self._entries[service.key] = ServiceEntry(service, entry.dests)

    def delete_service(self, key: ServiceKey) -> None:
        if key not in self._entries:
            raise IpvsError(errno.ESRCH, f"No such service ({key})")
        del self._entries[key]
        self._mutable.pop(key, None)

    def add_dest(self, key: ServiceKey, dest: Dest) -> None:
        dmap = self._dests(key)
        if dmap is None:
            raise IpvsError(errno.ESRCH, f"Service not defined ({key})")
        if dest.key in dmap:
            raise IpvsError(errno.EEXIST, f"Destination already exists ({key} -> {dest})")
        _check_dest(key, dest)
        dmap[dest.key] = dest

    def edit_dest(self, key: ServiceKey, dest: Dest) -> None:
        dmap = self._dests(key)
        if dmap is None:
            raise IpvsError(errno.ESRCH, f"Service not defined ({key})")
        if dest.key not in dmap:
            raise IpvsError(errno.ENOENT, f"No such destination ({key} -> {dest})")
        _check_dest(key, dest)
        dmap[dest.key] = dest

    def delete_dest(self, key: ServiceKey, dest: DestKey) -> None:
        dmap = self._dests(key)
        if dmap is None:
            raise IpvsError(errno.ESRCH, f"Service not defined ({key})")
        if dest not in dmap:
            raise IpvsError(errno.ENOENT, f"No such destination ({key} -> {dest})")
        del dmap[dest]

    def flush(self) -> None:
        self._entries.clear()
        self._mutable.clear()

    def build(self) -> Table:
        entries = dict(self._entries)
        for key, (service, dmap) in self._mutable.items():
            entries[key] = ServiceEntry(service, MappingProxyType(dict(dmap)))
        return Table._wrap(entries)


# --------------------------------------------------------------------------------------------------------
# Runtime overrides (operator state, kept apart from config)
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DestRef:
    """Which real server an override is about: one dest of one service, or (``service=None``) that
    address:port in every service that has it (what ``drain 10.0.0.2:80`` means)."""

    dest: DestKey
    service: ServiceKey | None = None

    def matches(self, service: ServiceKey, dest: DestKey) -> bool:
        return self.dest == dest and (self.service is None or self.service == service)

    def __str__(self) -> str:
        return str(self.dest) if self.service is None else f"{self.service} -> {self.dest}"


@dataclass(frozen=True, slots=True)
class Overrides:
    """Operator overrides: ``drain`` (weight 0, existing connections continue), ``weight`` (a weight other
    than the configured one), ``disabled`` (the dest is left out of IPVS).

    Precedence per dest: disabled, then drain, then weight; among weight overrides a service-specific ref
    beats a wildcard one. Overrides naming dests that are not in the desired table have no effect (they
    take effect if the dest appears later).
    """

    drain: frozenset[DestRef] = frozenset()
    weight: Mapping[DestRef, int] = field(default_factory=lambda: MappingProxyType({}))
    disabled: frozenset[DestRef] = frozenset()

    def __post_init__(self) -> None:
        if not isinstance(self.weight, MappingProxyType):
            object.__setattr__(self, "weight", MappingProxyType(dict(self.weight)))
        for ref, w in self.weight.items():
            if w < 0:
                raise ValueError(f"weight override {w} for {ref} is negative")

    @property
    def empty(self) -> bool:
        return not (self.drain or self.weight or self.disabled)

    def with_drain(self, ref: DestRef) -> Overrides:
        return replace(self, drain=self.drain | {ref})

    def with_weight(self, ref: DestRef, weight: int) -> Overrides:
        return replace(self, weight={**self.weight, ref: weight})

    def with_disabled(self, ref: DestRef) -> Overrides:
        return replace(self, disabled=self.disabled | {ref})

    def cleared(self, ref: DestRef) -> Overrides:
        """Drop every override recorded under exactly ``ref`` (undrain / reset weight / enable)."""
        return Overrides(
            drain=self.drain - {ref},
            weight={r: w for r, w in self.weight.items() if r != ref},
            disabled=self.disabled - {ref},
        )

    def effective_weight(self, service: ServiceKey, dest: Dest) -> int | None:
        """The weight to program for ``dest`` (None = leave it out of IPVS)."""
        key = dest.key
        if any(r.matches(service, key) for r in self.disabled):
            return None
        if any(r.matches(service, key) for r in self.drain):
            return 0
        specific = self.weight.get(DestRef(key, service))
        if specific is not None:
            return specific
        wildcard = self.weight.get(DestRef(key))
        return dest.weight if wildcard is None else wildcard


def apply_overrides(desired: Table, overrides: Overrides) -> Table:
    """The table to program: ``desired`` (from config) with the operator's overrides applied."""
    if overrides.empty:
        return desired
    entries: dict[ServiceKey, ServiceEntry] = {}
    for key, entry in desired.items():
        dmap: dict[DestKey, Dest] = {}
        changed = False
        for dkey, dest in entry.dests.items():
            weight = overrides.effective_weight(key, dest)
            if weight is None:
                changed = True
                continue
            if weight != dest.weight:
                dest = replace(dest, weight=weight)
                changed = True
            dmap[dkey] = dest
        entries[key] = ServiceEntry(entry.service, MappingProxyType(dmap)) if changed else entry
    return Table._wrap(entries)
