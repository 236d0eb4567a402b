"""Benchmarks: presets run as plays in the background against one version, and what they add up to."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

import pytest
import trio

from hero_logic.rpc import AsyncClient, RpcError
from hero_logic.server import serve

from .conftest import Service, make_config

if TYPE_CHECKING:
    from pathlib import Path

SQUARE = """
import time
from hero_tracing import flow

@flow
def think(n: int):
    flow.current_span.tag(cost_usd=0.002)
    return n * n

@flow(name="square", inputs={"n": {"type": "integer", "required": True}}, outputs={"square": "integer"})
def main(n):
    if n < 0:
        raise flow.Failed("negative numbers are not supported")
    time.sleep(0.01 * n)
    flow.current_span.tag(cost_usd=0.001)
    return {"square": think(n=n) if n != 3 else 10}  # wrong for 3
"""

APPROVE = """
from hero_tracing import ask_user, flow

@flow(name="approve", inputs={"amount": {"type": "number", "required": True}}, outputs={"ok": "boolean"})
def main(amount):
    return {"ok": ask_user.confirm(f"Pay {amount}?", name="pay")}
"""

SELF_SCORED = """
from hero_tracing import flow

@flow(name="graded", inputs={"quality": {"type": "number", "required": True}})
def main(quality):
    flow.current_span.tag(score=quality)
    return {"quality": quality}
"""


async def _error(service: Service, method: str, **params: Any) -> RpcError:
    with pytest.raises(RpcError) as info:
        await service.call(method, **params)
    return info.value


async def _preset(service: Service, wf: dict[str, Any], name: str, **fields: Any) -> dict[str, Any]:
    example: dict[str, Any] = await service.call("example_upsert", workflow_sid=wf["sid"], name=name, **fields)
    return example


async def _bench(service: Service, version_sid: str, **params: Any) -> dict[str, Any]:
    sid = await service.call("benchmark_run", version_sid=version_sid, **params)
    benchmark: dict[str, Any] = await service.call("benchmark_wait", sid=sid, timeout_ms=60000)
    assert benchmark["status"] == "done", benchmark
    return benchmark


async def test_benchmark_runs_every_preset_and_measures_success_accuracy_latency_cost(service: Service) -> None:
    wf = await service.push(SQUARE, name="square")
    for n in (1, 2, 3):
        await _preset(service, wf, f"n={n}", input_values={"n": n}, expected_output={"square": n * n})
    await _preset(service, wf, "negative", input_values={"n": -1}, expected_output={"square": 1})
    sid = await service.call("benchmark_run", version_sid=wf["current_version_sid"], repeats=2)
    assert sid.startswith("bench_")
    running = await service.call("benchmark_fetch", sid=sid)
    assert running["status"] == "running"  # the call returned before the plays ran
    assert running["num_runs"] == 8
    done = await service.call("benchmark_wait", sid=sid, timeout_ms=60000)
    assert done["status"] == "done", done
    assert done["completed_runs"] == 8
    assert done["success_rate"] == 0.75  # the negative preset fails, twice
    assert done["accuracy"] == 0.5  # n=1 and n=2 right; n=3 wrong; the failure scores 0
    assert done["accuracy_basis"] == "expected_output"
    assert done["completed_at"] >= done["created_at"]

    plays = [await service.call("play_status", play_sid=p) for p in done["runs"]]
    assert len(plays) == 8
    assert [p["name"] for p in plays] == [f"benchmark:{sid}:{i}" for i in range(8)]
    assert all(p["workflow_version_sid"] == wf["current_version_sid"] for p in plays)
    assert [p["input_data"]["n"] for p in plays] == [1, 2, 3, -1] * 2  # presets by name ("n=1" < "negative"), round robin
    ok = [p["duration_ms"] for p in plays if p["status"] == "success"]
    assert done["min_duration_ms"] == min(ok)
    assert done["max_duration_ms"] == max(ok)
    assert done["p50_duration_ms"] == round(statistics.median(ok))
    assert done["avg_duration_ms"] == pytest.approx(sum(ok) / len(ok), abs=0.1)
    # successful runs cost 0.001 (root) + 0.002 (step); a run of n=3 skips the step; failures tag nothing
    assert done["avg_cost_usd"] == pytest.approx((0.003 * 4 + 0.001 * 2) / 8)
    notes = "\n".join(done["run_notes"])
    assert "negative numbers are not supported" in notes
    assert "'n=3'" in notes
    assert "differs from the expected output" in notes
    assert "key 'square': expected 9, got 10" in notes  # which key, and how


async def test_benchmark_of_a_subset_of_presets(service: Service) -> None:
    wf = await service.push(SQUARE, name="square")
    one = await _preset(service, wf, "one", input_values={"n": 1}, expected_output={"square": 1})
    await _preset(service, wf, "two", input_values={"n": 2})
    done = await _bench(service, wf["current_version_sid"], example_sids=[one["sid"], one["sid"]])
    assert done["example_sids"] == [one["sid"]]  # duplicates collapse
    assert done["num_runs"] == 1
    assert done["accuracy"] == 1.0


async def test_benchmark_prefills_pauses_from_the_preset_and_fails_runs_that_would_wait(service: Service) -> None:
    wf = await service.push(APPROVE, name="approve")
    await _preset(service, wf, "small", input_values={"amount": 5}, prefill_resumes={"pay": True}, expected_output={"ok": True})
    await _preset(service, wf, "unanswered", input_values={"amount": 500})
    with trio.fail_after(30):
        done = await _bench(service, wf["current_version_sid"])
    assert done["success_rate"] == 0.5
    (note,) = done["run_notes"]
    assert "'pay'" in note
    assert "prefill_resumes" in note
    waiting = await service.call("play_status", play_sid=done["runs"][1])
    assert waiting["status"] == "cancelled"  # nobody is left waiting for an answer
    assert done["accuracy"] == 0.5  # the answered one is right, the failure scores 0


async def test_accuracy_from_the_score_a_flow_reports(service: Service) -> None:
    wf = await service.push(SELF_SCORED, name="graded")
    await _preset(service, wf, "good", input_values={"quality": 0.9})
    await _preset(service, wf, "poor", input_values={"quality": 0.3})
    await _preset(service, wf, "overflowing", input_values={"quality": 7})
    done = await _bench(service, wf["current_version_sid"])
    assert done["accuracy_basis"] == "score"
    assert done["accuracy"] == pytest.approx((0.9 + 0.3 + 1.0) / 3)  # scores are clamped to 0..1
    assert done["success_rate"] == 1.0


async def test_accuracy_is_the_success_rate_without_expected_outputs_or_scores(service: Service) -> None:
    wf = await service.push(SQUARE, name="square")
    await _preset(service, wf, "ok", input_values={"n": 1})
    await _preset(service, wf, "fails", input_values={"n": -2})
    done = await _bench(service, wf["current_version_sid"])
    assert done["accuracy_basis"] == "success_rate"
    assert done["accuracy"] == done["success_rate"] == 0.5


async def test_benchmark_lists_and_latest(service: Service) -> None:
    wf = await service.push(SQUARE, name="square")
    v1 = wf["current_version_sid"]
    v2 = (await service.call("workflow_create_version", workflow_sid=wf["sid"], python_source=SQUARE))["sid"]
    await _preset(service, wf, "one", input_values={"n": 1})
    err = await _error(service, "benchmark_latest_for_version", version_sid=v1)
    assert err.code == -32001
    assert "benchmark_run" in err.message
    first = await _bench(service, v1)
    second = await _bench(service, v1)
    third = await _bench(service, v2)
    assert [b["sid"] for b in await service.call("benchmark_list_for_version", version_sid=v1)] == [second["sid"], first["sid"]]
    assert [b["sid"] for b in await service.call("benchmark_list_for_workflow", workflow_sid=wf["sid"])] == [
        third["sid"], second["sid"], first["sid"]
    ]
    assert (await service.call("benchmark_latest_for_version", version_sid=v1))["sid"] == second["sid"]
    assert await service.call("benchmark_list_for_version", version_sid=v2) == [third]


async def test_benchmark_bad_inputs(service: Service) -> None:
    wf = await service.push(SQUARE, name="square")
    version = wf["current_version_sid"]
    err = await _error(service, "benchmark_run", version_sid=version)
    assert err.code == -32002  # no presets
    assert "example_upsert" in err.message
    assert (await _error(service, "benchmark_run", version_sid="ver_nope")).code == -32001
    assert (await _error(service, "benchmark_run", version_sid=version, example_sids=["ex_nope"])).code == -32001
    other = await service.push(SQUARE, name="other")
    foreign = await _preset(service, other, "x", input_values={"n": 1})
    err = await _error(service, "benchmark_run", version_sid=version, example_sids=[foreign["sid"]])
    assert err.code == -32602
    assert err.data[0]["field"] == "example_sids[0]"
    await _preset(service, wf, "x", input_values={"n": 1})
    for repeats in (0, -1, 101):
        err = await _error(service, "benchmark_run", version_sid=version, repeats=repeats)
        assert err.data[0]["field"] == "repeats"
    err = await _error(service, "benchmark_run", version_sid=version, repeats="3")
    assert err.code == -32602
    for method, params in [
        ("benchmark_fetch", {"sid": "bench_nope"}),
        ("benchmark_wait", {"sid": "bench_nope"}),
        ("benchmark_list_for_workflow", {"workflow_sid": "wf_nope"}),
        ("benchmark_list_for_version", {"version_sid": "ver_nope"}),
        ("benchmark_latest_for_version", {"version_sid": "ver_nope"}),
    ]:
        assert (await _error(service, method, **params)).code == -32001, method
    assert await service.call("benchmark_list_for_workflow", workflow_sid=wf["sid"]) == []


async def test_presets_that_no_longer_fit_the_version_are_refused_up_front(service: Service) -> None:
    wf = await service.push(SQUARE, name="square")
    ex = await _preset(service, wf, "one", input_values={"n": 1})
    v2 = await service.call(
        "workflow_create_version", workflow_sid=wf["sid"], make_current=False,
        python_source=SQUARE.replace('"n": {"type": "integer"', '"n": {"type": "string"'),
    )
    err = await _error(service, "benchmark_run", version_sid=v2["sid"])
    assert err.code == -32602
    assert "'one'" in err.data[0]["field"]
    assert ex["sid"] in err.data[0]["field"]
    assert "string" in err.data[0]["error"]


async def test_a_workflow_with_a_running_benchmark_cannot_be_deleted_and_its_benchmarks_go_with_it(service: Service) -> None:
    wf = await service.push(SQUARE, name="square")
    await _preset(service, wf, "slow", input_values={"n": 30})
    sid = await service.call("benchmark_run", version_sid=wf["current_version_sid"])
    err = await _error(service, "workflow_delete", sid=wf["sid"])
    assert err.code == -32002
    await service.call("benchmark_wait", sid=sid, timeout_ms=60000)
    assert await service.call("workflow_delete", sid=wf["sid"]) is True
    assert (await _error(service, "benchmark_fetch", sid=sid)).code == -32001


async def test_benchmark_wait_times_out_with_the_running_benchmark(service: Service) -> None:
    wf = await service.push(SQUARE, name="square")
    await _preset(service, wf, "slow", input_values={"n": 30})
    sid = await service.call("benchmark_run", version_sid=wf["current_version_sid"])
    still = await service.call("benchmark_wait", sid=sid, timeout_ms=50)
    assert still["status"] == "running"
    assert (await service.call("benchmark_wait", sid=sid, timeout_ms=60000))["status"] == "done"


async def test_a_benchmark_interrupted_by_a_restart_is_driven_on(root: Path) -> None:
    config = make_config(root)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve, config)
        async with AsyncClient(config.rpc_socket) as client:
            service = Service(config, client)
            wf = await service.push(SQUARE, name="square")
            for n in (20, 21, 22):
                await _preset(service, wf, f"n={n}", input_values={"n": n}, expected_output={"square": n * n})
            sid = await service.call("benchmark_run", version_sid=wf["current_version_sid"])
            with trio.fail_after(20):
                while not (await service.call("benchmark_fetch", sid=sid))["runs"]:
                    await trio.sleep(0.02)
            before = await service.call("benchmark_fetch", sid=sid)
            assert before["status"] == "running"
            assert before["completed_runs"] < 3
        nursery.cancel_scope.cancel()  # the service stops mid-benchmark
    async with trio.open_nursery() as nursery:
        await nursery.start(serve, config)
        async with AsyncClient(config.rpc_socket) as client:
            service = Service(config, client)
            done = await service.call("benchmark_wait", sid=sid, timeout_ms=60000)
            assert done["status"] == "done", done
            assert done["completed_runs"] == 3
            assert len(done["runs"]) == 3
            assert done["success_rate"] == 1.0
            assert done["accuracy"] == 1.0
        nursery.cancel_scope.cancel()
