"""What a run's replay caches are read from: only a play's step outputs and failures are
decoded, and none is missed, whatever a (hostile) flow made its lines look like."""

from __future__ import annotations

import json

from hero_logic.kernel import Put, Repo
from hero_logic.plugins.store import MemoryStore

REPLAYED = frozenset({"step_output", "step_failed"})


async def test_reading_for_a_replay_decodes_only_steps_and_misses_none() -> None:
    repo = Repo(MemoryStore())
    lines = [
        {"type": "span_start", "span_id": "a", "parent_id": "", "name": "step_output", "kind": "step", "start_ms": 1},
        {"type": "step_output", "span_id": "a", "step_key": "k1", "output": 1},
        {"type": "span_log", "span_id": "a", "text": "a log that says step_failed"},
        {"type": "step_failed", "span_id": "b", "step_key": "k2", "error_type": "ValueError", "message": "no"},
        {"type": "span_end", "span_id": "a", "end_ms": 2, "status": "ok"},
    ]
    raw = [json.dumps(line).encode() for line in lines]
    # a line whose type is spelled with a JSON escape is the same event
    raw.append(b'{"type":"\\u0073tep_output","span_id":"c","step_key":"k3","output":3}')
    await repo.commit([Put("events", f"play_x/{i:012d}", line) for i, line in enumerate(raw)])
    events = await repo.read_events("play_x", types=REPLAYED)
    assert [(e["type"], e["step_key"]) for e in events] == [
        ("step_output", "k1"), ("step_failed", "k2"), ("step_output", "k3"),
    ]
    assert len(await repo.read_events("play_x")) == 6
