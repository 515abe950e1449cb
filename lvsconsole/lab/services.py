"""Small programs the demo lab runs inside its namespaces.

    python -m lvsconsole.lab.services httpd --name rs1 [--bind ADDR] [--port 80]
        an HTTP server answering every request with its name (a real server, or a director's sorry server)
    python -m lvsconsole.lab.services client --url http://10.77.0.100/ [--interval 0.5] [--timeout 1]
        requests the URL forever, one new connection each time; prints one JSON line per request:
        {"time": …, "ok": true, "server": "rs1", "ms": 2.1} or {"time": …, "ok": false, "error": "…"}
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _NameHandler(BaseHTTPRequestHandler):
    server_version = "lvsconsole-lab"
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        name: str = getattr(self.server, "lab_name", "?")
        body = f"{name}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Served-By", name)
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        return  # health checks connect every few seconds: no log line each


def httpd(name: str, bind: str, port: int) -> int:
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET

    class Server(ThreadingHTTPServer):
        address_family = family
        daemon_threads = True
        allow_reuse_address = True

    server = Server((bind, port), _NameHandler)
    server.lab_name = name  # type: ignore[attr-defined]
    stop = threading.Event()

    def on_term(signum: int, frame: object) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    print(f"{name}: serving HTTP on {bind or '*'}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def request_once(url: str, timeout: float) -> dict[str, Any]:
    parts = urllib.parse.urlsplit(url)
    started = time.monotonic()
    record: dict[str, Any] = {"time": time.time()}
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/", headers={"Connection": "close"})
        response = conn.getresponse()
        body = response.read(256).decode(errors="replace").strip()
        record.update(ok=response.status == 200, status=response.status, server=body.split()[0] if body else "")
    except (OSError, http.client.HTTPException) as exc:
        record.update(ok=False, error=str(exc) or type(exc).__name__)
    finally:
        conn.close()
    record["ms"] = round((time.monotonic() - started) * 1000, 1)
    return record


def client(url: str, interval: float, timeout: float, count: int | None) -> int:
    running = True

    def on_term(signum: int, frame: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, on_term)
    done = 0
    next_at = time.monotonic()
    while running and (count is None or done < count):
        print(json.dumps(request_once(url, timeout)), flush=True)
        done += 1
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # the request rate, not a synchronisation
        else:
            next_at = time.monotonic()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lvsconsole.lab.services")
    sub = parser.add_subparsers(dest="program", required=True)
    p_httpd = sub.add_parser("httpd", help="answer every HTTP request with NAME")
    p_httpd.add_argument("--name", required=True)
    p_httpd.add_argument("--bind", default="")
    p_httpd.add_argument("--port", type=int, default=80)
    p_client = sub.add_parser("client", help="request URL forever, one JSON line per request")
    p_client.add_argument("--url", required=True)
    p_client.add_argument("--interval", type=float, default=0.5)
    p_client.add_argument("--timeout", type=float, default=1.0)
    p_client.add_argument("--count", type=int, default=None)
    args = parser.parse_args(argv)
    if args.program == "httpd":
        return httpd(args.name, args.bind, args.port)
    return client(args.url, args.interval, args.timeout, args.count)


if __name__ == "__main__":
    sys.exit(main())
