"""The client path tracer: which real server a client's packet for a virtual service reaches, and why (sans-IO).

The kernel decides in this order (``ip_vs_core.c``), and so does ``trace``:

1. an existing connection for that exact client address and port → its real server;
2. on a persistent service, a persistence template for the client's network (client address masked by the
   persistence granularity) → the template's real server while the template lives, provided that server is
   still in the table (``ip_vs_check_template``; a quiesced one, weight 0, still gets the client unless
   ``net.ipv4.vs.expire_quiescent_template`` is set);
3. otherwise the scheduler. ``sh`` and ``dh`` are hashes, computed here exactly as ``ip_vs_sh.c`` and
   ``ip_vs_dh.c`` do (bucket table built from the real servers in the kernel's list order, Fibonacci hash of
   the address); ``lc``/``wlc``/``sed``/``nq``/``fo``/``ovf`` follow from the live counters (their figures
   are shown per server); ``rr``/``wrr`` depend on the kernel's position in the list, which it does not
   export, so the candidates are named and the choice is not; ``mh``, ``lblc``, ``lblcr`` and ``twos`` are
   not reproduced (keyed hashes, per-destination-address state, random choice).

The order of the real servers matters (ties go to the first, the hash tables are filled in that order): it is
the order of the kernel's ``svc->destinations`` list, the order the kernel dumps them in (newest first).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from lvsconsole.ipvs.backend import ZERO_DEST_COUNTERS, DestCounters
from lvsconsole.ipvs.conntable import Connection
from lvsconsole.ipvs.table import Dest, DestKey, Family, IPAddress, Service, SvcFlags

SH_TAB_BITS = 8
"""CONFIG_IP_VS_SH_TAB_BITS (Debian and mainline default 8)."""
DH_TAB_BITS = 8
"""CONFIG_IP_VS_DH_TAB_BITS (default 8)."""
GOLDEN_RATIO_32 = 0x61C88647
"""include/linux/hash.h (hash_32, since Linux 4.7)."""
DH_MULTIPLIER = 2654435761
FTP_PORT = 21

Verdict: TypeAlias = Literal["connection", "template", "scheduler", "undetermined", "none"]


@dataclass(frozen=True)
class Candidate:
    """One real server as the scheduler sees it."""

    dest: DestKey
    weight: int | None
    """In the table now; None: not in the table (maint, or failed its checks)."""
    eligible: bool
    reason: str = ""
    """Why it is excluded (or what it is), for a human."""
    figures: Mapping[str, Any] = field(default_factory=dict)
    """The numbers the scheduler compares (active, inactive, overhead, overhead per weight...)."""

    def as_json(self) -> dict[str, Any]:
        return {"dest": str(self.dest), "address": str(self.dest.address), "port": self.dest.port,
                "weight": self.weight, "eligible": self.eligible, "reason": self.reason, "figures": dict(self.figures)}


@dataclass(frozen=True)
class Trace:
    verdict: Verdict
    """How the real server is chosen: an existing connection, a persistence template, the scheduler, or
    ``undetermined`` (the scheduler's choice is not observable) / ``none`` (no server would take it)."""
    dest: DestKey | None
    reason: str
    candidates: tuple[Candidate, ...] = ()
    steps: tuple[str, ...] = ()
    """Every rule looked at, in the kernel's order, and what it found."""
    connection: Connection | None = None
    template: Connection | None = None

    def as_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "dest": None if self.dest is None else str(self.dest),
                "reason": self.reason, "steps": list(self.steps),
                "candidates": [c.as_json() for c in self.candidates],
                "connection": None if self.connection is None else self.connection.as_json(),
                "template": None if self.template is None else self.template.as_json()}


@dataclass(frozen=True)
class TraceInput:
    """What the tracer looks at: one virtual service as the kernel holds it, and its live state."""

    service: Service
    dests: Sequence[Dest]
    """In the kernel's list order (its dump order)."""
    counters: Mapping[DestKey, DestCounters] = field(default_factory=dict)
    connections: Sequence[Connection] = ()
    absent: Mapping[DestKey, str] = field(default_factory=dict)
    """Configured real servers that are not in the table, with why ("maint", "health check failed")."""
    vip: IPAddress | None = None
    """The address the client sends to (for a fwmark service, one of the marked addresses; else the VIP)."""


# ---------------------------------------------------------------------------------------------- hashes


def hash_32(value: int, bits: int) -> int:
    """The kernel's ``hash_32``: multiplicative (Fibonacci) hashing into ``bits`` bits."""
    return ((value * GOLDEN_RATIO_32) & 0xFFFFFFFF) >> (32 - bits)


def address_fold(address: IPAddress) -> int:
    """The address as the sh/dh schedulers fold it to 32 bits (IPv6: the XOR of its four words), host order."""
    value = int(address)
    if address.version == 4:
        return value
    return (value >> 96) ^ ((value >> 64) & 0xFFFFFFFF) ^ ((value >> 32) & 0xFFFFFFFF) ^ (value & 0xFFFFFFFF)


def sh_hashkey(address: IPAddress, port: int, offset: int = 0, bits: int = SH_TAB_BITS) -> int:
    """``ip_vs_sh_hashkey``: (offset + hash_32(port + addr)) mod table size."""
    return (offset + hash_32((port + address_fold(address)) & 0xFFFFFFFF, bits)) & ((1 << bits) - 1)


def sh_buckets(dests: Sequence[Dest], bits: int = SH_TAB_BITS) -> list[Dest | None]:
    """``ip_vs_sh_reassign``: walk the list, giving each server as many consecutive buckets as its weight
    (at least one: a weight-0 server still gets one per pass, and is then unavailable), round and round."""
    size = 1 << bits
    if not dests:
        return [None] * size
    out: list[Dest | None] = []
    index = 0
    count = 0
    for _ in range(size):
        dest = dests[index]
        out.append(dest)
        count += 1
        if count >= dest.weight:
            index = (index + 1) % len(dests)
            count = 0
    return out


def dh_hashkey(address: IPAddress, bits: int = DH_TAB_BITS) -> int:
    """``ip_vs_dh_hashkey``: (addr * 2654435761) mod table size."""
    return (address_fold(address) * DH_MULTIPLIER) & ((1 << bits) - 1)


def dh_buckets(dests: Sequence[Dest], bits: int = DH_TAB_BITS) -> list[Dest | None]:
    """``ip_vs_dh_reassign``: one bucket per server, round and round (weights do not count)."""
    size = 1 << bits
    if not dests:
        return [None] * size
    return [dests[i % len(dests)] for i in range(size)]


def _available(dest: Dest) -> bool:
    # is_unavailable(): weight <= 0 (thresholds' OVERLOAD flag is not exported, so not modelled)
    return dest.weight > 0


def sh_pick(dests: Sequence[Dest], flags: SvcFlags, client: IPAddress, client_port: int | None,
            protocol: str) -> tuple[Dest | None, str]:
    """The sh scheduler's choice and how it got there."""
    port = 0
    # the kernel hashes the source port of TCP, UDP and SCTP packets; a fwmark service ("IP") is assumed to
    # carry one of those
    if flags & SvcFlags.SH_PORT and protocol in ("TCP", "UDP", "SCTP", "IP"):
        if client_port is None:
            return None, "sh-port hashes the client port too: give CLIENT_IP:PORT"
        port = client_port
    buckets = sh_buckets(dests)
    first = sh_hashkey(client, port)
    dest = buckets[first]
    keyed = f"{client}" + (f" port {port}" if port else "")
    if dest is None:
        return None, "no real server in the table"
    if _available(dest):
        return dest, f"sh: hash of {keyed} is bucket {first} of {len(buckets)}, which holds {dest}"
    if not flags & SvcFlags.SH_FALLBACK:
        return None, (f"sh: hash of {keyed} is bucket {first}, which holds {dest} with weight 0: "
                      "the packet is dropped (no sh-fallback)")
    for offset in range(len(buckets)):
        roffset = (offset + first) % len(buckets)
        bucket = sh_hashkey(client, port, roffset)
        candidate = buckets[bucket]
        if candidate is None:
            break
        if _available(candidate):
            return candidate, (f"sh: bucket {first} holds {dest} (weight 0); sh-fallback rehashed to bucket "
                               f"{bucket}, which holds {candidate}")
    return None, "sh-fallback found no available real server"


def dh_pick(dests: Sequence[Dest], vip: IPAddress) -> tuple[Dest | None, str]:
    buckets = dh_buckets(dests)
    bucket = dh_hashkey(vip)
    dest = buckets[bucket]
    if dest is None:
        return None, "no real server in the table"
    if not _available(dest):
        return None, f"dh: hash of destination {vip} is bucket {bucket}, holding {dest} with weight 0: dropped"
    return dest, f"dh: hash of destination {vip} is bucket {bucket} of {len(buckets)}, which holds {dest}"


# ---------------------------------------------------------------------------------------------- counters


def _least(dests: Sequence[Dest], overhead: Mapping[DestKey, int]) -> Dest | None:
    """``ip_vs_wlc_schedule``'s comparison: overhead/weight smallest, the first one on a tie."""
    least: Dest | None = None
    for dest in dests:
        if not _available(dest):
            continue
        if least is None or overhead[least.key] * dest.weight > overhead[dest.key] * least.weight:
            least = dest
    return least


def counter_pick(scheduler: str, dests: Sequence[Dest], counters: Mapping[DestKey, DestCounters]
                 ) -> tuple[Dest | None, str, dict[DestKey, dict[str, Any]]]:
    """lc, wlc, sed, nq, fo, ovf: the choice, why, and the figures per server."""
    def c(d: Dest) -> DestCounters:
        return counters.get(d.key, ZERO_DEST_COUNTERS)

    figures: dict[DestKey, dict[str, Any]] = {}
    for d in dests:
        act, inact = c(d).activeconns, c(d).inactconns
        entry: dict[str, Any] = {"active": act, "inactive": inact}
        if scheduler in ("lc", "wlc"):
            entry["overhead"] = act * 256 + inact
        elif scheduler in ("sed", "nq"):
            entry["overhead"] = act + 1
        if "overhead" in entry and d.weight > 0 and scheduler != "lc":
            entry["per_weight"] = round(entry["overhead"] / d.weight, 3)
        figures[d.key] = entry
    available = [d for d in dests if _available(d)]
    if not available:
        return None, "no real server with weight > 0", figures
    if scheduler == "lc":
        # lc ignores weights: compare overheads alone (weights act only as 0 = unavailable)
        best = min(available, key=lambda d: (figures[d.key]["overhead"], available.index(d)))
        return best, (f"lc: least overhead (active*256+inactive) = {figures[best.key]['overhead']}, "
                      "the first one listed on a tie"), figures
    if scheduler == "nq":
        idle = next((d for d in available if c(d).activeconns == 0), None)
        if idle is not None:
            return idle, "nq: the first server with no active connection", figures
    if scheduler in ("wlc", "sed", "nq"):
        best_ = _least(available, {k: v["overhead"] for k, v in figures.items()})
        assert best_ is not None
        what = "(active*256+inactive)/weight" if scheduler == "wlc" else "(active+1)/weight"
        return best_, (f"{scheduler}: least {what} = {figures[best_.key].get('per_weight')}, "
                       "the first one listed on a tie"), figures
    if scheduler == "fo":
        fo = max(available, key=lambda d: (d.weight, -available.index(d)))
        return fo, f"fo: the highest weight ({fo.weight}), the first one listed on a tie", figures
    assert scheduler == "ovf"
    under = [d for d in available if c(d).activeconns < d.weight]
    if not under:
        return None, "ovf: every server has as many active connections as its weight", figures
    ovf = max(under, key=lambda d: (d.weight, -under.index(d)))
    return ovf, f"ovf: the highest weight ({ovf.weight}) among servers with fewer active connections than it", figures


COUNTER_SCHEDULERS = ("lc", "wlc", "sed", "nq", "fo", "ovf")


# ---------------------------------------------------------------------------------------------- the tracer


def _masked(address: IPAddress, prefix: int | None) -> IPAddress:
    bits = address.max_prefixlen
    prefix = bits if prefix is None else prefix
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return network.network_address


def _service_protocol(service: Service) -> str:
    return "IP" if service.key.is_fwmark or service.key.protocol is None else service.key.protocol.name


TemplateKey: TypeAlias = tuple[str, IPAddress, IPAddress | None, int]


def _template_key(service: Service, client: IPAddress) -> TemplateKey:
    """``ip_vs_sched_persist``: <protocol, client & mask, 0, vaddr, vport>."""
    key = service.key
    masked = _masked(client, service.netmask)
    if key.is_fwmark:  # the mark stands in for the address, in its first 32 bits
        mark: IPAddress = (ipaddress.IPv4Address(key.fwmark) if key.family is Family.INET
                           else ipaddress.IPv6Address(key.fwmark << 96))
        return "IP", masked, mark, 0
    vport = key.port if key.port != FTP_PORT else 0
    return _service_protocol(service), masked, key.address, vport


def _endpoint(address: IPAddress, port: int) -> str:
    return str(DestKey(address, port))


def trace(client: IPAddress, client_port: int | None, given: TraceInput) -> Trace:
    """Which real server of ``given.service`` a packet from ``client`` (and ``client_port``, if known) reaches."""
    service = given.service
    dests = list(given.dests)
    in_table = {d.key: d for d in dests}
    steps: list[str] = []
    vip = given.vip if given.vip is not None else service.key.address
    protocol = _service_protocol(service)
    ours = [c for c in given.connections if c.dest_key() in in_table or c.dest_key() in given.absent]

    def candidates(figures: Mapping[DestKey, Mapping[str, Any]] | None = None) -> tuple[Candidate, ...]:
        out = []
        for d in dests:
            reason = "" if d.weight > 0 else "quiesced (weight 0): no new connections"
            out.append(Candidate(d.key, d.weight, d.weight > 0, reason, dict((figures or {}).get(d.key, {}))))
        for key, why in given.absent.items():
            if key not in in_table:
                out.append(Candidate(key, None, False, f"not in the table ({why})"))
        return tuple(out)

    # 1. an existing connection
    if client_port is not None:
        conn = next((c for c in ours if not c.template and c.client == client and c.client_port == client_port
                     and (service.key.is_fwmark or (c.vip == vip and service.key.port in (0, c.vport)))), None)
        if conn is not None:
            steps.append(f"connection {_endpoint(client, client_port)} → {conn.dest_key()} exists "
                         f"({conn.state}, expires in {conn.expires} s)")
            why = f"an existing {conn.state} connection goes to {conn.dest_key()} (expires in {conn.expires} s)"
            return Trace("connection", conn.dest_key(), why, candidates(), tuple(steps), connection=conn)
        steps.append(f"no connection from {_endpoint(client, client_port)} in the table")
    else:
        mine = [c for c in ours if not c.template and c.client == client]
        steps.append(f"no client port given: {len(mine)} existing connection(s) of {client} are not followed")

    # 2. a persistence template
    if service.persistent:
        t_proto, masked, t_vip, t_vport = _template_key(service, client)
        template = next((c for c in ours if c.template and c.protocol == t_proto and c.client == masked
                         and c.vip == t_vip and c.vport == t_vport), None)
        granularity = f"/{service.netmask}" if service.netmask is not None else ""
        if template is None:
            steps.append(f"persistent service: no template for {masked}{granularity}")
        else:
            dest = in_table.get(template.dest_key())
            if dest is None:
                steps.append(f"template for {masked}{granularity} → {template.dest_key()}, which is no longer in "
                             "the table: the kernel drops it and schedules anew")
            else:
                quiet = (" (quiesced, weight 0: the client still lands there unless "
                         "net.ipv4.vs.expire_quiescent_template=1)" if dest.weight <= 0 else "")
                steps.append(f"template for {masked}{granularity} → {dest.key}, expires in {template.expires} s")
                return Trace("template", dest.key, f"persistence template for {masked}{granularity} → {dest.key} "
                             f"for {template.expires} s more{quiet}", candidates(), tuple(steps), template=template)
    else:
        steps.append("not persistent: no template to look for")

    # 3. the scheduler
    scheduler = service.scheduler
    if scheduler == "sh":
        dest, why = sh_pick(dests, service.flags, client, client_port, protocol)
        steps.append(why)
        verdict: Verdict = "scheduler" if dest is not None else "none"
        if dest is None and "give CLIENT_IP:PORT" in why:
            verdict = "undetermined"
        return Trace(verdict, None if dest is None else dest.key, why, candidates(), tuple(steps))
    if scheduler == "dh":
        if vip is None:
            why = "dh hashes the destination address: give the address the client sends to"
            return Trace("undetermined", None, why, candidates(), (*steps, why))
        dest, why = dh_pick(dests, vip)
        steps.append(why)
        return Trace("scheduler" if dest else "none", None if dest is None else dest.key, why, candidates(),
                     tuple(steps))
    if scheduler in COUNTER_SCHEDULERS:
        dest, why, figures = counter_pick(scheduler, dests, given.counters)
        steps.append(why)
        return Trace("scheduler" if dest else "none", None if dest is None else dest.key, why,
                     candidates(figures), tuple(steps))
    eligible = [d for d in dests if d.weight > 0]
    if not eligible:
        why = f"{scheduler}: no real server with weight > 0"
        return Trace("none", None, why, candidates(), (*steps, why))
    if scheduler in ("rr", "wrr"):
        share = "in turn" if scheduler == "rr" else "in proportion to their weights"
        why = (f"{scheduler}: one of {len(eligible)} server(s) {share}; which one is next depends on the kernel's "
               "position in its list, which it does not export")
    else:
        why = f"{scheduler}: this scheduler's choice is not reproduced here (candidates listed)"
    steps.append(why)
    return Trace("undetermined", None, why, candidates(), tuple(steps))
