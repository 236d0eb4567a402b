"""JSON-RPC 2.0 framing, without sockets: what a body turns into (CONTRACT.md §3)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from hero_logic.kernel import NotFound
from hero_logic.rpc import MAX_DEPTH, MethodNotFound, ParseError, handle_body, loads_strict


async def dispatch(method: str, params: Any) -> Any:
    """A stand-in for a method table: echo, a not-found error, a crash."""
    if method == "echo":
        return params
    if method == "missing":
        raise NotFound("no play 'p1'", data={"sid": "p1"})
    if method == "crash":
        raise RuntimeError("secret detail /etc/shadow")
    if method == "group":
        raise ExceptionGroup("from a nursery", [NotFound("nested not found")])
    if method == "unserialisable":
        return {1, 2}
    raise MethodNotFound(f"method {method!r} not found")


async def answer(body: bytes | str) -> Any:
    raw = await handle_body(body.encode() if isinstance(body, str) else body, dispatch)
    return None if raw is None else json.loads(raw)


def req(method: str, params: Any = None, id_: Any = 1, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": id_, **extra}
    if params is not None:
        out["params"] = params
    return out


async def test_a_call_answers_with_its_id_and_result() -> None:
    assert await answer(json.dumps(req("echo", {"a": 1}, "x-7"))) == {
        "jsonrpc": "2.0", "id": "x-7", "result": {"a": 1}
    }


async def test_responses_are_compact_json() -> None:
    raw = await handle_body(json.dumps(req("echo", {"a": [1, 2]})).encode(), dispatch)
    assert raw == b'{"jsonrpc":"2.0","id":1,"result":{"a":[1,2]}}'


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"{", "Expecting"),
        (b'{"jsonrpc": "2.0", "method": "echo", "params": [NaN], "id": 1}', "NaN"),
        (b'{"jsonrpc": "2.0", "method": "echo", "params": [Infinity], "id": 1}', "Infinity"),
        (b'{"jsonrpc": "2.0", "method": "echo", "params": [-Infinity], "id": 1}', "-Infinity"),
        (b'{"jsonrpc": "2.0", "method": "echo", "params": [1e400], "id": 1}', "too large"),
        (b'{"jsonrpc": "2.0", "method": "echo", "params": ["\\ud800"], "id": 1}', "lone surrogate"),
        (b'{"jsonrpc": "2.0", "method": "echo", "params": {"\\udfff": 1}, "id": 1}', "lone surrogate"),
        (b'{"jsonrpc": "2.0", "method": "\xff\xfe", "id": 1}', "UTF-8"),
        (b"[" * 1000 + b"]" * 1000, "nesting"),
        (b"[" * 100_000 + b"]" * 100_000, "nesting"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "nesting"),
        (b"", "Expecting value"),
        (b"\xef\xbb\xbf{}", "char 0"),
    ],
    ids=["truncated", "nan", "infinity", "-infinity", "huge-float", "lone-surrogate",
         "lone-surrogate-key", "invalid-utf8", "depth-1000", "depth-100000", "depth-65",
         "empty", "bom"],
)
async def test_input_that_is_not_strict_json_is_a_parse_error_with_id_null(body: bytes, why: str) -> None:
    out = await answer(body)
    assert out["id"] is None
    assert out["error"]["code"] == -32700
    assert why in out["error"]["message"]


async def test_nesting_up_to_the_bound_and_complete_surrogate_pairs_are_fine() -> None:
    deep: Any = "leaf"
    for _ in range(MAX_DEPTH - 2):  # the request object and the params array are two levels
        deep = [deep]
    out = await answer(json.dumps(req("echo", [deep, "\ud83d\ude00"])))
    assert out["result"][1] == "😀"
    assert loads_strict('"\\ud83d\\ude00"') == "😀"
    assert loads_strict('"a\\\\ud800"') == "a\\ud800"  # an escaped backslash, not a surrogate


def test_loads_strict_raises_parse_error() -> None:
    with pytest.raises(ParseError, match="NaN"):
        loads_strict("NaN")


async def test_duplicate_keys_are_accepted_and_the_last_one_wins() -> None:
    out = await answer(b'{"jsonrpc": "2.0", "method": "nope", "method": "echo", "params": [1], "id": 1}')
    assert out["result"] == [1]


@pytest.mark.parametrize(
    ("message", "why"),
    [
        (42, "expected a request object, got integer"),
        ("echo", "got string"),
        ({"method": "echo", "id": 1}, "'jsonrpc' must be \"2.0\""),
        ({"jsonrpc": "1.0", "method": "echo", "id": 1}, "'jsonrpc'"),
        ({"jsonrpc": "2.0", "id": 1}, "'method' must be a string, got null"),
        ({"jsonrpc": "2.0", "method": 7, "id": 1}, "got integer"),
        ({"jsonrpc": "2.0", "method": "echo", "params": "x", "id": 1}, "'params' must be an object or an array"),
        ({"jsonrpc": "2.0", "method": "echo", "params": None, "id": 1}, "got null"),
        ({"jsonrpc": "2.0", "method": "echo", "id": {"a": 1}}, "'id' must be"),
        ({"jsonrpc": "2.0", "method": "echo", "id": True}, "'id' must be"),
    ],
)
async def test_a_malformed_request_is_an_invalid_request(message: Any, why: str) -> None:
    out = await answer(json.dumps(message))
    assert out["error"]["code"] == -32600
    assert why in out["error"]["message"]


async def test_an_invalid_request_keeps_its_id_when_the_id_itself_is_valid() -> None:
    out = await answer(json.dumps({"jsonrpc": "2.0", "method": 1, "id": 9}))
    assert out["id"] == 9
    out = await answer(json.dumps({"jsonrpc": "2.0", "method": 1, "id": [9]}))
    assert out["id"] is None


async def test_ids_may_be_strings_numbers_or_null() -> None:
    for id_ in ("a", 3, 2.5, None):
        assert (await answer(json.dumps(req("echo", [1], id_))))["id"] == id_


async def test_an_empty_batch_is_one_invalid_request_error() -> None:
    out = await answer(b"[]")
    assert out == {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": out["error"]["message"]}}
    assert "empty batch" in out["error"]["message"]


async def test_a_batch_answers_each_request_in_order_and_skips_notifications() -> None:
    batch = [
        req("echo", [1], 1),
        {"jsonrpc": "2.0", "method": "echo", "params": [2]},  # notification
        req("missing", None, 3),
        {"jsonrpc": "2.0", "method": "missing"},  # a failing notification: still no entry
        5,
        req("nope", None, "six"),
    ]
    out = await answer(json.dumps(batch))
    assert [r["id"] for r in out] == [1, 3, None, "six"]
    assert out[0]["result"] == [1]
    assert out[1]["error"]["code"] == -32001
    assert out[2]["error"]["code"] == -32600
    assert out[3]["error"]["code"] == -32601


async def test_notifications_get_no_body_alone_or_in_an_all_notification_batch() -> None:
    note = {"jsonrpc": "2.0", "method": "echo", "params": [1]}
    assert await handle_body(json.dumps(note).encode(), dispatch) is None
    assert await handle_body(json.dumps([note, note]).encode(), dispatch) is None
    assert await handle_body(json.dumps({**note, "method": "crash"}).encode(), dispatch) is None


async def test_an_unknown_method_is_method_not_found_naming_it() -> None:
    out = await answer(json.dumps(req("play_staus")))
    assert out["error"]["code"] == -32601
    assert "play_staus" in out["error"]["message"]


async def test_a_hero_logic_error_keeps_its_code_message_and_data() -> None:
    out = await answer(json.dumps(req("missing")))
    assert out["error"] == {"code": -32001, "message": "no play 'p1'", "data": {"sid": "p1"}}


async def test_a_single_error_inside_an_exception_group_is_unwrapped() -> None:
    out = await answer(json.dumps(req("group")))
    assert out["error"]["code"] == -32001


async def test_any_other_exception_is_a_bare_internal_error_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="hero_logic.rpc"):
        raw = await handle_body(json.dumps(req("crash")).encode(), dispatch)
    assert raw is not None
    out = json.loads(raw)
    assert out["error"]["code"] == -32603
    assert "RuntimeError" in out["error"]["message"]
    assert b"secret" not in raw
    assert b"Traceback" not in raw
    assert b"File " not in raw
    assert any(r.exc_info and "secret detail" in str(r.exc_info[1]) for r in caplog.records)


async def test_a_result_that_is_not_json_is_an_internal_error_not_a_crash() -> None:
    out = await answer(json.dumps(req("unserialisable")))
    assert out["error"]["code"] == -32603
