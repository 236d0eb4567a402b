"""The built-in span listener: one Unix stream socket per play, JSON lines in, answers out.

The socket is bound (mode 0600) before the flow process is spawned, so there is no race
between the flow's connect and the listen. Each line is decoded once; a malformed line or one
longer than :data:`MAX_LINE_BYTES` is counted, logged (a short preview, rate-limited) and
skipped without disturbing the play. All lines that arrive in one read are handed to the sink
together, so the store commits them in one group.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from typing import TYPE_CHECKING, Any

import attrs
import trio

from hero_logic.kernel import EventSink, ListenerStatistics
from hero_logic.sdk import decode_event

if TYPE_CHECKING:
    from pathlib import Path

    from hero_logic.kernel import Config

__all__ = ["MAX_CONNECTIONS", "MAX_LINE_BYTES", "MAX_REQUESTS_IN_FLIGHT", "ListenerHandle", "UnixSpanListener"]

log = logging.getLogger(__name__)

MAX_REQUESTS_IN_FLIGHT = 32
"""Requests of one connection answered at once; more wait, and the listener stops reading."""

MAX_CONNECTIONS = 16
"""Span socket connections one play may hold open at once; more are closed at once (each
may buffer up to a line of MAX_LINE_BYTES in the service, so this bounds a play's share)."""

MAX_LINE_BYTES = 1024 * 1024
"""Longest accepted event line; longer lines are skipped and counted as oversized."""

_READ_SIZE = 256 * 1024
_MAX_LOGGED_PROBLEMS = 5


@attrs.define(eq=False)
class ListenerHandle:
    """The live state of one play's listener, given to ``nursery.start``'s caller."""

    play_sid: str
    lines: int = 0
    malformed: int = 0
    oversized: int = 0
    connections: int = 0
    open_connections: int = 0
    refused: int = 0
    """Connections closed at once because MAX_CONNECTIONS were open."""
    _idle: trio.Event = attrs.field(factory=trio.Event)

    def statistics(self) -> ListenerStatistics:
        """Lines seen, malformed and oversized lines skipped, connections accepted."""
        return ListenerStatistics(
            lines=self.lines,
            malformed=self.malformed,
            oversized=self.oversized,
            connections=self.connections,
        )

    async def wait_idle(self) -> None:
        """Return once no connection is open (after at least one was, or immediately if none)."""
        if self.open_connections == 0:
            return
        await self._idle.wait()

    def _problem(self, what: str, preview: bytes) -> None:
        if self.malformed + self.oversized <= _MAX_LOGGED_PROBLEMS:
            log.warning("play %s: skipped %s span line: %r", self.play_sid, what, preview[:120])


def _bind(path: Path) -> socket.socket:
    """A listening Unix socket at ``path``, created with mode 0600."""
    if len(os.fsencode(path)) >= 107:
        msg = f"span socket path {str(path)!r} is too long for AF_UNIX (max 107 bytes): use a shorter PATH_ROOT"
        raise OSError(msg)
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(os.fspath(path))
    finally:
        os.umask(old)
    sock.listen(8)
    sock.setblocking(False)
    return sock


@attrs.define(eq=False)
class UnixSpanListener:
    """Serves per-play span sockets (entry point ``unix`` of ``hero_logic.span_listener``)."""

    @classmethod
    def from_config(cls, config: Config) -> UnixSpanListener:
        """The listener; it needs no settings."""
        return cls()

    async def serve(
        self,
        play_sid: str,
        socket_path: Path,
        sink: EventSink,
        *,
        task_status: trio.TaskStatus[ListenerHandle] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Bind, report the handle as started, then serve connections until cancelled."""
        handle = ListenerHandle(play_sid)
        raw = _bind(socket_path)
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(raw))
        try:
            async with trio.open_nursery() as nursery:
                task_status.started(handle)
                while True:
                    stream = await listener.accept()
                    if handle.open_connections >= MAX_CONNECTIONS:
                        handle.refused += 1
                        if handle.refused <= _MAX_LOGGED_PROBLEMS:
                            log.warning("play %s: span socket connection refused: %d open already", play_sid, MAX_CONNECTIONS)
                        await stream.aclose()
                        continue
                    handle.connections += 1
                    handle.open_connections += 1
                    nursery.start_soon(self._serve_connection, handle, stream, sink)
        finally:
            await listener.aclose()
            try:
                socket_path.unlink()  # noqa: ASYNC240 - one unlink of our own socket on teardown
            except FileNotFoundError:
                pass

    async def _answer(
        self,
        handle: ListenerHandle,
        stream: trio.SocketStream,
        lock: trio.Lock,
        sink: EventSink,
        event: dict[str, Any],
        in_flight: trio.Semaphore,
    ) -> None:
        try:
            answer = await sink.request(handle.play_sid, event)
            async with lock:
                try:
                    await stream.send_all(_encode_line(answer))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # the flow is gone; nobody is left to read the answer
        finally:
            in_flight.release()

    async def _serve_connection(
        self, handle: ListenerHandle, stream: trio.SocketStream, sink: EventSink
    ) -> None:
        buffer = b""
        skipping = False  # inside an oversized line, dropping bytes until its newline
        send_lock = trio.Lock()
        in_flight = trio.Semaphore(MAX_REQUESTS_IN_FLIGHT)
        try:
            async with stream, trio.open_nursery() as requests:
                while True:
                    chunk = await stream.receive_some(_READ_SIZE)
                    if not chunk:
                        requests.cancel_scope.cancel()  # the flow hung up: nobody reads answers
                        break
                    data = buffer + chunk if buffer else chunk
                    lines = data.split(b"\n")
                    buffer = lines.pop()
                    if skipping and lines:
                        lines.pop(0)  # the tail of the oversized line
                        skipping = False
                    if len(buffer) > MAX_LINE_BYTES:
                        if not skipping:
                            handle.oversized += 1
                            handle._problem("oversized", buffer)
                        buffer, skipping = b"", True
                    batch: list[tuple[bytes, dict[str, Any]]] = []
                    for line in lines:
                        if not line:
                            continue
                        handle.lines += 1
                        if len(line) > MAX_LINE_BYTES:
                            handle.oversized += 1
                            handle._problem("oversized", line)
                            continue
                        try:
                            event = decode_event(line)
                        except ValueError:
                            handle.malformed += 1
                            handle._problem("malformed", line)
                            continue
                        if event["type"] == "request":
                            if batch:
                                await sink.apply(handle.play_sid, batch)
                                batch = []
                            # Answered in its own task: a request may wait long (a child
                            # play), and the flow's other events must keep flowing meanwhile.
                            # At most MAX_REQUESTS_IN_FLIGHT at once: past that the listener
                            # stops reading, so a flow flooding requests only slows itself.
                            await in_flight.acquire()
                            requests.start_soon(self._answer, handle, stream, send_lock, sink, event, in_flight)
                        else:
                            batch.append((line, event))
                    if batch:
                        await sink.apply(handle.play_sid, batch)
                if buffer.strip() and not skipping:
                    handle.lines += 1
                    handle.malformed += 1  # a last line without its newline: the flow died mid-write
                    handle._problem("truncated", buffer)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the flow process died; what it sent completely was applied
        finally:
            handle.open_connections -= 1
            if handle.open_connections == 0:
                handle._idle.set()
                handle._idle = trio.Event()


def _encode_line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
