"""The RPC service as a raw ASGI 3 app (no framework: the hot path is a dict lookup and a call).

Routes::

    POST /rpc                          JSON-RPC 2.0 request or batch (204 when nothing to answer)
    GET  /health                       {"status": "ok", ...health()}
    GET  /openrpc.json                 the OpenRPC document
    GET  /.well-known/heroservice.json the service manifest
    websocket <pattern>                the handlers given as ``websocket_routes``

A wrong HTTP method on a known path is 405, an unknown path 404, both with a JSON body. A body
larger than ``max_body_bytes`` is refused with 413 as soon as that is known: from its
Content-Length before any of it is read, or while counting the chunks of a chunked body. A
body still incomplete ``limits.body_timeout_s`` after the headers is answered 408, and batches
are bounded by ``limits.max_batch_length`` and ``limits.max_response_bytes`` (see
:func:`~._jsonrpc.handle_body`).
Methods are awaited in the request's own task, so a long ``play_wait`` blocks only its caller.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

import trio

from hero_logic.kernel import RawJson, ServiceClosed, dumps
from hero_logic.serving import ServingLimits

from ._jsonrpc import answer_body

if TYPE_CHECKING:
    from ._methods import MethodTable

__all__ = ["Receive", "RpcApp", "Scope", "Send", "WebsocketHandler"]

logger = logging.getLogger("hero_logic.rpc")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
WebsocketHandler = Callable[..., Awaitable[None]]
"""``await handler(scope, receive, send, **path_params)``: owns the websocket from connect on."""

LINGER_S = 2.0
"""How long a refused (413) body is drained, at most, so that the client can read the answer."""

_JSON = (b"content-type", b"application/json")
RESPONSE_PIECE = 1 << 20
"""Bytes of a response body handed to the server at a time."""

_NO_CONTENT = {"type": "http.response.start", "status": 204, "headers": []}
_EMPTY_BODY = {"type": "http.response.body", "body": b""}
_PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _compile_pattern(pattern: str) -> re.Pattern[str]:
    """``/api/plays/{play_sid}/spans`` → a regex with one named group per ``{param}``."""
    parts = _PATH_PARAM.split(pattern)
    regex = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts)
    )
    return re.compile(f"^{regex}$")


async def _respond(send: Send, status: int, body: bytes, *extra: tuple[bytes, bytes]) -> None:
    headers = [_JSON, (b"content-length", b"%d" % len(body)), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _problem(status: int, message: str) -> bytes:
    return dumps({"error": {"status": status, "message": message}})


class _ClientGone(ServiceClosed):
    """A pure wait was cancelled because its HTTP client disconnected (never sent: nobody is
    left to read it; a non-internal code keeps it out of the error log)."""


class RpcApp:
    """The ASGI app of the RPC socket. See the module docstring for the routes."""

    def __init__(
        self,
        table: MethodTable,
        *,
        max_body_bytes: int = 8 * 1024 * 1024,
        manifest: Mapping[str, Any],
        health: Callable[[], Mapping[str, Any]] | None = None,
        websocket_routes: Sequence[tuple[str, WebsocketHandler]] | None = None,
        limits: ServingLimits | None = None,
    ) -> None:
        if max_body_bytes <= 0:
            msg = f"max_body_bytes must be positive, got {max_body_bytes}"
            raise ValueError(msg)
        self.table = table
        self.max_body_bytes = max_body_bytes
        self.limits = limits or ServingLimits()
        self._dispatch = table.dispatch
        self._health = health
        self._openrpc = dumps(table.document())
        self._manifest = dumps(dict(manifest))
        self._websockets = [(_compile_pattern(p), h) for p, h in websocket_routes or ()]
        self._routes: dict[str, tuple[str, Callable[[Scope, Receive, Send], Awaitable[None]]]] = {
            "/rpc": ("POST", self._rpc),
            "/health": ("GET", self._get_health),
            "/openrpc.json": ("GET", self._get_openrpc),
            "/.well-known/heroservice.json": ("GET", self._get_manifest),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            route = self._routes.get(scope["path"])
            if route is None:
                await self._not_found(scope, send)
                return
            allowed, handler = route
            method = scope["method"]
            if method == allowed or (method == "HEAD" and allowed == "GET"):
                await handler(scope, receive, send)
            else:
                message = f"{method} is not allowed on {scope['path']}: use {allowed}"
                await _respond(send, 405, _problem(405, message), (b"allow", allowed.encode()))
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    # -- POST /rpc ------------------------------------------------------------------------------

    async def _rpc(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.max_body_bytes
        declared: int | None = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = int(value)
                if declared > limit:
                    await self._too_large(receive, send, declared, body_done=False)
                    return
                break
        received = 0
        with trio.move_on_after(self.limits.body_timeout_s) as deadline:
            message = await receive()
            body = message.get("body", b"")
            received = len(body)
            if message.get("more_body", False):
                chunks = bytearray(body)
                while message.get("more_body", False):
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    chunks += message.get("body", b"")
                    received = len(chunks)
                    if len(chunks) > limit:
                        done = not message.get("more_body", False)
                        await self._too_large(receive, send, None, body_done=done)
                        return
                body = bytes(chunks)
            elif len(body) > limit:
                await self._too_large(receive, send, None, body_done=True)
                return
        if deadline.cancelled_caught:
            await self._too_slow(send, received, declared)
            return
        waits: set[trio.CancelScope] = set()
        gone = False

        async def dispatch(name: str, params: Any) -> Any:
            method = self.table.get(name)
            if method is None or not method.cancel_on_disconnect:
                return await self._dispatch(name, params)
            with trio.CancelScope() as wait:
                if gone:
                    wait.cancel()
                waits.add(wait)
                try:
                    return await self._dispatch(name, params)
                finally:
                    waits.discard(wait)
            msg = f"{name}: the client disconnected"
            raise _ClientGone(msg)

        async def watch_disconnect() -> None:
            nonlocal gone
            while (await receive())["type"] != "http.disconnect":
                pass
            gone = True
            for wait in list(waits):
                wait.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_disconnect)
            answer = await answer_body(
                body,
                dispatch,
                max_batch_length=self.limits.max_batch_length,
                max_response_bytes=self.limits.max_response_bytes,
            )
            nursery.cancel_scope.cancel()
        if gone:
            return  # nobody is left to read the answer
        if answer is None:
            await send(_NO_CONTENT)
            await send(_EMPTY_BODY)
        else:
            await send({
                "type": "http.response.start",
                "status": 200,
                "headers": [_JSON, (b"content-length", b"%d" % len(answer))],
            })
            # A large answer goes in pieces, so writing it never holds the event loop long.
            pieces = [
                piece[start : start + RESPONSE_PIECE]
                for piece in (answer.pieces if isinstance(answer, RawJson) else (answer,))
                for start in range(0, len(piece), RESPONSE_PIECE)
            ]
            for index, piece in enumerate(pieces):
                await send({"type": "http.response.body", "body": piece, "more_body": index + 1 < len(pieces)})
            if not pieces:
                await send({"type": "http.response.body", "body": b""})

    async def _too_slow(self, send: Send, received: int, declared: int | None) -> None:
        """Answer 408 to a body that did not arrive in time; the connection is closed after."""
        of = f" of {declared}" if declared is not None else ""
        body = dumps({
            "jsonrpc": "2.0",
            "id": None,
            "error": {
                "code": -32600,
                "message": (
                    f"invalid request: the body did not arrive within "
                    f"{round(self.limits.body_timeout_s * 1000)} ms of the headers (got {received}"
                    f"{of} bytes): send the whole body at once, or raise the limit "
                    "(HERO_LOGIC_BODY_TIMEOUT_MS / --body-timeout)"
                ),
            },
        })
        await _respond(send, 408, body, (b"connection", b"close"))

    async def _too_large(
        self, receive: Receive, send: Send, declared: int | None, *, body_done: bool
    ) -> None:
        """Answer 413 at once, then linger a moment discarding the rest of the body.

        A client that writes its whole body before reading (httpx does) would otherwise see a
        reset connection instead of the 413. The body is discarded, never buffered, and for at
        most :data:`LINGER_S`; the connection is closed after it.
        """
        size = f"of {declared} bytes " if declared is not None else ""
        body = dumps({
            "jsonrpc": "2.0",
            "id": None,
            "error": {
                "code": -32600,
                "message": (
                    f"invalid request: the body {size}is larger than the limit of "
                    f"{self.max_body_bytes} bytes (HERO_LOGIC_MAX_BODY_BYTES / --max-body)"
                ),
            },
        })
        headers = [_JSON, (b"content-length", b"%d" % len(body)), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        if body_done:
            await send({"type": "http.response.body", "body": body})
            return
        await send({"type": "http.response.body", "body": body, "more_body": True})
        finished = trio.Event()

        async def discard() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect" or not message.get("more_body", False):
                    finished.set()
                if message["type"] == "http.disconnect":
                    return

        async with trio.open_nursery() as nursery:
            # Keep draining while the final send closes the stream: hypercorn then queues an
            # http.disconnect for us, which must find room in the app's receive queue.
            nursery.start_soon(discard)
            with trio.move_on_after(LINGER_S):
                await finished.wait()
            await send({"type": "http.response.body", "body": b""})
            nursery.cancel_scope.cancel()

    # -- GET routes -----------------------------------------------------------------------------

    async def _get_health(self, scope: Scope, receive: Receive, send: Send) -> None:
        status, report = 200, {"status": "ok"}
        if self._health is not None:
            try:
                report.update(self._health())
            except Exception as exc:
                logger.exception("the health callback failed")
                status, report = 503, {"status": "error", "error": type(exc).__name__}
        await _respond(send, status, dumps(report))

    async def _get_openrpc(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _respond(send, 200, self._openrpc)

    async def _get_manifest(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _respond(send, 200, self._manifest)

    async def _not_found(self, scope: Scope, send: Send) -> None:
        routes = ", ".join(f"{m} {p}" for p, (m, _) in self._routes.items())
        message = f"no route for {scope['method']} {scope['path']}; this service has {routes}"
        await _respond(send, 404, _problem(404, message))

    # -- websockets and lifespan ----------------------------------------------------------------

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        for pattern, handler in self._websockets:
            match = pattern.match(path)
            if match is not None:
                await handler(scope, receive, send, **match.groupdict())
                return
        await receive()  # websocket.connect
        if "websocket.http.response" in scope.get("extensions", {}):
            body = _problem(404, f"no websocket route for {path}")
            await send({
                "type": "websocket.http.response.start",
                "status": 404,
                "headers": [_JSON, (b"content-length", b"%d" % len(body))],
            })
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 4404})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
