"""The event bus: fans applied span events and status changes out to live subscribers.

Publishing never blocks and never slows a play: each subscriber has a queue bounded in
messages and, for messages published with a ``size``, in bytes; a subscriber past either
bound is dropped (its channel closed) and counted. Topics are play
sids; a subscriber to ``None`` receives the messages of every play.
"""

from __future__ import annotations

from collections import deque
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
    max_queued_bytes: int = 64 * 1024 * 1024
    """Most bytes (as published with ``size``) one subscriber may have waiting."""
    _subs: dict[str | None, set[trio.MemorySendChannel[dict[str, Any]]]] = attrs.field(
        factory=dict, init=False
    )
    _queued: dict[trio.MemorySendChannel[dict[str, Any]], _Queued] = attrs.field(
        factory=dict, init=False
    )
    _published: int = attrs.field(default=0, init=False)
    _dropped: int = attrs.field(default=0, init=False)

    def has_subscribers(self, topic: str) -> bool:
        """True if a message on ``topic`` would reach anyone (its subscribers or all-topics ones);
        lets a publisher skip building messages nobody reads."""
        return bool(self._subs.get(topic) or self._subs.get(None))

    def publish(
        self, topic: str, message: dict[str, Any], *, broadcast: bool = True, size: int = 0
    ) -> None:
        """Deliver ``message`` to the subscribers of ``topic`` and, when ``broadcast``, of all
        topics, without waiting. ``size``: about how many bytes the message holds (counted
        against each subscriber's byte bound while it waits in the queue)."""
        self._published += 1
        for key in (topic, None) if broadcast else (topic,):
            subs = self._subs.get(key)
            if not subs:
                continue
            for send in list(subs):
                if size and not self._room(send, size):
                    self._drop(subs, send)
                    continue
                try:
                    send.send_nowait(message)
                except trio.WouldBlock:
                    self._drop(subs, send)
                except (trio.ClosedResourceError, trio.BrokenResourceError):
                    subs.discard(send)

    def _room(self, send: trio.MemorySendChannel[dict[str, Any]], size: int) -> bool:
        """Count ``size`` bytes into ``send``'s queue; False if that would pass the bound."""
        queued = self._queued.get(send)
        if queued is None:
            queued = self._queued[send] = _Queued()
        waiting = send.statistics().current_buffer_used
        while len(queued.sizes) > waiting:  # the oldest were received meanwhile
            queued.total -= queued.sizes.popleft()
        if queued.total + size > self.max_queued_bytes:
            return False
        queued.sizes.append(size)
        queued.total += size
        return True

    def _drop(
        self, subs: set[trio.MemorySendChannel[dict[str, Any]]], send: trio.MemorySendChannel[dict[str, Any]]
    ) -> None:
        subs.discard(send)
        send.close()
        self._queued.pop(send, None)
        self._dropped += 1

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
            self._queued.pop(send, None)
            if not subs:
                self._subs.pop(topic, None)

    def statistics(self) -> BusStatistics:
        """Counters since the bus was made."""
        return BusStatistics(
            published=self._published,
            subscribers=sum(len(s) for s in self._subs.values()),
            dropped_subscribers=self._dropped,
        )


@attrs.define(eq=False)
class _Queued:
    """Sizes of the messages (published with a size) still waiting in one subscriber's queue."""

    sizes: deque[int] = attrs.Factory(deque)
    total: int = 0
