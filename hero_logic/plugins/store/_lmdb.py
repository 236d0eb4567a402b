"""LmdbStore: the durable store, one LMDB environment with a named sub-database per table.

Durability: the environment is opened with ``sync=True, metasync=True``, so a ``commit`` that
returned has been fsync-ed and survives ``kill -9`` and power loss.

Group commit: concurrent ``commit`` calls are merged into one LMDB write transaction. There is
no background task. The first caller that finds no flush running becomes the *leader*: it takes
every pending batch and commits them in one transaction that begins, runs and commits inside a
single :func:`trio.to_thread.run_sync` call (LMDB write transactions are bound to their thread,
and the fsync must not block the event loop). Callers arriving meanwhile queue up; when the
flush ends the leader wakes every batch it committed and hands the lead to the oldest queued
caller, who flushes the next group. Before taking the group a leader yields a few times, so
callers that are already runnable join it. If a group transaction fails, each of its batches is
retried alone, so one bad batch cannot fail the others. The leader's flush is shielded from
cancellation: a cancelled caller never abandons a transaction half-way; its ``commit`` either
returns (durable) or raises ``Cancelled`` (it may or may not have landed).

Failures: a full map doubles it (up to ``max_map_size``) and retries; a map grown by another
process is adopted; a full file system (ENOSPC, or the bare EIO LMDB reports for a short write
when the space left could not hold the commit) raises StorageFull; MDB_PANIC (a failed meta-page
write poisoned the environment; that commit already failed) closes and reopens the environment
and runs the pending transaction afresh. A failed commit is never reported as a success.

Thread rules, which keep LMDB's "no open transaction" preconditions true:

* Reads run inline on the Trio thread in a short read transaction that never spans an
  ``await``.
* Only the flush thread writes; at most one runs at a time (``_in_thread``).
* ``set_mapsize`` (growing the map, or adopting a size another process set) and opening a
  table made by another process run on the Trio thread only while no flush thread runs (LMDB
  forbids them during a transaction, and concurrent ``mdb_dbi_open`` calls).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

import lmdb
import trio

from hero_logic.kernel import HeroLogicError, ServiceClosed, StorageFull, StoreStatistics

from ._lmdb_env import Batch, is_enospc, open_env, scan_txn, storage_full
from ._memory import (
    MAX_KEY_BYTES,
    check_limit,
    check_table,
    encode_writes,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from hero_logic.kernel import Config, Write

__all__ = ["DEFAULT_MAP_SIZE", "MAX_MAP_SIZE", "LmdbStore"]

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_MAP_SIZE = 64 * 1024 * 1024
"""Initial map size when none is given; the map doubles whenever a commit does not fit."""

MAX_MAP_SIZE = 1 << 40
"""Default cap of map growth (1 TiB of address space); past it a commit raises StorageFull."""

_DISK_SLACK = 1024 * 1024
_MAX_TXN_ATTEMPTS = 64
_MAX_GATHER_YIELDS = 4


class LmdbStore:
    """The ``lmdb`` store plugin: durable, ordered tables in one LMDB environment.

    ``path`` is the environment directory (created with mode 0700). ``map_size`` is the
    initial map size in bytes; the map doubles when a commit does not fit, up to
    ``max_map_size``. One process may open a given directory only once at a time.
    """

    def __init__(
        self, path: Path, *, map_size: int = DEFAULT_MAP_SIZE, max_map_size: int = MAX_MAP_SIZE
    ) -> None:
        if map_size <= 0 or max_map_size < map_size:
            msg = (
                f"LMDB map size must be positive and at most max_map_size ({max_map_size}), "
                f"got {map_size}: set HERO_LOGIC_LMDB_MAP_SIZE to e.g. {DEFAULT_MAP_SIZE}"
            )
            raise ValueError(msg)
        self._path = Path(path)
        self._max_map_size = max_map_size
        self._env: Any = open_env(self._path, map_size)
        self._dbs: dict[str, Any] = {}
        self._pending: list[Batch] = []
        self._flushing = False
        self._in_thread = False
        self._changed = trio.Event()
        self._closing = False
        self._commits = 0
        self._commit_calls = 0
        self._writes = 0
        self._map_growths = 0
        try:
            stale = self._env.reader_check()
            if stale:
                log.warning(
                    "%s: cleared %d stale LMDB reader slot(s) left by dead processes",
                    self._path,
                    stale,
                )
            self._open_existing_tables()
        except BaseException:
            self._env.close()
            raise
        log.debug(
            "opened LMDB store at %s (map %d bytes)", self._path, self._env.info()["map_size"]
        )

    @classmethod
    def from_config(cls, config: Config) -> Self:
        """Open the store at ``config.db_dir`` with ``config.lmdb_map_size`` as initial map."""
        return cls(config.db_dir, map_size=config.lmdb_map_size)

    def __repr__(self) -> str:
        state = "closed" if self._env is None else "open"
        return f"<LmdbStore {str(self._path)!r} {state}>"

    # -- reads ------------------------------------------------------------------------------------

    async def get(self, table: str, key: str) -> bytes | None:
        """The value under ``key`` in ``table``, or None."""
        self._check_open()
        check_table(table)
        raw = key.encode("utf-8")
        await trio.lowlevel.checkpoint()
        if not raw or len(raw) > MAX_KEY_BYTES:
            return None
        db = await self._db_for_read(table)
        if db is None:
            return None
        value: bytes | None = await self._read(lambda txn: txn.get(raw, db=db))
        return value

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
        ``reverse=True`` walks down from the largest key; ``limit`` caps the count. The whole
        scan reads one snapshot.
        """
        self._check_open()
        check_table(table)
        check_limit(limit)
        raw_prefix = prefix.encode("utf-8")
        raw_after = start_after.encode("utf-8")
        await trio.lowlevel.checkpoint()
        db = await self._db_for_read(table)
        if db is None or limit == 0:
            return []
        return await self._read(
            lambda txn: scan_txn(txn.cursor(db=db), raw_prefix, raw_after, reverse, limit)
        )

    async def _read(self, body: Callable[[Any], T]) -> T:
        """Run ``body(txn)`` in a short read transaction on this thread, adopting a new map size."""
        while True:
            self._check_open()
            try:
                with self._env.begin() as txn:
                    return body(txn)
            except lmdb.MapResizedError:
                await self._adopt_map_size()

    async def _db_for_read(self, table: str) -> Any:
        """The handle of ``table``, or None if it does not exist (reads never create it).

        Every table that existed at open, or that a commit of this store created, is cached. A
        table found on disk but not cached was made by another process (or by a flush still in
        progress); it is opened in a write transaction, because py-lmdb ends read transactions
        with a reset that discards handles opened in them. Opening it writes nothing.
        """
        name = table.encode("ascii")
        while True:
            self._check_open()
            db = self._dbs.get(table)
            if db is not None:
                return db
            if not await self._read(lambda txn: txn.get(name) is not None):
                return None
            if self._in_thread:
                await self._changed.wait()
                continue
            try:
                with self._env.begin(write=True) as txn:
                    db = self._env.open_db(name, txn=txn, create=False)
            except lmdb.MapResizedError:
                await self._adopt_map_size()
                continue
            self._dbs[table] = db
            return db

    async def _adopt_map_size(self) -> None:
        """Another process grew the map: take its size, once no flush thread runs."""
        while self._in_thread:
            await self._changed.wait()
        self._check_open()
        self._adopt_map_size_now()

    def _adopt_map_size_now(self) -> None:
        """Take the map size another process set (no transaction is open in this process)."""
        self._env.set_mapsize(0)
        log.info(
            "%s: adopted LMDB map size %d set by another process",
            self._path,
            self._env.info()["map_size"],
        )

    def _open_existing_tables(self) -> None:
        """Open a handle for every table already in the environment (no flush runs yet).

        This uses a write transaction (see :meth:`_db_for_read`); it writes nothing.
        """
        with self._env.begin(write=True) as txn:
            names = [bytes(key) for key in txn.cursor().iternext(keys=True, values=False)]
            for name in names:
                try:
                    table = check_table(name.decode("ascii"))
                    self._dbs[table] = self._env.open_db(name, txn=txn, create=False)
                except (UnicodeDecodeError, HeroLogicError, lmdb.IncompatibleError):
                    log.warning(
                        "%s: ignoring %r in the main database: not a table", self._path, name
                    )

    # -- commits ----------------------------------------------------------------------------------

    async def commit(self, writes: Sequence[Write]) -> None:
        """Apply ``writes`` atomically; return once they are fsync-ed (grouped with others).

        Raises StorageFull when the disk is full or the map cannot grow past its cap; the
        failed commit then leaves nothing behind.
        """
        self._check_open()
        encoded = encode_writes(writes)
        # The flush below is shielded, so check for cancellation first: a cancelled caller
        # looping over commit() must see Cancelled rather than commit forever.
        await trio.lowlevel.checkpoint_if_cancelled()
        self._commit_calls += 1
        if not encoded:
            await trio.lowlevel.checkpoint()
            return
        batch = Batch(encoded)
        self._pending.append(batch)
        if not self._flushing:
            self._flushing = True
            await self._lead()
        else:
            try:
                await batch.wake.wait()
            except BaseException:
                self._withdraw(batch)
                raise
            if batch.promoted:
                await self._lead()
        if batch.error is not None:
            raise batch.error

    def _withdraw(self, batch: Batch) -> None:
        """The caller of a queued ``batch`` was cancelled: drop it, pass on a lead it was given."""
        if batch in self._pending:
            self._pending.remove(batch)
        if batch.promoted and not batch.finished:
            self._hand_off()

    def _hand_off(self) -> None:
        """End a flush: promote the oldest queued caller to lead the next one, or stand down."""
        if self._pending:
            successor = self._pending[0]
            successor.promoted = True
            successor.wake.set()
        else:
            self._flushing = False
            self._notify()

    async def _lead(self) -> None:
        """Commit every pending batch in one group, wake them all, then hand the lead on.

        The leader first yields twice, then on while a yield brings new batches (a few times
        at most), so that callers already runnable (typically those just woken by the previous
        flush, now committing again; Trio may run them before or after the leader) join this
        group instead of making a group of their own.
        """
        with trio.CancelScope(shield=True):
            group: list[Batch] = []
            try:
                await trio.lowlevel.checkpoint()
                for _ in range(_MAX_GATHER_YIELDS):
                    waiting = len(self._pending)
                    await trio.lowlevel.checkpoint()
                    if len(self._pending) == waiting:
                        break
                group, self._pending = self._pending, []
                await self._flush(group)
            finally:
                for batch in group:
                    if not batch.finished:
                        msg = f"the commit to the LMDB store at {self._path} was interrupted; it did not land"
                        batch.finish(HeroLogicError(msg))
                self._hand_off()

    async def _flush(self, group: list[Batch]) -> None:
        """Commit ``group`` in one transaction; on failure, retry each batch alone."""
        try:
            await self._commit_durably(group)
        except Exception as exc:
            if len(group) == 1:
                group[0].finish(exc)
                return
            log.warning(
                "%s: a group commit of %d batches failed (%s); committing each alone",
                self._path,
                len(group),
                exc,
            )
            for batch in group:
                try:
                    await self._commit_durably([batch])
                except Exception as alone_exc:
                    batch.finish(alone_exc)
                else:
                    batch.finish()
        else:
            for batch in group:
                batch.finish()

    async def _commit_durably(self, batches: list[Batch]) -> None:
        """One durable write transaction holding ``batches``, growing the map as needed."""
        reopened = False
        for _ in range(_MAX_TXN_ATTEMPTS):
            tables = {table for batch in batches for table, _, _ in batch.writes}
            known = {table: self._dbs[table] for table in tables if table in self._dbs}
            try:
                created = await self._run_txn(batches, known, sorted(tables - known.keys()))
            except lmdb.MapFullError:
                self._grow()
                continue
            except lmdb.MapResizedError:
                self._adopt_map_size_now()
                continue
            except lmdb.PanicError as exc:
                # An earlier commit failed writing its meta page (that commit was reported as
                # failed). This transaction never began, so after reopening it can run afresh.
                if reopened:
                    msg = f"the LMDB store at {self._path} keeps failing ({exc}) even after reopening: check the disk"
                    raise HeroLogicError(msg) from exc
                self._reopen_after_panic(exc)
                reopened = True
                continue
            except (lmdb.Error, OSError) as exc:
                if is_enospc(exc) or self._disk_nearly_full(batches):
                    raise storage_full(self._path, exc) from exc
                if isinstance(exc, OSError):
                    raise
                msg = f"a commit to the LMDB store at {self._path} failed: {exc}"
                raise HeroLogicError(msg) from exc
            self._dbs.update(created)
            self._commits += 1
            self._writes += sum(len(batch.writes) for batch in batches)
            return
        msg = f"a commit to the LMDB store at {self._path} did not succeed after {_MAX_TXN_ATTEMPTS} map adjustments"
        raise StorageFull(msg, data={"path": str(self._path)})

    async def _run_txn(
        self, batches: list[Batch], known: dict[str, Any], new_tables: list[str]
    ) -> dict[str, Any]:
        """Run the write transaction in a worker thread; return the handles it created."""
        env = self._env

        def write() -> dict[str, Any]:
            created: dict[str, Any] = {}
            with env.begin(write=True) as txn:
                for table in new_tables:
                    created[table] = env.open_db(table.encode("ascii"), txn=txn, create=True)
                handles = known | created
                for batch in batches:
                    for table, key, value in batch.writes:
                        if value is None:
                            txn.delete(key, db=handles[table])
                        else:
                            txn.put(key, value, db=handles[table])
            return created

        self._in_thread = True
        try:
            return await trio.to_thread.run_sync(write)
        finally:
            self._in_thread = False
            self._notify()

    def _disk_nearly_full(self, batches: list[Batch]) -> bool:
        """True if the file system lacks room for ``batches`` (plus slack) after a failed write.

        LMDB reports a short write on a full disk as a bare EIO, so a failed commit is put
        down to a full disk when the space left could not have held it.
        """
        try:
            fs = os.statvfs(self._path)
        except OSError:
            return False
        needed = sum(
            len(key) + len(value or b"") for batch in batches for _, key, value in batch.writes
        )
        return fs.f_bavail * fs.f_frsize < needed + _DISK_SLACK

    def _grow(self) -> None:
        """Double the map (no transaction is open in this process: called between flushes)."""
        current = int(self._env.info()["map_size"])
        new = min(current * 2, self._max_map_size)
        if new <= current:
            msg = (
                f"the LMDB store at {self._path} is full: a commit does not fit in its map of "
                f"{current} bytes, the growth cap: delete old plays, or open the store with a "
                "larger max_map_size"
            )
            raise StorageFull(msg, data={"path": str(self._path), "map_size": current})
        try:
            self._env.set_mapsize(new)
        except lmdb.Error as exc:
            msg = f"the LMDB store at {self._path} could not grow its map to {new} bytes ({exc}): free memory or disk space"
            raise StorageFull(msg, data={"path": str(self._path), "map_size": current}) from exc
        self._map_growths += 1
        log.info("%s: grew the LMDB map from %d to %d bytes", self._path, current, new)

    def _reopen_after_panic(self, exc: BaseException) -> None:
        """The environment is poisoned (MDB_PANIC): close it and open it afresh.

        If reopening fails the store stays closed (later calls raise ServiceClosed).
        """
        log.error(
            "%s: LMDB reported a fatal error (%s); reopening the environment", self._path, exc
        )
        try:
            map_size = int(self._env.info()["map_size"])
        except lmdb.Error:
            map_size = DEFAULT_MAP_SIZE
        self._dbs = {}
        self._env.close()
        self._env = None
        env = open_env(self._path, map_size)
        self._env = env
        try:
            self._open_existing_tables()
        except BaseException:
            self._env = None
            env.close()
            raise

    # -- state ------------------------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _check_open(self) -> None:
        if self._closing or self._env is None:
            msg = f"the LMDB store at {self._path} is closed: open a new LmdbStore"
            raise ServiceClosed(msg)

    def statistics(self) -> StoreStatistics:
        """Commits (LMDB transactions), writes, commit calls and map growths since opening."""
        return StoreStatistics(
            commits=self._commits,
            writes=self._writes,
            commit_calls=self._commit_calls,
            map_growths=self._map_growths,
        )

    async def aclose(self) -> None:
        """Refuse new commits, let pending ones finish, then close the environment. Idempotent."""
        self._closing = True
        with trio.CancelScope(shield=True):
            while self._flushing:
                await self._changed.wait()
        if self._env is not None:
            self._env.close()
            self._env = None
            self._dbs = {}
            log.debug("closed LMDB store at %s", self._path)
        await trio.lowlevel.checkpoint()

