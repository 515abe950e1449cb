"""Announcements built ahead of a takeover go out unchanged, once; later ones are built afresh.

A veth pair inside one namespace: the sender writes on v0, a packet socket on v1 reads what reached the wire.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from lvsconsole.lab.netns import Lab

pytestmark = pytest.mark.netns

SENDER = r"""
import json, socket, struct
from ipaddress import ip_address
from pathlib import Path
from lvsconsole.vrrp.addresses import GratuitousSender

V4, V6 = ip_address("10.66.0.100"), ip_address("fd00:66::100")
capture = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
capture.bind(("v1", 0))
capture.settimeout(5.0)
forwarding = Path("/proc/sys/net/ipv6/conf/v0/forwarding")
forwarding.write_text("0")
sender = GratuitousSender()
sender.prepare_frames([("v0", V4), ("v0", V6)])
forwarding.write_text("1")  # after the preparation: only a frame built afresh carries the router flag
sent = [sender.send_one("v0", V4), sender.send_one("v0", V6), sender.send_one("v0", V6)]

def announcements():
    while True:
        frame = capture.recv(2048)
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        if ethertype == 0x0806 and frame[38:42] == V4.packed:
            yield {"kind": "arp", "sender_ip": str(ip_address(frame[28:32])), "length": len(frame)}
        elif ethertype == 0x86DD and frame[20] == 58 and frame[54] == 136 and frame[62:78] == V6.packed:
            yield {"kind": "na", "router": bool(frame[58] & 0x80), "override": bool(frame[58] & 0x20)}

seen = []
for note in announcements():
    seen.append(note)
    if len(seen) == 3:
        break
print(json.dumps({"sent": sent, "seen": seen}))
"""


def test_a_prepared_announcement_is_used_once_then_built_afresh(tmp_path: Path) -> None:
    with Lab("lvgf-") as lab:
        node = lab.node("n")
        lab.veth(node, "v0", "v1")
        script = tmp_path / "sender.py"
        script.write_text(SENDER)
        repo = Path(__file__).resolve().parents[2]
        result = node.run(["env", f"PYTHONPATH={repo}", sys.executable, str(script)], timeout=30)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["sent"] == [True, True, True]
    arp, prepared_na, fresh_na = report["seen"]
    assert arp == {"kind": "arp", "sender_ip": "10.66.0.100", "length": 60}
    # the prepared NA was built while v0 did not forward; the next one reads the setting again
    assert prepared_na == {"kind": "na", "router": False, "override": True}
    assert fresh_na == {"kind": "na", "router": True, "override": True}
