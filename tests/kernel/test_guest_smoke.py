"""Smoke test of the kernel tier: ip_vs is loaded, and pyroute2 and ipvsadm see the same IPVS table."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from socket import AF_INET, IPPROTO_TCP
from typing import Any

import pytest

pytestmark = pytest.mark.kernel

VIP, VPORT = "10.0.0.1", 80
# (address, port, weight, fwd_method): 0 = masquerading (NAT), 3 = direct routing
DESTS = [("10.1.1.2", 8080, 1, 0), ("10.1.2.2", 8080, 2, 3)]
FWD_NAMES = {0: "Masq", 2: "Tunnel", 3: "Route"}


def test_ip_vs_loaded(ipvsadm: Callable[..., str]) -> None:
    assert Path("/proc/net/ip_vs").exists()
    modules = Path("/proc/modules").read_text()
    assert re.search(r"^ip_vs ", modules, re.M) or Path("/sys/module/ip_vs").exists()
    assert ipvsadm("-Ln").startswith("IP Virtual Server version")


def _attrs(msg: Any, nla: str) -> dict[str, Any]:
    """The raw attributes of a service or dest nested in a netlink message.

    Not IPVSService/IPVSDest.from_message(): in pyroute2 0.9.7 those start from the class defaults, so
    e.g. a dest read back that way says fwd_method=3 whatever the kernel has; IPVS_DEST_ATTR_* is right.
    """
    return dict(msg.get(nla)["attrs"])


def _table(ipvsadm: Callable[..., str]) -> list[list[str]]:
    """`ipvsadm -Ln` without its 3 header lines, split into words."""
    return [line.split() for line in ipvsadm("-Ln").splitlines()[3:]]


def test_service_roundtrip_pyroute2_and_ipvsadm(ipvs: Any, ipvsadm: Callable[..., str]) -> None:
    from pyroute2 import IPVSDest, IPVSService

    svc = IPVSService(addr=VIP, port=VPORT, protocol=IPPROTO_TCP, sched_name="rr")
    ipvs.service("add", service=svc)
    for addr, port, weight, fwd in DESTS:
        ipvs.dest("add", service=svc, dest=IPVSDest(addr=addr, port=port, weight=weight, fwd_method=fwd))

    # pyroute2's view
    services = ipvs.service("dump")
    assert len(services) == 1
    s = _attrs(services[0], "IPVS_CMD_ATTR_SERVICE")
    assert (s["IPVS_SVC_ATTR_AF"], s["IPVS_SVC_ATTR_PROTOCOL"]) == (AF_INET, IPPROTO_TCP)
    assert (s["IPVS_SVC_ATTR_ADDR"], s["IPVS_SVC_ATTR_PORT"]) == (VIP, VPORT)
    assert s["IPVS_SVC_ATTR_SCHED_NAME"] == "rr"
    got = sorted(
        (
            d["IPVS_DEST_ATTR_ADDR"],
            d["IPVS_DEST_ATTR_PORT"],
            d["IPVS_DEST_ATTR_WEIGHT"],
            d["IPVS_DEST_ATTR_FWD_METHOD"],
        )
        for d in (_attrs(m, "IPVS_CMD_ATTR_DEST") for m in ipvs.dest("dump", service=svc))
    )
    assert got == sorted(DESTS)

    # ipvsadm's view
    assert _table(ipvsadm) == [
        ["TCP", f"{VIP}:{VPORT}", "rr"],
        *[["->", f"{a}:{p}", FWD_NAMES[f], str(w), "0", "0"] for a, p, w, f in DESTS],
    ]

    ipvs.service("del", service=IPVSService(addr=VIP, port=VPORT, protocol=IPPROTO_TCP))
    assert ipvs.service("dump") == []
    assert _table(ipvsadm) == []


def test_async_ipvs_reads_what_ipvsadm_wrote(ipvs: Any, ipvsadm: Callable[..., str]) -> None:
    from pyroute2 import AsyncIPVS

    ipvsadm("-A", "-t", f"{VIP}:{VPORT}", "-s", "wrr")
    ipvsadm("-a", "-t", f"{VIP}:{VPORT}", "-r", "10.1.1.2:8080", "-m", "-w", "5")

    async def dump() -> list[tuple[str, str, int]]:
        sock = AsyncIPVS()
        try:
            await sock.setup_endpoint()  # binds the IPVS genl family; `async with` alone does not
            out = []
            for m in await sock.service("dump"):
                s = _attrs(m, "IPVS_CMD_ATTR_SERVICE")
                out.append((s["IPVS_SVC_ATTR_ADDR"], s["IPVS_SVC_ATTR_SCHED_NAME"], s["IPVS_SVC_ATTR_PORT"]))
            return out
        finally:
            sock.close()

    assert asyncio.run(dump()) == [(VIP, "wrr", VPORT)]
