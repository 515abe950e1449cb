"""UDP_CHECK: send one datagram on a connected UDP socket and listen for a reply or an ICMP error.

keepalived's rules (``check_udp.c``, ``layer4.c``):

* The datagram is ``payload`` or, without one, 32 bytes of ``"keepalived check - "`` repeated.
* An ICMP destination unreachable (the kernel reports it on the connected socket as ECONNREFUSED,
  EHOSTUNREACH …) is a failure: "UDP connection to [ip]:udp:port failed."
* Silence for ``connect_timeout`` is a *success* unless ``require_reply`` is set (UDP cannot tell an
  idle service from a lost datagram; only the ICMP error says "closed").
* With ``require_reply HEX``, a reply must start with those bytes, where ``X`` digits are wildcards;
  only the first min(reply, pattern) bytes are compared, as keepalived does.
* ``min_reply_length`` / ``max_reply_length`` (default 0 / 255) bound the reply's length whenever a
  reply is required. keepalived applies them only together with a reply pattern, which contradicts its
  man page; lvsconsole follows the man page.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

from lvsconsole.check import _net
from lvsconsole.check.policy import CheckOutcome

__all__ = ["DEFAULT_PAYLOAD", "UdpChecker", "parse_reply_pattern"]


def _default_payload(size: int = 32) -> bytes:
    text = b"keepalived check - "
    return (text * (size // len(text) + 1))[:size]


DEFAULT_PAYLOAD = _default_payload()

_SUCCESS = "UDP connection to {rs} success."
_FAILED = "UDP connection to {rs} failed."
_MISMATCH = "UDP check to {rs} reply data mismatch."


def parse_reply_pattern(text: str) -> tuple[bytes, bytes]:
    """``"01XX03"`` → (data, mask): mask bits set where the pattern has an ``X`` (don't care) nibble."""
    if len(text) % 2:
        text = "0" + text
    data = bytearray()
    mask = bytearray()
    for i in range(0, len(text), 2):
        value = 0
        m = 0
        for nibble in text[i : i + 2]:
            value <<= 4
            m <<= 4
            if nibble in "xX":
                m |= 0xF
            else:
                value |= int(nibble, 16)
        data.append(value)
        mask.append(m)
    return bytes(data), bytes(mask)


@dataclass(slots=True)
class UdpChecker:
    host: str
    port: int
    payload: bytes | None = None
    require_reply: bool = False
    reply_data: bytes = b""
    reply_mask: bytes = b""
    min_reply_length: int = 0
    max_reply_length: int = 255
    connect_timeout: float = 5.0
    binding: _net.Binding = _net.NO_BINDING

    @property
    def timeout(self) -> float:
        return self.connect_timeout

    async def check(self) -> CheckOutcome:
        loop = asyncio.get_running_loop()
        try:
            family, addr = await _net.resolve(self.host, self.port, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
            sock = _net.make_socket(family, socket.SOCK_DGRAM, socket.IPPROTO_UDP, self.binding)
        except OSError as exc:
            return CheckOutcome(False, _FAILED, reason=_net.os_reason(exc))
        try:
            try:
                sock.connect(addr)
                sock.send(DEFAULT_PAYLOAD if self.payload is None else self.payload)
            except OSError as exc:
                return CheckOutcome(False, _FAILED, reason=_net.os_reason(exc))
            try:
                async with asyncio.timeout(self.connect_timeout):
                    reply = await loop.sock_recv(sock, self.max_reply_length + 1 if self.require_reply else 1)
            except TimeoutError:
                if self.require_reply:
                    return CheckOutcome(False, _FAILED, reason="no reply")
                return CheckOutcome(True, _SUCCESS, reason="no ICMP error")
            except OSError as exc:
                return CheckOutcome(False, _FAILED, reason=_net.os_reason(exc))
        finally:
            sock.close()
        if self.require_reply:
            problem = self._judge(reply)
            if problem:
                return CheckOutcome(False, _MISMATCH, reason=problem)
        return CheckOutcome(True, _SUCCESS)

    def _judge(self, reply: bytes) -> str:
        n = len(reply)
        if n < self.min_reply_length:
            return f"reply of {n} bytes is shorter than {self.min_reply_length}"
        if n > self.max_reply_length:
            return f"reply is longer than {self.max_reply_length} bytes"
        for i in range(min(n, len(self.reply_data))):
            care = ~self.reply_mask[i] & 0xFF if i < len(self.reply_mask) else 0xFF
            if (reply[i] ^ self.reply_data[i]) & care:
                return f"reply byte {i} is {reply[i]:#04x}"
        return ""
