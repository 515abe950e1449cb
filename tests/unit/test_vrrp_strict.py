"""vrrp_strict / strict_mode: the validator's errors and warnings (each located), the settings keepalived resets,
and adverts that do not match exactly being dropped at run time."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest

from lvsconsole.config.build import load_file, load_text
from lvsconsole.config.model import Config
from lvsconsole.vrrp.machine import State, VrrpMachine
from lvsconsole.vrrp.packet import Advert, Auth, AuthType
from lvsconsole.vrrp.params import instance_spec

STRICT = "global_defs {\n    vrrp_strict\n}\n"
INSTANCE = """\
vrrp_instance VI_1 {
    state BACKUP
    interface lo
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        198.51.100.10
        198.51.100.11
    }
}
"""

Diag = tuple[int, int, str, str]


def diagnostics(text: str, tmp_path: Path) -> list[Diag]:
    conf = tmp_path / "t.conf"
    conf.write_text(text)
    result = load_file(str(conf))
    out = []
    for d in result.diagnostics:
        assert d.location is not None, f"diagnostic without a location: {d}"
        out.append((d.location.line, d.location.col, d.severity.value, d.message))
    return out


CASES: dict[str, tuple[str, Diag]] = {
    "unicast": (STRICT + INSTANCE.replace("    priority 100", "    priority 100\n    unicast_peer {\n"
                                          "        198.51.100.2\n    }"),
                (9, 5, "error", "(VI_1) unicast_peer is not allowed under vrrp_strict (VRRP is multicast): "
                 "keepalived rejects the instance")),
    "auth": (STRICT + INSTANCE.replace("    priority 100", "    priority 100\n    authentication {\n"
                                       "        auth_type PASS\n        auth_pass secret\n    }"),
             (9, 5, "error", "(VI_1) authentication is not allowed under vrrp_strict: keepalived would drop it and "
              "send unauthenticated adverts, which peers that authenticate ignore")),
    "state-master-not-owner": (STRICT + INSTANCE.replace("state BACKUP", "state MASTER"),
                               (5, 5, "warning", "(VI_1) under vrrp_strict state MASTER must match being the "
                                "address owner (priority 255): it starts as BACKUP (as keepalived does)")),
    "preempt-delay": (STRICT + INSTANCE.replace("    priority 100", "    priority 100\n    preempt_delay 30"),
                      (9, 5, "warning", "(VI_1) preempt_delay is incompatible with vrrp_strict and is ignored "
                       "(as keepalived does)")),
    "higher-prio-send-advert": (STRICT + INSTANCE.replace("    priority 100",
                                                          "    priority 100\n    higher_prio_send_advert"),
                                (4, 15, "warning", "(VI_1) 'higher_prio_send_advert' is reset under vrrp_strict "
                                 "(as keepalived does)")),
    "lower-prio-advert-off": (STRICT + INSTANCE.replace("    priority 100",
                                                        "    priority 100\n    lower_prio_no_advert false"),
                              (4, 15, "warning", "(VI_1) 'lower_prio_no_advert false' is reset under vrrp_strict "
                               "(as keepalived does)")),
    "ipv6-first-vip-not-link-local": (
        STRICT + INSTANCE.replace("198.51.100.10", "fd00::10").replace("198.51.100.11", "fe80::11"),
        (10, 9, "warning", "(VI_1) under vrrp_strict the first IPv6 VIP must be link-local (RFC 5798 §5.2.9), "
         "not fd00::10")),
    "strict-mode-per-instance": (INSTANCE.replace("    priority 100", "    priority 100\n    strict_mode on\n"
                                                  "    unicast_peer {\n        198.51.100.2\n    }"),
                                 (7, 5, "error", "(VI_1) unicast_peer is not allowed under vrrp_strict (VRRP is "
                                  "multicast): keepalived rejects the instance")),
}


@pytest.mark.parametrize("name", list(CASES))
def test_strict_diagnostics(name: str, tmp_path: Path) -> None:
    text, expected = CASES[name]
    got = diagnostics(text, tmp_path)
    assert expected in got, "\n".join(map(str, got))
    errors = [d for d in got if d[2] == "error"]
    assert errors == ([expected] if expected[2] == "error" else []), errors


def test_without_strict_the_same_settings_are_accepted(tmp_path: Path) -> None:
    relaxed = INSTANCE.replace("    priority 100", "    priority 100\n    preempt_delay 30\n    unicast_peer {\n"
                               "        198.51.100.2\n    }\n    higher_prio_send_advert")
    got = diagnostics(relaxed, tmp_path)
    assert not [d for d in got if "vrrp_strict" in d[3]], got


def strict_config(extra: str, *, state: str = "BACKUP", priority: int = 100) -> Config:
    text = STRICT + INSTANCE.replace("state BACKUP", f"state {state}").replace(
        "    priority 100", f"    priority {priority}\n{extra}")
    return load_text(text).config


def test_strict_runtime_resets_what_keepalived_resets() -> None:
    cfg = strict_config("    preempt_delay 30\n    higher_prio_send_advert\n    lower_prio_no_advert off\n"
                        "    skip_check_adv_addr\n    garp_lower_prio_repeat 3", state="MASTER")
    p = instance_spec(cfg, cfg.instances[0]).params
    assert p.preempt_delay == 0.0 and not p.higher_prio_send_advert and p.lower_prio_no_advert
    assert not p.skip_check_adv_addr and p.garp_lower_prio_repeat == 0
    assert p.initial_state is State.BACKUP  # MASTER without being the owner
    owner = strict_config("", priority=255)
    assert instance_spec(owner, owner.instances[0]).params.initial_state is State.MASTER
    relaxed = load_text(INSTANCE.replace("    priority 100", "    priority 100\n    preempt_delay 30\n"
                                         "    skip_check_adv_addr")).config
    rp = instance_spec(relaxed, relaxed.instances[0]).params
    assert rp.preempt_delay == 30.0 and rp.skip_check_adv_addr


def test_strict_backup_drops_an_advert_whose_addresses_differ_even_from_its_master() -> None:
    cfg = strict_config("    skip_check_adv_addr")
    params = instance_spec(cfg, cfg.instances[0]).params
    machine = VrrpMachine(params, 0.0)
    machine.start(0.0)
    master = IPv4Address("198.51.100.2")
    vips = params.addresses
    assert machine.receive_advert(Advert(2, 51, 150, vips, 100, AuthType.NONE, b""), master, 1.0) == []
    assert machine.master_address == master
    deadline = machine.next_timer()
    short = Advert(2, 51, 150, vips[:1], 100, AuthType.NONE, b"")
    machine.receive_advert(short, master, 2.0)
    assert machine.counters.addr_list_err == 1 and machine.next_timer() == deadline  # dropped: timer not reset
    authenticated = Advert(2, 51, 150, vips, 100, Auth.pass_("secret").type, Auth.pass_("secret").data)
    machine.receive_advert(authenticated, master, 2.5)
    assert machine.next_timer() == deadline


# -------------------------------------------------------------------------------------------- room in an advert
# (not a strict-mode rule: keepalived has no 20-address limit, only the room in one advert)


def many_vips(addresses: list[str]) -> str:
    lines = "\n".join(f"        {a}" for a in addresses)
    return f"vrrp_instance VI_1 {{\n    interface lo\n    virtual_router_id 51\n    version 3\n" \
           f"    virtual_ipaddress {{\n{lines}\n    }}\n}}\n"


def test_more_than_255_addresses_is_an_error_at_the_first_one_left_out(tmp_path: Path) -> None:
    text = many_vips([f"10.1.{i // 250}.{i % 250 + 1}" for i in range(256)])
    got = diagnostics(text, tmp_path)
    errors = [d for d in got if d[2] == "error"]
    assert errors == [(6 + 255, 9, "error", "(VI_1) 256 virtual addresses: an advert carries at most 255 (keepalived "
                       "moves the rest to virtual_ipaddress_excluded); put them there")]
    assert not [d for d in diagnostics(many_vips([f"10.1.0.{i}" for i in range(1, 255)]), tmp_path)
                if "advert carries" in d[3]]


def test_ipv6_addresses_beyond_one_frame_are_a_warning(tmp_path: Path) -> None:
    got = diagnostics(many_vips([f"fd00::{i:x}" for i in range(1, 91)]), tmp_path)
    assert (6 + 89, 9, "warning", "(VI_1) 90 IPv6 virtual addresses do not fit in one advert at MTU 1500 (at most "
            "89); keepalived advertises the first ones only") in got
    assert not [d for d in got if d[2] == "error"]
