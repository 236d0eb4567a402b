"""JSON-RPC 2.0 framing, sans-IO: bytes in, bytes out, no sockets and no trio.

The server hands a request body to :func:`handle_body` together with a ``dispatch`` coroutine
function (``await dispatch(method, params)``); it gets back the response body, or ``None`` when
nothing is to be answered (a notification, or a batch of only notifications: HTTP 204). The
client builds requests with :func:`encode_request` and reads answers with
:func:`decode_response`. Both sides share :func:`loads_strict`.

What is strict JSON here (CONTRACT.md §3): UTF-8 only; no ``NaN``/``Infinity``/``-Infinity``
and no number too large for a float; no lone UTF-16 surrogate (``"\\ud800"``) in any string or
key; nesting no deeper than :data:`MAX_DEPTH`. Duplicate keys are allowed (the last one wins).
Anything else is a -32700 parse error answered with ``"id": null``.

Error codes of the framing (the application codes live in :mod:`hero_logic.kernel._errors`)::

    -32700  ParseError      the body is not strict JSON
    -32600  InvalidRequest  not a JSON-RPC 2.0 request object, or an empty batch
    -32601  MethodNotFound  no method of that name
    -32602  InvalidParams   (kernel) a parameter is missing, unknown or mistyped
    -32603  internal        any other failure; the traceback goes to the log, never the wire
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from hero_logic.kernel import MAX_JSON_DEPTH as MAX_DEPTH
from hero_logic.kernel import HeroLogicError, RawJson
from hero_logic.kernel import loads_strict as _loads_strict
from hero_logic.sdk import type_name as _json_type

__all__ = [
    "MAX_DEPTH",
    "Dispatch",
    "InvalidRequest",
    "MethodNotFound",
    "ParseError",
    "answer_body",
    "decode_response",
    "encode_request",
    "handle_body",
    "loads_strict",
    "request_object",
    "response_outcome",
]

logger = logging.getLogger("hero_logic.rpc")

"""The deepest nesting of arrays and objects a request may have."""

Params = dict[str, Any] | list[Any] | None
Dispatch = Callable[[str, Params], Awaitable[Any]]
"""``await dispatch(method, params)`` → the JSON-shaped result; raises HeroLogicError."""


class ParseError(HeroLogicError):
    """The request body is not strict JSON (NaN, lone surrogates, deep nesting, bad UTF-8)."""

    code = -32700


class InvalidRequest(HeroLogicError):
    """The JSON is not a JSON-RPC 2.0 request object (or is an empty batch)."""

    code = -32600


class MethodNotFound(HeroLogicError):
    """No method of that name; ``rpc.discover`` lists them all."""

    code = -32601


# -- strict JSON ---------------------------------------------------------------------------------


def loads_strict(data: bytes | str) -> Any:
    """Decode strict JSON (see the module docstring), or raise :class:`ParseError`."""
    try:
        return _loads_strict(data)
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, huge floats, surrogates, depth
        msg = f"parse error: {exc}"
        raise ParseError(msg) from None


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


# -- the server side -----------------------------------------------------------------------------

_NULL_ID = b"null"


def _error_bytes(id_json: bytes, error: dict[str, Any]) -> bytes:
    try:
        body = _dumps(error)
    except (TypeError, ValueError):
        logger.exception("error object %r is not JSON; answering a bare internal error", error)
        body = b'{"code":-32603,"message":"internal error: the error detail was not JSON"}'
    return b'{"jsonrpc":"2.0","id":' + id_json + b',"error":' + body + b"}"


def _invalid(id_json: bytes, why: str) -> bytes:
    return _error_bytes(id_json, {"code": InvalidRequest.code, "message": f"invalid request: {why}"})


def _id_json(message: dict[str, Any]) -> bytes | None:
    """The request's id as JSON bytes; None when the id is present but of the wrong type."""
    request_id = message.get("id")
    if request_id is None:
        return _NULL_ID
    if isinstance(request_id, str | int | float) and not isinstance(request_id, bool):
        return _dumps(request_id)
    return None


def _unwrap_group(exc: BaseException) -> BaseException:
    """A single HeroLogicError inside (nested) exception groups, from a method's nursery."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


async def _answer(message: Any, dispatch: Dispatch) -> bytes | RawJson | None:
    """The response bytes for one request object, or None for a notification."""
    if not isinstance(message, dict):
        return _invalid(_NULL_ID, f"expected a request object, got {_json_type(message)}")
    id_json = _id_json(message)
    if id_json is None:
        return _invalid(_NULL_ID, "'id' must be a string, a number or null")
    if message.get("jsonrpc") != "2.0":
        return _invalid(id_json, "'jsonrpc' must be \"2.0\"")
    method = message.get("method")
    if not isinstance(method, str):
        return _invalid(id_json, f"'method' must be a string, got {_json_type(method)}")
    params = message.get("params")
    if "params" in message and not isinstance(params, dict | list):
        return _invalid(id_json, f"'params' must be an object or an array, got {_json_type(params)}")
    is_notification = "id" not in message
    try:
        result = await dispatch(method, params)
        if is_notification:
            return None
        if isinstance(result, RawJson):  # encoded already: framed without copying it
            return RawJson(b'{"jsonrpc":"2.0","id":' + id_json + b',"result":', *result.pieces, b"}")
        return b'{"jsonrpc":"2.0","id":' + id_json + b',"result":' + _dumps(result) + b"}"
    except Exception as raw:
        exc = _unwrap_group(raw)
        if isinstance(exc, HeroLogicError):
            if exc.code == HeroLogicError.code:
                logger.error("method %s failed: %s", method, exc.message, exc_info=raw)
            error = exc.to_json()
        else:
            logger.error("method %s failed", method, exc_info=raw)
            error = {
                "code": HeroLogicError.code,
                "message": f"internal error in {method}: {type(exc).__name__}; the service log has the details",
            }
        return None if is_notification else _error_bytes(id_json, error)


async def handle_body(
    body: bytes,
    dispatch: Dispatch,
    *,
    max_batch_length: int | None = None,
    max_response_bytes: int | None = None,
) -> bytes | None:
    """Answer one HTTP body (a request or a batch); None means "no content" (HTTP 204). See
    :func:`answer_body`."""
    answer = await answer_body(body, dispatch, max_batch_length=max_batch_length, max_response_bytes=max_response_bytes)
    return bytes(answer) if isinstance(answer, RawJson) else answer


async def answer_body(
    body: bytes,
    dispatch: Dispatch,
    *,
    max_batch_length: int | None = None,
    max_response_bytes: int | None = None,
) -> bytes | RawJson | None:
    """Answer one HTTP body (a request or a batch), a large answer left in its pieces (see
    RawJson); None means "no content" (HTTP 204).

    Batch elements are answered one after the other, in order. ``dispatch`` must raise
    :class:`MethodNotFound` for an unknown method and InvalidParams for bad params; any other
    exception is logged with its traceback and answered as a bare -32603.

    Two bounds keep a small batch from building a huge answer (see :func:`_answer_batch`):
    a batch longer than ``max_batch_length`` is refused whole, before any call runs; once the
    answers of a batch pass ``max_response_bytes``, its remaining requests are not run.
    """
    try:
        message = loads_strict(body)
    except ParseError as exc:
        return _error_bytes(_NULL_ID, exc.to_json())
    if isinstance(message, list):
        return await _answer_batch(message, dispatch, max_batch_length, max_response_bytes)
    return await _answer(message, dispatch)


async def _answer_batch(
    batch: list[Any], dispatch: Dispatch, max_length: int | None, max_bytes: int | None
) -> bytes | None:
    """The answers of a batch (see :func:`handle_body`).

    The size bound is checked before each request: the answers may pass it by the last one
    that ran (whose result is never dropped: it has run), so the response stays under
    ``max_bytes`` + that answer + one short error per request not run.
    """
    if not batch:
        return _invalid(_NULL_ID, "empty batch: send at least one request")
    if max_length is not None and len(batch) > max_length:
        return _error_bytes(_NULL_ID, {
            "code": InvalidRequest.code,
            "message": (
                f"invalid request: a batch of {len(batch)} requests is over the limit of "
                f"{max_length}: send at most {max_length} per batch, or raise the limit "
                f"(HERO_LOGIC_MAX_BATCH / --max-batch)"
            ),
            "data": {"length": len(batch), "limit": max_length, "setting": "HERO_LOGIC_MAX_BATCH"},
        })
    parts: list[bytes] = []
    size = 2
    for item in batch:
        if max_bytes is not None and size > max_bytes:
            part = _not_run(item, size, max_bytes)
        else:
            answered = await _answer(item, dispatch)
            part = bytes(answered) if isinstance(answered, RawJson) else answered
        if part is not None:
            parts.append(part)
            size += len(part) + 1
    return b"[" + b",".join(parts) + b"]" if parts else None


def _not_run(item: Any, size: int, limit: int) -> bytes | None:
    """The answer of a batch request left unrun because the answers passed ``limit``."""
    if not isinstance(item, dict) or "id" not in item:
        return None  # a notification (or a malformed one) gets no answer either way
    id_json = _id_json(item) or _NULL_ID
    return _error_bytes(id_json, {
        "code": InvalidRequest.code,
        "message": (
            f"invalid request: not run: this batch's earlier answers already take {size} "
            f"bytes, over the limit of {limit} bytes (HERO_LOGIC_MAX_RESPONSE_BYTES / "
            "--max-response): send this request again alone or in a smaller batch"
        ),
        "data": {"size": size, "limit": limit, "setting": "HERO_LOGIC_MAX_RESPONSE_BYTES"},
    })


# -- the client side -----------------------------------------------------------------------------


def encode_request(method: str, params: Params = None, request_id: int | str | None = None) -> bytes:
    """A request object; with ``request_id=None`` a notification (no ``id`` at all)."""
    return _dumps(request_object(method, params, request_id))


def request_object(method: str, params: Params = None, request_id: int | str | None = None) -> dict[str, Any]:
    """The request as a dict, to send alone or inside a batch list."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    if request_id is not None:
        message["id"] = request_id
    return message


def decode_response(body: bytes) -> tuple[Any, dict[str, Any] | None]:
    """``(result, None)`` or ``(None, error object)`` from one response object's bytes."""
    return response_outcome(json.loads(body))


def response_outcome(message: Any) -> tuple[Any, dict[str, Any] | None]:
    """``(result, None)`` or ``(None, error object)`` from one decoded response object."""
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        return None, {"code": HeroLogicError.code, "message": f"not a JSON-RPC 2.0 response: {str(message)[:200]}"}
    error = message.get("error")
    if error is not None:
        if not isinstance(error, dict) or not isinstance(error.get("code"), int):
            return None, {"code": HeroLogicError.code, "message": f"malformed error object: {str(error)[:200]}"}
        return None, error
    return message.get("result"), None
