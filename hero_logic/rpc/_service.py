"""LogicService: the methods of the JSON-RPC API (CONTRACT.md §3), over a running Kernel.

Each public coroutine marked ``@rpc_method`` is one RPC method; its signature is the method's
parameter list (names, order, types, defaults) and its docstring's first line the summary in
the OpenRPC document. Every method validates what it is given and raises a
:class:`~hero_logic.kernel.HeroLogicError` with a stable code when it cannot comply.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import attrs

from hero_logic.kernel import (
    Conflict,
    FieldType,
    FlowField,
    InvalidFlowSource,
    InvalidParams,
    Kernel,
    Library,
    NotFound,
    Play,
    PlayStatus,
    Put,
    ResumeRequest,
    Span,
    Workflow,
    WorkflowVersion,
    WrongState,
    check_inputs,
    new_sid,
    now_ms,
)
from hero_logic.kernel._keyed_lock import KeyedLock
from hero_logic.sdk import FlowSourceError, decode_event, read_flow_signature

from ._methods import rpc_method
from ._schema_check import SchemaChecker, SchemaCheckFailed

if TYPE_CHECKING:
    from ._library import LibraryService

__all__ = ["LogicService"]

MAX_NAME_LENGTH = 200
MAX_LIST_LIMIT = 10_000


def _fields(raw: list[dict[str, Any]]) -> list[FlowField]:
    return [
        FlowField(
            name=f["name"],
            field_type=FieldType(f.get("field_type", "string")),
            description=f.get("description", ""),
            required=bool(f.get("required", False)),
            default=f.get("default"),
        )
        for f in raw
    ]


def _bad(field: str, error: str, *, context: str) -> InvalidParams:
    return InvalidParams.fields([{"field": field, "error": error}], context=context)


def _check_name(name: str, *, context: str) -> str:
    stripped = name.strip()
    if not stripped:
        msg = "name"
        raise _bad(msg, "must not be empty: give the workflow a name", context=context)
    if len(stripped) > MAX_NAME_LENGTH or len(stripped.encode()) > 2 * MAX_NAME_LENGTH or not stripped.isprintable():
        msg = "name"
        raise _bad(
            msg,
            f"must be one line of at most {MAX_NAME_LENGTH} printable characters (no control characters), got {stripped[:80]!r}",
            context=context,
        )
    return stripped


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


async def _check_payload(checker: SchemaChecker, request: ResumeRequest, payload: Any, *, context: str) -> None:
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


MAX_CHILD_DEPTH = 8
"""Deepest nesting of child plays (flow.invoke(spawn=True) inside a child, and so on)."""
MAX_CHILDREN = 200
"""Most child plays one play may start."""


def _check_limit(limit: int, *, context: str) -> None:
    if not 1 <= limit <= MAX_LIST_LIMIT:
        msg = "limit"
        raise _bad(msg, f"must be between 1 and {MAX_LIST_LIMIT}, got {limit}", context=context)


@attrs.define(eq=False)
class LogicService:
    """The RPC methods of hero_logic."""

    kernel: Kernel
    library: LibraryService | None = None
    """Presets and version picking for ``play_start`` (set by :func:`hero_logic.server.serve`)."""
    _resume_locks: KeyedLock = attrs.Factory(KeyedLock)
    _check_locks: KeyedLock = attrs.Factory(KeyedLock)
    schema_checker: SchemaChecker = attrs.Factory(SchemaChecker)
    """Evaluates the JSON schemas of pauses (flow-supplied, untrusted) out of process."""

    # -- helpers ---------------------------------------------------------------------------------

    def _parse_source(self, source: str, *, context: str) -> WorkflowVersion:
        """A version template (signature only) read statically from ``source``."""
        try:
            sig = read_flow_signature(source)
        except FlowSourceError as exc:
            where = f"line {exc.line}: " if exc.line else ""
            problem = {"field": "python_source", "error": f"{where}{exc.reason}"}
            msg = f"{context}: python_source is not a usable flow: {where}{exc.reason}"
            raise InvalidFlowSource(
                msg,
                data=[{**problem, "line": exc.line}],
            ) from None
        return WorkflowVersion(
            sid="",
            workflow_sid="",
            python_source=source,
            entry_flow=sig.entry_flow,
            inputs=_fields(sig.inputs),
            outputs=_fields(sig.outputs),
            min_sandbox=sig.sandbox,
            allow_network=sig.network,
        )

    def _new_version(
        self, workflow_sid: str, source: str, *, label: str, notes: str, context: str
    ) -> WorkflowVersion:
        template = self._parse_source(source, context=context)
        return attrs.evolve(
            template,
            sid=new_sid("ver"),
            workflow_sid=workflow_sid,
            version_label=label,
            notes=notes,
            created_at=now_ms(),
        )

    async def _version_for(self, wf: Workflow, version_sid: str, *, context: str) -> WorkflowVersion:
        sid = version_sid or wf.current_version_sid
        if not sid:
            msg = (
                f"{context}: workflow {wf.name!r} ({wf.sid}) has no version yet: "
                "add one with workflow_create_version"
            )
            raise WrongState(msg)
        version = await self.kernel.repo.get_version(sid)
        if version.workflow_sid != wf.sid:
            msg_0 = "version_sid"
            raise _bad(
                msg_0,
                f"version {sid} belongs to workflow {version.workflow_sid}, not {wf.sid}",
                context=context,
            )
        if not version.python_source.strip():
            msg = (
                f"{context}: version {version.sid} of workflow {wf.name!r} has no python_source "
                "to run: create a version with source (workflow_create_version)"
            )
            raise WrongState(msg)
        return version

    async def _start(
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
    ) -> Play:
        if timeout_ms < 0:
            msg = "timeout_ms"
            raise _bad(msg, f"must be 0 (the default limit) or positive, got {timeout_ms}", context=context)
        wf = await self.kernel.repo.get_workflow(workflow_sid)
        version = await self._version_for(wf, version_sid, context=context)
        inputs = check_inputs(version.inputs, input_data, flow_name=version.entry_flow or wf.name)
        play = Play(
            sid=new_sid("play"),
            workflow_sid=wf.sid,
            workflow_version_sid=version.sid,
            name=name,
            input_data=inputs,
            parent_span_id=parent_span_id,
            parent_play_sid=parent_play_sid,
            prefill_resumes=dict(prefill_resumes or {}),
            reuse_steps_of=reuse_steps_of,
            timeout_ms=timeout_ms,
            created_at=now_ms(),
        )
        return await self.kernel.create_play(play)

    # -- workflows -------------------------------------------------------------------------------

    @rpc_method()
    async def workflow_create(
        self, name: str, description: str = "", python_source: str = "", tags: list[str] | None = None
    ) -> Workflow:
        """Create a workflow; with source, also its first version (inputs read from @flow)."""
        context = "workflow_create"
        name = _check_name(name, context=context)
        repo = self.kernel.repo
        if await repo.workflow_sid_by_name(name) is not None:
            msg = f"{context}: a workflow named {name!r} already exists: pick another name or update it"
            raise Conflict(msg)
        now = now_ms()
        wf = Workflow(
            sid=new_sid("wf"), name=name, description=description, tags=list(tags or []),
            created_at=now, updated_at=now,
        )
        writes = []
        if python_source.strip():
            version = self._new_version(wf.sid, python_source, label="v1", notes="", context=context)
            wf = attrs.evolve(
                wf, current_version_sid=version.sid, inputs=version.inputs, outputs=version.outputs
            )
            writes += repo.put_version(version)
        writes += repo.put_workflow(wf)
        await repo.commit(writes)
        return wf

    @rpc_method()
    async def workflow_get(self, sid: str) -> Workflow:
        """The workflow with this sid."""
        return await self.kernel.repo.get_workflow(sid)

    @rpc_method()
    async def workflow_list(self, limit: int = 100, offset: int = 0) -> list[Workflow]:
        """Workflows, newest first."""
        _check_limit(limit, context="workflow_list")
        if offset < 0:
            msg = "offset"
            raise _bad(msg, f"must be 0 or more, got {offset}", context="workflow_list")
        return await self.kernel.repo.list_workflows(limit=limit, offset=offset)

    @rpc_method()
    async def workflow_update(
        self,
        sid: str,
        name: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
    ) -> Workflow:
        """Change a workflow's name, description or tags (omitted ones are kept)."""
        context = "workflow_update"
        repo = self.kernel.repo
        wf = await repo.get_workflow(sid)
        changes: dict[str, Any] = {"updated_at": now_ms()}
        if name is not None:
            name = _check_name(name, context=context)
            other = await repo.workflow_sid_by_name(name)
            if other is not None and other != sid:
                msg = f"{context}: a workflow named {name!r} already exists ({other})"
                raise Conflict(msg)
            changes["name"] = name
        if description is not None:
            changes["description"] = description
        if tags is not None:
            changes["tags"] = list(tags)
        updated = attrs.evolve(wf, **changes)
        await repo.commit(repo.put_workflow(updated, old_name=wf.name))
        return updated

    @rpc_method()
    async def workflow_delete(self, sid: str) -> bool:
        """Delete a workflow with its versions and finished plays; refused while any play of it
        is pending, running or awaiting resume."""
        repo = self.kernel.repo
        wf = await repo.get_workflow(sid)
        busy = await repo.list_plays(
            workflow_sid=sid,
            statuses=(PlayStatus.PENDING, PlayStatus.RUNNING, PlayStatus.AWAITING_RESUME),
            limit=5,
        )
        if busy:
            listed = ", ".join(f"{p.sid} ({p.status.value})" for p in busy)
            msg = (
                f"workflow_delete: workflow {wf.name!r} has unfinished plays: {listed}; "
                "cancel them (play_cancel) or let them finish first"
            )
            raise WrongState(msg)
        presets_and_benchmarks = await Library(repo).drop_workflow_writes(wf.sid, wf.name)
        await repo.delete_workflow(wf, also=presets_and_benchmarks)
        return True

    # -- versions --------------------------------------------------------------------------------

    @rpc_method()
    async def workflow_create_version(
        self,
        workflow_sid: str,
        python_source: str,
        version_label: str = "",
        notes: str = "",
        make_current: bool = True,
    ) -> WorkflowVersion:
        """Save a new version of a workflow's source (refused if it has no @flow or does not
        parse); by default it becomes the current version."""
        context = "workflow_create_version"
        repo = self.kernel.repo
        wf = await repo.get_workflow(workflow_sid)
        count = len(await repo.list_versions(wf.sid))
        version = self._new_version(
            wf.sid, python_source, label=version_label or f"v{count + 1}", notes=notes, context=context
        )
        writes = repo.put_version(version)
        if make_current:
            wf = attrs.evolve(
                wf, current_version_sid=version.sid, inputs=version.inputs,
                outputs=version.outputs, updated_at=now_ms(),
            )
            writes += repo.put_workflow(wf)
        await repo.commit(writes)
        return version

    @rpc_method()
    async def workflow_set_current_version(self, workflow_sid: str, version_sid: str) -> Workflow:
        """Make a version the one plays run when they name none."""
        repo = self.kernel.repo
        wf = await repo.get_workflow(workflow_sid)
        version = await repo.get_version(version_sid)
        if version.workflow_sid != wf.sid:
            msg = "version_sid"
            raise _bad(
                msg,
                f"version {version_sid} belongs to workflow {version.workflow_sid}, not {wf.sid}",
                context="workflow_set_current_version",
            )
        wf = attrs.evolve(
            wf, current_version_sid=version.sid, inputs=version.inputs, outputs=version.outputs,
            updated_at=now_ms(),
        )
        await repo.commit(repo.put_workflow(wf))
        return wf

    @rpc_method()
    async def workflow_version_fetch(self, version_sid: str) -> WorkflowVersion:
        """One version, with its source."""
        return await self.kernel.repo.get_version(version_sid)

    @rpc_method()
    async def workflow_version_list(self, workflow_sid: str) -> list[WorkflowVersion]:
        """The versions of a workflow, oldest first."""
        await self.kernel.repo.get_workflow(workflow_sid)
        return await self.kernel.repo.list_versions(workflow_sid)

    # -- plays -----------------------------------------------------------------------------------

    @rpc_method()
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
    ) -> str:
        """Start a play of a workflow (its current version unless version_sid is given);
        returns the play sid at once.

        example_sid runs a preset: its input values and prefills, under any explicit
        input_data and prefill_resumes, on its pinned version unless version_sid is given.
        pick ({cost_weight, speed_weight, accuracy_weight, min_accuracy}) lets the version
        picker choose the version, as pick_version does."""
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
        play = await self._start(
            context="play_start",
            workflow_sid=workflow_sid,
            input_data=input_data or {},
            version_sid=version_sid,
            name=name,
            prefill_resumes=prefill_resumes,
            timeout_ms=timeout_ms,
        )
        return play.sid

    @rpc_method()
    async def play_run_async(
        self, workflow_sid: str, input_data: dict[str, Any], parent_span_id: str = ""
    ) -> str:
        """Start a play of the workflow's current version without waiting; parent_span_id
        becomes the parent of its root span. Rejects versions without python_source."""
        play = await self._start(
            context="play_run_async",
            workflow_sid=workflow_sid,
            input_data=input_data,
            parent_span_id=parent_span_id,
        )
        return play.sid

    @rpc_method()
    async def play_status(self, play_sid: str) -> Play:
        """The play as it stands."""
        return await self.kernel.repo.get_play(play_sid)

    @rpc_method(cancel_on_disconnect=True)
    async def play_wait(self, play_sid: str, timeout_ms: int = 0) -> Play:
        """The play once it is terminal or awaiting resume, or when timeout_ms (0 = forever)
        runs out."""
        if timeout_ms < 0:
            msg = "timeout_ms"
            raise _bad(msg, f"must be 0 (forever) or positive, got {timeout_ms}", context="play_wait")
        return await self.kernel.wait(play_sid, timeout_ms)

    @rpc_method()
    async def play_cancel(self, play_sid: str) -> Play:
        """Cancel an unfinished play; its process group is killed. Returns the cancelled play."""
        return await self.kernel.cancel(play_sid)

    @rpc_method()
    async def play_retry(self, play_sid: str, reuse_steps: bool = False) -> str:
        """Start a new play with the same inputs on the same version; returns its sid.

        By default every step runs afresh. With reuse_steps=true the new play replays the
        steps the old one finished (same version, same step keys) and runs from the step that
        failed: "retry from the failed step"."""
        old = await self.kernel.repo.get_play(play_sid)
        if not old.status.is_terminal:
            msg = f"play_retry: play {play_sid} has not ended ({old.status.value}); wait for it or cancel it first"
            raise WrongState(msg)
        play = await self._start(
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

    # -- pauses and resumes ----------------------------------------------------------------------

    async def _open_pauses(self, play: Play) -> list[ResumeRequest]:
        """The unanswered pauses of ``play`` and of the child plays it waits for, recursively."""
        out = [attrs.evolve(r, play_sid=r.play_sid or play.sid) for r in play.pending_resumes]
        if play.status in (PlayStatus.AWAITING_RESUME, PlayStatus.RUNNING):
            for child_sid in play.child_play_sids:
                try:
                    child = await self.kernel.repo.get_play(child_sid)
                except NotFound:
                    continue
                if child.status is PlayStatus.AWAITING_RESUME:
                    out += await self._open_pauses(child)
        return out

    @rpc_method()
    async def play_pending_resumes(self, play_sid: str) -> list[ResumeRequest]:
        """The open pauses of a play, including those of child plays it waits for (each
        names its play in play_sid)."""
        return await self._open_pauses(await self.kernel.repo.get_play(play_sid))

    @rpc_method()
    async def play_resume(self, play_sid: str, resume_id: str, payload: Any = None) -> dict[str, Any]:
        """Answer a pause (by resume id, or by pause name when that is unambiguous) and
        continue the play from where it paused.

        The payload is checked against the pause's JSON schema. Idempotent: the same payload
        again returns the first answer and runs nothing; a different payload for an answered
        pause is a conflict. A pause of a child play can be answered through its parent.
        Answers to one play are taken one at a time, so concurrent identical answers all get
        the first one's receipt and concurrent different answers conflict."""
        async with self._resume_locks.hold(play_sid):
            return await self._resume(play_sid, resume_id, payload)

    async def _resume(self, play_sid: str, resume_id: str, payload: Any) -> dict[str, Any]:
        context = "play_resume"
        play = await self.kernel.repo.get_play(play_sid)
        for answered in play.received_resumes:
            if resume_id in (answered.id, answered.name):
                if _canonical(answered.payload) == _canonical(payload):
                    return {"ok": True, "resumed_at": answered.resumed_at, "play_sid": play.sid, "resume_id": answered.id}
                msg = (
                    f"{context}: pause {answered.name!r} ({answered.id}) of play {play.sid} was already "
                    f"answered with {_canonical(answered.payload)[:200]}; a different answer cannot replace it"
                )
                raise Conflict(msg)
        opened = await self._open_pauses(play)
        matches = [r for r in opened if r.id == resume_id] or [r for r in opened if r.name == resume_id]
        if not matches:
            answered_by = await self._child_that_answered(play, resume_id)
            if answered_by:  # the same answer again through the parent: idempotent there too
                return await self.play_resume(answered_by, resume_id, payload)
            if play.status is not PlayStatus.AWAITING_RESUME:
                msg = f"{context}: play {play.sid} is {play.status.value}, not awaiting resume {resume_id!r}"
                raise WrongState(msg)
            listed = ", ".join(f"{r.id} ({r.name!r})" for r in opened) or "none"
            why = f"play {play.sid} has no open pause {resume_id!r}; open: {listed}"
            msg_0 = "resume_id"
            raise _bad(msg_0, why, context=context)
        if len(matches) > 1:
            listed = ", ".join(r.id for r in matches)
            why = f"{resume_id!r} names several open pauses ({listed}): pass the resume id"
            msg_0 = "resume_id"
            raise _bad(msg_0, why, context=context)
        request = matches[0]
        if request.play_sid != play.sid:
            return await self.play_resume(request.play_sid, request.id, payload)
        await _check_payload(self.schema_checker, request, payload, context=context)
        if self.kernel.is_active(play.sid) or play.status is not PlayStatus.AWAITING_RESUME:
            msg = f"{context}: play {play.sid} is {play.status.value}; answers are taken once it awaits resume"
            raise WrongState(msg)
        answered = attrs.evolve(request, payload=payload, resumed_at=now_ms())
        resumed = attrs.evolve(
            play,
            status=PlayStatus.RUNNING,
            pending_resumes=[r for r in play.pending_resumes if r.id != request.id],
            received_resumes=[*play.received_resumes, answered],
        )
        await self.kernel.save_status(resumed)  # durable before we answer
        await self._mark_ancestors_running(resumed)
        await self.kernel.schedule_existing(resumed)
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

    async def _mark_ancestors_running(self, play: Play) -> None:
        """A resumed child makes its waiting parents running again (they continue once it ends)."""
        sid = play.parent_play_sid
        while sid:
            parent = await self.kernel.repo.get_play(sid)
            if parent.status is not PlayStatus.AWAITING_RESUME:
                return
            await self.kernel.save_status(attrs.evolve(parent, status=PlayStatus.RUNNING))
            sid = parent.parent_play_sid

    @rpc_method()
    async def play_list(self, workflow_sid: str = "", status: str = "", limit: int = 50) -> list[Play]:
        """Plays, newest first, optionally of one workflow and/or in one status."""
        _check_limit(limit, context="play_list")
        statuses: tuple[PlayStatus, ...] = ()
        if status:
            try:
                statuses = (PlayStatus(status),)
            except ValueError:
                allowed = ", ".join(s.value for s in PlayStatus)
                msg = "status"
                raise _bad(msg, f"unknown play status {status!r}; one of: {allowed}", context="play_list") from None
        if workflow_sid:
            await self.kernel.repo.get_workflow(workflow_sid)
        return await self.kernel.repo.list_plays(workflow_sid=workflow_sid, statuses=statuses, limit=limit)

    @rpc_method()
    async def play_spans(self, play_sid: str) -> list[Span]:
        """The play's spans in start order (parent links in parent_id)."""
        await self.kernel.repo.get_play(play_sid)
        return await self.kernel.repo.spans(play_sid)

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
            raise _bad(msg, str(exc), context="span_push") from None
        if event["type"] == "request":
            msg = "event_json"
            raise _bad(msg, "requests are only answered on a play's own span socket", context="span_push")
        await self.kernel.apply(play_sid, [(raw, event)])
        return True

    # -- requests from flows (over their span socket, never over rpc.sock) -----------------------

    async def _check_room_for_a_child(self, play_sid: str) -> None:
        """Refuse a new child play past MAX_CHILD_DEPTH nested plays or MAX_CHILDREN of one
        play: a flow that spawns itself must not fill the service with plays."""
        play = await self.kernel.repo.get_play(play_sid)
        if len(play.child_play_sids) >= MAX_CHILDREN:
            msg = f"play {play_sid} already started {len(play.child_play_sids)} child plays, the most one play may start"
            raise WrongState(msg)
        depth, sid = 1, play.parent_play_sid
        while sid:
            depth += 1
            if depth >= MAX_CHILD_DEPTH:
                msg = f"play {play_sid} is nested {depth} plays deep; child plays may nest at most {MAX_CHILD_DEPTH} deep (does the flow spawn itself?)"
                raise WrongState(msg)
            sid = (await self.kernel.repo.get_play(sid)).parent_play_sid

    async def answer_flow_request(self, play_sid: str, event: dict[str, Any]) -> Any:
        """Answer a ``request`` line a running flow sent on its span socket."""
        method = event.get("method")
        params = event.get("params") if isinstance(event.get("params"), dict) else {}
        assert isinstance(params, dict)
        if method == "flow_source":
            wf = await self.kernel.repo.find_workflow(str(params.get("name", "")))
            version = await self._version_for(wf, str(params.get("version_sid") or ""), context="flow.invoke")
            return {"source": version.python_source, "version_sid": version.sid, "entry_flow": version.entry_flow}
        if method == "start_child_play":
            step = str(params.get("step_key") or "")
            if step:  # a re-run of the parent asks again for the child it already started
                known = await self.kernel.store.get("children", f"{play_sid}/{step}")
                if known is not None:
                    return {"play_sid": known.decode()}
            await self._check_room_for_a_child(play_sid)
            wf = await self.kernel.repo.find_workflow(str(params.get("name", "")))
            inputs = params.get("inputs") if isinstance(params.get("inputs"), dict) else {}
            assert isinstance(inputs, dict)
            child = await self._start(
                context="flow.invoke(spawn=True)",
                workflow_sid=wf.sid,
                input_data=inputs,
                version_sid=str(params.get("version_sid") or ""),
                parent_span_id=str(params.get("parent_span_id") or ""),
                parent_play_sid=play_sid,
            )
            parent = await self.kernel.repo.get_play(play_sid)
            linked = attrs.evolve(parent, child_play_sids=[*parent.child_play_sids, child.sid])
            writes = self.kernel.repo.put_play(linked)
            if step:
                writes.append(Put("children", f"{play_sid}/{step}", child.sid.encode()))
            await self.kernel.repo.commit(writes)
            return {"play_sid": child.sid}
        if method == "checkpoint":  # the listener stored every earlier line before asking
            return {"ok": True}
        if method == "check_answer":  # a prefilled answer, checked like a play_resume payload
            request = ResumeRequest(
                id=str(params.get("resume_id", "")), name=str(params.get("name", "")), schema=params.get("schema")
            )
            # One check at a time per play: the checker is shared and fair (FIFO), so a flow
            # sending slow schemas delays another play's check by at most one deadline.
            async with self._check_locks.hold(play_sid):
                await _check_payload(self.schema_checker, request, params.get("payload"), context="prefill_resumes")
            return {"ok": True}
        if method == "wait_child_play":
            child_sid = str(params.get("play_sid", ""))
            try:
                owned = (await self.kernel.repo.get_play(child_sid)).parent_play_sid == play_sid
            except NotFound:
                owned = False
            if not owned:  # checked before waiting: a flow cannot park a task on another play
                msg = f"play {child_sid!r} is not a child of play {play_sid}"
                raise NotFound(msg)
            child = await self.kernel.wait(child_sid, 0)
            return {"status": child.status.value, "output": child.output_data, "error": child.error_message}
        msg = f"unknown flow request method {method!r}: the SDK and the service disagree on the protocol"
        raise NotFound(msg)
