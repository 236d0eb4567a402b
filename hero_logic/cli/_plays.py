"""``hero_logic run|plays|tree|watch|wait|cancel``: starting plays and following them."""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING, Any

from ._common import MAX_LIST, client, parse_inputs, print_json, resolve_workflow, socket
from ._report import report_play, show_tree

if TYPE_CHECKING:
    import argparse

__all__ = ["register"]


def _cmd_run(args: argparse.Namespace) -> int:
    with client(args) as rpc:
        wf = resolve_workflow(rpc, args.workflow)
        inputs = parse_inputs(args.input, wf["inputs"], args.input_json)
        play_sid = rpc.call(
            "play_start",
            {"workflow_sid": wf["sid"], "input_data": inputs, "version_sid": args.version, "timeout_ms": args.timeout_ms},
        )
        if args.no_wait:
            print(play_sid)
            return 0
        if args.watch:
            _watch(args, play_sid, until_settled=True)
        play = rpc.call("play_wait", {"play_sid": play_sid, "timeout_ms": 0})
        if args.json:
            print_json({"play": play, "spans": rpc.call("play_spans", {"play_sid": play_sid})})
            return 0 if play["status"] in ("success", "awaiting_resume") else 1
        if not args.watch:
            show_tree(rpc, play_sid)
        return report_play(rpc, play)


def _cmd_plays(args: argparse.Namespace) -> int:
    from ._render import console, play_table

    with client(args) as rpc:
        params: dict[str, Any] = {"status": args.status, "limit": args.limit}
        names = {w["sid"]: w["name"] for w in rpc.call("workflow_list", {"limit": MAX_LIST})}
        if args.workflow:
            params["workflow_sid"] = resolve_workflow(rpc, args.workflow)["sid"]
        plays = rpc.call("play_list", params)
    if args.json:
        print_json(plays)
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


def _watch(args: argparse.Namespace, play_sid: str, *, until_settled: bool) -> dict[str, Any]:
    """Draw the play's live span tree until it ends (or settles); returns the play."""
    import trio

    from ._live import watch_play
    from ._render import console

    tree = trio.run(
        functools.partial(watch_play, socket(args), play_sid, console(), until_settled=until_settled)
    )
    return tree.play


def _cmd_watch(args: argparse.Namespace) -> int:
    play = _watch(args, args.play, until_settled=False)
    if play.get("error_message") and play.get("status") != "success":
        print(f"error: {play['error_message']}", file=sys.stderr)
    return 0 if play.get("status") == "success" else 1


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


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``run``, ``plays``, ``tree``, ``watch``, ``wait`` and ``cancel``."""
    run = sub.add_parser("run", help="run a workflow and show its span tree")
    run.add_argument("workflow", help="workflow name or sid")
    run.add_argument("-i", "--input", action="append", default=[], metavar="NAME=VALUE", help="an input (repeatable)")
    run.add_argument("--input-json", help="all inputs as a JSON object, or @file.json")
    run.add_argument("--version", default="", help="version sid (default: current)")
    run.add_argument("--timeout-ms", type=int, default=0, help="wall-clock limit (default: the service's)")
    run.add_argument("--no-wait", action="store_true", help="print the play sid and return at once")
    run.add_argument("-w", "--watch", action="store_true", help="show the span tree live while the play runs")
    run.add_argument("--json", action="store_true", help="print play and spans as JSON")
    run.set_defaults(func=_cmd_run)

    plays = sub.add_parser("plays", help="list plays, newest first")
    plays.add_argument("--workflow", default="", help="only plays of this workflow (name or sid)")
    plays.add_argument("--status", default="", help="only plays in this status")
    plays.add_argument("--limit", type=int, default=20)
    plays.add_argument("--json", action="store_true", help="print JSON")
    plays.set_defaults(func=_cmd_plays)

    tree = sub.add_parser("tree", aliases=["show"], help="show a play's span tree")
    tree.add_argument("play", help="play sid")
    tree.add_argument("--json", action="store_true", help="print play and spans as JSON")
    tree.set_defaults(func=_cmd_tree)

    watch = sub.add_parser("watch", help="follow a play's span tree live until it ends")
    watch.add_argument("play", help="play sid")
    watch.set_defaults(func=_cmd_watch)

    wait = sub.add_parser("wait", help="wait for a play to end or pause; print it as JSON")
    wait.add_argument("play", help="play sid")
    wait.add_argument("--timeout-ms", type=int, default=0, help="0 = forever")
    wait.set_defaults(func=_cmd_wait)

    cancel = sub.add_parser("cancel", help="cancel a play")
    cancel.add_argument("play", help="play sid")
    cancel.set_defaults(func=_cmd_cancel)
