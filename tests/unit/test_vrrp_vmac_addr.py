"""use_vmac_addr, use_vmac on one address, vmac_prefix / vmac_addr_prefix: where each VIP goes (pure planning)."""

from __future__ import annotations

from lvsconsole.config.build import load_text
from lvsconsole.vrrp.params import InstanceSpec, instance_spec
from lvsconsole.vrrp.vmac import VmacSpec, free_vmac_name


def spec_of(text: str, name: str = "VI_1") -> InstanceSpec:
    result = load_text(text)
    assert result.ok, [str(d) for d in result.diagnostics]
    inst = result.config.instance(name)
    assert inst is not None
    return instance_spec(result.config, inst)


def placement(spec: InstanceSpec) -> dict[str, str | None]:
    return {str(v.address.ip): v.dev for v in spec.all_vips}


INSTANCE = """
{globals}
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    {options}
    virtual_ipaddress {{
        10.9.0.100/24
        10.9.0.101/24 dev eth0
        10.9.1.100/24 dev eth1
        10.9.2.100/24 dev eth2 {flag}
    }}
    virtual_ipaddress_excluded {{
        fd00:9::100/64
        10.9.1.101/24 dev eth1
    }}
}}
"""


def conf(options: str = "", flag: str = "", globals_: str = "") -> str:
    return INSTANCE.format(options=options, flag=flag, globals=globals_)


def test_without_vmac_options_every_address_stays_where_written() -> None:
    spec = spec_of(conf())
    assert spec.addr_vmacs == () and spec.vmac_names == ()
    assert placement(spec) == {"10.9.0.100": None, "10.9.0.101": "eth0", "10.9.1.100": "eth1", "10.9.2.100": "eth2",
                               "fd00:9::100": None, "10.9.1.101": "eth1"}


def test_use_vmac_takes_the_addresses_written_on_its_own_interface_too() -> None:
    spec = spec_of(conf("use_vmac"))
    assert spec.address_interface == "vrrp.51" and spec.addr_vmacs == ()
    # "dev eth0" is not a different interface: on the VMAC, as the address without dev; the other-family eVIP
    # without dev also lands on the VMAC (keepalived's documented trap), the other interfaces' stay put
    assert placement(spec) == {"10.9.0.100": None, "10.9.0.101": None, "10.9.1.100": "eth1", "10.9.2.100": "eth2",
                               "fd00:9::100": None, "10.9.1.101": "eth1"}


def test_use_vmac_addr_gives_each_other_interface_and_family_a_vmac() -> None:
    spec = spec_of(conf("use_vmac\n    use_vmac_addr"))
    assert spec.addr_vmacs == (
        VmacSpec("vrrp1.51", "eth1", "00:00:5e:00:01:33", 4),
        VmacSpec("vrrp2.51", "eth2", "00:00:5e:00:01:33", 4),
        VmacSpec("vrrp3.51", "eth0", "00:00:5e:00:02:33", 6),
    )
    assert placement(spec) == {"10.9.0.100": None, "10.9.0.101": None, "10.9.1.100": "vrrp1.51",
                               "10.9.2.100": "vrrp2.51", "fd00:9::100": "vrrp3.51", "10.9.1.101": "vrrp1.51"}
    assert spec.vmac_names == ("vrrp.51", "vrrp1.51", "vrrp2.51", "vrrp3.51")


def test_use_vmac_on_one_address_without_the_instance_vmac() -> None:
    spec = spec_of(conf(flag="use_vmac"))
    assert spec.vmac is None
    assert spec.addr_vmacs == (VmacSpec("vrrp.51", "eth2", "00:00:5e:00:01:33", 4),)
    assert placement(spec)["10.9.2.100"] == "vrrp.51" and placement(spec)["10.9.1.100"] == "eth1"


def test_the_prefixes_name_the_vmacs() -> None:
    spec = spec_of(conf("use_vmac\n    use_vmac_addr", globals_="global_defs {\n vmac_prefix vm\n "
                                                               "vmac_addr_prefix va\n}"))
    assert spec.vmac is not None and spec.vmac.name == "vm.51"
    assert [v.name for v in spec.addr_vmacs] == ["va.51", "va1.51", "va2.51"]
    only_prefix = spec_of(conf("use_vmac\n    use_vmac_addr", globals_="global_defs {\n vmac_prefix vm\n}"))
    assert [v.name for v in only_prefix.addr_vmacs] == ["vm1.51", "vm2.51", "vm3.51"]


def test_another_instance_s_vmac_name_is_not_reused() -> None:
    text = conf(flag="use_vmac") + """
vrrp_instance VI_2 {
    interface eth3
    virtual_router_id 51
    use_vmac
    virtual_ipaddress { 10.9.3.100/24 }
}
"""
    spec = spec_of(text)
    assert [v.name for v in spec.addr_vmacs] == ["vrrp1.51"]


def test_free_names_skip_the_taken_ones_and_stay_short() -> None:
    taken = {"vrrp.7", "vrrp1.7"}
    assert free_vmac_name("vrrp", 7, taken) == "vrrp2.7" and "vrrp2.7" in taken
    assert free_vmac_name("averylongprefix", 255, set()) == "averylongpr.255"
    assert free_vmac_name("averylongprefix", 255, {"averylongpr.255"}) == "averylongp1.255"
