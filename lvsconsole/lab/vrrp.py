"""VRRP daemons in lab namespaces: keepalived.conf snippets, Debian's keepalived and our engine.

Used by the netns tests and bench/failover.py::

    conf = render_config([InstanceConf(priority=150, vips=("10.9.0.100/24",))], router_id="a")
    ours = start_lvsconsole(node_a, conf, workdir, "a")
    theirs = start_keepalived(node_b, conf_b, workdir, "b")
    ours.crash()                       # SIGKILL, as a machine dying would look on the wire
    theirs.stop()                      # SIGTERM: priority-0 advert, VIPs removed
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lvsconsole.lab.netns import Lab, Namespace, Process, wait_for

DaemonKind = Literal["keepalived", "lvsconsole"]


@dataclass
class InstanceConf:
    """One vrrp_instance block."""

    name: str = "VI_1"
    vrid: int = 51
    priority: int = 100
    state: str = "BACKUP"
    interface: str = "eth0"
    advert_int: float = 1.0
    version: int = 2
    vips: Sequence[str] = ("10.9.0.100/24",)
    auth_pass: str | None = None
    unicast_src: str | None = None
    unicast_peers: Sequence[str] = ()
    nopreempt: bool = False
    track_interfaces: Sequence[str] = ()
    extra: Sequence[str] = ()

    def render(self) -> str:
        lines = [f"vrrp_instance {self.name} {{",
                 f"    state {self.state}",
                 f"    interface {self.interface}",
                 f"    virtual_router_id {self.vrid}",
                 f"    priority {self.priority}",
                 f"    advert_int {self.advert_int:g}",
                 f"    version {self.version}"]
        if self.nopreempt:
            lines.append("    nopreempt")
        if self.auth_pass is not None:
            lines += ["    authentication {", "        auth_type PASS", f"        auth_pass {self.auth_pass}", "    }"]
        if self.unicast_src:
            lines.append(f"    unicast_src_ip {self.unicast_src}")
        if self.unicast_peers:
            lines += ["    unicast_peer {", *(f"        {p}" for p in self.unicast_peers), "    }"]
        if self.track_interfaces:
            lines += ["    track_interface {", *(f"        {t}" for t in self.track_interfaces), "    }"]
        lines += [f"    {line}" for line in self.extra]
        lines += ["    virtual_ipaddress {", *(f"        {v}" for v in self.vips), "    }", "}"]
        return "\n".join(lines) + "\n"


def render_config(instances: Iterable[InstanceConf], *, router_id: str = "lab",
                  sync_groups: dict[str, Sequence[str]] | None = None, global_lines: Sequence[str] = ()) -> str:
    out = ["global_defs {", f"    router_id {router_id}", *(f"    {line}" for line in global_lines), "}", ""]
    for group, members in (sync_groups or {}).items():
        out += [f"vrrp_sync_group {group} {{", "    group {", *(f"        {m}" for m in members), "    }", "}", ""]
    out += [inst.render() for inst in instances]
    return "\n".join(out)


@dataclass
class Daemon:
    """A VRRP daemon running in a lab namespace."""

    kind: DaemonKind
    ns: Namespace
    conf: Path
    workdir: Path
    name: str
    argv: list[str]
    proc: Process | None = None
    started_at: float = 0.0
    extra_pids: list[int] = field(default_factory=list)

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.{self.kind}.log"

    @property
    def stats_path(self) -> Path:
        return self.workdir / f"{self.name}.stats.json"

    @property
    def vrrp_pid_path(self) -> Path:
        return self.workdir / f"{self.name}.vrrp.pid"

    def start(self) -> Daemon:
        self.started_at = time.monotonic()
        self.proc = self.ns.spawn(self.argv, log=self.log_path)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.running()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, text: str, timeout: float, *, after: int = 0) -> int:
        """Wait until ``text`` appears in the log (at or after character ``after``); returns its offset."""
        def seen() -> int | None:
            pos = self.log().find(text, after)
            return pos + 1 if pos >= 0 else None
        return int(wait_for(seen, timeout, what=f"{text!r} in the {self.kind} log of {self.name}")) - 1

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM): priority-0 advert, addresses removed."""
        if self.proc is not None:
            self.proc.stop(signal.SIGTERM, timeout)

    def _child_pid(self) -> int | None:
        try:
            return int(self.vrrp_pid_path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def crash(self) -> None:
        """Die without a word (SIGKILL): no priority-0 advert, addresses left behind."""
        if self.proc is None:
            return
        if self.kind == "keepalived":
            # freeze the parent so that it cannot respawn its VRRP child, then kill both
            self.proc.send_signal(signal.SIGSTOP)
            child = self._child_pid()
            if child is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
        self.proc.kill()

    def stats(self, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Our engine's per-instance snapshot (SIGUSR2 → JSON file)."""
        if self.kind != "lvsconsole" or self.proc is None:
            raise RuntimeError("statistics are read from lvsconsole daemons only")
        before = self.stats_path.stat().st_mtime_ns if self.stats_path.exists() else 0
        self.proc.send_signal(signal.SIGUSR2)
        wait_for(lambda: self.stats_path.exists() and self.stats_path.stat().st_mtime_ns != before, timeout,
                 what=f"statistics of {self.name}")
        data: list[dict[str, Any]] = json.loads(self.stats_path.read_text())
        return data

    def instance_stats(self, instance: str = "VI_1") -> dict[str, Any]:
        return next(s for s in self.stats() if s["name"] == instance)


def _write_conf(workdir: Path, name: str, conf: str) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"{name}.conf"
    path.write_text(conf)
    return path


def keepalived_daemon(ns: Namespace, conf: str, workdir: Path, name: str) -> Daemon:
    """Debian's keepalived, VRRP only, in the foreground with console logs and its own pid files."""
    path = _write_conf(workdir, name, conf)
    argv = ["keepalived", "-P", "-n", "-l", "-D", "-G", "-f", str(path),
            "-p", str(workdir / f"{name}.pid"), "-r", str(workdir / f"{name}.vrrp.pid")]
    return Daemon("keepalived", ns, path, workdir, name, argv)


def lvsconsole_daemon(ns: Namespace, conf: str, workdir: Path, name: str, *, debug: bool = False) -> Daemon:
    """Our VRRP service (``python -m lvsconsole.vrrp``) with a statistics file."""
    path = _write_conf(workdir, name, conf)
    argv = [sys.executable, "-m", "lvsconsole.vrrp", "-f", str(path), "--stats-file",
            str(workdir / f"{name}.stats.json"), "-p", str(workdir / f"{name}.pid")]
    if debug:
        argv.append("-D")
    return Daemon("lvsconsole", ns, path, workdir, name, argv)


def start_keepalived(ns: Namespace, conf: str, workdir: Path, name: str) -> Daemon:
    return keepalived_daemon(ns, conf, workdir, name).start()


def start_lvsconsole(ns: Namespace, conf: str, workdir: Path, name: str, *, debug: bool = False) -> Daemon:
    return lvsconsole_daemon(ns, conf, workdir, name, debug=debug).start()


def start_daemon(kind: DaemonKind, ns: Namespace, conf: str, workdir: Path, name: str) -> Daemon:
    return start_keepalived(ns, conf, workdir, name) if kind == "keepalived" else \
        start_lvsconsole(ns, conf, workdir, name)


# -------------------------------------------------------------------------------------------- two directors

A4, B4 = "10.9.0.1", "10.9.0.2"
A6, B6 = "fd00:9::1", "fd00:9::2"


@dataclass
class DirectorPair:
    """Two directors a and b, each with eth0 on bridge br0 in namespace sw.

    a = 10.9.0.1/24 + fd00:9::1/64, b = 10.9.0.2/24 + fd00:9::2/64.
    """

    lab: Lab
    sw: Namespace
    a: Namespace
    b: Namespace
    port_a: str
    port_b: str
    workdir: Path

    def capture(self, name: str = "cap") -> tuple[Process, Path]:
        """tcpdump on the bridge into ``workdir/name.pcap`` (stop the process to flush it)."""
        if shutil.which("tcpdump") is None:
            raise FileNotFoundError("tcpdump is not installed")
        path = self.workdir / f"{name}.pcap"
        log = self.workdir / f"{name}.tcpdump.log"
        proc = self.sw.spawn(["tcpdump", "-i", "br0", "--immediate-mode", "-U", "-n", "-w", str(path)], log=log)
        wait_for(lambda: log.exists() and "listening on" in log.read_text(errors="replace"), 10,
                 what="tcpdump to start")
        return proc, path


def build_pair(lab: Lab, workdir: Path) -> DirectorPair:
    sw = lab.switch("sw")
    a = lab.node("a")
    b = lab.node("b")
    port_a = lab.link(a, sw, "eth0", [f"{A4}/24", f"{A6}/64"])
    port_b = lab.link(b, sw, "eth0", [f"{B4}/24", f"{B6}/64"])
    workdir.mkdir(parents=True, exist_ok=True)
    return DirectorPair(lab, sw, a, b, port_a, port_b, workdir)
