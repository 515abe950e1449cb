"""``lvsconsole shell``: completer and validator against the real grammar; ``-c`` and stdin modes and the
interactive REPL against an embedded dry-run engine (no vrrp_instance; real servers on 127.0.0.1, one
with a listener, one without); attaching over the control socket."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from prompt_toolkit.validation import ValidationError

from lvsconsole.engine.commands import Names, Result
from lvsconsole.engine.daemon import running_engine
from lvsconsole.shell import cli as shell_cli
from lvsconsole.shell.cli import parse_args
from lvsconsole.shell.repl import (
    AttachedLink,
    EmbeddedLink,
    RecordingSink,
    Shell,
    ShellCompleter,
    ShellValidator,
    amain,
    interactive,
    make_session,
    names_from_json,
)

VS = "10.0.0.1:80"


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP listener on 127.0.0.1 (the kernel completes handshakes without accept())."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # sun_path holds 107 bytes: pytest's tmp_path can be longer
    path = Path(tempfile.mkdtemp(prefix="lvsh-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def conf(tmp_path: Path, listener: int, closed_port: int) -> Path:
    path = tmp_path / "keepalived.conf"
    path.write_text(f"""\
global_defs {{
    router_id shelltest
}}
virtual_server 10.0.0.1 80 {{
    delay_loop 1
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.1 {listener} {{
        weight 3
        TCP_CHECK {{
            connect_timeout 1
            retry 0
        }}
    }}
    real_server 127.0.0.1 {closed_port} {{
        weight 1
        TCP_CHECK {{
            connect_timeout 1
            retry 0
        }}
    }}
}}
""")
    return path


def shell_main(*argv: str) -> int:
    return shell_cli.main(list(argv))


def embedded(conf: Path, *extra: str) -> list[str]:
    return ["-f", str(conf), "--dry-run", "--socket", "", "--history", "", *extra]


def _names() -> Names:
    return Names(instances=("VI_1", "VI_2"), virtual_servers=(VS, "10.0.0.1:443"),
                 real_servers=("10.0.0.2:80", "10.0.0.3:80"), vips=("10.0.0.1",))


class FakeLink:
    description = "fake"

    def __init__(self, names: Names | None = None) -> None:
        self._names = names or _names()
        self.ran: list[str] = []

    async def run(self, text: str) -> Result:
        self.ran.append(text)
        return Result(True, f"ran {text.strip()}", None)

    def names(self) -> Names:
        return self._names

    def states(self) -> list[tuple[str, str]]:
        return [("VI_1", "MASTER")]

    async def refresh(self) -> None:
        return None


def completions_of(shell: Shell, text: str, cursor: int | None = None) -> list[str]:
    cursor = len(text) if cursor is None else cursor
    doc = Document(text, cursor)
    return [c.text for c in ShellCompleter(shell).get_completions(doc, None)]  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- completer


def test_completer_offers_keywords_from_the_grammar() -> None:
    shell = Shell(FakeLink(), RecordingSink(), lab_path="")
    assert completions_of(shell, "sh") == ["show"]
    first = completions_of(shell, "")
    assert {"show", "drain", "commit", "vrrp", "exit", "quit"} <= set(first)
    assert "lab" not in first  # only inside the demo
    assert {"vrrp", "vs", "rs", "log", "config", "diff", "stats", "history", "overrides", "blame", "checks",
            "conns", "sync", "drain", "drift"} == set(
        completions_of(shell, "show "))
    assert completions_of(shell, "show config ") == ["running", "candidate"]


def test_completer_offers_live_names_in_their_slots() -> None:
    shell = Shell(FakeLink(), RecordingSink(), lab_path="")
    assert completions_of(shell, "drain ") == ["10.0.0.2:80", "10.0.0.3:80"]
    assert completions_of(shell, "drain 10.0.0.3") == ["10.0.0.3:80"]
    assert completions_of(shell, "drain 10.0.0.2:80 in ") == ["fwmark", "group", VS, "10.0.0.1:443"]
    assert completions_of(shell, "vrrp failover ") == ["VI_1", "VI_2"]
    assert completions_of(shell, "show vs 10.0.0.1:4") == ["10.0.0.1:443"]
    # only the command under the cursor counts
    assert completions_of(shell, "show vs; dr") == ["drain", "drift"]
    assert completions_of(shell, "show vs; vrrp priority V") == ["VI_1", "VI_2"]
    assert "exit" not in completions_of(shell, "show vs; ")
    # the cursor in the middle of the line
    assert completions_of(shell, "show v; drain x", cursor=6) == ["vrrp", "vs"]
    # field names and their values come from keepalived's keyword tables
    assert "lb_algo" in completions_of(shell, f"set vs {VS} lb_")
    assert {"rr", "wrr", "lc"} <= set(completions_of(shell, f"set vs {VS} lb_algo "))


def test_completer_start_positions_replace_the_word_being_typed() -> None:
    shell = Shell(FakeLink(), RecordingSink(), lab_path="")
    doc = Document("show vs; drain 10.0.0.")
    got = list(ShellCompleter(shell).get_completions(doc, None))  # type: ignore[arg-type]
    assert [(c.text, c.start_position) for c in got] == [("10.0.0.2:80", -7), ("10.0.0.3:80", -7)]
    assert got[0].display_meta_text == "real server"


def test_completer_knows_lab_commands_inside_the_demo() -> None:
    shell = Shell(FakeLink(), RecordingSink(), lab_path="/nonexistent/lab.sock")
    assert "lab" in completions_of(shell, "")
    assert completions_of(shell, "la") == ["lab"]
    assert set(completions_of(shell, "lab ")) == {"status", "stop", "start", "kill", "partition", "heal",
                                                  "client", "help"}
    assert completions_of(shell, "lab stop r") == ["rs1", "rs2"]
    assert completions_of(shell, "show vs; lab k") == ["kill"]


# ---------------------------------------------------------------------------------------------- validator


def validation_error(shell: Shell, text: str) -> ValidationError | None:
    try:
        ShellValidator(shell).validate(Document(text))
    except ValidationError as exc:
        return exc
    return None


def test_validator_accepts_what_parses() -> None:
    shell = Shell(FakeLink(), RecordingSink(), lab_path="")
    for text in ("", "   ", "show vs", "drain 10.0.0.2:80 in 10.0.0.1:80", "show vrrp; show rs", "exit",
                 "weight 10.0.0.2:80 50%", 'set vs 10.0.0.1:80 lb_algo "wrr"', "help drain"):
        assert validation_error(shell, text) is None, text


def test_validator_points_at_the_offending_word() -> None:
    shell = Shell(FakeLink(), RecordingSink(), lab_path="")
    err = validation_error(shell, "show vx")
    assert err is not None
    assert err.cursor_position == 5
    assert err.message.startswith("column 6: unexpected 'vx'")
    err = validation_error(shell, "show vs; shw rs")
    assert err is not None and err.cursor_position == 9
    assert "unknown command 'shw'" in err.message
    err = validation_error(shell, "drain 10.0.0.2:99999")
    assert err is not None and err.cursor_position == 6 and "bad port" in err.message
    err = validation_error(shell, "drain")  # incomplete: the error is at the end of the line
    assert err is not None and err.cursor_position == 5 and "incomplete" in err.message


def test_validator_checks_lab_commands_inside_the_demo() -> None:
    shell = Shell(FakeLink(), RecordingSink(), lab_path="/nonexistent/lab.sock")
    assert validation_error(shell, "lab stop rs1") is None
    assert validation_error(shell, "show vs; lab partition") is None
    err = validation_error(shell, "lab stop nobody")
    assert err is not None and err.cursor_position == 9 and "unknown node" in err.message


# ---------------------------------------------------------------------------------------------- -c and stdin


def test_c_runs_every_command_and_exits_0(conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert shell_main(*embedded(conf, "-c", "show vs; show vrrp; drain 127.0.0.1 --force; show overrides")) == 0
    out = capsys.readouterr().out
    assert "VIRTUAL SERVER / REAL SERVER" in out and "10.0.0.1:80 wrr" in out
    assert "no vrrp_instance" in out
    assert "drained 127.0.0.1:" in out
    assert "drain" in out.split("OVERRIDE")[1]


def test_c_show_drain_renders_the_watch_as_a_table(conf: Path, listener: int,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert shell_main(*embedded(conf, "-c", f"drain 127.0.0.1:{listener} --force --until-empty then remove; "
                                            "show drain")) == 0
    out = capsys.readouterr().out
    assert "watching the drain until 0 active and 0 inactive" in out
    header, row = out.split("REAL SERVER")[1].splitlines()[:2]
    assert "PHASE" in header and "ETA" in header and "SAMPLES" in header
    assert f"[127.0.0.1]:tcp:{listener}" in row and "[10.0.0.1]:tcp:80" in row
    assert "draining -> maint" in row or "removed" in row  # removed once a sample saw it empty


def test_c_json_prints_one_object_per_command(conf: Path, listener: int,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert shell_main(*embedded(conf, "--json", "-c", "show vs; show rs 127.0.0.1; show vrrp")) == 0
    lines = capsys.readouterr().out.splitlines()
    docs = [json.loads(line) for line in lines]
    assert [d["command"] for d in docs] == ["show vs", "show rs 127.0.0.1", "show vrrp"]
    assert all(d["ok"] for d in docs)
    vs = docs[0]["data"][0]
    assert vs["key"] == "[10.0.0.1]:tcp:80" and vs["scheduler"] == "wrr"
    assert {rs["config_weight"] for rs in vs["real_servers"]} == {3, 1}
    assert {rs["port"] for rs in docs[1]["data"]} >= {listener}
    assert docs[2]["data"] == []


def test_c_stops_at_the_first_error_and_exits_1(conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert shell_main(*embedded(conf, "-c", "show vrrp; shw rs; drain 127.0.0.1")) == 1
    captured = capsys.readouterr()
    assert "no vrrp_instance" in captured.out
    assert "drained" not in captured.out  # not run
    assert "-c: error: column 12: unknown command 'shw'" in captured.err
    assert captured.err.splitlines()[-1] == " " * 13 + "^"


def test_c_json_reports_an_engine_refusal(conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert shell_main(*embedded(conf, "--json", "-c", "drain 10.9.9.9:80; show vs")) == 1
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(docs) == 1
    assert docs[0]["ok"] is False and "no real server 10.9.9.9:80" in docs[0]["message"]
    assert docs[0]["data"]["error"]["col"] == 7


def test_stdin_runs_line_by_line(conf: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("# a comment\n\nshow vrrp\nshow vs; show rs\n"))
    assert shell_main(*embedded(conf, "--json")) == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["command"] for d in docs] == ["show vrrp", "show vs", "show rs"]


def test_stdin_stops_at_the_first_error_naming_the_line(conf: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("show vrrp\nshow vs 10.0.0.9:80\nshow rs\n"))
    assert shell_main(*embedded(conf)) == 1
    captured = capsys.readouterr()
    assert "REAL SERVER" not in captured.out
    assert "stdin:2: error: column 9: no virtual server 10.0.0.9:80" in captured.err


def test_stdin_exit_ends_the_script(conf: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("show vrrp\nexit\nbogus\n"))
    assert shell_main(*embedded(conf)) == 0


def test_unreadable_config_or_absent_engine_exit_2(tmp_path: Path, short_dir: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert shell_main("-f", str(tmp_path / "missing.conf"), "--dry-run", "--socket", "", "-c", "show vs") == 2
    assert "cannot read" in capsys.readouterr().err
    assert shell_main("--attach", "--socket", str(short_dir / "none.sock"), "-c", "show vs") == 2
    assert "no engine is running" in capsys.readouterr().err
    bad = tmp_path / "bad.conf"
    bad.write_text("virtual_server 10.0.0.1 80 {\n    lb_algo nonsense\n}\n")
    assert shell_main("-f", str(bad), "--dry-run", "--socket", "", "-c", "show vs") == 2
    assert "not started" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- embedded and attached


async def poll(condition: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


def test_embedded_engine_checks_the_listeners(conf: Path, listener: int, closed_port: int) -> None:
    async def scenario() -> None:
        async with running_engine(str(conf), dry_run=True, socket_path=None) as engine:
            sink = RecordingSink()
            shell = Shell(EmbeddedLink(engine, "test"), sink, json_output=True, lab_path="")
            health: dict[int, str] = {}

            async def settled() -> bool:
                sink.items.clear()
                assert await shell.run_line("show rs")
                doc = json.loads(sink.text)
                health.update({rs["port"]: rs["health"] for rs in doc["data"]})
                return health.get(listener) == "up" and health.get(closed_port) == "down"

            await poll(settled, 20, "the TCP checks: listener up, closed port down")
            names = shell.link.names()
            assert f"127.0.0.1:{listener}" in names.real_servers and VS in names.virtual_servers

    asyncio.run(scenario())


@asynccontextmanager
async def served_engine(conf: Path, sock: Path) -> AsyncIterator[None]:
    async with running_engine(str(conf), dry_run=True, socket_path=str(sock)):
        yield


def test_attach_runs_commands_over_the_socket(conf: Path, short_dir: Path, listener: int) -> None:
    sock = short_dir / "engine.sock"

    async def scenario() -> None:
        async with served_engine(conf, sock):
            sink = RecordingSink()
            args = parse_args(["--attach", "--socket", str(sock), "--json", "-c",
                               "drain 127.0.0.1 --force; show overrides"])
            assert await amain(args, sink=sink) == 0
            docs = [json.loads(line) for line in sink.text.splitlines()]
            assert docs[0]["ok"] and docs[0]["data"]["action"] == "drain"
            assert {o["rs"] for o in docs[1]["data"]} >= {f"127.0.0.1:{listener}"}
            sink = RecordingSink()
            args = parse_args(["--attach", "--socket", str(sock), "-c", "show vs; shw"])
            assert await amain(args, sink=sink) == 1
            assert any(err and "unknown command 'shw'" in text for text, err in sink.items)
            # neither -f nor --attach: a live engine at --socket is attached to
            sink = RecordingSink()
            assert await amain(parse_args(["--socket", str(sock), "--json", "-c", "show stats"]), sink=sink) == 0
            assert json.loads(sink.text)["data"]["dry_run"] is True

    asyncio.run(scenario())


def test_attached_link_learns_names_for_completion(conf: Path, short_dir: Path, listener: int) -> None:
    sock = short_dir / "engine.sock"

    async def scenario() -> None:
        from lvsconsole.engine.control import ControlClient

        async with served_engine(conf, sock), await ControlClient.connect(str(sock)) as client:
            link = AttachedLink(client, str(sock))
            await link.refresh()
            shell = Shell(link, RecordingSink(), lab_path="")
            assert f"127.0.0.1:{listener}" in completions_of(shell, "drain 127")
            assert completions_of(shell, "show vs ") == ["fwmark", "group", VS]

    asyncio.run(scenario())


def test_names_from_json_labels_like_the_engine() -> None:
    vrrp = [{"name": "VI_1", "vips": ["192.168.2.188"]}]
    vss = [{"address": "192.168.2.188", "port": 80, "protocol": "TCP", "fwmark": None, "group": None,
            "real_servers": [{"address": "192.168.2.187", "port": 80}, {"address": "2001:db8::1", "port": 80}]},
           {"address": None, "port": None, "protocol": "TCP", "fwmark": 5, "group": None, "real_servers": []},
           {"address": "10.0.0.1", "port": 53, "protocol": "UDP", "fwmark": None, "group": None,
            "real_servers": []}]
    names = names_from_json(vrrp, vss)
    assert names.instances == ("VI_1",) and names.vips == ("192.168.2.188",)
    assert names.virtual_servers == ("192.168.2.188:80", "fwmark 5", "10.0.0.1:53/udp")
    assert names.real_servers == ("192.168.2.187:80", "[2001:db8::1]:80")


# ---------------------------------------------------------------------------------------------- interactive


class Repl:
    """The interactive REPL on a pipe: type keys, wait (bounded) for the buffer or the output."""

    def __init__(self, shell: Shell, history: Any) -> None:
        self.shell = shell
        self._pipe_cm = create_pipe_input()
        self.pipe = self._pipe_cm.__enter__()
        self.session = make_session(shell, history=history, input=self.pipe, output=DummyOutput())
        self.task: asyncio.Task[int] | None = None

    async def __aenter__(self) -> Repl:
        self.task = asyncio.create_task(interactive(self.shell, session=self.session))
        await self.wait_buffer("")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        if not self.task.done():
            self.pipe.send_text("\x04")  # Ctrl-D on an empty line
            await asyncio.wait_for(self.task, 10)
        self._pipe_cm.__exit__(None, None, None)

    def type(self, keys: str) -> None:
        self.pipe.send_text(keys)

    async def wait_buffer(self, text: str, timeout: float = 10) -> None:
        async def ready() -> bool:
            if self.task is not None and self.task.done():
                raise AssertionError(f"the REPL ended: {self.task.result()}")
            app = self.session.app
            return app.is_running and self.session.default_buffer.text == text

        await poll(ready, timeout, f"the prompt's buffer to read {text!r} "
                                   f"(it reads {self.session.default_buffer.text!r})")

    async def wait_output(self, text: str, timeout: float = 10) -> None:
        sink = self.shell.sink
        assert isinstance(sink, RecordingSink)

        async def seen() -> bool:
            return text in sink.text

        await poll(seen, timeout, f"{text!r} in the output")


def test_interactive_tab_completes_and_runs(conf: Path, listener: int) -> None:
    async def scenario() -> None:
        async with running_engine(str(conf), dry_run=True, socket_path=None) as engine:
            shell = Shell(EmbeddedLink(engine, "test"), RecordingSink(), lab_path="")
            async with Repl(shell, None) as r:
                r.type("show vr")
                await r.wait_buffer("show vr")
                r.type("\t")
                await r.wait_buffer("show vrrp")
                r.type("\r")
                await r.wait_output("no vrrp_instance")
                await r.wait_buffer("")
                r.type(f"show rs 127.0.0.1:{str(listener)[:-1]}")
                await r.wait_buffer(f"show rs 127.0.0.1:{str(listener)[:-1]}")
                r.type("\t")  # a live name
                await r.wait_buffer(f"show rs 127.0.0.1:{listener}")
                r.type("\r")
                await r.wait_output(f"127.0.0.1:{listener}  10.0.0.1:80")
                # an invalid line is not accepted: Enter keeps it in the buffer
                r.type("shw\r")
                await r.wait_buffer("shw")
                assert "unknown command" not in shell.sink.text  # type: ignore[attr-defined]
                r.type("\x05\x15")  # Ctrl-E, Ctrl-U: the refused Enter may have put the cursor on the error
                await r.wait_buffer("")
                r.type("exit")
                await r.wait_buffer("exit")
                r.type("\r")
                assert r.task is not None
                assert await asyncio.wait_for(r.task, 10) == 0

    asyncio.run(scenario())


def test_interactive_history_persists_and_recalls(conf: Path, tmp_path: Path) -> None:
    path = tmp_path / "history"

    async def scenario() -> None:
        async with running_engine(str(conf), dry_run=True, socket_path=None) as engine:
            shell = Shell(EmbeddedLink(engine, "test"), RecordingSink(), lab_path="")
            async with Repl(shell, FileHistory(str(path))) as r:
                r.type("show vrrp\r")
                await r.wait_output("no vrrp_instance")
                await r.wait_buffer("")
                r.type("show overrides\r")
                await r.wait_output("no runtime overrides")
            assert "+show vrrp" in path.read_text() and "+show overrides" in path.read_text()
            # a new session recalls the previous one's commands, newest first
            shell = Shell(EmbeddedLink(engine, "test"), RecordingSink(), lab_path="")
            async with Repl(shell, FileHistory(str(path))) as r:
                r.type("\x1b[A")
                await r.wait_buffer("show overrides")
                r.type("\x1b[A")
                await r.wait_buffer("show vrrp")
                r.type("\r")
                await r.wait_output("no vrrp_instance")

    asyncio.run(scenario())


def test_history_location_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert shell_cli.default_history_path() == tmp_path / "state" / "lvsconsole" / "history"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert shell_cli.default_history_path() == tmp_path / ".lvsconsole_history"


def test_attached_shell_reconnects_after_the_engine_restarts(conf: Path, short_dir: Path) -> None:
    sock = short_dir / "engine.sock"

    async def scenario() -> None:
        from lvsconsole.engine.control import ControlClient

        async with served_engine(conf, sock):
            link = AttachedLink(await ControlClient.connect(str(sock)), str(sock))
            shell = Shell(link, RecordingSink(), lab_path="")
            assert await shell.run_line("show vrrp")
        assert not await shell.run_line("show vrrp")  # the engine is gone
        assert "did not answer" in shell.sink.text  # type: ignore[attr-defined]
        assert plain_prompt(shell) == "lvsconsole (no engine)> "
        async with served_engine(conf, sock):
            assert await shell.run_line("show vrrp")  # a new connection
        await link.close()

    asyncio.run(scenario())


def plain_prompt(shell: Shell) -> str:
    return "".join(fragment[1] for fragment in shell.prompt_message())


# ---------------------------------------------------------------------------------------------- lab commands


def test_lab_commands_go_to_the_demo_lab_socket(short_dir: Path) -> None:
    from lvsconsole.engine.control import ControlServer

    seen: list[str] = []

    async def lab_handler(text: str, who: str) -> Result:
        seen.append(text.strip())
        return Result(True, f"lab did {text.strip()}", {"node": "rs1"})

    async def scenario() -> None:
        path = str(short_dir / "lab.sock")
        async with ControlServer(path, lab_handler):
            link = FakeLink()
            sink = RecordingSink()
            shell = Shell(link, sink, lab_path=path)
            assert await shell.run_line("lab stop rs1; show vs; lab status")
            assert seen == ["lab stop rs1", "lab status"]
            assert link.ran == [" " * 14 + "show vs"]  # the engine got the rest, columns kept
            assert "lab did lab stop rs1" in sink.text
            # a bad lab command is refused before it is sent, with its column
            assert not await shell.run_line("show vs; lab stop nobody")
            assert seen == ["lab stop rs1", "lab status"]
            assert "column 19: unknown node 'nobody'" in sink.text
            # help mentions the lab commands inside the demo
            assert await shell.run_line("help")
            assert "lab partition" in sink.text

    asyncio.run(scenario())


def test_lab_commands_outside_the_demo_fail_clearly() -> None:
    async def scenario() -> None:
        sink = RecordingSink()
        shell = Shell(FakeLink(), sink, lab_path="")
        assert not await shell.run_line("lab status")
        assert "lab commands work inside 'lvsconsole demo' only" in sink.text

    asyncio.run(scenario())


def test_lab_grammar() -> None:
    from lvsconsole.engine.errors import CommandError
    from lvsconsole.lab.control import LabCommand, lab_completions, parse_lab

    assert parse_lab("lab stop rs1") == LabCommand("stop", node="rs1")
    assert parse_lab("lab kill director2") == LabCommand("kill", node="director2")
    assert parse_lab("lab client 5") == LabCommand("client", count=5)
    assert parse_lab("  lab partition") == LabCommand("partition")
    for text, col, words in (("lab", 4, "incomplete"), ("lab frobnicate", 5, "unknown lab command"),
                             ("lab stop", 9, "expected a node"), ("lab heal now", 10, "expected nothing more"),
                             ("lab client x", 12, "expected a number")):
        with pytest.raises(CommandError) as info:
            parse_lab(text)
        assert info.value.col == col and words in info.value.message, text
    assert [c.text for c in lab_completions("lab st")] == ["status", "stop", "start"]
    assert [c.text for c in lab_completions("lab start ")] == ["director1", "director2", "rs1", "rs2", "client"]
    assert lab_completions("lab partition ") == []
