"""Operator actions to syslog (journald reads /dev/log): who did what, and what changed.

Every state-changing command already reaches the event stream as an ``OperatorAction``; this forwards those
records to the system log so that they outlive the process and land where an auditor looks. The syslog
socket is optional: without one (a container, a test) the audit stays on the event stream only.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import socket

from lvsconsole.engine.bus import Subscription
from lvsconsole.engine.events import OperatorAction

DEFAULT_SYSLOG = "/dev/log"
IDENT = "lvsconsole"


def audit_line(action: OperatorAction) -> str:
    """One syslog message: greppable key=value fields, then the changes."""
    verdict = "ok" if action.ok else "refused"
    line = f"AUDIT who={action.who!r} command={action.command!r} result={verdict}"
    if action.message:
        line += f" message={action.message!r}"
    if action.changes:
        line += " changes=" + "; ".join(action.changes)
    return line


def syslog_priority(action: OperatorAction) -> int:
    return logging.handlers.SysLogHandler.LOG_NOTICE if action.ok else logging.handlers.SysLogHandler.LOG_WARNING


class SyslogAudit:
    """Sends audit lines to a syslog datagram socket (RFC 3164 framing, as glibc's syslog(3) does)."""

    def __init__(self, address: str = DEFAULT_SYSLOG,
                 facility: int = logging.handlers.SysLogHandler.LOG_AUTHPRIV) -> None:
        self.address = address
        self.facility = facility
        self._sock: socket.socket | None = None

    def open(self) -> bool:
        """False when there is no syslog socket to talk to (the audit then stays on the event stream)."""
        if not os.path.exists(self.address):
            return False
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.connect(self.address)
        except OSError:
            sock.close()
            return False
        sock.setblocking(False)
        self._sock = sock
        return True

    def send(self, action: OperatorAction) -> None:
        if self._sock is None:
            return
        pri = (self.facility << 3) | syslog_priority(action)
        message = f"<{pri}>{IDENT}[{os.getpid()}]: {audit_line(action)}"
        # a full or vanished syslog socket must never block or break the engine
        with contextlib.suppress(OSError):
            self._sock.send(message.encode("utf-8", "backslashreplace"))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


async def forward_audit(subscription: Subscription, sink: SyslogAudit) -> None:
    async for event in subscription:
        if isinstance(event, OperatorAction):
            sink.send(event)
