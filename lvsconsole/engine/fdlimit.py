"""The open-file limit the config needs, raised at start and on reload, as keepalived does (``set_max_file_limit``).

systemd and most shells start a service with a soft RLIMIT_NOFILE of 1024 (systemd's hard limit is 524288).
A health check that connects holds a socket while it runs, and the checks' concurrency is bounded by half the
soft limit (``check.service.default_concurrency``): with 1024, 512 checks in flight, so a farm of thousands
of real servers that are all down, each check waiting out its connect_timeout, falls behind its delay_loop.
keepalived raises its soft limit to what its config needs, at start and on reload (the checker process: 17 +
one per TCP/UDP/PING-style checker + one per SMTP alert + 10, ``check_daemon.c``; the VRRP process: two per
instance + 41, ``vrrp_daemon.c``). lvsconsole is one process, so it adds both up, with two per socket checker
(the concurrency bound is half the limit) and the checkers' spare sockets.

Only ever raised (an operator's higher limit stays), never above the hard limit, and a failure is reported
and the engine goes on with what it has. Scripts inherit the raised limit: it is what the config needs (tens
of thousands at most), not the hard limit, so nothing that sizes tables by the limit is hurt.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from dataclasses import dataclass

from lvsconsole.check._connect import SPARE_SOCKETS
from lvsconsole.config import model as m

BASE = 64
"""The engine's own files: event loop, signals, timers, netlink and raw sockets, control socket and its clients,
logs, the terminal of an embedded console."""
SPARE = 20
"""keepalived's "in case we have forgotten anything"."""
SOCKET_CHECKERS = (m.TcpCheck, m.HttpCheck, m.SmtpCheck, m.DnsCheck, m.UdpCheck, m.PingCheck, m.MiscCheck)
"""Checkers that hold a file while they run (a socket; MISC_CHECK the pipes of its script)."""

Limits = tuple[int, int]


def fds_needed(config: m.Config) -> int:
    """Files the engine may hold at once running ``config``."""
    checkers = sum(isinstance(checker, SOCKET_CHECKERS)
                   for vs in config.virtual_servers for rs in vs.real_servers for checker in rs.checkers)
    smtp_alerts = sum(bool(vs.smtp_alert) for vs in config.virtual_servers) + \
        sum(bool(inst.smtp_alert) for inst in config.instances)
    return BASE + 2 * checkers + (2 * SPARE_SOCKETS if checkers else 0) + 2 * len(config.instances) + \
        smtp_alerts + SPARE


@dataclass(frozen=True, slots=True)
class LimitChange:
    """What ``raise_open_file_limit`` did: ``before`` and ``after`` are soft limits; ``error`` why not at all."""

    needed: int
    before: int
    after: int
    error: str | None = None

    @property
    def complete(self) -> bool:
        return self.after >= self.needed

    @property
    def message(self) -> str:
        if self.complete:
            return f"Open file limit raised from {self.before} to {self.after} (the config needs {self.needed})"
        if self.after > self.before:
            return (f"Open file limit raised from {self.before} to {self.after}, the hard limit; the config needs "
                    f"{self.needed}: the checks run fewer at once")
        return f"Failed to set open file limit to {self.needed} (it stays {self.before}): {self.error}"


def raise_open_file_limit(needed: int, *, get: Callable[[int], Limits] = resource.getrlimit,
                          set_: Callable[[int, Limits], None] = resource.setrlimit) -> LimitChange | None:
    """Raise the soft RLIMIT_NOFILE to ``needed`` (at most the hard limit); None when it is already enough."""
    soft, hard = get(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return None
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target <= soft:
        return LimitChange(needed, soft, soft, error=f"the hard limit is {hard}")
    try:
        set_(resource.RLIMIT_NOFILE, (target, hard))
    except (OSError, ValueError) as exc:
        return LimitChange(needed, soft, soft, error=str(exc))
    return LimitChange(needed, soft, target)
