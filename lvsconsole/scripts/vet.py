"""Why a script would be refused, or would fail before doing anything, said exactly.

The rules are keepalived's (``notify.c``: ``set_default_script_user``, ``find_path``,
``check_script_secure``, ``is_executable``):

* The run user is the script's own ``user [group]``, else global ``script_user``, else
  ``keepalived_script`` if that user exists, else root. An unknown user or group refuses the script.
  With ``enable_script_security``, a missing ``keepalived_script`` (and no ``script_user``) refuses every
  script without a user of its own, rather than running it as root.
* A bare name is searched in ``PATH``; a path is resolved (symbolic links, ``..``) as the run user sees it.
* The file must be a regular file that the run user may execute, behind directories it may search.
* When the script runs as root (uid or gid 0), every component of its real path from ``/`` down must be
  owned by root and not writable by a non-root group or by others (a sticky directory such as ``/tmp``
  is allowed). With ``enable_script_security`` an unsafe script is refused; without it keepalived runs it
  anyway (:func:`unsafe_component` lets the validator warn about that).

The director itself may not be root (tests, a dry run): it then runs scripts as itself and judges them as
itself.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from lvsconsole.scripts.run import RunAs

__all__ = ["DEFAULT_PATH", "DEFAULT_USER", "Refusal", "UnsafeComponent", "Vetted", "configured_user", "run_user",
           "runs_as_root", "unsafe_component",
           "vet", "vet_script"]

DEFAULT_USER = "keepalived_script"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""The search path when the environment has none (execvp's and keepalived's fallback)."""

RefusalCode: TypeAlias = Literal[
    "no-default-user", "unknown-user", "bad-name", "not-found", "not-searchable", "not-regular", "not-executable",
    "unsafe",
]
USER_CODES: frozenset[RefusalCode] = frozenset({"no-default-user", "unknown-user"})
"""Refusals about the run user rather than the file."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a script will not run. ``reason`` is a complete sentence naming the path, user or component."""

    code: RefusalCode
    reason: str

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True, slots=True)
class Vetted:
    """A script that may run: its resolved path and the user to run it as (None: the director's own)."""

    path: str
    run_as: RunAs | None


@dataclass(frozen=True, slots=True)
class UnsafeComponent:
    """A component of a root-run script's path that a non-root user could replace or write."""

    path: str
    owner: str
    group: str
    mode: int
    who: str
    """Who may write it: "its owner alice", "group staff", "others"."""

    def __str__(self) -> str:
        return f"{self.path} is writable by {self.who} (owner {self.owner}:{self.group}, mode {self.mode:04o})"


# ---------------------------------------------------------------------------------------------- the run user


def run_user(user: str | None, group: str | None, security_enabled: bool) -> RunAs | Refusal | None:
    """The user a script runs as: ``user`` (its own, else global script_user) or the default.

    None means the director's own user: root when no ``keepalived_script`` exists, or whoever runs a
    non-root director (it cannot switch users).
    """
    if user is not None:
        try:
            return RunAs.lookup(user, group)
        except KeyError as exc:
            return Refusal("unknown-user", f"script user {user}{':' + group if group else ''}: {exc.args[0]}")
    if os.geteuid() != 0:
        return None
    try:
        return RunAs.lookup(DEFAULT_USER)
    except KeyError:
        if security_enabled:
            return Refusal("no-default-user", f"no script_user is set and the default user {DEFAULT_USER} does "
                                              "not exist; with enable_script_security scripts are not run as root "
                                              f"(set script_user or create {DEFAULT_USER})")
        return None


def _identity(run_as: RunAs | None) -> tuple[int, tuple[int, ...], str]:
    if run_as is None:
        uid = os.geteuid()
        gids = (os.getegid(), *os.getgroups())
        return uid, gids, _user_name(uid)
    return run_as.uid, (run_as.gid, *run_as.groups), run_as.name or _user_name(run_as.uid)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _allowed(st: os.stat_result, uid: int, gids: Sequence[int], owner_bit: int, group_bit: int,
             other_bit: int) -> bool:
    if uid == 0:
        return True
    if st.st_uid == uid:
        return bool(st.st_mode & owner_bit)
    if st.st_gid in gids:
        return bool(st.st_mode & group_bit)
    return bool(st.st_mode & other_bit)


def _may_execute(st: os.stat_result, uid: int, gids: Sequence[int]) -> bool:
    if uid == 0:  # root may execute a file only if someone may
        return bool(st.st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
    return _allowed(st, uid, gids, stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH)


def _describe(st: os.stat_result) -> str:
    return f"owner {_user_name(st.st_uid)}:{_group_name(st.st_gid)}, mode {stat.S_IMODE(st.st_mode):04o}"


# ---------------------------------------------------------------------------------------------- the file


def _search(name: str, search_path: str, uid: int, gids: Sequence[int], who: str) -> str | Refusal:
    denied: str | None = None
    for entry in search_path.split(":"):
        candidate = os.path.join(entry or ".", name)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and _may_execute(st, uid, gids):
            return candidate
        denied = denied or candidate
    if denied is not None:
        return Refusal("not-executable", f"script {name}: {denied} (found in PATH) is not an executable file "
                                         f"for user {who}")
    return Refusal("not-found", f"script {name} not found in PATH ({search_path})")


def _components(path: str) -> list[str]:
    """``/``, ``/a``, ``/a/b`` … down to ``path`` (absolute)."""
    parts = [p for p in path.split("/") if p]
    return ["/"] + ["/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _reach(path: str, uid: int, gids: Sequence[int], who: str) -> os.stat_result | Refusal:
    """Stat ``path`` after checking that every directory on the way exists and is searchable by the user."""
    components = _components(path)
    for directory in components[:-1]:
        try:
            st = os.stat(directory)
        except OSError:
            return Refusal("not-found", f"script {path} does not exist (no directory {directory})")
        if not stat.S_ISDIR(st.st_mode):
            return Refusal("not-found", f"script {path} does not exist ({directory} is not a directory)")
        if not _allowed(st, uid, gids, stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH):
            return Refusal("not-searchable", f"script {path} cannot be reached by user {who}: directory "
                                             f"{directory} is not searchable ({_describe(st)})")
    try:
        return os.stat(path)
    except OSError:
        return Refusal("not-found", f"script {path} does not exist")


def unsafe_component(path: str) -> UnsafeComponent | None:
    """The first component of ``path`` (real path, from ``/`` down) a non-root user may write, if any.

    keepalived's rule: owned by a non-root user, or writable by a non-root group or by others; a sticky
    directory is fine (others cannot replace what is in it), the file itself never is.
    """
    real = os.path.realpath(path)
    for part in _components(real):
        try:
            st = os.stat(part)
        except OSError:
            return None
        sticky_dir = stat.S_ISDIR(st.st_mode) and bool(st.st_mode & stat.S_ISVTX)
        who: str | None = None
        if st.st_uid != 0:
            who = f"its owner {_user_name(st.st_uid)}"
        elif not sticky_dir and st.st_gid != 0 and st.st_mode & stat.S_IWGRP:
            who = f"group {_group_name(st.st_gid)}"
        elif not sticky_dir and st.st_mode & stat.S_IWOTH:
            who = "others"
        if who is not None:
            return UnsafeComponent(part, _user_name(st.st_uid), _group_name(st.st_gid), stat.S_IMODE(st.st_mode),
                                   who)
    return None


def runs_as_root(run_as: RunAs | None) -> bool:
    """Whether a script run as ``run_as`` (None: as the director) has root's uid or gid."""
    if run_as is None:
        return os.geteuid() == 0 or os.getegid() == 0
    return run_as.uid == 0 or run_as.gid == 0


# ---------------------------------------------------------------------------------------------- entry points


def vet(argv: Sequence[str], user: str | None, security_enabled: bool, *, group: str | None = None,
        search_path: str | None = None) -> Vetted | Refusal:
    """Check a script before running it. ``user``/``group``: its own, else global script_user, else None."""
    if not argv or not argv[0]:
        return Refusal("not-found", "empty script command")
    name = argv[0]
    if "\0" in name:
        return Refusal("bad-name", f"script path {name!r} contains a character no file name can hold")
    run_as = run_user(user, group, security_enabled)
    if isinstance(run_as, Refusal):
        return run_as
    uid, gids, who = _identity(run_as)
    if "/" not in name:
        found = _search(name, search_path or os.environ.get("PATH") or DEFAULT_PATH, uid, gids, who)
        if isinstance(found, Refusal):
            return found
        path = os.path.abspath(found)
    else:
        path = os.path.normpath(os.path.join("/", name))  # scripts run with / as their working directory
    try:
        st = _reach(path, uid, gids, who)
    except ValueError:  # a lone surrogate: no file can have this name
        return Refusal("bad-name", f"script path {name!r} contains a character no file name can hold")
    if isinstance(st, Refusal):
        return st
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        return Refusal("not-regular", f"script {path} is {kind}")
    if not _may_execute(st, uid, gids):
        return Refusal("not-executable", f"script {path} is not executable by user {who} ({_describe(st)})")
    if security_enabled and runs_as_root(run_as):
        unsafe = unsafe_component(path)
        if unsafe is not None:
            return Refusal("unsafe", f"script {path} is unsafe: {unsafe}")
    return Vetted(path, run_as)


def vet_script(argv: Sequence[str], user: str | None, security_enabled: bool, *, group: str | None = None,
               search_path: str | None = None) -> Refusal | None:
    """Why keepalived would refuse the script, or why it would fail before it runs; None if it may run."""
    verdict = vet(argv, user, security_enabled, group=group, search_path=search_path)
    return verdict if isinstance(verdict, Refusal) else None


def configured_user(*choices: Sequence[str | None]) -> tuple[str | None, str | None]:
    """(user, group) from the first non-empty choice: a script's own ``user [group]``, then script_user."""
    for choice in choices:
        words = [w for w in choice if w]
        if words:
            return words[0], words[1] if len(words) > 1 else None
    return None, None
