"""The replay file of a play's next run (``HERO_FLOW_REPLAY_FILE``, see the ``hero_tracing``
docstring): what its earlier runs finished, failed, were answered and were woken with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hero_logic.sdk import failure_entry

from ._model import Play, ResumeKind
from ._recorded import replay_extras

if TYPE_CHECKING:
    from ._repo import Repo

__all__ = ["replay_for"]


async def replay_for(repo: Repo, play: Play) -> dict[str, Any] | None:
    """The replay caches of a play's next run: finished steps, failed steps, answers, woken
    waits, open waits' deadlines, prefills. A retry that reuses another play's steps takes its
    outputs, not its failures: the steps that failed there run again."""
    steps: dict[str, Any] = {}
    failures: dict[str, Any] = {}
    events: list[dict[str, Any]] = []  # after the loop: the play's own (its sid comes last)
    for sid in (play.reuse_steps_of, play.sid):
        if not sid:
            continue
        for event in (events := await repo.read_events(sid)):
            kind = event.get("type")
            if kind == "step_output":
                steps[event["step_key"]] = event.get("output")
                failures.pop(event["step_key"], None)
            elif kind == "step_failed" and sid == play.sid:
                failures[event["step_key"]] = failure_entry(event)
                steps.pop(event["step_key"], None)
    resumes = {r.id: r.payload for r in play.received_resumes if r.kind is ResumeKind.INPUT}
    reused = await repo.find_play(play.reuse_steps_of) if play.reuse_steps_of else None
    if reused is not None:  # a retry that reuses steps reuses the answers too
        resumes = {**{r.id: r.payload for r in reused.received_resumes if r.kind is ResumeKind.INPUT}, **resumes}
    extras = await replay_extras(repo, play, events)  # strict replay, forks
    woken = {r.id: _woken(r) for r in play.received_resumes if r.kind is not ResumeKind.INPUT}
    waits = {r.id: {"wake_at": r.wake_at} for r in play.pending_resumes if r.wake_at is not None}
    if not (steps or failures or resumes or woken or waits or play.prefill_resumes or extras):
        return None
    replay: dict[str, Any] = {"steps": steps, "resumes": resumes, **extras}
    for key, value in (("failures", failures), ("woken", woken), ("waits", waits)):
        if value:
            replay[key] = value
    if play.prefill_resumes:
        replay["prefill"] = play.prefill_resumes
        replay["prefill_only"] = True
    return replay


def _woken(request: Any) -> dict[str, Any]:
    entry = {"via": request.via or "rpc", "at": request.resumed_at, "payload": request.payload}
    if request.event_id:
        entry["event_id"] = request.event_id
    return entry
