"""Answers are never lost or misrouted: a name means the one open pause, parallel pauses can
all be answered while the play runs, a retry reuses answers, a start with a key starts once,
and a play's deadline bounds all its runs and pauses together."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import trio

from hero_logic.rpc import RpcError

if TYPE_CHECKING:

    from .conftest import Service

LOOP = """
from hero_tracing import flow, ask_user

@flow(name="loop")
def main(n: int = 5) -> int:
    yes = 0
    for _ in range(n):
        yes += ask_user.confirm("Approve?")
    return yes
"""

PARALLEL = """
import asyncio, time
from hero_tracing import flow, ask_user

async def ask(q):
    return ask_user.text(q)

@flow(name="parallel")
async def main(hold_s: float = 0.0) -> list:
    time.sleep(hold_s)  # each run takes a while before it asks again
    return list(await asyncio.gather(ask("a"), ask("b"), ask("c")))
"""

SAME_NAME_TWICE = """
import asyncio
from hero_tracing import flow, ask_user

async def ask():
    return ask_user.text("who?")

@flow(name="twice")
async def main() -> list:
    return list(await asyncio.gather(ask(), ask()))
"""

FLAKY_AFTER_ANSWER = """
import os
from hero_tracing import flow, ask_user

@flow(name="flaky")
def main(flag: str) -> str:
    who = ask_user.text("who?")
    if not os.path.exists(flag):
        raise flow.Failed("the flag file is missing")
    return who
"""


async def test_a_confirm_in_a_loop_of_five_is_answered_by_name_five_times(service: Service) -> None:
    wf = await service.push(LOOP, name="loop")
    play = await service.run(wf)
    for answer in (True, False, True, True, True):
        assert play["status"] == "awaiting_resume", play["error_message"]
        receipt = await service.call("play_resume", play_sid=play["sid"], resume_id="Approve?", payload=answer)
        assert receipt["ok"]
        play = await service.call("play_wait", play_sid=play["sid"], timeout_ms=20000)
    assert play["status"] == "success", play["error_message"]
    assert play["output_data"] == 4
    assert len(play["received_resumes"]) == 5
    assert len({r["id"] for r in play["received_resumes"]}) == 5


async def test_a_name_of_several_open_pauses_is_refused_listing_their_ids(service: Service) -> None:
    wf = await service.push(SAME_NAME_TWICE, name="twice")
    play = await service.run(wf)
    assert play["status"] == "awaiting_resume", play["error_message"]
    ids = [r["id"] for r in play["pending_resumes"]]
    assert len(ids) == 2
    with pytest.raises(RpcError) as info:
        await service.call("play_resume", play_sid=play["sid"], resume_id="who?", payload="x")
    assert info.value.code == -32602
    assert all(i in str(info.value.data) for i in ids)


async def test_three_parallel_pauses_answered_while_the_play_runs_are_all_taken(service: Service) -> None:
    wf = await service.push(PARALLEL, name="parallel")
    sid = await service.call("play_start", workflow_sid=wf["sid"], input_data={"hold_s": 1.5})
    play = await service.call("play_wait", play_sid=sid, timeout_ms=30000)
    assert play["status"] == "awaiting_resume", play["error_message"]
    assert sorted(r["name"] for r in play["pending_resumes"]) == ["a", "b", "c"]
    await service.call("play_resume", play_sid=sid, resume_id="a", payload="A")
    assert (await service.call("play_status", play_sid=sid))["status"] == "running"
    # the run is going on (it holds for 1.5 s before asking again): both answers are taken now
    await service.call("play_resume", play_sid=sid, resume_id="b", payload="B")
    await service.call("play_resume", play_sid=sid, resume_id="c", payload="C")
    with trio.fail_after(30):
        while (play := await service.call("play_status", play_sid=sid))["status"] != "success":
            assert play["status"] in ("running", "awaiting_resume"), play["error_message"]
            await trio.sleep(0.1)
    assert play["output_data"] == ["A", "B", "C"]
    # answered again, the same: the first receipts; differently: a conflict
    assert (await service.call("play_resume", play_sid=sid, resume_id="b", payload="B"))["ok"]
    with pytest.raises(RpcError) as info:
        await service.call("play_resume", play_sid=sid, resume_id="c", payload="other")
    assert info.value.code == -32003


async def test_a_retry_that_reuses_steps_reuses_the_answers_too(service: Service) -> None:
    flag = service.config.root / "flag"  # where the flow may look (a root service's env_scrub flow has its own uid)
    wf = await service.push(FLAKY_AFTER_ANSWER, name="flaky")
    play = await service.run(wf, flag=str(flag))
    assert play["status"] == "awaiting_resume", play["error_message"]
    await service.call("play_resume", play_sid=play["sid"], resume_id="who?", payload="ann")
    play = await service.call("play_wait", play_sid=play["sid"], timeout_ms=20000)
    assert play["status"] == "failed"
    flag.write_text("now")
    retried = await service.call("play_retry", play_sid=play["sid"], reuse_steps=True)
    again = await service.call("play_wait", play_sid=retried, timeout_ms=20000)
    assert again["status"] == "success", (again["status"], again["pending_resumes"], again["error_message"])
    assert again["output_data"] == "ann"  # not asked again


async def test_a_start_with_an_idempotency_key_starts_once(service: Service) -> None:
    wf = await service.push(LOOP, name="loop")
    first = await service.call("play_start", workflow_sid=wf["sid"], idempotency_key="order-42")
    sids = set()
    async with trio.open_nursery() as nursery:

        async def start() -> None:
            sids.add(await service.call("play_start", workflow_sid=wf["sid"], idempotency_key="order-42", input_data={"n": 1}))

        for _ in range(10):
            nursery.start_soon(start)
    assert sids == {first}
    assert len(await service.call("play_list", workflow_sid=wf["sid"])) == 1
    other = await service.call("play_start", workflow_sid=wf["sid"], idempotency_key="order-43")
    assert other != first
    with pytest.raises(RpcError) as info:
        await service.call("play_start", workflow_sid=wf["sid"], idempotency_key="bad\x00key")
    assert info.value.code == -32602


async def test_a_deadline_bounds_the_whole_play_across_its_pauses(service: Service) -> None:
    wf = await service.push(LOOP, name="loop")
    sid = await service.call("play_start", workflow_sid=wf["sid"], deadline_ms=1500)
    play = await service.call("play_wait", play_sid=sid, timeout_ms=20000)
    assert play["status"] == "awaiting_resume", play["error_message"]
    assert play["deadline_at"] == play["created_at"] + 1500
    await trio.sleep(1.6)
    await service.call("play_resume", play_sid=sid, resume_id="Approve?", payload=True)
    play = await service.call("play_wait", play_sid=sid, timeout_ms=20000)
    assert play["status"] == "timed_out"
    assert "deadline" in play["error_message"]


async def test_every_answer_records_who_gave_it_and_how(service: Service) -> None:
    wf = await service.push(LOOP, name="loop")
    play = await service.run(wf, n=1)
    await service.call("play_resume", play_sid=play["sid"], resume_id="Approve?", payload=True, answered_by="ann@example.com")
    play = await service.call("play_wait", play_sid=play["sid"], timeout_ms=20000)
    (answer,) = play["received_resumes"]
    assert (answer["answered_by"], answer["via"], answer["payload"]) == ("ann@example.com", "rpc", True)
    assert answer["resumed_at"] >= answer["asked_at"] > 0
    with pytest.raises(RpcError) as info:
        await service.call("play_resume", play_sid=play["sid"], resume_id="Approve?", payload=True, answered_by="a\nb")
    assert info.value.code == -32602
