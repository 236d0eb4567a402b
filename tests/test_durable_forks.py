"""Strict replay, forks and data in the trace, through a real service.

A resumed play re-runs its source; a re-run that departs from what the play recorded fails as
``nondeterministic`` naming the first difference, so an answer is never silently dropped
(unless the entry flow says ``@flow(strict_replay=False)``). ``play_fork`` starts a play that
reuses everything an ended play finished before a chosen step, on the same or a fixed
version. Step spans carry their arguments and output. Each flow appends to a file in its
play's workdir, so a test counts how often a body really ran.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from hero_logic.rpc import RpcError

if TYPE_CHECKING:
    from .conftest import Service

EFFECT = """
import pathlib
from hero_tracing import ask_user, flow

def effect(text):
    with open("effects.txt", "a") as f:
        f.write(text + "\\n")
"""


def _effects(service: Service, play_sid: str) -> list[str]:
    path = service.config.play_workdir(play_sid) / "effects.txt"
    return path.read_text().splitlines() if path.exists() else []


async def _answer(service: Service, play: dict[str, Any], payload: Any) -> dict[str, Any]:
    """Answer the play's one open pause; the play once it settles again."""
    assert play["status"] == "awaiting_resume", play["error_message"]
    (pending,) = play["pending_resumes"]
    await service.call("play_resume", play_sid=play["sid"], resume_id=pending["id"], payload=payload)
    settled: dict[str, Any] = await service.call("play_wait", play_sid=play["sid"], timeout_ms=30000)
    return settled


async def _error(service: Service, method: str, **params: Any) -> RpcError:
    with pytest.raises(RpcError) as info:
        await service.call(method, **params)
    return info.value


ROWS = (
    EFFECT
    + """
@flow
def enrich(row: int):
    effect(f"enrich {row}")
    return row * 10

@flow(name="rows"{options})
def main():
    source = pathlib.Path("rows.txt")
    rows = [int(r) for r in (source.read_text() if source.exists() else "1 2 3").split()]  # not a step
    total = sum(enrich(row=r) for r in rows)
    return {"total": total, "publish": ask_user.confirm("Publish?")}
"""
)


async def _rows_play(service: Service, options: str = "") -> dict[str, Any]:
    """A play of ROWS paused at its question after enriching rows 1, 2, 3; then the rows it
    reads (outside any step) change to 1, 5, 3."""
    wf = await service.push(ROWS.replace("{options}", options), name="rows")
    play = await service.run(wf)
    assert play["status"] == "awaiting_resume", play["error_message"]
    (service.config.play_workdir(play["sid"]) / "rows.txt").write_text("1 5 3")
    return play


async def test_a_nondeterministic_flow_fails_naming_the_differing_step(service: Service) -> None:
    """The re-run reads other rows: it fails before running enrich(row=5), naming the recorded
    call, its position and what it called instead, and nobody is asked again."""
    play = await _rows_play(service)
    ended = await _answer(service, play, True)
    assert ended["status"] == "failed"
    error = ended["error_message"]
    assert error.startswith("nondeterministic: this run departed from the play's recorded run at call 2 inside 'rows'")
    assert "the recorded run called enrich(row=2) there" in error
    assert "this run called enrich(row=5) instead" in error
    assert "@flow(strict_replay=False)" in error  # and the other fix, in the same sentence
    assert "--- stderr ---" not in error
    assert _effects(service, play["sid"]) == ["enrich 1", "enrich 2", "enrich 3"]  # enrich 5 never ran
    assert ended["pending_resumes"] == []
    spans = await service.call("play_spans", play_sid=play["sid"])
    (root,) = [s for s in spans if s["kind"] == "flow_root"]
    assert root["status"] == "failed"
    assert root["error"] == error


async def test_strict_replay_false_lets_a_rerun_depart(service: Service) -> None:
    """Opted out: the new call runs and the answer still counts (its pause kept its id)."""
    play = await _rows_play(service, options=", strict_replay=False")
    ended = await _answer(service, play, True)
    assert ended["status"] == "success", ended["error_message"]
    assert ended["output_data"] == {"total": 90, "publish": True}
    assert _effects(service, play["sid"]) == ["enrich 1", "enrich 2", "enrich 3", "enrich 5"]


async def test_an_answer_to_a_pause_the_rerun_no_longer_reaches_is_never_dropped(service: Service) -> None:
    """Approved "gpt-d"; the re-run picks "gpt-c" and reaches another question: the play fails
    naming both, instead of asking the human again."""
    wf = await service.push(
        EFFECT
        + """
@flow(name="pick")
def main():
    model = pathlib.Path("model.txt").read_text() if pathlib.Path("model.txt").exists() else "gpt-d"
    if not ask_user.confirm(f"Use {model}?"):
        return {"model": None}
    effect(f"calling {model}")
    return {"model": model}
""",
        name="pick",
    )
    play = await service.run(wf)
    (service.config.play_workdir(play["sid"]) / "model.txt").write_text("gpt-c")
    ended = await _answer(service, play, True)
    assert ended["status"] == "failed"
    assert "the recorded run asked pause 'Use gpt-d?' there" in ended["error_message"]
    assert "this run asked pause 'Use gpt-c?' instead" in ended["error_message"]
    assert _effects(service, play["sid"]) == []
    assert await service.call("play_pending_resumes", play_sid=play["sid"]) == []


async def test_a_step_span_shows_its_input_and_output_and_the_play_its_input_data(service: Service) -> None:
    wf = await service.push(
        EFFECT
        + """
@flow
def enrich(row: int, label: str = "x"):
    return {"row": row, "label": label.upper()}

@flow(name="traced")
def main(rows: int):
    return [enrich(row=r, label=f"r{r}") for r in range(rows)] + [enrich(row=9, label="z" * 5000)]
""",
        name="traced",
    )
    play = await service.run(wf, rows=2)
    assert play["status"] == "success", play["error_message"]
    assert play["input_data"] == {"rows": 2}
    spans = await service.call("play_spans", play_sid=play["sid"])
    enriched = [s for s in spans if s["name"] == "enrich"]
    assert [s["input"] for s in enriched[:2]] == [{"row": 0, "label": "r0"}, {"row": 1, "label": "r1"}]
    assert [s["output"] for s in enriched[:2]] == [{"row": 0, "label": "R0"}, {"row": 1, "label": "R1"}]
    big = enriched[2]
    assert isinstance(big["input"], str)  # over 4 KiB: cut JSON, as a string
    assert big["input"].startswith('{"label":"zzz')
    assert len(big["input"].encode()) <= 4096
    assert isinstance(big["output"], str)
    assert big["output"].startswith('{"row":9,"label":"ZZZ')
    (root,) = [s for s in spans if s["kind"] == "flow_root"]
    assert root["input"] == {"rows": 2}
    assert root["output"].startswith('[{"row":0,"label":"R0"}')  # the play's output, cut to 4 KiB


BATCH = (
    EFFECT
    + """
@flow
def enrich(row: int):
    effect(f"enrich {row}")
    if row == 139 and BROKEN:
        raise ValueError(f"row {row} has no customer id")
    return {"row": row, "score": row % 7}

@flow(name="batch")
def main(rows: int = 200):
    go = ask_user.confirm("Start the batch?")
    scores = [enrich(row=r)["score"] for r in range(1, rows + 1)]
    return {"go": go, "total": sum(scores)}
"""
)


async def test_a_fork_onto_a_fixed_version_reuses_138_of_139_steps(service: Service) -> None:
    """Row 139 of 200 fails. The fix is pushed as a new version; a fork from the failed step
    replays rows 1-138 and the answer given before them, and runs rows 139-200 on the fix."""
    wf = await service.push(BATCH.replace("BROKEN", "True"), name="batch")
    play = await service.run(wf)
    failed = await _answer(service, play, True)
    assert failed["status"] == "failed"
    assert "row 139 has no customer id" in failed["error_message"]
    spans = await service.call("play_spans", play_sid=play["sid"])
    (row139,) = [s for s in spans if s["name"] == "enrich" and s["input"] == {"row": 139}]
    assert row139["status"] == "failed"
    assert len([s for s in spans if s["name"] == "enrich"]) == 139

    fixed = await service.call(
        "workflow_create_version", workflow_sid=wf["sid"], python_source=BATCH.replace("BROKEN", "False")
    )
    fork_sid = await service.call(
        "play_fork", play_sid=play["sid"], from_span_id=row139["span_id"], version_sid=fixed["sid"]
    )
    fork = await service.call("play_wait", play_sid=fork_sid, timeout_ms=60000)
    assert fork["status"] == "success", fork["error_message"]  # no question asked again
    assert fork["workflow_version_sid"] == fixed["sid"]
    assert fork["fork_of"] == play["sid"]
    assert fork["output_data"] == {"go": True, "total": sum(r % 7 for r in range(1, 201))}
    assert _effects(service, fork_sid) == [f"enrich {r}" for r in range(139, 201)]
    forked = await service.call("play_spans", play_sid=fork_sid)
    enriched = [s for s in forked if s["name"] == "enrich"]
    reused = [s for s in enriched if s["status"] == "replayed"]
    assert len(reused) == 138
    assert [s["input"]["row"] for s in reused] == list(range(1, 139))
    assert {s["tags"]["reused_from"] for s in reused} == {play["sid"]}
    assert reused[0]["output"] == {"row": 1, "score": 1}  # recorded again as the fork's own
    assert [s["status"] for s in enriched[138:]] == ["ok"] * 62
    (asked,) = [s for s in forked if s["name"] == "pause:Start the batch?"]
    assert asked["status"] == "replayed"


async def test_a_fork_runs_the_chosen_step_and_everything_after_it_afresh(service: Service) -> None:
    """Forking a play that succeeded, on its own version, from its 3rd step with other inputs:
    steps 1 and 2 (same arguments) are reused, the rest run; an answer asked after the fork
    point is asked again."""
    wf = await service.push(
        EFFECT
        + """
@flow
def fetch(page: int):
    effect(f"fetch {page}")
    return page

@flow(name="pages")
def main(pages: int, label: str = ""):
    fetched = [fetch(page=p) for p in range(pages)]
    ok = ask_user.confirm(f"Keep {len(fetched)} pages?")
    return {"pages": fetched, "ok": ok, "label": label}
""",
        name="pages",
    )
    play = await _answer(service, await service.run(wf, pages=4), True)
    assert play["status"] == "success"
    spans = await service.call("play_spans", play_sid=play["sid"])
    third = [s for s in spans if s["name"] == "fetch"][2]
    fork_sid = await service.call(
        "play_fork", play_sid=play["sid"], from_span_id=third["span_id"], input_data={"pages": 5, "label": "again"}
    )
    fork = await service.call("play_wait", play_sid=fork_sid, timeout_ms=30000)
    assert fork["input_data"] == {"pages": 5, "label": "again"}
    assert fork["status"] == "awaiting_resume"  # asked after the fork point: asked again
    assert _effects(service, fork_sid) == ["fetch 2", "fetch 3", "fetch 4"]
    fork = await _answer(service, fork, False)
    assert fork["output_data"] == {"pages": [0, 1, 2, 3, 4], "ok": False, "label": "again"}
    assert _effects(service, fork_sid) == ["fetch 2", "fetch 3", "fetch 4"]  # the resume replayed all


async def test_play_fork_refuses_what_it_cannot_fork_naming_the_field(service: Service) -> None:
    wf = await service.push(
        EFFECT
        + """
@flow
def step_a():
    with flow.step("block"):
        return 1

@flow(name="forkable")
def main(n: int = 1):
    step_a()
    return ask_user.confirm("Done?")
""",
        name="forkable",
    )
    play = await service.run(wf)
    spans = await service.call("play_spans", play_sid=play["sid"])
    step_a = next(s for s in spans if s["name"] == "step_a")
    err = await _error(service, "play_fork", play_sid=play["sid"], from_span_id=step_a["span_id"])
    assert err.code == -32002  # still waiting for an answer
    assert "has not ended" in err.message
    await service.call("play_cancel", play_sid=play["sid"])

    err = await _error(service, "play_fork", play_sid=play["sid"], from_span_id="0123456789abcdef0123")
    assert err.code == -32602
    assert err.data[0]["field"] == "from_span_id"
    assert f"play {play['sid']} has no span '0123456789abcdef0123'" in err.data[0]["error"]

    elsewhere = await service.push("from hero_tracing import flow\n\n@flow\ndef main():\n    return 1\n", name="elsewhere")
    other = await service.run(elsewhere)
    other_root = next(s for s in await service.call("play_spans", play_sid=other["sid"]) if s["kind"] == "flow_root")
    err = await _error(service, "play_fork", play_sid=play["sid"], from_span_id=other_root["span_id"])
    assert err.code == -32602  # a span of another play
    assert err.data[0]["field"] == "from_span_id"
    assert "pass the span_id of a step from play_spans" in err.data[0]["error"]

    block = next(s for s in spans if s["name"] == "block")
    err = await _error(service, "play_fork", play_sid=play["sid"], from_span_id=block["span_id"])
    assert err.code == -32602
    assert err.data[0]["field"] == "from_span_id"
    assert "is not a step" in err.data[0]["error"]
    assert f"'step_a' ({step_a['span_id']})" in err.data[0]["error"]  # the step to fork from instead

    err = await _error(service, "play_fork", play_sid=play["sid"], from_span_id="")
    assert err.data[0]["field"] == "from_span_id"
    err = await _error(service, "play_fork", play_sid="play_nope", from_span_id=step_a["span_id"])
    assert err.code == -32001
    err = await _error(
        service, "play_fork", play_sid=play["sid"], from_span_id=step_a["span_id"], version_sid=elsewhere["current_version_sid"]
    )
    assert err.data[0]["field"] == "version_sid"
    err = await _error(
        service, "play_fork", play_sid=play["sid"], from_span_id=step_a["span_id"], input_data={"n": "one"}
    )
    assert err.code == -32602
    assert err.data[0]["field"] == "input_data.n"


CHILD = (
    EFFECT
    + """
@flow(name="child_pick")
def main():
    chosen = pathlib.Path("model.txt").read_text() if pathlib.Path("model.txt").exists() else "a"
    return {"ok": ask_user.confirm(f"Use {chosen}?")}
"""
)


async def test_a_child_play_that_departs_fails_as_nondeterministic_and_its_parent_with_it(service: Service) -> None:
    """The child play is held to its own record; its failure is the parent's step's failure."""
    await service.push(CHILD, name="child_pick")
    parent_wf = await service.push(
        EFFECT
        + """
@flow(name="parent")
def main():
    return flow.invoke("child_pick", spawn=True)
""",
        name="parent",
    )
    play = await service.run(parent_wf)
    assert play["status"] == "awaiting_resume", play["error_message"]
    (pending,) = await service.call("play_pending_resumes", play_sid=play["sid"])
    child_sid = pending["play_sid"]
    (service.config.play_workdir(child_sid) / "model.txt").write_text("b")
    await service.call("play_resume", play_sid=child_sid, resume_id=pending["id"], payload=True)
    child = await service.call("play_wait", play_sid=child_sid, timeout_ms=30000)
    assert child["status"] == "failed"
    assert child["error_message"].startswith("nondeterministic: ")
    assert "pause 'Use a?'" in child["error_message"]
    ended = await service.call("play_wait", play_sid=play["sid"], timeout_ms=30000)
    assert ended["status"] == "failed"
    assert "nondeterministic" in ended["error_message"]
    # A span of the child is no span of the parent: the error says which play has it.
    child_root = next(s for s in await service.call("play_spans", play_sid=child_sid) if s["kind"] == "flow_root")
    err = await _error(service, "play_fork", play_sid=play["sid"], from_span_id=child_root["span_id"])
    assert err.data[0]["field"] == "from_span_id"
    assert f"it is a span of play {child_sid}: fork that play instead" in err.data[0]["error"]


async def test_span_push_cannot_forge_the_record_a_rerun_is_held_to(service: Service) -> None:
    """A call's span_start is part of the play's record (strict replay, forks): the flow's own."""
    wf = await service.push(EFFECT + "\n@flow(name='asks')\ndef main():\n    return ask_user.confirm('Go?')\n", name="asks")
    play = await service.run(wf)
    for event in (
        {"type": "span_start", "span_id": "f1", "parent_id": "", "name": "fake", "kind": "step", "start_ms": 1,
         "step_key": "0" * 40, "input": {}},
        {"type": "span_start", "span_id": "f2", "parent_id": "", "name": "pause:Go?", "kind": "other", "start_ms": 1,
         "shape_key": "1" * 32, "tags": {"resume_id": "r"}},
    ):
        err = await _error(service, "span_push", play_sid=play["sid"], event_json=event)
        assert err.code == -32602
        assert "part of the record a re-run is held to" in err.data[0]["error"]
    ended = await _answer(service, play, True)
    assert ended["status"] == "success", ended["error_message"]
