"""A websocket handshake by hand (wsproto over any trio stream), for tests of refusals."""

from __future__ import annotations

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, RejectConnection, RejectData, Request


async def raw_handshake(
    stream: trio.abc.Stream, target: str, *, host: str = "localhost", origin: str | None = None
) -> tuple[int, bytes]:
    """Open a websocket by hand: (101, b"") once accepted, else the refusal's status and body.

    After an acceptance nothing more is read: the caller owns a subscriber that never reads.
    """
    connection = WSConnection(ConnectionType.CLIENT)
    extra = [(b"origin", origin.encode())] if origin else []
    await stream.send_all(connection.send(Request(host=host, target=target, extra_headers=extra)))
    status, body = 0, bytearray()
    with trio.fail_after(10):
        while True:
            data = await stream.receive_some(4096)
            if not data:
                return status, bytes(body)
            connection.receive_data(data)
            for event in connection.events():
                if isinstance(event, AcceptConnection):
                    return 101, b""
                if isinstance(event, RejectConnection):
                    status = event.status_code
                    if not event.has_body:
                        return status, b""
                elif isinstance(event, RejectData):
                    body += event.data
                    if event.body_finished:
                        return status, bytes(body)
