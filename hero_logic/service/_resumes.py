"""Answers to pauses: the open pauses of a play (and of the child plays it waits for), and
``play_resume``, which checks an answer and hands it to the kernel.

Answers to one play are taken one at a time. The answer's schema is the flow's, so it is
checked in the schema checker's worker process, never here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from hero_logic.kernel import (
    Conflict,
    InvalidParams,
    Kernel,
    KeyedLock,
    NotFound,
    Play,
    PlayStatus,
    ResumeKind,
    ResumeRequest,
    WrongState,
    now_ms,
    why_not_open,
)

from ._checks import canonical_json, invalid_field
from ._marker import rpc_method
from ._schema_check import SchemaChecker, SchemaCheckFailed

if TYPE_CHECKING:
    from ._resume_links import ResumeLinks

__all__ = ["MAX_ANSWERED_BY", "Resumes", "check_payload"]

MAX_ANSWERED_BY = 200
"""Longest ``answered_by`` label, in characters."""


def _receipt_or_conflict(play: Play, answered: ResumeRequest, payload: Any, *, context: str) -> dict[str, Any]:
    """The first receipt when ``payload`` is the answer already taken (or the wait was a timer
    or an event, which take no answer); else a Conflict."""
    if canonical_json(answered.payload) == canonical_json(payload) or answered.kind is not ResumeKind.INPUT:
        return {"ok": True, "resumed_at": answered.resumed_at, "play_sid": play.sid, "resume_id": answered.id}
    msg = (
        f"{context}: pause {answered.name!r} ({answered.id}) of play {play.sid} was already "
        f"answered with {canonical_json(answered.payload)[:200]}; a different answer cannot replace it"
    )
    raise Conflict(msg)

async def check_payload(checker: SchemaChecker, request: ResumeRequest, payload: Any, *, context: str) -> None:
    """Raise InvalidParams naming each way ``payload`` breaks the pause's JSON schema (the
    schema is the flow's, so it is evaluated in the checker's worker, never here)."""
    if not isinstance(request.schema, dict) or not request.schema:
        return
    try:
        found = await checker.problems(request.schema, payload)
    except SchemaCheckFailed as exc:
        msg = f"{context}: pause {request.name!r} declares a JSON schema that cannot be used ({exc}); fix the flow's pause(schema=...)"
        raise WrongState(msg) from None
    problems = [
        {
            "field": "payload" + "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in problem["path"]),
            "error": problem["message"],
        }
        for problem in found
    ]
    if problems:
        raise InvalidParams.fields(problems, context=f"{context}: the answer to pause {request.name!r} does not match its schema")



@attrs.define(eq=False)
class Resumes:
    """The pause and resume methods of the API."""

    kernel: Kernel
    schema_checker: SchemaChecker
    links: ResumeLinks | None = None
    """Signs the ``url`` of each open question (set when the service is assembled)."""
    _resume_locks: KeyedLock = attrs.Factory(KeyedLock)

    # -- pauses and resumes ----------------------------------------------------------------------

    async def open_pauses(self, play: Play) -> list[ResumeRequest]:
        """The unanswered pauses of ``play`` (those its running run has reached so far too) and
        of the child plays it waits for, recursively."""
        out = [attrs.evolve(r, play_sid=r.play_sid or play.sid) for r in play.pending_resumes]
        known = {r.id for r in out} | {r.id for r in play.received_resumes}
        out += [r for r in self.kernel.live_pauses(play.sid) if r.id not in known]
        if play.status in (PlayStatus.AWAITING_RESUME, PlayStatus.RUNNING):
            for child_sid in play.child_play_sids:
                try:
                    child = await self.kernel.repo.get_play(child_sid)
                except NotFound:
                    continue
                if child.status is PlayStatus.AWAITING_RESUME:
                    out += await self.open_pauses(child)
        return out

    @rpc_method(admin=True)
    async def play_pending_resumes(self, play_sid: str) -> list[ResumeRequest]:
        """The open pauses of a play, including those of child plays it waits for (each
        names its play in play_sid, and each question a person answers has its ``url``)."""
        opened = await self.open_pauses(await self.kernel.repo.get_play(play_sid))
        return [self.links.with_url(r, play_sid) for r in opened] if self.links else opened

    @rpc_method(admin=True)
    async def play_resume(self, play_sid: str, resume_id: str, payload: Any = None, answered_by: str = "") -> dict[str, Any]:
        """Answer a pause (by resume id, or by pause name when that is unambiguous) and
        continue the play from where it paused; on a timer (a sleep, a wait's timeout) with a
        null payload, wake it now.

        The payload is checked against the pause's JSON schema. Idempotent: the same payload
        again returns the first answer and runs nothing; a different payload for an answered
        pause is a conflict. A pause of a child play can be answered through its parent.
        Answers to one play are taken one at a time, so concurrent identical answers all get
        the first one's receipt and concurrent different answers conflict."""
        return await self.answer(play_sid, resume_id, payload, answered_by=answered_by, via="rpc")

    async def answer(
        self, play_sid: str, resume_id: str, payload: Any, *, answered_by: str = "", via: str = "rpc"
    ) -> dict[str, Any]:
        """``play_resume`` for every door: ``via`` says which (``rpc``, ``url``, ``webhook``)."""
        if len(answered_by) > MAX_ANSWERED_BY or not answered_by.isprintable():
            msg = "answered_by"
            raise invalid_field(
                msg, f"must be one line of at most {MAX_ANSWERED_BY} printable characters, got {answered_by[:80]!r}",
                context="play_resume",
            )
        async with self._resume_locks.hold(play_sid):
            return await self._resume(play_sid, resume_id, payload, answered_by=answered_by, via=via)

    async def _resume(self, play_sid: str, resume_id: str, payload: Any, *, answered_by: str, via: str) -> dict[str, Any]:
        context = "play_resume"
        play = await self.kernel.repo.get_play(play_sid)
        opened = await self.open_pauses(play)
        is_open = any(resume_id in (r.id, r.name) for r in opened)
        for answered in play.received_resumes:
            if answered.id == resume_id:
                return _receipt_or_conflict(play, answered, payload, context=context)
        if any(resume_id in (w.id, w.name) for w in play.withdrawn_resumes) and not is_open:
            msg = f"{context}: play {play.sid}: {why_not_open(play, resume_id)}"
            raise WrongState(msg)
        # A name means the one *open* pause of that name (a question asked in a loop has one
        # name and many ids): only when none is open does it mean the one answered last.
        matches = [r for r in opened if r.id == resume_id] or [r for r in opened if r.name == resume_id]
        if not matches:
            by_name = [a for a in play.received_resumes if a.name == resume_id]
            if by_name:
                return _receipt_or_conflict(play, by_name[-1], payload, context=context)
            child_sid = await self._child_that_answered(play, resume_id)
            if child_sid:  # the same answer again through the parent: idempotent there too
                return await self.answer(child_sid, resume_id, payload, answered_by=answered_by, via=via)
            if play.status is not PlayStatus.AWAITING_RESUME and not self.kernel.is_active(play.sid):
                msg = f"{context}: play {play.sid} is {play.status.value}, not awaiting resume {resume_id!r}"
                raise WrongState(msg)
            listed = ", ".join(f"{r.id} ({r.name!r})" for r in opened) or "none"
            why = f"play {play.sid} has no open pause {resume_id!r}; open: {listed}"
            msg_0 = "resume_id"
            raise invalid_field(msg_0, why, context=context)
        if len(matches) > 1:
            listed = ", ".join(r.id for r in matches)
            why = f"{resume_id!r} names several open pauses ({listed}): pass the resume id"
            msg_0 = "resume_id"
            raise invalid_field(msg_0, why, context=context)
        request = matches[0]
        if request.play_sid != play.sid:
            return await self.answer(request.play_sid, request.id, payload, answered_by=answered_by, via=via)
        if request.kind is ResumeKind.EVENT:
            why = (
                f"{request.id} ({request.name!r}) waits for the event {request.event_key!r}: send it with "
                f"event_send(key={request.event_key!r}, payload=...)"
            )
            field = "resume_id"
            raise invalid_field(field, why, context=context)
        if request.kind is ResumeKind.TIMER and payload is not None:
            why = f"a timer ({request.name!r}) is woken early with a null payload, got {canonical_json(payload)[:80]}: pass payload=null"
            field = "payload"
            raise invalid_field(field, why, context=context)
        await check_payload(self.schema_checker, request, payload, context=context)
        answered = attrs.evolve(request, payload=payload, resumed_at=now_ms(), answered_by=answered_by, via=via)
        try:
            # Durable before we answer; a play still running takes it when its run settles.
            await self.kernel.resume(play.sid, answered)
        except WrongState as exc:
            msg_1 = f"{context}: {exc.message}"
            raise WrongState(msg_1) from None
        return {"ok": True, "resumed_at": answered.resumed_at, "play_sid": play.sid, "resume_id": request.id}

    async def _child_that_answered(self, play: Play, resume_id: str) -> str:
        """The sid of a descendant play that already received an answer for ``resume_id``."""
        for child_sid in play.child_play_sids:
            try:
                child = await self.kernel.repo.get_play(child_sid)
            except NotFound:
                continue
            if any(resume_id in (r.id, r.name) for r in child.received_resumes):
                return child.sid
            deeper = await self._child_that_answered(child, resume_id)
            if deeper:
                return deeper
        return ""

