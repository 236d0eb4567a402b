"""Seats for live watchers: per play and in all, so a thousand subscribers cannot each hold a
snapshot of a huge play."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

import attrs

from ._errors import ServiceBusy

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["MAX_WATCHERS", "MAX_WATCHERS_PER_PLAY", "WatchSeats"]

MAX_WATCHERS_PER_PLAY = 64
"""Live watchers of one play at once; more are refused with ServiceBusy (-32010)."""
MAX_WATCHERS = 1024
"""Live watchers of all plays at once; more are refused with ServiceBusy (-32010)."""


@attrs.define(eq=False)
class WatchSeats:
    """Counts the live watchers, per play and in all, and refuses those over the caps: a
    thousand subscribers must not each hold a snapshot of a huge play."""

    per_play: int = MAX_WATCHERS_PER_PLAY
    total: int = MAX_WATCHERS
    _by_play: dict[str | None, int] = attrs.Factory(dict)

    @contextmanager
    def seat(self, play_sid: str | None) -> Iterator[None]:
        """Hold a watcher's seat for the block; ServiceBusy when the caps are reached."""
        held = self._by_play.get(play_sid, 0)
        in_all = sum(self._by_play.values())
        if held >= self.per_play or in_all >= self.total:
            which = f"play {play_sid}" if play_sid else "all plays"
            msg = (
                f"{which} already has {held} live watchers ({in_all} in all; at most "
                f"{self.per_play} per play and {self.total} in all): close one, or retry later"
            )
            raise ServiceBusy(msg)
        self._by_play[play_sid] = held + 1
        try:
            yield
        finally:
            self._by_play[play_sid] -= 1
            if not self._by_play[play_sid]:
                del self._by_play[play_sid]

    def statistics(self) -> dict[str, int]:
        """Live watchers in all and of the most watched play."""
        return {"watchers": sum(self._by_play.values()), "most_per_play": max(self._by_play.values(), default=0)}
