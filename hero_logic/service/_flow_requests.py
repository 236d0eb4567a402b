"""Requests a running flow sends on its own span socket (never over rpc.sock), one handler
per kind: the kernel calls them through the :class:`~hero_logic.kernel.FlowRequestHandler`
protocol it declares.
"""

from __future__ import annotations

import ast
import functools
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

__all__ = ["FlowRequests", "invoked_names"]

MAX_INVOKABLE = 1000
"""Most workflow names followed when deciding what a play may invoke."""


@functools.lru_cache(maxsize=512)
def invoked_names(source: str) -> frozenset[str]:
    """The workflow names ``source`` may invoke: its string literals of name length (a flow
    names what it invokes in its own source, where a reviewer sees it, whether it calls
    ``flow.invoke("name")`` directly or hands the name to a thread pool)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return frozenset()
    return frozenset(
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and 0 < len(node.value) <= 200
    )

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
        """The source of the workflow ``name`` (a version of it, or its current one), if the
        play may invoke it (see :meth:`_check_may_invoke`)."""
        name = str(params.get("name", ""))
        await self._check_may_invoke(play_sid, name)
        wf = await self.kernel.repo.find_workflow(name)
        version = await self.workflows.version_for(wf, str(params.get("version_sid") or ""), context="flow.invoke")
        return {"source": version.python_source, "version_sid": version.sid, "entry_flow": version.entry_flow}

    async def start_child_play(self, play_sid: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """A child play of the workflow ``name`` with ``inputs``; a re-run of the parent asking
        again for the child of the same ``step_key`` gets the same child."""
        step = str(params.get("step_key") or "")
        known = await self.kernel.tree.child_for_step(play_sid, step)
        if known is not None:
            return {"play_sid": known}
        name = str(params.get("name", ""))
        await self._check_may_invoke(play_sid, name)
        wf = await self.kernel.repo.find_workflow(name)
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

    async def _check_may_invoke(self, play_sid: str, name: str) -> None:
        """Refuse ``name`` unless the play's own workflow is called so, or its source names it
        in a string literal, or the source of a flow it may invoke does (so a flow cannot read
        or run any workflow it likes, by sid or by a name it computed). NotFound, as for a
        workflow that does not exist, naming the rule."""
        play = await self.kernel.repo.get_play(play_sid)
        if name == (await self.kernel.repo.get_workflow(play.workflow_sid)).name:
            return
        allowed: set[str] = set()
        sources = [(await self.kernel.repo.get_version(play.workflow_version_sid)).python_source]
        while sources and len(allowed) < MAX_INVOKABLE:
            for found in invoked_names(sources.pop()) - allowed:
                allowed.add(found)
                if found == name:
                    return
                try:
                    wf = await self.kernel.repo.find_workflow(found)
                    if wf.current_version_sid:
                        sources.append((await self.kernel.repo.get_version(wf.current_version_sid)).python_source)
                except NotFound:
                    continue
        msg = (
            f"flow.invoke({name!r}): this play's flow does not name {name!r} in its source, so it "
            "may not invoke it or read its source: write the workflow's name as a string literal, "
            f'flow.invoke("{name}", ...), in the flow that invokes it'
        )
        raise NotFound(msg)

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
