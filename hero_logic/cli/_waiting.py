"""What a waiting play waits for, in words (the CLI's ``plays``, ``tree`` and ``resume``)."""

from __future__ import annotations

import time
from typing import Any

__all__ = ["describe_waits"]


def _in(ms: int) -> str:
    left = max(0, ms - int(time.time() * 1000)) // 1000
    hours, rest = divmod(left, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours} h {minutes:02d} m" if hours else f"{minutes} m {seconds:02d} s" if minutes else f"{seconds} s"


def describe_waits(play: dict[str, Any]) -> list[str]:
    """One line per open wait of an ``awaiting_resume`` play: a timer's wake time, an event's
    key, a question; the branches of a ``wait_any`` marked with their group."""
    lines = []
    for wait in play.get("pending_resumes") or []:
        kind = wait.get("kind", "input")
        if kind == "timer":
            at = time.strftime("%H:%M:%S", time.localtime(wait["wake_at"] / 1000))
            text = f"wakes at {at} (in {_in(wait['wake_at'])})"
        elif kind == "event":
            text = f"waits for event {wait['event_key']!r}"
            if wait.get("wake_at"):
                text += f" (times out in {_in(wait['wake_at'])})"
        else:
            text = f"asks {wait['name']!r}"
        if wait.get("group"):
            text = f"[wait_any branch {wait['branch']!r}] {text}"
        lines.append(text)
    return lines
