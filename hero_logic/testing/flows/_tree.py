"""A play's span tree as a value tests can read and assert on, drawn in failure messages.

The tree is built from ``play_spans`` (spans in start order, parent links in ``parent_id``).
The spans of a child play (``flow.invoke(..., spawn=True)``) hang under the span that started
it, so one tree shows the whole run. Drawing leaves out times, so a drawn tree is the same
from run to run.
"""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING, Any, NoReturn

import attrs

from ._waits import FlowAssertionError

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator, Mapping

__all__ = ["SpanNode", "SpanTree"]


@attrs.frozen
class SpanNode:
    """One span and the spans under it, in start order."""

    span: Mapping[str, Any] = attrs.field(repr=False)
    children: tuple[SpanNode, ...] = ()

    @property
    def name(self) -> str:
        return str(self.span.get("name", ""))

    @property
    def kind(self) -> str:
        """``flow_root``, ``step``, ``rpc``, ``subflow`` or ``other``."""
        return str(self.span.get("kind", ""))

    @property
    def status(self) -> str:
        """``ok``, ``failed``, ``replayed`` (a step finished in an earlier run of the play, before
        a pause), ``running``, ``pending``, ``timed_out`` or ``cancelled``."""
        return str(self.span.get("status", ""))

    @property
    def tags(self) -> Mapping[str, Any]:
        return dict(self.span.get("tags") or {})

    @property
    def logs(self) -> list[str]:
        return list(self.span.get("logs") or [])

    @property
    def error(self) -> str:
        return str(self.span.get("error") or "")

    @property
    def span_id(self) -> str:
        return str(self.span.get("span_id", ""))

    @property
    def play_sid(self) -> str:
        return str(self.span.get("play_sid", ""))

    def walk(self) -> Iterator[SpanNode]:
        """This span, then every span under it, depth first in start order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def line(self) -> str:
        """``name [kind] status  key=value ...`` (and the error, if any)."""
        tags = "  " + " ".join(f"{k}={_short(v)}" for k, v in self.tags.items()) if self.tags else ""
        error = f"  error: {_short(self.error, 160)}" if self.error else ""
        return f"{self.name} [{self.kind}] {self.status}{tags}{error}"

    def __repr__(self) -> str:
        return f"<SpanNode {self.line()}>"


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _draw(nodes: tuple[SpanNode, ...], text: Any, prefix: str = "") -> list[str]:
    lines = []
    for i, node in enumerate(nodes):
        last = i == len(nodes) - 1
        lines.append(prefix + ("└── " if last else "├── ") + text(node))
        lines += _draw(node.children, text, prefix + ("    " if last else "│   "))
    return lines


@attrs.frozen
class SpanTree:
    """The spans of a play (and of its child plays), as a tree."""

    roots: tuple[SpanNode, ...]
    play_sid: str = ""

    @classmethod
    def build(cls, spans_by_play: Mapping[str, list[Mapping[str, Any]]], play_sid: str) -> SpanTree:
        """The tree of ``play_sid`` from the spans of it and its descendants, by play sid."""

        def nodes_of(sid: str, seen: frozenset[str]) -> tuple[SpanNode, ...]:
            spans = spans_by_play.get(sid, [])
            ids = {s.get("span_id") for s in spans}
            under: dict[str, list[Mapping[str, Any]]] = {}
            for span in spans:
                parent = span.get("parent_id") or ""
                under.setdefault(parent if parent in ids else "", []).append(span)

            def node(span: Mapping[str, Any]) -> SpanNode:
                kids = tuple(node(s) for s in under.get(str(span.get("span_id")), []))
                child = str(span.get("child_play_sid") or "")
                if child and child not in seen:
                    kids += nodes_of(child, seen | {child})
                return SpanNode(span, kids)

            return tuple(node(s) for s in under.get("", []))

        return cls(nodes_of(play_sid, frozenset({play_sid})), play_sid)

    # -- reading --------------------------------------------------------------------------------

    @property
    def root(self) -> SpanNode:
        """The play's ``flow_root`` span."""
        for node in self.roots:
            if node.kind == "flow_root":
                return node
        if self.roots:
            return self.roots[0]
        msg = f"play {self.play_sid} has no spans: did its process start?"
        raise FlowAssertionError(msg)

    def walk(self) -> Iterator[SpanNode]:
        """Every span, depth first in start order."""
        for root in self.roots:
            yield from root.walk()

    def names(self) -> list[str]:
        return [node.name for node in self.walk()]

    def find_all(self, name: str, *, kind: str | None = None) -> list[SpanNode]:
        """Every span named ``name`` (and of ``kind``, if given), in tree order."""
        return [n for n in self.walk() if n.name == name and (kind is None or n.kind == kind)]

    def find(self, name: str, *, kind: str | None = None) -> SpanNode:
        """The first span named ``name``; a failure showing the tree if there is none."""
        __tracebackhide__ = True
        found = self.find_all(name, kind=kind)
        if not found:
            what = f"span named {name!r}" + (f" of kind {kind!r}" if kind else "")
            self.fail(f"no {what}")
        return found[0]

    # -- drawing --------------------------------------------------------------------------------

    def render(self) -> str:
        """The tree drawn with kinds, statuses, tags and errors (no times)."""
        if not self.roots:
            return "(no spans)"
        lines: list[str] = []
        for root in self.roots:
            lines.append(root.line())
            lines += _draw(root.children, SpanNode.line)
        return "\n".join(lines)

    def outline(self) -> str:
        """Span names only, two spaces per level: compare it with ``assert_outline``."""
        return "\n".join(_outline(self.roots, 0))

    def __str__(self) -> str:
        return self.render()

    def fail(self, message: str) -> NoReturn:
        """Raise a FlowAssertionError with ``message`` and the drawn tree."""
        __tracebackhide__ = True
        msg = f"{message}\nspan tree of play {self.play_sid}:\n{textwrap.indent(self.render(), '  ')}"
        raise FlowAssertionError(msg)

    # -- assertions -----------------------------------------------------------------------------

    def assert_span(
        self,
        name: str,
        *,
        kind: str | None = None,
        status: str | Collection[str] | None = None,
        tags: Mapping[str, Any] | None = None,
        count: int | None = None,
    ) -> SpanNode:
        """The first span named ``name``, checked: its ``kind``, its ``status`` (one status or
        several allowed), ``tags`` it carries (a subset, compared with ``==`` so
        ``pytest.approx`` works), and how many spans have that name (``count``)."""
        __tracebackhide__ = True
        if count is not None:
            found = len(self.find_all(name, kind=kind))
            if found != count:
                self.fail(f"expected {count} span(s) named {name!r}, found {found}")
        node = self.find(name, kind=kind)
        allowed = {status} if isinstance(status, str) else set(status or ())
        if allowed and node.status not in allowed:
            self.fail(f"span {name!r} is {node.status}, expected {' or '.join(sorted(allowed))}")
        for key, want in (tags or {}).items():
            if key not in node.tags:
                self.fail(f"span {name!r} has no tag {key!r} (expected {want!r}); its tags: {dict(node.tags)!r}")
            if want != node.tags[key]:
                self.fail(f"span {name!r} tag {key!r} is {node.tags[key]!r}, expected {want!r}")
        return node

    def assert_path(self, *names: str) -> SpanNode:
        """Spans named ``names[0]`` > ``names[1]`` > ... each directly under the one before
        (the first at any depth); returns the last."""
        __tracebackhide__ = True
        if not names:
            msg = "assert_path needs at least one span name"
            raise TypeError(msg)

        def follow(node: SpanNode, rest: tuple[str, ...]) -> SpanNode | None:
            if not rest:
                return node
            for child in node.children:
                if child.name == rest[0]:
                    end = follow(child, rest[1:])
                    if end is not None:
                        return end
            return None

        for start in self.find_all(names[0]):
            end = follow(start, names[1:])
            if end is not None:
                return end
        self.fail(f"no path {' > '.join(repr(n) for n in names)} in the span tree")

    def assert_outline(self, expected: str) -> None:
        """The tree's :meth:`outline` equals ``expected`` (dedented, blank lines ignored)."""
        __tracebackhide__ = True
        want = [line.rstrip() for line in textwrap.dedent(expected).splitlines() if line.strip()]
        got = self.outline().splitlines()
        if want != got:
            self.fail(
                "the span tree's outline differs\n  expected:\n"
                + textwrap.indent("\n".join(want), "    ")
                + "\n  actual:\n"
                + textwrap.indent("\n".join(got), "    ")
            )


def _outline(nodes: tuple[SpanNode, ...], depth: int) -> Iterator[str]:
    for node in nodes:
        yield "  " * depth + node.name
        yield from _outline(node.children, depth + 1)
