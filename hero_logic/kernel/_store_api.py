"""The store slot: an ordered, transactional key-value store of named tables.

A store knows nothing of plays or workflows: it keeps bytes under string keys in named tables
and commits groups of writes atomically and durably. The typed layer above it
(:mod:`hero_logic.kernel._repo`) maps records to keys. This keeps every store (LMDB, memory,
a future PostgreSQL one) small and makes one conformance kit enough for all of them
(:func:`hero_logic.testing.check_store`).

Guarantees every implementation gives:

* ``commit(writes)`` applies all of ``writes`` or none of them, and returns only once they are
  durable (for LMDB: fsync-ed). Concurrent ``commit`` calls may be grouped into one durable
  transaction; each caller still returns only after its own writes are durable. Writes of one
  ``commit`` are applied in order (a later Put of the same key wins; a Delete after a Put
  removes it).
* Reads (``get`` / ``scan``) see every commit that has returned, never a partial one.
* Keys order bytewise by their UTF-8 encoding; ``scan`` yields keys in that order (or the
  reverse). Table names are short ASCII identifiers; a table springs into existence on first
  write and reads of an unknown table see it empty.
* A full disk or a store that cannot grow raises :class:`~hero_logic.kernel.StorageFull`, and the
  failed commit leaves nothing behind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import attrs

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["Delete", "Put", "Store", "StoreStatistics", "Write"]


@attrs.frozen
class Put:
    """Store ``value`` under ``key`` in ``table``, replacing what was there."""

    table: str
    key: str
    value: bytes


@attrs.frozen
class Delete:
    """Remove ``key`` from ``table``; deleting a missing key is not an error."""

    table: str
    key: str


Write = Put | Delete


@attrs.frozen
class StoreStatistics:
    """Counters a store reports through ``statistics()``."""

    commits: int = 0
    """Durable transactions performed (one per group)."""
    writes: int = 0
    """Individual Put/Delete operations applied."""
    commit_calls: int = 0
    """Calls of ``commit``; ``commit_calls / commits`` is the grouping factor."""
    map_growths: int = 0
    """Times the store grew its storage (LMDB map) to fit a commit."""


@runtime_checkable
class Store(Protocol):
    """The interface of the ``hero_logic.store`` slot. See the module docstring for guarantees."""

    async def commit(self, writes: Sequence[Write]) -> None:
        """Apply ``writes`` atomically and return once they are durable."""
        ...

    async def get(self, table: str, key: str) -> bytes | None:
        """The value under ``key`` in ``table``, or None."""
        ...

    async def scan(
        self,
        table: str,
        prefix: str = "",
        *,
        start_after: str = "",
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[tuple[str, bytes]]:
        """Key/value pairs of ``table`` whose key starts with ``prefix``, in key order.

        ``start_after`` skips keys up to and including it (in the scan's direction), for
        paging. ``reverse=True`` walks from the largest key down. ``limit`` caps the count.
        """
        ...

    def statistics(self) -> StoreStatistics:
        """Counters since the store was opened."""
        ...

    async def aclose(self) -> None:
        """Finish pending commits and release the store; idempotent."""
        ...
