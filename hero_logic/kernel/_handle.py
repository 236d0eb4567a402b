"""The kernel's grip on one run of a play, the bounds on what a run may store, and the small
pure helpers of status changes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import trio

from ._model import Play, PlayStatus, now_ms

if TYPE_CHECKING:
    from pathlib import Path

    from ._capacity import Seat
    from ._interfaces import Redactor
    from ._runner import RunState

__all__ = [
    "MAX_EVENT_BYTES_PER_PLAY",
    "MAX_EVENT_BYTES_PER_RUN",
    "PlayHandle",
    "ended",
    "error_response",
    "is_settled",
    "remove_quietly",
    "status_is_settled",
    "status_topic",
]


@attrs.define(eq=False)
class PlayHandle:
    """The kernel's grip on one play it is running or about to run."""

    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    cancel_requested: bool = False
    state: RunState | None = None
    settled: Play | None = None
    """The play as this run left it (None while running, or if the service stopped)."""
    done: trio.Event = attrs.Factory(trio.Event)
    fail_reason: str = ""
    """Why the kernel stopped this run itself (the play then fails with it)."""
    seat: Seat | None = None
    """The run's claim on a run slot (lent back while the play waits for a child)."""
    redactor: Redactor | None = None
    """Removes the play's secrets from its events before they are stored (RunPreparer)."""
    answered_meanwhile: bool = False
    """An answer arrived while this run went on: when it settles awaiting resume, run again."""
    run_again: bool = False
    settled_status: bool = False
    """The run's outcome is stored (taken under the transition lock): later answers wait for it."""


MAX_EVENT_BYTES_PER_PLAY = 512 * 1024 * 1024
"""Span event bytes one play may have stored over all its runs (resumes, recoveries)."""
MAX_EVENT_BYTES_PER_RUN = 256 * 1024 * 1024
"""Span event bytes one run of a play may have stored; past it the play fails (a flow must
not fill the store, and every later read of its spans, for everyone)."""


def status_topic(play_sid: str) -> str:
    """The bus topic that carries only a play's status changes (for waiters)."""
    return f"status:{play_sid}"


def status_is_settled(status: str) -> bool:
    """True for a status a waiter stops at: terminal, or awaiting resume."""
    return status == PlayStatus.AWAITING_RESUME.value or PlayStatus(status).is_terminal


def is_settled(play: Play) -> bool:
    """True once ``play`` is terminal or awaits resume."""
    return status_is_settled(play.status.value)


def ended(play: Play, status: PlayStatus, reason: str) -> Play:
    """``play`` ended with ``status`` for ``reason`` (its open questions dropped, times set)."""
    now = now_ms()
    return attrs.evolve(
        play,
        status=status,
        error_message=reason,
        pending_resumes=[],
        completed_at=now,
        duration_ms=max(0, now - (play.started_at or play.created_at or now)),
    )


def error_response(request_id: Any, code: int, message: str) -> dict[str, Any]:
    """The ``response`` line answering a flow's request with an error."""
    return {"type": "response", "id": request_id, "error": {"code": code, "message": message}}


def remove_quietly(path: Path) -> None:
    """Remove ``path`` if it is there."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
