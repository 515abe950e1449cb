"""diff(old, new) → ReloadPlan: exact plans for each kind of edit, keyed the way keepalived names things."""

from __future__ import annotations

import importlib.util
import json
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from lvsconsole.config import model as m
from lvsconsole.config.build import load_text
from lvsconsole.config.diff import Change, FieldChange, ReloadPlan, diff, show

ROOT = Path(__file__).resolve().parents[2]

BASE = """\
global_defs {
    router_id LVS_DEVEL
    smtp_connect_timeout 30
}

vrrp_script chk_web {
    script "/bin/true"
    interval 2
}

vrrp_sync_group VG1 {
    group {
        VI_1
        VI_2
    }
}

vrrp_instance VI_1 {
    state MASTER
    interface lo
    virtual_router_id 51
    priority 100
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass 1111
    }
    virtual_ipaddress {
        192.168.2.188
    }
    track_script {
        chk_web
    }
}

vrrp_instance VI_2 {
    state MASTER
    interface lo
    virtual_router_id 52
    priority 100
    virtual_ipaddress {
        192.168.3.188
    }
}

vrrp_instance VI_3 {
    state BACKUP
    interface lo
    virtual_router_id 53
    priority 50
    virtual_ipaddress {
        192.168.4.188
    }
}

virtual_server 192.168.2.188 80 {
    delay_loop 6
    lb_algo rr
    lb_kind DR
    persistence_timeout 50
    protocol TCP
    real_server 192.168.2.187 80 {
        weight 3
        TCP_CHECK {
            connect_port 80
            connect_timeout 3
        }
    }
    real_server 192.168.2.189 80 {
        weight 1
        HTTP_GET {
            url {
                path /health
                status_code 200
            }
        }
    }
}

virtual_server fwmark 7 {
    lb_algo wlc
    lb_kind NAT
    real_server 10.0.0.7 8080 {
        weight 2
        TCP_CHECK {
        }
    }
}
"""

VS1 = "[192.168.2.188]:tcp:80"
RS187 = f"{VS1} -> [192.168.2.187]:80"
RS189 = f"{VS1} -> [192.168.2.189]:80"

Summary = tuple[str, str, str, tuple[tuple[str, Any, Any], ...]]


def load(text: str) -> m.Config:
    result = load_text(text, filename="keepalived.conf")
    errors = [str(d) for d in result.diagnostics if d.is_error]
    assert not errors, errors
    return result.config


def edit(text: str, old: str, new: str, count: int = 1) -> str:
    assert text.count(old) >= count, f"{old!r} not in the base config"
    return text.replace(old, new, count)


def summary(plan: ReloadPlan) -> list[Summary]:
    return [(c.kind, c.section, c.key, tuple((f.field, f.old, f.new) for f in c.fields)) for c in plan.changes]


def plan_of(new_text: str, old_text: str = BASE) -> list[Summary]:
    return summary(diff(load(old_text), load(new_text)))


# ---------------------------------------------------------------------------------------------- no change


def test_identical_configs_give_an_empty_plan() -> None:
    plan = diff(load(BASE), load(BASE))
    assert plan.empty
    assert plan.changes == ()
    assert str(plan) == "no changes"
    assert plan.as_json() == []


def test_layout_and_aliases_do_not_count() -> None:
    # Comments, indentation, lb_algo vs lvs_sched and a one-line block: the same config.
    relaid = edit(BASE, "    lb_algo rr\n", "  # scheduler\n\tlvs_sched   rr\n")
    relaid = edit(relaid, "    authentication {\n        auth_type PASS\n        auth_pass 1111\n    }\n",
                  "    authentication { auth_type PASS auth_pass 1111 }\n")
    assert plan_of(relaid) == []


# ---------------------------------------------------------------------------------------------- real servers


def test_one_weight_changed() -> None:
    plan = diff(load(BASE), load(edit(BASE, "weight 3", "weight 5")))
    assert summary(plan) == [("changed", "real_server", RS187, (("weight", 3, 5),))]
    (change,) = plan.changes
    assert change.fields == (FieldChange("weight", 3, 5),)
    assert str(plan) == f"~ real_server {RS187}\n    weight: 3 -> 5"
    assert change.location is not None and change.location.file == "keepalived.conf"
    assert change.as_json() == {"kind": "changed", "section": "real_server", "key": RS187,
                                "fields": [{"field": "weight", "old": "3", "new": "5"}]}
    json.dumps(plan.as_json())


def test_real_server_added() -> None:
    new = edit(BASE, "    real_server 192.168.2.189 80 {", "    real_server 192.168.2.190 80 {\n        weight 1\n"
               "    }\n    real_server 192.168.2.189 80 {")
    assert plan_of(new) == [("added", "real_server", f"{VS1} -> [192.168.2.190]:80", ())]


def test_real_server_removed() -> None:
    start = BASE.index("    real_server 192.168.2.189 80 {")
    end = BASE.index("virtual_server fwmark 7")
    new = BASE[:start] + "}\n\n" + BASE[end:]
    assert plan_of(new) == [("removed", "real_server", RS189, ())]


def test_real_server_port_change_is_remove_and_add() -> None:
    nat = edit(BASE, "lb_kind DR", "lb_kind NAT")
    remapped = edit(nat, "real_server 192.168.2.187 80 {", "real_server 192.168.2.187 8080 {")
    assert plan_of(remapped, old_text=nat) == [
        ("added", "real_server", f"{VS1} -> [192.168.2.187]:8080", ()),
        ("removed", "real_server", RS187, ()),
    ]


def test_fwmark_real_server_port_is_ignored() -> None:
    # keepalived ignores a real server's port in a fwmark service (the builder warns): nothing to reload
    new = edit(BASE, "real_server 10.0.0.7 8080", "real_server 10.0.0.7 8081")
    assert plan_of(new) == []
    changed = edit(BASE, "        weight 2\n", "        weight 4\n")
    assert plan_of(changed) == [("changed", "real_server", "fwmark 7 -> [10.0.0.7]:0", (("weight", 2, 4),))]


def test_real_server_order_does_not_matter() -> None:
    start = BASE.index("    real_server 192.168.2.187 80 {")
    middle = BASE.index("    real_server 192.168.2.189 80 {")
    end = BASE.index("}\n\nvirtual_server fwmark 7")
    swapped = BASE[:start] + BASE[middle:end] + BASE[start:middle] + BASE[end:]
    assert swapped != BASE
    assert plan_of(swapped) == []


# ---------------------------------------------------------------------------------------------- virtual servers


def test_virtual_server_added() -> None:
    new = BASE + "\nvirtual_server 192.168.2.188 443 {\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n" \
        "    real_server 192.168.2.187 443 {\n    }\n}\n"
    assert plan_of(new) == [("added", "virtual_server", "[192.168.2.188]:tcp:443", ())]


def test_virtual_server_removed() -> None:
    new = BASE[: BASE.index("virtual_server fwmark 7")]
    assert plan_of(new) == [("removed", "virtual_server", "fwmark 7", ())]


def test_virtual_server_scheduler_changed() -> None:
    plan = diff(load(BASE), load(edit(BASE, "lb_algo rr", "lb_algo wlc")))
    assert summary(plan) == [("changed", "virtual_server", VS1, (("lvs_sched", "rr", "wlc"),))]
    assert str(plan) == f"~ virtual_server {VS1}\n    lvs_sched: rr -> wlc"


def test_virtual_server_method_changed() -> None:
    plan = diff(load(BASE), load(edit(BASE, "lb_kind NAT", "lb_kind TUN")))
    assert summary(plan) == [("changed", "virtual_server", "fwmark 7", (("lvs_method", m.LvsMethod("NAT"),
                                                                         m.LvsMethod("TUN")),))]
    assert str(plan.changes[0].fields[0]) == "lvs_method: NAT -> TUN"


def test_virtual_server_protocol_change_is_a_new_service() -> None:
    new = edit(BASE, "    protocol TCP\n", "    protocol UDP\n")
    assert plan_of(new) == [
        ("added", "virtual_server", "[192.168.2.188]:udp:80", ()),
        ("removed", "virtual_server", VS1, ()),
    ]


def test_virtual_server_delay_loop_reaches_inheriting_checkers() -> None:
    # The checkers inherit delay_loop: the VS changes, and so does every checker that did not set its own.
    new = edit(BASE, "delay_loop 6", "delay_loop 7")
    assert plan_of(new) == [
        ("changed", "virtual_server", VS1, (("delay_loop", 6.0, 7.0),)),
        ("changed", "checker", f"{RS187} TCP_CHECK", (("delay_loop", 6.0, 7.0),)),
        ("changed", "checker", f"{RS189} HTTP_GET", (("delay_loop", 6.0, 7.0),)),
    ]


def test_ipv6_and_group_keys() -> None:
    old = load(BASE)
    vs6 = m.VirtualServer(address=IPv6Address("2001:db8::1"), port=443, real_servers=(
        m.RealServer(address=IPv6Address("2001:db8::10"), port=443),))
    vsg = m.VirtualServer(group="web")
    new = m.Config(**{**{k: getattr(old, k) for k in ("global_defs", "instances")},
                      "virtual_servers": (*old.virtual_servers, vs6, vsg)})
    plan = diff(old, new)
    added = [(c.kind, c.section, c.key) for c in plan.changes if c.kind == "added"]
    assert added == [("added", "virtual_server", "[2001:db8::1]:tcp:443"), ("added", "virtual_server", "group web")]
    # and the RS label of an IPv6 real server
    vs6b = m.VirtualServer(address=vs6.address, port=443, real_servers=(
        m.RealServer(address=IPv6Address("2001:db8::10"), port=443, weight=4),))
    plan2 = diff(m.Config(virtual_servers=(vs6,)), m.Config(virtual_servers=(vs6b,)))
    assert summary(plan2) == [("changed", "real_server", "[2001:db8::1]:tcp:443 -> [2001:db8::10]:443",
                               (("weight", 1, 4),))]


# ---------------------------------------------------------------------------------------------- checkers


def test_checker_changed() -> None:
    new = edit(BASE, "            connect_timeout 3\n", "            connect_timeout 4\n")
    assert plan_of(new) == [("changed", "checker", f"{RS187} TCP_CHECK", (("connect_timeout", 3.0, 4.0),))]


def test_checker_added() -> None:
    new = edit(BASE, "        TCP_CHECK {\n            connect_port 80\n",
               "        PING_CHECK {\n        }\n        TCP_CHECK {\n            connect_port 80\n")
    assert plan_of(new) == [("added", "checker", f"{RS187} PING_CHECK", ())]


def test_second_checker_of_a_kind_is_numbered() -> None:
    new = edit(BASE, "        TCP_CHECK {\n            connect_port 80\n",
               "        TCP_CHECK {\n            connect_port 81\n        }\n        TCP_CHECK {\n"
               "            connect_port 80\n")
    # matched by position among checkers of the same type: the first is now the one on port 81 (with the
    # default connect_timeout), the second, a copy of the old first, is new
    assert plan_of(new) == [
        ("changed", "checker", f"{RS187} TCP_CHECK", (("connect_port", 80, 81), ("connect_timeout", 3.0, 5.0))),
        ("added", "checker", f"{RS187} TCP_CHECK#1", ()),
    ]


def test_checker_removed() -> None:
    new = edit(BASE, "        TCP_CHECK {\n            connect_port 80\n            connect_timeout 3\n        }\n", "")
    assert plan_of(new) == [("removed", "checker", f"{RS187} TCP_CHECK", ())]


def test_url_status_code_changed() -> None:
    new = edit(BASE, "status_code 200", "status_code 200-299")
    (change,) = plan_of(new)
    assert change[:3] == ("changed", "checker", f"{RS189} HTTP_GET")
    assert [f[0] for f in change[3]] == ["urls"]


# ---------------------------------------------------------------------------------------------- VRRP


def test_instance_priority_changed() -> None:
    new = edit(BASE, "    priority 50\n", "    priority 60\n")
    assert plan_of(new) == [("changed", "vrrp_instance", "VI_3", (("priority", 50, 60),))]


def test_vip_added() -> None:
    new = edit(BASE, "        192.168.4.188\n", "        192.168.4.188\n        192.168.4.189/24 dev lo\n")
    (change,) = diff(load(BASE), load(new)).changes
    assert (change.kind, change.section, change.key) == ("changed", "vrrp_instance", "VI_3")
    (fc,) = change.fields
    assert fc.field == "virtual_ipaddress"
    assert [str(v.address.ip) for v in fc.old] == ["192.168.4.188"]
    assert [str(v.address.ip) for v in fc.new] == ["192.168.4.188", "192.168.4.189"]
    assert str(fc) == "virtual_ipaddress: [192.168.4.188] -> [192.168.4.188, 192.168.4.189/24 dev lo]"


def test_instance_added_and_removed() -> None:
    start = BASE.index("vrrp_instance VI_3 {")
    end = BASE.index("virtual_server 192.168.2.188 80 {")
    without = BASE[:start] + BASE[end:]
    assert plan_of(without) == [("removed", "vrrp_instance", "VI_3", ())]
    assert plan_of(BASE, old_text=without) == [("added", "vrrp_instance", "VI_3", ())]


def test_sync_group_membership_changed() -> None:
    new = edit(BASE, "        VI_1\n        VI_2\n", "        VI_1\n        VI_2\n        VI_3\n")
    assert plan_of(new) == [("changed", "vrrp_sync_group", "VG1", (("group", ("VI_1", "VI_2"),
                                                                     ("VI_1", "VI_2", "VI_3")),))]


def test_vrrp_script_changed() -> None:
    new = edit(BASE, "    interval 2\n", "    interval 3\n")
    assert plan_of(new) == [("changed", "vrrp_script", "chk_web", (("interval", 2.0, 3.0),))]


def test_global_defs_changed() -> None:
    # (not vrrp_strict: it would turn BASE's authentication into an error)
    new = edit(BASE, "    router_id LVS_DEVEL\n", "    router_id LVS_2\n    vrrp_skip_check_adv_addr\n")
    assert plan_of(new) == [("changed", "global_defs", "", (("router_id", "LVS_DEVEL", "LVS_2"),
                                                             ("vrrp_skip_check_adv_addr", False, True)))]


def test_several_changes_in_config_order() -> None:
    new = edit(BASE, "weight 3", "weight 5")
    new = edit(new, "    priority 50\n", "    priority 60\n")
    new = edit(new, "    router_id LVS_DEVEL\n", "    router_id X\n")
    assert [(c[0], c[1], c[2]) for c in plan_of(new)] == [
        ("changed", "global_defs", ""),
        ("changed", "vrrp_instance", "VI_3"),
        ("changed", "real_server", RS187),
    ]


def test_show_values() -> None:
    assert show(None) == "(unset)"
    assert show(True) == "yes"
    assert show(1.5) == "1.5"
    assert show(0.000001) == "0.000001"  # was 1e-06
    assert show(86400.0 * 365) == "31536000"  # was 3.1536e+07
    assert show(b"\x01\xab") == "01AB"  # was b'\x01\xab'
    assert show(m.Script(("/bin/check", "a b"), "nobody")) == "/bin/check 'a b' (as nobody)"  # the argv survives
    assert show(m.LvsMethod("TUN", "gue", 6080, "csum")) == "TUN gue 6080 csum"
    assert show(m.Endpoint(IPv4Address("127.0.0.1"), 80)) == "127.0.0.1 80"
    assert show(((200, 299), (404, 404))) == "200-299 404"


def test_change_str_signs() -> None:
    assert str(Change("added", "virtual_server", "fwmark 1")) == "+ virtual_server fwmark 1"
    assert str(Change("removed", "vrrp_instance", "VI_1")) == "- vrrp_instance VI_1"


# ---------------------------------------------------------------------------------------------- at scale


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_config_parse", ROOT / "bench" / "config_parse.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generate() -> Any:
    return _bench().generate


def test_one_weight_in_a_thousand_real_servers(generate: Any) -> None:
    old = load(generate(100, 10))
    new = load(generate(100, 10, changed_weight=(50, 3)))
    assert len(old.virtual_servers) == 100
    assert sum(len(vs.real_servers) for vs in old.virtual_servers) == 1000
    plan = diff(old, new)
    # VS 50: VIP 10.100.50.1; its RS 3: 10.0.50.13, weight 1 + 3 % 3 = 1, bumped by 10
    assert summary(plan) == [("changed", "real_server", "[10.100.50.1]:tcp:80 -> [10.0.50.13]:80",
                              (("weight", 1, 11),))]
    assert diff(old, old).empty
