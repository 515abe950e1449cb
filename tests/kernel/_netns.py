"""Network namespaces for the kernel tier, cheap enough for a software-emulated guest.

Every process start costs a lot under TCG, so the topology is built with a few ``ip -batch`` runs, and
the servers and the client are *threads of the test process*: a thread that entered a namespace (setns
affects only the calling thread) creates the sockets there, and a socket keeps its namespace for life.

``NetnsWorker(ns).call(fn, ...)`` runs ``fn`` in a thread inside ``ns``; ``NameServer`` answers every
TCP connection with its name and closes; ``fetch_names`` makes N connections and counts the answers.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import queue
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from lvsconsole.ipvs.kernel import enter_netns, netns_path

T = TypeVar("T")


def run(argv: list[str], *, input: str | None = None, check: bool = True, timeout: float = 60) -> str:
    proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()}\n{input or ''}")
    return proc.stdout


def ip_batch(commands: Iterable[str], netns: str | None = None) -> None:
    """``ip [-n NS] -batch -`` with one command per line."""
    argv = ["ip"] + (["-n", netns] if netns else []) + ["-batch", "-"]
    run(argv, input="\n".join(commands) + "\n")


def ns_exec(netns: str, *argv: str, check: bool = True) -> str:
    return run(["ip", "netns", "exec", netns, *argv], check=check)


def wait_for(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll until ``condition()`` is truthy; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {value!r})")
        time.sleep(interval)


class NetnsWorker:
    """A thread living inside network namespace ``ns`` that runs the callables given to ``call``."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self._queue: queue.Queue[tuple[Callable[[], Any], concurrent.futures.Future[Any]] | None] = queue.Queue()
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._main, args=(started,), name=f"netns-{ns}", daemon=True)
        self._thread.start()
        started.result(30)

    def _main(self, started: concurrent.futures.Future[None]) -> None:
        try:
            enter_netns(netns_path(self.ns))
        except BaseException as exc:
            started.set_exception(exc)
            return
        started.set_result(None)
        while (item := self._queue.get()) is not None:
            fn, fut = item
            try:
                fut.set_result(fn())
            except BaseException as exc:
                fut.set_exception(exc)

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = 120) -> T:
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._queue.put((lambda: fn(*args), fut))
        return fut.result(timeout)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(5)


class NameServer:
    """Answers each TCP connection on ``port`` (all addresses of its namespace) with ``name``, then closes."""

    def __init__(self, worker: NetnsWorker, name: str, port: int) -> None:
        self.name = name
        self.port = port
        self.served = 0
        self._stop = threading.Event()
        self._sock = worker.call(self._listen, port)
        self._thread = threading.Thread(target=self._serve, name=f"srv-{name}-{port}", daemon=True)
        self._thread.start()

    @staticmethod
    def _listen(port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))
        sock.listen(512)
        sock.settimeout(0.2)
        return sock

    def _serve(self) -> None:
        payload = self.name.encode()
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            with contextlib.suppress(OSError), conn:
                conn.sendall(payload)
                self.served += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


_source_ports = iter(range(20000, 60000))


def fetch_one(address: str, port: int, timeout: float = 10.0, source: str | None = None) -> str:
    """Connect, read the answer to EOF, close (call inside the client's namespace).

    Every connection gets a source port of its own: a client reusing a port would meet the director's
    entry of the previous connection (in DR mode the director sees one direction only and keeps it in
    FIN_WAIT, which ``conn_reuse_mode`` 1 reuses instead of scheduling anew)."""
    source_address = (source or "0.0.0.0", next(_source_ports))
    with socket.create_connection((address, port), timeout=timeout, source_address=source_address) as s:
        chunks = []
        while data := s.recv(256):
            chunks.append(data)
    return b"".join(chunks).decode()


def fetch_names(address: str, port: int, count: int, source: str | None = None) -> Counter[str]:
    """``count`` sequential connections; how many times each name answered."""
    return Counter(fetch_one(address, port, source=source) for _ in range(count))
