"""Unicast peers on the wire: a peer the kernel refuses to send to shows its send error, a live one when it was heard.

Node a (priority 150) sends its adverts to b and to 10.9.0.255, the subnet's broadcast address (a typo'd peer):
the kernel refuses every send to it (EACCES: no SO_BROADCAST) while the adverts to b go out; b, a silent
BACKUP, hears a. (A device-bound raw socket is not told EHOSTUNREACH/ENETUNREACH by sendto: routing assumes
an on-link destination and a failed ARP is reported only through IP_RECVERR; such a peer shows as never heard.)
"""

from __future__ import annotations

from typing import Any

import pytest

from lvsconsole.lab.netns import wait_for
from lvsconsole.lab.vrrp import A4, B4, DirectorPair, InstanceConf, render_config, start_lvsconsole

pytestmark = pytest.mark.netns

NOWHERE = "10.9.0.255"


def peers_of(stats: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["address"]: p for p in stats["peer_status"]}


def test_a_refused_unicast_peer_shows_its_send_error_and_a_live_one_is_heard(pair: DirectorPair) -> None:
    conf_a = render_config([InstanceConf(priority=150, unicast_src=A4, unicast_peers=(B4, NOWHERE))], router_id="a")
    conf_b = render_config([InstanceConf(priority=100, unicast_src=B4, unicast_peers=(A4,))], router_id="b")
    ours = start_lvsconsole(pair.a, conf_a, pair.workdir, "a")
    theirs = start_lvsconsole(pair.b, conf_b, pair.workdir, "b")
    try:
        ours.wait_log("Entering MASTER STATE", 10)

        def a_reports_the_error() -> dict[str, Any] | None:
            stats = ours.instance_stats()
            return stats if peers_of(stats)[NOWHERE]["last_error"] else None

        stats = wait_for(a_reports_the_error, 10, what="the send error to the unreachable peer")
        assert stats["state"] == "MASTER"
        assert "EACCES" in peers_of(stats)[NOWHERE]["last_error"]
        assert peers_of(stats)[B4]["last_error"] is None  # b is reachable: its adverts go out

        def b_heard_a() -> dict[str, Any] | None:
            stats = theirs.instance_stats()
            seen = peers_of(stats)[A4]["last_seen"]
            return stats if seen is not None and seen < 3 else None

        stats_b = wait_for(b_heard_a, 10, what="b to hear a")
        assert stats_b["state"] == "BACKUP"
        assert peers_of(stats_b)[A4]["last_error"] is None
    finally:
        ours.stop()
        theirs.stop()
