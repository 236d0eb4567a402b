"""``hero_logic events send|list``, and how the CLI says what a waiting play waits for."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

__all__ = ["add_events_commands", "register"]


def _cmd_send(args: argparse.Namespace) -> int:
    try:
        payload = json.loads(args.payload) if args.payload is not None else None
    except json.JSONDecodeError as exc:
        msg = f"--payload is not JSON ({exc}): quote strings, e.g. --payload '\"text\"' or --payload '{{\"id\": 7}}'"
        raise SystemExit(msg) from None
    params: dict[str, Any] = {"key": args.key, "payload": payload}
    if args.idempotency_key:
        params["idempotency_key"] = args.idempotency_key
    with args.client(args) as client:
        sent = client.call("event_send", params)
    if args.json:
        print(json.dumps(sent, indent=2, ensure_ascii=False))
        return 0
    delivered = sent["delivered_to"]
    how = "already sent with this idempotency key; " if sent.get("duplicate") else ""
    print(f"event {sent['event_id']}: {how}delivered to {len(delivered)} play(s)")
    for play_sid in delivered:
        print(f"  {play_sid}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ._render import console

    with args.client(args) as client:
        events = client.call("event_list", {"key_prefix": args.prefix, "limit": args.limit})
    if args.json:
        print(json.dumps(events, indent=2, ensure_ascii=False))
        return 0
    if not events:
        print("no events kept (events are kept for HERO_LOGIC_EVENT_RETENTION_MS after they are sent)")
        return 0
    table = Table(show_edge=False, header_style="bold")
    for column in ("event", "key", "sent", "delivered to", "payload"):
        table.add_column(column, no_wrap=column in ("event", "sent"))
    for event in events:
        sent = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event["sent_at"] / 1000))
        payload = json.dumps(event["payload"], ensure_ascii=False)
        table.add_row(event["event_id"], event["key"], sent, ", ".join(event["delivered_to"]) or "-", payload[:60])
    console().print(table)
    return 0


def add_events_commands(sub: Any, client: Callable[[argparse.Namespace], Any]) -> None:
    """Add ``events send`` and ``events list`` to the ``hero_logic`` subcommands ``sub``."""
    events = sub.add_parser("events", help="send events to waiting plays (flow.wait_event), list sent events")
    events_sub = events.add_subparsers(dest="events_command", metavar="EVENTS_COMMAND", required=True)
    send = events_sub.add_parser("send", help="send an event: every play waiting for KEY receives it")
    send.add_argument("key", help="the event key, e.g. payment:order-42")
    send.add_argument("--payload", default=None, help="the payload as JSON (default null)")
    send.add_argument("--idempotency-key", default="", help="send at most once per key (within the retention)")
    send.add_argument("--json", action="store_true", help="print the result as JSON")
    send.set_defaults(func=_cmd_send, client=client)
    listing = events_sub.add_parser("list", help="list sent events, newest first")
    listing.add_argument("--prefix", default="", help="only keys starting with this")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=_cmd_list, client=client)


def register(sub: Any) -> None:
    """Add ``events send`` and ``events list``."""
    from ._common import client

    add_events_commands(sub, client)
