"""``hero_logic watch PLAY`` and ``hero_logic run --watch``: the live tree in the terminal."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import trio

from hero_logic.cli._live import LiveTree

if TYPE_CHECKING:
    from .conftest import Service

SLOW = """
import time
from hero_tracing import flow

@flow
def tick(i: int):
    flow.current_span.log(f"tick {i}")
    time.sleep(0.15)
    return i

@flow(name="ticker", inputs={"n": {"type": "integer", "default": 3}})
def main(n):
    if n < 0:
        raise flow.Failed("n must not be negative")
    return [tick(i=i) for i in range(n)]
"""


async def _cli(service: Service, *args: str) -> tuple[int, str]:
    env = {**os.environ, "PATH_ROOT": str(service.config.root), "COLUMNS": "160", "NO_COLOR": "1"}
    result = await trio.run_process(
        [sys.executable, "-m", "hero_logic.cli", *args], env=env, capture_stdout=True, capture_stderr=True, check=False
    )
    return result.returncode, result.stdout.decode() + result.stderr.decode()


async def test_run_watch_follows_the_play_live_and_ends_with_its_output(service: Service) -> None:
    await service.push(SLOW, name="ticker")
    code, out = await _cli(service, "run", "ticker", "-i", "n=3", "--watch")
    assert code == 0, out
    assert "log: tick 2" in out
    assert "ticker" in out
    assert "success" in out
    assert "live events" in out
    assert "output: [" in out


async def test_watch_a_play_that_fails_exits_non_zero_with_its_error(service: Service) -> None:
    wf = await service.push(SLOW, name="ticker")
    play_sid = await service.call("play_start", workflow_sid=wf["sid"], input_data={"n": -1})
    code, out = await _cli(service, "watch", play_sid)
    assert code == 1
    assert "failed" in out
    assert "n must not be negative" in out
    code, out = await _cli(service, "watch", "play_nope")
    assert code == 1
    assert "no play with sid 'play_nope'" in out


def test_the_live_tree_folds_events_like_the_service() -> None:
    tree = LiveTree()
    tree.apply({"type": "snapshot", "play": {"sid": "p", "status": "running"}, "spans": [], "seq": 1})
    tree.apply({"type": "span_start", "seq": 1, "span_id": "old", "parent_id": "", "name": "x", "kind": "step", "start_ms": 1})
    assert tree.span_list() == []  # already in the snapshot
    events = [
        {"type": "span_start", "seq": 2, "span_id": "a", "parent_id": "", "name": "root", "kind": "flow_root", "start_ms": 10},
        {"type": "span_tag", "seq": 3, "span_id": "a", "tags": {"k": 1}},
        {"type": "span_log", "seq": 4, "span_id": "a", "text": "hello"},
        {"type": "span_start", "seq": 5, "span_id": "b", "parent_id": "a", "name": "step", "kind": "weird", "start_ms": 11},
        {"type": "span_end", "seq": 6, "span_id": "b", "end_ms": 12, "status": "bogus"},
        {"type": "span_end", "seq": 7, "span_id": "a", "end_ms": 20, "status": "ok"},
        {"type": "span_start", "seq": 8, "span_id": "b", "parent_id": "a", "name": "step", "kind": "step", "start_ms": 30, "status": "replayed"},
    ]
    for event in events:
        tree.apply(event)
    tree.apply(events[1])  # a repeat is ignored by position
    a, b = tree.span_list()
    assert (a["tags"], a["logs"], a["status"], a["end_ms"]) == ({"k": 1}, ["hello"], "ok", 20)
    assert (b["kind"], b["status"], b["end_ms"]) == ("other", "replayed", 12)  # unknown → other/failed, then replayed
    assert tree.events == 7  # applied after the snapshot; the repeat is not counted
    tree.apply({"type": "status", "status": "success", "play": {"sid": "p", "status": "success"}})
    assert tree.ended
