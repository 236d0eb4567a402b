"""``hero_logic fork PLAY --from SPAN``: a new play that reuses what an ended play did before
one of its steps, on the same or another version (``play_fork``).

``--from`` takes a step's span id (``hero_logic tree PLAY --json`` lists them) or ``failed``:
the step that failed the play, found down from its root along the last failed span.
``--version`` takes a version sid or label, or ``current`` (the workflow's current version);
by default the fork runs on the play's own version. ``--input-json`` gives other inputs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

__all__ = ["failed_step", "register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``fork`` command."""
    fork = sub.add_parser(
        "fork",
        help="start a new play that reuses what an ended play finished before one of its steps",
        description="Reuse every step an ended play finished, and every answer it received, before "
        "the step --from; run that step and everything after it afresh, on --version.",
    )
    fork.add_argument("play", help="the play sid to fork")
    fork.add_argument(
        "--from", dest="from_span", required=True, metavar="SPAN",
        help="the step span to run afresh from: its span id, or 'failed' for the step that failed the play",
    )
    fork.add_argument(
        "--version", default="", metavar="V",
        help="version sid or label to run on, or 'current' (default: the play's own version)",
    )
    fork.add_argument("--input-json", metavar="JSON", help="the fork's inputs as a JSON object, or @file.json (default: the play's)")
    fork.add_argument("--wait", action="store_true", help="wait for the fork to end or pause and report it")
    fork.add_argument("--json", action="store_true", help="with --wait, print the fork's play record as JSON")
    fork.set_defaults(func=_cmd_fork)


class _Refused(Exception):
    """A mistake in the command line, said with its fix."""


def failed_step(spans: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The step that failed the play: down from the root span, along the last failed (or timed
    out) child at each level, the deepest one that is a step (has a step key)."""
    children: dict[str, list[dict[str, Any]]] = {}
    ids = {s["span_id"] for s in spans}
    roots = []
    for span in spans:
        if span.get("parent_id") in ids:
            children.setdefault(span["parent_id"], []).append(span)
        else:
            roots.append(span)
    at = next((s for s in roots if s.get("kind") == "flow_root"), roots[0] if roots else None)
    found = at if at is not None and at.get("step_key") else None
    while at is not None:
        failed = [s for s in children.get(at["span_id"], []) if s.get("status") in ("failed", "timed_out")]
        at = failed[-1] if failed else None
        if at is not None and at.get("step_key"):
            found = at
    return found


def _version(rpc: Any, play: dict[str, Any], wanted: str) -> str:
    if not wanted:
        return ""
    if wanted == "current":
        wf = rpc.call("workflow_get", {"sid": play["workflow_sid"]})
        return str(wf["current_version_sid"])
    versions = rpc.call("workflow_version_list", {"workflow_sid": play["workflow_sid"]})
    for version in versions:
        if wanted in (version["sid"], version.get("version_label")):
            return str(version["sid"])
    known = ", ".join(v.get("version_label") or v["sid"] for v in versions) or "none"
    msg = f"--version {wanted!r} is no version of this play's workflow (its versions: {known}): pass a sid, a label or 'current'"
    raise _Refused(msg)


def _inputs(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    what = "--input-json"
    if text.startswith("@"):
        what = f"the file {text[1:]!r}"
        try:
            text = Path(text[1:]).read_text()
        except OSError as exc:
            msg = f"--input-json: cannot read {what}: {exc.strerror}"
            raise _Refused(msg) from None
    try:
        value = json.loads(text)
    except ValueError as exc:
        msg = f"{what} is not JSON ({exc}): pass an object such as '{{\"rows\": 3}}'"
        raise _Refused(msg) from None
    if not isinstance(value, dict):
        msg = f"{what} holds a JSON {type(value).__name__}, not an object: pass an object such as '{{\"rows\": 3}}'"
        raise _Refused(msg)
    return value


def _client(args: argparse.Namespace) -> Any:
    """The RPC client for ``--socket``, else the settings' socket (as every command finds it)."""
    from hero_logic.kernel import SETTINGS, Config
    from hero_logic.rpc import Client

    if getattr(args, "socket", None):
        return Client(Path(args.socket))
    return Client(Config.load({s.attr: getattr(args, s.attr, None) for s in SETTINGS}).rpc_socket)


def _cmd_fork(args: argparse.Namespace) -> int:
    try:
        inputs = _inputs(args.input_json)
        with _client(args) as rpc:
            play = rpc.call("play_status", {"play_sid": args.play})
            span_id = args.from_span
            if span_id == "failed":
                step = failed_step(rpc.call("play_spans", {"play_sid": args.play}))
                if step is None:
                    msg = f"play {args.play} has no failed step to fork from: pass --from SPAN, a step's span id"
                    raise _Refused(msg)
                span_id = step["span_id"]
            params: dict[str, Any] = {"play_sid": args.play, "from_span_id": span_id, "version_sid": _version(rpc, play, args.version)}
            if inputs is not None:
                params["input_data"] = inputs
            fork_sid = rpc.call("play_fork", params)
            if not args.wait:
                print(fork_sid)
                return 0
            print(f"forked play {args.play} from span {span_id} as play {fork_sid}", file=sys.stderr, flush=True)
            fork = rpc.call("play_wait", {"play_sid": fork_sid, "timeout_ms": 0})
    except _Refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(fork, indent=2, ensure_ascii=False))
    else:
        print(f"play {fork_sid}: {fork['status']}")
        if fork["status"] not in ("success", "awaiting_resume") and fork.get("error_message"):
            print(f"error: {fork['error_message']}", file=sys.stderr)
    return 0 if fork["status"] in ("success", "awaiting_resume") else 1
