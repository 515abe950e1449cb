"""``lvsconsole realserver`` inside network namespaces: what start sets, idempotence, stop restoring the
values it found, status and its exit codes, and that a DR real server accepts traffic for the VIP without
answering ARP for it (an ARP probe from a neighbour over AF_PACKET; TCP to the VIP with a neighbour entry
pointing at the real server's MAC, as a DR director's forwarding does)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lvsconsole.lab.netns import Lab, Namespace, Process, wait_for

pytestmark = pytest.mark.netns

VIP = "10.88.0.100"
VIP2 = "10.88.0.101"
VIP6 = "fd00:88::100"
RS, NB = "10.88.0.2", "10.88.0.1"
TIMEOUT = 180  # per command: generous for the kernel-tier guest (software emulation), ~0.3 s here
ARP_KEYS = ("all.arp_ignore", "all.arp_announce", "lo.arp_ignore", "lo.arp_announce")

# An ARP who-has for TARGET from SRC on IFNAME; prints the answering MAC (exit 0) or "no reply" (exit 1).
ARP_PROBE = r"""
import socket, struct, sys, time
ifname, target, src, tries, wait = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s.bind((ifname, 0))
mac = s.getsockname()[4]
tgt = socket.inet_aton(target)
frame = (b"\xff" * 6 + mac + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac
         + socket.inet_aton(src) + b"\x00" * 6 + tgt)
s.settimeout(0.05)
for _ in range(tries):
    s.send(frame)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            data = s.recv(2048)
        except socket.timeout:
            continue
        if (len(data) >= 42 and data[12:14] == b"\x08\x06" and struct.unpack("!H", data[20:22])[0] == 2
                and data[28:32] == tgt):
            print(data[22:28].hex(":"))
            sys.exit(0)
print("no reply")
sys.exit(1)
"""


class RealServerNode:
    """A namespace and the realserver command run inside it (``ip netns exec NS python -m …``)."""

    def __init__(self, ns: Namespace, state: Path) -> None:
        self.ns = ns
        self.state = state

    def cmd(self, *args: str, state: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "lvsconsole.realserver", *args]
        if state:
            argv += ["--state", str(self.state)]
        return self.ns.run(argv, check=False, timeout=TIMEOUT)

    def ok(self, *args: str) -> str:
        proc = self.cmd(*args)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        return proc.stdout

    def status(self, *args: str) -> tuple[int, dict[str, Any]]:
        proc = self.cmd("status", "--json", *args)
        return proc.returncode, json.loads(proc.stdout)

    def sysctl(self, key: str) -> str:
        return self.ns.run(["cat", f"/proc/sys/net/ipv4/conf/{key.replace('.', '/')}"]).stdout.strip()

    def set_sysctl(self, key: str, value: str) -> None:
        self.ns.run(["sysctl", "-qw", f"net.ipv4.conf.{key}={value}"])

    def arp_values(self) -> dict[str, str]:
        return {k: self.sysctl(k) for k in ARP_KEYS}

    def lo_addresses(self) -> list[dict[str, Any]]:
        out = self.ns.ip("-json", "addr", "show", "dev", "lo").stdout
        return [a for link in json.loads(out) for a in link.get("addr_info", [])]


@pytest.fixture
def node(lab: Lab, tmp_path: Path) -> RealServerNode:
    return RealServerNode(lab.node("rs"), tmp_path / "realserver.json")


@pytest.fixture
def segment(lab: Lab, tmp_path: Path) -> tuple[RealServerNode, Namespace]:
    """A real server (10.88.0.2) and a neighbour (10.88.0.1) on one bridge."""
    sw = lab.switch("sw")
    rs = lab.node("rs")
    nb = lab.node("nb")
    lab.link(rs, sw, "eth0", [f"{RS}/24"])
    lab.link(nb, sw, "eth0", [f"{NB}/24"])
    return RealServerNode(rs, tmp_path / "realserver.json"), nb


def arp_probe(ns: Namespace, target: str, *, tries: int = 3, wait: float = 0.4) -> str | None:
    proc = ns.run([sys.executable, "-c", ARP_PROBE, "eth0", target, NB, str(tries), str(wait)], check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def mac_of(ns: Namespace, ifname: str = "eth0") -> str:
    out = ns.ip("-json", "link", "show", "dev", ifname).stdout
    return str(json.loads(out)[0]["address"])


# ---------------------------------------------------------------------------------------------- start / stop / status


def test_start_sets_vips_and_arp_sysctls(node: RealServerNode) -> None:
    code, before = node.status("--vip", VIP)
    assert code == 3 and before["complete"] is False
    out = node.ok("start", "--vip", VIP, "--vip", VIP6)
    assert f"{VIP}/32 on lo (label lo:0): added" in out
    assert f"{VIP6}/128 on lo: added" in out
    assert node.arp_values() == {"all.arp_ignore": "1", "all.arp_announce": "2", "lo.arp_ignore": "1",
                                 "lo.arp_announce": "2"}
    addrs = {a["local"]: a for a in node.lo_addresses()}
    assert addrs[VIP]["prefixlen"] == 32 and addrs[VIP]["label"] == "lo:0"
    assert addrs[VIP6]["prefixlen"] == 128 and "label" not in addrs[VIP6]
    code, after = node.status()  # the recorded VIPs
    assert code == 0 and after["complete"] is True
    assert {v["address"] for v in after["vips"]} == {VIP, VIP6}


def test_start_is_idempotent(node: RealServerNode) -> None:
    node.set_sysctl("all.arp_announce", "1")
    node.ok("start", "--vip", VIP)
    state = json.loads(node.state.read_text())
    second = node.ok("start", "--vip", VIP)
    assert second.strip() == f"{VIP}/32 on lo (label lo:0): already present"
    assert json.loads(node.state.read_text()) == state  # the values found first stay recorded
    assert [a["local"] for a in node.lo_addresses()].count(VIP) == 1
    node.ok("stop")
    assert node.sysctl("all.arp_announce") == "1"


def test_stop_restores_the_values_it_found(node: RealServerNode) -> None:
    # values that are neither the kernel's defaults nor ours
    node.set_sysctl("all.arp_announce", "1")
    node.set_sysctl("lo.arp_ignore", "2")
    found = node.arp_values()
    node.ok("start", "--vip", VIP)
    recorded = next(iter(json.loads(node.state.read_text())["namespaces"].values()))["sysctls"]
    assert recorded == {"net.ipv4.conf.all.arp_ignore": "0", "net.ipv4.conf.all.arp_announce": "1",
                        "net.ipv4.conf.lo.arp_ignore": "2", "net.ipv4.conf.lo.arp_announce": "0"}
    out = node.ok("stop")
    assert f"{VIP}/32 on lo (label lo:0): removed" in out
    assert "net.ipv4.conf.all.arp_announce: 2 -> 1 (restored)" in out
    assert node.arp_values() == found
    assert VIP not in [a["local"] for a in node.lo_addresses()]
    assert not node.state.exists()  # nothing left to remember
    code, after = node.status("--vip", VIP)
    assert after["complete"] is False
    assert code == 3


def test_stop_of_one_vip_keeps_what_the_others_need(node: RealServerNode) -> None:
    node.ok("start", "--vip", VIP)
    node.ok("start", "--vip", VIP2)
    out = node.ok("stop", "--vip", VIP)
    assert "restored" not in out
    code, status = node.status()
    assert code == 0 and [v["address"] for v in status["vips"]] == [VIP2]
    assert node.sysctl("all.arp_ignore") == "1"
    out = node.ok("stop", "--vip", VIP2)
    assert "net.ipv4.conf.all.arp_ignore: 1 -> 0 (restored)" in out
    assert node.ok("stop").strip().startswith("nothing to stop")


def test_status_says_what_is_missing(node: RealServerNode) -> None:
    node.ok("start", "--vip", VIP)
    node.set_sysctl("lo.arp_announce", "0")
    node.ns.ip("addr", "del", f"{VIP}/32", "dev", "lo")
    proc = node.cmd("status")
    assert proc.returncode == 3
    lines = proc.stdout.splitlines()
    assert any(line.startswith("vip") and VIP in line and "MISSING" in line for line in lines)
    assert any("net.ipv4.conf.lo.arp_announce = 0" in line and "MISSING: want 2" in line for line in lines)
    assert any("net.ipv4.conf.all.arp_ignore = 1" in line and line.rstrip().endswith("ok") for line in lines)
    assert lines[-1].startswith("INCOMPLETE")
    node.ok("start", "--vip", VIP)  # start repairs it
    proc = node.cmd("status")
    assert proc.returncode == 0 and proc.stdout.splitlines()[-1].startswith("complete")
    # a VIP with the wrong prefix is reported as such
    node.ns.ip("addr", "del", f"{VIP}/32", "dev", "lo")
    node.ns.ip("addr", "add", f"{VIP}/24", "dev", "lo", "label", "lo:0")
    code, data = node.status()
    assert code == 3 and data["vips"][0]["problems"] == ["prefix /24, want /32"]


def test_refusals(node: RealServerNode) -> None:
    proc = node.cmd("start", "--vip", "10.88.0.0/24")
    assert proc.returncode == 1 and "a VIP is a host address" in proc.stderr
    proc = node.cmd("start")
    assert proc.returncode == 1 and "at least one --vip" in proc.stderr
    node.ok("start", "--vip", VIP)
    proc = node.cmd("start", "--vip", VIP, "--mode", "tun")
    assert proc.returncode == 1 and "set up in DR mode" in proc.stderr


def test_one_state_file_serves_several_namespaces(lab: Lab, tmp_path: Path) -> None:
    a = RealServerNode(lab.node("a"), tmp_path / "shared.json")
    b = RealServerNode(lab.node("b"), tmp_path / "shared.json")
    a.set_sysctl("all.arp_announce", "1")
    a.ok("start", "--vip", VIP)
    b.ok("start", "--vip", VIP2)
    assert len(json.loads(a.state.read_text())["namespaces"]) == 2
    a.ok("stop")
    assert a.sysctl("all.arp_announce") == "1" and b.sysctl("all.arp_announce") == "2"
    code, data = b.status()
    assert code == 0 and [v["address"] for v in data["vips"]] == [VIP2]
    b.ok("stop")
    assert not a.state.exists()


def test_default_state_file_is_per_namespace(node: RealServerNode) -> None:
    proc = node.cmd("start", "--vip", VIP, "--json", state=False)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["state"] == "/run/lvsconsole/realserver.json"
    entries = json.loads(Path(data["state"]).read_text())["namespaces"]
    assert data["netns"] in entries
    proc = node.cmd("stop", state=False)
    assert proc.returncode == 0
    after = Path(data["state"])
    assert not after.exists() or data["netns"] not in json.loads(after.read_text())["namespaces"]


@pytest.mark.kernel  # the host kernel has no ipip module: this runs in the kernel-tier guest (see Makefile)
def test_tun_mode_puts_the_vip_on_tunl0(node: RealServerNode) -> None:
    node.set_sysctl("all.rp_filter", "1")
    out = node.ok("start", "--vip", VIP, "--mode", "tun")
    assert f"{VIP}/32 on tunl0: added" in out and "tunl0: up" in out
    assert node.sysctl("tunl0.rp_filter") == "0" and node.sysctl("all.rp_filter") == "2"
    assert node.arp_values()["all.arp_ignore"] == "1"
    code, _ = node.status()
    assert code == 0
    node.ok("stop")
    assert node.sysctl("all.rp_filter") == "1"
    assert "UP" not in json.loads(node.ns.ip("-json", "link", "show", "dev", "tunl0").stdout)[0]["flags"]


# ---------------------------------------------------------------------------------------------- on the wire


def test_dr_real_server_serves_the_vip_without_answering_arp(segment: tuple[RealServerNode, Namespace],
                                                            tmp_path: Path) -> None:
    rs, nb = segment
    rs_mac = mac_of(rs.ns)
    # the probe works: the real address is answered, by the real server
    assert arp_probe(nb, RS) == rs_mac
    # without the sysctls, Linux answers ARP for an address on lo from any interface (why DR needs them)
    rs.ns.ip("addr", "add", f"{VIP}/32", "dev", "lo")
    assert arp_probe(nb, VIP) == rs_mac
    rs.ns.ip("addr", "del", f"{VIP}/32", "dev", "lo")

    rs.ok("start", "--vip", VIP)
    assert arp_probe(nb, VIP, tries=4) is None
    assert arp_probe(nb, RS) == rs_mac  # still answers for its own address

    # a director's DR forwarding, reduced to what the wire sees: frames for the VIP to the real server's MAC
    server: Process = rs.ns.spawn([sys.executable, "-m", "lvsconsole.lab.services", "httpd", "--name", "rs",
                                   "--port", "80"], log=tmp_path / "httpd.log")
    wait_for(lambda: "serving HTTP" in server.output(), 10, what="the HTTP server")
    nb.ip("neigh", "replace", VIP, "lladdr", rs_mac, "dev", "eth0", "nud", "permanent")
    proc = nb.run([sys.executable, "-m", "lvsconsole.lab.services", "client", "--url", f"http://{VIP}/",
                   "--count", "1", "--timeout", "3"])
    answer = json.loads(proc.stdout)
    assert answer["ok"] is True and answer["server"] == "rs"
    server.stop()

    rs.ok("stop")
    nb.ip("neigh", "del", VIP, "dev", "eth0")
    assert arp_probe(nb, VIP) is None  # the VIP is gone altogether
