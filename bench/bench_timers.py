"""Durable time and events: wake latency, many sleeping plays, an event to many waiters, a
retry backoff that holds no process.

Run: ``.venv/bin/python bench/bench_timers.py [--timers 200] [--sleepers 10000] [--waiters 1000]``.

The service runs as its own process (``hero_logic serve``, env_scrub, LMDB, 16 run slots,
``HERO_LOGIC_SLEEP_EXIT_MS=1000``) so its processes and memory can be read from ``/proc``.

* **Wake latency** — ``--timers`` plays ``flow.sleep_until`` times spread over one second; per
  timer: from its ``wake_at`` to the service resolving it (the play ``running`` again, its
  ``resumed_at``), and to the flow's code running again after the sleep (a flow process
  spawned and the finished steps replayed, read from the flow's own clock). Target: p50 ≤ 50
  ms, p99 ≤ 250 ms. Measured twice in the same run: in-process on a kernel whose plays are
  fake scripts (the timer wheel, the index and the resolving commit alone, LMDB), and through
  the real service, where every woken play spawns a flow process on the same two cores.
* **Many sleepers** — ``--sleepers`` plays sleep for an hour: flow processes left (target 0),
  the service's RSS (target ≤ 150 MB), the timer index, and the wake latency of one more
  timer due 3 s later with all of them in the index.
* **Event fan-out** — ``--waiters`` plays ``flow.wait_event`` one key; one ``event_send``
  resolves them: its duration and deliveries per second, then all plays ``success`` with the
  payload, each having received the event once.
* **Retry backoff** — a step failing once under ``retries=1, retry_delay=2``: flow processes
  sampled during the 2 s backoff (target 0).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from hero_logic.kernel import Config
from hero_logic.rpc import AsyncClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_paused import _descendants, _rss_mb, _stop  # a sibling script

REPO = Path(__file__).resolve().parent.parent

SLEEP_UNTIL = """
import datetime, time
from hero_tracing import flow

@flow
def main(until_ms: int):
    flow.sleep_until(datetime.datetime.fromtimestamp(until_ms / 1000, datetime.timezone.utc))
    return time.time_ns() // 1_000_000
"""

WAITER = """
from hero_tracing import flow

@flow
def main(key: str):
    return flow.wait_event(key)
"""

BACKOFF = """
from hero_tracing import flow

@flow(retries=1, retry_delay=2, retry_jitter=False)
def flaky():
    with open("tries.txt", "a") as f:
        f.write("x")
    with open("tries.txt") as f:
        if len(f.read()) < 2:
            raise ConnectionError("down")
    return "up"

@flow
def main():
    return flaky()
"""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def serve_process(settings: dict[str, str], *, timeout_s: float = 120) -> tuple[trio.Process, Config]:
    """``hero_logic serve`` as a process of its own (its CPU readable in /proc) with
    ``settings`` over this environment, once it answers /health."""
    env = {**os.environ, "HERO_LOGIC_SANDBOX": "env_scrub", "HERO_LOGIC_ADMIN_BIND": "none", **settings}
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "hero_logic.cli", "serve"],
        env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    config = Config.load(environ=env)
    with trio.fail_after(timeout_s):
        while True:
            try:
                async with AsyncClient(config.rpc_socket, timeout=2) as client:
                    if (await client.health())["status"] == "ok":
                        return proc, config
            except (ConnectionError, OSError):
                pass
            await trio.sleep(0.02)


async def _start(root: Path) -> tuple[trio.Process, Config]:
    return await serve_process({
        "PATH_ROOT": str(root), "HERO_LOGIC_SEED_FLOWS": "false", "HERO_LOGIC_MAX_RUNNING": "16",
        "HERO_LOGIC_SLEEP_EXIT_MS": "1000",
    })


async def _start_all(config: Config, wf_sid: str, inputs: list[dict[str, Any]], until: str, workers: int = 16) -> list[str]:
    """Start a play per input and wait until each is ``until``; their sids in input order."""
    sids: list[str] = [""] * len(inputs)
    send, receive = trio.open_memory_channel[int](len(inputs))
    for i in range(len(inputs)):
        send.send_nowait(i)
    send.close()
    made = time.perf_counter()
    done = 0

    async def worker() -> None:
        nonlocal done
        async with AsyncClient(config.rpc_socket) as client:
            async for i in receive:
                sid = await client.call("play_start", {"workflow_sid": wf_sid, "input_data": inputs[i]})
                while True:
                    if (await client.call("play_wait", {"play_sid": sid, "timeout_ms": 30000}))["status"] == until:
                        break
                    await trio.sleep(0.01)
                sids[i] = sid
                done += 1
                if done % 1000 == 0:
                    print(f"    {done} {until} ({time.perf_counter() - made:.0f} s)", flush=True)

    async with trio.open_nursery() as nursery:
        for _ in range(workers):
            nursery.start_soon(worker)
    return sids


async def _ended(client: AsyncClient, sid: str) -> dict[str, Any]:
    while True:
        play: dict[str, Any] = await client.call("play_status", {"play_sid": sid})
        if play["status"] in ("success", "failed", "cancelled", "timed_out"):
            return play
        await trio.sleep(0.05)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _line(name: str, values: list[float], target: float | None = None) -> str:
    p50, p99 = statistics.median(values), _pct(values, 0.99)
    text = f"  {name:<42} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  (min {min(values):.1f}, max {max(values):.1f})"
    if target is not None:
        text += f"  targets 50/250 ms: ratios {p50 / 50:.2f} / {p99 / 250:.2f}"
    return text


async def _wake_latency(config: Config, timers: int) -> None:
    async with AsyncClient(config.rpc_socket) as client:
        wf = await client.call("workflow_create", {"name": "sleep-until", "python_source": SLEEP_UNTIL})
    lead_s = max(10, timers // 8)
    due = _now_ms() + lead_s * 1000
    inputs = [{"until_ms": due + i * 1000 // timers} for i in range(timers)]
    print(f"  {timers} timers due within one second, {lead_s} s from now, through the service with real flows:")
    sids = await _start_all(config, wf["sid"], inputs, "awaiting_resume")
    assert _now_ms() < due, "the plays took longer to start than the lead time: raise it"
    resolved, running = [], []
    async with AsyncClient(config.rpc_socket) as client:
        for sid, given in zip(sids, inputs, strict=True):
            play = await _ended(client, sid)
            assert play["status"] == "success", play["error_message"]
            (woken,) = play["received_resumes"]
            resolved.append(woken["resumed_at"] - given["until_ms"])
            running.append(play["output_data"] - given["until_ms"])
    print(_line("wake_at → timer resolved (play running)", resolved, target=50))
    print(_line("wake_at → flow code running again", running))
    print(f"    (the second includes spawning {timers} flow processes, 16 at a time, and replaying)")


async def _wheel_alone(timers: int) -> None:
    """The same timers on an in-process kernel whose plays are scripts (no process, LMDB)."""
    import attrs

    from hero_logic.kernel import now_ms
    from hero_logic.service import open_service
    from hero_logic.testing import FakeRun, open_fake_kernel

    async def script(run: FakeRun) -> int:
        if "t" in (run.replay or {}).get("woken", {}):
            return await run.finish(now_ms())
        await run.emit({"type": "pause", "kind": "timer", "resume_id": "t", "name": "sleep",
                        "wake_at": run.inputs["until_ms"], "span_id": "s", "asked_at": now_ms()})
        return 75

    with tempfile.TemporaryDirectory(prefix="bench_wheel_") as tmp:
        env = {"PATH_ROOT": tmp, "HERO_LOGIC_SANDBOX": "env_scrub", "HERO_LOGIC_SEED_FLOWS": "off"}
        config = attrs.evolve(Config.load(environ=env), max_running=16)
        async with open_fake_kernel(config, script) as kernel, open_service(kernel, seed=False) as service:
            wf = await service.workflows.workflow_create("sleep-until", python_source=SLEEP_UNTIL)
            due = now_ms() + 3000
            inputs = [{"until_ms": due + i * 1000 // timers} for i in range(timers)]
            sids = [await service.plays.play_start(wf.sid, given) for given in inputs]
            resolved, running = [], []
            for sid, given in zip(sids, inputs, strict=True):
                while True:
                    play = await service.plays.play_status(sid)
                    if play.status.is_terminal:
                        break
                    await trio.sleep(0.05)
                resolved.append(float(play.received_resumes[0].resumed_at or 0) - given["until_ms"])
                running.append(float(play.output_data) - given["until_ms"])
    print(f"  {timers} timers due within one second, on a kernel with scripted plays (no processes, LMDB):")
    print(_line("wake_at → timer resolved (play running)", resolved, target=50))
    print(_line("wake_at → scripted play running again", running))


async def _fan_out_alone(waiters: int) -> None:
    """``event_send`` to waiting plays on an in-process kernel whose plays are scripts."""
    import attrs

    from hero_logic.service import open_service
    from hero_logic.testing import FakeRun, open_fake_kernel

    async def script(run: FakeRun) -> int:
        woken = (run.replay or {}).get("woken", {})
        if "w" in woken:
            return await run.finish(woken["w"]["payload"])
        await run.emit({"type": "pause", "kind": "event", "resume_id": "w", "name": "event:go",
                        "event_key": "go", "span_id": "s", "asked_at": 1})
        return 75

    with tempfile.TemporaryDirectory(prefix="bench_fanout_") as tmp:
        env = {"PATH_ROOT": tmp, "HERO_LOGIC_SANDBOX": "env_scrub", "HERO_LOGIC_SEED_FLOWS": "off"}
        config = attrs.evolve(Config.load(environ=env), max_running=16)
        async with open_fake_kernel(config, script) as kernel, open_service(kernel, seed=False) as service:
            wf = await service.workflows.workflow_create("waiters", python_source=WAITER)
            sids = [await service.plays.play_start(wf.sid, {"key": "go"}) for _ in range(waiters)]
            for sid in sids:
                await service.plays.play_wait(sid)
            t0 = time.perf_counter()
            sent = await service.events.event_send("go", {"n": 1})
            send_s = time.perf_counter() - t0
    print(f"  event_send to {waiters} waiting plays on a kernel with scripted plays (LMDB): {send_s * 1000:.0f} ms "
          f"({len(sent['delivered_to']) / send_s:.0f} deliveries/s)")


async def _sleepers(config: Config, proc: trio.Process, count: int) -> None:
    async with AsyncClient(config.rpc_socket) as client:
        wf = await client.call("workflow_create", {"name": "sleepers", "python_source": SLEEP_UNTIL})
    empty = _rss_mb(proc.pid)
    far = _now_ms() + 3_600_000
    made = time.perf_counter()
    await _start_all(config, wf["sid"], [{"until_ms": far + i} for i in range(count)], "awaiting_resume")
    fill_s = time.perf_counter() - made
    await trio.sleep(0.5)
    alive = _descendants(proc.pid)
    rss = _rss_mb(proc.pid)
    soon = _now_ms() + 3000
    (sid,) = await _start_all(config, wf["sid"], [{"until_ms": soon}], "awaiting_resume", workers=1)
    async with AsyncClient(config.rpc_socket) as client:
        play = await _ended(client, sid)
    latency = play["received_resumes"][0]["resumed_at"] - soon
    print(f"  {count} sleeping plays (started in {fill_s:.0f} s)")
    print(f"    flow processes alive: {len(alive)} (target 0)")
    print(f"    service RSS: {rss:.1f} MB ({empty:.1f} MB before them; target ≤ 150 MB: ratio {rss / 150:.2f})")
    print(f"    one more timer due with all of them indexed: resolved {latency} ms after its wake_at "
          f"(flow running again {play['output_data'] - soon} ms after)")


async def _fan_out(config: Config, waiters: int) -> None:
    async with AsyncClient(config.rpc_socket) as client:
        wf = await client.call("workflow_create", {"name": "waiters", "python_source": WAITER})
    sids = await _start_all(config, wf["sid"], [{"key": "go"}] * waiters, "awaiting_resume")
    async with AsyncClient(config.rpc_socket) as client:
        t0 = time.perf_counter()
        sent = await client.call("event_send", {"key": "go", "payload": {"n": 1}})
        send_s = time.perf_counter() - t0
        delivered = sent["delivered_to"]
        t1 = time.perf_counter()
        ends = [await _ended(client, sid) for sid in sids]
        all_s = time.perf_counter() - t1 + send_s
        again = await client.call("event_send", {"key": "go", "payload": {"n": 2}})
    twice = sum(1 for p in ends if len(p["received_resumes"]) != 1)
    ok = sum(1 for p in ends if p["status"] == "success" and p["output_data"] == {"n": 1})
    print(f"  event_send to {waiters} waiting plays: {send_s * 1000:.0f} ms ({len(delivered) / send_s:.0f} deliveries/s)")
    print(f"    delivered to {len(delivered)} (distinct {len(set(delivered))}); {ok} ended success with the payload; "
          f"{twice} received more or less than once; a second send reached {len(again['delivered_to'])}")
    print(f"    all {waiters} plays ended {all_s:.1f} s after the send (each re-run is a flow process, 16 at a time)")


async def _backoff(config: Config, proc: trio.Process) -> None:
    async with AsyncClient(config.rpc_socket) as client:
        wf = await client.call("workflow_create", {"name": "backoff", "python_source": BACKOFF})
        t0 = time.perf_counter()
        sid = await client.call("play_start", {"workflow_sid": wf["sid"]})
        while True:
            if (await client.call("play_status", {"play_sid": sid}))["status"] == "awaiting_resume":
                break
            await trio.sleep(0.01)
        samples = []
        while (await client.call("play_status", {"play_sid": sid}))["status"] == "awaiting_resume":
            samples.append(len(_descendants(proc.pid)))
            await trio.sleep(0.1)
        play = await _ended(client, sid)
    print(f"  retry with a 2 s backoff: {play['status']} in {time.perf_counter() - t0:.2f} s; "
          f"flow processes during the backoff: max {max(samples, default=0)} over {len(samples)} samples (target 0)")


async def _run(timers: int, sleepers: int, waiters: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench_timers_") as tmp:
        proc, config = await _start(Path(tmp))
        try:
            print("Durable time and events (env_scrub, LMDB, 16 run slots, sleep-exit 1000 ms)")
            if timers:
                await _wheel_alone(timers)
                await _wake_latency(config, timers)
            if waiters:
                await _fan_out_alone(waiters)
                await _fan_out(config, waiters)
            await _backoff(config, proc)
            if sleepers:
                await _sleepers(config, proc, sleepers)
        finally:
            await _stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timers", type=int, default=200)
    parser.add_argument("--sleepers", type=int, default=10_000)
    parser.add_argument("--waiters", type=int, default=1000)
    args = parser.parse_args()
    trio.run(_run, args.timers, args.sleepers, args.waiters)


if __name__ == "__main__":
    main()
