"""``flow.invoke``: calling another library flow, in this process or as a child play.

Either way the invocation is one memoized step named ``invoke:<name>`` whose key covers the
flow name, the requested version and the inputs, so a finished invocation is replayed, not
re-run. In process, the service hands over the flow's source (``flow_source``), which runs
as a fresh module; its spans nest under the invocation. With ``spawn=True`` the service starts
a child play (``start_child_play``) and the caller waits for it (``wait_child_play``).
"""

from __future__ import annotations

from . import _state
from ._emit import RequestError, ServiceLost
from ._load import flows_in, load_module, pick_entry
from ._spans import AwaitingResume, Failed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Coroutine
    from types import FrameType
    from typing import Any

    from ._play import Runtime
    from ._spans import Span

__all__ = ["invoke"]

def invoke(
    name: str, spawn: bool, version_sid: str, inputs: dict[str, Any], caller: FrameType
) -> Any:
    """The output of flow ``name`` run with ``inputs`` (see the module docstring)."""
    if not isinstance(name, str) or not name:
        msg = f"flow.invoke needs a flow name, got {name!r}"
        raise TypeError(msg)
    runtime = _state.get()
    if runtime is None:
        msg = (
            f"flow.invoke({name!r}) needs a play: the flow's source comes from the hero_logic "
            "service, and this process is not running one (HERO_FLOW_SPAN_SOCK is unset). "
            "Run the flow with hero_logic, or import and call the other flow directly."
        )
        raise RuntimeError(msg)
    key_kwargs = {"inputs": inputs, "spawn": bool(spawn), "version_sid": version_sid}

    def body(span: Span) -> Any:
        if spawn:
            return _spawn(runtime, span, name, version_sid, inputs)
        return _in_process(runtime, span, name, version_sid, inputs)

    return runtime.run_memoized(
        f"invoke:{name}",
        key_kwargs,
        body,
        kind="subflow" if spawn else "step",
        source_file=caller.f_code.co_filename,
        source_line=caller.f_lineno,
    )


def _ask(runtime: Runtime, name: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
    try:
        answer = runtime.writer.request(method, params)
    except RequestError as exc:
        msg = f"flow.invoke({name!r}): the service refused {method}: {exc.message}"
        raise Failed(msg) from None
    except ServiceLost as exc:
        msg = f"flow.invoke({name!r}): lost the connection to the service ({exc})"
        raise Failed(msg) from None
    if not isinstance(answer, dict):
        msg = f"flow.invoke({name!r}): the service answered {method} with {answer!r}, not an object"
        raise Failed(msg)
    return answer


def _in_process(
    runtime: Runtime, span: Span, name: str, version_sid: str, inputs: dict[str, Any]
) -> Any:
    answer = _ask(runtime, name, "flow_source", {"name": name, "version_sid": version_sid})
    source = answer.get("source")
    if not isinstance(source, str):
        msg = f"flow.invoke({name!r}): the service sent no source for it"
        raise Failed(msg)
    resolved = answer.get("version_sid") or version_sid
    entry_name = answer.get("entry_flow") or None
    # Named after the invocation's step key, so every run of the play loads it under the same
    # name: an exception class defined in it is found again when a failure is replayed.
    module_name = f"__hero_invoke_{span.path[:20]}__"
    # The child's own steps are keyed under the version that actually ran.
    span.path = f"{span.path}@{resolved}"
    span.tag(invoked_flow=name, invoked_version_sid=resolved)
    filename = f"<flow {name}@{resolved}>" if resolved else f"<flow {name}>"
    try:
        module = load_module(source, filename, module_name)
    except SyntaxError as exc:
        msg = f"flow.invoke({name!r}): its source does not compile: line {exc.lineno}: {exc.msg}"
        raise Failed(msg) from None
    picked = pick_entry(flows_in(module), entry_name)
    if picked is None:
        wanted = f"a @flow named {entry_name!r}" if entry_name else "a @flow function"
        msg = f"flow.invoke({name!r}): its source (version {resolved or '?'}) defines no {wanted}"
        raise Failed(msg)
    result = picked[0](**inputs)
    if picked[1].is_async:
        result = _run_coroutine(result)
    return result


def _run_coroutine(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run an async child flow to completion from synchronous code."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from async code: the caller's loop is busy running us, so use a loop of our own
    # in a helper thread, carrying the current span over in a copy of the context.
    import contextvars
    import threading

    context = contextvars.copy_context()
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = context.run(asyncio.run, coro)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, name="hero_tracing-invoke")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


def _spawn(
    runtime: Runtime, span: Span, name: str, version_sid: str, inputs: dict[str, Any]
) -> Any:
    started = _ask(
        runtime,
        name,
        "start_child_play",
        {
            "name": name,
            "version_sid": version_sid,
            "inputs": inputs,
            "parent_span_id": span.span_id,
            "step_key": span.path,
        },
    )
    child = started.get("play_sid")
    if not isinstance(child, str) or not child:
        msg = f"flow.invoke({name!r}, spawn=True): the service started no child play ({started!r})"
        raise Failed(msg)
    span.tag(child_play_sid=child)
    ended = _ask(runtime, name, "wait_child_play", {"play_sid": child})
    status = ended.get("status")
    if status == "success":
        return ended.get("output")
    if status == "awaiting_resume":
        waiting = f"child:{child}"
        runtime.pauses.append(waiting)
        raise AwaitingResume(waiting, name)
    error = ended.get("error") or "no error message"
    msg = f"child play {child} of flow {name!r} ended {status}: {error}"
    raise Failed(msg)
