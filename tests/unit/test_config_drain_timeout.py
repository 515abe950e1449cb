"""drain_timeout (global_defs, an lvsconsole extension): parsed, range-checked, rendered back, diffed."""

from __future__ import annotations

from lvsconsole.config import schema
from lvsconsole.config.build import load_text
from lvsconsole.config.diff import diff
from lvsconsole.config.render import render


def conf(global_lines: str) -> str:
    return f"global_defs {{\n{global_lines}}}\n"


def test_default_is_sixty_seconds() -> None:
    result = load_text(conf("    router_id LVS\n"))
    assert result.ok
    assert result.config.global_defs.drain_timeout == 60.0


def test_value_zero_and_fraction() -> None:
    assert load_text(conf("    drain_timeout 0\n")).config.global_defs.drain_timeout == 0.0
    assert load_text(conf("    drain_timeout 2.5\n")).config.global_defs.drain_timeout == 2.5


def test_out_of_range_is_an_error_at_the_value() -> None:
    for bad in ("-1", "86401", "soon"):
        result = load_text(conf(f"    drain_timeout {bad}\n"), filename="k.conf")
        errors = [d for d in result.diagnostics if d.is_error]
        assert len(errors) == 1, result.diagnostics
        assert "drain_timeout" in errors[0].message
        assert errors[0].location is not None and errors[0].location.line == 2


def test_strict_mode_knows_the_extension() -> None:
    result = load_text(conf("    drain_timeout 30\n"), strict=True)
    assert result.ok and not result.diagnostics
    assert schema.GLOBAL["drain_timeout"].extension
    assert not schema.GLOBAL["router_id"].extension


def test_render_round_trip() -> None:
    config = load_text(conf("    drain_timeout 12.5\n")).config
    text = render(config)
    assert "drain_timeout 12.5" in text
    assert load_text(text).config.global_defs.drain_timeout == 12.5
    # the default is not written, so a keepalived-only config stays keepalived-only
    assert "drain_timeout" not in render(load_text(conf("    router_id LVS\n")).config)


def test_diff_reports_the_change() -> None:
    old = load_text(conf("    drain_timeout 60\n")).config
    new = load_text(conf("    drain_timeout 5\n")).config
    plan = diff(old, new)
    assert [(c.section, [(f.field, f.old, f.new) for f in c.fields]) for c in plan.changes] == [
        ("global_defs", [("drain_timeout", 60.0, 5.0)])]
    assert "drain_timeout: 60 -> 5" in str(plan)
