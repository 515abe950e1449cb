"""Test doubles for the engine tests (no tests here): a fake ``DirectorCore`` and a bounded ``run``.

The fake holds a config and runtime overrides in memory and records every call, so the executor and the
control socket can be tested without VRRP, checks or IPVS.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from lvsconsole.config import model as m
from lvsconsole.config.diff import ReloadPlan
from lvsconsole.engine.director_api import (
    DirectorError,
    DirectorSnapshot,
    OverrideChange,
    RealServerView,
    RsId,
    VirtualServerView,
    VrrpInstanceView,
)

T = TypeVar("T")
LIMIT = 10.0
EXAMPLES = Path(__file__).resolve().parents[2] / "lvsconsole" / "examples"

TWO_VS = """\
global_defs {
    router_id LVS_TEST
}

vrrp_instance VI_1 {
    state MASTER
    interface lo
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.168.2.188
    }
}

virtual_server 192.168.2.188 80 {
    delay_loop 6
    lvs_sched rr
    lvs_method DR
    protocol TCP
    real_server 192.168.2.187 80 {
        weight 4
        TCP_CHECK {
            connect_timeout 3
        }
    }
    real_server 192.168.2.189 80 {
        weight 1
    }
}

virtual_server 192.168.2.188 443 {
    lvs_sched wlc
    lvs_method DR
    protocol TCP
    real_server 192.168.2.187 443 {
        weight 2
    }
}
"""


def run(coro: Coroutine[Any, Any, T], limit: float = LIMIT) -> T:
    """Run ``coro`` in a fresh loop, failing after ``limit`` seconds instead of hanging."""

    async def bounded() -> T:
        async with asyncio.timeout(limit):
            return await coro

    return asyncio.run(bounded())


def rs_key(vs: m.VirtualServer, rs: m.RealServer) -> str:
    return f"[{rs.address}]:{vs.protocol.lower()}:{rs.port or 0}"


@dataclass
class FakeDirector:
    """A DirectorCore over a config: every real server is up; overrides change the reported weight."""

    config: m.Config
    active: dict[str, int] = field(default_factory=dict)
    drained: set[RsId] = field(default_factory=set)
    disabled: set[RsId] = field(default_factory=set)
    weights: dict[RsId, int] = field(default_factory=dict)
    priorities: dict[str, int | None] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    fail_apply: str | None = None
    states: dict[str, str] = field(default_factory=dict)

    def snapshot(self) -> DirectorSnapshot:
        vss = []
        for vs in self.config.virtual_servers:
            rss = []
            for rs in vs.real_servers:
                rid = RsId(vs.key, rs_key(vs, rs))
                weight: int | None = rs.weight
                health = "up"
                if rid in self.disabled:
                    weight, health = None, "disabled"
                elif rid in self.drained:
                    weight, health = 0, "draining"
                elif rid in self.weights:
                    weight = self.weights[rid]
                method = (rs.lvs_method or vs.lvs_method).kind
                rss.append(RealServerView(
                    key=rid.rs, address=rs.address, port=rs.port, forward=method, weight=weight,
                    config_weight=rs.weight, health=health,  # type: ignore[arg-type]
                    active_conns=self.active.get(str(rs.address), 0), drained=rid in self.drained,
                    disabled=rid in self.disabled, weight_override=self.weights.get(rid)))
            vss.append(VirtualServerView(
                key=vs.key, address=vs.address, port=vs.port, protocol=vs.protocol, fwmark=vs.fwmark,
                group=vs.group, scheduler=vs.lvs_sched, persistence_timeout=vs.persistence_timeout,
                real_servers=tuple(rss)))
        instances = []
        for inst in self.config.instances:
            runtime = self.priorities.get(inst.name)
            instances.append(VrrpInstanceView(
                name=inst.name, state=self.states.get(inst.name, inst.state),
                priority=runtime if runtime is not None else inst.priority, base_priority=inst.priority,
                vrid=inst.virtual_router_id, interface=inst.interface, advert_int=inst.advert_int,
                master="192.168.2.158", since=time.time() - 65, runtime_priority=runtime,
                vips=tuple(str(v.address.ip) for v in inst.virtual_ipaddress),
                counters={"advert_sent": 3, "advert_rcvd": 0}))
        return DirectorSnapshot(time.time(), tuple(instances), tuple(vss), {"uptime": 65.0, "loop_lag": 0.001})

    async def set_override(self, targets: Sequence[RsId], change: OverrideChange) -> Sequence[str]:
        self.calls.append(("override", (tuple(targets), change)))
        for t in targets:
            if change.kind == "drain":
                self.drained.add(t)
            elif change.kind == "undrain":
                self.drained.discard(t)
                self.weights.pop(t, None)
            elif change.kind == "weight":
                assert change.weight is not None
                self.weights[t] = change.weight
            elif change.kind == "disable":
                self.disabled.add(t)
            else:
                self.disabled.discard(t)
        return [f"edit dest {t.rs} in {t.vs}" for t in targets]

    async def apply_config(self, config: m.Config, plan: ReloadPlan) -> Sequence[str]:
        self.calls.append(("apply", plan))
        if self.fail_apply is not None:
            raise DirectorError(self.fail_apply)
        self.config = config
        return [str(c).splitlines()[0] for c in plan.changes]

    async def set_priority(self, instance: str, priority: int | None) -> str:
        self.calls.append(("priority", (instance, priority)))
        self.priorities[instance] = priority
        return f"({instance}) priority set to {priority}"

    async def failover(self, instance: str) -> str:
        self.calls.append(("failover", instance))
        state = self.states.get(instance) or next(i.state for i in self.config.instances if i.name == instance)
        if state != "MASTER":
            raise DirectorError(f"({instance}) is {state}, not MASTER: nothing to hand over")
        self.states[instance] = "BACKUP"
        return f"({instance}) sent priority 0; the peer takes over"
