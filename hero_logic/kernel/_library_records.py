"""The library's records: presets (Example), benchmarks, and what the version picker sees.

They are frozen attrs values like the rest of the model, here because a version picker plugin
reads them; the service keeps them in the store (``hero_logic.service._catalog`` has the
tables).
"""

from __future__ import annotations

import enum
import math
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import InvalidParams

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "Benchmark",
    "BenchmarkStatus",
    "Example",
    "PickResult",
    "PickWeights",
    "VersionCandidate",
    "VersionScore",
    "candidates_note",
    "pick_weights",
]

JSON = Any


# -- records -------------------------------------------------------------------------------------


@attrs.frozen
class Example:
    """A preset: named input values for a workflow, with what a good run should return.

    ``version_sid`` pins the preset to a version (``""``: the workflow's current one);
    ``expected_output`` (None: not given) is what benchmarks compare the output with;
    ``prefill_resumes`` answers the flow's pauses (by resume id or pause name), so the
    preset runs unattended.
    """

    sid: str
    workflow_sid: str
    name: str
    version_sid: str = ""
    description: str = ""
    input_values: dict[str, JSON] = attrs.Factory(dict)
    expected_output: JSON = None
    prefill_resumes: dict[str, JSON] = attrs.Factory(dict)
    created_at: int = 0
    updated_at: int = 0


class BenchmarkStatus(enum.StrEnum):
    """``running`` while its plays run, then ``done``; ``failed`` if it could not finish."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@attrs.frozen
class Benchmark:
    """Presets run against one version, and what the runs add up to.

    ``num_runs`` is the number of plays planned (presets times repeats), ``completed_runs`` how
    many have ended; ``runs`` are their play sids in run order. ``success_rate`` and
    ``accuracy`` are in 0..1; ``accuracy_basis`` says where accuracy came from
    (``expected_output``, ``score``, both as ``mixed``, or ``success_rate`` when no run had
    either). Durations are of the successful runs (of all runs if none succeeded).
    """

    sid: str
    workflow_sid: str
    version_sid: str
    status: BenchmarkStatus = BenchmarkStatus.RUNNING
    example_sids: list[str] = attrs.Factory(list)
    repeats: int = 1
    num_runs: int = 0
    completed_runs: int = 0
    runs: list[str] = attrs.Factory(list)
    success_rate: float = 0.0
    accuracy: float = 0.0
    accuracy_basis: str = ""
    avg_duration_ms: float = 0.0
    p50_duration_ms: int = 0
    min_duration_ms: int = 0
    max_duration_ms: int = 0
    avg_cost_usd: float = 0.0
    run_notes: list[str] = attrs.Factory(list)
    """One line per run that failed or returned an unexpected output: index, preset, reason."""
    error_message: str = ""
    created_at: int = 0
    completed_at: int | None = None




@attrs.frozen
class PickWeights:
    """How much cost, speed and accuracy matter (each ≥ 0, not all 0), and the accuracy floor."""

    cost: float = 0.0
    speed: float = 0.0
    accuracy: float = 0.0
    min_accuracy: float = 0.0


@attrs.frozen
class VersionCandidate:
    """A version of a workflow as the picker sees it: its latest finished benchmark, if any."""

    version_sid: str
    version_label: str = ""
    created_at: int = 0
    is_current: bool = False
    benchmark: Benchmark | None = None


@attrs.frozen
class VersionScore:
    """One version's standing in a pick.

    ``status``: ``picked``, ``scored`` (eligible, not picked), ``below_floor`` or
    ``unscored`` (no finished benchmark). The ``*_score`` parts and ``score`` are in 0..1;
    they are None for versions that were not scored.
    """

    version_sid: str
    version_label: str = ""
    status: str = "unscored"
    score: float | None = None
    accuracy: float | None = None
    avg_duration_ms: float | None = None
    avg_cost_usd: float | None = None
    accuracy_score: float | None = None
    speed_score: float | None = None
    cost_score: float | None = None
    benchmark_sid: str = ""
    note: str = ""


@attrs.frozen
class PickResult:
    """What a version picker chose, how sure it is (0..1), why, and how every version scored."""

    version_sid: str
    confidence: float
    reasoning: str
    scores: list[VersionScore] = attrs.Factory(list)
    picker: str = ""


# -- checks --------------------------------------------------------------------------------------


def pick_weights(
    cost_weight: float,
    speed_weight: float,
    accuracy_weight: float,
    min_accuracy: float = 0.0,
    *,
    prefix: str = "",
    context: str,
) -> PickWeights:
    """The weights, checked: each finite and ≥ 0, not all 0; ``min_accuracy`` in 0..1."""
    problems: list[dict[str, str]] = []
    named = {"cost_weight": cost_weight, "speed_weight": speed_weight, "accuracy_weight": accuracy_weight}
    for name, value in named.items():
        if not math.isfinite(value) or value < 0:
            problems.append({"field": prefix + name, "error": f"must be a number ≥ 0, got {value}"})
    if not problems and sum(named.values()) == 0:
        problems.append({
            "field": prefix + "accuracy_weight",
            "error": "cost_weight, speed_weight and accuracy_weight are all 0: give at least one a "
            "positive weight (e.g. accuracy_weight=1)",
        })
    if not math.isfinite(min_accuracy) or not 0 <= min_accuracy <= 1:
        problems.append({"field": prefix + "min_accuracy", "error": f"must be between 0 and 1, got {min_accuracy}"})
    if problems:
        raise InvalidParams.fields(problems, context=context)
    return PickWeights(cost=cost_weight, speed=speed_weight, accuracy=accuracy_weight, min_accuracy=min_accuracy)


def candidates_note(candidates: Iterable[VersionCandidate]) -> str:
    """A warning when the scored versions were benchmarked on different preset sets."""
    sets = {
        c.version_label or c.version_sid: frozenset(c.benchmark.example_sids)
        for c in candidates
        if c.benchmark is not None
    }
    if len(set(sets.values())) <= 1:
        return ""
    return (
        "note: these versions were benchmarked on different presets, so their numbers are not "
        "strictly comparable; benchmark each on the same presets (benchmark_run with example_sids)"
    )
