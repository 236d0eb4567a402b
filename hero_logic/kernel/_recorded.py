"""What a play's earlier runs did, read from its events: for strict replay and for forks.

Pure functions over a play's wire events, and :func:`replay_extras`, which reads the store
to add their results to a play's replay file. :func:`recorded_run` gives the replay
file's ``recorded``: every ``@flow`` call and pause in the order the play's runs first made
them, with the step key of the call each was made in, so a re-run can be held to it (see
``hero_tracing._strict``). :func:`record_before` gives what a fork reuses: the steps that
finished, and the pauses that were asked (with their answers), before a given span started,
keyed by their version-free shape keys.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from hero_logic.sdk import failure_entry

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from ._model import Play
    from ._repo import Repo

__all__ = [
    "MAX_FORK_DEPTH",
    "RECORDED_EVENT_TYPES",
    "SHOWN_INPUT_CHARS",
    "Before",
    "fork_reuse",
    "record_before",
    "recorded_run",
    "replay_extras",
]

MAX_FORK_DEPTH = 100
"""Forks of forks followed back to find an answer a fork took from the play it came from."""

SHOWN_INPUT_CHARS = 120
"""Characters of a call's arguments a ``recorded`` entry keeps (for the message naming it)."""


class _Owners:
    """Which ``@flow`` call each span was made in: the nearest span at or above it that
    carries a step key (``flow.step`` blocks and instrumented spans do not count)."""

    def __init__(self) -> None:
        self._spans: dict[str, tuple[str, str]] = {}
        self._owner: dict[str, str] = {}

    def start(self, span_id: str, parent_id: str, step_key: str) -> None:
        self._spans.setdefault(span_id, (parent_id, step_key))

    def owner(self, span_id: str) -> str:
        """The step key of the call at or above ``span_id`` ("" above the entry flow)."""
        known = self._owner.get(span_id)
        if known is not None:
            return known
        walked: list[str] = []
        found, here = "", span_id
        for _ in range(10_000):
            if here in self._owner:
                found = self._owner[here]
                break
            span = self._spans.get(here)
            if span is None:
                break
            walked.append(here)
            if span[1]:
                found = span[1]
                break
            here = span[0]
        for seen in walked:
            self._owner[seen] = found
        return found


def _shown_input(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text[:SHOWN_INPUT_CHARS]


RECORDED_EVENT_TYPES = frozenset({"span_start", "step_output", "step_failed", "pause"})
"""The event types :func:`recorded_run` reads (a replay decodes no other: keep them in step)."""


def recorded_run(events: Iterable[Mapping[str, Any]], answered: Iterable[str]) -> dict[str, Any] | None:
    """The replay file's ``recorded`` for a play with these events whose pauses ``answered``
    (resume ids) have answers; None if its runs reported no call or pause the SDK placed.

    Only calls whose ``span_start`` carries ``input`` and pauses carrying ``shape_key`` are
    entries: those the SDK gives a position (an SDK from before strict replay sent neither,
    so a play it began is not held to positions it did not count).

    ``calls`` lists ``[parent, id, name, kind, input]`` per call or pause, in the order first
    made: ``parent`` the step key of the call it was made in ("" for the entry flow), ``id``
    its step key or resume id, ``kind`` one of ``called`` / ``finished`` / ``asked`` /
    ``answered``, ``input`` its arguments as JSON text (cut short). ``parallel`` lists the
    parents whose calls came from more than one thread or task.
    """
    owners = _Owners()
    entries: dict[str, list[Any]] = {}
    parallel: dict[str, None] = {}
    answers = set(answered)
    for event in events:
        kind = event.get("type")
        if kind == "span_start":
            span_id, parent_id = event.get("span_id"), event.get("parent_id")
            if not isinstance(span_id, str) or not isinstance(parent_id, str):
                continue
            key = event.get("step_key")
            key = key if isinstance(key, str) else ""
            owners.start(span_id, parent_id, key)
            tags = event.get("tags")
            rid = tags.get("resume_id") if isinstance(tags, dict) else None
            if key and "input" in event:  # a call the SDK placed (waits, attempts: their own)
                parent = owners.owner(parent_id)
                if key not in entries:
                    entries[key] = [parent, key, str(event.get("name", "")), "called", _shown_input(event.get("input"))]
                if event.get("status") == "replayed":  # answered from the caches: finished
                    entries[key][3] = "finished"
                if event.get("parallel") is True:
                    parallel[parent] = None
            elif isinstance(rid, str) and "shape_key" in event and str(event.get("name", "")).startswith("pause:"):
                parent = owners.owner(parent_id)
                done = event.get("status") == "replayed"
                entry = entries.setdefault(rid, [parent, rid, str(event["name"])[6:], "asked", ""])
                if done:
                    entry[3] = "answered"
        elif kind in ("step_output", "step_failed"):
            done = entries.get(str(event.get("step_key")))
            if done is not None and done[3] == "called":
                done[3] = "finished"
        elif kind == "pause":
            rid, asking = event.get("resume_id"), event.get("span_id")
            if not isinstance(rid, str) or not isinstance(asking, str) or "shape_key" not in event:
                continue
            parent = owners.owner(asking)
            entries.setdefault(rid, [parent, rid, str(event.get("name", "")), "asked", ""])
            if event.get("parallel") is True:
                parallel[parent] = None
    if not entries:
        return None
    for entry in entries.values():
        if entry[3] == "asked" and entry[1] in answers:
            entry[3] = "answered"
    return {"calls": list(entries.values()), "parallel": list(parallel)}


class Before:
    """What a play had finished and been answered before one of its spans started, by shape."""

    __slots__ = ("answered", "failures", "found", "replayed", "reused_answers", "start_ms", "steps")

    def __init__(self) -> None:
        self.found = False
        """True if the span was found (else everything the play did is here)."""
        self.start_ms = 0
        """When the span first started (0 if not found)."""
        self.steps: dict[str, Any] = {}
        self.failures: dict[str, Any] = {}
        self.answered: dict[str, str] = {}
        """Shape key → resume id of a pause the play asked (its answer is the play's)."""
        self.reused_answers: set[str] = set()
        """Shape keys of pauses answered from the play this one was forked from."""
        self.replayed: set[str] = set()
        """Step keys of steps replayed from another play's record without being recorded
        again here (``play_retry(reuse_steps=true)``): their outcomes are that play's."""


def record_before(events: Iterable[Mapping[str, Any]], span_id: str) -> Before:
    """The steps that finished, and the pauses reached, before span ``span_id`` first started.

    Steps by shape key (``step_output`` / ``step_failed`` events carrying ``shape_key``): a
    step's last outcome before the span wins. Pauses by shape key, to their resume id (the
    play's own answer) or marked as answered by the play it was forked from.
    """
    before = Before()
    for event in events:
        kind = event.get("type")
        if kind == "span_start":
            if event.get("span_id") == span_id:
                before.found = True
                start = event.get("start_ms")
                before.start_ms = start if isinstance(start, int) else 0
                break
            shape, tags, key = event.get("shape_key"), event.get("tags"), event.get("step_key")
            if isinstance(key, str) and event.get("status") == "replayed":
                before.replayed.add(key)
            if isinstance(shape, str) and isinstance(tags, dict) and isinstance(tags.get("resume_id"), str):
                if "reused_from" in tags:
                    before.reused_answers.add(shape)
                else:
                    before.answered[shape] = tags["resume_id"]
            continue
        shape = event.get("shape_key")
        if not isinstance(shape, str):
            continue
        before.replayed.discard(str(event.get("step_key")))  # recorded here after all
        if kind == "step_output":
            before.steps[shape] = event.get("output")
            before.failures.pop(shape, None)
        elif kind == "step_failed":
            before.failures[shape] = failure_entry(event)
            before.steps.pop(shape, None)
        elif kind == "pause" and isinstance(event.get("resume_id"), str):
            before.answered.setdefault(shape, event["resume_id"])
    return before


async def fork_reuse(repo: Repo, play: Play, depth: int = 0) -> dict[str, Any]:
    """The replay file's ``reuse`` for a fork: what the play it was forked from finished, and
    the answers it had received, before the span the fork starts from (by shape key)."""
    source = await repo.get_play(play.fork_of)
    events = await repo.read_events(source.sid)
    before = await _off_the_loop_if_big(record_before, events, play.fork_from_span_id)
    payloads = {
        r.id: r.payload
        for r in source.received_resumes
        if not before.start_ms or r.resumed_at is None or r.resumed_at <= before.start_ms
    }
    resumes = {shape: payloads[rid] for shape, rid in before.answered.items() if rid in payloads}
    if before.replayed and source.reuse_steps_of:  # a retry that reused its steps: theirs
        for event in await repo.read_events(source.reuse_steps_of):
            shape = event.get("shape_key")
            if event.get("type") == "step_output" and event.get("step_key") in before.replayed and isinstance(shape, str):
                before.steps.setdefault(shape, event.get("output"))
    if before.reused_answers and source.fork_of and depth < MAX_FORK_DEPTH:
        upstream = (await fork_reuse(repo, source, depth + 1))["resumes"]
        resumes.update({shape: upstream[shape] for shape in before.reused_answers if shape in upstream})
    return {"play_sid": source.sid, "steps": before.steps, "failures": before.failures, "resumes": resumes}


async def replay_extras(repo: Repo, play: Play, events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """What strict replay and forks add to the replay file of ``play``'s next run, given its
    own ``events`` so far: ``recorded`` (after a first run) and ``reuse`` (for a fork)."""
    extras: dict[str, Any] = {}
    answered = [r.id for r in play.received_resumes]
    recorded = await _off_the_loop_if_big(recorded_run, events, answered)
    if recorded is not None:
        extras["recorded"] = recorded
    if play.fork_of:
        extras["reuse"] = await fork_reuse(repo, play)
    return extras


T = TypeVar("T")
SMALL_RUN = 2_000
"""Events few enough to read on the event loop (less than a hop to a worker thread)."""


async def _off_the_loop_if_big(fn: Callable[..., T], events: Any, *args: Any) -> T:
    """``fn(events, *args)``: in a worker thread for a big play, at once for a small one."""
    if isinstance(events, list | tuple) and len(events) < SMALL_RUN:
        return fn(events, *args)
    return await trio.to_thread.run_sync(fn, events, *args)
