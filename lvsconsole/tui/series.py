"""Recent values of many series sampled together (the sparklines of the virtual-server table).

One sample holds every series' value at one tick, in a compact array, with the index (series name →
position) of the table shape it was taken in. Recording a tick is one array built from the snapshot; only
the few series on screen are ever read back. Samples taken in the same shape share one index, so a reload
that adds or removes servers costs one new index, not a copy of the history.
"""

from __future__ import annotations

import collections
from array import array
from collections.abc import Iterable, Mapping


class SeriesRing:
    """The last ``depth`` samples of a set of named series."""

    def __init__(self, depth: int) -> None:
        self._samples: collections.deque[tuple[Mapping[str, int], array[int]]] = collections.deque(maxlen=depth)

    def __len__(self) -> int:
        return len(self._samples)

    def push(self, index: Mapping[str, int], values: Iterable[int]) -> None:
        """Record one sample: ``values`` in the order ``index`` gives (name → position)."""
        sample = array("q", values)
        if len(sample) != len(index):
            raise ValueError(f"{len(sample)} values for an index of {len(index)} series")
        self._samples.append((index, sample))

    def series(self, name: str) -> list[int]:
        """``name``'s values, oldest first, from the samples that had it (a server that was absent for a while
        shows the ticks it was there)."""
        out = []
        for index, values in self._samples:
            position = index.get(name)
            if position is not None:
                out.append(values[position])
        return out

    def clear(self) -> None:
        self._samples.clear()
