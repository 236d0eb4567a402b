"""``hero_logic resume``: show a paused play's question, read and check the answer, send it."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from ._common import client
from ._report import describe_pause, report_play, show_tree

if TYPE_CHECKING:
    import argparse

__all__ = ["parse_answer", "register"]


def parse_answer(pause: dict[str, Any], text: str) -> Any:
    """The typed answer for ``pause`` from what a person typed (option number, JSON, or text)."""
    ui = pause.get("ui") or {}
    schema = pause.get("schema") or {}
    kind = ui.get("kind")
    options = ui.get("options") or []
    if kind == "choice" and text.strip().isdigit() and 1 <= int(text) <= len(options):
        return options[int(text) - 1]
    if kind == "multi_choice" and text.strip():
        picked = []
        for part in text.split(","):
            part = part.strip()
            picked.append(options[int(part) - 1] if part.isdigit() and 1 <= int(part) <= len(options) else part)
        return picked
    if kind == "confirm" or schema.get("type") == "boolean":
        lowered = text.strip().lower()
        if lowered in ("y", "yes", "true", "1"):
            return True
        if lowered in ("n", "no", "false", "0"):
            return False
    if schema.get("type") == "string" or kind in ("text", "choice"):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _schema_problems(pause: dict[str, Any], answer: Any) -> list[str]:
    schema = pause.get("schema")
    if not isinstance(schema, dict) or not schema:
        return []
    import jsonschema

    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)(schema)
    return [e.message for e in validator.iter_errors(answer)]


def _cmd_resume(args: argparse.Namespace) -> int:
    with client(args) as rpc:
        pending = rpc.call("play_pending_resumes", {"play_sid": args.play})
        if not pending:
            play = rpc.call("play_status", {"play_sid": args.play})
            print(f"play {args.play} has no open pause (it is {play['status']})", file=sys.stderr)
            return 1
        if args.resume_id:
            chosen = [p for p in pending if args.resume_id in (p["id"], p["name"])]
            if not chosen:
                print(f"error: no open pause {args.resume_id!r}; open:\n" + "\n".join(describe_pause(p) for p in pending), file=sys.stderr)
                return 1
            pause = chosen[0]
        else:
            pause = pending[0]
        print(describe_pause(pause))
        while True:
            text = args.answer if args.answer is not None else input("answer> ")
            answer = parse_answer(pause, text)
            problems = _schema_problems(pause, answer)
            if not problems:
                break
            print("that answer does not fit: " + "; ".join(problems), file=sys.stderr)
            if args.answer is not None:
                return 1
        result = rpc.call(
            "play_resume", {"play_sid": pause.get("play_sid") or args.play, "resume_id": pause["id"], "payload": answer}
        )
        print(f"resumed play {result['play_sid']} with {json.dumps(answer)}")
        if args.wait:
            play = rpc.call("play_wait", {"play_sid": args.play, "timeout_ms": 0})
            show_tree(rpc, args.play)
            return report_play(rpc, play)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``resume``."""
    resume = sub.add_parser("resume", help="answer a paused play's question and continue it")
    resume.add_argument("play", help="play sid")
    resume.add_argument("--id", dest="resume_id", default="", help="resume id or pause name (default: the first open pause)")
    resume.add_argument("--answer", default=None, help="the answer (option number, yes/no, JSON or text); asked for when omitted")
    resume.add_argument("--wait", action="store_true", help="wait for the play to end or pause again and show its tree")
    resume.set_defaults(func=_cmd_resume)
