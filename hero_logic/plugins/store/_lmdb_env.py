"""The LMDB environment's low-level pieces used by :class:`~._lmdb.LmdbStore`: opening it,
naming a full file system, one commit's batch, and a cursor walk for ``scan``."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

import attrs
import lmdb
import trio

from hero_logic.kernel import HeroLogicError, StorageFull

from ._memory import EncodedWrite, prefix_end

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["Batch", "is_enospc", "open_env", "scan_txn", "storage_full"]

_MAX_DBS = 64


@attrs.define(eq=False)
class Batch:
    """The writes of one ``commit`` call and how its caller is woken."""

    writes: list[EncodedWrite]
    wake: trio.Event = attrs.Factory(trio.Event)
    """Set once the batch is finished, or when its caller is promoted to lead the next flush."""
    promoted: bool = False
    finished: bool = False
    error: BaseException | None = None

    def finish(self, error: BaseException | None = None) -> None:
        self.error = error
        self.finished = True
        self.wake.set()


def is_enospc(exc: BaseException) -> bool:
    return isinstance(exc, lmdb.DiskError) or (
        isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
    )


def storage_full(path: Path, exc: BaseException) -> StorageFull:
    msg = (
        f"the LMDB store at {path} could not write: its file system is full (LMDB: {exc}); "
        "nothing of the failed commit was kept: free space there (e.g. delete old plays) and retry"
    )
    return StorageFull(msg, data={"path": str(path)})


def open_env(path: Path, map_size: int) -> Any:
    """Open (creating if needed) the environment directory ``path`` (mode 0700)."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return lmdb.open(
            str(path),
            map_size=map_size,
            max_dbs=_MAX_DBS,
            subdir=True,
            sync=True,
            metasync=True,
            mode=0o600,
        )
    except (lmdb.Error, OSError) as exc:
        if is_enospc(exc):
            raise storage_full(path, exc) from exc
        if not isinstance(exc, lmdb.Error):
            raise
        msg = (
            f"cannot open the LMDB store at {path}: {exc} (one process may open a store "
            "directory only once: close the other LmdbStore first)"
        )
        raise HeroLogicError(msg) from exc


def scan_txn(
    cursor: Any, prefix: bytes, start_after: bytes, reverse: bool, limit: int | None
) -> list[tuple[str, bytes]]:
    """Walk ``cursor`` over keys starting with ``prefix``, past ``start_after``, up to ``limit``."""
    out: list[tuple[str, bytes]] = []
    if not reverse:
        start = max(prefix, start_after)
        if not cursor.set_range(start):
            return out
        if start_after and cursor.key() == start_after and not cursor.next():
            return out
        items = cursor.iternext()
    else:
        bound = prefix_end(prefix)
        if start_after:
            bound = start_after if bound is None else min(bound, start_after)
        if bound is None or not cursor.set_range(bound):
            positioned = cursor.last()
        else:
            positioned = cursor.prev()
        if not positioned:
            return out
        items = cursor.iterprev()
    for key, value in items:
        if not key.startswith(prefix) or (limit is not None and len(out) >= limit):
            break
        out.append((key.decode("utf-8"), value))
    return out
