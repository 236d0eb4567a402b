"""How the kernel writes a play's status and what a status change sets in motion.

Functions taking the :class:`~._kernel.Kernel`, moved out of it to keep it small:
:func:`save_status` is the one writer of a play's status (it drops a late change to an ended
play, stores the index rows of its waits, pokes the timer wheel and publishes the status);
:func:`settle` stores how a run ended; :func:`after_settle` wakes a waiting parent, cancels the
children of a play that did not succeed and delivers a waiting play's event mailbox;
:func:`recover` re-runs, at start-up, the plays a previous service left unfinished;
:func:`deadline_passed` words the reason of a play whose deadline passed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from ._convert import to_json
from ._errors import NotFound
from ._handle import ended, status_topic
from ._model import Play, PlayStatus
from ._runner import map_outcome
from ._waits import index_writes, wait_summary

if TYPE_CHECKING:
    from ._bus import EventBus
    from ._config import Config
    from ._handle import PlayHandle
    from ._interfaces import ExitOutcome, WaitHandler
    from ._repo import Repo
    from ._runner import PlayRunner, RunState
    from ._timers import TimerWheel
    from ._tree import PlayTree

__all__ = ["after_settle", "deadline_passed", "recover", "save_status", "settle"]

log = logging.getLogger("hero_logic.kernel")


class _Kernel(Protocol):
    """What of the kernel (:class:`~._kernel.Kernel`) these functions use."""

    config: Config
    repo: Repo
    bus: EventBus
    runner: PlayRunner
    tree: PlayTree
    timers: TimerWheel | None
    wait_handler: WaitHandler | None

    def is_active(self, play_sid: str) -> bool: ...

    def _schedule(self, play_sid: str) -> None: ...

    async def _cancel_children(self, play: Play) -> None: ...

    async def _save_status(self, play: Play, note: dict[str, Any] | None = None) -> None: ...

    async def _close_open_spans(self, play_sid: str, state: RunState, status: PlayStatus) -> None: ...


async def settle(
    kernel: _Kernel, play_sid: str, handle: PlayHandle, outcome: ExitOutcome, skipped: int, timeout_ms: int, spent: int, state: RunState
) -> None:
    """Store how the run ended (the caller holds the play's transition lock)."""
    play = await kernel.repo.get_play(play_sid)  # requests may have linked child plays
    play = attrs.evolve(play, event_bytes=play.event_bytes + spent)
    if skipped:
        log.warning("play %s: skipped %d malformed or oversized span lines", play_sid, skipped)
        play = attrs.evolve(play, skipped_span_lines=play.skipped_span_lines + skipped)
    children_waiting = await kernel.tree.any_child_awaiting(play)
    final = map_outcome(
        play, outcome, state, timeout_ms=timeout_ms, children_waiting=children_waiting
    )
    final = attrs.evolve(final, event_bytes=play.event_bytes + state.stored_bytes)
    if state.too_many_pauses and not final.status.is_terminal:
        final = ended(final, PlayStatus.FAILED, state.too_many_pauses)
    if handle.redactor is not None:  # the stderr tail is the flow's own text
        final = attrs.evolve(final, error_message=handle.redactor.text(final.error_message))
    if handle.answered_meanwhile and final.status is PlayStatus.AWAITING_RESUME:
        final = attrs.evolve(final, status=PlayStatus.RUNNING)  # again, with the new answers
        handle.run_again = True
    await kernel._close_open_spans(play_sid, state, final.status)
    await kernel._save_status(final)
    handle.settled_status = True
    handle.settled = final


async def after_settle(kernel: _Kernel, play: Play) -> None:
    """What a play reaching ``play.status`` sets in motion: a re-run if an answer arrived
    while it ran, the wake-up of a parent waiting for this child, and the end of the
    unfinished children of a play that failed, timed out or was cancelled."""
    if play.status.is_terminal and play.status is not PlayStatus.SUCCESS:
        await kernel._cancel_children(play)  # nobody is left to wait for them
    if kernel.wait_handler is not None and play.status is PlayStatus.AWAITING_RESUME and any(r.event_key for r in play.pending_resumes):
        try:  # an event sent before it waited: its mailbox
            await kernel.wait_handler.waiting(play)
        except Exception:  # the play waits on; the next send or its timeout still reaches it
            log.exception("play %s: delivering from its event mailbox failed", play.sid)
    if not play.parent_play_sid:
        return
    try:
        parent = await kernel.repo.get_play(play.parent_play_sid)
    except NotFound:
        return
    if kernel.is_active(parent.sid):
        return  # its run waits for this child itself (wait_child_play)
    if play.status.is_terminal and parent.status in (PlayStatus.AWAITING_RESUME, PlayStatus.RUNNING):
        kernel._schedule(parent.sid)  # the child it waited for is done: continue the parent
    elif play.status is PlayStatus.AWAITING_RESUME and parent.status is PlayStatus.RUNNING:
        waiting = attrs.evolve(parent, status=PlayStatus.AWAITING_RESUME)
        await kernel._save_status(waiting)
        await after_settle(kernel, waiting)


async def save_status(kernel: _Kernel, play: Play, note: dict[str, Any] | None = None) -> None:
    """Persist ``play`` (with the index rows of its waits) and publish its status, with
    ``note`` in the message. The kernel is the only writer of a play's status: an ended
    play stays ended (a late write of another status is dropped)."""
    stored = await kernel.repo.find_play(play.sid)
    if stored is not None and stored.status.is_terminal and play.status is not stored.status:
        log.warning(
            "play %s: dropped a change to %s, the play already ended %s",
            play.sid, play.status.value, stored.status.value,
        )
        return
    if play.status is PlayStatus.AWAITING_RESUME and play.attempts:
        # A pause is a clean stop: the recovery bound counts runs since the last one, so
        # a play may pause and resume any number of times.
        play = attrs.evolve(play, attempts=0)
    elif play.status.is_terminal and play.pending_resumes:
        play = attrs.evolve(play, pending_resumes=[])  # an ended play asks nothing any more
    await kernel.repo.commit([*kernel.repo.put_play(play), *index_writes(stored, play)])
    if kernel.timers is not None and play.status is PlayStatus.AWAITING_RESUME:
        for wait in play.pending_resumes:
            if wait.wake_at is not None:
                kernel.timers.poke(wait.wake_at)
    message = {"type": "status", "status": play.status.value, "play": to_json(play), **(note or {})}
    if play.status is PlayStatus.AWAITING_RESUME:
        message["waiting"] = wait_summary(play)
    kernel.bus.publish(play.sid, message)
    kernel.bus.publish(status_topic(play.sid), message, broadcast=False)


async def recover(kernel: _Kernel) -> None:
    """Re-run plays left ``running`` or ``pending`` by a previous service instance."""
    unfinished = await kernel.repo.list_plays(
        statuses=(PlayStatus.RUNNING, PlayStatus.PENDING), limit=1_000_000
    )
    for play in reversed(unfinished):  # oldest first
        if kernel.runner.executor.kill_leftover(kernel.config.play_dir(play.sid) / "flow.pid"):
            log.warning("killed the flow process of play %s left by the previous service", play.sid)
        log.warning("recovering play %s (was %s, %d runs so far)", play.sid, play.status.value, play.attempts)
        kernel._schedule(play.sid)


def deadline_passed(play: Play) -> str:
    return (
        f"the play's deadline passed (deadline_ms {play.deadline_at - play.created_at if play.deadline_at else 0} "
        "from its start, over all its runs and pauses): start it with a longer deadline_ms"
    )
