"""Answering a ``@flow`` call from the replay caches instead of running it.

A call is answered from the play's own record (``steps`` / ``failures`` by step key) or, in a
fork, from the record of the play it was forked from (``reuse.steps`` / ``reuse.failures`` by
shape key, which carries no version). Either way its span is sent ``replayed`` in one line and
the body does not run. A step taken from a forked-from play is recorded again as this play's
own (its ``step_output`` or ``step_failed`` under this play's step key), so the fork's later
runs, its own forks and its trace need no other play.
"""

from __future__ import annotations

from . import _wire
from ._jsoncodec import encode_basestring as _quote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from ._play import Runtime
    from ._spans import Span

__all__ = ["from_cache", "is_cached", "reuse_problem"]


def reuse_problem(data: Mapping[str, Any]) -> str:
    """What is wrong with a replay file's ``recorded`` and ``reuse`` parts, or ``""``."""
    for key in ("recorded", "reuse"):
        if not isinstance(data.get(key, {}), dict):
            return f"{key!r} that is not an object"
    for key in ("steps", "failures", "resumes"):
        if not isinstance(data.get("reuse", {}).get(key, {}), dict):
            return f"'reuse.{key}' that is not an object"
    return ""


def is_cached(runtime: Runtime, key: str, shape: str) -> bool:
    """True if the call with step key ``key`` and shape key ``shape`` has a recorded outcome."""
    return (
        key in runtime.steps
        or key in runtime.failures
        or (runtime.reusing and (shape in runtime.reuse_steps or shape in runtime.reuse_failures))
    )


def from_cache(
    runtime: Runtime, span: Span, key: str, parent_id: str, site: tuple[str, str], name: str, fields: str
) -> Any:
    """The recorded output of a call :func:`is_cached` found, or raise its recorded exception."""
    from ._play import _now_ms

    now = _now_ms()
    replayed = f',"status":"replayed","end_ms":{now}{fields}'
    own = key in runtime.steps or key in runtime.failures
    if not own:
        replayed += f',"tags":{{"reused_from":{_quote(runtime.reused_from)}}}'
    # One line: a replayed step starts and ends at once (span_start with status and end_ms).
    line = runtime.start_line(span, key, parent_id, site, now, replayed)
    if key in runtime.steps:
        runtime.writer.send(line)
        return runtime.steps[key]
    from ._failure import replayed as replayed_failure

    if key in runtime.failures:
        runtime.writer.send(line)
        raise replayed_failure(runtime.failures[key], name)
    shape = span.shape
    if shape in runtime.reuse_steps:
        output = runtime.reuse_steps[shape]
        text = _wire.strict_json(output)
        preview = ""
        if len(text) > _wire.MAX_TRACE_BYTES:
            preview = f',"output_preview":{_quote(_wire.truncate_text(text, _wire.MAX_TRACE_BYTES))}'
        runtime.writer.send(
            line
            + _wire._to_bytes(
                f'{{"type":"step_output","span_id":"{span.span_id}","step_key":"{key}",'
                f'"shape_key":"{shape}","output":{text}{preview}}}\n'
            )
        )
        return output
    entry = runtime.reuse_failures[shape]
    event = {"type": "step_failed", "span_id": span.span_id, "step_key": key, "shape_key": shape}
    event.update(_wire.failure_entry(entry))
    runtime.writer.send(line + _wire.encode_event(event))
    raise replayed_failure(entry, name)
