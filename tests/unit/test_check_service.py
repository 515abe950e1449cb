"""Config → checks (from_config), and the check service end to end against real loopback servers:
keepalived's log wording, retries counted on the wire, alpha, inhibit_on_failure, quorum and the sorry
server, misc_dynamic and FILE_CHECK weights, notify scripts, the snapshot and run_checks."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest
from _checkutil import LIMIT, HttpServer, Reply, free_port, read_fifo, run, wait_for_event

import lvsconsole.check.from_config as fc
from lvsconsole.check.dns import DnsChecker
from lvsconsole.check.file import FileChecker
from lvsconsole.check.http import HttpChecker
from lvsconsole.check.misc import MiscChecker
from lvsconsole.check.ping import PingChecker
from lvsconsole.check.policy import (
    Action,
    CheckerRef,
    DestDown,
    DestUp,
    DestWeight,
    LogEvent,
    RsRef,
    SorryServerOff,
    SorryServerOn,
)
from lvsconsole.check.service import CheckService, run_checks
from lvsconsole.check.smtp import SmtpChecker
from lvsconsole.check.tcp import TcpChecker
from lvsconsole.check.udp import UdpChecker
from lvsconsole.config.build import load_text
from lvsconsole.config.model import Config


def config(text: str) -> Config:
    result = load_text(textwrap.dedent(text))
    errors = [str(d) for d in result.diagnostics if d.is_error]
    assert not errors, errors
    return result.config


def msgs(events: Sequence[LogEvent]) -> list[str]:
    return [e.message for e in events]


# ---- from_config ---------------------------------------------------------------------------------


FULL = """
global_defs {
    checker_log_all_failures
}
track_file tf {
    file /tmp/lvsconsole-test-track
    weight -3 reverse
}
virtual_server 10.1.1.1 80 {
    delay_loop 7
    protocol TCP
    virtualhost vs.example
    inhibit_on_failure
    quorum 2
    sorry_server 10.1.1.99 8080
    real_server 10.0.0.2 80 {
        weight 3
        virtualhost rs.example
        HTTP_GET {
            url {
                path /a
                virtualhost url.example
            }
            url {
                path /b
            }
        }
        SSL_GET {
            virtualhost checker.example
            enable_sni
            url {
                path /c
                status_code 200 300-302
            }
        }
        SMTP_CHECK {
            connect_timeout 4
            host {
                connect_ip 10.0.0.3
                connect_port 2525
            }
            host {
                connect_ip 10.0.0.4
                connect_timeout 9
            }
        }
        DNS_CHECK {
            type A
            name www.example
            connect_port 53
        }
        UDP_CHECK {
            connect_port 5000
            require_reply 01 XX
        }
        PING_CHECK {
        }
        MISC_CHECK {
            misc_path "/bin/true arg"
            misc_dynamic
        }
        FILE_CHECK {
            track_file tf
        }
        FILE_CHECK {
            track_file tf
            weight 0
        }
        BFD_CHECK {
            name b
        }
        TCP_CHECK {
            connect_port 8080
            retry 4
        }
    }
}
"""


def test_from_config_builds_every_checker_kind() -> None:
    setup = fc.build_checks(config(FULL))
    (vs,) = setup.virtual_servers
    assert vs.key == "[10.1.1.1]:tcp:80" and vs.quorum == 2 and vs.sorry_server == "10.1.1.99"
    assert vs.sorry_server_port == 8080
    (rs,) = vs.real_servers
    assert rs.inhibit_on_failure and rs.weight == 3
    kinds = [setup.kinds[CheckerRef(vs.ref(rs), i)] for i in range(len(rs.checkers))]
    assert kinds == [
        "HTTP_GET", "SSL_GET", "SMTP_CHECK", "SMTP_CHECK", "DNS_CHECK", "UDP_CHECK", "PING_CHECK",
        "MISC_CHECK", "FILE_CHECK", "FILE_CHECK", "TCP_CHECK",
    ]  # fmt: skip
    assert [p.kind for p in rs.checkers][:3] == ["HTTP_CHECK", "HTTP_CHECK", "SMTP_CHECK"]
    assert rs.checkers[6].kind == "ICMP CHECK"
    assert all(p.log_all_failures for p in rs.checkers if p.kind != "FILE_CHECK")
    assert rs.checkers[10].retry == 4 and rs.checkers[0].delay_before_retry == 3.0
    objs = [setup.checkers[CheckerRef(vs.ref(rs), i)] for i in range(len(rs.checkers))]
    types = [
        HttpChecker, HttpChecker, SmtpChecker, SmtpChecker, DnsChecker, UdpChecker, PingChecker,
        MiscChecker, FileChecker, FileChecker, TcpChecker,
    ]  # fmt: skip
    assert [type(o) for o in objs] == types
    assert any("BFD_CHECK is not supported" in w for w in setup.warnings)


def test_virtualhost_and_sni_inheritance() -> None:
    setup = fc.build_checks(config(FULL))
    vs = setup.virtual_servers[0]
    ref = vs.ref(vs.real_servers[0])
    http = setup.checkers[CheckerRef(ref, 0)]
    ssl_get = setup.checkers[CheckerRef(ref, 1)]
    assert isinstance(http, HttpChecker) and isinstance(ssl_get, HttpChecker)
    assert [u.virtualhost for u in http.urls] == ["url.example", "rs.example"]
    assert http.ssl_context is None and all(u.sni is None for u in http.urls)
    assert ssl_get.ssl_context is not None
    assert ssl_get.urls[0].virtualhost == "checker.example" and ssl_get.urls[0].sni == "checker.example"
    assert ssl_get.urls[0].status_codes == ((200, 200), (300, 302))


def test_smtp_hosts_become_checkers_inheriting_the_block() -> None:
    setup = fc.build_checks(config(FULL))
    vs = setup.virtual_servers[0]
    ref = vs.ref(vs.real_servers[0])
    a, b = setup.checkers[CheckerRef(ref, 2)], setup.checkers[CheckerRef(ref, 3)]
    assert isinstance(a, SmtpChecker) and isinstance(b, SmtpChecker)
    assert (a.host, a.port, a.connect_timeout) == ("10.0.0.3", 2525, 4.0)
    assert (b.host, b.port, b.connect_timeout) == ("10.0.0.4", 80, 9.0)


def test_misc_udp_file_details() -> None:
    setup = fc.build_checks(config(FULL))
    vs = setup.virtual_servers[0]
    ref = vs.ref(vs.real_servers[0])
    udp = setup.checkers[CheckerRef(ref, 5)]
    misc = setup.checkers[CheckerRef(ref, 7)]
    f1, f2 = setup.checkers[CheckerRef(ref, 8)], setup.checkers[CheckerRef(ref, 9)]
    assert isinstance(udp, UdpChecker) and udp.require_reply and udp.reply_mask == b"\x00\xff"
    assert isinstance(misc, MiscChecker) and misc.argv == ("/bin/true", "arg") and misc.dynamic
    assert misc.misc_timeout == 7.0  # defaults to delay_loop
    assert isinstance(f1, FileChecker) and (f1.weight, f1.reverse) == (-3, True)  # from the track_file
    assert isinstance(f2, FileChecker) and (f2.weight, f2.reverse) == (0, False)  # explicit weight 0


# ---- the service -----------------------------------------------------------------------------------


class Collector:
    """apply_actions that keeps every action and lets a test await one."""

    def __init__(self) -> None:
        self.actions: list[Action] = []
        self.changed = asyncio.Event()

    async def __call__(self, batch: Sequence[Action]) -> None:
        self.actions.extend(batch)
        self.changed.set()

    async def wait(self, predicate: object, limit: float = LIMIT, start: int = 0) -> Action:
        """The first action from index ``start`` on that satisfies ``predicate`` (waiting for it)."""
        assert callable(predicate)
        async with asyncio.timeout(limit):
            seen = start
            while True:
                for a in self.actions[seen:]:
                    if predicate(a):
                        return a
                seen = len(self.actions)
                self.changed.clear()
                await self.changed.wait()


def vs_conf(body: str, *, vs: str = "10.1.1.1 80", extra: str = "", top: str = "") -> Config:
    return config(
        top
        + f"""
virtual_server {vs} {{
    delay_loop 0.1
    warmup 0
    protocol TCP
{extra}
{body}
}}
"""
    )


def tcp_rs(port: int, *, weight: int = 1, retry: int = 0, extra: str = "", check_extra: str = "") -> str:
    return f"""
    real_server 127.0.0.1 {port} {{
        weight {weight}
{extra}
        TCP_CHECK {{
            connect_timeout 1
            retry {retry}
            delay_before_retry 0.05
{check_extra}
        }}
    }}
"""


class Listener:
    """A TCP listener on 127.0.0.1 that can be opened and closed on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: asyncio.Server | None = None

    async def open(self) -> None:
        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", self.port, reuse_address=True)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


def test_tcp_service_events_in_keepalived_wording() -> None:
    async def main() -> tuple[list[str], list[Action]]:
        up, down = Listener(), Listener()
        await up.open()
        cfg = vs_conf(tcp_rs(up.port) + tcp_rs(down.port), extra="    quorum 2")
        col = Collector()
        svc = CheckService(cfg, col, bootstrap_delay=0)
        events = svc.subscribe()
        seen: list[LogEvent] = []
        await svc.start()
        rs_down = f"[127.0.0.1]:tcp:{down.port}"
        await wait_for_event(events, lambda e: e.message.startswith("Lost quorum"), seen)
        await down.open()
        await wait_for_event(events, lambda e: e.message.startswith("Gained quorum") and e.vs is not None, seen)
        await svc.stop()
        await up.close()
        await down.close()
        assert f"TCP connection to {rs_down} failed." in msgs(seen)
        return msgs(seen), col.actions

    messages, actions = run(main())
    vs = "[10.1.1.1]:tcp:80"
    assert "Gained quorum 2+0=2 <= 2 for VS [10.1.1.1]:tcp:80" in messages  # at start-up, both assumed up
    i = messages.index(next(m for m in messages if m.startswith("Removing service")))
    assert messages[i].endswith(f"from VS {vs}")
    assert messages[i + 1] == f"Lost quorum 2-0=2 > 1 for VS {vs}"
    assert any(m.startswith("Adding service [127.0.0.1]:tcp:") and m.endswith(f"to VS {vs}") for m in messages)
    assert isinstance(actions[-1], DestDown)  # shutdown removes the dests
    assert any(isinstance(a, DestDown) and a.weight is None for a in actions)


def test_retries_are_counted_on_the_wire_then_recovery() -> None:
    async def main() -> tuple[int, list[str]]:
        async with HttpServer({"/": Reply()}) as srv:
            cfg = vs_conf(
                f"""
    real_server 127.0.0.1 {srv.port} {{
        HTTP_GET {{
            url {{
                path /
            }}
            connect_timeout 1
            retry 2
            delay_before_retry 0.05
        }}
    }}"""
            )
            svc = CheckService(cfg, None, bootstrap_delay=0)
            events = svc.subscribe()
            seen: list[LogEvent] = []
            await svc.start()
            await wait_for_event(events, lambda e: e.message.startswith("Remote Web server"), seen)
            srv.routes["/"] = Reply(503)
            before = len(srv.requests)
            await wait_for_event(events, lambda e: e.message.startswith("Removing service"), seen)
            failing = len(srv.requests) - before
            srv.routes["/"] = Reply(200)
            await wait_for_event(events, lambda e: e.message.startswith("Adding service"), seen)
            await svc.stop()
            return failing, msgs(seen)

    failing, messages = run(main())
    assert failing == 3  # retry 2: the first failure and two retries, then down
    rs = next(m for m in messages if m.startswith("HTTP_CHECK on service"))
    assert rs.endswith("failed after 2 retries.")
    assert "HTTP status code error to server" in "\n".join(messages)


def test_alpha_keeps_the_server_out_until_its_first_success() -> None:
    async def main() -> tuple[list[Action], Action]:
        lis = Listener()
        cfg = vs_conf(tcp_rs(lis.port, extra="        alpha"))
        col = Collector()
        svc = CheckService(cfg, col, bootstrap_delay=0)
        await svc.start()
        await col.wait(lambda a: isinstance(a, LogEvent) and a.message.startswith("TCP_CHECK on service"))
        initial = list(col.actions)
        await lis.open()
        up = await col.wait(lambda a: isinstance(a, DestUp))
        await svc.stop(shutdown=False)
        await lis.close()
        return initial, up

    initial, up = run(main())
    assert not any(isinstance(a, DestUp) for a in initial)
    assert isinstance(up, DestUp) and up.weight == 1


def test_inhibit_on_failure_keeps_the_dest_at_weight_zero() -> None:
    async def main() -> list[Action]:
        lis = Listener()
        await lis.open()
        cfg = vs_conf(tcp_rs(lis.port, weight=5), extra="    inhibit_on_failure")
        col = Collector()
        svc = CheckService(cfg, col, bootstrap_delay=0)
        await svc.start()
        await col.wait(lambda a: isinstance(a, DestUp))
        await lis.close()
        await col.wait(lambda a: isinstance(a, DestDown))
        n = len(col.actions)
        await lis.open()
        await col.wait(lambda a: isinstance(a, DestUp) and a.weight == 5, start=n)
        await svc.stop(shutdown=False)
        await lis.close()
        return col.actions

    actions = run(main())
    down = next(a for a in actions if isinstance(a, DestDown))
    assert down.weight == 0
    assert any(isinstance(a, LogEvent) and a.message.startswith("Disabling service") for a in actions)
    assert any(isinstance(a, LogEvent) and a.message.startswith("Enabling service") for a in actions)


def test_sorry_server_switches_in_and_out() -> None:
    async def main() -> list[Action]:
        lis = Listener()
        await lis.open()
        cfg = vs_conf(tcp_rs(lis.port), extra="    sorry_server 127.0.0.9 80")
        col = Collector()
        svc = CheckService(cfg, col, bootstrap_delay=0)
        await svc.start()
        await lis.close()
        await col.wait(lambda a: isinstance(a, SorryServerOn))
        await lis.open()
        await col.wait(lambda a: isinstance(a, SorryServerOff))
        await svc.stop(shutdown=False)
        await lis.close()
        return col.actions

    actions = run(main())
    on = next(a for a in actions if isinstance(a, SorryServerOn))
    assert on.rs == "[127.0.0.9]:tcp:80"
    texts = [a.message for a in actions if isinstance(a, LogEvent)]
    assert "Adding sorry server [127.0.0.9]:tcp:80 to VS [10.1.1.1]:tcp:80" in texts
    assert "Removing sorry server [127.0.0.9]:tcp:80 from VS [10.1.1.1]:tcp:80" in texts


def test_misc_dynamic_weights_through_the_service(tmp_path: Path) -> None:
    value = tmp_path / "exit"
    value.write_text("12")
    script = tmp_path / "check.sh"
    script.write_text(f'#!/bin/sh\nread v < {value}\nexit "$v"\n')
    script.chmod(0o755)

    async def main() -> list[Action]:
        cfg = vs_conf(
            f"""
    real_server 127.0.0.1 80 {{
        weight 1
        MISC_CHECK {{
            misc_path {script}
            misc_dynamic
            misc_timeout 5
        }}
    }}"""
        )
        col = Collector()
        svc = CheckService(cfg, col, bootstrap_delay=0)
        await svc.start()
        await col.wait(lambda a: isinstance(a, DestWeight) and a.weight == 10)
        value.write_text("1")
        await col.wait(lambda a: isinstance(a, DestDown))
        n = len(col.actions)
        value.write_text("4")
        await col.wait(lambda a: isinstance(a, DestUp), start=n)
        await svc.stop(shutdown=False)
        return col.actions

    actions = run(main())
    texts = [a.message for a in actions if isinstance(a, LogEvent)]
    assert "Changing weight from 1 to 10 for active service [127.0.0.1]:tcp:80 of VS [10.1.1.1]:tcp:80" in texts
    assert any(t.startswith("Misc check for [[127.0.0.1]:tcp:80 VS [10.1.1.1]:tcp:80] by [") for t in texts)
    assert any(t.endswith("failed (exited with status 1).") for t in texts)
    up = [a for a in actions if isinstance(a, DestUp)]
    assert up[-1].weight == 2  # exit 4 → weight 2


def test_file_check_switch_and_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fc, "POLL_INTERVAL", 0.05)
    switch, weight = tmp_path / "switch", tmp_path / "weight"
    switch.write_text("1\n")
    weight.write_text("3\n")
    top = f"""
track_file sw {{
    file {switch}
    weight 0
}}
track_file wt {{
    file {weight}
    weight -2
}}
"""
    body = """
    real_server 127.0.0.1 81 {
        weight 10
        FILE_CHECK {
            track_file sw
        }
    }
    real_server 127.0.0.1 82 {
        weight 10
        FILE_CHECK {
            track_file wt
        }
    }
"""

    async def main() -> tuple[list[Action], list[Action]]:
        col = Collector()
        svc = CheckService(vs_conf(body, top=top), col, bootstrap_delay=0)
        await svc.start()
        await col.wait(lambda a: isinstance(a, DestUp) and a.port == 82)
        initial = list(col.actions)
        switch.write_text("0\n")
        await col.wait(lambda a: isinstance(a, DestUp) and a.port == 81)
        weight.write_text("1\n")
        await col.wait(lambda a: isinstance(a, DestWeight) and a.port == 82)
        switch.write_text("7\n")
        await col.wait(lambda a: isinstance(a, DestDown) and a.port == 81)
        await svc.stop(shutdown=False)
        return initial, col.actions

    initial, actions = run(main())
    assert not any(isinstance(a, DestUp) and a.port == 81 for a in initial)  # file said "down" at start-up
    assert next(a for a in initial if isinstance(a, DestUp) and a.port == 82).weight == 4  # 10 + 3 * -2
    assert next(a for a in actions if isinstance(a, DestWeight)).weight == 8  # 10 + 1 * -2


def test_notify_scripts_run(tmp_path: Path) -> None:
    fifo = tmp_path / "notify"
    script = tmp_path / "notify.sh"
    script.write_text(f'#!/bin/sh\necho "$1" > {fifo}\n')
    script.chmod(0o755)

    async def main() -> str:
        cfg = vs_conf(tcp_rs(free_port(), extra=f'        notify_down "{script} went-down"'))
        svc = CheckService(cfg, None, bootstrap_delay=0)
        os.mkfifo(fifo)  # before any script can run
        reader = asyncio.create_task(read_fifo(fifo))
        await svc.start()
        line = await reader
        await svc.stop(shutdown=False)
        return line

    assert run(main()) == "went-down"


def test_bfd_warning_and_snapshot() -> None:
    async def main() -> tuple[list[str], object]:
        lis = Listener()
        await lis.open()
        cfg = vs_conf(
            tcp_rs(lis.port)
            + """
    real_server 127.0.0.1 9 {
        BFD_CHECK {
            name x
        }
    }"""
        )
        svc = CheckService(cfg, None, bootstrap_delay=0)
        events = svc.subscribe()
        seen: list[LogEvent] = []
        await svc.start()
        await wait_for_event(events, lambda e: e.message.startswith("TCP connection to"), seen)
        snap = svc.snapshot()
        await svc.stop(shutdown=False)
        await lis.close()
        return msgs(seen), snap

    messages, snap = run(main())
    assert any("BFD_CHECK is not supported" in m for m in messages)
    vs = snap.virtual_servers[0]  # type: ignore[attr-defined]
    assert vs.vs == "[10.1.1.1]:tcp:80" and vs.quorum_up
    tcp, bfd = vs.real_servers
    assert tcp.alive and bfd.alive and bfd.checkers == ()  # BFD ignored: judged by no checker
    (ck,) = tcp.checkers
    assert ck.kind == "TCP_CHECK" and ck.up and ck.last_ok and ck.lateness is not None
    assert ck.last_detail == f"TCP connection to [127.0.0.1]:tcp:{tcp.port} success."
    assert snap.checks >= 1 and snap.lateness_p99 >= snap.lateness_p50 >= 0.0  # type: ignore[attr-defined]


def test_run_checks_logs_and_shuts_down(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> list[Action]:
        lis = Listener()
        await lis.open()
        cfg = vs_conf(tcp_rs(lis.port) + tcp_rs(free_port()))
        got: list[Action] = []
        stop = asyncio.Event()
        removed = asyncio.Event()

        def on_action(a: Action) -> None:
            got.append(a)
            if isinstance(a, LogEvent) and a.message.startswith("Removing service"):
                removed.set()
                stop.set()

        task = asyncio.create_task(run_checks(cfg, on_action, stop))
        async with asyncio.timeout(LIMIT):
            await removed.wait()
            await task
        await lis.close()
        return got

    with caplog.at_level(logging.INFO, logger="lvsconsole.check"):
        actions = run(main())
    logged = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("Removing service [127.0.0.1]:tcp:") for m in logged)
    assert any(m.startswith("Shutting down service") for m in logged)
    assert isinstance(actions[-1], DestDown | LogEvent)
    assert any(isinstance(a, DestDown) and a.weight is None for a in actions)


def test_checker_ref_lookup_uses_keepalived_names() -> None:
    setup = fc.build_checks(vs_conf(tcp_rs(8080)))
    assert CheckerRef(RsRef("[10.1.1.1]:tcp:80", "[127.0.0.1]:tcp:8080"), 0) in setup.checkers


@pytest.mark.skipif(not hasattr(socket, "AF_INET6"), reason="no IPv6")
def test_ipv6_names_in_brackets() -> None:
    setup = fc.build_checks(
        config(
            """
virtual_server 2001:db8::1 443 {
    protocol TCP
    real_server 2001:db8::2 443 {
        TCP_CHECK {
        }
    }
}
"""
        )
    )
    vs = setup.virtual_servers[0]
    assert vs.key == "[2001:db8::1]:tcp:443"
    assert vs.rs_key(vs.real_servers[0]) == "[2001:db8::2]:tcp:443"
