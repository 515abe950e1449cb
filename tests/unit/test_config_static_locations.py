"""static_routes / static_rules lines carry their place, so warnings about them name file:line:col; track_group
on static entries and track_bfd naming no bfd_instance are reported at the line, in keepalived's words."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lvsconsole.config import model as m
from lvsconsole.config.build import load_text
from lvsconsole.config.diff import diff
from lvsconsole.config.incremental import build_text, rebuild
from lvsconsole.config.render import render
from lvsconsole.config.validate import validate
from lvsconsole.vrrp.routes import STANDARD_TABLES
from lvsconsole.vrrp.statics import static_set

ROOT = Path(__file__).resolve().parents[2]

STATICS = """\
track_group GROUP1 {
    group {
        VI_1
    }
}
static_ipaddress {
    192.0.2.10/24 dev eth1 track_group GROUP1
    192.0.2.11/24 dev eth1 track_group NOPE
}
static_routes {
    198.51.100.0/24 via 192.0.2.1 dev eth1 track_group GROUP1
    198.51.101.0/24 hops 3
    198.51.102.0/24 via 192.0.2.1 track_group NOPE
}
static_rules {
    from 192.0.2.10 table 200 preference 10 track_group GROUP1 no_track
    from 192.0.2.12 lookup
    to 192.0.2.99 table 200
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        10.9.0.100/24
    }
}
"""


def found(text: str) -> list[str]:
    result = load_text(text, filename="k.conf")
    return [f"{d.location}: {d.message}" for d in result.diagnostics]


def test_static_route_and_rule_warnings_name_file_line_and_column() -> None:
    lines = found(STATICS)
    assert "k.conf:12:5: static_routes: unknown virtual route option 'hops' in '198.51.101.0/24 hops 3'; the line " \
           "is skipped" in lines
    assert "k.conf:17:5: static_rules: 'lookup' needs a value in 'from 192.0.2.12 lookup'; the line is skipped" \
           in lines
    assert "k.conf:18:5: static_rules: rule 'to 192.0.2.99 table 200' has no preference - setting it to 16384, as " \
           "keepalived does; give one" in lines
    assert not [line for line in lines if line.startswith("<config>") or line.startswith("None")]


def test_the_model_keeps_each_line_s_place_and_track_group_out_of_its_words() -> None:
    config = load_text(STATICS, filename="k.conf").config
    first = config.static_routes[0]
    assert first.words == ("198.51.100.0/24", "via", "192.0.2.1", "dev", "eth1")
    assert first.track_group == "GROUP1"
    assert (first.locs["words"].line, first.locs["words"].col) == (11, 5)
    assert (first.locs["track_group"].line, first.locs["track_group"].col) == (11, 44)
    assert config.static_routes[1].track_group is None and "track_group" not in config.static_routes[1].locs


def test_a_static_route_with_track_group_is_still_installed() -> None:
    # keepalived accepts track_group on static entries: the route is added, only the tracking differs
    statics = static_set(load_text(STATICS).config, dict(STANDARD_TABLES))
    assert [str(r.dst) for r in statics.routes] == ["198.51.100.0/24", "198.51.102.0/24"]
    assert [r.priority for r in statics.rules] == [10, 16384]
    assert [a.address.ip.exploded for a in statics.addresses] == ["192.0.2.10", "192.0.2.11"]


def test_track_group_problems_on_static_entries_are_reported_where_they_are_written() -> None:
    lines = found(STATICS)
    # GROUP1 exists and its entries track (vrrp/static_track.py): nothing to say about them
    assert not [line for line in lines if "track_group GROUP1" in line]
    assert "k.conf:8:28: static_ipaddress 192.0.2.11/24: track_group NOPE not found" in lines
    assert "k.conf:13:35: static_routes '198.51.102.0/24 via 192.0.2.1': track_group NOPE not found" in lines
    assert "k.conf:16:45: static_rules 'from 192.0.2.10 table 200 preference 10 no_track': has both track_group and " \
           "no_track set - not tracking (as keepalived)" in lines


def test_track_group_survives_render_and_shows_in_a_diff() -> None:
    config = load_text(STATICS).config
    again = load_text(render(config)).config
    assert again == config
    changed = load_text(STATICS.replace("dev eth1 track_group GROUP1\n    198.51.101", "dev eth2 track_group GROUP1\n"
                                        "    198.51.101")).config
    text = str(diff(config, changed))
    assert "198.51.100.0/24 via 192.0.2.1 dev eth2 track_group GROUP1" in text
    assert "StaticLine" not in text


def test_static_line_locations_move_with_an_incremental_rebuild() -> None:
    text = "virtual_server 10.0.0.1 80 {\n    real_server 10.0.1.1 80 {\n    }\n}\n" \
           "static_routes {\n    198.51.101.0/24 hops 3\n}\n"
    _, cache = build_text(text, "k.conf")
    assert cache is not None
    edited = text.replace("    real_server", "    delay_loop 5\n    real_server")
    rebuilt = rebuild(cache, edited)
    assert rebuilt is not None
    result, _ = rebuilt
    assert result.config.static_routes[0].locs["words"].line == 7
    where = [d.location for d in validate(result.config, check_host=False) if "hops" in d.message]
    assert [(w.line, w.col) for w in where if w is not None] == [(7, 5)]


BFD = """\
bfd_instance peer {
    neighbor_ip 10.0.0.2
}
vrrp_sync_group G {
    group { VI_1 }
    track_bfd {
        ghost
    }
}
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 51
    virtual_ipaddress { 10.0.0.1 }
    track_bfd {
        peer weight 10
        missing weight -20
    }
}
"""


def test_track_bfd_naming_no_bfd_instance_is_reported_at_its_entry() -> None:
    lines = found(BFD)
    assert "k.conf:16:9: (VI_1) track bfd missing not found, ignoring..." in lines
    assert "k.conf:7:9: (G) track bfd ghost not found, ignoring..." in lines
    assert not any("track bfd peer" in line for line in lines)
    assert not any(d.is_error for d in load_text(BFD).diagnostics)


def test_validate_prints_file_line_col_for_static_lines(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(STATICS)
    run = subprocess.run([sys.executable, "-m", "lvsconsole.cli", "validate", "-f", str(conf)],
                         capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    assert f"{conf}:12:5: warning: static_routes: unknown virtual route option 'hops'" in run.stdout
    assert f"{conf}:13:35: warning: static_routes '198.51.102.0/24 via 192.0.2.1': track_group NOPE not found" \
           in run.stdout
    assert "<config>" not in run.stdout


def test_a_static_line_equals_another_whatever_its_place() -> None:
    here = load_text("static_routes {\n  10.1.0.0/16 dev lo\n}\n").config
    there = load_text("\n\nstatic_routes {\n        10.1.0.0/16 dev lo\n}\n").config
    assert here == there and here.static_routes == (m.StaticLine(("10.1.0.0/16", "dev", "lo")),)
