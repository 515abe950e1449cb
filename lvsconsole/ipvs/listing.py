"""``ipvsadm -L`` text, byte for byte (ipvsadm 1.31, as shipped by Debian 12).

Formats, from ipvsadm.c (``print_title``, ``print_service_entry``, ``print_largenum``, ``list_daemon``):

- header ``IP Virtual Server version %d.%d.%d (size=%d)``;
- plain title ``Prot LocalAddress:Port Scheduler Flags`` /
  ``  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn``;
- service name ``%-4s %s`` (protocol, addr:port; IPv6 in brackets), cut at 33 characters unless IPv6;
  fwmark services ``FWM  %d`` (``%d``: a mark above 2^31 prints negative) plus `` IPv6``;
- plain service row ``%s %s`` (name, scheduler), then `` (flags)``, `` persistent %u``, `` mask %s``
  (IPv4 dotted, shown unless 255.255.255.255; IPv6 ``%i`` unless 128), `` pe %s``, `` ops``;
- plain dest row ``  -> %-28s %-7s %-6d %-10u %-10u`` (name cut at 28 unless IPv6; trailing blanks kept);
- ``--stats`` / ``--rate`` title ``%-33s %8s %8s %8s %8s %8s`` + ``  -> RemoteAddress:Port``, service rows
  ``%-33s`` + five ``print_largenum``; dest rows ``  -> %-28s`` + five ``print_largenum`` (stats) or
  `` %8llu`` x3 + two ``print_largenum`` (rate);
- ``print_largenum``: ``%9llu`` below 10^8, else ``%8lluK`` (/10^3) below 10^9, ``%8lluM`` (/10^6)
  below 10^11, ``%8lluG`` (/10^9) below 10^14, else ``%8lluT`` (/10^12); ``--exact``: ``%*llu`` with
  width 9, or digits + 1 when longer than 8 digits.

Order: ipvsadm sorts (unless ``--nosort``) with libipvs's ``ipvs_cmp_services`` (fwmark, family,
protocol, address, port) and ``ipvs_cmp_dests`` (address, port) through glibc ``qsort``, which is a
merge sort. The comparators return an ``int`` *difference* of unsigned 32-bit values, so values more
than 2^31 apart compare backwards (192.168.0.1 lists before 10.0.0.1). With ``quirks=True`` (default)
this is reproduced exactly, by the same comparator and the same merge; ``sort=False`` keeps the order the
table was read in (the kernel's: services by hash bucket, dests newest first; the memory backend gives the
same dest order, and its services in insertion order, i.e. keepalived's config order).

A second ipvsadm 1.31 quirk, also reproduced when ``quirks=True``: libipvs parses a dest's 64-bit stats
attribute with its 32-bit parser, so ``--stats``/``--rate`` print a dest's connection, packet and rate
counters modulo 2^32 (byte counters and all service counters are right). ``quirks=False`` prints true
values, sorts numerically and prints fwmarks unsigned.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Literal, Protocol, TypeAlias, TypeVar

from lvsconsole.ipvs.backend import (
    ZERO_COUNTERS,
    ZERO_DEST_COUNTERS,
    Counters,
    DestCounters,
    Stats,
    SyncDaemon,
    Timeouts,
)
from lvsconsole.ipvs.table import (
    SCHED_FLAGS,
    Dest,
    Family,
    Fwd,
    IPAddress,
    Proto,
    Service,
    ServiceKey,
    SvcFlags,
    Table,
    TunType,
    sched_flag_names,
)

Mode: TypeAlias = Literal["plain", "stats", "rate", "thresholds", "persistent-conn", "tun-info"]

_U32 = 0xFFFFFFFF
T = TypeVar("T")


class Resolver(Protocol):
    """Name lookups for listings without ``-n`` (ipvsadm: gethostbyaddr, getservbyport)."""

    def host(self, address: IPAddress) -> str | None: ...

    def service(self, port: int, protocol: Proto | None) -> str | None: ...


class SystemResolver:
    """The libc resolver, as ipvsadm uses it (blocking: call from a worker thread)."""

    def host(self, address: IPAddress) -> str | None:
        try:
            return socket.gethostbyaddr(str(address))[0]
        except OSError:
            return None

    def service(self, port: int, protocol: Proto | None) -> str | None:
        if protocol is None:
            return None
        try:
            return socket.getservbyport(port, protocol.name.lower())
        except OSError:
            return None


# --------------------------------------------------------------------------------------------------------
# Small formatting helpers
# --------------------------------------------------------------------------------------------------------


def ntop(address: IPAddress) -> str:
    """``inet_ntop`` text (glibc's, so IPv4-mapped/compatible IPv6 addresses print as ipvsadm prints them)."""
    if address.version == 4:
        return str(address)
    return socket.inet_ntop(socket.AF_INET6, address.packed)


def _c_int(value: int) -> int:
    """An unsigned 32-bit value converted to C ``int`` (two's complement wrap)."""
    value &= _U32
    return value - 0x1_0000_0000 if value & 0x8000_0000 else value


def largenum(value: int, *, exact: bool = False) -> str:
    """ipvsadm's ``print_largenum``: 9 columns, scaled with K/M/G/T beyond 8 digits unless exact."""
    if exact:
        digits = len(str(value))
        return f"{value:>{9 if digits <= 8 else digits + 1}d}"
    if value < 100_000_000:
        return f"{value:9d}"
    if value < 1_000_000_000:
        return f"{value // 1000:8d}K"
    if value < 100_000_000_000:
        return f"{value // 1_000_000:8d}M"
    if value < 100_000_000_000_000:
        return f"{value // 1_000_000_000:8d}G"
    return f"{value // 1_000_000_000_000:8d}T"


def _addrport(
    address: IPAddress, port: int, protocol: Proto | None, numeric: bool, resolver: Resolver | None
) -> str:
    """``addrport_to_anyname``."""
    if numeric or resolver is None:
        host, service = ntop(address), str(port)
    else:
        host = resolver.host(address) or ntop(address)
        service = resolver.service(port, protocol) or str(port)
    return f"[{host}]:{service}" if address.version == 6 else f"{host}:{service}"


def _service_name(key: ServiceKey, numeric: bool, resolver: Resolver | None, quirks: bool) -> str:
    if key.fwmark:
        mark = _c_int(key.fwmark) if quirks else key.fwmark
        return f"FWM  {mark}" + (" IPv6" if key.family is Family.INET6 else "")
    assert key.protocol is not None and key.address is not None
    name = f"{key.protocol.name:<4} {_addrport(key.address, key.port, key.protocol, numeric, resolver)}"
    return name if key.family is Family.INET6 else name[:33]


def _dest_name(
    dest: Dest, protocol: Proto | None, numeric: bool, resolver: Resolver | None
) -> str:
    name = _addrport(dest.address, dest.port, protocol, numeric, resolver)
    return name if dest.address.version == 6 else name[:28]


def _service_flags_text(service: Service) -> str:
    """Everything after the scheduler on a plain service row."""
    out = ""
    if service.flags & SCHED_FLAGS:
        out += f" ({','.join(sched_flag_names(service.scheduler, service.flags))})"
    if service.flags & SvcFlags.PERSISTENT:
        out += f" persistent {service.timeout}"
        mask = service.netmask_text
        if mask is not None:
            out += f" mask {mask}"
        if service.pe:
            out += f" pe {service.pe}"
    if service.flags & SvcFlags.ONEPACKET:
        out += " ops"
    return out


_TUN_FLAG_TEXT = ("-c", "+c", "r+c")


def _tun_info(dest: Dest) -> str:
    """``fwd_tun_info`` (snprintf into 16 bytes, so at most 15 characters)."""
    if dest.fwd is not Fwd.TUNNEL:
        return "n/a"
    if dest.tun_type is TunType.IPIP:
        text = "ipip"
    elif dest.tun_type is TunType.GUE:
        text = f"gue:{dest.tun_port}:{_TUN_FLAG_TEXT[dest.tun_flags]}"
    else:
        text = f"gre:{_TUN_FLAG_TEXT[dest.tun_flags]}"
    return text[:15]


# --------------------------------------------------------------------------------------------------------
# ipvsadm's sort order
# --------------------------------------------------------------------------------------------------------


def _words(address: IPAddress | None) -> tuple[int, int, int, int]:
    """The address as four host-order 32-bit words of ``union nf_inet_addr`` (IPv4 in the first)."""
    if address is None:
        return (0, 0, 0, 0)
    n = int(address)
    if address.version == 4:
        return (n, 0, 0, 0)
    return ((n >> 96) & _U32, (n >> 64) & _U32, (n >> 32) & _U32, n & _U32)


def _cmp_addr(family: Family, a: IPAddress | None, b: IPAddress | None) -> int:
    wa, wb = _words(a), _words(b)
    if family is Family.INET6:
        for x, y in zip(wa, wb, strict=True):
            r = _c_int(x - y)
            if r:
                return r
        return 0
    return _c_int(wa[0] - wb[0])


def cmp_services(a: ServiceKey, b: ServiceKey) -> int:
    """libipvs ``ipvs_cmp_services``, overflow included."""
    r = _c_int(a.fwmark - b.fwmark)
    if r:
        return r
    r = int(a.family) - int(b.family)
    if r:
        return r
    r = int(a.protocol or 0) - int(b.protocol or 0)
    if r:
        return r
    r = _cmp_addr(a.family, a.address, b.address)
    if r:
        return r
    return a.port - b.port


def cmp_dests(a: Dest, b: Dest) -> int:
    """libipvs ``ipvs_cmp_dests`` (the first dest's family decides how many words are compared)."""
    r = _cmp_addr(a.family, a.address, b.address)
    if r:
        return r
    return a.port - b.port


def glibc_msort(items: Sequence[T], cmp: Callable[[T, T], int]) -> list[T]:
    """glibc ``qsort``'s merge sort (``msort_with_tmp``): halves of n//2 and n - n//2, ties from the left.
    Matters only for comparators that are not a total order, like libipvs's."""
    n = len(items)
    if n <= 1:
        return list(items)
    left = glibc_msort(items[: n // 2], cmp)
    right = glibc_msort(items[n // 2 :], cmp)
    out: list[T] = []
    i = j = 0
    while i < len(left) and j < len(right):
        if cmp(left[i], right[j]) <= 0:
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    out.extend(left[i:])
    out.extend(right[j:])
    return out


def _service_sort_key(key: ServiceKey) -> tuple[int, int, int, tuple[int, int, int, int], int]:
    return (key.fwmark, int(key.family), int(key.protocol or 0), _words(key.address), key.port)


def sorted_services(table: Table, *, quirks: bool = True) -> list[ServiceKey]:
    """Service keys in ipvsadm's listing order."""
    if quirks:
        return glibc_msort(list(table), cmp_services)
    return sorted(table, key=_service_sort_key)


def sorted_dests(dests: Iterable[Dest], *, quirks: bool = True) -> list[Dest]:
    """Dests in ipvsadm's listing order."""
    if quirks:
        return glibc_msort(list(dests), cmp_dests)
    return sorted(dests, key=lambda d: (_words(d.address), d.port))


# --------------------------------------------------------------------------------------------------------
# The listings
# --------------------------------------------------------------------------------------------------------

_PLAIN_TITLE = (
    "Prot LocalAddress:Port Scheduler Flags\n"
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn"
)
_TUN_TITLE = (
    "Prot LocalAddress:Port Scheduler Flags\n"
    "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn"
)


def _title(mode: Mode) -> str:
    if mode == "stats":
        cols = ("Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
    elif mode == "rate":
        cols = ("CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
    elif mode == "thresholds":
        head = f"{'Prot LocalAddress:Port':<33} {'Uthreshold':<10} {'Lthreshold':<10} "
        return head + f"{'ActiveConn':<10} {'InActConn':<10}\n  -> RemoteAddress:Port"
    elif mode == "persistent-conn":
        head = f"{'Prot LocalAddress:Port':<33} {'Weight':<9} {'PersistConn':<11} "
        return head + f"{'ActiveConn':<10} {'InActConn':<10}\n  -> RemoteAddress:Port"
    elif mode == "tun-info":
        return _TUN_TITLE
    else:
        return _PLAIN_TITLE
    return f"{'Prot LocalAddress:Port':<33} " + " ".join(f"{c:>8}" for c in cols) + "\n  -> RemoteAddress:Port"


def _u32_dest_counters(c: DestCounters) -> DestCounters:
    """What ipvsadm 1.31 sees of a dest's 64-bit stats: libipvs reads them with ``ipvs_parse_stats``,
    which uses ``nla_get_u32`` for everything but the byte counters (``nla_get_u64``)."""
    return replace(
        c,
        conns=c.conns & _U32,
        inpkts=c.inpkts & _U32,
        outpkts=c.outpkts & _U32,
        cps=c.cps & _U32,
        inpps=c.inpps & _U32,
        outpps=c.outpps & _U32,
        inbps=c.inbps & _U32,
        outbps=c.outbps & _U32,
    )


def _counter_values(c: Counters, rate: bool) -> tuple[int, int, int, int, int]:
    if rate:
        return (c.cps, c.inpps, c.outpps, c.inbps, c.outbps)
    return (c.conns, c.inpkts, c.outpkts, c.inbytes, c.outbytes)


def render_list(
    table: Table,
    stats: Stats | None = None,
    *,
    numeric: bool = True,
    mode: Mode = "plain",
    version: tuple[int, int, int] = (1, 2, 1),
    size: int = 4096,
    sort: bool = True,
    exact: bool = False,
    quirks: bool = True,
    resolver: Resolver | None = None,
) -> str:
    """The text of ``ipvsadm -L [-n] [--stats|--rate|--thresholds|--persistent-conn|--tun-info]
    [--exact] [--nosort]`` for ``table`` (counters and connection gauges from ``stats``; zero without).

    ``numeric=False`` resolves names through ``resolver`` (default: ``SystemResolver``, blocking).
    ``version``/``size`` are the kernel's (``Backend.read_info``); ipvsadm prints them in the header.
    """
    if not numeric and resolver is None:
        resolver = SystemResolver()
    lines = [f"IP Virtual Server version {version[0]}.{version[1]}.{version[2]} (size={size})", _title(mode)]
    keys = sorted_services(table, quirks=quirks) if sort else list(table)
    for key in keys:
        entry = table[key]
        service = entry.service
        name = _service_name(key, numeric, resolver, quirks)
        svc_counters = stats.service(key) if stats is not None else ZERO_COUNTERS
        if mode in ("stats", "rate"):
            nums = _counter_values(svc_counters, mode == "rate")
            lines.append(f"{name:<33}" + "".join(largenum(v, exact=exact) for v in nums))
        else:
            lines.append(f"{name} {service.scheduler}{_service_flags_text(service)}")
        dests = sorted_dests(entry.dests.values(), quirks=quirks) if sort else list(entry.dests.values())
        for dest in dests:
            dname = _dest_name(dest, key.protocol, numeric, resolver)
            dc = stats.dest(key, dest.key) if stats is not None else ZERO_DEST_COUNTERS
            if mode == "stats" or mode == "rate":
                if quirks:
                    dc = _u32_dest_counters(dc)
                nums = _counter_values(dc, mode == "rate")
                if mode == "stats":
                    tail = "".join(largenum(v, exact=exact) for v in nums)
                else:
                    tail = f" {nums[0]:8d} {nums[1]:8d} {nums[2]:8d}"
                    tail += largenum(nums[3], exact=exact) + largenum(nums[4], exact=exact)
                lines.append(f"  -> {dname:<28}{tail}")
            elif mode == "thresholds":
                lines.append(
                    f"  -> {dname:<28} {dest.u_threshold:<10} {dest.l_threshold:<10} "
                    f"{dc.activeconns:<10} {dc.inactconns:<10}"
                )
            elif mode == "persistent-conn":
                lines.append(
                    f"  -> {dname:<28} {dest.weight:<9} {dc.persistconns:<11} "
                    f"{dc.activeconns:<10} {dc.inactconns:<10}"
                )
            elif mode == "tun-info":
                lines.append(
                    f"  -> {dname:<28} {dest.fwd.label:<7} {_tun_info(dest):<13} {dest.weight:<6} "
                    f"{dc.activeconns:<10} {dc.inactconns:<10}"
                )
            else:
                lines.append(
                    f"  -> {dname:<28} {dest.fwd.label:<7} {dest.weight:<6} "
                    f"{dc.activeconns:<10} {dc.inactconns:<10}"
                )
    return "\n".join(lines) + "\n"


def render_timeouts(timeouts: Timeouts) -> str:
    """``ipvsadm -L --timeout``."""
    return f"Timeout (tcp tcpfin udp): {timeouts.tcp} {timeouts.tcpfin} {timeouts.udp}\n"


def render_daemons(daemons: Iterable[SyncDaemon]) -> str:
    """``ipvsadm -L --daemon`` (one line per running daemon, master first)."""
    out = []
    for d in sorted(daemons, key=lambda d: int(d.state)):
        line = f"{d.state.name.lower()} sync daemon (mcast={d.ifname}, syncid={d.syncid}"
        if d.maxlen:
            line += f", maxlen={d.maxlen}"
        if d.group is not None:
            line += f", group={ntop(d.group)}"
        if d.port:
            line += f", port={d.port}"
        if d.ttl:
            line += f", ttl={d.ttl}"
        out.append(line + ")\n")
    return "".join(out)
