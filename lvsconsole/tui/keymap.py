"""Keymaps: TOML files mapping binding ids (``lvsconsole.tui.bindings``) to keys, applied with Textual's keymap API.

A file maps ids to a key or a comma-separated list of keys, either flat (``"vs.drain" = "d"``) or as tables
(``[vs]`` then ``drain = "d"``); a list of keys is accepted too. Layers, later ones winning:

1. ``keymaps/default.toml`` (the keys in the code when the file is missing),
2. ``~/.config/lvsconsole/keymap.toml`` (``$XDG_CONFIG_HOME``), if it exists,
3. ``--keymap NAME|FILE``: a bundled keymap by name (``default``, ``vim``, ``emacs``) or a file.

An unknown id is an error naming the id and the file, so a typo never silently leaves a key unbound.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lvsconsole.tui.bindings import ALL, DEFAULT_KEYS, KNOWN_IDS

BUNDLED = ("default", "vim", "emacs")


class KeymapError(ValueError):
    """A keymap that cannot be used; the message names the file and the offending id or key."""


def keymap_dir() -> Path:
    """``keymaps/`` beside the package (a source checkout or an editable install)."""
    return Path(__file__).resolve().parent.parent.parent / "keymaps"


def user_keymap_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "lvsconsole" / "keymap.toml"


def _flatten(data: Mapping[str, Any], prefix: str, source: str, out: dict[str, str]) -> None:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            _flatten(value, f"{name}.", source, out)
        elif isinstance(value, str):
            out[name] = value
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            out[name] = ",".join(value)
        else:
            raise KeymapError(f"{source}: binding id {name!r}: keys must be a string or a list of strings")


def parse_keymap(text: str, source: str) -> dict[str, str]:
    """One keymap file's text → {binding id: keys}. Raises KeymapError for bad TOML, values or ids."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise KeymapError(f"{source}: not valid TOML: {exc}") from None
    out: dict[str, str] = {}
    _flatten(data, "", source, out)
    for binding_id, keys in out.items():
        if binding_id not in KNOWN_IDS:
            raise KeymapError(f"{source}: unknown binding id {binding_id!r} "
                              f"(known ids: {', '.join(sorted(KNOWN_IDS))})")
        if not [k for k in (part.strip() for part in keys.split(",")) if k]:
            raise KeymapError(f"{source}: binding id {binding_id!r} has no key")
    return out


def read_keymap(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KeymapError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_keymap(text, str(path))


def resolve(name: str) -> Path:
    """A bundled keymap name or a file path → the file."""
    if name in BUNDLED:
        return keymap_dir() / f"{name}.toml"
    path = Path(name).expanduser()
    if not path.exists():
        raise KeymapError(f"no keymap {name!r}: give one of {', '.join(BUNDLED)} or a TOML file")
    return path


def load_keymap(name: str | None = None, *, user_file: Path | None = None) -> dict[str, str]:
    """The effective keymap: defaults, then the user's file, then ``name`` (see the module docstring)."""
    keymap = dict(DEFAULT_KEYS)
    default_file = keymap_dir() / "default.toml"
    if default_file.exists():
        keymap.update(read_keymap(default_file))
    user = user_file if user_file is not None else user_keymap_path()
    if user.exists():
        keymap.update(read_keymap(user))
    if name is not None and name != "default":
        keymap.update(read_keymap(resolve(name)))
    return keymap


def rebinding(keymap: Mapping[str, str]) -> dict[str, str]:
    """The entries of ``keymap`` that give a binding other keys than the code does: what Textual's keymap API is
    given. Textual applies its keymap to every namespace's bindings on each key press, in time proportional to
    the bindings times the entries; the whole default keymap (every id, as it is) cost ~5 ms a key."""
    declared: dict[str, set[str]] = {}
    for binding in ALL:
        assert binding.id is not None
        declared.setdefault(binding.id, set()).add(binding.key)
    return {binding_id: keys for binding_id, keys in keymap.items() if declared.get(binding_id) != {keys}}


def render_keymap(keymap: Mapping[str, str]) -> str:
    """A keymap as TOML tables (what ``keymaps/default.toml`` holds)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    for binding_id, keys in keymap.items():
        section, _, name = binding_id.partition(".")
        sections.setdefault(section, []).append((name, keys))
    lines: list[str] = []
    for section, items in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f'{name} = "{keys}"' for name, keys in items)
        lines.append("")
    return "\n".join(lines)
