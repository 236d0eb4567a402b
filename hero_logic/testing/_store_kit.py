"""The store conformance kit: one battery of checks every store plugin must pass.

Run it from a test of your store::

    @asynccontextmanager
    async def make_store():
        store = MyStore(...)
        try:
            yield store
        finally:
            await store.aclose()

    async def test_my_store_conforms():
        await check_store(make_store)

``make_store`` must yield a fresh, empty store each time it is entered. Each check states one
guarantee of the slot (see :mod:`hero_logic.kernel._store_api`) in its docstring; a failure
raises AssertionError with a note naming the check.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import trio

from hero_logic.kernel import Delete, Put, ServiceClosed, StoreStatistics

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from contextlib import AbstractAsyncContextManager

    from hero_logic.kernel import Store

__all__ = ["STORE_CHECKS", "check_store"]

_T = "t"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 300 else f"{text[:300]}... ({len(text)} chars)"


def _expect_equal(actual: Any, expected: Any, what: str) -> None:
    if actual != expected:
        msg = f"{what}: expected {_short(expected)}, got {_short(actual)}"
        raise AssertionError(msg)


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


async def _expect_raises(
    kind: type[BaseException], call: Callable[[], Awaitable[object]], what: str
) -> None:
    try:
        await call()
    except kind:
        return
    msg = f"{what}: expected {kind.__name__}, nothing was raised"
    raise AssertionError(msg)


async def _keys(store: Store, table: str, prefix: str = "", **kwargs: Any) -> list[str]:
    return [key for key, _ in await store.scan(table, prefix, **kwargs)]


async def _put_all(store: Store, table: str, keys: Sequence[str]) -> None:
    await store.commit([Put(table, key, key.encode("utf-8")) for key in keys])


# -- the checks ---------------------------------------------------------------------------------


async def check_put_get_delete(store: Store) -> None:
    """A committed Put is readable with get; a committed Delete removes it."""
    await store.commit([Put(_T, "k", b"v")])
    _expect_equal(await store.get(_T, "k"), b"v", "get after Put")
    await store.commit([Delete(_T, "k")])
    _expect_equal(await store.get(_T, "k"), None, "get after Delete")
    _expect_equal(await store.scan(_T), [], "scan after Delete")


async def check_overwrite(store: Store) -> None:
    """A Put of an existing key replaces its value."""
    await store.commit([Put(_T, "k", b"old")])
    await store.commit([Put(_T, "k", b"new")])
    _expect_equal(await store.get(_T, "k"), b"new", "get after overwrite")
    _expect_equal(await store.scan(_T), [("k", b"new")], "scan after overwrite")


async def check_delete_missing(store: Store) -> None:
    """Deleting a missing key (in a known or an unknown table) is not an error."""
    await store.commit([Delete("never_written", "nothing")])
    await store.commit([Put(_T, "a", b"1")])
    await store.commit([Delete(_T, "b")])
    _expect_equal(await store.scan(_T), [("a", b"1")], "scan after deleting a missing key")


async def check_write_order_within_commit(store: Store) -> None:
    """Writes of one commit apply in order: the last Put wins, a Delete after a Put removes it."""
    await store.commit(
        [Put(_T, "x", b"1"), Put(_T, "x", b"2"), Put(_T, "y", b"1"), Delete(_T, "y")]
    )
    _expect_equal(await store.get(_T, "x"), b"2", "value after two Puts in one commit")
    _expect_equal(await store.get(_T, "y"), None, "value after Put then Delete in one commit")
    await store.commit([Delete(_T, "x"), Put(_T, "x", b"3")])
    _expect_equal(await store.get(_T, "x"), b"3", "value after Delete then Put in one commit")


async def check_tables_are_separate(store: Store) -> None:
    """The same key in two tables holds two values; deleting one leaves the other."""
    await store.commit([Put("one", "k", b"1"), Put("two", "k", b"2")])
    await store.commit([Delete("one", "k")])
    _expect_equal(await store.get("one", "k"), None, "deleted key in table 'one'")
    _expect_equal(await store.get("two", "k"), b"2", "same key in table 'two'")


_UNICODE_KEYS = [
    "a", "B", "Z", "a/", "a0", "a\x00b", "aa", "é", "ê", "z", "~", "\u00ff", "\u0100",
    "\u4e2d", "\uffef", "\U0001f600", "\U0001f600x", "0", "9", "_", "-",
]  # fmt: skip


async def check_scan_order_is_bytewise(store: Store) -> None:
    """scan orders keys by their UTF-8 bytes (uppercase before lowercase, emoji last), either way."""
    shuffled = list(_UNICODE_KEYS)
    random.Random(7).shuffle(shuffled)
    await _put_all(store, _T, shuffled)
    expected = sorted(_UNICODE_KEYS, key=lambda key: key.encode("utf-8"))
    _expect_equal(await _keys(store, _T), expected, "forward scan order")
    _expect_equal(await _keys(store, _T, reverse=True), expected[::-1], "reverse scan order")
    for key in _UNICODE_KEYS:
        _expect_equal(await store.get(_T, key), key.encode("utf-8"), f"get of unicode key {key!r}")


async def check_prefix_scan(store: Store) -> None:
    """scan with a prefix yields exactly the keys starting with it, in order, either way."""
    keys = ["o", "p", "p/", "p/a", "p/b", "p/b/c", "p0", "q", "é/1", "é/2", "éa"]
    await _put_all(store, _T, keys)
    _expect_equal(await _keys(store, _T, "p/"), ["p/", "p/a", "p/b", "p/b/c"], "prefix 'p/'")
    _expect_equal(
        await _keys(store, _T, "p/", reverse=True),
        ["p/b/c", "p/b", "p/a", "p/"],
        "prefix 'p/' reversed",
    )
    _expect_equal(
        await _keys(store, _T, "p"), ["p", "p/", "p/a", "p/b", "p/b/c", "p0"], "prefix 'p'"
    )
    _expect_equal(await _keys(store, _T, "é/"), ["é/1", "é/2"], "unicode prefix 'é/'")
    _expect_equal(
        await _keys(store, _T, "é/", reverse=True), ["é/2", "é/1"], "unicode prefix reversed"
    )
    _expect_equal(await _keys(store, _T, "zz"), [], "prefix past every key")
    _expect_equal(
        await _keys(store, _T, "a", reverse=True), [], "prefix before every key, reversed"
    )
    pairs = await store.scan(_T, "p/b")
    _expect_equal(pairs, [("p/b", b"p/b"), ("p/b/c", b"p/b/c")], "scan yields (key, value) pairs")


async def check_start_after_paging(store: Store) -> None:
    """start_after resumes a scan after a key (present or not), forward and reverse."""
    keys = [f"k{n:02d}" for n in range(23)]
    await _put_all(store, _T, [*keys, "j", "l"])
    for reverse in (False, True):
        seen: list[str] = []
        after = ""
        while True:
            page = await _keys(store, _T, "k", start_after=after, reverse=reverse, limit=5)
            if not page:
                break
            _expect(len(page) <= 5, f"page longer than limit 5: {page}")
            seen += page
            after = page[-1]
        expected = keys[::-1] if reverse else keys
        _expect_equal(seen, expected, f"pages of 5 (reverse={reverse}) joined")
    _expect_equal(
        await _keys(store, _T, "k", start_after="k05x", limit=2),
        ["k06", "k07"],
        "start_after a missing key",
    )
    _expect_equal(
        await _keys(store, _T, "k", start_after="k05x", reverse=True, limit=2),
        ["k05", "k04"],
        "start_after a missing key, reversed",
    )
    _expect_equal(
        await _keys(store, _T, "k", start_after="a"), keys, "start_after before the prefix"
    )
    _expect_equal(await _keys(store, _T, "k", start_after="z"), [], "start_after past the prefix")
    _expect_equal(
        await _keys(store, _T, "k", start_after="z", reverse=True),
        keys[::-1],
        "start_after past the prefix, reversed",
    )
    _expect_equal(
        await _keys(store, _T, "k", start_after="a", reverse=True),
        [],
        "start_after before the prefix, reversed",
    )
    _expect_equal(await _keys(store, _T, start_after="k22"), ["l"], "start_after without a prefix")


async def check_limit(store: Store) -> None:
    """limit caps the number of pairs from the start of the scan; 0 yields nothing."""
    await _put_all(store, _T, ["a", "b", "c", "d"])
    _expect_equal(await _keys(store, _T, limit=2), ["a", "b"], "limit 2")
    _expect_equal(await _keys(store, _T, limit=2, reverse=True), ["d", "c"], "limit 2 reversed")
    _expect_equal(await _keys(store, _T, limit=10), ["a", "b", "c", "d"], "limit above the count")
    _expect_equal(await _keys(store, _T, limit=0), [], "limit 0")
    _expect_equal(await _keys(store, _T, limit=None), ["a", "b", "c", "d"], "limit None")


async def check_unknown_table_is_empty(store: Store) -> None:
    """Reads of a table never written see it empty."""
    _expect_equal(await store.get("unknown", "k"), None, "get in an unknown table")
    _expect_equal(await store.scan("unknown"), [], "scan of an unknown table")
    _expect_equal(
        await store.scan("unknown", "p", reverse=True, limit=3),
        [],
        "reverse scan of an unknown table",
    )
    await store.commit([Put(_T, "k", b"v")])
    _expect_equal(await store.scan("unknown"), [], "scan of an unknown table beside a known one")


async def check_commit_is_atomic(store: Store) -> None:
    """A commit holding an invalid write raises TypeError and applies none of its writes."""
    await store.commit([Put(_T, "kept", b"before")])
    bad_value: Any = "not bytes"
    bad_commit: list[Any] = [
        Put(_T, "kept", b"after"),
        Put("other", "new", b"x"),
        Put(_T, "bad", bad_value),
    ]
    await _expect_raises(TypeError, lambda: store.commit(bad_commit), "a commit with a str value")
    not_a_write: list[Any] = [Put(_T, "new", b"x"), ("t", "k", b"v")]
    await _expect_raises(
        TypeError, lambda: store.commit(not_a_write), "a commit with a tuple as a write"
    )
    _expect_equal(await store.scan(_T), [("kept", b"before")], "table after the failed commits")
    _expect_equal(await store.scan("other"), [], "second table after the failed commit")
    await store.commit([Put(_T, "later", b"ok")])
    _expect_equal(await store.get(_T, "later"), b"ok", "a commit after a failed one")


async def check_concurrent_commits(store: Store) -> None:
    """200 concurrent commits all land; statistics count every call and at most one commit each."""
    before = store.statistics()

    async def writer(n: int) -> None:
        await store.commit([Put(_T, f"c{n:03d}", b"%d" % n), Put("pairs", f"c{n:03d}", b"%d" % n)])

    async with trio.open_nursery() as nursery:
        for n in range(200):
            nursery.start_soon(writer, n)
    rows = await store.scan(_T)
    _expect_equal(
        rows, [(f"c{n:03d}", b"%d" % n) for n in range(200)], "rows after 200 concurrent commits"
    )
    _expect_equal(len(await store.scan("pairs")), 200, "second table after 200 concurrent commits")
    after = store.statistics()
    _expect_equal(
        after.commit_calls - before.commit_calls, 200, "commit_calls added by 200 commits"
    )
    _expect_equal(after.writes - before.writes, 400, "writes added by 200 commits of 2")
    grouped = after.commits - before.commits
    _expect(1 <= grouped <= 200, f"commits added by 200 commit calls must be 1..200, got {grouped}")


async def check_cancelled_commits_leave_no_partial_batch(store: Store) -> None:
    """Cancelled commits land whole or not at all and raise Cancelled; the store keeps working."""

    async def writer(n: int, cancel_scope: trio.CancelScope) -> None:
        with cancel_scope:
            await store.commit([Put(_T, f"b{n:02d}/{i}", b"x") for i in range(10)])

    scopes = [trio.CancelScope() for _ in range(40)]
    async with trio.open_nursery() as nursery:
        for n, scope in enumerate(scopes):
            nursery.start_soon(writer, n, scope)
        await trio.lowlevel.checkpoint()
        for scope in scopes[1::2]:
            scope.cancel()
    for n in range(40):
        count = len(await store.scan(_T, f"b{n:02d}/"))
        _expect(count in (0, 10), f"batch {n} of 10 writes is partly visible ({count} keys)")
    for n in range(0, 40, 2):
        _expect_equal(len(await store.scan(_T, f"b{n:02d}/")), 10, f"uncancelled batch {n}")
    calls = 0
    with trio.CancelScope() as scope:
        scope.cancel()
        for _ in range(3):
            calls += 1
            await store.commit([Put(_T, "cancelled", b"x")])
    _expect(
        scope.cancelled_caught and calls == 1,
        f"commit in a cancelled scope must raise Cancelled; {calls} calls returned normally",
    )
    _expect(await store.get(_T, "cancelled") in (None, b"x"), "a commit cancelled up front")
    await store.commit([Put(_T, "after", b"ok")])
    _expect_equal(await store.get(_T, "after"), b"ok", "a commit after cancelled ones")


async def check_large_values(store: Store) -> None:
    """Values of 1 MiB (several in one commit) round-trip unchanged."""
    big = [bytes(random.Random(n).randbytes(1024 * 1024)) for n in range(3)]
    await store.commit([Put(_T, f"big{n}", value) for n, value in enumerate(big)])
    for n, value in enumerate(big):
        _expect(await store.get(_T, f"big{n}") == value, f"1 MiB value big{n} changed on the way")
    _expect_equal(
        [key for key, _ in await store.scan(_T)],
        ["big0", "big1", "big2"],
        "keys of the large values",
    )


async def check_empty_values(store: Store) -> None:
    """An empty value is stored and read back as b'', distinct from a missing key."""
    await store.commit([Put(_T, "empty", b"")])
    _expect_equal(await store.get(_T, "empty"), b"", "get of an empty value")
    _expect_equal(await store.scan(_T), [("empty", b"")], "scan of an empty value")


async def check_long_keys(store: Store) -> None:
    """Keys of up to 511 UTF-8 bytes (LMDB's limit, which every store accepts) work."""
    ascii_key = "k" * 511
    wide_key = "é" * 255  # 510 bytes
    await store.commit([Put(_T, ascii_key, b"a"), Put(_T, wide_key, b"w")])
    _expect_equal(await store.get(_T, ascii_key), b"a", "get of a 511-byte key")
    _expect_equal(await store.get(_T, wide_key), b"w", "get of a 510-byte unicode key")
    _expect_equal(await _keys(store, _T), [ascii_key, wide_key], "scan of long keys")


async def check_empty_commit(store: Store) -> None:
    """commit([]) succeeds and changes nothing."""
    await store.commit([Put(_T, "k", b"v")])
    await store.commit([])
    _expect_equal(await store.scan(_T), [("k", b"v")], "table after an empty commit")


async def check_statistics(store: Store) -> None:
    """statistics() is a StoreStatistics; each sequential commit adds one commit and its writes."""
    before = store.statistics()
    _expect(isinstance(before, StoreStatistics), f"statistics() returned {before!r}")
    await store.commit([Put(_T, "a", b"1"), Put(_T, "b", b"2")])
    await store.commit([Delete(_T, "a")])
    after = store.statistics()
    _expect_equal(after.commit_calls - before.commit_calls, 2, "commit_calls added by 2 commits")
    _expect_equal(after.commits - before.commits, 2, "commits added by 2 sequential commits")
    _expect_equal(after.writes - before.writes, 3, "writes added by 2 commits of 2 and 1")
    _expect(after.map_growths >= before.map_growths, "map_growths went down")


async def check_aclose(store: Store) -> None:
    """aclose is idempotent; a commit after it raises ServiceClosed."""
    await store.commit([Put(_T, "k", b"v")])
    await store.aclose()
    await store.aclose()
    await _expect_raises(
        ServiceClosed, lambda: store.commit([Put(_T, "k", b"w")]), "commit after aclose"
    )


STORE_CHECKS: tuple[Callable[[Store], Awaitable[None]], ...] = (
    check_put_get_delete,
    check_overwrite,
    check_delete_missing,
    check_write_order_within_commit,
    check_tables_are_separate,
    check_scan_order_is_bytewise,
    check_prefix_scan,
    check_start_after_paging,
    check_limit,
    check_unknown_table_is_empty,
    check_commit_is_atomic,
    check_concurrent_commits,
    check_cancelled_commits_leave_no_partial_batch,
    check_large_values,
    check_empty_values,
    check_long_keys,
    check_empty_commit,
    check_statistics,
    check_aclose,
)
"""Every check :func:`check_store` runs, in order; each takes a fresh, empty store."""


async def check_store(make_store: Callable[[], AbstractAsyncContextManager[Store]]) -> None:
    """Run every check of :data:`STORE_CHECKS`, each against a fresh store from ``make_store``.

    Raises AssertionError (with a note naming the check and its guarantee) at the first
    failure.
    """
    for check in STORE_CHECKS:
        try:
            async with make_store() as store:
                await check(store)
        except AssertionError as exc:
            guarantee = (check.__doc__ or "").strip().splitlines()[0]
            exc.add_note(f"store check {check.__name__} failed: {guarantee}")
            raise
