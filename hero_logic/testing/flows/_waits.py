"""What a play waits on, the answers a test gives it, and the failures the harness reports.

A play that is ``awaiting_resume`` has open waits (``ResumeRequest`` records). Today every one
is a pause (``kind: "input"``: ``flow.pause`` and the ``ask_user`` helpers), which the harness
answers. A wait of another kind (``timer`` for ``flow.sleep``, ``event`` for
``flow.wait_event``) is described in messages from the fields the service gives it, and left
alone: the harness has no way to resolve it yet, so a play that waits on one stops there and
says so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs

__all__ = [
    "Answered",
    "Answers",
    "FlowAssertionError",
    "UnusedAnswers",
    "Wait",
    "WrongAnswer",
    "describe_schema",
]


class FlowAssertionError(AssertionError):
    """A check of the flow harness failed: the message says what was expected and what the
    play did instead (with its span tree where it helps)."""

    __module__ = "hero_logic.testing.flows"


class WrongAnswer(FlowAssertionError):
    """The service refused an answer the test gave to a pause (it breaks the pause's schema)."""

    __module__ = "hero_logic.testing.flows"

    def __init__(self, message: str, *, wait: Wait, payload: Any, problems: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.wait = wait
        self.payload = payload
        self.problems = problems


class UnusedAnswers(FlowAssertionError):
    """The play ended without asking some of the questions the test answered."""

    __module__ = "hero_logic.testing.flows"


def _show(value: Any) -> str:
    """A value as a test author wrote it (Python literals: True, None, 'text')."""
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _bounds(schema: Mapping[str, Any]) -> str:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        return f" between {low} and {high}"
    if low is not None:
        return f" of at least {low}"
    if high is not None:
        return f" of at most {high}"
    return ""


_TYPE_NAMES = {
    "boolean": "a boolean",
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "object": "an object",
    "array": "a list",
    "null": "null",
}


def describe_schema(schema: Any) -> str:
    """What a pause's JSON schema accepts, in words: ``a boolean``, ``one of 'a', 'b'``,
    ``a number between 1 and 5``, ``a list of distinct values from 'x', 'y'``."""
    if not isinstance(schema, Mapping) or not schema:
        return "any JSON value"
    if "enum" in schema and isinstance(schema["enum"], list):
        return "one of " + ", ".join(_show(v) for v in schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(_TYPE_NAMES.get(k, repr(k)) for k in kind)
    if kind in ("number", "integer"):
        return _TYPE_NAMES[kind] + _bounds(schema)
    if kind == "array":
        items = schema.get("items")
        distinct = "distinct " if schema.get("uniqueItems") else ""
        if isinstance(items, Mapping) and isinstance(items.get("enum"), list):
            return f"a list of {distinct}values from " + ", ".join(_show(v) for v in items["enum"])
        if isinstance(items, Mapping) and items:
            return f"a list of {distinct}items, each {describe_schema(items)}"
        return f"a list of {distinct}values" if distinct else "a list"
    if kind == "object":
        required = schema.get("required")
        if isinstance(required, list) and required:
            return "an object with " + ", ".join(_show(k) for k in required)
        return "an object"
    if isinstance(kind, str) and kind in _TYPE_NAMES:
        return _TYPE_NAMES[kind]
    return "a value matching the JSON schema " + json.dumps(schema, sort_keys=True)[:200]


_HELPERS = {
    "confirm": "ask_user.confirm",
    "text": "ask_user.text",
    "number": "ask_user.number",
    "choice": "ask_user.choice",
    "multi_choice": "ask_user.multi_choice",
}


@attrs.frozen
class Wait:
    """One open wait of a play (a ``ResumeRequest``): today a pause; the fields of the other
    kinds (``timer``, ``event``) are read when the service sends them, for messages."""

    id: str
    name: str
    kind: str = "input"
    schema: Any = None
    ui: Any = None
    play_sid: str = ""
    asked_at: int = 0
    wake_at: int | None = None
    event_key: str = ""

    @classmethod
    def from_json(cls, record: Mapping[str, Any], *, play_sid: str = "") -> Wait:
        """A wait from the service's ``ResumeRequest`` JSON."""
        return cls(
            id=str(record["id"]),
            name=str(record.get("name", "")),
            kind=str(record.get("kind") or "input"),
            schema=record.get("schema"),
            ui=record.get("ui"),
            play_sid=str(record.get("play_sid") or play_sid),
            asked_at=int(record.get("asked_at") or 0),
            wake_at=record.get("wake_at"),
            event_key=str(record.get("event_key") or ""),
        )

    @property
    def is_pause(self) -> bool:
        """A question for a person (``flow.pause`` or ``ask_user``): the harness answers these."""
        return self.kind == "input"

    @property
    def prompt(self) -> str:
        """The question's text (an ``ask_user`` prompt), else the pause's name."""
        if isinstance(self.ui, Mapping) and isinstance(self.ui.get("prompt"), str):
            return str(self.ui["prompt"])
        return self.name

    @property
    def expects(self) -> str:
        """What the pause accepts, in words (see :func:`describe_schema`)."""
        return describe_schema(self.schema)

    def describe(self) -> str:
        """One line for messages: which wait, what it asks, what it accepts."""
        if self.kind == "timer":
            return f"a timer {self.name!r} (flow.sleep) waking at {_when(self.wake_at)}"
        if self.kind == "event":
            until = f", until {_when(self.wake_at)}" if self.wake_at else ""
            return f"an event wait {self.name!r} for key {self.event_key!r}{until}"
        if not self.is_pause:
            return f"a wait {self.name!r} of kind {self.kind!r}"
        helper = _HELPERS.get(self.ui.get("kind", "")) if isinstance(self.ui, Mapping) else None
        asked = f"{helper} {self.prompt!r}" if helper else "flow.pause"
        if helper and self.prompt == self.name:
            asked = helper
        return f"pause {self.name!r} ({asked}, expects {self.expects})"


def _when(ms: int | None) -> str:
    if ms is None:
        return "an unknown time"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


@attrs.frozen
class Answered:
    """An answer the harness gave to a pause."""

    wait: Wait
    payload: Any


class Answers:
    """The answers a test gives a play: in the order its pauses are asked (a list), or by
    pause name or resume id (a mapping, each answer reused if the pause is asked again)."""

    def __init__(self, answers: Sequence[Any] | Mapping[str, Any] | None) -> None:
        self._by_name: dict[str, Any] | None = None
        self._in_order: list[Any] = []
        self._used: set[str] = set()
        if answers is None:
            self._in_order = []
        elif isinstance(answers, Mapping):
            self._by_name = dict(answers)
        elif isinstance(answers, str | bytes) or not isinstance(answers, Sequence):
            msg = (
                f"answers must be a list (answered in the order the pauses are asked) or a dict "
                f"(by pause name), got {type(answers).__name__} {_show(answers)}"
            )
            raise TypeError(msg)
        else:
            self._in_order = list(answers)

    def take(self, wait: Wait) -> tuple[bool, Any]:
        """``(True, payload)`` for the answer to ``wait``, or ``(False, None)`` if none is left."""
        if self._by_name is None:
            if not self._in_order:
                return False, None
            return True, self._in_order.pop(0)
        for key in (wait.id, wait.name):
            if key in self._by_name:
                self._used.add(key)
                return True, self._by_name[key]
        return False, None

    def unused(self) -> list[str]:
        """The answers never asked for, described."""
        if self._by_name is None:
            return [_show(value) for value in self._in_order]
        return [f"{key!r}: {_show(value)}" for key, value in self._by_name.items() if key not in self._used]

    def hint(self, wait: Wait) -> str:
        """How to give the missing answer to ``wait``."""
        if self._by_name is None and not self._in_order:
            return f"add its answer to the list of answers, or pass answers={{{wait.name!r}: ...}}"
        return f"add {wait.name!r}: <{wait.expects}> to answers"


def wrong_answer(wait: Wait, payload: Any, problems: list[dict[str, Any]], play_sid: str) -> WrongAnswer:
    """The failure for an answer the service refused, naming what the pause expects."""
    said = "; ".join(f"{p.get('field', 'payload')}: {p.get('error', '')}" for p in problems)
    lines = [f"pause {wait.name!r} expects {wait.expects}, got {_show(payload)}"]
    if wait.prompt != wait.name:
        lines.append(f"  question: {wait.prompt}")
    lines.append(f"  play: {wait.play_sid or play_sid}")
    if said:
        lines.append(f"  the service said: {said}")
    return WrongAnswer("\n".join(lines), wait=wait, payload=payload, problems=problems)
