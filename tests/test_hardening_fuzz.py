"""Raw, hostile HTTP on both listeners never stops the service (property-based, Hypothesis).

Malformed request lines, websocket upgrades with bytes after them, pipelined requests,
truncated and oversized headers, chunked and lying bodies, or plain garbage are written to
``rpc.sock`` and to the admin's TCP port; after each, ``system.ping`` must still answer there.

The service runs once for the module, in a thread of its own (Hypothesis runs each example in
the test's thread, and a service per example would take most of the time). Shrinking is
off: once the service is down every later example fails too, so the example that failed
first is the one to report. Examples are few enough for a run of a few seconds each.
"""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import trio
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from hero_logic.admin import serve_admin
from hero_logic.server import serve

from ._admin_kit import csrf_of
from .conftest import make_config

if TYPE_CHECKING:
    from collections.abc import Iterator

HOST = b"{HOST}"
"""Stands for the listener's own Host value in a generated request."""

READ_FOR_S = 0.3
"""How long an example's answer is read, at most, before its connection is dropped."""

FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


@attrs.define
class Target:
    """The service of the module, running in its own thread with its own trio loop."""

    rpc_socket: str
    admin_port: int
    csrf: str
    failure: list[BaseException]
    """What ended the service's thread, if it ended."""

    def connect(self, listener: str) -> socket.socket:
        if listener == "rpc":
            sock = socket.socket(socket.AF_UNIX)
            sock.settimeout(5)
            sock.connect(self.rpc_socket)
            return sock
        return socket.create_connection(("127.0.0.1", self.admin_port), timeout=5)

    def host(self, listener: str) -> bytes:
        return b"localhost" if listener == "rpc" else b"127.0.0.1:%d" % self.admin_port

    def ping(self, listener: str) -> Any:
        """``system.ping`` on a fresh connection: rpc.sock's /rpc, or the admin's /api/rpc."""
        if listener == "rpc":
            path, body, extra = b"/rpc", b'{"jsonrpc":"2.0","method":"system.ping","id":1}', b""
        else:
            path, body = b"/api/rpc", b'{"method":"system.ping","params":{}}'
            extra = b"X-CSRF-Token: " + self.csrf.encode() + b"\r\n"
        request = (
            b"POST " + path + b" HTTP/1.1\r\nHost: " + self.host(listener) + b"\r\n" + extra
            + b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
            + body
        )
        with self.connect(listener) as sock:
            sock.sendall(request)
            answer = _read_until_closed(sock, time.monotonic() + 5)
        return json.loads(answer.partition(b"\r\n\r\n")[2])["result"]


def _read_until_closed(sock: socket.socket, deadline: float) -> bytes:
    data = bytearray()
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except OSError:  # reset: the server closed with our bytes unread
            break
        if not chunk:
            break
        data += chunk
    return bytes(data)


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    root = Path(tempfile.mkdtemp(prefix="hl-", dir="/tmp"))
    config = make_config(root, admin_bind="127.0.0.1:0", header_timeout_ms=2000, body_timeout_ms=2000)
    ready = threading.Event()
    failure: list[BaseException] = []
    handles: dict[str, Any] = {}

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            handles["token"] = trio.lowlevel.current_trio_token()
            handles["scope"] = nursery.cancel_scope
            await nursery.start(serve, config)
            handles["binds"] = await nursery.start(serve_admin, config)
            ready.set()

    def run() -> None:
        try:
            trio.run(main)
        except BaseException as exc:
            failure.append(exc)
        finally:
            ready.set()

    thread = threading.Thread(target=run, name="fuzzed-service", daemon=True)
    thread.start()
    assert ready.wait(60), "the service did not start"
    assert not failure, failure
    port = int(next(b for b in handles["binds"] if not b.startswith("http://unix:")).rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n" % port)
        page = _read_until_closed(sock, time.monotonic() + 5).decode()
    yield Target(str(config.rpc_socket), port, csrf_of(page), failure)
    if thread.is_alive():
        trio.from_thread.run_sync(handles["scope"].cancel, trio_token=handles["token"])
    thread.join(10)
    shutil.rmtree(root, ignore_errors=True)


# -- what is written ---------------------------------------------------------------------------

UPGRADE_HEADERS = [
    (b"Host", HOST),
    (b"Connection", b"Upgrade"),
    (b"Upgrade", b"websocket"),
    (b"Sec-WebSocket-Version", b"13"),
    (b"Sec-WebSocket-Key", b"bKdPyn3u98cTfZJSh4TNeQ=="),
]
methods = st.sampled_from([b"GET", b"POST", b"HEAD", b"OPTIONS", b"PUT", b"PRI", b"CONNECT", b"get"]) | st.binary(max_size=8)
known_targets = st.sampled_from([
    b"/rpc", b"/health", b"/openrpc.json", b"/.well-known/heroservice.json", b"/api/rpc",
    b"/api/health", b"/", b"/static/app.css", b"/static/%00", b"/static/" + b"a" * 300,
    b"/plays/x", b"*", b"/api/plays/events", b"/api/plays/play_x/spans", b"/api/plays/events?csrf=x",
])
targets = known_targets | st.binary(max_size=30)
versions = st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.1 x", b""])
header_names = st.sampled_from([
    b"Host", b"Content-Length", b"Transfer-Encoding", b"Connection", b"Upgrade", b"Expect",
    b"Content-Type", b"Sec-WebSocket-Key", b"Sec-WebSocket-Version", b"Origin", b"X-CSRF-Token",
    b"HTTP2-Settings",
]) | st.binary(min_size=1, max_size=20)
header_values = st.sampled_from([
    b"0", b"5", b"-1", b"99999999999", b"chunked", b"upgrade", b"Upgrade", b"websocket", b"h2c",
    b"100-continue", b"application/json", b"13", b"bKdPyn3u98cTfZJSh4TNeQ==", b"close", HOST,
]) | st.binary(max_size=40)
bodies = st.sampled_from([
    b"", b"x", b'{"jsonrpc":"2.0","method":"system.ping","id":1}', b"5\r\nhello\r\n0\r\n\r\n",
    b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58",  # a masked websocket text frame
    b"\x88\x80\x00\x00\x00\x00", b"GET / HTTP/1.1\r\n\r\n", b"\x00" * 64,
]) | st.binary(max_size=200)


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    """One request, more or less well formed."""
    shape = draw(st.sampled_from(["plain", "host", "upgrade", "upgrade", "oversized"]))
    headers = draw(st.lists(st.tuples(header_names, header_values), max_size=2 if shape == "upgrade" else 6))
    if shape == "host":
        headers.append((b"Host", HOST))
    elif shape == "upgrade":
        headers = UPGRADE_HEADERS + headers
    elif shape == "oversized":
        headers.append((b"X-Big", b"a" * draw(st.integers(8_000, 70_000))))
    newline = draw(st.sampled_from([b"\r\n", b"\r\n", b"\n"]))
    if shape == "upgrade":  # mostly a handshake hypercorn takes, so that what follows it counts
        method = draw(st.sampled_from([b"GET", b"GET", b"GET", b"POST"]))
        target = draw(known_targets)
        version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"]))
    else:
        method, target, version = draw(methods), draw(targets), draw(versions)
    head = method + b" " + target + b" " + version + newline
    head += b"".join(name + b": " + value + newline for name, value in headers) + newline
    return head + draw(bodies)


@st.composite
def traffic(draw: st.DrawFn) -> tuple[list[bytes], bool]:
    """What one connection writes (one or more writes) and whether it then half-closes."""
    if draw(st.integers(0, 9)) == 0:
        data = draw(st.binary(min_size=1, max_size=300))  # plain garbage
    else:
        data = b"".join(draw(st.lists(requests(), min_size=1, max_size=3)))  # pipelined
        if draw(st.integers(0, 3)) == 0:
            data = data[: draw(st.integers(0, len(data)))]  # truncated
    cut = draw(st.integers(0, len(data)))
    writes = [data] if draw(st.integers(0, 2)) else [data[:cut], data[cut:]]
    return [w for w in writes if w], draw(st.integers(0, 3)) > 0


def _hit(target: Target, listener: str, writes: list[bytes], half_close: bool) -> None:
    """Write ``writes`` on one connection, read what comes back for a moment, and drop it."""
    host = target.host(listener)
    with target.connect(listener) as sock:
        try:
            for data in writes:
                sock.sendall(data.replace(HOST, host))
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server already closed this connection: that is allowed
        _read_until_closed(sock, time.monotonic() + READ_FOR_S)


def _check_alive(target: Target, listener: str, writes: list[bytes]) -> None:
    try:
        answer = target.ping(listener)
    except (OSError, ValueError, KeyError) as exc:
        msg = f"system.ping failed after {writes!r:.500} ({exc!r}); the service thread ended with {target.failure!r}"
        raise AssertionError(msg) from exc
    assert answer == "pong"


TRAILING = (
    [b"GET /api/plays/events HTTP/1.1\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in UPGRADE_HEADERS) + b"\r\nx"],
    True,
)
"""The issue's request: a websocket upgrade and one more byte, in the same write."""

PIPELINED_UPGRADES = (
    [b"GET /api/plays/play_x/spans HTTP/1.1\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in UPGRADE_HEADERS) + b"\r\n"
     + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"],
    False,
)


@FUZZ
@given(case=traffic())
@example(case=TRAILING)
@example(case=PIPELINED_UPGRADES)
def test_raw_requests_on_rpc_sock_never_stop_the_service(target: Target, case: tuple[list[bytes], bool]) -> None:
    writes, half_close = case
    _hit(target, "rpc", writes, half_close)
    _check_alive(target, "rpc", writes)


@FUZZ
@given(case=traffic())
@example(case=TRAILING)
@example(case=PIPELINED_UPGRADES)
def test_raw_requests_on_the_admin_tcp_port_never_stop_the_service(
    target: Target, case: tuple[list[bytes], bool]
) -> None:
    writes, half_close = case
    _hit(target, "admin", writes, half_close)
    _check_alive(target, "admin", writes)


def test_the_fuzzed_service_is_still_whole(target: Target) -> None:
    """After both fuzz runs: the service thread still runs, and both listeners answer."""
    assert not target.failure
    for listener in ("rpc", "admin"):
        _check_alive(target, listener, [])

