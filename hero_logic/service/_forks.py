"""Forks: checking where a play may be forked from (``play_fork``).

A fork is a new play, on the same or another version of the workflow, that reuses every
step the old play finished, and every answer it received, before a given step span, and runs
that step and everything after it afresh. Steps match by their shape keys (flow name,
arguments and position, no version); the kernel builds the fork's replay file from the old
play's events (``kernel/_recorded.py``). This module checks the request and names what is
wrong with it; ``Plays.play_fork`` creates the play.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hero_logic.kernel import NotFound, WrongState

from ._checks import invalid_field

if TYPE_CHECKING:
    from hero_logic.kernel import Kernel, Play, Span

__all__ = ["fork_point"]

_CONTEXT = "play_fork"


async def fork_point(kernel: Kernel, old: Play, from_span_id: str) -> Span:
    """The step span of ``old`` a fork starts from; -32602 naming ``from_span_id`` when it is
    no step span of that play, -32002 when the play has not ended."""
    if not old.status.is_terminal:
        msg = (
            f"play_fork: play {old.sid} has not ended ({old.status.value}); wait for it or cancel "
            "it first (a fork reuses what it did before a step, which must not change any more)"
        )
        raise WrongState(msg)
    field = "from_span_id"
    if not from_span_id.strip():
        raise invalid_field(
            field,
            f"must name a span of play {old.sid}: pass the span_id of a step from play_spans({old.sid})",
            context=_CONTEXT,
        )
    spans = {s.span_id: s for s in await kernel.repo.spans(old.sid)}
    span = spans.get(from_span_id)
    if span is None:
        elsewhere = await _play_with_span(kernel, old, from_span_id)
        where = f"; it is a span of play {elsewhere}: fork that play instead," if elsewhere else ":"
        raise invalid_field(
            field,
            f"play {old.sid} has no span {from_span_id[:80]!r}{where} pass the span_id of a step "
            f"from play_spans({old.sid})",
            context=_CONTEXT,
        )
    if not span.step_key:
        step = spans.get(span.parent_id)
        while step is not None and not step.step_key:
            step = spans.get(step.parent_id)
        hint = f", such as the step it sits in, {step.name!r} ({step.span_id})" if step is not None else ""
        raise invalid_field(
            field,
            f"span {from_span_id} ({span.name!r}, a {span.kind.value} span) is not a step: fork from "
            f"the span of a @flow call (one with a step_key){hint}",
            context=_CONTEXT,
        )
    return span


async def _play_with_span(kernel: Kernel, play: Play, span_id: str) -> str:
    """A play near ``play`` (its parent, its children, the play it was retried or forked from)
    that has span ``span_id``, or ""."""
    near = [play.parent_play_sid, *play.child_play_sids, play.fork_of, play.reuse_steps_of]
    for sid in dict.fromkeys(s for s in near if s):
        try:
            spans = await kernel.repo.spans(sid)
        except NotFound:
            continue
        if any(s.span_id == span_id for s in spans):
            return sid
    return ""
