"""Incremental re-build of an edited config file (config/incremental.py) gives exactly the full parse's result:
the same model, the same locations (which model equality ignores) and the same diagnostics, in the same order;
and it does reuse the untouched blocks' objects."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lvsconsole.config import model as m
from lvsconsole.config.build import BuildResult, build
from lvsconsole.config.incremental import IncrementalBuilder, build_text, rebuild
from lvsconsole.config.lexer import parse_text

PATH = "/nonexistent/lvs-incremental/keepalived.conf"


def generated(n_vs: int = 6, n_rs: int = 3) -> str:
    lines = [
        "! incremental test config",
        "global_defs {",
        "    router_id INC",
        "}",
        "vrrp_script chk {",
        "    script \"/bin/true\"",
        "}",
        "vrrp_instance VI_1 {",
        "    state BACKUP",
        "    interface lo",
        "    virtual_router_id 51",
        "    priority 100",
        "    virtual_ipaddress {",
        "        10.255.255.1/32",
        "    }",
        "}",
    ]
    for v in range(n_vs):
        lines += [f"virtual_server 10.100.{v}.1 80 {{", "    delay_loop 6", "    lb_algo wrr", "    lb_kind DR",
                  "    protocol TCP"]
        for r in range(n_rs):
            lines += [f"    real_server 10.0.{v}.{10 + r} 80 {{", f"        weight {1 + r}", "        TCP_CHECK {",
                      "            connect_timeout 3", "        }", "    }"]
        lines += ["}", "# between virtual servers"]
    lines += ["virtual_server_group G {", "    10.9.9.9 80", "}"]
    return "\n".join(lines) + "\n"


EDITS = [
    ("weight 2", "weight 7"),                 # a value: no line moves
    ("weight 1", "weight 0"),
    ("lb_algo wrr", "lb_algo nope"),          # a build error
    ("protocol TCP", "protocol TCP\n    quorum 2"),  # a line more: everything after moves
    ("    delay_loop 6\n", ""),               # a line less
    ("# between virtual servers", "# between\n\n# virtual servers"),
    ("# between virtual servers", "virtual_server 10.100.0.1 80 {\n    protocol TCP\n}"),  # a duplicate
    ("            connect_timeout 3\n        }", "            connect_timeout 3\n        "),  # unbalanced
    ("    }\n}", "    }\n}}"),                  # an extra brace
    ("router_id INC", "router_id OTHER"),     # global_defs: parsed in full
    ("priority 100", "priority 101"),         # an instance: parsed in full
    ("10.0.", "10.1."),                       # an address
    ("real_server 10.0.", "real_server $X 10.0."),  # a parameter: parsed in full
    ("10.9.9.9 80", "10.9.9.9 81"),
    ("TCP_CHECK {", "HTTP_GET {\n            url {\n                path /\n            }"),
    ("! incremental test config\n", ""),     # the first line
    ("\n", " \n"),                            # trailing blanks
    ("}\n# between virtual servers\n", "} "),  # two blocks on one line
    ("weight 3", "weight 3 } virtual_server 10.7.7.7 80 { protocol TCP"),  # a block inside a line
]


def locations(obj: Any) -> Iterator[tuple[str, Any]]:
    """Every ``locs`` mapping in a model, depth first, with the path to it."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for fld in dataclasses.fields(obj):
            value = getattr(obj, fld.name)
            if fld.name == "locs":
                yield type(obj).__name__, dict(value)
            else:
                yield from locations(value)
    elif isinstance(obj, tuple):
        for item in obj:
            yield from locations(item)


def full(text: str) -> BuildResult:
    return build(parse_text(text, filename=PATH, base_dir="/nonexistent/lvs-incremental"))


def assert_same(got: BuildResult, want: BuildResult) -> None:
    assert got.config == want.config
    assert list(locations(got.config)) == list(locations(want.config))
    assert [str(d) for d in got.diagnostics] == [str(d) for d in want.diagnostics]
    assert got.files == want.files


def apply_edits(text: str, picks: list[tuple[int, int]]) -> str:
    for edit, nth in picks:
        old, new = EDITS[edit]
        count = text.count(old)
        if count:
            at = -1
            for _ in range(nth % count + 1):
                at = text.find(old, at + 1)
            text = text[:at] + new + text[at + len(old):]
    return text


# each example re-parses a generated config several times, in full and incrementally: 30 keep CI in its budget
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.tuples(st.integers(0, len(EDITS) - 1), st.integers(0, 40)), min_size=1, max_size=3),
                min_size=1, max_size=4))
def test_successive_edits_build_exactly_as_a_full_parse(rounds: list[list[tuple[int, int]]]) -> None:
    builder = IncrementalBuilder()
    text = generated()
    assert_same(builder.build(text, PATH), full(text))
    for picks in rounds:
        text = apply_edits(text, picks)
        assert_same(builder.build(text, PATH), full(text))


def test_a_weight_change_reparses_one_block_and_keeps_the_other_objects() -> None:
    text = generated(n_vs=20)
    first, cache = build_text(text, PATH)
    assert cache is not None
    at = text.index("virtual_server 10.100.7.1")
    edited = text[:at] + text[at:].replace("weight 2", "weight 9", 1)
    outcome = rebuild(cache, edited)
    assert outcome is not None
    result, _ = outcome
    assert_same(result, full(edited))
    old_vss, new_vss = first.config.virtual_servers, result.config.virtual_servers
    changed = [i for i, (a, b) in enumerate(zip(old_vss, new_vss, strict=True)) if a is not b]
    assert changed == [7]
    assert new_vss[7].real_servers[1].weight == 9
    assert all(a is b for a, b in zip(first.config.instances, result.config.instances, strict=True))


def test_an_added_line_rebuilds_what_follows_with_the_right_lines() -> None:
    text = generated(n_vs=10)
    _, cache = build_text(text, PATH)
    assert cache is not None
    at = text.index("virtual_server 10.100.3.1")
    edited = text[:at] + "# a new comment line\n" + text[at:]
    outcome = rebuild(cache, edited)
    assert outcome is not None
    result, _ = outcome
    assert_same(result, full(edited))
    moved = result.config.virtual_servers[3]
    assert moved.locs["key"].line == edited[:edited.index("virtual_server 10.100.3.1")].count("\n") + 1


def test_edits_that_reach_other_blocks_parse_in_full() -> None:
    text = generated()
    _, cache = build_text(text, PATH)
    assert cache is not None
    assert rebuild(cache, text.replace("router_id INC", "router_id X")) is None
    assert rebuild(cache, text.replace("priority 100", "priority 90")) is None
    assert rebuild(cache, text.replace("weight 1", "weight $W")) is None
    broken = text.replace("        }\n    }\n}", "        }\n    }\n", 1)
    assert rebuild(cache, broken) is None
    assert build_text(broken, PATH)[1] is None  # a file with lexer errors is not cached either


def test_the_builder_counts_partial_builds_and_an_unchanged_text_costs_nothing() -> None:
    builder = IncrementalBuilder()
    text = generated()
    first = builder.build(text, PATH)
    assert builder.build(text, PATH) is first
    builder.build(text.replace("weight 3", "weight 4", 1), PATH)
    assert builder.partial_builds == 2
    builder.build(text.replace("router_id INC", "router_id X"), PATH)
    assert builder.partial_builds == 2
    assert isinstance(first.config, m.Config)
