"""MemoryStore: the in-memory fake of the store slot, and the write validation every store shares.

MemoryStore keeps each table as a dict plus a sorted list of UTF-8 encoded keys, so it orders
and pages exactly like LMDB (bytewise). It checks writes with the same rules as
:class:`~hero_logic.plugins.store.LmdbStore` (:func:`encode_writes`), so code tested against the
fake does not fail on the real store. Nothing survives :meth:`MemoryStore.aclose`.
"""

from __future__ import annotations

import bisect
import re
from typing import TYPE_CHECKING

import attrs
import trio

from hero_logic.kernel import Delete, InvalidParams, Put, ServiceClosed, StoreStatistics

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hero_logic.kernel import Config, Write

__all__ = [
    "MAX_KEY_BYTES",
    "EncodedWrite",
    "MemoryStore",
    "check_limit",
    "check_table",
    "encode_writes",
    "prefix_end",
]

MAX_KEY_BYTES = 511
"""Longest key (UTF-8 bytes) a store accepts: LMDB's compiled-in limit, enforced by every store."""

_TABLE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")

EncodedWrite = tuple[str, bytes, bytes | None]
"""``(table, UTF-8 key, value)``; a value of None deletes the key."""


_CHECKED_TABLES: set[str] = set()
"""Table names already found valid (a handful): the hot path skips the pattern for them."""


def check_table(table: object) -> str:
    """Return ``table`` if it is a valid table name, else raise InvalidParams naming it."""
    if type(table) is str and table in _CHECKED_TABLES:
        return table
    if not isinstance(table, str) or not _TABLE_NAME.fullmatch(table):
        msg = (
            f"store table name {table!r} is not a short ASCII identifier: use 1-64 characters "
            "of letters, digits, '_', '.' or '-', not starting with '.' or '-'"
        )
        raise InvalidParams(msg, data=[{"field": "table", "error": "not an identifier"}])
    if len(_CHECKED_TABLES) < 256:
        _CHECKED_TABLES.add(table)
    return table


def _encode_key(key: object, table: str) -> bytes:
    if not isinstance(key, str):
        msg = f"store key {key!r} in table {table!r} is a {type(key).__name__}, not a str: pass the key as a str"
        raise TypeError(msg)
    raw = key.encode("utf-8")
    if not raw or len(raw) > MAX_KEY_BYTES:
        msg = (
            f"store key {key[:80]!r} in table {table!r} is {len(raw)} bytes long (UTF-8); "
            f"keys must be 1 to {MAX_KEY_BYTES} bytes: shorten the name it is built from"
        )
        raise InvalidParams(msg, data=[{"field": "key", "error": f"{len(raw)} bytes"}])
    return raw


def encode_writes(writes: Sequence[Write]) -> list[EncodedWrite]:
    """Check every write of one commit and encode it, before anything is applied.

    Raises TypeError for a write that is not a Put/Delete or a value that is not ``bytes``, and
    InvalidParams for a bad table name or an empty or over-long key. Because all writes are
    checked first, a commit with one bad write applies none of them.
    """
    if isinstance(writes, Put | Delete):
        msg = f"commit() takes a sequence of writes, got a single {type(writes).__name__}: wrap it in a list"
        raise TypeError(msg)
    out: list[EncodedWrite] = []
    for index, write in enumerate(writes):
        if isinstance(write, Put):
            table = check_table(write.table)
            if not isinstance(write.value, bytes):
                msg = (
                    f"write #{index} puts a {type(write.value).__name__} under {write.key!r} in "
                    f"table {table!r}; values must be bytes: encode it first"
                )
                raise TypeError(msg)
            out.append((table, _encode_key(write.key, table), write.value))
        elif isinstance(write, Delete):
            table = check_table(write.table)
            out.append((table, _encode_key(write.key, table), None))
        else:
            msg = f"write #{index} is a {type(write).__name__} ({write!r}), not a Put or Delete"
            raise TypeError(msg)
    return out


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``prefix``.

    None when there is none (``prefix`` is empty or all 0xFF bytes): the scan runs to the end.
    """
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def check_limit(limit: int | None) -> None:
    """Raise ValueError for a negative ``limit`` (None means no limit, 0 yields nothing)."""
    if limit is not None and limit < 0:
        msg = f"scan limit must be None or >= 0, got {limit}"
        raise ValueError(msg)


@attrs.define(eq=False)
class _Table:
    values: dict[bytes, bytes] = attrs.Factory(dict)
    keys: list[bytes] = attrs.Factory(list)
    """Every key of ``values``, kept sorted (bytewise)."""

    def put(self, key: bytes, value: bytes) -> None:
        if key not in self.values:
            bisect.insort(self.keys, key)
        self.values[key] = value

    def delete(self, key: bytes) -> None:
        if self.values.pop(key, None) is not None:
            del self.keys[bisect.bisect_left(self.keys, key)]

    def scan(
        self, prefix: bytes, start_after: bytes, reverse: bool, limit: int | None
    ) -> list[tuple[str, bytes]]:
        keys = self.keys
        if not reverse:
            lo = bisect.bisect_left(keys, prefix)
            if start_after:
                lo = max(lo, bisect.bisect_right(keys, start_after))
            picked: list[bytes] = []
            for key in keys[lo:]:
                if not key.startswith(prefix) or (limit is not None and len(picked) >= limit):
                    break
                picked.append(key)
        else:
            end = prefix_end(prefix)
            hi = len(keys) if end is None else bisect.bisect_left(keys, end)
            if start_after:
                hi = min(hi, bisect.bisect_left(keys, start_after))
            picked = []
            for key in reversed(keys[:hi]):
                if not key.startswith(prefix) or (limit is not None and len(picked) >= limit):
                    break
                picked.append(key)
        return [(key.decode("utf-8"), self.values[key]) for key in picked]


@attrs.define(eq=False, init=False)
class MemoryStore:
    """A dict-backed store with the semantics of the store slot and no durability.

    Each ``commit`` is one atomic step (validated first, then applied without a checkpoint in
    between), so concurrent commits never interleave. Handy in tests and for ``--store memory``.
    """

    _tables: dict[str, _Table]
    _closed: bool
    _commits: int
    _commit_calls: int
    _writes: int

    def __init__(self) -> None:
        self._tables = {}
        self._closed = False
        self._commits = 0
        self._commit_calls = 0
        self._writes = 0

    @classmethod
    def from_config(cls, config: Config) -> MemoryStore:
        """A new, empty store; ``config`` is not used."""
        del config
        return cls()

    def _check_open(self) -> None:
        if self._closed:
            msg = "the memory store is closed: open a new one"
            raise ServiceClosed(msg)

    async def commit(self, writes: Sequence[Write]) -> None:
        """Apply ``writes`` in order, all or nothing (an empty commit changes nothing)."""
        self._check_open()
        encoded = encode_writes(writes)
        self._commit_calls += 1
        await trio.lowlevel.checkpoint()
        self._check_open()
        if not encoded:
            return
        for table, key, value in encoded:
            if value is None:
                if table in self._tables:
                    self._tables[table].delete(key)
            else:
                self._tables.setdefault(table, _Table()).put(key, value)
        self._commits += 1
        self._writes += len(encoded)

    async def get(self, table: str, key: str) -> bytes | None:
        """The value under ``key`` in ``table``, or None."""
        self._check_open()
        check_table(table)
        await trio.lowlevel.checkpoint()
        found = self._tables.get(table)
        return None if found is None else found.values.get(key.encode("utf-8"))

    async def scan(
        self,
        table: str,
        prefix: str = "",
        *,
        start_after: str = "",
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[tuple[str, bytes]]:
        """Pairs of ``table`` whose key starts with ``prefix``, in bytewise key order.

        ``start_after`` skips keys up to and including it in the scan's direction;
        ``reverse=True`` walks down from the largest key; ``limit`` caps the count.
        """
        self._check_open()
        check_table(table)
        check_limit(limit)
        await trio.lowlevel.checkpoint()
        found = self._tables.get(table)
        if found is None:
            return []
        return found.scan(prefix.encode("utf-8"), start_after.encode("utf-8"), reverse, limit)

    def statistics(self) -> StoreStatistics:
        """Counters since the store was created; every non-empty ``commit`` is its own commit."""
        return StoreStatistics(
            commits=self._commits,
            writes=self._writes,
            commit_calls=self._commit_calls,
            map_growths=0,
        )

    async def aclose(self) -> None:
        """Drop every table; later calls raise ServiceClosed. Idempotent."""
        self._closed = True
        self._tables = {}
        await trio.lowlevel.checkpoint()
