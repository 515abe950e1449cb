"""A synchronous rtnetlink request channel: one NETLINK_ROUTE socket, one request at a time, its errno back.

The virtual and static addresses (vrrp/addresses.py), routes and rules (vrrp/routes.py) change over it. The
requests are synchronous on purpose: the kernel handles an rtnetlink request inside the send call and queues its
acknowledgement before the call returns, so a change costs tens of microseconds. Becoming MASTER can therefore
add the addresses, routes and rules right after the first advert, in the same event-loop step, as keepalived
does. The asyncio adapter never waits on the network for it.

Encoding a request with pyroute2 costs ~150 us and sending it ~20-50 us, so requests are encoded once, with
sequence number 0, and kept as templates (:class:`Templates`); :meth:`RtnlChannel.request` patches the next
sequence number into a copy of one as it sends it.
"""

from __future__ import annotations

import errno
import itertools
import select
import socket
import struct
from collections.abc import Callable, Hashable
from typing import Generic, Literal, TypeVar

NLMSG_ERROR = 2
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
ACK_TIMEOUT = 1.0
TEMPLATE_LIMIT = 4096  # far more than any config's requests; a bound all the same, as entries of old configs pile up

Command = Literal["add", "del"]

_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence number, port id
_SEQUENCE = struct.Struct("=I")
_SEQUENCE_OFFSET = 8
_ERRNO = struct.Struct("=i")  # nlmsgerr.error, negated, right after the header

Key = TypeVar("Key", bound=Hashable)


def request_flags(command: Command) -> int:
    """The header flags of a change: acknowledged always; an add creates and fails on an existing entry, as
    ``ip addr add`` / ``ip route add`` / ``ip rule add`` do."""
    return NLM_F_REQUEST | NLM_F_ACK | ((NLM_F_CREATE | NLM_F_EXCL) if command == "add" else 0)


def ack_errno(reply: bytes, seq: int) -> int | None:
    """The errno (0: done) of the acknowledgement of request ``seq`` in one datagram from the kernel, None if the
    datagram does not hold it (pure)."""
    offset = 0
    while offset + _HEADER.size <= len(reply):
        length, kind, _flags, rseq, _pid = _HEADER.unpack_from(reply, offset)
        if kind == NLMSG_ERROR and rseq == seq and offset + _HEADER.size + _ERRNO.size <= len(reply):
            return -int(_ERRNO.unpack_from(reply, offset + _HEADER.size)[0])
        if length < _HEADER.size:
            return None
        offset += (length + 3) & ~3
    return None


class RtnlChannel:
    """One NETLINK_ROUTE socket sending one request at a time and returning the errno of its acknowledgement."""

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self._seq = itertools.count(1)

    def open(self) -> socket.socket:
        """The socket, opened now if it is not yet (OSError if it cannot be)."""
        if self._sock is None:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
            sock.bind((0, 0))
            # non-blocking, not a timeout: with a timeout Python polls before every send and recv, ~5-10 us each
            # on the takeover path, although the acknowledgement is always queued already (see request)
            sock.setblocking(False)
            self._sock = sock
        return self._sock

    def request(self, template: bytes) -> int:
        """Send ``template`` under the next sequence number and return the errno (0 for success) of the kernel's
        acknowledgement; OSError if the send fails, TimeoutError if no acknowledgement comes."""
        sock = self._sock or self.open()
        seq = next(self._seq) & 0x7FFFFFFF
        data = bytearray(template)
        _SEQUENCE.pack_into(data, _SEQUENCE_OFFSET, seq)
        sock.send(data)
        while True:
            try:
                reply = sock.recv(65536)
            except BlockingIOError:
                # not expected (the kernel acknowledges inside send), but never wait unbounded
                if not select.select([sock], [], [], ACK_TIMEOUT)[0]:
                    raise TimeoutError(errno.ETIMEDOUT, "no acknowledgement from the kernel") from None
                continue
            # a datagram without our acknowledgement is a late one of a request that timed out: skip it
            code = ack_errno(reply, seq)
            if code is not None:
                return code

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class Templates(Generic[Key]):
    """Requests encoded once (with sequence number 0), by whatever identifies them: for a takeover to pay for
    sending them only."""

    def __init__(self, limit: int = TEMPLATE_LIMIT) -> None:
        self._limit = limit
        self._encoded: dict[Key, bytes] = {}

    def get(self, key: Key, encode: Callable[[], bytes], *, fresh: bool = False) -> bytes:
        """The template of ``key``, encoded by ``encode`` if it is not kept yet or ``fresh`` is asked for."""
        data = self._encoded.get(key)
        if data is None or fresh:
            data = encode()
            if len(self._encoded) >= self._limit:
                self._encoded.clear()
            self._encoded[key] = data
        return data

    def __len__(self) -> int:
        return len(self._encoded)
