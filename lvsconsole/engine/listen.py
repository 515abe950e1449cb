"""``HOST:PORT`` listen addresses on the command line (``--metrics``), checked before anything starts.

Kept apart from the metrics code so that parsing the command line never imports prometheus_client.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

METRICS_HELP = ("serve Prometheus metrics on HOST:PORT (e.g. 127.0.0.1:9650, [::1]:9650, or :9650 for every "
                "address); scrape /metrics")


@dataclass(frozen=True)
class ListenAddress:
    host: str
    """An address or a host name; "" means every address."""
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen_address(text: str) -> ListenAddress:
    """``127.0.0.1:9650``, ``[::1]:9650``, ``localhost:9650`` or ``:9650``. Raises ValueError saying what is wrong."""
    example = "expected HOST:PORT, e.g. 127.0.0.1:9650 or [::1]:9650"
    host, colon, port_text = text.rpartition(":")
    if not colon:
        raise ValueError(f"{example}; got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"an IPv6 address needs brackets ([::1]:9650); got {text!r}")
    if any(c.isspace() for c in host) or "[" in host or "]" in host:
        raise ValueError(f"{example}; got {text!r}")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"port must be a number 0-65535; got {port_text!r} in {text!r}")
    return ListenAddress(host, int(port_text))


def metrics_address(text: str) -> ListenAddress:
    """argparse ``type=``: a bad value becomes "argument --metrics: …" naming the option."""
    try:
        return parse_listen_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_metrics_argument(parser: argparse.ArgumentParser, dest: str = "metrics") -> None:
    parser.add_argument("--metrics", dest=dest, metavar="HOST:PORT", type=metrics_address, default=None,
                        help=METRICS_HELP)
