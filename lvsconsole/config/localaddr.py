"""Which addresses this host can bind, remembered for as long as the host's addresses stay the same.

``validate`` warns about a real server that is a local address of the director by trying to bind it (exact:
it is what the kernel says). One bind per real server is most of the validation of keepalived #2318's 37,298
real servers, and every reload validates again. The answers only change when the host's addresses or local
routes change, which the kernel's own listings show: while those read the same, the answers are kept.
"""

from __future__ import annotations

import hashlib
from ipaddress import IPv4Address, IPv6Address

# IPv4: bind() asks the local routing table (fib_trie lists its LOCAL and BROADCAST entries); IPv6: the
# interface and anycast addresses; both give way to ip_nonlocal_bind.
HOST_STATE = (
    "/proc/net/fib_trie",
    "/proc/net/if_inet6",
    "/proc/net/anycast6",
    "/proc/sys/net/ipv4/ip_nonlocal_bind",
    "/proc/sys/net/ipv6/ip_nonlocal_bind",
)


def host_fingerprint(paths: tuple[str, ...] = HOST_STATE) -> bytes | None:
    """A digest of the host's address state, or None when it cannot be read (then nothing is remembered)."""
    digest = hashlib.blake2b(digest_size=16)
    for path in paths:
        try:
            with open(path, "rb") as fh:
                digest.update(fh.read())
        except OSError:
            return None
        digest.update(b"\0")
    return digest.digest()


class LocalAddressMemo:
    """``answers()``: the dict of bind answers to use now, emptied whenever the host fingerprint changes."""

    def __init__(self, paths: tuple[str, ...] = HOST_STATE) -> None:
        self._paths = paths
        self._fingerprint: bytes | None = None
        self._answers: dict[IPv4Address | IPv6Address, bool] = {}

    def answers(self) -> dict[IPv4Address | IPv6Address, bool]:
        fingerprint = host_fingerprint(self._paths)
        if fingerprint is None or fingerprint != self._fingerprint:
            self._fingerprint = fingerprint
            self._answers = {}
        return self._answers


HOST_LOCAL = LocalAddressMemo()
"""The process's memo (validate.py)."""
