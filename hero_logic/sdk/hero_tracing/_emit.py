"""The flow process's one connection to its play's span socket.

Events go out with one ``sendall`` each, under a lock so threads never interleave bytes of
two lines; the lines of replayed steps wait (in order) for the next event to go out with it.
The connection opens lazily. If it cannot be opened or breaks, the writer goes dead: later
events are dropped silently (one note on stderr) instead of raising into user code, and
requests fail with :class:`ServiceLost`.

Requests carry an integer ``id``; the service answers each with a ``response`` line on the
same connection. One thread at a time reads answers and files them by id, so requests from
several threads may be in flight at once and may be answered in any order.
"""

from __future__ import annotations

import _socket
import _thread
import itertools
import sys

from ._wire import decode_response, encode_event

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["RequestError", "ServiceLost", "Writer"]


_SEND_SOON_BYTES = 64 * 1024


class RequestError(Exception):
    """The service answered a request with an error."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method = method
        self.code = code
        self.message = message


class ServiceLost(Exception):
    """The span socket is gone, so a request cannot be answered."""


class Writer:
    """Sends event lines and requests over the play's span socket."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.dead = False
        self._sock: _socket.socket | None = None
        self._lock = _thread.allocate_lock()
        self._request_ids = itertools.count(1)
        self._buffer = b""
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._answers: dict[int, tuple[Any, tuple[int, str] | None]] = {}
        self._reading = False
        self._answers_changed: Any = None  # a threading.Condition, made on the first request
        self._why_dead = ""

    def _connect(self) -> _socket.socket | None:
        # The C module: ``socket`` would cost a cold flow process enum, selectors and more.
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            self._die(f"cannot connect to the span socket {self.path!r}: {exc}")
            return None
        self._sock = sock
        return sock

    def _die(self, why: str) -> None:
        if not self.dead:
            self.dead = True
            self._why_dead = why
            try:
                sys.stderr.write(f"hero_tracing: {why}; later span events are dropped\n")
            except (OSError, ValueError):
                pass

    def send(self, data: bytes) -> None:
        """Send whole lines (after any queued by :meth:`send_soon`); drop them silently once
        the connection is dead."""
        if self.dead:
            return
        with self._lock:
            if self._pending:
                self._pending.append(data)
                data = b"".join(self._pending)
                self._pending.clear()
                self._pending_bytes = 0
            sock = self._sock or self._connect()
            if sock is None:
                return
            try:
                sock.sendall(data)
            except OSError as exc:
                self._die(f"the span socket broke: {exc}")

    def send_soon(self, data: bytes) -> None:
        """Queue whole lines to go out with the next :meth:`send` (or request, or at close, or
        once 64 KiB wait): a replay reports each cached step without a system call each."""
        if self.dead:
            return
        with self._lock:
            self._pending.append(data)
            self._pending_bytes += len(data)
            if self._pending_bytes < _SEND_SOON_BYTES:
                return
        self.send(b"")

    def request(self, method: str, params: dict[str, Any]) -> Any:
        """Send a request and wait for its answer; raise RequestError or ServiceLost."""
        if self._answers_changed is None:
            import threading  # only flows that invoke others pay for it

            with self._lock:
                if self._answers_changed is None:
                    self._answers_changed = threading.Condition(_thread.allocate_lock())
        request_id = next(self._request_ids)
        self.send(
            encode_event({"type": "request", "id": request_id, "method": method, "params": params})
        )
        if self.dead:
            msg = f"{method}: {self._why_dead}"
            raise ServiceLost(msg)
        result, error = self._wait_answer(request_id, method)
        if error is not None:
            raise RequestError(method, *error)
        return result

    def _wait_answer(self, request_id: int, method: str) -> tuple[Any, tuple[int, str] | None]:
        changed = self._answers_changed
        while True:
            with changed:
                while request_id not in self._answers and self._reading:
                    changed.wait()
                if request_id in self._answers:
                    return self._answers.pop(request_id)
                sock = self._sock
                if sock is None or self.dead:
                    msg = f"{method}: {self._why_dead or 'the span socket is closed'}"
                    raise ServiceLost(msg)
                self._reading = True
            line = b""
            try:
                line = self._readline(sock)
            except (OSError, ValueError):
                pass
            with changed:
                self._reading = False
                if line:
                    try:
                        answer_id, result, error = decode_response(line)
                    except ValueError as exc:
                        self._die(f"the service sent an unreadable answer: {exc}")
                    else:
                        self._answers[answer_id] = (result, error)
                else:
                    self._die("the service closed the span socket")
                changed.notify_all()

    def _readline(self, sock: _socket.socket) -> bytes:
        """The next line the service sent (with its newline), or b"" once it hung up."""
        while b"\n" not in self._buffer:
            chunk = sock.recv(65536)
            if not chunk:
                return b""
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line + b"\n"

    def close(self) -> None:
        """Close the connection (once what waits in the queue is sent); later events are dropped."""
        if self._pending:
            self.send(b"")
        with self._lock:
            sock, self._sock = self._sock, None
            self.dead = True
            self._why_dead = self._why_dead or "the span socket was closed"
        if sock is not None:
            try:
                sock.shutdown(_socket.SHUT_WR)
            except OSError:
                pass
            sock.close()
