"""A client of the live span stream over the Unix socket (wsproto over a trio stream).

::

    async with open_stream(config.rpc_socket, f"/api/plays/{play_sid}/spans") as stream:
        while (message := await stream.receive()) is not None:
            ...                      # snapshot, events, status changes (CONTRACT.md §7)
    stream.close_code                # 1000 after a terminal status, 1013 if dropped

No background task: :meth:`StreamClient.receive` reads from the socket only when called, so a
caller that stops calling stops reading (and the server drops it once it falls behind).
"""

from __future__ import annotations

import json
import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from ._client import ServiceUnavailable, error_from_json

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["StreamClient", "open_stream"]

_RECEIVE_BYTES = 65536


class StreamClient:
    """One open websocket of the stream. Use :func:`open_stream` to get one."""

    def __init__(self, stream: trio.abc.Stream, connection: WSConnection) -> None:
        self._stream = stream
        self._ws = connection
        self._pending: list[str] = []
        self._text: list[str] = []
        self.close_code: int | None = None
        """The close code once the server closed the stream (None while open)."""
        self.close_reason: str = ""

    async def receive(self) -> dict[str, Any] | None:
        """The next message, decoded; None once the server closed the stream."""
        text = await self.receive_text()
        if text is None:
            return None
        decoded: dict[str, Any] = json.loads(text)
        return decoded

    async def receive_text(self) -> str | None:
        """The next message as sent (JSON text); None once closed."""
        while not self._pending:
            if self.close_code is not None:
                return None
            data = await self._receive_some()
            if not data:
                self.close_code = self.close_code or 1006
                return None
            self._ws.receive_data(data)
            await self._handle_events()
        return self._pending.pop(0)

    async def _receive_some(self) -> bytes:
        try:
            return bytes(await self._stream.receive_some(_RECEIVE_BYTES))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""

    async def _handle_events(self) -> None:
        for event in self._ws.events():
            if isinstance(event, TextMessage):
                self._text.append(event.data)
                if event.message_finished:
                    self._pending.append("".join(self._text))
                    self._text.clear()
            elif isinstance(event, Message):
                pass  # the stream sends text only
            elif isinstance(event, Ping):
                await self._send(self._ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self.close_code, self.close_reason = event.code, event.reason or ""
                await self._send(self._ws.send(event.response()))

    async def _send(self, data: bytes) -> None:
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def aclose(self) -> None:
        """Close the websocket (politely if it is still open) and the socket."""
        if self.close_code is None:
            self.close_code = 1000
            with trio.move_on_after(1):
                await self._send(self._ws.send(CloseConnection(code=1000)))
        await self._stream.aclose()


async def _handshake(stream: trio.abc.Stream, host: str, target: str, origin: str | None) -> WSConnection:
    connection = WSConnection(ConnectionType.CLIENT)
    extra = [(b"origin", origin.encode())] if origin else []
    await stream.send_all(connection.send(Request(host=host, target=target, extra_headers=extra)))
    status = 0
    body = bytearray()
    while True:
        data = await stream.receive_some(_RECEIVE_BYTES)
        if not data:
            break
        connection.receive_data(bytes(data))
        for event in connection.events():
            if isinstance(event, AcceptConnection):
                return connection
            if isinstance(event, RejectConnection):
                status = event.status_code
                if not event.has_body:
                    break
            elif isinstance(event, RejectData):
                body += event.data
                if event.body_finished:
                    break
        else:
            continue
        break
    try:
        error = json.loads(body)["error"]
        message = str(error["message"])
    except (ValueError, KeyError, TypeError):
        message = body.decode(errors="replace") or "no reason given"
    code = {404: -32001, 403: -32600}.get(status, -32603)
    raise error_from_json({"code": code, "message": f"stream {target} refused (HTTP {status}): {message}"})


@asynccontextmanager
async def open_stream(
    socket_path: str | os.PathLike[str] | Path,
    target: str,
    *,
    host: str = "localhost",
    origin: str | None = None,
) -> AsyncIterator[StreamClient]:
    """Open the websocket ``target`` (e.g. ``/api/plays/{sid}/spans``) on a Unix socket.

    Raises :class:`~hero_logic.rpc.ServiceUnavailable` if nothing listens there, and the
    matching :class:`~hero_logic.rpc.RpcError` (e.g. RemoteNotFound) if the handshake is
    refused.
    """
    try:
        stream = await trio.open_unix_socket(os.fspath(socket_path))
    except OSError as exc:
        raise ServiceUnavailable(Path(socket_path), exc.strerror or str(exc)) from exc
    try:
        connection = await _handshake(stream, host, target, origin)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    client = StreamClient(stream, connection)
    try:
        # Frames that came in the same read as the handshake's answer (a short stream — an
        # ended play's snapshot, status and close — often does) wait in the connection.
        await client._handle_events()
        yield client
    finally:
        with trio.CancelScope(shield=True):
            await client.aclose()
