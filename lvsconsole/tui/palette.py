"""Command-palette providers (Ctrl+P): the console's actions, per-server and per-instance actions (drain,
undrain, weight, disable, enable, failover), and any command of the engine's language typed in full.

Every hit goes through the same app methods as the keys and the prompt, so the palette confirms drains
and shows the diff before a commit exactly as they do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Protocol, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from lvsconsole.engine.commands import parse
from lvsconsole.engine.director_api import DirectorSnapshot
from lvsconsole.engine.errors import CommandError

Action = tuple[str, str, Callable[[], object]]
"""(title, help, callback)"""

MAX_SERVER_HITS = 60


class PaletteHost(Protocol):
    """What the providers need from the app."""

    def palette_actions(self) -> list[Action]: ...

    def palette_snapshot(self) -> DirectorSnapshot: ...

    def palette_rs_action(self, kind: str, vs_key: str, rs_key: str) -> None: ...

    def palette_failover(self, instance: str) -> None: ...

    def palette_run(self, command: str) -> None: ...


def _host(provider: Provider) -> PaletteHost:
    return cast(PaletteHost, provider.app)


class ConsoleActions(Provider):
    """Commit, reload, diff, editor, help, pause, theme, quit…"""

    async def discover(self) -> Hits:
        for title, help_text, callback in _host(self).palette_actions():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in _host(self).palette_actions():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, text=title, help=help_text)


RS_ACTIONS = (("drain", "Drain"), ("undrain", "Undrain"), ("weight", "Set weight of"), ("disable", "Disable"),
              ("enable", "Enable"))


def server_titles(snapshot: DirectorSnapshot) -> Iterator[tuple[str, str, str, str]]:
    """(title, kind, vs key, rs key) for every real server and action."""
    for vs in snapshot.virtual_servers:
        for rs in vs.real_servers:
            for kind, verb in RS_ACTIONS:
                yield f"{verb} {rs.label} in {vs.label}", kind, vs.key, rs.key


class ServerActions(Provider):
    """Drain / undrain / weight / disable / enable any real server, failover any instance, by name."""

    async def search(self, query: str) -> Hits:
        host = _host(self)
        matcher = self.matcher(query)
        snapshot = host.palette_snapshot()
        found = 0
        for inst in snapshot.instances:
            title = f"Failover {inst.name} (now {inst.state})"
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(host.palette_failover, inst.name), text=title,
                          help="hand mastership to the peer (asks first)")
        for title, kind, vs_key, rs_key in server_titles(snapshot):
            score = matcher.match(title)
            if score > 0:
                found += 1
                yield Hit(score, matcher.highlight(title), partial(host.palette_rs_action, kind, vs_key, rs_key),
                          text=title, help="asks before anything that takes traffic away")
                if found >= MAX_SERVER_HITS:
                    return


class TypedCommand(Provider):
    """A complete command of the engine's language (``show vs``, ``weight 10.0.0.2:80 50%``…): run it."""

    async def search(self, query: str) -> Hits:
        text = query.strip()
        if not text:
            return
        try:
            parse(text)
        except CommandError:
            return
        except Exception:
            return
        title = f"Run: {text}"
        yield Hit(1.0, title, partial(_host(self).palette_run, text), text=title,
                  help="the same as typing it at the ':' prompt")


PROVIDERS = (ConsoleActions, ServerActions, TypedCommand)
