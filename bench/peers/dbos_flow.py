"""DBOS peer workload, run with the DBOS venv's python (bench/.peers/dbos/bin/python).

Usage: ``dbos_flow.py MODE [--runs N] [--steps N] [--poll S]`` with MODE one of ``start``,
``steps``, ``steps-wal``, ``resume``, ``replay`` or ``all``; prints one JSON line.

* ``start``: ``DBOS.start_workflow`` of a workflow with no steps → ``get_result()`` returns (ms,
  in-process: what starting a trivial workflow costs).
* ``steps``: per-step cost (µs) = (1000-step workflow - empty workflow) / 1000, DBOS's default
  SQLite system database (rollback journal, full sync). ``steps-wal``: same with a WAL +
  ``synchronous=NORMAL`` engine.
* ``resume``: a workflow runs 10 steps then ``DBOS.recv``; ``DBOS.send`` → ``recv`` returns in
  the workflow (ms, in-process). On SQLite ``recv`` is woken by a poll: ``--poll`` seconds
  (default 0.001, DBOS's minimum; DBOS's own default is 1.0 s). The send moment is spread over
  one polling interval.
* ``replay``: a finished workflow of 100 steps + a marker step is forked at the marker step
  (``DBOS.fork_workflow``): the new run replays the 100 recorded steps from the database, then
  runs the marker. Figure: workflow body entry → marker step starts (ms). ``replay_total_ms``
  adds the fork call and the internal queue's dispatch (polls every ~1 s).

Medians of ``--runs`` after one warm-up; min and max alongside.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from dbos import DBOS, SetWorkflowID

MARKS: dict[str, float] = {}
BLOCKED = threading.Event()


@DBOS.step()
def step(i: int) -> int:
    return i


@DBOS.step()
def marker() -> int:
    MARKS["marker"] = time.perf_counter()
    return 0


@DBOS.workflow()
def steps_wf(n: int) -> int:
    for i in range(n):
        step(i)
    return n


@DBOS.workflow()
def pause_wf(n: int) -> str:
    for i in range(n):
        step(i)
    BLOCKED.set()
    value = DBOS.recv("go", timeout_seconds=60)
    MARKS["woken"] = time.perf_counter()
    return str(value)


@DBOS.workflow()
def replay_wf(n: int) -> int:
    MARKS["entry"] = time.perf_counter()
    for i in range(n):
        step(i)
    marker()
    return n


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _wal_engine(path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{path}")

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    return engine


def per_step_us(runs: int, steps: int) -> list[float]:
    out = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        steps_wf(steps)
        full = time.perf_counter() - t0
        t0 = time.perf_counter()
        steps_wf(0)
        empty = time.perf_counter() - t0
        if i:
            out.append((full - empty) / steps * 1e6)
    return out


def start_ms(runs: int) -> list[float]:
    out = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        handle = DBOS.start_workflow(steps_wf, 0)
        assert handle.get_result() == 0
        if i:
            out.append((time.perf_counter() - t0) * 1000)
    return out


def resume_ms(runs: int, poll: float) -> list[float]:
    out = []
    for i in range(runs + 1):
        BLOCKED.clear()
        handle = DBOS.start_workflow(pause_wf, 10)
        BLOCKED.wait(30)
        time.sleep(0.02 + random.random() * poll)  # inside recv, at a random phase of the poll
        t0 = time.perf_counter()
        DBOS.send(handle.workflow_id, "yes", topic="go")
        assert handle.get_result() == "yes"
        if i:
            out.append((MARKS["woken"] - t0) * 1000)
    return out


def replay_ms(runs: int, steps: int) -> tuple[list[float], list[float]]:
    wid = str(uuid.uuid4())
    with SetWorkflowID(wid):
        replay_wf(steps)
    marker_step = next(s["function_id"] for s in DBOS.list_workflow_steps(wid) if s["function_name"].endswith("marker"))
    body, total = [], []
    for i in range(runs + 1):
        MARKS.clear()
        t0 = time.perf_counter()
        handle = DBOS.fork_workflow(wid, marker_step)
        assert handle.get_result() == steps
        if i:
            body.append((MARKS["marker"] - MARKS["entry"]) * 1000)
            total.append((MARKS["marker"] - t0) * 1000)
    return body, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["start", "steps", "steps-wal", "resume", "replay", "all"])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--poll", type=float, default=0.001)
    args = parser.parse_args()
    result: dict[str, Any] = {"peer": "dbos", "mode": args.mode}
    with tempfile.TemporaryDirectory(prefix="dbos-bench-", dir="/tmp") as tmp:
        config: dict[str, Any] = {
            "name": "bench",
            "system_database_url": f"sqlite:///{tmp}/sys.sqlite",
            "log_level": "WARNING",
            "notification_listener_polling_interval_sec": args.poll,
        }
        if args.mode == "steps-wal":
            config["system_database_engine"] = _wal_engine(Path(tmp) / "sys.sqlite")
        DBOS(config=config)  # type: ignore[arg-type]
        DBOS.launch()
        try:
            if args.mode in ("start", "all"):
                result["start_ms"] = _summary(start_ms(args.runs))
            if args.mode in ("steps", "steps-wal", "all"):
                result["per_step_us"] = _summary(per_step_us(args.runs, args.steps))
            if args.mode in ("resume", "all"):
                result["resume_ms"] = _summary(resume_ms(args.runs, args.poll))
                result["poll_s"] = args.poll
            if args.mode in ("replay", "all"):
                body, total = replay_ms(args.runs, 100)
                result["replay100_ms"] = _summary(body)
                result["replay_total_ms"] = _summary(total)
        finally:
            DBOS.destroy()
    print(json.dumps(result), flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
