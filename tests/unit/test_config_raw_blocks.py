"""vrrp_track_process and bfd_instance: verbatim blocks whose keywords are still checked; BFD reported unsupported."""

from __future__ import annotations

from lvsconsole.config.build import load_text
from lvsconsole.config.render import render
from lvsconsole.vrrp.trackprocess import parse_track_process

TRACK_PROCESS = """\
vrrp_track_process web {
    process haproxy
    colour red
}
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 51
    virtual_ipaddress { 10.0.0.1 }
    track_process { web }
}
"""

BFD = """\
bfd_instance peer {
    neighbor_ip 10.0.0.2
    min_rx 30
    multiplyer 3
}
vrrp_sync_group G {
    group { VI_1 VI_2 }
    track_bfd { peer }
}
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 51
    virtual_ipaddress { 10.0.0.1 }
    track_bfd {
        peer weight 10
    }
}
vrrp_instance VI_2 {
    interface lo
    virtual_router_id 52
    virtual_ipaddress { 10.0.0.3 }
}
"""


def _findings(text: str, *, strict: bool) -> list[tuple[str, str]]:
    result = load_text(text, filename="k.conf", strict=strict)
    return [(d.severity.value, f"{d.location}: {d.message}") for d in result.diagnostics]


def test_an_unknown_track_process_keyword_is_a_warning_with_its_place() -> None:
    found = _findings(TRACK_PROCESS, strict=False)
    assert found == [("warning", "k.conf:3:5: unknown keyword 'colour' in vrrp_track_process web")]


def test_an_unknown_track_process_keyword_is_an_error_under_strict() -> None:
    found = _findings(TRACK_PROCESS, strict=True)
    assert found == [("error", "k.conf:3:5: unknown keyword 'colour' in vrrp_track_process web")]


def test_the_block_still_runs_without_the_unknown_keyword() -> None:
    result = load_text(TRACK_PROCESS)
    words = next(w for k, w in result.config.extra if k == "vrrp_track_process")
    spec = parse_track_process(words)
    assert (spec.name, spec.process) == ("web", ("haproxy",))


def test_bfd_is_reported_unsupported_where_it_is_written() -> None:
    found = _findings(BFD, strict=False)
    assert ("warning", "k.conf:1:1: bfd_instance is not supported by lvsconsole: no BFD session is run, the block "
                       "is parsed and ignored") in found
    assert ("warning", "k.conf:4:5: unknown keyword 'multiplyer' in bfd_instance peer") in found
    assert ("warning", "k.conf:8:5: track_bfd is not supported by lvsconsole: no BFD session is run, the tracking "
                       "is parsed and ignored") in found
    assert ("warning", "k.conf:14:5: track_bfd is not supported by lvsconsole: no BFD session is run, the "
                       "tracking is parsed and ignored") in found
    assert not any(severity == "error" for severity, _ in found)


def test_bfd_typos_are_errors_under_strict_and_the_warnings_stay() -> None:
    found = _findings(BFD, strict=True)
    errors = [text for severity, text in found if severity == "error"]
    assert errors == ["k.conf:4:5: unknown keyword 'multiplyer' in bfd_instance peer"]
    assert sum(1 for severity, _ in found if severity == "warning") == 3


def test_bfd_blocks_round_trip_verbatim() -> None:
    config = load_text(BFD).config
    again = load_text(render(config)).config
    assert again == config
    assert any(k == "bfd_instance" for k, _ in again.extra)
    assert any(k == "track_bfd" for k, _ in again.instance("VI_1").extra)  # type: ignore[union-attr]
