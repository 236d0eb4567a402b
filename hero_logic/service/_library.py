"""LibraryService: presets, benchmarks, version picking and search (CONTRACT.md §3).

Its ``@rpc_method`` coroutines join the other rooms' in the one method table. It also resolves
what ``play_start`` needs for a preset (``example_sid``) or a pick (``pick={...}``). Benchmarks
run in the background through a :class:`~hero_logic.service._benchmarks.BenchmarkDriver`,
whose plays are created by :class:`~hero_logic.service._plays.Plays` like every other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from hero_logic.kernel import (
    Benchmark,
    BenchmarkStatus,
    Example,
    InvalidParams,
    KeyedLock,
    NotFound,
    PickResult,  # an RPC result annotation: the method table resolves it at run time
    VersionCandidate,
    WrongState,
    new_sid,
    now_ms,
    pick_weights,
)

from ._benchmarks import BenchmarkDriver
from ._catalog import Library
from ._checks import check_name, invalid_field
from ._inputs import check_inputs
from ._marker import rpc_method
from ._plays import Plays, StartPlan
from ._scoring import check_expected_output, merge_under
from ._search import SearchDoc, rank_workflows

if TYPE_CHECKING:
    from hero_logic.kernel import Kernel, Workflow, WorkflowVersion


__all__ = ["LibraryService", "StartPlan", "check_preset"]

MAX_REPEATS = 100
MAX_BENCHMARK_RUNS = 1000
MAX_SEARCH_LIMIT = 1000
MAX_QUERY_LENGTH = 1000
_PICK_KEYS = ("cost_weight", "speed_weight", "accuracy_weight", "min_accuracy")


def check_preset(
    version: WorkflowVersion | None,
    input_values: dict[str, Any],
    expected_output: Any,
    *,
    flow_name: str,
) -> None:
    """Raise InvalidParams naming each preset value that breaks ``version``'s declared fields."""
    problems: list[dict[str, str]] = []
    if version is None:
        return
    for check in (
        lambda: check_inputs(version.inputs, input_values, flow_name=flow_name, param="input_values"),
        lambda: check_expected_output(version.outputs, expected_output, flow_name=flow_name),
    ):
        try:
            check()
        except InvalidParams as exc:
            problems += exc.data
    if problems:
        raise InvalidParams.fields(problems, context=f"preset of flow {flow_name!r}")




@attrs.define(eq=False)
class LibraryService:
    """The library's RPC methods and its benchmark driver."""

    kernel: Kernel
    plays: Plays
    driver: BenchmarkDriver = attrs.field(init=False)
    _preset_locks: KeyedLock = attrs.Factory(KeyedLock)
    _search_docs: tuple[int, list[SearchDoc]] | None = attrs.field(default=None, init=False)
    """The search index of every workflow and the workflows generation it was built at."""

    def __attrs_post_init__(self) -> None:
        self.driver = BenchmarkDriver(self.kernel, self.plays)

    @property
    def library(self) -> Library:
        """The typed store layer of presets and benchmarks."""
        return Library(self.kernel.repo)

    # -- helpers ---------------------------------------------------------------------------------

    async def _target_version(self, wf: Workflow, version_sid: str, *, context: str) -> WorkflowVersion | None:
        """The version a preset is checked against: its pin, else the current one (None if none)."""
        sid = version_sid or wf.current_version_sid
        if not sid:
            return None
        version = await self.kernel.repo.get_version(sid)
        if version.workflow_sid != wf.sid:
            msg = "version_sid"
            raise invalid_field(msg, f"version {sid} belongs to workflow {version.workflow_sid}, not {wf.name!r} ({wf.sid})",
                context=context,
            )
        return version

    # -- presets ---------------------------------------------------------------------------------

    @rpc_method(admin=True)
    async def example_upsert(
        self,
        workflow_sid: str,
        name: str,
        input_values: dict[str, Any],
        description: str = "",
        version_sid: str = "",
        expected_output: Any = None,
        prefill_resumes: dict[str, Any] | None = None,
    ) -> Example:
        """Create or replace the preset called name of a workflow (values checked against the
        declared inputs and outputs of its pinned or current version)."""
        context = "example_upsert"
        wf = await self.kernel.repo.get_workflow(workflow_sid)
        stripped = check_name(name, context=context, what="the preset")
        version = await self._target_version(wf, version_sid, context=context)
        check_preset(version, input_values, expected_output, flow_name=version.entry_flow if version else wf.name)
        # One upsert of a name at a time: concurrent ones all end on the one preset, in order.
        async with self._preset_locks.hold(f"{wf.sid}/{stripped}"):
            return await self._upsert(
                wf, stripped, version_sid, description, input_values, expected_output, prefill_resumes
            )

    async def _upsert(
        self,
        wf: Workflow,
        stripped: str,
        version_sid: str,
        description: str,
        input_values: dict[str, Any],
        expected_output: Any,
        prefill_resumes: dict[str, Any] | None,
    ) -> Example:
        old = await self.library.example_by_name(wf.sid, stripped)
        now = now_ms()
        example = Example(
            sid=old.sid if old else new_sid("ex"),
            workflow_sid=wf.sid,
            name=stripped,
            version_sid=version_sid,
            description=description,
            input_values=dict(input_values),
            expected_output=expected_output,
            prefill_resumes=dict(prefill_resumes or {}),
            created_at=old.created_at if old else now,
            updated_at=now,
        )
        await self.kernel.repo.commit(self.library.put_example(example))
        return example

    @rpc_method(admin=True)
    async def example_fetch(self, sid: str) -> Example:
        """One preset."""
        return await self.library.get_example(sid)

    @rpc_method(admin=True)
    async def example_list(self, workflow_sid: str) -> list[Example]:
        """The presets of a workflow, by name."""
        await self.kernel.repo.get_workflow(workflow_sid)
        return await self.library.list_examples(workflow_sid)

    @rpc_method(admin=True)
    async def example_delete(self, sid: str) -> bool:
        """Delete a preset (benchmarks that ran it keep their numbers)."""
        example = await self.library.get_example(sid)
        await self.kernel.repo.commit(self.library.delete_example(example))
        return True

    @rpc_method(admin=True)
    async def example_to_input_data(self, sid: str) -> dict[str, Any]:
        """The input_data a play of this preset gets: its values over the declared defaults of
        its pinned or current version."""
        example = await self.library.get_example(sid)
        wf = await self.kernel.repo.get_workflow(example.workflow_sid)
        try:
            version = await self._target_version(wf, example.version_sid, context="example_to_input_data")
        except NotFound:
            version = None
        defaults = {f.name: f.default for f in (version.inputs if version else []) if f.default is not None}
        return merge_under(defaults, example.input_values)

    # -- play_start's presets and picks ----------------------------------------------------------

    async def plan_start(
        self,
        *,
        workflow_sid: str,
        input_data: dict[str, Any] | None,
        version_sid: str,
        prefill_resumes: dict[str, Any] | None,
        name: str,
        example_sid: str,
        pick: dict[str, Any] | None,
    ) -> StartPlan:
        """Resolve ``play_start``'s preset and pick.

        Explicit input_data and prefill_resumes go over the preset's; the version is, in
        order: the explicit version_sid, the picker's choice, the preset's pin, the current.
        """
        context = "play_start"
        plan = StartPlan(dict(input_data or {}), version_sid, dict(prefill_resumes or {}), name)
        if example_sid:
            example = await self.library.get_example(example_sid)
            if example.workflow_sid != workflow_sid:
                msg = "example_sid"
                raise invalid_field(msg, f"preset {example.name!r} ({example.sid}) belongs to workflow {example.workflow_sid}, "
                    f"not {workflow_sid!r}: pass its own workflow_sid",
                    context=context,
                )
            plan = StartPlan(
                input_data=merge_under(example.input_values, input_data),
                version_sid=version_sid or example.version_sid,
                prefill_resumes=merge_under(example.prefill_resumes, prefill_resumes),
                name=name or f"example:{example.name}",
            )
        if pick is not None:
            if version_sid:
                msg = "pick"
                raise invalid_field(msg, "pass either version_sid or pick, not both", context=context)
            result = await self._pick(workflow_sid, self._pick_params(pick, context=context), context=context)
            plan = attrs.evolve(plan, version_sid=result.version_sid)
        return plan

    @staticmethod
    def _pick_params(pick: dict[str, Any], *, context: str) -> dict[str, float]:
        problems: list[dict[str, str]] = []
        params: dict[str, float] = {}
        for key, value in pick.items():
            if key not in _PICK_KEYS:
                problems.append({"field": f"pick.{key}", "error": f"unknown weight; use {', '.join(_PICK_KEYS)}"})
            elif isinstance(value, bool) or not isinstance(value, int | float):
                problems.append({"field": f"pick.{key}", "error": f"expected a number, got {value!r}"})
            else:
                params[key] = float(value)
        if problems:
            raise InvalidParams.fields(problems, context=context)
        return params

    # -- benchmarks ------------------------------------------------------------------------------

    @rpc_method(admin=True)
    async def benchmark_run(self, version_sid: str, example_sids: list[str] | None = None, repeats: int = 1) -> str:
        """Run presets (default: every preset of the workflow) against a version in the
        background, repeats times each; returns the benchmark sid at once."""
        context = "benchmark_run"
        repo = self.kernel.repo
        version = await repo.get_version(version_sid)
        wf = await repo.get_workflow(version.workflow_sid)
        if not 1 <= repeats <= MAX_REPEATS:
            msg = "repeats"
            raise invalid_field(msg, f"must be between 1 and {MAX_REPEATS}, got {repeats}", context=context)
        if not version.python_source.strip():
            msg = f"{context}: version {version.sid} of workflow {wf.name!r} has no python_source to run"
            raise WrongState(msg)
        if example_sids:
            examples = []
            for i, sid in enumerate(dict.fromkeys(example_sids)):
                example = await self.library.get_example(sid)
                if example.workflow_sid != wf.sid:
                    msg_0 = f"example_sids[{i}]"
                    raise invalid_field(
                        msg_0,
                        f"preset {example.name!r} ({sid}) belongs to workflow {example.workflow_sid}, not {wf.name!r}",
                        context=context,
                    )
                examples.append(example)
        else:
            examples = await self.library.list_examples(wf.sid)
            if not examples:
                msg = (
                    f"{context}: workflow {wf.name!r} ({wf.sid}) has no presets to benchmark: add some "
                    "with example_upsert (input values, and an expected_output to measure accuracy)"
                )
                raise WrongState(msg)
        problems: list[dict[str, str]] = []
        for example in examples:
            try:
                check_inputs(version.inputs, example.input_values, flow_name=version.entry_flow or wf.name)
            except InvalidParams as exc:
                problems += [
                    {"field": f"preset {example.name!r} ({example.sid}) {p['field']}", "error": p["error"]}
                    for p in exc.data
                ]
        if problems:
            raise InvalidParams.fields(problems, context=f"{context}: presets that do not fit version {version.sid}")
        if len(examples) * repeats > MAX_BENCHMARK_RUNS:
            msg_0 = "repeats"
            raise invalid_field(msg_0, f"{len(examples)} presets × {repeats} repeats is over {MAX_BENCHMARK_RUNS} runs",
                context=context,
            )
        benchmark = Benchmark(
            sid=new_sid("bench"),
            workflow_sid=wf.sid,
            version_sid=version.sid,
            example_sids=[e.sid for e in examples],
            repeats=repeats,
            num_runs=len(examples) * repeats,
            created_at=now_ms(),
        )
        await repo.commit(self.library.put_benchmark(benchmark, new=True))
        self.driver.start(benchmark.sid)
        return benchmark.sid

    @rpc_method(admin=True)
    async def benchmark_fetch(self, sid: str) -> Benchmark:
        """One benchmark, as it stands."""
        return await self.library.get_benchmark(sid)

    @rpc_method(cancel_on_disconnect=True)
    async def benchmark_wait(self, sid: str, timeout_ms: int = 0) -> Benchmark:
        """The benchmark once it is done or failed, or as it stands when timeout_ms (0 = forever)
        runs out."""
        if timeout_ms < 0:
            msg = "timeout_ms"
            raise invalid_field(msg, f"must be 0 (forever) or positive, got {timeout_ms}", context="benchmark_wait")
        benchmark = await self.library.get_benchmark(sid)
        if benchmark.status is BenchmarkStatus.RUNNING:
            await self.driver.wait(sid, timeout_ms / 1000 if timeout_ms else float("inf"))
        return await self.library.get_benchmark(sid)

    @rpc_method(admin=True)
    async def benchmark_list_for_workflow(self, workflow_sid: str) -> list[Benchmark]:
        """The benchmarks of every version of a workflow, newest first."""
        await self.kernel.repo.get_workflow(workflow_sid)
        return await self.library.list_benchmarks(workflow_sid=workflow_sid)

    @rpc_method(admin=True)
    async def benchmark_list_for_version(self, version_sid: str) -> list[Benchmark]:
        """The benchmarks of one version, newest first."""
        await self.kernel.repo.get_version(version_sid)
        return await self.library.list_benchmarks(version_sid=version_sid)

    @rpc_method(admin=True)
    async def benchmark_latest_for_version(self, version_sid: str) -> Benchmark:
        """The newest benchmark of a version (running, done or failed)."""
        await self.kernel.repo.get_version(version_sid)
        found = await self.library.list_benchmarks(version_sid=version_sid)
        if not found:
            msg = f"version {version_sid} has no benchmark yet: start one with benchmark_run"
            raise NotFound(msg)
        return found[0]

    async def resume_benchmarks(self) -> None:
        """Drive on every benchmark left ``running`` by a previous service instance."""
        await self.driver.resume()

    # -- picking ---------------------------------------------------------------------------------

    async def _candidates(self, wf: Workflow) -> list[VersionCandidate]:
        return [
            VersionCandidate(
                version_sid=v.sid,
                version_label=v.version_label,
                created_at=v.created_at,
                is_current=v.sid == wf.current_version_sid,
                benchmark=await self.library.latest_done(v.sid),
            )
            for v in await self.kernel.repo.list_versions(wf.sid)
        ]

    async def _pick(self, workflow_sid: str, params: dict[str, float], *, context: str) -> PickResult:
        wf = await self.kernel.repo.get_workflow(workflow_sid)
        prefix = "pick." if context == "play_start" else ""
        weights = pick_weights(
            params.get("cost_weight", 0.0),
            params.get("speed_weight", 0.0),
            params.get("accuracy_weight", 0.0),
            params.get("min_accuracy", 0.0),
            prefix=prefix,
            context=context,
        )
        candidates = await self._candidates(wf)
        if not candidates:
            msg = f"{context}: workflow {wf.name!r} ({wf.sid}) has no version to pick from: add one with workflow_create_version"
            raise WrongState(msg)
        return self.kernel.picker.pick(candidates, weights, current_version_sid=wf.current_version_sid)

    @rpc_method(admin=True)
    async def pick_version(
        self,
        workflow_sid: str,
        cost_weight: float,
        speed_weight: float,
        accuracy_weight: float,
        min_accuracy: float = 0.0,
    ) -> PickResult:
        """The version to run, from each version's latest finished benchmark: weights ≥ 0 (not
        all 0) for cost, speed and accuracy, and an accuracy floor in 0..1."""
        params = {
            "cost_weight": cost_weight,
            "speed_weight": speed_weight,
            "accuracy_weight": accuracy_weight,
            "min_accuracy": min_accuracy,
        }
        return await self._pick(workflow_sid, params, context="pick_version")

    # -- search ----------------------------------------------------------------------------------

    @rpc_method(admin=True)
    async def flow_library_search(self, query: str, limit: int = 10) -> list[str]:
        """Workflow sids best matching query (name, description, tags, field names; typos
        tolerated), best first; an empty query lists the newest."""
        context = "flow_library_search"
        if not 1 <= limit <= MAX_SEARCH_LIMIT:
            msg = "limit"
            raise invalid_field(msg, f"must be between 1 and {MAX_SEARCH_LIMIT}, got {limit}", context=context)
        if len(query) > MAX_QUERY_LENGTH:
            msg = "query"
            raise invalid_field(msg, f"must be at most {MAX_QUERY_LENGTH} characters, got {len(query)}", context=context)
        repo = self.kernel.repo
        generation = repo.workflows_generation  # read before the workflows: never newer than they
        if self._search_docs is None or self._search_docs[0] != generation:
            workflows = await repo.list_workflows(limit=1_000_000)
            self._search_docs = (generation, [SearchDoc.of(wf) for wf in workflows])
        return rank_workflows(query, self._search_docs[1], limit)
