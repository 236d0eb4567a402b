"""How a memoized step ends: its output checked, sent and stored, or its failure recorded.

:class:`StepEnding` holds the :class:`~hero_tracing._play.Runtime` methods that close a step's
span (``_fail``, ``_returned``, ``_finish``); ``Runtime`` inherits them.
"""

from __future__ import annotations

import time

from . import _wire
from ._emit import RequestError, ServiceLost
from ._fields import output_problem
from ._jsoncodec import encode_basestring as _quote
from ._jsoncodec import load_own as _load_own
from ._jsoncodec import loads as _loads
from ._spans import Failed, Nondeterministic, describe, outcome

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ._emit import Writer
    from ._flow import FlowInfo
    from ._spans import Span
    from ._strict import Strict

__all__ = ["StepEnding"]

_encode_event = _wire.encode_event
_to_bytes = _wire._to_bytes
_time_ns = time.time_ns

_strict_json = _wire.strict_json
_MAX_TRACE = _wire.MAX_TRACE_BYTES
_MAX_OUTPUT_BYTES = _wire.MAX_LINE_BYTES - 1024
_AS_IS = frozenset({int, float, bool, type(None)})
"""Output types JSON gives back unchanged: a step returning one skips the round trip."""


def _now_ms() -> int:
    return _time_ns() // 1_000_000


class StepEnding:
    """The end of a memoized call, for :class:`~hero_tracing._play.Runtime` (which sets
    ``writer`` and ``strict`` and defines ``end_span``)."""

    writer: Writer
    strict: Strict | None

    if TYPE_CHECKING:

        def end_span(self, span_id: str, status: str, error: str = "") -> None: ...

    def _fail(
        self, span: Span, key: str, exc: BaseException, checkpoint: bool
    ) -> BaseException | None:
        """End a step's span for ``exc`` and record it when it is the step's failure.

        Returns what the caller must raise instead of ``exc`` (the StepFailed a replay would
        raise, when ``exc`` cannot be rebuilt as its own class), or None to re-raise ``exc``.
        A pause, and a BaseException that is not an Exception (cancellation, exit, a
        nondeterministic re-run), is no outcome of the step: it is not recorded, and the step
        runs again next time.
        """
        ended = outcome(exc)
        if ended is None:
            return None  # pausing: the span stays open
        from ._failure import interrupted_by_pause, rebuild, record

        if not isinstance(exc, Exception) or interrupted_by_pause(exc):
            self.end_span(span.span_id, *ended)
            return None

        text = describe(exc) if isinstance(exc, Failed) else ended[1]
        event = {
            "type": "step_failed",
            "span_id": span.span_id,
            "step_key": key,
            "shape_key": span.shape,
            **record(exc, text),
        }
        try:
            line = _encode_event(event)
        except ValueError:  # escaping blew it past the line cap: keep the type and message
            event.pop("args", None)
            event["traceback"] = _wire.truncate_text(text, 4096)
            line = _encode_event(event)
        self.writer.send(line)
        self.end_span(span.span_id, *ended)
        if checkpoint:
            try:  # the service answers once the failure, sent before, is stored
                self.writer.request("checkpoint", {"step_key": key})
            except (RequestError, ServiceLost):
                pass  # the step's own exception is what the caller must see
        if span.kind == "flow_root":
            return None  # nothing in the flow can catch it: keep its own traceback
        # Whatever a replay would raise, from the record as the service stores it.
        again = rebuild(_wire.failure_entry(_loads(line)))
        return None if type(again) is type(exc) else again

    def _returned(self) -> None:
        """The entry flow returned: a run that did not reach all of its record departs."""
        departure = self.strict.finish("returned") if self.strict is not None else ""
        if departure:
            raise Nondeterministic(departure)

    def _finish(self, info: FlowInfo | None, name: str, span: Span, key: str, result: Any) -> Any:
        """Check and send the step's output, then close its span ``ok``; raise Failed if unfit.

        Returns the output as stored, which is what every replay returns: the value after a
        JSON round trip (a tuple comes back a list, an int key a string).
        """
        problem = (
            output_problem(name, info.outputs, result) if info is not None and info.outputs else None
        )
        text, data = "", b""
        if problem is None:
            try:
                text = _strict_json(result)
                data = text.encode()
            except UnicodeEncodeError:  # a lone surrogate: stored, so also returned, as U+FFFD
                data = _to_bytes(text)
                text = data.decode()
            except (TypeError, ValueError, RecursionError) as exc:
                problem = (
                    f"flow {name!r} returned a value that is not JSON ({exc}): return dicts, lists, "
                    "strings, numbers, booleans or None"
                )
            if data.count(b"[") + data.count(b"{") > _wire.MAX_DEPTH and _wire.too_deep(result):
                problem = (
                    f"flow {name!r} returned JSON nested deeper than {_wire.MAX_DEPTH} levels: "
                    "flatten it"
                )
            elif len(data) > _MAX_OUTPUT_BYTES:
                problem = (
                    f"flow {name!r} returned {len(data)} bytes of JSON; a step's output must stay "
                    f"under {_MAX_OUTPUT_BYTES} bytes: return a reference (a path, an id) instead"
                )
        sid = span.span_id
        if problem is not None:
            failed = Failed(problem)
            self._fail(span, key, failed, info is not None and info.checkpoint)
            raise failed
        # The trace shows at most MAX_TRACE_BYTES of an output: a bigger one also goes as a cut copy.
        preview = b"" if len(data) <= _MAX_TRACE else b',"output_preview":' + _to_bytes(
            _quote(_wire.truncate_text(text, _MAX_TRACE))
        )
        self.writer.send(
            b'{"type":"step_output","span_id":"%s","step_key":"%s","shape_key":"%s","output":%s%s}\n'
            b'{"type":"span_end","span_id":"%s","end_ms":%d,"status":"ok"}\n'
            % (sid.encode(), key.encode(), span.shape.encode(), data, preview, sid.encode(), _now_ms())
        )
        if info is not None and info.checkpoint:
            # The service answers a request only after the lines before it are stored.
            self.writer.request("checkpoint", {"step_key": key})
        return result if result.__class__ in _AS_IS else _load_own(text)
