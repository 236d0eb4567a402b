"""``hero_logic run|retry|plays|tree|watch|wait|cancel``: starting plays and following them."""

from __future__ import annotations

import functools
import sys
import time
from typing import TYPE_CHECKING, Any

from hero_logic.kernel import PlayStatus

from ._common import (
    MAX_LIST,
    CliError,
    client,
    parse_inputs,
    parse_prefill,
    parse_since,
    print_json,
    resolve_preset,
    resolve_version,
    resolve_workflow,
    socket,
)
from ._report import report_play, show_tree, show_waiting

if TYPE_CHECKING:
    import argparse

    from ._live import LiveTree

__all__ = ["register"]


def _settled(play: dict[str, Any]) -> int:
    return 0 if play["status"] in ("success", "awaiting_resume") else 1


def _follow(args: argparse.Namespace, rpc: Any, play_sid: str) -> int:
    """What ``run`` and ``retry`` do once the play started: print its sid (``--no-wait``), or
    wait for it (drawing it live with ``--watch``) and show its tree and outcome."""
    if args.no_wait:
        print(play_sid)
        return 0
    if args.watch:
        _watch(args, play_sid)
    play = rpc.call("play_wait", {"play_sid": play_sid, "timeout_ms": 0})
    if args.json:
        print_json({"play": play, "spans": rpc.call("play_spans", {"play_sid": play_sid})})
        return _settled(play)
    if not args.watch:
        show_tree(rpc, play_sid)
    return report_play(rpc, play)


def _cmd_run(args: argparse.Namespace) -> int:
    with client(args) as rpc:
        wf = resolve_workflow(rpc, args.workflow)
        params: dict[str, Any] = {
            "workflow_sid": wf["sid"],
            "input_data": parse_inputs(args.input, wf["inputs"], args.input_json),
            "version_sid": resolve_version(rpc, wf, args.version)["sid"] if args.version else "",
            "timeout_ms": args.timeout_ms,
            "prefill_resumes": dict(args.prefill),
        }
        if args.preset:
            params["example_sid"] = resolve_preset(rpc, wf, args.preset)["sid"]
        return _follow(args, rpc, rpc.call("play_start", params))


def _cmd_retry(args: argparse.Namespace) -> int:
    with client(args) as rpc:
        play_sid = rpc.call("play_retry", {"play_sid": args.play, "reuse_steps": args.reuse_steps})
        if not (args.json or args.no_wait):
            how = "reusing its finished steps" if args.reuse_steps else "running every step afresh"
            print(f"retrying play {args.play} as play {play_sid}, {how}", flush=True)
        return _follow(args, rpc, play_sid)


def _cmd_plays(args: argparse.Namespace) -> int:
    from ._render import console, play_table

    if not 1 <= args.limit <= MAX_LIST:
        msg = f"--limit must be between 1 and {MAX_LIST}, got {args.limit}"
        raise CliError(msg)
    by_client = bool(args.name or args.since)  # play_list filters by workflow and status only
    with client(args) as rpc:
        params: dict[str, Any] = {"status": args.status, "limit": MAX_LIST if by_client else args.limit}
        names = {w["sid"]: w["name"] for w in rpc.call("workflow_list", {"limit": MAX_LIST})}
        if args.workflow:
            params["workflow_sid"] = resolve_workflow(rpc, args.workflow)["sid"]
        plays = rpc.call("play_list", params)
    searched = len(plays)
    if args.name:
        needle = args.name.casefold()
        plays = [p for p in plays if needle in p["name"].casefold()]
    if args.since:
        cutoff = args.since.cutoff_ms(int(time.time() * 1000))
        plays = [p for p in plays if p["created_at"] >= cutoff]
    plays = plays[: args.limit]
    if by_client and searched == MAX_LIST:
        print(f"note: only the newest {MAX_LIST} plays were searched; narrow with --workflow or --status", file=sys.stderr)
    if args.json:
        print_json(plays)
    elif not plays:
        filtered = args.workflow or args.status or args.name or args.since
        print("no plays match these filters" if filtered else "no plays yet: start one with 'hero_logic run FLOW'")
    else:
        console().print(play_table(plays, names))
    return 0


def _cmd_tree(args: argparse.Namespace) -> int:
    with client(args) as rpc:
        if args.json:
            print_json({
                "play": rpc.call("play_status", {"play_sid": args.play}),
                "spans": rpc.call("play_spans", {"play_sid": args.play}),
            })
        else:
            show_tree(rpc, args.play)
    return 0


def _watch(args: argparse.Namespace, play_sid: str) -> LiveTree:
    """Follow the play live until it ends or waits for an answer; returns what was seen."""
    import trio

    from ._live import watch_play
    from ._render import console

    tree: LiveTree = trio.run(functools.partial(watch_play, socket(args), play_sid, console(), until_settled=True))
    if not tree.settled:
        msg = (
            f"the live stream of play {play_sid} closed while it was {tree.status or 'unknown'} "
            f"(the service stopped or dropped a slow reader): follow it again with 'hero_logic watch {play_sid}'"
        )
        raise CliError(msg)
    return tree


def _cmd_watch(args: argparse.Namespace) -> int:
    from ._render import format_duration

    _watch(args, args.play)
    with client(args) as rpc:
        play = rpc.call("play_status", {"play_sid": args.play})
        if play["status"] == "awaiting_resume":
            show_waiting(rpc, play["sid"], header=f"play {play['sid']} is waiting for an answer to:")
            return 0
        print(f"play {play['sid']} ended: {play['status']} in {format_duration(play.get('duration_ms'))}")
        return report_play(rpc, play)


def _cmd_wait(args: argparse.Namespace) -> int:
    with client(args) as rpc:
        play = rpc.call("play_wait", {"play_sid": args.play, "timeout_ms": args.timeout_ms})
    print_json(play)
    return 0


def _cmd_cancel(args: argparse.Namespace) -> int:
    with client(args) as rpc:
        play = rpc.call("play_cancel", {"play_sid": args.play})
    print(f"play {play['sid']}: {play['status']}")
    return 0


def _add_follow_options(parser: argparse.ArgumentParser) -> None:
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--no-wait", action="store_true", help="print the play sid and return at once")
    how.add_argument("-w", "--watch", action="store_true", help="show the span tree live while the play runs")
    how.add_argument("--json", action="store_true", help="print play and spans as JSON once it ends or waits")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``run``, ``retry``, ``plays``, ``tree``, ``watch``, ``wait`` and ``cancel``."""
    run = sub.add_parser("run", help="run a workflow and show its span tree")
    run.add_argument("workflow", help="workflow name or sid")
    run.add_argument("-i", "--input", action="append", default=[], metavar="NAME=VALUE", help="an input (repeatable)")
    run.add_argument("--input-json", help="all inputs as a JSON object, or @file.json")
    run.add_argument("--preset", default="", metavar="NAME", help="start from this preset's inputs and answers (-i and --prefill go over them)")
    run.add_argument(
        "--prefill", action="append", default=[], type=parse_prefill, metavar="NAME=JSON",
        help="answer the pause NAME (or resume id) in advance (repeatable); a pause without one then fails the play",
    )
    run.add_argument("--version", default="", help="version sid or label (default: the preset's, else the current one)")
    run.add_argument("--timeout-ms", type=int, default=0, help="wall-clock limit (default: the service's)")
    _add_follow_options(run)
    run.set_defaults(func=_cmd_run)

    retry = sub.add_parser("retry", help="run an ended play again: same version, inputs and prefilled answers")
    retry.add_argument("play", help="play sid")
    retry.add_argument("--reuse-steps", action="store_true", help="replay the steps it finished; run from the one that failed")
    _add_follow_options(retry)
    retry.set_defaults(func=_cmd_retry)

    plays = sub.add_parser("plays", help="list plays, newest first")
    plays.add_argument("--workflow", default="", help="only plays of this workflow (name or sid)")
    plays.add_argument("--status", default="", choices=[s.value for s in PlayStatus], metavar="STATUS",
                       help=f"only plays in this status: {', '.join(s.value for s in PlayStatus)}")
    plays.add_argument("--name", default="", help="only plays whose name contains this (any case)")
    plays.add_argument("--since", type=parse_since, metavar="WHEN",
                       help="only plays created since: an age (10m, 2h, 1d) or an ISO date or time (local unless it has an offset)")
    plays.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    plays.add_argument("--json", action="store_true", help="print JSON")
    plays.set_defaults(func=_cmd_plays)

    tree = sub.add_parser("tree", aliases=["show"], help="show a play's span tree")
    tree.add_argument("play", help="play sid")
    tree.add_argument("--json", action="store_true", help="print play and spans as JSON")
    tree.set_defaults(func=_cmd_tree)

    watch = sub.add_parser(
        "watch", help="follow a play live until it ends or waits for an answer (a live tree on a terminal, plain lines elsewhere)"
    )
    watch.add_argument("play", help="play sid")
    watch.set_defaults(func=_cmd_watch)

    wait = sub.add_parser("wait", help="wait for a play to end or pause; print it as JSON")
    wait.add_argument("play", help="play sid")
    wait.add_argument("--timeout-ms", type=int, default=0, help="0 = forever")
    wait.set_defaults(func=_cmd_wait)

    cancel = sub.add_parser("cancel", help="cancel a play")
    cancel.add_argument("play", help="play sid")
    cancel.set_defaults(func=_cmd_cancel)
