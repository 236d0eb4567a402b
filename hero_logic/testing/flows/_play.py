"""A handle on one play: wait for it, look at it, answer its pauses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import attrs

from hero_logic.rpc import RemoteInvalidParams

from ._result import PlayResult
from ._tree import SpanTree
from ._waits import Answered, Answers, UnusedAnswers, Wait, wrong_answer

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["PlayHandle"]

SETTLED = frozenset({"success", "failed", "cancelled", "timed_out", "awaiting_resume"})
"""Statuses ``play_wait`` returns on: terminal, or waiting for something outside the play."""


class Caller(Protocol):
    """What a play handle needs of the harness (:class:`FlowHarness` is one)."""

    wait_limit: float
    answered_by: str

    async def call(self, method: str, /, **params: Any) -> Any: ...


@attrs.define(eq=False)
class PlayHandle:
    """A play started by the harness (or found by sid)."""

    harness: Caller = attrs.field(repr=False)
    sid: str
    flow_name: str = ""

    # -- looking --------------------------------------------------------------------------------

    async def wait(self) -> PlayResult:
        """The play once it ends or waits on something (a pause): a failure showing its tree
        if it is still going after the harness's ``wait_limit``."""
        __tracebackhide__ = True
        limit = self.harness.wait_limit
        play = await self.harness.call("play_wait", play_sid=self.sid, timeout_ms=max(1, int(limit * 1000)))
        result = await self._result(play)
        if result.status not in SETTLED:
            result.fail(f"the play is still {result.status} after {limit:g} s (FlowHarness.wait_limit)")
        return result

    async def snapshot(self) -> PlayResult:
        """The play as it stands now, without waiting."""
        return await self._result(await self.harness.call("play_status", play_sid=self.sid))

    async def waits(self) -> list[Wait]:
        """What the play waits on now (its own pauses and those of child plays it waits
        for), in the order they were asked."""
        records = await self.harness.call("play_pending_resumes", play_sid=self.sid)
        waits = [Wait.from_json(r, play_sid=self.sid) for r in records]
        return sorted(waits, key=lambda w: w.asked_at)

    async def _result(self, play: Mapping[str, Any], answered: Sequence[Answered] = ()) -> PlayResult:
        waits = await self.waits() if play["status"] in ("awaiting_resume", "running") else []
        spans: dict[str, list[Mapping[str, Any]]] = {}
        await self._collect_spans(play, spans)
        return PlayResult(
            play=play,
            tree=SpanTree.build(spans, self.sid),
            waits=tuple(waits),
            answered=tuple(answered),
            flow_name=self.flow_name,
        )

    async def _collect_spans(self, play: Mapping[str, Any], into: dict[str, list[Mapping[str, Any]]]) -> None:
        """The spans of ``play`` and of every play below it, by play sid."""
        into[play["sid"]] = await self.harness.call("play_spans", play_sid=play["sid"])
        for child_sid in play.get("child_play_sids") or []:
            if child_sid not in into:
                await self._collect_spans(await self.harness.call("play_status", play_sid=child_sid), into)

    # -- answering ------------------------------------------------------------------------------

    async def answer(self, pause: str | Wait, payload: Any) -> Answered:
        """Answer the open pause named ``pause`` (or with that resume id) with ``payload``; a
        running play that has not asked it yet is waited for.

        A payload the pause's schema refuses raises :class:`WrongAnswer`, saying what the pause
        expects (``pause 'approve' expects a boolean, got 'maybe'``)."""
        __tracebackhide__ = True
        wait = pause if isinstance(pause, Wait) else await self._open_pause(pause)
        try:
            await self.harness.call(
                "play_resume",
                play_sid=self.sid,
                resume_id=wait.id,
                payload=payload,
                answered_by=self.harness.answered_by,
            )
        except RemoteInvalidParams as exc:
            data = exc.data if isinstance(exc.data, list) else []
            problems = [p for p in data if isinstance(p, dict) and str(p.get("field", "")).startswith("payload")]
            if not problems:
                raise
            raise wrong_answer(wait, payload, problems, self.sid) from None
        return Answered(wait, payload)

    async def answer_next(self, payload: Any) -> Answered:
        """Answer the next question: the pause asked first among those open once the play
        waits (a running play is waited for)."""
        __tracebackhide__ = True
        result = await self.wait()
        if not result.pauses:
            result.fail("answer_next: the play has no open pause to answer")
        return await self.answer(result.pauses[0], payload)

    async def _open_pause(self, name: str) -> Wait:
        """The open pause named ``name`` (or with that id); a running play that has not asked
        it yet is waited for."""
        __tracebackhide__ = True
        for wait in await self.waits():
            if wait.is_pause and name in (wait.id, wait.name):
                return wait
        result = await self.wait()
        for wait in result.pauses:
            if name in (wait.id, wait.name):
                return wait
        result.fail(f"the play has no open pause {name!r} to answer")

    async def settle(self, answers: Sequence[Any] | Mapping[str, Any] | None = None) -> PlayResult:
        """Wait for the play, answering each pause it asks from ``answers`` — a list, taken in
        the order the pauses are asked, or a dict by pause name (or resume id) — until it ends
        or asks something ``answers`` has no answer for. A play that ends with answers it never
        asked for raises :class:`UnusedAnswers`."""
        __tracebackhide__ = True
        plan = Answers(answers)
        answered: list[Answered] = []
        while True:
            result = await self.wait()
            if result.status != "awaiting_resume":
                break
            step = await self._resolve_one(result, plan)
            if step is None:
                break
            answered.append(step)
        result = attrs.evolve(result, answered=tuple(answered))
        unused = plan.unused()
        if unused and result.status != "awaiting_resume":
            raise UnusedAnswers(
                f"the play ended ({result.status}) without asking for these answers: {', '.join(unused)}\n"
                + result.describe()
            )
        return result

    async def _resolve_one(self, result: PlayResult, plan: Answers) -> Answered | None:
        """Resolve one of the waits of ``result`` that the harness can resolve, the first asked
        first; None when there is none.

        Today that is a pause with an answer in ``plan``. A wait of another kind — ``timer``
        (``flow.sleep``) or ``event`` (``flow.wait_event``) — is left as it is: the play stops
        there and its PlayResult says what it waits on. Resolving those (advancing time,
        sending events) belongs here, beside the pauses, once the service has them.
        """
        __tracebackhide__ = True
        for wait in result.pauses:
            found, payload = plan.take(wait)
            if found:
                return await self.answer(wait, payload)
        return None

    async def cancel(self) -> PlayResult:
        """Cancel the play (and its unfinished child plays)."""
        return await self._result(await self.harness.call("play_cancel", play_sid=self.sid))
