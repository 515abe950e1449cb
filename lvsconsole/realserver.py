"""The real-server side of LVS-DR and LVS-TUN: ``lvsconsole realserver start|stop|status --vip VIP…``.

What the ``lvs_real`` script of the classic two-director set-up does, done right:

- DR: every VIP as a host address (/32, /128) on ``lo``; IPv4 ones with the label ``lo:0`` (IPv6
  addresses carry no label).
- TUN: every IPv4 VIP on ``tunl0`` (``modprobe ipip`` when it is missing) with reverse-path filtering
  relaxed for it (``tunl0`` 0, and ``all`` loose instead of strict, since the kernel uses the larger of the
  two); IPv6 VIPs on ``ip6tnl0`` (``modprobe ip6_tunnel``). The tunnel device is brought up.
- With an IPv4 VIP: ``arp_ignore=1`` and ``arp_announce=2`` on ``all`` and ``lo``, so the real server
  accepts packets for the VIP but never answers ARP for it nor uses it as an ARP source. The sysctls are
  set before the first VIP appears and restored after the last one is gone.

``start`` is idempotent. The values it changed are recorded (first seen value only) in a state file under
/run/lvsconsole (one per network namespace), and ``stop`` puts exactly those values back, not blindly 0.
``status`` says what is set and what is missing: exit 0 when complete, 3 when not.
Addresses go through pyroute2 (netlink), sysctls through /proc/sys, both in the caller's network namespace.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
Mode: TypeAlias = Literal["dr", "tun"]
MODES: tuple[Mode, ...] = ("dr", "tun")

STATE_DIR = Path("/run/lvsconsole")
DEFAULT_STATE = STATE_DIR / "realserver.json"
SYSCTL_ROOT = Path("/proc/sys")
DR_LABEL = "lo:0"
TUN4, TUN6 = "tunl0", "ip6tnl0"
TUN_MODULES = {TUN4: "ipip", TUN6: "ip6_tunnel"}

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3


class RealServerError(RuntimeError):
    """Something the real-server set-up cannot do; the message says what and why."""


# ---------------------------------------------------------------------------------------------- what is wanted


@dataclass(frozen=True)
class Vip:
    address: IPAddress
    mode: Mode

    @classmethod
    def parse(cls, text: str, mode: Mode) -> Vip:
        """``10.0.0.100``, ``10.0.0.100/32``, ``2001:db8::100`` (a host address: /32 or /128 only)."""
        try:
            iface = ipaddress.ip_interface(text.strip())
        except ValueError:
            raise RealServerError(f"--vip {text!r} is not an IP address") from None
        if iface.network.prefixlen != iface.max_prefixlen:
            raise RealServerError(f"--vip {text}: a VIP is a host address (/{iface.max_prefixlen}), not a network")
        return cls(iface.ip, mode)

    @property
    def version(self) -> int:
        return self.address.version

    @property
    def prefixlen(self) -> int:
        return 32 if self.version == 4 else 128

    @property
    def device(self) -> str:
        if self.mode == "dr":
            return "lo"
        return TUN4 if self.version == 4 else TUN6

    @property
    def label(self) -> str | None:
        return DR_LABEL if self.mode == "dr" and self.version == 4 else None

    def __str__(self) -> str:
        return f"{self.address}/{self.prefixlen}"

    def describe(self) -> str:
        return f"{self} on {self.device}" + (f" (label {self.label})" if self.label else "")

    def as_json(self) -> dict[str, Any]:
        return {"address": str(self.address), "mode": self.mode}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Vip:
        return cls(ipaddress.ip_address(data["address"]), data["mode"])


@dataclass(frozen=True)
class Want:
    """A sysctl the set-up needs: ``target`` is written when the value is not in ``accept``."""

    key: str
    target: str
    accept: tuple[str, ...]
    why: str

    @property
    def path(self) -> Path:
        return sysctl_path(self.key)


def sysctl_path(key: str) -> Path:
    return SYSCTL_ROOT.joinpath(*key.split("."))


def wanted_sysctls(vips: Iterable[Vip]) -> list[Want]:
    vips = list(vips)
    wants: list[Want] = []
    if any(v.version == 4 for v in vips):
        for dev in ("all", "lo"):
            wants.append(Want(f"net.ipv4.conf.{dev}.arp_ignore", "1", ("1",),
                              "answer ARP only for addresses of the receiving interface"))
            wants.append(Want(f"net.ipv4.conf.{dev}.arp_announce", "2", ("2",),
                              "never use the VIP as the source of an ARP request"))
    if any(v.version == 4 and v.mode == "tun" for v in vips):
        # the kernel applies max(all, tunl0): tunl0 0 with all strict (1) would still drop decapsulated packets
        wants.append(Want(f"net.ipv4.conf.{TUN4}.rp_filter", "0", ("0", "2"),
                          "accept decapsulated packets from clients routed elsewhere"))
        wants.append(Want("net.ipv4.conf.all.rp_filter", "2", ("0", "2"),
                          "loose, not strict, reverse-path filtering (the kernel uses the larger value)"))
    return wants


# ---------------------------------------------------------------------------------------------- sysctls


def read_sysctl(key: str) -> str | None:
    try:
        return sysctl_path(key).read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RealServerError(f"cannot read {key}: {exc.strerror or exc}") from None


def write_sysctl(key: str, value: str) -> None:
    try:
        sysctl_path(key).write_text(f"{value}\n")
    except PermissionError:
        raise RealServerError(f"cannot set {key}={value}: permission denied (run as root)") from None
    except OSError as exc:
        raise RealServerError(f"cannot set {key}={value}: {exc.strerror or exc}") from None


# ---------------------------------------------------------------------------------------------- addresses


@dataclass(frozen=True)
class AddrInfo:
    address: IPAddress
    prefixlen: int
    label: str | None


class Links:
    """The network namespace's links and addresses, through pyroute2."""

    def __init__(self) -> None:
        from pyroute2 import IPRoute

        self.ipr = IPRoute()

    def close(self) -> None:
        self.ipr.close()

    def __enter__(self) -> Links:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def index(self, ifname: str) -> int | None:
        found = self.ipr.link_lookup(ifname=ifname)
        return int(found[0]) if found else None

    def is_up(self, ifname: str) -> bool:
        idx = self.index(ifname)
        if idx is None:
            return False
        link = self.ipr.get_links(idx)[0]
        return bool(int(link["flags"]) & 1)  # IFF_UP

    def set_up(self, ifname: str, up: bool = True) -> None:
        idx = self.index(ifname)
        if idx is None:
            raise RealServerError(f"no interface {ifname}")
        self.ipr.link("set", index=idx, state="up" if up else "down")

    def addresses(self, ifname: str) -> list[AddrInfo]:
        idx = self.index(ifname)
        if idx is None:
            return []
        out = []
        for msg in self.ipr.get_addr(index=idx):
            text = msg.get("IFA_LOCAL") or msg.get("IFA_ADDRESS")
            if text is None:
                continue
            out.append(AddrInfo(ipaddress.ip_address(text), int(msg["prefixlen"]), msg.get("IFA_LABEL")))
        return out

    def find(self, vip: Vip) -> AddrInfo | None:
        return next((a for a in self.addresses(vip.device) if a.address == vip.address), None)

    def add(self, vip: Vip) -> None:
        idx = self.index(vip.device)
        if idx is None:
            raise RealServerError(f"no interface {vip.device} for {vip}")
        kwargs: dict[str, Any] = {"index": idx, "address": str(vip.address), "prefixlen": vip.prefixlen}
        if vip.label:
            kwargs["label"] = vip.label
        if vip.version == 6:
            kwargs["family"] = socket.AF_INET6
        try:
            self.ipr.addr("add", **kwargs)
        except Exception as exc:
            raise RealServerError(f"cannot add {vip.describe()}: {exc}") from None

    def remove(self, vip: Vip, prefixlen: int) -> None:
        idx = self.index(vip.device)
        if idx is None:
            return
        kwargs: dict[str, Any] = {"index": idx, "address": str(vip.address), "prefixlen": prefixlen}
        if vip.version == 6:
            kwargs["family"] = socket.AF_INET6
        try:
            self.ipr.addr("del", **kwargs)
        except Exception as exc:
            raise RealServerError(f"cannot remove {vip} from {vip.device}: {exc}") from None


def ensure_tunnel_device(links: Links, ifname: str) -> list[str]:
    """Load the tunnel module if its fallback device is missing; returns what was done."""
    if links.index(ifname) is not None:
        return []
    module = TUN_MODULES[ifname]
    try:
        proc = subprocess.run(["modprobe", module], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise RealServerError(f"{ifname} is missing and modprobe is not installed (package kmod)") from None
    if proc.returncode != 0 or links.index(ifname) is None:
        why = proc.stderr.strip() or f"modprobe {module} did not create {ifname}"
        raise RealServerError(f"TUN mode needs {ifname}: {why}")
    return [f"loaded module {module} ({ifname})"]


# ---------------------------------------------------------------------------------------------- the state file


def netns_id() -> str:
    """The caller's network namespace, e.g. ``net:[4026531840]``."""
    try:
        return os.readlink("/proc/self/ns/net")
    except OSError:
        return "net:[unknown]"


def live_netns() -> set[str]:
    """Network namespaces that still exist: named ones (/run/netns) and those of running processes."""
    live = {netns_id()}
    with contextlib.suppress(OSError):
        for entry in os.scandir("/run/netns"):
            with contextlib.suppress(OSError):
                live.add(f"net:[{entry.stat().st_ino}]")
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                live.add(os.readlink(f"/proc/{entry.name}/ns/net"))
    return live


@dataclass
class State:
    """What ``start`` did in one network namespace, so that ``stop`` can undo exactly that."""

    vips: list[Vip] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)
    """key → the value found before we first changed it."""
    links_up: list[str] = field(default_factory=list)
    """Interfaces we brought up."""

    @property
    def empty(self) -> bool:
        return not self.vips and not self.sysctls and not self.links_up

    def has(self, vip: Vip) -> bool:
        return any(v.address == vip.address for v in self.vips)

    def as_json(self) -> dict[str, Any]:
        return {"vips": [v.as_json() for v in self.vips], "sysctls": self.sysctls, "links_up": self.links_up}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> State:
        return cls([Vip.from_json(v) for v in data.get("vips", [])], {str(k): str(v) for k, v in
                   data.get("sysctls", {}).items()}, [str(d) for d in data.get("links_up", [])])


class StateFile:
    """The record of every network namespace's set-up, keyed by namespace (``{"net:[…]": State}``).

    One file serves every namespace of the machine (the sysctls are per namespace); entries of namespaces
    that no longer exist are dropped. Changes hold an exclusive lock on ``PATH.lock``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.netns = netns_id()
        self._lock_fd: int | None = None

    def __enter__(self) -> StateFile:
        import fcntl

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RealServerError(f"cannot use the state file {self.path}: {exc.strerror or exc}") from None
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None

    def _read_all(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise RealServerError(f"cannot read the state file {self.path}: {exc}; remove it") from None
        entries = data.get("namespaces") if isinstance(data, dict) else None
        if not isinstance(entries, dict):
            raise RealServerError(f"the state file {self.path} is not a realserver state file; remove it")
        return entries

    def load(self) -> State | None:
        entry = self._read_all().get(self.netns)
        if entry is None:
            return None
        try:
            return State.from_json(entry)
        except (KeyError, TypeError, ValueError) as exc:
            raise RealServerError(f"the state file {self.path} is damaged ({exc}); remove it") from None

    def save(self, state: State | None) -> None:
        """Record ``state`` for this namespace (None or empty: forget it); the file goes with the last entry."""
        entries = self._read_all()
        live = live_netns()
        entries = {k: v for k, v in entries.items() if k in live}
        if state is None or state.empty:
            entries.pop(self.netns, None)
        else:
            entries[self.netns] = state.as_json()
        if not entries:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"namespaces": entries}, indent=1) + "\n")
        os.replace(tmp, self.path)


# ---------------------------------------------------------------------------------------------- operations


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    complete: bool = True
    data: dict[str, Any] = field(default_factory=dict)

    def say(self, line: str) -> None:
        self.lines.append(line)


def _resolve(targets: Sequence[Vip], state: State | None) -> list[Vip]:
    """The recorded mode of a VIP wins (it decides where the address lives); none given: the recorded ones."""
    if state is None:
        return list(targets)
    out = [next((v for v in state.vips if v.address == t.address), t) for t in targets]
    return out or list(state.vips)


def start(vips: Sequence[Vip], state_path: Path = DEFAULT_STATE) -> Report:
    """Set up ``vips``: sysctls first (no ARP window), then the addresses. Idempotent."""
    if not vips:
        raise RealServerError("start needs at least one --vip")
    report = Report()
    with StateFile(state_path) as record:
        state = record.load() or State()
        for vip in vips:
            other = next((v for v in state.vips if v.address == vip.address and v.mode != vip.mode), None)
            if other is not None:
                raise RealServerError(f"{vip.address} is set up in {other.mode.upper()} mode; "
                                      f"'realserver stop --vip {vip.address}' first")
        all_vips = state.vips + [v for v in vips if not state.has(v)]
        try:
            with Links() as links:
                for dev in sorted({v.device for v in vips if v.mode == "tun"}):
                    for line in ensure_tunnel_device(links, dev):
                        report.say(line)
                for want in wanted_sysctls(all_vips):
                    current = read_sysctl(want.key)
                    if current is None:
                        raise RealServerError(f"{want.key} does not exist here ({want.path})")
                    if current in want.accept:
                        continue
                    state.sysctls.setdefault(want.key, current)
                    write_sysctl(want.key, want.target)
                    report.say(f"{want.key}: {current} -> {want.target}")
                for dev in ["lo", *sorted({v.device for v in vips if v.device != "lo"})]:
                    if not links.is_up(dev):
                        links.set_up(dev)
                        if dev != "lo" and dev not in state.links_up:
                            state.links_up.append(dev)
                        report.say(f"{dev}: up")
                for vip in vips:
                    if links.find(vip) is not None:
                        report.say(f"{vip.describe()}: already present")
                    else:
                        links.add(vip)
                        report.say(f"{vip.describe()}: added")
                    if not state.has(vip):
                        state.vips.append(vip)
        finally:
            record.save(state)  # also what a failed start changed, so that stop can undo it
    report.data = {"vips": [v.as_json() for v in state.vips], "recorded": dict(state.sysctls),
                   "state": str(state_path), "netns": record.netns}
    return report


def stop(vips: Sequence[Vip], state_path: Path = DEFAULT_STATE) -> Report:
    """Remove ``vips`` (all recorded ones when none given); restore the sysctls the remaining ones do not need."""
    report = Report()
    with StateFile(state_path) as record:
        state = record.load()
        if state is None:
            if not vips:
                report.say(f"nothing to stop (nothing recorded for this network namespace in {state_path})")
                return report
            report.say(f"nothing recorded in {state_path}: sysctls are left as they are")
        targets = _resolve(vips, state)
        state = state or State()
        remaining = [v for v in state.vips if all(v.address != t.address for t in targets)]
        try:
            with Links() as links:
                for vip in targets:
                    found = links.find(vip)
                    if found is None:
                        report.say(f"{vip.describe()}: not present")
                    else:
                        links.remove(vip, found.prefixlen)
                        report.say(f"{vip.describe()}: removed")
                state.vips = remaining
                still_needed = {w.key for w in wanted_sysctls(remaining)}
                for key in [k for k in state.sysctls if k not in still_needed]:
                    value = state.sysctls[key]
                    current = read_sysctl(key)
                    if current is not None and current != value:
                        write_sysctl(key, value)
                        report.say(f"{key}: {current} -> {value} (restored)")
                    del state.sysctls[key]
                still_used = {v.device for v in remaining}
                for dev in [d for d in state.links_up if d not in still_used]:
                    if links.index(dev) is not None and links.is_up(dev):
                        links.set_up(dev, False)
                        report.say(f"{dev}: down (restored)")
                    state.links_up.remove(dev)
        finally:
            record.save(state)
    report.data = {"removed": [v.as_json() for v in targets], "remaining": [v.as_json() for v in remaining],
                   "state": str(state_path), "netns": record.netns}
    return report


def status(vips: Sequence[Vip], state_path: Path = DEFAULT_STATE) -> Report:
    """What is set and what is missing for ``vips`` (the recorded ones when none given)."""
    report = Report()
    with StateFile(state_path) as record:
        state = record.load()
    targets = _resolve(vips, state)
    recorded = state.sysctls if state is not None else {}
    if not targets:
        report.complete = False
        report.say(f"no VIP given and none recorded for this network namespace in {state_path}: nothing is set up")
        report.data = {"complete": False, "vips": [], "sysctls": [], "links": [], "recorded": recorded}
        return report
    vip_rows: list[dict[str, Any]] = []
    sysctl_rows: list[dict[str, Any]] = []
    link_rows: list[dict[str, Any]] = []
    with Links() as links:
        for dev in ["lo", *sorted({v.device for v in targets if v.device != "lo"})]:
            exists = links.index(dev) is not None
            up = exists and links.is_up(dev)
            link_rows.append({"device": dev, "exists": exists, "up": up})
            report.complete &= up
            report.say(f"link   {dev:<34} {'ok (up)' if up else 'MISSING' if not exists else 'DOWN'}")
        for vip in targets:
            found = links.find(vip)
            problems = []
            if found is None:
                problems.append("missing")
            else:
                if found.prefixlen != vip.prefixlen:
                    problems.append(f"prefix /{found.prefixlen}, want /{vip.prefixlen}")
                if vip.label and found.label != vip.label:
                    problems.append(f"label {found.label}, want {vip.label}")
            ok = not problems
            report.complete &= ok
            vip_rows.append({**vip.as_json(), "device": vip.device, "label": vip.label, "present": found is not None,
                             "ok": ok, "problems": problems})
            verdict = "ok" if ok else "MISSING" if found is None else "WRONG: " + "; ".join(problems)
            report.say(f"vip    {vip.describe():<34} {verdict}")
        for want in wanted_sysctls(targets):
            current = read_sysctl(want.key)
            ok = current in want.accept
            report.complete &= ok
            sysctl_rows.append({"key": want.key, "value": current, "want": want.target, "ok": ok,
                                "recorded": recorded.get(want.key)})
            shown = f"{want.key} = {current if current is not None else '?'}"
            verdict = "ok" if ok else f"MISSING: want {want.target} ({want.why})"
            report.say(f"sysctl {shown:<34} {verdict}")
    where = f"recorded in {state_path}" if state is not None else f"nothing recorded in {state_path}"
    report.say(f"{'complete' if report.complete else 'INCOMPLETE'} ({where})")
    report.data = {"complete": report.complete, "vips": vip_rows, "sysctls": sysctl_rows, "links": link_rows,
                   "recorded": recorded, "state": str(state_path), "netns": record.netns}
    return report


# ---------------------------------------------------------------------------------------------- command line


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """``lvsconsole realserver start|stop|status --vip VIP… [--mode dr|tun]``."""
    parser = subparsers.add_parser(
        "realserver", help="the real-server side of LVS-DR/TUN: VIPs on lo or tunl0, ARP sysctls",
        description="Set up (start), undo (stop) or inspect (status) a real server for LVS-DR or LVS-TUN. "
                    "status exits 0 when complete, 3 when something is missing.")
    configure_parser(parser)
    return parser


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("--vip", action="append", default=[], metavar="VIP",
                        help="a virtual address (repeat for several); stop/status default to the recorded ones")
    parser.add_argument("--mode", choices=MODES, default="dr", help="forwarding method (default dr)")
    parser.add_argument("--state", default=None, metavar="PATH",
                        help=f"state file (default {DEFAULT_STATE}; one entry per network namespace)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        vips = [Vip.parse(text, args.mode) for item in args.vip for text in item.split(",") if text.strip()]
        state_path = Path(args.state) if args.state else DEFAULT_STATE
        operation = {"start": start, "stop": stop, "status": status}[args.action]
        report = operation(vips, state_path)
    except RealServerError as exc:
        if args.json:
            print(json.dumps({"ok": False, "error": str(exc)}))
        else:
            print(f"lvsconsole realserver {args.action}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    code = EXIT_OK if args.action != "status" or report.complete else EXIT_INCOMPLETE
    if args.json:
        print(json.dumps({"ok": code == EXIT_OK, "action": args.action, "messages": report.lines, **report.data},
                         indent=1))
    else:
        for line in report.lines:
            print(line)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lvsconsole realserver",
                                     description="the real-server side of LVS-DR/TUN")
    configure_parser(parser)
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
