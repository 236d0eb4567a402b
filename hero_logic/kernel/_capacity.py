"""Run slots shared fairly between play trees.

At most ``total`` plays run at once. When a slot frees, it goes to the waiting play whose tree
(a root play and every child below it) holds the fewest slots, first come first served among
equals; and no tree may hold every slot while other trees wait. So a flow that spawns hundreds of
children cannot keep another user's play waiting behind all of them: that play gets the next
slot that frees.

A play blocked on a child play gives its slot back while it waits (:meth:`FairCapacity.lend`),
so parents never starve the children they wait for, at any depth.
"""

from __future__ import annotations

import itertools
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import attrs
import trio

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["FairCapacity", "Seat"]


@attrs.define(eq=False)
class Seat:
    """One play's claim on a run slot."""

    tree: str
    holding: bool = False
    lent: int = 0
    """How many waits on child plays currently borrow this seat's slot back."""
    _granted: trio.Event | None = None
    _order: int = 0


@attrs.define(eq=False)
class FairCapacity:
    """``total`` run slots, granted fairly between trees."""

    total: int
    _held: dict[str, int] = attrs.Factory(dict)
    _waiting: list[Seat] = attrs.Factory(list)
    _counter: itertools.count[int] = attrs.Factory(itertools.count)
    _in_use: int = 0

    @property
    def in_use(self) -> int:
        """Slots held right now."""
        return self._in_use

    @property
    def waiting(self) -> int:
        """Seats waiting for a slot."""
        return len(self._waiting)

    def _tree_cap(self) -> int:
        return max(1, self.total - 1) if len(self._held) + len({s.tree for s in self._waiting}) > 1 else self.total

    async def acquire(self, seat: Seat) -> None:
        """Wait for a slot for ``seat`` (cancellable; a cancelled wait holds nothing)."""
        assert not seat.holding
        if not self._waiting and self._may_take(seat.tree):
            self._take(seat)
            await trio.lowlevel.checkpoint()
            return
        seat._granted = trio.Event()
        seat._order = next(self._counter)
        self._waiting.append(seat)
        try:
            await seat._granted.wait()
        except BaseException:
            if seat in self._waiting:
                self._waiting.remove(seat)
            elif seat.holding:  # granted as we were cancelled: hand it on
                self.release(seat)
            raise

    def release(self, seat: Seat) -> None:
        """Give ``seat``'s slot back (no-op if it holds none)."""
        if not seat.holding:
            return
        seat.holding = False
        self._in_use -= 1
        self._held[seat.tree] -= 1
        if not self._held[seat.tree]:
            del self._held[seat.tree]
        self._grant()

    @asynccontextmanager
    async def lend(self, seat: Seat) -> AsyncIterator[None]:
        """Give the slot back for the block (a wait on a child play), and take one again
        after it. Nested and concurrent lends of one seat share one release."""
        seat.lent += 1
        if seat.lent == 1:
            self.release(seat)
        try:
            yield
        finally:
            seat.lent -= 1
            if seat.lent == 0 and not seat.holding:
                await self.acquire(seat)  # cancelled meanwhile: the seat holds nothing

    def _may_take(self, tree: str) -> bool:
        return self.in_use < self.total and self._held.get(tree, 0) < self._tree_cap()

    def _take(self, seat: Seat) -> None:
        seat.holding = True
        self._in_use += 1
        self._held[seat.tree] = self._held.get(seat.tree, 0) + 1

    def _grant(self) -> None:
        while self._waiting and self.in_use < self.total:
            cap = self._tree_cap()  # once per grant: the waiters are many, the trees few
            best: Seat | None = None
            best_held = 0
            for seat in self._waiting:  # in arrival order: the first of the least served tree
                held = self._held.get(seat.tree, 0)
                if held < cap and (best is None or held < best_held):
                    best, best_held = seat, held
                    if held == 0:
                        break
            if best is None:
                return
            self._waiting.remove(best)
            self._take(best)
            assert best._granted is not None
            best._granted.set()

