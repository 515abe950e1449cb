"""Validation findings of one model object, reused while the object and what the rules read besides it stay.

Every reload validates the whole config again. For keepalived #2318's 2,284 virtual servers that is most of
a one-change reload once parsing is incremental (config/incremental.py keeps the unchanged blocks' objects).
A rule over one virtual server reads that object plus a little of the rest (the VIPs, the group names, the
host's addresses): ``FindingsMemo.start(context, host)`` returns the findings kept for the objects of the
previous run when ``context`` is equal and ``host`` is the same object, else an empty memo. The memo keeps
only the objects of the latest run, so it never holds more than one config's worth.

An object that is not the same but equal (model equality ignores source locations: an edit above it moved
its lines) reuses the previous result only when that result is empty, since a finding names a location.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sized
from typing import Generic, TypeVar

from lvsconsole.config import model as m
from lvsconsole.config.diagnostics import Diagnostic

T = TypeVar("T")
V = TypeVar("V", bound=Sized)


class _Kept(Generic[T, V]):
    """Results per object of one run, looked up in the previous run's by identity, then by key and equality."""

    def __init__(self, previous: dict[int, tuple[T, V]], key: Callable[[T], Hashable]) -> None:
        self._previous = previous
        self._key = key
        self._by_key: dict[Hashable, tuple[T, V]] | None = None
        self.current: dict[int, tuple[T, V]] = {}

    def get(self, obj: T) -> V | None:
        kept = self._previous.get(id(obj))
        if kept is None or kept[0] is not obj:
            if self._by_key is None:
                self._by_key = {self._key(o): (o, v) for o, v in self._previous.values()}
            twin = self._by_key.get(self._key(obj))
            if twin is None or len(twin[1]) or twin[0] != obj:
                return None
            kept = (obj, twin[1])
        self.current[id(obj)] = kept
        return kept[1]

    def put(self, obj: T, value: V) -> None:
        self.current[id(obj)] = (obj, value)


class FindingsMemo(Generic[T]):
    def __init__(self, key: Callable[[T], Hashable]) -> None:
        self._key = key
        self._context: Hashable = None
        self._host: object = None
        self._run: _Kept[T, tuple[Diagnostic, ...]] | None = None

    def start(self, context: Hashable, host: object) -> _Kept[T, tuple[Diagnostic, ...]]:
        previous = self._run
        same = previous is not None and host is self._host and context == self._context
        run: _Kept[T, tuple[Diagnostic, ...]] = _Kept(previous.current if same and previous is not None else {},
                                                      self._key)
        self._context, self._host, self._run = context, host, run
        return run


class PerObject(Generic[T, V]):
    """``compute(obj)`` for each object of a run, reusing the previous run's value for the same object."""

    def __init__(self, compute: Callable[[T], V], key: Callable[[T], Hashable]) -> None:
        self._compute = compute
        self._key = key
        self._kept: dict[int, tuple[T, V]] = {}

    def each(self, objects: Iterable[T]) -> list[V]:
        run: _Kept[T, V] = _Kept(self._kept, self._key)
        out: list[V] = []
        for obj in objects:
            value = run.get(obj)
            if value is None:
                value = self._compute(obj)
                run.put(obj, value)
            out.append(value)
        self._kept = run.current
        return out


VS_FINDINGS: FindingsMemo[m.VirtualServer] = FindingsMemo(lambda vs: vs.key)
"""Validator.virtual_servers' memo."""
