"""Telling a person where a play stands: its tree, its output or error, its open questions."""

from __future__ import annotations

import json
import sys
from typing import Any

__all__ = ["describe_pause", "pause_hints", "pause_options", "pause_prompt", "report_play", "show_tree", "show_waiting"]


def show_tree(rpc: Any, play_sid: str) -> dict[str, Any]:
    """Print the play's span tree; returns the play."""
    from ._render import console, span_tree

    play = rpc.call("play_status", {"play_sid": play_sid})
    spans = rpc.call("play_spans", {"play_sid": play_sid})
    console().print(span_tree(play, spans))
    return dict(play)


def pause_hints(pause: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pause's ui hint and JSON schema, each ``{}`` when absent (or not an object)."""
    ui, schema = pause.get("ui"), pause.get("schema")
    return (ui if isinstance(ui, dict) else {}), (schema if isinstance(schema, dict) else {})


def pause_options(pause: dict[str, Any]) -> list[Any]:
    """The options a pause offers: its ui hint's, else its schema's ``enum`` (or its items')."""
    ui, schema = pause_hints(pause)
    items = schema.get("items")
    items = items if isinstance(items, dict) else {}
    options = ui.get("options") or schema.get("enum") or items.get("enum") or []
    return list(options) if isinstance(options, list) else []


def pause_prompt(pause: dict[str, Any]) -> str:
    """The question as the flow asked it (its ui prompt), else the pause's name."""
    ui, _ = pause_hints(pause)
    return str(ui.get("prompt") or pause["name"])


def _answer_hint(pause: dict[str, Any]) -> str:
    ui, schema = pause_hints(pause)
    kind = ui.get("kind")
    if kind == "multi_choice" or (schema.get("type") == "array" and pause_options(pause)):
        return "answer: the options' numbers or texts, separated by commas (empty for none)"
    if pause_options(pause):
        return "answer: the option's number or text"
    if kind == "confirm" or schema.get("type") == "boolean":
        return "answer: yes or no"
    if kind == "number" or schema.get("type") in ("number", "integer"):
        what = "a whole number" if schema.get("type") == "integer" else "a number"
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            return f"answer: {what} from {low} to {high}"
        if low is not None:
            return f"answer: {what}, at least {low}"
        return f"answer: {what}, at most {high}" if high is not None else f"answer: {what}"
    if kind == "text" or schema.get("type") == "string":
        default = schema.get("default", ui.get("default"))
        return "answer: text" + (f" (empty for {default!r})" if default is not None else "")
    if schema:
        return f"answer: JSON matching {json.dumps(schema, ensure_ascii=False)}"
    return "answer: any JSON value, or text"


def describe_pause(pause: dict[str, Any]) -> str:
    """The question as the flow asked it, its numbered options, what answer fits, and which
    pause of which play it is."""
    prompt = pause_prompt(pause)
    lines = [prompt]
    lines += [f"  {i}. {option}" for i, option in enumerate(pause_options(pause), 1)]
    where = [f"pause {pause['name']!r}"] if pause["name"] != prompt else []
    where += [f"resume id {pause['id']}", f"play {pause.get('play_sid') or '?'}"]
    lines.append(f"  {_answer_hint(pause)}   ({', '.join(where)})")
    return "\n".join(lines)


def show_waiting(rpc: Any, play_sid: str, *, header: str = "waiting for an answer to:") -> None:
    """Print a paused play's open questions and the command that answers them."""
    print(header)
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
