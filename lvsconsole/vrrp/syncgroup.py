"""vrrp_sync_group: members move together, with keepalived's rules (vrrp_sync.c), sans-IO.

- A member whose down timer expires only *wants* MASTER (:class:`WantMaster`). The group goes MASTER when
  every member wants it, or at once if a member already is MASTER; then all BACKUP members are promoted
  ("prefer backup to avoid thrashing").
- A member that becomes MASTER in any other way (the address owner) takes the others along.
- A member dropping from MASTER to BACKUP (a higher-priority advert) pulls the other masters to BACKUP,
  without priority-0 adverts.
- A member in FAULT puts the whole group in FAULT: the others get the fault reason "sync group" (a master
  sends its priority-0 advert and drops its addresses). The group leaves FAULT only when no member has a
  fault of its own any more.

The adapter calls :meth:`SyncGroup.react` with the actions of every call it made on a member's machine,
and goes through :meth:`SyncGroup.set_fault` / :meth:`SyncGroup.clear_fault` for tracker faults. Each
returns the other members' actions, in order, for the adapter to carry out (without reacting to them).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from lvsconsole.vrrp.machine import Action, State, StateChanged, VrrpMachine, WantMaster

log = logging.getLogger("lvsconsole.vrrp")

SYNC_FAULT = "sync group"

Batch = list[tuple[VrrpMachine, list[Action]]]


class SyncGroup:
    def __init__(self, name: str, members: Sequence[VrrpMachine]) -> None:
        self.name = name
        self.members = list(members)

    @property
    def state(self) -> State:
        """FAULT if any member is, MASTER if any member is, else BACKUP (INIT before start)."""
        states = {m.state for m in self.members}
        for state in (State.FAULT, State.MASTER, State.BACKUP):
            if state in states:
                return state
        return State.INIT

    def _others(self, member: VrrpMachine) -> list[VrrpMachine]:
        return [m for m in self.members if m is not member]

    @staticmethod
    def _own_faults(member: VrrpMachine) -> frozenset[str]:
        return member.faults - {SYNC_FAULT}

    # -- faults -----------------------------------------------------------------------------------

    def set_fault(self, member: VrrpMachine, reason: str, now: float) -> Batch:
        actions = member.set_fault(reason, now)
        return [(member, actions), *self.react(member, actions, now)]

    def clear_fault(self, member: VrrpMachine, reason: str, now: float) -> Batch:
        others_faulty = any(self._own_faults(o) for o in self._others(member))
        if others_faulty and SYNC_FAULT not in member.faults and member.state is not State.INIT:
            member.set_fault(SYNC_FAULT, now)  # already in FAULT: no transition, just held there
        batch: Batch = [(member, member.clear_fault(now, reason))]
        if others_faulty or self._own_faults(member):
            return batch
        if any(SYNC_FAULT in m.faults for m in self.members):
            log.info("VRRP_Group(%s) Leaving FAULT state", self.name)
            for m in self.members:
                if SYNC_FAULT in m.faults:
                    batch.append((m, m.clear_fault(now, SYNC_FAULT)))
        return batch

    # -- reacting to a member ---------------------------------------------------------------------

    def react(self, member: VrrpMachine, actions: Sequence[Action], now: float) -> Batch:
        batch: Batch = []
        for action in actions:
            if isinstance(action, WantMaster):
                batch += self._want_master(member, now)
            elif isinstance(action, StateChanged):
                batch += self._state_changed(member, action, now)
        return batch

    def _want_master(self, member: VrrpMachine, now: float) -> Batch:
        others = self._others(member)
        if not (any(o.state is State.MASTER for o in others) or all(o.wants_master for o in others)):
            return []
        if member.state is not State.BACKUP:
            return []
        log.info("VRRP_Group(%s) Syncing instances to MASTER state", self.name)
        batch: Batch = [(member, member.promote(now))]
        batch += self._promote_others(member, now)
        return batch

    def _state_changed(self, member: VrrpMachine, change: StateChanged, now: float) -> Batch:
        if change.new is State.MASTER:
            return self._promote_others(member, now)
        if change.new is State.FAULT:
            others = [o for o in self._others(member) if SYNC_FAULT not in o.faults]
            if others:
                log.info("VRRP_Group(%s) Syncing instances to FAULT state", self.name)
            return [(o, o.set_fault(SYNC_FAULT, now)) for o in others]
        if change.old is State.MASTER and change.new is State.BACKUP:
            masters = [o for o in self._others(member) if o.state is State.MASTER]
            if masters:
                log.info("VRRP_Group(%s) Syncing instances to BACKUP state", self.name)
            return [(o, o.demote(now, f"sync group {self.name} went BACKUP")) for o in masters]
        return []

    def _promote_others(self, member: VrrpMachine, now: float) -> Batch:
        return [(o, o.promote(now, f"sync group {self.name} went MASTER"))
                for o in self._others(member) if o.state is State.BACKUP]
