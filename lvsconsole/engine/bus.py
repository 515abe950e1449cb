"""One event bus for the whole engine: publishers are never slowed by subscribers.

- ``publish`` is synchronous and O(subscribers): it appends to the bounded history and to each
  subscriber's bounded queue, and wakes waiting readers. It never awaits and never raises because of a
  subscriber.
- A subscriber that falls behind loses its *oldest* queued events; its next read returns
  ``Dropped(count)`` first, then the events that were kept, in order.
- ``subscribe(replay=N)`` pre-fills the new queue with the last N events of the history, in the same
  synchronous step, so a panel that attaches late sees no gap and no duplicate.

Call ``publish`` from the event loop's thread (the engine has one loop); ``publish_threadsafe`` is for
the rare producer on another thread.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Callable, Collection
from typing import TypeAlias

from lvsconsole.engine.events import Dropped, Event

EventFilter: TypeAlias = Callable[[Event], bool]

DEFAULT_HISTORY = 5000
DEFAULT_QUEUE = 1000


class Subscription:
    """One subscriber's bounded queue. Iterate with ``async for``; ``close()`` (or the bus closing) ends it."""

    def __init__(self, bus: EventBus, maxsize: int, accept: EventFilter | None) -> None:
        if maxsize < 1:
            raise ValueError("a subscription queue holds at least one event")
        self._bus = bus
        self._queue: collections.deque[Event] = collections.deque()
        self._maxsize = maxsize
        self._accept = accept
        self._dropped = 0
        self._total_dropped = 0
        self._closed = False
        self._wakeup: asyncio.Event | None = None

    # -- fed by the bus

    def _offer(self, event: Event) -> None:
        if self._closed:
            return
        if self._accept is not None:
            try:
                if not self._accept(event):
                    return
            except Exception:  # a subscriber's filter must never break publish
                return
        if len(self._queue) >= self._maxsize:
            self._queue.popleft()
            self._dropped += 1
            self._total_dropped += 1
        self._queue.append(event)
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    def _end(self) -> None:
        self._closed = True
        self._wake()

    # -- read by the subscriber

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> int:
        return len(self._queue) + (1 if self._dropped else 0)

    @property
    def dropped_total(self) -> int:
        """Events lost by this subscriber since it subscribed."""
        return self._total_dropped

    def get_nowait(self) -> Event | None:
        """The next event (or ``Dropped`` marker), or None when nothing is queued."""
        if self._dropped:
            marker = Dropped(count=self._dropped)
            self._dropped = 0
            return marker
        if self._queue:
            return self._queue.popleft()
        return None

    def drain(self) -> list[Event]:
        """Everything queued now, markers included, without waiting."""
        out: list[Event] = []
        while (event := self.get_nowait()) is not None:
            out.append(event)
        return out

    async def get(self) -> Event:
        """Wait for the next event. Raises ``EOFError`` once the subscription is closed and empty."""
        while True:
            event = self.get_nowait()
            if event is not None:
                return event
            if self._closed:
                raise EOFError("subscription closed")
            if self._wakeup is None:
                self._wakeup = asyncio.Event()
            self._wakeup.clear()
            await self._wakeup.wait()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.get()
        except EOFError:
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Stop receiving; events already queued can still be read."""
        self._bus._unsubscribe(self)
        self._end()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    def __init__(self, history: int = DEFAULT_HISTORY, queue_size: int = DEFAULT_QUEUE) -> None:
        self._history: collections.deque[Event] = collections.deque(maxlen=history)
        self._subscribers: list[Subscription] = []
        self._queue_size = queue_size
        self._published = 0
        self._closed = False

    @property
    def published(self) -> int:
        """Events published since the bus was created."""
        return self._published

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, event: Event) -> None:
        if self._closed:
            return
        self._published += 1
        self._history.append(event)
        for sub in self._subscribers:
            sub._offer(event)

    def publish_threadsafe(self, loop: asyncio.AbstractEventLoop, event: Event) -> None:
        loop.call_soon_threadsafe(self.publish, event)

    def history(self, last: int | None = None, kinds: Collection[type[Event]] | None = None) -> list[Event]:
        """The retained events, oldest first (the last ``last`` of them; only ``kinds`` if given)."""
        events = list(self._history)
        if kinds is not None:
            wanted = tuple(kinds)
            events = [e for e in events if isinstance(e, wanted)]
        if last is not None:
            events = events[-last:] if last > 0 else []
        return events

    def subscribe(
        self,
        *,
        replay: int = 0,
        maxsize: int | None = None,
        kinds: Collection[type[Event]] | None = None,
        accept: EventFilter | None = None,
    ) -> Subscription:
        """A new subscription, pre-filled with the last ``replay`` matching events of the history.

        ``kinds`` keeps only those event classes; ``accept`` is any further predicate (it runs inside
        ``publish``, so it must be cheap and must not raise).
        """
        wanted = tuple(kinds) if kinds is not None else None

        def keep(event: Event) -> bool:
            if wanted is not None and not isinstance(event, wanted) and not isinstance(event, Dropped):
                return False
            return accept is None or accept(event)

        sub = Subscription(self, maxsize or self._queue_size, keep if (wanted is not None or accept) else None)
        if replay > 0:
            for event in self.history(replay, wanted):
                sub._offer(event)
        if self._closed:
            sub._end()
        else:
            self._subscribers.append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)

    def close(self) -> None:
        """End every subscription (their readers finish after the queued events); later publishes are ignored."""
        self._closed = True
        for sub in self._subscribers:
            sub._end()
        self._subscribers.clear()
