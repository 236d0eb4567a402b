"""Child process for tests/test_store_lmdb.py: writes to, grows or holds a reader on a store.

Usage (always run with the test's own interpreter, ``sys.executable``)::

    _lmdb_crash_writer.py write DIR FIRST_BATCH WRITERS   # commit batches until killed
    _lmdb_crash_writer.py grow DIR MAP_SIZE MIB           # write MIB MiB with a bigger map, exit
    _lmdb_crash_writer.py hold-reader DIR                 # open a read txn and sleep until killed
    _lmdb_crash_writer.py commit-each DIR COUNT           # COUNT commits, print OK/ERR for each

``write`` runs WRITERS concurrent tasks; each commits batches of :data:`BATCH_PUTS` puts to
table ``data`` (keys ``b{batch:08d}/{i:02d}``, each value ending in its CRC-32) plus one
marker in table ``marks``, and prints ``ACK <batch>`` (flushed) only after ``commit`` returned.
"""

from __future__ import annotations

import random
import struct
import sys
import time
import zlib
from pathlib import Path

import trio

from hero_logic.kernel import Put
from hero_logic.plugins.store import LmdbStore

BATCH_PUTS = 20


def batch_value(batch: int, index: int) -> bytes:
    """The value of put ``index`` of ``batch``: random bytes followed by their CRC-32."""
    rng = random.Random(batch * 100 + index)
    body = rng.randbytes(rng.randrange(20, 400))
    return body + struct.pack(">I", zlib.crc32(body))


def value_is_intact(value: bytes) -> bool:
    """True if ``value`` ends in the CRC-32 of the rest."""
    return len(value) >= 4 and struct.unpack(">I", value[-4:])[0] == zlib.crc32(value[:-4])


def batch_writes(batch: int) -> list[Put]:
    writes = [
        Put("data", f"b{batch:08d}/{i:02d}", batch_value(batch, i)) for i in range(BATCH_PUTS)
    ]
    writes.append(Put("marks", f"b{batch:08d}", str(BATCH_PUTS).encode()))
    return writes


async def write(path: Path, first: int, writers: int) -> None:
    store = LmdbStore(path, map_size=256 * 1024)
    counter = iter(range(first, first + 10_000_000))
    print("READY", flush=True)

    async def writer() -> None:
        while True:
            batch = next(counter)
            await store.commit(batch_writes(batch))
            sys.stdout.write(f"ACK {batch}\n")
            sys.stdout.flush()

    async with trio.open_nursery() as nursery:
        for _ in range(writers):
            nursery.start_soon(writer)


async def grow(path: Path, map_size: int, mib: int) -> None:
    store = LmdbStore(path, map_size=map_size)
    chunk = b"g" * (64 * 1024)
    for n in range(mib * 16):
        await store.commit([Put("grown", f"g{n:06d}", chunk)])
    await store.aclose()
    print("DONE", flush=True)


async def commit_each(path: Path, count: int) -> None:
    """Commit key ``k{n}`` ``count`` times in turn, printing ``OK n`` or ``ERR n <error>``."""
    store = LmdbStore(path)
    for n in range(count):
        try:
            await store.commit([Put("t", f"k{n}", b"v" * 100)])
        except Exception as exc:
            print(f"ERR {n} {type(exc).__name__}: {exc}", flush=True)
        else:
            print(f"OK {n}", flush=True)
    await store.aclose()


def hold_reader(path: Path) -> None:
    import lmdb

    env = lmdb.open(str(path), max_dbs=64)
    txn = env.begin()
    txn.get(b"anything")
    print("READY", flush=True)
    time.sleep(60)


def main(argv: list[str]) -> None:
    command, path = argv[0], Path(argv[1])
    if command == "write":
        trio.run(write, path, int(argv[2]), int(argv[3]))
    elif command == "grow":
        trio.run(grow, path, int(argv[2]), int(argv[3]))
    elif command == "commit-each":
        trio.run(commit_each, path, int(argv[2]))
    elif command == "hold-reader":
        hold_reader(path)
    else:
        raise SystemExit(
            f"unknown command {command!r}: use write, grow, commit-each or hold-reader"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
