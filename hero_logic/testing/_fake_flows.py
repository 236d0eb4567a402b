"""Running plays without processes or sockets: a fake executor and span listener that play a
script instead of a flow (in the spirit of httpx's ``MockTransport``).

``open_fake_kernel(config, script)`` opens a real kernel — real store (use ``store="memory"``),
real event path, real status rules — whose plays are run by ``script``: an async function
given a :class:`FakeRun` (the play's inputs and replay caches, and ``emit`` / ``request`` as
the SDK would send them) that returns the flow's exit status. Domain rules can then be tested
with no subprocess, no sandbox and no socket.
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
import trio

from hero_logic.kernel import (
    ExitOutcome,
    ListenerStatistics,
    Slots,
    load_picker,
    load_plugin,
    open_kernel,
)
from hero_logic.sdk import ENV_INPUT_FILE, ENV_REPLAY_FILE, decode_event

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from hero_logic.kernel import Config, EventSink, Kernel, Launch

__all__ = ["FakeRequestError", "FakeRun", "FakeTier", "open_fake_kernel"]


class FakeRequestError(Exception):
    """The service answered a fake flow's request with an error."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", ""))
        self.error = error


@attrs.define(eq=False)
class FakeRun:
    """One run of a play, as a flow process would see it."""

    play_sid: str
    inputs: dict[str, Any]
    replay: dict[str, Any] | None
    sink: EventSink
    _next_id: int = 0

    @property
    def answers(self) -> dict[str, Any]:
        """The answers this run replays, by resume id."""
        return dict((self.replay or {}).get("resumes", {}))

    async def emit(self, event: dict[str, Any]) -> None:
        """Send one wire event, as the SDK would (it is checked like a real line)."""
        raw = json.dumps(event, separators=(",", ":")).encode()
        await self.sink.apply(self.play_sid, [(raw, decode_event(raw))])

    async def request(self, method: str, params: dict[str, Any]) -> Any:
        """Ask the service, as the SDK does on its span socket; the answer's result."""
        self._next_id += 1
        answer = await self.sink.request(
            self.play_sid, {"type": "request", "id": self._next_id, "method": method, "params": params}
        )
        if "error" in answer:
            raise FakeRequestError(answer["error"])
        return answer.get("result")

    async def pause(self, resume_id: str, name: str = "") -> None:
        """Report a pause (the caller then returns 75, as the SDK's pause exit does)."""
        await self.emit({"type": "pause", "resume_id": resume_id, "name": name or resume_id, "span_id": "root", "asked_at": 1})

    async def finish(self, output: Any) -> int:
        """Report the flow's output; returns the success exit status."""
        await self.emit({"type": "output", "output": output})
        return 0


@attrs.define(eq=False)
class _Handle:
    def statistics(self) -> ListenerStatistics:
        return ListenerStatistics()

    async def wait_idle(self) -> None:
        await trio.lowlevel.checkpoint()


@attrs.define(eq=False)
class _FakeListener:
    sinks: dict[str, EventSink]

    async def serve(
        self, play_sid: str, socket_path: Path, sink: EventSink, *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        self.sinks[play_sid] = sink
        task_status.started(_Handle())
        await trio.sleep_forever()


@attrs.define(eq=False)
class _FakeExecutor:
    script: Callable[[FakeRun], Awaitable[int]]
    sinks: dict[str, EventSink]
    runs: list[str] = attrs.Factory(list)
    starts_processes = False
    """The kernel commits ``running`` before a fake run, not beside it (no spawn to overlap)."""

    def kill_leftover(self, pid_file: Path) -> bool:
        return False

    async def run(self, launch: Launch, *, timeout_s: float, kill_grace_s: float) -> ExitOutcome:
        self.runs.append(launch.play_sid)
        inputs = _read_json(launch.env[ENV_INPUT_FILE])
        replay_path = launch.env.get(ENV_REPLAY_FILE)
        replay = _read_json(replay_path) if replay_path else None
        run = FakeRun(launch.play_sid, inputs, replay, self.sinks[launch.play_sid])
        with trio.move_on_after(timeout_s) as scope:
            code = await self.script(run)
        if scope.cancelled_caught:
            return ExitOutcome(exit_code=None, timed_out=True)
        return ExitOutcome(exit_code=code)


def _read_json(path: str) -> Any:
    """A small file the runner staged (read on the loop: fakes are for tests)."""
    with open(path, "rb") as f:
        return json.load(f)


@attrs.define
class FakeTier:
    """A sandbox tier that wraps nothing (the fake executor starts no process)."""

    name: str = "fake"
    strength: int = 0

    def check(self) -> None: ...

    def prepare(self) -> None: ...

    def wrap(self, launch: Launch) -> Launch:
        return launch

    def close(self) -> None: ...


@asynccontextmanager
async def open_fake_kernel(
    config: Config, script: Callable[[FakeRun], Awaitable[int]], *, clock_ms: Callable[[], int] | None = None
) -> AsyncIterator[Kernel]:
    """A running kernel over ``config``'s store whose plays are run by ``script``
    (``clock_ms``: the wall clock its timer wheel reads, e.g. one driven by Trio's mock clock)."""
    sinks: dict[str, EventSink] = {}
    # A script writes no file: plain workdirs (no file system mounted per run, whose worker
    # threads would let a mock clock jump).
    config = attrs.evolve(config, workdir_mb=0)
    slots = Slots(
        store_factory=load_plugin("hero_logic.store", config.store, required_attrs=("from_config",)),
        executor=_FakeExecutor(script, sinks),
        listener=_FakeListener(sinks),
        picker=load_picker(config, config.version_picker),
    )
    async with open_kernel(config, slots=slots, tier=FakeTier(), clock_ms=clock_ms) as kernel:
        yield kernel
