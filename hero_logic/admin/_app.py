"""The admin as a raw ASGI 3 app: pages, static files, an RPC proxy and the live stream.

Routes::

    GET  /                               dashboard
    GET  /plays                          every play: filters, search, pages
    GET  /workflows/{sid}                a workflow: source, versions, run form, presets, ...
    GET  /plays/{sid}                    a play: live span graph, inspector, resume forms
    GET  /static/{path}                  the admin's CSS/JS (and the bundled editor)
    GET  /api/health                     the admin's and the service's health
    POST /api/rpc                        {"method", "params"} → {"result"} | {"error"}
    websocket /api/plays/{sid}/spans     the play's live stream, relayed from rpc.sock
    websocket /api/plays/events          every play's status changes, relayed from rpc.sock
                                         (both with ?csrf=<the page's token>)

The admin holds no state and opens no store: every read and write goes through
:class:`~hero_logic.rpc.AsyncClient` and every live update through the stream on the
service's RPC socket. Each request passes the checks of :mod:`._security` first. A request
body must arrive within ``limits.body_timeout_s`` of its headers (else 408).
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import TYPE_CHECKING, Any

import trio

from hero_logic import __version__
from hero_logic.kernel import dumps
from hero_logic.rpc import (
    AsyncClient,
    RpcError,
    SendGuard,
    ServiceUnavailable,
    ServingLimits,
    admin_method_names,
    open_stream,
)
from hero_logic.rpc._jsonrpc import ParseError, loads_strict

from ._pages import STATIC_DIR, not_found_page, page
from ._security import CsrfToken, Refusal, check_host, check_origin, header

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping
    from pathlib import Path

    from hero_logic.rpc import StreamClient

    Scope = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
    Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

__all__ = ["MAX_API_BODY_BYTES", "PROXIED_METHODS", "AdminApp"]

logger = logging.getLogger("hero_logic.admin")

MAX_API_BODY_BYTES = 4 * 1024 * 1024
"""Largest ``POST /api/rpc`` body (a flow's source travels in one)."""

PROXIED_METHODS = admin_method_names()
"""The RPC methods the browser may call: those the service marks ``@rpc_method(admin=True)``.
Not ``span_push`` (flows write spans, people do not), the ``*_wait`` methods (pages follow the
live stream instead of holding a request open) or ``play_run_async`` (a flow's own call)."""

_SID = r"[A-Za-z0-9_.\-]{1,200}"
_PAGES = [
    (re.compile(r"^/$"), "dashboard"),
    (re.compile(r"^/plays$"), "plays"),
    (re.compile(rf"^/workflows/(?P<sid>{_SID})$"), "workflow"),
    (re.compile(rf"^/plays/(?P<sid>{_SID})$"), "play"),
]
_STREAMS = [
    re.compile(r"^/api/plays/events$"),
    re.compile(rf"^/api/plays/(?P<sid>{_SID})/spans$"),
]
_STATIC_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}(/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}){0,3}$")
"""What a static file's name may look like (no NUL, no "..", no hidden files, not too long)."""
_TITLES = {"dashboard": "Dashboard", "plays": "Plays", "workflow": "Workflow", "play": "Play"}
_CONTENT_TYPES = {
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".svg": b"image/svg+xml",
    ".png": b"image/png",
    ".txt": b"text/plain; charset=utf-8",
    ".map": b"application/json",
}
_CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    b"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_COMMON_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


async def _respond(
    send: Send, status: int, body: bytes, content_type: bytes, *extra: tuple[bytes, bytes], head: bool = False
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", b"%d" % len(body)),
        *_COMMON_HEADERS,
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def _problem(send: Send, refusal: Refusal, *extra: tuple[bytes, bytes]) -> None:
    body = dumps({"error": {"status": refusal.status, "message": refusal.message}})
    await _respond(send, refusal.status, body, b"application/json", (b"cache-control", b"no-store"), *extra)


def _static_file(relative: str) -> Path | None:
    """The file of the admin's static folder that ``relative`` names, or None."""
    if not _STATIC_NAME.match(relative):
        return None
    root = STATIC_DIR.resolve()
    try:
        target = (root / relative).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            return None
    except (OSError, ValueError):  # a name the file system refuses: not one of ours
        return None
    return target


class AdminApp:
    """The ASGI app of the admin. See the module docstring for its routes."""

    def __init__(
        self, rpc_socket: str | Path, *, csrf: CsrfToken | None = None, limits: ServingLimits | None = None
    ) -> None:
        self.rpc_socket = rpc_socket
        self.csrf = csrf or CsrfToken()
        self.limits = limits or ServingLimits()
        self._client: AsyncClient | None = None

    @property
    def client(self) -> AsyncClient:
        """The RPC client of the service (one connection pool for the admin's lifetime)."""
        if self._client is None:
            self._client = AsyncClient(self.rpc_socket)
        return self._client

    async def aclose(self) -> None:
        """Close the RPC client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    # -- HTTP -----------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = check_host(scope)
        if refusal is not None:
            await _problem(send, refusal)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if path == "/api/rpc":
            if method != "POST":
                await _problem(send, Refusal(405, f"{method} is not allowed on /api/rpc: use POST"))
                return
            await self._rpc(scope, receive, send)
            return
        if method not in ("GET", "HEAD"):
            # No CORS preflight is ever answered, and nothing else takes a body.
            await _problem(send, Refusal(405, f"{method} is not allowed on {path}"))
            return
        head = method == "HEAD"
        if path.startswith("/static/"):
            await self._static(scope, send, path.removeprefix("/static/"), head=head)
            return
        if path == "/api/health":
            await self._health(send, head=head)
            return
        for pattern, script in _PAGES:
            match = pattern.match(path)
            if match is not None:
                sid = match.groupdict().get("sid") or ""
                missing = await self._missing(script, sid)
                if missing:
                    await self._not_found(send, missing, head=head)
                    return
                title = f"{_TITLES[script]} {sid}" if sid else _TITLES[script]
                body = page(script, title=title, csrf=self.csrf.value, sid=sid)
                await _respond(
                    send, 200, body, b"text/html; charset=utf-8",
                    (b"content-security-policy", _CSP), (b"cache-control", b"no-store"), head=head,
                )
                return
        message = f"no page at {path}: the admin has /, /plays, /workflows/{{sid}} and /plays/{{sid}}"
        if "text/html" in (header(scope, b"accept") or ""):
            await self._not_found(send, message, head=head)
            return
        await _problem(send, Refusal(404, message))

    async def _missing(self, script: str, sid: str) -> str:
        """Why the record a page shows does not exist ("" if it does, or if the service cannot
        say right now: the page then shows its own reconnecting state)."""
        method, params, what = {
            "workflow": ("workflow_get", {"sid": sid}, "workflow"),
            "play": ("play_status", {"play_sid": sid}, "play"),
        }.get(script, ("", {}, ""))
        if not method:
            return ""
        try:
            await self.client.call(method, params)
        except RpcError as exc:
            return f"There is no {what} {sid}." if exc.code == -32001 else ""
        except ServiceUnavailable:
            return ""
        return ""

    async def _not_found(self, send: Send, message: str, *, head: bool) -> None:
        body = not_found_page(message)
        await _respond(
            send, 404, body, b"text/html; charset=utf-8",
            (b"content-security-policy", _CSP), (b"cache-control", b"no-store"), head=head,
        )

    async def _static(self, scope: Scope, send: Send, relative: str, *, head: bool) -> None:
        target = _static_file(relative)
        content_type = _CONTENT_TYPES.get(target.suffix) if target is not None else None
        if target is None or content_type is None:
            shown = relative if len(relative) <= 80 else f"{relative[:80]}… ({len(relative)} characters)"
            await _problem(send, Refusal(404, f"no static file {shown!r}: the admin serves /static/<name> of its own files only"))
            return
        body = await trio.Path(target).read_bytes()
        etag = b'"%s"' % hashlib.sha1(body, usedforsecurity=False).hexdigest()[:20].encode()
        if (header(scope, b"if-none-match") or "").encode() == etag:
            await send({"type": "http.response.start", "status": 304, "headers": [(b"etag", etag)]})
            await send({"type": "http.response.body", "body": b""})
            return
        await _respond(send, 200, body, content_type, (b"etag", etag), (b"cache-control", b"no-cache"), head=head)

    async def _health(self, send: Send, *, head: bool) -> None:
        report: dict[str, Any] = {"status": "ok", "admin": __version__}
        try:
            report["service"] = await self.client.health()
        except ServiceUnavailable as exc:
            report.update(status="degraded", service={"status": "unavailable", "error": str(exc)})
        await _respond(send, 200, dumps(report), b"application/json", (b"cache-control", b"no-store"), head=head)

    async def _rpc(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = check_origin(scope) or self.csrf.check(scope)
        content_type = (header(scope, b"content-type") or "").split(";")[0].strip().lower()
        if refusal is None and content_type != "application/json":
            refusal = Refusal(415, "POST /api/rpc takes application/json")
        if refusal is not None:
            await _problem(send, refusal)
            return
        received = bytearray()
        with trio.move_on_after(self.limits.body_timeout_s) as deadline:
            body = await _read_body(receive, MAX_API_BODY_BYTES, received)
        if deadline.cancelled_caught:
            declared = header(scope, b"content-length")
            of = f" of {declared}" if declared is not None else ""
            message = (
                f"the body did not arrive within {round(self.limits.body_timeout_s * 1000)} ms of "
                f"the headers (got {len(received)}{of} bytes): send the whole body at once, or "
                "raise the limit (HERO_LOGIC_BODY_TIMEOUT_MS / --body-timeout)"
            )
            await _problem(send, Refusal(408, message), (b"connection", b"close"))
            return
        if body is None:
            await _problem(send, Refusal(413, f"the body is larger than {MAX_API_BODY_BYTES} bytes"))
            return
        try:
            request = loads_strict(body)  # no NaN, huge numbers, lone surrogates or deep nesting
        except ParseError as exc:
            await _problem(send, Refusal(400, f"POST /api/rpc: {exc}"))
            return
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            await _problem(send, Refusal(400, 'POST /api/rpc takes {"method": "...", "params": {...}}'))
            return
        method, params = request["method"], request.get("params") or {}
        if not isinstance(params, dict | list):
            await _problem(send, Refusal(400, f"POST /api/rpc: params must be an object or an array, got {type(params).__name__}"))
            return
        if method not in PROXIED_METHODS:
            await _problem(send, Refusal(403, f"the admin does not call {method!r} for a browser"))
            return
        try:
            answer: dict[str, Any] = {"result": await self.client.call(method, params)}
        except RpcError as exc:
            answer = {"error": {"code": exc.code, "message": exc.message, "data": exc.data}}
        except ServiceUnavailable as exc:
            await _problem(send, Refusal(502, str(exc)))
            return
        await _respond(send, 200, dumps(answer), b"application/json", (b"cache-control", b"no-store"))

    # -- websockets -----------------------------------------------------------------------------

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # websocket.connect
        refusal = check_host(scope) or check_origin(scope) or self.csrf.check_websocket(scope)
        path: str = scope["path"]
        if refusal is None and not any(p.match(path) for p in _STREAMS):
            refusal = Refusal(404, f"no websocket at {path}")
        if refusal is not None:
            await _refuse(scope, send, refusal)
            return
        try:
            async with open_stream(self.rpc_socket, path) as upstream:
                await send({"type": "websocket.accept"})
                await _relay(upstream, receive, send)
        except RpcError as exc:
            await _refuse(scope, send, Refusal(404 if exc.code == -32001 else 502, exc.message))
        except ServiceUnavailable as exc:
            await _refuse(scope, send, Refusal(502, str(exc)))


async def _relay(upstream: StreamClient, receive: Receive, send: Send) -> None:
    """Forward the service's stream to the browser until either side closes.

    A browser that stops reading is cut off by a :class:`~hero_logic.rpc.SendGuard`; until
    then the relay stops reading upstream, and the service drops it as a slow subscriber.
    """
    guard = SendGuard(send)
    async with trio.open_nursery() as nursery:

        async def until_disconnect() -> None:
            while (await receive())["type"] != "websocket.disconnect":
                pass
            nursery.cancel_scope.cancel()

        nursery.start_soon(until_disconnect)
        nursery.start_soon(guard.watch)
        while (text := await upstream.receive_text()) is not None:
            await guard.send({"type": "websocket.send", "text": text})
        code = upstream.close_code or 1011
        await guard.send({"type": "websocket.close", "code": 1011 if code == 1006 else code, "reason": upstream.close_reason})
        nursery.cancel_scope.cancel()


async def _refuse(scope: Scope, send: Send, refusal: Refusal) -> None:
    if "websocket.http.response" in scope.get("extensions", {}):
        body = dumps({"error": {"status": refusal.status, "message": refusal.message}})
        await send({
            "type": "websocket.http.response.start",
            "status": refusal.status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
        })
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": refusal.message[:120]})


async def _read_body(receive: Receive, limit: int, chunks: bytearray) -> bytes | None:
    """The request body, or None once it passes ``limit`` bytes; ``chunks`` holds what came."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return bytes(chunks)
        chunks += message.get("body", b"")
        if len(chunks) > limit:
            return None
        if not message.get("more_body", False):
            return bytes(chunks)
