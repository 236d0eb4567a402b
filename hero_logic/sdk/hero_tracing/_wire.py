"""The span wire protocol and the replay keys, as pure functions (no sockets, no threads).

Shared by the SDK inside the flow process and by the service that listens on the per-play
socket; the protocol itself is described in the :mod:`hero_tracing` package docstring.
Reading lines (the event types, their required fields, the checked decoders) lives in
:mod:`hero_tracing._decode`, whose names this module re-exports.
"""

from __future__ import annotations

from ._decode import EVENT_TYPES, MAX_DEPTH, decode_event, decode_response, too_deep
from ._jsoncodec import make_encoder as _c_make_encoder

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from hashlib import blake2s as _new_blake2s
    from hashlib import sha1 as _new_sha1
    from typing import Any
else:
    try:  # CPython's own SHA-1: loading hashlib's OpenSSL costs a cold flow process ~2-3 ms
        from _sha1 import sha1 as _new_sha1
    except ImportError:  # an interpreter without it
        from hashlib import sha1 as _new_sha1
    try:  # BLAKE2s: a shape key is made on every call, and it is a third of SHA-1's cost
        from _blake2 import blake2s as _new_blake2s
    except ImportError:
        from hashlib import blake2s as _new_blake2s

__all__ = [
    "ENV_ENTRY",
    "ENV_INPUT_FILE",
    "ENV_MAX_WAIT_MS",
    "ENV_NETWORK",
    "ENV_PACKAGES",
    "ENV_PARENT_SPAN",
    "ENV_PLAY_SID",
    "ENV_REPLAY_FILE",
    "ENV_SANDBOX",
    "ENV_SERVICES",
    "ENV_SLEEP_EXIT_MS",
    "ENV_SOURCE_FILE",
    "ENV_SPAN_SOCK",
    "ENV_VERSION_SID",
    "EVENT_TYPES",
    "EXIT_AWAITING_RESUME",
    "EXIT_FAILED",
    "EXIT_NO_ENTRY",
    "EXIT_OK",
    "FAILURE_FIELDS",
    "MAX_DEPTH",
    "MAX_LINE_BYTES",
    "MAX_TEXT_BYTES",
    "MAX_TRACE_BYTES",
    "NONDETERMINISTIC",
    "RECORDED_KINDS",
    "REQUEST_METHODS",
    "SPAN_END_STATUSES",
    "SPAN_KINDS",
    "STEP_TIMEOUT_TYPE",
    "WAIT_KINDS",
    "attempt_key",
    "canonical_json",
    "decode_event",
    "decode_response",
    "encode_event",
    "encode_response",
    "failure_entry",
    "pause_shape",
    "resume_id",
    "shape_key",
    "step_key",
    "step_material",
    "too_deep",
    "trace_text",
    "truncate_text",
    "wait_id",
]

SPAN_KINDS = frozenset({"flow_root", "step", "rpc", "subflow", "other"})
"""Every span ``kind`` (the service's ``SpanKind`` enum is built from this set)."""

REQUEST_METHODS = frozenset(
    {"flow_source", "start_child_play", "wait_child_play", "check_answer", "checkpoint", "secret_get"}
)
"""Every ``method`` of a ``request`` line; the service answers each with one named handler."""

EXIT_OK = 0
"""Exit status of a flow process whose entry flow returned."""
EXIT_FAILED = 1
"""Exit status of a flow process whose entry flow raised."""
EXIT_NO_ENTRY = 2
"""Exit status of a flow process whose source has no ``@flow`` entry to run."""
EXIT_AWAITING_RESUME = 75
"""Exit status of a flow process that paused (its play awaits resume)."""

ENV_SPAN_SOCK = "HERO_FLOW_SPAN_SOCK"
ENV_PLAY_SID = "HERO_FLOW_PLAY_SID"
ENV_VERSION_SID = "HERO_FLOW_VERSION_SID"
ENV_SOURCE_FILE = "HERO_FLOW_SOURCE_FILE"
ENV_INPUT_FILE = "HERO_FLOW_INPUT_FILE"
ENV_SANDBOX = "HERO_FLOW_SANDBOX"
ENV_ENTRY = "HERO_FLOW_ENTRY"
ENV_PARENT_SPAN = "HERO_FLOW_PARENT_SPAN"
ENV_REPLAY_FILE = "HERO_FLOW_REPLAY_FILE"
ENV_PACKAGES = "HERO_FLOW_PACKAGES"
ENV_SERVICES = "HERO_FLOW_SERVICES"
ENV_NETWORK = "HERO_FLOW_NETWORK"
ENV_SLEEP_EXIT_MS = "HERO_FLOW_SLEEP_EXIT_MS"
ENV_MAX_WAIT_MS = "HERO_FLOW_MAX_WAIT_MS"
"""The ``HERO_FLOW_*`` environment the service gives a flow process (see the package docstring)."""
WAIT_KINDS = frozenset({"input", "timer", "event"})
"""Every ``kind`` of a ``pause`` event (``input`` when absent): what the wait waits for."""

STEP_TIMEOUT_TYPE = "hero_tracing._spans.StepTimeout"
"""The ``error_type`` of the ``step_failed`` the service records for an attempt that ran past
its ``deadline_ms`` (the class ``flow.StepTimeout``)."""

SPAN_END_STATUSES = frozenset({"ok", "failed", "cancelled", "timed_out", "replayed"})
_START_STATUSES = frozenset({"running", "replayed"})

MAX_LINE_BYTES = 1024 * 1024
"""Longest line the service accepts; the SDK keeps every line it sends below this."""

MAX_TEXT_BYTES = 64 * 1024
"""Longest log line, error text or single tag value the SDK sends (UTF-8 bytes)."""


MAX_TRACE_BYTES = 4096
"""Longest ``input`` a ``span_start`` carries, and ``output`` a span record shows (UTF-8 bytes
of JSON); a longer one is sent as a string: its JSON cut to this size (see :func:`trace_text`),
as an oversized tag value is."""

NONDETERMINISTIC = "nondeterministic"
"""How a play whose re-run departed from its recorded run fails: its ``error_message`` (and
its root span's error) starts with ``"nondeterministic: "``."""

RECORDED_KINDS = frozenset({"called", "finished", "asked", "answered"})
"""The ``kind`` of an entry of the replay file's ``recorded.calls``: a call that did not
finish, a call that returned or raised, a pause not answered (or prefilled), a pause answered."""

FAILURE_FIELDS = ("error_type", "message", "args", "traceback")
"""The fields of a ``step_failed`` event that make its entry under the replay file's
``failures`` (``args`` only when the event has it)."""


def failure_entry(event: Mapping[str, Any]) -> dict[str, Any]:
    """The replay file's ``failures`` entry for one ``step_failed`` event."""
    return {name: event[name] for name in FAILURE_FIELDS if name in event}


# --- replay keys -------------------------------------------------------------------------


def _canonical_default(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        try:
            return sorted(value)
        except TypeError:
            return sorted(repr(v) for v in value)
    return repr(value)


_make_encoder = _c_make_encoder
"""Encoders are built once: ``json.dumps`` builds its C encoder anew on every call, which on
the SDK's hot path is most of the cost."""


class _SafeEncoder:
    """The pure-Python ``json`` encoder, imported on first use: only odd values (NaN, circular
    structures) ever need it, so a flow process normally never loads ``json``."""

    def __init__(self) -> None:
        self._encoder: Any = None

    def encode(self, value: Any) -> str:
        if self._encoder is None:
            import json

            self._encoder = json.JSONEncoder(
                ensure_ascii=False, separators=(",", ":"), default=_lenient_default, allow_nan=False
            )
        text: str = self._encoder.encode(value)
        return text


_canonical = _make_encoder(_canonical_default, sort_keys=True, allow_nan=True)


def _not_json(value: Any) -> Any:
    msg = f"Object of type {type(value).__name__} is not JSON serializable"
    raise TypeError(msg)


strict_json = _make_encoder(_not_json, sort_keys=False, allow_nan=False)
"""Compact JSON of plain JSON data; TypeError, ValueError (NaN) or RecursionError otherwise."""


def canonical_json(value: Any) -> str:
    """``value`` as canonical JSON: sorted keys, no spaces, UTF-8 kept as is.

    The same text as ``json.dumps(value, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)``. Values JSON cannot hold are written as their ``repr`` (sets as
    sorted lists), so a key built from them is stable when the repr is, and merely misses
    the cache when it is not.
    """
    try:
        return _canonical(value)
    except (TypeError, ValueError, RecursionError):  # mixed-type dict keys, circular values
        return _safe.encode(repr(value))


def step_material(
    version_sid: str, parent_path: str, flow_name: str, kwargs: Mapping[str, Any]
) -> str:
    """What identifies a call before its ordinal: ``version|parent_path|name|canonical_json``."""
    return f"{version_sid}|{parent_path}|{flow_name}|{canonical_json(kwargs)}"


def _sha1(text: str) -> str:
    return _new_sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def step_key(
    version_sid: str, parent_path: str, flow_name: str, kwargs: Mapping[str, Any], ordinal: int = 0
) -> str:
    """The cache key of one ``@flow`` call (hex SHA-1).

    ``parent_path`` is ``""`` for the outermost call and the enclosing call's own step key
    otherwise; ``ordinal`` counts earlier calls with the same name and arguments under the same
    parent, so a loop of identical calls keeps one cached output per iteration.
    """
    return _sha1(f"{step_material(version_sid, parent_path, flow_name, kwargs)}|{ordinal}")


def resume_id(version_sid: str, parent_path: str, name: str, ordinal: int = 0) -> str:
    """The id of a pause (hex SHA-1); ``ordinal`` counts earlier pauses of ``name`` under the parent."""
    return _sha1(f"{version_sid}|{parent_path}|pause:{name}|{ordinal}")


def _blake(text: str) -> str:
    return _new_blake2s(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def shape_key(parent_shape: str, flow_name: str, kwargs: Mapping[str, Any], ordinal: int = 0) -> str:
    """The version-free identity of one ``@flow`` call (32 hex digits): what a fork matches on.

    ``blake2s-128(parent_shape|flow_name|canonical_json(kwargs)|ordinal)``, where ``parent_shape`` is
    the enclosing call's own shape key (``""`` for the entry flow, whose arguments are left
    out: ``sha1(|flow_name||ordinal)``) and ``ordinal`` is the one of its step key. No version
    sid anywhere, so the same call by name, arguments and position has the same shape on
    every version of the flow, and with other inputs to the play.
    """
    args = canonical_json(kwargs) if parent_shape else ""
    return _blake(f"{parent_shape}|{flow_name}|{args}|{ordinal}")


def pause_shape(parent_shape: str, name: str, ordinal: int = 0) -> str:
    """The version-free identity of a pause (32 hex digits):
    ``blake2s-128(parent_shape|pause:name|ordinal)``."""
    return _blake(f"{parent_shape}|pause:{name}|{ordinal}")


def trace_text(text: str) -> str | None:
    """How the JSON ``text`` of a call's arguments goes into the trace: ``None`` when it fits in
    :data:`MAX_TRACE_BYTES` and is strict JSON (it is sent as it is); otherwise the string to
    send instead, ``text`` cut to size with a note of how much was dropped."""
    fits = len(text) * 4 <= MAX_TRACE_BYTES or len(text.encode("utf-8", "surrogatepass")) <= MAX_TRACE_BYTES
    if fits and "NaN" not in text and "Infinity" not in text:
        return None
    return truncate_text(text, MAX_TRACE_BYTES)
def wait_id(step_key: str, name: str) -> str:
    """The resume id of one wait of a durable-wait step (hex SHA-1): ``sha1(step_key|wait:name)``."""
    return _sha1(f"{step_key}|wait:{name}")


def attempt_key(step_key: str, attempt: int) -> str:
    """The key of one attempt of a step that retries (hex SHA-1): ``sha1(step_key|attempt:n)``."""
    return _sha1(f"{step_key}|attempt:{attempt}")


# --- encoding ----------------------------------------------------------------------------


def _lenient_default(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return repr(value)


_fast = _make_encoder(_lenient_default, sort_keys=False, allow_nan=False)
_safe = _SafeEncoder()


def _encode(value: Any) -> str:
    """Compact JSON of ``value``, whatever it holds (see :func:`encode_event`)."""
    try:
        return _fast(value)
    except (ValueError, RecursionError):  # NaN or infinity; a circular value
        return _safe.encode(_plain(value))


def truncate_text(text: str, limit: int = MAX_TEXT_BYTES) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, with a note saying how much was dropped."""
    if len(text) * 4 <= limit:
        return text
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= limit:
        return text
    note = f"… [truncated {len(raw) - limit + 64} bytes]"
    return raw[: limit - 64].decode("utf-8", "ignore") + note


def _to_bytes(line: str) -> bytes:
    try:
        return line.encode()
    except UnicodeEncodeError:  # a lone surrogate in user text: make it U+FFFD
        return line.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()


def _plain(value: Any, depth: int = 0) -> Any:
    """``value`` as plain JSON data: NaN and infinities as their names, other values as reprs.

    Nesting deeper than 100 levels (a circular value, say) is cut off as a repr.
    """
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return (
            value if value == value and value not in (float("inf"), float("-inf")) else repr(value)
        )
    if depth >= 100:
        return repr(value)
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v, depth + 1) for v in value]
    return repr(value)


def _shrink(event: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``event`` whose free-form parts are cut down to fit in one line."""
    small = dict(event)
    for key in ("text", "error"):
        if isinstance(small.get(key), str):
            small[key] = truncate_text(small[key])
    for key in ("tags", "schema", "ui"):
        value = small.get(key)
        if isinstance(value, dict):
            cut = {}
            for name, item in value.items():
                text = _encode(item)
                cut[name] = item if len(text) <= 4096 else truncate_text(text, 4096)
            small[key] = cut
    return small


def encode_event(event: Mapping[str, Any]) -> bytes:
    """One event as a compact JSON line (with its newline), always shorter than the line cap.

    Values JSON cannot hold become their ``repr``, NaN and infinities become strings, lone
    surrogates become U+FFFD, and oversized text, errors and tag values are truncated. An
    event that still does not fit (only a huge ``output`` can) raises ``ValueError``.
    """
    data = _to_bytes(_encode(event))
    if len(data) < MAX_LINE_BYTES:
        return data + b"\n"
    data = _to_bytes(_encode(_shrink(dict(event))))
    if len(data) < MAX_LINE_BYTES:
        return data + b"\n"
    msg = f"{event.get('type')} event is {len(data)} bytes of JSON, over the {MAX_LINE_BYTES}-byte line cap"
    raise ValueError(msg)


def encode_response(
    request_id: int, result: Any = None, error: tuple[int, str] | None = None
) -> bytes:
    """The service's answer to a ``request`` line, as a JSON line."""
    answer: dict[str, Any] = {"type": "response", "id": request_id}
    if error is None:
        answer["result"] = result
    else:
        answer["error"] = {"code": error[0], "message": error[1]}
    return _to_bytes(_encode(answer)) + b"\n"
