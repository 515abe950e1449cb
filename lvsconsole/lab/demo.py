"""``lvsconsole demo [--check]``: the whole system on one machine, in network namespaces.

The lab (one L2 segment, bridge br0 in namespace ``sw``, the classic LVS-DR layout)::

    director1  10.77.0.11   our engine, MASTER priority 100   ┐ VRRP VI_1 (vrid 51) shares
    director2  10.77.0.12   our engine, BACKUP priority 70    ┘ VIP 10.77.0.100, advert_int 1
    rs1        10.77.0.21   HTTP server answering "rs1", weight 3   } DR real servers (lvsconsole realserver:
    rs2        10.77.0.22   HTTP server answering "rs2", weight 1   }  VIP on lo:0, arp_ignore/arp_announce)
    client     10.77.0.50   requests http://10.77.0.100/ twice a second

The directors run the classic seed configs (lvsconsole/examples/master.conf on director1, backup.conf on
director2) with lab addresses: wrr, weights 3 and 1, persistence 50, TCP_CHECK on port 80, and on the master
sorry_server 127.0.0.1 80 (each director runs a "sorry" HTTP server there); advert_int and check delays are
shortened so that things happen while you watch. Each director runs
``lvsconsole run --headless -f CONF --socket SOCK`` in its namespace. When the kernel has no ip_vs the
directors run the engine over the memory IPVS backend (``python -m lvsconsole.lab.director``: VRRP and
health checks stay real) and a user-space forwarder (lvsconsole.lab.forwarder) follows each director's
table, so the client still gets answers; the demo says so loudly.

``lvsconsole demo`` then opens the TUI attached to director1's socket (the shell if the TUI is not
installed), with ``lab …`` commands (lvsconsole.lab.control) served on a lab socket, and tears the lab down
when the face exits. ``--check`` runs the scenario unattended and prints what it saw: exit 0, or 1 naming the
step that failed. Namespaces are named ``lvsdemo<pid>-<node>``: a lab whose demo process is gone (a crash,
a SIGKILL) is removed by the next start. As a normal user the demo re-runs itself in a user namespace
(with its own /run and PID namespace) where the kernel allows it, and otherwise says exactly what is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from lvsconsole.engine.commands import Result
from lvsconsole.engine.errors import CommandError
from lvsconsole.lab.control import HELP as LAB_HELP
from lvsconsole.lab.control import LAB_SOCKET_ENV, LabCommand, parse_lab
from lvsconsole.lab.netns import Lab, LabError, Namespace, Process, list_namespaces, remove_namespaces, wait_for

PREFIX_BASE = "lvsdemo"
RUN_DIR = Path("/run/lvsconsole")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
USERNS_ENV = "LVSCONSOLE_DEMO_USERNS"
SCALE_ENV = "LVSCONSOLE_DEMO_TIMEOUT_SCALE"
"""Multiplies every --check timeout (for slow machines, e.g. a software-emulated guest)."""

NET = "10.77.0"
VIP = f"{NET}.100"
PORT = 80
CLIENT_ADDRESS = f"{NET}.50"


@dataclass(frozen=True)
class DirectorSpec:
    name: str
    address: str
    state: str
    priority: int
    router_id: str
    template: str
    """The seed config this director runs (lvsconsole/examples/), verbatim but for lab addresses and timers."""


@dataclass(frozen=True)
class RealServerSpec:
    name: str
    address: str
    weight: int


DIRECTORS = (DirectorSpec("director1", f"{NET}.11", "MASTER", 100, "LVS_DEVEL", "master.conf"),
             DirectorSpec("director2", f"{NET}.12", "BACKUP", 70, "LVS_DEVEL2", "backup.conf"))
REAL_SERVERS = (RealServerSpec("rs1", f"{NET}.21", 3), RealServerSpec("rs2", f"{NET}.22", 1))


class DemoError(RuntimeError):
    """The demo cannot go on; the message says why."""


class StepFailed(DemoError):
    def __init__(self, step: str, why: str) -> None:
        super().__init__(f"{step}: {why}")
        self.step = step


# ---------------------------------------------------------------------------------------------- the config


def render_director_config(spec: DirectorSpec, template: Path | None = None) -> str:
    """The director's seed config (master.conf or backup.conf) with lab addresses and demo-speed timers.

    The role (state, priority, router_id) is the seed's own: the demo checks that it is the one it expects
    rather than rewrite it, so the backup really runs the backup's file."""
    template = template or EXAMPLES / spec.template
    text = template.read_text()
    rs1, rs2 = REAL_SERVERS
    role = [(rf"\bstate {spec.state}\b", "state"), (rf"\bpriority {spec.priority}\b", "priority"),
            (rf"\brouter_id {spec.router_id}\b", "router_id")]
    for pattern, what in role:
        if not re.search(pattern, text):
            raise DemoError(f"the seed config {template} does not have the {what} the demo expects for {spec.name}"
                            f" ({pattern!r}): update the demo")
    substitutions = [
        (r"192\.168\.2\.188", VIP),
        (r"192\.168\.2\.187", rs1.address),
        (r"192\.168\.2\.189", rs2.address),
        (r"\badvert_int 5\b", "advert_int 1"),
        (r"\blb_algo rr\b", "lb_algo wrr"),
        (r"\bdelay_loop 6\b", "delay_loop 2"),
        (r"\bdelay_before_retry 3\b", "delay_before_retry 1"),
    ]
    for pattern, replacement in substitutions:
        text, count = re.subn(pattern, replacement, text)
        if count == 0:
            raise DemoError(f"the seed config {template} no longer matches {pattern!r}: update the demo")
    # keepalived drops a sync group of one instance ("has only 1 virtual router(s) - removing"); so does the
    # demo, rather than depend on how an engine treats a group that cannot do anything
    text = re.sub(r"(?ms)^vrrp_sync_group \S+ \{\s*group \{\s*\S+\s*\}\s*\}\n",
                  "! (the one-instance vrrp_sync_group VGM of the original is left out, as keepalived drops it)\n",
                  text)
    header = (f"! lvsconsole demo: {spec.name} ({spec.state.lower()}), {template.name} with lab\n"
              f"! addresses; wrr so that weights 3/1 count, advert_int 1 and short check delays for watching.\n")
    return header + text


# ---------------------------------------------------------------------------------------------- the host


def ipvs_available() -> tuple[bool, str]:
    """(True, "") when the kernel has ip_vs (loading the module if we may), else (False, why)."""
    if Path("/proc/net/ip_vs").exists():
        return True, ""
    if os.geteuid() == 0 and not os.environ.get(USERNS_ENV) and shutil.which("modprobe"):
        proc = subprocess.run(["modprobe", "ip_vs"], capture_output=True, text=True, timeout=30, check=False)
        if Path("/proc/net/ip_vs").exists():
            return True, ""
        return False, f"this kernel has no ip_vs (modprobe ip_vs: {proc.stderr.strip() or 'no module'})"
    if os.environ.get(USERNS_ENV):
        return False, "IPVS needs real root (CAP_NET_ADMIN in the initial user namespace)"
    return False, "this kernel has no ip_vs"


def userns_problem() -> str | None:
    """What keeps a normal user from running the lab in a user namespace, or None."""
    if shutil.which("unshare") is None:
        return "the 'unshare' command is missing (Debian package util-linux)"

    def sysctl(name: str) -> str | None:
        try:
            return Path("/proc/sys", *name.split(".")).read_text().strip()
        except OSError:
            return None

    if sysctl("user.max_user_namespaces") == "0":
        return ("user namespaces are disabled: user.max_user_namespaces = 0 "
                "(as root: sysctl -w user.max_user_namespaces=10000)")
    if sysctl("kernel.unprivileged_userns_clone") == "0":
        return ("unprivileged user namespaces are disabled: kernel.unprivileged_userns_clone = 0 "
                "(as root: sysctl -w kernel.unprivileged_userns_clone=1)")
    if sysctl("kernel.apparmor_restrict_unprivileged_userns") == "1":
        return ("AppArmor forbids unprivileged user namespaces: kernel.apparmor_restrict_unprivileged_userns = 1 "
                "(as root: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or run the demo as root)")
    proc = subprocess.run(["unshare", "--user", "--map-root-user", "--net", "--mount", "--pid", "--fork", "true"],
                          capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode != 0:
        return f"'unshare --user --map-root-user --net --mount --pid' fails here: {proc.stderr.strip()}"
    return None


def tools_missing() -> list[str]:
    missing = []
    for tool, package in (("ip", "iproute2"), ("bridge", "iproute2"), ("sysctl", "procps")):
        if shutil.which(tool) is None:
            missing.append(f"'{tool}' (Debian package {package})")
    return missing


def reexec_in_userns(argv: Sequence[str], out: TextIO) -> int:
    """Run the demo again as root of a new user namespace (own network, mount, PID namespaces and /run)."""
    problem = userns_problem()
    if problem is not None:
        print(f"lvsconsole demo: not running as root, and the user-namespace route is closed: {problem}.\n"
              f"Run it as root instead (sudo {' '.join(['lvsconsole', 'demo', *argv])}).", file=out)
        return 2
    script = 'mount -t tmpfs -o mode=0755 lvsconsole-demo /run && mkdir -p /run/netns && exec "$@"'
    command = ["unshare", "--user", "--map-root-user", "--net", "--mount", "--pid", "--fork", "--mount-proc",
               "sh", "-c", script, "sh", sys.executable, "-m", "lvsconsole.lab.cli", *argv]
    env = {**os.environ, USERNS_ENV: "1"}
    who = "not root" if os.geteuid() != 0 else "--userns"
    print(f"lvsconsole demo: {who}: running the lab in a user namespace", file=out, flush=True)
    return subprocess.call(command, env=env)


def _alive_demo(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"demo" in cmdline


def clean_stale(out: TextIO) -> list[str]:
    """Remove labs (namespaces, work directories) whose demo process is gone."""
    removed: list[str] = []
    pattern = re.compile(rf"^{PREFIX_BASE}(\d+)-")
    pids = {int(m.group(1)) for name in list_namespaces() if (m := pattern.match(name))}
    with contextlib.suppress(OSError):
        for entry in RUN_DIR.iterdir():
            m = re.fullmatch(r"demo-(\d+)", entry.name)
            if m:
                pids.add(int(m.group(1)))
    for pid in sorted(pids):
        if pid == os.getpid() or _alive_demo(pid):
            continue
        names = remove_namespaces(f"{PREFIX_BASE}{pid}-")
        shutil.rmtree(RUN_DIR / f"demo-{pid}", ignore_errors=True)
        removed.append(f"pid {pid}: {len(names)} namespace{'s' * (len(names) != 1)}")
    if removed:
        print(f"removed a stale demo lab ({'; '.join(removed)})", file=out, flush=True)
    return removed


# ---------------------------------------------------------------------------------------------- the lab


@dataclass
class Service:
    """The one program a node is about (an engine, an HTTP server, the client): stop/start/kill by name."""

    node: str
    ns: Namespace
    argv: list[str]
    log: Path
    what: str
    process: Process | None = None

    def running(self) -> bool:
        return self.process is not None and self.process.running()


@dataclass
class DemoLab:
    workdir: Path
    simulated: bool
    out: TextIO = sys.stdout
    prefix: str = field(default_factory=lambda: f"{PREFIX_BASE}{os.getpid()}-")
    lab: Lab | None = None
    nodes: dict[str, Namespace] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    ports: dict[str, str] = field(default_factory=dict)
    partitioned: bool = False
    why: str = ""
    """Why IPVS is simulated."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- paths

    def socket(self, director: str) -> str:
        return str(self.workdir / f"{director}.sock")

    def conf(self, director: str) -> Path:
        return self.workdir / f"{director}.conf"

    @property
    def lab_socket(self) -> str:
        return str(self.workdir / "lab.sock")

    @property
    def client_log(self) -> Path:
        return self.workdir / "client.log"

    # -- building

    def build(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o755)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop(LAB_SOCKET_ENV, None)
        self.lab = Lab(self.prefix).__enter__()
        sw = self.lab.switch("sw")
        for spec in DIRECTORS:
            ns = self.lab.node(spec.name)
            self.ports[spec.name] = self.lab.link(ns, sw, "eth0", [f"{spec.address}/24"])
            self.nodes[spec.name] = ns
        for rs in REAL_SERVERS:
            ns = self.lab.node(rs.name)
            self.ports[rs.name] = self.lab.link(ns, sw, "eth0", [f"{rs.address}/24"])
            self.nodes[rs.name] = ns
        client = self.lab.node("client")
        self.ports["client"] = self.lab.link(client, sw, "eth0", [f"{CLIENT_ADDRESS}/24"])
        self.nodes["client"] = client
        py = sys.executable
        # real servers: the realserver module in DR mode, then the HTTP server
        for rs in REAL_SERVERS:
            ns = self.nodes[rs.name]
            state = str(self.workdir / "realserver.json")
            slow = 30 * _timeout_scale()
            ns.run([py, "-m", "lvsconsole.realserver", "start", "--vip", VIP, "--mode", "dr", "--state", state],
                   timeout=slow)
            check = ns.run([py, "-m", "lvsconsole.realserver", "status", "--vip", VIP, "--state", state], check=False,
                           timeout=slow)
            if check.returncode != 0:
                raise DemoError(f"{rs.name}: the real-server set-up is incomplete:\n{check.stdout}{check.stderr}")
            self._service(rs.name, [py, "-m", "lvsconsole.lab.services", "httpd", "--name", rs.name,
                                    "--port", str(PORT)], "HTTP server", env)
        # directors: the sorry server, the simulated forwarder (no ip_vs), the engine
        for spec in DIRECTORS:
            ns = self.nodes[spec.name]
            self.conf(spec.name).write_text(render_director_config(spec))
            ns.spawn([py, "-m", "lvsconsole.lab.services", "httpd", "--name", f"sorry-{spec.name}",
                      "--bind", "127.0.0.1", "--port", str(PORT)], log=self.workdir / f"{spec.name}.sorry.log",
                     env=env)
            if self.simulated:
                feed = str(self.workdir / f"{spec.name}.feed")
                ns.spawn([py, "-m", "lvsconsole.lab.forwarder", "--listen", f"{VIP}:{PORT}", "--socket",
                          self.socket(spec.name), "--sorry", f"127.0.0.1:{PORT}", "--feed", feed],
                         log=self.workdir / f"{spec.name}.forwarder.log", env=env)
                engine = [py, "-m", "lvsconsole.lab.director", "--feed", feed]
            else:
                engine = [py, "-m", "lvsconsole.cli", "run", "--headless"]
            self._service(spec.name, [*engine, "-f", str(self.conf(spec.name)), "--socket", self.socket(spec.name)],
                          "engine", env)
        self._service("client", [py, "-m", "lvsconsole.lab.services", "client", "--url", f"http://{VIP}/",
                                 "--interval", "0.5", "--timeout", "1"], "request loop", env, log=self.client_log)

    def _service(self, node: str, argv: list[str], what: str, env: dict[str, str], log: Path | None = None) -> None:
        service = Service(node, self.nodes[node], argv, log or self.workdir / f"{node}.log", what)
        self.services[node] = service
        service.process = service.ns.spawn(argv, log=service.log, env=env)

    def close(self) -> None:
        if self.lab is not None:
            self.lab.close()
            self.lab = None

    # -- looking

    def holds_vip(self, node: str) -> bool:
        return self.nodes[node].has_address(VIP, "eth0")

    def engine(self, director: str, command: str, timeout: float = 5.0) -> Result | None:
        from lvsconsole.engine.control import ControlSocketError, run_command

        if not os.path.exists(self.socket(director)):
            return None
        try:
            return run_command(command, self.socket(director), who="demo", timeout=timeout)
        except (ControlSocketError, OSError, TimeoutError):
            return None

    def vrrp_state(self, director: str) -> str | None:
        result = self.engine(director, "show vrrp")
        if result is None or not result.ok or not isinstance(result.data, list) or not result.data:
            return None
        return str(result.data[0]["state"])

    def counted(self, director: str) -> str | None:
        """What the director's IPVS table counted of the client's traffic, once it has (kernel or simulated)."""
        table = self.engine(director, "show vs")
        conns = self.engine(director, f"show conns client {CLIENT_ADDRESS}")
        if table is None or conns is None or not table.ok or not conns.ok or not isinstance(table.data, list):
            return None
        servers = [rs for vs in table.data for rs in vs.get("real_servers", [])
                   if rs["traffic"]["conns"] > 0 and rs["traffic"]["inbytes"] > 0]
        flows = [c for c in conns.data["connections"] if not c["template"]]
        if not servers or not flows:
            return None
        rs = servers[0]
        return (f"{rs['address']}: {rs['traffic']['conns']} connections, {rs['traffic']['inbytes']} bytes in; "
                f"show conns lists {len(flows)} flows of the client ({flows[0]['state']} ...)")

    def health(self, director: str) -> dict[str, str]:
        """Real-server address → health, as the director's checks see it."""
        result = self.engine(director, "show rs")
        if result is None or not result.ok or not isinstance(result.data, list):
            return {}
        return {str(rs["address"]): str(rs["health"]) for rs in result.data}

    def log_text(self, node: str) -> str:
        path = self.services[node].log
        return path.read_text(errors="replace") if path.exists() else ""

    def log_size(self, node: str) -> int:
        return len(self.log_text(node))

    def client_records(self, since: float = 0.0) -> list[dict[str, Any]]:
        records = []
        with contextlib.suppress(OSError):
            for line in self.client_log.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if isinstance(record, dict) and record.get("time", 0) >= since:
                        records.append(record)
        return records

    # -- lab commands

    def execute(self, text: str) -> Result:
        """Run one ``lab …`` command (thread-safe: the lab socket and the check share it)."""
        try:
            command = parse_lab(text, tuple(self.services))
        except CommandError as exc:
            return Result.error(exc)
        with self._lock:
            try:
                return self._execute(command)
            except (LabError, OSError, subprocess.SubprocessError) as exc:
                return Result(False, f"lab {command.verb}: {exc}", None)

    def _execute(self, command: LabCommand) -> Result:
        verb, node = command.verb, command.node
        if verb == "help":
            return Result(True, LAB_HELP, {"help": LAB_HELP})
        if verb == "status":
            return self.status()
        if verb == "client":
            records = self.client_records()[-(command.count or 10):]
            return Result(True, "\n".join(_client_line(r) for r in records) or "no requests yet", records)
        if verb in ("partition", "heal"):
            return self.partition(verb == "partition")
        assert node is not None
        service = self.services[node]
        if verb == "start":
            if service.running():
                return Result(True, f"{node}: {service.what} is already running", {"node": node, "changed": False})
            service.process = service.ns.spawn(service.argv, log=service.log,
                                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
            return Result(True, f"{node}: {service.what} started (pid {service.process.pid})",
                          {"node": node, "changed": True, "pid": service.process.pid})
        if not service.running() or service.process is None:
            return Result(True, f"{node}: {service.what} is not running", {"node": node, "changed": False})
        if verb == "kill":
            service.process.kill()
            return Result(True, f"{node}: {service.what} killed (SIGKILL)", {"node": node, "changed": True})
        service.process.stop(signal.SIGTERM, timeout=10)
        return Result(True, f"{node}: {service.what} stopped (SIGTERM)", {"node": node, "changed": True})

    def partition(self, on: bool) -> Result:
        """Isolate the directors' bridge ports from each other (they still reach the servers and the client)."""
        sw = self.nodes.get("sw") or (self.lab.namespaces["sw"] if self.lab else None)
        if sw is None:
            return Result(False, "no lab", None)
        for spec in DIRECTORS:
            sw.run(["bridge", "link", "set", "dev", self.ports[spec.name], "isolated", "on" if on else "off"])
        self.partitioned = on
        text = ("directors partitioned: they no longer hear each other's adverts (expect two MASTERs)" if on
                else "partition healed: the directors hear each other again")
        return Result(True, text, {"partitioned": on})

    def status(self) -> Result:
        rows: list[dict[str, Any]] = []
        order = [s.name for s in DIRECTORS] + [r.name for r in REAL_SERVERS] + ["client"]
        for node, service in sorted(self.services.items(), key=lambda item: order.index(item[0])):
            row: dict[str, Any] = {"node": node, "what": service.what, "running": service.running(),
                                   "pid": service.process.pid if service.running() and service.process else None}
            if node.startswith("director"):
                row["vrrp"] = self.vrrp_state(node) if service.running() else None
                row["holds_vip"] = self.holds_vip(node)
            rows.append(row)
        health = {}
        for spec in DIRECTORS:
            if self.services[spec.name].running():
                health = self.health(spec.name)
                if health:
                    break
        lines = []
        for row in rows:
            state = "running" if row["running"] else "STOPPED"
            extra = ""
            if "vrrp" in row:
                extra = f"VRRP {row['vrrp'] or '-'}" + (f", holds VIP {VIP}" if row["holds_vip"] else "")
            else:
                address = next((r.address for r in REAL_SERVERS if r.name == row["node"]), None)
                if address is not None:
                    extra = f"checks: {health.get(address, '-')}"
            lines.append(f"{row['node']:<10} {row['what']:<13} {state:<8} {extra}")
            if address_row := next((r for r in REAL_SERVERS if r.name == row["node"]), None):
                row["health"] = health.get(address_row.address)
        recent = self.client_records(time.time() - 10)
        ok = sum(1 for r in recent if r.get("ok"))
        last = _client_line(recent[-1]) if recent else "no answer yet"
        lines.append(f"client: {ok}/{len(recent)} requests answered in the last 10 s; last: {last}")
        lines.append(f"partition: {'ON' if self.partitioned else 'off'};  IPVS: "
                     f"{'SIMULATED (memory backend + user-space forwarder)' if self.simulated else 'kernel'}")
        return Result(True, "\n".join(lines), {"nodes": rows, "partitioned": self.partitioned,
                                               "simulated": self.simulated, "client_recent": recent[-5:]})

    async def handle(self, text: str, who: str) -> Result:
        """The lab socket's handler (ControlServer)."""
        return await asyncio.to_thread(self.execute, text)


def _client_line(record: dict[str, Any]) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(float(record.get("time", 0))))
    if record.get("ok"):
        return f"{stamp} {record.get('server', '?')} ({record.get('ms', '?')} ms)"
    return f"{stamp} FAILED: {record.get('error') or record.get('status')}"


# ---------------------------------------------------------------------------------------------- --check


class Checker:
    def __init__(self, lab: DemoLab, out: TextIO) -> None:
        self.lab = lab
        self.out = out
        self.started = time.monotonic()
        self.number = 0

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", file=self.out, flush=True)

    def step(self, name: str, condition: Callable[[], Any], timeout: float, *,
             detail: Callable[[], str] | None = None) -> Any:
        self.number += 1
        label = f"step {self.number}: {name}"
        began = time.monotonic()
        timeout *= _timeout_scale()
        try:
            value = wait_for(condition, timeout, interval=0.1, what=name)
        except TimeoutError:
            why = f"not seen within {timeout:g} s"
            if detail is not None:
                with contextlib.suppress(Exception):
                    why += f" ({detail()})"
            raise StepFailed(label, why) from None
        seen = f": {value}" if isinstance(value, str) else ""
        self.say(f"ok   {label} ({time.monotonic() - began:.1f} s){seen}")
        return value

    def act(self, command: str) -> None:
        result = self.lab.execute(command)
        self.say(f"     {command}: {result.message}")
        if not result.ok:
            raise StepFailed(command, result.message)

    def answered(self, since: float, server: str | None = None) -> Callable[[], str | None]:
        """The first answer (from ``server``, if given) since ``since``: "rs1 answered in 1.2 ms"."""
        def seen() -> str | None:
            for r in self.lab.client_records(since):
                if r.get("ok") and (server is None or r.get("server") == server):
                    return f"{r.get('server')} answered in {r.get('ms')} ms"
            return None
        return seen

    def log_has(self, node: str, text: str, after: int) -> Callable[[], bool]:
        return lambda: text in self.lab.log_text(node)[after:]

    def log_has_all(self, node: str, texts: list[str], after: int) -> Callable[[], bool]:
        return lambda: all(text in self.lab.log_text(node)[after:] for text in texts)

    def run(self) -> None:
        lab = self.lab
        d1, d2 = (s.name for s in DIRECTORS)
        rs1, rs2 = REAL_SERVERS
        vs_key = f"[{VIP}]:tcp:{PORT}"

        def roles() -> str:
            return (f"{d1}: {lab.vrrp_state(d1)}, VIP {'yes' if lab.holds_vip(d1) else 'no'}; "
                    f"{d2}: {lab.vrrp_state(d2)}, VIP {'yes' if lab.holds_vip(d2) else 'no'}")

        self.step(f"{d1} becomes MASTER and holds the VIP {VIP}",
                  lambda: lab.vrrp_state(d1) == "MASTER" and lab.holds_vip(d1) and not lab.holds_vip(d2), 30,
                  detail=roles)
        self.step(f"{d2} is BACKUP", lambda: lab.vrrp_state(d2) == "BACKUP", 10, detail=roles)
        self.step(f"{d1}'s health checks see {rs1.name} and {rs2.name} up",
                  lambda: lab.health(d1).get(rs1.address) == "up" and lab.health(d1).get(rs2.address) == "up", 30,
                  detail=lambda: f"health {lab.health(d1)}")
        since = time.time()
        self.step("the client gets an answer from a real server through the VIP", self.answered(since), 20,
                  detail=lambda: f"last: {[_client_line(r) for r in lab.client_records()[-3:]]}")
        self.step(f"{d1}'s table counts the client's connections (show vs, show conns)", lambda: lab.counted(d1), 15)
        mark = lab.log_size(d1)
        self.act(f"lab stop {rs1.name}")
        self.step(f"{d1} logs 'Removing service [{rs1.address}]:tcp:{PORT} from VS {vs_key}'",
                  self.log_has(d1, f"Removing service [{rs1.address}]:tcp:{PORT}", mark), 30,
                  detail=lambda: f"health {lab.health(d1)}")
        since = time.time()
        self.step(f"the client is served by {rs2.name}", self.answered(since, rs2.name), 20,
                  detail=lambda: f"last: {[_client_line(r) for r in lab.client_records()[-3:]]}")
        # the last real server leaves: quorum is lost and the sorry server stands in; the first one back
        # regains it (keepalived's "Lost quorum" / "Gained quorum")
        mark = lab.log_size(d1)
        self.act(f"lab stop {rs2.name}")
        self.step(f"{d1} logs 'Lost quorum' for VS {vs_key} and puts the sorry server [127.0.0.1]:tcp:{PORT} in",
                  self.log_has_all(d1, [f"Removing service [{rs2.address}]:tcp:{PORT}", "Lost quorum 1-0=1 > 0",
                                        f"Adding sorry server [127.0.0.1]:tcp:{PORT} to VS {vs_key}"], mark), 30,
                  detail=lambda: f"health {lab.health(d1)}")
        mark = lab.log_size(d1)
        self.act(f"lab start {rs1.name}")
        self.step(f"{d1} logs 'Adding service [{rs1.address}]:tcp:{PORT} to VS {vs_key}'",
                  self.log_has(d1, f"Adding service [{rs1.address}]:tcp:{PORT}", mark), 30,
                  detail=lambda: f"health {lab.health(d1)}")
        self.step(f"{d1} logs 'Gained quorum' for VS {vs_key} and takes the sorry server out",
                  self.log_has_all(d1, ["Gained quorum 1+0=1 <= 3",
                                        f"Removing sorry server [127.0.0.1]:tcp:{PORT} from VS {vs_key}"], mark), 10,
                  detail=lambda: f"health {lab.health(d1)}")
        mark = lab.log_size(d1)
        self.act(f"lab start {rs2.name}")
        self.step(f"{d1} logs 'Adding service [{rs2.address}]:tcp:{PORT} to VS {vs_key}'",
                  self.log_has(d1, f"Adding service [{rs2.address}]:tcp:{PORT}", mark), 30,
                  detail=lambda: f"health {lab.health(d1)}")
        self.act(f"lab stop {d1}")
        self.step(f"{d2} takes over: MASTER with the VIP, {d1} without it",
                  lambda: lab.holds_vip(d2) and not lab.holds_vip(d1) and lab.vrrp_state(d2) == "MASTER", 20,
                  detail=roles)
        since = time.time()
        self.step(f"the client gets answers through {d2}", self.answered(since), 20,
                  detail=lambda: f"last: {[_client_line(r) for r in lab.client_records()[-3:]]}")
        self.act(f"lab start {d1}")
        self.step(f"{d1} returns and preempts (priority 100 > 70): MASTER with the VIP, {d2} BACKUP",
                  lambda: lab.vrrp_state(d1) == "MASTER" and lab.holds_vip(d1) and lab.vrrp_state(d2) == "BACKUP"
                  and not lab.holds_vip(d2), 30, detail=roles)
        mark = lab.log_size(d2)
        self.act(f"lab kill {d1}")
        self.step(f"{d1} killed without a word (SIGKILL): {d2} takes over after Master_Down_Interval",
                  lambda: lab.holds_vip(d2) and lab.vrrp_state(d2) == "MASTER", 20, detail=roles)
        self.step(f"{d2} sends gratuitous ARP for {VIP}",
                  self.log_has(d2, f"Sending gratuitous ARP on eth0 for {VIP}", mark), 10)
        since = time.time()
        self.step(f"the client gets answers through {d2} again", self.answered(since), 20,
                  detail=lambda: f"last: {[_client_line(r) for r in lab.client_records()[-3:]]}")
        self.act(f"lab start {d1}")
        self.step(f"{d1} is back and MASTER again", lambda: lab.vrrp_state(d1) == "MASTER" and lab.holds_vip(d1),
                  30, detail=roles)


def _timeout_scale() -> float:
    try:
        return max(1.0, float(os.environ.get(SCALE_ENV, "1")))
    except ValueError:
        return 1.0


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------- the face


def tui_available() -> bool:
    """The TUI package exists and the CLI has its ``attach`` subcommand."""
    if importlib.util.find_spec("lvsconsole.tui") is None:
        return False
    from lvsconsole.cli import build_parser

    parser = build_parser()
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        choices = getattr(action, "choices", None)
        if isinstance(choices, dict) and "attach" in choices:
            return True
    return False


def face_command(socket_path: str) -> tuple[list[str], str]:
    if tui_available():
        return [sys.executable, "-m", "lvsconsole.cli", "attach", "--socket", socket_path], "the TUI"
    return [sys.executable, "-m", "lvsconsole.shell", "--attach", "--socket", socket_path], "the shell"


async def run_face(lab: DemoLab, argv: list[str]) -> int:
    """Serve lab commands while the face runs in the foreground; its exit status."""
    from lvsconsole.engine.control import ControlServer

    server = ControlServer(lab.lab_socket, lab.handle)
    await server.start()
    loop = asyncio.get_running_loop()
    env = {**os.environ, LAB_SOCKET_ENV: lab.lab_socket}
    proc = await asyncio.create_subprocess_exec(*argv, env=env)
    loop.add_signal_handler(signal.SIGINT, lambda: None)  # Ctrl-C belongs to the face
    for sig in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, proc.terminate)
    try:
        return await proc.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await server.close()


# ---------------------------------------------------------------------------------------------- entry


def banner(simulated: bool, why: str) -> str:
    if not simulated:
        return "IPVS: kernel (ip_vs): the directors program real IPVS tables; DR forwarding is real."
    reason, _, detail = why.partition(" (")
    lines = [f"IPVS is SIMULATED: {reason}.", *([f"({detail[:100]}" + (")" if len(detail) > 100 else "")]
                                               if detail else []),
             "The directors keep their IPVS table in memory (lvsconsole.lab.director) and a user-space",
             "forwarder stands in for the kernel so the client still gets answers.",
             "VRRP failover and health checks are REAL."]
    width = max(len(line) for line in lines)
    return "\n".join(["*" * (width + 6), *(f"*  {line:<{width}}  *" for line in lines), "*" * (width + 6)])


def layout(lab: DemoLab) -> str:
    lines = ["lab (bridge br0 in namespace " + lab.prefix + "sw):"]
    for spec in DIRECTORS:
        lines.append(f"  {spec.name:<10} {spec.address:<12} engine, {spec.state} priority {spec.priority}, "
                     f"socket {lab.socket(spec.name)}")
    for rs in REAL_SERVERS:
        lines.append(f"  {rs.name:<10} {rs.address:<12} HTTP server, weight {rs.weight}, VIP {VIP} on lo:0")
    lines.append(f"  {'client':<10} {CLIENT_ADDRESS:<12} GET http://{VIP}/ twice a second")
    lines.append(f"  logs and configs in {lab.workdir}; namespaces {lab.prefix}*")
    return "\n".join(lines)


def run_demo(check: bool, *, out: TextIO = sys.stdout, argv: Sequence[str] = (), userns: bool = False) -> int:
    """``lvsconsole demo``: 0 when it ran (``--check``: when every step passed), 1 a step failed, 2 cannot run.

    ``userns``: run in a user namespace even as root (what a normal user gets).
    """
    if (os.geteuid() != 0 or userns) and not os.environ.get(USERNS_ENV):
        return reexec_in_userns([a for a in argv if a != "--userns"], out)
    missing = tools_missing()
    if missing:
        print(f"lvsconsole demo: missing {', '.join(missing)}", file=out)
        return 2
    clean_stale(out)
    has_ipvs, why = ipvs_available()
    simulated = not has_ipvs
    if os.environ.get(USERNS_ENV):
        print("(in a user namespace: namespaces, addresses and VRRP are real; IPVS needs real root)", file=out)
    print(banner(simulated, why), file=out, flush=True)
    lab = DemoLab(RUN_DIR / f"demo-{os.getpid()}", simulated, out, why=why)

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, terminate) for sig in (signal.SIGTERM, signal.SIGHUP)}
    status = 1
    try:
        started = time.monotonic()
        lab.build()
        print(layout(lab), file=out)
        print(f"lab built in {time.monotonic() - started:.1f} s", file=out, flush=True)
        if check:
            status = _check(lab, out)
        else:
            status = _interactive(lab, out)
    except StepFailed as exc:
        print(f"FAILED {exc}", file=out)
        for node in ("director1", "director2"):
            print(f"  last lines of {node}'s log:\n{_tail(lab.log_text(node))}", file=out)
        status = 1
    except (DemoError, LabError) as exc:
        print(f"lvsconsole demo: {exc}", file=out)
        status = 1
    except KeyboardInterrupt:
        print("interrupted", file=out)
        status = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave the lab behind
        print("tearing the lab down", file=out, flush=True)
        lab.close()
        shutil.rmtree(lab.workdir, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status


def _check(lab: DemoLab, out: TextIO) -> int:
    checker = Checker(lab, out)
    checker.run()
    checker.say(f"demo check passed: {checker.number} steps"
                + (f" (IPVS simulated: {lab.why})" if lab.simulated else ""))
    return 0


def _interactive(lab: DemoLab, out: TextIO) -> int:
    d1 = DIRECTORS[0].name
    print(f"waiting for {d1} to become MASTER …", file=out, flush=True)
    try:
        wait_for(lambda: lab.vrrp_state(d1) == "MASTER" and lab.holds_vip(d1), 30, interval=0.1,
                 what=f"{d1} to become MASTER")
    except TimeoutError as exc:
        print(f"warning: {exc}; opening the console anyway", file=out)
    argv, what = face_command(lab.socket(d1))
    print(f"opening {what} attached to {d1}; lab commands: 'lab status', 'lab stop rs1', 'lab start rs1', "
          f"'lab kill director1', 'lab partition', 'lab heal', 'lab client'. Leave it to tear the lab down.",
          file=out, flush=True)
    return asyncio.run(run_face(lab, argv))

