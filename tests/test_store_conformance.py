"""Both built-in stores pass the store conformance kit, and the kit catches broken stores."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import trio

from hero_logic.kernel import Config, Put, Store, load_plugin
from hero_logic.plugins.store import LmdbStore, MemoryStore
from hero_logic.testing import check_store

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence
    from contextlib import AbstractAsyncContextManager

    from hero_logic.kernel import Write


@asynccontextmanager
async def _memory_store() -> AsyncIterator[Store]:
    store = MemoryStore()
    try:
        yield store
    finally:
        await store.aclose()


@asynccontextmanager
async def _lmdb_store() -> AsyncIterator[Store]:
    path = Path(tempfile.mkdtemp(prefix="hl-store-", dir="/tmp"))
    store = LmdbStore(path / "db", map_size=256 * 1024)
    try:
        yield store
    finally:
        await store.aclose()
        shutil.rmtree(path, ignore_errors=True)


FACTORIES: dict[str, Callable[[], AbstractAsyncContextManager[Store]]] = {
    "memory": _memory_store,
    "lmdb": _lmdb_store,
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
async def test_store_passes_the_conformance_kit(name: str) -> None:
    """Every built-in store keeps every guarantee of the store slot."""
    await check_store(FACTORIES[name])


@pytest.mark.parametrize("name", sorted(FACTORIES))
async def test_store_satisfies_the_store_protocol(name: str) -> None:
    """The plugins are Stores (runtime check of the Protocol's methods)."""
    async with FACTORIES[name]() as store:
        assert isinstance(store, Store)


@pytest.mark.parametrize("name", ["lmdb", "memory"])
async def test_store_plugin_opens_from_config_through_its_entry_point(name: str) -> None:
    """The kernel's way in: load_plugin("hero_logic.store", name).from_config(config)."""
    root = Path(tempfile.mkdtemp(prefix="hl-store-", dir="/tmp"))
    try:
        config = Config(root=root, socket_root=root / "sockets", store=name, lmdb_map_size=1 << 20)
        store = load_plugin("hero_logic.store", name, required_attrs=("from_config",)).from_config(
            config
        )
        assert isinstance(store, Store)
        await store.commit([Put("t", "k", b"v")])
        assert await store.get("t", "k") == b"v"
        await store.aclose()
        assert (config.db_dir / "data.mdb").exists() == (name == "lmdb")
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- the kit has teeth: each broken store below must fail it -----------------------------------


class _ScanInStrOrder(MemoryStore):
    """Orders scans by Python str comparison of a casefolded key instead of bytewise."""

    async def scan(self, table: str, prefix: str = "", **kwargs: Any) -> list[tuple[str, bytes]]:
        rows = await super().scan(table, prefix, **kwargs)
        return sorted(rows, key=lambda row: row[0].casefold(), reverse=kwargs.get("reverse", False))


class _NotAtomic(MemoryStore):
    """Applies the writes before a bad one, then raises."""

    async def commit(self, writes: Sequence[Write]) -> None:
        for write in writes:
            await super().commit([write])


class _EmptyIsMissing(MemoryStore):
    """Treats an empty value as a missing key."""

    async def get(self, table: str, key: str) -> bytes | None:
        return (await super().get(table, key)) or None


class _LeaksAfterClose(MemoryStore):
    """Accepts commits after aclose."""

    def _check_open(self) -> None:
        pass


class _LosesConcurrentWrites(MemoryStore):
    """Drops a commit when another commit is in flight."""

    busy = False

    async def commit(self, writes: Sequence[Write]) -> None:
        if self.busy:
            await trio.lowlevel.checkpoint()
            return
        self.busy = True
        try:
            await super().commit(writes)
            await trio.lowlevel.checkpoint()
        finally:
            self.busy = False


BROKEN: dict[type[MemoryStore], str] = {
    _ScanInStrOrder: "check_scan_order_is_bytewise",
    _NotAtomic: "check_commit_is_atomic",
    _EmptyIsMissing: "check_empty_values",
    _LeaksAfterClose: "check_aclose",
    _LosesConcurrentWrites: "check_concurrent_commits",
}


@pytest.mark.parametrize("broken", list(BROKEN), ids=lambda cls: cls.__name__)
async def test_kit_fails_a_broken_store(broken: type[MemoryStore]) -> None:
    """A store that breaks one guarantee fails check_store, naming the check it broke."""

    @asynccontextmanager
    async def make() -> AsyncIterator[Store]:
        store = broken()
        try:
            yield store
        finally:
            await store.aclose()

    with pytest.raises(AssertionError) as info:
        await check_store(make)
    assert info.value.__notes__[-1].startswith(f"store check {BROKEN[broken]} failed: ")


async def test_put_rejects_a_single_write_not_in_a_list() -> None:
    """commit(Put(...)) (forgetting the list) is a TypeError that says how to fix it."""
    async with _memory_store() as store:
        write: Any = Put("t", "k", b"v")
        with pytest.raises(TypeError, match="wrap it in a list"):
            await store.commit(write)
