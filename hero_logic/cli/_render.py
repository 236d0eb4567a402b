"""Rendering plays and span trees for people, with rich."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.style import Style
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["FOCUS_META", "SID_WIDTH", "console", "format_duration", "format_time", "play_table", "span_tree"]

SID_WIDTH = 30
"""Width of a sid such as ``play_01a20a511909_46e8e5f6ac95``: never cut, it is what users copy."""

_STATUS_STYLE = {
    "ok": "green",
    "success": "green",
    "running": "cyan",
    "pending": "dim",
    "awaiting_resume": "yellow",
    "replayed": "blue",
    "failed": "red",
    "timed_out": "red",
    "cancelled": "magenta",
}


def format_duration(ms: int | None) -> str:
    """``850 ms``, ``2.41 s``, ``3 m 05 s``; ``-`` when unknown."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    minutes, seconds = divmod(ms // 1000, 60)
    return f"{minutes} m {seconds:02d} s"


def _status(status: str) -> Text:
    return Text(status, style=_STATUS_STYLE.get(status, ""))


FOCUS_META = "hero_logic_focus"
"""Style meta key marking the focused span's label (the running step), so a clipped view can
find its line after rich has wrapped and indented the tree."""


def _span_label(span: dict[str, Any]) -> Text:
    label = Text()
    label.append(span["name"], style="bold")
    if span.get("kind") not in ("step", None):
        label.append(f" [{span['kind']}]", style="dim")
    label.append("  ")
    label.append_text(_status(span["status"]))
    end = span.get("end_ms")
    if end is not None:
        label.append(f"  {format_duration(end - span['start_ms'])}", style="dim")
    if span.get("status") == "replayed":
        label.append("  (from cache)", style="blue")
    tags = span.get("tags") or {}
    if tags:
        shown = ", ".join(f"{k}={v!r}" for k, v in list(tags.items())[:6])
        label.append(f"  {{{shown}}}", style="dim")
    if span.get("child_play_sid"):
        label.append(f"  → play {span['child_play_sid']}", style="cyan")
    return label


def span_tree(play: dict[str, Any], spans: Iterable[dict[str, Any]], *, focus: str = "") -> Tree:
    """The play's spans as an indented tree with status, duration, tags, logs and errors; the
    label of the span whose id is ``focus`` carries the :data:`FOCUS_META` style meta."""
    title = Text()
    title.append(f"play {play['sid']}", style="bold")
    title.append("  ")
    title.append_text(_status(play["status"]))
    title.append(f"  {format_duration(play.get('duration_ms'))}", style="dim")
    tree = Tree(title)
    if play.get("status") == "awaiting_resume":
        from ._waiting import describe_waits

        for line in describe_waits(play):
            tree.add(Text(line, style="yellow"))
    nodes: dict[str, Tree] = {}
    for span in spans:
        parent = nodes.get(span.get("parent_id") or "", tree)
        label = _span_label(span)
        if span["span_id"] == focus:
            label.stylize(Style(meta={FOCUS_META: True}))
        node = parent.add(label)
        for line in (span.get("logs") or [])[:20]:
            node.add(Text(f"log: {line}", style="dim"))
        if span.get("error"):
            node.add(Text(span["error"].strip().splitlines()[-1][:300], style="red"))
        nodes[span["span_id"]] = node
    return tree


def format_time(ms: int | None) -> str:
    """``2024-05-01 09:30:02`` in local time; ``-`` when unknown."""
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def play_table(plays: Iterable[dict[str, Any]], names: dict[str, str]) -> Table:
    """A table of plays: sid, workflow, name, status, created, duration, error."""
    table = Table(show_edge=False, header_style="bold")
    widths = {"play": SID_WIDTH, "status": 15, "created": 19}
    for column in ("play", "workflow", "name", "status", "created", "duration", "error / waiting for"):
        table.add_column(column, no_wrap=column in widths, min_width=widths.get(column))
    for play in plays:
        error = (play.get("error_message") or "").strip()
        table.add_row(
            play["sid"],
            names.get(play["workflow_sid"], play["workflow_sid"]),
            play.get("name") or "",
            _status(play["status"]),
            format_time(play.get("created_at")),
            format_duration(play.get("duration_ms")),
            error.splitlines()[0][:60] if error else _waiting(play),
        )
    return table


def _waiting(play: dict[str, Any]) -> str:
    """What an awaiting play waits for (its first wait), for the play table."""
    if play.get("status") != "awaiting_resume":
        return ""
    from ._waiting import describe_waits

    waits = describe_waits(play)
    return waits[0] + (f" (+{len(waits) - 1} more)" if len(waits) > 1 else "") if waits else ""


def console(*, stderr: bool = False) -> Console:
    """A console that degrades to plain text when not on a terminal."""
    return Console(stderr=stderr, highlight=False, soft_wrap=True)
