"""Follows the kernel's address, route and rule deletions (rtnetlink multicast groups) for vrrp/owned.py.

One pyroute2 socket joined to the IPv4/IPv6 address, route and rule groups; each RTM_DELADDR / RTM_DELROUTE /
RTM_DELRULE is decoded into an :mod:`lvsconsole.vrrp.owned` record and handed to the callback, in the order the
kernel sent them. The decision what a deletion means is the callback's (pure, in owned.py).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

from lvsconsole.vrrp.owned import Gone, address_gone, route_gone, rule_gone
from lvsconsole.vrrp.rtnl_watch import RtnlSubscription

log = logging.getLogger("lvsconsole.vrrp")


def interface_name(index: int) -> str | None:
    try:
        return socket.if_indextoname(index)
    except OSError:
        return None


def decode(msg: Any) -> Gone | None:
    """The deletion a monitor message reports, or None for anything else."""
    event = msg.get("event")
    if event == "RTM_DELADDR":
        return address_gone(msg, interface_name)
    if event == "RTM_DELROUTE":
        return route_gone(msg, interface_name)
    if event == "RTM_DELRULE":
        return rule_gone(msg)
    return None


class DeletionWatch:
    """Reports the addresses, routes and rules deleted on the host while it runs."""

    def __init__(self, on_gone: Callable[[Gone], None]) -> None:
        self._on_gone = on_gone
        self._deletions = RtnlSubscription("vrrp deletion watch", self._on_message)

    async def start(self) -> None:
        from pyroute2.netlink.rtnl import (
            RTMGRP_IPV4_IFADDR,
            RTMGRP_IPV4_ROUTE,
            RTMGRP_IPV4_RULE,
            RTMGRP_IPV6_IFADDR,
            RTMGRP_IPV6_ROUTE,
            RTMGRP_IPV6_RULE,
        )

        await self._deletions.open(RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE
                                   | RTMGRP_IPV4_RULE | RTMGRP_IPV6_RULE)
        self._deletions.follow()

    def _on_message(self, msg: Any) -> None:
        try:
            gone = decode(msg)
        except (KeyError, ValueError, TypeError) as exc:  # a message we cannot read must not stop the watch
            log.debug("ignoring an unreadable netlink message: %s", exc)
            return
        if gone is not None:
            self._on_gone(gone)

    async def stop(self) -> None:
        await self._deletions.close()
