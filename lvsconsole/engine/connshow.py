"""The connection-table commands: ``show conns``, ``trace CLIENT to VS`` and ``show sync coverage``.

They read the kernel (its connection table, its table and counters as they are now), so unlike the other
``show`` commands they await I/O; the director provides that through ``ConnTableCore``. Their JSON (``data``):

- ``show conns`` → ``{"connections": [Connection.as_json()...], "total": N}`` (N: entries in the whole table);
- ``trace`` → ``{"client": IP, "client_port": N|null, "traces": [{"vs": KEY, "service": TEXT, **Trace.as_json()}]}``
  (one per kernel service of the virtual server: a group has several);
- ``show sync coverage`` → ``{"peer": HOST:PORT, **Coverage.as_json()}``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any

from lvsconsole.engine.commands import Result, Show, Trace
from lvsconsole.engine.director_api import ConnTableCore, DirectorError, VirtualServerView
from lvsconsole.engine.errors import CommandError
from lvsconsole.engine.listen import parse_listen_address
from lvsconsole.engine.refs import VsRef, endpoint_text
from lvsconsole.ipvs.conntable import Connection
from lvsconsole.ipvs.table import Family
from lvsconsole.ipvs.trace import Trace as PathTrace
from lvsconsole.ipvs.trace import TraceInput, trace

SHOW_LIMIT = 200
"""Rows of ``show conns`` text at most (the JSON has them all)."""

Resolve = Callable[[VsRef], list[VirtualServerView]]


def conns_text(connections: Sequence[Connection], total: int, limit: int = SHOW_LIMIT) -> str:
    """``ipvsadm -Lnc``'s columns, templates marked."""
    if not connections:
        return f"no matching connection (the table holds {total})"
    rows = [("pro", "expire", "state", "source", "virtual", "destination", "")]
    for c in connections[:limit]:
        rows.append((c.protocol, f"{c.expires // 60:02d}:{c.expires % 60:02d}", c.state,
                     endpoint_text(c.client, c.client_port), endpoint_text(c.vip, c.vport),
                     endpoint_text(c.dest, c.dport), "template" if c.template else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    more = f" (first {limit} shown)" if len(connections) > limit else ""
    lines.append(f"{len(connections)} of {total} entries{more}")
    return "\n".join(lines)


def trace_text(label: str, result: PathTrace) -> str:
    head = f"{label}: " + (f"→ {result.dest}" if result.dest is not None else
                                        "→ undetermined" if result.verdict == "undetermined" else "→ nobody")
    lines = [head, f"  why: {result.reason}"]
    lines += [f"  {n}. {step}" for n, step in enumerate(result.steps, start=1)]
    if result.candidates:
        lines.append("  real servers:")
        for c in result.candidates:
            figures = "  ".join(f"{k} {v}" for k, v in c.figures.items())
            weight = "-" if c.weight is None else str(c.weight)
            mark = "*" if result.dest == c.dest else " "
            lines.append(f"   {mark} {c.dest!s:<24} weight {weight:<4} {figures}{'  ' + c.reason if c.reason else ''}"
                         .rstrip())
    return "\n".join(lines)


def _json_text(data: Any) -> str:
    """``--json``: the data as the message, for the shell and the console's prompt."""
    return json.dumps(data, indent=1)


def _core(core: object) -> ConnTableCore:
    if not isinstance(core, ConnTableCore):
        raise DirectorError("this engine has no IPVS connection table")
    return core


def _in_service(conn: Connection, given: TraceInput) -> bool:
    """An entry of this kernel service: by virtual address and port (any port for a port-0 service), or for a
    fwmark service (the mark is not in the table) by its real servers."""
    key = given.service.key
    if key.is_fwmark:
        return any(conn.dest_key() == d.key for d in given.dests)
    assert key.protocol is not None
    return (conn.vip == key.address and (key.port == 0 or conn.vport == key.port)
            and conn.protocol in (key.protocol.name, "IP"))


async def show_conns(core: object, command: Show, resolve: Resolve) -> Result:
    table = _core(core)
    connections = list(await table.read_connections())
    total = len(connections)
    if command.client is not None:
        ref = command.client
        connections = [c for c in connections if c.client == ref.address
                       and (ref.port is None or c.client_port == ref.port)]
    if command.rs is not None:
        rs = command.rs
        connections = [c for c in connections if c.dest == rs.address and (rs.port is None or c.dport == rs.port)]
    if command.vs is not None:
        inputs = [given for _, given in await table.trace_inputs([view.key for view in resolve(command.vs)])]
        connections = [c for c in connections if any(_in_service(c, given) for given in inputs)]
    data = {"connections": [c.as_json() for c in connections], "total": total}
    return Result(True, _json_text(data) if command.json else conns_text(connections, total), data)


async def trace_command(core: object, command: Trace, resolve: Resolve) -> Result:
    table = _core(core)
    views = resolve(command.vs)
    inputs = await table.trace_inputs([view.key for view in views])
    if not inputs:
        raise CommandError(f"virtual server {command.vs} is not in the IPVS table", str(command.vs), command.vs.col)
    connections = list(await table.read_connections())
    labels = {view.key: view.label for view in views}
    client, port = command.client.address, command.client.port
    texts: list[str] = []
    traces = []
    for vs_key, given in inputs:
        if given.service.key.family is not Family.of(client):
            continue
        result = trace(client, port, dataclasses.replace(given, connections=connections))
        label = labels.get(vs_key, vs_key)
        service = str(given.service.key)
        texts.append(trace_text(label if service.endswith(f" {label}") else f"{label} ({service})", result))
        traces.append({"vs": vs_key, "service": str(given.service.key), **result.as_json()})
    if not traces:
        raise CommandError(f"virtual server {command.vs} has no IPv{client.version} service",
                           str(command.client), command.client.col)
    data = {"client": str(client), "client_port": port, "traces": traces}
    text = f"trace {endpoint_text(client, port)}\n" + "\n".join(texts)
    return Result(True, _json_text(data) if command.json else text, data)


async def sync_coverage(core: object, command: Show) -> Result:
    table = _core(core)
    peer = None if command.peer is None else parse_listen_address(command.peer.text)
    where, result = await table.sync_coverage(peer)
    data = {"peer": str(where), **result.as_json()}
    return Result(True, _json_text(data) if command.json else f"sync coverage against {where}: {result.text()}", data)
