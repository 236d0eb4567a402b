"""The admin's play page folds the stream with the service's rules: the JS fold
(``admin/static/fold.js``) and the kernel's :class:`SpanFold`, fed the same events, make the
same spans."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hero_logic.kernel import fold_spans, to_json

FOLD_JS = Path(__file__).parent.parent / "hero_logic" / "admin" / "static" / "fold.js"
COMPARED = ("span_id", "parent_id", "name", "kind", "status", "start_ms", "end_ms", "tags", "logs", "error",
            "step_key", "source_file", "source_line", "child_play_sid", "input", "output")

EVENTS: list[dict[str, Any]] = [
    {"type": "span_start", "span_id": "r", "parent_id": "", "name": "main", "kind": "flow_root", "start_ms": 10},
    {"type": "span_start", "span_id": "a", "parent_id": "r", "name": "fetch", "kind": "step", "start_ms": 11,
     "step_key": "k1", "source_file": "f.py", "source_line": 3, "tags": {"url": "x"}, "input": {"url": "x", "n": [1, 2]}},
    {"type": "span_tag", "span_id": "a", "tags": {"rows": 3, "child_play_sid": "play_c"}},
    *[{"type": "span_log", "span_id": "a", "text": f"line {i}"} for i in range(1005)],  # past the cap
    {"type": "step_output", "span_id": "a", "step_key": "k1", "shape_key": "s1", "output": {"rows": 3}},
    {"type": "span_end", "span_id": "a", "end_ms": 20, "status": "ok"},
    {"type": "span_start", "span_id": "b", "parent_id": "r", "name": "odd", "kind": "weird", "start_ms": 21},
    {"type": "span_end", "span_id": "b", "end_ms": 22, "status": "exploded", "error": "boom"},  # unknown -> failed
    {"type": "span_tag", "span_id": "nobody", "tags": {"x": 1}},  # names no span: ignored
    {"type": "span_start", "span_id": "p", "parent_id": "r", "name": "ask", "kind": "step", "start_ms": 30,
     "input": '{"text":"xxxx… [truncated 900 bytes]'},
    {"type": "step_output", "span_id": "p", "step_key": "k2", "output": "y" * 5000, "output_preview": '"yyy… [truncated]'},
    {"type": "step_output", "span_id": "nobody", "step_key": "k3", "output": 1},  # names no span: ignored
    {"type": "span_end", "span_id": "p", "end_ms": 31, "status": "pending"},
    # the next run: the root starts again later (keeps its first start), "a" is replayed
    {"type": "span_start", "span_id": "r", "parent_id": "", "name": "main", "kind": "flow_root", "start_ms": 50},
    {"type": "span_start", "span_id": "a", "parent_id": "r", "name": "fetch", "kind": "step", "start_ms": 51,
     "status": "replayed", "end_ms": 51},
    {"type": "span_end", "span_id": "a", "end_ms": 60, "status": "failed"},  # a replayed span stays replayed
    {"type": "span_start", "span_id": "p", "parent_id": "r", "name": "ask", "kind": "step", "start_ms": 52},
    {"type": "span_end", "span_id": "p", "end_ms": 53, "status": "ok"},
    {"type": "span_start", "span_id": "z", "parent_id": "r", "name": "", "start_ms": 54, "status": "replayed", "end_ms": 55},
    {"type": "span_end", "span_id": "r", "end_ms": 70, "status": "ok"},
]

RUNNER = """
import { foldEvent } from %s;
const events = JSON.parse(await new Promise((ok) => { let d = ""; process.stdin.on("data", (c) => d += c); process.stdin.on("end", () => ok(d)); }));
const spans = new Map();
for (const e of events) foldEvent(spans, e);
process.stdout.write(JSON.stringify([...spans.values()]));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (make test installs it)")
def test_the_admin_fold_and_the_service_fold_make_the_same_spans(tmp_path: Path) -> None:
    runner = tmp_path / "run.mjs"
    runner.write_text(RUNNER % json.dumps(FOLD_JS.as_uri()))
    done = subprocess.run(
        ["node", str(runner)], input=json.dumps(EVENTS), capture_output=True, text=True, timeout=30, check=True
    )
    from_js = json.loads(done.stdout)
    from_python = to_json(fold_spans("play_x", EVENTS))
    assert [s["span_id"] for s in from_js] == [s["span_id"] for s in from_python] == ["r", "a", "b", "p", "z"]
    for js, py in zip(from_js, from_python, strict=True):
        assert {k: js[k] for k in COMPARED} == {k: py[k] for k in COMPARED}, js["span_id"]
    assert len(from_python[1]["logs"]) == 1000
    assert from_python[2]["status"] == "failed"
    assert from_python[2]["kind"] == "other"
    assert from_python[1]["input"] == {"url": "x", "n": [1, 2]}  # data in the trace
    assert from_python[1]["output"] == {"rows": 3}
    assert from_python[3]["output"] == '"yyy… [truncated]'  # an output over 4 KiB: its cut preview
