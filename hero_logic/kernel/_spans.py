"""Folding a play's wire events into its span tree (pure functions, no I/O).

The store keeps the events a flow streamed, as they arrived; a span record is what those
events add up to. ``span_start`` opens a span (a repeat with the same id updates it but keeps the earliest
``start_ms``, so a span a pause left open spans its whole life; a
``replayed`` repeat of a finished span only marks it replayed, keeping its first run's record),
``span_tag`` merges tags, ``span_log`` appends a line, ``span_end`` closes it. A step's
``input`` comes with its ``span_start``, its ``output`` with its ``step_output`` (the event's
``output_preview`` when it has one: an output over 4 KiB is shown cut). An unknown span
status is recorded as ``failed``, never silently ``ok``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._model import Span, SpanKind, SpanStatus

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["SpanFold", "fold_spans", "span_status"]

_KINDS = {k.value: k for k in SpanKind}
_STATUSES = {s.value: s for s in SpanStatus}
MAX_LOGS_PER_SPAN = 1000
_TEXT_FIELDS = ("step_key", "source_file", "child_play_sid", "rpc_service", "rpc_method")


def span_status(raw: Any) -> SpanStatus:
    """The SpanStatus named by ``raw``; anything unrecognised is ``failed``."""
    return _STATUSES.get(raw, SpanStatus.FAILED) if isinstance(raw, str) else SpanStatus.FAILED


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class SpanFold:
    """A play's span tree, folded one event at a time (the one fold of the service, the CLI's
    live tree and, pinned by a test, the admin's play page)."""

    __slots__ = ("_spans", "play_sid")

    def __init__(self, play_sid: str = "") -> None:
        self.play_sid = play_sid
        self._spans: dict[str, dict[str, Any]] = {}

    def __len__(self) -> int:
        return len(self._spans)

    def clear(self) -> None:
        """Forget every span (what a fold no longer needed holds, freed at once)."""
        self._spans.clear()

    def spans(self) -> list[Span]:
        """The spans so far, in start order."""
        return [Span(span_id=sid, play_sid=self.play_sid, **fields) for sid, fields in self._spans.items()]

    def load(self, spans: Iterable[dict[str, Any]]) -> None:
        """Start from spans already folded (a stream's snapshot: Span records as JSON)."""
        for span in spans:
            span_id = span.get("span_id")
            if not isinstance(span_id, str):
                continue
            tags, logs = span.get("tags"), span.get("logs")
            end_ms = span.get("end_ms")
            self._spans[span_id] = {
                "name": _str(span.get("name")) or "?",
                "parent_id": _str(span.get("parent_id")),
                "kind": _KINDS.get(span.get("kind"), SpanKind.OTHER),  # type: ignore[arg-type]
                "status": span_status(span.get("status")),
                "start_ms": _int(span.get("start_ms")),
                "end_ms": _int(end_ms) or None,
                "tags": dict(tags) if isinstance(tags, dict) else {},
                "logs": [_str(line) for line in logs] if isinstance(logs, list) else [],
                "error": _str(span.get("error")),
                **{name: _str(span.get(name)) for name in _TEXT_FIELDS},
                "source_line": _int(span.get("source_line")),
                "input": span.get("input"),
                "output": span.get("output"),
            }

    def apply(self, event: dict[str, Any]) -> None:
        """Fold one wire event in (events that name no known span are ignored)."""
        spans = self._spans
        kind = event.get("type")
        span_id = event.get("span_id")
        if not isinstance(span_id, str):
            return
        if kind == "span_start":
            fields = spans.get(span_id)
            if fields is not None and fields["end_ms"] is not None and event.get("status") == "replayed":
                # A later run replayed this finished step: keep what its first run recorded.
                fields["status"] = SpanStatus.REPLAYED
                return
            if fields is None:
                fields = spans[span_id] = {"tags": {}, "logs": [], "end_ms": None, "error": "", "input": None, "output": None}
            first_start = fields.get("start_ms") or 0
            fields["end_ms"] = None  # (re)started: open until its end arrives
            fields.update(
                name=_str(event.get("name")) or "?",
                parent_id=_str(event.get("parent_id")),
                kind=_KINDS.get(event.get("kind"), SpanKind.OTHER),  # type: ignore[arg-type]
                status=span_status(event.get("status", "running")),
                start_ms=_int(event.get("start_ms")),
                step_key=_str(event.get("step_key")),
                source_file=_str(event.get("source_file")),
                source_line=_int(event.get("source_line")),
                child_play_sid=_str(event.get("child_play_sid")),
                rpc_service=_str(event.get("rpc_service")),
                rpc_method=_str(event.get("rpc_method")),
            )
            if first_start and (not fields["start_ms"] or first_start < fields["start_ms"]):
                # A span a pause left open starts again in the next run: it began in the first.
                fields["start_ms"] = first_start
            tags = event.get("tags")
            if isinstance(tags, dict):
                fields["tags"].update(tags)
            if "input" in event:
                fields["input"] = event["input"]
            if "end_ms" in event:  # a span that starts finished (a replayed step: one line)
                fields["end_ms"] = _int(event.get("end_ms")) or None
            return
        fields = spans.get(span_id)
        if fields is None:
            return
        if kind == "span_tag":
            tags = event.get("tags")
            if isinstance(tags, dict):
                fields["tags"].update(tags)
                child = tags.get("child_play_sid")
                if isinstance(child, str):
                    fields["child_play_sid"] = child
        elif kind == "step_output":
            fields["output"] = event["output_preview"] if "output_preview" in event else event.get("output")
        elif kind == "span_log":
            if len(fields["logs"]) < MAX_LOGS_PER_SPAN:
                fields["logs"].append(_str(event.get("text")))
        elif kind == "span_end":
            if fields["status"] is SpanStatus.REPLAYED and fields["end_ms"] is not None:
                return
            fields["status"] = span_status(event.get("status"))
            fields["end_ms"] = _int(event.get("end_ms")) or None
            fields["error"] = _str(event.get("error"))


def fold_spans(play_sid: str, events: Iterable[dict[str, Any]]) -> list[Span]:
    """The spans described by ``events``, in start order."""
    fold = SpanFold(play_sid)
    for event in events:
        fold.apply(event)
    return fold.spans()
