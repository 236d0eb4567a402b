"""``hero_logic webhooks``: inbound webhooks on the ingress (see docs/webhooks.md)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ._common import client, print_json, resolve_workflow

if TYPE_CHECKING:
    import argparse

__all__ = ["register"]


def _cmd_create(args: argparse.Namespace) -> int:
    with client(args) as rpc:
        params: dict[str, Any] = {"name": args.name, "action": args.action, "scheme": args.scheme}
        if args.workflow:
            params["workflow_sid"] = resolve_workflow(rpc, args.workflow)["sid"]
        if args.event_key:
            params["event_key"] = args.event_key
        hook = rpc.call("webhook_create", params)
    if args.json:
        print_json(hook)
        return 0
    print(f"webhook {hook['name']} ({hook['sid']})")
    print(f"  url:    {hook['url']}")
    if hook.get("secret"):
        print(f"  secret: {hook['secret']}   (shown once: keep it in the sender's settings)")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    with client(args) as rpc:
        hooks = rpc.call("webhook_list", {})
    if args.json:
        print_json(hooks)
        return 0
    for hook in hooks:
        target = hook["workflow_sid"] if hook["action"] == "start" else hook["event_key"]
        print(f"{hook['sid']}  {hook['name']:<20} {hook['action']:<6} {hook['scheme']:<12} {target}  {hook['url']}")
    return 0


def _cmd_delete(args: argparse.Namespace) -> int:
    with client(args) as rpc:
        rpc.call("webhook_delete", {"sid": args.sid})
    print(f"webhook {args.sid} deleted")
    return 0


def _cmd_deliveries(args: argparse.Namespace) -> int:
    with client(args) as rpc:
        deliveries = rpc.call("webhook_deliveries", {"sid": args.sid, "limit": args.limit})
    if args.json:
        print_json(deliveries)
        return 0
    for d in deliveries:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(d["received_at"] / 1000))
        made = d.get("play_sid") or d.get("event_id") or ""
        print(f"{stamp}  {d['status']}  {d['outcome'][:60]:<60} {made}{'  (repeat)' if d.get('repeat') else ''}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``webhooks create|list|delete|deliveries``."""
    hooks = sub.add_parser("webhooks", help="inbound webhooks that start plays or send events (docs/webhooks.md)")
    hooks_sub = hooks.add_subparsers(dest="webhooks_command", metavar="WEBHOOKS_COMMAND", required=True)
    create = hooks_sub.add_parser("create", help="create a webhook; prints its URL and, once, its secret")
    create.add_argument("name")
    create.add_argument("--action", choices=("start", "event"), default="start", help="start a play, or send an event")
    create.add_argument("--workflow", default="", help="the workflow a 'start' webhook starts (name or sid)")
    create.add_argument("--event-key", default="", help="an 'event' webhook's key template, e.g. 'payment:{data.object.id}'")
    create.add_argument("--scheme", choices=("hmac-sha256", "github", "stripe", "none"), default="hmac-sha256")
    create.add_argument("--json", action="store_true", help="print JSON")
    create.set_defaults(func=_cmd_create)
    listing = hooks_sub.add_parser("list", help="list webhooks (never their secrets)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=_cmd_list)
    delete = hooks_sub.add_parser("delete", help="delete a webhook")
    delete.add_argument("sid")
    delete.set_defaults(func=_cmd_delete)
    deliveries = hooks_sub.add_parser("deliveries", help="the newest deliveries to a webhook and what came of each")
    deliveries.add_argument("sid")
    deliveries.add_argument("--limit", type=int, default=50)
    deliveries.add_argument("--json", action="store_true", help="print JSON")
    deliveries.set_defaults(func=_cmd_deliveries)
