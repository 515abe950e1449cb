"""Real configs through the real command line: Debian's keepalived samples and our two seeds.

`lvsconsole validate` must accept every one of them (exit 0, no error line), report an unreadable file
with exit 2, and give machine-readable diagnostics with --json. The model of the MASTER seed is
spot-checked against what its text says, including keepalived's VS → RS → checker inheritance.
"""

from __future__ import annotations

import json
import subprocess
import sys
from ipaddress import ip_address, ip_interface
from pathlib import Path

import pytest

from lvsconsole.config import model as m
from lvsconsole.config.build import load_file

ROOT = Path(__file__).resolve().parents[2]
SAMPLES_DIR = Path("/usr/share/doc/keepalived/samples")
SEED_DIR = ROOT / "lvsconsole" / "examples"
SAMPLES = sorted(SAMPLES_DIR.glob("keepalived.conf.*"))
SEEDS = [SEED_DIR / "master.conf", SEED_DIR / "backup.conf"]
# conditional_conf selects its lines with @high / @low: validate it as the "high" director
CONFIG_IDS = {"keepalived.conf.conditional_conf": "high"}

needs_samples = pytest.mark.skipif(
    not SAMPLES, reason=f"keepalived's samples are not installed in {SAMPLES_DIR} (apt-get install keepalived)")


def validate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lvsconsole.cli", "validate", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )


@needs_samples
def test_all_debian_samples_are_there() -> None:
    assert len(SAMPLES) == 25, [p.name for p in SAMPLES]


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, marks=needs_samples, id=p.name) for p in SAMPLES]
    + [pytest.param(p, id=p.name) for p in SEEDS]
    # keeps the parametrisation non-empty (and the skip reason visible) when the samples are missing
    + ([] if SAMPLES else [pytest.param(SAMPLES_DIR / "keepalived.conf.sample", marks=needs_samples,
                                        id="samples-missing")]),
)
def test_validates_without_error(path: Path) -> None:
    args = ["-f", str(path)]
    if path.name in CONFIG_IDS:
        args += ["-i", CONFIG_IDS[path.name]]
    proc = validate(*args)
    error_lines = [line for line in proc.stdout.splitlines() if ": error: " in line]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert error_lines == []
    assert f"{path}: valid: 0 errors" in proc.stdout


def test_unreadable_file_exits_2(tmp_path: Path) -> None:
    missing = validate("-f", str(tmp_path / "nope.conf"))
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr
    directory = validate("-f", str(tmp_path))
    assert directory.returncode == 2


def test_invalid_file_exits_1(tmp_path: Path) -> None:
    conf = tmp_path / "bad.conf"
    conf.write_text("vrrp_instance VI_1 {\n    interface lo\n    virtual_router_id 0\n}\n")
    proc = validate("-f", str(conf))
    assert proc.returncode == 1
    assert f"{conf}:3:23: error: virtual_router_id 0 is outside the range 1-255" in proc.stdout.splitlines()


def test_json_output() -> None:
    proc = validate("--json", "-f", str(SEED_DIR / "master.conf"))
    assert proc.returncode == 0, proc.stderr
    diagnostics = json.loads(proc.stdout)
    assert isinstance(diagnostics, list) and diagnostics  # the seed has warnings (nb_get_retry, a group of one)
    for d in diagnostics:
        assert isinstance(d, dict)
        assert set(d) == {"file", "line", "col", "severity", "message"}
        assert d["file"] == str(SEED_DIR / "master.conf")
        assert isinstance(d["line"], int) and isinstance(d["col"], int)
        assert d["severity"] in ("error", "warning")
        assert isinstance(d["message"], str) and d["message"]
    assert {"file": str(SEED_DIR / "master.conf"), "line": 47, "col": 5, "severity": "warning",
            "message": "'nb_get_retry' is deprecated; use 'retry'"} in diagnostics


def test_master_seed_model() -> None:
    result = load_file(str(SEED_DIR / "master.conf"))
    assert result.ok
    config = result.config

    (inst,) = config.instances
    assert (inst.name, inst.state, inst.priority, inst.advert_int) == ("VI_1", "MASTER", 100, 5.0)
    assert (inst.interface, inst.virtual_router_id, inst.version) == ("eth0", 51, 2)
    assert [vip.address for vip in inst.virtual_ipaddress] == [ip_interface("192.168.2.188")]
    assert inst.authentication is not None
    assert (inst.authentication.auth_type, inst.authentication.auth_pass) == ("PASS", "1111")
    assert [g.group for g in config.sync_groups] == [("VI_1",)]

    (vs,) = config.virtual_servers
    assert (vs.address, vs.port, vs.protocol) == (ip_address("192.168.2.188"), 80, "TCP")
    assert (vs.lvs_sched, vs.lvs_method.kind, vs.persistence_timeout) == ("rr", "DR", 50)
    assert vs.sorry_server == m.Endpoint(ip_address("127.0.0.1"), 80)
    assert vs.delay_loop == 6.0

    assert [(str(rs.address), rs.port, rs.weight) for rs in vs.real_servers] == [
        ("192.168.2.187", 80, 3),
        ("192.168.2.189", 80, 1),
    ]
    for rs in vs.real_servers:
        (check,) = rs.checkers
        assert isinstance(check, m.TcpCheck)
        assert check.connect_port == 80
        assert check.connect_timeout == 3.0
        assert check.retry == 3  # given as nb_get_retry
        assert check.delay_before_retry == 3.0
        assert check.delay_loop == 6.0  # inherited from the virtual server


def test_backup_seed_mirrors_master() -> None:
    master = load_file(str(SEED_DIR / "master.conf")).config
    backup = load_file(str(SEED_DIR / "backup.conf")).config
    (mi,) = master.instances
    (bi,) = backup.instances
    assert bi.state == "BACKUP" and bi.priority < mi.priority
    assert bi.virtual_router_id == mi.virtual_router_id
    assert bi.virtual_ipaddress == mi.virtual_ipaddress
    (mvs,) = master.virtual_servers
    (bvs,) = backup.virtual_servers
    assert bvs.key == mvs.key and bvs.real_servers == mvs.real_servers
    assert bvs.sorry_server is None  # the backup's copy has no sorry_server line
