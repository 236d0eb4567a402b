"""Following a play's live stream in the terminal: fold messages into a tree, draw it with rich.

:class:`LiveTree` is sans-IO: it folds the stream's messages (CONTRACT.md §7) into the play
and its spans with the service's own fold (:class:`hero_logic.kernel.SpanFold`),
so the tree on screen matches ``play_spans`` once the play ends. :func:`watch_play` feeds it
from :func:`~hero_logic.rpc.open_stream`. On a terminal it redraws a rich ``Live`` display
(:func:`render_live`: a tree taller than the screen is clipped around the running step);
elsewhere (a pipe, a log file) it prints :func:`plain_lines` as each message arrives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from hero_logic.kernel import SpanFold, to_json

from ._render import FOCUS_META, format_duration

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from rich.console import Console, ConsoleOptions, RenderableType
    from rich.segment import Segment

__all__ = ["LiveTree", "plain_lines", "render_live", "watch_play"]

_SETTLED = frozenset({"success", "failed", "cancelled", "timed_out", "awaiting_resume"})
_TERMINAL = frozenset({"success", "failed", "cancelled", "timed_out"})


@attrs.define
class LiveTree:
    """A play and its spans as the stream has described them so far."""

    play: dict[str, Any] = attrs.Factory(dict)
    fold: SpanFold = attrs.Factory(SpanFold)
    _spans: dict[str, dict[str, Any]] | None = None
    _spans_at: int = -1
    seq: int = -1
    events: int = 0
    """Events applied since the snapshot."""

    @property
    def status(self) -> str:
        """The play's status ("" before the snapshot)."""
        return str(self.play.get("status", ""))

    @property
    def ended(self) -> bool:
        """True once the play reached a terminal status."""
        return self.status in _TERMINAL

    @property
    def settled(self) -> bool:
        """True once the play ended or waits for an answer."""
        return self.status in _SETTLED

    def apply(self, message: dict[str, Any]) -> bool:
        """Fold one stream message in; False for an event already folded (a repeat)."""
        kind = message.get("type")
        if kind == "snapshot":
            self.play = dict(message.get("play") or {})
            self.fold = SpanFold(str(self.play.get("sid", "")))
            self.fold.load(message.get("spans") or ())
            self._spans = None
            self.seq = int(message.get("seq", -1))
            return True
        if kind == "status":
            self.play = dict(message.get("play") or {**self.play, "status": message.get("status")})
            return True
        seq = message.get("seq")
        if isinstance(seq, int):
            if seq <= self.seq:
                return False
            self.seq = seq
        self.events += 1
        self.fold.apply(message)
        self._spans_at = -1
        return True

    def span_list(self) -> list[dict[str, Any]]:
        """The spans in start order (the order they were first seen), as JSON records."""
        return list(self.spans.values())

    @property
    def spans(self) -> dict[str, dict[str, Any]]:
        """The spans by id, as JSON records (rebuilt once per change)."""
        if self._spans_at != self.events or self._spans is None:
            records: list[dict[str, Any]] = to_json(self.fold.spans())
            self._spans = {r["span_id"]: r for r in records}
            self._spans_at = self.events
        return self._spans

    def depth(self, span_id: str) -> int:
        """How many ancestors the span has (0 for a root)."""
        depth, seen = 0, {span_id}
        parent = self.spans.get(span_id, {}).get("parent_id") or ""
        while parent in self.spans and parent not in seen:
            seen.add(parent)
            depth += 1
            parent = self.spans[parent].get("parent_id") or ""
        return depth

    def running_span(self) -> str:
        """The id of the span that started last among those still running ("" if none)."""
        running = [sid for sid, span in self.spans.items() if span.get("status") == "running"]
        return running[-1] if running else ""


# -- plain lines (off a terminal) ----------------------------------------------------------------


def _span_state(span: dict[str, Any]) -> str:
    status = str(span.get("status", "?"))
    if status == "replayed":
        return "replayed (from cache)"
    if status in ("running", "pending") or span.get("end_ms") is None:
        return "started" if status == "running" else status
    text = f"{status} in {format_duration(span['end_ms'] - (span.get('start_ms') or span['end_ms']))}"
    error = (span.get("error") or "").strip()
    return f"{text}: {error.splitlines()[-1][:300]}" if error else text


def _who(tree: LiveTree, span_id: str, *, with_kind: bool = False) -> str:
    span = tree.spans[span_id]
    kind = f" [{span['kind']}]" if with_kind and span.get("kind") not in ("step", None) else ""
    return f"{'  ' * tree.depth(span_id)}{span.get('name', '?')}{kind}"


def plain_lines(tree: LiveTree, message: dict[str, Any]) -> list[str]:
    """The lines that tell a reader of a log what ``message`` (just applied to ``tree``) did."""
    kind = message.get("type")
    if kind == "snapshot":
        lines = [f"play {tree.play.get('sid', '?')}: {tree.status}"]
        for known, span in tree.spans.items():
            lines.append(f"{_who(tree, known, with_kind=True)}: {_span_state(span)}")
            lines += [f"{_who(tree, known)}: log: {line}" for text in span.get("logs") or () for line in str(text).splitlines()]
        return lines
    if kind == "status":
        return [f"play {tree.play.get('sid', '?')}: {tree.status}"]
    span_id = message.get("span_id")
    if not isinstance(span_id, str) or span_id not in tree.spans:
        return []
    if kind == "span_start":
        return [f"{_who(tree, span_id, with_kind=True)}: {_span_state(tree.spans[span_id])}"]
    if kind == "span_tag" and isinstance(message.get("tags"), dict):
        return [f"{_who(tree, span_id)}: {', '.join(f'{k}={v!r}' for k, v in message['tags'].items())}"]
    if kind == "span_log":
        return [f"{_who(tree, span_id)}: log: {line}" for line in str(message.get("text", "")).splitlines() or [""]]
    if kind == "span_end":
        return [f"{_who(tree, span_id)}: {_span_state(tree.spans[span_id])}"]
    if kind == "pause":
        ui = message.get("ui") if isinstance(message.get("ui"), dict) else {}
        return [f"{_who(tree, span_id)}: asks: {(ui or {}).get('prompt') or message.get('name', '?')}"]
    return []


# -- the live view (on a terminal) ---------------------------------------------------------------


@attrs.frozen
class _Clipped:
    """A renderable shown whole when it fits the screen, else its first line and a window
    around the line marked :data:`FOCUS_META` (or its end), leaving ``reserve`` lines free."""

    renderable: RenderableType
    reserve: int = 1

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        from rich.segment import Segment

        lines = console.render_lines(self.renderable, options.update(height=None), pad=False)
        room = max(options.max_height - self.reserve, 5)
        if len(lines) > room:
            focus = next(
                (i for i, line in enumerate(lines) if any(s.style and s.style.meta.get(FOCUS_META) for s in line)),
                len(lines) - 1,
            )
            window = room - 3  # the title line, and a marker above and below
            start = min(max(1, focus - window * 2 // 3), len(lines) - window)
            end = start + window
            dim = console.get_style("dim")
            shown = [lines[0]]
            if start > 1:
                shown.append([Segment(f"  ⋮ {start - 1} lines above", dim)])
            shown += lines[start:end]
            if end < len(lines):
                shown.append([Segment(f"  ⋮ {len(lines) - end} lines below", dim)])
            lines = shown
        for line in lines:
            yield from line
            yield Segment.line()


def render_live(tree: LiveTree, *, clip: bool = True) -> RenderableType:
    """The live view: the span tree, clipped to the screen around the running step (unless
    ``clip`` is false), and a footer with the counts (and the command that answers a waiting
    play)."""
    from rich.console import Group
    from rich.text import Text

    from ._render import span_tree

    footer = Text(f"{len(tree.fold)} spans, {tree.events} live events", style="dim")
    if tree.status == "awaiting_resume":
        footer.append(f"  · waiting for an answer: hero_logic resume {tree.play.get('sid', 'PLAY')}", style="yellow")
    whole = span_tree(tree.play, tree.span_list(), focus=tree.running_span())
    return Group(_Clipped(whole, reserve=footer.plain.count("\n") + 1) if clip else whole, footer)


async def watch_play(
    socket_path: Path, play_sid: str, console: Console, *, until_settled: bool = False
) -> LiveTree:
    """Follow the play until it ends (or, with ``until_settled``, also when it waits for an
    answer): a live tree on a terminal, plain lines as messages arrive elsewhere. Returns the
    final tree."""
    from rich.live import Live

    from hero_logic.rpc import open_stream

    tree = LiveTree()
    async with open_stream(socket_path, f"/api/plays/{play_sid}/spans") as stream:
        if not console.is_terminal:
            while (message := await stream.receive()) is not None:
                if tree.apply(message):
                    for line in plain_lines(tree, message):
                        console.print(line, markup=False, highlight=False, soft_wrap=True)
                if tree.ended or (until_settled and tree.settled):
                    break
            console.print(f"{len(tree.spans)} spans, {tree.events} live events", markup=False)
            return tree
        with Live(console=console, refresh_per_second=8, transient=False) as live:
            while (message := await stream.receive()) is not None:
                tree.apply(message)
                live.update(render_live(tree))
                if tree.ended or (until_settled and tree.settled):
                    break
            live.update(render_live(tree, clip=False), refresh=False)  # the last frame in full
    return tree
