"""``--history-dir`` on every command that starts an engine: ``run``, the bare console and ``shell -f``,
with the same default (the system directory, in memory for a dry run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lvsconsole.cli import build_parser
from lvsconsole.paths import DEFAULT_HISTORY_DIR, history_dir_for
from lvsconsole.shell import cli as shell_cli

CONF = """\
global_defs {
    router_id historydir
}
virtual_server 10.0.0.1 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.1 9 {
        weight 1
    }
}
"""


def test_default_is_the_system_directory_or_memory_for_a_dry_run() -> None:
    assert history_dir_for(None, dry_run=False) == DEFAULT_HISTORY_DIR
    assert history_dir_for(None, dry_run=True) is None
    assert history_dir_for("", dry_run=False) is None
    assert history_dir_for("/srv/h", dry_run=True) == "/srv/h"


@pytest.mark.parametrize("argv, dest", [
    (["--history-dir", "/srv/h"], "tui_history_dir"),
    (["run", "--history-dir", "/srv/h"], "history_dir"),
    (["shell", "-f", "x.conf", "--history-dir", "/srv/h"], "history_dir"),
])
def test_every_engine_starting_command_takes_the_option(argv: list[str], dest: str) -> None:
    assert getattr(build_parser().parse_args(argv), dest) == "/srv/h"


def test_shell_f_hands_the_directory_to_its_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF)
    history = tmp_path / "history"
    status = shell_cli.main(["-f", str(conf), "--dry-run", "--socket", "", "--history", "",
                             "--history-dir", str(history), "--json", "-c", "show stats"])
    assert status == 0
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["data"]
    assert stats["history_dir"] == str(history)
    assert history.is_dir() and any(history.iterdir()), "the running config is archived there"


def test_shell_f_dry_run_keeps_history_in_memory_by_default(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF)
    status = shell_cli.main(["-f", str(conf), "--dry-run", "--socket", "", "--history", "", "--json",
                             "-c", "show stats"])
    assert status == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["data"]["history_dir"] is None
