"""LmdbStore on a real LMDB and real processes: crash safety, map growth, readers, full disks."""

from __future__ import annotations

import logging
import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lmdb
import pytest
import trio
import trio.testing

from hero_logic.kernel import Config, HeroLogicError, Put, StorageFull
from hero_logic.plugins.store import LmdbStore

if TYPE_CHECKING:
    from collections.abc import Iterator

HELPER = Path(__file__).with_name("_lmdb_crash_writer.py")
sys.path.insert(0, str(HELPER.parent))
from _lmdb_crash_writer import BATCH_PUTS, batch_value, value_is_intact  # noqa: E402

KiB = 1024
MiB = 1024 * KiB


@pytest.fixture
def tmp_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="hl-lmdb-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def _read_line(stream: trio.abc.ReceiveStream, buffer: bytearray) -> bytes:
    """One line from ``stream`` (``buffer`` keeps what was read past it)."""
    while b"\n" not in buffer:
        chunk = await stream.receive_some()
        if not chunk:
            raise EOFError(f"child closed stdout; partial output {bytes(buffer)!r}")
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line


async def _spawn(*args: str) -> tuple[trio.Process, bytearray]:
    """Start the helper with ``args`` and wait for its first line (READY/DONE)."""
    proc = await trio.lowlevel.open_process(
        [sys.executable, str(HELPER), *args], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    buffer = bytearray()
    with trio.fail_after(20):
        first = await _read_line(proc.stdout, buffer)
    assert first in (b"READY", b"DONE"), first
    return proc, buffer


def _check_batches(path: Path) -> set[int]:
    """Every batch in the store is whole and intact; return the batch numbers present."""
    env = lmdb.open(str(path), max_dbs=64, readonly=True, lock=True)
    try:
        with env.begin() as txn:
            data_db = env.open_db(b"data", txn=txn, create=False)
            marks_db = env.open_db(b"marks", txn=txn, create=False)
            per_batch: dict[int, list[tuple[int, bytes]]] = {}
            for key, value in txn.cursor(db=data_db):
                batch_text, index_text = key.decode().removeprefix("b").split("/")
                per_batch.setdefault(int(batch_text), []).append((int(index_text), value))
            marks = {int(key.decode()[1:]) for key, _ in txn.cursor(db=marks_db)}
    finally:
        env.close()
    assert marks == set(per_batch), (
        f"markers without data or data without markers: {marks ^ set(per_batch)}"
    )
    for batch, items in per_batch.items():
        assert [index for index, _ in items] == list(range(BATCH_PUTS)), f"batch {batch} is partial"
        for index, value in items:
            assert value_is_intact(value), f"batch {batch} put {index} fails its CRC"
            assert value == batch_value(batch, index), f"batch {batch} put {index} changed"
    return set(per_batch)


def _readers(path: Path) -> str:
    """LMDB's reader table of ``path`` ("pid thread txnid" lines), as seen by a fresh handle."""
    env = lmdb.open(str(path), max_dbs=64)
    try:
        return " " + " ".join(env.readers().split()) + " "
    finally:
        env.close()


# -- crash safety ------------------------------------------------------------------------------


@pytest.mark.slow
async def test_kill_9_never_loses_an_acknowledged_commit(tmp_dir: Path) -> None:
    """SIGKILL of a writer at random instants: every ACKed batch is whole, no batch is partial."""
    db = tmp_dir / "db"
    rng = random.Random(20261122)
    acked: set[int] = set()
    for round_no in range(10):
        proc, buffer = await _spawn("write", str(db), str(round_no * 1_000_000), "4")
        assert proc.stdout is not None
        with trio.move_on_after(rng.uniform(0.0, 0.3)):
            while True:
                chunk = await proc.stdout.receive_some()
                if not chunk:
                    break
                buffer += chunk
        proc.kill()
        while chunk := await proc.stdout.receive_some():
            buffer += chunk
        assert await proc.wait() == -9
        lines = bytes(buffer).split(b"\n")[:-1]  # the last piece may be a torn line
        acked |= {int(line.split()[1]) for line in lines if line.startswith(b"ACK ")}
        present = _check_batches(db)
        missing = acked - present
        assert not missing, f"round {round_no}: acknowledged batches lost: {sorted(missing)[:10]}"
    assert len(acked) > 50, f"too few acknowledged batches ({len(acked)}) for the test to mean much"
    store = LmdbStore(db)
    await store.commit([Put("data", "after/00", b"ok")])
    assert await store.get("data", "after/00") == b"ok"
    await store.aclose()


async def test_commit_survives_reopen(tmp_dir: Path) -> None:
    """What a returned commit wrote is there after closing and reopening the store."""
    store = LmdbStore(tmp_dir / "db")
    await store.commit([Put("t", "k", b"v"), Put("u", "é", b"w")])
    await store.aclose()
    store = LmdbStore(tmp_dir / "db")
    assert await store.get("t", "k") == b"v"
    assert await store.scan("u") == [("é", b"w")]
    await store.aclose()


# -- group commit ------------------------------------------------------------------------------


async def test_concurrent_commits_are_grouped(tmp_dir: Path) -> None:
    """200 concurrent commits take far fewer than 200 LMDB transactions (fsyncs)."""
    store = LmdbStore(tmp_dir / "db")
    async with trio.open_nursery() as nursery:
        for n in range(200):
            nursery.start_soon(store.commit, [Put("t", f"{n:03d}", b"x")])
    stats = store.statistics()
    assert stats.commit_calls == 200
    assert stats.commits <= 20, stats
    assert len(await store.scan("t")) == 200
    await store.aclose()


async def test_random_cancellation_never_wedges_or_splits_a_commit(tmp_dir: Path) -> None:
    """Callers cancelled at random moments (queued, leading, promoted) never leave a partial
    batch or a store that stops committing; every commit that returned is there."""
    store = LmdbStore(tmp_dir / "db")
    rng = random.Random(5)
    returned: set[int] = set()

    async def writer(n: int, delay: float) -> None:
        with trio.move_on_after(delay):
            await store.commit([Put("t", f"{n:03d}/{i}", b"x") for i in range(5)])
            returned.add(n)

    for _ in range(3):
        async with trio.open_nursery() as nursery:
            for n in range(300):
                nursery.start_soon(writer, n, rng.choice([0, 0.0005, 0.002, 0.01, 1]))
        for n in range(300):
            count = len(await store.scan("t", f"{n:03d}/"))
            assert count in (0, 5), f"commit {n} is partial: {count} of 5 keys"
            assert n not in returned or count == 5, f"commit {n} returned but is missing"
    with trio.fail_after(5):
        await store.commit([Put("t", "final", b"ok")])
    await store.aclose()


async def test_caller_cancelled_as_it_is_promoted_passes_the_lead_on(tmp_dir: Path) -> None:
    """A queued caller cancelled in the instant it is made the next leader hands the lead to
    the caller behind it, so queued commits never wait forever."""
    store = LmdbStore(tmp_dir / "db")
    gate = trio.Event()
    victim_scope = trio.CancelScope()
    run_txn, hand_off = store._run_txn, store._hand_off

    async def gated_run_txn(*args: Any) -> dict[str, Any]:
        await gate.wait()
        return await run_txn(*args)

    def cancel_then_hand_off() -> None:
        victim_scope.cancel()  # the victim is now cancelled but has not run yet...
        hand_off()  # ...and is promoted to lead the next flush

    store._run_txn = gated_run_txn  # type: ignore[method-assign, assignment]
    store._hand_off = cancel_then_hand_off  # type: ignore[method-assign]

    async def victim() -> None:
        with victim_scope:
            await store.commit([Put("t", "victim", b"x")])

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.commit, [Put("t", "leader", b"x")])
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(victim)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(store.commit, [Put("t", "behind", b"x")])
            await trio.testing.wait_all_tasks_blocked()
            gate.set()
    assert victim_scope.cancelled_caught
    assert [key for key, _ in await store.scan("t")] == ["behind", "leader"]
    await store.aclose()


async def test_group_failure_fails_only_the_bad_batch(tmp_dir: Path) -> None:
    """A batch that cannot fit fails alone with StorageFull; batches grouped with it land."""
    store = LmdbStore(tmp_dir / "db", map_size=64 * KiB, max_map_size=512 * KiB)
    outcomes: dict[str, str] = {}

    async def commit(name: str, size: int) -> None:
        try:
            await store.commit([Put("t", name, b"x" * size)])
        except StorageFull:
            outcomes[name] = "full"
        else:
            outcomes[name] = "ok"

    async with trio.open_nursery() as nursery:
        nursery.start_soon(commit, "first", 10)  # leads alone; the rest queue behind it
        await trio.lowlevel.checkpoint()
        for n in range(5):
            nursery.start_soon(commit, f"small{n}", 100)
        nursery.start_soon(commit, "huge", 2 * MiB)
    assert outcomes == {"first": "ok", "huge": "full", **{f"small{n}": "ok" for n in range(5)}}
    assert await store.get("t", "huge") is None
    assert [key for key, _ in await store.scan("t")] == ["first", *[f"small{n}" for n in range(5)]]
    await store.aclose()


# -- map growth --------------------------------------------------------------------------------


async def test_map_grows_from_64_kib_to_fit_megabytes(tmp_dir: Path) -> None:
    """From a 64 KiB map, several MiB of concurrent commits and a 1 MiB value all succeed."""
    store = LmdbStore(tmp_dir / "db", map_size=64 * KiB)

    async def writer(w: int) -> None:
        for n in range(16):
            await store.commit([Put("t", f"{w}/{n:02d}", bytes([w]) * 32 * KiB)])

    async with trio.open_nursery() as nursery:
        for w in range(8):
            nursery.start_soon(writer, w)
    await store.commit([Put("big", "one", b"b" * MiB)])
    assert store.statistics().map_growths > 0
    assert len(await store.scan("t")) == 8 * 16
    await store.aclose()
    reopened = LmdbStore(tmp_dir / "db", map_size=64 * KiB)
    assert await reopened.get("big", "one") == b"b" * MiB
    assert await reopened.get("t", "7/15") == bytes([7]) * 32 * KiB
    await reopened.aclose()


async def test_map_growth_cap_gives_storage_full_and_reads_still_work(tmp_dir: Path) -> None:
    """A commit that cannot fit under max_map_size raises StorageFull naming the store."""
    store = LmdbStore(tmp_dir / "db", map_size=64 * KiB, max_map_size=256 * KiB)
    await store.commit([Put("t", "small", b"s")])
    with pytest.raises(StorageFull, match=str(tmp_dir / "db")):
        await store.commit([Put("t", "big", b"b" * MiB)])
    assert await store.get("t", "small") == b"s"
    assert await store.get("t", "big") is None
    await store.commit([Put("t", "small2", b"s")])
    await store.aclose()


async def test_map_grown_by_another_process_is_adopted(
    tmp_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """When another process grows the map past ours, reads and commits adopt its size."""
    caplog.set_level(logging.INFO, logger="hero_logic.plugins.store")
    db = tmp_dir / "db"
    store = LmdbStore(db, map_size=MiB)
    await store.commit([Put("t", "mine", b"1")])
    # The child writes 4 MiB with a 16 MiB map: our next read transaction hits MDB_MAP_RESIZED.
    await trio.run_process(
        [sys.executable, str(HELPER), "grow", str(db), str(16 * MiB), "4"],
        stdout=subprocess.DEVNULL,
    )
    assert len(await store.scan("grown")) == 4 * 16
    assert await store.get("t", "mine") == b"1"
    # Again, larger; this time a commit is the first to notice.
    await trio.run_process(
        [sys.executable, str(HELPER), "grow", str(db), str(64 * MiB), "24"],
        stdout=subprocess.DEVNULL,
    )
    await store.commit([Put("t", "after", b"2")])
    assert await store.get("t", "after") == b"2"
    assert len(await store.scan("grown")) == 24 * 16
    assert store.statistics().map_growths == 0
    adopted = [r for r in caplog.records if "adopted LMDB map size" in r.getMessage()]
    assert len(adopted) == 2, [r.getMessage() for r in caplog.records]
    await store.aclose()


# -- readers -----------------------------------------------------------------------------------


async def test_stale_reader_of_a_killed_process_is_cleared_at_open(
    tmp_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A reader slot left by a SIGKILLed process is cleared (and logged) when the store opens.

    LMDB resets the reader table when the first process opens an environment, so a slot can
    only go stale while another process keeps the environment open: a second child does.
    """
    db = tmp_dir / "db"
    store = LmdbStore(db)
    await store.commit([Put("t", "k", b"v")])
    await store.aclose()
    survivor, _ = await _spawn("hold-reader", str(db))
    try:
        victim, _ = await _spawn("hold-reader", str(db))
        victim.kill()
        await victim.wait()
        assert f" {victim.pid} " in _readers(db), "the killed child's slot should be stale now"
        caplog.set_level(logging.WARNING, logger="hero_logic.plugins.store")
        store = LmdbStore(db)
        assert "cleared 1 stale LMDB reader slot(s)" in caplog.text
        assert await store.get("t", "k") == b"v"
        await store.commit([Put("t", "k2", b"v")])
        await store.aclose()
        assert f" {victim.pid} " not in _readers(db)
        assert f" {survivor.pid} " in _readers(db)
    finally:
        survivor.kill()
        await survivor.wait()


# -- opening -----------------------------------------------------------------------------------


async def test_from_config_opens_a_private_store_in_db_dir(tmp_dir: Path) -> None:
    """from_config creates config.db_dir with mode 0700 and files with mode 0600."""
    config = Config(root=tmp_dir, socket_root=tmp_dir / "sockets", lmdb_map_size=MiB)
    store = LmdbStore.from_config(config)
    await store.commit([Put("t", "k", b"v")])
    assert stat.S_IMODE(config.db_dir.stat().st_mode) == 0o700
    for name in ("data.mdb", "lock.mdb"):
        assert stat.S_IMODE((config.db_dir / name).stat().st_mode) == 0o600
    await store.aclose()


async def test_opening_a_store_twice_in_one_process_names_the_path(tmp_dir: Path) -> None:
    """A second LmdbStore on an open directory is refused with an error naming it."""
    store = LmdbStore(tmp_dir / "db")
    with pytest.raises(HeroLogicError, match=r"already open.*close the other LmdbStore"):
        LmdbStore(tmp_dir / "db")
    await store.aclose()


async def test_reading_an_unknown_table_does_not_create_it(tmp_dir: Path) -> None:
    """get/scan of a table never written leave no sub-database behind."""
    store = LmdbStore(tmp_dir / "db")
    await store.commit([Put("known", "k", b"v")])
    assert await store.get("ghost", "k") is None
    assert await store.scan("ghost", reverse=True) == []
    await store.aclose()
    env = lmdb.open(str(tmp_dir / "db"), max_dbs=64)
    try:
        with env.begin() as txn:
            assert [key for key, _ in txn.cursor()] == [b"known"]
    finally:
        env.close()


async def test_table_created_by_another_process_is_readable(tmp_dir: Path) -> None:
    """A table another process created after this store opened is found by reads."""
    db = tmp_dir / "db"
    store = LmdbStore(db, map_size=32 * MiB)
    await store.commit([Put("t", "k", b"v")])
    await trio.run_process(
        [sys.executable, str(HELPER), "grow", str(db), str(32 * MiB), "1"],
        stdout=subprocess.DEVNULL,
    )
    assert len(await store.scan("grown")) == 16
    await store.aclose()


# -- full disk ---------------------------------------------------------------------------------


@pytest.fixture
def tiny_tmpfs(tmp_dir: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (needs root to mount); skipped with the reason when it cannot be had."""
    if os.geteuid() != 0:
        pytest.skip("mounting a 2 MiB tmpfs for the full-disk test needs root")
    mount_point = tmp_dir / "tiny"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


async def test_full_disk_raises_storage_full_and_keeps_what_was_acknowledged(
    tiny_tmpfs: Path,
) -> None:
    """On a full disk a commit raises StorageFull naming the path; earlier commits stay intact
    and the store keeps working once space is freed."""
    db = tiny_tmpfs / "db"
    store = LmdbStore(db, map_size=64 * MiB)
    acked: list[str] = []
    full: StorageFull | None = None
    for n in range(100):
        try:
            await store.commit([Put("t", f"{n:03d}", bytes([n]) * 64 * KiB)])
        except StorageFull as exc:
            full = exc
            break
        acked.append(f"{n:03d}")
    assert full is not None, "2 MiB of tmpfs took 6.4 MiB of commits"
    assert str(db) in full.message
    assert "free space" in full.message
    assert full.code == -32005
    assert 10 < len(acked) < 40
    for key in acked:
        assert await store.get("t", key) == bytes([int(key)]) * 64 * KiB
    await store.commit([Put("t", key, b"") for key in acked[: len(acked) // 2]])
    await store.commit([Put("t", "after", b"small")])
    await store.aclose()
    reopened = LmdbStore(db)
    assert await reopened.get("t", "after") == b"small"
    assert await reopened.get("t", acked[-1]) == bytes([int(acked[-1])]) * 64 * KiB
    await reopened.aclose()


@pytest.mark.parametrize(("failing_pwrite", "panics"), [(3, True), (4, False)])
async def test_failed_page_write_is_reported_and_the_store_recovers(
    tmp_dir: Path, failing_pwrite: int, panics: bool
) -> None:
    """ENOSPC injected into one pwrite (a data or meta page; the latter poisons the env with
    MDB_PANIC): that commit raises StorageFull and is absent; the store reopens and later
    commits land."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed; it injects the write error")
    db = tmp_dir / "db"
    done = await trio.run_process(
        [
            strace, "-f", "-qq", "-o", "/dev/null", "-e", "trace=pwrite64",
            "-e", f"inject=pwrite64:error=ENOSPC:when={failing_pwrite}",
            sys.executable, str(HELPER), "commit-each", str(db), "8",
        ],
        capture_stdout=True,
        capture_stderr=True,
    )  # fmt: skip
    lines = done.stdout.decode().splitlines()
    failed = [line for line in lines if line.startswith("ERR ")]
    assert len(failed) == 1, (lines, done.stderr.decode()[-2000:])
    assert "StorageFull" in failed[0]
    assert str(db) in failed[0]
    landed = {f"k{line.split()[1]}" for line in lines if line.startswith("OK ")}
    assert len(landed) == 7
    assert ("reopening the environment" in done.stderr.decode()) == panics
    store = LmdbStore(db)
    assert {key for key, _ in await store.scan("t")} == landed
    await store.aclose()
