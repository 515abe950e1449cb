"""Hostile input through the config language: random text, random bytes, mutated Debian samples.

Through `load_text` and through `lvsconsole validate -f FILE` (the CLI's function, in process): no
exception escapes (the CLI may only end by SystemExit from argparse, which these argv never trigger),
and every diagnostic is either explicitly location-less or points inside the file it names.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lvsconsole.cli import main
from lvsconsole.config.build import load_text
from lvsconsole.config.diagnostics import Diagnostic

SAMPLES_DIR = Path("/usr/share/doc/keepalived/samples")
SEED_DIR = Path(__file__).resolve().parents[2] / "lvsconsole" / "examples"
SOURCES = sorted(SAMPLES_DIR.glob("keepalived.conf.*")) + sorted(SEED_DIR.glob("*.conf"))
TEXTS = [p.read_bytes().decode("utf-8", "surrogateescape") for p in SOURCES]

FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ_CLI = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# load_text resolves relative includes against the directory of `filename` when it names a file: an empty
# scratch directory, so that a random `include *` reads nothing of the checkout it runs in.
_SCRATCH = tempfile.TemporaryDirectory(prefix="lvs-fuzz-")
FUZZ_FILE = str(Path(_SCRATCH.name) / "fuzz.conf")
Path(FUZZ_FILE).write_text("")

CLI_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?:error|warning): ")


def _lines(text: str) -> list[str]:
    return text.split("\n")


def check_locations(diagnostics: list[Diagnostic], filename: str, text: str) -> None:
    """Each diagnostic is location-less or at line >= 1, col >= 1, inside the file (or an included one)."""
    lines = _lines(text)
    for diag in diagnostics:
        loc = diag.location
        if loc is None:
            continue
        assert loc.line >= 1 and loc.col >= 1, diag
        if loc.file != filename:
            continue  # an include the text pulled in: its own file
        assert loc.line <= len(lines), f"{diag}: the text has {len(lines)} lines"
        assert loc.col <= len(lines[loc.line - 1]) + 1, f"{diag}: line {loc.line} is {lines[loc.line - 1]!r}"


def load_checked(text: str, filename: str = FUZZ_FILE) -> None:
    result = load_text(text, filename=filename, config_id="high")
    check_locations(result.diagnostics, filename, text)
    for diag in result.diagnostics:
        assert str(diag)  # renders
        json.dumps(diag.as_json())


def run_cli(argv: list[str]) -> tuple[int, str]:
    """main(argv) with a strict UTF-8 stdout (as under en_US.UTF-8 or PYTHONIOENCODING=utf-8; C.UTF-8 would
    use surrogateescape and hide an undecodable byte quoted in a diagnostic)."""
    buffer = io.BytesIO()
    out = io.TextIOWrapper(buffer, encoding="utf-8", errors="strict", newline="\n")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        status = main(argv)
    out.flush()
    return status, buffer.getvalue().decode("utf-8")


def validate_checked(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "keepalived.conf"
        path.write_bytes(data)
        text = data.decode("utf-8", "surrogateescape")
        status, out = run_cli(["validate", "-f", str(path), "-i", "high"])
        assert status in (0, 1), out
        *diag_lines, verdict = out.rstrip("\n").split("\n")
        assert verdict.startswith(f"{path}: {'valid' if status == 0 else 'invalid'}: "), out
        lines = _lines(text)
        for line in diag_lines:
            if line.startswith("<config>: "):
                continue  # explicitly location-less
            match = CLI_LINE.match(line)
            if match is None:
                continue  # the continuation of a message that holds a newline (an odd word quoted in it)
            lineno, col = int(match["line"]), int(match["col"])
            assert lineno >= 1 and col >= 1, line
            if match["file"] == str(path):
                assert lineno <= len(lines), line

        status, out = run_cli(["validate", "-f", str(path), "--json", "-i", "high"])
        payload = json.loads(out)
        assert status == (1 if any(d["severity"] == "error" for d in payload) else 0)
        for d in payload:
            if d["file"] is None:
                assert d["line"] is None and d["col"] is None
                continue
            assert d["line"] >= 1 and d["col"] >= 1, d
            if d["file"] == str(path):
                assert d["line"] <= len(lines), d
                assert d["col"] <= len(lines[d["line"] - 1]) + 1, d


# ---------------------------------------------------------------------------------------------- strategies

KEYWORDS = [
    "global_defs", "vrrp_instance", "virtual_server", "real_server", "TCP_CHECK", "HTTP_GET", "url", "path",
    "state", "MASTER", "priority", "virtual_ipaddress", "authentication", "auth_type", "PASS", "lb_algo",
    "lb_kind", "DR", "TUN", "protocol", "TCP", "weight", "delay_loop", "group", "fwmark", "include", "@high",
    "@^high", "$X=1", "$X", "${_HASH}", "~SEQ(i,1,3)", "10.0.0.1", "::1", "80", "-1", "1e9", "nan", "{", "}",
    "\"", "'", "\\", "#", "!", "\n", " ", "\t",
]
config_text = st.lists(st.one_of(st.sampled_from(KEYWORDS), st.text(max_size=6)), max_size=60).map(" ".join)


@st.composite
def mutated_samples(draw: st.DrawFn) -> str:
    text: str = draw(st.sampled_from(TEXTS))
    for _ in range(draw(st.integers(1, 3))):
        lines = text.split("\n")
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "cut", "brace", "graft", "char"]))
        if op == "delete":
            del lines[draw(st.integers(0, len(lines) - 1))]
        elif op == "duplicate":
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(draw(st.integers(0, len(lines))), lines[i])
        elif op == "swap":
            tokens = re.split(r"(\s+)", text)
            words = [i for i, t in enumerate(tokens) if t and not t.isspace()]
            if len(words) >= 2:
                a, b = draw(st.sampled_from(words)), draw(st.sampled_from(words))
                tokens[a], tokens[b] = tokens[b], tokens[a]
            lines = "".join(tokens).split("\n")
        elif op == "graft":  # a line of another sample, anywhere
            other = draw(st.sampled_from(TEXTS)).split("\n")
            lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(other)))
        elif op == "char":  # a character that means something to the lexer, or none
            flat = "\n".join(lines)
            at = draw(st.integers(0, len(flat)))
            char = draw(st.sampled_from([*"\"'\\#!$@~;\r\t\x00", "\udc80", "\u2028", "${", "$X=", "~SEQ("]))
            lines = (flat[:at] + char + flat[at:]).split("\n")
        elif op == "cut":
            lines = text[: draw(st.integers(0, len(text)))].split("\n")
        else:
            flat = "\n".join(lines)
            at = draw(st.integers(0, len(flat)))
            brace = draw(st.sampled_from(["{", "}", " { ", " } ", "}}", "{\n", "\n}"]))
            lines = (flat[:at] + brace + flat[at:]).split("\n")
        text = "\n".join(lines)
    return text


# ---------------------------------------------------------------------------------------------- load_text


@FUZZ
@given(st.text())
def test_random_text(text: str) -> None:
    load_checked(text)


@FUZZ
@given(config_text)
def test_random_keyword_soup(text: str) -> None:
    load_checked(text)


@FUZZ
@given(st.binary())
def test_random_bytes(data: bytes) -> None:
    load_checked(data.decode("utf-8", "surrogateescape"))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_samples())
def test_mutated_samples(text: str) -> None:
    load_checked(text)


@pytest.mark.parametrize("index", range(len(TEXTS)), ids=[p.name for p in SOURCES])
def test_every_truncation_point_of_a_line(index: int) -> None:
    """Cut each sample at the end of every line (the places an editor's autosave leaves a file)."""
    text = TEXTS[index]
    offsets = [i for i, ch in enumerate(text) if ch == "\n"]
    for offset in offsets[:: max(1, len(offsets) // 40)]:
        load_checked(text[:offset])
        load_checked(text[: offset + 1] + "}")


# ---------------------------------------------------------------------------------------------- the CLI


@FUZZ_CLI
@given(st.binary(max_size=400))
def test_cli_random_bytes(data: bytes) -> None:
    validate_checked(data)


@FUZZ_CLI
@given(mutated_samples())
def test_cli_mutated_samples(text: str) -> None:
    validate_checked(text.encode("utf-8", "surrogateescape"))


@FUZZ_CLI
@given(config_text)
def test_cli_keyword_soup(text: str) -> None:
    validate_checked(text.encode("utf-8", "surrogateescape"))


def test_cli_invalid_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_bytes(b"global_defs {\n    router_id \xff\n}\n")
    assert main(["validate", "-f", str(path)]) == 0
    assert capsys.readouterr().out.endswith(": valid: 0 errors, 0 warnings (0 vrrp_instance, 0 virtual_server, "
                                            "0 real_server, 1 file)\n")


def test_cli_undecodable_byte_in_a_diagnostic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A diagnostic quoting an undecodable byte (a surrogate, from the lexer's surrogateescape) crashed the
    # print to a strict UTF-8 stdout (found by test_cli_random_bytes; fixed in cli._printable).
    path = tmp_path / "keepalived.conf"
    path.write_bytes(b"glob\x80al_defs {\n}\n")
    assert main(["validate", "-f", str(path)]) == 0  # capsys's stdout is strict UTF-8, like en_US.UTF-8
    out = capsys.readouterr().out
    assert "unknown keyword 'glob\\udc80al_defs'" in out


# os.stat raises ValueError for an embedded NUL (a raw NUL byte or a quoted \x00) and for a lone surrogate;
# the validator used to catch only OSError and crashed.
@pytest.mark.parametrize("path", ["/bin/tr\x00ue", '/bin/tr\\x00ue', "/bin/\ud800"])
def test_script_path_that_os_stat_refuses(path: str) -> None:
    text = 'vrrp_script s {\n    script "' + path + '"\n}\n'
    result = load_text(text, filename=FUZZ_FILE)
    assert any(d.is_error and "contains a character no file name can hold" in d.message
               for d in result.diagnostics)


def test_cli_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "-f", str(tmp_path / "missing.conf")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["validate", "-f", str(tmp_path)]) == 2  # a directory


def test_cli_bad_arguments_exit_through_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["validate", "--no-such-option"])
    assert exc.value.code == 2
    capsys.readouterr()
