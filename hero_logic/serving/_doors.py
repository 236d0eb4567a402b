"""The doors of the service: hypercorn's HTTP/1.1 and websocket protocol behind our own
accept loop, so that no one client can stop, starve or lock out the others.

hero_logic serves its ASGI apps (the RPC socket, the admin) with hypercorn's connection class
and protocol stack, but runs the listeners itself instead of ``hypercorn.trio.serve``, for
three things an outside attack broke:

1. **A protocol error ends its connection, never the service.** hypercorn 0.18 lets some h11
   errors escape a connection's task: a websocket upgrade followed by more bytes in the same
   write raises ``h11.LocalProtocolError`` from ``H11Protocol._send_h11_event`` (its
   ``H11WSConnection`` has no ``their_state``, so the error is not recognised as the
   client's; hypercorn issue #225). ``serve`` runs every connection in the server's nursery,
   so that one request ended the process. Here each connection (its whole ``TCPServer.run``,
   which owns every task of that connection) runs inside :meth:`Door.handle`, which logs the
   error, closes that connection and goes on.
2. **A bounded number of connections per listener, refused fairly.** A door serves at most
   ``max_connections`` at once. Over the cap, a newcomer displaces the connection that has
   waited on its client the longest: one idle between requests, still sending its headers or
   its body, or not reading what it is sent (a write stuck for :data:`WRITE_STALL_S`). A slow
   client thus cannot keep a fast one out. Connections the server is working for (a running
   call, an open websocket that reads) are never displaced; only when all of them are is the
   newcomer refused, with a 503 that names the cap and its setting.
3. **Deadlines.** A request's headers must be complete within ``header_timeout_s`` of the
   connection opening or of its previous answer: that is exactly when hypercorn's keep-alive
   timer runs, so the timer is set to it (an idle keep-alive connection is closed after as
   long). The body's deadline is kept by the apps, which read it (RpcApp and the admin answer
   408). hypercorn's own ``read_timeout`` is not used: it bounds each read, not the request,
   so a byte a second beats it, and it would also end a quiet websocket or a long
   ``play_wait`` whose client has nothing more to send.

What a client can cause at will (a contained error, a displaced connection) is logged once,
then at most once a minute with a count of the others (:class:`_Throttled`), so that a flood
of bad requests cannot flood the log. An h11 error that reaches the app's ``send`` on such a
connection (hypercorn 0.18 lets the app answer a handshake it has already refused) is one
such warning too, not a traceback at ERROR.

The connection class is hypercorn's own ``TCPServer``, watched through the events it already
sends itself (``Updated``: idle or not; ``RawData``: a write, timed) and, for HTTP/1.1, h11's
``their_state`` (``SEND_BODY`` while a body is still coming). hypercorn is pinned (0.18.0) in pyproject.toml;
a test of each behaviour above fails if a new version changes what this relies on.
"""

from __future__ import annotations

import functools
import logging
import math
import resource
from typing import TYPE_CHECKING, Any

import attrs
import h11
import trio
from hypercorn.events import RawData, Updated
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import ShutdownError, raise_shutdown, repr_socket_addr, wrap_app

from hero_logic.kernel import dumps

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from hypercorn.config import Config as HypercornConfig

    from hero_logic.kernel import Config

__all__ = ["Door", "ServingLimits", "serve_doors"]

logger = logging.getLogger("hero_logic.rpc.server")

REFUSAL_LINGER_S = 1.0
"""How long a refused connection is drained after its 503, so that the client reads it."""

MAX_REFUSING = 16
"""Refusals (503) under way at once per listener; past them a newcomer is closed unanswered."""

FILES_IN_RESERVE = 256
"""Open files the service needs besides its connections (store, plays, sockets, pipes)."""

WRITE_STALL_S = 1.0
"""A write that has waited this long for the client to read makes its connection displaceable."""

NOTE_EVERY_S = 60.0
"""How often, at most, a warning a client can cause is logged again (the rest go to debug)."""


@attrs.frozen
class ServingLimits:
    """The bounds of every listener and request (docs/settings.md has the settings)."""

    max_connections: int = 256
    """Connections one listener serves at once (``HERO_LOGIC_MAX_CONNECTIONS``)."""
    header_timeout_s: float = 10.0
    """Time to send a request's headers, from the connection's opening or previous answer."""
    body_timeout_s: float = 15.0
    """Time to send a request's whole body, once its headers are in."""
    max_batch_length: int = 100
    """Requests in one JSON-RPC batch."""
    max_response_bytes: int = 16 * 1024 * 1024
    """Bound of one batch's answers: once passed, the rest of the batch is not run."""

    @classmethod
    def from_config(cls, config: Config) -> ServingLimits:
        """The limits set by ``config``'s settings."""
        return cls(
            max_connections=config.max_connections,
            header_timeout_s=config.header_timeout_ms / 1000,
            body_timeout_s=config.body_timeout_ms / 1000,
            max_batch_length=config.max_batch_length,
            max_response_bytes=config.max_response_bytes,
        )


class _Connection(TCPServer):
    """hypercorn's connection, with what its door needs to know: is it waiting on its client,
    and since when."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.idle = True
        self.since = trio.current_time()
        self.writing_since: float | None = None

    async def protocol_send(self, event: Any) -> None:
        if isinstance(event, Updated):
            self.idle = event.idle
            self.since = trio.current_time()
        elif isinstance(event, RawData):
            self.writing_since = trio.current_time()
            try:
                await super().protocol_send(event)
            finally:
                self.writing_since = None
            return
        await super().protocol_send(event)

    def owed_since(self, now: float) -> float | None:
        """Since when the connection has waited on its client, or None while the server
        works for it. It waits before a request (idle, or headers still coming), while a
        body is still coming, and while a write has waited :data:`WRITE_STALL_S` or more for
        the client to read."""
        writing = self.writing_since
        if writing is not None and now - writing >= WRITE_STALL_S:
            return writing
        if self.idle:
            return self.since
        protocol = getattr(getattr(self, "protocol", None), "protocol", None)
        if getattr(getattr(protocol, "connection", None), "their_state", None) is h11.SEND_BODY:
            return self.since
        return None

    async def _initiate_server_close(self) -> None:
        """The keep-alive timer fired (see the module docstring, 3.): an idle connection is
        closed as hypercorn does, one in the middle of its headers gets a 408 first."""
        partial = self._partial_request()
        if partial:
            ms = round(self.config.keep_alive_timeout * 1000)
            message = (
                f"invalid request: the request's headers did not arrive within {ms} ms (got "
                f"{partial} bytes of them): send the whole request at once, or raise the limit "
                "(HERO_LOGIC_HEADER_TIMEOUT_MS / --header-timeout)"
            )
            with trio.move_on_after(REFUSAL_LINGER_S):
                try:
                    await self.stream.send_all(_raw_answer(408, "Request Timeout", -32600, message))
                except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError, OSError):
                    pass
        await super()._initiate_server_close()

    def _partial_request(self) -> int:
        """How many bytes of a request not yet complete h11 holds (0 between requests)."""
        protocol = getattr(getattr(self, "protocol", None), "protocol", None)
        connection = getattr(protocol, "connection", None)
        if not isinstance(connection, h11.Connection) or connection.their_state is not h11.IDLE:
            return 0
        return len(connection.trailing_data[0])

    def cut(self) -> None:
        """Close the socket now: the connection's blocked read or write wakes with an error
        that hypercorn handles as the client leaving."""
        socket = getattr(self.stream, "socket", None)
        if socket is not None:
            socket.close()


def _raw_answer(status: int, reason: str, code: int, message: str, *, retry_after: int = 0) -> bytes:
    """An HTTP answer written straight to the socket (no h11: the door speaks before it, or
    after it gave up), closing the connection; its JSON body reads as a JSON-RPC error."""
    body = dumps({"jsonrpc": "2.0", "id": None, "error": {"code": code, "status": status, "message": message}})
    retry = b"retry-after: %d\r\n" % retry_after if retry_after else b""
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s"
        b"connection: close\r\n\r\n%s" % (status, reason.encode(), len(body), retry, body)
    )


def _client_of(stream: trio.SocketStream) -> str:
    try:
        peer = stream.socket.getpeername()
    except OSError:
        return "a client"
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "a local client"


def _leaves(group: BaseExceptionGroup[Any]) -> list[BaseException]:
    return [
        leaf
        for exc in group.exceptions
        for leaf in (_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    ]


class _Throttled:
    """A log line a client can cause at will: the first at ``level``, then one per
    :data:`NOTE_EVERY_S` saying how many were held back (those go to debug)."""

    def __init__(self, level: int) -> None:
        self.level = level
        self._next = -math.inf
        self._held = 0

    def log(self, message: str, *args: Any, exc: BaseException | None = None) -> None:
        now = trio.current_time()
        if now < self._next:
            self._held += 1
            logger.debug(message, *args, exc_info=exc)
            return
        if self._held:
            message += " (and %d more like it since the last such line, logged at debug level)"
            args = (*args, self._held)
        self._held = 0
        self._next = now + NOTE_EVERY_S
        logger.log(self.level, message, *args)
        if exc is not None:
            logger.debug("the error in full", exc_info=exc)


class Door:
    """One listener's connections: the cap, who is displaced, the guard around each one."""

    def __init__(
        self, make_connection: Callable[[trio.SocketStream], _Connection], limits: ServingLimits, name: str
    ) -> None:
        self._make_connection = make_connection
        self.limits = limits
        self.name = name
        self._contained_note = _Throttled(logging.WARNING)
        self._displaced_note = _Throttled(logging.INFO)
        self.connections: dict[_Connection, None] = {}
        """The connections being served, oldest first."""
        self._refusing = 0
        self.displaced = 0
        self.refused = 0
        self.contained = 0
        """Connections closed after an error inside hypercorn (a malformed request)."""

    async def handle(self, stream: trio.SocketStream) -> None:
        """Serve one accepted connection (``trio.serve_listeners``' handler)."""
        if len(self.connections) >= self.limits.max_connections:
            victim = self._longest_owing()
            if victim is None:
                await self._refuse(stream)
                return
            self.connections.pop(victim)
            self.displaced += 1
            self._displaced_note.log(
                "%s: %d connections open, the limit (HERO_LOGIC_MAX_CONNECTIONS): closed one "
                "that had waited on its client the longest to serve a newcomer", self.name,
                self.limits.max_connections,
            )
            victim.cut()
        connection = self._make_connection(stream)
        self.connections[connection] = None
        try:
            await connection.run()
        except* Exception as group:
            self.contained += 1
            reasons = "; ".join(f"{type(e).__name__}: {e}" for e in _leaves(group))
            self._contained_note.log(
                "%s: closed one connection (from %s) on an error in hypercorn's protocol "
                "handling, most likely a malformed request; the service goes on: %s",
                self.name, _client_of(stream), reasons, exc=group,
            )
        finally:
            self.connections.pop(connection, None)
            connection.cut()

    def _longest_owing(self) -> _Connection | None:
        now = trio.current_time()
        owing = [(since, c) for c in self.connections if (since := c.owed_since(now)) is not None]
        return min(owing, key=lambda pair: pair[0])[1] if owing else None

    async def _refuse(self, stream: trio.SocketStream) -> None:
        """Answer 503 without reading the request, then close (at once past a second cap)."""
        self.refused += 1
        if self._refusing >= MAX_REFUSING:
            stream.socket.close()
            return
        self._refusing += 1
        cap = self.limits.max_connections
        message = (
            f"{self.name} is serving {cap} connections, its limit, and every one of them is "
            "busy being answered: retry in a moment, close connections you keep open, or "
            "raise the limit (HERO_LOGIC_MAX_CONNECTIONS / --max-connections)"
        )
        try:
            with trio.move_on_after(REFUSAL_LINGER_S):
                await stream.send_all(_raw_answer(503, "Service Unavailable", -32603, message, retry_after=1))
                await stream.send_eof()
                # Read what the client sent until it closes: closing with unread bytes would
                # reset the connection and could lose the answer on its way.
                while await stream.receive_some(65536):
                    pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            self._refusing -= 1
            stream.socket.close()


def _check_open_file_limit(listeners: int, limits: ServingLimits, label: str) -> None:
    """Warn when full listeners could exhaust the process's open-file limit (then accept()
    fails for everyone: the very lockout the cap is there to prevent)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = listeners * (limits.max_connections + MAX_REFUSING) + FILES_IN_RESERVE
    if soft != resource.RLIM_INFINITY and soft < need:
        logger.warning(
            "%s: %d listener(s) of up to %d connections each could use %d open files, and the "
            "open-file limit is %d: raise it (ulimit -n %d, or LimitNOFILE= for systemd) or "
            "lower HERO_LOGIC_MAX_CONNECTIONS / --max-connections",
            label, listeners, limits.max_connections, need, soft, need,
        )


def _quiet_protocol_errors(
    app: Callable[..., Awaitable[None]], label: str
) -> Callable[..., Awaitable[None]]:
    """``app``, except that an h11 error raised by hypercorn from the app's ``send`` (the
    connection's HTTP state was broken by a malformed request) is one throttled warning
    rather than hypercorn's "Error in ASGI Framework" traceback at ERROR."""
    note = _Throttled(logging.WARNING)

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        try:
            await app(scope, receive, send)
        except* h11.LocalProtocolError as group:
            reasons = "; ".join(str(e) for e in _leaves(group))
            note.log(
                "%s: a %s answer could not be sent, the connection's HTTP state being broken "
                "(most likely a malformed request; it is closed): %s", label,
                scope.get("type", "?"), reasons, exc=group,
            )

    return guarded


async def serve_doors(
    app: Callable[..., Awaitable[None]],
    config: HypercornConfig,
    limits: ServingLimits,
    *,
    label: str,
    shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on ``config.bind`` until cancelled or ``shutdown_trigger`` returns.

    What ``hypercorn.trio.serve`` does for a plain (no TLS, no QUIC) server, with a
    :class:`Door` per listener (see the module docstring). ``started`` with the bound
    addresses (``["http://unix:/…/rpc.sock", "http://127.0.0.1:9820"]``).
    """
    config.keep_alive_timeout = limits.header_timeout_s
    wrapped = wrap_app(_quiet_protocol_errors(app, label), config.wsgi_max_body_size, "asgi")
    state: dict[str, Any] = {}
    lifespan = Lifespan(wrapped, config, state)
    context = WorkerContext(None)
    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as connections:
            listeners: list[tuple[trio.SocketListener, Door]] = []
            binds = []
            for sock in config.create_sockets().insecure_sockets:
                sock.listen(config.backlog)
                bind = f"http://{repr_socket_addr(sock.family, sock.getsockname())}"
                binds.append(bind)
                make = functools.partial(_Connection, wrapped, config, context, ConnectionState(state.copy()))
                door = Door(make, limits, f"{label} on {bind.removeprefix('http://')}")
                listeners.append((trio.SocketListener(trio.socket.from_stdlib_socket(sock)), door))
            _check_open_file_limit(len(listeners), limits, label)
            task_status.started(binds)
            try:
                async with trio.open_nursery() as nursery:
                    if shutdown_trigger is not None:
                        nursery.start_soon(raise_shutdown, shutdown_trigger)
                    for listener, door in listeners:
                        nursery.start_soon(
                            functools.partial(
                                trio.serve_listeners, door.handle, [listener], handler_nursery=connections
                            )
                        )
            except BaseExceptionGroup as group:
                _, others = group.split(ShutdownError)
                if others is not None:
                    raise others from None
            finally:
                await context.terminated.set()
                connections.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()
