"""The kernel IPVS backend: the ``Backend`` protocol over generic netlink (``include/uapi/linux/ip_vs.h``).

The wire format is the IPVS generic netlink family that pyroute2's ``AsyncIPVS`` speaks
(``pyroute2.netlink.generic.ipvs``), encoded and decoded here with ``struct``. pyroute2's per-message
objects cost about 1 ms to encode a single dest request (measured with pyroute2 0.9.7), which alone is
several times the budget for an 11,000-entry table, and pyroute2 has no sync-daemon, timeout or info
commands, so every message is built here from the ip_vs.h attributes:

- **Writes are batched.** ``apply`` packs many requests into one ``send`` (``batch_bytes`` per datagram).
  Only the last request of a batch asks for an acknowledgement; the kernel still reports every refused
  request (netlink always answers an error), so one receive per batch collects the outcome of the lot.
  A refusal raises ``IpvsError`` with the kernel's errno, libipvs's wording and the refused op; the
  kernel has worked through the rest of that batch, no later batch is sent (see ``backend``).
- **Reads are dumps.** One ``IPVS_CMD_GET_SERVICE`` dump, then one ``IPVS_CMD_GET_DEST`` dump per
  service (the kernel runs one dump at a time per socket). Entries are decoded through a cache keyed by
  their attribute bytes, so re-reading an unchanged table builds no new objects. Reads yield to the event
  loop every few milliseconds, so a 1 Hz stats poll of a large table does not stall it.
- **Two sockets**: commands on one, dumps on the other, so a weight change is never queued behind a
  stats dump.
- Counters come from the 64-bit ``*_STATS64`` attributes.
- ``netns="name"`` (or a path) works on the IPVS table of another network namespace (IPVS is per
  namespace): the sockets are created inside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import ipaddress
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from types import MappingProxyType
from typing import Final

from lvsconsole.ipvs.backend import (
    Counters,
    DestCounters,
    Info,
    Stats,
    SyncDaemon,
    SyncState,
    Timeouts,
)
from lvsconsole.ipvs.conntable import CONN_PROC, Connection, read_conn_table, read_conn_table_async
from lvsconsole.ipvs.reconcile import (
    AddDest,
    AddService,
    DeleteDest,
    DeleteService,
    EditDest,
    EditService,
    Flush,
    Op,
)
from lvsconsole.ipvs.table import (
    Dest,
    DestKey,
    Family,
    Fwd,
    IPAddress,
    IpvsError,
    Proto,
    Service,
    ServiceEntry,
    ServiceKey,
    SvcFlags,
    Table,
    TunFlags,
    TunType,
)

# --------------------------------------------------------------------------------------------------------
# Constants (linux/netlink.h, linux/genetlink.h, linux/ip_vs.h)
# --------------------------------------------------------------------------------------------------------

NETLINK_GENERIC: Final = 16
SOL_NETLINK: Final = 270
NETLINK_CAP_ACK: Final = 10
SO_RCVBUFFORCE: Final = 33
SO_SNDBUFFORCE: Final = 32
CLONE_NEWNET: Final = 0x40000000

NLMSG_ERROR: Final = 2
NLMSG_DONE: Final = 3
NLM_F_REQUEST: Final = 0x1
NLM_F_ACK: Final = 0x4
NLM_F_DUMP: Final = 0x300

GENL_ID_CTRL: Final = 0x10
CTRL_CMD_GETFAMILY: Final = 3
CTRL_ATTR_FAMILY_ID: Final = 1
CTRL_ATTR_FAMILY_NAME: Final = 2

IPVS_GENL_NAME: Final = "IPVS"
IPVS_GENL_VERSION: Final = 1

CMD_NEW_SERVICE: Final = 1
CMD_SET_SERVICE: Final = 2
CMD_DEL_SERVICE: Final = 3
CMD_GET_SERVICE: Final = 4
CMD_NEW_DEST: Final = 5
CMD_SET_DEST: Final = 6
CMD_DEL_DEST: Final = 7
CMD_GET_DEST: Final = 8
CMD_NEW_DAEMON: Final = 9
CMD_DEL_DAEMON: Final = 10
CMD_GET_DAEMON: Final = 11
CMD_SET_CONFIG: Final = 12
CMD_GET_CONFIG: Final = 13
CMD_GET_INFO: Final = 15
CMD_FLUSH: Final = 17

CMD_ATTR_SERVICE: Final = 1
CMD_ATTR_DEST: Final = 2
CMD_ATTR_DAEMON: Final = 3
CMD_ATTR_TIMEOUT_TCP: Final = 4
CMD_ATTR_TIMEOUT_TCP_FIN: Final = 5
CMD_ATTR_TIMEOUT_UDP: Final = 6

SVC_ATTR_AF: Final = 1
SVC_ATTR_PROTOCOL: Final = 2
SVC_ATTR_ADDR: Final = 3
SVC_ATTR_PORT: Final = 4
SVC_ATTR_FWMARK: Final = 5
SVC_ATTR_SCHED_NAME: Final = 6
SVC_ATTR_FLAGS: Final = 7
SVC_ATTR_TIMEOUT: Final = 8
SVC_ATTR_NETMASK: Final = 9
SVC_ATTR_STATS: Final = 10
SVC_ATTR_PE_NAME: Final = 11
SVC_ATTR_STATS64: Final = 12

DEST_ATTR_ADDR: Final = 1
DEST_ATTR_PORT: Final = 2
DEST_ATTR_FWD_METHOD: Final = 3
DEST_ATTR_WEIGHT: Final = 4
DEST_ATTR_U_THRESH: Final = 5
DEST_ATTR_L_THRESH: Final = 6
DEST_ATTR_ACTIVE_CONNS: Final = 7
DEST_ATTR_INACT_CONNS: Final = 8
DEST_ATTR_PERSIST_CONNS: Final = 9
DEST_ATTR_STATS: Final = 10
DEST_ATTR_ADDR_FAMILY: Final = 11
DEST_ATTR_STATS64: Final = 12
DEST_ATTR_TUN_TYPE: Final = 13
DEST_ATTR_TUN_PORT: Final = 14
DEST_ATTR_TUN_FLAGS: Final = 15

DAEMON_ATTR_STATE: Final = 1
DAEMON_ATTR_MCAST_IFN: Final = 2
DAEMON_ATTR_SYNC_ID: Final = 3
DAEMON_ATTR_SYNC_MAXLEN: Final = 4
DAEMON_ATTR_MCAST_GROUP: Final = 5
DAEMON_ATTR_MCAST_GROUP6: Final = 6
DAEMON_ATTR_MCAST_PORT: Final = 7
DAEMON_ATTR_MCAST_TTL: Final = 8

INFO_ATTR_VERSION: Final = 1
INFO_ATTR_CONN_TAB_SIZE: Final = 2

STATS_ATTR_FIRST: Final = 1  # CONNS .. OUTBPS are 1..10, PAD is 11
STATS_ATTR_LAST: Final = 10

IP_VS_CONN_F_FWD_MASK: Final = 0x7
IP_VS_IFNAME_MAXLEN: Final = 16

_NLMSGHDR = struct.Struct("=IHHII")
_GENLHDR = struct.Struct("=BBH")
_NLA = struct.Struct("=HH")
_U8 = struct.Struct("=B")
_U16 = struct.Struct("=H")
_BE16 = struct.Struct("!H")
_U32 = struct.Struct("=I")
_I32 = struct.Struct("=i")
_BE32 = struct.Struct("!I")
_U64 = struct.Struct("=Q")
_FLAGS = struct.Struct("=II")
_STATS64_PLAIN = struct.Struct("=" + "HHQ" * 10)
_STATS_TYPES = tuple(range(1, 11))
_STATS64_LENGTHS = (12,) * 10

_DEST_CONFIG_ATTRS: Final = (
    DEST_ATTR_ADDR,
    DEST_ATTR_PORT,
    DEST_ATTR_FWD_METHOD,
    DEST_ATTR_WEIGHT,
    DEST_ATTR_U_THRESH,
    DEST_ATTR_L_THRESH,
    DEST_ATTR_ADDR_FAMILY,
    DEST_ATTR_TUN_TYPE,
    DEST_ATTR_TUN_PORT,
    DEST_ATTR_TUN_FLAGS,
)

#: ``ipvs_strerror`` (libipvs) wording, per operation then per errno.
_OP_ERRORS: dict[tuple[type, int], str] = {
    (AddService, errno.EEXIST): "Service already exists",
    (AddService, errno.ENOENT): "Scheduler or persistence engine not found",
    (EditService, errno.ESRCH): "No such service",
    (EditService, errno.ENOENT): "Scheduler or persistence engine not found",
    (DeleteService, errno.ESRCH): "No such service",
    (AddDest, errno.ESRCH): "Service not defined",
    (AddDest, errno.EEXIST): "Destination already exists",
    (EditDest, errno.ESRCH): "Service not defined",
    (EditDest, errno.ENOENT): "No such destination",
    (DeleteDest, errno.ESRCH): "Service not defined",
    (DeleteDest, errno.ENOENT): "No such destination",
}
_ERRORS: dict[int, str] = {
    errno.EPERM: "Permission denied (you must be root)",
    errno.EINVAL: "Invalid operation.  Possibly wrong module version, address not unicast, ...",
    errno.ENOPROTOOPT: "Protocol not available",
    errno.ENOMEM: "Memory allocation problem",
    errno.EOPNOTSUPP: "Operation not supported with IPv6",
    errno.EAFNOSUPPORT: "Operation not supported with specified address family",
    errno.EMSGSIZE: "Module is wrong version",
}


def error_text(err: int, op: object | None = None) -> str:
    """libipvs's message for ``err`` (as a positive errno) raised by ``op``."""
    text = _OP_ERRORS.get((type(op), err)) or _ERRORS.get(err) or os.strerror(err)
    return text if op is None else f"{text} ({op})"


# --------------------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------------------


def nla(atype: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    length = 4 + len(payload)
    return _NLA.pack(length, atype) + payload + b"\0" * (-length & 3)


def _asciiz(text: str) -> bytes:
    return text.encode() + b"\0"


def _addr16(address: IPAddress) -> bytes:
    """``union nf_inet_addr`` as ipvsadm sends it (IPv4 in the first 4 of 16 bytes)."""
    return address.packed.ljust(16, b"\0")


def service_key_attrs(key: ServiceKey) -> bytes:
    """The identifying attributes of a service (the contents of a nested ``IPVS_CMD_ATTR_SERVICE``)."""
    out = nla(SVC_ATTR_AF, _U16.pack(int(key.family)))
    if key.fwmark:
        return out + nla(SVC_ATTR_FWMARK, _U32.pack(key.fwmark))
    assert key.protocol is not None and key.address is not None
    return (
        out
        + nla(SVC_ATTR_PROTOCOL, _U16.pack(int(key.protocol)))
        + nla(SVC_ATTR_ADDR, _addr16(key.address))
        + nla(SVC_ATTR_PORT, _BE16.pack(key.port))
    )


def _netmask_bytes(service: Service) -> bytes:
    """IPv4: the mask in network order; IPv6: the prefix length as a host-order u32 (as ipvsadm sends)."""
    if service.key.family is Family.INET6:
        return _U32.pack(128 if service.netmask is None else service.netmask)
    prefix = 32 if service.netmask is None else service.netmask
    return _BE32.pack((0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF)


def service_attrs(service: Service, key_attrs: bytes | None = None) -> bytes:
    """Every attribute of a service, for ``IPVS_CMD_NEW_SERVICE`` / ``IPVS_CMD_SET_SERVICE``."""
    flags = int(service.flags & ~SvcFlags.HASHED)
    out = key_attrs if key_attrs is not None else service_key_attrs(service.key)
    out += nla(SVC_ATTR_SCHED_NAME, _asciiz(service.scheduler))
    if service.pe:
        out += nla(SVC_ATTR_PE_NAME, _asciiz(service.pe))
    return (
        out
        + nla(SVC_ATTR_FLAGS, _FLAGS.pack(flags, 0xFFFFFFFF))
        + nla(SVC_ATTR_TIMEOUT, _U32.pack(service.timeout))
        + nla(SVC_ATTR_NETMASK, _netmask_bytes(service))
    )


def dest_key_attrs(dest: Dest | DestKey) -> bytes:
    return (
        nla(DEST_ATTR_ADDR, _addr16(dest.address))
        + nla(DEST_ATTR_PORT, _BE16.pack(dest.port))
        + nla(DEST_ATTR_ADDR_FAMILY, _U16.pack(int(Family.of(dest.address))))
    )


def dest_attrs(dest: Dest) -> bytes:
    """Every attribute of a dest, for ``IPVS_CMD_NEW_DEST`` / ``IPVS_CMD_SET_DEST``. The tunnel attributes
    (kernel 5.3+) are only sent for tunnel forwarding, so older kernels take every other dest."""
    out = (
        dest_key_attrs(dest)
        + nla(DEST_ATTR_FWD_METHOD, _U32.pack(int(dest.fwd)))
        + nla(DEST_ATTR_WEIGHT, _U32.pack(dest.weight & 0xFFFFFFFF))
        + nla(DEST_ATTR_U_THRESH, _U32.pack(dest.u_threshold))
        + nla(DEST_ATTR_L_THRESH, _U32.pack(dest.l_threshold))
    )
    if dest.fwd is Fwd.TUNNEL:
        out += (
            nla(DEST_ATTR_TUN_TYPE, _U8.pack(int(dest.tun_type)))
            + nla(DEST_ATTR_TUN_PORT, _BE16.pack(dest.tun_port))
            + nla(DEST_ATTR_TUN_FLAGS, _U16.pack(int(dest.tun_flags)))
        )
    return out


class OpEncoder:
    """Op -> (genl command, attributes). Caches the service-key attributes, which every dest op repeats."""

    def __init__(self) -> None:
        self._keys: dict[ServiceKey, bytes] = {}

    def service_attr(self, key: ServiceKey) -> bytes:
        """``IPVS_CMD_ATTR_SERVICE`` naming ``key`` (what dest commands and dest dumps carry)."""
        attrs = self._keys.get(key)
        if attrs is None:
            if len(self._keys) > 65536:
                self._keys.clear()
            attrs = self._keys[key] = nla(CMD_ATTR_SERVICE, service_key_attrs(key))
        return attrs

    def encode(self, op: Op) -> tuple[int, bytes]:
        match op:
            case AddDest(service, dest):
                return CMD_NEW_DEST, self.service_attr(service) + nla(CMD_ATTR_DEST, dest_attrs(dest))
            case EditDest(service, dest):
                return CMD_SET_DEST, self.service_attr(service) + nla(CMD_ATTR_DEST, dest_attrs(dest))
            case DeleteDest(service, dkey):
                return CMD_DEL_DEST, self.service_attr(service) + nla(CMD_ATTR_DEST, dest_key_attrs(dkey))
            case AddService(service):
                return CMD_NEW_SERVICE, nla(CMD_ATTR_SERVICE, service_attrs(service))
            case EditService(service):
                return CMD_SET_SERVICE, nla(CMD_ATTR_SERVICE, service_attrs(service))
            case DeleteService(key):
                return CMD_DEL_SERVICE, self.service_attr(key)
            case Flush():
                return CMD_FLUSH, b""
        raise TypeError(f"not an IPVS operation: {op!r}")


def genl_message(family: int, cmd: int, attrs: bytes, flags: int, seq: int) -> bytes:
    body = _GENLHDR.pack(cmd, IPVS_GENL_VERSION, 0) + attrs
    return _NLMSGHDR.pack(16 + len(body), family, flags, seq, 0) + body


# --------------------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------------------


def messages(data: bytes) -> Iterator[tuple[int, int, int, int]]:
    """(type, seq, payload start, end) of every netlink message in a datagram."""
    pos, size = 0, len(data)
    while pos + 16 <= size:
        length, mtype, _flags, seq, _pid = _NLMSGHDR.unpack_from(data, pos)
        if length < 16 or pos + length > size:
            break
        yield mtype, seq, pos + 16, pos + length
        pos += (length + 3) & ~3


def parse_attrs(data: bytes, pos: int, end: int) -> dict[int, tuple[int, int]]:
    """Attribute type -> (payload start, payload end); nested/byte-order flag bits are dropped."""
    out: dict[int, tuple[int, int]] = {}
    unpack = _NLA.unpack_from
    while pos + 4 <= end:
        length, atype = unpack(data, pos)
        if length < 4:
            break
        out[atype & 0x3FFF] = (pos + 4, pos + length)
        pos += (length + 3) & ~3
    return out


def _u8(data: bytes, a: dict[int, tuple[int, int]], t: int, default: int = 0) -> int:
    span = a.get(t)
    return default if span is None else int(_U8.unpack_from(data, span[0])[0])


def _u16(data: bytes, a: dict[int, tuple[int, int]], t: int, default: int = 0) -> int:
    span = a.get(t)
    return default if span is None else int(_U16.unpack_from(data, span[0])[0])


def _be16(data: bytes, a: dict[int, tuple[int, int]], t: int, default: int = 0) -> int:
    span = a.get(t)
    return default if span is None else int(_BE16.unpack_from(data, span[0])[0])


def _u32(data: bytes, a: dict[int, tuple[int, int]], t: int, default: int = 0) -> int:
    span = a.get(t)
    return default if span is None else int(_U32.unpack_from(data, span[0])[0])


def _str(data: bytes, a: dict[int, tuple[int, int]], t: int) -> str:
    span = a.get(t)
    if span is None:
        return ""
    return data[span[0] : span[1]].split(b"\0", 1)[0].decode(errors="replace")


def _address(data: bytes, span: tuple[int, int], family: int) -> IPAddress:
    if family == socket.AF_INET6:
        return ipaddress.IPv6Address(data[span[0] : span[0] + 16])
    return ipaddress.IPv4Address(data[span[0] : span[0] + 4])


def _prefix_of_mask(mask: int) -> int:
    """Leading ones of a 32-bit mask (a non-contiguous mask set by someone else reads as its popcount)."""
    prefix = bin(mask).count("1")
    return prefix


def decode_service(data: bytes, a: dict[int, tuple[int, int]]) -> Service | None:
    """A ``Service`` from the attributes of a nested ``IPVS_CMD_ATTR_SERVICE`` (None: not representable,
    e.g. a protocol other than TCP/UDP/SCTP)."""
    af = _u16(data, a, SVC_ATTR_AF)
    try:
        family = Family(af)
        fwmark = _u32(data, a, SVC_ATTR_FWMARK)
        if fwmark:
            key = ServiceKey(family, fwmark=fwmark)
        else:
            key = ServiceKey(
                family,
                Proto(_u16(data, a, SVC_ATTR_PROTOCOL)),
                _address(data, a[SVC_ATTR_ADDR], af),
                _be16(data, a, SVC_ATTR_PORT),
            )
    except (ValueError, KeyError):
        return None
    flags = 0
    span = a.get(SVC_ATTR_FLAGS)
    if span is not None:
        flags = _FLAGS.unpack_from(data, span[0])[0]
    netmask: int | None = None
    span = a.get(SVC_ATTR_NETMASK)
    if span is not None:
        if family is Family.INET6:
            netmask = min(int(_U32.unpack_from(data, span[0])[0]), 128)
        else:
            netmask = _prefix_of_mask(int(_BE32.unpack_from(data, span[0])[0]))
    return Service(
        key,
        _str(data, a, SVC_ATTR_SCHED_NAME),
        SvcFlags(flags),
        _u32(data, a, SVC_ATTR_TIMEOUT),
        netmask,
        _str(data, a, SVC_ATTR_PE_NAME),
    )


def decode_dest(data: bytes, a: dict[int, tuple[int, int]], service_family: int) -> Dest:
    af = _u16(data, a, DEST_ATTR_ADDR_FAMILY, service_family)
    fwd = _u32(data, a, DEST_ATTR_FWD_METHOD) & IP_VS_CONN_F_FWD_MASK
    tun_type = _u8(data, a, DEST_ATTR_TUN_TYPE)
    tun_flags = _u16(data, a, DEST_ATTR_TUN_FLAGS)
    return Dest(
        _address(data, a[DEST_ATTR_ADDR], af),
        _be16(data, a, DEST_ATTR_PORT),
        Fwd(fwd) if fwd <= 3 else Fwd.ROUTE,
        _I32.unpack_from(data, a[DEST_ATTR_WEIGHT][0])[0] if DEST_ATTR_WEIGHT in a else 0,
        _u32(data, a, DEST_ATTR_U_THRESH),
        _u32(data, a, DEST_ATTR_L_THRESH),
        TunType(tun_type) if tun_type <= 2 else TunType.IPIP,
        _be16(data, a, DEST_ATTR_TUN_PORT),
        TunFlags(tun_flags) if tun_flags <= 2 else TunFlags.NOCSUM,
    )


def decode_stats64(data: bytes, span: tuple[int, int] | None) -> list[int]:
    """The ten counters of a nested ``*_STATS64`` (conns, inpkts, outpkts, inbytes, outbytes, cps, inpps,
    outpps, inbps, outbps)."""
    if span is None:
        return [0] * 10
    pos, end = span
    if end - pos == 120:  # no padding attributes (x86 and others with efficient unaligned access)
        fast = _STATS64_PLAIN.unpack_from(data, pos)
        if fast[1::3] == _STATS_TYPES and fast[0::3] == _STATS64_LENGTHS:
            return list(fast[2::3])
    values = [0] * 10
    unpack_nla, unpack_u64 = _NLA.unpack_from, _U64.unpack_from
    while pos + 4 <= end:
        length, atype = unpack_nla(data, pos)
        if length < 4:
            break
        if STATS_ATTR_FIRST <= atype <= STATS_ATTR_LAST and length >= 12:
            values[atype - 1] = unpack_u64(data, pos + 4)[0]
        pos += (length + 3) & ~3
    return values


def decode_stats32(data: bytes, span: tuple[int, int] | None) -> list[int]:
    """The 32-bit ``*_STATS`` (kernels before 4.1 have no STATS64): byte counters are u64 there too."""
    values = [0] * 10
    if span is None:
        return values
    for atype, (start, end) in parse_attrs(data, span[0], span[1]).items():
        if STATS_ATTR_FIRST <= atype <= STATS_ATTR_LAST:
            values[atype - 1] = (_U64 if end - start >= 8 else _U32).unpack_from(data, start)[0]
    return values


def _counters(data: bytes, a: dict[int, tuple[int, int]], stats: int, stats64: int) -> list[int]:
    if stats64 in a:
        return decode_stats64(data, a[stats64])
    return decode_stats32(data, a.get(stats))


def _key_bytes(data: bytes, a: dict[int, tuple[int, int]], types: Sequence[int]) -> bytes:
    """The raw attributes ``types`` (headers included): a cache key for what they decode to."""
    parts = []
    for t in types:
        span = a.get(t)
        if span is not None:
            parts.append(data[span[0] - 4 : span[1]])
    return b"".join(parts)


# --------------------------------------------------------------------------------------------------------
# Sockets
# --------------------------------------------------------------------------------------------------------


def enter_netns(path: str) -> None:
    """Move the calling *thread* into the network namespace at ``path`` (setns(2), CLONE_NEWNET)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def netns_path(netns: str) -> str:
    return netns if "/" in netns else f"/run/netns/{netns}"


def netlink_socket(netns: str | None = None) -> socket.socket:
    """A generic netlink socket, created inside network namespace ``netns`` (a name under /run/netns or a
    path such as /proc/PID/ns/net). The namespace is entered by a short-lived thread, so the calling
    thread's namespace never changes."""
    if netns is None:
        return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
    result: list[socket.socket] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            enter_netns(netns_path(netns))
            result.append(socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC))
        except BaseException as exc:  # handed to the caller
            failure.append(exc)

    thread = threading.Thread(target=work, name=f"netns-{netns}")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def read_conn_table_in_netns(netns: str) -> list[Connection]:
    """``/proc/net/ip_vs_conn`` of network namespace ``netns``, read by a short-lived thread that enters it
    (``/proc/net`` follows the process's main thread, ``/proc/thread-self/net`` the reading thread)."""
    result: list[list[Connection]] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            enter_netns(netns_path(netns))
            result.append(read_conn_table("/proc/thread-self/net/ip_vs_conn"))
        except BaseException as exc:  # handed to the caller
            failure.append(exc)

    thread = threading.Thread(target=work, name=f"netns-{netns}-conns")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def _set_buffer(sock: socket.socket, force: int, plain: int, size: int) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, force, size)
    except OSError:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, plain, size)


class _Channel:
    """One netlink socket with its own sequence numbers; ``lock`` serialises transactions on it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        _set_buffer(sock, SO_SNDBUFFORCE, socket.SO_SNDBUF, 1 << 20)
        _set_buffer(sock, SO_RCVBUFFORCE, socket.SO_RCVBUF, 4 << 20)
        with contextlib.suppress(OSError):  # error acks without a copy of the request (Linux 4.2+)
            sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        sock.bind((0, 0))
        self._seq = int(time.time()) & 0xFFFFFF
        self.lock = asyncio.Lock()

    def seqs(self, count: int) -> int:
        """Reserve ``count`` consecutive sequence numbers; return the first."""
        if self._seq + count >= 0x7FFFFFFF:
            self._seq = 0
        first = self._seq + 1
        self._seq += count
        return first

    def send(self, data: bytes) -> None:
        try:
            sent = self.sock.send(data)
        except OSError as exc:
            raise IpvsError(exc.errno or errno.EIO, f"netlink send: {os.strerror(exc.errno or errno.EIO)}") from exc
        if sent != len(data):
            raise IpvsError(errno.EMSGSIZE, f"netlink send: {sent} of {len(data)} bytes sent")

    async def recv(self, timeout: float) -> bytes:
        """The next datagram. The kernel answers requests while they are sent, so the answer is usually
        queued already: only when it is not does this wait (on the event loop, at most ``timeout``)."""
        try:
            return self.sock.recv(65536)
        except BlockingIOError:
            pass
        except OSError as exc:
            raise self._recv_error(exc) from exc
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                return await loop.sock_recv(self.sock, 65536)
        except TimeoutError:
            raise IpvsError(errno.ETIMEDOUT, f"no answer from the kernel within {timeout:g} s") from None
        except OSError as exc:
            raise self._recv_error(exc) from exc

    @staticmethod
    def _recv_error(exc: OSError) -> IpvsError:
        err = exc.errno or errno.EIO
        if err == errno.ENOBUFS:
            return IpvsError(err, "netlink receive buffer overrun: replies were lost; read the table back")
        return IpvsError(err, f"netlink receive: {os.strerror(err)}")

    def recv_blocking(self, timeout: float) -> bytes:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(65536)
        finally:
            self.sock.setblocking(False)

    def close(self) -> None:
        self.sock.close()


def _resolve_family(ch: _Channel, timeout: float) -> int:
    """The generic netlink family id of IPVS (CTRL_CMD_GETFAMILY), synchronously. Raises ``IpvsError``
    ENOENT when the ip_vs module is not loaded."""
    seq = ch.seqs(1)
    attrs = nla(CTRL_ATTR_FAMILY_NAME, _asciiz(IPVS_GENL_NAME))
    body = _GENLHDR.pack(CTRL_CMD_GETFAMILY, 1, 0) + attrs
    ch.sock.setblocking(True)
    ch.send(_NLMSGHDR.pack(16 + len(body), GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body)
    deadline = time.monotonic() + timeout
    family: int | None = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise IpvsError(errno.ETIMEDOUT, "no answer from generic netlink (CTRL_CMD_GETFAMILY)")
        try:
            data = ch.recv_blocking(remaining)
        except TimeoutError:
            continue
        for mtype, mseq, start, end in messages(data):
            if mseq != seq:
                continue
            if mtype == NLMSG_ERROR:
                err = -_I32.unpack_from(data, start)[0]
                if err:
                    raise IpvsError(err, f"IPVS generic netlink family: {os.strerror(err)}")
                if family is None:
                    raise IpvsError(errno.ENOENT, "IPVS generic netlink family: no family id in the answer")
                return family
            if mtype == GENL_ID_CTRL:
                a = parse_attrs(data, start + 4, end)
                if CTRL_ATTR_FAMILY_ID in a:
                    family = _u16(data, a, CTRL_ATTR_FAMILY_ID)


def _modprobe(module: str) -> bool:
    exe = shutil.which("modprobe") or shutil.which("modprobe", path="/usr/sbin:/sbin")
    if exe is None:
        return False
    try:
        return subprocess.run([exe, "-q", module], timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# --------------------------------------------------------------------------------------------------------
# The backend
# --------------------------------------------------------------------------------------------------------


class KernelBackend:
    """The kernel's IPVS table (of this network namespace, or of ``netns``).

    ``KernelBackend()`` opens its sockets and looks up the IPVS netlink family at once (running
    ``modprobe ip_vs`` first if the family is missing and ``load_module``); it raises ``IpvsError``
    (ENOPROTOOPT) when IPVS is not available. ``batch_bytes`` bounds one send of ``apply``.

    Counters for tests and benchmarks: ``requests_sent`` (netlink requests ``apply``/``flush`` sent: one
    per op), ``sends`` (datagrams those went in).
    """

    def __init__(
        self,
        netns: str | None = None,
        *,
        load_module: bool = True,
        batch_bytes: int = 32 * 1024,
        timeout: float = 30.0,
        yield_every: float = 0.004,
    ) -> None:
        self.netns = netns
        self.batch_bytes = max(batch_bytes, 1024)
        self.timeout = timeout
        self.yield_every = yield_every
        self.requests_sent = 0
        self.sends = 0
        self._last_pause = time.perf_counter()
        self._encoder = OpEncoder()
        self._svc_cache: dict[bytes, Service | None] = {}
        self._dest_cache: dict[bytes, Dest] = {}
        self._cmd = _Channel(netlink_socket(netns))
        try:
            try:
                self.family = _resolve_family(self._cmd, timeout)
            except IpvsError as exc:
                if exc.errno != errno.ENOENT or not load_module or not _modprobe("ip_vs"):
                    raise IpvsError(
                        errno.ENOPROTOOPT,
                        f"IPVS is not available ({exc.strerror}); is the ip_vs kernel module loaded?",
                    ) from exc
                self.family = _resolve_family(self._cmd, timeout)
            self._dump = _Channel(netlink_socket(netns))
        except BaseException:
            self._cmd.close()
            raise
        self._cmd.sock.setblocking(False)
        self._dump.sock.setblocking(False)
        self.closed = False

    def __repr__(self) -> str:
        where = f" netns={self.netns}" if self.netns else ""
        return f"<KernelBackend{where} family={self.family}>"

    # ------------------------------------------------------------------ transactions
    def _message(self, ch: _Channel, cmd: int, attrs: bytes, flags: int) -> tuple[bytes, int]:
        seq = ch.seqs(1)
        return genl_message(self.family, cmd, attrs, flags, seq), seq

    async def _request(self, ch: _Channel, cmd: int, attrs: bytes = b"", op: object | None = None) -> list[bytes]:
        """One request with an acknowledgement; returns the payloads (after the genl header) of the
        replies that came before the ack. Caller holds ``ch.lock``."""
        data, seq = self._message(ch, cmd, attrs, NLM_F_REQUEST | NLM_F_ACK)
        ch.send(data)
        replies: list[bytes] = []
        while True:
            chunk = await ch.recv(self.timeout)
            for mtype, mseq, start, end in messages(chunk):
                if mseq != seq:
                    continue
                if mtype == NLMSG_ERROR:
                    err = -_I32.unpack_from(chunk, start)[0]
                    if err:
                        raise IpvsError(err, error_text(err, op), op)
                    return replies
                if mtype == self.family:
                    replies.append(chunk[start + 4 : end])

    async def _dump_request(self, ch: _Channel, cmd: int, attrs: bytes = b"") -> list[tuple[bytes, int, int]]:
        """A dump: (datagram, attributes start, end) of every reply message. Caller holds ``ch.lock``."""
        # A dump abandoned half-way (a cancelled read) still runs on this socket, and the kernel runs one
        # dump at a time per socket (EBUSY): every receive moves that dump on, so asking again gets there.
        for _ in range(1000):
            try:
                return await self._dump_once(ch, cmd, attrs)
            except IpvsError as exc:
                if exc.errno != errno.EBUSY:
                    raise
        raise IpvsError(errno.EBUSY, "another netlink dump keeps this socket busy")

    async def _dump_once(self, ch: _Channel, cmd: int, attrs: bytes) -> list[tuple[bytes, int, int]]:
        data, seq = self._message(ch, cmd, attrs, NLM_F_REQUEST | NLM_F_DUMP)
        ch.send(data)
        out: list[tuple[bytes, int, int]] = []
        family = self.family
        while True:
            chunk = await ch.recv(self.timeout)
            await self._pause()
            for mtype, mseq, start, end in messages(chunk):
                if mseq != seq:
                    continue
                if mtype == family:
                    out.append((chunk, start + 4, end))
                elif mtype in (NLMSG_DONE, NLMSG_ERROR):
                    err = -_I32.unpack_from(chunk, start)[0] if end - start >= 4 else 0
                    if err:
                        raise IpvsError(err, error_text(err))
                    return out

    async def _pause(self) -> None:
        """Let the event loop run if this task has had it for ``yield_every`` seconds (long reads)."""
        now = time.perf_counter()
        if now - self._last_pause > self.yield_every:
            await asyncio.sleep(0)
            self._last_pause = time.perf_counter()

    # ------------------------------------------------------------------ writes
    async def apply(self, ops: Sequence[Op]) -> None:
        if not ops:
            return
        ch = self._cmd
        family = self.family
        encode = self._encoder.encode
        genl_pack = _GENLHDR.pack
        head_pack = _NLMSGHDR.pack
        async with ch.lock:
            index, count = 0, len(ops)
            while index < count:
                first_index = index
                parts: list[bytes] = []
                size = 0
                while index < count and size < self.batch_bytes:
                    cmd, attrs = encode(ops[index])
                    parts.append(genl_pack(cmd, IPVS_GENL_VERSION, 0) + attrs)
                    size += 20 + len(attrs)
                    index += 1
                first_seq = ch.seqs(len(parts))
                last_seq = first_seq + len(parts) - 1
                datagram = b"".join(
                    head_pack(16 + len(body), family, NLM_F_REQUEST | (NLM_F_ACK if seq == last_seq else 0), seq, 0)
                    + body
                    for seq, body in enumerate(parts, start=first_seq)
                )
                ch.send(datagram)
                self.sends += 1
                self.requests_sent += len(parts)
                errors = await self._batch_outcome(ch, first_seq, last_seq)
                if errors:
                    seq = min(errors)
                    op = ops[first_index + seq - first_seq]
                    err = errors[seq]
                    text = error_text(err, op)
                    if len(errors) > 1:
                        text += f"; {len(errors) - 1} later operation(s) of the same batch were refused too"
                    raise IpvsError(err, text, op)
                if index < count:
                    await asyncio.sleep(0)

    async def _batch_outcome(self, ch: _Channel, first_seq: int, last_seq: int) -> dict[int, int]:
        """Errors (seq -> errno) of a batch, read up to the acknowledgement of its last request."""
        errors: dict[int, int] = {}
        while True:
            chunk = await ch.recv(self.timeout)
            done = False
            for mtype, seq, start, _end in messages(chunk):
                if mtype != NLMSG_ERROR or not first_seq <= seq <= last_seq:
                    continue
                err = -_I32.unpack_from(chunk, start)[0]
                if err:
                    errors[seq] = err
                if seq == last_seq:
                    done = True
            if done:
                return errors

    async def flush(self) -> None:
        async with self._cmd.lock:
            self.requests_sent += 1
            self.sends += 1
            await self._request(self._cmd, CMD_FLUSH, op=Flush())

    # ------------------------------------------------------------------ reads
    async def read_table(self) -> Table:
        table, _ = await self._read(stats=False)
        return table

    async def read_stats(self) -> Stats:
        _, stats = await self._read(stats=True)
        assert stats is not None
        return stats

    async def read_snapshot(self) -> tuple[Table, Stats]:
        """The table and its counters from one pass over the kernel (what a listing needs)."""
        table, stats = await self._read(stats=True)
        assert stats is not None
        return table, stats

    async def _read(self, *, stats: bool) -> tuple[Table, Stats | None]:
        ch = self._dump
        svc_cache, dest_cache = self._svc_cache, self._dest_cache
        new_svc_cache: dict[bytes, Service | None] = {}
        new_dest_cache: dict[bytes, Dest] = {}
        entries: dict[ServiceKey, ServiceEntry] = {}
        svc_counters: dict[ServiceKey, Counters] = {}
        dest_counters: dict[tuple[ServiceKey, DestKey], DestCounters] = {}
        async with ch.lock:
            services: list[Service] = []
            for chunk, start, end in await self._dump_request(ch, CMD_GET_SERVICE):
                top = parse_attrs(chunk, start, end)
                span = top.get(CMD_ATTR_SERVICE)
                if span is None:
                    continue
                a = parse_attrs(chunk, span[0], span[1])
                stats_at = min((a[t][0] - 4 for t in (SVC_ATTR_STATS, SVC_ATTR_STATS64) if t in a), default=span[1])
                ckey = chunk[span[0] : stats_at]
                if ckey in new_svc_cache:
                    service = new_svc_cache[ckey]
                elif ckey in svc_cache:
                    service = new_svc_cache[ckey] = svc_cache[ckey]
                else:
                    service = new_svc_cache[ckey] = decode_service(chunk, a)
                if service is None or service.key in entries:
                    continue
                services.append(service)
                entries[service.key] = ServiceEntry(service, MappingProxyType({}))
                if stats:
                    svc_counters[service.key] = Counters(*_counters(chunk, a, SVC_ATTR_STATS, SVC_ATTR_STATS64))
                await self._pause()
            service_attr = self._encoder.service_attr
            for service in services:
                skey = service.key
                request = service_attr(skey)
                dmap: dict[DestKey, Dest] = {}
                for chunk, start, end in await self._dump_request(ch, CMD_GET_DEST, request):
                    top = parse_attrs(chunk, start, end)
                    span = top.get(CMD_ATTR_DEST)
                    if span is None:
                        continue
                    a = parse_attrs(chunk, span[0], span[1])
                    ckey = _key_bytes(chunk, a, _DEST_CONFIG_ATTRS)
                    dest = new_dest_cache.get(ckey) or dest_cache.get(ckey)
                    if dest is None:
                        try:
                            dest = decode_dest(chunk, a, int(skey.family))
                        except (ValueError, KeyError):
                            continue
                    new_dest_cache[ckey] = dest
                    dmap[dest.key] = dest
                    if stats:
                        values = _counters(chunk, a, DEST_ATTR_STATS, DEST_ATTR_STATS64)
                        values.append(_u32(chunk, a, DEST_ATTR_ACTIVE_CONNS))
                        values.append(_u32(chunk, a, DEST_ATTR_INACT_CONNS))
                        values.append(_u32(chunk, a, DEST_ATTR_PERSIST_CONNS))
                        dest_counters[(skey, dest.key)] = DestCounters(*values)
                if dmap:
                    entries[skey] = ServiceEntry(service, MappingProxyType(dmap))
                await self._pause()
        self._svc_cache, self._dest_cache = new_svc_cache, new_dest_cache
        table = Table._wrap(entries)
        if not stats:
            return table, None
        return table, Stats(MappingProxyType(svc_counters), MappingProxyType(dest_counters))

    async def read_dests(self, service: ServiceKey) -> dict[DestKey, DestCounters]:
        """One ``IPVS_CMD_GET_DEST`` dump of ``service``: far cheaper than ``read_stats`` on a large table."""
        out: dict[DestKey, DestCounters] = {}
        ch = self._dump
        dest_cache = self._dest_cache
        async with ch.lock:
            for chunk, start, end in await self._dump_request(ch, CMD_GET_DEST, self._encoder.service_attr(service)):
                span = parse_attrs(chunk, start, end).get(CMD_ATTR_DEST)
                if span is None:
                    continue
                a = parse_attrs(chunk, span[0], span[1])
                dest = dest_cache.get(_key_bytes(chunk, a, _DEST_CONFIG_ATTRS))
                if dest is None:
                    try:
                        dest = decode_dest(chunk, a, int(service.family))
                    except (ValueError, KeyError):
                        continue
                values = _counters(chunk, a, DEST_ATTR_STATS, DEST_ATTR_STATS64)
                values.append(_u32(chunk, a, DEST_ATTR_ACTIVE_CONNS))
                values.append(_u32(chunk, a, DEST_ATTR_INACT_CONNS))
                values.append(_u32(chunk, a, DEST_ATTR_PERSIST_CONNS))
                out[dest.key] = DestCounters(*values)
        return out

    async def read_info(self) -> Info:
        async with self._cmd.lock:
            replies = await self._request(self._cmd, CMD_GET_INFO)
        for payload in replies:
            a = parse_attrs(payload, 0, len(payload))
            return Info.from_code(_u32(payload, a, INFO_ATTR_VERSION), _u32(payload, a, INFO_ATTR_CONN_TAB_SIZE))
        raise IpvsError(errno.EPROTO, "IPVS_CMD_GET_INFO: no reply")

    # ------------------------------------------------------------------ timeouts
    async def read_timeouts(self) -> Timeouts:
        async with self._cmd.lock:
            replies = await self._request(self._cmd, CMD_GET_CONFIG)
        for payload in replies:
            a = parse_attrs(payload, 0, len(payload))
            return Timeouts(
                _u32(payload, a, CMD_ATTR_TIMEOUT_TCP),
                _u32(payload, a, CMD_ATTR_TIMEOUT_TCP_FIN),
                _u32(payload, a, CMD_ATTR_TIMEOUT_UDP),
            )
        raise IpvsError(errno.EPROTO, "IPVS_CMD_GET_CONFIG: no reply")

    async def set_timeouts(self, timeouts: Timeouts) -> None:
        if min(timeouts.tcp, timeouts.tcpfin, timeouts.udp) < 0:
            raise IpvsError(errno.EINVAL, "Invalid operation: negative timeout")
        attrs = b""
        for atype, value in (
            (CMD_ATTR_TIMEOUT_TCP, timeouts.tcp),
            (CMD_ATTR_TIMEOUT_TCP_FIN, timeouts.tcpfin),
            (CMD_ATTR_TIMEOUT_UDP, timeouts.udp),
        ):
            if value:
                attrs += nla(atype, _U32.pack(value))
        if not attrs:
            return
        async with self._cmd.lock:
            await self._request(self._cmd, CMD_SET_CONFIG, attrs, op="set timeouts")

    # ------------------------------------------------------------------ sync daemons
    async def start_sync_daemon(
        self,
        state: SyncState,
        ifname: str,
        syncid: int,
        *,
        maxlen: int = 0,
        group: IPAddress | None = None,
        port: int = 0,
        ttl: int = 0,
    ) -> None:
        state = SyncState(state)
        if not ifname or len(ifname.encode()) >= IP_VS_IFNAME_MAXLEN:
            raise IpvsError(errno.EINVAL, f"Invalid operation: bad interface name {ifname!r}")
        attrs = (
            nla(DAEMON_ATTR_STATE, _U32.pack(int(state)))
            + nla(DAEMON_ATTR_MCAST_IFN, _asciiz(ifname))
            + nla(DAEMON_ATTR_SYNC_ID, _U32.pack(syncid))
        )
        if maxlen:
            attrs += nla(DAEMON_ATTR_SYNC_MAXLEN, _U16.pack(maxlen))
        if group is not None:
            if group.version == 4:
                attrs += nla(DAEMON_ATTR_MCAST_GROUP, group.packed)
            else:
                attrs += nla(DAEMON_ATTR_MCAST_GROUP6, group.packed)
        if port:
            attrs += nla(DAEMON_ATTR_MCAST_PORT, _U16.pack(port))
        if ttl:
            attrs += nla(DAEMON_ATTR_MCAST_TTL, _U8.pack(ttl))
        what = f"start {state.name.lower()} sync daemon on {ifname} syncid {syncid}"
        async with self._cmd.lock:
            try:
                await self._request(self._cmd, CMD_NEW_DAEMON, nla(CMD_ATTR_DAEMON, attrs), op=what)
            except IpvsError as exc:
                if exc.errno == errno.EEXIST:
                    raise IpvsError(exc.errno, f"Daemon has already run ({what})", what) from None
                raise

    async def stop_sync_daemon(self, state: SyncState) -> None:
        state = SyncState(state)
        what = f"stop {state.name.lower()} sync daemon"
        async with self._cmd.lock:
            try:
                await self._request(
                    self._cmd,
                    CMD_DEL_DAEMON,
                    nla(CMD_ATTR_DAEMON, nla(DAEMON_ATTR_STATE, _U32.pack(int(state)))),
                    op=what,
                )
            except IpvsError as exc:
                if exc.errno == errno.ESRCH:
                    raise IpvsError(exc.errno, f"No daemon is running ({what})", what) from None
                raise

    async def read_sync_daemons(self) -> list[SyncDaemon]:
        async with self._dump.lock:
            replies = await self._dump_request(self._dump, CMD_GET_DAEMON)
        out: list[SyncDaemon] = []
        for chunk, start, end in replies:
            span = parse_attrs(chunk, start, end).get(CMD_ATTR_DAEMON)
            if span is None:
                continue
            a = parse_attrs(chunk, span[0], span[1])
            group: IPAddress | None = None
            if DAEMON_ATTR_MCAST_GROUP in a:
                s = a[DAEMON_ATTR_MCAST_GROUP]
                group = ipaddress.IPv4Address(chunk[s[0] : s[0] + 4])
            elif DAEMON_ATTR_MCAST_GROUP6 in a:
                s = a[DAEMON_ATTR_MCAST_GROUP6]
                group = ipaddress.IPv6Address(chunk[s[0] : s[0] + 16])
            try:
                state = SyncState(_u32(chunk, a, DAEMON_ATTR_STATE))
            except ValueError:
                continue
            out.append(
                SyncDaemon(
                    state,
                    _str(chunk, a, DAEMON_ATTR_MCAST_IFN),
                    _u32(chunk, a, DAEMON_ATTR_SYNC_ID),
                    _u16(chunk, a, DAEMON_ATTR_SYNC_MAXLEN),
                    group,
                    _u16(chunk, a, DAEMON_ATTR_MCAST_PORT),
                    _u8(chunk, a, DAEMON_ATTR_MCAST_TTL),
                )
            )
        return sorted(out, key=lambda d: int(d.state))

    async def read_connections(self) -> list[Connection]:
        # Not over netlink: IPVS exports its connection table only through /proc/net, which is per namespace
        if self.netns is None:
            return await read_conn_table_async(CONN_PROC)
        return await asyncio.to_thread(read_conn_table_in_netns, self.netns)

    # ------------------------------------------------------------------ lifecycle
    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._cmd.close()
            self._dump.close()

    async def __aenter__(self) -> KernelBackend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


__all__ = [
    "KernelBackend",
    "OpEncoder",
    "error_text",
    "messages",
    "netlink_socket",
    "parse_attrs",
]
