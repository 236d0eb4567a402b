"""P4 (resume latency) and P5 (replay of 1000 finished steps), beside the cold-play figure.

Run: ``make bench`` or ``.venv/bin/python bench/bench_resume.py [--runs N]``.

* Cold play: ``play_start`` → ``success`` of a trivial flow (the P4 reference).
* P4 cold resume: ``play_resume`` → the pause call returns in the flow, with 10 finished steps
  before the pause (measured as resume call → the ``answered`` step's span start, which the
  flow opens right after the pause returns, both in ms since the epoch).
* P5: a play with 1000 finished steps then a pause, resumed the same way: its resume latency
  minus the 10-step one, divided by the 990 extra cached steps (per cached step); and the same
  replay timed by the flow itself (the root span's ``steps_ms`` tag: its loop over the 1000
  steps, all answered from the cache), which leaves out the process start and the noise of two
  resume latencies.

The service runs with the warm pool disabled (every run cold); ``bench_warm.py`` measures
warm resumes (P4w). Medians of ``--runs`` after one warm-up, min-max beside them; read the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from hero_logic.kernel import Config
from hero_logic.rpc import AsyncClient
from hero_logic.server import serve

TRIVIAL = """
from hero_tracing import flow

@flow
def main():
    return 1
"""

PAUSING = """
import time
from hero_tracing import flow

@flow
def step(i: int):
    return i

@flow
def answered(value: str):
    return value

@flow
def main(n: int):
    started = time.perf_counter()
    for i in range(n):
        step(i=i)
    # on a resume: how long the n finished steps took to replay, by the flow's own clock
    flow.current_span.tag(steps_ms=round((time.perf_counter() - started) * 1000, 3))
    value = flow.pause("go?", schema={"type": "string"})
    return answered(value=value)
"""


def _stats(values: list[float]) -> str:
    return f"{statistics.median(values):8.2f} (min {min(values):.2f}, max {max(values):.2f})"


async def _figures(root: Path, runs: int) -> dict[str, list[float]]:
    config = Config.load(environ={"PATH_ROOT": str(root), "HERO_LOGIC_SANDBOX": "env_scrub", "HERO_LOGIC_WARM_POOL": "0"})
    out: dict[str, list[float]] = {"cold": [], "resume10": [], "replay_us": [], "replay_flow_us": []}
    async with trio.open_nursery() as nursery:
        await nursery.start(serve, config)
        async with AsyncClient(config.rpc_socket) as client:
            trivial = await client.call("workflow_create", {"name": "trivial", "python_source": TRIVIAL})
            pausing = await client.call("workflow_create", {"name": "pausing", "python_source": PAUSING})

            async def paused_play(n: int) -> str:
                sid: str = await client.call("play_start", {"workflow_sid": pausing["sid"], "input_data": {"n": n}})
                play = await client.call("play_wait", {"play_sid": sid})
                assert play["status"] == "awaiting_resume", play["error_message"]
                return sid

            async def resume(sid: str) -> tuple[float, list[dict[str, Any]]]:
                t0 = time.time() * 1000
                await client.call("play_resume", {"play_sid": sid, "resume_id": "go?", "payload": "yes"})
                play = await client.call("play_wait", {"play_sid": sid})
                assert play["status"] == "success", play["error_message"]
                spans = await client.call("play_spans", {"play_sid": sid})
                return t0, spans

            for i in range(runs + 1):
                t0 = time.perf_counter()
                sid = await client.call("play_start", {"workflow_sid": trivial["sid"]})
                await client.call("play_wait", {"play_sid": sid})
                cold = (time.perf_counter() - t0) * 1000

                sid = await paused_play(10)
                t_resume, spans = await resume(sid)
                answered = next(s for s in spans if s["name"] == "answered")
                resume10 = answered["start_ms"] - t_resume

                sid = await paused_play(1000)
                t_resume, spans = await resume(sid)
                answered = next(s for s in spans if s["name"] == "answered")
                # The same resume with 990 more cached steps before the pause: the difference
                # is what replaying them cost (spans keep their first run's start, so the
                # new run's start cannot be read from them).
                replay_us = ((answered["start_ms"] - t_resume) - resume10) * 1000 / 990
                root = next(s for s in spans if s["kind"] == "flow_root")
                if i:
                    out["cold"].append(cold)
                    out["resume10"].append(resume10)
                    out["replay_us"].append(replay_us)
                    out["replay_flow_us"].append(root["tags"]["steps_ms"])  # ms per 1000 = us per step
        nursery.cancel_scope.cancel()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hlr-", dir="/tmp") as tmp:
        figures = trio.run(_figures, Path(tmp), args.runs)
    cold, resume10, replay = figures["cold"], figures["resume10"], figures["replay_us"]
    print(f"{'figure':48} {'median (min, max)':>34}   ratio")
    print(f"{'cold play, env_scrub (ms)':48} {_stats(cold):>34}")
    print(f"{'P4 cold resume after 10 steps (ms)':48} {_stats(resume10):>34}   {statistics.median(resume10) / statistics.median(cold):.2f}x cold play (target <= 1.3x)")
    print(f"{'P5 replay, per cached step of 1000 (us)':48} {_stats(replay):>34}   target <= 20 us")
    flow_only = figures["replay_flow_us"]
    print(f"{'P5 in the flow: 1000 replayed steps, per step (us)':48} {_stats(flow_only):>34}   (the flow's own clock: no process start, no service)")


if __name__ == "__main__":
    main()
