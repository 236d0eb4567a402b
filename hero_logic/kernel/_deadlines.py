"""Step timeouts (``@flow(timeout=...)``): stop the flow process, record the attempt as timed
out, run the play again.

An attempt of a step with a timeout starts with ``deadline_ms`` on its ``span_start``. While a
run goes on, one watchdog per running play sleeps until the earliest open deadline; when an
attempt is still open then, the run is cancelled (the executor kills the flow's process group,
so CPU-bound code stops too) and the kernel records, for each overdue attempt, a ``step_failed``
of :data:`~hero_logic.sdk.STEP_TIMEOUT_TYPE` under the attempt's key and a ``span_end`` with
status ``timed_out``. The spans the run left open are ended ``pending`` and the play runs
again at once (same slot, no recovery count): the next run replays everything that finished,
sees the attempt's failure and goes on by the step's retry policy.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

import trio

from hero_logic.sdk import STEP_TIMEOUT_TYPE

from ._convert import dumps
from ._interfaces import EventSink, ExitOutcome
from ._model import Play, PlayStatus, now_ms
from ._replay import replay_for
from ._runner import PlayRunner, RunState

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._interfaces import Launch, RunExtras
    from ._model import WorkflowVersion
    from ._repo import Repo

__all__ = ["Overdue", "execute_watching_deadlines", "run_until_done"]

log = logging.getLogger("hero_logic.kernel")

MAX_TIMEOUT_RERUNS = 10_000
"""Runs one play may start in a row because a step timed out (a policy retries at most 1000
times per step; this bounds a flow that loops over timing-out steps)."""

class _Kernel(EventSink, Protocol):
    """What of the kernel a run with step deadlines uses."""

    repo: Repo
    runner: PlayRunner

    async def apply(self, play_sid: str, events: Sequence[tuple[bytes, dict[str, Any]]]) -> None: ...

    async def _close_open_spans(self, play_sid: str, state: RunState, status: PlayStatus) -> None: ...


Overdue = tuple[str, int, str, int, Any]
"""An attempt stopped at its deadline: (span id, deadline, attempt key, start, attempt number)."""


async def execute_watching_deadlines(
    runner: PlayRunner, launch: Launch, sink: EventSink, state: RunState, *, timeout_ms: int
) -> tuple[ExitOutcome, int, list[Overdue]]:
    """Run ``launch`` as :meth:`PlayRunner.execute` does, stopping it when an open attempt
    passes its deadline; the attempts stopped so (none when the run ended by itself)."""
    changed = trio.Event()

    def rearm() -> None:
        changed.set()

    result: list[tuple[ExitOutcome, int]] = []
    overdue: list[Overdue] = []
    state.on_deadline = rearm
    try:
        async with trio.open_nursery() as nursery:
            run_scope = trio.CancelScope()

            async def run() -> None:
                with run_scope:
                    result.append(await runner.execute(launch, sink, timeout_ms=timeout_ms))
                nursery.cancel_scope.cancel()

            nursery.start_soon(run)
            while True:
                changed = trio.Event()
                if not state.deadlines:
                    await changed.wait()
                    continue
                now = now_ms()
                earliest = min(deadline for deadline, *_ in state.deadlines.values())
                if earliest > now:
                    with trio.move_on_after((earliest - now) / 1000):
                        await changed.wait()
                    continue
                overdue = [(span_id, *entry) for span_id, entry in state.deadlines.items() if entry[0] <= now]
                run_scope.cancel()
                break
    finally:
        state.on_deadline = None
    if result:  # it ended by itself before the stop took hold
        return result[0][0], result[0][1], []
    return ExitOutcome(exit_code=None, cancelled=True), 0, overdue


async def _record_timeouts(kernel: _Kernel, play_sid: str, state: RunState, overdue: list[Overdue]) -> None:
    """Record each overdue attempt as failed with a StepTimeout, then end the run's other open
    spans ``pending`` (the next run starts them again)."""
    now = now_ms()
    events: list[dict[str, Any]] = []
    for span_id, deadline, key, start, attempt in overdue:
        limit = f"{(deadline - start) / 1000:g} s" if start else "its timeout"
        which = f"attempt {attempt}" if isinstance(attempt, int) else "the attempt"
        message = f"{which} ran past its timeout of {limit} and was stopped (@flow(timeout=...))"
        events.append({
            "type": "step_failed", "span_id": span_id, "step_key": key, "error_type": STEP_TIMEOUT_TYPE,
            "message": message, "args": [message], "traceback": f"StepTimeout: {message}",
        })
        events.append({"type": "span_end", "span_id": span_id, "end_ms": now, "status": "timed_out", "error": message})
    await kernel.apply(play_sid, [(dumps(e), e) for e in events])
    await kernel._close_open_spans(play_sid, state, PlayStatus.AWAITING_RESUME)


async def run_until_done(
    kernel: _Kernel, play: Play, version: WorkflowVersion, handle: Any, *, timeout_ms: int, extras: RunExtras | None = None
) -> tuple[ExitOutcome, int, int, RunState]:
    """Run the play, again each time a step times out, until a run ends by itself.

    Returns that run's outcome, its skipped-line count, the span event bytes the earlier
    (stopped) runs stored, and the last run's state (also ``handle.state``).
    """
    spent = 0
    for _ in range(MAX_TIMEOUT_RERUNS):
        replay = await replay_for(kernel.repo, play)
        handle.state = state = RunState(
            seq=await kernel.repo.last_event_seq(play.sid), bytes_before=play.event_bytes + spent
        )
        launch = kernel.runner.stage(play, version, replay, extras)
        outcome, skipped, overdue = await execute_watching_deadlines(
            kernel.runner, launch, kernel, state, timeout_ms=timeout_ms
        )
        if not overdue:
            return outcome, skipped, spent, state
        log.info("play %s: %d step attempt(s) ran past their timeout; running it again", play.sid, len(overdue))
        await _record_timeouts(kernel, play.sid, state, overdue)
        spent += state.stored_bytes
    msg = f"play {play.sid} was stopped {MAX_TIMEOUT_RERUNS} times in a row for step timeouts"
    return ExitOutcome(exit_code=None, spawn_error=msg), 0, spent, handle.state
