"""lvsconsole.scripts: why a script is refused (vet) and what a run said (run)."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lvsconsole.scripts.run import HEAD_LINES, run_script
from lvsconsole.scripts.vet import DEFAULT_USER, Refusal, unsafe_component, vet, vet_script

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="judging scripts run as another user needs root")


def _nobody() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody'")


def _has_default_user() -> bool:
    try:
        pwd.getpwnam(DEFAULT_USER)
    except KeyError:
        return False
    return True


def script(directory: Path, name: str, body: str = "exit 0", mode: int = 0o755) -> Path:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(mode)
    return path


@pytest.fixture
def root_dir() -> Iterator[Path]:
    """A fresh directory under /tmp (sticky, so safe) that every user may search and only its owner may
    write: what a test changes is the only thing unsafe or unreachable. (pytest's own is mode 0700.)"""
    path = Path(tempfile.mkdtemp(prefix="lvsconsole-vet-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


# ---------------------------------------------------------------------------------------------- vet: the file


def test_a_good_script_passes(root_dir: Path) -> None:
    assert vet_script([str(script(root_dir, "ok.sh")), "arg"], None, False) is None


def test_a_missing_script_names_its_path(root_dir: Path) -> None:
    missing = root_dir / "missing.sh"
    refusal = vet_script([str(missing)], None, False)
    assert refusal is not None and refusal.code == "not-found"
    assert refusal.reason == f"script {missing} does not exist"


def test_a_missing_directory_is_named(root_dir: Path) -> None:
    refusal = vet_script([str(root_dir / "nodir" / "x.sh")], None, False)
    assert refusal is not None and refusal.reason.endswith(f"(no directory {root_dir / 'nodir'})")


def test_a_bare_name_is_searched_in_path_and_the_path_is_named(root_dir: Path) -> None:
    script(root_dir, "found-here")
    search = f"/nonexistent-lvsconsole:{root_dir}"
    assert vet_script(["found-here"], None, False, search_path=search) is None
    refusal = vet_script(["not-anywhere"], None, False, search_path=search)
    assert refusal is not None and refusal.code == "not-found"
    assert refusal.reason == f"script not-anywhere not found in PATH ({search})"


def test_a_directory_is_not_a_script(root_dir: Path) -> None:
    (root_dir / "d").mkdir()
    refusal = vet_script([str(root_dir / "d")], None, False)
    assert refusal is not None and refusal.code == "not-regular" and "is a directory" in refusal.reason


def test_a_file_nobody_may_execute_is_refused_with_its_mode(root_dir: Path) -> None:
    path = script(root_dir, "plain.sh", mode=0o644)
    refusal = vet_script([str(path)], None, False)
    assert refusal is not None and refusal.code == "not-executable"
    assert refusal.reason.startswith(f"script {path} is not executable by user ")
    assert "mode 0644" in refusal.reason


@ROOT_ONLY
def test_execute_permission_is_judged_for_the_run_user(root_dir: Path) -> None:
    _nobody()
    path = script(root_dir, "owner-only.sh", mode=0o700)
    assert vet_script([str(path)], "root", False) is None
    refusal = vet_script([str(path)], "nobody", False)
    assert refusal is not None and refusal.code == "not-executable"
    assert "not executable by user nobody (owner root:" in refusal.reason and "mode 0700" in refusal.reason


@ROOT_ONLY
def test_a_directory_the_run_user_cannot_search_is_named(root_dir: Path) -> None:
    _nobody()
    private = root_dir / "private"
    private.mkdir(mode=0o700)
    path = script(private, "x.sh")
    refusal = vet_script([str(path)], "nobody", False)
    assert refusal is not None and refusal.code == "not-searchable"
    assert f"directory {private} is not searchable" in refusal.reason


# ---------------------------------------------------------------------------------------------- vet: the user


def test_an_unknown_user_is_refused() -> None:
    refusal = vet_script(["/bin/true"], "no-such-user-lvsconsole", False)
    assert refusal is not None and refusal.code == "unknown-user"
    assert "unknown user 'no-such-user-lvsconsole'" in refusal.reason


def test_an_unknown_group_is_refused() -> None:
    refusal = vet_script(["/bin/true"], "root", False, group="no-such-group-lvsconsole")
    assert refusal is not None and refusal.code == "unknown-user"
    assert "unknown group 'no-such-group-lvsconsole'" in refusal.reason


@ROOT_ONLY
@pytest.mark.skipif(_has_default_user(), reason=f"this host has a {DEFAULT_USER} user")
def test_security_without_script_user_or_default_user_is_refused() -> None:
    refusal = vet_script(["/bin/true"], None, True)
    assert refusal is not None and refusal.code == "no-default-user"
    assert f"default user {DEFAULT_USER} does not exist" in refusal.reason
    assert vet_script(["/bin/true"], None, False) is None  # without security it runs as root


# ---------------------------------------------------------------------------------------------- vet: safety


@ROOT_ONLY
def test_a_directory_owned_by_a_non_root_user_makes_a_root_script_unsafe(root_dir: Path) -> None:
    nobody = _nobody()
    theirs = root_dir / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, nobody.pw_uid, nobody.pw_gid)
    path = script(theirs, "chk.sh")
    refusal = vet_script([str(path)], "root", True)
    assert refusal is not None and refusal.code == "unsafe"
    assert refusal.reason.startswith(f"script {path} is unsafe: {theirs} is writable by its owner nobody (owner "
                                     f"nobody:")
    assert "mode 0755" in refusal.reason
    assert vet_script([str(path)], "root", False) is None  # keepalived runs it anyway without security
    unsafe = unsafe_component(str(path))
    assert unsafe is not None and (unsafe.path, unsafe.owner) == (str(theirs), "nobody")


@ROOT_ONLY
def test_a_script_run_by_a_non_root_user_needs_no_protection(root_dir: Path) -> None:
    nobody = _nobody()
    theirs = root_dir / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, nobody.pw_uid, nobody.pw_gid)
    assert vet_script([str(script(theirs, "chk.sh"))], "nobody", True) is None


@ROOT_ONLY
def test_group_and_world_write_rules(root_dir: Path) -> None:
    nobody = _nobody()
    path = script(root_dir, "chk.sh")
    os.chown(path, 0, nobody.pw_gid)
    path.chmod(0o775)
    refusal = vet_script([str(path)], "root", True)
    assert refusal is not None and f"{path} is writable by group " in refusal.reason
    os.chown(path, 0, 0)  # a root group may write: still safe
    assert vet_script([str(path)], "root", True) is None
    path.chmod(0o757)
    refusal = vet_script([str(path)], "root", True)
    assert refusal is not None and f"{path} is writable by others" in refusal.reason


@ROOT_ONLY
def test_a_sticky_world_writable_directory_is_safe(root_dir: Path) -> None:
    sticky = root_dir / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    assert vet_script([str(script(sticky, "chk.sh"))], "root", True) is None


def test_vet_gives_the_resolved_path(root_dir: Path) -> None:
    script(root_dir, "here")
    verdict = vet(["here"], None, False, search_path=str(root_dir))
    assert not isinstance(verdict, Refusal) and verdict.path == str(root_dir / "here")


# ---------------------------------------------------------------------------------------------- run: output


def test_a_run_keeps_exit_duration_and_the_first_lines_of_its_output(root_dir: Path) -> None:
    path = script(root_dir, "talk.sh", "printf 'one\\n\\ntwo\\nthree\\nfour\\n'\n"
                                       "printf 'bad \\377 byte\\n' >&2\nexit 4")
    result = asyncio.run(run_script([str(path)], timeout=5))
    assert result.exit_status == 4 and not result.succeeded
    assert result.stdout == ("one", "two", "three")[:HEAD_LINES]
    assert result.stderr == ("bad \ufffd byte",)
    assert 0 < result.duration < 5
    assert result.outcome() == "exited with status 4"


def test_a_background_child_holding_stdout_does_not_delay_the_result(root_dir: Path) -> None:
    path = script(root_dir, "bg.sh", "echo started\n(sleep 3; echo late) &\nexit 0")
    start = time.monotonic()
    result = asyncio.run(run_script([str(path)], timeout=10))
    assert time.monotonic() - start < 2.5
    assert result.succeeded and result.stdout == ("started",)


def test_a_flood_of_output_neither_blocks_the_script_nor_grows_the_result(root_dir: Path) -> None:
    path = script(root_dir, "flood.sh", "head -c 3000000 /dev/zero | tr '\\0' 'x'\necho done >&2")
    result = asyncio.run(run_script([str(path)], timeout=10))
    assert result.succeeded and result.stderr == ("done",)
    assert len(result.stdout) == 1 and len(result.stdout[0]) <= 240


def test_a_script_that_cannot_start_says_why(root_dir: Path) -> None:
    result = asyncio.run(run_script([str(root_dir / "missing")], timeout=5))
    assert result.error is not None and "No such file" in result.error and not result.succeeded
