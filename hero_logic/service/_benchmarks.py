"""Driving a benchmark: its presets run as plays, one at a time, and their outcomes add up.

A benchmark is a kernel system task. Its plays run one at a time, so their latencies do not
skew each other, and are named ``benchmark:<benchmark sid>:<run index>``. Each run's play sid
is recorded before the play is created, so a benchmark whose service stopped is driven on at
the next start: the plays it started are recovered by the kernel and waited for, the others
are started then. A run that pauses without a prefilled answer is cancelled and counted as a
failure (nobody is there to answer it).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import attrs
import trio

from hero_logic.kernel import (
    BenchmarkStatus,
    HeroLogicError,
    NotFound,
    Play,
    PlayStatus,
    ServiceClosed,
    SpanKind,
    WrongState,
    new_sid,
    now_ms,
)

from ._catalog import Library
from ._scoring import RunOutcome, output_differences, run_accuracy, summarise_runs

if TYPE_CHECKING:
    from hero_logic.kernel import Benchmark, Example, Kernel, WorkflowVersion

    from ._plays import Plays

__all__ = ["BenchmarkDriver"]

log = logging.getLogger("hero_logic.benchmark")


@attrs.define(eq=False)
class BenchmarkDriver:
    """Runs benchmarks in the background and lets callers wait for them."""

    kernel: Kernel
    plays: Plays
    _finished: dict[str, trio.Event] = attrs.Factory(dict)

    @property
    def _library(self) -> Library:
        return Library(self.kernel.repo)

    async def wait(self, sid: str, timeout_s: float) -> None:
        """Return once benchmark ``sid`` is no longer driven, or after ``timeout_s``."""
        finished = self._finished.get(sid)
        if finished is not None:
            with trio.move_on_after(timeout_s):
                await finished.wait()

    async def resume(self) -> None:
        """Drive on every benchmark left ``running`` by a previous service instance."""
        for benchmark in await self._library.running_benchmarks():
            log.warning("driving on benchmark %s (%d of %d runs started)", benchmark.sid, len(benchmark.runs), benchmark.num_runs)
            self.start(benchmark.sid)

    def start(self, sid: str) -> None:
        """Drive benchmark ``sid`` in a kernel system task."""
        self._finished[sid] = trio.Event()
        self.kernel.start_system_task(self._drive, sid, name=f"benchmark {sid}")

    async def _drive(self, sid: str) -> None:
        try:
            await self._run_benchmark(sid)
        except ServiceClosed:
            pass  # the service is stopping: the benchmark stays running and is driven on at restart
        except HeroLogicError as exc:
            await self._settle(sid, BenchmarkStatus.FAILED, f"the benchmark could not finish: {exc.message}")
        except Exception as exc:
            log.exception("benchmark %s crashed", sid)
            await self._settle(sid, BenchmarkStatus.FAILED, f"the benchmark crashed ({type(exc).__name__}); see the service log")
        finally:
            self._finished.pop(sid, trio.Event()).set()

    async def _settle(self, sid: str, status: BenchmarkStatus, reason: str) -> None:
        benchmark = await self._library.find_benchmark(sid)
        if benchmark is None:
            return
        ended = attrs.evolve(benchmark, status=status, error_message=reason, completed_at=now_ms())
        await self.kernel.repo.commit(self._library.put_benchmark(ended))

    async def _run_benchmark(self, sid: str) -> None:
        repo = self.kernel.repo
        benchmark = await self._library.get_benchmark(sid)
        version = await repo.get_version(benchmark.version_sid)
        examples = []
        for example_sid in benchmark.example_sids:
            try:
                examples.append(await self._library.get_example(example_sid))
            except NotFound:
                msg = f"preset {example_sid} was deleted before the benchmark could run it"
                raise NotFound(msg) from None
        outcomes: list[RunOutcome] = []
        notes: list[str] = []
        for index in range(benchmark.num_runs):
            example = examples[index % len(examples)]
            if index < len(benchmark.runs):
                play_sid = benchmark.runs[index]
            else:
                play_sid = new_sid("play")
                benchmark = attrs.evolve(benchmark, runs=[*benchmark.runs, play_sid])
                await repo.commit(self._library.put_benchmark(benchmark))  # before the play: a restart finds it
            outcome, note = await self._one_run(benchmark, index, play_sid, example, version)
            outcomes.append(outcome)
            if note:
                notes.append(note)
            benchmark = attrs.evolve(benchmark, completed_runs=index + 1, run_notes=list(notes))
            await repo.commit(self._library.put_benchmark(benchmark))
        done = attrs.evolve(
            benchmark, status=BenchmarkStatus.DONE, completed_at=now_ms(), **summarise_runs(outcomes)
        )
        await repo.commit(self._library.put_benchmark(done))

    async def _one_run(
        self, benchmark: Benchmark, index: int, play_sid: str, example: Example, version: WorkflowVersion
    ) -> tuple[RunOutcome, str]:
        """Start (or, after a restart, find) run ``index`` and reduce it to an outcome."""
        kernel = self.kernel
        try:
            await kernel.repo.get_play(play_sid)  # started before a restart: the kernel recovered it
        except NotFound:
            await self.plays.create(
                context=f"benchmark {benchmark.sid}",
                sid=play_sid,
                workflow_sid=benchmark.workflow_sid,
                version_sid=version.sid,
                name=f"benchmark:{benchmark.sid}:{index}",
                input_data=example.input_values,
                prefill_resumes=example.prefill_resumes,
            )
        play = await kernel.wait(play_sid, 0)
        label = f"run {index} (preset {example.name!r}, play {play_sid})"
        if play.status is PlayStatus.AWAITING_RESUME:
            asked = ", ".join(repr(r.name) for r in play.pending_resumes) or "a child play's pause"
            play = await self._cancel_tree(play)
            note = f"{label}: paused at {asked} with no prefilled answer; add it to the preset's prefill_resumes"
        elif play.status is not PlayStatus.SUCCESS:
            note = f"{label}: {play.status.value}: {play.error_message[:300]}"
        else:
            note = ""
        success = play.status is PlayStatus.SUCCESS
        score = None
        if success and example.expected_output is None:
            roots = [s for s in await kernel.repo.spans(play_sid) if s.kind is SpanKind.FLOW_ROOT]
            score = roots[0].tags.get("score") if roots else None
        accuracy, basis = run_accuracy(
            success=success, output=play.output_data, expected=example.expected_output, score=score
        )
        if success and basis == "expected_output" and accuracy == 0.0:
            differences = "; ".join(output_differences(example.expected_output, play.output_data)[:5])
            note = f"{label}: the output differs from the expected output: {differences}"
        outcome = RunOutcome(
            success=success,
            duration_ms=play.duration_ms,
            cost_usd=await self._cost(play),
            accuracy=accuracy,
            basis=basis,
        )
        return outcome, note

    async def _cancel_tree(self, play: Play) -> Play:
        """Cancel a paused play (the kernel cancels its children with it); the play as it ends."""
        try:
            return await self.kernel.cancel(play.sid)
        except WrongState:  # it ended (or was answered) meanwhile
            return await self.kernel.wait(play.sid, 0)

    async def _cost(self, play: Play) -> float:
        """The play's cost with that of the child plays it spawned."""
        total = play.total_cost_usd
        for child_sid in play.child_play_sids:
            try:
                total += await self._cost(await self.kernel.repo.get_play(child_sid))
            except NotFound:
                continue
        return total
