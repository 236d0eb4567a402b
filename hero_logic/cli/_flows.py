"""``hero_logic flow push|list`` and ``hero_logic search``: workflows and the flow library."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ._common import MAX_LIST, CliError, client, print_json
from ._resources import report_environment

if TYPE_CHECKING:
    import argparse

__all__ = ["register"]


def _cmd_flow_push(args: argparse.Namespace) -> int:
    from hero_logic.sdk import FlowSourceError, read_flow_signature

    path = Path(args.file)
    try:
        source = path.read_text()
    except OSError as exc:
        msg = f"cannot read the flow file {str(path)!r}: {exc.strerror}; give the path of a Python file with a @flow function"
        raise CliError(msg) from None
    try:
        signature = read_flow_signature(source)
    except FlowSourceError as exc:
        msg = f"{path}:{exc.line or '?'}: {exc.reason}"
        raise CliError(msg) from None
    name = args.name or signature.entry_flow or path.stem
    with client(args) as rpc:
        existing = [w for w in rpc.call("workflow_list", {"limit": MAX_LIST}) if w["name"] == name]
        if existing:
            version = rpc.call(
                "workflow_create_version",
                {"workflow_sid": existing[0]["sid"], "python_source": source, "version_label": args.label, "notes": args.notes},
            )
            print(f"pushed {name} as new version {version['version_label']} ({version['sid']}) of {existing[0]['sid']}")
            version_sid = version["sid"]
        else:
            wf = rpc.call(
                "workflow_create",
                {"name": name, "description": args.description or signature.description, "python_source": source, "tags": args.tag},
            )
            print(f"created workflow {name} ({wf['sid']}), version {wf['current_version_sid']}")
            version_sid = wf["current_version_sid"]
        return report_environment(rpc, version_sid)


def _cmd_flow_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ._render import SID_WIDTH, console

    with client(args) as rpc:
        flows = rpc.call("workflow_list", {"limit": args.limit})
    if args.json:
        print_json(flows)
        return 0
    table = Table(show_edge=False, header_style="bold")
    for column in ("name", "sid", "inputs", "description"):
        table.add_column(column, no_wrap=column == "sid", min_width=SID_WIDTH if column == "sid" else None)
    for wf in flows:
        inputs = ", ".join(f"{f['name']}:{f['field_type']}" for f in wf["inputs"])
        table.add_row(wf["name"], wf["sid"], inputs, wf["description"][:60])
    console().print(table)
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ._render import console

    with client(args) as rpc:
        sids = rpc.call("flow_library_search", {"query": " ".join(args.query), "limit": args.limit})
        flows = [rpc.call("workflow_get", {"sid": sid}) for sid in sids]
    if args.json:
        print_json(flows)
        return 0
    if not flows:
        print("no flow matches; 'hero_logic flow list' shows them all")
        return 1
    table = Table(show_edge=False, header_style="bold")
    for column in ("#", "name", "tags", "inputs", "description"):
        table.add_column(column)
    for rank, wf in enumerate(flows, 1):
        inputs = ", ".join(f"{f['name']}:{f['field_type']}" for f in wf["inputs"])
        table.add_row(str(rank), wf["name"], ", ".join(wf["tags"]), inputs, wf["description"][:70])
    console().print(table)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``flow`` and ``search``."""
    flow = sub.add_parser("flow", help="manage flows (workflows)")
    flow_sub = flow.add_subparsers(dest="flow_command", metavar="FLOW_COMMAND", required=True)
    push = flow_sub.add_parser("push", help="save a flow file as a workflow, or as a new version of it")
    push.add_argument("file", help="a Python file with a @flow function")
    push.add_argument("--name", help="workflow name (default: the @flow name)")
    push.add_argument("--description", default="", help="description (default: the @flow description)")
    push.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    push.add_argument("--label", default="", help="version label (default v<N>)")
    push.add_argument("--notes", default="", help="version notes")
    push.set_defaults(func=_cmd_flow_push)
    listing = flow_sub.add_parser("list", help="list workflows")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=_cmd_flow_list)

    search = sub.add_parser("search", help="search the flow library (names, tags, fields, descriptions; typo tolerant)")
    search.add_argument("query", nargs="*", help="words to look for (none: the newest flows)")
    search.add_argument("--limit", type=int, default=10)
    search.add_argument("--json", action="store_true", help="print the matching workflows as JSON")
    search.set_defaults(func=_cmd_search)
