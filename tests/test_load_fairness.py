"""Run slots under load: parents waiting for children give their slot back, at every depth; a
play bomb stays inside its tree's budget and another user's play still starts at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import trio

if TYPE_CHECKING:
    from .conftest import Service

NESTED = """
from hero_tracing import flow

@flow(name="nested")
def nested(depth: int = 0) -> int:
    if depth >= 2:
        return 1
    return 1 + flow.invoke("nested", spawn=True, depth=depth + 1)
"""

_BOMB = """
import time
from concurrent.futures import ThreadPoolExecutor
from hero_tracing import flow

@flow(name="bomb")
def bomb(depth: int = 0) -> int:
    if depth >= 3:
        time.sleep(20)
        return 1
    with ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(flow.invoke, "bomb", spawn=True, depth=depth + 1, i=i) for i in range(12)]
        total = 0
        for f in futures:
            try:
                total += f.result()
            except Exception:
                pass
        return total
"""

BOMB_INPUTS = _BOMB.replace("def bomb(depth: int = 0)", "def bomb(depth: int = 0, i: int = 0)")

QUICK = """
from hero_tracing import flow

@flow(name="quick")
def quick() -> str:
    return "ok"
"""


async def test_eight_nested_spawning_parents_finish_instead_of_starving_their_children(service: Service) -> None:
    """max_running is 8: 8 parents each waiting on a child, which waits on a grandchild."""
    wf = await service.push(NESTED, name="nested")
    with trio.fail_after(60):
        sids = [await service.call("play_start", workflow_sid=wf["sid"]) for _ in range(8)]
        for sid in sids:
            play = await service.call("play_wait", play_sid=sid, timeout_ms=60000)
            assert play["status"] == "success", play["error_message"]
            assert play["output_data"] == 3


async def _latency(service: Service, wf: dict[str, str]) -> float:
    start = trio.current_time()
    play = await service.run(wf)
    assert play["status"] == "success", play["error_message"]
    return trio.current_time() - start


@pytest.mark.timeout(150)
async def test_a_play_bomb_stays_in_its_budget_and_another_users_play_starts_at_once(service: Service) -> None:
    quick = await service.push(QUICK, name="quick")
    normal = min([await _latency(service, quick) for _ in range(3)])
    bomb_wf = await service.push(BOMB_INPUTS, name="bomb")
    root = await service.call("play_start", workflow_sid=bomb_wf["sid"])
    with trio.fail_after(60):  # let the bomb fill every slot and its queue
        while len(await service.call("play_list", workflow_sid=bomb_wf["sid"], limit=10000)) < 150:
            await trio.sleep(0.2)
    try:
        during = await _latency(service, quick)
        assert during < max(5.0, 10 * normal), (normal, during)
        plays = await service.call("play_list", workflow_sid=bomb_wf["sid"], limit=10000)
        assert len(plays) <= 1 + 1000  # the root and its budget of descendants
    finally:
        await service.call("play_cancel", play_sid=root)
    with trio.fail_after(30):
        while True:
            plays = await service.call("play_list", workflow_sid=bomb_wf["sid"], limit=10000)
            unfinished = [p for p in plays if p["status"] in ("pending", "running", "awaiting_resume")]
            if not unfinished:
                break
            await trio.sleep(0.2)
