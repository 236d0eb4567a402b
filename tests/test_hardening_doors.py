"""The doors of the service hold against hostile clients (issue "Hardening: what an outside
attack broke"): a protocol error ends one connection, never the service; batches, slow
requests and floods of connections are bounded; the admin's static route and websocket refuse
what they must. Both listeners are tried: ``rpc.sock`` and the admin's TCP port.

The property-based fuzz of raw requests lives in ``test_hardening_fuzz.py``.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import socket
import time
import types
from typing import TYPE_CHECKING, Any

import attrs
import httpx
import pytest
import trio

from hero_logic.admin import serve_admin
from hero_logic.kernel import Config, ConfigError
from hero_logic.rpc import AsyncClient, ServingLimits, handle_body
from hero_logic.server import serve

from ._admin_kit import csrf_of
from ._ws import raw_handshake
from .conftest import make_config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

UPGRADE = (
    b"Host: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: bKdPyn3u98cTfZJSh4TNeQ==\r\n"
)


@attrs.frozen
class Doors:
    """A running service with its admin (admin.sock and a loopback TCP port)."""

    config: Config
    admin_host: str
    csrf: str

    @property
    def admin_port(self) -> int:
        return int(self.admin_host.rsplit(":", 1)[1])

    async def connect(self, listener: str) -> trio.SocketStream:
        """A raw connection to ``rpc`` (rpc.sock), ``admin`` (TCP) or ``admin.sock``."""
        if listener == "rpc":
            return await trio.open_unix_socket(str(self.config.rpc_socket))
        if listener == "admin.sock":
            return await trio.open_unix_socket(str(self.config.admin_socket))
        return await trio.open_tcp_stream("127.0.0.1", self.admin_port)

    def host(self, listener: str) -> bytes:
        return self.admin_host.encode() if listener == "admin" else b"localhost"

    async def ping(self, listener: str) -> Any:
        """``system.ping`` through ``listener``: rpc.sock directly, the admin through /api/rpc."""
        if listener == "rpc":
            async with AsyncClient(self.config.rpc_socket, timeout=5) as client:
                return await client.call("system.ping")
        transport = (
            httpx.AsyncHTTPTransport(uds=str(self.config.admin_socket)) if listener == "admin.sock" else None
        )
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{self.admin_host}", timeout=5) as http:
            response = await http.post(
                "/api/rpc",
                json={"method": "system.ping", "params": {}},
                headers={"x-csrf-token": self.csrf, "origin": f"http://{self.admin_host}"},
            )
        return response.json()["result"]


async def open_doors(root: Path, nursery: trio.Nursery, **overrides: Any) -> Doors:
    """Start service and admin on ``root`` with the settings ``overrides``."""
    config = make_config(root, admin_bind="127.0.0.1:0", **overrides)
    await nursery.start(serve, config)
    binds: list[str] = await nursery.start(serve_admin, config)
    host = next(b for b in binds if not b.startswith("http://unix:")).removeprefix("http://")
    async with httpx.AsyncClient(base_url=f"http://{host}") as http:
        csrf = csrf_of((await http.get("/")).text)
    return Doors(config, host, csrf)


@pytest.fixture
async def doors(root: Path, nursery: trio.Nursery) -> AsyncIterator[Doors]:
    yield await open_doors(root, nursery)
    nursery.cancel_scope.cancel()


async def read_all(stream: trio.abc.Stream, *, within: float = 5.0) -> bytes:
    """Everything the server sends until it closes (fails after ``within`` seconds)."""
    data = bytearray()
    with trio.fail_after(within):
        while True:
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                break
            if not chunk:
                break
            data += chunk
    return bytes(data)


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer (0 when there is none)."""
    parts = answer.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and answer.startswith(b"HTTP/") else 0


def body_of(answer: bytes) -> Any:
    return json.loads(answer.partition(b"\r\n\r\n")[2])


def test_the_limits_are_settings_by_flag_or_environment(root: Path) -> None:
    env = {
        "PATH_ROOT": str(root), "HERO_LOGIC_MAX_BATCH": "7", "HERO_LOGIC_MAX_RESPONSE_BYTES": "5000",
        "HERO_LOGIC_HEADER_TIMEOUT_MS": "1500", "HERO_LOGIC_BODY_TIMEOUT_MS": "2500",
        "HERO_LOGIC_MAX_CONNECTIONS": "9",
    }
    limits = ServingLimits.from_config(Config.load(flags={"max_connections": "11"}, environ=env))
    assert limits == ServingLimits(
        max_connections=11, header_timeout_s=1.5, body_timeout_s=2.5, max_batch_length=7, max_response_bytes=5000
    )
    assert ServingLimits.from_config(Config.load(environ={"PATH_ROOT": str(root)})) == ServingLimits()
    with pytest.raises(ConfigError, match="HERO_LOGIC_MAX_BATCH must be a positive integer, got 0"):
        Config.load(environ={**env, "HERO_LOGIC_MAX_BATCH": "0"})


# -- 1. a protocol error ends its connection only ----------------------------------------------


@pytest.mark.parametrize("listener", ["rpc", "admin", "admin.sock"])
@pytest.mark.parametrize("target", [b"/api/plays/events", b"/api/plays/play_nope/spans"])
async def test_a_websocket_upgrade_with_trailing_bytes_ends_that_connection_only(
    doors: Doors, listener: str, target: bytes
) -> None:
    """hypercorn 0.18 raises h11's LocalProtocolError out of the connection for this (its
    issue #225); it used to take the whole process down."""
    async with await doors.connect(listener) as stream:
        await stream.send_all(b"GET " + target + b" HTTP/1.1\r\n" + UPGRADE % doors.host(listener) + b"\r\nx")
        await read_all(stream)
    for each in ("rpc", "admin", "admin.sock"):
        assert await doors.ping(each) == "pong"


async def test_a_crash_inside_one_connection_is_logged_and_the_others_go_on(
    doors: Doors, caplog: pytest.LogCaptureFixture
) -> None:
    """An open websocket on another connection survives the bad one, and the log says what
    happened to which connection."""
    async with await doors.connect("rpc") as live:
        status, _ = await raw_handshake(live, "/api/plays/events")
        assert status == 101
        async with await doors.connect("rpc") as bad:
            await bad.send_all(b"GET /api/plays/events HTTP/1.1\r\n" + UPGRADE % b"x" + b"\r\n\x00\x01")
            await read_all(bad)
        assert await doors.ping("rpc") == "pong"
        assert not _closed_by_server(live)
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("hero_logic.rpc")]
    assert any("closed one connection" in m and "LocalProtocolError" in m for m in messages), messages


async def test_a_flood_of_bad_requests_does_not_flood_the_log(doors: Doors, caplog: pytest.LogCaptureFixture) -> None:
    """What a client can cause at will is logged once, then at most once a minute, and never
    as a traceback at ERROR."""
    for _ in range(20):
        async with await doors.connect("rpc") as bad:
            await bad.send_all(b"GET /api/plays/events HTTP/1.1\r\n" + UPGRADE % b"x" + b"\r\nx")
            await read_all(bad)
    assert await doors.ping("rpc") == "pong"
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("hero_logic.rpc")]
    assert 1 <= len(loud) <= 2, [r.getMessage() for r in loud]
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in loud)


# -- 2. batches are bounded ------------------------------------------------------------------


async def _post_raw(config: Config, body: bytes) -> httpx.Response:
    transport = httpx.AsyncHTTPTransport(uds=str(config.rpc_socket))
    async with httpx.AsyncClient(transport=transport, base_url="http://hero_logic", timeout=30) as http:
        return await http.post("/rpc", content=body)


def _batch(method: str, count: int) -> bytes:
    return json.dumps([{"jsonrpc": "2.0", "method": method, "id": i} for i in range(count)]).encode()


async def test_a_batch_longer_than_the_cap_is_refused_naming_the_cap_and_the_setting(doors: Doors) -> None:
    """The issue's 0.6 MB batch of rpc.discover built a 265 MB answer; now it is one error."""
    body = _batch("rpc.discover", 12000)
    assert len(body) > 500_000
    started = time.monotonic()
    response = await _post_raw(doors.config, body)
    assert time.monotonic() - started < 5
    assert len(response.content) < 2000
    error = response.json()["error"]
    assert error["code"] == -32600
    assert "12000 requests" in error["message"]
    assert "limit of 100" in error["message"]
    assert "HERO_LOGIC_MAX_BATCH" in error["message"]
    assert "--max-batch" in error["message"]
    assert error["data"] == {"length": 12000, "limit": 100, "setting": "HERO_LOGIC_MAX_BATCH"}
    # a batch at the cap is answered whole
    answers = (await _post_raw(doors.config, _batch("system.ping", 100))).json()
    assert [a["result"] for a in answers] == ["pong"] * 100


async def test_a_batch_whose_answers_pass_the_response_bound_stops_there_and_says_so(
    root: Path, nursery: trio.Nursery
) -> None:
    doors = await open_doors(root, nursery, max_response_bytes=200_000)
    discover = len((await _post_raw(doors.config, _batch("rpc.discover", 1))).content)
    assert discover > 10_000
    response = await _post_raw(doors.config, _batch("rpc.discover", 100))
    answers = response.json()
    assert len(answers) == 100
    ran = [a for a in answers if "result" in a]
    refused = [a for a in answers if "error" in a]
    # every answer that was run is sent; the bound is passed by at most the last of them
    assert len(ran) == 200_000 // discover + 1
    assert len(response.content) < 200_000 + discover + 100 * 400
    assert [a["id"] for a in answers] == list(range(100))
    error = refused[0]["error"]
    assert error["code"] == -32600
    assert "not run" in error["message"]
    assert "200000 bytes" in error["message"]
    assert "HERO_LOGIC_MAX_RESPONSE_BYTES" in error["message"]
    assert error["data"]["setting"] == "HERO_LOGIC_MAX_RESPONSE_BYTES"
    assert doors.config.max_batch_length == 100


async def test_handle_body_bounds_batches_without_sockets() -> None:
    """The sans-IO framing applies both bounds: length before any call, size while answering."""
    calls: list[str] = []

    async def dispatch(method: str, params: Any) -> Any:
        calls.append(method)
        return "x" * 100

    too_long = await handle_body(_batch("m", 4), dispatch, max_batch_length=3)
    assert too_long is not None
    assert json.loads(too_long)["error"]["data"]["length"] == 4
    assert calls == []
    one = await handle_body(_batch("m", 1), dispatch)
    assert one is not None
    calls.clear()
    # each answer takes len(one) - 2 bytes and a comma: the bound is passed after the third
    answer = await handle_body(_batch("m", 10), dispatch, max_response_bytes=2 * len(one) + 10)
    assert answer is not None
    assert ["result" in a for a in json.loads(answer)] == [True] * 3 + [False] * 7
    assert len(calls) == 3


# -- 3. slow requests and floods of connections ------------------------------------------------


@pytest.mark.parametrize("listener", ["rpc", "admin"])
async def test_request_headers_that_trickle_are_cut_at_the_header_deadline(
    root: Path, nursery: trio.Nursery, listener: str
) -> None:
    """A connection that sends nothing is closed as silently as an idle keep-alive one."""
    doors = await open_doors(root, nursery, header_timeout_ms=400)
    async with await doors.connect(listener) as stream, await doors.connect(listener) as idle:
        started = time.monotonic()
        await stream.send_all(b"POST /rpc HTTP/1.1\r\nHost: ")
        answer = await read_all(stream)
        assert 0.3 < time.monotonic() - started < 3
        assert await read_all(idle) == b""
    assert status_of(answer) == 408
    message = body_of(answer)["error"]["message"]
    assert "did not arrive within 400 ms (got 26 bytes of them)" in message
    assert "HERO_LOGIC_HEADER_TIMEOUT_MS / --header-timeout" in message
    assert await doors.ping(listener) == "pong"


@pytest.mark.parametrize(("listener", "path"), [("rpc", b"/rpc"), ("admin", b"/api/rpc")])
async def test_a_request_body_that_trickles_is_answered_408_at_the_body_deadline(
    root: Path, nursery: trio.Nursery, listener: str, path: bytes
) -> None:
    doors = await open_doors(root, nursery, body_timeout_ms=400)
    head = (
        b"POST " + path + b" HTTP/1.1\r\nHost: " + doors.host(listener) + b"\r\n"
        b"Content-Type: application/json\r\nX-CSRF-Token: " + doors.csrf.encode() + b"\r\n"
        b"Content-Length: 1000\r\n\r\n{"
    )
    async with await doors.connect(listener) as stream:
        started = time.monotonic()
        await stream.send_all(head)
        for _ in range(3):  # a byte now and then is not enough
            await trio.sleep(0.1)
            await stream.send_all(b" ")
        answer = await read_all(stream)
        assert 0.3 < time.monotonic() - started < 3
    assert status_of(answer) == 408
    message = json.dumps(body_of(answer))
    assert "400 ms" in message
    assert "HERO_LOGIC_BODY_TIMEOUT_MS" in message
    assert "4 of 1000 bytes" in message
    assert await doors.ping(listener) == "pong"


async def _open_slow_bodies(doors: Doors, listener: str, count: int) -> list[trio.SocketStream]:
    path = b"/rpc" if listener == "rpc" else b"/api/rpc"  # where the body is read
    head = (
        b"POST " + path + b" HTTP/1.1\r\nHost: " + doors.host(listener) + b"\r\n"
        b"Content-Type: application/json\r\nX-CSRF-Token: " + doors.csrf.encode() + b"\r\n"
        b"Content-Length: 100000\r\n\r\n{"
    )
    streams = []
    for _ in range(count):
        stream = await doors.connect(listener)
        await stream.send_all(head)
        streams.append(stream)
    return streams


def _closed_by_server(stream: trio.SocketStream) -> bool:
    """True once the server closed the connection (what it sent before is read and dropped)."""
    with socket.socket(fileno=os.dup(stream.socket.fileno())) as sock:
        while True:
            try:
                if not sock.recv(65536, socket.MSG_DONTWAIT):
                    return True
            except BlockingIOError:
                return False
            except OSError:
                return True


@pytest.mark.parametrize("listener", ["rpc", "admin"])
async def test_500_slow_bodies_cannot_lock_out_a_ping(root: Path, nursery: trio.Nursery, listener: str) -> None:
    """Over the cap of connections a newcomer displaces the connection that has owed its
    request longest, so the cap holds and the ping still gets in."""
    doors = await open_doors(root, nursery)  # the default cap, 256
    streams = await _open_slow_bodies(doors, listener, 500)
    try:
        started = time.monotonic()
        assert await doors.ping(listener) == "pong"
        assert time.monotonic() - started < 2
        await trio.sleep(0.2)
        open_ones = [s for s in streams if not _closed_by_server(s)]
        assert len(open_ones) <= doors.config.max_connections == 256
        assert open_ones, "the newest slow connections are still served"
    finally:
        for stream in streams:
            stream.socket.close()


async def test_clients_that_never_read_their_answers_cannot_lock_out_a_ping(
    root: Path, nursery: trio.Nursery
) -> None:
    """A connection whose answer has waited over a second for its client to read owes the
    server as much as one that does not send: it is displaced first too."""
    doors = await open_doors(root, nursery, max_connections=8)
    request = b"GET /openrpc.json HTTP/1.1\r\nHost: localhost\r\n\r\n"
    streams = []
    try:
        for _ in range(8):
            stream = await doors.connect("rpc")
            with trio.move_on_after(0.2):  # until our own socket is full: the server is stuck
                await stream.send_all(request * 400)
            streams.append(stream)
        await trio.sleep(1.5)
        started = time.monotonic()
        assert await doors.ping("rpc") == "pong"
        assert time.monotonic() - started < 2
    finally:
        for stream in streams:
            stream.socket.close()


async def test_over_the_cap_with_every_connection_busy_a_newcomer_gets_503(
    root: Path, nursery: trio.Nursery
) -> None:
    """Open websockets are served, not owed: they are never displaced, so the newcomer is
    refused, with a message naming the cap and its setting."""
    doors = await open_doors(root, nursery, max_connections=3)
    streams = []
    try:
        for _ in range(3):
            stream = await doors.connect("rpc")
            streams.append(stream)
            assert (await raw_handshake(stream, "/api/plays/events"))[0] == 101
        async with await doors.connect("rpc") as stream:
            await stream.send_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = await read_all(stream)
        assert status_of(answer) == 503
        message = body_of(answer)["error"]["message"]
        assert "3 connections" in message
        assert "HERO_LOGIC_MAX_CONNECTIONS" in message
        assert "--max-connections" in message
    finally:
        for stream in streams:
            await stream.aclose()
    await trio.sleep(0.2)  # the server sees them go
    assert await doors.ping("rpc") == "pong"


async def test_a_cap_the_open_file_limit_cannot_hold_is_a_start_up_warning(
    root: Path, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the open-file limit accept() fails for everyone: the very lockout the cap is for."""
    # Only the doors see the low limit: the sandbox's own probes read the real one.
    from hero_logic.serving import _doors

    low_limit = types.SimpleNamespace(
        getrlimit=lambda which: (512, 4096),
        RLIMIT_NOFILE=resource.RLIMIT_NOFILE,
        RLIM_INFINITY=resource.RLIM_INFINITY,
    )
    monkeypatch.setattr(_doors, "resource", low_limit)
    await open_doors(root, nursery)
    warnings = [r.getMessage() for r in caplog.records if "open-file limit is 512" in r.getMessage()]
    assert len(warnings) == 2, warnings  # rpc.sock; the admin's socket and TCP port
    assert "ulimit -n" in warnings[0]
    assert "HERO_LOGIC_MAX_CONNECTIONS" in warnings[0]


# -- 4. the admin's static route --------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [b"app%00.css", b"%00", b"a" * 5000 + b".css", (b"a" * 250 + b"/") * 30 + b"x.js", b"..%2f..%2fetc%2fpasswd", b"%ff%fe.css"],
)
async def test_odd_static_names_are_404_never_500(doors: Doors, name: bytes) -> None:
    async with await doors.connect("admin") as stream:
        await stream.send_all(b"GET /static/" + name + b" HTTP/1.1\r\nHost: " + doors.admin_host.encode() + b"\r\nConnection: close\r\n\r\n")
        answer = await read_all(stream)
    assert status_of(answer) == 404, answer[:300]
    assert b"Traceback" not in answer
    assert "no static file" in body_of(answer)["error"]["message"]
    assert await doors.ping("admin") == "pong"


# -- 5. the admin's websocket and the CSRF token ---------------------------------------------


@pytest.mark.parametrize("listener", ["admin", "admin.sock"])
async def test_the_admin_websocket_needs_the_csrf_token(doors: Doors, listener: str) -> None:
    host = doors.admin_host if listener == "admin" else "localhost"
    cases = [
        ("/api/plays/events", 403, "missing"),
        ("/api/plays/events?csrf=wrong", 403, "wrong"),
        ("/api/plays/events?other=1", 403, "missing"),
        (f"/api/plays/events?csrf={doors.csrf}", 101, ""),
    ]
    for target, expected, why in cases:
        async with await doors.connect(listener) as stream:
            status, body = await raw_handshake(stream, target, host=host)
        assert status == expected, target
        if why:
            message = json.loads(body)["error"]["message"]
            assert why in message
            assert "csrf" in message

