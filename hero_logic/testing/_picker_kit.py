"""The version picker conformance kit: one battery of checks every picker plugin must pass.

Run it from a test of your picker::

    def test_my_picker_conforms():
        check_version_picker(lambda: MyPicker.from_config(None))

``make_picker`` returns a picker (a fresh one or not: ``pick`` must not keep state between
calls). Each check states one guarantee of the slot (see
:class:`hero_logic.kernel.VersionPicker`) in its docstring; a failure raises AssertionError
with a note naming the check. The checks use three versions benchmarked on the same presets:
``fast_wrong`` (fast, cheap, 20 % accurate), ``slow_cheap`` (slow, cheapest, 90 %) and
``fast_right`` (fast, pricier, 100 %), plus ``new`` with no benchmark.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hero_logic.kernel import (
    Benchmark,
    BenchmarkStatus,
    PickResult,
    PickWeights,
    VersionCandidate,
    VersionPicker,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["PICKER_CHECKS", "check_version_picker", "sample_candidates"]

_PRESETS = ["ex_a", "ex_b"]


def _candidate(
    sid: str, created_at: int, *, accuracy: float, ms: float, usd: float, current: bool = False
) -> VersionCandidate:
    benchmark = Benchmark(
        sid=f"bench_{sid}",
        workflow_sid="wf_kit",
        version_sid=sid,
        status=BenchmarkStatus.DONE,
        example_sids=list(_PRESETS),
        num_runs=4,
        completed_runs=4,
        success_rate=1.0,
        accuracy=accuracy,
        accuracy_basis="expected_output",
        avg_duration_ms=ms,
        p50_duration_ms=round(ms),
        min_duration_ms=round(ms),
        max_duration_ms=round(ms),
        avg_cost_usd=usd,
        created_at=created_at,
    )
    return VersionCandidate(
        version_sid=sid,
        version_label=sid,
        created_at=created_at,
        is_current=current,
        benchmark=benchmark,
    )


def sample_candidates() -> list[VersionCandidate]:
    """Four versions: ``fast_wrong``, ``slow_cheap``, ``fast_right`` (current) and ``new`` (unscored)."""
    return [
        _candidate("fast_wrong", 1, accuracy=0.2, ms=10, usd=0.001),
        _candidate("slow_cheap", 2, accuracy=0.9, ms=1000, usd=0.0001),
        _candidate("fast_right", 3, accuracy=1.0, ms=12, usd=0.01, current=True),
        VersionCandidate(version_sid="new", version_label="new", created_at=4),
    ]


def _pick(
    picker: VersionPicker,
    weights: PickWeights,
    candidates: Sequence[VersionCandidate] | None = None,
    current: str = "fast_right",
) -> PickResult:
    result = picker.pick(
        sample_candidates() if candidates is None else candidates,
        weights,
        current_version_sid=current,
    )
    if not isinstance(result, PickResult):
        msg = f"pick returned {result!r}, not a PickResult"
        raise AssertionError(msg)
    return result


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


def check_is_a_version_picker(picker: VersionPicker) -> None:
    """The plugin fills the slot: it has a ``name`` and a ``pick`` method."""
    _expect(isinstance(picker, VersionPicker), f"{picker!r} does not provide name and pick()")
    _expect(
        isinstance(picker.name, str) and bool(picker.name),
        f"picker name {picker.name!r} is not a non-empty string",
    )


def check_result_shape(picker: VersionPicker) -> None:
    """The result names a candidate, has a confidence in 0..1, a reasoning, and a score for every version."""
    result = _pick(picker, PickWeights(cost=1, speed=1, accuracy=1))
    sids = [c.version_sid for c in sample_candidates()]
    _expect(result.version_sid in sids, f"picked {result.version_sid!r}, which is not a candidate")
    _expect(0.0 <= result.confidence <= 1.0, f"confidence {result.confidence} is outside 0..1")
    _expect(
        isinstance(result.reasoning, str) and bool(result.reasoning.strip()),
        "the reasoning is empty",
    )
    _expect(
        sorted(s.version_sid for s in result.scores) == sorted(sids),
        f"scores cover {[s.version_sid for s in result.scores]}, not every version {sids}",
    )
    (unscored,) = [s for s in result.scores if s.version_sid == "new"]
    _expect(
        unscored.status == "unscored" and unscored.score is None,
        f"the version without benchmark is scored: {unscored!r}",
    )


def check_accuracy_weight_picks_the_most_accurate(picker: VersionPicker) -> None:
    """With only accuracy weighted, the most accurate version wins."""
    result = _pick(picker, PickWeights(accuracy=1))
    _expect(
        result.version_sid == "fast_right",
        f"accuracy only: picked {result.version_sid}, not fast_right",
    )


def check_speed_weight_picks_the_fastest(picker: VersionPicker) -> None:
    """With only speed weighted, the fastest version wins."""
    result = _pick(picker, PickWeights(speed=1))
    _expect(
        result.version_sid == "fast_wrong",
        f"speed only: picked {result.version_sid}, not fast_wrong",
    )


def check_cost_weight_picks_the_cheapest(picker: VersionPicker) -> None:
    """With only cost weighted, the cheapest version wins."""
    result = _pick(picker, PickWeights(cost=1))
    _expect(
        result.version_sid == "slow_cheap",
        f"cost only: picked {result.version_sid}, not slow_cheap",
    )


def check_floor_drops_inaccurate_versions(picker: VersionPicker) -> None:
    """A version under ``min_accuracy`` is never picked, whatever the weights."""
    result = _pick(picker, PickWeights(speed=1, min_accuracy=0.5))
    _expect(
        result.version_sid != "fast_wrong",
        "picked fast_wrong although it is under the accuracy floor",
    )
    (dropped,) = [s for s in result.scores if s.version_sid == "fast_wrong"]
    _expect(dropped.status == "below_floor", f"fast_wrong is {dropped.status!r}, not below_floor")
    result = _pick(picker, PickWeights(cost=1, min_accuracy=0.95))
    _expect(
        result.version_sid == "fast_right",
        f"floor 95 %: picked {result.version_sid}, the only version over it is fast_right",
    )


def check_no_benchmark_keeps_the_current_version(picker: VersionPicker) -> None:
    """With no benchmark at all, the current version is returned with confidence 0 and a reason."""
    bare = [
        VersionCandidate(
            version_sid=c.version_sid,
            version_label=c.version_label,
            created_at=c.created_at,
            is_current=c.is_current,
        )
        for c in sample_candidates()
    ]
    result = _pick(picker, PickWeights(accuracy=1), bare, current="slow_cheap")
    _expect(
        result.version_sid == "slow_cheap",
        f"no benchmark: picked {result.version_sid}, not the current version",
    )
    _expect(result.confidence == 0.0, f"no benchmark: confidence is {result.confidence}, not 0")
    _expect(
        "benchmark" in result.reasoning.lower(),
        f"the reasoning does not say there is no benchmark: {result.reasoning!r}",
    )


def check_nothing_over_the_floor_keeps_the_current_version(picker: VersionPicker) -> None:
    """When no version reaches the floor, the current version is returned with confidence 0."""
    result = _pick(
        picker,
        PickWeights(accuracy=1, min_accuracy=1.0),
        sample_candidates()[:2],
        current="fast_wrong",
    )
    _expect(
        result.version_sid == "fast_wrong",
        f"nothing over the floor: picked {result.version_sid}, not the current version",
    )
    _expect(
        result.confidence == 0.0,
        f"nothing over the floor: confidence is {result.confidence}, not 0",
    )


def check_confidence_follows_the_margin(picker: VersionPicker) -> None:
    """Two near-identical versions give a lower confidence than a clear winner."""
    close = [
        _candidate("a", 1, accuracy=0.95, ms=100, usd=0.01),
        _candidate("b", 2, accuracy=0.96, ms=100, usd=0.01, current=True),
    ]
    clear = [
        _candidate("a", 1, accuracy=0.1, ms=100, usd=0.01),
        _candidate("b", 2, accuracy=1.0, ms=100, usd=0.01, current=True),
    ]
    near = _pick(picker, PickWeights(accuracy=1), close, current="b")
    far = _pick(picker, PickWeights(accuracy=1), clear, current="b")
    _expect(
        near.confidence < far.confidence,
        f"confidence {near.confidence} for a close call is not below {far.confidence} for a clear one",
    )


def check_pick_is_deterministic(picker: VersionPicker) -> None:
    """The same input gives the same result."""
    weights = PickWeights(cost=0.2, speed=0.3, accuracy=0.5)
    _expect(_pick(picker, weights) == _pick(picker, weights), "two picks of the same input differ")


PICKER_CHECKS: tuple[Callable[[VersionPicker], None], ...] = (
    check_is_a_version_picker,
    check_result_shape,
    check_accuracy_weight_picks_the_most_accurate,
    check_speed_weight_picks_the_fastest,
    check_cost_weight_picks_the_cheapest,
    check_floor_drops_inaccurate_versions,
    check_no_benchmark_keeps_the_current_version,
    check_nothing_over_the_floor_keeps_the_current_version,
    check_confidence_follows_the_margin,
    check_pick_is_deterministic,
)
"""Every check, in the order :func:`check_version_picker` runs them."""


def check_version_picker(make_picker: Callable[[], VersionPicker]) -> None:
    """Run every check of :data:`PICKER_CHECKS` against a picker from ``make_picker``.

    Raises AssertionError (with a note naming the check and its guarantee) at the first failure.
    """
    for check in PICKER_CHECKS:
        try:
            check(make_picker())
        except AssertionError as exc:
            guarantee = (check.__doc__ or "").strip().splitlines()[0]
            exc.add_note(f"version picker check {check.__name__} failed: {guarantee}")
            raise
