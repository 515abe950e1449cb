"""The netns lab for VRRP interop tests: two directors (a, b) on one bridge (sw), torn down after each test."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from lvsconsole.lab.netns import Lab
from lvsconsole.lab.vrrp import DirectorPair, build_pair


@pytest.fixture
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    # one prefix per test: a crashed earlier run of the same test is cleaned up on entry
    prefix = "lvt-" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:6] + "-"
    with Lab(prefix) as built:
        yield built


@pytest.fixture
def pair(lab: Lab, tmp_path: Path) -> DirectorPair:
    return build_pair(lab, tmp_path)
