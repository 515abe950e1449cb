"""VRRP notify scripts and SMTP alerts: real scripts in tmp_path, a real aiosmtpd server on loopback.

Every wait is bounded; no sleep is used as synchronisation (blocking scripts wait on FIFOs).
"""

from __future__ import annotations

import asyncio
import os
import socket
from email import message_from_bytes
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP

from lvsconsole.config import model as m
from lvsconsole.config.build import load_text
from lvsconsole.engine.bus import EventBus
from lvsconsole.engine.events import EngineWarning, LogLine, ScriptRan
from lvsconsole.engine.notify import Notifier, alert_text, smtp_alert_enabled
from lvsconsole.vrrp.events import GroupStateChanged, InstanceStateChanged
from lvsconsole.vrrp.machine import State

LIMIT = 10.0


def run(coro: Any, limit: float = 30.0) -> Any:
    async def bounded() -> Any:
        async with asyncio.timeout(limit):
            return await coro

    return asyncio.run(bounded())


def recorder(tmp_path: Path) -> tuple[Path, Path]:
    """A script that appends its arguments, each in brackets, as one line (one write) to log.txt."""
    log = tmp_path / "log.txt"
    script = tmp_path / "rec.sh"
    script.write_text(f"""#!/bin/sh
line=""
for a in "$@"; do line="$line[$a]"; done
printf '%s\\n' "$line" >> '{log}'
""")
    script.chmod(0o755)
    return script, log


def config(text: str) -> m.Config:
    result = load_text(text)
    assert result.ok, result.diagnostics
    return result.config


def instance_conf(rec: Path, extra: str = "") -> str:
    return f"""
vrrp_sync_group G1 {{
    group {{ VI_1 VI_2 }}
    notify_master "{rec} gmaster"
    notify_backup "{rec} gbackup"
    notify_fault "{rec} gfault"
    notify_stop "{rec} gstop"
    notify "{rec} gnotify"
}}
vrrp_instance VI_1 {{
    interface lo
    virtual_router_id 51
    priority 150
    virtual_ipaddress {{ 10.9.9.1 }}
    notify_master "{rec} master 'two words'"
    notify_backup {rec}
    notify_fault "{rec} fault"
    notify_stop "{rec} stop"
    notify "{rec} notify x"
{extra}
}}
vrrp_instance VI_2 {{
    interface lo
    virtual_router_id 52
    priority 90
    virtual_ipaddress {{ 10.9.9.2 }}
}}
"""


def changed(name: str, new: State, priority: int, old: State = State.BACKUP) -> InstanceStateChanged:
    return InstanceStateChanged(name, old, new, "test", priority, time=0.0)


def lines(log: Path) -> list[str]:
    return sorted(log.read_text().splitlines()) if log.exists() else []


def warnings(bus: EventBus, code: str) -> list[str]:
    return [e.message for e in bus.history(kinds=[EngineWarning]) if isinstance(e, EngineWarning) and e.code == code]


def failed_runs(bus: EventBus) -> list[ScriptRan]:
    return [e for e in bus.history(kinds=[ScriptRan]) if isinstance(e, ScriptRan) and not e.ok]


# ---------------------------------------------------------------------------------------------- scripts


def test_instance_scripts_get_keepalived_arguments(tmp_path: Path) -> None:
    rec, log = recorder(tmp_path)
    bus = EventBus()

    async def scenario() -> None:
        notifier = Notifier(config(instance_conf(rec)), bus)
        notifier.on_vrrp_event(changed("VI_1", State.MASTER, 150))
        await notifier.wait_idle()
        assert lines(log) == sorted(["[master][two words]", "[notify][x][INSTANCE][VI_1][MASTER][150]"])
        log.unlink()
        notifier.on_vrrp_event(changed("VI_1", State.BACKUP, 150, old=State.MASTER))
        await notifier.wait_idle()
        assert lines(log) == sorted(["", "[notify][x][INSTANCE][VI_1][BACKUP][150]"])
        log.unlink()
        notifier.on_vrrp_event(changed("VI_1", State.FAULT, 0))
        await notifier.wait_idle()
        assert lines(log) == sorted(["[fault]", "[notify][x][INSTANCE][VI_1][FAULT][0]"])
        log.unlink()
        # INIT (the VRRP service stopping) is not notified by itself: notify_stop() does it, once.
        notifier.on_vrrp_event(changed("VI_1", State.INIT, 140, old=State.FAULT))
        await notifier.wait_idle()
        assert lines(log) == []
        notifier.notify_stop()
        notifier.notify_stop()
        await notifier.close(LIMIT)
        assert lines(log) == sorted(["[stop]", "[notify][x][INSTANCE][VI_1][STOP][140]",
                                     "[gstop]", "[gnotify][GROUP][G1][STOP][0]"])

    run(scenario())
    assert warnings(bus, "notify") == []
    assert failed_runs(bus) == []
    runs = [e for e in bus.history(kinds=[ScriptRan]) if isinstance(e, ScriptRan)]
    assert runs and all(e.script_kind == "notify" and e.exit_status == 0 and e.severity == "info" for e in runs)


def test_group_scripts_get_group_arguments(tmp_path: Path) -> None:
    rec, log = recorder(tmp_path)
    bus = EventBus()

    async def scenario() -> None:
        notifier = Notifier(config(instance_conf(rec)), bus)
        for state, own in ((State.MASTER, "gmaster"), (State.BACKUP, "gbackup"), (State.FAULT, "gfault")):
            notifier.on_vrrp_event(GroupStateChanged("G1", state, time=0.0))
            await notifier.wait_idle()
            assert lines(log) == sorted([f"[{own}]", f"[gnotify][GROUP][G1][{state.name}][0]"])
            log.unlink()
        # An instance without scripts, and unknown names, run nothing.
        notifier.on_vrrp_event(changed("VI_2", State.MASTER, 90))
        notifier.on_vrrp_event(changed("VI_9", State.MASTER, 90))
        notifier.on_vrrp_event(GroupStateChanged("G9", State.MASTER, time=0.0))
        await notifier.wait_idle()
        assert lines(log) == []

    run(scenario())


def test_hanging_script_hits_the_timeout_and_is_reported(tmp_path: Path) -> None:
    hang = tmp_path / "hang.sh"
    hang.write_text("#!/bin/sh\nexec sleep 60\n")
    hang.chmod(0o755)
    bus = EventBus()
    cfg = config(f"""
vrrp_instance VI_1 {{
    interface lo
    virtual_router_id 51
    virtual_ipaddress {{ 10.9.9.1 }}
    notify_master {hang}
}}
""")

    async def scenario() -> float:
        notifier = Notifier(cfg, bus, timeout=0.2, term_grace=0.5)
        loop = asyncio.get_running_loop()
        start = loop.time()
        notifier.on_vrrp_event(changed("VI_1", State.MASTER, 100))
        await notifier.wait_idle()
        return loop.time() - start

    elapsed = run(scenario())
    assert elapsed < 5.0
    assert warnings(bus, "notify") == []
    [ran] = failed_runs(bus)
    assert (ran.name, ran.argv, ran.timed_out) == ("VRRP_Instance(VI_1) notify_master", (str(hang),), True)
    assert ran.text().startswith(f"VRRP_Instance(VI_1) notify_master script {hang} timed out")


def test_failing_scripts_are_reported(tmp_path: Path) -> None:
    fail = tmp_path / "fail.sh"
    fail.write_text("#!/bin/sh\nexit 3\n")
    fail.chmod(0o755)
    missing = tmp_path / "missing.sh"
    bus = EventBus()
    cfg = config(f"""
vrrp_instance VI_1 {{
    interface lo
    virtual_router_id 51
    virtual_ipaddress {{ 10.9.9.1 }}
    notify_master {fail}
    notify_backup {missing}
    notify_fault {fail} no-such-user-lvsconsole
}}
""")

    async def scenario() -> None:
        notifier = Notifier(cfg, bus)
        for state in (State.MASTER, State.BACKUP, State.FAULT):
            notifier.on_vrrp_event(changed("VI_1", state, 100))
        await notifier.wait_idle()

    run(scenario())
    got = {ran.name: ran for ran in failed_runs(bus)}
    assert set(got) == {f"VRRP_Instance(VI_1) notify_{s}" for s in ("master", "backup", "fault")}
    assert got["VRRP_Instance(VI_1) notify_master"].exit_status == 3
    assert got["VRRP_Instance(VI_1) notify_backup"].refused == "not-found"
    assert f"script {missing} does not exist" in got["VRRP_Instance(VI_1) notify_backup"].text()
    assert got["VRRP_Instance(VI_1) notify_fault"].refused == "unknown-user"
    assert "unknown user 'no-such-user-lvsconsole'" in got["VRRP_Instance(VI_1) notify_fault"].error
    assert all(ran.severity == "warning" for ran in got.values())


def test_loop_stays_responsive_while_a_script_runs_and_close_is_bounded(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    pids = tmp_path / "pids"
    os.mkfifo(pids)
    rec, log = recorder(tmp_path)
    blocker = tmp_path / "block.sh"
    blocker.write_text(f"#!/bin/sh\nread x < '{gate}'\nexec '{rec}' released\n")
    blocker.chmod(0o755)
    stuck = tmp_path / "stuck.sh"
    stuck.write_text(f"#!/bin/sh\necho $$ > '{pids}'\nexec sleep 60\n")
    stuck.chmod(0o755)
    bus = EventBus()
    cfg = config(f"""
vrrp_instance VI_1 {{
    interface lo
    virtual_router_id 51
    virtual_ipaddress {{ 10.9.9.1 }}
    notify_master {blocker}
    notify_backup {stuck}
}}
""")

    def write_gate() -> None:
        with open(gate, "w") as f:  # blocks until the script opens the FIFO for reading
            f.write("go\n")

    def read_pid() -> int:
        with open(pids) as f:
            return int(f.read())

    async def scenario() -> None:
        notifier = Notifier(cfg, bus, term_grace=0.5)
        loop = asyncio.get_running_loop()
        notifier.on_vrrp_event(changed("VI_1", State.MASTER, 100))
        # The script is blocked on its FIFO: the loop keeps running timers and callbacks meanwhile.
        ticks = 0
        deadline = loop.time() + 0.2
        while loop.time() < deadline:
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks >= 3
        assert notifier.in_flight == 1
        async with asyncio.timeout(LIMIT):
            await asyncio.to_thread(write_gate)
            await notifier.wait_idle()
        assert lines(log) == ["[released]"]

        # A script still running at close(grace) is killed (its whole process group) and reported.
        notifier.on_vrrp_event(changed("VI_1", State.BACKUP, 100))
        async with asyncio.timeout(LIMIT):
            pid = await asyncio.to_thread(read_pid)
        pidfd = os.pidfd_open(pid)
        try:
            start = loop.time()
            await notifier.close(0.2)
            assert loop.time() - start < 3.0
            assert notifier.in_flight == 0
            exited = asyncio.Event()
            loop.add_reader(pidfd, exited.set)
            try:
                async with asyncio.timeout(LIMIT):
                    await exited.wait()  # a pidfd becomes readable when the process has exited
            finally:
                loop.remove_reader(pidfd)
        finally:
            os.close(pidfd)

    run(scenario())
    assert warnings(bus, "notify") == ["1 notification(s) still running after 0.2 s; abandoned"]


# ---------------------------------------------------------------------------------------------- SMTP


class Mailbox:
    def __init__(self) -> None:
        self.helos: list[str] = []
        self.mails: list[tuple[str, list[str], bytes]] = []
        self.received = asyncio.Event()

    async def handle_HELO(self, server: Any, session: Any, envelope: Any, hostname: str) -> str:
        self.helos.append(hostname)
        session.host_name = hostname
        return "250 mail.test"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        self.received.set()
        return "250 OK"


def smtp_conf(port: int, instance_alert: str = "", group_alert: str = "", globals_: str = "") -> str:
    return f"""
global_defs {{
    router_id LVS_TEST
    notification_email {{
        ops@example.test
        oncall@example.test
    }}
    notification_email_from lvs@example.test
    smtp_server 127.0.0.1 {port}
    smtp_helo_name director.example.test
    smtp_connect_timeout 5
{globals_}
}}
vrrp_sync_group G1 {{
    group {{ VI_1 VI_2 }}
{group_alert}
}}
vrrp_instance VI_1 {{
    interface lo
    virtual_router_id 51
    virtual_ipaddress {{ 10.9.9.1 }}
{instance_alert}
}}
vrrp_instance VI_2 {{
    interface lo
    virtual_router_id 52
    virtual_ipaddress {{ 10.9.9.2 }}
}}
"""


def test_smtp_alert_reaches_a_real_server() -> None:
    bus = EventBus()

    async def scenario() -> Mailbox:
        box = Mailbox()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(box, hostname="mail.test"), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            notifier = Notifier(config(smtp_conf(port, instance_alert="smtp_alert")), bus)
            notifier.on_vrrp_event(changed("VI_1", State.MASTER, 100))
            notifier.on_vrrp_event(changed("VI_1", State.MASTER, 100))  # the same state is mailed once
            notifier.on_vrrp_event(changed("VI_2", State.MASTER, 100))  # no smtp_alert: no mail
            notifier.on_vrrp_event(GroupStateChanged("G1", State.MASTER, time=0.0))  # idem
            await notifier.wait_idle()
        return box

    box = run(scenario())
    assert box.helos == ["director.example.test"]
    assert len(box.mails) == 1
    sender, rcpts, content = box.mails[0]
    assert sender == "lvs@example.test"
    assert rcpts == ["ops@example.test", "oncall@example.test"]
    msg = message_from_bytes(content)
    assert msg["Subject"] == "[LVS_TEST] VRRP Instance VI_1 - Entering MASTER state"
    assert msg["From"] == "lvs@example.test"
    assert msg["To"] == "ops@example.test, oncall@example.test"
    assert msg["X-Mailer"] == "Keepalived"
    assert str(msg.get_payload()).strip() == "=> VRRP Instance is now owning VRRP VIPs <="
    assert warnings(bus, "smtp") == []


def test_global_smtp_alert_vrrp_covers_groups_unless_overridden() -> None:
    bus = EventBus()

    async def scenario() -> Mailbox:
        box = Mailbox()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(box, hostname="mail.test"), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            globals_ = "smtp_alert_vrrp on\nno_email_faults"
            cfg = config(smtp_conf(port, instance_alert="smtp_alert off", globals_=globals_))
            notifier = Notifier(cfg, bus)
            notifier.on_vrrp_event(changed("VI_1", State.MASTER, 100))  # own "off" wins
            notifier.on_vrrp_event(GroupStateChanged("G1", State.FAULT, time=0.0))  # no_email_faults
            notifier.on_vrrp_event(GroupStateChanged("G1", State.BACKUP, time=0.0))
            await notifier.wait_idle()
            notifier.notify_stop()
            await notifier.close(LIMIT)
        return box

    box = run(scenario())
    subjects = [message_from_bytes(c)["Subject"] for _, _, c in box.mails]
    assert sorted(subjects) == sorted([
        "[LVS_TEST] VRRP Group G1 - Entering BACKUP state",
        "[LVS_TEST] VRRP Instance VI_2 - Stopping",
        "[LVS_TEST] VRRP Group G1 - Stopping",
    ])


def test_smtp_failure_is_reported() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bus = EventBus()

    async def scenario() -> None:
        notifier = Notifier(config(smtp_conf(port, instance_alert="smtp_alert")), bus)
        notifier.on_vrrp_event(changed("VI_1", State.BACKUP, 100))
        await notifier.wait_idle()

    run(scenario())
    got = warnings(bus, "smtp")
    assert len(got) == 1 and got[0].startswith(f"SMTP alert to [127.0.0.1]:{port} failed")
    assert not [e for e in bus.history(kinds=[LogLine]) if "successfully sent" in getattr(e, "message", "")]


def test_smtp_alert_rules_and_wording() -> None:
    g = m.GlobalDefs()
    assert not smtp_alert_enabled(None, g)
    assert smtp_alert_enabled(True, g)
    assert smtp_alert_enabled(None, m.GlobalDefs(smtp_alert=True))
    assert not smtp_alert_enabled(None, m.GlobalDefs(smtp_alert=True, extra=(("smtp_alert_vrrp", ("off",)),)))
    assert smtp_alert_enabled(None, m.GlobalDefs(smtp_alert=False, extra=(("smtp_alert_vrrp", ()),)))
    assert not smtp_alert_enabled(False, m.GlobalDefs(smtp_alert=True))
    assert alert_text("INSTANCE", "VI_1", "FAULT", "r1") == (
        "[r1] VRRP Instance VI_1 - Entering FAULT state", "=> VRRP Instance is no longer owning VRRP VIPs <=")
    assert alert_text("GROUP", "G", "MASTER", "r1") == (
        "[r1] VRRP Group G - Entering MASTER state", "=> All VRRP group instances are now in MASTER state <=")
