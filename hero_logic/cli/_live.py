"""Following a play's live stream in the terminal: fold messages into a tree, draw it with rich.

:class:`LiveTree` is sans-IO: it folds the stream's messages (CONTRACT.md §7) into the play
and its spans exactly as the service folds stored events (``hero_logic.kernel.fold_spans``),
so the tree on screen matches ``play_spans`` once the play ends. :func:`watch_play` feeds it
from :func:`~hero_logic.rpc.open_stream` and redraws a rich ``Live`` display.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

__all__ = ["LiveTree", "watch_play"]

_SETTLED = frozenset({"success", "failed", "cancelled", "timed_out", "awaiting_resume"})
_TERMINAL = frozenset({"success", "failed", "cancelled", "timed_out"})
_STATUSES = frozenset({"pending", "running", "ok", "failed", "timed_out", "cancelled", "replayed"})
_KINDS = frozenset({"flow_root", "step", "rpc", "subflow", "other"})


@attrs.define
class LiveTree:
    """A play and its spans as the stream has described them so far."""

    play: dict[str, Any] = attrs.Factory(dict)
    spans: dict[str, dict[str, Any]] = attrs.Factory(dict)
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

    def apply(self, message: dict[str, Any]) -> None:
        """Fold one stream message in."""
        kind = message.get("type")
        if kind == "snapshot":
            self.play = dict(message.get("play") or {})
            self.spans = {s["span_id"]: dict(s) for s in message.get("spans") or ()}
            self.seq = int(message.get("seq", -1))
            return
        if kind == "status":
            self.play = dict(message.get("play") or {**self.play, "status": message.get("status")})
            return
        seq = message.get("seq")
        if isinstance(seq, int):
            if seq <= self.seq:
                return  # already folded
            self.seq = seq
        self.events += 1
        self._fold(message)

    def _fold(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        span_id = event.get("span_id")
        if not isinstance(span_id, str):
            return
        span = self.spans.get(span_id)
        if kind == "span_start":
            if span is not None and span.get("end_ms") is not None and event.get("status") == "replayed":
                span["status"] = "replayed"
                return
            if span is None:
                span = self.spans[span_id] = {"span_id": span_id, "tags": {}, "logs": [], "end_ms": None, "error": ""}
            status = event.get("status", "running")
            first_start = span.get("start_ms") or 0  # a span a pause left open began in its first run
            start = event.get("start_ms") or 0
            span.update(
                name=event.get("name") or "?",
                parent_id=event.get("parent_id") or "",
                kind=event.get("kind") if event.get("kind") in _KINDS else "other",
                status=status if status in _STATUSES else "failed",
                start_ms=first_start if first_start and (not start or first_start < start) else start,
                end_ms=None,
                child_play_sid=event.get("child_play_sid") or "",
            )
            if isinstance(event.get("tags"), dict):
                span["tags"].update(event["tags"])
            if isinstance(event.get("end_ms"), int):  # a replayed step starts finished
                span["end_ms"] = event["end_ms"]
        elif span is None:
            return
        elif kind == "span_tag" and isinstance(event.get("tags"), dict):
            span["tags"].update(event["tags"])
            if isinstance(event["tags"].get("child_play_sid"), str):
                span["child_play_sid"] = event["tags"]["child_play_sid"]
        elif kind == "span_log":
            span["logs"].append(str(event.get("text", "")))
        elif kind == "span_end":
            if span.get("status") == "replayed" and span.get("end_ms") is not None:
                return
            status = event.get("status")
            span["status"] = status if status in _STATUSES else "failed"
            span["end_ms"] = event.get("end_ms") or None
            span["error"] = event.get("error") or ""

    def span_list(self) -> list[dict[str, Any]]:
        """The spans in start order (the order they were first seen)."""
        return list(self.spans.values())


def _render(tree: LiveTree) -> Any:
    from rich.console import Group
    from rich.text import Text

    from ._render import span_tree

    footer = Text(f"{len(tree.spans)} spans, {tree.events} live events", style="dim")
    if tree.status == "awaiting_resume":
        footer.append(f"  · waiting for an answer: hero_logic resume {tree.play.get('sid', 'PLAY')}", style="yellow")
    return Group(span_tree(tree.play, tree.span_list()), footer)


async def watch_play(
    socket_path: Path, play_sid: str, console: Console, *, until_settled: bool = False
) -> LiveTree:
    """Draw the play's live tree until it ends (or, with ``until_settled``, also when it
    waits for an answer); returns the final tree."""
    from rich.live import Live

    from hero_logic.rpc import open_stream

    tree = LiveTree()
    async with open_stream(socket_path, f"/api/plays/{play_sid}/spans") as stream:
        with Live(console=console, refresh_per_second=8, transient=False) as live:
            while (message := await stream.receive()) is not None:
                tree.apply(message)
                live.update(_render(tree))
                if tree.ended or (until_settled and tree.settled):
                    break
        if not console.is_terminal:
            console.line()  # Live leaves its last frame without a newline off a terminal
    return tree
