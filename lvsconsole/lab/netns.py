"""A small network-namespace lab: namespaces, a bridge, veth links, addresses, processes inside.

    with Lab("lvst-ka-") as lab:
        sw = lab.switch("sw")                       # a namespace holding bridge br0
        a, b = lab.node("a"), lab.node("b")
        lab.link(a, sw, "eth0", ["10.9.0.1/24"])     # veth: a/eth0 <-> sw/<port> on br0
        lab.link(b, sw, "eth0", ["10.9.0.2/24"])
        proc = a.spawn(["keepalived", ...], log=path)
        a.run(["ip", "addr"])

Every namespace is named ``prefix + name``. Entering the lab first removes what a crashed earlier run
with the same prefix left behind, and leaving it stops the processes and deletes the namespaces (a
namespace's veth ends die with it). The lab only ever touches namespaces it created: addresses and
links are configured with ``ip -n NS`` or inside ``ip netns exec NS``, never on the host.
IPv6 duplicate address detection is off in lab namespaces, so addresses are usable at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

IP = "ip"
NAME_MAX = 15  # interface names
CLONE_NEWNET = 0x40000000


class LabError(RuntimeError):
    pass


def _run(argv: Sequence[str], *, check: bool = True, timeout: float = 30.0,
         input: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def list_namespaces() -> list[str]:
    out = _run([IP, "-json", "netns", "list"], check=False).stdout.strip()
    if not out:
        return []
    try:
        return [entry["name"] for entry in json.loads(out)]
    except (ValueError, KeyError, TypeError):
        return [line.split()[0] for line in out.splitlines() if line.strip()]


def namespace_pids(name: str) -> list[int]:
    out = _run([IP, "netns", "pids", name], check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def _kill_namespace_processes(name: str, timeout: float = 3.0) -> None:
    """TERM then KILL every process still inside namespace ``name`` (only lab namespaces get here)."""
    pids = namespace_pids(name)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        time.sleep(0.05)
        pids = namespace_pids(name)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def remove_namespaces(prefix: str) -> list[str]:
    """Delete every namespace whose name starts with ``prefix`` (and what runs in it)."""
    if not prefix:
        raise ValueError("refusing an empty prefix")
    removed = []
    for name in list_namespaces():
        if name.startswith(prefix):
            _kill_namespace_processes(name)
            _run([IP, "netns", "del", name], check=False)
            removed.append(name)
    return removed


def wait_for(condition: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy; raise TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


class Process:
    """A process started inside a namespace."""

    def __init__(self, popen: subprocess.Popen[bytes], argv: Sequence[str], log: Path | None) -> None:
        self.popen = popen
        self.argv = list(argv)
        self.log = log

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def running(self) -> bool:
        return self.popen.poll() is None

    def send_signal(self, sig: int) -> None:
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Send ``sig`` and wait; SIGKILL if it does not exit within ``timeout``."""
        self.send_signal(sig)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.send_signal(signal.SIGKILL)
            return self.popen.wait(5)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)

    def output(self) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return self.log.read_text(errors="replace")


class Namespace:
    """One network namespace of the lab."""

    def __init__(self, lab: Lab, name: str, full_name: str) -> None:
        self.lab = lab
        self.name = name
        self.ns = full_name
        self.processes: list[Process] = []
        self.bridge: str | None = None  # set for a switch

    def __repr__(self) -> str:
        return f"Namespace({self.ns!r})"

    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        return [IP, "netns", "exec", self.ns, *argv]

    def run(self, argv: Sequence[str], *, check: bool = True, timeout: float = 30.0,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command inside the namespace and wait for it."""
        return _run(self.exec_argv(argv), check=check, timeout=timeout, input=input)

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``ip -n NS args``."""
        return _run([IP, "-n", self.ns, *args], check=check)

    def spawn(self, argv: Sequence[str], *, log: Path | None = None, env: dict[str, str] | None = None,
              cwd: str | Path | None = None) -> Process:
        """Start a background process inside the namespace; its output goes to ``log``."""
        out: IO[bytes] | int = subprocess.DEVNULL
        handle = None
        if log is not None:
            handle = open(log, "ab")  # noqa: SIM115 - kept open by the child
            out = handle
        try:
            popen = subprocess.Popen(self.exec_argv(argv), stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, env=env, cwd=cwd)
        finally:
            if handle is not None:
                handle.close()
        proc = Process(popen, argv, log)
        self.processes.append(proc)
        return proc

    def addresses(self, ifname: str | None = None) -> list[str]:
        """Addresses (without prefix) configured in the namespace, optionally on one interface."""
        args = ["-json", "addr", "show"] + (["dev", ifname] if ifname else [])
        proc = self.ip(*args, check=False)
        if proc.returncode != 0 or not proc.stdout.strip():
            return []
        return [info["local"] for link in json.loads(proc.stdout) for info in link.get("addr_info", [])]

    def has_address(self, address: str, ifname: str | None = None) -> bool:
        return address in self.addresses(ifname)

    def set_link(self, ifname: str, up: bool) -> None:
        self.ip("link", "set", "dev", ifname, "up" if up else "down")

    def add_address(self, ifname: str, address: str) -> None:
        args = ["addr", "add", address, "dev", ifname]
        if ":" in address:
            args.append("nodad")
        self.ip(*args)

    def pids(self) -> list[int]:
        return namespace_pids(self.ns)

    def batch(self, commands: Iterable[str]) -> None:
        """Many ``ip`` commands in one process (``ip -n NS -batch -``): thousands of addresses in a second."""
        _run([IP, "-n", self.ns, "-batch", "-"], input="".join(f"{c}\n" for c in commands), timeout=120.0)

    def write_sysfs(self, path: str, value: str) -> str:
        """Write a /sys file as seen from inside the namespace (net devices' sysfs is per namespace);
        returns what reading it back gives."""
        self.run(["sh", "-c", 'printf "%s\\n" "$1" > "$2"', "sh", value, path])
        return self.run(["cat", path]).stdout.strip()

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Move the calling thread into this namespace for the block (sockets made inside belong to it),
        and back to where it was after. Linux only; needs CAP_SYS_ADMIN."""
        setns = ctypes.CDLL(None, use_errno=True).setns
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            target = os.open(f"/run/netns/{self.ns}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                if setns(target, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise LabError(f"setns into {self.ns} failed: {os.strerror(err)}")
            finally:
                os.close(target)
            try:
                yield
            finally:
                if setns(home, CLONE_NEWNET) != 0:
                    raise LabError(f"setns back from {self.ns} failed: {os.strerror(ctypes.get_errno())}")
        finally:
            os.close(home)

    def stop_processes(self) -> None:
        for proc in self.processes:
            if proc.running():
                proc.stop(timeout=5)
        _kill_namespace_processes(self.ns)


class Lab:
    """A set of namespaces with a common name prefix, torn down as a whole."""

    def __init__(self, prefix: str) -> None:
        if not prefix or "/" in prefix:
            raise ValueError("the lab needs a non-empty prefix without '/'")
        self.prefix = prefix
        self.namespaces: dict[str, Namespace] = {}
        self._ports = 0

    def __enter__(self) -> Lab:
        remove_namespaces(self.prefix)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def node(self, name: str) -> Namespace:
        """A new namespace ``prefix + name`` with lo up and IPv6 DAD off."""
        if name in self.namespaces:
            raise LabError(f"namespace {name} exists already")
        full = self.prefix + name
        _run([IP, "netns", "add", full])
        ns = Namespace(self, name, full)
        self.namespaces[name] = ns
        ns.ip("link", "set", "lo", "up")
        for key in ("all", "default"):
            ns.run(["sysctl", "-qw", f"net.ipv6.conf.{key}.accept_dad=0"], check=False)
        return ns

    def switch(self, name: str, bridge: str = "br0") -> Namespace:
        """A namespace holding a bridge (no STP, no forwarding delay) for the nodes to plug into."""
        ns = self.node(name)
        ns.ip("link", "add", bridge, "type", "bridge", "forward_delay", "0", "stp_state", "0")
        ns.ip("link", "set", bridge, "up")
        ns.bridge = bridge
        return ns

    def link(self, node: Namespace, switch: Namespace, ifname: str = "eth0",
             addresses: Iterable[str] = (), *, mac: str | None = None) -> str:
        """A veth pair: ``node/ifname`` up with ``addresses``, its peer a bridge port in ``switch``.

        Returns the port's name in the switch namespace (bring it down to cut the node off).
        """
        if len(ifname) > NAME_MAX:
            raise LabError(f"interface name {ifname!r} is longer than {NAME_MAX}")
        self._ports += 1
        port = f"p{self._ports}-{node.name}"[:NAME_MAX]
        bridge = switch.bridge or "br0"
        switch.ip("link", "add", port, "type", "veth", "peer", "name", ifname, "netns", node.ns)
        switch.ip("link", "set", port, "master", bridge)
        switch.ip("link", "set", port, "up")
        if mac is not None:
            node.ip("link", "set", ifname, "address", mac)
        for address in addresses:
            node.add_address(ifname, address)
        node.ip("link", "set", ifname, "up")
        return port

    def pair(self, a: Namespace, b: Namespace, a_if: str, b_if: str, a_addresses: Iterable[str] = (),
             b_addresses: Iterable[str] = ()) -> None:
        """A veth pair straight from ``a/a_if`` to ``b/b_if`` (no bridge), both up with their addresses."""
        for name in (a_if, b_if):
            if len(name) > NAME_MAX:
                raise LabError(f"interface name {name!r} is longer than {NAME_MAX}")
        a.ip("link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b.ns)
        for node, ifname, addresses in ((a, a_if, a_addresses), (b, b_if, b_addresses)):
            for address in addresses:
                node.add_address(ifname, address)
            node.ip("link", "set", ifname, "up")

    def veth(self, node: Namespace, ifname: str, peer: str) -> None:
        """A veth pair inside one namespace (a link to track or flap without touching the bridge)."""
        node.ip("link", "add", ifname, "type", "veth", "peer", "name", peer)
        node.ip("link", "set", ifname, "up")
        node.ip("link", "set", peer, "up")

    def close(self) -> None:
        for ns in reversed(list(self.namespaces.values())):
            with contextlib.suppress(Exception):
                ns.stop_processes()
        for ns in reversed(list(self.namespaces.values())):
            _run([IP, "netns", "del", ns.ns], check=False)
        self.namespaces.clear()
        remove_namespaces(self.prefix)
