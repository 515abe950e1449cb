"""Every config that became running, content-addressed and kept across restarts.

A history directory holds::

    objects/<sha256>     each applied config text once, named by its sha256 (identical configs share a file)
    index.jsonl          one JSON line per applied config, append-only:
                         {"seq", "digest", "parent", "who", "when", "how", "summary", "changes"}

``how`` is what made it running: "startup", "commit", "commit confirmed", "reload", "rollback" or
"confirmed-timeout". ``changes`` lists ``{"kind", "section", "key"}`` of the plan from the parent (enough for
``show blame`` without re-parsing old configs); ``summary`` is one line for ``show history``.

When the directory cannot be written, the history lives in memory for this process and ``warning`` says so
(the engine reports it once). A truncated last index line (a crash mid-append) is skipped on load.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from lvsconsole.config.diff import ReloadPlan

INDEX = "index.jsonl"
OBJECTS = "objects"
MIN_PREFIX = 4
"""The shortest digest prefix ``resolve`` accepts (shorter ones collide too easily)."""
MAX_INDEX_DIGITS = 5
"""A version made of at most this many digits is a position (0 = running), not a digest prefix."""


class HistoryError(Exception):
    """No such version, an ambiguous prefix, or a text that is missing from the object store."""


@functools.lru_cache(maxsize=1)
def digest_of(text: str) -> str:
    """sha256 of the text. The latest is remembered: a reload asks for the digest of the same (up to
    megabytes of) text several times, and that text is the running one, kept anyway."""
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def plan_summary(plan: ReloadPlan) -> str:
    n = len(plan.changes)
    if not n:
        return "no change"
    first = plan.changes[0]
    head = f"{first.kind} {first.section} {first.key}".rstrip()
    return head if n == 1 else f"{head} (+{n - 1} more)"


@dataclass(frozen=True)
class HistoryEntry:
    seq: int
    """1 for the first config ever recorded in this history; grows by one per entry."""
    digest: str
    parent: str | None
    who: str
    when: float
    how: str
    summary: str
    changes: tuple[dict[str, str], ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "digest": self.digest, "parent": self.parent, "who": self.who, "when": self.when,
                "how": self.how, "summary": self.summary, "changes": [dict(c) for c in self.changes]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HistoryEntry:
        return cls(seq=int(data["seq"]), digest=str(data["digest"]), parent=data.get("parent"),
                   who=str(data.get("who", "")), when=float(data.get("when", 0.0)), how=str(data.get("how", "")),
                   summary=str(data.get("summary", "")),
                   changes=tuple({k: str(v) for k, v in c.items()} for c in data.get("changes", ())))

    def touches(self, section: str, key: str, *, added_only: bool = False) -> bool:
        """Whether this entry's plan changed ``section`` ``key``: a real server's checkers count for it, and a
        virtual server's real servers for the virtual server. ``added_only``: only its addition counts."""
        for change in self.changes:
            ckey, csection = change.get("key", ""), change.get("section")
            if added_only:
                if csection == section and ckey == key and change.get("kind") == "added":
                    return True
                continue
            if csection == section and ckey == key:
                return True
            if section == "real_server" and csection == "checker" and ckey.startswith(key + " "):
                return True
            if section == "virtual_server" and csection in ("real_server", "checker") and ckey.startswith(
                    key + " -> "):
                return True
        return False


class HistoryLog:
    """The applied configs of one engine, newest last; persistent when ``directory`` is writable."""

    def __init__(self, directory: str | None = None) -> None:
        self.directory: str | None = None
        self.warning: str | None = None
        self._entries: list[HistoryEntry] = []
        self._texts: dict[str, str] = {}
        if directory is not None:
            try:
                self._open(os.path.abspath(directory))
            except OSError as exc:
                self.directory = None
                self.warning = (f"config history kept in memory only: cannot use {directory}: "
                                f"{exc.strerror or exc}")

    def _open(self, directory: str) -> None:
        os.makedirs(os.path.join(directory, OBJECTS), mode=0o700, exist_ok=True)
        index = os.path.join(directory, INDEX)
        # writable now, so the first commit does not discover it too late
        with open(index, "a", encoding="utf-8"):
            pass
        with open(index, encoding="utf-8") as fh:
            for line in fh:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    self._entries.append(HistoryEntry.from_json(json.loads(line)))
        self.directory = directory

    @property
    def persistent(self) -> bool:
        return self.directory is not None

    # ------------------------------------------------------------------------------ reading

    @property
    def entries(self) -> tuple[HistoryEntry, ...]:
        """Newest first."""
        return tuple(reversed(self._entries))

    @property
    def latest(self) -> HistoryEntry | None:
        return self._entries[-1] if self._entries else None

    def text(self, digest: str) -> str:
        cached = self._texts.get(digest)
        if cached is not None:
            return cached
        if self.directory is None:
            raise HistoryError(f"no config text for {digest[:12]}")
        try:
            with open(os.path.join(self.directory, OBJECTS, digest), "rb") as fh:
                text = fh.read().decode("utf-8", "surrogateescape")
        except OSError as exc:
            raise HistoryError(f"config text {digest[:12]} is missing from {self.directory}: "
                               f"{exc.strerror or exc}") from None
        self._texts[digest] = text
        return text

    def resolve(self, version: str | int) -> tuple[int, HistoryEntry]:
        """A version by position (0 = newest; a number of at most 5 digits) or by digest prefix (4+ hex digits);
        returns (position, entry). The newest entry with that digest wins (a config applied twice)."""
        entries = self.entries
        ref = str(version).strip().lower()
        if ref.isdigit() and len(ref) <= MAX_INDEX_DIGITS:
            n = int(ref)
            if not 0 <= n < len(entries):
                raise HistoryError(f"no revision {n}: the history holds 0..{len(entries) - 1}")
            return n, entries[n]
        if len(ref) < MIN_PREFIX or any(ch not in "0123456789abcdef" for ch in ref):
            raise HistoryError(f"'{version}' is neither a version number nor a digest prefix "
                               f"({MIN_PREFIX}+ hex digits)")
        digests = {e.digest for e in entries if e.digest.startswith(ref)}
        if not digests:
            raise HistoryError(f"no version with digest {ref}")
        if len(digests) > 1:
            raise HistoryError(f"digest prefix {ref} is ambiguous: "
                               f"{', '.join(sorted(d[:12] for d in digests))}")
        found = next(i for i, e in enumerate(entries) if e.digest in digests)
        return found, entries[found]

    def blame(self, section: str, key: str, *, added_only: bool = False) -> HistoryEntry | None:
        """The newest entry whose plan changed ``section`` ``key`` (added it or changed its fields)."""
        return next((e for e in reversed(self._entries) if e.touches(section, key, added_only=added_only)), None)

    # ------------------------------------------------------------------------------ writing

    def record(self, text: str, *, who: str, when: float, how: str, plan: ReloadPlan) -> HistoryEntry:
        """Store ``text`` (once per digest) and append its entry; the parent is the previous entry."""
        digest = digest_of(text)
        latest = self.latest
        entry = HistoryEntry(
            seq=(latest.seq + 1) if latest else 1, digest=digest, parent=latest.digest if latest else None,
            who=who, when=when, how=how, summary=plan_summary(plan),
            changes=tuple({"kind": c.kind, "section": c.section, "key": c.key} for c in plan.changes),
        )
        if self.directory is not None:
            try:
                self._store_object(digest, text)
                self._append(entry)
            except OSError as exc:
                self.warning = (f"config history kept in memory only from now: cannot write {self.directory}: "
                                f"{exc.strerror or exc}")
                self._keep_in_memory()
        self._texts[digest] = text
        self._entries.append(entry)
        return entry

    def _keep_in_memory(self) -> None:
        """Load every text still on disk before dropping the directory, so older versions stay reachable."""
        for entry in self._entries:
            with contextlib.suppress(HistoryError):
                self.text(entry.digest)
        self.directory = None

    def _store_object(self, digest: str, text: str) -> None:
        assert self.directory is not None
        path = os.path.join(self.directory, OBJECTS, digest)
        if os.path.exists(path):
            return
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "wb") as fh:
            fh.write(text.encode("utf-8", "surrogateescape"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def _append(self, entry: HistoryEntry) -> None:
        assert self.directory is not None
        line = json.dumps(entry.as_json(), separators=(",", ":")) + "\n"
        with open(os.path.join(self.directory, INDEX), "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())


def unified(old_text: str, new_text: str, old_name: str, new_name: str) -> str:
    """A unified text diff (the exact wording, where the plan shows meaning)."""
    import difflib

    return "".join(difflib.unified_diff(old_text.splitlines(keepends=True), new_text.splitlines(keepends=True),
                                        fromfile=old_name, tofile=new_name))

