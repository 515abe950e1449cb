"""Unicast without peers never falls back to multicast: the instance is refused, not run on the group."""

from __future__ import annotations

import asyncio
import logging

import pytest

from lvsconsole.config.build import load_text
from lvsconsole.vrrp.params import instance_spec
from lvsconsole.vrrp.service import VrrpService

BASE = """
vrrp_instance VI_U {{
    interface lo
    virtual_router_id 61
    priority 100
{unicast}
    virtual_ipaddress {{
        192.0.2.61/32
    }}
}}
vrrp_instance VI_M {{
    interface lo
    virtual_router_id 62
    priority 100
    virtual_ipaddress {{
        192.0.2.62/32
    }}
}}
"""

NO_PEERS = {
    "src-only": "    unicast_src_ip 127.0.0.1",
    "empty-block": "    unicast_peer {\n    }",
    "wrong-family": "    unicast_peer {\n        fd00::2\n    }",
}


@pytest.mark.parametrize("name", sorted(NO_PEERS))
def test_unicast_without_usable_peers_is_refused(name: str, caplog: pytest.LogCaptureFixture) -> None:
    config = load_text(BASE.format(unicast=NO_PEERS[name])).config  # invalid on purpose: the engine's last line
    inst = config.instance("VI_U")
    assert inst is not None
    with pytest.raises(ValueError, match="refusing to fall back to multicast"):
        instance_spec(config, inst)

    async def start_and_stop() -> tuple[set[str], set[str]]:
        service = VrrpService(config, dry_run=True)
        await service.start()
        try:
            return set(service.instances), {s.name for s in service.snapshot()}
        finally:
            await service.stop()

    with caplog.at_level(logging.ERROR, logger="lvsconsole.vrrp"):
        running, shown = asyncio.run(asyncio.wait_for(start_and_stop(), 10))
    assert running == shown == {"VI_M"}  # the multicast instance runs; the broken unicast one does not
    assert "(VI_U) cannot run: unicast is configured but there is no IPv4 unicast peer" in caplog.text


def test_unicast_with_peers_is_unicast() -> None:
    config = load_text(BASE.format(unicast="    unicast_src_ip 127.0.0.1\n    unicast_peer {\n        127.0.0.2\n"
                                            "    }")).config
    inst = config.instance("VI_U")
    assert inst is not None
    spec = instance_spec(config, inst)
    assert spec.unicast and spec.params.unicast and [str(p) for p in spec.unicast_peers] == ["127.0.0.2"]


def test_unicast_peers_are_reported_by_the_service() -> None:
    text = BASE.format(unicast="    unicast_src_ip 127.0.0.1\n    unicast_peer {\n        127.0.0.2\n"
                               "        127.0.0.3\n    }")

    async def snapshot() -> list[dict[str, object]]:
        service = VrrpService(load_text(text).config, dry_run=True)
        await service.start()
        try:
            snap = next(s for s in service.snapshot() if s.name == "VI_U")
            explanation = service.explain("VI_U")
            assert [p.address for p in explanation.peers] == ["127.0.0.2", "127.0.0.3"]
            return [p.as_json() for p in snap.peer_status]
        finally:
            await service.stop()

    peers = asyncio.run(asyncio.wait_for(snapshot(), 10))
    # a dry run sends nothing and nobody answers: never heard, no send error
    assert peers == [{"address": "127.0.0.2", "last_seen": None, "last_error": None},
                     {"address": "127.0.0.3", "last_seen": None, "last_error": None}]
