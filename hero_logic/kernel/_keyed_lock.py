"""One lock per key (a play sid), made on first use and forgotten once nobody holds or waits."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import attrs
import trio

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["KeyedLock"]


@attrs.define(eq=False)
class KeyedLock:
    """``async with locks.hold(key):`` serialises the holders of one key (FIFO, as trio.Lock)
    without keeping a lock per key forever."""

    _locks: dict[str, trio.Lock] = attrs.Factory(dict)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold the lock of ``key`` for the block."""
        lock = self._locks.setdefault(key, trio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._locks.pop(key, None)

    def __len__(self) -> int:
        """How many keys have a lock right now (held or waited for)."""
        return len(self._locks)
