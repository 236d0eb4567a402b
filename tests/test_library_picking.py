"""Version picking: weights over each version's latest benchmark, an accuracy floor, and play_start(pick=...).

Three versions of one flow are benchmarked on the same presets: ``fast_wrong`` (no delay,
cheap, right on 1 preset of 3), ``slow_cheap`` (0.4 s, cheapest, always right) and
``fast_right`` (0.1 s, dearest, always right); a fourth version is never benchmarked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from hero_logic.plugins.version_picker import WeightedPicker
from hero_logic.rpc import RpcError
from hero_logic.testing import check_version_picker

if TYPE_CHECKING:
    from .conftest import Service

PARITY = """
import time
from hero_tracing import flow

@flow(name="parity", inputs={"n": {"type": "integer", "required": True}}, outputs={"parity": "string"})
def main(n):
    time.sleep(DELAY)
    flow.current_span.tag(cost_usd=COST)
    return {"parity": ANSWER}
"""
RIGHT = '"even" if n % 2 == 0 else "odd"'


def _version(delay: float, cost: float, answer: str) -> str:
    return PARITY.replace("DELAY", str(delay)).replace("COST", str(cost)).replace("ANSWER", answer)


async def _error(service: Service, method: str, **params: Any) -> RpcError:
    with pytest.raises(RpcError) as info:
        await service.call(method, **params)
    return info.value


@pytest.fixture
async def three(service: Service) -> dict[str, Any]:
    """The workflow and its versions by name, each benchmarked on the same three presets."""
    wf = await service.push(_version(0, 0.001, '"odd"'), name="parity")
    versions = {"fast_wrong": wf["current_version_sid"]}
    for label, source in [("slow_cheap", _version(0.4, 0.0001, RIGHT)), ("fast_right", _version(0.1, 0.01, RIGHT))]:
        made = await service.call(
            "workflow_create_version", workflow_sid=wf["sid"], python_source=source, version_label=label, make_current=False
        )
        versions[label] = made["sid"]
    versions["unbenchmarked"] = (
        await service.call("workflow_create_version", workflow_sid=wf["sid"], python_source=_version(0, 0, RIGHT), make_current=False)
    )["sid"]
    for n in (1, 2, 4):
        await service.call(
            "example_upsert", workflow_sid=wf["sid"], name=f"n={n}", input_values={"n": n},
            expected_output={"parity": "even" if n % 2 == 0 else "odd"},
        )
    sids = [await service.call("benchmark_run", version_sid=versions[label]) for label in ("fast_wrong", "slow_cheap", "fast_right")]
    for sid in sids:
        assert (await service.call("benchmark_wait", sid=sid, timeout_ms=60000))["status"] == "done"
    return {"wf": wf, "versions": versions}


async def _pick(service: Service, three: dict[str, Any], **weights: float) -> tuple[str, dict[str, Any]]:
    result: dict[str, Any] = await service.call("pick_version", workflow_sid=three["wf"]["sid"], **weights)
    by_sid = {sid: label for label, sid in three["versions"].items()}
    return by_sid[result["version_sid"]], result


async def test_the_pick_follows_the_weights_and_the_floor(service: Service, three: dict[str, Any]) -> None:
    picked, result = await _pick(service, three, cost_weight=1, speed_weight=0, accuracy_weight=0)
    assert picked == "slow_cheap"  # cheapest, whatever its accuracy or speed
    assert 0 < result["confidence"] <= 1

    picked, _ = await _pick(service, three, cost_weight=0, speed_weight=1, accuracy_weight=0)
    assert picked == "fast_wrong"  # fastest

    picked, result = await _pick(service, three, cost_weight=0, speed_weight=1, accuracy_weight=0, min_accuracy=0.9)
    assert picked == "fast_right"  # the fastest of those over the floor
    statuses = {s["version_sid"]: s["status"] for s in result["scores"]}
    assert statuses[three["versions"]["fast_wrong"]] == "below_floor"
    assert statuses[three["versions"]["slow_cheap"]] == "scored"
    assert statuses[three["versions"]["fast_right"]] == "picked"
    assert statuses[three["versions"]["unbenchmarked"]] == "unscored"

    picked, _ = await _pick(service, three, cost_weight=1, speed_weight=0, accuracy_weight=0, min_accuracy=0.5)
    assert picked == "slow_cheap"

    picked, result = await _pick(service, three, cost_weight=0, speed_weight=1, accuracy_weight=2)
    assert picked == "fast_right"  # as accurate as the slow one and faster; far more accurate than the fastest
    assert result["reasoning"].startswith("Picked ")
    assert "under the floor" not in result["reasoning"]


async def test_scores_are_normalised_per_version_and_explained(service: Service, three: dict[str, Any]) -> None:
    _, result = await _pick(service, three, cost_weight=1, speed_weight=1, accuracy_weight=1)
    scores = {s["version_sid"]: s for s in result["scores"]}
    assert len(scores) == 4  # every version, the unbenchmarked one included
    wrong, cheap, right = (scores[three["versions"][k]] for k in ("fast_wrong", "slow_cheap", "fast_right"))
    assert wrong["accuracy"] == pytest.approx(1 / 3)
    assert cheap["accuracy"] == right["accuracy"] == 1.0
    assert cheap["cost_score"] == 1.0  # the cheapest
    assert wrong["speed_score"] == 1.0  # the fastest
    assert right["cost_score"] < wrong["cost_score"] < 1.0
    assert cheap["speed_score"] < right["speed_score"] < 1.0
    for s in (wrong, cheap, right):
        parts = (s["cost_score"] + s["speed_score"] + s["accuracy_score"]) / 3
        assert s["score"] == pytest.approx(parts, abs=1e-5)
    unscored = scores[three["versions"]["unbenchmarked"]]
    assert unscored["score"] is None
    assert "benchmark_run" in unscored["note"]
    assert "unscored" in result["reasoning"]
    ranked = sorted((wrong, cheap, right), key=lambda s: -s["score"])
    assert result["confidence"] == pytest.approx(ranked[0]["score"] - ranked[1]["score"], abs=1e-3)


async def test_play_start_lets_the_picker_choose_the_version(service: Service, three: dict[str, Any]) -> None:
    wf = three["wf"]
    sid = await service.call("play_start", workflow_sid=wf["sid"], input_data={"n": 2}, pick={"cost_weight": 1})
    play = await service.call("play_wait", play_sid=sid, timeout_ms=20000)
    assert play["workflow_version_sid"] == three["versions"]["slow_cheap"]
    assert play["output_data"] == {"parity": "even"}
    example = (await service.call("example_list", workflow_sid=wf["sid"]))[0]
    sid = await service.call(
        "play_start", workflow_sid=wf["sid"], example_sid=example["sid"],
        pick={"speed_weight": 1, "accuracy_weight": 1, "min_accuracy": 0.9},
    )
    play = await service.call("play_wait", play_sid=sid, timeout_ms=20000)
    assert play["workflow_version_sid"] == three["versions"]["fast_right"]


async def test_without_any_benchmark_the_current_version_is_kept_with_confidence_zero(service: Service) -> None:
    wf = await service.push(_version(0, 0, RIGHT), name="parity")
    v2 = await service.call("workflow_create_version", workflow_sid=wf["sid"], python_source=_version(0, 0, RIGHT), make_current=False)
    result = await service.call("pick_version", workflow_sid=wf["sid"], cost_weight=1, speed_weight=1, accuracy_weight=1)
    assert result["version_sid"] == wf["current_version_sid"]
    assert result["confidence"] == 0
    assert "No version has a finished benchmark" in result["reasoning"]
    assert {s["version_sid"]: s["status"] for s in result["scores"]} == {
        wf["current_version_sid"]: "unscored", v2["sid"]: "unscored"
    }
    sid = await service.call("play_start", workflow_sid=wf["sid"], input_data={"n": 3}, pick={"accuracy_weight": 1})
    assert (await service.call("play_wait", play_sid=sid, timeout_ms=20000))["workflow_version_sid"] == wf["current_version_sid"]


async def test_only_finished_benchmarks_count(service: Service) -> None:
    wf = await service.push(_version(0, 0, RIGHT), name="parity")
    await service.call("example_upsert", workflow_sid=wf["sid"], name="slow", input_values={"n": 1})
    slow = await service.call(
        "workflow_create_version", workflow_sid=wf["sid"], python_source=_version(5, 0, RIGHT), make_current=False
    )
    running = await service.call("benchmark_run", version_sid=slow["sid"])
    result = await service.call("pick_version", workflow_sid=wf["sid"], cost_weight=0, speed_weight=0, accuracy_weight=1)
    assert result["confidence"] == 0  # a running benchmark is not a result yet
    assert all(s["status"] == "unscored" for s in result["scores"])
    play = (await service.call("benchmark_fetch", sid=running))["runs"]
    if play:
        # The run's sid is recorded just before its play is created, and the play may already
        # have ended: either way there is nothing to cancel.
        try:
            await service.call("play_cancel", play_sid=play[0])
        except RpcError as exc:
            if exc.code not in (-32001, -32002):
                raise
    await service.call("benchmark_wait", sid=running, timeout_ms=20000)


async def test_bad_weights_are_refused(service: Service) -> None:
    wf = await service.push(_version(0, 0, RIGHT), name="parity")
    pick = {"workflow_sid": wf["sid"], "cost_weight": 1.0, "speed_weight": 1.0, "accuracy_weight": 1.0}
    for change, field in [
        ({"cost_weight": -1}, "cost_weight"),
        ({"speed_weight": -0.5}, "speed_weight"),
        ({"cost_weight": 0, "speed_weight": 0, "accuracy_weight": 0}, "accuracy_weight"),
        ({"min_accuracy": 1.5}, "min_accuracy"),
        ({"min_accuracy": -0.1}, "min_accuracy"),
        ({"accuracy_weight": "high"}, "accuracy_weight"),
    ]:
        err = await _error(service, "pick_version", **{**pick, **change})
        assert err.code == -32602, change
        assert err.data[0]["field"] == field, change
    err = await _error(service, "pick_version", **{**pick, "cost_weight": 0, "speed_weight": 0, "accuracy_weight": 0})
    assert "all 0" in err.data[0]["error"]
    assert (await _error(service, "pick_version", **{**pick, "workflow_sid": "wf_nope"})).code == -32001
    err = await _error(service, "pick_version", workflow_sid=wf["sid"], cost_weight=1)
    assert {p["field"] for p in err.data} == {"speed_weight", "accuracy_weight"}  # required params

    for bad, field in [
        ({"cost_weight": -1}, "pick.cost_weight"),
        ({}, "pick.accuracy_weight"),
        ({"speed": 1}, "pick.speed"),
        ({"accuracy_weight": True}, "pick.accuracy_weight"),
    ]:
        err = await _error(service, "play_start", workflow_sid=wf["sid"], input_data={"n": 1}, pick=bad)
        assert err.code == -32602, bad
        assert err.data[0]["field"] == field, bad
    err = await _error(
        service, "play_start", workflow_sid=wf["sid"], input_data={"n": 1}, pick={"cost_weight": 1},
        version_sid=wf["current_version_sid"],
    )
    assert err.data[0]["field"] == "pick"
    empty = await service.call("workflow_create", name="empty")
    err = await _error(service, "pick_version", workflow_sid=empty["sid"], cost_weight=1, speed_weight=0, accuracy_weight=0)
    assert err.code == -32002


def test_the_weighted_picker_passes_the_conformance_kit() -> None:
    check_version_picker(WeightedPicker.from_config)


def test_the_kit_catches_a_picker_that_ignores_the_floor() -> None:
    class Reckless(WeightedPicker):
        def pick(self, candidates: Any, weights: Any, *, current_version_sid: str) -> Any:
            from hero_logic.kernel import PickWeights

            loose = PickWeights(weights.cost, weights.speed, weights.accuracy, 0.0)
            return super().pick(candidates, loose, current_version_sid=current_version_sid)

    with pytest.raises(AssertionError) as info:
        check_version_picker(Reckless)
    assert any("check_floor_drops_inaccurate_versions" in note for note in info.value.__notes__)
