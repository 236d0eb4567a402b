"""Workflows and their versions: create, rename, delete, and the one way a version is made.

:meth:`Workflows.new_version` turns flow source into a version record (its signature read
statically); every version (RPC, seeding) is made by it. Names are unique: creates and renames
of one name are taken one at a time, so concurrent ones end with one winner and a -32003 for
the rest.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs

from hero_logic.kernel import (
    Conflict,
    FieldType,
    FlowField,
    InvalidFlowSource,
    Kernel,
    KeyedLock,
    NotFound,
    PlayStatus,
    Workflow,
    WorkflowVersion,
    WrongState,
    new_sid,
    now_ms,
)
from hero_logic.sdk import FlowSourceError, read_flow_signature

from ._catalog import Library
from ._checks import check_limit, check_name, check_offset, invalid_field
from ._gate import Closed, UseGate
from ._marker import rpc_method

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from contextlib import AbstractAsyncContextManager

    from ._environments import Environments

__all__ = ["Workflows"]


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


@attrs.define(eq=False)
class Workflows:
    """The workflow and version methods of the API."""

    kernel: Kernel
    _locks: KeyedLock = attrs.Factory(KeyedLock)
    """``name:<name>`` while a name is checked and taken; ``wf:<sid>`` while a workflow's record
    is read and rewritten, or a play of it is created, or it is deleted."""

    _plays_gate: UseGate = attrs.Factory(UseGate)
    environments: Environments | None = None
    """Locks PEP 723 dependencies at save and builds their environments (set at assembly)."""

    async def _lock(self, version: WorkflowVersion, *, context: str) -> WorkflowVersion:
        if self.environments is None:
            return version
        return await self.environments.resolve(version, context=context)

    def _env_writes(self, version: WorkflowVersion) -> list[Any]:
        return self.environments.index_writes(version) if self.environments is not None else []

    async def _after_save(self, version: WorkflowVersion | None) -> None:
        if self.environments is not None and version is not None:
            await self.environments.after_save(version)

    def hold_workflow(self, workflow_sid: str) -> AbstractAsyncContextManager[None]:
        """Hold one workflow's record still: no rename, new version or delete of it meanwhile."""
        return self._locks.hold(f"wf:{workflow_sid}")

    @asynccontextmanager
    async def creating_play(self, workflow_sid: str) -> AsyncIterator[None]:
        """The block creates a play of ``workflow_sid``: many may at once, but none while the
        workflow is being deleted (NotFound, as for a deleted one), and the delete waits for
        those already under way (and then finds their plays unfinished)."""
        try:
            async with self._plays_gate.use(workflow_sid):
                yield
        except Closed:
            msg = f"workflow {workflow_sid!r} is being deleted: it starts no new plays"
            raise NotFound(msg) from None

    @staticmethod
    def parse_source(source: str, *, context: str) -> WorkflowVersion:
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
            secrets=list(sig.secrets),
            services=list(sig.services),
        )

    def new_version(
        self, workflow_sid: str, source: str, *, label: str, notes: str, context: str
    ) -> WorkflowVersion:
        template = self.parse_source(source, context=context)
        return attrs.evolve(
            template,
            sid=new_sid("ver"),
            workflow_sid=workflow_sid,
            version_label=label,
            notes=notes,
            created_at=now_ms(),
        )

    async def version_for(self, wf: Workflow, version_sid: str, *, context: str) -> WorkflowVersion:
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
            raise invalid_field(
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

    # -- workflows -------------------------------------------------------------------------------

    @rpc_method(admin=True)
    async def workflow_create(
        self, name: str, description: str = "", python_source: str = "", tags: list[str] | None = None
    ) -> Workflow:
        """Create a workflow; with source, also its first version (inputs read from @flow)."""
        context = "workflow_create"
        name = check_name(name, context=context)
        async with self._locks.hold(f"name:{name}"):
            wf, version = await self._create(name, description, python_source, tags, context=context)
        await self._after_save(version)
        return wf

    async def _create(
        self, name: str, description: str, python_source: str, tags: list[str] | None, *, context: str
    ) -> tuple[Workflow, WorkflowVersion | None]:
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
        version = None
        if python_source.strip():
            version = self.new_version(wf.sid, python_source, label="v1", notes="", context=context)
            version = await self._lock(version, context=context)
            wf = attrs.evolve(
                wf, current_version_sid=version.sid, inputs=version.inputs, outputs=version.outputs
            )
            writes += repo.put_version(version) + self._env_writes(version)
        writes += repo.put_workflow(wf)
        await repo.commit(writes)
        return wf, version

    @rpc_method(admin=True)
    async def workflow_get(self, sid: str) -> Workflow:
        """The workflow with this sid."""
        return await self.kernel.repo.get_workflow(sid)

    @rpc_method(admin=True)
    async def workflow_list(self, limit: int = 100, offset: int = 0) -> list[Workflow]:
        """Workflows, newest first."""
        check_limit(limit, context="workflow_list")
        check_offset(offset, context="workflow_list")
        return await self.kernel.repo.list_workflows(limit=limit, offset=offset)

    @rpc_method(admin=True)
    async def workflow_update(
        self,
        sid: str,
        name: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
    ) -> Workflow:
        """Change a workflow's name, description or tags (omitted ones are kept)."""
        context = "workflow_update"
        if name is not None:
            name = check_name(name, context=context)
        async with self.hold_workflow(sid), self._locks.hold(f"name:{name}"):
            return await self._update(sid, name, description, tags, context=context)

    async def _update(
        self, sid: str, name: str | None, description: str | None, tags: list[str] | None, *, context: str
    ) -> Workflow:
        repo = self.kernel.repo
        wf = await repo.get_workflow(sid)
        changes: dict[str, Any] = {"updated_at": now_ms()}
        if name is not None:
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

    @rpc_method(admin=True)
    async def workflow_delete(self, sid: str) -> bool:
        """Delete a workflow with its versions and finished plays; refused while any play of it
        is pending, running or awaiting resume."""
        async with self.hold_workflow(sid), self._plays_gate.close(sid):
            deleted = await self._delete(sid)
        if self.environments is not None:
            await self.environments.collect()  # the environments no version uses any more
        return deleted

    async def _delete(self, sid: str) -> bool:
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

    @rpc_method(admin=True)
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
        async with self.hold_workflow(workflow_sid):
            repo = self.kernel.repo
            wf = await repo.get_workflow(workflow_sid)
            count = len(await repo.list_versions(wf.sid))
            version = self.new_version(
                wf.sid, python_source, label=version_label or f"v{count + 1}", notes=notes, context=context
            )
            version = await self._lock(version, context=context)
            writes = repo.put_version(version) + self._env_writes(version)
            if make_current:
                wf = attrs.evolve(
                    wf, current_version_sid=version.sid, inputs=version.inputs,
                    outputs=version.outputs, updated_at=now_ms(),
                )
                writes += repo.put_workflow(wf)
            await repo.commit(writes)
        await self._after_save(version)
        return version

    @rpc_method(admin=True)
    async def workflow_set_current_version(self, workflow_sid: str, version_sid: str) -> Workflow:
        """Make a version the one plays run when they name none."""
        async with self.hold_workflow(workflow_sid):
            repo = self.kernel.repo
            wf = await repo.get_workflow(workflow_sid)
            version = await repo.get_version(version_sid)
            if version.workflow_sid != wf.sid:
                msg = "version_sid"
                raise invalid_field(
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

    @rpc_method(admin=True)
    async def workflow_version_fetch(self, version_sid: str) -> WorkflowVersion:
        """One version, with its source."""
        return await self.kernel.repo.get_version(version_sid)

    @rpc_method(admin=True)
    async def workflow_version_list(self, workflow_sid: str) -> list[WorkflowVersion]:
        """The versions of a workflow, oldest first."""
        await self.kernel.repo.get_workflow(workflow_sid)
        return await self.kernel.repo.list_versions(workflow_sid)

