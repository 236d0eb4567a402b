"""The event bus: fans applied span events and status changes out to live subscribers.

Publishing never blocks and never slows a play: each subscriber has a bounded queue, and a
subscriber whose queue is full is dropped (its channel closed) and counted. Topics are play
sids; a subscriber to ``None`` receives the messages of every play.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
import trio

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["BusStatistics", "EventBus"]


@attrs.frozen
class BusStatistics:
    """Counters of one bus."""

    published: int
    subscribers: int
    dropped_subscribers: int


@attrs.define(eq=False)
class EventBus:
    """In-process publish/subscribe of JSON-shaped messages, keyed by play sid."""

    queue_size: int = 1000
    _subs: dict[str | None, set[trio.MemorySendChannel[dict[str, Any]]]] = attrs.field(
        factory=dict, init=False
    )
    _published: int = attrs.field(default=0, init=False)
    _dropped: int = attrs.field(default=0, init=False)

    def has_subscribers(self, topic: str) -> bool:
        """True if a message on ``topic`` would reach anyone (its subscribers or all-topics ones);
        lets a publisher skip building messages nobody reads."""
        return bool(self._subs.get(topic) or self._subs.get(None))

    def publish(self, topic: str, message: dict[str, Any], *, broadcast: bool = True) -> None:
        """Deliver ``message`` to the subscribers of ``topic`` and, when ``broadcast``, of all
        topics, without waiting."""
        self._published += 1
        for key in (topic, None) if broadcast else (topic,):
            subs = self._subs.get(key)
            if not subs:
                continue
            for send in list(subs):
                try:
                    send.send_nowait(message)
                except trio.WouldBlock:
                    subs.discard(send)
                    send.close()
                    self._dropped += 1
                except (trio.ClosedResourceError, trio.BrokenResourceError):
                    subs.discard(send)

    @asynccontextmanager
    async def subscribe(
        self, topic: str | None, *, queue_size: int | None = None
    ) -> AsyncIterator[trio.MemoryReceiveChannel[dict[str, Any]]]:
        """Receive the messages of ``topic`` (None = every play) while the block runs.

        The channel ends (iteration stops) if the subscriber fell ``queue_size`` messages behind.
        """
        send, receive = trio.open_memory_channel[dict[str, Any]](queue_size or self.queue_size)
        subs = self._subs.setdefault(topic, set())
        subs.add(send)
        try:
            async with receive:
                yield receive
        finally:
            subs.discard(send)
            send.close()
            if not subs:
                self._subs.pop(topic, None)

    def statistics(self) -> BusStatistics:
        """Counters since the bus was made."""
        return BusStatistics(
            published=self._published,
            subscribers=sum(len(s) for s in self._subs.values()),
            dropped_subscribers=self._dropped,
        )
