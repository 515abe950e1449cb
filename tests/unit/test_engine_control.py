"""The control socket over a real Unix socket: requests, the event stream, stale/live sockets, peer uid."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_engine_fakes import TWO_VS, FakeDirector, run

from lvsconsole.engine.bus import EventBus
from lvsconsole.engine.commands import Result
from lvsconsole.engine.control import (
    ControlClient,
    ControlServer,
    ControlSocketError,
    ControlSocketInUse,
    PeerCred,
    run_command,
)
from lvsconsole.engine.events import Dropped, LogLine, OperatorAction
from lvsconsole.engine.executor import CommandExecutor
from lvsconsole.engine.store import ConfigStore

ME = os.getuid()


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    # sun_path holds 107 bytes: pytest's tmp_path can be longer, so use a short directory of our own
    path = Path(tempfile.mkdtemp(prefix="lvsc-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Echo:
    """A handler that records who asked what."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, command: str, who: str) -> Result:
        self.seen.append((command, who))
        return Result(True, f"did {command}", {"command": command, "who": who})


def test_request_response_records_the_peer_uid(sock_dir: Path) -> None:
    path = str(sock_dir / "run" / "engine.sock")
    handler = Echo()

    async def scenario() -> None:
        async with ControlServer(path, handler, EventBus()), await ControlClient.connect(path) as client:
            result = await client.request("show vs")
            assert result == Result(True, "did show vs", {"command": "show vs", "who": PeerCred(0, ME, 0).who()})
            tagged = await client.request("drain 10.0.0.2:80", who="tui")
            assert tagged.data["who"] == f"uid={ME}({PeerCred(0, ME, 0).user}) via tui"

    run(scenario())
    assert [c for c, _ in handler.seen] == ["show vs", "drain 10.0.0.2:80"]
    assert handler.seen[0][1].startswith(f"uid={ME}(")


def test_socket_and_directory_modes_and_cleanup(sock_dir: Path) -> None:
    path = sock_dir / "new" / "lvsconsole.sock"

    async def scenario() -> None:
        async with ControlServer(str(path), Echo()):
            assert stat.S_ISSOCK(path.stat().st_mode)
            assert stat.S_IMODE(path.stat().st_mode) == 0o660
            assert stat.S_IMODE(path.parent.stat().st_mode) == 0o755
        assert not path.exists()

    run(scenario())


def test_executor_behind_the_socket(sock_dir: Path, tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(TWO_VS)
    store = ConfigStore.from_file(str(conf))
    bus = EventBus()
    executor = CommandExecutor(FakeDirector(store.running.config), store, bus)
    path = str(sock_dir / "e.sock")

    async def scenario() -> None:
        async with ControlServer(path, executor.run, bus), await ControlClient.connect(path) as client:
            shown = await client.request("show vs")
            assert shown.ok and shown.data[0]["real_servers"][0]["address"] == "192.168.2.187"
            drained = await client.request("drain 192.168.2.187:80", who="ctl")
            assert drained.ok
            bad = await client.request("drain 10.9.9.9:80")
            assert not bad.ok and bad.data["error"]["col"] == 7

    run(scenario())
    audits = [e for e in bus.history() if isinstance(e, OperatorAction)]
    assert audits[0].who.endswith("via ctl")
    assert audits[0].who.startswith(f"uid={ME}(")


def test_subscribe_streams_events_with_replay(sock_dir: Path) -> None:
    path = str(sock_dir / "s.sock")
    bus = EventBus()
    bus.publish(LogLine(message="before"))

    async def scenario() -> list[str]:
        async with ControlServer(path, Echo(), bus), await ControlClient.connect(path) as client:
            stream = await client.subscribe(replay=10)
            logs_only = await client.subscribe(types=["LogLine"])
            bus.publish(OperatorAction(who="x", command="drain", ok=True))
            bus.publish(LogLine(message="after"))
            got = [(await stream.get()).text() for _ in range(3)]
            assert (await logs_only.get()).text() == "after"
            # commands still work on a subscribed connection
            assert (await client.request("show log")).ok
            return got

    got = run(scenario())
    assert got == ["before", "x: 'drain' done", "after"]


def test_subscribe_by_command_and_unsubscribe(sock_dir: Path) -> None:
    path = str(sock_dir / "u.sock")
    bus = EventBus()

    async def scenario() -> None:
        async with ControlServer(path, Echo(), bus) as server:
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(b'{"id": "s1", "command": "subscribe"}\n')
            await writer.drain()
            assert json.loads(await reader.readline()) == {"id": "s1", "ok": True, "message": "subscribed",
                                                           "data": {"replayed": 0}}
            bus.publish(LogLine(message="one"))
            event = json.loads(await reader.readline())
            assert event["id"] == "s1" and event["event"]["message"] == "one"
            writer.write(b'{"id": 9, "unsubscribe": "s1"}\n')
            await writer.drain()
            assert json.loads(await reader.readline())["ok"] is True
            assert bus.subscribers == 0
            writer.write(b'not json\n{"id": 10}\n')
            await writer.drain()
            assert json.loads(await reader.readline())["message"].startswith("bad request")
            assert "'command' must be a string" in json.loads(await reader.readline())["message"]
            assert server.connections == 1
            writer.close()
            await writer.wait_closed()

    run(scenario())


def test_a_slow_client_is_told_what_it_lost(sock_dir: Path) -> None:
    path = str(sock_dir / "d.sock")
    bus = EventBus(queue_size=5)

    async def scenario() -> list[object]:
        async with ControlServer(path, Echo(), bus), await ControlClient.connect(path) as client:
            stream = await client.subscribe(maxsize=1000)
            for i in range(20):  # published in one go: the server-side queue (5) overflows before any write
                bus.publish(LogLine(message=str(i)))
            got = [await stream.get() for _ in range(6)]
            return [e.count if isinstance(e, Dropped) else e.text() for e in got]

    assert run(scenario()) == [15, "15", "16", "17", "18", "19"]


def test_a_stale_socket_is_replaced(sock_dir: Path) -> None:
    path = sock_dir / "stale.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody listens: an engine that died
    assert stat.S_ISSOCK(path.stat().st_mode)

    async def scenario() -> None:
        async with ControlServer(str(path), Echo()), await ControlClient.connect(str(path)) as client:
            assert (await client.request("show vs")).ok

    run(scenario())


def test_a_live_socket_is_refused(sock_dir: Path) -> None:
    path = str(sock_dir / "live.sock")

    async def scenario() -> None:
        async with ControlServer(path, Echo()):
            second = ControlServer(path, Echo())
            with pytest.raises(ControlSocketInUse, match="another lvsconsole engine is listening"):
                await second.start()
            async with await ControlClient.connect(path) as client:  # the first one is unharmed
                assert (await client.request("show vs")).ok

    run(scenario())


def test_a_regular_file_is_not_replaced(sock_dir: Path) -> None:
    path = sock_dir / "file.sock"
    path.write_text("precious")

    async def scenario() -> None:
        with pytest.raises(ControlSocketError, match="not a socket"):
            await ControlServer(str(path), Echo()).start()

    run(scenario())
    assert path.read_text() == "precious"


def test_client_errors_are_clear(sock_dir: Path) -> None:
    async def scenario() -> None:
        with pytest.raises(ControlSocketError, match="no engine is running"):
            await ControlClient.connect(str(sock_dir / "none.sock"))

    run(scenario())


def test_peer_uid_authorization(sock_dir: Path) -> None:
    path = str(sock_dir / "auth.sock")

    async def scenario() -> dict[str, object]:
        async with ControlServer(path, Echo(), authorize=lambda cred: cred.uid != ME):
            reader, writer = await asyncio.open_unix_connection(path)
            reply: dict[str, object] = json.loads(await reader.readline())
            assert await reader.readline() == b""  # and the connection is closed
            writer.close()
            return reply

    reply = run(scenario())
    assert reply["ok"] is False and f"uid={ME}" in str(reply["message"])


def test_run_command_for_ctl(sock_dir: Path) -> None:
    path = str(sock_dir / "ctl.sock")
    ready = threading.Event()
    stop: list[asyncio.Event] = []
    loop_box: list[asyncio.AbstractEventLoop] = []

    async def serve() -> None:
        stop.append(asyncio.Event())
        loop_box.append(asyncio.get_running_loop())
        async with ControlServer(path, Echo()):
            ready.set()
            await stop[0].wait()

    thread = threading.Thread(target=lambda: run(serve(), limit=30))
    thread.start()
    try:
        assert ready.wait(10)
        result = run_command("show stats", path, who="ctl", timeout=10)
        assert result.ok and result.message == "did show stats"
        assert str(result.data["who"]).endswith("via ctl")
    finally:
        if loop_box:
            loop_box[0].call_soon_threadsafe(stop[0].set)
        thread.join(15)
    assert not thread.is_alive()


def test_socket_group(sock_dir: Path) -> None:
    path = sock_dir / "g.sock"
    gid = os.getgid()

    async def scenario() -> None:
        async with ControlServer(str(path), Echo(), group=gid):
            assert path.stat().st_gid == gid
        with pytest.raises(ControlSocketError, match="cannot give the socket to group"):
            await ControlServer(str(path), Echo(), group="no-such-group-lvsc").start()
        assert not path.exists()

    run(scenario())
