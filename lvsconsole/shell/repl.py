"""``lvsconsole shell``: a prompt-toolkit REPL over the engine's command language.

    lvsconsole shell -f /etc/keepalived/keepalived.conf [--dry-run]     # an embedded engine
    lvsconsole shell --attach [--socket PATH]                           # a running engine
    lvsconsole shell --attach -c "drain 10.0.0.2:80; show rs" --json     # one line, then exit
    printf 'show vs\\nshow rs\\n' | lvsconsole shell --attach            # commands on stdin

With neither ``-f`` nor ``--attach`` it attaches to the engine at ``--socket`` if one answers there, else
embeds one for the default config. Completion comes from the command grammar plus live names (instances,
virtual and real servers, VIPs); the line is validated as you type (the error names the column); history
persists in ``$XDG_STATE_HOME/lvsconsole/history`` when XDG_STATE_HOME is set, else ``~/.lvsconsole_history``.
``show`` results are coloured tables; ``--json`` prints one JSON object per command instead
(``{"command", "ok", "message", "data"}``). ``-c`` and stdin stop at the first failing command.

Exit status: 0 every command succeeded; 1 a command failed (the rest was not run); 2 the engine could not
be started or reached. Inside ``lvsconsole demo``, ``lab …`` commands go to the demo (lvsconsole.lab.control).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import pwd
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, Protocol, TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output
from prompt_toolkit.shortcuts import print_formatted_text
from prompt_toolkit.validation import ValidationError, Validator

from lvsconsole.engine.commands import Names, Result, Show, completions, parse, split_commands
from lvsconsole.engine.control import ControlClient, ControlSocketError
from lvsconsole.engine.errors import CommandError
from lvsconsole.engine.refs import endpoint_text
from lvsconsole.lab.control import HELP as LAB_HELP
from lvsconsole.lab.control import is_lab_command, lab_completions, lab_socket, parse_lab, run_lab_command
from lvsconsole.shell.cli import DEFAULT_CONFIG, EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, default_history_path
from lvsconsole.shell.render import STYLE, caret_line, plain, render_result, vs_json_label

LOCAL_COMMANDS = ("exit", "quit")


def _who() -> str:
    uid = os.getuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    return f"uid={uid}({user}) via shell"


# ---------------------------------------------------------------------------------------------- engines


class EngineLink(Protocol):
    """What the shell needs from an engine, embedded or attached."""

    description: str

    async def run(self, text: str) -> Result: ...

    def names(self) -> Names: ...

    def states(self) -> list[tuple[str, str]]:
        """(instance, state) for the prompt."""
        ...

    async def refresh(self) -> None:
        """Update what ``names`` and ``states`` return (an attached engine is asked over the socket)."""
        ...


class EmbeddedLink:
    """An engine running in this process (``running_engine``)."""

    def __init__(self, engine: Any, description: str) -> None:
        from lvsconsole.engine.daemon import Engine

        assert isinstance(engine, Engine)
        self.engine = engine
        self.description = description
        self.who = _who()

    async def run(self, text: str) -> Result:
        result: Result = await self.engine.executor.run(text, self.who)
        return result

    def names(self) -> Names:
        names: Names = self.engine.executor.names()
        return names

    def states(self) -> list[tuple[str, str]]:
        return [(i.name, i.state) for i in self.engine.director.snapshot().instances]

    async def refresh(self) -> None:
        return None


def names_from_json(vrrp: Any, vss: Any) -> Names:
    """Live names from the JSON of ``show vrrp`` and ``show vs`` (what an attached shell can ask for)."""
    instances: list[str] = []
    vips: dict[str, None] = {}
    for inst in vrrp if isinstance(vrrp, list) else []:
        instances.append(str(inst["name"]))
        for vip in inst.get("vips", []):
            vips[str(vip)] = None
    vs_names: dict[str, None] = {}
    rs_names: dict[str, None] = {}
    for vs in vss if isinstance(vss, list) else []:
        vs_names[vs_json_label(vs)] = None
        for rs in vs.get("real_servers", []):
            rs_names[endpoint_text(ipaddress.ip_address(rs["address"]), rs.get("port"))] = None
    return Names(tuple(instances), tuple(vs_names), tuple(rs_names), tuple(vips))


class AttachedLink:
    """An engine reached over its control socket; a lost connection is re-established on the next command."""

    def __init__(self, client: ControlClient | None, path: str) -> None:
        self.client = client
        self.path = path
        self.description = f"attached to {path}"
        self._names = Names()
        self._states: list[tuple[str, str]] = []

    async def _connected(self) -> ControlClient:
        if self.client is None:
            self.client = await ControlClient.connect(self.path, timeout=5.0)
        return self.client

    async def run(self, text: str) -> Result:
        try:
            client = await self._connected()
            return await client.request(text, who="shell")
        except (ControlSocketError, OSError, TimeoutError) as exc:
            # never resent (it may have run): the next command connects again
            if self.client is not None:
                with contextlib.suppress(Exception):
                    await self.client.close()
                self.client = None
            self._states = []
            return Result(False, f"the engine at {self.path} did not answer: {exc or type(exc).__name__}",
                          {"error": {"message": str(exc), "word": "", "col": None}})

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None

    def names(self) -> Names:
        return self._names

    def states(self) -> list[tuple[str, str]]:
        return self._states

    async def refresh(self) -> None:
        vrrp = await self.run("show vrrp")
        if not vrrp.ok:
            return
        vss = await self.run("show vs")
        with contextlib.suppress(KeyError, TypeError, ValueError):
            self._names = names_from_json(vrrp.data, vss.data if vss.ok else [])
            if isinstance(vrrp.data, list):
                self._states = [(str(i["name"]), str(i["state"])) for i in vrrp.data]


# ---------------------------------------------------------------------------------------------- output


class Sink:
    """Where results go: formatted text (coloured on a terminal) or plain text; errors to ``err``."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None, *, color: bool | None = None,
                 output: Output | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        if color is None:
            color = self.out.isatty() and not os.environ.get("NO_COLOR")
        self.color = color
        self.output = output

    def write(self, text: FormattedText, *, error: bool = False) -> None:
        stream = self.err if error else self.out
        if self.color and (self.output is not None or stream.isatty()):
            print_formatted_text(text, end="", style=STYLE, output=self.output,
                                 file=None if self.output is not None else stream)
        else:
            stream.write(plain(text))
            stream.flush()

    def write_json(self, obj: Any) -> None:
        self.out.write(json.dumps(obj, default=str) + "\n")
        self.out.flush()


class RecordingSink(Sink):
    """Keeps what was written (for tests and embedding the shell elsewhere)."""

    def __init__(self) -> None:
        super().__init__(color=False)
        self.items: list[tuple[str, bool]] = []

    def write(self, text: FormattedText, *, error: bool = False) -> None:
        self.items.append((plain(text), error))

    def write_json(self, obj: Any) -> None:
        self.items.append((json.dumps(obj, default=str) + "\n", False))

    @property
    def text(self) -> str:
        return "".join(t for t, _ in self.items)


# ---------------------------------------------------------------------------------------------- the shell


class Shell:
    """Runs command lines against an engine link and prints their results."""

    def __init__(self, link: EngineLink, sink: Sink, *, json_output: bool = False,
                 lab_path: str | None = None) -> None:
        self.link = link
        self.sink = sink
        self.json_output = json_output
        self.lab_path = lab_path if lab_path is not None else lab_socket()
        self.finished = False
        """Set by ``exit`` / ``quit``."""

    async def run_line(self, line: str, *, where: str = "") -> bool:
        """``cmd; cmd; …`` in order; False at the first failure (the rest is not run)."""
        for offset, piece in split_commands(line):
            if not await self.run_one(line, offset, piece, where=where):
                return False
            if self.finished:
                break
        return True

    async def run_one(self, line: str, offset: int, piece: str, *, where: str = "") -> bool:
        word = piece.strip()
        if word in LOCAL_COMMANDS:
            self.finished = True
            return True
        padded = " " * offset + piece  # columns of errors count in the whole line
        topic: str | None = None
        if is_lab_command(piece):
            result = await run_lab_command(padded, self.lab_path)
        else:
            with contextlib.suppress(CommandError):
                command = parse(piece)
                if isinstance(command, Show):
                    topic = command.topic
            result = await self.link.run(padded)
            if word == "help" and result.ok and self.lab_path:
                result = Result(True, f"{result.message}\n\n{LAB_HELP}", result.data)
        self.show(line, word, result, topic, where)
        return result.ok

    def show(self, line: str, command: str, result: Result, topic: str | None, where: str = "") -> None:
        if self.json_output:
            self.sink.write_json({"command": command, **result.as_json()})
            return
        if result.ok:
            self.sink.write(render_result(result, topic))
            return
        prefix = f"{where}: " if where else ""
        self.sink.write(FormattedText([("class:error", f"{prefix}error: "), ("", result.message.rstrip()),
                                       ("", "\n")]), error=True)
        error = result.data.get("error") if isinstance(result.data, dict) else None
        col = error.get("col") if isinstance(error, dict) else None
        if isinstance(col, int) and col >= 1 and col <= len(line) + 1:
            self.sink.write(caret_line(line, col), error=True)

    # -- prompt helpers

    def candidates(self, text: str, cursor: int) -> list[tuple[str, int, str]]:
        """(word, start, meta) for the word under the cursor."""
        head = text[:cursor]
        pieces = split_commands(head + "x")
        offset = pieces[-1][0] if pieces else 0
        segment = head[offset:]
        out: list[tuple[str, int, str]] = []
        if self.lab_path:
            out += [(c.text, offset + c.start, c.meta) for c in lab_completions(segment)]
            if is_lab_command(segment):
                return out
        for c in completions(text, cursor, self.link.names()):
            out.append((c.text, c.start, c.meta or c.kind))
        if not segment.strip() or (len(segment.split()) == 1 and not segment[-1:].isspace()):
            partial = segment.strip()
            start = offset + len(segment) - len(partial)
            out += [(w, start, "leave the shell") for w in LOCAL_COMMANDS if w.startswith(partial) and offset == 0]
        return out

    def check(self, text: str) -> None:
        """Raise CommandError (with a column in ``text``) for the first command that does not parse."""
        if not text.strip():
            return
        for offset, piece in split_commands(text):
            if piece.strip() in LOCAL_COMMANDS:
                continue
            if is_lab_command(piece):
                parse_lab(" " * offset + piece)
            else:
                parse(piece, offset=offset)

    def prompt_message(self) -> FormattedText:
        parts: list[tuple[str, str]] = [("class:prompt", "lvsconsole")]
        states = self.link.states()
        if not states and isinstance(self.link, AttachedLink) and self.link.client is None:
            parts += [("", " "), ("class:prompt.fault", "(no engine)")]
        for name, state in states[:3]:
            parts += [("", " "), (f"class:prompt.{state.lower()}", f"{name}:{state}")]
        parts.append(("class:prompt", "> "))
        return FormattedText(parts)


class ShellCompleter(Completer):
    """Completion from the command grammar (``commands.completions``) and the engine's live names."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        cursor = document.cursor_position
        for word, start, meta in self.shell.candidates(document.text, cursor):
            yield Completion(word, start_position=start - cursor, display_meta=meta)


class ShellValidator(Validator):
    """Parse errors as you type, pointing at the offending word."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell

    def validate(self, document: Document) -> None:
        try:
            self.shell.check(document.text)
        except CommandError as exc:
            col = exc.col if exc.col is not None else len(document.text) + 1
            raise ValidationError(cursor_position=max(0, min(len(document.text), col - 1)),
                                  message=str(exc)) from None


def make_session(shell: Shell, *, history: History | None = None, input: Input | None = None,
                 output: Output | None = None) -> PromptSession[str]:
    return PromptSession(
        message=shell.prompt_message, completer=ShellCompleter(shell), validator=ShellValidator(shell),
        validate_while_typing=True, complete_while_typing=True, history=history or InMemoryHistory(),
        auto_suggest=AutoSuggestFromHistory(), style=STYLE, input=input, output=output,
    )


async def interactive(shell: Shell, *, history: History | None = None, input: Input | None = None,
                      output: Output | None = None, session: PromptSession[str] | None = None) -> int:
    """The REPL until ``exit``, ``quit`` or end of input; the status of the last command."""
    if session is None:
        session = make_session(shell, history=history, input=input, output=output)
    status = EXIT_OK
    while not shell.finished:
        try:
            line = await session.prompt_async()
        except KeyboardInterrupt:
            continue
        except EOFError:
            break
        if not line.strip():
            continue
        status = EXIT_OK if await shell.run_line(line) else EXIT_FAILED
        await shell.link.refresh()
    return status


async def run_script(shell: Shell, lines: Iterable[str], name: str = "stdin") -> int:
    """Commands one line at a time (``#`` starts a comment line); stop at the first failure."""
    for number, line in enumerate(lines, 1):
        text = line.rstrip("\n")
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        if not await shell.run_line(text, where=f"{name}:{number}"):
            return EXIT_FAILED
        if shell.finished:
            break
    return EXIT_OK


# ---------------------------------------------------------------------------------------------- entry


async def _live(path: str) -> bool:
    if not path or not os.path.exists(path):
        return False
    try:
        client = await ControlClient.connect(path, timeout=2.0)
    except (ControlSocketError, OSError):
        return False
    await client.close()
    return True


async def amain(args: argparse.Namespace, *, sink: Sink | None = None, stdin: IO[str] | None = None,
                input: Input | None = None, output: Output | None = None) -> int:
    """The shell for parsed ``args``; ``stdin``/``input``/``output`` are for tests and embedding."""
    from lvsconsole.config.lexer import ConfigReadError
    from lvsconsole.engine.daemon import running_engine
    from lvsconsole.engine.store import ConfigRefused
    from lvsconsole.paths import history_dir_for

    stdin = stdin or sys.stdin
    sink = sink or Sink()
    metrics = getattr(args, "metrics", None)
    attach = args.attach or (args.file is None and await _live(args.socket))
    if attach and metrics is not None:
        print("lvsconsole shell: --metrics is for an embedded engine (-f FILE); an attached engine serves its own "
              "(lvsconsole run --metrics)", file=sink.err)
        return EXIT_UNREACHABLE
    async with contextlib.AsyncExitStack() as stack:
        link: EngineLink
        try:
            if attach:
                attached = AttachedLink(await ControlClient.connect(args.socket), args.socket)
                stack.push_async_callback(attached.close)
                await attached.refresh()
                link = attached
            else:
                path = args.file or DEFAULT_CONFIG
                engine = await stack.enter_async_context(running_engine(
                    path, dry_run=args.dry_run, socket_path=args.socket or None, config_id=args.config_id,
                    metrics=metrics, history_dir=history_dir_for(getattr(args, "history_dir", None), args.dry_run)))
                link = EmbeddedLink(engine, f"embedded engine for {path}" + (" (dry run)" if args.dry_run else ""))
        except ConfigReadError as exc:
            print(f"lvsconsole shell: {exc.filename or args.file}: cannot read: {exc.strerror or exc}", file=sink.err)
            return EXIT_UNREACHABLE
        except ConfigRefused as exc:
            for diag in exc.diagnostics:
                print(diag, file=sink.err)
            print(f"lvsconsole shell: {args.file or DEFAULT_CONFIG}: {exc.reason}; not started", file=sink.err)
            return EXIT_UNREACHABLE
        except (ControlSocketError, OSError) as exc:
            print(f"lvsconsole shell: {exc}", file=sink.err)
            return EXIT_UNREACHABLE
        shell = Shell(link, sink, json_output=args.json)
        if args.commands is not None:
            return EXIT_OK if await shell.run_line(args.commands, where="-c") else EXIT_FAILED
        if input is None and not stdin.isatty():
            return await run_script(shell, stdin)
        history = _history(args.history)
        if input is None and not args.json:
            print(f"lvsconsole shell: {link.description}; 'help' lists the commands, Tab completes, "
                  "Ctrl-D leaves", file=sink.err)
        return await interactive(shell, history=history, input=input, output=output)


def _history(option: str | None) -> History:
    if option == "":
        return InMemoryHistory()
    path = Path(option) if option else default_history_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
    except OSError:
        return InMemoryHistory()
    return FileHistory(str(path))
