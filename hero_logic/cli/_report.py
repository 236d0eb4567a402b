"""Telling a person where a play stands: its tree, its output or error, its open questions."""

from __future__ import annotations

import json
import sys
from typing import Any

__all__ = ["describe_pause", "report_play", "show_tree", "show_waiting"]


def show_tree(rpc: Any, play_sid: str) -> dict[str, Any]:
    """Print the play's span tree; returns the play."""
    from ._render import console, span_tree

    play = rpc.call("play_status", {"play_sid": play_sid})
    spans = rpc.call("play_spans", {"play_sid": play_sid})
    console().print(span_tree(play, spans))
    return dict(play)


def describe_pause(pause: dict[str, Any]) -> str:
    """The pause's question, its options and its answer schema, for a person."""
    ui = pause.get("ui") or {}
    lines = [f"{pause['name']}   (resume id {pause['id']}, play {pause.get('play_sid') or '?'})"]
    if ui.get("options"):
        lines += [f"  {i}. {option}" for i, option in enumerate(ui["options"], 1)]
    if pause.get("schema"):
        lines.append(f"  answer schema: {json.dumps(pause['schema'])}")
    return "\n".join(lines)


def show_waiting(rpc: Any, play_sid: str) -> None:
    """Print a paused play's open questions and the command that answers them."""
    print("waiting for an answer to:")
    for pause in rpc.call("play_pending_resumes", {"play_sid": play_sid}):
        print("  " + describe_pause(pause).replace("\n", "\n  "))
    print(f"answer with: hero_logic resume {play_sid} [--id RESUME_ID] [--answer ANSWER] --wait")


def report_play(rpc: Any, play: dict[str, Any]) -> int:
    """Print a settled play's output, open questions or error; its exit code (0 for success or
    awaiting an answer, 1 otherwise)."""
    from ._render import console

    if play["status"] == "success":
        console().print("output:", json.dumps(play["output_data"], indent=2, ensure_ascii=False))
    elif play["status"] == "awaiting_resume":
        show_waiting(rpc, play["sid"])
    elif play["error_message"]:
        print(f"error: {play['error_message']}", file=sys.stderr)
    return 0 if play["status"] in ("success", "awaiting_resume") else 1
