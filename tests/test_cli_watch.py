"""``hero_logic watch`` off a terminal prints plain lines as events arrive and stops when the play
ends or waits for an answer; on a terminal, a tall tree is clipped around the running step."""

from __future__ import annotations

import io
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import trio
from rich.console import Console

from hero_logic.cli._live import LiveTree, plain_lines, render_live

from ._cli_kit import cli, cli_env

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import Service

GATED = """
import os
import time
from hero_tracing import ask_user, flow

@flow
def first():
    flow.current_span.log("first step done")
    return 1

@flow(name="gatewatch")
def main(gate: str):
    first()
    while not os.path.exists(gate):
        time.sleep(0.05)
    return {"shipped": ask_user.confirm("Ship it?")}
"""


async def _read_until(stream: Any, needle: bytes, seen: bytes) -> bytes:
    while needle not in seen:
        chunk = await stream.receive_some()
        assert chunk, f"the stream ended before {needle!r}: {seen.decode()}"
        seen += chunk
    return seen


async def test_watch_off_a_terminal_prints_lines_as_they_happen_and_stops_at_a_question(
    service: Service, root: Path
) -> None:
    wf = await service.push(GATED, name="gatewatch")
    gate = root / "gate"
    sid = await service.call("play_start", workflow_sid=wf["sid"], input_data={"gate": str(gate)})
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "hero_logic.cli", "watch", sid],
        env=cli_env(service), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    with trio.fail_after(30):
        seen = await _read_until(proc.stdout, b"log: first step done", b"")
        assert (await service.call("play_status", play_sid=sid))["status"] == "running"  # printed while it runs
        gate.touch()
        while chunk := await proc.stdout.receive_some():
            seen += chunk
        code = await proc.wait()
    out = seen.decode()
    assert code == 0, out
    assert "  first: ok in" in out  # one line per span, indented under its parent
    assert "gatewatch: asks: Ship it?" in out  # an event after the snapshot
    assert f"play {sid} is waiting for an answer" in out
    assert "Ship it?" in out
    assert f"hero_logic resume {sid}" in out
    assert "\x1b[" not in out  # plain text, no terminal control codes

    await service.call("play_resume", play_sid=sid, resume_id="Ship it?", payload=True)
    code, out = await cli(service, "watch", sid)
    assert f"play {sid} ended: success" in out
    assert '"shipped": true' in out


def test_plain_lines_follow_the_tree() -> None:
    tree = LiveTree()
    snapshot = {"type": "snapshot", "play": {"sid": "p", "status": "running"}, "spans": [], "seq": -1}
    assert tree.apply(snapshot)
    assert plain_lines(tree, snapshot) == ["play p: running"]
    events = [
        {"type": "span_start", "seq": 0, "span_id": "a", "parent_id": "", "name": "root", "kind": "flow_root", "start_ms": 10},
        {"type": "span_start", "seq": 1, "span_id": "b", "parent_id": "a", "name": "step", "kind": "step", "start_ms": 11},
        {"type": "span_tag", "seq": 2, "span_id": "b", "tags": {"k": 1}},
        {"type": "span_log", "seq": 3, "span_id": "b", "text": "two\nlines"},
        {"type": "span_end", "seq": 4, "span_id": "b", "end_ms": 12, "status": "failed", "error": "Traceback...\nValueError: bad"},
        {"type": "status", "status": "failed", "play": {"sid": "p", "status": "failed"}},
    ]
    lines = []
    for event in events:
        assert tree.apply(event)
        lines += plain_lines(tree, event)
    assert lines == [
        "root [flow_root]: started",
        "  step: started",
        "  step: k=1",
        "  step: log: two",
        "  step: log: lines",
        "  step: failed in 1 ms: ValueError: bad",
        "play p: failed",
    ]
    assert not tree.apply(events[2])  # a repeat is not applied, so not printed twice


def _tall_tree(running_at: int, steps: int = 80) -> LiveTree:
    tree = LiveTree()
    tree.apply({"type": "snapshot", "play": {"sid": "play_tall", "status": "running"}, "spans": [], "seq": -1})
    tree.apply({"type": "span_start", "seq": 0, "span_id": "root", "parent_id": "", "name": "main", "kind": "flow_root", "start_ms": 1})
    seq = 1
    for i in range(steps):
        tree.apply({"type": "span_start", "seq": seq, "span_id": f"s{i}", "parent_id": "root", "name": f"step-{i:02d}", "kind": "step", "start_ms": 2})
        seq += 1
        if i != running_at:
            tree.apply({"type": "span_end", "seq": seq, "span_id": f"s{i}", "end_ms": 3, "status": "ok"})
            seq += 1
    return tree


def _screen(tree: LiveTree, height: int) -> list[str]:
    out = io.StringIO()
    console = Console(file=out, width=100, height=height, force_terminal=True, color_system=None)
    console.print(render_live(tree))
    return out.getvalue().splitlines()


def test_a_tall_live_tree_is_clipped_around_the_running_step() -> None:
    lines = _screen(_tall_tree(running_at=79), height=20)
    assert len(lines) <= 20
    assert any("step-79" in line and "running" in line for line in lines)  # the running step is on screen
    assert lines[0].startswith("play play_tall")  # and the play's title line
    assert any("lines above" in line for line in lines)
    assert "live events" in lines[-1]  # and the footer

    lines = _screen(_tall_tree(running_at=30), height=20)
    assert len(lines) <= 20
    assert any("step-30" in line and "running" in line for line in lines)
    assert any("lines above" in line for line in lines)
    assert any("lines below" in line for line in lines)

    lines = _screen(_tall_tree(running_at=3, steps=5), height=20)  # it fits: nothing clipped
    assert not any("lines above" in line or "lines below" in line for line in lines)
    assert sum("step-" in line for line in lines) == 5
