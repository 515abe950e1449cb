"""`lvsconsole ipvs list`: argument parsing and wiring, with the kernel backend replaced by memory."""

from __future__ import annotations

import asyncio
import errno
from typing import Any, ClassVar

import pytest

from lvsconsole import cli
from lvsconsole.ipvs import kernel
from lvsconsole.ipvs.backend import Stats, Timeouts
from lvsconsole.ipvs.listing import render_list, render_timeouts
from lvsconsole.ipvs.memory import MemoryBackend
from lvsconsole.ipvs.table import Dest, Fwd, IpvsError, Service, ServiceKey, Table

TABLE = Table([(Service(ServiceKey.inet("tcp", "10.0.0.1", 80), "rr"), [Dest.of("10.0.1.1", 80, fwd=Fwd.MASQ)])])


class FakeKernel(MemoryBackend):
    netns_seen: ClassVar[list[str | None]] = []

    def __init__(self, netns: str | None = None, **_: Any) -> None:
        super().__init__(TABLE, timeouts=Timeouts(7200, 120, 300))
        FakeKernel.netns_seen.append(netns)

    async def read_snapshot(self) -> tuple[Table, Stats]:
        return await self.read_table(), await self.read_stats()


@pytest.fixture
def fake_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeKernel.netns_seen = []
    monkeypatch.setattr(kernel, "KernelBackend", FakeKernel)


def test_parse() -> None:
    args = cli.build_parser().parse_args(["ipvs", "list", "-n", "--stats", "--exact", "--netns", "lab-dir"])
    assert (args.numeric, args.mode, args.exact, args.netns) == (True, "stats", True, "lab-dir")
    assert cli.build_parser().parse_args(["ipvs", "list"]).mode == "plain"
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["ipvs", "list", "--stats", "--rate"])


@pytest.mark.usefixtures("fake_kernel")
def test_list_prints_the_listing(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ipvs", "list", "-n"]) == 0
    expected = render_list(asyncio.run(MemoryBackend(TABLE).read_table()))
    assert capsys.readouterr().out == expected
    assert cli.main(["ipvs", "list", "--timeout", "--netns", "x"]) == 0
    assert capsys.readouterr().out == render_timeouts(Timeouts(7200, 120, 300))
    assert FakeKernel.netns_seen == [None, "x"]


def test_list_reports_errors(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def unavailable(*_: Any, **__: Any) -> None:
        raise IpvsError(errno.ENOPROTOOPT, "IPVS is not available")

    monkeypatch.setattr(kernel, "KernelBackend", unavailable)
    assert cli.main(["ipvs", "list", "-n"]) == 1
    assert "IPVS is not available" in capsys.readouterr().err
