"""Walk a word-level pyparsing grammar one word at a time: what may come next, and where a line goes wrong.

The operator grammar is built so that every terminal matches exactly one whitespace-separated word (a
keyword, an address, a number, a quoted string). That makes the grammar a regular language over words,
which this module explores directly from pyparsing's element tree (And, MatchFirst/Or, Opt, ZeroOrMore,
OneOrMore and wrappers): completion candidates and "unexpected word" errors come from the same grammar
that parses, so they can never disagree with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pyparsing as pp


@dataclass(frozen=True)
class Token:
    """One word of a command line as typed (quotes included) and its 0-based offset in the line."""

    text: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)


class UnterminatedQuote(ValueError):
    def __init__(self, start: int) -> None:
        super().__init__("unterminated quote")
        self.start = start


def tokenize(line: str, *, partial: bool = False) -> list[Token]:
    """Split on whitespace, keeping quoted strings ("a b", 'a b', with \\ escapes in double quotes) whole.

    An unterminated quote raises ``UnterminatedQuote`` unless ``partial`` (completion of a word being typed).
    """
    tokens: list[Token] = []
    i, n = 0, len(line)
    while i < n:
        if line[i].isspace():
            i += 1
            continue
        start = i
        while i < n and not line[i].isspace():
            quote = line[i]
            if quote in "\"'":
                i += 1
                while i < n and line[i] != quote:
                    i += 2 if (quote == '"' and line[i] == "\\") else 1
                if i >= n:
                    if not partial:
                        raise UnterminatedQuote(start)
                    i = n
                    break
            i += 1
        tokens.append(Token(line[start:i], start))
    return tokens


def terminals(expr: pp.ParserElement) -> Iterable[pp.ParserElement]:
    """Every terminal (pp.Token) reachable from ``expr``."""
    seen: set[int] = set()
    stack = [expr]
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, pp.ParseExpression):
            stack.extend(e.exprs)
        elif isinstance(e, pp.ParseElementEnhance):
            if e.expr is not None:
                stack.append(e.expr)
        else:
            yield e


@dataclass
class Probe:
    """Result of trying one terminal on one word: matched, or the message of the converter that refused it."""

    ok: bool
    message: str = ""


class Walker:
    """Explores ``grammar`` word by word. ``words`` are the raw token texts."""

    def __init__(self, grammar: pp.ParserElement) -> None:
        self.grammar = grammar
        self._cache: dict[tuple[int, str], Probe] = {}

    def probe(self, terminal: pp.ParserElement, word: str) -> Probe:
        key = (id(terminal), word)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        try:
            terminal.parse_string(word, parse_all=True)
            result = Probe(True)
        except pp.ParseFatalException as exc:  # a converter recognised the shape but refused the value
            result = Probe(False, exc.msg)
        except pp.ParseBaseException:
            result = Probe(False)
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[key] = result
        return result

    def _walk(self, e: pp.ParserElement, words: list[str], i: int,
              at_end: Callable[[pp.ParserElement], None]) -> set[int]:
        """Positions reachable after matching ``e`` from word ``i``.

        Terminals met at position ``len(words)`` (where the next word would go) are passed to ``at_end``.
        """
        n = len(words)
        if isinstance(e, pp.And):
            positions = {i}
            for sub in e.exprs:
                nxt: set[int] = set()
                for p in positions:
                    nxt |= self._walk(sub, words, p, at_end)
                positions = nxt
                if not positions:
                    break
            return positions
        if isinstance(e, pp.ParseExpression):  # MatchFirst, Or, Each (treated as alternatives)
            out: set[int] = set()
            for sub in e.exprs:
                out |= self._walk(sub, words, i, at_end)
            return out
        if isinstance(e, pp.Opt):
            return {i} | self._walk(e.expr, words, i, at_end)
        if isinstance(e, pp.ZeroOrMore | pp.OneOrMore):
            reached = set() if isinstance(e, pp.OneOrMore) else {i}
            frontier = self._walk(e.expr, words, i, at_end)
            while frontier - reached:
                new = frontier - reached
                reached |= new
                frontier = set()
                for p in new:
                    frontier |= self._walk(e.expr, words, p, at_end)
            return reached
        if isinstance(e, pp.ParseElementEnhance):  # Group, Suppress, Forward, …
            return set() if e.expr is None else self._walk(e.expr, words, i, at_end)
        if isinstance(e, pp.Empty):
            return {i}
        if i == n:
            at_end(e)
            return set()
        return {i + 1} if self.probe(e, words[i]).ok else set()

    def expected(self, words: list[str]) -> tuple[list[pp.ParserElement], bool]:
        """The terminals that may follow ``words``, and whether ``words`` is already a complete command."""
        found: list[pp.ParserElement] = []
        ids: set[int] = set()

        def collect(t: pp.ParserElement) -> None:
            if id(t) not in ids:
                ids.add(id(t))
                found.append(t)

        ends = self._walk(self.grammar, words, 0, collect)
        return found, len(words) in ends

    def first_bad(self, words: list[str]) -> tuple[int, list[pp.ParserElement], str] | None:
        """The index of the first word no command can continue with, the terminals that were possible
        there, and a converter's message if one recognised the word but refused its value.

        None when every word fits (the line may still be incomplete: see ``expected``).
        """
        for k in range(len(words)):
            candidates, _ = self.expected(words[:k])
            probes = [self.probe(t, words[k]) for t in candidates]
            if any(p.ok for p in probes):
                continue
            message = next((p.message for p in probes if p.message), "")
            return k, candidates, message
        return None
