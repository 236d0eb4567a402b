"""``hero_logic schedules create|list|show|pause|resume|trigger|backfill|delete``."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

__all__ = ["register"]


def _when(ms: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) if ms else "-"


def _timing(schedule: dict[str, Any]) -> str:
    if schedule["cron"]:
        return f"cron '{schedule['cron']}' {schedule['timezone']}"
    return f"every {schedule['every_s']} s"


def _print(args: argparse.Namespace, result: Any) -> None:
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return
    if isinstance(result, dict):
        state = "paused" if result["paused"] else f"next {_when(result['next_fire_at'])}"
        print(f"schedule {result['sid']} {result['name']!r}: {_timing(result)}, overlap {result['overlap']}, {state}")
        print(f"  last fired {_when(result['last_fire_at'])} ({result['last_play_sid'] or 'no play yet'}), "
              f"missed {result['missed_ticks']}")
        if result.get("last_error"):
            print(f"  last error: {result['last_error']}")
    elif isinstance(result, list):
        print("\n".join(result) if result else "no plays")
    else:
        print(result)


def _json_arg(text: str, flag: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"{flag} is not JSON ({exc}): e.g. {flag} '{{\"n\": 1}}'"
        raise SystemExit(msg) from None


def _cmd_create(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {
        "workflow_sid": args.workflow_sid, "cron": args.cron, "every_s": args.every, "timezone": args.timezone,
        "input_data": _json_arg(args.input, "--input"), "example_sid": args.example, "version_sid": args.version,
        "overlap": args.overlap, "catchup_window_s": args.catchup_window, "name": args.name, "paused": args.paused,
    }
    with args.client(args) as client:
        _print(args, client.call("schedule_create", params))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ._render import console

    with args.client(args) as client:
        schedules = client.call("schedule_list", {"workflow_sid": args.workflow_sid})
    if args.json:
        print(json.dumps(schedules, indent=2, ensure_ascii=False))
        return 0
    if not schedules:
        print("no schedules: create one with `hero_logic schedules create WORKFLOW_SID --every 3600`")
        return 0
    table = Table(show_edge=False, header_style="bold")
    for column in ("schedule", "name", "when", "overlap", "next fire", "last play", "missed"):
        table.add_column(column, no_wrap=column in ("schedule", "next fire"))
    for s in schedules:
        table.add_row(s["sid"], s["name"], _timing(s), s["overlap"], "paused" if s["paused"] else _when(s["next_fire_at"]),
                      s["last_play_sid"] or "-", str(s["missed_ticks"]))
    console().print(table)
    return 0


def _ms(text: str, name: str) -> int:
    from datetime import datetime

    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        msg = f"{name} {text!r} is neither ms since the epoch nor ISO 8601 with a zone, e.g. 2025-03-01T00:00Z"
        raise SystemExit(msg)
    return int(moment.timestamp() * 1000)


def _cmd_backfill(args: argparse.Namespace) -> int:
    params = {"sid": args.sid, "start_ms": _ms(args.start, "START"), "end_ms": _ms(args.end, "END")}
    with args.client(args) as client:
        _print(args, client.call("schedule_backfill", params))
    return 0


def _simple(method: str, **fields: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        params = {name: getattr(args, attr) for name, attr in fields.items()}
        with args.client(args) as client:
            _print(args, client.call(method, params))
        return 0

    return run


def register(sub: Any) -> None:
    """Add the ``schedules`` commands."""
    from ._common import client

    schedules = sub.add_parser("schedules", help="start plays on a cron expression or a fixed interval")
    s_sub = schedules.add_subparsers(dest="schedules_command", metavar="SCHEDULES_COMMAND", required=True)
    create = s_sub.add_parser("create", help="create a schedule: give --cron or --every")
    create.add_argument("workflow_sid")
    create.add_argument("--cron", default="", help="five fields, e.g. '0 9 * * 1-5'")
    create.add_argument("--every", type=int, default=0, help="seconds between ticks (instead of --cron)")
    create.add_argument("--timezone", default="UTC", help="IANA zone of --cron, e.g. Europe/Paris")
    create.add_argument("--input", default="{}", help="the plays' inputs as a JSON object")
    create.add_argument("--example", default="", help="run from this preset (example sid)")
    create.add_argument("--version", default="", help="pin a version (default: the current one at each tick)")
    create.add_argument("--overlap", default="skip",
                        choices=("skip", "buffer_one", "buffer_all", "cancel_other", "allow_all"))
    create.add_argument("--catchup-window", type=int, default=3600, help="seconds within which late ticks still fire")
    create.add_argument("--name", default="", help="the schedule's name (plays are named schedule:NAME:TICK)")
    create.add_argument("--paused", action="store_true", help="create it paused")
    create.set_defaults(func=_cmd_create)
    listing = s_sub.add_parser("list", help="list schedules")
    listing.add_argument("--workflow-sid", default="", help="only this workflow's")
    listing.set_defaults(func=_cmd_list)
    for name, method, text in (
        ("show", "schedule_get", "show a schedule"),
        ("pause", "schedule_pause", "stop firing"),
        ("resume", "schedule_resume", "fire again from the next tick"),
        ("trigger", "schedule_trigger", "start a play now"),
        ("delete", "schedule_delete", "delete a schedule (its plays are kept)"),
    ):
        cmd = s_sub.add_parser(name, help=text)
        cmd.add_argument("sid")
        cmd.set_defaults(func=_simple(method, sid="sid"))
    backfill = s_sub.add_parser("backfill", help="start the plays of every tick in [START, END)")
    backfill.add_argument("sid")
    backfill.add_argument("start", help="ms since the epoch, or ISO 8601 with a zone (2025-03-01T00:00Z)")
    backfill.add_argument("end", help="ms since the epoch, or ISO 8601 with a zone")
    backfill.set_defaults(func=_cmd_backfill)
    for parser in (create, listing, backfill, *(s_sub.choices[n] for n in ("show", "pause", "resume", "trigger", "delete"))):
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.set_defaults(client=client)
