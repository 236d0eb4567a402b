"""Reading the span wire protocol: the event types, each one's required fields, and the
checked decoding of an event or response line (strict JSON, bounded nesting).

Split out of :mod:`hero_tracing._wire`, which re-exports its public names.
"""

from __future__ import annotations

from ._jsoncodec import loads as _strict_loads

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["EVENT_TYPES", "MAX_DEPTH", "decode_event", "decode_response", "too_deep"]


EVENT_TYPES = frozenset(
    {
        "span_start",
        "span_tag",
        "span_log",
        "span_end",
        "step_output",
        "step_failed",
        "output",
        "pause",
        "request",
    }
)
"""Every ``type`` a flow process may send (``response`` travels the other way)."""

_STR = (str,)
_INT = (int,)
_DICT = (dict,)
# Required fields per event type and the types they must have (bool is rejected as an int).
_REQUIRED: dict[str, tuple[tuple[str, tuple[type, ...]], ...]] = {
    "span_start": (
        ("span_id", _STR),
        ("parent_id", _STR),
        ("name", _STR),
        ("kind", _STR),
        ("start_ms", _INT),
    ),
    "span_tag": (("span_id", _STR), ("tags", _DICT)),
    "span_log": (("span_id", _STR), ("text", _STR)),
    "span_end": (("span_id", _STR), ("end_ms", _INT), ("status", _STR)),
    "step_output": (("span_id", _STR), ("step_key", _STR)),
    "step_failed": (
        ("span_id", _STR),
        ("step_key", _STR),
        ("error_type", _STR),
        ("message", _STR),
    ),
    "output": (),
    "pause": (("resume_id", _STR), ("name", _STR), ("span_id", _STR), ("asked_at", _INT)),
    "request": (("id", _INT), ("method", _STR), ("params", _DICT)),
}
_REQUIRED_PRESENT = {"step_output": ("output",), "output": ("output",)}


def _reject_constant(name: str) -> Any:
    msg = f"{name} is not JSON"
    raise ValueError(msg)


_decode = _strict_loads


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def _loads(line: bytes | str) -> Any:
    if isinstance(line, bytes | bytearray):
        try:
            text = line.decode()
        except UnicodeDecodeError as exc:
            msg = f"line is not UTF-8: {exc}"
            raise ValueError(msg) from None
    else:
        text = line
    try:
        value = _decode(text)
    except RecursionError:
        msg = "JSON nested too deeply"
        raise ValueError(msg) from None
    except ValueError as exc:
        msg = f"not JSON: {exc}"
        raise ValueError(msg) from None
    if ("\\ud" in text or "\\uD" in text) and _has_lone_surrogate(value):
        msg = "JSON holds a lone surrogate (\\ud800-\\udfff escape)"
        raise ValueError(msg)
    if text.count("[") + text.count("{") > MAX_DEPTH and too_deep(value):
        msg = f"JSON nested deeper than {MAX_DEPTH} levels"
        raise ValueError(msg)
    return value


MAX_DEPTH = 64
"""The deepest nesting of arrays and objects a line may hold (the RPC's bound too)."""


def too_deep(value: Any) -> bool:
    """True if ``value`` nests arrays/objects deeper than MAX_DEPTH (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth > MAX_DEPTH:
                return True
            stack.extend((item, depth + 1) for item in node.values())
        elif isinstance(node, list):
            if depth > MAX_DEPTH:
                return True
            stack.extend((item, depth + 1) for item in node)
    return False


def decode_event(line: bytes | str) -> dict[str, Any]:
    """The event on one line, checked: a JSON object with a known ``type`` and its fields.

    Raises ``ValueError`` saying what is wrong. Strict JSON only: NaN, Infinity and lone
    surrogates are refused. Optional fields are not checked; readers take them leniently.
    Unknown span kinds and statuses pass (the service records them as ``other`` / ``failed``).
    """
    event = _loads(line)
    if not isinstance(event, dict):
        msg = f"event is a JSON {type(event).__name__}, not an object"
        raise ValueError(msg)
    kind = event.get("type")
    if kind not in EVENT_TYPES:
        msg = f"unknown event type {kind!r}; expected one of {', '.join(sorted(EVENT_TYPES))}"
        raise ValueError(msg)
    for field, types in _REQUIRED[kind]:
        value = event.get(field)
        if not isinstance(value, types) or value is True or value is False:
            msg = f"{kind} event needs {field!r} ({types[0].__name__}), got {value!r}"
            raise ValueError(msg)
    for field in _REQUIRED_PRESENT.get(kind, ()):
        if field not in event:
            msg = f"{kind} event needs {field!r}"
            raise ValueError(msg)
    # Kinds and statuses are not refused here: the service stores an unknown kind as "other"
    # and an unknown status as "failed" (never silently "ok"), so a newer SDK talking to an
    # older service degrades visibly instead of losing the event.
    return event


def decode_response(line: bytes | str) -> tuple[int, Any, tuple[int, str] | None]:
    """``(id, result, error)`` from a ``response`` line; ``error`` is ``(code, message)`` or None."""
    answer = _loads(line)
    if not isinstance(answer, dict) or answer.get("type") != "response":
        msg = f"expected a response line, got {str(line)[:200]!r}"
        raise ValueError(msg)
    request_id = answer.get("id")
    if not isinstance(request_id, int):
        msg = f"response without an integer id: {str(line)[:200]!r}"
        raise ValueError(msg)
    error = answer.get("error")
    if error is not None:
        if not isinstance(error, dict):
            return request_id, None, (-32603, repr(error))
        code = error.get("code")
        return (
            request_id,
            None,
            (code if isinstance(code, int) else -32603, str(error.get("message", ""))),
        )
    return request_id, answer.get("result"), None
