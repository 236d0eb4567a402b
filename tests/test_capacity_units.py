"""Run slots shared fairly between play trees (kernel/_capacity), on trio's mock clock."""

from __future__ import annotations

import time

import trio

from hero_logic.kernel._capacity import FairCapacity, Seat


async def test_a_freed_slot_goes_to_the_tree_holding_fewest_and_no_tree_takes_the_last_slot() -> None:
    capacity = FairCapacity(total=3)
    bomb = [Seat(tree="bomb") for _ in range(10)]
    for seat in bomb[:3]:
        await capacity.acquire(seat)  # alone, one tree may fill every slot
    granted: list[str] = []

    async def wait(seat: Seat) -> None:
        await capacity.acquire(seat)
        granted.append(seat.tree)

    async with trio.open_nursery() as nursery:
        for seat in bomb[3:]:
            nursery.start_soon(wait, seat)
        await trio.testing.wait_all_tasks_blocked()
        other = Seat(tree="other")
        nursery.start_soon(wait, other)
        await trio.testing.wait_all_tasks_blocked()
        capacity.release(bomb[0])  # the newcomer's tree holds none: it goes first
        await trio.testing.wait_all_tasks_blocked()
        assert granted == ["other"]
        capacity.release(bomb[1])  # two trees now: the bomb may hold at most total - 1
        await trio.testing.wait_all_tasks_blocked()
        assert granted == ["other", "bomb"]
        assert capacity.in_use == 3
        nursery.cancel_scope.cancel()


async def test_lending_a_slot_lets_a_child_of_the_same_tree_run() -> None:
    capacity = FairCapacity(total=1)
    parent, child = Seat(tree="t"), Seat(tree="t")
    await capacity.acquire(parent)
    async with capacity.lend(parent):
        with trio.fail_after(1):
            await capacity.acquire(child)
        capacity.release(child)
    assert parent.holding


async def test_granting_stays_cheap_with_a_thousand_waiters() -> None:
    capacity = FairCapacity(total=8)
    seats = [Seat(tree=f"t{i % 50}") for i in range(1008)]
    async with trio.open_nursery() as nursery:
        for seat in seats:
            nursery.start_soon(capacity.acquire, seat)
        await trio.testing.wait_all_tasks_blocked()
        started = time.perf_counter()
        for _ in range(1000):
            holder = next(s for s in seats if s.holding)
            capacity.release(holder)
            await trio.testing.wait_all_tasks_blocked()
        assert time.perf_counter() - started < 5.0
        assert capacity.waiting == 0
