"""LangGraph peer workload (functional API), run with bench/.peers/langgraph/bin/python.

Usage: ``langgraph_flow.py MODE [--runs N] [--steps N]`` with MODE one of ``start``, ``steps``,
``resume``, ``replay`` or ``all``; prints one JSON line. Checkpointer: ``SqliteSaver`` on a file
(the saver sets WAL; ``synchronous`` stays at SQLite's default), default durability.

* ``start``: ``invoke`` of the ``@entrypoint`` with no tasks on a new thread → it returns (ms,
  in-process, the checkpoint written).
* ``steps``: per-step cost (µs) = (``@entrypoint`` running 1000 ``@task`` steps - running 0) / 1000.
* ``resume``: the entrypoint runs 10 tasks then ``interrupt()``; ``invoke(Command(resume=…))`` →
  the line after ``interrupt()`` runs (ms, in-process). The functional API re-runs the
  entrypoint and takes the 10 task results from the checkpoint on the way.
* ``replay``: same with 100 tasks before ``interrupt()``; on resume, entrypoint body entry → the
  100 cached task results are back (ms).

Medians of ``--runs`` after one warm-up; min and max alongside.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
import uuid
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.func import entrypoint, task
from langgraph.types import Command, interrupt

MARKS: dict[str, float] = {}


@task
def step(i: int) -> int:
    return i


def build(saver: SqliteSaver) -> Any:
    @entrypoint(checkpointer=saver)
    def workflow(inputs: dict[str, Any]) -> int:
        MARKS["entry"] = time.perf_counter()
        n = inputs["n"]
        for i in range(n):
            step(i).result()
        MARKS["replayed"] = time.perf_counter()
        if inputs.get("pause"):
            value = interrupt("go?")
            MARKS["woken"] = time.perf_counter()
            assert value == "yes"
        return int(n)

    return workflow


def _config() -> dict[str, Any]:
    return {"configurable": {"thread_id": str(uuid.uuid4())}, "recursion_limit": 1_000_000}


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def start_ms(wf: Any, runs: int) -> list[float]:
    out = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        wf.invoke({"n": 0}, _config())
        if i:
            out.append((time.perf_counter() - t0) * 1000)
    return out


def per_step_us(wf: Any, runs: int, steps: int) -> list[float]:
    out = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        wf.invoke({"n": steps}, _config())
        full = time.perf_counter() - t0
        t0 = time.perf_counter()
        wf.invoke({"n": 0}, _config())
        empty = time.perf_counter() - t0
        if i:
            out.append((full - empty) / steps * 1e6)
    return out


def paused(wf: Any, runs: int, n: int) -> tuple[list[float], list[float]]:
    """(resume call → after interrupt, ms), (body entry → n cached tasks back, ms)."""
    resume, replay = [], []
    for i in range(runs + 1):
        config = _config()
        first = wf.invoke({"n": n, "pause": True}, config)
        assert "__interrupt__" in first, first
        MARKS.clear()
        t0 = time.perf_counter()
        assert wf.invoke(Command(resume="yes"), config) == n
        if i:
            resume.append((MARKS["woken"] - t0) * 1000)
            replay.append((MARKS["replayed"] - MARKS["entry"]) * 1000)
    return resume, replay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["start", "steps", "resume", "replay", "all"])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    result: dict[str, Any] = {"peer": "langgraph", "mode": args.mode}
    with tempfile.TemporaryDirectory(prefix="lg-bench-", dir="/tmp") as tmp:
        conn = sqlite3.connect(f"{tmp}/checkpoints.sqlite", check_same_thread=False)
        wf = build(SqliteSaver(conn))
        if args.mode in ("start", "all"):
            result["start_ms"] = _summary(start_ms(wf, args.runs))
        if args.mode in ("steps", "all"):
            result["per_step_us"] = _summary(per_step_us(wf, args.runs, args.steps))
        if args.mode in ("resume", "all"):
            result["resume_ms"] = _summary(paused(wf, args.runs, 10)[0])
        if args.mode in ("replay", "all"):
            result["replay100_ms"] = _summary(paused(wf, args.runs, 100)[1])
        conn.close()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
