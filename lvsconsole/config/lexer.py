"""Tokenizer and block-tree builder for keepalived.conf.

This module turns configuration text into a tree of statements (`Node`) made of words (`Word`), each
word carrying the file, line and column where it physically sits.  It implements the lexical layer of
keepalived 2.x (``lib/parser.c``): ``#``/``!`` comments, quoting and escapes, braces anywhere on a
line, ``include`` (and its ``includer``/``includem``/``includew``/``includeb``/``includea`` variants)
with globs and csh brace expansion, ``$NAME=value`` parameters with lazy recursive expansion and
multi-line definitions, the predefined ``${_PWD}``, ``${_INSTANCE}``, ``${_RANDOM}``, ``${_ENV}``,
``${_HASH}``, ``${_BANG}``, ``@id``/``@^id`` conditional lines and ``~SEQ``/``~SEQx``/``~LST`` line
generators.  It knows nothing about keywords: splitting ``auth_type PASS auth_pass 1111`` into two
statements is the model builder's job.

Nothing here raises on bad input: every problem becomes a `Diagnostic` with a location.  The only
exception is `ConfigReadError`, raised by `parse_file` when the top-level file cannot be read.

Speed: plain lines (no quote, backslash, ``$``, leading ``@``/``~``) go through ``str.split`` with
columns found by ``str.find``; only lines that need it take the character-level path.

Columns are 1-based character offsets (a tab counts as one column).  Words produced by a parameter
expansion carry the column of the ``$`` that produced them.
"""

from __future__ import annotations

import contextlib
import gc
import glob as _glob
import os
import random
import re
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from lvsconsole.config.diagnostics import Diagnostic, Location, error, warning

__all__ = [
    "ConfigReadError",
    "Node",
    "ParseResult",
    "Word",
    "default_config_id",
    "parse_file",
    "parse_text",
]


class Word(NamedTuple):
    """One word of a statement after comments, quotes, $VARs, @conditionals and ~SEQ are resolved."""

    text: str
    file: str
    line: int
    col: int
    quoted: bool = False

    @property
    def loc(self) -> Location:
        return Location(self.file, self.line, self.col)


@dataclass(slots=True)
class Node:
    """A statement: a keyword, its arguments on the same line, and its block when it opens one."""

    keyword: Word
    args: list[Word]
    children: list[Node] | None = None
    close: Location | None = None


@dataclass(slots=True)
class ParseResult:
    nodes: list[Node]
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


class ConfigReadError(OSError):
    """The top-level configuration file cannot be read (``lvsconsole validate`` exits 2)."""


def default_config_id() -> str:
    """keepalived's default ``-i``: the first label of the host name."""
    try:
        host = socket.gethostname()
    except OSError:  # pragma: no cover - gethostname practically never fails
        return ""
    return host.split(".", 1)[0]


def parse_file(path: str, *, config_id: str | None = None) -> ParseResult:
    """Read and parse a configuration file and everything it includes.

    Raises `ConfigReadError` if `path` itself cannot be read; every other problem (including an
    include that cannot be read) is reported as a diagnostic.
    """
    apath = os.path.abspath(path)
    try:
        with open(apath, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ConfigReadError(exc.errno, exc.strerror or str(exc), path) from exc
    except ValueError as exc:  # embedded NUL or unencodable name
        raise ConfigReadError(0, str(exc), path) from exc
    text = data.decode("utf-8", "surrogateescape")
    parser = _Parser(config_id)
    return parser.run(text, apath, os.path.dirname(apath), real=_realpath(apath))


def parse_text(
    text: str,
    *,
    filename: str = "<string>",
    config_id: str | None = None,
    base_dir: str | None = None,
    first_line: int = 1,
) -> ParseResult:
    """Parse configuration text.  `filename` is recorded in every `Word`; `base_dir` (default: the
    directory of `filename` if it names a file, else the current directory) anchors relative
    includes and ``${_PWD}``; `first_line` is the line number of the text's first line (config/incremental.py
    re-parses a span of a file)."""
    if base_dir is None:
        base_dir = os.getcwd() if filename.startswith("<") else os.path.dirname(os.path.abspath(filename))
    real = None if filename.startswith("<") else _realpath(os.path.abspath(filename))
    return _Parser(config_id).run(text, filename, os.path.abspath(base_dir), real=real, first_line=first_line)


# ---------------------------------------------------------------------------------------------------
# Implementation

_INCLUDE_KINDS: dict[str, str] = {
    "include": "",
    "includer": "r",
    "includem": "m",
    "includew": "w",
    "includeb": "b",
    "includea": "a",
}

# Characters that keep a "keyword args {" line off the fast path.
_SPECIAL_CHARS = re.compile(r"[#!\"'$\\]").search
# Lines that need the character-level path: quotes, escapes, parameters (plus a leading @ or ~).
_HARD = re.compile(r"[\"'$\\]").search
# Words and braces of a line without quotes or escapes.
_BRACE_TOKEN = re.compile(r"[{}]|[^\s{}]+")
# The longest prefix of a line without an unquoted, unescaped comment character.
_NOT_COMMENT = re.compile(r"""(?:[^\\"'#!]+|\\.|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')*""", re.S)
_INCLUDE_LINE = re.compile(r"include[rmwba]?\s")
_DEFINITION = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)=")
_REFERENCE = re.compile(
    r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:[ \t]+([^{}]*?))?[ \t]*\}|([A-Za-z_][A-Za-z0-9_]*)(?=[\s,)]|\Z))"
)
_RANDOM_ARGS = re.compile(r"(\d{1,18})(?:[ \t]+(\d{1,18}))?")
_ENV_ARG = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SEQ_NUMBER = re.compile(r"\s*([+-]?)(0[xX][0-9a-fA-F]{1,16}|\d{1,18})\s*")

_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "E": "\x1b",
}
_HEX = frozenset("0123456789abcdefABCDEF")
_OCT = frozenset("01234567")

_MAX_INCLUDE_DEPTH = 32
_MAX_EXPANSIONS = 1_000  # parameter substitutions on one line
_MAX_EXPANSION_WORK = 50_000_000  # characters rewritten by parameter substitution in one parse
_MAX_LINE = 100_000  # characters of one line after expansion
_MAX_DEPTH = 40  # nesting of ~SEQ/~LST and multi-line expansions
_MAX_GENERATED = 1_000_000  # lines generated by ~SEQ/~LST in one parse
_BULK_OBJECTS = 50_000
"""New containers a parse must have made before promoting them is worth asking whether the caller froze objects:
gc.get_freeze_count() walks the whole permanent generation, which in a console or daemon that froze its heap
(tui/link.py, engine/daemon.py) is millions of objects, far more than a small or incremental parse costs."""

_new_tuple = tuple.__new__


@contextlib.contextmanager
def _bulk_allocation() -> Iterator[None]:
    """Build a large acyclic tree without paying for the cyclic GC.

    A 100k-line configuration allocates a few hundred thousand small containers.  With the GC running,
    its generational passes traverse them again and again (more than the parse itself costs).  So the
    GC is paused while parsing, and afterwards the new objects are promoted straight to the oldest
    generation (gc.freeze() + gc.unfreeze() are two O(1) list splices) instead of being traversed by a
    young-generation pass.  Nothing is lost: the objects stay tracked and are seen by later full
    collections.  Skipped when the caller has frozen objects of its own or has disabled the GC, and for a
    parse too small for the promotion to matter (see _BULK_OBJECTS).
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if gc.get_count()[0] >= _BULK_OBJECTS and gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        gc.enable()


def _realpath(path: str) -> str | None:
    try:
        return os.path.realpath(path)
    except (OSError, ValueError):
        return None


def _decomment(line: str) -> str:
    """The line up to its first '#' or '!' outside quotes and not escaped by a backslash."""
    m = _NOT_COMMENT.match(line)
    end = m.end() if m else len(line)
    if end < len(line) and line[end] in "#!":
        return line[:end]
    return line  # no comment (the scan may have stopped at an open quote or a final backslash)


def _brace_group(pattern: str) -> tuple[int, int, list[str]] | None:
    """The first ``{a,b,...}`` group of a pattern: (start, end, alternatives), or None."""
    depth = 0
    start = -1
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}" and depth:
            depth -= 1
            if depth == 0:
                parts: list[str] = []
                level = 0
                seg = j = start + 1
                while j < i:
                    d = pattern[j]
                    if d == "\\":
                        j += 2
                        continue
                    if d == "{":
                        level += 1
                    elif d == "}":
                        level -= 1
                    elif d == "," and level == 0:
                        parts.append(pattern[seg:j])
                        seg = j + 1
                    j += 1
                parts.append(pattern[seg:i])
                if len(parts) > 1:
                    return start, i, parts
                # "{x}" is not a brace group for glob: keep it and look further on
        i += 1
    return None


def _brace_expand(pattern: str, limit: int = 1000) -> list[str]:
    """csh-style ``{a,b}`` expansion, nested, depth first and left to right (like GLOB_BRACE)."""
    done: list[str] = []
    todo = [pattern]  # a stack: the next pattern to look at is the last one
    while todo and len(done) < limit:
        p = todo.pop()
        group = _brace_group(p)
        if group is None:
            done.append(p)
            continue
        start, end, parts = group
        head, tail = p[:start], p[end + 1 :]
        todo.extend(head + part + tail for part in reversed(parts))
        del todo[:-limit]
    return done


class _Frame(NamedTuple):
    node: Node | None  # None: a '{' that had no statement to attach to
    children: list[Node]
    opened: Location


class _Parser:
    def __init__(self, config_id: str | None) -> None:
        self.config_id = default_config_id() if config_id is None else config_id
        self.diags: list[Diagnostic] = []
        self.files: list[str] = []
        self._files_seen: set[str] = set()
        self.root: list[Node] = []
        self._stack: list[_Frame] = [_Frame(None, self.root, Location("", 0, 0))]
        self._cur: list[Node] = self.root
        self._last: Node | None = None
        self._defs: dict[str, str | list[str]] = {}
        self._mldef: list[str] | None = None  # lines of a multi-line definition being collected
        self._mldef_name = ""
        self._chain: list[tuple[str, str | None]] = []  # (shown path, realpath) of open files
        self._fname = ""
        self._dir = ""
        self._budget = _MAX_GENERATED  # lines ~SEQ/~LST may still generate; -1 once exceeded
        self._work_left = _MAX_EXPANSION_WORK
        self._warned: set[tuple[str, Location]] = set()
        self._rng = random.Random()

    # -- entry --------------------------------------------------------------------------------------

    def run(self, text: str, fname: str, dirname: str, *, real: str | None, first_line: int = 1) -> ParseResult:
        if real is not None or not fname.startswith("<"):
            self._note_file(fname)
        self._chain.append((fname, real))
        with _bulk_allocation():
            try:
                self._parse_text(text, fname, dirname, first_line)
            except RecursionError:  # pragma: no cover - the nesting limits should prevent this
                self.diags.append(error("configuration nested too deeply", Location(fname, 1, 1)))
        self._chain.pop()
        return ParseResult(self.root, _dedupe(self.diags), self.files)

    def _note_file(self, fname: str) -> None:
        if fname not in self._files_seen:
            self._files_seen.add(fname)
            self.files.append(fname)

    # -- tree building ------------------------------------------------------------------------------

    def _stmt(self, words: list[Word]) -> None:
        kw = words[0]
        if not kw.quoted and kw.text in _INCLUDE_KINDS:
            self._include(kw, words[1:])
            return
        node = Node(kw, words[1:])
        self._cur.append(node)
        self._last = node

    def _open(self, loc: Location) -> None:
        last = self._last
        if last is not None and last.children is None:
            children: list[Node] = []
            last.children = children
            self._stack.append(_Frame(last, children, loc))
            self._cur = children
        else:
            self.diags.append(error("unexpected '{'", loc))
            self._stack.append(_Frame(None, self._cur, loc))
        self._last = None

    def _close(self, loc: Location, base: int) -> None:
        self._last = None
        if len(self._stack) <= base:
            self.diags.append(error("extra '}'", loc))
            return
        frame = self._stack.pop()
        if frame.node is not None:
            frame.node.close = loc
        self._cur = self._stack[-1].children

    def _emit(self, words: list[Word], base: int) -> None:
        """Split a line's words at unquoted braces into statements and block events."""
        seg: list[Word] = []
        for w in words:
            t = w.text
            if (t == "{" or t == "}") and not w.quoted:
                if seg:
                    self._stmt(seg)
                    seg = []
                if t == "{":
                    self._open(w.loc)
                else:
                    self._close(w.loc, base)
            else:
                seg.append(w)
        if seg:
            self._stmt(seg)

    def _end_file(self, base: int) -> None:
        unclosed = self._stack[base:]
        del self._stack[base:]
        for frame in unclosed:
            if frame.node is not None:
                kw = frame.node.keyword
                self.diags.append(error(f"missing '}}' for block '{kw.text}' opened here", kw.loc))
            else:
                self.diags.append(error("missing '}' for '{' opened here", frame.opened))
        self._cur = self._stack[-1].children
        self._last = None

    # -- one file -------------------------------------------------------------------------------------

    def _parse_text(self, text: str, fname: str, dirname: str, first_line: int = 1) -> None:
        saved = (self._fname, self._dir)
        self._fname, self._dir = fname, dirname
        base = len(self._stack)
        stack = self._stack
        self._last = None
        new = _new_tuple
        word_cls = Word
        loc_cls = Location
        node_cls = Node
        includes = _INCLUDE_KINDS
        cur = self._cur
        lineno = first_line - 1
        for line in text.split("\n"):
            lineno += 1
            if self._mldef is not None:
                self._continue_definition(line)
                continue
            words = line.split()
            if not words:
                continue
            first = words[0]
            if "{" in line or "}" in line:
                if first == "}" and len(words) == 1:
                    # the most common brace line: a lone '}'
                    if len(stack) > base:
                        frame = stack.pop()
                        if frame.node is not None:
                            frame.node.close = new(loc_cls, (fname, lineno, line.find("}") + 1))
                        cur = self._cur = stack[-1].children
                        self._last = None
                    else:
                        self._close(new(loc_cls, (fname, lineno, line.find("}") + 1)), base)
                    continue
                if (
                    words[-1] == "{"
                    and first not in includes
                    and line.count("{") == 1
                    and "}" not in line
                    and _SPECIAL_CHARS(line) is None
                    and first[0] not in "@~"
                ):
                    # the next most common: 'keyword args {'
                    open_col = line.rfind("{") + 1
                    if len(words) > 1:
                        pos = line.find(first)
                        kw = new(word_cls, (first, fname, lineno, pos + 1, False))
                        pos += len(first)
                        args = []
                        for w in words[1:-1]:
                            pos = line.find(w, pos)
                            args.append(new(word_cls, (w, fname, lineno, pos + 1, False)))
                            pos += len(w)
                        children: list[Node] = []
                        node = node_cls(kw, args, children)
                        cur.append(node)
                        stack.append(_Frame(node, children, new(loc_cls, (fname, lineno, open_col))))
                        cur = self._cur = children
                        self._last = None
                    else:
                        self._open(new(loc_cls, (fname, lineno, open_col)))
                        cur = self._cur
                    continue
                self._special_line(line, words, lineno, base)
                cur = self._cur
                continue
            if (
                "#" in line
                or "!" in line
                or '"' in line
                or "'" in line
                or "$" in line
                or "\\" in line
                or first[0] in "@~"
            ):
                self._special_line(line, words, lineno, base)
                cur = self._cur
                continue
            # plain line: words separated by whitespace, nothing else
            if first in includes:
                self._plain_stmt(line, words, lineno)
                cur = self._cur
                continue
            pos = line.find(first)
            kw = new(word_cls, (first, fname, lineno, pos + 1, False))
            pos += len(first)
            args = []
            for w in words[1:]:
                pos = line.find(w, pos)
                args.append(new(word_cls, (w, fname, lineno, pos + 1, False)))
                pos += len(w)
            node = node_cls(kw, args)
            cur.append(node)
            self._last = node
        if self._mldef is not None:
            self._finish_definition()  # a multi-line definition ends with its file
        self._end_file(base)
        self._fname, self._dir = saved

    def _special_line(self, line: str, words: list[str], lineno: int, base: int) -> None:
        """A line with comments, braces, quotes, escapes, parameters, conditionals or generators."""
        if _HARD(line) is not None or words[0][0] in "@~" or words[0] in _INCLUDE_KINDS:
            self._slow_line(line, lineno, base)
            return
        # comments and/or braces only: no quotes or escapes to respect
        h = line.find("#")
        b = line.find("!")
        if h >= 0 or b >= 0:
            line = line[: (b if h < 0 else h if b < 0 else min(h, b))]
            words = line.split()
            if not words:
                return
        if "{" not in line and "}" not in line:
            self._plain_stmt(line, words, lineno)
            return
        fname = self._fname
        new = _new_tuple
        if words.count("{") + words.count("}") == line.count("{") + line.count("}"):
            pos = 0
            objs = []
            for w in words:
                pos = line.find(w, pos)
                objs.append(new(Word, (w, fname, lineno, pos + 1, False)))
                pos += len(w)
        else:
            objs = [new(Word, (m.group(), fname, lineno, m.start() + 1, False)) for m in _BRACE_TOKEN.finditer(line)]
        self._emit(objs, base)

    def _plain_stmt(self, line: str, words: list[str], lineno: int) -> None:
        fname = self._fname
        new = _new_tuple
        pos = 0
        objs = []
        for w in words:
            pos = line.find(w, pos)
            objs.append(new(Word, (w, fname, lineno, pos + 1, False)))
            pos += len(w)
        self._stmt(objs)

    # -- multi-line definitions ---------------------------------------------------------------------

    def _continue_definition(self, line: str) -> None:
        lines = self._mldef
        assert lines is not None
        if not line.strip("\r"):
            self._finish_definition()  # a truly empty line ends the definition
            return
        text = _decomment(line).strip()
        if not text:
            return  # comment-only lines do not end a definition
        if text.endswith("\\"):
            seg = text[:-1].rstrip()
            if seg:
                lines.append(seg)
            return
        lines.append(text)
        self._finish_definition()

    def _finish_definition(self) -> None:
        lines = self._mldef
        self._mldef = None
        if lines is not None and len(lines) < 2:
            self._defs[self._mldef_name] = lines[0] if lines else ""

    # -- slow path ----------------------------------------------------------------------------------

    def _slow_line(self, line: str, lineno: int, base: int) -> None:
        text = _decomment(line)
        stripped = text.lstrip()
        start = len(text) - len(stripped)
        stripped = stripped.rstrip()
        if not stripped:
            return
        cols = list(range(start + 1, start + len(stripped) + 1))
        self._logical(stripped, cols, lineno, base, 0)

    def _logical(self, text: str, cols: list[int], lineno: int, base: int, depth: int) -> None:
        """Process one logical line: conditionals, definitions, generators, expansion, then words."""
        if depth > _MAX_DEPTH:
            self.diags.append(error("~SEQ/~LST or multi-line parameters nested too deeply", self._loc(lineno, cols)))
            return
        extra: list[tuple[str, int]] = []
        may_expand = True
        for _round in range(64):
            if not text:
                return
            c0 = text[0]
            if c0 == "@":
                kept = self._conditional(text)
                if kept is None:
                    return
                text, cols = text[kept:], cols[kept:]
                continue
            if c0 == "$":
                m = _DEFINITION.match(text)
                if m is not None:
                    self._define(m.group(1), text[m.end() :])
                    return
            if c0 == "~" and text[1:4] in ("SEQ", "LST"):
                self._generator(text, cols, lineno, base, depth)
                return
            if may_expand and "$" in text:
                text, cols, more, changed = self._expand(text, cols, lineno)
                extra = more + extra
                may_expand = False
                if changed and text and text[0] in "@$~":
                    may_expand = True
                    continue
            break
        if text:
            if _INCLUDE_LINE.match(text):
                # like keepalived, an include line is not split at braces: {a,b} is a glob
                words = self._tokenize(text, cols, lineno, braces=False)
                self._include(words[0], words[1:])
            else:
                words = self._tokenize(text, cols, lineno)
                if words:
                    self._emit(words, base)
        for etext, ecol in extra:
            etext = etext.strip()
            if etext:
                if self._work_left < 0:
                    break
                self._logical(etext, [ecol] * len(etext), lineno, base, depth + 1)

    def _warn(self, message: str, loc: Location) -> None:
        if (message, loc) not in self._warned:
            self._warned.add((message, loc))
            self.diags.append(warning(message, loc))

    def _loc(self, lineno: int, cols: list[int], i: int = 0) -> Location:
        return Location(self._fname, lineno, cols[i] if i < len(cols) else (cols[-1] if cols else 1))

    def _conditional(self, text: str) -> int | None:
        """For a line starting with '@': the offset of the kept text, or None to drop the line."""
        negate = text.startswith("@^")
        i = 2 if negate else 1
        j = i
        n = len(text)
        while j < n and not text[j].isspace():
            j += 1
        if j >= n:
            return None  # nothing after the id
        ident = text[i:j]
        if (ident == self.config_id) == negate:
            return None
        while j < n and text[j].isspace():
            j += 1
        return j

    def _define(self, name: str, value: str) -> None:
        value = value.lstrip()
        if value.endswith("\\"):
            first = value[:-1].rstrip()
            lines = [first] if first else []
            self._defs[name] = lines
            self._mldef = lines
            self._mldef_name = name
        else:
            self._defs[name] = value

    # -- parameters -----------------------------------------------------------------------------------

    def _expand(self, text: str, cols: list[int], lineno: int) -> tuple[str, list[int], list[tuple[str, int]], bool]:
        """Substitute parameters left to right, rescanning substituted text (so recursively).

        Returns the new text and columns, the further lines of a multi-line parameter, and whether
        anything changed."""
        extra: list[tuple[str, int]] = []
        changed = False
        steps = 0
        i = text.find("$")
        while i >= 0:
            m = _REFERENCE.match(text, i)
            if m is None:
                i = text.find("$", i + 1)
                continue
            braced, params, plain = m.group(1, 2, 3)
            name = braced or plain
            loc = self._loc(lineno, cols, i)
            value = self._lookup(name, params, m.end() == len(text), m.group(), loc)
            if value is None:
                i = text.find("$", i + 1)
                continue
            if isinstance(value, list):
                first = value[0] if value else ""
                extra = [(v, cols[i]) for v in value[1:]] + extra
            else:
                first = value
            steps += 1
            new_len = len(text) - (m.end() - i) + len(first)
            self._work_left -= new_len
            if steps > _MAX_EXPANSIONS or self._work_left < 0 or new_len > _MAX_LINE:
                self.diags.append(error(f"expansion of parameter '${name}' does not terminate", loc))
                return text, cols, [], changed
            col = cols[i]
            text = text[:i] + first + text[m.end() :]
            cols = cols[:i] + [col] * len(first) + cols[m.end() :]
            changed = True
            if i == 0 and first.lstrip().startswith("~"):
                break  # a generator: expanded when its lines are produced
            i = text.find("$", i)
        return text, cols, extra, changed

    def _lookup(self, name: str, params: str | None, at_end: bool, ref: str, loc: Location) -> str | list[str] | None:
        value = self._defs.get(name)
        if value is not None:
            if params:
                self._warn(f"parameter '${name}' takes no arguments in '{ref}'", loc)
                return None
            if isinstance(value, list) and not at_end:
                self._warn(f"multi-line parameter '${name}' can only be used at the end of a line", loc)
                return None
            return value
        if name == "_HASH" and not params:
            return "#"
        if name == "_BANG" and not params:
            return "!"
        if name == "_PWD" and not params:
            return self._dir
        if name == "_INSTANCE" and not params:
            return self.config_id
        if name == "_RANDOM":
            lo, hi = 0, 32767
            if params:
                pm = _RANDOM_ARGS.fullmatch(params)
                if pm is None:
                    self._warn(f"invalid arguments in '{ref}'", loc)
                    return None
                lo = int(pm.group(1))
                if pm.group(2) is not None:
                    hi = int(pm.group(2))
                if lo > hi:
                    lo, hi = hi, lo
            return str(self._rng.randint(lo, hi))
        if name == "_ENV":
            if not params or _ENV_ARG.fullmatch(params) is None:
                self._warn(f"invalid arguments in '{ref}'", loc)
                return None
            env = os.environ.get(params)
            if env is None:
                self._warn(f"environment variable '{params}' is not set", loc)
                return ""
            return env
        self._warn(f"undefined parameter '${name}'", loc)
        return None

    # -- ~SEQ / ~LST ----------------------------------------------------------------------------------

    def _generator(self, text: str, cols: list[int], lineno: int, base: int, depth: int) -> None:
        if self._budget < 0:
            return
        loc = self._loc(lineno, cols)
        if text[1:4] == "SEQ":
            parsed = self._parse_seq(text, cols, lineno, loc)
        else:
            parsed = self._parse_lst(text, loc)
        if parsed is None:
            return
        names, sets, count, rest = parsed
        if count > self._budget:
            self._budget = -1
            self.diags.append(error(f"{text[:4]} generates too many lines", loc))
            return
        self._budget -= count
        rest_text, rest_cols = text[rest:], cols[rest:]
        defs = self._defs
        for values in sets:
            for var, val in zip(names, values, strict=True):
                defs[var] = val
            if rest_text:
                self._logical(rest_text, rest_cols, lineno, base, depth + 1)
                if self._budget < 0:
                    break

    def _parse_seq(
        self, text: str, cols: list[int], lineno: int, loc: Location
    ) -> tuple[list[str], Iterable[list[str]], int, int] | None:
        kind = "~SEQ"
        p = 4
        hexfmt = text.startswith("x", p)
        if hexfmt:
            p += 1
            kind = "~SEQx"
        n = len(text)

        def bad(what: str = "definition") -> None:
            self.diags.append(error(f"invalid {kind} {what} '{text}'", loc))

        while p < n and text[p] in " \t":
            p += 1
        if p >= n or text[p] != "(":
            bad()
            return None
        p += 1
        while p < n and text[p] in " \t":
            p += 1
        v0 = p
        while p < n and text[p] not in " \t,)":
            p += 1
        var = text[v0:p]
        while p < n and text[p] in " \t":
            p += 1
        if not var or p >= n or text[p] != ",":
            bad()
            return None
        close = text.find(")", p)
        if close < 0:
            bad()
            return None
        args, _acols, more, _changed = self._expand(text[p + 1 : close], cols[p + 1 : close], lineno)
        if more:
            bad()
            return None
        nums: list[int] = []
        for part in args.split(","):
            nm = _SEQ_NUMBER.fullmatch(part)
            if nm is None:
                bad()
                return None
            digits = nm.group(2)
            val = int(digits, 16) if digits[:2] in ("0x", "0X") else int(digits)
            nums.append(-val if nm.group(1) == "-" else val)
        if len(nums) == 1:
            end = nums[0]
            step = -1 if end < 1 else 1
            start = -1 if end < 0 else 1
        elif len(nums) == 2:
            start, end = nums
            step = 1 if start <= end else -1
        elif len(nums) == 3:
            start, step, end = nums
            if step == 0 or (start < end and step < 0) or (start > end and step > 0):
                bad("values")
                return None
        else:
            bad()
            return None
        if hexfmt and (start < 0 or end < 0):
            self.diags.append(error(f"~SEQx is only valid for non-negative numbers '{text}'", loc))
            return None
        count = (end - start) // step + 1
        rest = close + 1
        while rest < n and text[rest] in " \t":
            rest += 1
        values = range(start, start + count * step, step)
        sets = ([format(v, "x")] for v in values) if hexfmt else ([str(v)] for v in values)
        return [var], sets, count, rest

    def _parse_lst(self, text: str, loc: Location) -> tuple[list[str], list[list[str]], int, int] | None:
        n = len(text)
        p = 4

        def bad(what: str = "definition") -> None:
            self.diags.append(error(f"invalid ~LST {what} '{text}'", loc))

        def skip(q: int) -> int:
            while q < n and text[q] in " \t":
                q += 1
            return q

        p = skip(p)
        if p >= n or text[p] != "(":
            bad()
            return None
        p = skip(p + 1)
        names: list[str] = []
        if p < n and text[p] == "{":
            close = text.find("}", p)
            if close < 0:
                bad()
                return None
            names = [v.strip() for v in text[p + 1 : close].split(",")]
            p = skip(close + 1)
        else:
            v0 = p
            while p < n and text[p] not in " \t,)":
                p += 1
            names = [text[v0:p]]
            p = skip(p)
        if not all(names) or any(not _ENV_ARG.fullmatch(v) for v in names):
            bad()
            return None
        if p >= n or text[p] != ",":
            bad()
            return None
        p = skip(p + 1)
        sets: list[list[str]] = []
        while True:
            if p < n and text[p] == "{":
                close = text.find("}", p)
                if close < 0:
                    bad()
                    return None
                values = [v.strip() for v in text[p + 1 : close].split(",")]
                p = skip(close + 1)
            else:
                v0 = p
                while p < n and text[p] not in ",)":
                    p += 1
                values = [text[v0:p].strip()]
            if len(values) > len(names):
                bad("specification: too many values")
                return None
            values += [""] * (len(names) - len(values))
            sets.append(values)
            if p >= n:
                bad()
                return None
            if text[p] == ")":
                break
            if text[p] != ",":
                bad()
                return None
            p = skip(p + 1)
        rest = skip(p + 1)
        return names, sets, len(sets), rest

    # -- words ------------------------------------------------------------------------------------------

    def _tokenize(self, text: str, cols: list[int], lineno: int, *, braces: bool = True) -> list[Word]:
        """Split a logical line into words: whitespace separates, quotes group, braces stand alone
        (unless `braces` is false)."""
        brace_chars = "{}" if braces else ""
        fname = self._fname
        words: list[Word] = []
        n = len(text)
        i = 0
        while i < n:
            c = text[i]
            if c.isspace():
                i += 1
                continue
            if c in brace_chars:
                words.append(Word(c, fname, lineno, cols[i]))
                i += 1
                continue
            start = i
            buf: list[str] = []
            quoted = False
            while i < n:
                c = text[i]
                if c.isspace() or c in brace_chars:
                    break
                if c == "\\":
                    if i + 1 < n and text[i + 1] in "#!\"'\\":
                        buf.append(text[i + 1])
                        i += 2
                    else:
                        buf.append(c)
                        i += 1
                    continue
                if c == "$" and i + 1 < n and text[i + 1] == "{":
                    # an unresolved ${NAME}: its braces are text, not a block
                    m = _REFERENCE.match(text, i)
                    if m is not None:
                        buf.append(m.group())
                        i = m.end()
                        continue
                if c == '"' or c == "'":
                    quoted = True
                    i = self._quoted(text, cols, i, lineno, buf)
                    continue
                buf.append(c)
                i += 1
            words.append(Word("".join(buf), fname, lineno, cols[start], quoted))
        return words

    def _quoted(self, text: str, cols: list[int], i: int, lineno: int, buf: list[str]) -> int:
        """Append the contents of the quoted string at text[i] to buf; return the index after it."""
        q = text[i]
        qpos = i
        n = len(text)
        i += 1
        while i < n:
            c = text[i]
            if c == q:
                return i + 1
            if c != "\\":
                j = text.find(q, i)
                k = text.find("\\", i)
                stop = n if j < 0 else j
                if 0 <= k < stop:
                    stop = k
                buf.append(text[i:stop])
                i = stop
                continue
            if i + 1 >= n:
                break  # backslash at the very end: the quote is not closed
            e = text[i + 1]
            i += 2
            if e == "x" and i < n and text[i] in _HEX:
                j = i + 1 if i + 1 < n and text[i + 1] in _HEX else i
                buf.append(chr(int(text[i : j + 1], 16)))
                i = j + 1
            elif e in _OCT:
                j = i
                while j < n and j < i + 2 and text[j] in _OCT:
                    j += 1
                buf.append(chr(int(text[i - 1 : j], 8)))
                i = j
            elif e == "c" and i < n:
                buf.append(chr(ord(text[i]) & 0x1F))
                i += 1
            else:
                buf.append(_ESCAPES.get(e, e))
        self.diags.append(error("unmatched quote", self._loc(lineno, cols, qpos)))
        return n

    # -- include ----------------------------------------------------------------------------------------

    def _include(self, kw: Word, patterns: list[Word]) -> None:
        self._last = None
        kind = _INCLUDE_KINDS[kw.text]
        if not patterns:
            self.diags.append(error(f"'{kw.text}' needs a file name", kw.loc))
            return
        for pw in patterns:
            self._include_pattern(kind, pw)
        self._last = None

    def _include_pattern(self, kind: str, pw: Word) -> None:
        pattern = pw.text
        strict = kind != ""
        report = error if strict else warning
        matches: list[str] = []
        seen: set[str] = set()
        empty_alternative = False
        for alt in _brace_expand(pattern):
            try:
                if os.path.isabs(alt):
                    found = sorted(_glob.glob(alt))
                else:
                    found = sorted(os.path.join(self._dir, f) for f in _glob.glob(alt, root_dir=self._dir))
            except (OSError, ValueError):
                found = []
            if not found:
                empty_alternative = True
            for f in found:
                f = os.path.normpath(f)
                if f not in seen:
                    seen.add(f)
                    matches.append(f)
        if not matches:
            sev = error if kind in ("m", "w", "a") else warning
            self.diags.append(sev(f"include '{pattern}' matched no file", pw.loc))
            return
        if empty_alternative and kind in ("b", "a"):
            self.diags.append(error(f"include '{pattern}': some alternatives matched no file", pw.loc))
        for path in matches:
            if os.path.isdir(path):
                self.diags.append(report(f"include '{path}' is a directory - skipping", pw.loc))
                continue
            self._include_file(path, pw, strict)

    def _include_file(self, path: str, pw: Word, strict: bool) -> None:
        sev = error if strict else warning
        real = _realpath(path)
        for i, (_shown, r) in enumerate(self._chain):
            if real is not None and r == real:
                via = " -> ".join([s for s, _ in self._chain[i:]] + [path])
                self.diags.append(error(f"include loop: {path} includes itself via {via}", pw.loc))
                return
        if len(self._chain) >= _MAX_INCLUDE_DEPTH:
            self.diags.append(error(f"includes nested more than {_MAX_INCLUDE_DEPTH} deep", pw.loc))
            return
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.diags.append(sev(f"cannot read include file '{path}': {reason}", pw.loc))
            return
        self._note_file(path)
        self._chain.append((path, real))
        try:
            self._parse_text(data.decode("utf-8", "surrogateescape"), path, os.path.dirname(path))
        finally:
            self._chain.pop()
        self._last = None


def _dedupe(diags: list[Diagnostic]) -> list[Diagnostic]:
    if len(diags) < 2:
        return diags
    seen: set[tuple[object, str, Location | None]] = set()
    out: list[Diagnostic] = []
    for d in diags:
        key = (d.severity, d.message, d.location)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out
