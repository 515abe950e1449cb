"""Which virtual servers' health checks a reload touches, from its :class:`~lvsconsole.config.diff.ReloadPlan`.

The check service rebuilds only those (:meth:`lvsconsole.check.service.CheckService.reload`); every other
virtual server keeps its checks running as they were. Settings that shape every check (the global ones
below, the SSL block the SSL_GET checks share) touch everything: the answer is then None.
"""

from __future__ import annotations

from lvsconsole.config import model as m
from lvsconsole.config.diff import ReloadPlan

__all__ = ["GLOBAL_CHECK_SETTINGS", "touched_virtual_servers"]

GLOBAL_CHECK_SETTINGS = frozenset({"checker_log_all_failures", "script_user", "enable_script_security"})
"""global_defs fields that every checker is built with (see :mod:`lvsconsole.check.from_config`)."""

_RS_SEPARATOR = " -> "
"""How the plan names a real server or a checker: ``<VS key> -> <RS> [<checker>]`` (config/diff.py)."""


def touched_virtual_servers(plan: ReloadPlan, old: m.Config, new: m.Config) -> set[str] | None:
    """The config keys (``VirtualServer.key``) of the virtual servers whose checks the plan changes, or None
    when the change reaches every check."""
    touched: set[str] = set()
    track_files: set[str] = set()
    groups: set[str] = set()
    for change in plan.changes:
        if change.section == "global_defs":
            if any(f.field in GLOBAL_CHECK_SETTINGS for f in change.fields):
                return None
        elif change.section == "SSL":
            return None
        elif change.section == "virtual_server":
            touched.add(change.key)
        elif change.section in ("real_server", "checker"):
            touched.add(change.key.split(_RS_SEPARATOR, 1)[0])
        elif change.section == "track_file":
            track_files.add(change.key)
        elif change.section == "virtual_server_group":
            groups.add(change.key)
    known = {vs.key for vs in old.virtual_servers} | {vs.key for vs in new.virtual_servers}
    if not touched <= known:
        return None  # the plan names a virtual server in a way this module does not follow: be safe
    if track_files or groups:
        for config in (old, new):
            for vs in config.virtual_servers:
                if vs.group in groups or any(
                    isinstance(c, m.FileCheck) and c.track_file in track_files
                    for rs in vs.real_servers
                    for c in rs.checkers
                ):
                    touched.add(vs.key)
    return touched
