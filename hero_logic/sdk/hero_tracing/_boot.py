"""The flow process's main program (run by ``hero_boot.py`` as ``python -I -S hero_boot.py``).

It reads the ``HERO_FLOW_*`` environment, runs the flow's source as the module
``__hero_flow__``, calls the entry ``@flow`` with the play's inputs, sends the ``output``
event, and exits: 0 success, 75 awaiting resume, 2 no ``@flow`` entry, 1 anything else (the
reason on stderr). The span socket closes at interpreter exit (an ``atexit`` hook), once any
threads the flow left running have ended; a caller of :func:`run` that leaves through
``os._exit`` must call ``hero_tracing._state.get().close()`` itself.
"""

from __future__ import annotations

import os
import sys

from . import _state
from ._load import flows_in, load_module, pick_entry
from ._spans import AwaitingResume, Failed, Nondeterministic, outcome
from ._wire import EXIT_AWAITING_RESUME, EXIT_FAILED, EXIT_NO_ENTRY, EXIT_OK

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Coroutine, Mapping
    from typing import Any, NoReturn

    from ._flow import FlowInfo
    from ._play import Runtime

__all__ = ["EXIT_AWAITING_RESUME", "EXIT_FAILED", "EXIT_NO_ENTRY", "EXIT_OK", "main", "run"]


MODULE_NAME = "__hero_flow__"
PAUSE_GRACE_S = 30.0
"""How long an async flow that is pausing waits for its other branches to pause or finish."""

_CO_VARKEYWORDS = 0x08


def _say(text: str) -> None:
    (sys.__stderr__ or sys.stderr).write(text.rstrip("\n") + "\n")  # never a span log


def main() -> NoReturn:
    """Run the play's flow and exit with its status (its environment, import hint and
    network guard set up first, its output captured as span logs)."""
    from ._resources import prepare_process

    prepare_process(os.environ)
    raise SystemExit(run(os.environ, capture_output=True))


def _read_inputs(path: str) -> dict[str, Any]:
    from ._jsoncodec import loads

    with open(path, "rb") as file:
        inputs = loads(file.read())
    if not isinstance(inputs, dict):
        msg = f"the input file {path!r} holds a JSON {type(inputs).__name__}, not an object"
        raise ValueError(msg)
    return inputs


def _arguments(info: FlowInfo, inputs: dict[str, Any]) -> dict[str, Any]:
    """``inputs`` completed with declared defaults, checked against the entry's parameters."""
    func = info.fn
    code = getattr(func, "__code__", None)
    if code is None:
        return inputs
    positional = code.co_varnames[: code.co_argcount]
    keyword_only = code.co_varnames[code.co_argcount : code.co_argcount + code.co_kwonlyargcount]
    names = positional[code.co_posonlyargcount :] + keyword_only
    takes_any = bool(code.co_flags & _CO_VARKEYWORDS)
    n_defaults = len(getattr(func, "__defaults__", None) or ())
    python_defaults = set(positional[len(positional) - n_defaults :]) if n_defaults else set()
    python_defaults |= set(getattr(func, "__kwdefaults__", None) or ())
    arguments = dict(inputs)
    for field in info.inputs or ():
        field_name = field["name"]
        if field_name in arguments or not (takes_any or field_name in names):
            continue
        if field["default"] is not None or (
            not field["required"] and field_name not in python_defaults
        ):
            arguments[field_name] = field["default"]
    unknown = [n for n in arguments if n not in names] if not takes_any else []
    missing = [n for n in names if n not in arguments and n not in python_defaults]
    if unknown or missing:
        problems = []
        if unknown:
            problems.append(f"unexpected input(s) {', '.join(map(repr, unknown))}")
        if missing:
            problems.append(f"missing input(s) {', '.join(map(repr, missing))}")
        takes = ", ".join(names) or "no inputs"
        msg = f"flow {info.name!r} got {' and '.join(problems)}; it takes: {takes}"
        raise Failed(msg)
    return arguments


def _run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    import asyncio

    async def drive() -> Any:
        try:
            return await coro
        except BaseException as exc:
            if outcome(exc) is None:
                await _let_branches_settle(asyncio)
            raise

    return asyncio.run(drive())


async def _let_branches_settle(asyncio: Any) -> None:
    """Pausing: let parallel branches run on to their own pauses or ends, for a while.

    So every question open in this run is asked before the process exits. Branches still
    running after :data:`PAUSE_GRACE_S` are cancelled by ``asyncio.run`` as it closes.
    """
    me = asyncio.current_task()
    deadline = asyncio.get_running_loop().time() + PAUSE_GRACE_S
    while True:
        others = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
        left = deadline - asyncio.get_running_loop().time()
        if not others or left <= 0:
            return
        await asyncio.wait(others, timeout=left)
        for task in others:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: no "never retrieved" noise on stderr


def _departed(runtime: Runtime | None, instead: str) -> str:
    """How a run that ended as ``instead`` says departed from the play's recorded run, or "".

    A departure fails the play: the root span is ended again, ``failed`` with the difference,
    which becomes the play's error (see :mod:`._strict`).
    """
    if runtime is None or runtime.strict is None:
        return ""
    departure = runtime.strict.finish(instead[:300])
    if departure and runtime.root is not None:
        runtime.end_span(runtime.root.span_id, "failed", departure)
    return departure


def run(environ: Mapping[str, str], *, capture_output: bool = False) -> int:
    """Run the flow the environment describes; return the exit status.

    With ``capture_output`` (the flow process's own run), ``print``, ``sys.stderr`` writes
    and what ``logging`` prints become span logs of the current span."""
    source_file = environ.get("HERO_FLOW_SOURCE_FILE", "")
    if not source_file:
        _say("hero_boot: HERO_FLOW_SOURCE_FILE is not set: it must name the flow's source file")
        return EXIT_FAILED
    runtime = None
    if environ.get("HERO_FLOW_SPAN_SOCK"):
        from ._play import ReplayFileError, Runtime

        try:
            runtime = Runtime.from_environ(environ)
        except ReplayFileError as exc:
            _say(f"hero_boot: {exc}")
            return EXIT_FAILED
        import atexit

        # At exit, after the interpreter has waited for threads still running, so a branch
        # in a thread that pauses late still gets its pause out.
        atexit.register(runtime.close)
    _state.activate(runtime)
    if capture_output and runtime is not None:
        from ._output import capture

        capture(runtime)
    try:
        input_path = environ.get("HERO_FLOW_INPUT_FILE", "")
        inputs = _read_inputs(input_path) if input_path else {}
    except (OSError, ValueError) as exc:
        _say(f"hero_boot: cannot read the inputs: {exc}")
        return EXIT_FAILED
    try:
        with open(source_file, "rb") as file:
            source = file.read()
    except OSError as exc:
        _say(f"hero_boot: cannot read the flow source: {exc}")
        return EXIT_FAILED
    entry_name = environ.get("HERO_FLOW_ENTRY", "") or None
    try:
        try:
            module = load_module(source, source_file, MODULE_NAME)
        except SyntaxError as exc:
            _say(f"flow failed: {source_file} line {exc.lineno}: SyntaxError: {exc.msg}")
            return EXIT_FAILED
        flows = flows_in(module)
        picked = pick_entry(flows, entry_name)
        if picked is None:
            if entry_name:
                names = ", ".join(info.name for _, info in flows) or "none"
                _say(f"no @flow named {entry_name!r} in {source_file} (flows defined: {names})")
            else:
                _say(
                    f"no @flow entry in {source_file}: define a function decorated with @flow "
                    "(from hero_tracing import flow)"
                )
            return EXIT_NO_ENTRY
        fn, info = picked
        if runtime is not None and runtime.strict is not None:
            runtime.strict.enabled = info.strict_replay  # the entry flow decides for the play
        result = fn(**_arguments(info, inputs))
        if info.is_async:
            result = _run_async(result)
    except Failed as exc:
        _say(f"flow failed: {_departed(runtime, f'failed ({exc.reason})') or exc.reason}")
        return EXIT_FAILED
    except SystemExit as exc:
        _say(f"flow failed: the flow called sys.exit({exc.code!r})")
        return EXIT_FAILED
    except Nondeterministic as exc:
        _say(f"flow failed: {exc}")
        return EXIT_FAILED
    except BaseException as exc:
        if outcome(exc) is None:
            asked = "a pause"
            if isinstance(exc, AwaitingResume):
                child = exc.resume_id.startswith("child:")
                asked = f"child play {exc.resume_id[6:]}" if child else f"pause {exc.name!r}"
            departure = _departed(runtime, f"paused at {asked}")
            if departure:
                _say(f"flow failed: {departure}")
                return EXIT_FAILED
            return EXIT_AWAITING_RESUME
        departure = _departed(runtime, f"failed ({type(exc).__name__}: {exc})")
        if departure:
            _say(f"flow failed: {departure}")
            return EXIT_FAILED
        if runtime is None:  # in a play the root span carries the traceback already
            import traceback

            traceback.print_exc()
        _say(f"flow failed: {type(exc).__name__}: {exc}")
        return EXIT_FAILED
    if runtime is not None:
        if runtime.pauses:
            return EXIT_AWAITING_RESUME  # a pause was asked, even if user code swallowed it
        runtime.send({"type": "output", "output": result})
    return EXIT_OK
