"""The documented JSON of ``show … --json`` (``ctl --json``, ``shell --json``): JSON Schema, draft 2020-12.

Every command returns the envelope ``{"ok": bool, "message": str, "data": …}`` (:data:`RESULT`). A ``show``
that succeeds has the ``data`` of :data:`SHOW_DATA` [its command]; a refused one has
``{"error": {"message": …, "word": …, "col": …}}`` (:data:`ERROR_DATA`).

Objects list the fields a consumer may rely on; later versions may add fields (``additionalProperties``
stays open) but never remove or retype these. ``python -m lvsconsole.engine.json_schema`` prints the whole
document (:func:`document`).
"""

from __future__ import annotations

import json
from typing import Any

DIALECT = "https://json-schema.org/draft/2020-12/schema"

Schema = dict[str, Any]


def _obj(properties: dict[str, Schema], *, optional: tuple[str, ...] = (), description: str = "") -> Schema:
    """An object whose properties are all required except ``optional``."""
    schema: Schema = {"type": "object", "properties": properties,
                      "required": [name for name in properties if name not in optional]}
    if description:
        schema["description"] = description
    return schema


def _array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def _nullable(kind: str, description: str = "") -> Schema:
    schema: Schema = {"type": [kind, "null"]}
    if description:
        schema["description"] = description
    return schema


STRING: Schema = {"type": "string"}
BOOLEAN: Schema = {"type": "boolean"}
NUMBER: Schema = {"type": "number"}
COUNT: Schema = {"type": "integer", "minimum": 0}
PORT: Schema = {"type": ["integer", "null"], "minimum": 0, "maximum": 65535}
WEIGHT: Schema = {"type": "integer", "minimum": 0}
CONNECTION: Schema = _obj({
    "protocol": STRING, "client": STRING, "client_port": PORT, "vip": STRING, "vport": PORT, "dest": STRING,
    "dport": PORT, "state": STRING, "expires": COUNT,
    "template": {"type": "boolean", "description": "a persistence template (client port 0), not a flow"},
    "origin": _nullable("string"), "pe_name": STRING, "pe_data": STRING,
}, description="an entry of the IPVS connection table (ipvs/conntable.py)")
SEVERITY: Schema = {"enum": ["debug", "info", "notice", "warning", "error"]}

TRAFFIC = _obj({
    "conns": COUNT, "inpkts": COUNT, "outpkts": COUNT, "inbytes": COUNT, "outbytes": COUNT,
    "cps": COUNT, "inpps": COUNT, "outpps": COUNT, "inbps": COUNT, "outbps": COUNT,
}, description="IPVS counters since the entry was created (conns, packets, bytes) and the kernel estimator's "
               "rates per second (cps, pps, bps)")

REAL_SERVER = _obj({
    "key": {"type": "string", "description": "keepalived's name, e.g. [192.168.2.187]:tcp:80: the identity"},
    "address": STRING,
    "port": PORT,
    "forward": {"enum": ["NAT", "DR", "TUN"]},
    "weight": {"type": ["integer", "null"], "minimum": 0,
               "description": "the weight the IPVS table holds now; null when not in the table"},
    "config_weight": WEIGHT,
    "health": {"enum": ["up", "down", "draining", "disabled", "inhibited"]},
    "active_conns": COUNT, "inactive_conns": COUNT, "persist_conns": COUNT, "cps": COUNT,
    "bps": {"type": "integer", "minimum": 0, "description": "in + out bytes per second"},
    "overrides": _obj({"drain": BOOLEAN, "disabled": BOOLEAN, "weight": _nullable("integer")},
                      description="runtime overrides (not in the config)"),
    "traffic": TRAFFIC,
    "drain_deadline": _nullable("number", "a reload removed it and it drains (health draining, weight 0): the "
                                          "epoch time it is deleted by at the latest (drain_timeout)"),
    "admin_state": {"enum": ["ready", "drain", "maint"],
                    "description": "the operator's state: ready, drain (weight 0, checks continue) or maint "
                                   "(out of the table, checks paused)"},
    "floor_kept": {"type": "boolean", "description": "checks failed it but min_healthy keeps it in the table"},
})

VIRTUAL_SERVER = _obj({
    "key": {"type": "string", "description": "keepalived's name: [10.0.0.1]:tcp:80, FWM 5 or [GROUP]:80"},
    "address": _nullable("string"),
    "port": PORT,
    "protocol": STRING,
    "fwmark": _nullable("integer"),
    "group": _nullable("string", "virtual_server_group name"),
    "scheduler": STRING,
    "persistence_timeout": _nullable("integer"),
    "quorum_up": BOOLEAN,
    "quorum": COUNT,
    "min_healthy": _nullable("string", "the fewest healthy real servers checks may leave: N or P%"),
    "active_conns": COUNT, "inactive_conns": COUNT, "cps": COUNT, "bps": COUNT,
    "traffic": TRAFFIC,
    "real_servers": _array(REAL_SERVER),
})

VRRP_INSTANCE = _obj({
    "name": STRING,
    "state": {"enum": ["INIT", "BACKUP", "MASTER", "FAULT"]},
    "priority": {"type": "integer", "minimum": 0, "maximum": 255, "description": "effective priority"},
    "base_priority": {"type": "integer", "minimum": 0, "maximum": 255, "description": "configured priority"},
    "runtime_priority": _nullable("integer", "set by 'vrrp priority'; null: the configured one applies"),
    "vrid": {"type": "integer", "minimum": 1, "maximum": 255},
    "interface": _nullable("string"),
    "advert_int": NUMBER,
    "master": _nullable("string", "address of the current master, if known"),
    "since": _nullable("number", "epoch seconds the instance entered its state"),
    "sync_group": _nullable("string"),
    "vips": _array(STRING),
    "counters": {"type": "object", "additionalProperties": COUNT,
                 "description": "keepalived's vrrp->stats names: advert_rcvd, advert_sent, become_master, …"},
})

RADAR_SENDER = _obj({
    "interface": STRING, "family": {"enum": [4, 6]}, "vrid": {"type": "integer", "minimum": 0, "maximum": 255},
    "sender": STRING, "instance": _nullable("string", "our vrrp_instance of that VRID; null: not ours"),
    "age": {"type": "number", "description": "seconds since its last packet"}, "count": COUNT,
    "priority": _nullable("integer", "null: nothing decodable heard from it"), "version": _nullable("integer"),
    "interval": _nullable("number", "advertised interval, seconds"), "auth_type": _nullable("string"),
    "vips": _array(STRING),
    "mean_interval": _nullable("number", "mean of the observed inter-arrival times, seconds"),
    "jitter": _nullable("number", "standard deviation of the inter-arrival times, seconds"),
    "mismatches": _array({"enum": ["version", "auth", "interval", "vips"]}),
    "collision": _nullable("string", "a VRID not configured here, or ours with another VIP set"),
    "malformed": COUNT, "last_error": _nullable("string"),
    "advertising": BOOLEAN, "dual_master": BOOLEAN,
    "ours": {"type": "boolean", "description": "adverts this director sent (its own side of the VRID)"},
})

RADAR = _obj({
    "senders": _array(RADAR_SENDER),
    "alarms": _array(_obj({
        "interface": STRING, "family": {"enum": [4, 6]}, "vrid": {"type": "integer"}, "instance": _nullable("string"),
        "for": NUMBER, "senders": _array(_obj({"sender": STRING, "priority": {"type": "integer"}})),
    })),
    "packets": COUNT, "evicted": COUNT,
}, description="every VRRP sender heard on the wire recently, and the dual-master alarms")

EVENT = _obj({
    "type": {"type": "string", "description": "the event class: VrrpTransition, CheckResult, TableChanged, …"},
    "time": NUMBER,
    "severity": SEVERITY,
    "text": {"type": "string", "description": "one line, worded as keepalived logs it"},
}, description="an engine event; its own fields follow (see engine/events.py)")

DIAGNOSTIC = _obj({
    "file": _nullable("string"), "line": _nullable("integer"), "col": _nullable("integer"),
    "severity": {"enum": ["error", "warning"]}, "message": STRING,
})

CHANGE = _obj({
    "kind": {"enum": ["added", "removed", "changed"]},
    "section": STRING,
    "key": STRING,
    "fields": _array(_obj({"field": STRING, "old": STRING, "new": STRING})),
})

SHOW_DATA: dict[str, Schema] = {
    "show vrrp": _array(VRRP_INSTANCE),
    "show vrrp radar": RADAR,
    "show vs": _array(VIRTUAL_SERVER),
    "show rs": _array({**REAL_SERVER, "properties": {**REAL_SERVER["properties"], "vs": STRING, "vs_key": STRING},
                       "required": [*REAL_SERVER["required"], "vs", "vs_key"]}),
    "show checks": _array(_obj({
        "vs": STRING, "rs": STRING, "checker": COUNT, "kind": STRING, "target": STRING, "capacity": COUNT,
        "transitions": COUNT, "failures": COUNT,
        "flap_score": {"type": "number", "minimum": 0, "maximum": 1,
                       "description": "recency-weighted ok/failed transitions over a full window's most (0-1)"},
        "latency_p50": _nullable("number", "seconds, successful probes only"),
        "latency_p95": _nullable("number", "seconds, successful probes only"),
        "sparkline": STRING,
        "probes": _array(_obj({
            "time": NUMBER, "ok": BOOLEAN, "latency": NUMBER, "reason": STRING, "detail": STRING,
            "code": {"type": "string", "description": "ok, refused, timeout, reset, unreachable, http_status, "
                                                      "digest_mismatch, regex_mismatch, tls_error, dns_rcode, "
                                                      "script_exit, script_signal, no_response, protocol, error"},
        })),
    })),
    "show drain": _array(_obj({
        "vs": STRING, "rs": STRING,
        "source": {"enum": ["operator", "state", "reload"],
                   "description": "drain, set rs … state drain, or a reload removing the server"},
        "phase": {"enum": ["draining", "held", "empty", "removed", "timed-out"]},
        "plan": _obj({"until_empty": BOOLEAN, "timeout": _nullable("number", "seconds"), "then_remove": BOOLEAN}),
        "started": NUMBER, "started_at": NUMBER, "ended": _nullable("number", "monotonic seconds; null while live"),
        "samples": COUNT, "window_samples": COUNT,
        "sample_hz": _nullable("number", "samples per second achieved over the window"),
        "active": _nullable("integer"), "inactive": _nullable("integer"), "persist": _nullable("integer"),
        "model": {"enum": ["exponential", "linear", None], "description": "the decay fitted to ActiveConn"},
        "rate": _nullable("number", "connections per second ActiveConn falls by now"),
        "eta": _nullable("number", "seconds until ActiveConn reaches 0; null: unknown or not falling"),
        "active_series": {**_array(COUNT), "description": "ActiveConn over the window, oldest first"},
    })),
    "show overrides": _array(_obj({
        "vs": STRING, "vs_key": STRING, "rs": STRING, "rs_key": STRING, "drain": BOOLEAN, "disabled": BOOLEAN,
        "weight": _nullable("integer", "runtime weight; null when only drain/disable is set"),
        "config_weight": WEIGHT,
    })),
    "show log": _array(EVENT),
    "show config": {"oneOf": [
        _obj({"which": {"const": "running"}, "text": STRING, "revision": COUNT}),
        _obj({"which": {"const": "candidate"}, "text": STRING, "dirty": BOOLEAN, "diagnostics": _array(DIAGNOSTIC)}),
    ]},
    "show diff": _obj({"changes": _array(CHANGE), "candidate_errors": _array(DIAGNOSTIC)},
                      description="candidate vs running"),
    "show stats": _obj({
        "uptime": NUMBER, "ipvs_in_sync": BOOLEAN, "dry_run": BOOLEAN, "revision": COUNT, "candidate_dirty": BOOLEAN,
        "config_file": STRING, "events_published": COUNT, "subscribers": COUNT, "virtual_servers": COUNT,
        "real_servers": COUNT, "instances": COUNT,
        "checks": {"type": "integer", "minimum": 0, "description": "checks run since the last checker restart"},
        "checks_in_flight": COUNT,
        "check_lateness_p99": {"type": "number", "description": "seconds"},
        "loop_lag_ms": NUMBER, "loop_lag_p99_ms": NUMBER,
    }, optional=("checks", "checks_in_flight", "check_lateness_p99", "loop_lag_ms", "loop_lag_p99_ms")),
    "show history": _array(_obj({
        "n": {"type": "integer", "minimum": 0, "description": "the N of 'rollback N'"},
        "number": COUNT, "time": NUMBER, "who": STRING, "source": STRING, "digest": STRING, "changes": COUNT,
        "how": {"type": "string", "description": "startup, commit, commit confirmed, reload, rollback, "
                                                 "confirmed-timeout"},
        "parent": _nullable("string", "digest of the config before it"), "summary": STRING,
        "changed": _array(_obj({"kind": STRING, "section": STRING, "key": STRING})),
    })),
    "show conns": _obj({"connections": _array(CONNECTION), "total": COUNT}),
    "show sync": _obj({  # show sync coverage
        "peer": STRING, "established": COUNT, "kept": COUNT, "peer_total": COUNT,
        "percent": _nullable("number", "share of our established flows the peer holds; null: none to keep"),
        "missing": _array(CONNECTION),
    }),
    "trace": _obj({"client": STRING, "client_port": PORT, "traces": _array(_obj({
        "vs": STRING, "service": STRING,
        "verdict": {"enum": ["connection", "template", "scheduler", "undetermined", "none"]},
        "dest": _nullable("string", "the real server IP:port that gets the client; null: unknown or none"),
        "reason": STRING, "steps": _array(STRING),
        "candidates": _array(_obj({"dest": STRING, "address": STRING, "port": PORT,
                                   "weight": {"type": ["integer", "null"]}, "eligible": BOOLEAN, "reason": STRING,
                                   "figures": {"type": "object"}})),
        "connection": {"oneOf": [{"type": "null"}, CONNECTION]},
        "template": {"oneOf": [{"type": "null"}, CONNECTION]},
    }))}),
}

ERROR_DATA = _obj({"error": _obj({"message": STRING, "word": _nullable("string"), "col": _nullable("integer")},
                                 optional=("word", "col"))})

RESULT = _obj({"ok": BOOLEAN, "message": STRING, "data": {"description": "per command: see SHOW_DATA"}})


def result_schema(command: str) -> Schema:
    """The envelope of ``command`` ("show vs", …): its data when ``ok``, an error otherwise."""
    return {
        "$schema": DIALECT,
        **RESULT,
        "if": {"properties": {"ok": {"const": True}}},
        "then": {"properties": {"data": SHOW_DATA[command]}},
        "else": {"properties": {"data": ERROR_DATA}},
    }


def document() -> Schema:
    """Everything in one schema document: ``$defs`` holds the envelope and each show command's data."""
    defs = {"result": RESULT, "error_data": ERROR_DATA}
    defs.update({name.replace(" ", "_"): schema for name, schema in SHOW_DATA.items()})
    return {"$schema": DIALECT, "title": "lvsconsole command results", "$defs": defs}


if __name__ == "__main__":
    print(json.dumps(document(), indent=1))
