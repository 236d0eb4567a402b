"""The harness: an embedded service on a temporary root, and the calls a flow's test makes.

:func:`open_flow_harness` runs a real service (kernel, RPC server on a real Unix socket,
plays in real sandboxed subprocesses) in the caller's trio nursery, on the memory store by
default. :class:`FlowHarness` pushes flows to it, starts and runs plays, and hands back
:class:`PlayResult` values to assert on.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import textwrap
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio
import trio.testing

from hero_logic.kernel import SETTINGS, Config, unwrap_startup_error
from hero_logic.rpc import AsyncClient, RpcError
from hero_logic.sdk import read_flow_signature
from hero_logic.server import serve

from ._play import PlayHandle

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence

    from ._result import PlayResult

__all__ = ["DEFAULTS", "Flow", "FlowHarness", "harness_config", "open_flow_harness"]

DEFAULTS: Mapping[str, str] = {
    "HERO_LOGIC_STORE": "memory",
    "HERO_LOGIC_SANDBOX": "env_scrub",
    "HERO_LOGIC_SEED_FLOWS": "off",
    "HERO_LOGIC_ADMIN_BIND": "none",
    "HERO_LOGIC_KILL_GRACE_MS": "500",
}
"""The harness's service settings unless a test says otherwise: the memory store (nothing
outlives the test), the fastest sandbox tier, no seed flows, no admin listener, a short grace
before a stopped flow is killed."""

_SETTING_NAMES = {s.attr: s for s in SETTINGS if s.attr not in ("root", "socket_root")}


def harness_config(root: str | os.PathLike[str], **settings: Any) -> Config:
    """The service's Config on ``root``: :data:`DEFAULTS`, then ``settings`` by Config
    attribute (``sandbox="bwrap"``, ``store="lmdb"``, ``max_running=2``, ...). The process
    environment is not read: a test runs the same on every machine."""
    unknown = sorted(set(settings) - set(_SETTING_NAMES))
    if unknown:
        msg = (
            f"unknown hero_logic setting(s) {', '.join(map(repr, unknown))}: "
            f"use one of {', '.join(sorted(_SETTING_NAMES))}"
        )
        raise TypeError(msg)
    flags = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in settings.items()}
    return Config.load(flags=flags, environ={"PATH_ROOT": os.fspath(root), **DEFAULTS})


def _temp_root() -> Path:
    """A short private root: Unix socket paths under it must stay under 107 bytes."""
    base = "/tmp" if os.path.isdir("/tmp") else None
    return Path(tempfile.mkdtemp(prefix="hl-", dir=base))


@attrs.frozen
class Flow:
    """A workflow in the harness's service, pinned to one version (the one :meth:`FlowHarness.push`
    saved, or the current one when looked up by name)."""

    sid: str
    name: str
    version_sid: str
    version_label: str = ""


@attrs.define(eq=False)
class FlowHarness:
    """Push flows, run plays, answer pauses: the test's side of an embedded service.

    ``wait_limit`` (seconds) bounds each wait for a play to end or pause; past it the wait
    fails, showing the play's span tree. ``answered_by`` is recorded on every answer.
    """

    config: Config
    client: AsyncClient = attrs.field(repr=False)
    wait_limit: float = 30.0
    answered_by: str = "hero_logic.testing.flows"

    def __repr__(self) -> str:
        c = self.config
        return f"<FlowHarness sandbox={c.sandbox} store={c.store} root={c.root}>"

    async def call(self, method: str, /, **params: Any) -> Any:
        """Call any JSON-RPC method of the service (the whole API of docs/rpc.md)."""
        return await self.client.call(method, params)

    # -- flows ----------------------------------------------------------------------------------

    async def push(self, path: str | os.PathLike[str], *, name: str = "", version_label: str = "") -> Flow:
        """Save the flow file ``path`` as a version of the workflow named ``name`` (default: its
        entry ``@flow``'s name), creating the workflow if needed; the version becomes current."""
        source = await trio.Path(path).read_text(encoding="utf-8")
        try:
            return await self.push_source(source, name=name, version_label=version_label)
        except (RpcError, ValueError) as exc:
            exc.add_note(f"while pushing the flow file {os.fspath(path)}")
            raise

    async def push_source(self, source: str, *, name: str = "", version_label: str = "") -> Flow:
        """:meth:`push` for source text (dedented first, so it can be written inline)."""
        source = textwrap.dedent(source)
        signature = read_flow_signature(source)
        name = name or signature.entry_flow
        existing = await self._workflow_named(name)
        if existing is None:
            existing = await self.call("workflow_create", name=name, description=signature.description)
        version = await self.call(
            "workflow_create_version",
            workflow_sid=existing["sid"],
            python_source=source,
            version_label=version_label,
        )
        return Flow(existing["sid"], name, version["sid"], version.get("version_label", ""))

    async def flow(self, name: str) -> Flow:
        """The workflow named ``name``, at its current version."""
        wf = await self._workflow_named(name)
        if wf is None:
            msg = f"no workflow named {name!r} in the harness's service: push its file first (flows.push(path))"
            raise LookupError(msg)
        return Flow(wf["sid"], name, wf["current_version_sid"])

    async def _workflow_named(self, name: str) -> dict[str, Any] | None:
        offset = 0
        while True:
            page = await self.call("workflow_list", limit=500, offset=offset)
            for wf in page:
                if wf["name"] == name:
                    return dict(wf)
            if len(page) < 500:
                return None
            offset += len(page)

    # -- plays ----------------------------------------------------------------------------------

    async def start(
        self,
        flow: Flow | str,
        inputs: Mapping[str, Any] | None = None,
        *,
        prefill: Mapping[str, Any] | None = None,
    ) -> PlayHandle:
        """Start a play of ``flow`` (a :class:`Flow`, or a workflow name) with ``inputs``;
        ``prefill`` answers pauses ahead of time, by name (``prefill_resumes``)."""
        if isinstance(flow, str):
            flow = await self.flow(flow)
        sid = await self.call(
            "play_start",
            workflow_sid=flow.sid,
            version_sid=flow.version_sid,
            input_data=dict(inputs or {}),
            prefill_resumes=dict(prefill or {}),
        )
        return PlayHandle(self, sid, flow.name)

    async def run(
        self,
        flow: Flow | str,
        inputs: Mapping[str, Any] | None = None,
        *,
        answers: Sequence[Any] | Mapping[str, Any] | None = None,
        prefill: Mapping[str, Any] | None = None,
    ) -> PlayResult:
        """Start a play and see it through (:meth:`PlayHandle.settle`): each pause it asks is
        answered from ``answers`` (a list, in the order asked, or a dict by pause name) until
        it ends or asks something ``answers`` does not cover."""
        __tracebackhide__ = True
        play = await self.start(flow, inputs, prefill=prefill)
        return await play.settle(answers)

    def play(self, sid: str) -> PlayHandle:
        """A handle on an existing play (a child play, a retried one)."""
        return PlayHandle(self, sid)


@asynccontextmanager
async def open_flow_harness(config: Config | None = None, **settings: Any) -> AsyncIterator[FlowHarness]:
    """Run an embedded service and yield its :class:`FlowHarness`; the service stops (its
    plays are killed) on exit.

    Without ``config`` the service gets a fresh temporary root, removed afterwards, and
    :func:`harness_config` with ``settings``."""
    clock = trio.lowlevel.current_clock()
    if isinstance(clock, trio.testing.MockClock) and clock.autojump_threshold != math.inf:
        msg = (
            "the flow harness runs real flow processes, and an autojump clock (autojump_clock) "
            "jumps over every wait for them: the service's timeouts would fire at once. Use the "
            "real clock, or a MockClock without autojump that the test jumps itself"
        )
        raise RuntimeError(msg)
    root = None
    if config is None:
        root = _temp_root()
        config = harness_config(root, **settings)
    elif settings:
        msg = "give either a Config or settings, not both"
        raise TypeError(msg)
    failure: Exception | None = None
    try:
        with unwrap_startup_error():
            async with trio.open_nursery() as nursery:
                await nursery.start(serve, config)
                try:
                    async with AsyncClient(config.rpc_socket) as client:
                        yield FlowHarness(config, client)
                except Exception as exc:  # the test's own failure: raised as it is, not grouped
                    failure = exc
                finally:
                    nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure
    finally:
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
