"""Strict replay and forks in the SDK: real flow processes, replay files built as the service
builds them (``recorded_run`` over the events of the runs before), against a fake span server.

A re-run that departs from its recorded run fails as ``nondeterministic`` naming the first
difference; parallel branches may reach their calls in any order; a fork reuses steps and
answers of another version by shape key. The whole service is in test_durable_semantics.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from hero_logic.kernel._recorded import record_before, recorded_run

from .test_sdk_play import Run, body_runs, counter_source
from .test_sdk_play import play as play  # the fixture: run a flow process to its end

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def replay_after(runs: list[Run], answers: dict[str, Any] | None = None) -> dict[str, Any]:
    """The replay file the service writes after ``runs``, with ``answers`` (by pause name)
    given to the pauses they asked."""
    events = [e for run in runs for e in run.events]
    steps = {e["step_key"]: e["output"] for e in events if e["type"] == "step_output"}
    asked = {e["name"]: e["resume_id"] for e in events if e["type"] == "pause"}
    resumes = {asked[name]: payload for name, payload in (answers or {}).items()}
    replay: dict[str, Any] = {"steps": steps, "resumes": resumes}
    recorded = recorded_run(events, resumes)
    if recorded is not None:
        replay["recorded"] = recorded
    return replay


def failure(run: Run) -> str:
    """What the play's error would say: the root span's last error."""
    (root,) = [s for s in run.spans() if s.get("kind") == "flow_root"]
    return str(root.get("error", ""))


ROWS = """
from hero_tracing import ask_user, flow

@flow
def enrich(row):
    bump(f"enrich{row}")
    return row * 10

@flow{options}
def main():
    rows = [int(r) for r in ROWS_FILE.read_text().split()]
    total = sum(enrich(row=r) for r in rows)
    ok = ask_user.confirm("Publish?")
    return {"total": total, "ok": ok}
"""


def rows_source(tmp_path: Path, options: str = "") -> str:
    rows = tmp_path / "rows.txt"
    rows.write_text("1 2 3")
    return counter_source(tmp_path, f"ROWS_FILE = pathlib.Path({str(rows)!r})\n" + ROWS.replace("{options}", options))


def test_a_rerun_calling_another_step_where_the_record_has_one_fails_before_running_it(
    play: Callable[..., Run], tmp_path: Path
) -> None:
    """The recorded step's name, arguments and position, and what this run called instead."""
    source = rows_source(tmp_path)
    first = play(source)
    assert first.returncode == 75, first.stderr
    (tmp_path / "rows.txt").write_text("1 5 3")  # the data changed between the runs
    second = play(source, replay=replay_after([first], {"Publish?": True}))
    assert second.returncode == 1
    error = failure(second)
    assert error.startswith("nondeterministic: ")
    assert "at call 2 inside 'main'" in error
    assert "the recorded run called enrich(row=2) there" in error
    assert "this run called enrich(row=5) instead" in error
    assert "@flow(strict_replay=False)" in error  # the fix
    assert body_runs(tmp_path) == ["enrich1", "enrich2", "enrich3"]  # enrich(5) never ran
    assert "flow failed: nondeterministic" in second.stderr
    assert second.of_type("output") == []


def test_strict_replay_false_lets_a_rerun_depart(play: Callable[..., Run], tmp_path: Path) -> None:
    """The entry flow opts out: the new call runs, the answer still matches by id."""
    source = rows_source(tmp_path, "(strict_replay=False)")
    first = play(source)
    (tmp_path / "rows.txt").write_text("1 5 3")
    second = play(source, replay=replay_after([first], {"Publish?": True}))
    assert second.returncode == 0, second.stderr
    assert second.output == {"total": 90, "ok": True}
    assert body_runs(tmp_path) == ["enrich1", "enrich2", "enrich3", "enrich5"]


APPROVAL = """
import pathlib
from hero_tracing import ask_user, flow

@flow{options}
def main():
    model = pathlib.Path("model.txt").read_text()   # read outside any step: not recorded
    if ask_user.confirm(f"Use {model}?"):
        return {"model": model}
    return {"model": None}
"""


def test_an_answer_is_never_dropped_for_a_pause_the_rerun_does_not_reach(
    play: Callable[..., Run], tmp_path: Path
) -> None:
    """The human approved gpt-d; the re-run picks gpt-c and reaches another pause: it fails,
    naming both pauses, instead of asking again."""
    (tmp_path / "model.txt").write_text("gpt-d")
    source = APPROVAL.replace("{options}", "")
    first = play(source)
    assert first.returncode == 75
    (tmp_path / "model.txt").write_text("gpt-c")
    second = play(source, replay=replay_after([first], {"Use gpt-d?": True}))
    assert second.returncode == 1
    error = failure(second)
    assert "the recorded run asked pause 'Use gpt-d?' there" in error, error
    assert "this run asked pause 'Use gpt-c?' instead" in error
    assert second.of_type("pause") == []  # nobody is asked again

    relaxed = APPROVAL.replace("{options}", "(strict_replay=False)")
    third = play(relaxed, replay=replay_after([first], {"Use gpt-d?": True}))
    assert third.returncode == 75  # opted out: the new question is asked
    assert [p["name"] for p in third.of_type("pause")] == ["Use gpt-c?"]


def test_a_rerun_that_returns_before_reaching_a_recorded_step_fails(
    play: Callable[..., Run], tmp_path: Path
) -> None:
    source = counter_source(
        tmp_path,
        """
        import pathlib
        from hero_tracing import ask_user, flow

        @flow
        def charge(amount):
            bump("charge")
            return "charged"

        @flow
        def main():
            if pathlib.Path("stop.txt").exists():
                return "stopped early"
            charge(amount=5)
            return ask_user.text("Note?")
        """,
    )
    first = play(source)
    assert first.returncode == 75
    (tmp_path / "stop.txt").write_text("")
    second = play(source, replay=replay_after([first], {"Note?": "n"}))
    assert second.returncode == 1
    error = failure(second)
    assert "this run returned without reaching the step charge(amount=5)" in error, error
    assert "call 1 inside 'main'" in error
    assert "which the recorded run finished" in error
    assert second.of_type("output") == []
    assert [e["type"] for e in second.of_type("step_output")] == []  # not even the root's


def test_a_rerun_that_fails_before_a_recorded_answer_fails_as_nondeterministic(
    play: Callable[..., Run], tmp_path: Path
) -> None:
    source = """
        import pathlib
        from hero_tracing import ask_user, flow

        @flow
        def main():
            name = ask_user.text("Name?")
            if pathlib.Path("broken.txt").exists():
                raise ValueError("the config is broken")
            return {"name": name, "again": ask_user.text("Again?")}
        """
    first = play(source)
    second = play(source, replay=replay_after([first], {"Name?": "ann"}))
    assert second.returncode == 75  # the same pause answered, a new one asked: no departure
    (tmp_path / "broken.txt").write_text("")
    third = play(source, replay=replay_after([first, second], {"Name?": "ann", "Again?": "bo"}))
    assert third.returncode == 1
    error = failure(third)
    assert error.startswith("nondeterministic: this run failed (ValueError: the config is broken)")
    assert "without reaching the answer to pause 'Again?'" in error


def test_a_run_that_pauses_again_at_the_same_place_is_no_departure(
    play: Callable[..., Run], tmp_path: Path
) -> None:
    """A recovery before anyone answered: the same calls, the same pause asked again."""
    source = counter_source(
        tmp_path,
        """
        from hero_tracing import ask_user, flow

        @flow
        def fetch():
            bump("fetch")
            return 1

        @flow
        def main():
            fetch()
            return ask_user.confirm("Go?")
        """,
    )
    first = play(source)
    second = play(source, replay=replay_after([first]))
    assert second.returncode == 75, failure(second)
    assert [p["name"] for p in second.of_type("pause")] == ["Go?"]
    assert body_runs(tmp_path) == ["fetch"]


def test_the_children_of_a_replayed_step_need_not_be_reached(
    play: Callable[..., Run], tmp_path: Path
) -> None:
    source = counter_source(
        tmp_path,
        """
        from hero_tracing import ask_user, flow

        @flow
        def leaf(i):
            bump(f"leaf{i}")
            return i

        @flow
        def outer():
            return [leaf(i=i) for i in range(3)]

        @flow
        def main():
            outer()
            return ask_user.confirm("Go?")
        """,
    )
    first = play(source)
    second = play(source, replay=replay_after([first], {"Go?": True}))
    assert second.returncode == 0, failure(second)
    assert second.named("leaf") == []
    assert body_runs(tmp_path) == ["leaf0", "leaf1", "leaf2"]


PARALLEL_THREADS = """
import pathlib, threading, time
from concurrent.futures import ThreadPoolExecutor
from hero_tracing import ask_user, flow

@flow
def work(branch, i):
    bump(f"work{branch}.{i}")
    return i

def branch(b):
    # The order of the branches' calls differs between runs: a recorded run with branch 0
    # first, a re-run with branch 1 first.
    if pathlib.Path("slow0.txt").exists() == (b == 0):
        time.sleep(0.3)
    work(branch=b, i=0)
    answer = ask_user.confirm(f"Branch {b}?")
    work(branch=b, i=1)
    return answer

@flow
def main():
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(branch, b) for b in (0, 1)]
        return [f.result() for f in futures]  # a pause in one: the other still runs to its own
"""


def test_parallel_threads_may_reach_their_calls_in_another_order(
    play: Callable[..., Run], tmp_path: Path
) -> None:
    source = counter_source(tmp_path, PARALLEL_THREADS)
    first = play(source)
    assert first.returncode == 75, first.stderr
    assert sorted(p["name"] for p in first.of_type("pause")) == ["Branch 0?", "Branch 1?"]
    assert [e.get("parallel") for e in first.events if e.get("parallel")] == [True]  # marked once
    (tmp_path / "slow0.txt").write_text("")  # now branch 1 runs first
    second = play(source, replay=replay_after([first], {"Branch 0?": True, "Branch 1?": False}))
    assert second.returncode == 0, failure(second)
    assert second.output == [True, False]


PARALLEL_TASKS = """
import asyncio, pathlib
from hero_tracing import ask_user, flow

@flow
async def work(branch, i):
    bump(f"work{branch}.{i}")
    await asyncio.sleep(0)
    return i

async def branch(b):
    if pathlib.Path("slow0.txt").exists() == (b == 0):
        await asyncio.sleep(0.2)
    await work(branch=b, i=0)
    answer = ask_user.confirm(f"Branch {b}?")
    await work(branch=b, i=1)
    return answer

@flow
async def main():
    return await asyncio.gather(branch(0), branch(1))
"""


def test_parallel_asyncio_tasks_may_reach_their_calls_in_another_order(
    play: Callable[..., Run], tmp_path: Path
) -> None:
    source = counter_source(tmp_path, PARALLEL_TASKS)
    first = play(source)
    assert first.returncode == 75, first.stderr
    (tmp_path / "slow0.txt").write_text("")
    second = play(source, replay=replay_after([first], {"Branch 0?": True, "Branch 1?": False}))
    assert second.returncode == 0, failure(second)
    assert second.output == [True, False]


def test_a_step_span_carries_its_input_and_a_big_output_a_preview(
    play: Callable[..., Run], tmp_path: Path
) -> None:
    """Arguments as JSON on span_start, cut to 4 KiB as a string when longer; an output over
    4 KiB also goes as a cut preview beside the full output; each outcome has its shape key."""
    run = play(
        """
        from hero_tracing import flow

        @flow
        def echo(text, n=1):
            return text * n

        @flow
        def main():
            echo(text="hi", n=2)
            echo(text="x" * 5000)
            echo(text="y", n=5000)
            return 1
        """
    )
    assert run.returncode == 0, run.stderr
    small, big_in, big_out = run.named("echo")
    assert small["input"] == {"text": "hi", "n": 2}
    assert isinstance(big_in["input"], str)
    assert big_in["input"].startswith('{"text":"xxx')
    assert "[truncated" in big_in["input"]
    assert len(big_in["input"].encode()) <= 4096
    outputs = {e["span_id"]: e for e in run.of_type("step_output")}
    assert "output_preview" not in outputs[small["span_id"]]
    assert outputs[big_out["span_id"]]["output"] == "y" * 5000
    assert len(outputs[big_out["span_id"]]["output_preview"].encode()) <= 4096
    assert all(len(e["shape_key"]) == 32 for e in outputs.values())
    assert run.span("main")["input"] == {}


FORKED = """
from hero_tracing import ask_user, flow

@flow
def enrich(row):
    bump(f"enrich{row}")
    if row == 3 and BROKEN:
        raise ValueError("row 3 is malformed")
    return row * 10

@flow
def main(rows):
    approved = ask_user.confirm("Start?")
    return {"approved": approved, "total": sum(enrich(row=r) for r in range(1, rows + 1))}
"""


def test_a_fork_onto_another_version_reuses_steps_and_answers_before_the_fork_point(
    play: Callable[..., Run], tmp_path: Path
) -> None:
    broken = counter_source(tmp_path, "BROKEN = True\n" + FORKED)
    first = play(broken, inputs={"rows": 4})
    second = play(broken, inputs={"rows": 4}, replay=replay_after([first], {"Start?": True}))
    assert second.returncode == 1
    assert body_runs(tmp_path) == ["enrich1", "enrich2", "enrich3"]
    events = first.events + second.events
    failed = [s for s in second.named("enrich") if s["status"] == "failed"]
    (point,) = failed
    before = record_before(events, point["span_id"])
    assert before.found
    assert len(before.steps) == 2
    assert before.failures == {}
    answers = {shape: True for shape in before.answered}
    reuse = {"play_sid": "play-old", "steps": before.steps, "failures": {}, "resumes": answers}

    fixed = counter_source(tmp_path, "BROKEN = False\n" + FORKED)
    fork = play(fixed, inputs={"rows": 4}, version="v2", replay={"reuse": reuse})
    assert fork.returncode == 0, fork.stderr
    assert fork.output == {"approved": True, "total": 100}
    assert body_runs(tmp_path)[3:] == ["enrich3", "enrich4"]  # enrich 1 and 2 reused
    reused = [s for s in fork.named("enrich") if s["status"] == "replayed"]
    assert [s["input"] for s in reused] == [{"row": 1}, {"row": 2}]
    assert {s["tags"]["reused_from"] for s in reused} == {"play-old"}
    (asked,) = [s for s in fork.spans() if s["name"] == "pause:Start?"]
    assert asked["status"] == "replayed"
    assert asked["tags"]["reused_from"] == "play-old"
    # Recorded again as the fork's own, under its own step keys:
    own = {e["span_id"]: e for e in fork.of_type("step_output")}
    assert [own[s["span_id"]]["output"] for s in reused] == [10, 20]
    assert not {own[s["span_id"]]["step_key"] for s in reused} & {s["step_key"] for s in first.named("enrich")}


def test_calls_inside_a_flow_step_block_count_under_the_call_the_block_sits_in(
    play: Callable[..., Run], tmp_path: Path
) -> None:
    """A ``flow.step`` block is no step: the calls in it take positions under the enclosing
    ``@flow`` call, in this run as in the record the service builds from span parents."""
    source = counter_source(
        tmp_path,
        """
        import pathlib
        from hero_tracing import ask_user, flow

        @flow
        def fetch(page):
            bump(f"fetch{page}")
            return page

        @flow
        def main():
            fetch(page=0)
            with flow.step("batch"):
                with flow.span("inner"):
                    pages = [1, 2] if not pathlib.Path("other.txt").exists() else [1, 3]
                    for p in pages:
                        fetch(page=p)
            return ask_user.confirm("Done?")
        """,
    )
    first = play(source)
    second = play(source, replay=replay_after([first], {"Done?": True}))
    assert second.returncode == 0, failure(second)
    (tmp_path / "other.txt").write_text("")
    third = play(source, replay=replay_after([first], {"Done?": True}))
    assert third.returncode == 1
    assert "at call 3 inside 'main': the recorded run called fetch(page=2) there" in failure(third)


def test_strict_replay_must_be_true_or_false_at_save_and_at_import() -> None:
    from hero_tracing import flow

    from hero_logic.sdk import FlowSourceError, read_flow_signature

    read_flow_signature("from hero_tracing import flow\n\n@flow(strict_replay=False)\ndef main():\n    return 1\n")
    with pytest.raises(FlowSourceError, match="strict_replay must be True or False, got 'no'"):
        read_flow_signature("from hero_tracing import flow\n\n@flow(strict_replay='no')\ndef main():\n    return 1\n")
    with pytest.raises(TypeError, match="@flow strict_replay must be True or False, got 1"):
        flow(strict_replay=1)  # type: ignore[arg-type]
