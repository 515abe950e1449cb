"""The config lifecycle, sans-IO apart from reading and writing the config file: running, candidate,
and the last 20 committed configs.

- The *running* revision is what the director runs. It only changes through ``accept`` (``commit``,
  ``reload``), and only to a config without errors.
- The *candidate* is where edits go (``edit``, ``set_candidate_text``, ``rollback``). It may hold errors;
  ``validate`` lists them, ``diff`` shows candidate vs running as a ReloadPlan.
- Applying is two-phase so that the director can do its I/O in between: ``propose_commit()`` /
  ``propose_reload()`` validate and plan (raising ``ConfigRefused`` with the diagnostics), the director
  applies the plan, then ``accept(proposal, who)`` records it. ``commit(who)`` and ``reload(path, who)``
  do both steps for callers with nothing to apply.
- ``rollback(version)`` loads a version of the history (0 = running, 1 = the one before…, or a digest
  prefix) into the candidate, as Junos does: ``diff`` shows what it would change and ``commit`` applies it.
- Every running config is also recorded in a ``HistoryLog`` (engine/history.py): content-addressed, with who,
  when and how, persistent when the store is given a history directory. Revision numbers are that log's
  sequence numbers, so they continue across restarts. ``confirm`` is the ``commit confirmed`` planner.
- ``write()`` saves the running text to the file atomically (temp file, fsync, rename) and keeps the
  previous file as FILE.bak.

Every config is loaded from text, so its diagnostics carry exact file:line:col: a file for the running
config read from disk, ``<candidate>`` (the candidate text) otherwise.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import gc
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from lvsconsole.config import model as m
from lvsconsole.config.build import BuildResult, build
from lvsconsole.config.diagnostics import Diagnostic
from lvsconsole.config.diff import ReloadPlan, diff
from lvsconsole.config.incremental import IncrementalBuilder
from lvsconsole.config.lexer import ConfigReadError, parse_text
from lvsconsole.config.render import render
from lvsconsole.config.validate import validate
from lvsconsole.engine.commands import EditCommand
from lvsconsole.engine.confirm import ConfirmPlanner
from lvsconsole.engine.edits import apply_edit
from lvsconsole.engine.history import HistoryEntry, HistoryError, HistoryLog, digest_of

HISTORY = 20
CANDIDATE = "<candidate>"


class ConfigRefused(Exception):
    """A config that may not become running: ``reason`` and the diagnostics (errors first)."""

    def __init__(self, reason: str, diagnostics: list[Diagnostic] | tuple[Diagnostic, ...] = (),
                 source: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.diagnostics = tuple(sorted(diagnostics, key=lambda d: not d.is_error))
        self.source = source

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    def __str__(self) -> str:
        errors = self.errors
        if not errors:
            return self.reason
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return f"{self.reason}: {errors[0]}{more}"


class StoreError(Exception):
    """A request the store cannot satisfy (no such revision, no file to reload or write, stale proposal)."""


def _digest(text: str) -> str:
    return digest_of(text)


@dataclass(frozen=True)
class Revision:
    """One committed config. ``number`` grows by one per commit; ``plan`` is what applying it changed."""

    number: int
    config: m.Config
    text: str
    time: float
    who: str
    source: str
    plan: ReloadPlan
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def digest(self) -> str:
        """sha256 of the text: the content address of this revision."""
        return _digest(self.text)

    def summary(self) -> dict[str, Any]:
        return {
            "number": self.number, "time": self.time, "who": self.who, "source": self.source,
            "digest": self.digest[:16], "changes": len(self.plan.changes),
        }


@dataclass(frozen=True)
class Candidate:
    config: m.Config
    text: str
    diagnostics: tuple[Diagnostic, ...]
    base: int
    """The running revision this candidate was last reset to."""

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class Proposal:
    """A validated config and the plan from the running config to it, waiting to be applied."""

    config: m.Config
    text: str
    plan: ReloadPlan
    source: str
    base: int
    diagnostics: tuple[Diagnostic, ...] = ()
    how: str = "commit"
    """What the history records as the way it became running: commit, reload, rollback…"""

    @property
    def empty(self) -> bool:
        return self.plan.empty


@dataclass(frozen=True)
class EditResult:
    candidate: Candidate
    changes: ReloadPlan
    """What the edit changed in the candidate (previous candidate → new)."""
    warnings: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class Loaded:
    config: m.Config
    text: str
    diagnostics: tuple[Diagnostic, ...]
    files: tuple[str, ...] = ()

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Loading a big config allocates ~10^6 acyclic objects: the cyclic GC would rescan them for nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_text(text: str, *, filename: str = CANDIDATE, base_dir: str | None = None, config_id: str | None = None,
              strict: bool = False) -> Loaded:
    """Build and validate ``text`` (includes are relative to ``base_dir``)."""
    with _no_gc():
        parsed = parse_text(text, filename=filename, config_id=config_id, base_dir=base_dir)
        result: BuildResult = build(parsed, strict=strict)
        diagnostics = [*result.diagnostics, *validate(result.config, strict=strict)]
    return Loaded(result.config, text, tuple(diagnostics), tuple(result.files))


def load_file(path: str, *, config_id: str | None = None, strict: bool = False,
              builder: IncrementalBuilder | None = None) -> Loaded:
    """Read ``path`` once and load it. The text kept is the file's own, or the rendered config when the file
    includes others. Raises ConfigReadError when ``path`` cannot be read.

    With ``builder``, the file is built from the previous version ``builder`` built where it can (only the
    blocks an edit touched are parsed again: config/incremental.py); the result is the same."""
    apath = os.path.abspath(path)
    try:
        with open(apath, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ConfigReadError(exc.errno, exc.strerror or str(exc), path) from exc
    text = data.decode("utf-8", "surrogateescape")
    del data
    if builder is None:
        loaded = load_text(text, filename=apath, base_dir=os.path.dirname(apath), config_id=config_id,
                           strict=strict)
    else:
        with _no_gc():
            result = builder.build(text, apath, strict=strict, config_id=config_id)
            diagnostics = (*result.diagnostics, *validate(result.config, strict=strict))
        loaded = Loaded(result.config, text, diagnostics, tuple(result.files))
    config = dataclasses.replace(loaded.config, source=apath)
    if len(loaded.files) > 1:
        return Loaded(config, render(config), loaded.diagnostics, loaded.files)
    return dataclasses.replace(loaded, config=config)


# ---------------------------------------------------------------------------------------------- files


def atomic_write(path: str, text: str, *, backup: bool = True) -> None:
    """Replace ``path`` with ``text`` so that readers see the old file or the new one, never a mix.

    The new content goes to a temporary file in the same directory, is fsynced and renamed over ``path``;
    the previous file is kept as ``path.bak`` (a hard link, or a copy where links are not possible), and
    the directory is fsynced so the rename survives a crash. The file keeps the old file's mode.
    """
    apath = os.path.abspath(path)
    directory = os.path.dirname(apath)
    base = os.path.basename(apath)
    tmp = os.path.join(directory, f".{base}.tmp-{os.getpid()}")
    mode = 0o644
    try:
        mode = os.stat(apath).st_mode & 0o7777
        exists = True
    except FileNotFoundError:
        exists = False
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8", "surrogateescape"))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        if exists and backup:
            bak_tmp = os.path.join(directory, f".{base}.bak-{os.getpid()}")
            try:
                os.link(apath, bak_tmp)
            except OSError:
                import shutil

                shutil.copy2(apath, bak_tmp)
            os.replace(bak_tmp, apath + ".bak")
        os.replace(tmp, apath)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# ---------------------------------------------------------------------------------------------- the store


class ConfigStore:
    def __init__(
        self,
        initial: Loaded,
        *,
        path: str | None = None,
        who: str = "startup",
        source: str = "startup",
        clock: Callable[[], float] = time.time,
        config_id: str | None = None,
        strict: bool = False,
        history: int = HISTORY,
        archive: HistoryLog | None = None,
        builder: IncrementalBuilder | None = None,
    ) -> None:
        """Start from ``initial`` (which must be free of errors: ConfigRefused otherwise).

        ``archive`` is the persistent history (an in-memory one when None); ``initial`` is recorded in it
        unless it is already its latest entry (an engine restarted on the same config)."""
        if initial.errors:
            raise ConfigRefused("the configuration has errors", initial.diagnostics, source)
        self.path = os.path.abspath(path) if path else None
        self._clock = clock
        self._config_id = config_id
        self._strict = strict
        self._builder = builder if builder is not None else IncrementalBuilder()
        """Builds each reload of the file from the previous one (only the blocks an edit touched)."""
        self.archive = archive if archive is not None else HistoryLog()
        self.confirm = ConfirmPlanner()
        self._rolled_back_to: str | None = None
        """Digest of the version ``rollback`` loaded into the candidate (a commit of it is recorded as rollback)."""
        now = clock()
        plan = diff(m.Config(), initial.config)
        latest = self.archive.latest
        if latest is not None and latest.digest == _digest(initial.text):
            number = latest.seq
        else:
            # the history records what changed since the last config it knows (edited while the engine was down)
            history_plan = plan
            if latest is not None:
                with contextlib.suppress(HistoryError, ConfigReadError):
                    history_plan = diff(self._load_candidate(self.archive.text(latest.digest)).config, initial.config)
            number = self.archive.record(initial.text, who=who, when=now, how="startup", plan=history_plan).seq
        first = Revision(number, initial.config, initial.text, now, who, source, plan, initial.diagnostics)
        self._history: collections.deque[Revision] = collections.deque([first], maxlen=history)
        self._candidate = Candidate(first.config, first.text, first.diagnostics, first.number)

    @classmethod
    def from_file(cls, path: str, *, who: str = "startup", clock: Callable[[], float] = time.time,
                  config_id: str | None = None, strict: bool = False,
                  archive: HistoryLog | None = None) -> ConfigStore:
        """Load ``path`` as the first running revision. Raises ConfigReadError or ConfigRefused."""
        builder = IncrementalBuilder()
        loaded = load_file(path, config_id=config_id, strict=strict, builder=builder)
        return cls(loaded, path=path, who=who, source=f"load {os.path.abspath(path)}", clock=clock,
                   config_id=config_id, strict=strict, archive=archive, builder=builder)

    @classmethod
    def from_text(cls, text: str, *, path: str | None = None, who: str = "startup",
                  clock: Callable[[], float] = time.time, strict: bool = False) -> ConfigStore:
        base_dir = os.path.dirname(os.path.abspath(path)) if path else None
        loaded = load_text(text, filename=os.path.abspath(path) if path else CANDIDATE, base_dir=base_dir,
                           strict=strict)
        return cls(loaded, path=path, who=who, clock=clock, strict=strict)

    # ------------------------------------------------------------------------------ state

    @property
    def running(self) -> Revision:
        return self._history[-1]

    @property
    def candidate(self) -> Candidate:
        return self._candidate

    @property
    def history(self) -> tuple[Revision, ...]:
        """Committed revisions, newest (running) first."""
        return tuple(reversed(self._history))

    @property
    def dirty(self) -> bool:
        """The candidate says something other than the running config (or is worded differently)."""
        c = self._candidate
        return c.config != self.running.config or c.text != self.running.text

    def revision(self, n: int) -> Revision:
        """Revision ``n`` back from running (0 = running)."""
        history = self.history
        if not 0 <= n < len(history):
            raise StoreError(f"no revision {n}: the history holds 0..{len(history) - 1}")
        return history[n]

    # ------------------------------------------------------------------------------ candidate

    def _load_candidate(self, text: str) -> Loaded:
        base_dir = os.path.dirname(self.path) if self.path else None
        return load_text(text, filename=CANDIDATE, base_dir=base_dir, config_id=self._config_id, strict=self._strict)

    def set_candidate_text(self, text: str) -> Candidate:
        """Replace the candidate with ``text`` (the config editor's save). Errors are kept, not refused."""
        loaded = self._load_candidate(text)
        self._candidate = Candidate(loaded.config, text, loaded.diagnostics, self._candidate.base)
        return self._candidate

    def edit(self, command: EditCommand) -> EditResult:
        """Apply a ``set``/``unset``/``add``/``delete`` to the candidate (CommandError leaves it unchanged)."""
        before = self._candidate
        outcome = apply_edit(before.config, command)
        text = render(outcome.config)
        loaded = self._load_candidate(text)
        self._candidate = Candidate(loaded.config, text, loaded.diagnostics, before.base)
        return EditResult(self._candidate, diff(before.config, loaded.config), outcome.warnings)

    def discard(self) -> Candidate:
        """Reset the candidate to the running config."""
        self._rolled_back_to = None
        run = self.running
        self._candidate = Candidate(run.config, run.text, run.diagnostics, run.number)
        return self._candidate

    def rollback(self, version: int | str = 1) -> Candidate:
        """Load a version of the history (0 = running, i.e. discard edits; N back; or a digest prefix) into the
        candidate; ``commit`` applies it. Raises StoreError for an unknown or ambiguous version."""
        position, entry = self.resolve(version)
        if position == 0:
            return self.discard()
        text = self.version_text(entry)
        loaded = self._load_candidate(text)
        self._candidate = Candidate(loaded.config, text, loaded.diagnostics, self.running.number)
        self._rolled_back_to = entry.digest
        return self._candidate

    # ------------------------------------------------------------------------------ history

    def resolve(self, version: int | str) -> tuple[int, HistoryEntry]:
        """(position, entry) of a version: N back from running (0 = running) or a digest prefix."""
        try:
            return self.archive.resolve(version)
        except HistoryError as exc:
            raise StoreError(str(exc)) from None

    def version_text(self, entry: HistoryEntry) -> str:
        try:
            return self.archive.text(entry.digest)
        except HistoryError as exc:
            raise StoreError(str(exc)) from None

    def version_config(self, entry: HistoryEntry) -> m.Config:
        """The config of a version, as the engine would load it now (includes resolve against today's files)."""
        if entry.digest == self.running.digest:
            return self.running.config
        return self._load_candidate(self.version_text(entry)).config

    def validate(self) -> list[Diagnostic]:
        """The candidate's diagnostics, recomputed now (interfaces and scripts may have changed)."""
        c = self._candidate
        loaded = self._load_candidate(c.text)
        self._candidate = Candidate(loaded.config, c.text, loaded.diagnostics, c.base)
        return list(loaded.diagnostics)

    def diff(self) -> ReloadPlan:
        return diff(self.running.config, self._candidate.config)

    # ------------------------------------------------------------------------------ applying

    def propose_commit(self) -> Proposal:
        """Validate the candidate and plan it. Raises ConfigRefused (running and candidate untouched)."""
        diagnostics = self.validate()
        if any(d.is_error for d in diagnostics):
            raise ConfigRefused("the candidate configuration has errors", diagnostics, "commit")
        c = self._candidate
        how = "rollback" if self._rolled_back_to == _digest(c.text) else "commit"
        return Proposal(c.config, c.text, diff(self.running.config, c.config), "commit", self.running.number,
                        tuple(diagnostics), how)

    def propose_reload(self, path: str | None = None) -> Proposal:
        """Read the config file (default: the store's) and plan it like a commit. Raises ConfigRefused."""
        target = path or self.path
        if target is None:
            raise StoreError("no config file to reload (the engine was started from text)")
        source = f"reload {os.path.abspath(target)}"
        try:
            loaded = load_file(target, config_id=self._config_id, strict=self._strict, builder=self._builder)
        except ConfigReadError as exc:
            raise ConfigRefused(f"cannot read {target}: {exc.strerror or exc}", (), source) from None
        if loaded.errors:
            raise ConfigRefused(f"{target} has errors", loaded.diagnostics, source)
        return Proposal(loaded.config, loaded.text, diff(self.running.config, loaded.config), source,
                        self.running.number, loaded.diagnostics, "reload")

    def accept(self, proposal: Proposal, who: str, how: str | None = None) -> Revision:
        """Record an applied proposal as the new running revision (and in the history, with ``how``, default
        the proposal's); the candidate is reset to it.

        Nothing is recorded when it changes neither the config nor its text (the running revision is
        returned). Raises StoreError if another commit happened since the proposal was made.
        """
        run = self.running
        if proposal.base != run.number:
            raise StoreError(f"the running config changed (revision {run.number}) since this was proposed "
                             f"(revision {proposal.base})")
        if proposal.plan.empty and proposal.text == run.text:
            self.discard()
            return run
        now = self._clock()
        entry = self.archive.record(proposal.text, who=who, when=now, how=how or proposal.how, plan=proposal.plan)
        rev = Revision(entry.seq, proposal.config, proposal.text, now, who, proposal.source,
                       proposal.plan, proposal.diagnostics)
        self._history.append(rev)
        self.discard()
        return rev

    def commit(self, who: str) -> Revision:
        return self.accept(self.propose_commit(), who)

    def reload(self, path: str | None = None, who: str = "") -> Revision:
        return self.accept(self.propose_reload(path), who)

    # ------------------------------------------------------------------------------ file

    def write(self, path: str | None = None) -> str:
        """Save the running text to ``path`` (default: the store's file) atomically; returns the path."""
        target = path or self.path
        if target is None:
            raise StoreError("no config file to write to (give a path)")
        atomic_write(target, self.running.text)
        return os.path.abspath(target)
