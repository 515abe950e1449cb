"""Split-brain bookkeeping of one MASTER, sans-IO: which other masters of our VRID it has heard, episode by episode.

A MASTER that hears an advert from another MASTER it wins against (lower priority, or equal priority and a
lower primary address) knows the two were cut off from each other long enough for the peer to take over:
a split brain. keepalived answers such an advert with an advert of its own and, by default, nothing else;
the peer yields, but hosts that learnt the VIP's MAC from the peer's gratuitous ARPs keep sending to it,
so the VIP stays black-holed until their ARP caches expire (acassen/keepalived #2649, #1884, #166).

The watch only decides *when* an episode starts and ends; :class:`~lvsconsole.vrrp.machine.VrrpMachine`
turns that into actions (re-announce the VIPs, advertise at once, tell the operator):

- an episode starts with the first advert from a peer that has no episode open;
- later adverts from that peer keep it open;
- it ends when the peer has been quiet for ``quiet_adverts`` of its advert intervals (it yielded), or
  when the machine leaves MASTER (:meth:`end_all`).
"""

from __future__ import annotations

from dataclasses import dataclass

from lvsconsole.vrrp.packet import IPAddress

QUIET_ADVERTS = 3


@dataclass(frozen=True, slots=True)
class Episode:
    """One other master heard while we were MASTER: since ``started``, last heard at ``last_heard``."""

    peer: IPAddress
    priority: int
    interval: float
    started: float
    last_heard: float

    def quiet_deadline(self, quiet_adverts: int) -> float:
        return self.last_heard + quiet_adverts * self.interval


class SplitBrainWatch:
    """Open split-brain episodes by peer address."""

    def __init__(self, quiet_adverts: int = QUIET_ADVERTS) -> None:
        if quiet_adverts < 1:
            raise ValueError("quiet_adverts must be at least 1")
        self.quiet_adverts = quiet_adverts
        self._episodes: dict[IPAddress, Episode] = {}

    @property
    def episodes(self) -> tuple[Episode, ...]:
        """Open episodes, oldest first."""
        return tuple(sorted(self._episodes.values(), key=lambda e: (e.started, int(e.peer))))

    @property
    def peers(self) -> tuple[IPAddress, ...]:
        return tuple(e.peer for e in self.episodes)

    def heard(self, peer: IPAddress, priority: int, interval: float, now: float) -> Episode | None:
        """An advert from ``peer``, a master we win against; returns the episode if this one opens it.

        ``interval`` is the quiet period's unit: the longer of the peer's advert interval and ours, so that
        a peer advertising more slowly than we do is not declared gone between two of its adverts.
        """
        known = self._episodes.get(peer)
        if known is not None:
            self._episodes[peer] = Episode(peer, priority, interval, known.started, now)
            return None
        episode = Episode(peer, priority, interval, now, now)
        self._episodes[peer] = episode
        return episode

    def expire(self, now: float) -> list[Episode]:
        """Close and return the episodes whose peer has been quiet long enough by ``now``."""
        ended = [e for e in self.episodes if now >= e.quiet_deadline(self.quiet_adverts)]
        for episode in ended:
            del self._episodes[episode.peer]
        return ended

    def end_all(self) -> list[Episode]:
        """Close and return every open episode (the machine left MASTER)."""
        ended = list(self.episodes)
        self._episodes.clear()
        return ended

    def next_deadline(self) -> float | None:
        """When the next episode ends if its peer stays quiet, or None without open episodes."""
        if not self._episodes:
            return None
        return min(e.quiet_deadline(self.quiet_adverts) for e in self._episodes.values())
