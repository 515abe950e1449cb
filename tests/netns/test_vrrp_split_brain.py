"""Split brain seen and healed: two masters of one VRID on a partitioned bridge, then the heal.

Node a (priority 100) and node b (priority 70) share a VIP on bridge br0 in namespace sw. The partition
blocks b's bridge port (``bridge link set ... state 0``, written to a running ``bridge -batch -``) rather
than taking it down: a downed port takes b's carrier with it, and b would go FAULT (it tracks its
interface) instead of MASTER. Every frame is captured in sw with an AF_PACKET socket and kernel receive
timestamps (SO_TIMESTAMPNS), so the gratuitous ARP's arrival on a's port is compared with the wall-clock
time taken just before the heal.

A split brain can only be seen through an advert crossing the healed link, so the bound on the re-GARP
is the faster side's advert interval plus processing: that side advertises every 50 ms (VRRPv3), the
other every second, and the heal comes right after the slower side's advert, so which advert crosses
first is chosen by the test.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address

import pytest

from lvsconsole.ipvs.kernel import enter_netns, netns_path
from lvsconsole.lab.netns import Namespace, wait_for
from lvsconsole.lab.vrrp import (
    A4,
    B4,
    Daemon,
    InstanceConf,
    render_config,
    start_keepalived,
    start_lvsconsole,
)
from lvsconsole.lab.vrrp import DirectorPair as Pair

pytestmark = pytest.mark.netns

VIP = "10.9.0.100"
HEAL_BUDGET = 0.100  # the gratuitous ARP must reach the bridge within this long after the heal
SO_TIMESTAMPNS = 35  # Linux; not exported by the socket module
ETH_P_ALL = 0x0003
ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
IPPROTO_VRRP = 112
FORWARDING, DISABLED = 3, 0  # bridge port states


@dataclass(frozen=True)
class Frame:
    at: float  # kernel receive time, wall clock
    ifname: str
    outgoing: bool
    data: bytes

    @property
    def ethertype(self) -> int:
        return int.from_bytes(self.data[12:14], "big")

    def gratuitous_arp_for(self, address: str) -> bool:
        """An ARP whose sender and target protocol addresses are both ``address`` (request or reply)."""
        if self.ethertype != ETH_P_ARP or len(self.data) < 42:
            return False
        packed = IPv4Address(address).packed
        return self.data[28:32] == packed and self.data[38:42] == packed

    def vrrp_from(self, address: str) -> bool:
        if self.ethertype != ETH_P_IP or len(self.data) < 34:
            return False
        return self.data[23] == IPPROTO_VRRP and self.data[26:30] == IPv4Address(address).packed


class BridgeCapture:
    """Every frame seen by namespace ``sw`` (each bridge port's ingress and egress), with kernel timestamps."""

    def __init__(self, sw: Namespace) -> None:
        self.frames: list[Frame] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        ready: list[socket.socket] = []
        failure: list[BaseException] = []

        def open_inside() -> None:
            # setns(2) moves only this short-lived thread; the socket keeps the namespace for life
            try:
                enter_netns(netns_path(sw.ns))
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                sock.settimeout(0.1)
                ready.append(sock)
            except BaseException as exc:
                failure.append(exc)

        opener = threading.Thread(target=open_inside)
        opener.start()
        opener.join(10)
        if failure:
            raise failure[0]
        self._sock = ready[0]
        self._reader = threading.Thread(target=self._read, name="bridge capture", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data, ancillary, _flags, address = self._sock.recvmsg(2048, socket.CMSG_SPACE(16))
            except TimeoutError:
                continue
            except OSError:
                return
            at = time.time()
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    seconds, nanoseconds = struct.unpack("qq", value[:16])
                    at = seconds + nanoseconds / 1e9
            frame = Frame(at, address[0], address[2] == socket.PACKET_OUTGOING, data)
            with self._lock:
                self.frames.append(frame)

    def received_on(self, port: str, match: Callable[[Frame], bool], since: float = 0.0) -> list[Frame]:
        """Frames that entered the bridge through ``port`` at or after ``since`` and match."""
        with self._lock:
            frames = list(self.frames)
        return [f for f in frames if f.ifname == port and not f.outgoing and f.at >= since and match(f)]

    def close(self) -> None:
        self._stop.set()
        self._reader.join(5)
        self._sock.close()


@contextlib.contextmanager
def capture(sw: Namespace) -> Iterator[BridgeCapture]:
    cap = BridgeCapture(sw)
    try:
        yield cap
    finally:
        cap.close()


class PortSwitch:
    """``bridge -batch -`` running in the switch namespace: a port state change is one line written to it, so
    the heal takes effect microseconds after the time taken for it, not a process start later."""

    def __init__(self, sw: Namespace) -> None:
        self.sw = sw
        self._proc = subprocess.Popen(sw.exec_argv(["bridge", "-batch", "-"]), stdin=subprocess.PIPE, text=True)

    def set_state(self, port: str, state: int) -> float:
        """Write the change; returns the wall-clock time taken just before it."""
        assert self._proc.stdin is not None
        at = time.time()
        self._proc.stdin.write(f"link set dev {port} state {state}\n")
        self._proc.stdin.flush()
        return at

    def wait_state(self, port: str, name: str) -> None:
        wait_for(lambda: f"state {name} " in self.sw.run(["bridge", "link", "show", "dev", port]).stdout, 5,
                 interval=0.01, what=f"{port} {name}")

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(5)


@contextlib.contextmanager
def port_switch(sw: Namespace) -> Iterator[PortSwitch]:
    switch = PortSwitch(sw)
    try:
        yield switch
    finally:
        switch.close()


def vip_on(ns: Namespace) -> bool:
    return ns.has_address(VIP, "eth0")


def config(priority: int, router_id: str, advert_int: float) -> str:
    # no second GARP burst garp_master_delay later: only the split brain may announce the VIP after the heal
    inst = InstanceConf(priority=priority, version=3, advert_int=advert_int, extra=["garp_master_delay 0"])
    return render_config([inst], router_id=router_id)


def partition_until_both_master(pair: Pair, switch: PortSwitch, timeout: float) -> None:
    switch.set_state(pair.port_b, DISABLED)
    switch.wait_state(pair.port_b, "disabled")
    wait_for(lambda: vip_on(pair.a) and vip_on(pair.b), timeout, interval=0.02, what="both sides MASTER")


def heal_right_after_an_advert_from(pair: Pair, switch: PortSwitch, cap: BridgeCapture, source: str) -> float:
    """Heal just after ``source``'s advert entered the bridge, so that it is the slower side's next advert
    that comes second; returns the wall-clock time taken just before the heal."""
    port = pair.port_a if source == A4 else pair.port_b
    seen = time.time()
    wait_for(lambda: cap.received_on(port, lambda f: f.vrrp_from(source), seen), 3, interval=0.002,
             what=f"an advert from {source}")
    heal_at = switch.set_state(pair.port_b, FORWARDING)
    switch.wait_state(pair.port_b, "forwarding")
    return heal_at


def assert_healed_by_a(pair: Pair, cap: BridgeCapture, ours: Daemon, heal_at: float, log_mark: int) -> None:
    """a re-announced the VIP within the budget, raised the split brain naming b, and is the one MASTER."""
    ours.wait_log(f"split brain: another MASTER {B4} (priority 70) on VRID 51; sending gratuitous ARPs", 5,
                  after=log_mark)
    garps = wait_for(lambda: cap.received_on(pair.port_a, lambda f: f.gratuitous_arp_for(VIP), heal_at), 5,
                     interval=0.01, what="a gratuitous ARP from a after the heal")
    delay = garps[0].at - heal_at
    assert 0 <= delay <= HEAL_BUDGET, f"first gratuitous ARP {delay * 1000:.1f} ms after the heal"
    wait_for(lambda: not vip_on(pair.b), 5, interval=0.02, what="b to release the VIP")
    # the episode ends 3 intervals of b's after its last advert, with a still MASTER
    ours.wait_log(f"split brain with {B4} resolved: no advert from it", 10, after=log_mark)
    assert vip_on(pair.a) and not vip_on(pair.b)
    stats = ours.instance_stats()
    assert stats["state"] == "MASTER" and stats["split_brain"] == []
    assert ours.log().count("split brain: another MASTER", log_mark) == 1


# a at 1 s and b at 50 ms, healed after a's advert: b's advert crosses first and a hears b directly.
# a at 50 ms and b at 1 s, healed after b's advert: a's advert crosses first, b yields and says goodbye
# with an advert of its own priority, which is how a hears of the split brain.
@pytest.mark.parametrize(("a_int", "b_int", "first"), [(1.0, 0.05, "loser"), (0.05, 1.0, "winner")],
                         ids=["loser-advert-first", "winner-advert-first"])
def test_two_of_our_engines_partitioned_and_healed(pair: Pair, a_int: float, b_int: float, first: str) -> None:
    ours = start_lvsconsole(pair.a, config(100, "a", a_int), pair.workdir, "a")
    theirs = start_lvsconsole(pair.b, config(70, "b", b_int), pair.workdir, "b")
    wait_for(lambda: vip_on(pair.a) and not vip_on(pair.b), 30, interval=0.02, what="a MASTER, b BACKUP")
    with capture(pair.sw) as cap, port_switch(pair.sw) as switch:
        partition_until_both_master(pair, switch, 8)
        log_mark = len(ours.log())
        heal_at = heal_right_after_an_advert_from(pair, switch, cap, A4 if first == "loser" else B4)
        assert_healed_by_a(pair, cap, ours, heal_at, log_mark)
    assert theirs.instance_stats()["state"] == "BACKUP"
    assert "split brain" not in theirs.log()  # the loser saw no split brain of its own


def test_keepalived_as_the_lower_priority_peer(pair: Pair) -> None:
    # keepalived yields silently to a higher advert, so a learns of the split brain only if keepalived's
    # advert crosses the healed link first: a advertises every second, keepalived every 50 ms, and the
    # heal comes right after one of a's adverts
    ours = start_lvsconsole(pair.a, config(100, "a", 1.0), pair.workdir, "a")
    theirs = start_keepalived(pair.b, config(70, "b", 0.05), pair.workdir, "b")
    wait_for(lambda: vip_on(pair.a) and not vip_on(pair.b), 30, interval=0.02, what="a MASTER, keepalived BACKUP")
    with capture(pair.sw) as cap, port_switch(pair.sw) as switch:
        partition_until_both_master(pair, switch, 8)
        log_mark = len(ours.log())
        heal_at = heal_right_after_an_advert_from(pair, switch, cap, A4)
        assert_healed_by_a(pair, cap, ours, heal_at, log_mark)
    assert "Master received advert from 10.9.0.1 with higher priority 100" in theirs.log()
