"""Cutting off a websocket client that stopped reading, so that it cannot hold the server up.

hypercorn 0.18 (trio) writes each frame inside a *shielded* ``send_all``. A client that stops
reading fills its socket, and the handler's ``send`` then waits forever — through a service
shutdown too: hypercorn waits for the handler, and the shield ignores the cancellation. The
event bus already protects the *play* (a subscriber that falls behind is dropped); this guard
protects the *server*: it closes the connection's socket when one message has waited longer
than ``stuck_after`` seconds, or when the handler is cancelled (a shutdown, the other side
leaving) while a message still waits. Closing the socket wakes the blocked write with an error
that hypercorn handles as a disconnect.

The socket is found through hypercorn's own objects (``send.__self__`` → its protocol → its
``TCPServer.stream``); where that chain is missing (another server), the guard only times.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

__all__ = ["STUCK_SEND_S", "SendGuard"]

logger = logging.getLogger("hero_logic.rpc.stream")

STUCK_SEND_S = 30.0
"""How long one websocket message may wait for the client to make room before it is cut off."""


def _transport_socket(send: Any) -> Any:
    """The trio socket under hypercorn's ASGI ``send``, or None."""
    owner = getattr(send, "__self__", None)
    for _ in range(6):
        if owner is None:
            return None
        stream = getattr(owner, "stream", None)
        sock = getattr(stream, "socket", None) or getattr(getattr(stream, "transport_stream", None), "socket", None)
        if sock is not None and callable(getattr(sock, "close", None)):
            return sock
        owner = getattr(getattr(owner, "send", None), "__self__", None)
    return None


class SendGuard:
    """Wraps an ASGI websocket ``send``; run :meth:`watch` beside the handler in its nursery."""

    def __init__(
        self, send: Callable[[MutableMapping[str, Any]], Awaitable[None]], *, stuck_after: float = STUCK_SEND_S
    ) -> None:
        self._send = send
        self._socket = _transport_socket(send)
        self.stuck_after = stuck_after
        self._since: float | None = None
        self.cut = False
        """True once the guard closed the connection."""

    async def send(self, message: MutableMapping[str, Any]) -> None:
        """Send ``message``, timing how long it waits."""
        self._since = trio.current_time()
        try:
            await self._send(message)
        finally:
            self._since = None

    async def watch(self) -> None:
        """Cut the connection off when a send waits too long; on cancellation, if one waits."""
        try:
            while True:
                since = self._since
                if since is not None and trio.current_time() - since >= self.stuck_after:
                    self._cut(f"a message waited {self.stuck_after:.0f} s for the client to read")
                    return
                await trio.sleep(self.stuck_after / 4 if since is None else max(0.01, since + self.stuck_after - trio.current_time()))
        finally:
            if self._since is not None:
                self._cut("the handler stopped while a message still waited for the client")

    def _cut(self, why: str) -> None:
        if self.cut or self._socket is None:
            return
        self.cut = True
        logger.info("closing a websocket whose client stopped reading: %s", why)
        try:
            self._socket.close()  # wakes the blocked write with ClosedResourceError
        except OSError:
            pass
