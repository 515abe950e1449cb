"""MISC_CHECK scripts (exit codes, misc_dynamic, no shell, run-as user, timeouts killing the process
group) and FILE_CHECK's keepalived arithmetic."""

from __future__ import annotations

import asyncio
import os
import pwd
from pathlib import Path

import pytest
from _checkutil import read_fifo, run, wait_exit

from lvsconsole.check.file import INT_MIN, FileChecker, file_status, read_track_value, strtol
from lvsconsole.check.misc import MiscChecker, RunAs, run_script


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


# ---- exit codes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "dynamic", "ok"),
    [(0, False, True), (1, False, False), (7, False, False), (7, True, True), (2, True, True), (255, True, True)],
)
def test_exit_status_decides(tmp_path: Path, code: int, dynamic: bool, ok: bool) -> None:
    path = script(tmp_path, "s", f"exit {code}")
    out = run(MiscChecker((path,), 5.0, dynamic).check())
    assert out.ok is ok
    assert out.exit_status == code and not out.timed_out


def test_arguments_are_passed_without_a_shell(tmp_path: Path) -> None:
    record = tmp_path / "args"
    path = script(tmp_path, "s", 'out="$1"; shift; printf "%s\\n" "$#" "$@" > "$out"')
    argv = (path, str(record), "two words", "$HOME;touch pwned", "*")
    assert run(MiscChecker(argv, 5.0).check()).ok
    assert record.read_text().splitlines() == ["3", "two words", "$HOME;touch pwned", "*"]
    assert not (Path("/") / "pwned").exists()


def test_missing_script_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    out = run(MiscChecker((str(tmp_path / "nope"),), 5.0).check())
    assert not out.ok and "No such file" in out.reason


# ---- timeouts --------------------------------------------------------------------------------------


def test_hanging_script_is_killed_with_its_children_at_misc_timeout(tmp_path: Path) -> None:
    fifo = tmp_path / "child.pid"
    path = script(tmp_path, "hang", f"sleep 60 & echo $! > {fifo}\nwait")

    async def main() -> tuple[bool, bool, float, bool]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        check = asyncio.create_task(MiscChecker((path,), 0.3).check())
        child = int(await read_fifo(fifo))
        out = await check
        took = loop.time() - t0
        return out.ok, out.timed_out, took, await wait_exit(child)

    ok, timed_out, took, child_gone = run(main())
    assert not ok and timed_out
    assert 0.3 <= took < 2.0  # SIGTERM at misc_timeout ends it; no SIGKILL grace needed
    assert child_gone


def test_script_ignoring_sigterm_gets_sigkill_after_the_grace(tmp_path: Path) -> None:
    path = script(tmp_path, "stubborn", "trap '' TERM\nsleep 60")

    async def main() -> tuple[bool, int | None, float]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        out = await MiscChecker((path,), 0.2, term_grace=0.3).check()
        return out.timed_out, out.signal, loop.time() - t0

    timed_out, sig, took = run(main())
    assert timed_out and sig == 9
    assert 0.5 <= took < 3.0


def test_script_that_exits_cleanly_on_sigterm_reports_its_status(tmp_path: Path) -> None:
    path = script(tmp_path, "polite", "trap 'exit 0' TERM\nsleep 60 & wait")
    out = run(MiscChecker((path,), 0.2).check())
    assert out.ok and out.exit_status == 0 and not out.timed_out


def test_cancelling_a_running_script_kills_it(tmp_path: Path) -> None:
    fifo = tmp_path / "pid"
    path = script(tmp_path, "s", f"echo $$ > {fifo}\nexec sleep 60")

    async def main() -> bool:
        task = asyncio.create_task(run_script([path], timeout=60))
        pid = int(await read_fifo(fifo))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await wait_exit(pid)

    assert run(main())


# ---- run as ----------------------------------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="running a script as another user needs root")
def test_script_runs_as_the_configured_user() -> None:
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody'")
    run_as = RunAs.lookup("nobody")
    assert (run_as.uid, run_as.gid) == (nobody.pw_uid, nobody.pw_gid)
    argv = ("/bin/sh", "-c", f'test "$(id -u)" = {nobody.pw_uid} && test "$(id -g)" = {nobody.pw_gid}')
    assert run(MiscChecker(argv, 5.0, run_as=run_as).check()).ok
    assert not run(MiscChecker(("/bin/sh", "-c", 'test "$(id -u)" = 0'), 5.0, run_as=run_as).check()).ok


def test_unknown_user_is_refused() -> None:
    with pytest.raises(KeyError):
        RunAs.lookup("no-such-user-lvsconsole")


# ---- FILE_CHECK ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (b"42", 42),
        (b"  -7\n", -7),
        (b"+3", 3),
        (b"0x1f", 31),
        (b"010", 8),
        (b"09", 0),  # octal: the 9 stops the number
        (b"12abc", 12),
        (b"abc", 0),
        (b"", 0),
        (b"0x", 0),
        (b"99999999999999999999", None),
    ],
)
def test_strtol_like_c(text: bytes, value: int | None) -> None:
    assert strtol(text) == value


def test_read_track_value(tmp_path: Path) -> None:
    f = tmp_path / "v"
    assert read_track_value(str(f)) == 0  # missing
    f.write_text("")
    assert read_track_value(str(f)) == 0
    f.write_text("2147483648\n")  # INT_MAX + 1 is accepted, as keepalived does
    assert read_track_value(str(f)) == 2**31
    f.write_text("2147483649")
    assert read_track_value(str(f)) is None


def test_file_status_arithmetic() -> None:
    assert file_status(0, 0, False) == (True, 0)
    assert file_status(3, 0, False) == (False, 0)
    assert file_status(0, 0, True) == (False, 0)
    assert file_status(3, 0, True) == (True, 0)
    assert file_status(3, 5, False) == (True, 15)
    assert file_status(3, 5, True) == (True, -15)
    assert file_status(-(2**31), 1, False) == (False, 0)  # at INT_MIN: fault
    assert file_status(2**31, 2, True) == (False, 0)  # clamped to INT_MIN: fault
    assert file_status(-5, 1, False) == (True, -5)
    assert INT_MIN == -(2**31)


def test_file_checker_keeps_the_last_valid_value(tmp_path: Path) -> None:
    f = tmp_path / "v"
    f.write_text("2")
    fc = FileChecker(str(f), weight=10)
    out = fc.read()
    assert out.ok and out.weight == 20
    f.write_text("99999999999")  # out of range: ignored
    out = fc.read()
    assert out.ok and out.weight == 20
    f.unlink()  # a missing file reads 0
    assert fc.read().weight == 0
