"""A gate per key that many users may pass at once and one closer may shut.

Plays of a workflow are created through its gate (shared); deleting the workflow closes it
(exclusive): the close waits for the creations already inside, and creations that arrive while
it is closed are refused. So a play never outlives a concurrently deleted workflow, and play
starts of one workflow are not serialised with each other.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import attrs
import trio

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["Closed", "UseGate"]


class Closed(Exception):
    """The gate of this key is closed (its owner is being removed)."""


@attrs.define(eq=False)
class UseGate:
    """``async with gate.use(key)`` (shared) and ``async with gate.close(key)`` (exclusive)."""

    _users: dict[str, int] = attrs.Factory(dict)
    _closed: dict[str, trio.Lock] = attrs.Factory(dict)
    _idle: dict[str, trio.Event] = attrs.Factory(dict)

    @asynccontextmanager
    async def use(self, key: str) -> AsyncIterator[None]:
        """Pass the gate of ``key`` for the block; Closed if it is shut."""
        if key in self._closed:
            raise Closed(key)
        self._users[key] = self._users.get(key, 0) + 1
        try:
            yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key]
                idle = self._idle.pop(key, None)
                if idle is not None:
                    idle.set()

    @asynccontextmanager
    async def close(self, key: str) -> AsyncIterator[None]:
        """Shut the gate of ``key`` for the block, once the users inside have left. Closers of
        one key take turns."""
        lock = self._closed.setdefault(key, trio.Lock())
        try:
            async with lock:
                while self._users.get(key):
                    idle = self._idle.setdefault(key, trio.Event())
                    await idle.wait()
                yield
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._closed.pop(key, None)
