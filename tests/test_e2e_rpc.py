"""The JSON-RPC surface of a real service: workflows, versions, plays and every bad input."""

from __future__ import annotations

import json
import socket
import stat
from typing import TYPE_CHECKING, Any

import pytest
import trio

from hero_logic.rpc import RpcError

if TYPE_CHECKING:
    from .conftest import Service

TRIVIAL = """
from hero_tracing import flow

@flow(inputs={"who": {"type": "string", "required": True}, "times": {"type": "integer", "default": 1}})
def hello(who, times):
    return {"greeting": " ".join([f"hello {who}"] * times)}
"""


async def _error(service: Service, method: str, **params: Any) -> RpcError:
    with pytest.raises(RpcError) as info:
        await service.call(method, **params)
    return info.value


def _raw_post(service: Service, body: bytes) -> tuple[int, bytes]:
    """POST ``body`` to /rpc with a raw HTTP/1.1 request; (status, response body)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(service.config.rpc_socket))
    sock.sendall(
        b"POST /rpc HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    head, _, payload = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    if b"transfer-encoding: chunked" in head.lower():
        out, rest = b"", payload
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2 :]
        payload = out
    return status, payload


async def test_socket_is_private(service: Service) -> None:
    mode = service.config.rpc_socket.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(service.config.socket_dir.stat().st_mode) == 0o700


async def test_workflow_crud_and_versions(service: Service) -> None:
    wf = await service.call("workflow_create", name="greeter", description="says hello", python_source=TRIVIAL, tags=["demo"])
    assert wf["current_version_sid"]
    assert [f["name"] for f in wf["inputs"]] == ["who", "times"]
    assert wf["inputs"][0] == {"name": "who", "field_type": "string", "description": "", "required": True, "default": None}
    assert (await service.call("workflow_get", sid=wf["sid"]))["name"] == "greeter"
    assert [w["sid"] for w in await service.call("workflow_list")] == [wf["sid"]]
    updated = await service.call("workflow_update", sid=wf["sid"], description="greets", tags=["a", "b"])
    assert updated["description"] == "greets"
    assert updated["name"] == "greeter"
    assert updated["tags"] == ["a", "b"]

    v2 = await service.call("workflow_create_version", workflow_sid=wf["sid"], python_source=TRIVIAL.replace("hello {who}", "hi {who}"), notes="shorter", make_current=False)
    assert v2["version_label"] == "v2"
    assert v2["notes"] == "shorter"
    versions = await service.call("workflow_version_list", workflow_sid=wf["sid"])
    assert [v["sid"] for v in versions] == [wf["current_version_sid"], v2["sid"]]
    assert (await service.call("workflow_version_fetch", version_sid=v2["sid"]))["python_source"].count("hi {who}") == 1

    pinned = await service.run(wf, who="Ada")
    assert pinned["output_data"] == {"greeting": "hello Ada"}
    assert pinned["workflow_version_sid"] == wf["current_version_sid"]
    sid = await service.call("play_start", workflow_sid=wf["sid"], input_data={"who": "Bob"}, version_sid=v2["sid"])
    assert (await service.call("play_wait", play_sid=sid))["output_data"] == {"greeting": "hi Bob"}
    current = await service.call("workflow_set_current_version", workflow_sid=wf["sid"], version_sid=v2["sid"])
    assert current["current_version_sid"] == v2["sid"]

    plays = await service.call("play_list", workflow_sid=wf["sid"])
    assert [p["sid"] for p in plays] == [sid, pinned["sid"]]  # newest first
    assert [p["sid"] for p in await service.call("play_list", status="success", limit=1)] == [sid]
    retry = await service.call("play_retry", play_sid=sid)
    assert (await service.call("play_wait", play_sid=retry))["output_data"] == {"greeting": "hi Bob"}

    assert await service.call("workflow_delete", sid=wf["sid"]) is True
    assert (await _error(service, "workflow_get", sid=wf["sid"])).code == -32001
    assert (await _error(service, "play_status", play_sid=sid)).code == -32001


async def test_delete_refused_while_a_play_runs(service: Service) -> None:
    wf = await service.push("""
        import time
        from hero_tracing import flow

        @flow
        def main():
            time.sleep(30)
    """)
    sid = await service.call("play_start", workflow_sid=wf["sid"])
    err = await _error(service, "workflow_delete", sid=wf["sid"])
    assert err.code == -32002
    assert sid in err.message
    await service.call("play_cancel", play_sid=sid)
    assert await service.call("workflow_delete", sid=wf["sid"]) is True


async def test_bad_sources_are_refused_with_line_and_reason(service: Service) -> None:
    err = await _error(service, "workflow_create", name="broken", python_source="from hero_tracing import flow\n@flow\ndef main(:\n  pass\n")
    assert err.code == -32602
    assert "line 3" in err.message
    assert err.data[0]["field"] == "python_source"
    assert err.data[0]["line"] == 3
    err = await _error(service, "workflow_create", name="noflow", python_source="def main():\n    return 1\n")
    assert err.code == -32602
    assert "@flow" in err.message
    wf = await service.call("workflow_create", name="empty")
    err = await _error(service, "workflow_create_version", workflow_sid=wf["sid"], python_source="x = (")
    assert err.code == -32602


async def test_duplicate_workflow_name_is_a_conflict(service: Service) -> None:
    await service.call("workflow_create", name="twin")
    assert (await _error(service, "workflow_create", name="twin")).code == -32003


async def test_play_run_async_rejects_a_workflow_without_source(service: Service) -> None:
    wf = await service.call("workflow_create", name="sourceless")
    err = await _error(service, "play_run_async", workflow_sid=wf["sid"], input_data={})
    assert err.code == -32002
    assert "workflow_create_version" in err.message
    assert (await _error(service, "play_start", workflow_sid=wf["sid"])).code == -32002


async def test_play_run_async_links_parent_span(service: Service) -> None:
    wf = await service.call("workflow_create", name="greeter", python_source=TRIVIAL)
    sid = await service.call("play_run_async", workflow_sid=wf["sid"], input_data={"who": "x"}, parent_span_id="abc123")
    play = await service.call("play_wait", play_sid=sid)
    assert play["status"] == "success"
    assert play["parent_span_id"] == "abc123"
    (root,) = await service.call("play_spans", play_sid=sid)
    assert root["parent_id"] == "abc123"


async def test_inputs_are_checked_against_declared_fields(service: Service) -> None:
    wf = await service.call("workflow_create", name="greeter", python_source=TRIVIAL)
    err = await _error(service, "play_start", workflow_sid=wf["sid"], input_data={"times": "twice", "extra": 1})
    assert err.code == -32602
    fields = {d["field"]: d["error"] for d in err.data}
    assert set(fields) == {"input_data.times", "input_data.extra", "input_data.who"}
    assert "integer" in fields["input_data.times"]
    assert "'twice'" in fields["input_data.times"]
    assert "missing" in fields["input_data.who"]


@pytest.mark.parametrize(
    ("method", "params", "bad_field"),
    [
        ("play_status", {}, "play_sid"),
        ("play_status", {"play_sid": 42}, "play_sid"),
        ("play_status", {"play_sid": "x", "colour": "red"}, "colour"),
        ("play_wait", {"play_sid": "x", "timeout_ms": "soon"}, "timeout_ms"),
        ("play_wait", {"play_sid": "x", "timeout_ms": True}, "timeout_ms"),
        ("play_list", {"status": "sleeping"}, "status"),
        ("play_list", {"limit": 0}, "limit"),
        ("workflow_create", {"name": ""}, "name"),
        ("workflow_create", {"name": "a\u0000b"}, "name"),
        ("workflow_create", {"name": "two\nlines"}, "name"),
        ("workflow_create", {"name": "x", "tags": "a,b"}, "tags"),
        ("play_start", {"workflow_sid": "wf", "input_data": [1, 2]}, "input_data"),
        ("play_start", {"workflow_sid": "wf", "timeout_ms": -5}, "timeout_ms"),
        ("span_push", {"play_sid": "x", "event_json": "{not json"}, "event_json"),
    ],
)
async def test_bad_params_are_invalid_params_naming_the_field(service: Service, method: str, params: dict[str, Any], bad_field: str) -> None:
    wf = await service.call("workflow_create", name="greeter", python_source=TRIVIAL)
    params = {k: (wf["sid"] if v == "wf" else v) for k, v in params.items()}
    err = await _error(service, method, **params)
    assert err.code == -32602, err
    assert any(d["field"].split(".")[0] == bad_field for d in err.data), err.data


async def test_unknown_sids_are_not_found(service: Service) -> None:
    for method, params in [
        ("workflow_get", {"sid": "wf_nope"}),
        ("play_status", {"play_sid": "play_nope"}),
        ("play_spans", {"play_sid": "play_nope"}),
        ("play_start", {"workflow_sid": "wf_nope"}),
        ("workflow_version_fetch", {"version_sid": "ver_nope"}),
        ("span_push", {"play_sid": "play_nope", "event_json": {"type": "span_tag", "span_id": "s", "tags": {}}}),
    ]:
        err = await _error(service, method, **params)
        assert err.code == -32001, (method, err)
        assert "nope" in err.message


async def test_span_push_goes_through_the_listener_path(service: Service) -> None:
    wf = await service.call("workflow_create", name="greeter", python_source=TRIVIAL)
    play = await service.run(wf, who="x")
    sid = play["sid"]
    start = {"type": "span_start", "span_id": "pushed1", "parent_id": "", "name": "pushed", "kind": "other", "start_ms": 1}
    assert await service.call("span_push", play_sid=sid, event_json=start) is True
    tag = json.dumps({"type": "span_tag", "span_id": "pushed1", "tags": {"k": "v"}})
    assert await service.call("span_push", play_sid=sid, event_json=tag) is True  # *_json accepts a string
    end = {"type": "span_end", "span_id": "pushed1", "end_ms": 5, "status": "weird"}
    assert await service.call("span_push", play_sid=sid, event_json=end) is True
    pushed = [s for s in await service.call("play_spans", play_sid=sid) if s["span_id"] == "pushed1"]
    assert pushed[0]["tags"] == {"k": "v"}
    assert pushed[0]["status"] == "failed"
    for bad in [{"no": "type"}, {"type": "span_start"}, {"type": "bogus", "span_id": "x"}, {"type": "span_tag", "span_id": 7, "tags": {}}]:
        err = await _error(service, "span_push", play_sid=sid, event_json=bad)
        assert err.code == -32602, bad
        assert err.data[0]["field"] == "event_json", bad


async def test_protocol_errors_over_raw_http(service: Service) -> None:
    status, body = await trio.to_thread.run_sync(_raw_post, service, b'{"jsonrpc": "2.0", "id": 1, "method": "nope"}')
    assert status == 200
    assert json.loads(body)["error"]["code"] == -32601
    status, body = await trio.to_thread.run_sync(_raw_post, service, b'{"jsonrpc": "2.0", "id": 1, "method": ')
    assert json.loads(body)["error"]["code"] == -32700
    status, body = await trio.to_thread.run_sync(_raw_post, service, b'{"jsonrpc": "2.0", "id": 1, "method": "system.ping", "params": [NaN]}')
    assert json.loads(body)["error"]["code"] == -32700
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "system.ping"},
        {"jsonrpc": "2.0", "method": "system.ping"},
        {"jsonrpc": "2.0", "id": 2, "method": "play_status", "params": {"play_sid": "missing"}},
        {"jsonrpc": "2.0", "id": 3, "method": "nope"},
        {"foo": "bar"},
        {"jsonrpc": "2.0", "id": 4, "method": "workflow_list", "params": [5, 0]},
    ]
    status, body = await trio.to_thread.run_sync(_raw_post, service, json.dumps(batch).encode())
    answers = json.loads(body)
    assert status == 200
    assert len(answers) == 5
    by_id = {a.get("id"): a for a in answers}
    assert by_id[1]["result"] == "pong"
    assert by_id[2]["error"]["code"] == -32001
    assert by_id[3]["error"]["code"] == -32601
    assert by_id[None]["error"]["code"] == -32600
    assert by_id[4]["result"] == []
    status, body = await trio.to_thread.run_sync(_raw_post, service, json.dumps([{"jsonrpc": "2.0", "method": "system.ping"}]).encode())
    assert status == 204
    assert body == b""


async def test_discovery_documents(service: Service) -> None:
    doc = await service.call("rpc.discover")
    names = {m["name"] for m in doc["methods"]}
    assert {"play_start", "play_wait", "span_push", "workflow_create_version", "system.ping", "rpc.discover"} <= names
    start = next(m for m in doc["methods"] if m["name"] == "play_start")
    assert [p["name"] for p in start["params"]][:3] == ["workflow_sid", "input_data", "version_sid"]
    assert await service.call("system.ping") == "pong"
    health = await service.client.health()
    assert health["status"] == "ok"


async def test_a_wait_whose_client_hangs_up_is_released(service: Service) -> None:
    """play_wait(timeout_ms=0) on a play that may wait for days must not hold a task (and a
    bus subscription) once its client has gone."""
    wf = await service.push("""
        import time
        from hero_tracing import flow

        @flow
        def main():
            time.sleep(30)
    """)
    sid = await service.call("play_start", workflow_sid=wf["sid"])

    async def subscribers() -> int:
        count: int = (await service.client.health())["stream"]["subscribers"]
        return count

    before = await subscribers()
    stream = await trio.open_unix_socket(str(service.config.rpc_socket))
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "play_wait", "params": {"play_sid": sid}}).encode()
    await stream.send_all(
        b"POST /rpc HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
    )
    with trio.fail_after(10):
        while await subscribers() == before:
            await trio.sleep(0.02)
    await stream.aclose()
    with trio.fail_after(10):
        while await subscribers() > before:
            await trio.sleep(0.02)
    await service.call("play_cancel", play_sid=sid)


async def test_concurrent_span_pushes_are_all_kept(service: Service) -> None:
    """Every acknowledged span_push is stored, even when many race on one finished play."""
    wf = await service.call("workflow_create", name="greeter", python_source=TRIVIAL)
    play = await service.run(wf, who="x")
    sid = play["sid"]

    async def push(i: int) -> None:
        event = {"type": "span_start", "span_id": f"p{i}", "parent_id": "", "name": f"pushed {i}", "kind": "other", "start_ms": i}
        assert await service.call("span_push", play_sid=sid, event_json=event) is True

    async with trio.open_nursery() as nursery:
        for i in range(40):
            nursery.start_soon(push, i)
    pushed = {s["span_id"] for s in await service.call("play_spans", play_sid=sid) if s["span_id"].startswith("p")}
    assert pushed == {f"p{i}" for i in range(40)}
