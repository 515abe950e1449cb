"""Runs parsed commands against the director and the config store, one ``Result`` per command.

Every command that changes something (``Command.MUTATES``) is audited: an ``OperatorAction`` event with
who, the command as typed, the outcome and what changed, whether it succeeded or was refused. Changing
commands run one at a time (an asyncio lock), so a commit never interleaves with a drain or a reload.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from lvsconsole.config import model as m
from lvsconsole.config.diagnostics import Diagnostic
from lvsconsole.engine import showtext, versions
from lvsconsole.engine.bus import EventBus
from lvsconsole.engine.commands import (
    CheckNow,
    Command,
    Commit,
    Confirm,
    Diff,
    Disable,
    Drain,
    DriftAdopt,
    DriftReconcile,
    EditCommand,
    Enable,
    Help,
    Names,
    Reload,
    Result,
    Rollback,
    RsCommand,
    ScriptTest,
    SetState,
    Show,
    Trace,
    Undrain,
    Validate,
    VrrpFailover,
    VrrpPriority,
    Weight,
    Word,
    Write,
    help_text,
    parse,
    split_commands,
)
from lvsconsole.engine.confirm import ConfirmTimer, NothingPending
from lvsconsole.engine.connshow import show_conns, sync_coverage, trace_command
from lvsconsole.engine.director_api import (
    CheckFlightCore,
    DirectorCore,
    DirectorError,
    DirectorSnapshot,
    DrainWatchCore,
    DriftCore,
    OverrideChange,
    RealServerView,
    RsId,
    VirtualServerView,
)
from lvsconsole.engine.drainwatch import DrainPlan
from lvsconsole.engine.drift import adopt_command
from lvsconsole.engine.errors import CommandError
from lvsconsole.engine.events import (
    CommitConfirmed,
    CommitPending,
    CommitRolledBack,
    Event,
    OperatorAction,
    ReloadApplied,
    ReloadRefused,
    ReloadStarted,
    event_to_json,
)
from lvsconsole.engine.guard import BlastRadius, blast_radius, refusal
from lvsconsole.engine.history import HistoryError
from lvsconsole.engine.impact import AddressOp, PlannedOp, TablePreviewer, address_ops, ipvs_ops
from lvsconsole.engine.keys import configured_servers, vs_key
from lvsconsole.engine.refs import RsRef, VsRef
from lvsconsole.engine.retirees import PlannedRemoval, planned_removals
from lvsconsole.engine.scripts import misc_specs, run_json, run_specs, run_text, track_spec
from lvsconsole.engine.store import ConfigRefused, ConfigStore, Proposal, StoreError
from lvsconsole.ipvs.drift import select_ids

MAX_WEIGHT = 2**31 - 1
LOG_DEFAULT = 50

Pair = tuple[VirtualServerView, RealServerView]


def _diag_json(items: Sequence[Diagnostic]) -> list[dict[str, object]]:
    return [d.as_json() for d in items]


class CommandExecutor:
    def __init__(self, core: DirectorCore, store: ConfigStore, bus: EventBus, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.core = core
        self.store = store
        self.bus = bus
        self._clock = clock
        self._lock: asyncio.Lock | None = None
        self.confirm_timer = ConfirmTimer(store.confirm, self._confirm_timed_out, clock=clock)
        """Rolls a ``commit confirmed`` back at its deadline (the store's ConfirmPlanner holds the deadline)."""

    # ------------------------------------------------------------------------------ entry points

    async def run(self, text: str, who: str) -> Result:
        """Parse and execute a command; a parse error is a failed Result naming the word and column.

        Several commands separated by ``;`` run in order until one fails; their results are combined
        (``data`` is then the list of each result's JSON).
        """
        if len(split_commands(text)) > 1:
            results = await self.run_line(text, who)
            return Result(all(r.ok for r in results), "\n".join(r.message for r in results if r.message),
                          [r.as_json() for r in results])
        try:
            command = parse(text)
        except CommandError as exc:
            return Result.error(exc)
        return await self.execute(command, who)

    async def run_line(self, line: str, who: str) -> list[Result]:
        """``cmd; cmd; …``: run in order, stopping after the first failure."""
        results: list[Result] = []
        for offset, piece in split_commands(line):
            try:
                command = parse(piece, offset=offset)
            except CommandError as exc:
                results.append(Result.error(exc))
                break
            result = await self.execute(command, who)
            results.append(result)
            if not result.ok:
                break
        return results

    async def execute(self, command: Command, who: str) -> Result:
        if isinstance(command, Trace) or (isinstance(command, Show) and command.topic in ("conns", "sync")):
            try:  # these read the kernel (connection table, counters) or the peer: awaited, not locked
                return await self._conn_table(command)
            except CommandError as exc:
                return Result.error(exc)
            except (DirectorError, OSError) as exc:
                return Result(False, str(exc), {"error": {"message": str(exc)}})
        if isinstance(command, ScriptTest):  # reads nothing that changes, but runs a script: awaited, not locked
            try:
                return await self._script_test(command)
            except CommandError as exc:
                return Result.error(exc)
        if isinstance(command, CheckNow):  # probes for up to their timeouts: audited, but not under the lock
            try:
                result = await self._check_now(command)
            except CommandError as exc:
                result = Result.error(exc)
            except DirectorError as exc:
                result = Result(False, str(exc), {"error": {"message": str(exc)}})
            self.bus.publish(OperatorAction(time=self._clock(), who=who, command=command.text or "check now",
                                            ok=result.ok, message=result.message.splitlines()[0] if result.message
                                            else "", changes=()))
            return result
        if not command.MUTATES:
            return self._safe(lambda: self._read(command))
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            try:
                result, changes = await self._change(command, who)
            except CommandError as exc:
                result, changes = Result.error(exc), ()
            except (DirectorError, StoreError, OSError) as exc:
                result, changes = Result(False, str(exc), {"error": {"message": str(exc)}}), ()
        self.bus.publish(OperatorAction(time=self._clock(), who=who, command=command.text or type(command).__name__,
                                        ok=result.ok, message=result.message.splitlines()[0] if result.message else "",
                                        changes=tuple(changes)))
        return result

    def _safe(self, fn: Callable[[], Result]) -> Result:
        try:
            return fn()
        except CommandError as exc:
            return Result.error(exc)
        except (DirectorError, StoreError, OSError) as exc:
            return Result(False, str(exc), {"error": {"message": str(exc)}})

    def names(self) -> Names:
        """Live names for ``completions``: instances, virtual servers, real servers, virtual addresses."""
        snap = self.core.snapshot()
        rs_names: dict[str, None] = {}
        for vs in snap.virtual_servers:
            for rs in vs.real_servers:
                rs_names[rs.label] = None
        vips: dict[str, None] = {}
        for inst in snap.instances:
            for vip in inst.vips:
                vips[vip] = None
        return Names(
            instances=tuple(i.name for i in snap.instances),
            virtual_servers=tuple(dict.fromkeys(vs.label for vs in snap.virtual_servers)),
            real_servers=tuple(rs_names),
            vips=tuple(vips),
            scripts=tuple(s.name for s in self.store.running.config.vrrp_scripts),
            drift=tuple(view["id"] for view in snap.drift),
        )

    # ------------------------------------------------------------------------------ reading

    def _read(self, command: Command) -> Result:
        if isinstance(command, Show):
            return self._show(command)
        if isinstance(command, Validate):
            diagnostics = self.store.validate()
            errors = [d for d in diagnostics if d.is_error]
            verdict = "candidate configuration is valid" if not errors else "candidate configuration has errors"
            return Result(not errors, f"{verdict}\n{showtext.diagnostics(diagnostics)}",
                          {"valid": not errors, "diagnostics": _diag_json(diagnostics)})
        if isinstance(command, Diff):
            return self._diff() if command.old is None else versions.diff_versions(self.store, command.old,
                                                                                   command.new)
        if isinstance(command, Help):
            return Result(True, help_text(command.words), {"help": help_text(command.words)})
        raise TypeError(f"unhandled command {type(command).__name__}")

    async def _conn_table(self, command: Show | Trace) -> Result:
        """``show conns``, ``trace``, ``show sync coverage`` (engine/connshow.py)."""
        def resolve(ref: VsRef) -> list[VirtualServerView]:
            return self._virtual_servers(self.core.snapshot(), ref)

        if isinstance(command, Trace):
            return await trace_command(self.core, command, resolve)
        if command.topic == "conns":
            return await show_conns(self.core, command, resolve)
        return await sync_coverage(self.core, command)

    def _flight(self) -> CheckFlightCore:
        if not isinstance(self.core, CheckFlightCore):
            raise DirectorError("this engine keeps no health-check records")
        return self.core

    async def _check_now(self, command: CheckNow) -> Result:
        """Probe now; the result counts as a scheduled probe's (``CheckService.run_now`` says why)."""
        flight = self._flight()
        pairs = self._pairs(self.core.snapshot(), command.rs, command.vs)
        probes = await flight.check_now([RsId(vs.key, rs.key) for vs, rs in pairs])
        if not probes:
            raise CommandError(f"real server {command.rs} has no health check", str(command.rs), command.rs.col)
        health = {(vs.key, rs.key): rs.health for vs in self.core.snapshot().virtual_servers
                  for rs in vs.real_servers}
        message = showtext.probes_now(probes)
        return Result(all(p.probe.ok for p in probes), message,
                      {"probes": [{**p.as_json(), "health": health.get((p.vs, p.rs))} for p in probes]})

    async def _script_test(self, command: ScriptTest) -> Result:
        """Run a vrrp_script or MISC_CHECK of the running config once, as the engine would; change nothing."""
        config = self.store.running.config
        if command.name is not None:
            spec = track_spec(config, command.name.text)
            if spec is None:
                known = ", ".join(s.name for s in config.vrrp_scripts) or "none"
                raise CommandError(f"no vrrp_script '{command.name}' with a script (known: {known})",
                                   command.name.text, command.name.col)
            specs = [spec]
        else:
            assert command.rs is not None
            specs = misc_specs(config, command.rs, command.vs)
            if not specs:
                where = f" in virtual server {command.vs}" if command.vs is not None else ""
                raise CommandError(f"no MISC_CHECK on real server {command.rs}{where}", str(command.rs),
                                   command.rs.col)
        runs = await run_specs(specs)
        return Result(all(r.ok for r in runs), "\n".join(run_text(r) for r in runs),
                      {"runs": [run_json(spec, r) for spec, r in zip(specs, runs, strict=True)]})

    def _diff(self) -> Result:
        plan = self.store.diff()
        errors = self.store.candidate.errors
        message = str(plan) if not plan.empty else "no changes (candidate = running)"
        if errors:
            message += f"\ncandidate has {len(errors)} error{'s' * (len(errors) != 1)}: {errors[0]}"
        candidate = self.store.candidate.config
        removals = planned_removals(self.core.snapshot().virtual_servers, candidate, configured_servers(candidate))
        if removals:
            message += "\n" + "\n".join(r.text() for r in removals)
        ops, addresses = self._impact(candidate, removals) if not errors and not plan.empty else ([], [])
        if ops:
            message += "\nIPVS operations:\n" + "\n".join(f"  {op.text()}" for op in ops)
        if addresses:
            message += "\naddress operations:\n" + "\n".join(f"  {a.text()}" for a in addresses)
        return Result(True, message, {"changes": plan.as_json(), "candidate_errors": _diag_json(errors),
                                      "removals": [r.as_json() for r in removals],
                                      "ipvs_ops": [op.as_json() for op in ops],
                                      "address_ops": [a.as_json() for a in addresses]})

    def plan_impact(self, config: m.Config) -> tuple[list[PlannedOp], list[AddressOp]]:
        """The IPVS and address operations applying ``config`` would cause now (a reload's preview)."""
        removals = planned_removals(self.core.snapshot().virtual_servers, config, configured_servers(config))
        return self._impact(config, removals)

    def _impact(self, config: m.Config, removals: Sequence[PlannedRemoval]) -> tuple[list[PlannedOp],
                                                                                      list[AddressOp]]:
        """The exact IPVS and address operations applying ``config`` would cause now (engine/impact.py)."""
        ops: list[PlannedOp] = []
        if isinstance(self.core, TablePreviewer):
            try:
                ops = ipvs_ops(self.core, config, removals)
            except ValueError:  # a table the config cannot describe is refused at commit, with its reason
                ops = []
        return ops, address_ops(self.store.running.config, config, self.core.snapshot())

    def _show(self, command: Show) -> Result:
        snap = self.core.snapshot()
        topic = command.topic
        if topic == "vrrp" and command.radar:
            return Result(True, showtext.radar(snap.radar), snap.radar.as_json())
        if topic == "vrrp":
            instances = snap.instances
            if command.instance is not None:
                inst = snap.instance(command.instance.text)
                if inst is None:
                    raise self._no_instance(snap, command.instance)
                instances = (inst,)
            if command.explain:
                return Result(True, showtext.vrrp_explain(instances),
                              [{"instance": i.name, **(i.election.as_json() if i.election is not None else {})}
                               for i in instances])
            return Result(True, showtext.vrrp(instances, snap.time), [i.as_json() for i in instances])
        if topic == "drift":
            views = [dict(view) for view in snap.drift]
            return Result(True, json.dumps(views, indent=1) if command.json else showtext.drift(views), views)
        if topic == "vs":
            vss = self._virtual_servers(snap, command.vs)
            return Result(True, showtext.virtual_servers(vss), [vs.as_json() for vs in vss])
        if topic == "checks":
            assert command.rs is not None
            histories = self._flight().check_history(
                [RsId(vs.key, rs.key) for vs, rs in self._pairs(snap, command.rs, command.vs)])
            return Result(True, showtext.check_history(histories), [h.as_json() for h in histories])
        if topic == "rs":
            pairs = self._pairs(snap, command.rs, command.vs) if command.rs is not None else [
                (vs, rs) for vs in self._virtual_servers(snap, command.vs) for rs in vs.real_servers]
            return Result(True, showtext.real_servers(pairs),
                          [{"vs": vs.label, "vs_key": vs.key, **rs.as_json()} for vs, rs in pairs])
        if topic == "drain":
            return self._show_drain(snap, command)
        if topic == "overrides":
            pairs = [(vs, rs) for vs in snap.virtual_servers for rs in vs.real_servers
                     if rs.drained or rs.disabled or rs.weight_override is not None]
            return Result(True, showtext.overrides(pairs), [
                {"vs": vs.label, "vs_key": vs.key, "rs": rs.label, "rs_key": rs.key, "admin_state": rs.admin_state,
                 "drain": rs.drained,
                 "disabled": rs.disabled, "weight": rs.weight_override, "config_weight": rs.config_weight}
                for vs, rs in pairs])
        if topic == "log":
            events: list[Event] = [e for e in self.bus.history() if e.severity != "debug"]
            events = events[-(command.count or LOG_DEFAULT):]
            return Result(True, showtext.events(events), [event_to_json(e) for e in events])
        if topic == "config":
            if command.which == "candidate":
                c = self.store.candidate
                return Result(True, c.text, {"which": "candidate", "text": c.text, "dirty": self.store.dirty,
                                             "diagnostics": _diag_json(c.diagnostics)})
            run = self.store.running
            return Result(True, run.text, {"which": "running", "text": run.text, "revision": run.number})
        if topic == "diff":
            return self._diff()
        if topic == "history":
            return versions.history(self.store, command.version)
        if topic == "blame":
            return versions.blame(self.store, command.vs, command.rs)
        assert topic == "stats"
        run = self.store.running
        stats: dict[str, Any] = {
            **snap.stats, "revision": run.number, "candidate_dirty": self.store.dirty,
            "config_file": self.store.path, "events_published": self.bus.published,
            "subscribers": self.bus.subscribers, "virtual_servers": len(snap.virtual_servers),
            "real_servers": sum(len(vs.real_servers) for vs in snap.virtual_servers),
            "instances": len(snap.instances),
            "commit_pending": None if self.store.confirm.pending is None
            else self.store.confirm.pending.as_json(self._clock()),
            "history_dir": self.store.archive.directory,
        }
        return Result(True, "\n".join(f"{k}: {v}" for k, v in stats.items()), stats)

    def _show_drain(self, snap: DirectorSnapshot, command: Show) -> Result:
        if not isinstance(self.core, DrainWatchCore):
            raise CommandError("this engine does not watch drains", "drain")
        watches = self.core.drain_watches()
        if command.rs is not None:
            wanted = {RsId(vs.key, rs.key) for vs, rs in self._pairs(snap, command.rs, command.vs)}
            watches = [w for w in watches if w.rid in wanted]
        rows = [w.as_json() for w in watches]
        return Result(True, showtext.drain_watches(rows), rows)

    # ------------------------------------------------------------------------------ resolving names

    @staticmethod
    def _vs_match(ref: VsRef, vs: VirtualServerView) -> bool:
        return ref.matches(address=vs.address, port=vs.port, protocol=vs.protocol, fwmark=vs.fwmark, group=vs.group)

    def _virtual_servers(self, snap: DirectorSnapshot, ref: VsRef | None) -> list[VirtualServerView]:
        if ref is None:
            return list(snap.virtual_servers)
        found = [vs for vs in snap.virtual_servers if self._vs_match(ref, vs)]
        if not found:
            raise CommandError(f"no virtual server {ref}", str(ref), ref.col)
        return found

    def _pairs(self, snap: DirectorSnapshot, rs_ref: RsRef, vs_ref: VsRef | None) -> list[Pair]:
        pairs = [(vs, rs) for vs in self._virtual_servers(snap, vs_ref) for rs in vs.real_servers
                 if rs_ref.matches(rs.address, rs.port)]
        if not pairs:
            where = f" in virtual server {vs_ref}" if vs_ref is not None else ""
            raise CommandError(f"no real server {rs_ref}{where}", str(rs_ref), rs_ref.col)
        return pairs

    @staticmethod
    def _no_instance(snap: DirectorSnapshot, name: Word) -> CommandError:
        known = ", ".join(i.name for i in snap.instances) or "none"
        return CommandError(f"no vrrp_instance {name.text} (instances: {known})", name.text, name.col)

    # ------------------------------------------------------------------------------ changing

    async def _change(self, command: Command, who: str) -> tuple[Result, Sequence[str]]:
        if isinstance(command, DriftReconcile | DriftAdopt):
            return await self._drift(command)
        if isinstance(command, RsCommand):
            return await self._override(command)
        if isinstance(command, EditCommand):
            return self._edit(command)
        if isinstance(command, VrrpPriority | VrrpFailover):
            snap = self.core.snapshot()
            inst = snap.instance(command.instance.text)
            if inst is None:
                raise self._no_instance(snap, command.instance)
            if isinstance(command, VrrpFailover):
                what = await self.core.failover(inst.name)
                return Result(True, what, {"instance": inst.name}), (what,)
            if command.priority is not None and not 1 <= command.priority <= 255:
                raise CommandError(f"priority {command.priority} is outside 1-255", str(command.priority))
            what = await self.core.set_priority(inst.name, command.priority)
            return Result(True, what, {"instance": inst.name, "priority": command.priority}), (what,)
        if isinstance(command, Commit):
            try:
                proposal = self.store.propose_commit()
            except ConfigRefused as exc:
                return self._refused(exc, who), ()
            radii = self._commit_radius(proposal)
            refused = None if command.force else refusal(radii, "commit")
            if refused is not None:
                return Result(False, refused, {"refused": True, "blast_radius": [r.as_json() for r in radii]}), ()
            if command.confirmed is not None:
                return await self._commit_confirmed(proposal, command.confirmed, who)
            result, changes = await self._apply(proposal, who)
            if result.ok and self.store.confirm.pending is not None:  # a plain commit confirms, as in Junos
                settled = self._settle(who)
                result = Result(True, f"{result.message}\n{settled}", result.data)
            return result, changes
        if isinstance(command, Confirm):
            return Result(True, self._settle(who), {"confirmed": self.store.running.number}), ("confirmed",)
        if isinstance(command, Reload):
            dirty = self.store.dirty
            try:
                proposal = self.store.propose_reload()
            except ConfigRefused as exc:
                return self._refused(exc, who), ()
            result, changes = await self._apply(proposal, who)
            if result.ok and dirty:
                result = Result(True, result.message + "\n(uncommitted candidate edits were discarded)", result.data)
            return result, changes
        if isinstance(command, Rollback):
            try:
                position, entry = self.store.resolve(command.version)
                self.store.rollback(command.version)
            except StoreError as exc:
                raise CommandError(str(exc), str(command.version)) from None
            plan = self.store.diff()
            if position == 0:
                message = "candidate reset to the running configuration"
            else:
                message = (f"candidate = version {position} (revision {entry.seq}, {entry.digest[:12]}: {entry.how} by "
                           f"{entry.who}, {showtext.clock(entry.when)}); 'commit' applies it\n{plan}")
            return Result(True, message, {"version": {"n": position, **entry.as_json()}, "changes": plan.as_json()}), (
                f"candidate loaded from revision {entry.seq} ({entry.digest[:12]})",)
        if isinstance(command, Write):
            path = self.store.write()
            return Result(True, f"wrote {path} (previous file kept as {path}.bak)", {"path": path}), (f"wrote {path}",)
        raise TypeError(f"unhandled command {type(command).__name__}")

    async def _drift(self, command: DriftReconcile | DriftAdopt) -> tuple[Result, Sequence[str]]:
        """``drift reconcile``: intent back to the kernel; ``drift adopt``: the kernel's side into the candidate."""
        views = {view["id"]: view for view in self.core.snapshot().drift}
        try:
            ids = select_ids(list(views), command.item)
        except KeyError as exc:
            raise CommandError(str(exc.args[0]), command.item or "") from None
        if not ids:
            return Result(True, "no drift", {"items": []}), ()
        if isinstance(command, DriftReconcile):
            if not isinstance(self.core, DriftCore):
                raise CommandError("this engine cannot reconcile drift")
            done = await self.core.reconcile_drift(ids)
            return Result(True, f"reconciled {len(ids)} drift item(s): " + "; ".join(done),
                          {"items": ids, "ops": list(done)}), tuple(done)
        edits: list[str] = []
        skipped: list[str] = []
        changes: list[str] = []
        for item_id in ids:
            try:
                text = adopt_command(views[item_id])
            except ValueError as exc:
                skipped.append(str(exc))
                continue
            _, changed = self._edit(cast(EditCommand, parse(text)))
            edits.append(text)
            changes.extend(changed)
        if not edits:
            raise CommandError("; ".join(skipped), command.item or "")
        message = "adopted into the candidate (see 'diff', then 'commit'): " + "; ".join(edits)
        message += "".join(f"\nnot adopted: {reason}" for reason in skipped)
        return Result(True, message, {"items": ids, "edits": edits, "skipped": skipped,
                                      "dirty": self.store.dirty}), changes

    def _edit(self, command: EditCommand) -> tuple[Result, Sequence[str]]:
        outcome = self.store.edit(command)
        changes = [str(c) for c in outcome.changes.changes]
        message = str(outcome.changes) if changes else "no change"
        errors = outcome.candidate.errors
        if errors:
            message += f"\ncandidate has {len(errors)} error{'s' * (len(errors) != 1)}: {errors[0]}"
        for warning in outcome.warnings:
            message += f"\nwarning: {warning}"
        data = {"changes": outcome.changes.as_json(), "warnings": list(outcome.warnings),
                "candidate_errors": _diag_json(errors), "dirty": self.store.dirty}
        return Result(True, message, data), changes

    def _refused(self, exc: ConfigRefused, who: str) -> Result:
        self.bus.publish(ReloadRefused.of(exc.source or "commit", exc.reason, exc.diagnostics, who))
        text = showtext.diagnostics(exc.diagnostics) if exc.diagnostics else ""
        message = f"refused: {exc.reason}" + (f"\n{text}" if text else "")
        return Result(False, message, {"reason": exc.reason, "diagnostics": _diag_json(exc.diagnostics)})

    async def _apply(self, proposal: Proposal, who: str, how: str | None = None) -> tuple[Result, Sequence[str]]:
        if proposal.empty:
            rev = self.store.accept(proposal, who, how)
            return Result(True, "no changes to apply", {"revision": rev.summary(), "changes": []}), ()
        self.bus.publish(ReloadStarted(source=proposal.source, who=who))
        try:
            applied = list(await self.core.apply_config(proposal.config, proposal.plan))
        except DirectorError as exc:
            self.bus.publish(ReloadRefused.of(proposal.source, f"the director could not apply it: {exc}", (), who))
            return Result(False, f"not applied: {exc}", {"reason": str(exc), "diagnostics": []}), ()
        rev = self.store.accept(proposal, who, how)
        self.bus.publish(ReloadApplied.of(proposal.source, rev.number, proposal.plan, who, applied))
        n = len(proposal.plan.changes)
        message = f"revision {rev.number} applied ({n} change{'s' * (n != 1)})\n{proposal.plan}"
        data = {"revision": rev.summary(), "changes": proposal.plan.as_json(), "applied": applied}
        return Result(True, message, data), [str(c) for c in proposal.plan.changes]

    # ------------------------------------------------------------------------------ commit confirmed

    async def _commit_confirmed(self, proposal: Proposal, seconds: float, who: str) -> tuple[Result, Sequence[str]]:
        """Apply like ``commit`` and arm the automatic rollback; while one is pending, extend it (Junos)."""
        if seconds <= 0:
            raise CommandError("commit confirmed needs a positive number of seconds", f"{seconds:g}")
        before = self.store.running
        pending = self.store.confirm.pending
        if proposal.empty and pending is None:
            return Result(True, "no changes to apply: nothing to confirm", {"changes": [], "pending": None}), ()
        result, changes = await self._apply(proposal, who, how="commit confirmed")
        if not result.ok:
            return result, changes
        restore_digest, restore_revision = ((pending.restore_digest, pending.restore_revision) if pending is not None
                                            else (before.digest, before.number))
        now = self._clock()
        armed = self.store.confirm.start(now, seconds, restore_digest=restore_digest,
                                         restore_revision=restore_revision, revision=self.store.running.number,
                                         who=who)
        self.confirm_timer.rearm()
        self.bus.publish(CommitPending(revision=armed.revision, restore_revision=armed.restore_revision,
                                       restore_digest=armed.restore_digest, deadline=armed.deadline, who=who))
        verb = "extended: " if pending is not None else ""
        message = (f"{result.message}\n{verb}rolls back to revision {armed.restore_revision} at "
                   f"{showtext.clock(armed.deadline)} (in {seconds:g}s) unless 'confirm'")
        data = {**(result.data or {}), "pending": armed.as_json(now)}
        return Result(True, message, data), [*changes, f"rollback armed for {showtext.clock(armed.deadline)}"]

    def _settle(self, who: str) -> str:
        try:
            settled = self.store.confirm.confirm()
        except NothingPending as exc:
            raise CommandError(str(exc), "confirm") from None
        self.confirm_timer.cancel()
        self.bus.publish(CommitConfirmed(revision=settled.revision, who=who))
        return f"revision {settled.revision} confirmed: the automatic rollback is cancelled"

    async def _confirm_timed_out(self) -> None:
        """The deadline passed without ``confirm``: apply the config from before the first unconfirmed commit
        again, through the same validate → plan → apply path as any commit (candidate edits are discarded)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            pending = self.store.confirm.due(self._clock())
            if pending is None:  # confirmed or extended while this waited for the lock
                self.confirm_timer.rearm()
                return
            self.store.confirm.settle()
            who = f"commit confirmed timeout ({pending.who})" if pending.who else "commit confirmed timeout"
            unconfirmed = self.store.running.number
            changes: Sequence[str] = ()
            try:
                self.store.set_candidate_text(self.store.archive.text(pending.restore_digest))
                proposal = self.store.propose_commit()
            except (HistoryError, ConfigRefused, StoreError) as exc:
                result = Result(False, str(exc))
            else:
                result, changes = await self._apply(proposal, who, how="confirmed-timeout")
        self.bus.publish(CommitRolledBack(
            revision=self.store.running.number if result.ok else None, restore_revision=pending.restore_revision,
            restore_digest=pending.restore_digest, unconfirmed_revision=unconfirmed, ok=result.ok,
            reason="" if result.ok else result.message.splitlines()[0]))
        self.bus.publish(OperatorAction(time=self._clock(), who=who, command="rollback (commit confirmed timed out)",
                                        ok=result.ok, message=result.message.splitlines()[0] if result.message else "",
                                        changes=tuple(changes)))

    def _commit_radius(self, proposal: Proposal) -> list[BlastRadius]:
        """What the real servers a commit deletes leave their (surviving) virtual servers with."""
        survivors = configured_servers(proposal.config)
        kept_vs = {vs_key(vs) for vs in proposal.config.virtual_servers}
        snap = self.core.snapshot()
        removing = {vs.key: {rs.key for rs in vs.real_servers if RsId(vs.key, rs.key) not in survivors}
                    for vs in snap.virtual_servers if vs.key in kept_vs}
        return blast_radius(snap.virtual_servers, removing)

    @staticmethod
    def _override_radius(command: RsCommand, snap: DirectorSnapshot, pairs: Sequence[Pair]) -> list[BlastRadius]:
        """The blast radius of a command that takes real servers out of service (none for the others)."""
        takes_out = isinstance(command, Drain | Disable) or (
            isinstance(command, SetState) and command.state != "ready")
        if not takes_out:
            return []
        removing: dict[str, set[str]] = {}
        for vs, rs in pairs:
            removing.setdefault(vs.key, set()).add(rs.key)
        return blast_radius(snap.virtual_servers, removing)

    async def _override(self, command: RsCommand) -> tuple[Result, Sequence[str]]:
        snap = self.core.snapshot()
        pairs = self._pairs(snap, command.rs, command.vs)
        radii = self._override_radius(command, snap, pairs)
        refused = None if command.force else refusal(radii, command.text or type(command).__name__.lower())
        if refused is not None:
            return Result(False, refused, {"refused": True, "blast_radius": [r.as_json() for r in radii]}), ()
        batches: dict[OverrideChange, list[Pair]] = {}
        verb: str
        if isinstance(command, SetState):
            verb = {"ready": "ready", "drain": "drained", "maint": "maint"}[command.state]
            batches[OverrideChange("state", state=command.state)] = pairs
        elif isinstance(command, Drain):
            verb = "drained"
            batches[OverrideChange("drain")] = pairs
        elif isinstance(command, Undrain):
            verb = "undrained"
            batches[OverrideChange("undrain")] = pairs
        elif isinstance(command, Disable):
            verb = "disabled"
            batches[OverrideChange("disable")] = pairs
        elif isinstance(command, Enable):
            verb = "enabled"
            batches[OverrideChange("enable")] = pairs
        else:
            assert isinstance(command, Weight)
            verb = "weighted"
            for vs, rs in pairs:
                weight = round(rs.config_weight * command.weight / 100) if command.percent else command.weight
                if weight > MAX_WEIGHT:
                    raise CommandError(f"weight {weight} is above {MAX_WEIGHT}", f"{command.weight}")
                batches.setdefault(OverrideChange("weight", weight), []).append((vs, rs))
        applied: list[str] = []
        lines: list[str] = []
        for change, group in batches.items():
            applied.extend(await self.core.set_override([RsId(vs.key, rs.key) for vs, rs in group], change))
            for vs, rs in group:
                lines.append(self._describe(verb, change, vs, rs))
        watching: list[dict[str, Any]] = []
        if isinstance(command, Drain) and isinstance(self.core, DrainWatchCore):
            plan = DrainPlan(until_empty=command.until_empty, timeout=command.timeout,
                             then_remove=command.then_remove)
            targets = [RsId(vs.key, rs.key) for vs, rs in pairs]
            watching = [w.as_json() for w in self.core.watch_drain(targets, plan)]
            lines.append(_watch_text(plan))
        data = {
            "action": type(command).__name__.lower(),
            "targets": [{"vs": vs.label, "vs_key": vs.key, "rs": rs.label, "rs_key": rs.key,
                         "config_weight": rs.config_weight, "weight_before": rs.weight,
                         "active_conns": rs.active_conns} for vs, rs in pairs],
            "applied": applied,
            "blast_radius": [r.as_json() for r in radii],
            "watches": watching,
        }
        return Result(True, "\n".join(lines), data), lines

    @staticmethod
    def _describe(verb: str, change: OverrideChange, vs: VirtualServerView, rs: RealServerView) -> str:
        before = "out of the table" if rs.weight is None else f"weight {rs.weight}"
        if change.kind == "drain":
            after = f"weight 0, {rs.active_conns} active connection{'s' * (rs.active_conns != 1)} finishing"
        elif change.kind == "undrain":
            after = f"weight {rs.config_weight} (configured)"
        elif change.kind == "weight":
            after = f"weight {change.weight} (configured {rs.config_weight})"
        elif change.kind == "disable" or change.state == "maint":
            after = "out of the table, checks paused"
        elif change.state == "drain":
            after = f"weight 0, {rs.active_conns} active connection{'s' * (rs.active_conns != 1)} finishing"
        elif change.state == "ready":
            after = f"in service (weight {rs.weight_override or rs.config_weight})"
        else:
            after = "back in the table"
        return f"{verb} {rs.label} in {vs.label}: {before} -> {after}"


def _watch_text(plan: DrainPlan) -> str:
    """What the drain's watch will do, in the command's answer (the watch itself runs on in the engine)."""
    until = ("until 0 active and 0 inactive (persistence templates may remain)" if plan.until_empty
             else "holding at weight 0")
    then = ", then maint (out of IPVS; 'enable' brings it back)" if plan.then_remove else ""
    limit = f", giving up after {plan.timeout:g}s" if plan.timeout is not None else ""
    return f"watching the drain {until}{then}{limit}: 'show drain' (W in the console)"
