"""Span handles, the current-span context variable, and the two exceptions flows meet.

Cheap to import: nothing here touches a socket or JSON. A :class:`Span` forwards its tags and
logs to the play's runtime, which encodes and sends them.
"""

from __future__ import annotations

import sys
from contextvars import ContextVar

from . import _state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType
    from typing import Any

    from ._play import Runtime

__all__ = [
    "CURRENT",
    "NULL_SPAN",
    "AwaitingResume",
    "Failed",
    "Nondeterministic",
    "NullSpan",
    "Span",
    "SpanBlock",
    "StepFailed",
    "StepTimeout",
    "current_span",
    "outcome",
]


class Failed(Exception):
    """Fail the current span and the flow with a clean reason, no traceback.

    Raise ``flow.Failed("the invoice total is negative")`` from a flow or step: every span it
    passes through ends ``failed`` with that reason, and the play fails with it unless some
    caller catches it.
    """

    def __init__(self, reason: object) -> None:
        super().__init__(reason)
        self.reason = str(reason)

    def __str__(self) -> str:
        return self.reason


class StepFailed(Failed):
    """A step's recorded exception, where its own class cannot be raised again.

    A step that raises is recorded as failed, and every later run of the play raises the same
    exception again without running the step: the same class when it can be rebuilt (found by
    its module and name, constructed from its JSON ``args`` or its message, with the same
    message), otherwise this, on the first run as on every replay. It carries the original
    ``type_name`` (module-qualified), ``message`` and ``traceback`` (text; on a replay, the
    first run's). Catch it, or raise exceptions that can be rebuilt: a class defined at the top
    of a module whose ``args`` are JSON and rebuild it.
    """

    def __init__(self, type_name: str, message: str, traceback: str = "") -> None:
        super().__init__(f"{type_name}: {message}")
        self.args = (type_name, message)
        self.type_name = type_name
        self.message = message
        self.traceback = traceback


class StepTimeout(Failed):
    """A step ran past its ``@flow(timeout=...)``: the service stopped it.

    The attempt's span ends ``timed_out`` and counts as a failed attempt (retried under the
    step's ``retries`` like any other failure). The service records it, so every later run of
    the play sees the same timeout.
    """


class AwaitingResume(BaseException):
    """The play waits for an answer: unwind everything and exit with status 75.

    A ``BaseException`` so that ``except Exception`` in user code cannot swallow it. Spans it
    passes through stay open; the service closes them when the play resumes or ends.
    """

    def __init__(self, resume_id: str, name: str) -> None:
        super().__init__(f"awaiting an answer to pause {name!r} ({resume_id})")
        self.resume_id = resume_id
        self.name = name


class Nondeterministic(BaseException):
    """This re-run departed from the play's recorded run: the play fails, naming the difference.

    Raised at the call (or pause) that differs from the recorded one at its position, or when
    the run ends without reaching a step or an answer the recorded run has. A
    ``BaseException``, so ``except Exception`` in user code cannot swallow it; once raised,
    every later call of the run raises it again. See ``@flow(strict_replay=...)``.
    """


def _is_pause(exc: BaseException) -> bool:
    if isinstance(exc, AwaitingResume):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(_is_pause(inner) for inner in exc.exceptions)
    return False


def outcome(exc: BaseException) -> tuple[str, str] | None:
    """``(status, error)`` for a span an exception leaves; ``None`` when the play is pausing.

    :class:`Failed` gives its reason, other exceptions ``"Type: message"`` and the traceback,
    and a ``BaseException`` that is not an ``Exception`` (cancellation, interrupt, exit)
    gives ``cancelled``.
    """
    if isinstance(exc, Failed):
        return ("timed_out" if isinstance(exc, StepTimeout) else "failed"), exc.reason
    if isinstance(exc, Nondeterministic):
        return "failed", str(exc)
    if _is_pause(exc):
        return None
    if isinstance(exc, Exception | BaseExceptionGroup):
        return "failed", describe(exc)
    message = str(exc)
    return "cancelled", f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def describe(exc: BaseException) -> str:
    """``"Type: message"``, a newline, then the formatted traceback (clipped to 64 KiB)."""
    import traceback  # only on the failure path: it is slow to import

    head = f"{type(exc).__name__}: {exc}"
    report = traceback.TracebackException.from_exception(exc)
    sdk_dir = __file__.rpartition("/")[0] + "/"
    own = [frame for frame in report.stack if not frame.filename.startswith(sdk_dir)]
    if own:  # the SDK's own frames (the step wrapper) say nothing about the flow's error
        report.stack = traceback.StackSummary.from_list(own)
    text = head + "\n" + "".join(report.format())
    limit = 64 * 1024
    if len(text) > limit // 4:
        raw = text.encode("utf-8", "replace")
        if len(raw) > limit:
            keep_head, keep_tail = raw[: 4 * 1024], raw[-(limit - 5 * 1024) :]
            cut = len(raw) - len(keep_head) - len(keep_tail)
            text = (
                keep_head.decode("utf-8", "ignore")
                + f"\n… [{cut} bytes of traceback cut] …\n"
                + keep_tail.decode("utf-8", "ignore")
            )
    return text


class Span:
    """An open span of the running play: tag it, log to it.

    ``path``, ``counts`` and ``shape`` identify the enclosing ``@flow`` call for replay keys
    (``shape``: its version-free shape key): a ``flow.step`` block shares them with the call
    it sits in, so only ``@flow`` calls deepen the path.
    """

    __slots__ = ("counts", "kind", "name", "path", "runtime", "shape", "span_id")

    def __init__(
        self,
        runtime: Runtime,
        span_id: str,
        name: str,
        kind: str,
        path: str,
        counts: dict[object, Any],
        shape: str = "",
    ) -> None:
        self.runtime = runtime
        self.span_id = span_id
        self.name = name
        self.kind = kind
        self.path = path
        self.counts = counts
        self.shape = shape

    def tag(self, **tags: Any) -> None:
        """Merge ``tags`` (JSON values; anything else is sent as its repr) into the span."""
        if tags:
            self.runtime.send({"type": "span_tag", "span_id": self.span_id, "tags": tags})

    def log(self, text: object) -> None:
        """Append one log entry (truncated to 64 KiB) to the span."""
        self.runtime.send_log(self.span_id, str(text))

    def __repr__(self) -> str:
        return f"<Span {self.kind} {self.name!r} {self.span_id}>"


class NullSpan:
    """What ``flow.current_span`` is when no span is open: every method does nothing."""

    __slots__ = ()
    span_id = ""
    name = ""
    kind = ""

    def tag(self, **tags: Any) -> None:
        """Do nothing (no span is open)."""

    def log(self, text: object) -> None:
        """Do nothing (no span is open)."""

    def __repr__(self) -> str:
        return "<NullSpan>"


NULL_SPAN = NullSpan()

CURRENT: ContextVar[Span | None] = ContextVar("hero_tracing_current_span", default=None)
"""The innermost open span of this task or thread (``None``: the play's root span, if any)."""


def current_span() -> Span | NullSpan:
    """The innermost open span here, else the play's root span, else the null span."""
    runtime = _state.get()
    if runtime is None:
        return NULL_SPAN
    return CURRENT.get() or runtime.root or NULL_SPAN


class SpanBlock:
    """``with flow.step(...)`` / ``with flow.span(...)``: a span around a block (not memoized)."""

    __slots__ = ("_kind", "_name", "_span", "_tags", "_token")

    def __init__(self, name: str, kind: str, tags: dict[str, Any]) -> None:
        self._name = name
        self._kind = kind
        self._tags = tags
        self._span: Span | None = None

    def __enter__(self) -> Span | NullSpan:
        return self._enter(2)

    def _enter(self, depth: int) -> Span | NullSpan:
        runtime = _state.get()
        if runtime is None:
            return NULL_SPAN
        caller = sys._getframe(depth)
        span = runtime.open_span(
            self._name, self._kind, self._tags, caller.f_code.co_filename, caller.f_lineno
        )
        self._span = span
        self._token = CURRENT.set(span)
        return span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        span = self._span
        if span is None:
            return
        self._span = None
        CURRENT.reset(self._token)
        if exc is None:
            span.runtime.end_span(span.span_id, "ok")
        else:
            ended = outcome(exc)
            if ended is not None:
                span.runtime.end_span(span.span_id, *ended)

    async def __aenter__(self) -> Span | NullSpan:
        return self._enter(2)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)
