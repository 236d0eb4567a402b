"""The ``hero_logic``, ``hero_logic_server`` and ``hero_logic_admin`` commands.

``hero_logic`` manages the service (``--start``, ``--stop``, ``--status``, ``--info``, ``serve``)
and talks to it over its RPC socket (``flow push``, ``flow list``, ``run``, ``plays``, ``tree``,
``watch``, ``wait``, ``cancel``). argparse (stdlib) builds the parser from the one settings table, so every
setting has the same flag everywhere.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from hero_logic.kernel import SETTINGS, Config, HeroLogicError

__all__ = ["admin_main", "main", "server_main"]


def _add_settings(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (flag > environment > default)")
    for setting in SETTINGS:
        group.add_argument(
            setting.flag,
            dest=setting.attr,
            default=None,
            metavar=setting.env,
            help=f"{setting.help} [env {setting.env}, default {setting.default or 'derived'}]",
        )


def _config(args: argparse.Namespace) -> Config:
    flags = {s.attr: getattr(args, s.attr, None) for s in SETTINGS}
    return Config.load(flags)


def _socket(args: argparse.Namespace) -> Path:
    if getattr(args, "socket", None):
        return Path(args.socket)
    return _config(args).rpc_socket


def _client(args: argparse.Namespace) -> Any:
    from hero_logic.rpc import Client

    return Client(_socket(args))


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


# -- service management --------------------------------------------------------------------------


def _cmd_serve(args: argparse.Namespace) -> int:
    from ._daemon import run_foreground

    return run_foreground(_config(args), admin=True)


def _cmd_info(args: argparse.Namespace) -> int:
    from hero_logic._service_toml import service_toml_text

    print(service_toml_text(), end="")
    return 0


# -- flows ---------------------------------------------------------------------------------------


def _cmd_flow_push(args: argparse.Namespace) -> int:
    from hero_logic.sdk import FlowSourceError, read_flow_signature

    path = Path(args.file)
    try:
        source = path.read_text()
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 1
    try:
        signature = read_flow_signature(source)
    except FlowSourceError as exc:
        print(f"error: {path}:{exc.line or '?'}: {exc.reason}", file=sys.stderr)
        return 1
    name = args.name or signature.entry_flow or path.stem
    with _client(args) as client:
        existing = [w for w in client.call("workflow_list", {"limit": 10000}) if w["name"] == name]
        if existing:
            version = client.call(
                "workflow_create_version",
                {"workflow_sid": existing[0]["sid"], "python_source": source, "version_label": args.label, "notes": args.notes},
            )
            print(f"pushed {name} as new version {version['version_label']} ({version['sid']}) of {existing[0]['sid']}")
        else:
            wf = client.call(
                "workflow_create",
                {"name": name, "description": args.description or signature.description, "python_source": source, "tags": args.tag},
            )
            print(f"created workflow {name} ({wf['sid']}), version {wf['current_version_sid']}")
    return 0


def _cmd_flow_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ._render import SID_WIDTH, console

    with _client(args) as client:
        flows = client.call("workflow_list", {"limit": args.limit})
    if args.json:
        _print_json(flows)
        return 0
    table = Table(show_edge=False, header_style="bold")
    for column in ("name", "sid", "inputs", "description"):
        table.add_column(column, no_wrap=column == "sid", min_width=SID_WIDTH if column == "sid" else None)
    for wf in flows:
        inputs = ", ".join(f"{f['name']}:{f['field_type']}" for f in wf["inputs"])
        table.add_row(wf["name"], wf["sid"], inputs, wf["description"][:60])
    console().print(table)
    return 0


def _resolve_workflow(client: Any, name_or_sid: str) -> dict[str, Any]:
    for wf in client.call("workflow_list", {"limit": 10000}):
        if name_or_sid in (wf["name"], wf["sid"]):
            return dict(wf)
    msg = f"no workflow named or with sid {name_or_sid!r}: push one with 'hero_logic flow push FILE'"
    msg_0 = f"error: {msg}"
    raise SystemExit(msg_0)


def _parse_inputs(pairs: list[str], fields: list[dict[str, Any]], raw_json: str | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if raw_json:
        text = Path(raw_json[1:]).read_text() if raw_json.startswith("@") else raw_json
        loaded = json.loads(text)
        if not isinstance(loaded, dict):
            msg = "error: --input-json must be a JSON object"
            raise SystemExit(msg)
        values.update(loaded)
    types = {f["name"]: f["field_type"] for f in fields}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            msg = f"error: -i expects name=value, got {pair!r}"
            raise SystemExit(msg)
        if types.get(key, "string") == "string":
            values[key] = value
        else:
            try:
                values[key] = json.loads(value)
            except json.JSONDecodeError:
                msg = f"error: input {key!r} is declared {types[key]}; {value!r} is not valid JSON"
                raise SystemExit(msg) from None
    return values


def _show_tree(client: Any, play_sid: str) -> dict[str, Any]:
    from ._render import console, span_tree

    play = client.call("play_status", {"play_sid": play_sid})
    spans = client.call("play_spans", {"play_sid": play_sid})
    console().print(span_tree(play, spans))
    return dict(play)


def _cmd_run(args: argparse.Namespace) -> int:
    from ._render import console

    with _client(args) as client:
        wf = _resolve_workflow(client, args.workflow)
        inputs = _parse_inputs(args.input, wf["inputs"], args.input_json)
        play_sid = client.call(
            "play_start",
            {"workflow_sid": wf["sid"], "input_data": inputs, "version_sid": args.version, "timeout_ms": args.timeout_ms},
        )
        if args.no_wait:
            print(play_sid)
            return 0
        if args.watch:
            _watch(args, play_sid, until_settled=True)
        play = client.call("play_wait", {"play_sid": play_sid, "timeout_ms": 0})
        if args.json:
            _print_json({"play": play, "spans": client.call("play_spans", {"play_sid": play_sid})})
        else:
            if not args.watch:
                _show_tree(client, play_sid)
            out = console()
            if play["status"] == "success":
                out.print("output:", json.dumps(play["output_data"], indent=2, ensure_ascii=False))
            elif play["status"] == "awaiting_resume":
                _show_waiting(client, play_sid)
            elif play["error_message"]:
                out.print(f"[red]error:[/red] {play['error_message']}", markup=True, highlight=False)
    return 0 if play["status"] in ("success", "awaiting_resume") else 1


def _cmd_search(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ._render import console

    with _client(args) as client:
        sids = client.call("flow_library_search", {"query": " ".join(args.query), "limit": args.limit})
        flows = [client.call("workflow_get", {"sid": sid}) for sid in sids]
    if args.json:
        _print_json(flows)
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


def _cmd_plays(args: argparse.Namespace) -> int:
    from ._render import console, play_table

    with _client(args) as client:
        params: dict[str, Any] = {"status": args.status, "limit": args.limit}
        names = {w["sid"]: w["name"] for w in client.call("workflow_list", {"limit": 10000})}
        if args.workflow:
            params["workflow_sid"] = _resolve_workflow(client, args.workflow)["sid"]
        plays = client.call("play_list", params)
    if args.json:
        _print_json(plays)
    else:
        console().print(play_table(plays, names))
    return 0


def _cmd_tree(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if args.json:
            _print_json({
                "play": client.call("play_status", {"play_sid": args.play}),
                "spans": client.call("play_spans", {"play_sid": args.play}),
            })
        else:
            _show_tree(client, args.play)
    return 0


def _watch(args: argparse.Namespace, play_sid: str, *, until_settled: bool) -> dict[str, Any]:
    """Draw the play's live span tree until it ends (or settles); returns the play."""
    import trio

    from ._live import watch_play
    from ._render import console

    tree = trio.run(
        functools.partial(watch_play, _socket(args), play_sid, console(), until_settled=until_settled)
    )
    return tree.play


def _cmd_watch(args: argparse.Namespace) -> int:
    play = _watch(args, args.play, until_settled=False)
    if play.get("error_message") and play.get("status") != "success":
        print(f"error: {play['error_message']}", file=sys.stderr)
    return 0 if play.get("status") == "success" else 1


def _cmd_wait(args: argparse.Namespace) -> int:
    with _client(args) as client:
        play = client.call("play_wait", {"play_sid": args.play, "timeout_ms": args.timeout_ms})
    _print_json(play)
    return 0


def _cmd_cancel(args: argparse.Namespace) -> int:
    with _client(args) as client:
        play = client.call("play_cancel", {"play_sid": args.play})
    print(f"play {play['sid']}: {play['status']}")
    return 0


def _describe_pause(pause: dict[str, Any]) -> str:
    ui = pause.get("ui") or {}
    lines = [f"{pause['name']}   (resume id {pause['id']}, play {pause.get('play_sid') or '?'})"]
    if ui.get("options"):
        lines += [f"  {i}. {option}" for i, option in enumerate(ui["options"], 1)]
    if pause.get("schema"):
        lines.append(f"  answer schema: {json.dumps(pause['schema'])}")
    return "\n".join(lines)


def _parse_answer(pause: dict[str, Any], text: str) -> Any:
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
    with _client(args) as client:
        pending = client.call("play_pending_resumes", {"play_sid": args.play})
        if not pending:
            play = client.call("play_status", {"play_sid": args.play})
            print(f"play {args.play} has no open pause (it is {play['status']})", file=sys.stderr)
            return 1
        if args.resume_id:
            chosen = [p for p in pending if args.resume_id in (p["id"], p["name"])]
            if not chosen:
                print(f"error: no open pause {args.resume_id!r}; open:\n" + "\n".join(_describe_pause(p) for p in pending), file=sys.stderr)
                return 1
            pause = chosen[0]
        else:
            pause = pending[0]
        print(_describe_pause(pause))
        while True:
            text = args.answer if args.answer is not None else input("answer> ")
            answer = _parse_answer(pause, text)
            problems = _schema_problems(pause, answer)
            if not problems:
                break
            print("that answer does not fit: " + "; ".join(problems), file=sys.stderr)
            if args.answer is not None:
                return 1
        result = client.call(
            "play_resume", {"play_sid": pause.get("play_sid") or args.play, "resume_id": pause["id"], "payload": answer}
        )
        print(f"resumed play {result['play_sid']} with {json.dumps(answer)}")
        if args.wait:
            play = client.call("play_wait", {"play_sid": args.play, "timeout_ms": 0})
            _show_tree(client, args.play)
            if play["status"] == "success":
                print("output:", json.dumps(play["output_data"], indent=2, ensure_ascii=False))
            elif play["status"] == "awaiting_resume":
                _show_waiting(client, args.play)
            elif play["error_message"]:
                print(f"error: {play['error_message']}", file=sys.stderr)
            return 0 if play["status"] in ("success", "awaiting_resume") else 1
    return 0


def _show_waiting(client: Any, play_sid: str) -> None:
    """Print a paused play's open questions and the command that answers them."""
    print("waiting for an answer to:")
    for pause in client.call("play_pending_resumes", {"play_sid": play_sid}):
        print("  " + _describe_pause(pause).replace("\n", "\n  "))
    print(f"answer with: hero_logic resume {play_sid} [--id RESUME_ID] [--answer ANSWER] --wait")


# -- parser --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``hero_logic`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="hero_logic",
        description="Runnable, observable, resumable Python flows. Start the service with "
        "'hero_logic serve' (foreground) or 'hero_logic --start' (background).",
    )
    lifecycle = parser.add_mutually_exclusive_group()
    lifecycle.add_argument("--start", action="store_true", help="start the service in the background (pid file)")
    lifecycle.add_argument("--stop", action="store_true", help="stop the background service")
    lifecycle.add_argument("--status", action="store_true", help="is the service running? (exit 0 if so)")
    lifecycle.add_argument("--info", action="store_true", help="print service.toml")
    parser.add_argument("--socket", help="RPC socket to talk to (default: derived from PATH_ROOT/PATH_SOCKET)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    _add_settings(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sub.add_parser("serve", help="run kernel + RPC server + web admin in the foreground").set_defaults(func=_cmd_serve)

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

    search = sub.add_parser("search", help="search the flow library (names, tags, fields, descriptions; typo tolerant)")
    search.add_argument("query", nargs="*", help="words to look for (none: the newest flows)")
    search.add_argument("--limit", type=int, default=10)
    search.add_argument("--json", action="store_true", help="print the matching workflows as JSON")
    search.set_defaults(func=_cmd_search)

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

    resume = sub.add_parser("resume", help="answer a paused play's question and continue it")
    resume.add_argument("play", help="play sid")
    resume.add_argument("--id", dest="resume_id", default="", help="resume id or pause name (default: the first open pause)")
    resume.add_argument("--answer", default=None, help="the answer (option number, yes/no, JSON or text); asked for when omitted")
    resume.add_argument("--wait", action="store_true", help="wait for the play to end or pause again and show its tree")
    resume.set_defaults(func=_cmd_resume)

    cancel = sub.add_parser("cancel", help="cancel a play")
    cancel.add_argument("play", help="play sid")
    cancel.set_defaults(func=_cmd_cancel)

    from ._events import add_events_commands

    add_events_commands(sub, _client)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``hero_logic``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per RPC call is noise here
    try:
        from hero_logic._service_toml import load_service_toml

        load_service_toml()
        if args.info:
            return _cmd_info(args)
        if args.start or args.stop or args.status:
            from ._daemon import start, status, stop

            config = _config(args)
            return start(config, sys.argv[1:]) if args.start else stop(config) if args.stop else status(config)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return int(args.func(args))
    except HeroLogicError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if getattr(exc, "data", None) and args.verbose:
            print(json.dumps(exc.data, indent=2), file=sys.stderr)
        return 1
    except ConnectionError as exc:  # the client's ServiceUnavailable says where and how to start
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def server_main(argv: list[str] | None = None) -> int:
    """Entry point of ``hero_logic_server``: kernel + RPC in the foreground."""
    parser = argparse.ArgumentParser(prog="hero_logic_server", description="hero_logic kernel + JSON-RPC server (foreground)")
    parser.add_argument("--info", action="store_true", help="print service.toml")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    _add_settings(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.info:
        return _cmd_info(args)
    try:
        from ._daemon import run_foreground

        return run_foreground(_config(args))
    except HeroLogicError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1


def admin_main(argv: list[str] | None = None) -> int:
    """Entry point of ``hero_logic_admin``: the web admin in the foreground, talking to a
    running service over its RPC socket."""
    parser = argparse.ArgumentParser(
        prog="hero_logic_admin",
        description="hero_logic web admin (foreground): serves admin.sock and --admin-bind, "
        "and talks to the service over its RPC socket",
    )
    parser.add_argument("--info", action="store_true", help="print service.toml")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    _add_settings(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # the admin's every RPC call is noise here
    if args.info:
        return _cmd_info(args)
    try:
        from hero_logic.admin import run_admin

        return run_admin(_config(args))
    except HeroLogicError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
