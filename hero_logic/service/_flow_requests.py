"""Requests a running flow sends on its own span socket (never over rpc.sock), one handler
per kind: the kernel calls them through the :class:`~hero_logic.kernel.FlowRequestHandler`
protocol it declares.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from hero_logic.kernel import KeyedLock, NotFound, ResumeRequest

from ._resumes import check_payload

if TYPE_CHECKING:
    from collections.abc import Mapping

    from hero_logic.kernel import Kernel

    from ._plays import Plays
    from ._schema_check import SchemaChecker
    from ._secrets import Secrets
    from ._workflows import Workflows

__all__ = ["FlowRequests"]

@attrs.define(eq=False)
class FlowRequests:
    """Answers a flow's requests: one method per kind (the kernel's FlowRequestHandler)."""

    kernel: Kernel
    workflows: Workflows
    plays: Plays
    schema_checker: SchemaChecker
    _check_locks: KeyedLock = attrs.Factory(KeyedLock)
    secrets: Secrets | None = None

    async def flow_source(self, play_sid: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The source of the workflow ``name`` (a version of it, or its current one)."""
        wf = await self.kernel.repo.find_workflow(str(params.get("name", "")))
        version = await self.workflows.version_for(wf, str(params.get("version_sid") or ""), context="flow.invoke")
        return {"source": version.python_source, "version_sid": version.sid, "entry_flow": version.entry_flow}

    async def start_child_play(self, play_sid: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """A child play of the workflow ``name`` with ``inputs``; a re-run of the parent asking
        again for the child of the same ``step_key`` gets the same child."""
        step = str(params.get("step_key") or "")
        known = await self.kernel.tree.child_for_step(play_sid, step)
        if known is not None:
            return {"play_sid": known}
        wf = await self.kernel.repo.find_workflow(str(params.get("name", "")))
        inputs = params.get("inputs") if isinstance(params.get("inputs"), dict) else {}
        assert isinstance(inputs, dict)
        if self.secrets is not None:  # stored with the child: never a secret in clear
            inputs = self.secrets.redact_for_play(play_sid, inputs)
        child = await self.plays.create(
            context="flow.invoke(spawn=True)",
            workflow_sid=wf.sid,
            input_data=inputs,
            version_sid=str(params.get("version_sid") or ""),
            parent_span_id=str(params.get("parent_span_id") or ""),
            parent_play_sid=play_sid,
            step_key=step,
        )
        return {"play_sid": child.sid}

    async def wait_child_play(self, play_sid: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The child play ``play_sid`` once it is terminal or awaiting resume."""
        child_sid = str(params.get("play_sid", ""))
        child = await self.kernel.repo.find_play(child_sid)
        if child is None or child.parent_play_sid != play_sid:
            # checked before waiting: a flow cannot park a task on another play
            msg = f"play {child_sid!r} is not a child of play {play_sid}"
            raise NotFound(msg)
        async with self.kernel.lending_slot(play_sid):  # the child may need the parent's slot
            child = await self.kernel.wait(child_sid, 0)
        return {"status": child.status.value, "output": child.output_data, "error": child.error_message}

    async def check_answer(self, play_sid: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """A prefilled answer, checked like a ``play_resume`` payload."""
        request = ResumeRequest(
            id=str(params.get("resume_id", "")), name=str(params.get("name", "")), schema=params.get("schema")
        )
        # One check at a time per play: the checker is shared and fair (FIFO), so a flow
        # sending slow schemas delays another play's check by at most one deadline.
        async with self._check_locks.hold(play_sid):
            await check_payload(self.schema_checker, request, params.get("payload"), context="prefill_resumes")
        return {"ok": True}

    async def checkpoint(self, play_sid: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Nothing to do: the listener stored every earlier line before asking."""
        return {"ok": True}

    async def secret_get(self, play_sid: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """A secret the play's entry flow declares (``@flow(secrets=[...])``)."""
        name = str(params.get("name", ""))
        if self.secrets is None:
            msg = f"flow.secret({name!r}): this service runs without secrets"
            raise NotFound(msg)
        play = await self.kernel.repo.get_play(play_sid)
        version = await self.kernel.repo.get_version(play.workflow_version_sid)
        value = await self.secrets.read_for_play(play_sid, name, dict.fromkeys(version.secrets))
        return {"value": value}
