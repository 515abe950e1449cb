"""ha_suspend: a virtual server's checks run only while this director holds its address (sans-IO).

keepalived suspends the checkers of a ``virtual_server`` with ``ha_suspend`` while the VS address is not
configured on a local interface, and resumes them when it appears (its checker process follows address
events). In lvsconsole the VS addresses are the VRRP instances' VIPs, so the address is local exactly
while an instance that owns it (in ``virtual_ipaddress`` or ``virtual_ipaddress_excluded``) is MASTER:
:class:`HaSuspend` maps each such VS to the instances owning its address, and :meth:`HaSuspend.suspended`
says which VSs to suspend for a set of MASTER instances. A suspended checker keeps its state (as a
keepalived checker with ``enabled`` false keeps ``is_up``); its real servers keep their place in IPVS.

Not suspended, whatever the VRRP state: a fwmark or group virtual server (no single address to follow)
and one whose address no VRRP instance owns (nothing here would ever bring it up; such a VS is reported
by :meth:`HaSuspend.unowned` so that the director can warn).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from dataclasses import dataclass

from lvsconsole.check.policy import VirtualServerParams
from lvsconsole.config import model as m

__all__ = ["HaSuspend"]


@dataclass(frozen=True, slots=True)
class HaSuspend:
    owners: dict[str, frozenset[str]]
    """VS key (keepalived's ``[ip]:tcp:80``) with ha_suspend → the VRRP instances owning its address."""
    unowned: tuple[str, ...] = ()
    """VS keys with ha_suspend whose address no instance owns (never suspended)."""

    @classmethod
    def from_config(cls, config: m.Config) -> HaSuspend:
        holders: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, set[str]] = {}
        for inst in config.instances:
            for vip in (*inst.virtual_ipaddress, *inst.virtual_ipaddress_excluded):
                holders.setdefault(vip.address.ip, set()).add(inst.name)
        owners: dict[str, frozenset[str]] = {}
        unowned: list[str] = []
        for vs in config.virtual_servers:
            if not vs.ha_suspend or vs.address is None or vs.group is not None or vs.fwmark is not None:
                continue
            key = _vs_key(vs)
            names = holders.get(vs.address)
            if names:
                owners[key] = frozenset(names)
            else:
                unowned.append(key)
        return cls(owners, tuple(unowned))

    def suspended(self, masters: Collection[str]) -> frozenset[str]:
        """The VS keys whose checks must not run while exactly ``masters`` are MASTER."""
        return frozenset(key for key, names in self.owners.items() if names.isdisjoint(masters))


def _vs_key(vs: m.VirtualServer) -> str:
    params = VirtualServerParams(address=str(vs.address), port=vs.port or 0, protocol=vs.protocol.lower())
    return params.key
