"""``EngineLink``: everything the console needs from an engine, so that the app does not care where it runs.

- ``EmbeddedLink`` wraps an ``Engine`` of this process (``running_engine``): snapshots are the director's own
  (taken in slices, so that the shared loop stays responsive), commands go to its executor, events come from its bus.
- ``RemoteLink`` talks to an engine over its control socket (``lvsconsole attach``): a remote engine has no
  snapshot object, so ``poll`` asks ``show vrrp``, ``show vs`` and ``show stats`` (the JSON of the views'
  ``as_json``) and rebuilds the same view objects; events come from a subscription.

Panels only ever see ``DirectorSnapshot`` views, ``Result`` and ``Event`` objects.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import gc
import ipaddress
import os
import pwd
import re
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from lvsconsole.engine.bus import Subscription
from lvsconsole.engine.commands import Names, Result
from lvsconsole.engine.control import ControlClient, ControlSocketError
from lvsconsole.engine.director_api import (
    DirectorSnapshot,
    RealServerView,
    VirtualServerView,
    VrrpInstanceView,
)
from lvsconsole.engine.events import OperatorAction

if TYPE_CHECKING:
    from lvsconsole.engine.daemon import Engine
    from lvsconsole.tui.handoff import Handoff

REPLAY = 500
"""Events replayed to the health log when the console starts."""

_ROUTER_ID = re.compile(r"^\s*router_id\s+(\S+)", re.MULTILINE)


def local_who() -> str:
    """The audit name of the operator at this terminal, shaped like the control socket's ``who``."""
    uid = os.getuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    return f"uid={uid}({user}) via tui"


@dataclass(frozen=True)
class EngineInfo:
    """What the header shows."""

    router_id: str
    host: str
    uptime: float | None
    config_file: str | None
    candidate_dirty: bool
    revision: int | None
    mode: str
    connected: bool = True
    error: str = ""
    loop_lag_ms: float | None = None
    """The engine's event-loop lag now, and the limit beyond which a VRRP instance's timers are at risk."""
    loop_lag_limit_ms: float | None = None
    confirm_deadline: float | None = None
    """Wall-clock time a pending ``commit confirmed`` rolls back unless confirmed (None: nothing pending)."""
    sync_coverage: str | None = None
    """"sync 97%" / "sync ?" (peer unreachable): connection-sync coverage, when lvs_sync_peer_http is set."""


def pending_deadline(stats: Mapping[str, Any]) -> float | None:
    """The deadline of a pending ``commit confirmed`` from ``show stats`` (None when nothing is pending)."""
    pending = stats.get("commit_pending")
    deadline = pending.get("deadline") if isinstance(pending, Mapping) else None
    return float(deadline) if isinstance(deadline, int | float) else None


def coverage_label(stats: Mapping[str, Any]) -> str | None:
    """The header's "sync N%" from ``show stats`` (engine/synccoverage.py); None without a watcher."""
    figures = stats.get("sync_coverage")
    if not isinstance(figures, Mapping):
        return None
    percent = figures.get("percent")
    if figures.get("error"):
        return "sync ? (peer unreachable)"
    if isinstance(percent, int | float):
        return f"sync {percent:.0f}%"
    return "sync -" if figures.get("measured_at") is not None else None


def stat_number(stats: Mapping[str, Any], key: str) -> float | None:
    """A numeric figure of ``show stats`` (None when absent, e.g. an older engine)."""
    value = stats.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Preview:
    """A plan waiting for the operator's confirmation (commit or reload), as the diff screen shows it."""

    source: str
    """"commit" or "reload FILE"."""
    changes: tuple[dict[str, Any], ...] = ()
    """``ReloadPlan.as_json()``."""
    diagnostics: tuple[dict[str, Any], ...] = ()
    """``Diagnostic.as_json()`` of the config to apply (errors and warnings)."""
    refused: str | None = None
    """Why it cannot be applied (errors), or None."""
    ipvs_ops: tuple[dict[str, Any], ...] = ()
    """``PlannedOp.as_json()``: the exact IPVS operations and the connections on what each touches."""
    address_ops: tuple[dict[str, Any], ...] = ()
    """``AddressOp.as_json()``: the VIPs added or removed, and when."""

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [d for d in self.diagnostics if d.get("severity") == "error"]

    @property
    def applicable(self) -> bool:
        return self.refused is None and not self.errors


@dataclass(frozen=True)
class Candidate:
    """The candidate config for the editor: its text and where its includes are resolved from."""

    text: str
    base_dir: str | None
    editable: bool
    why_not: str = ""


def names_of(snapshot: DirectorSnapshot) -> Names:
    """Live names for the prompt's completion (the same as ``CommandExecutor.names``)."""
    rs_names: dict[str, None] = {}
    for vs in snapshot.virtual_servers:
        for rs in vs.real_servers:
            rs_names[rs.label] = None
    vips: dict[str, None] = {}
    for inst in snapshot.instances:
        for vip in inst.vips:
            vips[vip] = None
    return Names(
        instances=tuple(i.name for i in snapshot.instances),
        virtual_servers=tuple(dict.fromkeys(vs.label for vs in snapshot.virtual_servers)),
        real_servers=tuple(rs_names),
        vips=tuple(vips),
    )


# ---------------------------------------------------------------------------------------------- JSON → views


def _address(text: Any) -> Any:
    return None if text is None else ipaddress.ip_address(str(text))


def rs_from_json(d: Mapping[str, Any]) -> RealServerView:
    overrides = d.get("overrides") or {}
    return RealServerView(
        key=str(d["key"]), address=ipaddress.ip_address(str(d["address"])), port=d.get("port"),
        forward=d.get("forward", "NAT"), weight=d.get("weight"), config_weight=int(d.get("config_weight", 0)),
        health=d.get("health", "up"), active_conns=int(d.get("active_conns", 0)),
        inactive_conns=int(d.get("inactive_conns", 0)), persist_conns=int(d.get("persist_conns", 0)),
        cps=int(d.get("cps", 0)), bps=int(d.get("bps", 0)), drained=bool(overrides.get("drain", False)),
        disabled=bool(overrides.get("disabled", False)), weight_override=overrides.get("weight"),
        check_stalled=bool(d.get("check_stalled", False)),
    )


def vs_from_json(d: Mapping[str, Any]) -> VirtualServerView:
    return VirtualServerView(
        key=str(d["key"]), address=_address(d.get("address")), port=d.get("port"),
        protocol=str(d.get("protocol", "TCP")), fwmark=d.get("fwmark"), group=d.get("group"),
        scheduler=str(d.get("scheduler", "")), persistence_timeout=d.get("persistence_timeout"),
        quorum_up=bool(d.get("quorum_up", True)),
        real_servers=tuple(rs_from_json(r) for r in d.get("real_servers", ())),
        cps=int(d.get("cps", 0)), bps=int(d.get("bps", 0)),
    )


def instance_from_json(d: Mapping[str, Any]) -> VrrpInstanceView:
    return VrrpInstanceView(
        name=str(d["name"]), state=str(d.get("state", "INIT")), priority=int(d.get("priority", 0)),
        base_priority=int(d.get("base_priority", 0)), vrid=int(d.get("vrid", 0)), interface=d.get("interface"),
        advert_int=float(d.get("advert_int", 1.0)), master=d.get("master"), since=d.get("since"),
        runtime_priority=d.get("runtime_priority"), sync_group=d.get("sync_group"),
        vips=tuple(d.get("vips", ())), counters=dict(d.get("counters") or {}),
        peers=tuple(p for p in d.get("peers") or () if isinstance(p, dict)),
    )


# ---------------------------------------------------------------------------------------------- the interface


class EngineLink(abc.ABC):
    """One engine as the console sees it."""

    kind: ClassVar[str] = ""
    can_handoff: ClassVar[bool] = False

    def __init__(self) -> None:
        self._snapshot = DirectorSnapshot(time.time())
        self.host = socket.gethostname()

    @property
    def snapshot(self) -> DirectorSnapshot:
        """The last snapshot ``poll`` returned."""
        return self._snapshot

    def names(self) -> Names:
        return names_of(self._snapshot)

    async def start(self) -> None:
        """Connect (remote) and take a first snapshot."""
        await self.poll()

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what ``start`` took (the engine itself is not stopped)."""

    @abc.abstractmethod
    async def poll(self) -> DirectorSnapshot:
        """A fresh snapshot (kept as ``snapshot``)."""

    @abc.abstractmethod
    def info(self) -> EngineInfo:
        """Header facts as of the last ``poll``."""

    @abc.abstractmethod
    async def run(self, command: str) -> Result:
        """Run one command line of the engine's language, audited as this operator."""

    @abc.abstractmethod
    async def subscribe(self, replay: int = REPLAY) -> Subscription:
        """The engine's event stream, starting with the last ``replay`` events."""

    @abc.abstractmethod
    async def candidate(self) -> Candidate:
        """The candidate config text, for the editor."""

    @abc.abstractmethod
    async def save_candidate(self, text: str) -> Result:
        """Replace the candidate with ``text`` (errors are kept; ``commit`` refuses them)."""

    @abc.abstractmethod
    async def preview_reload(self) -> Preview:
        """What ``reload`` would change (the config file against the running config)."""

    async def preview_commit(self) -> Preview:
        """What ``commit`` would change (candidate against running), with the candidate's errors."""
        result = await self.run("diff")
        data = result.data if isinstance(result.data, dict) else {}
        errors = tuple(data.get("candidate_errors") or ())
        refused = None if result.ok else result.message
        if errors:
            refused = "the candidate configuration has errors"
        return Preview("commit", tuple(data.get("changes") or ()), errors, refused,
                       ipvs_ops=tuple(data.get("ipvs_ops") or ()), address_ops=tuple(data.get("address_ops") or ()))


# ---------------------------------------------------------------------------------------------- embedded


class EmbeddedLink(EngineLink):
    """An engine running in this process."""

    kind = "embedded"
    can_handoff = True

    def __init__(self, engine: Engine, *, socket_path: str | None = None, dry_run: bool = False,
                 config_id: str | None = None) -> None:
        super().__init__()
        self.engine = engine
        self.socket_path = socket_path
        self.dry_run = dry_run
        self.config_id = config_id
        self.who = local_who()
        self.handed_to: Handoff | None = None
        """The background engine this one was handed to (set once it answered)."""

    async def start(self) -> None:
        await self.poll()
        # What exists now (the running config, the IPVS table, the check policy: millions of objects at 10,000
        # real servers) lives as long as the engine does. Kept out of the cyclic collector's full passes, which
        # would otherwise stop the loop this console shares with the engine for half a second every minute.
        gc.freeze()

    async def poll(self) -> DirectorSnapshot:
        # In slices: the engine shares this loop with the console, and a big table's snapshot would hold up
        # both the engine's timers and the keys for as long as it takes.
        self._snapshot = await self.engine.director.snapshot_sliced()
        return self._snapshot

    def info(self) -> EngineInfo:
        store = self.engine.store
        uptime = self._snapshot.stats.get("uptime")
        router_id = store.running.config.global_defs.router_id or self.host
        mode = "embedded" + (", dry-run" if self.dry_run else "")
        return EngineInfo(router_id=router_id, host=self.host, uptime=uptime if isinstance(uptime, float) else None,
                          config_file=store.path, candidate_dirty=store.dirty, revision=store.running.number,
                          mode=mode, loop_lag_ms=stat_number(self._snapshot.stats, "loop_lag_ms"),
                          loop_lag_limit_ms=stat_number(self._snapshot.stats, "loop_lag_limit_ms"),
                          confirm_deadline=store.confirm.next_deadline(),
                          sync_coverage=coverage_label(self._snapshot.stats))

    async def run(self, command: str) -> Result:
        return await self.engine.executor.run(command, self.who)

    async def subscribe(self, replay: int = REPLAY) -> Subscription:
        return self.engine.bus.subscribe(replay=replay)

    async def candidate(self) -> Candidate:
        store = self.engine.store
        base_dir = os.path.dirname(store.path) if store.path else None
        return Candidate(store.candidate.text, base_dir, editable=True)

    async def save_candidate(self, text: str) -> Result:
        store = self.engine.store
        candidate = store.set_candidate_text(text)
        errors = candidate.errors
        message = "candidate saved" + (f" ({len(errors)} error{'s' * (len(errors) != 1)}: {errors[0]})"
                                       if errors else "; 'commit' applies it")
        self.engine.bus.publish(OperatorAction(who=self.who, command="edit candidate (config editor)", ok=True,
                                               message=message.splitlines()[0]))
        return Result(True, message, {"dirty": store.dirty,
                                      "candidate_errors": [d.as_json() for d in errors]})

    async def preview_reload(self) -> Preview:
        from lvsconsole.engine.store import ConfigRefused, StoreError

        store = self.engine.store
        source = f"reload {store.path}"
        try:
            proposal = store.propose_reload()
        except ConfigRefused as exc:
            return Preview(exc.source or source, (), tuple(d.as_json() for d in exc.diagnostics), exc.reason)
        except StoreError as exc:
            return Preview(source, (), (), str(exc))
        ops, addresses = self.engine.executor.plan_impact(proposal.config) if not proposal.empty else ([], [])
        return Preview(proposal.source, tuple(proposal.plan.as_json()),
                       tuple(d.as_json() for d in proposal.diagnostics),
                       ipvs_ops=tuple(op.as_json() for op in ops), address_ops=tuple(a.as_json() for a in addresses))

    async def handoff(self, progress: Callable[[str], None], *, write_first: bool = False) -> str:
        """Hand this engine to a background ``lvsconsole run --headless`` (see ``handoff``)."""
        from lvsconsole.engine.control import DEFAULT_SOCKET
        from lvsconsole.tui.handoff import hand_off

        self.handed_to = await hand_off(self.engine, socket_path=self.socket_path or DEFAULT_SOCKET,
                                        dry_run=self.dry_run, config_id=self.config_id, who=self.who,
                                        progress=progress, write_first=write_first)
        return self.handed_to.message


# ---------------------------------------------------------------------------------------------- remote


@dataclass
class _RemoteState:
    stats: dict[str, Any] = field(default_factory=dict)
    revision: int | None = None
    router_id: str | None = None
    error: str = ""


class RemoteLink(EngineLink):
    """An engine reached over its control socket."""

    kind = "remote"

    def __init__(self, socket_path: str, *, timeout: float = 5.0) -> None:
        super().__init__()
        self.socket_path = socket_path
        self.timeout = timeout
        self._client: ControlClient | None = None
        self._state = _RemoteState()
        self._lock = asyncio.Lock()

    async def _connected(self) -> ControlClient:
        if self._client is None:
            self._client = await ControlClient.connect(self.socket_path, timeout=self.timeout)
        return self._client

    async def _request(self, command: str) -> Result:
        try:
            client = await self._connected()
            return await client.request(command, who="tui", timeout=30.0)
        except (ControlSocketError, OSError, TimeoutError) as exc:
            await self._drop()
            raise ControlSocketError(str(exc) or type(exc).__name__) from None

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()

    async def close(self) -> None:
        await self._drop()

    async def start(self) -> None:
        await self._connected()
        await self.poll()

    async def poll(self) -> DirectorSnapshot:
        async with self._lock:
            try:
                vrrp, vss, stats = await asyncio.gather(
                    self._request("show vrrp"), self._request("show vs"), self._request("show stats"))
            except ControlSocketError as exc:
                self._state.error = str(exc)
                return self._snapshot
            self._state.error = ""
            instances = tuple(instance_from_json(d) for d in (vrrp.data or ()) if isinstance(d, dict))
            servers = tuple(vs_from_json(d) for d in (vss.data or ()) if isinstance(d, dict))
            stat = stats.data if isinstance(stats.data, dict) else {}
            self._state.stats = stat
            revision = stat.get("revision")
            if revision != self._state.revision:
                self._state.revision = revision if isinstance(revision, int) else None
                self._state.router_id = await self._router_id()
            drift: tuple[dict[str, Any], ...] = ()
            if stat.get("ipvs_drift"):  # asked only when there is some: most polls find none
                with contextlib.suppress(ControlSocketError):
                    held = await self._request("show drift")
                    drift = tuple(d for d in (held.data or ()) if isinstance(d, dict)) if held.ok else ()
            self._snapshot = DirectorSnapshot(time.time(), instances, servers, stat, drift=drift)
            return self._snapshot

    async def _router_id(self) -> str | None:
        try:
            running = await self._request("show config running")
        except ControlSocketError:
            return None
        match = _ROUTER_ID.search(running.message)
        return match.group(1) if match else None

    def info(self) -> EngineInfo:
        st = self._state
        uptime = st.stats.get("uptime")
        return EngineInfo(
            router_id=st.router_id or self.host, host=self.host,
            uptime=float(uptime) if isinstance(uptime, int | float) else None,
            config_file=st.stats.get("config_file"), candidate_dirty=bool(st.stats.get("candidate_dirty")),
            revision=st.revision, mode=f"attached to {self.socket_path}", connected=not st.error, error=st.error,
            loop_lag_ms=stat_number(st.stats, "loop_lag_ms"),
            loop_lag_limit_ms=stat_number(st.stats, "loop_lag_limit_ms"),
            confirm_deadline=pending_deadline(st.stats),
            sync_coverage=coverage_label(st.stats),
        )

    async def run(self, command: str) -> Result:
        try:
            return await self._request(command)
        except ControlSocketError as exc:
            return Result(False, f"cannot reach the engine: {exc}", {"error": {"message": str(exc)}})

    async def subscribe(self, replay: int = REPLAY) -> Subscription:
        client = await self._connected()
        return await client.subscribe(replay=replay)

    async def candidate(self) -> Candidate:
        result = await self.run("show config candidate")
        config_file = self._state.stats.get("config_file")
        base_dir = os.path.dirname(config_file) if isinstance(config_file, str) else None
        data = result.data if isinstance(result.data, dict) else {}
        return Candidate(str(data.get("text", result.message)), base_dir, editable=False,
                         why_not="an attached console cannot replace the candidate text (the control socket has no "
                                 "command for it): edit with set/unset/add/delete at the prompt")

    async def save_candidate(self, text: str) -> Result:
        return Result(False, "an attached console cannot replace the candidate text; use set/unset/add/delete")

    async def preview_reload(self) -> Preview:
        from lvsconsole.config.diff import diff
        from lvsconsole.config.lexer import ConfigReadError
        from lvsconsole.engine.store import load_file, load_text

        path = self._state.stats.get("config_file")
        if not isinstance(path, str):
            return Preview("reload", (), (), "the engine has no config file to reload")
        source = f"reload {path}"
        try:
            running = await self._request("show config running")
        except ControlSocketError as exc:
            return Preview(source, (), (), f"cannot reach the engine: {exc}")
        try:
            loaded = await asyncio.to_thread(load_file, path)
        except ConfigReadError as exc:
            return Preview(source, (), (), f"cannot read {path}: {exc.strerror or exc}")
        diagnostics = tuple(d.as_json() for d in loaded.diagnostics)
        if loaded.errors:
            return Preview(source, (), diagnostics, f"{path} has errors")
        current = await asyncio.to_thread(load_text, running.message, filename="<running>",
                                          base_dir=os.path.dirname(path))
        plan = diff(current.config, loaded.config)
        return Preview(source, tuple(plan.as_json()), diagnostics)


def rs_command_target(vs: VirtualServerView, rs: RealServerView) -> str:
    """``RS in VS`` naming exactly this pair (the VS with its protocol, so TCP and UDP never mix)."""
    if vs.group is not None:
        where = f"group {vs.group}"
    elif vs.fwmark is not None:
        where = f"fwmark {vs.fwmark}"
    else:
        from lvsconsole.engine.refs import endpoint_text

        assert vs.address is not None
        where = f"{endpoint_text(vs.address, vs.port if vs.port is not None else 0)}/{vs.protocol.lower()}"
    return f"{rs.label} in {where}"


def find_pair(snapshot: DirectorSnapshot, vs_key: str,
              rs_key: str | None) -> tuple[VirtualServerView | None, RealServerView | None]:
    vs = next((v for v in snapshot.virtual_servers if v.key == vs_key), None)
    if vs is None or rs_key is None:
        return vs, None
    return vs, next((r for r in vs.real_servers if r.key == rs_key), None)


def pairs(snapshot: DirectorSnapshot) -> Sequence[tuple[VirtualServerView, RealServerView]]:
    return [(vs, rs) for vs in snapshot.virtual_servers for rs in vs.real_servers]
