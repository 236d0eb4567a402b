"""Plays: the one place a Play record is created, and the methods that start, list and end them.

Every play — ``play_start``, ``play_run_async``, a retry, a benchmark run, a child play, and
later schedules and webhooks — is made by :meth:`Plays.create`, which checks the inputs against
the version and hands the record to the kernel. Status changes are the kernel's alone.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol, cast

import attrs
import trio

from hero_logic.kernel import (
    Kernel,
    KeyedLock,
    Play,
    PlayStatus,
    RawJson,
    Span,
    WrongState,
    dumps,
    new_sid,
    now_ms,
)
from hero_logic.sdk import decode_event

from ._checks import check_limit, check_name, check_offset, invalid_field
from ._forks import fork_point
from ._inputs import check_inputs
from ._marker import rpc_method

if TYPE_CHECKING:
    from hero_logic.kernel import FoldedSpans

    from ._resume_links import ResumeLinks
    from ._workflows import Workflows


def _without_schemas(play: Play) -> Play:
    return attrs.evolve(play, pending_resumes=[attrs.evolve(r, schema=None, ui=None) for r in play.pending_resumes])


class StartPlanner(Protocol):
    """What resolves a preset (``example_sid``) or a pick for ``play_start``: the library."""

    async def plan_start(
        self,
        *,
        workflow_sid: str,
        input_data: dict[str, Any] | None,
        version_sid: str,
        prefill_resumes: dict[str, Any] | None,
        name: str,
        example_sid: str,
        pick: dict[str, Any] | None,
    ) -> StartPlan: ...


@attrs.frozen
class StartPlan:
    """What ``play_start`` runs once a preset and a pick are resolved."""

    input_data: dict[str, Any]
    version_sid: str
    prefill_resumes: dict[str, Any]
    name: str

__all__ = ["REPLAYED_EVENT_TYPES", "Plays", "StartPlan", "StartPlanner"]

REPLAYED_EVENT_TYPES = frozenset({"step_output", "step_failed", "output", "pause"})
"""Events a resume or a recovery trusts as the flow's own record: never taken from span_push."""


@attrs.define(eq=False)
class Plays:
    """The play methods of the API."""

    kernel: Kernel
    workflows: Workflows
    library: StartPlanner | None = None
    """Presets and version picking for ``play_start`` (set when the service is assembled)."""
    links: ResumeLinks | None = None
    """Signs the ``url`` of each open question (set when the service is assembled)."""
    _key_locks: KeyedLock = attrs.Factory(KeyedLock)

    async def create(
        self,
        *,
        context: str,
        workflow_sid: str,
        input_data: dict[str, Any],
        version_sid: str = "",
        name: str = "",
        parent_span_id: str = "",
        parent_play_sid: str = "",
        prefill_resumes: dict[str, Any] | None = None,
        timeout_ms: int = 0,
        reuse_steps_of: str = "",
        step_key: str = "",
        sid: str = "",
        idempotency_key: str = "",
        deadline_ms: int = 0,
        fork_of: str = "",
        fork_from_span_id: str = "",
    ) -> Play:
        """Create a ``pending`` play of a version (the workflow's current one unless named),
        its inputs checked against the version's fields, and hand it to the kernel to run.

        With an ``idempotency_key`` already used for the workflow, the play it started is
        returned and nothing new starts; the key is stored in the commit that creates the play,
        so no crash can start two."""
        if timeout_ms < 0:
            msg = "timeout_ms"
            raise invalid_field(msg, f"must be 0 (the default limit) or positive, got {timeout_ms}", context=context)
        if deadline_ms < 0:
            msg = "deadline_ms"
            raise invalid_field(msg, f"must be 0 (no deadline) or positive, got {deadline_ms}", context=context)
        if idempotency_key:
            key = check_name(idempotency_key, context=context, field="idempotency_key", what="the start")
            async with self._key_locks.hold(f"{workflow_sid}/{key}"):
                earlier = await self.kernel.repo.play_for_key(workflow_sid, key)
                if earlier is not None:
                    return earlier
                return await self._create(
                    context=context, workflow_sid=workflow_sid, input_data=input_data, version_sid=version_sid,
                    name=name, parent_span_id=parent_span_id, parent_play_sid=parent_play_sid,
                    prefill_resumes=prefill_resumes, timeout_ms=timeout_ms, reuse_steps_of=reuse_steps_of,
                    step_key=step_key, sid=sid, idempotency_key=key, deadline_ms=deadline_ms,
                    fork_of=fork_of, fork_from_span_id=fork_from_span_id,
                )
        return await self._create(
            context=context, workflow_sid=workflow_sid, input_data=input_data, version_sid=version_sid,
            name=name, parent_span_id=parent_span_id, parent_play_sid=parent_play_sid,
            prefill_resumes=prefill_resumes, timeout_ms=timeout_ms, reuse_steps_of=reuse_steps_of,
            step_key=step_key, sid=sid, deadline_ms=deadline_ms,
            fork_of=fork_of, fork_from_span_id=fork_from_span_id,
        )

    async def _create(
        self,
        *,
        context: str,
        workflow_sid: str,
        input_data: dict[str, Any],
        version_sid: str,
        name: str,
        parent_span_id: str,
        parent_play_sid: str,
        prefill_resumes: dict[str, Any] | None,
        timeout_ms: int,
        reuse_steps_of: str,
        step_key: str,
        sid: str,
        idempotency_key: str = "",
        deadline_ms: int = 0,
        fork_of: str = "",
        fork_from_span_id: str = "",
    ) -> Play:
        async with self.workflows.creating_play(workflow_sid):
            wf = await self.kernel.repo.get_workflow(workflow_sid)
            version = await self.workflows.version_for(wf, version_sid, context=context)
            inputs = check_inputs(version.inputs, input_data, flow_name=version.entry_flow or wf.name)
            now = now_ms()
            play = Play(
                sid=sid or new_sid("play"),
                workflow_sid=wf.sid,
                workflow_version_sid=version.sid,
                name=name,
                input_data=inputs,
                parent_span_id=parent_span_id,
                parent_play_sid=parent_play_sid,
                prefill_resumes=dict(prefill_resumes or {}),
                reuse_steps_of=reuse_steps_of,
                fork_of=fork_of,
                fork_from_span_id=fork_from_span_id,
                timeout_ms=timeout_ms,
                created_at=now,
                deadline_at=now + deadline_ms if deadline_ms else None,
            )
            also = self.kernel.repo.put_play_key(wf.sid, idempotency_key, play.sid) if idempotency_key else []
            return await self.kernel.create_play(play, step_key=step_key, also=also)

    # -- plays -----------------------------------------------------------------------------------

    @rpc_method(admin=True)
    async def play_start(
        self,
        workflow_sid: str,
        input_data: dict[str, Any] | None = None,
        version_sid: str = "",
        name: str = "",
        example_sid: str = "",
        prefill_resumes: dict[str, Any] | None = None,
        timeout_ms: int = 0,
        pick: dict[str, Any] | None = None,
        idempotency_key: str = "",
        deadline_ms: int = 0,
    ) -> str:
        """Start a play of a workflow (its current version unless version_sid is given);
        returns the play sid at once.

        example_sid runs a preset: its input values and prefills, under any explicit
        input_data and prefill_resumes, on its pinned version unless version_sid is given.
        pick ({cost_weight, speed_weight, accuracy_weight, min_accuracy}) lets the version
        picker choose the version, as pick_version does. A start with an idempotency_key
        already used for the workflow returns the first play's sid and starts nothing.
        timeout_ms bounds each run (every resume and recovery gets a new budget); deadline_ms
        bounds the whole play, runs and pauses together, from its start."""
        if example_sid or pick is not None:
            if self.library is None:
                msg = "play_start: this service runs without the library, so example_sid and pick are unavailable"
                raise WrongState(msg)
            plan = await self.library.plan_start(
                workflow_sid=workflow_sid, input_data=input_data, version_sid=version_sid,
                prefill_resumes=prefill_resumes, name=name, example_sid=example_sid, pick=pick,
            )
            input_data, version_sid, prefill_resumes, name = (
                plan.input_data, plan.version_sid, plan.prefill_resumes, plan.name
            )
        play = await self.create(
            context="play_start",
            workflow_sid=workflow_sid,
            input_data=input_data or {},
            version_sid=version_sid,
            name=name,
            prefill_resumes=prefill_resumes,
            timeout_ms=timeout_ms,
            idempotency_key=idempotency_key,
            deadline_ms=deadline_ms,
        )
        return play.sid

    @rpc_method()
    async def play_run_async(
        self, workflow_sid: str, input_data: dict[str, Any], parent_span_id: str = ""
    ) -> str:
        """Start a play of the workflow's current version without waiting; parent_span_id
        becomes the parent of its root span. Rejects versions without python_source."""
        play = await self.create(
            context="play_run_async",
            workflow_sid=workflow_sid,
            input_data=input_data,
            parent_span_id=parent_span_id,
        )
        return play.sid

    @rpc_method(admin=True)
    async def play_status(self, play_sid: str) -> Play:
        """The play as it stands (each open question a person answers has its ``url``)."""
        return self._with_urls(await self.kernel.repo.get_play(play_sid))

    @rpc_method(cancel_on_disconnect=True)
    async def play_wait(self, play_sid: str, timeout_ms: int = 0) -> Play:
        """The play once it is terminal or awaiting resume, or when timeout_ms (0 = forever)
        runs out."""
        if timeout_ms < 0:
            msg = "timeout_ms"
            raise invalid_field(msg, f"must be 0 (forever) or positive, got {timeout_ms}", context="play_wait")
        return self._with_urls(await self.kernel.wait(play_sid, timeout_ms))

    def _with_urls(self, play: Play) -> Play:
        return self.links.with_urls(play) if self.links is not None else play

    @rpc_method(admin=True)
    async def play_cancel(self, play_sid: str) -> Play:
        """Cancel an unfinished play; its process group is killed. Returns the cancelled play."""
        return await self.kernel.cancel(play_sid)

    @rpc_method(admin=True)
    async def play_retry(self, play_sid: str, reuse_steps: bool = False) -> str:
        """Start a new play with the same inputs on the same version; returns its sid.

        By default every step runs afresh. With reuse_steps=true the new play replays the
        steps the old one finished (same version, same step keys) and runs from the step that
        failed: "retry from the failed step"."""
        old = await self.kernel.repo.get_play(play_sid)
        if not old.status.is_terminal:
            msg = f"play_retry: play {play_sid} has not ended ({old.status.value}); wait for it or cancel it first"
            raise WrongState(msg)
        play = await self.create(
            context="play_retry",
            workflow_sid=old.workflow_sid,
            input_data=old.input_data,
            version_sid=old.workflow_version_sid,
            name=old.name,
            prefill_resumes=old.prefill_resumes,
            timeout_ms=old.timeout_ms,
            reuse_steps_of=old.sid if reuse_steps else "",
        )
        return play.sid

    @rpc_method(admin=True)
    async def play_fork(
        self, play_sid: str, from_span_id: str, input_data: dict[str, Any] | None = None, version_sid: str = ""
    ) -> str:
        """Start a new play that reuses what an ended play did before one of its steps; returns
        its sid.

        Every step the old play finished before the step span from_span_id started, and every
        answer it received before then, is replayed (marked replayed, tagged reused_from); that
        step and everything after it run afresh. input_data (null: the old play's) and
        version_sid ("" : the old play's version) may differ: steps match by flow name,
        arguments and position, not by version, so a fork onto a fixed version reuses every
        finished step before the one that failed."""
        old = await self.kernel.repo.get_play(play_sid)
        await fork_point(self.kernel, old, from_span_id)
        play = await self.create(
            context="play_fork",
            workflow_sid=old.workflow_sid,
            input_data=old.input_data if input_data is None else input_data,
            version_sid=version_sid or old.workflow_version_sid,
            name=old.name,
            prefill_resumes=old.prefill_resumes,
            timeout_ms=old.timeout_ms,
            fork_of=old.sid,
            fork_from_span_id=from_span_id,
        )
        return play.sid

    @rpc_method(admin=True)
    async def play_list(
        self,
        workflow_sid: str = "",
        status: str = "",
        limit: int = 50,
        name: str = "",
        query: str = "",
        since_ms: int = 0,
        until_ms: int = 0,
        before: str = "",
        hide_benchmarks: bool = False,
        hide_schedules: bool = False,
    ) -> list[Play]:
        """Plays, newest first, optionally of one workflow and/or in some statuses (one, or
        several comma-separated), whose name contains ``name``, whose sid starts with or name
        contains ``query``, created in [since_ms, until_ms), older than the play ``before``
        (the last sid of the previous page), without benchmark or schedule runs."""
        context = "play_list"
        check_limit(limit, context=context)
        statuses: list[PlayStatus] = []
        for part in filter(None, (p.strip() for p in status.split(","))):
            try:
                statuses.append(PlayStatus(part))
            except ValueError:
                allowed = ", ".join(s.value for s in PlayStatus)
                msg = "status"
                raise invalid_field(msg, f"unknown play status {part!r}; one of: {allowed}", context=context) from None
        if since_ms < 0 or until_ms < 0:
            msg = "since_ms" if since_ms < 0 else "until_ms"
            raise invalid_field(msg, "must be 0 (no bound) or a time in ms since the epoch", context=context)
        if workflow_sid:
            await self.kernel.repo.get_workflow(workflow_sid)
        needle, search = name.casefold(), query.strip().casefold()

        def accept(play: Play) -> bool:
            label = play.name.casefold()
            return (
                (not needle or needle in label)
                and (not search or play.sid.casefold().startswith(search) or search in label)
                and (not since_ms or play.created_at >= since_ms)
                and (not until_ms or play.created_at < until_ms)
                and not (hide_benchmarks and play.name.startswith("benchmark:"))
                and not (hide_schedules and play.name.startswith("schedule:"))
            )

        plays = await self.kernel.repo.list_plays(
            workflow_sid=workflow_sid, statuses=statuses, limit=limit, before=before, accept=accept
        )
        # A list shows which questions are open, not their schemas: play_pending_resumes has those.
        return [_without_schemas(p) if p.pending_resumes else p for p in plays]

    @rpc_method(admin=True, large_result=True)
    async def play_spans(self, play_sid: str, offset: int = 0, limit: int = 0) -> list[Span]:
        """The play's spans in start order (parent links in parent_id); ``offset`` and ``limit``
        (0 = all) take a page of them, as play_spans_page does with the total."""
        folded = await self._folded(play_sid, offset, limit, context="play_spans")
        # Encoded already, off the event loop: the door sends the bytes as they are.
        page: Any = await trio.to_thread.run_sync(folded.json_array, offset, limit)
        return cast("list[Span]", page)

    @rpc_method(admin=True, large_result=True)
    async def play_spans_page(self, play_sid: str, offset: int = 0, limit: int = 1000) -> dict[str, Any]:
        """A page of the play's spans in start order: ``{spans, total, offset, limit}``."""
        folded = await self._folded(play_sid, offset, limit, context="play_spans_page")
        spans = await trio.to_thread.run_sync(folded.json_array, offset, limit)
        head = dumps({"total": folded.count, "offset": offset, "limit": limit})
        return cast("dict[str, Any]", RawJson(head[:-1] + b',"spans":', *spans.pieces, b"}"))

    async def _folded(self, play_sid: str, offset: int, limit: int, *, context: str) -> FoldedSpans:
        check_offset(offset, context=context)
        if limit:
            check_limit(limit, context=context)
        await self.kernel.repo.get_play(play_sid)
        return await self.kernel.repo.folded_spans(play_sid)

    @rpc_method()
    async def span_push(self, play_sid: str, event_json: dict[str, Any]) -> bool:
        """Apply one wire event to a play through the same path as its span socket (for tests
        and tools); malformed events are rejected with -32602."""
        await self.kernel.repo.get_play(play_sid)
        raw = json.dumps(event_json, separators=(",", ":"), ensure_ascii=False).encode()
        try:
            event = decode_event(raw)
        except ValueError as exc:
            msg = "event_json"
            raise invalid_field(msg, str(exc), context="span_push") from None
        if event["type"] == "request":
            msg = "event_json"
            raise invalid_field(msg, "requests are only answered on a play's own span socket", context="span_push")
        # A call's span_start (step_key) or an answered pause's (shape_key) is part of the record
        # a re-run is held to and a fork reuses: the flow's own, like what a resume replays.
        recorded = event["type"] == "span_start" and ("step_key" in event or "shape_key" in event)
        if (event["type"] in REPLAYED_EVENT_TYPES or recorded) and not self.kernel.config.span_push_outputs:
            msg_0 = "event_json"
            what = "a span_start with a step_key or shape_key is part of the record a re-run is held to" if recorded else f"a {event['type']!r} event is what a resume replays"
            raise invalid_field(
                msg_0,
                f"{what}, so only the flow itself may send it; span_push takes span_start (of no "
                "@flow call), span_tag, span_log and span_end (a test service may allow more with "
                "--span-push-outputs on / HERO_LOGIC_SPAN_PUSH_OUTPUTS=on)",
                context="span_push",
            )
        await self.kernel.apply(play_sid, [(raw, event)])
        return True

