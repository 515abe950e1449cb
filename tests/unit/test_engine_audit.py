"""Operator actions reach syslog: a real AF_UNIX datagram socket stands where /dev/log would be."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from lvsconsole.engine.audit import SyslogAudit, audit_line
from lvsconsole.engine.daemon import running_engine
from lvsconsole.engine.events import OperatorAction

CONFIG = """
global_defs {{
    router_id AUDIT_TEST
}}
virtual_server 127.0.0.1 18090 {{
    delay_loop 5
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.1 {port} {{
        weight 3
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
}}
"""


def test_audit_line_names_who_what_and_the_changes() -> None:
    action = OperatorAction(who="uid=1000(ops) via ctl", command="weight 10.0.0.2:80 50%", ok=True,
                            message="weight 4 -> 2", changes=("edit dest TCP 10.0.0.1:80 -> 10.0.0.2:80 weight 2",))
    line = audit_line(action)
    assert line.startswith("AUDIT who='uid=1000(ops) via ctl' command='weight 10.0.0.2:80 50%' result=ok")
    assert line.endswith("changes=edit dest TCP 10.0.0.1:80 -> 10.0.0.2:80 weight 2")
    refused = audit_line(OperatorAction(who="ctl", command="commit", ok=False, message="1 error"))
    assert "result=refused message='1 error'" in refused


def test_no_syslog_socket_means_no_sink(tmp_path: Path) -> None:
    sink = SyslogAudit(str(tmp_path / "absent"))
    assert sink.open() is False
    sink.send(OperatorAction(who="x", command="drain 1.2.3.4", ok=True))  # a no-op, never an error


def test_an_operator_drain_is_sent_to_syslog(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONFIG.format(port=port))
    log_path = tmp_path / "log"
    syslog = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    syslog.bind(str(log_path))
    syslog.setblocking(False)

    async def main() -> bytes:
        async with running_engine(str(conf), dry_run=True, socket_path=None, syslog=str(log_path)) as engine:
            result = await engine.executor.run(f"drain 127.0.0.1:{port} --force", who="uid=0(root) via test")
            assert result.ok, result.message
            loop = asyncio.get_running_loop()
            return await asyncio.wait_for(loop.sock_recv(syslog, 65536), 10)

    try:
        datagram = asyncio.run(main()).decode()
    finally:
        syslog.close()
        listener.close()
    # <PRI>: LOG_AUTHPRIV (10) << 3 | LOG_NOTICE (5) = 85
    assert datagram.startswith("<85>lvsconsole[")
    assert f"command='drain 127.0.0.1:{port} --force' result=ok" in datagram
    assert "who='uid=0(root) via test'" in datagram
    assert "weight 0" in datagram
