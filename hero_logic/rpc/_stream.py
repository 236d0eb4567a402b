"""The live span stream (CONTRACT.md §7): websockets fed from the kernel's event bus.

Routes (mounted into :class:`~hero_logic.rpc.RpcApp` by :func:`stream_routes`)::

    websocket /api/plays/{play_sid}/spans   one play: snapshot, its events, its status changes
    websocket /api/plays/events             every play: snapshot of recent plays, status changes

One play's stream sends, in this order:

1. ``{"type": "snapshot", "play": Play, "spans": [Span], "seq": N}`` — the play and its span
   tree as stored when the stream opened; ``seq`` is the position of the last event the
   snapshot includes (-1 for none).
2. Every event applied after it, as the flow sent it (its wire ``type``: ``span_start``,
   ``span_tag``, ``span_log``, ``span_end``, ``step_output``, ``output``, ``pause``) plus its
   position ``seq`` (consecutive, starting at the snapshot's ``seq + 1``).
3. ``{"type": "status", "status": "<play status>", "play": Play}`` each time the play's status
   changes, interleaved with the events in the order they happened. (A re-save of the play
   that leaves its status as it was, such as a resumed play's next run starting, sends none.)
4. After a terminal status (``success``, ``failed``, ``cancelled``, ``timed_out``) the server
   closes with code 1000. A play that had already ended gets its snapshot, one status message
   and the close.

The stream subscribes to the bus *before* it reads the snapshot, so nothing that happens
between the two is lost; what the snapshot already holds is skipped by position (events) or
by equality with the snapshot's play and status (statuses).

A subscriber that falls :data:`STREAM_QUEUE_SIZE` messages behind (it stops reading, its
socket fills up) is dropped by the bus: publishing never waits, so neither the play nor the
other subscribers slow down. Its stream ends with close code 1013 (try again later); a new
connection starts from a fresh snapshot. An unknown play is refused before the handshake
(HTTP 404, or close code 4404 where the server cannot send an HTTP answer).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from hero_logic.kernel import (
    RECENT_PLAYS,
    WATCH_QUEUE_SIZE,
    Dropped,
    NotFound,
    ServiceBusy,
    dumps,
    encode_message,
    watch_all_plays,
    watch_play,
)
from hero_logic.serving import SendGuard

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from hero_logic.kernel import Kernel

    from ._asgi import Receive, Scope, Send, WebsocketHandler

__all__ = [
    "CLOSE_DROPPED",
    "CLOSE_NOT_FOUND",
    "RECENT_PLAYS",
    "STREAM_QUEUE_SIZE",
    "Dropped",
    "stream_all_plays",
    "stream_play",
    "stream_routes",
]

logger = logging.getLogger("hero_logic.rpc.stream")

STREAM_QUEUE_SIZE = WATCH_QUEUE_SIZE
"""Bus messages a stream subscriber may fall behind before it is dropped."""

stream_play = watch_play
"""One play's stream: the kernel's watch (see :func:`hero_logic.kernel.watch_play`)."""
stream_all_plays = watch_all_plays
"""Every play's status changes: the kernel's watch (see :func:`hero_logic.kernel.watch_all_plays`)."""

CLOSE_DROPPED = 1013
"""Close code of a subscriber the bus dropped for falling behind (RFC 6455 "try again later")."""

CLOSE_NOT_FOUND = 4404
"""Close code for an unknown play when the server cannot answer the handshake with a 404."""

# -- the ASGI websocket handlers ------------------------------------------------------------------


async def refuse(scope: Scope, send: Send, status: int, message: str) -> None:
    """Refuse a websocket handshake with an HTTP answer (or a close code where unsupported)."""
    if "websocket.http.response" in scope.get("extensions", {}):
        body = dumps({"error": {"status": status, "message": message}})
        await send({
            "type": "websocket.http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
        })
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": CLOSE_NOT_FOUND if status == 404 else 1008})


async def _serve_socket(
    receive: Receive, send: Send, run: Callable[[Callable[[dict[str, Any]], Awaitable[None]]], Awaitable[str]]
) -> None:
    """Accept, run the stream until it ends or the client leaves, then close.

    A :class:`SendGuard` cuts off a client that stopped reading (see :mod:`._guard`), so that
    it can hold up neither this task nor a shutdown.
    """
    await send({"type": "websocket.accept"})
    guard = SendGuard(send)

    async def emit(message: dict[str, Any]) -> None:
        text = encode_message(message).decode()  # a snapshot's spans come encoded already
        await guard.send({"type": "websocket.send", "text": text})

    async with trio.open_nursery() as nursery:

        async def until_disconnect() -> None:
            while (await receive())["type"] != "websocket.disconnect":
                pass  # the stream is one-way: what a client sends is ignored
            nursery.cancel_scope.cancel()

        nursery.start_soon(until_disconnect)
        nursery.start_soon(guard.watch)
        try:
            reason = await run(emit)
            code = 1000
        except Dropped:
            reason, code = "this subscriber fell behind and was dropped: reconnect for a fresh snapshot", CLOSE_DROPPED
        except ServiceBusy as exc:  # too many watchers: try again later
            reason, code = exc.message[:120], CLOSE_DROPPED
        await guard.send({"type": "websocket.close", "code": code, "reason": reason})
        nursery.cancel_scope.cancel()


def stream_routes(kernel: Kernel, *, queue_size: int = STREAM_QUEUE_SIZE) -> list[tuple[str, WebsocketHandler]]:
    """The websocket routes of the live stream, for ``RpcApp(websocket_routes=...)``."""

    async def play_socket(scope: Scope, receive: Receive, send: Send, *, play_sid: str) -> None:
        await receive()  # websocket.connect
        try:
            await kernel.get_play(play_sid)
        except NotFound as exc:
            await refuse(scope, send, 404, exc.message)
            return

        async def run(emit: Callable[[dict[str, Any]], Awaitable[None]]) -> str:
            try:
                final = await stream_play(kernel, play_sid, emit, queue_size=queue_size)
            except Dropped:
                logger.info("dropped a slow subscriber of play %s", play_sid)
                raise
            return f"play ended ({final.value})"

        await _serve_socket(receive, send, run)

    async def all_socket(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # websocket.connect

        async def run(emit: Callable[[dict[str, Any]], Awaitable[None]]) -> str:
            try:
                await stream_all_plays(kernel, emit, queue_size=queue_size)
            except Dropped:
                logger.info("dropped a slow subscriber of all plays")
                raise
            return "done"  # not reached: the all-plays stream ends by cancellation or Dropped

        await _serve_socket(receive, send, run)

    return [("/api/plays/events", all_socket), ("/api/plays/{play_sid}/spans", play_socket)]
