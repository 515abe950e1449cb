"""Re-load a config file after an edit by re-parsing only the top-level blocks the edit touched.

A 9 MB file (keepalived #2318's 2,284 virtual servers) takes seconds to tokenize and build, so a reload that
changes one weight cannot afford a full parse. ``FileBuild`` remembers, for the text it was built from, each
top-level *segment* (a top-level statement with its block, or several when they share a line): its lines, the
model objects it contributed and the diagnostics it produced. ``rebuild`` compares the new text with the old
one (common prefix and suffix, in C), re-parses the lines between them widened to whole segments, and keeps
every other segment's objects, the same objects, so the diff and the IPVS sync compare them by identity.

The result is exactly what a full parse gives, or ``rebuild`` returns None and the caller parses in full:

- only segments that build without looking at other blocks are rebuilt alone; an edit touching
  ``global_defs`` (defaults of other blocks) or a ``vrrp_instance`` (finished against global_defs) re-parses;
- text the lexer carries state across blocks for (``$NAME`` parameters, ``~SEQ``/``~LST`` generators,
  ``include``) is never parsed piecewise, nor is a file whose parse had lexer diagnostics (an unbalanced brace
  decides what the rest of the file means), nor a re-parsed span that has them;
- model objects record their lines (``locs``, which equality ignores): after an edit that adds or removes
  lines, the segments below it get copies with their locations moved (``rebase``), unless one of them has a
  diagnostic (its text may name a line) or is not local; then everything below the edit is parsed again.
"""

from __future__ import annotations

import bisect
import dataclasses
import enum
import os
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network
from types import MappingProxyType
from typing import Any

from lvsconsole.config import model as m
from lvsconsole.config.build import PART_LISTS, Builder, BuildResult, ConfigParts
from lvsconsole.config.diagnostics import Diagnostic, Location
from lvsconsole.config.lexer import Node, parse_text

__all__ = ["FileBuild", "IncrementalBuilder", "build_text", "rebuild"]

# Statements whose model depends on other blocks: a change to one of them re-parses the whole file.
_NOT_LOCAL = frozenset({"global_defs", "vrrp_instance"})
# Text that makes the lexer carry state from one block to the next.
_STATEFUL_MARKS = ("$", "include", "~SEQ", "~LST")
_CHUNK = 1 << 16


@dataclass(frozen=True, slots=True)
class Segment:
    """Top-level statements that share no line with any other: lines first..last, what they built."""

    first_line: int
    last_line: int
    local: bool
    parts: tuple[tuple[str, tuple[Any, ...]], ...]
    """(ConfigParts list, the items these statements appended to it), in the order they were appended."""
    diagnostics: tuple[Diagnostic, ...]


@dataclass(frozen=True, slots=True)
class FileBuild:
    """A built file and what ``rebuild`` needs to re-build an edited version of it."""

    path: str
    text: str
    strict: bool
    config_id: str | None
    result: BuildResult
    segments: tuple[Segment, ...]
    global_defs: m.GlobalDefs
    instances: tuple[m.VrrpInstance, ...]
    """The finished instances (``Builder.finish_instances``) and the diagnostics finishing them gave."""
    finish_diagnostics: tuple[Diagnostic, ...]


def build_text(text: str, path: str, *, strict: bool = False, config_id: str | None = None
               ) -> tuple[BuildResult, FileBuild | None]:
    """Parse and build ``text`` (the content of ``path``) in full, as ``build(parse_text(...))`` does; the
    FileBuild is None when the file cannot be re-built piecewise later (see the module docstring)."""
    parsed = parse_text(text, filename=path, config_id=config_id, base_dir=os.path.dirname(path))
    builder = Builder(strict=strict)
    parts = ConfigParts()
    segments = _segments(parsed.nodes, builder, parts)
    node_diagnostics = len(builder.diagnostics)
    instances = builder.finish_instances(parts.instances, parts.global_defs)
    result = BuildResult(Builder.assemble(parts, instances, None), [*parsed.diagnostics, *builder.diagnostics],
                         list(parsed.files))
    if parsed.diagnostics or _stateful(text) or len(parsed.files) != 1:
        return result, None
    cache = FileBuild(path, text, strict, config_id, result, tuple(segments), parts.global_defs, tuple(instances),
                      tuple(builder.diagnostics[node_diagnostics:]))
    return result, cache


def rebuild(previous: FileBuild, text: str) -> tuple[BuildResult, FileBuild] | None:
    """Build ``text``, an edited version of ``previous.text``, re-parsing only what the edit touched; None when
    that cannot give exactly the full parse's result (then parse in full)."""
    old = previous.text
    if text == old:
        return previous.result, previous
    prefix = _common_prefix(old, text)
    suffix = _common_suffix(old, text, min(len(old), len(text)) - prefix)
    old_end, new_end = len(old) - suffix, len(text) - suffix
    # the edit spans lines first..last_old of the old text, first..last_new of the new one
    first = old.count("\n", 0, prefix) + 1
    last_old = first + old.count("\n", prefix, old_end)
    last_new = first + text.count("\n", prefix, new_end)
    shift = last_new - last_old
    segments = previous.segments
    lo = bisect.bisect_left([s.last_line for s in segments], first)
    hi = bisect.bisect_right([s.first_line for s in segments], last_old)
    below = segments[hi:]
    if shift and not all(segment.local and not segment.diagnostics for segment in below):
        hi, below = len(segments), ()  # parsed again rather than moved
    touched = segments[lo:hi]
    if not all(segment.local for segment in touched):
        return None
    span_first = min(first, touched[0].first_line) if touched else first
    span_last_old = max(last_old, touched[-1].last_line) if touched else last_old
    if shift and not below:
        span_last_old = old.count("\n") + 1
    start = _line_start_back(text, prefix, first - span_first)
    stop = _line_end_forward(text, new_end, span_last_old - last_old)
    span = text[start:stop]
    # The old text had no stateful mark, so a mark in the new one is on a line the edit changed: in the span.
    if _stateful(span):
        return None
    parsed = parse_text(span, filename=previous.path, config_id=previous.config_id,
                        base_dir=os.path.dirname(previous.path), first_line=span_first)
    if parsed.diagnostics:
        return None
    builder = Builder(strict=previous.strict)
    rebuilt = _segments(parsed.nodes, builder, ConfigParts())
    if not all(segment.local for segment in rebuilt):
        return None
    new_segments = (*segments[:lo], *rebuilt, *(rebase(segment, shift) for segment in below))
    parts = ConfigParts(global_defs=previous.global_defs)
    diagnostics: list[Diagnostic] = []
    for segment in new_segments:
        for name, items in segment.parts:
            getattr(parts, name).extend(items)
        diagnostics.extend(segment.diagnostics)
    diagnostics.extend(previous.finish_diagnostics)
    result = BuildResult(Builder.assemble(parts, previous.instances, None), diagnostics, [previous.path])
    cache = FileBuild(previous.path, text, previous.strict, previous.config_id, result, new_segments,
                      previous.global_defs, previous.instances, previous.finish_diagnostics)
    return result, cache


class IncrementalBuilder:
    """Builds a file's successive versions, each from the previous one when it can (``rebuild``)."""

    def __init__(self) -> None:
        self._last: FileBuild | None = None
        self.partial_builds = 0
        """How many builds re-parsed only part of the file (for tests and benchmarks)."""

    def build(self, text: str, path: str, *, strict: bool = False, config_id: str | None = None) -> BuildResult:
        last = self._last
        if last is not None and last.path == path and last.strict == strict and last.config_id == config_id:
            # the old text and objects are let go as soon as the new build replaces them
            self._last = None
            outcome = rebuild(last, text)
            del last
            if outcome is not None:
                self.partial_builds += 1
                result, self._last = outcome
                return result
        result, self._last = build_text(text, path, strict=strict, config_id=config_id)
        return result

    def forget(self) -> None:
        self._last = None


# ---------------------------------------------------------------------------------------------- helpers


def rebase(segment: Segment, shift: int) -> Segment:
    """``segment`` moved ``shift`` lines down (up when negative): its model objects copied with their locations
    moved. Only for a segment without diagnostics (their text may name lines)."""
    if not shift:
        return segment
    parts = tuple((name, tuple(_moved(item, shift) for item in items)) for name, items in segment.parts)
    return Segment(segment.first_line + shift, segment.last_line + shift, segment.local, parts, ())


_FIELDS: dict[type, tuple[str, ...]] = {}
_PLAIN = (str, int, float, bool, type(None), bytes)
_ADDRESSES = (IPv4Address, IPv6Address, IPv4Interface, IPv6Interface, IPv4Network, IPv6Network)


def _moved(value: Any, shift: int) -> Any:
    """``value`` with every Location in it ``shift`` lines further; unchanged parts are shared, not copied."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is Location:
        return Location(value.file, value.line + shift, value.col)
    if kind is tuple:
        moved = tuple(_moved(item, shift) for item in value)
        return value if all(a is b for a, b in zip(moved, value, strict=True)) else moved
    if kind is MappingProxyType:
        if not value:
            return value
        return MappingProxyType({key: _moved(item, shift) for key, item in value.items()})
    names = _FIELDS.get(kind)
    if names is None:
        names = _FIELDS[kind] = _location_fields(kind)
    if not names:
        return value
    changes = {}
    for name in names:
        item = getattr(value, name)
        moved = _moved(item, shift)
        if moved is not item:
            changes[name] = moved
    if not changes:
        return value
    if hasattr(value, "__dict__"):  # a frozen model object: a copy with the moved fields (no __init__ to rerun)
        copy = object.__new__(kind)
        copy.__dict__.update(value.__dict__)
        copy.__dict__.update(changes)
        return copy
    return dataclasses.replace(value, **changes)


def _location_fields(kind: type) -> tuple[str, ...]:
    """The fields of a model class that can hold a Location (by their annotations); () for other types."""
    if not dataclasses.is_dataclass(kind):
        return ()
    try:
        hints = typing.get_type_hints(kind)
    except (NameError, TypeError):  # annotations that do not resolve: look at every field
        hints = {}
    return tuple(f.name for f in dataclasses.fields(kind) if f.init and not _plain_type(hints.get(f.name, Any)))


def _plain_type(hint: Any) -> bool:
    """A type whose values hold no Location: str, numbers, addresses, literals, enums, and unions of them."""
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return True
    if origin in (typing.Union, types.UnionType):
        return all(_plain_type(arg) for arg in typing.get_args(hint))
    if origin is not None:
        return False
    return isinstance(hint, type) and (issubclass(hint, (*_PLAIN, enum.Enum)) or hint in _ADDRESSES)


def _stateful(text: str) -> bool:
    return any(mark in text for mark in _STATEFUL_MARKS)


def _segments(nodes: Sequence[Node], builder: Builder, parts: ConfigParts) -> list[Segment]:
    """Build ``nodes`` into ``parts`` one by one, recording what each contributed, grouped into segments."""
    out: list[Segment] = []
    lists = [getattr(parts, name) for name in PART_LISTS]
    for node in nodes:
        sizes = [len(items) for items in lists]
        mark = len(builder.diagnostics)
        builder.add_node(node, parts)
        contributed = tuple((name, tuple(items[size:])) for name, items, size in zip(PART_LISTS, lists, sizes,
                                                                                   strict=True)
                            if len(items) > size)
        first_line = node.keyword.line
        last_line = max(first_line, node.close.line if node.close is not None else 0,
                        *(word.line for word in node.args))
        segment = Segment(first_line, last_line, node.keyword.text not in _NOT_LOCAL, contributed,
                          tuple(builder.diagnostics[mark:]))
        if out and first_line <= out[-1].last_line:  # on a line the previous statement ends on
            before = out.pop()
            segment = Segment(before.first_line, max(before.last_line, last_line), before.local and segment.local,
                              before.parts + segment.parts, before.diagnostics + segment.diagnostics)
        out.append(segment)
    return out


def _common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix, comparing 64 KiB slices, then bisecting the first that differs."""
    n = min(len(a), len(b))
    lo = 0
    while lo < n and a[lo:lo + _CHUNK] == b[lo:lo + _CHUNK]:
        lo += _CHUNK
    if lo >= n:
        return n
    good, bad = lo, min(lo + _CHUNK, n) + 1  # a[lo:good] == b[lo:good]; a[lo:bad] != b[lo:bad]
    while bad - good > 1:
        mid = (good + bad) // 2
        if a[lo:mid] == b[lo:mid]:
            good = mid
        else:
            bad = mid
    return good


def _common_suffix(a: str, b: str, limit: int) -> int:
    """Length of the longest common suffix, at most ``limit``."""
    la, lb = len(a), len(b)
    done = 0
    while done < limit:
        step = min(_CHUNK, limit - done)
        if a[la - done - step:la - done] != b[lb - done - step:lb - done]:
            break
        done += step
    else:
        return limit
    good, bad = 0, min(_CHUNK, limit - done) + 1  # lengths of the common tail of the next slice
    while bad - good > 1:
        mid = (good + bad) // 2
        if a[la - done - mid:la - done] == b[lb - done - mid:lb - done]:
            good = mid
        else:
            bad = mid
    return done + good


def _line_start_back(text: str, offset: int, lines: int) -> int:
    """The start of the line ``lines`` lines above the one holding ``offset``."""
    start = text.rfind("\n", 0, offset) + 1
    for _ in range(lines):
        start = text.rfind("\n", 0, start - 1) + 1
    return start


def _line_end_forward(text: str, offset: int, lines: int) -> int:
    """The end (its newline excluded) of the line ``lines`` lines below the one holding ``offset``."""
    end = text.find("\n", offset)
    for _ in range(lines):
        if end < 0:
            break
        end = text.find("\n", end + 1)
    return len(text) if end < 0 else end
