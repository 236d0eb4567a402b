"""A step's exception as a record, and the exception a record raises again.

Loaded only when a step fails or a recorded failure is replayed. A record holds what the
``step_failed`` event carries: ``error_type`` (``module.QualName``), ``message`` (``str`` of
the exception), ``args`` (the exception's arguments as they came back from JSON, present only
when they are JSON) and ``traceback`` (text). :func:`rebuild` turns a record back into an
exception: the recorded class when it can be found (already imported, or importable) and,
called with the recorded ``args`` (or the message alone when there are none), gives an
exception of exactly that class with exactly that message; otherwise a
:class:`~hero_tracing._spans.StepFailed`. The first run raises what a replay would: the
step's own exception when :func:`rebuild` gives its class back, else that StepFailed.
"""

from __future__ import annotations

import sys

from . import _wire
from ._jsoncodec import loads
from ._spans import AwaitingResume, StepFailed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["interrupted_by_pause", "rebuild", "record", "replayed"]

MAX_ARGS_BYTES = 16 * 1024
"""Arguments whose JSON is longer are not recorded (the rebuild then tries the message)."""


def qualified_name(cls: type) -> str:
    """``module.QualName`` of a class."""
    return f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', cls.__name__)}"


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # a __str__ that raises: say so rather than fail the failure path
        return f"<{type(exc).__name__} whose str() raised>"


def _args(exc: BaseException) -> list[Any] | None:
    """The exception's arguments after a JSON round trip, or None when they are not JSON."""
    args: tuple[Any, ...] = exc.args
    if isinstance(exc, OSError) and exc.filename is not None:
        # OSError keeps the file names out of ``args``; its constructor takes them back.
        args = (exc.errno, exc.strerror, exc.filename)
        if exc.filename2 is not None:
            args = (*args, None, exc.filename2)
    try:
        text = _wire.strict_json(list(args))
    except (TypeError, ValueError, RecursionError):
        return None
    if len(text) > MAX_ARGS_BYTES:
        return None
    value: list[Any] = loads(text)
    return value


def interrupted_by_pause(exc: BaseException) -> bool:
    """True if ``exc`` was raised while a pause unwound (user code caught the pause and raised
    something else): the step was interrupted, it did not fail, and is not recorded."""
    cause: BaseException | None = exc
    for _ in range(100):
        if cause is None:
            return False
        if isinstance(cause, AwaitingResume):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def record(exc: BaseException, traceback_text: str) -> dict[str, Any]:
    """The record of a step that raised ``exc`` (``traceback_text``: its formatted traceback)."""
    entry: dict[str, Any] = {
        "error_type": qualified_name(type(exc)),
        "message": _wire.truncate_text(_message(exc)),
    }
    args = _args(exc)
    if args is not None:
        entry["args"] = args
    entry["traceback"] = _wire.truncate_text(traceback_text)
    return entry


def _module(name: str) -> Any:
    """The module called ``name``: loaded already, else imported; None if it cannot be."""
    module = sys.modules.get(name)
    if module is None:
        import importlib

        try:
            module = importlib.import_module(name)
        except Exception:  # not importable, or its import fails: the class is lost
            return None
    return module


def _find_class(name: str) -> type | None:
    """The class called ``name`` (``module.QualName``): found in the longest prefix of the
    name that is a loaded module, else in the longest one that can be imported."""
    if "<" in name:  # defined inside a function: "f.<locals>.Error" cannot be found again
        return None
    parts = name.split(".")
    prefixes = range(len(parts) - 1, 0, -1)
    loaded = [n for n in prefixes if ".".join(parts[:n]) in sys.modules]
    for n in loaded[:1] or prefixes:
        found = _module(".".join(parts[:n]))
        if found is None:
            continue
        for attr in parts[n:]:
            found = getattr(found, attr, None)
        return found if isinstance(found, type) else None
    return None


def _same(cls: type, args: list[Any], message: str) -> BaseException | None:
    """``cls(*args)`` if that is an exception of exactly ``cls`` whose message is ``message``."""
    try:
        exc = cls(*args)
        same = type(exc) is cls and str(exc) == message
    except Exception:  # its constructor wants other arguments, or its str() breaks
        return None
    return exc if same else None


def rebuild(entry: Mapping[str, Any]) -> BaseException:
    """The exception a recorded failure raises (see the module docstring)."""
    name = entry.get("error_type")
    message = entry.get("message")
    name = name if isinstance(name, str) else "?"
    message = message if isinstance(message, str) else ""
    traceback_text = entry.get("traceback")
    traceback_text = traceback_text if isinstance(traceback_text, str) else ""
    cls = _find_class(name)
    if cls is not None and issubclass(cls, Exception):
        args = entry.get("args")
        exc = _same(cls, args if isinstance(args, list) else [message], message)
        if exc is not None:
            if isinstance(exc, StepFailed):
                exc.traceback = traceback_text
            return exc
    return StepFailed(name, message, traceback_text)


def replayed(entry: Mapping[str, Any], step_name: str) -> BaseException:
    """What a replayed failure raises: :func:`rebuild`, noted with the first run's traceback."""
    exc = rebuild(entry)
    first = entry.get("traceback")
    exc.add_note(
        f"hero_tracing: step {step_name!r} raised this on an earlier run of the play and was not "
        "run again"
        + (f"; its traceback then:\n{first}" if isinstance(first, str) and first else "")
    )
    return exc
