"""Parent/child links are the kernel's: every child a flow spawns is linked in the commit that
creates it, however many threads spawn at once and wherever the service is killed, and a
cancelled parent leaves no child running."""

from __future__ import annotations

import signal
import textwrap
from typing import TYPE_CHECKING, Any

import trio

from hero_logic.rpc import AsyncClient

from .conftest import start_service_process

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import Service

CHILD = """
import os, time
from hero_tracing import flow

@flow(name="child")
def child(i: int, hold_s: float = 0.0, hold_while: str = "") -> int:
    time.sleep(hold_s)
    while hold_while and os.path.exists(hold_while):
        time.sleep(0.05)
    return i
"""

SPAWNER = """
from concurrent.futures import ThreadPoolExecutor
from hero_tracing import flow

@flow(name="spawner")
def spawner(n: int = 16, hold_s: float = 0.0, hold_while: str = "") -> int:
    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(flow.invoke, "child", spawn=True, i=i, hold_s=hold_s, hold_while=hold_while) for i in range(n)]
        return sum(f.result() for f in futures)
"""


async def _children_of_workflow(call: Any, workflow_sid: str) -> list[dict[str, Any]]:
    plays: list[dict[str, Any]] = await call("play_list", workflow_sid=workflow_sid, limit=1000)
    return plays


async def test_sixteen_children_spawned_from_threads_are_all_linked_and_all_cancelled_with_the_parent(
    service: Service,
) -> None:
    child_wf = await service.push(CHILD, name="child")
    parent_wf = await service.push(SPAWNER, name="spawner")
    for _round in range(6):
        sid = await service.call("play_start", workflow_sid=parent_wf["sid"], input_data={"hold_s": 60})
        with trio.fail_after(30):
            while len((await service.call("play_status", play_sid=sid))["child_play_sids"]) < 16:
                await trio.sleep(0.05)
        await trio.sleep(0.3)  # any 17th child would have been asked for by now
        parent = await service.call("play_status", play_sid=sid)
        linked = set(parent["child_play_sids"])
        children = [p for p in await _children_of_workflow(service.call, child_wf["sid"]) if p["parent_play_sid"] == sid]
        assert len(linked) == 16
        assert {c["sid"] for c in children} == linked  # no child exists unlinked
        cancelled = await service.call("play_cancel", play_sid=sid)
        assert cancelled["status"] == "cancelled"
        for child_sid in linked:
            child = await service.call("play_status", play_sid=child_sid)
            assert child["status"] == "cancelled", (child_sid, child["status"])


async def test_children_created_before_a_kill_9_are_found_again_by_the_re_run_parent(root: Path) -> None:
    # One run slot: the parent lends it to the first child, which holds it (while the flag
    # file exists), so the 15 others are created and linked but have not started (no event of
    # theirs exists) when the service is killed.
    flag = root / "hold"
    flag.write_text("")
    service, config = await start_service_process(root, sandbox="env_scrub", env={"HERO_LOGIC_MAX_RUNNING": "1"})
    try:
        async with AsyncClient(config.rpc_socket) as client:
            child_wf = await client.call("workflow_create", {"name": "child", "python_source": textwrap.dedent(CHILD)})
            parent_wf = await client.call("workflow_create", {"name": "spawner", "python_source": textwrap.dedent(SPAWNER)})
            sid = await client.call("play_start", {"workflow_sid": parent_wf["sid"], "input_data": {"hold_while": str(flag)}})
            with trio.fail_after(30):
                while len((await client.call("play_status", {"play_sid": sid}))["child_play_sids"]) < 16:
                    await trio.sleep(0.02)
            children = await client.call("play_list", {"workflow_sid": child_wf["sid"], "limit": 100})
            assert sum(c["status"] == "pending" for c in children) >= 14
        service.send_signal(signal.SIGKILL)
        await service.wait()
        flag.unlink()
        service, config = await start_service_process(root, sandbox="env_scrub", env={"HERO_LOGIC_MAX_RUNNING": "20"})
        async with AsyncClient(config.rpc_socket) as client:
            play = await client.call("play_wait", {"play_sid": sid, "timeout_ms": 60000})
            assert play["status"] == "success", play["error_message"]
            assert play["output_data"] == sum(range(16))
            children = await client.call("play_list", {"workflow_sid": child_wf["sid"], "limit": 100})
            assert len(children) == 16  # the re-run parent spawned no second child for any step
            assert {c["sid"] for c in children} == set(play["child_play_sids"])
            assert all(c["status"] == "success" for c in children)
    finally:
        service.kill()
        await service.wait()
