"""``lab …`` commands: what a face (the shell, the TUI prompt) sends to a running ``lvsconsole demo``.

The demo serves them on its own control socket (the engine's JSON-lines protocol, ``ControlServer``) and
tells the face where through the environment variable ``LVSCONSOLE_LAB_SOCKET``. A face routes a command
whose first word is ``lab`` there instead of to the engine::

    if is_lab_command(text):
        result = await run_lab_command(text)          # a Result, like the engine's
    completions = lab_completions(text, cursor)        # for the prompt's completer

Grammar::

    lab status                      nodes, processes, who holds the VIP, the client's last answers
    lab stop NODE | lab start NODE  stop (SIGTERM) / start a node's service: a real server's HTTP server,
                                    a director's engine, the client's request loop
    lab kill NODE                   SIGKILL (a director dies without a word: no priority-0 advert)
    lab partition | lab heal        cut / restore the directors' view of each other (split brain)
    lab client [N]                  the client's last N answers (default 10)
    lab help
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from lvsconsole.engine.commands import Completion, Result
from lvsconsole.engine.errors import CommandError
from lvsconsole.engine.walk import tokenize

LAB_SOCKET_ENV = "LVSCONSOLE_LAB_SOCKET"
NODES = ("director1", "director2", "rs1", "rs2", "client")
VERBS = ("status", "stop", "start", "kill", "partition", "heal", "client", "help")
NODE_VERBS = ("stop", "start", "kill")

HELP = """\
lab status                  nodes, processes, who holds the VIP, the client's last answers
lab stop NODE               stop a node's service (SIGTERM): rs1/rs2 HTTP server, director engine, client
lab start NODE              start it again
lab kill NODE               SIGKILL it (a director dies without a priority-0 advert)
lab partition               the directors no longer see each other (both become MASTER)
lab heal                    undo the partition
lab client [N]              the client's last N answers through the VIP
NODE: director1, director2, rs1, rs2, client"""


@dataclass(frozen=True)
class LabCommand:
    verb: str
    node: str | None = None
    count: int | None = None


def is_lab_command(text: str) -> bool:
    words = text.split(None, 1)
    return bool(words) and words[0] == "lab"


def parse_lab(text: str, nodes: Sequence[str] = NODES) -> LabCommand:
    """Parse ``lab VERB [ARG]``; CommandError names the offending word and its 1-based column."""
    tokens = tokenize(text, partial=True)
    if not tokens or tokens[0].text != "lab":
        raise CommandError("not a lab command", tokens[0].text if tokens else "", 1)
    if len(tokens) == 1:
        raise CommandError(f"incomplete command after 'lab': expected one of: {', '.join(VERBS)}", "",
                           tokens[0].end + 1)
    verb = tokens[1]
    if verb.text not in VERBS:
        raise CommandError(f"unknown lab command '{verb.text}' (one of: {', '.join(VERBS)})", verb.text,
                           verb.start + 1)
    rest = tokens[2:]
    if verb.text in NODE_VERBS:
        if not rest:
            raise CommandError(f"incomplete command after '{verb.text}': expected a node ({', '.join(nodes)})",
                               "", verb.end + 1)
        if rest[0].text not in nodes:
            raise CommandError(f"unknown node '{rest[0].text}' (one of: {', '.join(nodes)})", rest[0].text,
                               rest[0].start + 1)
        extra = rest[1:]
        result = LabCommand(verb.text, node=rest[0].text)
    elif verb.text == "client":
        count = None
        if rest:
            if not rest[0].text.isdigit():
                raise CommandError(f"unexpected '{rest[0].text}': expected a number", rest[0].text, rest[0].start + 1)
            count = int(rest[0].text)
        extra = rest[1:]
        result = LabCommand("client", count=count)
    else:
        extra = rest
        result = LabCommand(verb.text)
    if extra:
        raise CommandError(f"unexpected '{extra[0].text}': expected nothing more", extra[0].text, extra[0].start + 1)
    return result


def lab_completions(text: str, cursor: int | None = None, nodes: Sequence[str] = NODES) -> list[Completion]:
    """Candidates for the word under the cursor of a ``lab`` command (``text`` is that command alone)."""
    cursor = len(text) if cursor is None else cursor
    head = text[:cursor]
    tokens = tokenize(head, partial=True)
    if tokens and tokens[-1].end == len(head):
        partial = tokens.pop()
        start, word = partial.start, partial.text
    else:
        start, word = len(head), ""
    words = [t.text for t in tokens]
    options: Sequence[str]
    meta = ""
    if not words:
        options, meta = ("lab",), "demo lab"
    elif words == ["lab"]:
        options, meta = VERBS, "lab command"
    elif len(words) == 2 and words[1] in NODE_VERBS:
        options, meta = nodes, "lab node"
    else:
        options = ()
    return [Completion(o, start, "keyword", meta) for o in options if o.startswith(word)]


def lab_socket() -> str | None:
    """The running demo's lab socket, if this face was started by ``lvsconsole demo``."""
    return os.environ.get(LAB_SOCKET_ENV) or None


async def run_lab_command(text: str, path: str | None = None, *, timeout: float = 60.0) -> Result:
    """Send ``text`` to the demo's lab socket (``path``, default from the environment)."""
    from lvsconsole.engine.control import ControlClient, ControlSocketError

    path = path or lab_socket()
    if path is None:
        return Result(False, f"lab commands work inside 'lvsconsole demo' only (no {LAB_SOCKET_ENV})",
                      {"error": {"message": "no lab", "word": "lab", "col": 1}})
    try:
        parse_lab(text)
    except CommandError as exc:
        return Result.error(exc)
    try:
        async with await ControlClient.connect(path, timeout=5.0) as client:
            return await client.request(text, who="lab", timeout=timeout)
    except (OSError, ControlSocketError, TimeoutError) as exc:
        return Result(False, f"the demo lab does not answer at {path}: {exc}", None)
