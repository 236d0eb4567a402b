"""The library around the runtime: presets (Example), benchmarks, and what the version picker sees.

Records are frozen attrs values like the rest of the model; :class:`Library` is their typed
layer over the store, next to :class:`~hero_logic.kernel.Repo`:

==================  ==================================  =======================================
table               key                                 value
==================  ==================================  =======================================
``examples``        example sid                         Example
``wf_examples``     ``{workflow_sid}/{name}``           example sid (one preset per name)
``benchmarks``      benchmark sid                       Benchmark
``wf_benchmarks``   ``{workflow_sid}/{benchmark_sid}``  empty (benchmarks of a workflow)
``ver_benchmarks``  ``{version_sid}/{benchmark_sid}``   empty (benchmarks of a version)
``seeded``          workflow name                       the seed file it came from
==================  ==================================  =======================================

The arithmetic of a benchmark (:func:`run_accuracy`, :func:`summarise_runs`) and the checks
of presets and picker weights are pure functions, tested without a service.
"""

from __future__ import annotations

import enum
import math
import statistics
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import InvalidParams, NotFound, WrongState
from ._repo import _decode, _encode
from ._store_api import Delete, Put, Write
from ._validate import json_type_name, matches_type

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from ._model import FlowField
    from ._repo import Repo

__all__ = [
    "Benchmark",
    "BenchmarkStatus",
    "Example",
    "Library",
    "PickResult",
    "PickWeights",
    "RunOutcome",
    "VersionCandidate",
    "VersionScore",
    "candidates_note",
    "check_expected_output",
    "merge_under",
    "outputs_match",
    "pick_weights",
    "run_accuracy",
    "summarise_runs",
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
class RunOutcome:
    """One benchmark run, reduced to what the benchmark's numbers need."""

    success: bool
    duration_ms: int | None
    cost_usd: float = 0.0
    accuracy: float | None = None
    """None: the run gives no accuracy signal (no expected output, no score, not failed)."""
    basis: str = ""


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


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_expected_output(outputs: Sequence[FlowField], expected: Any, *, flow_name: str) -> None:
    """Raise InvalidParams naming each part of ``expected`` that breaks the declared outputs.

    With declared outputs, ``expected`` must be an object whose keys are declared outputs of
    the declared types (a subset is fine: only those are compared). A flow that declares no
    outputs accepts any JSON value.
    """
    if expected is None or not outputs:
        return
    declared = {f.name: f for f in outputs}
    if not isinstance(expected, dict):
        raise InvalidParams.fields(
            [{
                "field": "expected_output",
                "error": f"flow {flow_name!r} declares outputs ({', '.join(declared)}), so the "
                f"expected output is an object of them, got {_show(expected)} ({json_type_name(expected)})",
            }],
            context=f"expected output of flow {flow_name!r}",
        )
    problems: list[dict[str, str]] = []
    for name, value in expected.items():
        spec = declared.get(name)
        if spec is None:
            problems.append({
                "field": f"expected_output.{name}",
                "error": f"flow {flow_name!r} declares no output {name!r} (declared: {', '.join(sorted(declared))})",
            })
        elif not matches_type(value, spec.field_type):
            problems.append({
                "field": f"expected_output.{name}",
                "error": f"flow {flow_name!r} declares output {name!r} as {spec.field_type.value}, got "
                f"{_show(value)} ({json_type_name(value)}): expect a {spec.field_type.value}",
            })
    if problems:
        raise InvalidParams.fields(problems, context=f"expected output of flow {flow_name!r}")


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


# -- benchmark arithmetic ------------------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1 equals 1.0, but True is not 1 and "1" is not 1."""
    a_num = isinstance(a, int | float) and not isinstance(a, bool)
    b_num = isinstance(b, int | float) and not isinstance(b, bool)
    if a_num or b_num:
        return a_num and b_num and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def outputs_match(expected: Any, output: Any) -> bool:
    """True if ``output`` matches ``expected`` exactly.

    An object ``expected`` compares only its own keys (the declared outputs a preset pins);
    anything else must equal the whole output.
    """
    if isinstance(expected, dict) and expected:
        return isinstance(output, dict) and all(k in output and _same(output[k], v) for k, v in expected.items())
    return _same(expected, output)


def run_accuracy(*, success: bool, output: Any, expected: Any, score: Any) -> tuple[float | None, str]:
    """How right one run was, in 0..1, and on what basis.

    A preset with an expected output: 1 if the run succeeded with a matching output, else 0.
    Otherwise the ``score`` the flow tagged on its root span (a number, clamped to 0..1).
    A failed run scores 0. A successful run with neither gives no signal (None).
    """
    if expected is not None:
        return (1.0 if success and outputs_match(expected, output) else 0.0), "expected_output"
    if not success:
        return 0.0, "failed"
    if isinstance(score, int | float) and not isinstance(score, bool) and math.isfinite(score):
        return min(1.0, max(0.0, float(score))), "score"
    return None, ""


def summarise_runs(outcomes: Sequence[RunOutcome]) -> dict[str, Any]:
    """The Benchmark fields that ``outcomes`` add up to (for ``attrs.evolve``)."""
    if not outcomes:
        return {"success_rate": 0.0, "accuracy": 0.0, "accuracy_basis": ""}
    successes = [o for o in outcomes if o.success]
    success_rate = len(successes) / len(outcomes)
    bases = {o.basis for o in outcomes if o.basis in ("expected_output", "score")}
    if bases:
        signals = [o.accuracy for o in outcomes if o.accuracy is not None]
        accuracy = sum(signals) / len(signals)
        basis = bases.pop() if len(bases) == 1 else "mixed"
    else:
        accuracy, basis = success_rate, "success_rate"
    timed = [o.duration_ms for o in (successes or outcomes) if o.duration_ms is not None]
    fields: dict[str, Any] = {
        "success_rate": round(success_rate, 6),
        "accuracy": round(accuracy, 6),
        "accuracy_basis": basis,
        "avg_cost_usd": round(sum(o.cost_usd for o in outcomes) / len(outcomes), 10),
    }
    if timed:
        fields |= {
            "avg_duration_ms": round(sum(timed) / len(timed), 1),
            "p50_duration_ms": round(statistics.median(timed)),
            "min_duration_ms": min(timed),
            "max_duration_ms": max(timed),
        }
    return fields


# -- the typed layer over the store --------------------------------------------------------------


def _tail(key: str) -> str:
    return key.split("/", 1)[1]


@attrs.define(eq=False)
class Library:
    """Typed reads and write builders for presets, benchmarks and seeding marks."""

    repo: Repo

    # -- presets ---------------------------------------------------------------------------------

    @staticmethod
    def put_example(example: Example, *, old_name: str = "") -> list[Write]:
        """Writes that store ``example`` and its name index (dropping ``old_name`` on rename)."""
        writes: list[Write] = [
            Put("examples", example.sid, _encode(example)),
            Put("wf_examples", f"{example.workflow_sid}/{example.name}", example.sid.encode()),
        ]
        if old_name and old_name != example.name:
            writes.append(Delete("wf_examples", f"{example.workflow_sid}/{old_name}"))
        return writes

    @staticmethod
    def delete_example(example: Example) -> list[Write]:
        """Writes that remove ``example``."""
        return [Delete("examples", example.sid), Delete("wf_examples", f"{example.workflow_sid}/{example.name}")]

    async def get_example(self, sid: str) -> Example:
        """The preset ``sid``; NotFound names it otherwise."""
        raw = await self.repo.store.get("examples", sid) if sid else None
        if raw is None:
            msg = f"no example (preset) with sid {sid!r}: list a workflow's presets with example_list"
            raise NotFound(msg)
        return _decode(Example, raw)

    async def example_by_name(self, workflow_sid: str, name: str) -> Example | None:
        """The preset of ``workflow_sid`` called ``name``, if any."""
        raw = await self.repo.store.get("wf_examples", f"{workflow_sid}/{name}")
        return await self.get_example(raw.decode()) if raw is not None else None

    async def list_examples(self, workflow_sid: str) -> list[Example]:
        """The presets of a workflow, by name."""
        rows = await self.repo.store.scan("wf_examples", f"{workflow_sid}/")
        return [await self.get_example(raw.decode()) for _, raw in rows]

    # -- benchmarks ------------------------------------------------------------------------------

    @staticmethod
    def put_benchmark(benchmark: Benchmark, *, new: bool = False) -> list[Write]:
        """Writes that store ``benchmark`` (and, when ``new``, index it)."""
        writes: list[Write] = [Put("benchmarks", benchmark.sid, _encode(benchmark))]
        if new:
            writes += [
                Put("wf_benchmarks", f"{benchmark.workflow_sid}/{benchmark.sid}", b""),
                Put("ver_benchmarks", f"{benchmark.version_sid}/{benchmark.sid}", b""),
            ]
        return writes

    async def find_benchmark(self, sid: str) -> Benchmark | None:
        """The benchmark ``sid``, or None."""
        raw = await self.repo.store.get("benchmarks", sid) if sid else None
        return _decode(Benchmark, raw) if raw is not None else None

    async def get_benchmark(self, sid: str) -> Benchmark:
        """The benchmark ``sid``; NotFound names it otherwise."""
        found = await self.find_benchmark(sid)
        if found is None:
            msg = f"no benchmark with sid {sid!r}: list them with benchmark_list_for_workflow"
            raise NotFound(msg)
        return found

    async def list_benchmarks(self, *, workflow_sid: str = "", version_sid: str = "") -> list[Benchmark]:
        """Benchmarks of a workflow or of a version, newest first."""
        table, owner = ("ver_benchmarks", version_sid) if version_sid else ("wf_benchmarks", workflow_sid)
        rows = await self.repo.store.scan(table, f"{owner}/", reverse=True)
        found = [await self.find_benchmark(_tail(key)) for key, _ in rows]
        return [b for b in found if b is not None]

    async def latest_done(self, version_sid: str) -> Benchmark | None:
        """The newest ``done`` benchmark of a version, or None."""
        for benchmark in await self.list_benchmarks(version_sid=version_sid):
            if benchmark.status is BenchmarkStatus.DONE:
                return benchmark
        return None

    async def running_benchmarks(self) -> list[Benchmark]:
        """Every benchmark still ``running`` (after a restart: those to drive on), oldest first."""
        rows = await self.repo.store.scan("benchmarks")
        found = (_decode(Benchmark, raw) for _, raw in rows)
        return [b for b in found if b.status is BenchmarkStatus.RUNNING]

    # -- a workflow's library records ------------------------------------------------------------

    async def drop_workflow_writes(self, workflow_sid: str, workflow_name: str) -> list[Write]:
        """The deletes of a workflow's presets and benchmarks, to commit with the workflow's
        own; refused while a benchmark of it runs."""
        benchmarks = await self.list_benchmarks(workflow_sid=workflow_sid)
        running = [b.sid for b in benchmarks if b.status is BenchmarkStatus.RUNNING]
        if running:
            msg = (
                f"workflow_delete: workflow {workflow_name!r} has running benchmarks: "
                f"{', '.join(running)}; wait for them to finish (benchmark_list_for_workflow)"
            )
            raise WrongState(msg)
        writes: list[Write] = []
        for example in await self.list_examples(workflow_sid):
            writes += self.delete_example(example)
        for b in benchmarks:
            writes += [
                Delete("benchmarks", b.sid),
                Delete("wf_benchmarks", f"{workflow_sid}/{b.sid}"),
                Delete("ver_benchmarks", f"{b.version_sid}/{b.sid}"),
            ]
        return writes

    # -- seeding marks ---------------------------------------------------------------------------

    async def seeded_names(self) -> set[str]:
        """Workflow names seeded before (never seeded again, even once deleted)."""
        return {key for key, _ in await self.repo.store.scan("seeded")}

    @staticmethod
    def mark_seeded(name: str, origin: str) -> list[Write]:
        """The write that records ``name`` as seeded from ``origin``."""
        return [Put("seeded", name, origin.encode())]


def merge_under(base: Mapping[str, Any], explicit: Mapping[str, Any] | None) -> dict[str, Any]:
    """``base`` with ``explicit`` on top (explicit values win)."""
    return {**base, **(explicit or {})}


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
