"""The VRRP wire radar on a virtual clock: jitter, mismatches, collisions, the dual-master alarm, expiry, caps."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

from lvsconsole.vrrp.packet import MCAST_GROUP4, MCAST_GROUP6, Advert, Auth, AuthType, encode, encode_ipv4_datagram
from lvsconsole.vrrp.radar import AlarmCleared, AlarmRaised, Expected, Radar, RadarKey, SenderView

IF = "eth0"
VIP = IPv4Address("10.0.0.100")
A = IPv4Address("10.0.0.1")
B = IPv4Address("10.0.0.2")
C = IPv4Address("10.0.0.3")
KEY = RadarKey(IF, 4, 51)
OURS = Expected("VI_1", 2, 100, Auth.pass_("secret"), frozenset({VIP}))


def advert(priority: int = 100, *, vrid: int = 51, version: int = 2, interval_cs: int = 100,
           addresses: tuple[IPv4Address, ...] = (VIP,), password: str = "secret") -> Advert:
    auth = Auth.pass_(password) if version == 2 else Auth()
    return Advert(version=version, vrid=vrid, priority=priority, addresses=addresses, interval_cs=interval_cs,
                  auth_type=auth.type if version == 2 else AuthType.NONE, auth_data=auth.data if version == 2 else b"")


def radar() -> Radar:
    r = Radar()
    r.configure({KEY: OURS})
    return r


def view(r: Radar, sender: IPv4Address, now: float, key: RadarKey = KEY) -> SenderView:
    return next(v for v in r.report(now).senders if v.sender == sender and v.key == key)


def feed(r: Radar, src: IPv4Address, times: list[float], ad: Advert | None = None) -> list[object]:
    changes: list[object] = []
    for t in times:
        changes += r.observe_advert(IF, src, ad or advert(), t)
    return changes


def test_counts_priority_and_the_jitter_of_inter_arrival_times() -> None:
    r = radar()
    feed(r, A, [0.0, 1.0, 2.2, 3.0, 4.2])  # gaps 1.0, 1.2, 0.8, 1.2
    v = view(r, A, 4.5)
    assert (v.count, v.priority, v.version, v.interval, v.instance) == (5, 100, 2, 1.0, "VI_1")
    assert v.mean_gap == pytest.approx(1.05)
    assert v.jitter == pytest.approx((0.05**2 + 0.15**2 + 0.25**2 + 0.15**2) ** 0.5 / 2)
    assert v.age == pytest.approx(0.3)
    assert v.mismatches == () and v.collision is None


def test_a_silence_longer_than_the_alarm_window_is_not_jitter() -> None:
    r = radar()
    feed(r, A, [0.0, 1.0, 2.0, 30.0, 31.0])
    v = view(r, A, 31.0)
    assert v.mean_gap == pytest.approx(1.0)
    assert v.jitter == pytest.approx(0.0)


def test_mismatches_against_our_instance() -> None:
    r = radar()
    r.observe_advert(IF, A, advert(password="other"), 0.0)
    r.observe_advert(IF, B, advert(interval_cs=200), 0.0)
    r.observe_advert(IF, C, advert(version=3), 0.0)
    assert view(r, A, 0.0).mismatches == ("auth",)
    assert view(r, B, 0.0).mismatches == ("interval",)
    assert view(r, C, 0.0).mismatches == ("version",)
    assert view(r, A, 0.0).auth_type == AuthType.PASS


def test_a_foreign_vrid_and_another_vip_set_are_collisions() -> None:
    r = radar()
    r.observe_advert(IF, A, advert(vrid=52), 0.0)
    r.observe_advert(IF, B, advert(addresses=(IPv4Address("10.0.0.200"),)), 0.0)
    foreign = view(r, A, 0.0, RadarKey(IF, 4, 52))
    assert foreign.collision == "VRID not configured here" and foreign.instance is None and foreign.mismatches == ()
    other_vips = view(r, B, 0.0)
    assert other_vips.collision == "VIP set differs from VI_1" and other_vips.mismatches == ("vips",)
    assert view(r, B, 0.0).vips == (IPv4Address("10.0.0.200"),)


def test_the_same_vrid_on_another_interface_or_family_is_another_namespace() -> None:
    r = radar()
    r.observe_advert("eth1", A, advert(), 0.0)
    assert view(r, A, 0.0, RadarKey("eth1", 4, 51)).collision == "VRID not configured here"


def test_dual_master_raises_and_clears() -> None:
    r = radar()
    assert feed(r, A, [0.0, 1.0, 2.0]) == []
    changes: list[object] = []
    t = 2.0
    for _ in range(4):  # both advertise every second, half a second apart
        changes += r.observe_advert(IF, B, advert(priority=50), t + 0.5)
        changes += r.observe_advert(IF, A, advert(), t + 1.0)
        t += 1.0
    raised = [c for c in changes if isinstance(c, AlarmRaised)]
    assert len(raised) == 1
    assert raised[0].key == KEY and raised[0].instance == "VI_1"
    assert raised[0].senders == ((A, 100), (B, 50))
    assert KEY in r.alarms
    report = r.report(t)
    assert [a.key for a in report.alarms] == [KEY]
    assert view(r, B, t).alarm and view(r, A, t).alarm
    # B goes quiet; A keeps advertising: cleared once B has been quiet for five intervals
    b_last = t - 0.5
    cleared: list[object] = []
    while not cleared:
        t += 1.0
        cleared += r.observe_advert(IF, A, advert(), t)
        assert t < 20
    assert [type(c) for c in cleared] == [AlarmCleared] and 5.0 < t - b_last <= 6.0
    done = cleared[0]
    assert isinstance(done, AlarmCleared) and done.remaining == A and done.lasted > 0
    assert KEY not in r.alarms and not view(r, B, t).advertising


def test_a_router_joining_an_ongoing_dual_master_is_announced_again() -> None:
    r = radar()
    changes = feed(r, A, [0.0, 1.0, 2.0])
    for t in (2.5, 3.5, 4.5, 5.5):  # B and A both master, half a second apart
        changes += r.observe_advert(IF, B, advert(priority=50), t)
        changes += r.observe_advert(IF, A, advert(), t + 0.5)
    assert [c.senders for c in changes if isinstance(c, AlarmRaised)] == [((A, 100), (B, 50))]
    joined = r.observe_advert(IF, C, advert(priority=150), 6.2)
    assert [type(c) for c in joined] == [AlarmRaised]
    assert isinstance(joined[0], AlarmRaised) and joined[0].senders == ((C, 150), (A, 100), (B, 50))
    # the members already announced advertising on raise nothing new
    assert r.observe_advert(IF, B, advert(priority=50), 6.5) == [] and r.observe_advert(IF, A, advert(), 7.0) == []


def test_a_preemption_is_no_dual_master_even_with_an_advert_in_flight() -> None:
    r = radar()
    changes = feed(r, A, [0.0, 1.0, 2.0])
    changes += r.observe_advert(IF, B, advert(priority=150), 2.9)   # B takes over
    changes += r.observe_advert(IF, A, advert(), 3.0)                # A's last advert, already on the wire
    changes += feed(r, B, [3.9, 4.9, 5.9, 6.9], advert(priority=150))
    assert changes == []
    assert [a for a, _ in r.advertising(KEY, 6.9)] == [B]


def test_two_masters_sharing_one_advert_slot_are_a_dual_master() -> None:
    # two keepalived masters that reject each other's adverts reset their timers on them: one advert a second
    # between them, from either, in no fixed order
    r = radar()
    order = [A, B, A, A, B, B, A, B, A, A, A, B]
    changes: list[object] = []
    for i, src in enumerate(order):
        changes += r.observe_advert(IF, src, advert(priority=100 if src == A else 150), float(i))
    assert [type(c) for c in changes] == [AlarmRaised]
    assert KEY in r.alarms  # B was quiet for three seconds (8-10): the alarm held


def test_a_priority_zero_advert_resigns_at_once() -> None:
    r = radar()
    feed(r, A, [0.0, 1.0, 2.0])
    feed(r, B, [0.5, 1.5, 2.5], advert(priority=50))
    assert KEY in r.alarms
    changes = r.observe_advert(IF, B, advert(priority=0), 2.7)
    assert [type(c) for c in changes] == [AlarmCleared]


def test_the_alarm_clears_by_tick_when_everyone_goes_quiet() -> None:
    r = radar()
    feed(r, A, [0.0, 1.0, 2.0])
    feed(r, B, [0.5, 1.5, 2.5], advert(priority=50))
    assert r.tick(3.0) == [] and r.tick(7.0) == []
    changes = r.tick(8.0)
    assert len(changes) == 1 and isinstance(changes[0], AlarmCleared) and changes[0].remaining is None


def test_senders_expire_after_a_minute_of_silence() -> None:
    r = Radar(expiry=60.0)
    r.observe_advert(IF, A, advert(), 0.0)
    r.observe_advert(IF, B, advert(), 30.0)
    r.tick(59.9)
    assert len(r) == 2
    r.tick(60.0)
    assert [v.sender for v in r.report(60.0).senders] == [B]


def test_the_number_of_senders_is_capped_and_the_stalest_makes_room() -> None:
    r = Radar(max_senders=3)
    for i in range(5):
        r.observe_advert(IF, IPv4Address(f"10.9.0.{i + 1}"), advert(), float(i))
    senders = [v.sender for v in r.report(5.0).senders]
    assert senders == [IPv4Address("10.9.0.3"), IPv4Address("10.9.0.4"), IPv4Address("10.9.0.5")]
    assert r.evicted == 2 and r.report(5.0).evicted == 2


def test_raw_ipv4_datagrams_are_decoded_without_expectations() -> None:
    r = radar()
    data = encode_ipv4_datagram(advert(password="wrong!"), A, MCAST_GROUP4, ttl=64)  # bad TTL and password
    r.observe_packet(IF, A, MCAST_GROUP4, data, ip_header=True, now=1.0)
    v = view(r, A, 1.0)
    assert v.count == 1 and v.priority == 100 and v.mismatches == ("auth",)


def test_a_v3_checksum_computed_as_v2_is_accepted() -> None:
    r = radar()
    data = encode_ipv4_datagram(advert(version=3), A, MCAST_GROUP4, v3_checksum_as_v2=True)
    r.observe_packet(IF, A, MCAST_GROUP4, data, ip_header=True, now=1.0)
    assert view(r, A, 1.0).version == 3


def test_a_corrupt_packet_is_counted_against_its_sender() -> None:
    r = radar()
    data = bytearray(encode_ipv4_datagram(advert(), A, MCAST_GROUP4))
    data[-1] ^= 0xFF  # breaks the VRRP checksum
    r.observe_packet(IF, A, MCAST_GROUP4, bytes(data), ip_header=True, now=1.0)
    v = view(r, A, 1.0)
    assert v.malformed == 1 and v.count == 0 and v.last_error is not None and "checksum" in v.last_error
    assert v.priority is None and v.as_json()["priority"] is None


def test_ipv6_packets_without_header() -> None:
    r = Radar()
    src = IPv6Address("fe80::1")
    vip = IPv6Address("2001:db8::100")
    ad = Advert(version=3, vrid=7, priority=120, addresses=(vip,), interval_cs=50)
    r.observe_packet(IF, src, MCAST_GROUP6, encode(ad, src, MCAST_GROUP6), ip_header=False, now=0.0)
    v = view(r, src, 0.0, RadarKey(IF, 6, 7))  # type: ignore[arg-type]
    assert (v.priority, v.interval, v.vips, v.auth_type) == (120, 0.5, (vip,), None)


def test_json_report() -> None:
    r = radar()
    feed(r, A, [0.0, 1.0, 2.0])
    feed(r, B, [0.5, 1.5, 2.5], advert(priority=50, addresses=(IPv4Address("10.0.0.7"),)))
    data = r.report(3.0).as_json()
    assert data["packets"] == 6
    row = next(s for s in data["senders"] if s["sender"] == "10.0.0.2")
    assert row["vrid"] == 51 and row["priority"] == 50 and row["auth_type"] == "PASS"
    assert row["collision"] == "VIP set differs from VI_1" and row["dual_master"] is True
    assert data["alarms"][0]["senders"] == [{"sender": "10.0.0.1", "priority": 100},
                                            {"sender": "10.0.0.2", "priority": 50}]
