"""The IPVS table a keepalived config asks for (services, flags, dests, forwarding)."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

import pytest

from lvsconsole.config.build import load_file, load_text
from lvsconsole.ipvs.from_config import ConfigTableError, configured_table, virtual_services
from lvsconsole.ipvs.listing import render_list
from lvsconsole.ipvs.table import DestKey, Fwd, Proto, ServiceKey, SvcFlags, TunFlags, TunType

EXAMPLES = Path(__file__).resolve().parents[2] / "lvsconsole" / "examples"


def table_of(text: str):  # type: ignore[no-untyped-def]
    result = load_text(text, filename="t.conf")
    assert result.ok, [str(d) for d in result.diagnostics]
    return configured_table(result.config)


def test_seed_master_table_is_the_classic_dr_setup() -> None:
    table = configured_table(load_file(str(EXAMPLES / "master.conf")).config)
    assert render_list(table) == (
        "IP Virtual Server version 1.2.1 (size=4096)\n"
        "Prot LocalAddress:Port Scheduler Flags\n"
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        "TCP  192.168.2.188:80 rr persistent 50\n"
        "  -> 192.168.2.187:80             Route   3      0          0         \n"
        "  -> 192.168.2.189:80             Route   1      0          0         \n"
    )


def test_flags_persistence_mask_and_ops() -> None:
    table = table_of("""
virtual_server 10.1.0.1 53 {
    lvs_sched sh
    sh-port
    sh-fallback
    ops
    lvs_method DR
    protocol UDP
    persistence_timeout 30
    persistence_granularity 255.255.255.0
    real_server 10.2.0.1 53 {
    }
}
""")
    key = ServiceKey.inet(Proto.UDP, ip_address("10.1.0.1"), 53)
    service = table[key].service
    assert service.scheduler == "sh"
    assert service.flags == SvcFlags.SH_PORT | SvcFlags.SH_FALLBACK | SvcFlags.ONEPACKET | SvcFlags.PERSISTENT
    assert service.timeout == 30
    assert service.netmask == 24


def test_nat_remaps_ports_dr_does_not_and_fwmark_has_none() -> None:
    table = table_of("""
virtual_server 10.1.0.1 80 {
    lvs_sched wrr
    lvs_method NAT
    protocol TCP
    real_server 10.2.0.1 8080 {
        weight 2
    }
    real_server 10.2.0.2 {
        lvs_method TUN type gue port 6080 csum
    }
}
virtual_server fwmark 7 {
    lvs_sched rr
    lvs_method DR
    real_server 10.2.0.3 80 {
    }
}
""")
    web = table[ServiceKey.inet(Proto.TCP, ip_address("10.1.0.1"), 80)].dests
    nat = web[DestKey.of("10.2.0.1", 8080)]
    assert (nat.fwd, nat.weight) == (Fwd.MASQ, 2)
    tun = web[DestKey.of("10.2.0.2", 80)]
    assert (tun.fwd, tun.tun_type, tun.tun_port, tun.tun_flags) == (Fwd.TUNNEL, TunType.GUE, 6080, TunFlags.CSUM)
    mark = table[ServiceKey.fwm(7)].dests
    assert list(mark) == [DestKey.of("10.2.0.3", 0)]


def test_group_ranges_expand_to_one_service_per_address() -> None:
    table = table_of("""
virtual_server_group web {
    10.1.0.1-4 80
    10.1.1.0/30 443
    fwmark 9
}
virtual_server group web {
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    real_server 10.2.0.1 8080 {
    }
}
""")
    assert len(table) == 4 + 4 + 1
    assert ServiceKey.inet(Proto.TCP, ip_address("10.1.0.3"), 80) in table
    assert ServiceKey.inet(Proto.TCP, ip_address("10.1.1.3"), 443) in table
    assert ServiceKey.fwm(9) in table


def test_absurd_group_range_is_refused() -> None:
    result = load_text("""
virtual_server_group big {
    10.0.0.0/8 80
}
virtual_server group big {
    lvs_sched rr
    protocol TCP
    real_server 10.2.0.1 80 {
    }
}
""", filename="t.conf")
    with pytest.raises(ConfigTableError, match="16777216 addresses"):
        virtual_services(result.config)
