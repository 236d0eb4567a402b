"""Deleting ended plays (``play_delete``, ``--retention-days``; hero_logic/kernel/_retire.py,
hero_logic/service/_retention.py): whole trees, only trees that can never run again, in
bounded steps, with their events, links and workdirs."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import trio

from hero_logic.kernel import NotFound, WrongState, now_ms
from hero_logic.kernel._retire import PlayRetirer
from hero_logic.rpc import RpcError
from hero_logic.service import Service, _retention, open_service
from hero_logic.testing import FakeRun, open_fake_kernel

from .conftest import make_config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from .conftest import Service as RunningService

SOURCE = """
from hero_tracing import flow

@flow
def main(n: int = 0, kids: int = 0, ask: bool = False, fail: bool = False):
    return n
"""


async def script(run: FakeRun) -> int:
    """kids=N: start N child plays and wait for them; ask: pause once; fail: exit 1."""
    inputs = run.inputs
    if inputs.get("ask") and "q" not in run.answers:
        await run.pause("q")
        return 75
    if inputs.get("fail"):
        return 1
    for i in range(inputs.get("kids", 0)):
        child = await run.request("start_child_play", {"name": "tree", "inputs": {"n": i + 1}, "step_key": f"k{i}"})
        await run.request("wait_child_play", {"play_sid": child["play_sid"]})
    return await run.finish(inputs.get("n", 0))


@asynccontextmanager
async def running(root: Path) -> AsyncIterator[Service]:
    cfg = attrs.evolve(make_config(root), store="memory", workdir_mb=0)
    async with open_fake_kernel(cfg, script) as kernel, open_service(kernel, seed=False) as service:
        yield service


async def _play(service: Service, wf_sid: str, **inputs: Any) -> Any:
    return await service.plays.play_wait(await service.plays.play_start(wf_sid, inputs))


async def _rows(service: Service, table: str, prefix: str) -> list[str]:
    return [key for key, _ in await service.kernel.repo.store.scan(table, prefix)]


async def test_play_delete_removes_an_ended_tree_with_its_events_links_and_directories(root: Path) -> None:
    async with running(root) as service:
        wf = await service.workflows.workflow_create("tree", python_source=SOURCE)
        parent = await _play(service, wf.sid, kids=2)
        other = await _play(service, wf.sid, n=5)
        assert parent.status.value == "success"
        tree = [parent.sid, *parent.child_play_sids]
        assert len(tree) == 3
        assert await trio.Path(service.kernel.config.play_dir(parent.sid)).is_dir()
        assert await service.retention.play_delete(parent.sid) == tree
        for sid in tree:
            with pytest.raises(NotFound):
                await service.kernel.repo.get_play(sid)
            for table in ("events", "play_children", "children"):
                assert await _rows(service, table, f"{sid}/") == []
            assert await _rows(service, "wf_plays", f"{wf.sid}/{sid}") == []
            assert not await trio.Path(service.kernel.config.play_dir(sid)).exists()
        assert await _rows(service, "tree_size", parent.sid) == []
        assert (await service.kernel.repo.get_play(other.sid)).output_data == 5  # only the tree went
        assert await _rows(service, "events", f"{other.sid}/")


async def test_play_delete_refuses_a_play_that_could_still_run(root: Path) -> None:
    """A paused play is kept (-32002, saying why and what to do); once it ended it may go."""
    async with running(root) as service:
        wf = await service.workflows.workflow_create("tree", python_source=SOURCE)
        paused = await _play(service, wf.sid, ask=True)
        assert paused.status.value == "awaiting_resume"
        with pytest.raises(WrongState, match=r"has not ended \(awaiting_resume\).*play_cancel"):
            await service.retention.play_delete(paused.sid)
        await service.resumes.play_resume(paused.sid, "q", "yes")
        assert (await service.plays.play_wait(paused.sid)).status.value == "success"
        assert await service.retention.play_delete(paused.sid) == [paused.sid]


async def test_a_child_play_goes_only_with_its_root(root: Path) -> None:
    async with running(root) as service:
        wf = await service.workflows.workflow_create("tree", python_source=SOURCE)
        parent = await _play(service, wf.sid, kids=1)
        child = parent.child_play_sids[0]
        with pytest.raises(WrongState, match=f"delete the root play {parent.sid}"):
            await service.retention.play_delete(child)
        assert (await service.kernel.repo.get_play(child)).status.value == "success"


async def test_a_play_whose_steps_an_unfinished_retry_replays_is_kept(root: Path) -> None:
    async with running(root) as service:
        wf = await service.workflows.workflow_create("tree", python_source=SOURCE)
        failed = await _play(service, wf.sid, fail=True)
        assert failed.status.value == "failed"
        retry = await service.plays.play_retry(failed.sid, reuse_steps=True)
        assert (await service.plays.play_wait(retry)).status.value == "failed"
        # an unfinished reuser: a paused play that names the failed one
        paused = await _play(service, wf.sid, ask=True)
        record = attrs.evolve(await service.kernel.repo.get_play(paused.sid), reuse_steps_of=failed.sid)
        await service.kernel.repo.commit(service.kernel.repo.put_play(record))
        with pytest.raises(WrongState, match=f"play {paused.sid} has not ended and replays the steps of play {failed.sid}"):
            await service.retention.play_delete(failed.sid)
        assert await service.retention.sweep(now_ms() + 1) == 1  # the retry went, the reused play stayed
        assert (await service.kernel.repo.get_play(failed.sid)).status.value == "failed"
        with pytest.raises(NotFound):
            await service.kernel.repo.get_play(retry)


async def test_retention_deletes_what_ended_before_the_cutoff_never_a_paused_play(root: Path) -> None:
    async with running(root) as service:
        wf = await service.workflows.workflow_create("tree", python_source=SOURCE)
        ended = await _play(service, wf.sid, kids=1)
        paused = await _play(service, wf.sid, ask=True)
        assert await service.retention.sweep(ended.created_at - 1) == 0  # nothing is that old
        assert await service.retention.sweep(now_ms() + 1) == 2  # the tree: parent and child
        with pytest.raises(NotFound):
            await service.kernel.repo.get_play(ended.sid)
        assert (await service.kernel.repo.get_play(paused.sid)).status.value == "awaiting_resume"


async def test_retention_deletes_a_backlog_in_bounded_steps(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_retention, "SWEEP_BATCH", 4)
    async with running(root) as service:
        wf = await service.workflows.workflow_create("tree", python_source=SOURCE)
        for n in range(10):
            await _play(service, wf.sid, n=n)
        steps: list[int] = []
        real = PlayRetirer.delete_ended_before

        async def counted(self: PlayRetirer, *args: Any, **kw: Any) -> Any:
            deleted, after = await real(self, *args, **kw)
            steps.append(len(deleted))
            return deleted, after

        monkeypatch.setattr(PlayRetirer, "delete_ended_before", counted)
        assert await service.retention.sweep(now_ms() + 1) == 10
        assert max(steps) <= 4
        assert await service.kernel.repo.list_plays(limit=100) == []


async def test_play_delete_over_rpc_removes_the_workdir_and_names_the_refusal(service: RunningService) -> None:
    """Through a real service and flow process: the workdir the flow wrote is gone; a paused
    play is refused with -32002."""
    wf = await service.push("from hero_tracing import flow\n@flow\ndef main():\n    open('out.txt', 'w').write('x')\n    return 1\n")
    play = await service.run(wf)
    workdir = trio.Path(service.config.play_workdir(play["sid"]))
    assert await (workdir / "out.txt").exists()
    assert await service.call("play_delete", play_sid=play["sid"]) == [play["sid"]]
    assert not await workdir.exists()
    with pytest.raises(RpcError) as info:
        await service.call("play_status", play_sid=play["sid"])
    assert "no play with sid" in str(info.value)
    asks = await service.push("from hero_tracing import ask_user, flow\n@flow\ndef main():\n    return ask_user.confirm('ok?')\n")
    sid = await service.call("play_start", workflow_sid=asks["sid"])
    assert (await service.call("play_wait", play_sid=sid, timeout_ms=20000))["status"] == "awaiting_resume"
    with pytest.raises(RpcError) as refused:
        await service.call("play_delete", play_sid=sid)
    assert refused.value.code == -32002
    assert "has not ended (awaiting_resume)" in str(refused.value)


async def test_the_retention_task_sweeps_at_once_with_retention_days(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--retention-days 1``: two days later, the ended play goes in the task's first sweep."""
    cfg = attrs.evolve(make_config(root), store="memory", workdir_mb=0, retention_days=1)
    async with open_fake_kernel(cfg, script) as kernel, open_service(kernel, seed=False) as service:
        wf = await service.workflows.workflow_create("tree", python_source=SOURCE)
        ended = await _play(service, wf.sid, n=1)
        monkeypatch.setattr(_retention, "now_ms", lambda: now_ms() + 2 * _retention.DAY_MS)
        with trio.move_on_after(0.5):  # it sweeps at once, then sleeps an hour
            await service.retention.run()
        with pytest.raises(NotFound):
            await service.kernel.repo.get_play(ended.sid)


def test_retention_is_off_by_default(root: Path) -> None:
    assert make_config(root).retention_days == 0


async def test_the_plays_an_unfinished_fork_reads_are_kept_up_its_chain(root: Path) -> None:
    """A paused fork of a finished fork of a play: both plays it reads are kept; once the fork
    ended, they may go."""
    async with running(root) as service:
        wf = await service.workflows.workflow_create("tree", python_source=SOURCE)
        first = await _play(service, wf.sid, n=1)
        middle = await _play(service, wf.sid, n=2)
        paused = await _play(service, wf.sid, ask=True)
        repo = service.kernel.repo
        await repo.commit(repo.put_play(attrs.evolve(await repo.get_play(middle.sid), fork_of=first.sid)))
        await repo.commit(repo.put_play(attrs.evolve(await repo.get_play(paused.sid), fork_of=middle.sid)))
        for kept in (first.sid, middle.sid):
            with pytest.raises(WrongState, match=f"play {paused.sid} has not ended and replays the steps of play {kept}"):
                await service.retention.play_delete(kept)
        assert await service.retention.sweep(now_ms() + 1) == 0
        await service.resumes.play_resume(paused.sid, "q", "yes")
        assert (await service.plays.play_wait(paused.sid)).status.value == "success"
        assert await service.retention.sweep(now_ms() + 1) == 3
