"""``hero_logic resume``: show a paused play's question, read and check the answer, send it."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from ._common import CliError, client
from ._report import (
    describe_pause,
    pause_hints,
    pause_options,
    pause_prompt,
    report_play,
    show_tree,
)

if TYPE_CHECKING:
    import argparse

__all__ = ["parse_answer", "register"]


def _option(options: list[Any], text: str) -> Any:
    """The option ``text`` names, by number (1-based) or by its own text; else ``text``."""
    stripped = text.strip()
    if stripped.isdigit() and 1 <= int(stripped) <= len(options):
        return options[int(stripped) - 1]
    return next((o for o in options if str(o) == stripped), stripped)


def parse_answer(pause: dict[str, Any], text: str) -> Any:
    """The typed answer for ``pause`` from what a person typed (option number, yes/no, JSON, or text)."""
    ui, schema = pause_hints(pause)
    kind = ui.get("kind")
    options = pause_options(pause)
    if kind == "multi_choice" or (schema.get("type") == "array" and options):
        return [_option(options, part) for part in text.split(",") if part.strip()]
    if options:
        return _option(options, text)
    if kind == "confirm" or schema.get("type") == "boolean":
        lowered = text.strip().lower()
        if lowered in ("y", "yes", "true", "1"):
            return True
        if lowered in ("n", "no", "false", "0"):
            return False
    if not text.strip() and "default" in schema:
        return schema["default"]
    if schema.get("type") == "string" or kind == "text":
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


def _ask(pause: dict[str, Any], play_sid: str) -> str:
    """One line from the person at the prompt; a clean CliError when none comes."""
    waits = f"play {play_sid} still waits for {pause_prompt(pause)!r}"
    fresh_line = "\n" if sys.stdin.isatty() else ""  # after the ^C or ^D the terminal echoed
    try:
        return input("answer> ")
    except EOFError:
        msg = f"{fresh_line}no answer given (the input ended): {waits}; answer without a prompt with 'hero_logic resume {play_sid} --answer ANSWER'"
        raise CliError(msg, prefix="error: ") from None
    except KeyboardInterrupt:
        msg = f"{fresh_line}interrupted: no answer sent; {waits}"
        raise CliError(msg, exit_code=130, prefix="") from None


def _cmd_resume(args: argparse.Namespace) -> int:
    with client(args) as rpc:
        pending = rpc.call("play_pending_resumes", {"play_sid": args.play})
        if not pending:
            play = rpc.call("play_status", {"play_sid": args.play})
            msg = f"play {args.play} has no open question to answer (it is {play['status']}): see where it stands with 'hero_logic tree {args.play}'"
            raise CliError(msg)
        if args.resume_id:
            chosen = [p for p in pending if args.resume_id in (p["id"], p["name"])]
            if not chosen:
                listed = "\n".join(describe_pause(p) for p in pending)
                msg = f"play {args.play} has no open pause {args.resume_id!r}; give --id one of these:\n{listed}"
                raise CliError(msg)
            pause = chosen[0]
        else:
            pause = pending[0]
        print(describe_pause(pause))
        if len(pending) > 1 and not args.resume_id:
            print(f"  ({len(pending) - 1} more open: 'hero_logic resume {args.play} --id RESUME_ID' answers another)")
        while True:
            text = args.answer if args.answer is not None else _ask(pause, args.play)
            answer = parse_answer(pause, text)
            problems = _schema_problems(pause, answer)
            if not problems:
                break
            print(f"that answer does not fit: {'; '.join(problems)}", file=sys.stderr)
            if args.answer is not None:
                return 1
        result = rpc.call(
            "play_resume", {"play_sid": pause.get("play_sid") or args.play, "resume_id": pause["id"], "payload": answer}
        )
        print(f"resumed play {result['play_sid']} with {json.dumps(answer, ensure_ascii=False)}")
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
