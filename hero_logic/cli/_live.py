"""Following a play's live stream in the terminal: fold messages into a tree, draw it with rich.

:class:`LiveTree` is sans-IO: it folds the stream's messages (CONTRACT.md §7) into the play
and its spans with the service's own fold (:class:`hero_logic.kernel.SpanFold`), so the tree on
screen matches ``play_spans`` once the play ends. :func:`watch_play` feeds it
from :func:`~hero_logic.rpc.open_stream` and redraws a rich ``Live`` display.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from hero_logic.kernel import SpanFold, to_json

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

__all__ = ["LiveTree", "watch_play"]

_SETTLED = frozenset({"success", "failed", "cancelled", "timed_out", "awaiting_resume"})
_TERMINAL = frozenset({"success", "failed", "cancelled", "timed_out"})


@attrs.define
class LiveTree:
    """A play and its spans as the stream has described them so far."""

    play: dict[str, Any] = attrs.Factory(dict)
    fold: SpanFold = attrs.Factory(SpanFold)
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
            self.fold = SpanFold(str(self.play.get("sid", "")))
            self.fold.load(message.get("spans") or ())
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
        self.fold.apply(message)

    def span_list(self) -> list[dict[str, Any]]:
        """The spans in start order (the order they were first seen), as JSON records."""
        spans: list[dict[str, Any]] = to_json(self.fold.spans())
        return spans


def _render(tree: LiveTree) -> Any:
    from rich.console import Group
    from rich.text import Text

    from ._render import span_tree

    footer = Text(f"{len(tree.fold)} spans, {tree.events} live events", style="dim")
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
