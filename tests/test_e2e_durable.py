"""Durable plays: pause anywhere, resume by replay, sub-flows, prefill, retry, crash recovery.

Steps append to a side-effect file in the play's workdir, so each test can count how often a
step body really ran.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import trio

from hero_logic.rpc import AsyncClient, RpcError
from hero_logic.server import serve

from .conftest import Service, make_config

if TYPE_CHECKING:
    from pathlib import Path

APPROVAL = """
from hero_tracing import ask_user, flow

def effect(text):
    with open("effects.txt", "a") as f:
        f.write(text + "\\n")

@flow
def fetch(n: int):
    effect(f"fetch {n}")
    return n * 10

@flow
def record(text: str):  # a step: its side effect is not repeated when the play replays
    effect(text)
    return text

@flow(name="approval", inputs={"n": {"type": "integer", "default": 3}})
def main(n):
    values = [fetch(n=1) for _ in range(n)]  # the same call, n times: n steps
    ok = ask_user.confirm("Ship it?")
    record(f"answer {ok}")
    size = ask_user.choice("Which size?", options=["S", "M", "L"], name="size")
    record(f"size {size}")
    return {"total": sum(values), "ok": ok, "size": size}
"""


def _effects(service: Service, play_sid: str) -> list[str]:
    path = service.config.play_workdir(play_sid) / "effects.txt"
    return path.read_text().splitlines() if path.exists() else []


async def _error(service: Service, method: str, **params: Any) -> RpcError:
    with pytest.raises(RpcError) as info:
        await service.call(method, **params)
    return info.value


async def test_pause_resume_runs_every_step_body_exactly_once(service: Service) -> None:
    wf = await service.push(APPROVAL, name="approval")
    play = await service.run(wf)
    assert play["status"] == "awaiting_resume"
    assert play["completed_at"] is None
    assert play["duration_ms"] is None
    (pending,) = await service.call("play_pending_resumes", play_sid=play["sid"])
    assert pending["name"] == "Ship it?"
    assert pending["ui"]["kind"] == "confirm"
    assert pending["schema"]["type"] == "boolean"
    assert _effects(service, play["sid"]) == ["fetch 1"] * 3  # a loop of identical calls: 3 steps

    answer = await service.call("play_resume", play_sid=play["sid"], resume_id=pending["id"], payload=True)
    assert answer["ok"] is True
    assert answer["resumed_at"] > 0
    play = await service.call("play_wait", play_sid=play["sid"], timeout_ms=20000)
    assert play["status"] == "awaiting_resume"
    (size,) = play["pending_resumes"]
    assert size["name"] == "size"
    assert size["ui"]["options"] == ["S", "M", "L"]

    # by pause name instead of id works when unambiguous
    await service.call("play_resume", play_sid=play["sid"], resume_id="size", payload="M")
    play = await service.call("play_wait", play_sid=play["sid"], timeout_ms=20000)
    assert play["status"] == "success", play["error_message"]
    assert play["output_data"] == {"total": 30, "ok": True, "size": "M"}
    assert _effects(service, play["sid"]) == ["fetch 1"] * 3 + ["answer True", "size M"]
    assert [r["name"] for r in play["received_resumes"]] == ["Ship it?", "size"]

    spans = await service.call("play_spans", play_sid=play["sid"])
    fetches = [s for s in spans if s["name"] == "fetch"]
    assert len(fetches) == 3  # each step once in the tree, not once per run
    assert all(s["status"] == "replayed" for s in fetches)
    roots = [s for s in spans if s["kind"] == "flow_root"]
    assert len(roots) == 1
    assert roots[0]["status"] == "ok"


async def test_double_resume_same_payload_is_idempotent_and_different_is_conflict(service: Service) -> None:
    wf = await service.push(APPROVAL.replace("size = ask_user.choice", "size = 'S' or ask_user.choice"), name="approval")
    play = await service.run(wf, n=1)
    (pending,) = play["pending_resumes"]
    first = await service.call("play_resume", play_sid=play["sid"], resume_id=pending["id"], payload=True)
    done = await service.call("play_wait", play_sid=play["sid"], timeout_ms=20000)
    assert done["status"] == "success"
    effects = _effects(service, play["sid"])
    again = await service.call("play_resume", play_sid=play["sid"], resume_id=pending["id"], payload=True)
    assert again["resumed_at"] == first["resumed_at"]
    assert (await service.call("play_status", play_sid=play["sid"]))["status"] == "success"
    assert _effects(service, play["sid"]) == effects  # nothing ran again
    err = await _error(service, "play_resume", play_sid=play["sid"], resume_id=pending["id"], payload=False)
    assert err.code == -32003
    err = await _error(service, "play_resume", play_sid=play["sid"], resume_id="other", payload=1)
    assert err.code == -32002  # the play is not waiting


MANY_PAUSES = """
from hero_tracing import flow

@flow
def main(n: int):
    return [flow.pause(f"q{i}", schema={"type": "integer"}) for i in range(n)]
"""


async def test_a_play_may_pause_and_resume_any_number_of_times(service: Service) -> None:
    wf = await service.push(MANY_PAUSES, name="many_pauses")
    play = await service.run(wf, n=6)
    for i in range(6):
        assert play["status"] == "awaiting_resume", play["error_message"]
        (pending,) = play["pending_resumes"]
        await service.call("play_resume", play_sid=play["sid"], resume_id=pending["id"], payload=i)
        play = await service.call("play_wait", play_sid=play["sid"], timeout_ms=20000)
    assert play["status"] == "success", play["error_message"]
    assert play["output_data"] == [0, 1, 2, 3, 4, 5]
    spans = await service.call("play_spans", play_sid=play["sid"])
    starts = [span["start_ms"] for span in spans]
    assert starts == sorted(starts), spans  # the root keeps its first run's start
    assert spans[0]["kind"] == "flow_root"
    pauses = [span["name"] for span in spans if span["name"].startswith("pause:")]
    assert pauses == [f"pause:q{i}" for i in range(6)]  # each once, however many runs replayed it


async def test_concurrent_identical_resumes_all_get_the_first_answer(service: Service) -> None:
    wf = await service.push(MANY_PAUSES, name="many_pauses")
    play = await service.run(wf, n=2)
    (pending,) = play["pending_resumes"]
    answers: list[Any] = []
    errors: list[RpcError] = []

    async def resume(payload: int) -> None:
        async with AsyncClient(service.config.rpc_socket) as client:
            try:
                answers.append(await client.call("play_resume", {"play_sid": play["sid"], "resume_id": pending["id"], "payload": payload}))
            except RpcError as exc:
                errors.append(exc)

    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(resume, 7)
    assert not errors, [(e.code, e.message) for e in errors]
    assert len({a["resumed_at"] for a in answers}) == 1
    async with trio.open_nursery() as nursery:
        for payload in (8, 9, 10):
            nursery.start_soon(resume, payload)
    assert {e.code for e in errors} == {-32003}, [(e.code, e.message) for e in errors]  # conflicts, never "running"


async def test_resume_payload_must_match_the_pause_schema(service: Service) -> None:
    wf = await service.push(APPROVAL, name="approval")
    play = await service.run(wf, n=0)
    (pending,) = play["pending_resumes"]
    err = await _error(service, "play_resume", play_sid=play["sid"], resume_id=pending["id"], payload="yes")
    assert err.code == -32602
    assert err.data[0]["field"] == "payload"
    assert "boolean" in err.data[0]["error"]
    err = await _error(service, "play_resume", play_sid=play["sid"], resume_id="nope", payload=True)
    assert err.code == -32602
    assert err.data[0]["field"] == "resume_id"
    await service.call("play_resume", play_sid=play["sid"], resume_id=pending["id"], payload=False)
    play = await service.call("play_wait", play_sid=play["sid"], timeout_ms=20000)
    err = await _error(service, "play_resume", play_sid=play["sid"], resume_id="size", payload="XL")
    assert err.code == -32602
    assert "XL" in err.data[0]["error"]


async def test_prefill_by_name_and_by_id_never_waits(service: Service) -> None:
    wf = await service.push(APPROVAL, name="approval")
    first = await service.run(wf, n=1)
    confirm_id = first["pending_resumes"][0]["id"]
    sid = await service.call(
        "play_start", workflow_sid=wf["sid"], input_data={"n": 1}, prefill_resumes={confirm_id: True, "size": "L"}
    )
    play = await service.call("play_wait", play_sid=sid, timeout_ms=20000)
    assert play["status"] == "success", play["error_message"]
    assert play["output_data"] == {"total": 10, "ok": True, "size": "L"}


async def test_a_prefill_that_breaks_the_pause_schema_fails_the_play_naming_it(service: Service) -> None:
    wf = await service.push(APPROVAL, name="approval")
    sid = await service.call(
        "play_start", workflow_sid=wf["sid"], input_data={"n": 1}, prefill_resumes={"Ship it?": True, "size": "XXL"}
    )
    play = await service.call("play_wait", play_sid=sid, timeout_ms=20000)
    assert play["status"] == "failed"
    assert "size" in play["error_message"]
    assert "XXL" in play["error_message"]
    assert "answer True" in _effects(service, sid)  # the valid prefill went through
    assert not any(line.startswith("size") for line in _effects(service, sid))
    sid = await service.call("play_start", workflow_sid=wf["sid"], input_data={"n": 1}, prefill_resumes={"Ship it?": "maybe"})
    play = await service.call("play_wait", play_sid=sid, timeout_ms=20000)
    assert play["status"] == "failed"
    assert "Ship it?" in play["error_message"]
    assert "boolean" in play["error_message"]


async def test_prefill_missing_an_answer_fails_fast_naming_the_pause(service: Service) -> None:
    wf = await service.push(APPROVAL, name="approval")
    sid = await service.call("play_start", workflow_sid=wf["sid"], input_data={"n": 1}, prefill_resumes={"Ship it?": True})
    play = await service.call("play_wait", play_sid=sid, timeout_ms=20000)
    assert play["status"] == "failed"
    assert "size" in play["error_message"]
    assert "prefill" in play["error_message"]


async def test_asyncio_gather_replays_deterministically(service: Service) -> None:
    wf = await service.push(
        """
        import asyncio
        from hero_tracing import flow

        def effect(text):
            with open("effects.txt", "a") as f:
                f.write(text + "\\n")

        @flow
        async def work(i: int):
            await asyncio.sleep(0.01 * (3 - i))  # finish in reverse order
            effect(f"work {i}")
            return i

        @flow(name="fan")
        async def main():
            got = await asyncio.gather(*(work(i=i) for i in range(3)))
            answer = flow.pause("go on?", schema={"type": "string"})
            return {"got": got, "answer": answer}
        """,
        name="fan",
    )
    play = await service.run(wf)
    assert play["status"] == "awaiting_resume", play["error_message"]
    await service.call("play_resume", play_sid=play["sid"], resume_id="go on?", payload="yes")
    play = await service.call("play_wait", play_sid=play["sid"], timeout_ms=20000)
    assert play["status"] == "success", play["error_message"]
    assert play["output_data"] == {"got": [0, 1, 2], "answer": "yes"}
    assert sorted(_effects(service, play["sid"])) == ["work 0", "work 1", "work 2"]


CHILD = """
from hero_tracing import ask_user, flow

@flow
def notify(doc: str):  # a finished step inside the sub-flow: never repeated
    with open("child-effects.txt", "a") as f:
        f.write(doc + "\\n")
    return True

@flow(name="reviewer", inputs={"doc": "string"})
def review(doc):
    notify(doc=doc)
    verdict = ask_user.choice(f"Verdict on {doc}?", options=["accept", "reject"], name="verdict")
    return {"verdict": verdict}
"""

PARENT = """
from hero_tracing import flow

def effect(text):
    with open("effects.txt", "a") as f:
        f.write(text + "\\n")

@flow
def prepare():
    effect("prepare")
    return "draft-1"

@flow(name="publisher", inputs={"spawn": {"type": "boolean", "default": False}})
def main(spawn):
    doc = prepare()
    result = flow.invoke("reviewer", spawn=spawn, doc=doc)
    effect(f"published {result['verdict']}")
    return result
"""


async def test_pause_inside_an_in_process_subflow(service: Service) -> None:
    await service.push(CHILD, name="reviewer")
    parent = await service.push(PARENT, name="publisher")
    play = await service.run(parent, spawn=False)
    assert play["status"] == "awaiting_resume", play["error_message"]
    (pending,) = play["pending_resumes"]
    assert pending["name"] == "verdict"
    await service.call("play_resume", play_sid=play["sid"], resume_id="verdict", payload="accept")
    play = await service.call("play_wait", play_sid=play["sid"], timeout_ms=20000)
    assert play["status"] == "success", play["error_message"]
    assert play["output_data"] == {"verdict": "accept"}
    assert _effects(service, play["sid"]) == ["prepare", "published accept"]
    workdir = service.config.play_workdir(play["sid"])
    assert (workdir / "child-effects.txt").read_text() == "draft-1\n"  # the sub-flow's step ran once
    spans = await service.call("play_spans", play_sid=play["sid"])
    names = {s["name"] for s in spans}
    assert {"publisher", "prepare", "reviewer"} <= names


async def test_pause_inside_a_spawned_child_play_pauses_and_resumes_the_parent(service: Service) -> None:
    await service.push(CHILD, name="reviewer")
    parent_wf = await service.push(PARENT, name="publisher")
    parent = await service.run(parent_wf, spawn=True)
    assert parent["status"] == "awaiting_resume", parent["error_message"]
    (child_sid,) = parent["child_play_sids"]
    child = await service.call("play_status", play_sid=child_sid)
    assert child["status"] == "awaiting_resume"
    assert child["parent_play_sid"] == parent["sid"]
    (pending,) = await service.call("play_pending_resumes", play_sid=parent["sid"])
    assert pending["play_sid"] == child_sid
    assert pending["name"] == "verdict"
    subflow = [s for s in await service.call("play_spans", play_sid=parent["sid"]) if s["kind"] == "subflow"]
    assert subflow[0]["child_play_sid"] == child_sid
    (child_root,) = [s for s in await service.call("play_spans", play_sid=child_sid) if s["kind"] == "flow_root"]
    assert child_root["parent_id"] == subflow[0]["span_id"]

    # answered through the parent: the child resumes, finishes, and the parent continues
    await service.call("play_resume", play_sid=parent["sid"], resume_id=pending["id"], payload="reject")
    with trio.fail_after(30):
        while (parent := await service.call("play_status", play_sid=parent["sid"]))["status"] != "success":
            assert parent["status"] in ("running", "awaiting_resume", "pending"), parent["error_message"]
            await trio.sleep(0.05)
    assert parent["output_data"] == {"verdict": "reject"}
    assert parent["child_play_sids"] == [child_sid]  # the re-run parent reused its child
    assert _effects(service, parent["sid"]) == ["prepare", "published reject"]
    assert (await service.call("play_status", play_sid=child_sid))["status"] == "success"
    # the same answer again, through the parent: idempotent; a different one: a conflict
    again = await service.call("play_resume", play_sid=parent["sid"], resume_id=pending["id"], payload="reject")
    assert again["play_sid"] == child_sid
    with pytest.raises(RpcError) as info:
        await service.call("play_resume", play_sid=parent["sid"], resume_id=pending["id"], payload="accept")
    assert info.value.code == -32003


async def test_retry_from_the_failed_step_reuses_finished_steps(service: Service, root: Path) -> None:
    marker = root / "fixed"
    wf = await service.push(
        """
        import os
        from hero_tracing import flow

        def effect(text):
            with open("effects.txt", "a") as f:
                f.write(text + "\\n")

        @flow
        def expensive():
            effect("expensive")
            return 42

        @flow
        def fragile(marker: str):
            if not os.path.exists(marker):
                raise flow.Failed("the upstream API is down")
            return "fine"

        @flow(name="retrying")
        def main(marker: str):
            return {"value": expensive(), "status": fragile(marker=marker)}
        """,
        name="retrying",
    )
    failed = await service.run(wf, marker=str(marker))
    assert failed["status"] == "failed"
    assert "upstream API is down" in failed["error_message"]
    marker.write_text("")
    fresh = await service.call("play_wait", play_sid=await service.call("play_retry", play_sid=failed["sid"]))
    assert fresh["status"] == "success"
    assert _effects(service, fresh["sid"]) == ["expensive"]
    reused_sid = await service.call("play_retry", play_sid=failed["sid"], reuse_steps=True)
    reused = await service.call("play_wait", play_sid=reused_sid)
    assert reused["status"] == "success"
    assert reused["output_data"] == {"value": 42, "status": "fine"}
    assert _effects(service, reused["sid"]) == []  # expensive() replayed from the failed play
    err = await _error(service, "play_retry", play_sid="play_nope")
    assert err.code == -32001


async def test_cancel_a_paused_play(service: Service) -> None:
    wf = await service.push(APPROVAL, name="approval")
    play = await service.run(wf, n=0)
    cancelled = await service.call("play_cancel", play_sid=play["sid"])
    assert cancelled["status"] == "cancelled"
    assert cancelled["pending_resumes"] == []  # an ended play asks nothing any more
    assert await service.call("play_pending_resumes", play_sid=play["sid"]) == []
    err = await _error(service, "play_resume", play_sid=play["sid"], resume_id="Ship it?", payload=True)
    assert err.code == -32002


async def test_plays_left_running_are_recovered_with_steps_replayed_then_bounded(root: Path) -> None:
    """Each service stop leaves the play running; each start re-runs it, replaying finished
    steps; after three runs the play fails saying why."""
    config = make_config(root)
    source = """
        import time
        from hero_tracing import flow

        @flow
        def once():
            with open("effects.txt", "a") as f:
                f.write("once\\n")
            return 1

        @flow(name="slow")
        def main():
            once()
            time.sleep(60)
    """
    play_sid = ""
    for attempt in range(1, 4):
        async with trio.open_nursery() as nursery:
            await nursery.start(serve, config)
            async with AsyncClient(config.rpc_socket) as client:
                svc = Service(config, client)
                if not play_sid:
                    wf = await svc.push(source, name="slow")
                    play_sid = await svc.call("play_start", workflow_sid=wf["sid"])
                with trio.fail_after(20):
                    while True:
                        play = await svc.call("play_status", play_sid=play_sid)
                        spans = await svc.call("play_spans", play_sid=play_sid)
                        if play["attempts"] == attempt and any(s["name"] == "once" and s["end_ms"] for s in spans):
                            break
                        await trio.sleep(0.05)
            nursery.cancel_scope.cancel()  # the service stops; the play stays "running"
    assert (config.play_workdir(play_sid) / "effects.txt").read_text() == "once\n"
    async with trio.open_nursery() as nursery:
        await nursery.start(serve, config)
        async with AsyncClient(config.rpc_socket) as client:
            play = await client.call("play_wait", {"play_sid": play_sid, "timeout_ms": 20000})
        nursery.cancel_scope.cancel()
    assert play["status"] == "failed"
    assert "gave up after 3 attempts" in play["error_message"]


async def test_cancelling_a_parent_cancels_its_paused_child(service: Service) -> None:
    await service.push(CHILD, name="reviewer")
    parent_wf = await service.push(PARENT, name="publisher")
    parent = await service.run(parent_wf, spawn=True)
    assert parent["status"] == "awaiting_resume", parent["error_message"]
    (child_sid,) = parent["child_play_sids"]
    assert (await service.call("play_cancel", play_sid=parent["sid"]))["status"] == "cancelled"
    assert (await service.call("play_status", play_sid=child_sid))["status"] == "cancelled"
