"""The typed layer over the store for presets, benchmarks and seeding marks.

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
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from hero_logic.kernel import (
    Benchmark,
    BenchmarkStatus,
    Delete,
    Example,
    NotFound,
    Put,
    Write,
    WrongState,
    decode_record,
    encode_record,
)

if TYPE_CHECKING:
    from hero_logic.kernel import Repo

__all__ = ["Library"]


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
            Put("examples", example.sid, encode_record(example)),
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
        return decode_record(Example, raw)

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
        writes: list[Write] = [Put("benchmarks", benchmark.sid, encode_record(benchmark))]
        if new:
            writes += [
                Put("wf_benchmarks", f"{benchmark.workflow_sid}/{benchmark.sid}", b""),
                Put("ver_benchmarks", f"{benchmark.version_sid}/{benchmark.sid}", b""),
            ]
        return writes

    async def find_benchmark(self, sid: str) -> Benchmark | None:
        """The benchmark ``sid``, or None."""
        raw = await self.repo.store.get("benchmarks", sid) if sid else None
        return decode_record(Benchmark, raw) if raw is not None else None

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
        found = (decode_record(Benchmark, raw) for _, raw in rows)
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

