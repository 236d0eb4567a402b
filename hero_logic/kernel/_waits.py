"""A play's open waits (ResumeRequests): made from ``pause`` events, resolved, and indexed.

Pure functions, no I/O. The kernel keeps two indexes of the waits of plays that await resume,
written in the same commit as the play record (so they are always in step with it):

==================  ==========================================  =====
table               key                                         value
==================  ==========================================  =====
``timers``          ``{wake_at:013d}/{play_sid}/{resume_id}``   empty
``event_waits``     ``{event_key}\\x1f{play_sid}\\x1f{resume_id}``   empty
==================  ==========================================  =====

``timers`` sorts by wake time, so the earliest timer is the first key (the timer wheel in
:mod:`._timers` reads only the head); ``event_waits`` is scanned by ``{event_key}\\x1f`` (event
keys hold no control characters). A play that is running, pending or ended has no rows: its
waits are indexed again when it awaits resume again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from ._model import Play, PlayStatus, ResumeKind, ResumeRequest
from ._store_api import Delete, Put, Write

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = [
    "EVENT_WAITS",
    "MAX_EVENT_KEY_BYTES",
    "TIMERS",
    "event_key_problem",
    "event_wait_prefix",
    "index_writes",
    "parse_event_wait_key",
    "parse_timer_key",
    "request_from_pause",
    "resolve_waits",
    "wait_summary",
    "why_not_open",
]

TIMERS = "timers"
EVENT_WAITS = "event_waits"
MAX_EVENT_KEY_BYTES = 512
MAX_WAKE_AT = 10**13 - 1
"""The latest wake time a timer may have (13 digits of ms: the index sorts them as text)."""
_SEP = "\x1f"


def event_key_problem(key: Any) -> str:
    """Why ``key`` cannot be an event key ("" if it can): a non-empty string of at most 512
    UTF-8 bytes with no control characters."""
    if not isinstance(key, str):
        return f"must be a string, got {type(key).__name__}"
    if not key:
        return "must not be empty: name the event, e.g. 'payment:order-42'"
    if len(key.encode("utf-8", "surrogatepass")) > MAX_EVENT_KEY_BYTES:
        return f"is over {MAX_EVENT_KEY_BYTES} bytes of UTF-8 ({key[:40]!r}...): use a shorter key"
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in key):
        return f"{key[:80]!r} contains control characters: use printable text"
    return ""


def timer_key(wake_at: int, play_sid: str, resume_id: str) -> str:
    return f"{wake_at:013d}/{play_sid}/{resume_id}"


def parse_timer_key(key: str) -> tuple[int, str, str]:
    """``(wake_at, play_sid, resume_id)`` of a ``timers`` key."""
    wake_at, play_sid, resume_id = key.split("/", 2)
    return int(wake_at), play_sid, resume_id


def event_wait_prefix(event_key: str) -> str:
    """The prefix of the ``event_waits`` rows of plays waiting for ``event_key``."""
    return f"{event_key}{_SEP}"


def parse_event_wait_key(key: str) -> tuple[str, str, str]:
    """``(event_key, play_sid, resume_id)`` of an ``event_waits`` key."""
    event_key, play_sid, resume_id = key.rsplit(_SEP, 2)
    return event_key, play_sid, resume_id


def _rows(play: Play | None) -> set[tuple[str, str]]:
    if play is None or play.status is not PlayStatus.AWAITING_RESUME:
        return set()
    rows = set()
    for wait in play.pending_resumes:
        if wait.wake_at is not None:
            rows.add((TIMERS, timer_key(wait.wake_at, play.sid, wait.id)))
        if wait.kind is ResumeKind.EVENT and wait.event_key:
            rows.add((EVENT_WAITS, f"{wait.event_key}{_SEP}{play.sid}{_SEP}{wait.id}"))
    return rows


def index_writes(stored: Play | None, play: Play) -> list[Write]:
    """The index rows to add and drop when ``stored`` becomes ``play`` (in the same commit)."""
    old, new = _rows(stored), _rows(play)
    if old == new:
        return []
    return [Delete(t, k) for t, k in sorted(old - new)] + [Put(t, k, b"") for t, k in sorted(new - old)]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def request_from_pause(pause: Mapping[str, Any], play_sid: str, now: int) -> ResumeRequest | str:
    """The open wait a ``pause`` event asks for, or why the event cannot be one."""
    rid = str(pause.get("resume_id", ""))
    raw_kind = pause.get("kind", "input")
    try:
        kind = ResumeKind(raw_kind)
    except ValueError:
        return f"a pause ({rid}) of unknown kind {raw_kind!r}; the SDK and the service disagree on the protocol"
    wake_at = _int(pause.get("wake_at"))
    if wake_at is not None and wake_at > MAX_WAKE_AT:
        return f"a wait ({rid}) whose wake_at {wake_at} is past the year 2286"
    if kind is ResumeKind.TIMER and wake_at is None:
        return f"a timer ({rid}) without a wake_at time (ms since the epoch)"
    if "wake_at" in pause and pause["wake_at"] is not None and wake_at is None:
        return f"a wait ({rid}) whose wake_at {pause['wake_at']!r} is not a time in ms since the epoch"
    event_key = pause.get("event_key", "")
    if kind is ResumeKind.EVENT:
        problem = event_key_problem(event_key)
        if problem:
            return f"an event wait ({rid}) whose event_key {problem}"
    group, branch = pause.get("group", ""), pause.get("branch", "")
    if not isinstance(group, str) or not isinstance(branch, str):
        return f"a wait ({rid}) whose group or branch is not a string"
    return ResumeRequest(
        id=rid,
        name=str(pause.get("name", "")),
        schema=pause.get("schema"),
        ui=pause.get("ui"),
        asked_at_span_id=str(pause.get("span_id", "")),
        asked_at=_int(pause.get("asked_at")) or now,
        play_sid=play_sid,
        kind=kind,
        wake_at=wake_at,
        event_key=event_key if kind is ResumeKind.EVENT else "",
        group=group,
        branch=branch,
    )


def resolve_waits(play: Play, answers: Iterable[ResumeRequest]) -> Play:
    """``play`` with ``answers`` received (each an open wait, resolved) and ``running``.

    Resolving a branch of a group withdraws the group's other branches in the same change;
    a second answer to the same group is dropped (the first one won).
    """
    pending = list(play.pending_resumes)
    received = list(play.received_resumes)
    withdrawn = list(play.withdrawn_resumes)
    for answer in answers:
        if not any(r.id == answer.id for r in pending):
            continue
        pending = [r for r in pending if r.id != answer.id]
        received.append(answer)
        if answer.group:
            winner = answer.branch or answer.name
            withdrawn += [attrs.evolve(r, withdrawn_by=winner) for r in pending if r.group == answer.group]
            pending = [r for r in pending if r.group != answer.group]
    return attrs.evolve(
        play,
        status=PlayStatus.RUNNING,
        pending_resumes=pending,
        received_resumes=received,
        withdrawn_resumes=withdrawn,
    )


def why_not_open(play: Play, resume_id: str) -> str:
    """Why ``resume_id`` (an id or a name) is not an open wait of ``play``: answered before,
    or withdrawn because another branch of its group won."""
    for gone in play.withdrawn_resumes:
        if resume_id in (gone.id, gone.name):
            winner = next(
                (r for r in play.received_resumes if r.group == gone.group and r.group),
                None,
            )
            when = f" (resolved via {winner.via or 'rpc'} at {winner.resumed_at})" if winner else ""
            return (
                f"branch {gone.branch or gone.name!r} ({gone.id}) of a flow.wait_any was withdrawn: "
                f"branch {gone.withdrawn_by!r} won{when}, so this answer is not taken"
            )
    return f"it no longer asks {resume_id!r}: it was answered or withdrawn"


def wait_summary(play: Play) -> list[dict[str, Any]]:
    """The open waits of a play as the live stream's ``status`` message lists them."""
    out = []
    for wait in play.pending_resumes:
        item: dict[str, Any] = {"resume_id": wait.id, "kind": wait.kind.value, "name": wait.name}
        if wait.wake_at is not None:
            item["wake_at"] = wait.wake_at
        if wait.event_key:
            item["event_key"] = wait.event_key
        if wait.group:
            item["group"] = wait.group
            item["branch"] = wait.branch
        out.append(item)
    return out
