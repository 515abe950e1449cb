"""Our own adverts on the wire radar: shown as ours beside the other routers', a rogue master against ours
raises the dual-master alarm, and copies of our adverts coming back never make a second sender."""

from __future__ import annotations

from ipaddress import IPv4Address

from lvsconsole.vrrp.packet import MCAST_GROUP4, Advert, Auth, AuthType, encode_ipv4_datagram
from lvsconsole.vrrp.radar import AlarmRaised, Expected, Radar, RadarKey, SenderView

IF = "eth0"
VIP = IPv4Address("10.0.0.100")
SELF = IPv4Address("10.0.0.1")
ROGUE = IPv4Address("10.0.0.9")
KEY = RadarKey(IF, 4, 51)


def advert(priority: int = 100) -> Advert:
    auth = Auth.pass_("secret")
    return Advert(version=2, vrid=51, priority=priority, addresses=(VIP,), interval_cs=100,
                  auth_type=AuthType.PASS, auth_data=auth.data)


def radar() -> Radar:
    r = Radar()
    r.configure({KEY: Expected("VI_1", 2, 100, Auth.pass_("secret"), frozenset({VIP}))})
    return r


def view(r: Radar, sender: IPv4Address, now: float) -> SenderView:
    return next(v for v in r.report(now).senders if v.sender == sender)


def test_our_adverts_are_listed_as_ours_with_their_rhythm() -> None:
    r = radar()
    for t in (0.0, 1.0, 2.0, 3.0):
        assert r.observe_own(IF, SELF, advert(), t) == []
    v = view(r, SELF, 3.2)
    assert v.ours and v.advertising and v.count == 4 and v.priority == 100 and v.instance == "VI_1"
    assert v.mean_gap == 1.0 and v.mismatches == () and v.collision is None
    assert v.as_json()["ours"] is True and r.alarms == frozenset()


def test_a_rogue_master_against_ours_raises_the_alarm_and_shows_both_sides() -> None:
    r = radar()
    changes: list[object] = []
    for i in range(6):
        changes += r.observe_own(IF, SELF, advert(100), float(i))
        changes += r.observe_advert(IF, ROGUE, advert(90), i + 0.5)
    raised = [c for c in changes if isinstance(c, AlarmRaised)]
    assert len(raised) == 1 and raised[0].senders == ((SELF, 100), (ROGUE, 90))
    report = r.report(6.0)
    rows = {v.sender: v for v in report.senders}
    assert rows[SELF].ours and not rows[ROGUE].ours
    assert rows[SELF].alarm and rows[ROGUE].alarm


def test_copies_of_our_adverts_received_back_are_no_second_master() -> None:
    r = radar()
    changes: list[object] = []
    for i in range(10):
        t = float(i)
        changes += r.observe_own(IF, SELF, advert(), t)
        # the same advert, looped back a moment later through the raw socket
        data = encode_ipv4_datagram(advert(), SELF, MCAST_GROUP4)
        changes += r.observe_packet(IF, SELF, MCAST_GROUP4, data, ip_header=True, now=t + 0.001)
    assert changes == [] and r.alarms == frozenset()
    v = view(r, SELF, 9.5)
    assert v.count == 10, "echoes are not counted as adverts"
    assert v.jitter == 0.0, "nor do they add near-zero gaps"
    assert len(r) == 1


def test_an_address_heard_before_we_sent_from_it_restarts_as_ours() -> None:
    r = radar()
    for t in (0.0, 0.5, 1.0, 1.5):  # someone else's adverts from the address we are about to use
        r.observe_advert(IF, SELF, advert(50), t)
    changes: list[object] = []
    for t in (2.0, 3.0, 4.0, 5.0):
        changes += r.observe_own(IF, SELF, advert(100), t)
    assert changes == []
    v = view(r, SELF, 5.0)
    assert v.ours and v.priority == 100 and v.mean_gap == 1.0
