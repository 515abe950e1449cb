"""use_vmac names and MACs, keepalived's rp_filter rule, garp_extra_if arguments, and the InstanceSpec made of them."""

from __future__ import annotations

import pytest

from lvsconsole.config.build import load_text
from lvsconsole.config.validate import validate
from lvsconsole.vrrp.params import garp_extra_args, instance_spec
from lvsconsole.vrrp.vmac import VmacSpec, rp_filter_plan, vmac_spec


def test_default_vmac_is_named_after_the_vrid_with_the_rfc_mac() -> None:
    assert vmac_spec((), vrid=51, base="eth0", family=4) == (VmacSpec("vrrp.51", "eth0", "00:00:5e:00:01:33", 4), [])
    v6, _ = vmac_spec((), vrid=7, base="eth0", family=6)
    assert (v6.name, v6.mac) == ("vrrp6.7", "00:00:5e:00:02:07")


def test_use_vmac_name_and_mac_arguments() -> None:
    named, _ = vmac_spec(("vrrp.lan",), vrid=51, base="eth0", family=4, xmit_base=True)
    assert named.name == "vrrp.lan" and named.xmit_base and named.mac == "00:00:5e:00:01:33"
    five, _ = vmac_spec(("lan0", "02:AA:bb:0c:0d"), vrid=255, base="eth0", family=4)
    assert (five.name, five.mac) == ("lan0", "02:aa:bb:0c:0d:ff")
    six, problems = vmac_spec(("02-00-00-00-00-09",), vrid=1, base="eth0", family=4)
    assert six.mac == "02:00:00:00:00:09" and six.name == "vrrp.1" and not problems


@pytest.mark.parametrize(("args", "message"), [
    (("a-name-longer-than-15",), "invalid use_vmac interface name"),
    (("eth0",), "is the instance's own interface"),
    (("01:00:5e:00:00:01",), "multicast"),
])
def test_bad_use_vmac_arguments_fall_back_to_the_default_as_keepalived_does(args: tuple[str, ...],
                                                                            message: str) -> None:
    spec, problems = vmac_spec(args, vrid=51, base="eth0", family=4)
    assert spec == VmacSpec("vrrp.51", "eth0", "00:00:5e:00:01:33", 4)
    assert len(problems) == 1 and message in problems[0]


def test_rp_filter_plan_is_keepalived_s() -> None:
    assert rp_filter_plan(0, {"eth0": 1, "default": 0}) == {}
    # each interface to the greater of its own and all's value, then all to 0 (the kernel uses the maximum)
    assert rp_filter_plan(1, {"eth0": 0, "eth1": 2, "default": 0}) == {"eth0": 1, "default": 1, "all": 0}


@pytest.mark.parametrize(("args", "expected"), [
    (None, None), (("100",), (100.0, False)), (("all", "30"), (30.0, True)), (("30", "all"), (30.0, True)),
])
def test_garp_extra_if_arguments(args: tuple[str, ...] | None, expected: tuple[float, bool] | None) -> None:
    assert garp_extra_args(args) == expected


@pytest.mark.parametrize("args", [(), ("all",), ("soon",), ("90000",), ("1", "2")])
def test_bad_garp_extra_if_arguments(args: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="garp_extra_if"):
        garp_extra_args(args)


def _conf(body: str, global_lines: str = "") -> str:
    return f"""
global_defs {{
{global_lines}
}}
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
{body}
    virtual_ipaddress {{
        10.9.0.100/24
        10.9.1.100/24 dev eth1
    }}
}}
"""


def test_instance_spec_with_use_vmac() -> None:
    config = load_text(_conf("    use_vmac\n    garp_extra_if 5")).config
    spec = instance_spec(config, config.instances[0])
    assert spec.vmac == VmacSpec("vrrp.51", "eth0", "00:00:5e:00:01:33", 4)
    assert spec.interface == "eth0"  # tracked, and the source of the adverts' address
    assert spec.address_interface == "vrrp.51" and spec.socket_interface == "vrrp.51"
    assert (spec.garp_extra_interval, spec.garp_extra_all) == (5.0, False)


def test_vmac_xmit_base_sends_from_the_interface_and_global_garp_extra_applies() -> None:
    config = load_text(_conf("    use_vmac vr51\n    vmac_xmit_base", "    vrrp_garp_extra_if all 60")).config
    spec = instance_spec(config, config.instances[0])
    assert spec.address_interface == "vr51" and spec.socket_interface == "eth0"
    assert (spec.garp_extra_interval, spec.garp_extra_all) == (60.0, True)


def test_without_use_vmac_everything_stays_on_the_interface() -> None:
    config = load_text(_conf("")).config
    spec = instance_spec(config, config.instances[0])
    assert spec.vmac is None and spec.address_interface == spec.socket_interface == "eth0"
    assert spec.garp_extra_interval == 0


def test_use_vmac_with_unicast_gets_vmac_xmit_base() -> None:
    text = _conf("    use_vmac\n    unicast_src_ip 10.9.0.1\n    unicast_peer {\n        10.9.0.2\n    }")
    config = load_text(text).config
    spec = instance_spec(config, config.instances[0])
    assert spec.vmac is not None and spec.vmac.xmit_base and spec.socket_interface == "eth0"
    found = [d for d in validate(config, check_host=False) if "vmac_xmit_base" in d.message]
    assert len(found) == 1 and not found[0].is_error and found[0].location is not None
