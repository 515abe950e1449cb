"""track_group on static addresses, routes and rules: which interfaces the VRRP instances follow because of them.

keepalived (vrrp_static_track.c, vrrp_data.c) makes every instance of a top-level ``track_group NAME { group
{ VI_1 VI_2 } }`` track, with weight 0, the interface of each static entry that names the group: an address's
``dev`` (default_interface when it has none), a route's output device (``dev``), a rule's input interface
(``iif``/``dev``). While that interface is down the instances are in FAULT (an address without a device and no
default_interface is not installed, so it tracks nothing). An entry that is also ``no_track``
tracks nothing. Pure: the config in, instance name -> interfaces out.
"""

from __future__ import annotations

from collections.abc import Sequence

from lvsconsole.config import model as m


def track_groups(config: m.Config) -> dict[str, tuple[str, ...]]:
    """The top-level track_group blocks: name -> the instances listed in its ``group { }`` (in order)."""
    groups: dict[str, tuple[str, ...]] = {}
    for key, words in config.extra:
        if key == "track_group" and words:
            groups[words[0]] = _group_members(words[1:])
    return groups


def _group_members(words: Sequence[str]) -> tuple[str, ...]:
    """The names inside ``{ group { A B } }`` as the lexer flattens it (``;`` ends a line)."""
    members: list[str] = []
    depth = 0
    in_group = False
    for i, word in enumerate(words):
        if word == "{":
            depth += 1
            in_group = in_group or (depth == 2 and i > 0 and words[i - 1] == "group")
        elif word == "}":
            depth -= 1
            if depth < 2:
                in_group = False
        elif in_group and word != ";":
            members.append(word)
    return tuple(members)


def _after(words: Sequence[str], *keys: str) -> str | None:
    """The word after the first of ``keys`` in ``words``."""
    for i, word in enumerate(words[:-1]):
        if word in keys:
            return words[i + 1]
    return None


def tracked_entries(config: m.Config) -> list[tuple[str, str]]:
    """(track_group name, interface) of every static entry that tracks: has a track_group, is not no_track, and
    has an interface to follow (a route without ``dev`` or a rule without ``iif`` has none, as in keepalived)."""
    out: list[tuple[str, str]] = []
    default_dev = config.global_defs.default_interface
    for address in config.static_ipaddress:
        options = address.options
        group = _after(options, "track_group")
        dev = _after(options, "dev") or default_dev  # without either the address is not installed at all
        if group is not None and "no_track" not in options and dev is not None:
            out.append((group, dev))
    for line in config.static_routes:
        dev = _after(line.words, "dev", "oif")
        if line.track_group is not None and "no_track" not in line.words and dev is not None:
            out.append((line.track_group, dev))
    for line in config.static_rules:
        dev = _after(line.words, "iif", "dev")
        if line.track_group is not None and "no_track" not in line.words and dev is not None:
            out.append((line.track_group, dev))
    return out


def static_tracked_interfaces(config: m.Config) -> dict[str, tuple[str, ...]]:
    """Instance name -> the interfaces it follows (weight 0) because of track_group on static entries."""
    groups = track_groups(config)
    instances = {inst.name for inst in config.instances}
    out: dict[str, list[str]] = {}
    for group, dev in tracked_entries(config):
        for instance in groups.get(group, ()):
            if instance not in instances:  # keepalived: "... doesn't exist - ignoring" (the validator says it)
                continue
            devices = out.setdefault(instance, [])
            if dev not in devices:
                devices.append(dev)
    return {instance: tuple(devices) for instance, devices in out.items()}
