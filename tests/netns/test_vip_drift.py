"""Issue 10: a VIP removed from outside (``ip addr del``) against real addresses. The engine (real VRRP, IPVS in
memory: ``python -m lvsconsole.lab.director``) holds the VIP as the MASTER of VI_1 in a namespace of its own;
with ``ipvs_drift hold`` it lists the missing VIP in ``show drift`` and leaves it missing until ``drift
reconcile`` puts it back on the interface.

The VIP is written ``no_track``: as in keepalived, deleting a tracked VIP makes its instance leave MASTER and win
the election again, which re-adds the address by itself (vrrp/owned.py); a ``no_track`` VIP is left alone, and
the drift detector is what tells the operator it is gone."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lvsconsole.engine.commands import Result
from lvsconsole.engine.control import run_command
from lvsconsole.lab.netns import Lab, Namespace, Process, wait_for
from lvsconsole.lab.vrrp import InstanceConf, render_config

pytestmark = pytest.mark.netns

VIP = "10.9.6.100"
DIRECTOR_ADDRESS = "10.9.6.1"
DRIFT_SEEN_WITHIN = 30.0
"""The engine looks for missing VIPs every 10 s (its IPVS check interval): a few rounds of margin."""

CONFIG = render_config(
    [InstanceConf(state="MASTER", priority=150, version=3, advert_int=0.1, vips=(f"{VIP}/24 no_track",))],
    router_id="VIPDRIFT", global_lines=["ipvs_drift hold"]) + f"""
virtual_server {VIP} 80 {{
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.9.6.21 80 {{
        weight 1
    }}
}}
"""


@dataclass
class Director:
    node: Namespace
    engine: Process
    socket: str

    def run(self, command: str) -> Result:
        return run_command(command, self.socket, who="vip-drift-test", timeout=10)

    def drift(self) -> list[dict[str, Any]]:
        shown = self.run("show drift")
        assert shown.ok, shown.message
        assert isinstance(shown.data, list)
        return shown.data

    def vrrp_state(self) -> str:
        shown = self.run("show vrrp")
        assert shown.ok and isinstance(shown.data, list), shown.message
        return str(shown.data[0]["state"])

    def has_vip(self) -> bool:
        return self.node.has_address(VIP, "eth0")


@pytest.fixture
def director(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Director]:
    prefix = "lvd-" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:6] + "-"
    with Lab(prefix) as lab:
        sw = lab.switch("sw")
        node = lab.node("d")
        lab.link(node, sw, "eth0", [f"{DIRECTOR_ADDRESS}/24"])
        conf = tmp_path / "keepalived.conf"
        conf.write_text(CONFIG)
        socket_path = str(tmp_path / "engine.sock")
        log = tmp_path / "engine.log"
        engine = node.spawn([sys.executable, "-m", "lvsconsole.lab.director", "-f", str(conf), "--socket", socket_path],
                            log=log)
        built = Director(node, engine, socket_path)
        try:
            wait_for(lambda: Path(socket_path).exists() and built.has_vip(), 30, what="the engine to hold the VIP")
            yield built
        finally:
            print(log.read_text(errors="replace"))  # the engine's events: pytest shows them when the test fails


def test_a_vip_removed_from_outside_is_listed_held_and_reconciled(director: Director) -> None:
    assert director.vrrp_state() == "MASTER"
    assert director.drift() == []

    director.node.ip("addr", "del", f"{VIP}/24", "dev", "eth0")  # from outside: behind the engine's back
    assert not director.has_vip()
    [item] = wait_for(director.drift, DRIFT_SEEN_WITHIN, what="show drift to list the removed VIP")
    assert item["kind"] == "vip-removed"
    assert (item["instance"], item["interface"], item["vip"]) == ("VI_1", "eth0", VIP)
    assert item["where"] == f"VIP {VIP} on eth0 (VI_1)"
    assert (item["intent"], item["kernel"]) == ("present", "absent")
    # held: listed, not repaired behind the operator's back, and VRRP goes on as MASTER without it
    assert not director.has_vip()
    assert director.vrrp_state() == "MASTER"
    shown = director.run("show drift")
    assert item["id"] in shown.message and "vip-removed" in shown.message

    fixed = director.run(f"drift reconcile {item['id']}")
    assert fixed.ok, fixed.message
    assert f"add VIP {VIP} on eth0 (VI_1)" in fixed.message
    assert director.has_vip()
    assert f"{VIP}/24" in director.node.ip("addr", "show", "dev", "eth0").stdout
    assert director.drift() == []  # the reconcile looked again: the item is cleared at once
    assert director.vrrp_state() == "MASTER"
    assert director.engine.running()
