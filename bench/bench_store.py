"""Micro-benchmark of LmdbStore commits: sequential fsync-per-put vs. group commit.

Run: ``.venv/bin/python bench/bench_store.py [PUTS] [DIR]``. Each put is its own ``commit`` of
one 200-byte value. (a) commits them one after another, so every put pays its own fsync;
(b) runs 8 concurrent committers, whose commits group into shared transactions. Prints puts/s
of both, side by side, with the ratio and the grouping factor of (b).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import trio

from hero_logic.kernel import Put, StoreStatistics
from hero_logic.plugins.store import LmdbStore

VALUE = b"v" * 200


async def sequential(store: LmdbStore, puts: int) -> None:
    for n in range(puts):
        await store.commit([Put("bench", f"s{n:08d}", VALUE)])


async def concurrent(store: LmdbStore, puts: int, committers: int = 8) -> None:
    async def committer(c: int) -> None:
        for n in range(puts // committers):
            await store.commit([Put("bench", f"c{c}/{n:08d}", VALUE)])

    async with trio.open_nursery() as nursery:
        for c in range(committers):
            nursery.start_soon(committer, c)


async def measure(label: str, body: str, puts: int, parent: Path) -> tuple[float, StoreStatistics]:
    path = Path(tempfile.mkdtemp(prefix="hl-bench-", dir=parent))
    store = LmdbStore(path / "db")
    try:
        await store.commit([Put("bench", "warmup", VALUE)])
        start = time.perf_counter()
        if body == "sequential":
            await sequential(store, puts)
        else:
            await concurrent(store, puts)
        elapsed = time.perf_counter() - start
        stats = store.statistics()
    finally:
        await store.aclose()
        shutil.rmtree(path, ignore_errors=True)
    rate = puts / elapsed
    print(f"  {label:<44} {rate:>9,.0f} puts/s  ({elapsed:.2f} s)", flush=True)
    return rate, stats


async def main(puts: int, parent: Path) -> None:
    print(f"LmdbStore, {puts} puts of 200 B, one put per commit, sync=True, dir {parent}")
    seq_rate, _ = await measure("(a) sequential, one fsync per put", "sequential", puts, parent)
    grp_rate, stats = await measure(
        "(b) 8 concurrent committers, group commit", "concurrent", puts, parent
    )
    calls, commits = stats.commit_calls - 1, stats.commits - 1
    print(
        f"  ratio (b)/(a): {grp_rate / seq_rate:.1f}x; grouping factor of (b): "
        f"{calls} commit calls in {commits} transactions ({calls / max(commits, 1):.1f} per fsync)"
    )


if __name__ == "__main__":
    trio.run(
        main,
        int(sys.argv[1]) if len(sys.argv) > 1 else 2000,
        Path(sys.argv[2] if len(sys.argv) > 2 else "/tmp"),
    )
