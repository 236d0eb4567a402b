"""The RPC service end to end over a real Unix socket: HTTP routes, limits, modes, clients."""

from __future__ import annotations

import gc
import json
import logging
import os
import shutil
import socket
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import httpx
import pytest
import trio
import trio_websocket

from hero_logic.kernel import ConfigError, InvalidParams, NotFound, WrongState
from hero_logic.rpc import (
    AsyncClient,
    Client,
    MethodTable,
    RemoteInvalidParams,
    RemoteInvalidRequest,
    RemoteMethodNotFound,
    RemoteNotFound,
    RpcApp,
    RpcError,
    ServiceUnavailable,
    rpc_method,
    serve_rpc,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

MAX_BODY = 64 * 1024


@attrs.frozen
class Note:
    sid: str
    text: str


class Notes:
    """A small fake service."""

    def __init__(self) -> None:
        self.released = trio.Event()
        self.pokes = 0

    @rpc_method()
    async def note_get(self, sid: str) -> Note:
        """Fetch a note."""
        if sid == "missing":
            raise NotFound(f"no note {sid!r}", data={"sid": sid})
        if sid == "locked":
            raise WrongState("note 'locked' is locked")
        return Note(sid=sid, text=f"text of {sid}")

    @rpc_method()
    async def add(self, a: int, b: int = 0) -> int:
        return a + b

    @rpc_method()
    async def poke(self) -> None:
        self.pokes += 1

    @rpc_method()
    async def crash(self) -> str:
        raise Exception("secret: do not leak")

    @rpc_method()
    async def wait_released(self) -> str:
        """Block like play_wait until another call releases it."""
        await self.released.wait()
        return "released"

    @rpc_method()
    async def release(self) -> bool:
        self.released.set()
        return True


async def spans_socket(scope: Any, receive: Any, send: Any, play_sid: str) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": json.dumps({"type": "snapshot", "play_sid": play_sid})})
    await send({"type": "websocket.close", "code": 1000})


def make_app(service: Notes | None = None) -> RpcApp:
    return RpcApp(
        MethodTable.from_service(service or Notes(), title="notes", version="1.2.3"),
        max_body_bytes=MAX_BODY,
        manifest={"name": "hero_logic", "version": "1.2.3", "sockets": {"rpc": "rpc.sock"}},
        health=lambda: {"plays_running": 0},
        websocket_routes=[("/api/plays/{play_sid}/spans", spans_socket)],
    )


@pytest.fixture
def tmp_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="hl-rpc-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def notes() -> Notes:
    return Notes()


@pytest.fixture
async def sock(tmp_dir: Path, notes: Notes, nursery: trio.Nursery) -> Path:
    path = tmp_dir / "sockets" / "hero_logic" / "rpc.sock"
    await nursery.start(serve_rpc, make_app(notes), path)
    return path


@pytest.fixture
async def http(sock: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(uds=str(sock)), base_url="http://hero_logic"
    ) as client:
        yield client


async def raw_exchange(sock: Path, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read until the server closes; (status, headers, body)."""
    stream = await trio.open_unix_socket(str(sock))
    async with stream:
        await stream.send_all(request)
        data = b""
        with trio.fail_after(5):
            while chunk := await stream.receive_some():
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def rpc(method: str, params: Any = None, id_: Any = 1) -> dict[str, Any]:
    out: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        out["params"] = params
    if id_ is not None:
        out["id"] = id_
    return out


# -- routes over HTTP -----------------------------------------------------------------------


async def test_post_rpc_by_name_and_by_position(http: httpx.AsyncClient) -> None:
    response = await http.post("/rpc", json=rpc("add", {"a": 40, "b": 2}))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"jsonrpc": "2.0", "id": 1, "result": 42}
    assert (await http.post("/rpc", json=rpc("add", [40, 2], "k"))).json()["result"] == 42
    assert (await http.post("/rpc", json=rpc("note_get", ["n1"]))).json()["result"] == {"sid": "n1", "text": "text of n1"}


async def test_content_type_is_not_enforced(http: httpx.AsyncClient) -> None:
    response = await http.post("/rpc", content=json.dumps(rpc("system.ping")), headers={"content-type": "text/plain"})
    assert response.json()["result"] == "pong"


async def test_notifications_alone_or_in_a_batch_get_http_204(http: httpx.AsyncClient, notes: Notes) -> None:
    response = await http.post("/rpc", json=rpc("poke", id_=None))
    assert (response.status_code, response.content) == (204, b"")
    response = await http.post("/rpc", json=[rpc("poke", id_=None), rpc("poke", id_=None)])
    assert (response.status_code, response.content) == (204, b"")
    assert notes.pokes == 3


async def test_a_mixed_batch_answers_only_the_calls(http: httpx.AsyncClient) -> None:
    response = await http.post("/rpc", json=[rpc("poke", id_=None), rpc("add", [1, 1], 1), rpc("nope", id_=2)])
    out = response.json()
    assert [r["id"] for r in out] == [1, 2]
    assert out[0]["result"] == 2
    assert out[1]["error"]["code"] == -32601


async def test_a_method_raising_a_bare_exception_is_a_200_with_a_bare_internal_error(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="hero_logic.rpc"):
        response = await http.post("/rpc", json=rpc("crash"))
    assert response.status_code == 200
    error = response.json()["error"]
    assert error["code"] == -32603
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    assert any("secret" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"[NaN]", b'"\\ud800"', b"[" * 5000, b"\xff\xfe", b"[]", b"null", b"[1,2]", b'{"jsonrpc":"2.0"}'],
)
async def test_bad_input_never_yields_http_500(http: httpx.AsyncClient, body: bytes) -> None:
    response = await http.post("/rpc", content=body)
    assert response.status_code == 200
    out = response.json()
    errors = out if isinstance(out, list) else [out]
    assert {e["error"]["code"] for e in errors} <= {-32700, -32600}


async def test_get_health_openrpc_and_manifest(http: httpx.AsyncClient) -> None:
    assert (await http.get("/health")).json() == {"status": "ok", "plays_running": 0}
    document = (await http.get("/openrpc.json")).json()
    assert document["info"] == {"title": "notes", "version": "1.2.3"}
    assert {m["name"] for m in document["methods"]} >= {"note_get", "add", "rpc.discover", "system.ping"}
    assert (await http.post("/rpc", json=rpc("rpc.discover"))).json()["result"] == document
    manifest = (await http.get("/.well-known/heroservice.json")).json()
    assert manifest == {"name": "hero_logic", "version": "1.2.3", "sockets": {"rpc": "rpc.sock"}}


async def test_a_wrong_http_method_is_405_and_an_unknown_path_404_both_json(http: httpx.AsyncClient) -> None:
    response = await http.get("/rpc")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "use POST" in response.json()["error"]["message"]
    assert (await http.post("/health")).status_code == 405
    response = await http.get("/nope")
    assert response.status_code == 404
    assert "GET /nope" in response.json()["error"]["message"]


async def test_an_oversized_body_is_refused_with_413_before_it_is_read(sock: Path) -> None:
    """Only the headers are sent: the 413 must come without waiting for the body."""
    head = b"POST /rpc HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    status, headers, body = await raw_exchange(sock, head + b"content-length: %d\r\n\r\n" % (MAX_BODY + 1))
    assert status == 413
    assert headers["connection"] == "close"
    error = json.loads(body)["error"]
    assert error["code"] == -32600
    assert f"of {MAX_BODY + 1} bytes" in error["message"]


async def test_an_oversized_chunked_body_is_refused_while_counting(sock: Path) -> None:
    chunk = b"x" * 8192
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(MAX_BODY // len(chunk) + 1))
    head = b"POST /rpc HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
    status, _, body = await raw_exchange(sock, head + chunks)
    assert status == 413
    assert json.loads(body)["error"]["code"] == -32600


async def test_an_oversized_body_sent_whole_by_httpx_reads_as_413(http: httpx.AsyncClient) -> None:
    """The refused body is drained, so a client that writes it all first still gets the answer."""
    response = await http.post("/rpc", content=b" " * (4 * MAX_BODY))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == -32600


async def test_a_body_at_the_limit_is_accepted(http: httpx.AsyncClient) -> None:
    request = json.dumps(rpc("add", [1, 2])).encode()
    response = await http.post("/rpc", content=request + b" " * (MAX_BODY - len(request)))
    assert response.json()["result"] == 3


async def test_a_long_call_blocks_only_its_caller(sock: Path, notes: Notes) -> None:
    async with AsyncClient(sock) as waiter, AsyncClient(sock) as other:
        results: list[str] = []

        async def wait() -> None:
            results.append(await waiter.wait_released())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait)
            await trio.sleep(0.05)
            assert await other.add(a=1) == 1
            assert results == []
            assert await other.release() is True
        assert results == ["released"]


async def test_websocket_routes_get_their_path_params_and_unknown_ones_a_404(sock: Path) -> None:
    async with trio.open_nursery() as nursery:
        stream = await trio.open_unix_socket(str(sock))
        ws = await trio_websocket.wrap_client_stream(nursery, stream, "localhost", "/api/plays/play_1/spans")
        assert json.loads(await ws.get_message()) == {"type": "snapshot", "play_sid": "play_1"}
        await ws.aclose()
    stream = await trio.open_unix_socket(str(sock))
    rejected: list[trio_websocket.ConnectionRejected] = []
    async with stream:
        try:
            async with trio.open_nursery() as nursery:
                await trio_websocket.wrap_client_stream(nursery, stream, "localhost", "/api/nope")
        except trio_websocket.ConnectionRejected as exc:
            rejected.append(exc)
        except BaseExceptionGroup as group:
            matched, rest = group.split(trio_websocket.ConnectionRejected)
            if rest is not None:
                raise
            assert matched is not None
            rejected.extend(e for e in _leaves(matched) if isinstance(e, trio_websocket.ConnectionRejected))
    assert rejected
    assert rejected[0].status_code == 404
    assert rejected[0].body is not None
    assert "no websocket route for /api/nope" in rejected[0].body.decode()


def _leaves(group: BaseExceptionGroup[Any]) -> list[BaseException]:
    return [
        leaf
        for exc in group.exceptions
        for leaf in (_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    ]


async def test_the_lifespan_protocol_completes_startup_and_shutdown() -> None:
    app = make_app()
    to_app, app_inbox = trio.open_memory_channel[dict[str, Any]](2)
    app_outbox, from_app = trio.open_memory_channel[dict[str, Any]](2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(app, {"type": "lifespan"}, app_inbox.receive, app_outbox.send)
        await to_app.send({"type": "lifespan.startup"})
        assert await from_app.receive() == {"type": "lifespan.startup.complete"}
        await to_app.send({"type": "lifespan.shutdown"})
        assert await from_app.receive() == {"type": "lifespan.shutdown.complete"}


# -- the socket -----------------------------------------------------------------------------


async def test_the_socket_is_0600_in_a_0700_directory_and_removed_on_exit(tmp_dir: Path) -> None:
    path = tmp_dir / "a" / "b" / "rpc.sock"
    umask = os.umask(0o022)
    try:
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(serve_rpc, make_app(), path)
            assert binds == [f"http://unix:{path}"]
            assert stat.S_ISSOCK(path.stat().st_mode)
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
            assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
            assert os.umask(0o022) == 0o022  # the process umask is left as it was
            nursery.cancel_scope.cancel()
    finally:
        os.umask(umask)
    assert not path.exists()


async def test_a_loose_existing_socket_directory_is_tightened(tmp_dir: Path) -> None:
    directory = tmp_dir / "loose"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_rpc, make_app(), directory / "rpc.sock")
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        nursery.cancel_scope.cancel()


async def test_a_stale_socket_is_replaced(tmp_dir: Path) -> None:
    path = tmp_dir / "rpc.sock"
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(path))  # bound, never listening: what a crashed server leaves
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_rpc, make_app(), path)
        with Client(path) as client:
            assert await trio.to_thread.run_sync(client.call, "system.ping") == "pong"
        nursery.cancel_scope.cancel()


async def test_a_live_socket_a_regular_file_or_a_long_path_are_refused(tmp_dir: Path, sock: Path) -> None:
    with pytest.raises(ConfigError, match="already listening"):
        await serve_rpc(make_app(), sock)
    regular = tmp_dir / "rpc.sock"
    regular.write_text("not a socket")
    with pytest.raises(ConfigError, match="is not a socket; remove it or choose another PATH_SOCKET"):
        await serve_rpc(make_app(), regular)
    assert regular.read_text() == "not a socket"
    long_path = tmp_dir / ("d" * 100) / "rpc.sock"
    with pytest.raises(ConfigError, match="shorter PATH_SOCKET") as info:
        await serve_rpc(make_app(), long_path)
    assert str(long_path) in str(info.value)


async def test_keep_alive_connections_closed_by_the_server_are_reopened(tmp_dir: Path) -> None:
    path = tmp_dir / "rpc.sock"
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: serve_rpc(make_app(), path, keep_alive_max_requests=3, task_status=task_status))
        async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(path))) as http:
            closes = [
                (await http.post("http://x/rpc", json=rpc("system.ping"))).headers.get("connection")
                for _ in range(3)
            ]
        assert closes == [None, None, "close"]

        def many_calls() -> list[int]:
            with Client(path) as client:
                return [client.add(a=i) for i in range(10)]

        assert await trio.to_thread.run_sync(many_calls) == list(range(10))
        async with AsyncClient(path) as aclient:
            assert [await aclient.add(i) for i in range(10)] == list(range(10))
        nursery.cancel_scope.cancel()


# -- the clients ----------------------------------------------------------------------------


async def test_the_sync_client_from_a_worker_thread(sock: Path) -> None:
    def use_client() -> dict[str, Any]:
        with Client(sock) as client:
            return {
                "call": client.call("add", {"a": 1}, b=2),
                "positional": client.call("add", [5, 6]),
                "sugar": client.note_get(sid="n1"),
                "sugar_positional": client.add(2, 3),
                "dotted": client.call("system.ping"),
                "batch": client.batch([("add", [1, 1]), ("note_get", {"sid": "missing"}), "system.ping"]),
                "notify": client.notify("poke"),
                "health": client.health(),
            }

    out = await trio.to_thread.run_sync(use_client)
    assert out["call"] == 3
    assert out["positional"] == 11
    assert out["sugar"] == {"sid": "n1", "text": "text of n1"}
    assert out["sugar_positional"] == 5
    assert out["dotted"] == "pong"
    assert out["batch"][0] == 2
    assert isinstance(out["batch"][1], RemoteNotFound)
    assert out["batch"][2] == "pong"
    assert out["notify"] is None
    assert out["health"]["status"] == "ok"


async def test_the_async_client(sock: Path) -> None:
    async with AsyncClient(sock) as client:
        assert await client.call("add", {"a": 1, "b": 2}) == 3
        assert await client.add(a=4) == 4
        assert await client.batch([("add", [1]), ("add", [2])]) == [1, 2]
        assert await client.notify("poke") is None
        assert (await client.health())["status"] == "ok"
        with pytest.raises(RemoteNotFound):
            await client.note_get(sid="missing")


async def test_error_answers_raise_classes_that_are_also_the_kernel_errors(sock: Path) -> None:
    async with AsyncClient(sock) as client:
        with pytest.raises(NotFound) as not_found:
            await client.note_get(sid="missing")
        assert isinstance(not_found.value, RemoteNotFound)
        assert isinstance(not_found.value, RpcError)
        assert (not_found.value.code, not_found.value.data) == (-32001, {"sid": "missing"})
        assert str(not_found.value) == "no note 'missing'"
        with pytest.raises(WrongState):
            await client.note_get(sid="locked")
        with pytest.raises(InvalidParams) as invalid:
            await client.add(a="x", c=1)
        assert isinstance(invalid.value, RemoteInvalidParams)
        assert [d["field"] for d in invalid.value.data] == ["a", "c"]
        with pytest.raises(RemoteMethodNotFound, match="nope"):
            await client.nope()
        with pytest.raises(RpcError) as internal:
            await client.crash()
        assert internal.value.code == -32603
        with pytest.raises(RemoteInvalidRequest, match="larger than the limit"):
            await client.call("add", ["x" * MAX_BODY])
        with pytest.raises(TypeError, match="not both"):
            await client.add(1, b=2)
        with pytest.raises(AttributeError):
            client._private  # noqa: B018


async def test_no_service_at_the_socket_is_service_unavailable_saying_how_to_start_it(tmp_dir: Path) -> None:
    path = tmp_dir / "rpc.sock"
    with Client(path) as client, pytest.raises(ServiceUnavailable, match="hero_logic --start") as info:
        client.call("system.ping")
    gc.collect()  # a socket left open by the failed connect would warn (an error here)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ConnectionError)
    async with AsyncClient(path) as aclient:
        with pytest.raises(ServiceUnavailable, match="make run"):
            await aclient.health()
