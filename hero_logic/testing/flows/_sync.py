"""The harness for plain (non-async) tests: the service and its trio loop run in a thread,
and each call crosses over with ``trio.from_thread.run``.

Results (:class:`PlayResult`, :class:`SpanTree`, :class:`Wait`) are plain values, so they are
the same objects as in async tests; only the calls that talk to the service are wrapped.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ._harness import Flow, FlowHarness, open_flow_harness
from ._waits import FlowAssertionError

if TYPE_CHECKING:
    import os
    from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence

    from hero_logic.kernel import Config

    from ._play import PlayHandle
    from ._result import PlayResult
    from ._waits import Answered, Wait

__all__ = ["SyncFlowHarness", "SyncPlay", "open_sync_flow_harness"]


@attrs.define(eq=False)
class _Loop:
    """The trio loop in the service's thread."""

    token: trio.lowlevel.TrioToken

    def run(self, afn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        __tracebackhide__ = True
        try:
            return trio.from_thread.run(afn, *args, trio_token=self.token)
        except FlowAssertionError as exc:  # a failed check: its message says it all, no trio frames
            raise exc.with_traceback(None) from None


@attrs.define(eq=False)
class SyncPlay:
    """:class:`PlayHandle` for sync tests: the same methods, without ``await``."""

    _handle: PlayHandle
    _loop: _Loop = attrs.field(repr=False)

    @property
    def sid(self) -> str:
        return self._handle.sid

    def wait(self) -> PlayResult:
        __tracebackhide__ = True
        result: PlayResult = self._loop.run(self._handle.wait)
        return result

    def snapshot(self) -> PlayResult:
        __tracebackhide__ = True
        result: PlayResult = self._loop.run(self._handle.snapshot)
        return result

    def waits(self) -> list[Wait]:
        waits: list[Wait] = self._loop.run(self._handle.waits)
        return waits

    def answer(self, pause: str | Wait, payload: Any) -> Answered:
        __tracebackhide__ = True
        answered: Answered = self._loop.run(self._handle.answer, pause, payload)
        return answered

    def answer_next(self, payload: Any) -> Answered:
        __tracebackhide__ = True
        answered: Answered = self._loop.run(self._handle.answer_next, payload)
        return answered

    def settle(self, answers: Sequence[Any] | Mapping[str, Any] | None = None) -> PlayResult:
        __tracebackhide__ = True
        result: PlayResult = self._loop.run(self._handle.settle, answers)
        return result

    def cancel(self) -> PlayResult:
        result: PlayResult = self._loop.run(self._handle.cancel)
        return result


@attrs.define(eq=False)
class SyncFlowHarness:
    """:class:`FlowHarness` for sync tests: the same methods, without ``await``."""

    _harness: FlowHarness
    _loop: _Loop = attrs.field(repr=False)

    def __repr__(self) -> str:
        return "<Sync" + repr(self._harness)[1:]  # <SyncFlowHarness sandbox=... store=... root=...>

    @property
    def config(self) -> Config:
        return self._harness.config

    @property
    def wait_limit(self) -> float:
        return self._harness.wait_limit

    @wait_limit.setter
    def wait_limit(self, seconds: float) -> None:
        self._harness.wait_limit = seconds

    def call(self, method: str, /, **params: Any) -> Any:
        async def call() -> Any:
            return await self._harness.call(method, **params)

        return self._loop.run(call)

    def push(self, path: str | os.PathLike[str], *, name: str = "", version_label: str = "") -> Flow:
        __tracebackhide__ = True
        async def push() -> Flow:
            return await self._harness.push(path, name=name, version_label=version_label)

        flow: Flow = self._loop.run(push)
        return flow

    def push_source(self, source: str, *, name: str = "", version_label: str = "") -> Flow:
        __tracebackhide__ = True
        async def push() -> Flow:
            return await self._harness.push_source(source, name=name, version_label=version_label)

        flow: Flow = self._loop.run(push)
        return flow

    def flow(self, name: str) -> Flow:
        flow: Flow = self._loop.run(self._harness.flow, name)
        return flow

    def start(
        self, flow: Flow | str, inputs: Mapping[str, Any] | None = None, *, prefill: Mapping[str, Any] | None = None
    ) -> SyncPlay:
        async def start() -> PlayHandle:
            return await self._harness.start(flow, inputs, prefill=prefill)

        return SyncPlay(self._loop.run(start), self._loop)

    def run(
        self,
        flow: Flow | str,
        inputs: Mapping[str, Any] | None = None,
        *,
        answers: Sequence[Any] | Mapping[str, Any] | None = None,
        prefill: Mapping[str, Any] | None = None,
    ) -> PlayResult:
        __tracebackhide__ = True

        async def run() -> PlayResult:
            return await self._harness.run(flow, inputs, answers=answers, prefill=prefill)

        result: PlayResult = self._loop.run(run)
        return result

    def play(self, sid: str) -> SyncPlay:
        return SyncPlay(self._harness.play(sid), self._loop)


@contextmanager
def open_sync_flow_harness(config: Config | None = None, **settings: Any) -> Iterator[SyncFlowHarness]:
    """:func:`open_flow_harness` in a thread of its own, for tests that are not async. Not for
    use inside a trio loop (an async test): use :func:`open_flow_harness` there."""
    started: queue.Queue[tuple[FlowHarness, _Loop, trio.Event] | BaseException] = queue.Queue()

    async def main() -> None:
        async with open_flow_harness(config, **settings) as harness:
            stop = trio.Event()
            started.put((harness, _Loop(trio.lowlevel.current_trio_token()), stop))
            await stop.wait()

    def thread() -> None:
        try:
            trio.run(main)
        except BaseException as exc:  # handed to the caller's thread, which raises it
            started.put(exc)

    worker = threading.Thread(target=thread, name="hero_logic flow harness", daemon=True)
    worker.start()
    first = started.get()
    if isinstance(first, BaseException):
        worker.join()
        raise first
    harness, loop, stop = first
    try:
        yield SyncFlowHarness(harness, loop)
    finally:
        with contextlib.suppress(trio.RunFinishedError):  # the service's loop may have died already
            trio.from_thread.run_sync(stop.set, trio_token=loop.token)
        worker.join()
        if not started.empty():  # the service failed while stopping
            late = started.get()
            if isinstance(late, BaseException):
                raise late
