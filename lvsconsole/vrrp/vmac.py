"""use_vmac: the VRRP virtual MAC (RFC 5798 7.3) on a macvlan interface, as keepalived creates it (vrrp_vmac.c).

The instance gets a macvlan in private mode on its interface, named ``vrrp.<VRID>`` (``vrrp6.<VRID>`` for an
IPv6 instance) unless use_vmac names it, with MAC 00-00-5E-00-01-<VRID> (IPv4) / 00-00-5E-00-02-<VRID> (IPv6).
Its virtual addresses go on it and its adverts leave from it (unless vmac_xmit_base), so the switches learn
the virtual MAC on the master's port and a takeover moves a MAC rather than changing one in every ARP cache.

The sysctls are keepalived's (vrrp_if_config.c):

- on the macvlan: arp_ignore=1 (never answer for the parent's addresses), accept_local=1 (hear another
  local instance's adverts), rp_filter=0 (receive while it has no address), promote_secondaries=1;
- on the parent: arp_ignore=1 and arp_filter=1 so that it does not answer for the VIPs with its own MAC;
  the old values come back when its last macvlan goes;
- if net.ipv4.conf.all.rp_filter is set, every interface gets the greater of its own and all's value and
  all becomes 0 (the kernel uses the maximum of all and the interface's); restored on the last release.

Addresses on other interfaces (keepalived 2.2+): with ``use_vmac_addr`` on the instance, every VIP/eVIP on
another interface than the instance's, or of the other address family, gets a macvlan of its own on that
interface with the VRRP MAC of its family; ``use_vmac`` written on one VIP/eVIP does the same for that address.
Such a macvlan is named from ``vmac_addr_prefix`` (default: ``vmac_prefix``, default ``vrrp``) as keepalived names
a second VMAC of a VRID: ``PREFIX.VRID`` if free, else ``PREFIX1.VRID``, ``PREFIX2.VRID`` ... A VIP of the
instance's family written with ``dev`` naming the instance's own interface is not on "a different interface": with
use_vmac it goes on the instance's VMAC like the VIPs without ``dev``.

The naming and the sysctl plans are pure; :class:`VmacManager` does the netlink and /proc work.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass, replace
from ipaddress import IPv6Address, ip_address
from pathlib import Path
from typing import TYPE_CHECKING

from lvsconsole.config.model import VirtualAddress

if TYPE_CHECKING:
    from pyroute2 import AsyncIPRoute

log = logging.getLogger("lvsconsole.vrrp")

VMAC_PREFIX = {4: "00:00:5e:00:01", 6: "00:00:5e:00:02"}
IFNAMSIZ = 15
IN6_ADDR_GEN_MODE_NONE = 1
SYSCTL_ROOT = Path("/proc/sys/net")

VMAC_SYSCTLS = {"arp_ignore": 1, "accept_local": 1, "rp_filter": 0, "promote_secondaries": 1}
BASE_SYSCTLS = {"arp_ignore": 1, "arp_filter": 1}


@dataclass(frozen=True, slots=True)
class VmacSpec:
    """The macvlan one instance runs on."""

    name: str
    base: str
    mac: str
    family: int
    xmit_base: bool = False


def _is_mac(word: str) -> bool:
    parts = word.replace("-", ":").split(":")
    return len(parts) in (5, 6) and all(len(p) in (1, 2) and all(c in "0123456789abcdefABCDEF" for c in p)
                                        for p in parts)


def vmac_spec(args: tuple[str, ...], *, vrid: int, base: str, family: int,
              xmit_base: bool = False, prefix: str = "vrrp") -> tuple[VmacSpec, list[str]]:
    """The macvlan of ``use_vmac [NAME] [MAC]`` and what was wrong with the arguments (``prefix``: vmac_prefix).

    A five-octet MAC gets the VRID as its last octet. As keepalived does, a bad name or MAC is reported and
    the default used instead."""
    default_name = f"{prefix}.{vrid}" if family == 4 else f"{prefix}6.{vrid}"
    name, mac = default_name, f"{VMAC_PREFIX[family]}:{vrid:02x}"
    problems: list[str] = []
    for word in args:
        if _is_mac(word):
            parts = [p.zfill(2).lower() for p in word.replace("-", ":").split(":")]
            if len(parts) == 5:
                parts.append(f"{vrid:02x}")
            if int(parts[0], 16) & 1:
                problems.append(f"use_vmac MAC {word} is a multicast address; using {mac}")
            else:
                mac = ":".join(parts)
        elif not word or len(word) > IFNAMSIZ or "/" in word or ":" in word or any(c.isspace() for c in word) \
                or not word.isprintable():
            problems.append(f"invalid use_vmac interface name {word!r}; using {default_name}")
        elif word == base:
            problems.append(f"use_vmac interface name {word} is the instance's own interface; using {default_name}")
        else:
            name = word
    return VmacSpec(name=name, base=base, mac=mac, family=family, xmit_base=xmit_base), problems


def free_vmac_name(prefix: str, vrid: int, taken: set[str]) -> str:
    """keepalived's name for one more VMAC of ``vrid``: PREFIX.VRID, else PREFIX1.VRID, PREFIX2.VRID ... (the first
    not in ``taken``, which it joins). A prefix too long for an interface name is cut short."""
    for n in itertools.count():
        suffix = f"{n or ''}.{vrid}"
        name = prefix[:IFNAMSIZ - len(suffix)] + suffix
        if name not in taken:
            taken.add(name)
            return name
    raise AssertionError("unreachable")


def address_vmacs(vips: tuple[VirtualAddress, ...], *, interface: str, family: int, vrid: int,
                  use_vmac_addr: bool, instance_vmac: VmacSpec | None, prefix: str,
                  taken: set[str]) -> tuple[tuple[VirtualAddress, ...], tuple[VmacSpec, ...]]:
    """Where each virtual address goes, and the macvlans of the addresses on other interfaces (pure).

    Returns the addresses with ``dev`` naming the interface they are added to (None: the instance's address
    interface) and one VmacSpec per (parent interface, family) that needs its own macvlan. ``taken``: VMAC names
    in use (the instances' own), extended with the names chosen here."""
    placed: list[VirtualAddress] = []
    made: dict[tuple[str, int], VmacSpec] = {}
    for vip in vips:
        base = vip.dev or interface
        vip_family = vip.address.version
        on_instance_link = base == interface and vip_family == family
        if on_instance_link and instance_vmac is not None:
            placed.append(replace(vip, dev=None))  # on the instance's VMAC, even if written "dev <interface>"
            continue
        if "use_vmac" in vip.flags or (use_vmac_addr and not on_instance_link):
            key = (base, vip_family)
            if key not in made:
                made[key] = VmacSpec(name=free_vmac_name(prefix, vrid, taken), base=base,
                                     mac=f"{VMAC_PREFIX[vip_family]}:{vrid:02x}", family=vip_family)
            placed.append(replace(vip, dev=made[key].name))
            continue
        placed.append(vip)
    return tuple(placed), tuple(made.values())


def rp_filter_plan(all_value: int, per_interface: Mapping[str, int]) -> dict[str, int]:
    """What keepalived writes when all.rp_filter is set: each interface (and default) to max(its value, all),
    then all to 0. Empty when all.rp_filter is 0. ``per_interface`` excludes ``all``."""
    if all_value == 0:
        return {}
    plan = {name: max(value, all_value) for name, value in per_interface.items() if max(value, all_value) != value}
    plan["all"] = 0
    return plan


# -------------------------------------------------------------------------------------------- sysctls


def _ipv4_conf(interface: str, key: str) -> Path:
    return SYSCTL_ROOT / "ipv4" / "conf" / interface / key


def read_sysctl(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def write_sysctl(path: Path, value: int) -> bool:
    try:
        path.write_text(f"{value}\n")
    except OSError as exc:
        log.warning("cannot set %s to %d: %s", path, value, exc)
        return False
    return True


# -------------------------------------------------------------------------------------------- the adapter


class VmacManager:
    """Creates and deletes the macvlans of the running instances, with keepalived's sysctls."""

    def __init__(self, *, dry_run: bool = False) -> None:
        self.dry_run = dry_run
        self._users: dict[str, int] = {}                  # macvlan name → instances using it
        self._base_users: dict[str, int] = {}             # parent → macvlans on it
        self._base_saved: dict[str, dict[str, int]] = {}  # parent → its sysctls before us
        self._rp_saved: dict[str, int] = {}               # interface (and all) → rp_filter before us

    async def ensure(self, spec: VmacSpec) -> None:
        """Create (or adopt, after a crash) the macvlan and bring it up; OSError if it cannot be."""
        if self._users.get(spec.name):
            self._users[spec.name] += 1
            return
        if self.dry_run:
            log.info("(dry run) would create VMAC %s on %s with MAC %s", spec.name, spec.base, spec.mac)
            self._users[spec.name] = 1
            return
        from pyroute2 import AsyncIPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        async with AsyncIPRoute() as ipr:
            bases = await ipr.link_lookup(ifname=spec.base)
            if not bases:
                raise OSError(f"no interface {spec.base} for VMAC {spec.name}")
            existing = await ipr.link_lookup(ifname=spec.name)
            if existing:
                # keepalived adopts a macvlan left behind by a crash if it fits, and replaces it otherwise
                link = next(iter([x async for x in await ipr.link("dump") if x["index"] == existing[0]]))
                info = link.get("IFLA_LINKINFO")
                if (info is None or info.get("IFLA_INFO_KIND") != "macvlan" or link.get("IFLA_LINK") != bases[0]
                        or str(link.get("address")).lower() != spec.mac):
                    log.info("Removing stale interface %s to create VMAC", spec.name)
                    await ipr.link("del", index=existing[0])
                    existing = []
            try:
                if not existing:
                    await ipr.link("add", ifname=spec.name, kind="macvlan", link=bases[0], macvlan_mode="private",
                                   address=spec.mac)
                index = (await ipr.link_lookup(ifname=spec.name))[0]
                self._configure(spec)
                if spec.family == 6:
                    await self._copy_link_local(ipr, bases[0], index)
                await ipr.link("set", index=index, state="up")
            except NetlinkError as exc:
                raise OSError(exc.code, f"cannot create VMAC {spec.name} on {spec.base}: {exc}") from exc
        log.info("VMAC %s created on %s with MAC %s", spec.name, spec.base, spec.mac)
        self._users[spec.name] = 1
        self._base_users[spec.base] = self._base_users.get(spec.base, 0) + 1

    def _configure(self, spec: VmacSpec) -> None:
        for key, value in VMAC_SYSCTLS.items():
            write_sysctl(_ipv4_conf(spec.name, key), value)
        if spec.family == 6:
            # the virtual MAC is the same on every router: an EUI-64 link-local from it would clash between
            # them, so the macvlan gets the parent's link-local instead (as keepalived does)
            write_sysctl(SYSCTL_ROOT / "ipv6" / "conf" / spec.name / "addr_gen_mode", IN6_ADDR_GEN_MODE_NONE)
        if spec.base not in self._base_saved:
            saved = {k: v for k in BASE_SYSCTLS if (v := read_sysctl(_ipv4_conf(spec.base, k))) is not None}
            self._base_saved[spec.base] = saved
            for key, value in BASE_SYSCTLS.items():
                if saved.get(key) != value:
                    write_sysctl(_ipv4_conf(spec.base, key), value)
        if spec.family == 4 and not self._rp_saved:
            self._clear_rp_filter()

    def _clear_rp_filter(self) -> None:
        conf = SYSCTL_ROOT / "ipv4" / "conf"
        all_value = read_sysctl(conf / "all" / "rp_filter") or 0
        current = {}
        with contextlib.suppress(OSError):
            for entry in conf.iterdir():
                value = read_sysctl(entry / "rp_filter")
                if entry.name != "all" and value is not None:
                    current[entry.name] = value
        plan = rp_filter_plan(all_value, current)
        for name, value in plan.items():
            self._rp_saved[name] = all_value if name == "all" else current[name]
            write_sysctl(conf / name / "rp_filter", value)
        if plan:
            log.info("net.ipv4.conf.all.rp_filter was %d: set on each interface instead, all set to 0", all_value)

    @staticmethod
    async def _copy_link_local(ipr: AsyncIPRoute, base_index: int, index: int) -> None:
        async for msg in await ipr.addr("dump", index=base_index, family=socket.AF_INET6):
            text = msg.get("address")
            if text is not None and (addr := ip_address(text)).is_link_local and isinstance(addr, IPv6Address):
                with contextlib.suppress(Exception):
                    await ipr.addr("add", index=index, address=str(addr), prefixlen=64, flags=0x02)
                return

    async def release(self, spec: VmacSpec) -> None:
        """One instance less on the macvlan; the last one deletes it and restores the parent's sysctls."""
        users = self._users.get(spec.name, 0)
        if users > 1:
            self._users[spec.name] = users - 1
            return
        self._users.pop(spec.name, None)
        if self.dry_run or users == 0:
            return
        from pyroute2 import AsyncIPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        async with AsyncIPRoute() as ipr:
            indexes = await ipr.link_lookup(ifname=spec.name)
            if indexes:
                with contextlib.suppress(NetlinkError):
                    await ipr.link("del", index=indexes[0])
                    log.info("VMAC %s removed", spec.name)
        remaining = self._base_users.get(spec.base, 1) - 1
        if remaining > 0:
            self._base_users[spec.base] = remaining
            return
        self._base_users.pop(spec.base, None)
        for key, value in self._base_saved.pop(spec.base, {}).items():
            if value != BASE_SYSCTLS[key]:
                write_sysctl(_ipv4_conf(spec.base, key), value)
        if not self._base_users:
            self._restore_rp_filter()

    def _restore_rp_filter(self) -> None:
        conf = SYSCTL_ROOT / "ipv4" / "conf"
        # all last: until then the per-interface values keep the filtering keepalived's users expect
        for name in sorted(self._rp_saved, key=lambda n: n == "all"):
            if (conf / name).exists():
                write_sysctl(conf / name / "rp_filter", self._rp_saved[name])
        self._rp_saved.clear()

    @property
    def active(self) -> dict[str, int]:
        return dict(self._users)
