"""Start a play over the RPC socket, wait for it, and print its span tree.

Usage (with the service running, e.g. ``make run``)::

    .venv/bin/python examples/run_and_print_tree.py [who]

It pushes ``examples/flows/hello.py`` as the workflow ``hello`` if it is not there yet.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hero_logic.kernel import Config
from hero_logic.rpc import Client

FLOW = Path(__file__).parent / "flows" / "hello.py"


def print_tree(spans: list[dict], parent: str = "", depth: int = 0) -> None:
    for span in spans:
        if span["parent_id"] == parent or (depth == 0 and not parent and span["kind"] == "flow_root"):
            took = f"{span['end_ms'] - span['start_ms']} ms" if span["end_ms"] else "running"
            print(f"{'  ' * depth}{span['name']} [{span['kind']}] {span['status']} {took} {span['tags'] or ''}")
            print_tree(spans, span["span_id"], depth + 1)


def main() -> int:
    who = sys.argv[1] if len(sys.argv) > 1 else "Ada"
    with Client(Config.load().rpc_socket) as client:
        existing = [w for w in client.call("workflow_list", {"limit": 1000}) if w["name"] == "hello"]
        wf = existing[0] if existing else client.call("workflow_create", {"name": "hello", "python_source": FLOW.read_text()})
        play_sid = client.call("play_start", {"workflow_sid": wf["sid"], "input_data": {"who": who, "times": 2}})
        play = client.call("play_wait", {"play_sid": play_sid, "timeout_ms": 60000})
        print(f"play {play_sid}: {play['status']} in {play['duration_ms']} ms")
        print_tree(client.call("play_spans", {"play_sid": play_sid}))
        print("output:", play["output_data"] if play["status"] == "success" else play["error_message"])
    return 0 if play["status"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
