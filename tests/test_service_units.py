"""The service's rules, with no process, sandbox or socket: a real kernel on the memory store
whose plays are run by a script (:func:`hero_logic.testing.open_fake_kernel`)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import trio

from hero_logic.kernel import Conflict, NotFound, WrongState
from hero_logic.service import Service, open_service
from hero_logic.testing import FakeRun, open_fake_kernel
from hero_logic.testing._fake_flows import FakeRequestError

from .conftest import make_config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

SOURCE = """
from hero_tracing import flow

@flow
def main(n: int = 0):
    return n
"""


@asynccontextmanager
async def running(
    root: Path, script: Callable[[FakeRun], Awaitable[int]], **config: Any
) -> AsyncIterator[Service]:
    cfg = attrs.evolve(make_config(root), store="memory", **config)
    async with open_fake_kernel(cfg, script) as kernel, open_service(kernel, seed=False) as service:
        yield service


async def echo(run: FakeRun) -> int:
    return await run.finish(run.inputs.get("n"))


async def asks_once(run: FakeRun) -> int:
    if "q" not in run.answers:
        await run.pause("q")
        return 75
    return await run.finish(run.answers["q"])


async def test_a_play_runs_through_the_kernel_and_ends_with_its_output(root: Path) -> None:
    async with running(root, echo) as service:
        wf = await service.workflows.workflow_create("echo", python_source=SOURCE)
        sid = await service.plays.play_start(wf.sid, {"n": 7})
        play = await service.plays.play_wait(sid)
        assert play.status.value == "success"
        assert play.output_data == 7


async def test_an_answer_is_durable_then_the_play_runs_again_with_it(root: Path) -> None:
    async with running(root, asks_once) as service:
        wf = await service.workflows.workflow_create("ask", python_source=SOURCE)
        sid = await service.plays.play_start(wf.sid)
        assert (await service.plays.play_wait(sid)).status.value == "awaiting_resume"
        receipt = await service.resumes.play_resume(sid, "q", "yes")
        assert receipt["resume_id"] == "q"
        play = await service.plays.play_wait(sid)
        assert (play.status.value, play.output_data) == ("success", "yes")


async def test_an_acknowledged_cancel_wins_over_a_racing_resume(root: Path) -> None:
    async with running(root, asks_once) as service:
        wf = await service.workflows.workflow_create("ask", python_source=SOURCE)
        for _ in range(20):
            sid = await service.plays.play_start(wf.sid)
            await service.plays.play_wait(sid)
            outcomes: dict[str, Any] = {}

            async def cancel(sid: str = sid, outcomes: dict[str, Any] = outcomes) -> None:
                outcomes["cancel"] = (await service.plays.play_cancel(sid)).status.value

            async def resume(sid: str = sid, outcomes: dict[str, Any] = outcomes) -> None:
                try:
                    outcomes["resume"] = await service.resumes.play_resume(sid, "q", "yes")
                except WrongState as exc:
                    outcomes["resume"] = exc

            async with trio.open_nursery() as nursery:
                nursery.start_soon(resume)
                nursery.start_soon(cancel)
            assert outcomes["cancel"] == "cancelled"
            final = await service.plays.play_wait(sid)
            assert final.status.value == "cancelled"  # never undone by the resume
            assert final.output_data is None


async def test_children_asked_for_at_once_are_all_linked_and_a_step_asked_again_gets_its_child(root: Path) -> None:
    async def spawner(run: FakeRun) -> int:
        if run.inputs["n"]:  # a child (the parent runs with the default n=0)
            return await run.finish(run.inputs["n"])
        sids: list[str] = []

        async def spawn(i: int) -> None:
            result = await run.request("start_child_play", {"name": "tree", "inputs": {"n": i + 1}, "step_key": f"k{i}"})
            sids.append(result["play_sid"])

        async with trio.open_nursery() as nursery:
            for i in range(16):
                nursery.start_soon(spawn, i)
        again = await run.request("start_child_play", {"name": "tree", "inputs": {"n": 1}, "step_key": "k0"})
        assert again["play_sid"] in sids
        return await run.finish(len(set(sids)))

    async with running(root, spawner) as service:
        wf = await service.workflows.workflow_create("tree", python_source=SOURCE)
        sid = await service.plays.play_start(wf.sid)
        play = await service.plays.play_wait(sid)
        assert play.output_data == 16
        assert len(play.child_play_sids) == 16


async def test_a_tree_stops_growing_at_its_descendant_budget(root: Path) -> None:
    async def greedy(run: FakeRun) -> int:
        if run.inputs["n"]:  # a child
            return await run.finish(0)
        refused = ""
        for i in range(5):
            try:
                await run.request("start_child_play", {"name": "greedy", "inputs": {"n": i + 1}, "step_key": f"k{i}"})
            except FakeRequestError as exc:
                refused = str(exc)
                break
        return await run.finish(refused)

    async with running(root, greedy, max_descendants=3) as service:
        wf = await service.workflows.workflow_create("greedy", python_source=SOURCE)
        play = await service.plays.play_wait(await service.plays.play_start(wf.sid))
        assert "budget" in play.output_data
        assert "HERO_LOGIC_MAX_DESCENDANTS" in play.output_data
        assert len(play.child_play_sids) == 3


async def test_concurrent_creates_of_one_name_make_one_workflow_and_the_rest_conflict(root: Path) -> None:
    async with running(root, echo) as service:
        results: list[Any] = []

        async def create() -> None:
            try:
                results.append(await service.workflows.workflow_create("same", python_source=SOURCE))
            except Conflict as exc:
                results.append(exc)

        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(create)
        assert sum(1 for r in results if not isinstance(r, Conflict)) == 1
        assert len(await service.workflows.workflow_list()) == 1


async def test_a_play_never_outlives_a_concurrently_deleted_workflow(root: Path) -> None:
    async def slow(run: FakeRun) -> int:
        await trio.sleep(0.01)
        return await run.finish(1)

    async with running(root, slow) as service:
        for i in range(30):
            wf = await service.workflows.workflow_create(f"doomed {i}", python_source=SOURCE)
            outcome: dict[str, Any] = {}

            async def start(wf_sid: str = wf.sid, outcome: dict[str, Any] = outcome) -> None:
                try:
                    outcome["play"] = await service.plays.play_start(wf_sid)
                except NotFound as exc:
                    outcome["play"] = exc

            async def delete(wf_sid: str = wf.sid, outcome: dict[str, Any] = outcome) -> None:
                try:
                    outcome["deleted"] = await service.workflows.workflow_delete(wf_sid)
                except WrongState as exc:
                    outcome["deleted"] = exc

            async with trio.open_nursery() as nursery:
                nursery.start_soon(start)
                nursery.start_soon(delete)
            started = isinstance(outcome["play"], str)
            deleted = outcome["deleted"] is True
            assert started != deleted, outcome  # exactly one of them won
            if started:
                play = await service.plays.play_status(outcome["play"])
                assert (await service.workflows.workflow_get(play.workflow_sid)).sid == wf.sid


async def test_concurrent_upserts_of_one_preset_name_end_on_one_preset(root: Path) -> None:
    async with running(root, echo) as service:
        wf = await service.workflows.workflow_create("presets", python_source=SOURCE)
        sids: list[str] = []

        async def upsert(n: int) -> None:
            sids.append((await service.library.example_upsert(wf.sid, "p", {"n": n})).sid)

        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(upsert, n)
        assert len(set(sids)) == 1
        (preset,) = await service.library.example_list(wf.sid)
        assert preset.sid == sids[0]


async def test_renaming_onto_a_name_being_created_leaves_no_duplicate(root: Path) -> None:
    async with running(root, echo) as service:
        other = await service.workflows.workflow_create("other", python_source=SOURCE)
        outcomes: list[Any] = []

        async def create() -> None:
            try:
                outcomes.append(await service.workflows.workflow_create("taken", python_source=SOURCE))
            except Conflict as exc:
                outcomes.append(exc)

        async def rename() -> None:
            try:
                outcomes.append(await service.workflows.workflow_update(other.sid, name="taken"))
            except Conflict as exc:
                outcomes.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(create)
            nursery.start_soon(rename)
        names = [w.name for w in await service.workflows.workflow_list()]
        assert names.count("taken") == 1
        assert sum(1 for o in outcomes if isinstance(o, Conflict)) == 1


@pytest.mark.parametrize("bad", ["", " ", "a\x00b", "x" * 201])
async def test_a_bad_workflow_name_is_refused_naming_the_field(root: Path, bad: str) -> None:
    from hero_logic.kernel import InvalidParams

    async with running(root, echo) as service:
        with pytest.raises(InvalidParams) as info:
            await service.workflows.workflow_create(bad)
        assert info.value.data[0]["field"] == "name"
