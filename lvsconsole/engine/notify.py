"""VRRP notifications as keepalived sends them (``vrrp_notify.c``, ``smtp.c``): notify scripts and SMTP alerts.

On every state change of an instance or a sync group:

* the state's own script (``notify_master`` / ``notify_backup`` / ``notify_fault`` / ``notify_stop``)
  runs with exactly its configured argv;
* then the generic ``notify`` runs with 4 arguments appended: ``INSTANCE``|``GROUP``, the name, the
  state (``MASTER``/``BACKUP``/``FAULT``/``STOP``) and the priority (the effective priority of an
  instance, always ``0`` for a group);
* an SMTP alert is mailed when ``smtp_alert`` applies: the object's own ``smtp_alert``, else global
  ``smtp_alert_vrrp``, else global ``smtp_alert``, else off. ``no_email_faults`` suppresses FAULT mails,
  and one state is never mailed twice in a row. Subject ``[router_id] VRRP Instance VI_1 - Entering
  MASTER state`` (``VRRP Group G`` for a group, ``Stopping`` at shutdown).

An instance a reload deletes gets FAULT, or DELETED (and its notify_deleted script) when it has
``notify_deleted`` (:meth:`Notifier.notify_removed`), as keepalived's clear_diff_vrrp does.

At shutdown (:meth:`Notifier.notify_stop`) every instance, then every sync group, gets STOP, as
keepalived's ``notify_shutdown``; STOP scripts get keepalived's 1 s before SIGTERM.

Scripts are vetted and run through :func:`lvsconsole.scripts.report.run_vetted` (no shell, own process
group, ``/`` as cwd, as the script's ``user [group]``, else global ``script_user``, else
``keepalived_script``, bounded by a timeout), mails through :mod:`smtplib` in a worker thread: nothing
ever blocks the event loop. As in keepalived, the order in which scripts run is not guaranteed (they run
concurrently). Every script run, or refusal with its reason, is published as a ``ScriptRan`` event (a
warning when it failed); SMTP failures as :class:`EngineWarning` (``code`` ``"smtp"``).
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import smtplib
import socket
from collections.abc import Coroutine, Sequence
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Literal

from lvsconsole.config import model as m
from lvsconsole.engine.bus import EventBus
from lvsconsole.engine.events import EngineWarning, LogLine
from lvsconsole.engine.scripts import script_ran
from lvsconsole.scripts.report import run_vetted
from lvsconsole.scripts.run import TERM_GRACE
from lvsconsole.scripts.vet import configured_user
from lvsconsole.vrrp.events import GroupStateChanged, InstanceStateChanged, VrrpEvent
from lvsconsole.vrrp.machine import State

__all__ = ["NOTIFY_TIMEOUT", "STOP_TIMEOUT", "Notifier", "alert_text", "notify_argv", "smtp_alert_enabled"]

log = logging.getLogger("lvsconsole.engine.notify")

NOTIFY_TIMEOUT = 30.0
"""Seconds a notify script may run before its process group gets SIGTERM."""
STOP_TIMEOUT = 1.0
"""keepalived gives STOP scripts one second (``TIMER_HZ``)."""
SMTP_PORT = 25

Kind = Literal["INSTANCE", "GROUP"]
NotifyState = Literal["MASTER", "BACKUP", "FAULT", "STOP", "DELETED"]

_STATES: dict[State, NotifyState] = {State.MASTER: "MASTER", State.BACKUP: "BACKUP", State.FAULT: "FAULT"}
_TRUE = {"on", "true", "yes", "1"}
_FALSE = {"off", "false", "no", "0"}


def notify_argv(script: m.Script, kind: Kind, name: str, state: NotifyState, priority: int) -> list[str]:
    """The generic ``notify`` command line: its argv + ``{GROUP|INSTANCE} NAME STATE PRIO``."""
    return [*script.argv, kind, name, state, str(priority)]


def deleted_script(inst: m.VrrpInstance) -> m.Script | None:
    """What ``notify_deleted`` asks for: None when absent; a Script, empty argv when it names no script."""
    found: tuple[str, ...] | None = None
    for key, args in inst.extra:
        if key == "notify_deleted":
            found = args
    if found is None:
        return None
    if not found:
        return m.Script(())
    try:
        argv = tuple(shlex.split(found[0]))
    except ValueError:
        argv = (found[0],)
    return m.Script(argv, found[1] if len(found) > 1 else None, found[2] if len(found) > 2 else None)


def _extra_bool(g: m.GlobalDefs, keyword: str) -> bool | None:
    for key, args in g.extra:
        if key == keyword:
            if not args:
                return True
            word = args[0].lower()
            if word in _TRUE:
                return True
            if word in _FALSE:
                return False
    return None


def smtp_alert_enabled(own: bool | None, g: m.GlobalDefs) -> bool:
    """keepalived's rule: the object's smtp_alert, else smtp_alert_vrrp, else smtp_alert, else off."""
    if own is not None:
        return own
    vrrp = _extra_bool(g, "smtp_alert_vrrp")
    if vrrp is not None:
        return vrrp
    return bool(g.smtp_alert)


def alert_text(kind: Kind, name: str, state: NotifyState, router_id: str) -> tuple[str, str]:
    """keepalived's (subject, body) of a VRRP alert."""
    if kind == "INSTANCE":
        owning = "=> VRRP Instance is now owning VRRP VIPs <="
        not_owning = "=> VRRP Instance is no longer owning VRRP VIPs <="
        bodies = {"MASTER": owning, "BACKUP": not_owning, "FAULT": not_owning, "DELETED": not_owning,
                  "STOP": "=> VRRP Instance stopping <="}
        what = f"VRRP Instance {name}"
    else:
        bodies = {s: f"=> All VRRP group instances are now in {s} state <=" for s in ("MASTER", "BACKUP", "FAULT")}
        bodies["STOP"] = "=> All VRRP group instances are now stopping <="
        what = f"VRRP Group {name}"
    action = "Stopping" if state == "STOP" else f"Entering {state} state"
    return f"[{router_id}] {what} - {action}", bodies[state]


class Notifier:
    """Runs notify scripts and sends SMTP alerts for VRRP state changes, on the running loop."""

    def __init__(self, config: m.Config, bus: EventBus, *, timeout: float = NOTIFY_TIMEOUT,
                 stop_timeout: float = STOP_TIMEOUT, term_grace: float = TERM_GRACE) -> None:
        self.config = config
        self.bus = bus
        self.timeout = timeout
        self.stop_timeout = stop_timeout
        self.term_grace = term_grace
        self._tasks: set[asyncio.Task[None]] = set()
        self._priorities: dict[str, int] = {}
        self._last_email: dict[tuple[Kind, str], NotifyState] = {}
        self._smtp_warned = False
        self._stopped = False

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    # ------------------------------------------------------------------------------ events in

    def on_vrrp_event(self, event: VrrpEvent) -> None:
        """Listener for VrrpService events (INIT, i.e. stopping, is notified by :meth:`notify_stop`)."""
        if isinstance(event, InstanceStateChanged):
            self._priorities[event.instance] = event.priority
            state = _STATES.get(event.new)
            if state is not None:
                self.notify_instance(event.instance, state, event.priority)
        elif isinstance(event, GroupStateChanged):
            state = _STATES.get(event.new)
            if state is not None:
                self.notify_group(event.group, state)

    def notify_instance(self, name: str, state: NotifyState, priority: int) -> None:
        inst = self.config.instance(name)
        if inst is None:
            return
        self._dispatch("INSTANCE", name, state, priority, inst)

    def notify_removed(self, inst: m.VrrpInstance, priority: int) -> None:
        """An instance a reload deleted: keepalived notifies FAULT, or DELETED when it has ``notify_deleted``.

        ``inst`` comes from the configuration that had it (the running one no longer does). With
        notify_deleted the state's own script is notify_deleted's (if it names one), else notify_fault.
        """
        deleted = deleted_script(inst)
        if deleted is None:
            self._dispatch("INSTANCE", inst.name, "FAULT", priority, inst)
            return
        self._dispatch("INSTANCE", inst.name, "DELETED", priority, inst, own=deleted)

    def notify_group(self, name: str, state: NotifyState) -> None:
        group = next((g for g in self.config.sync_groups if g.name == name), None)
        if group is None:
            return
        self._dispatch("GROUP", name, state, 0, group)

    def notify_stop(self) -> None:
        """keepalived's ``notify_shutdown``: STOP for every instance, then for every sync group. Once."""
        if self._stopped:
            return
        self._stopped = True
        for inst in self.config.instances:
            self.notify_instance(inst.name, "STOP", self._priorities.get(inst.name, inst.priority))
        for group in self.config.sync_groups:
            self.notify_group(group.name, "STOP")

    async def close(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for running scripts and mails; then kill what is left."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        if not pending:
            return
        self.bus.publish(EngineWarning(
            message=f"{len(pending)} notification(s) still running after {grace:g} s; abandoned", code="notify"))
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=self.term_grace + 1.0)

    async def wait_idle(self) -> None:
        """Wait until every notification started so far has finished (for tests and orderly stops)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    # ------------------------------------------------------------------------------ scripts

    def _dispatch(self, kind: Kind, name: str, state: NotifyState, priority: int,
                  obj: m.VrrpInstance | m.SyncGroup, *, own: m.Script | None = None) -> None:
        timeout = self.stop_timeout if state == "STOP" else self.timeout
        if own is None:
            own = {"MASTER": obj.notify_master, "BACKUP": obj.notify_backup, "FAULT": obj.notify_fault,
                   "STOP": obj.notify_stop, "DELETED": None}[state]
        label = f"{'VRRP_Instance' if kind == 'INSTANCE' else 'VRRP_Group'}({name})"
        if own is not None and own.argv:
            self._spawn(self._run(own, list(own.argv), timeout, f"{label} notify_{state.lower()}"))
        if obj.notify is not None and obj.notify.argv:
            argv = notify_argv(obj.notify, kind, name, state, priority)
            self._spawn(self._run(obj.notify, argv, timeout, f"{label} notify"))
        self._maybe_mail(kind, name, state, obj.smtp_alert)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro, name="lvsconsole-notify")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, script: m.Script, argv: Sequence[str], timeout: float, label: str) -> None:
        g = self.config.global_defs
        user, group = configured_user((script.user, script.group), g.script_user)
        self.bus.publish(LogLine(message=f"{label} executing {' '.join(argv)}", level="debug", source="notify"))
        ran = await run_vetted("notify", label, argv, user=user, group=group, security=g.enable_script_security,
                               timeout=timeout, term_grace=self.term_grace)
        self.bus.publish(script_ran(ran))

    # ------------------------------------------------------------------------------ SMTP

    def _maybe_mail(self, kind: Kind, name: str, state: NotifyState, own: bool | None) -> None:
        g = self.config.global_defs
        if not smtp_alert_enabled(own, g):
            return
        if state == "FAULT" and _extra_bool(g, "no_email_faults"):
            return
        if self._last_email.get((kind, name)) == state:
            return
        self._last_email[(kind, name)] = state
        if g.smtp_server is None or not g.notification_email:
            if not self._smtp_warned:
                self._smtp_warned = True
                self.bus.publish(EngineWarning(
                    message="smtp_alert is set but smtp_server or notification_email is missing; no mail sent",
                    code="smtp"))
            return
        hostname = socket.gethostname()
        subject, body = alert_text(kind, name, state, g.router_id or hostname)
        msg = EmailMessage()
        msg["Date"] = formatdate(localtime=True)
        msg["From"] = g.notification_email_from or f"keepalived@{hostname}"
        msg["Subject"] = subject
        msg["X-Mailer"] = "Keepalived"
        msg["To"] = ", ".join(g.notification_email)
        msg.set_content(body)
        self._spawn(self._mail(msg, g, g.smtp_server, g.smtp_helo_name or hostname))

    async def _mail(self, msg: EmailMessage, g: m.GlobalDefs, server: m.Endpoint, helo: str) -> None:
        host, port = str(server.address), server.port or SMTP_PORT
        where = f"[{host}]:{port}"
        try:
            await asyncio.to_thread(_send, msg, host, port, helo, g.smtp_connect_timeout,
                                    str(msg["From"]), g.notification_email)
        except (OSError, smtplib.SMTPException) as exc:
            self.bus.publish(EngineWarning(message=f"SMTP alert to {where} failed: {exc}", code="smtp"))
            return
        self.bus.publish(LogLine(message=f"Remote SMTP server {where} connected. SMTP alert successfully sent.",
                                 source="notify"))


def _send(msg: EmailMessage, host: str, port: int, helo: str, timeout: float, sender: str,
          recipients: Sequence[str]) -> None:
    with smtplib.SMTP(host, port, local_hostname=helo, timeout=timeout) as smtp:
        smtp.helo(helo)
        refused = smtp.send_message(msg, from_addr=sender, to_addrs=list(recipients))
    if refused:
        raise smtplib.SMTPRecipientsRefused(refused)
