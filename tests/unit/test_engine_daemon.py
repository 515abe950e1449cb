"""`lvsconsole run --headless --dry-run` as a process, driven by `lvsconsole ctl` over its socket."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

CONFIG = """
global_defs {{
    router_id DAEMON_TEST
}}
virtual_server 127.0.0.1 18082 {{
    delay_loop 0.2
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


def lvsconsole(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lvsconsole.cli", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def wait_for(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_run_ctl_sighup_and_sigterm(tmp_path: Path) -> None:
    # A listening socket completes TCP handshakes from its backlog: a real server for TCP_CHECK.
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    port = listener.getsockname()[1]
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONFIG.format(port=port))
    sock = tmp_path / "engine.sock"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lvsconsole.cli", "run", "--headless", "--dry-run", "-f", str(conf),
         "--socket", str(sock)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        wait_for(sock.exists)

        def healthy() -> bool:
            out = lvsconsole("ctl", "--json", "--socket", str(sock), "show", "vs")
            data = json.loads(out.stdout)["data"]
            return bool(data) and data[0]["real_servers"][0]["health"] == "up"

        wait_for(healthy)
        drained = lvsconsole("ctl", "--socket", str(sock), "drain", f"127.0.0.1:{port}", "--force")
        assert drained.returncode == 0, drained.stderr
        assert "weight 3 -> weight 0" in drained.stdout
        bad = lvsconsole("ctl", "--socket", str(sock), "drian", f"127.0.0.1:{port}")
        assert bad.returncode == 1 and "drian" in bad.stderr

        conf.write_text(CONFIG.format(port=port).replace("weight 3", "weight 4"))
        proc.send_signal(signal.SIGHUP)

        def reloaded() -> bool:
            out = lvsconsole("ctl", "--json", "--socket", str(sock), "show", "rs", f"127.0.0.1:{port}")
            rows = json.loads(out.stdout)["data"]
            return bool(rows) and rows[0]["config_weight"] == 4

        wait_for(reloaded)
        # the drain is a runtime override: it survives the reload
        out = json.loads(lvsconsole("ctl", "--json", "--socket", str(sock), "show", "rs", f"127.0.0.1:{port}").stdout)
        assert out["data"][0]["weight"] == 0 and out["data"][0]["health"] == "draining"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        listener.close()
    assert proc.returncode == 0, err
    assert f"Activating healthchecker for service [127.0.0.1]:tcp:{port} for VS [127.0.0.1]:tcp:18082" in err
    assert "SIGHUP: 'reload' done" in err
    assert "Director stopped" in err
    assert not sock.exists()


def test_run_refuses_a_bad_config(tmp_path: Path) -> None:
    conf = tmp_path / "bad.conf"
    conf.write_text("virtual_server 10.0.0.1 80 {\n    lb_algo nonsense\n    protocol TCP\n}\n")
    result = lvsconsole("run", "--headless", "--dry-run", "-f", str(conf), "--socket", str(tmp_path / "s"))
    assert result.returncode == 1
    assert f"{conf}:2:13: error: unknown scheduler 'nonsense'" in result.stderr
