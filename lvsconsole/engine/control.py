"""The Unix control socket: JSON lines between a running engine and its faces (``attach``, ``shell``, ``ctl``).

Protocol (one JSON object per line, UTF-8, in both directions):

- command:      ``{"id": 1, "command": "drain 10.0.0.2:80", "who": "tui"}``
  → response    ``{"id": 1, "ok": true, "message": "…", "data": …}``
- subscribe:    ``{"id": 2, "subscribe": {"replay": 100, "types": ["LogLine", …]}}`` (or ``"subscribe": true``, or
  ``"command": "subscribe"``) → ``{"id": 2, "ok": true, "message": "subscribed", "data": {"replayed": N}}``, then
  ``{"id": 2, "event": {…event_to_json…}}`` per event, a ``Dropped`` event where a slow reader lost some.
- unsubscribe:  ``{"id": 3, "unsubscribe": 2}`` → a response; the stream of 2 ends.

Commands of one connection run in order; events stream alongside. The engine never waits for a client: a
client that stops reading loses old events (and is told how many), nothing else.

"who" is the peer's uid from SO_PEERCRED ("uid=1000(alice)"); what the client claims is appended
("uid=1000(alice) via tui"), never trusted alone. The socket is created 0660 in a 0755 directory
(default ``/run/lvsconsole/lvsconsole.sock``). A stale socket file (nobody listening) is replaced; a live
one is refused with ``ControlSocketInUse``.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import itertools
import json
import os
import pwd
import socket
import stat
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from lvsconsole.engine.bus import EventBus, Subscription
from lvsconsole.engine.commands import Result
from lvsconsole.engine.events import EVENT_TYPES, Event, event_from_json, event_to_json
from lvsconsole.paths import DEFAULT_SOCKET as DEFAULT_SOCKET

SOCKET_MODE = 0o660
DIR_MODE = 0o755
REQUEST_LIMIT = 1 << 20
RESPONSE_LIMIT = 1 << 28

Handler = Callable[[str, str], Awaitable[Result]]
"""(command text, who) → Result: ``CommandExecutor.run``."""


class ControlSocketError(OSError):
    """The control socket cannot be set up or reached; the message says what to do."""


class ControlSocketInUse(ControlSocketError):
    """Another engine listens on the socket path."""


# ---------------------------------------------------------------------------------------------- peers


@dataclass(frozen=True)
class PeerCred:
    pid: int
    uid: int
    gid: int

    @property
    def user(self) -> str:
        try:
            return pwd.getpwuid(self.uid).pw_name
        except KeyError:
            return str(self.uid)

    def who(self, claimed: object = None) -> str:
        base = f"uid={self.uid}({self.user})"
        if isinstance(claimed, str) and claimed.strip():
            text = "".join(ch for ch in claimed.strip() if ch.isprintable())[:64]
            if text and text != self.user:
                return f"{base} via {text}"
        return base


def peer_cred(sock: Any) -> PeerCred:
    """SO_PEERCRED of a connected Unix socket (a socket or asyncio's TransportSocket)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return PeerCred(pid, uid, gid)


def socket_group_authorizer(path: str) -> Callable[[PeerCred], bool]:
    """Admit root, the engine's own user, and members of the socket file's group (what 0660 means)."""
    def allowed(cred: PeerCred) -> bool:
        if cred.uid in (0, os.geteuid()):
            return True
        try:
            gid = os.stat(path).st_gid
        except OSError:
            return False
        if cred.gid == gid:
            return True
        try:
            return pwd.getpwuid(cred.uid).pw_name in grp.getgrgid(gid).gr_mem
        except KeyError:
            return False

    return allowed


# ---------------------------------------------------------------------------------------------- socket file


def prepare_socket_path(path: str) -> None:
    """Create the directory (0755) if needed; remove a stale socket; refuse a live one or a non-socket."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=DIR_MODE, exist_ok=True)
        os.chmod(directory, DIR_MODE)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ControlSocketError(f"{path} exists and is not a socket; remove it or choose another --socket PATH")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # stale: its engine is gone
        return
    except OSError as exc:
        raise ControlSocketError(f"cannot tell whether {path} is in use ({exc.strerror or exc}); "
                                 "choose another --socket PATH") from None
    finally:
        probe.close()
    raise ControlSocketInUse(f"{path}: another lvsconsole engine is listening there "
                             "(stop it, attach to it with 'lvsconsole attach', or use --socket PATH)")


def _dumps(obj: Any) -> bytes:
    return (json.dumps(obj, default=str, separators=(",", ":")) + "\n").encode()


# ---------------------------------------------------------------------------------------------- server


class _Connection:
    def __init__(self, writer: asyncio.StreamWriter, cred: PeerCred) -> None:
        self.writer = writer
        self.cred = cred
        self._lock = asyncio.Lock()
        self.streams: dict[Any, tuple[Subscription, asyncio.Task[None]]] = {}

    async def send(self, obj: Any) -> None:
        async with self._lock:
            self.writer.write(_dumps(obj))
            await self.writer.drain()

    async def pump(self, sid: Any, sub: Subscription) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            async for event in sub:
                await self.send({"id": sid, "event": event_to_json(event)})

    def stop(self, sid: Any) -> bool:
        entry = self.streams.pop(sid, None)
        if entry is None:
            return False
        sub, task = entry
        sub.close()
        task.cancel()
        return True

    def stop_all(self) -> None:
        for sid in list(self.streams):
            self.stop(sid)


class ControlServer:
    """Serves ``handler`` (and ``bus`` events) on a Unix socket. Use ``async with`` or start()/close()."""

    def __init__(self, path: str, handler: Handler, bus: EventBus | None = None, *, mode: int = SOCKET_MODE,
                 group: str | int | None = None, authorize: Callable[[PeerCred], bool] | None = None) -> None:
        """``group``: give the socket to this group (name or gid), so that its members may use it (0660)."""
        self.path = os.path.abspath(path)
        self.handler = handler
        self.bus = bus
        self.mode = mode
        self.group = group
        self.authorize = authorize if authorize is not None else socket_group_authorizer(self.path)
        self._server: asyncio.AbstractServer | None = None
        self._inode: int | None = None
        self._connections: set[_Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def connections(self) -> int:
        return len(self._connections)

    async def start(self) -> None:
        prepare_socket_path(self.path)
        self._server = await asyncio.start_unix_server(self._serve, path=self.path, limit=REQUEST_LIMIT)
        os.chmod(self.path, self.mode)
        self._inode = os.stat(self.path).st_ino
        if self.group is not None:
            try:
                gid = self.group if isinstance(self.group, int) else grp.getgrnam(self.group).gr_gid
                os.chown(self.path, -1, gid)
            except (KeyError, OSError) as exc:
                await self.close()
                raise ControlSocketError(f"{self.path}: cannot give the socket to group {self.group}: {exc}") from None

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.stop_all()
            conn.writer.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(OSError):
            if self._inode is not None and os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)
        self._inode = None

    async def __aenter__(self) -> ControlServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            cred = peer_cred(writer.get_extra_info("socket"))
            conn = _Connection(writer, cred)
            if not self.authorize(cred):
                await conn.send({"id": None, "ok": False, "message": f"permission denied for {cred.who()}",
                                 "data": None})
                return
            self._connections.add(conn)
            try:
                await self._requests(reader, conn)
            finally:
                self._connections.discard(conn)
                conn.stop_all()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _requests(self, reader: asyncio.StreamReader, conn: _Connection) -> None:
        while True:
            try:
                line = await reader.readline()
            except ValueError:  # longer than REQUEST_LIMIT
                await conn.send({"id": None, "ok": False, "message": "request too long", "data": None})
                return
            if not line:
                return
            if not line.strip():
                continue
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("a request is a JSON object")
            except ValueError as exc:
                await conn.send({"id": None, "ok": False, "message": f"bad request: {exc}", "data": None})
                continue
            await self._dispatch(request, conn)

    async def _dispatch(self, request: dict[str, Any], conn: _Connection) -> None:
        rid = request.get("id")
        command = request.get("command")
        if "unsubscribe" in request:
            stopped = conn.stop(request["unsubscribe"])
            await conn.send({"id": rid, "ok": stopped, "message": "unsubscribed" if stopped else "no such stream",
                             "data": None})
            return
        if "subscribe" in request or (isinstance(command, str) and command.strip() == "subscribe"):
            await self._subscribe(rid, request.get("subscribe"), conn)
            return
        if not isinstance(command, str):
            await conn.send({"id": rid, "ok": False, "message": "bad request: 'command' must be a string",
                             "data": None})
            return
        try:
            result = await self.handler(command, conn.cred.who(request.get("who")))
        except Exception as exc:  # a bug in a command must not take the engine's socket down
            result = Result(False, f"internal error: {type(exc).__name__}: {exc}", None)
        await conn.send({"id": rid, **result.as_json()})

    async def _subscribe(self, rid: Any, options: Any, conn: _Connection) -> None:
        if self.bus is None:
            await conn.send({"id": rid, "ok": False, "message": "this server has no event stream", "data": None})
            return
        opts = options if isinstance(options, dict) else {}
        replay = opts.get("replay", 0)
        names = opts.get("types")
        kinds: list[type[Event]] | None = None
        if names is not None:
            unknown = [n for n in names if n not in EVENT_TYPES] if isinstance(names, list) else [names]
            if unknown:
                await conn.send({"id": rid, "ok": False, "message": f"unknown event types: {unknown}", "data": None})
                return
            kinds = [EVENT_TYPES[n] for n in names]
        if rid in conn.streams:
            conn.stop(rid)
        sub = self.bus.subscribe(replay=replay if isinstance(replay, int) else 0, kinds=kinds)
        replayed = sub.pending
        await conn.send({"id": rid, "ok": True, "message": "subscribed", "data": {"replayed": replayed}})
        task = asyncio.create_task(conn.pump(rid, sub))
        conn.streams[rid] = (sub, task)


# ---------------------------------------------------------------------------------------------- client


class ControlClient:
    """One connection to an engine: ``request`` a command, ``subscribe`` to events (several at once)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._streams: dict[int, EventBus] = {}
        self._lock = asyncio.Lock()
        self._closed = False
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, path: str = DEFAULT_SOCKET, *, timeout: float = 5.0) -> ControlClient:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_unix_connection(path, limit=RESPONSE_LIMIT)
        except FileNotFoundError:
            raise ControlSocketError(f"{path}: no engine is running (no socket); start one with "
                                     "'lvsconsole run' or give --socket PATH") from None
        except ConnectionRefusedError:
            raise ControlSocketError(f"{path}: no engine is listening (stale socket)") from None
        except PermissionError:
            raise ControlSocketError(f"{path}: permission denied (the socket is 0660: join its group)") from None
        except TimeoutError:
            raise ControlSocketError(f"{path}: the engine did not answer within {timeout:g} s") from None
        return cls(reader, writer)

    async def _send(self, obj: dict[str, Any]) -> None:
        async with self._lock:
            self._writer.write(_dumps(obj))
            await self._writer.drain()

    async def _read(self) -> None:
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                msg = json.loads(line)
                rid = msg.get("id")
                if "event" in msg:
                    bus = self._streams.get(rid)
                    if bus is not None:
                        with contextlib.suppress(ValueError):
                            bus.publish(event_from_json(msg["event"]))
                    continue
                fut = self._pending.pop(rid, None) if isinstance(rid, int) else None
                if fut is not None and not fut.done():
                    fut.set_result(msg)
        except (ConnectionError, ValueError, asyncio.CancelledError):
            pass
        finally:
            self._closed = True
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ControlSocketError("the engine closed the connection"))
            self._pending.clear()
            for bus in self._streams.values():
                bus.close()

    async def _call(self, request: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        if self._closed:
            raise ControlSocketError("the connection to the engine is closed")
        rid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        await self._send({"id": rid, **request})
        async with asyncio.timeout(timeout):
            return await fut

    async def request(self, command: str, *, who: str | None = None, timeout: float | None = 30.0) -> Result:
        request: dict[str, Any] = {"command": command}
        if who is not None:
            request["who"] = who
        msg = await self._call(request, timeout)
        return Result(bool(msg.get("ok")), str(msg.get("message", "")), msg.get("data"))

    async def subscribe(self, *, replay: int = 0, types: list[str] | None = None, maxsize: int = 1000,
                        timeout: float | None = 30.0) -> Subscription:
        """A stream of events (``async for``); events that arrive faster than read are dropped oldest-first."""
        rid = next(self._ids)
        bus = EventBus(history=1, queue_size=maxsize)
        sub = bus.subscribe()
        self._streams[rid] = bus
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        options: dict[str, Any] = {"replay": replay}
        if types is not None:
            options["types"] = types
        await self._send({"id": rid, "subscribe": options})
        async with asyncio.timeout(timeout):
            msg = await fut
        if not msg.get("ok"):
            self._streams.pop(rid, None)
            raise ControlSocketError(str(msg.get("message")))
        return sub

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def __aenter__(self) -> ControlClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def events(path: str = DEFAULT_SOCKET, *, replay: int = 0) -> AsyncIterator[Event]:
    """Every event of the engine at ``path`` until it goes away (for ``lvsconsole ctl --follow`` and tests)."""
    async with await ControlClient.connect(path) as client:
        sub = await client.subscribe(replay=replay)
        async for event in sub:
            yield event


def run_command(command: str, path: str = DEFAULT_SOCKET, *, who: str | None = None,
                timeout: float = 30.0) -> Result:
    """One command to the engine at ``path``, synchronously (``lvsconsole ctl``)."""

    async def go() -> Result:
        async with await ControlClient.connect(path, timeout=timeout) as client:
            return await client.request(command, who=who, timeout=timeout)

    return asyncio.run(go())
