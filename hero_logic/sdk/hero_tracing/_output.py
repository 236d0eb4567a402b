"""A flow's ``print``, ``sys.stderr`` writes and ``logging`` output, as span logs.

In a play's flow process the boot stub replaces ``sys.stdout`` and ``sys.stderr`` with line
writers: each complete line becomes a ``span_log`` of the span current in the writing thread
or task (the play's root span where none is open); stderr lines are prefixed ``[stderr]``.
``logging`` handlers that print (``basicConfig``, the last-resort handler) write to these
streams, so their records arrive the same way. Everything is still written to the process's
real stdout and stderr too (the service keeps their tail for a failed play's error).

Bounded: at most :data:`SPAN_LINES` lines and :data:`SPAN_BYTES` bytes per span, and
:data:`PLAY_LINES` lines and :data:`PLAY_BYTES` bytes per run; past a bound a single marker
line says the rest was dropped. A line longer than :data:`MAX_LINE` is cut.
"""

from __future__ import annotations

import _thread
import atexit
import io
import sys

from ._spans import current_span

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

    from ._play import Runtime

__all__ = ["PLAY_BYTES", "PLAY_LINES", "SPAN_BYTES", "SPAN_LINES", "capture"]

SPAN_LINES = 500
"""Below the 1,000 logs the service keeps per span, so the marker and `.log` lines still show."""
SPAN_BYTES = 512 * 1024
PLAY_LINES = 10000
PLAY_BYTES = 8 * 1024 * 1024
MAX_LINE = 16 * 1024


class _Budget:
    """What one run may still log, per span and in all (shared by stdout and stderr)."""

    def __init__(self) -> None:
        self.lines = 0
        self.bytes = 0
        self.spans: dict[str, list[int]] = {}
        self.cut_spans: set[str] = set()
        self.cut_play = False
        self.lock = _thread.allocate_lock()

    def admit(self, span_id: str, size: int) -> str:
        """``"ok"``, ``"mark"`` (send the truncation marker instead) or ``"drop"``."""
        with self.lock:
            if self.cut_play or span_id in self.cut_spans:
                return "drop"
            used = self.spans.setdefault(span_id, [0, 0])
            if self.lines >= PLAY_LINES or self.bytes + size > PLAY_BYTES:
                self.cut_play = True
                return "mark"
            if used[0] >= SPAN_LINES or used[1] + size > SPAN_BYTES:
                self.cut_spans.add(span_id)
                return "mark"
            used[0] += 1
            used[1] += size
            self.lines += 1
            self.bytes += size
            return "ok"


class SpanLogStream(io.TextIOBase):
    """A text stream whose lines become span logs (and still reach ``real``)."""

    def __init__(self, runtime: Runtime, real: TextIO | None, prefix: str, budget: _Budget) -> None:
        super().__init__()
        self._runtime = runtime
        self._real = real
        self._prefix = prefix
        self._budget = budget
        self._pending = ""
        self._lock = _thread.allocate_lock()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        if self._real is None:
            msg = "fileno"
            raise io.UnsupportedOperation(msg)
        return self._real.fileno()

    def write(self, text: Any) -> int:
        if not isinstance(text, str):
            msg = f"write() argument must be str, not {type(text).__name__}"
            raise TypeError(msg)
        if self._real is not None:
            try:
                self._real.write(text)
            except (OSError, ValueError):
                pass
        with self._lock:
            data = self._pending + text
            lines = data.split("\n")
            self._pending = lines.pop()
            if len(self._pending) > MAX_LINE:
                lines.append(self._pending)
                self._pending = ""
        for line in lines:
            self._emit(line)
        return len(text)

    def flush(self) -> None:
        if self._real is not None:
            try:
                self._real.flush()
            except (OSError, ValueError):
                pass

    def drain(self) -> None:
        """Send a last line that has no newline yet (at exit)."""
        with self._lock:
            rest, self._pending = self._pending, ""
        if rest:
            self._emit(rest)

    def _emit(self, line: str) -> None:
        if len(line) > MAX_LINE:
            line = line[:MAX_LINE] + f"… [line cut: {len(line) - MAX_LINE} more characters]"
        span = current_span()
        span_id = span.span_id
        if not span_id:
            return
        verdict = self._budget.admit(span_id, len(line))
        if verdict == "drop":
            return
        if verdict == "mark":
            line = "[output truncated: the rest of this span's print/stderr/logging output was dropped]"
            if self._budget.cut_play:
                line = "[output truncated: the rest of this play's print/stderr/logging output was dropped]"
            self._runtime.send_log(span_id, line)
            return
        self._runtime.send_log(span_id, self._prefix + line)


def capture(runtime: Runtime) -> None:
    """Route ``sys.stdout`` and ``sys.stderr`` to span logs for the rest of the process."""
    budget = _Budget()
    out = SpanLogStream(runtime, sys.stdout, "", budget)
    err = SpanLogStream(runtime, sys.stderr, "[stderr] ", budget)
    sys.stdout = out
    sys.stderr = err

    def drain() -> None:
        out.drain()
        err.drain()

    atexit.register(drain)  # before runtime.close (registered earlier, so run later)
