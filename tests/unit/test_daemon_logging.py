"""A headless engine prints each alarm once: the event printer says it, Python's lastResort handler does not."""

from __future__ import annotations

import subprocess
import sys

# A warning of the kind the VRRP machine logs on split brain, in a fresh interpreter (pytest's own log capture
# would hide the lastResort handler here).
_PROGRAM = """
import logging
import lvsconsole.engine.daemon
logging.getLogger("lvsconsole.vrrp").warning("(VI_1) split brain: another MASTER 10.0.0.2")
print("done")
"""


def test_engine_warnings_are_not_printed_again_by_the_last_resort_handler() -> None:
    completed = subprocess.run([sys.executable, "-c", _PROGRAM], capture_output=True, text=True, timeout=60,
                               check=False)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "done"
    assert "split brain" not in completed.stderr


def test_engine_warnings_still_reach_a_configured_root_handler() -> None:
    program = "import logging, sys\nlogging.basicConfig(stream=sys.stdout)\n" + _PROGRAM
    completed = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60,
                               check=False)
    assert completed.returncode == 0, completed.stderr
    assert "split brain: another MASTER 10.0.0.2" in completed.stdout
    assert "split brain" not in completed.stderr
