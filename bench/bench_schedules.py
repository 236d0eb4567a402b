"""The scheduler under 1,000 schedules: its CPU per tick and how late each tick's play is made,
beside ``play_start`` over JSON-RPC (the floor) measured in the same run.

Run: ``.venv/bin/python bench/bench_schedules.py [--schedules 1000] [--every-s 60] [--ticks 1]``.

The service runs as its own process (``hero_logic serve``, env_scrub, LMDB) so its CPU time can
be read from ``/proc/<pid>/stat`` (its own user + system time, not its flows'). It has one run
slot, held by a blocker play that sleeps for the whole run: every play a tick makes is created
(durably, ``pending``) and left waiting, so the figures are the scheduler's own work — finding
the due ticks, creating each play once per (schedule, tick) — not the running of flows, which
on two cores would crowd out what is measured. The schedules use ``overlap: allow_all`` (so
every tick makes a play even while the last one waits) and ``every_s`` ticks, which fall on
multiples of the interval since the epoch: all of them are due at the same instant, the
scheduler's worst case.

* **Idle**: the service's CPU per second with the schedules loaded, between ticks.
* **CPU per tick**: the service's CPU from just before the due instant until the last tick's
  play exists, over the ticks fired (sampled from ``/proc`` every 20 ms; nothing asks the
  service anything meanwhile).
* **Lateness**: per tick, its play's ``created_at`` minus the tick's due time (read from the play's
  name, ``schedule:<name>:<tick>``). Target p99 ≤ 1 s.
* **Floor**: the service's CPU per play made by ``play_start`` over the RPC socket (8 callers at
  once, as many plays as ticks), the same play creation by the API.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio
from bench_timers import serve_process  # a sibling script

from hero_logic.rpc import AsyncClient

if TYPE_CHECKING:
    from hero_logic.kernel import Config

TICK_S = os.sysconf("SC_CLK_TCK")

TRIVIAL = """
from hero_tracing import flow

@flow(name="tick")
def main(n: int = 0):
    return n
"""

BLOCKER = """
import time
from hero_tracing import flow

@flow(name="blocker")
def main():
    time.sleep(3600)
"""


def _cpu_s(pid: int) -> float:
    """The process's own user + system CPU seconds (not its children's)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK_S


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _start(root: Path) -> tuple[trio.Process, Config]:
    return await serve_process({
        "PATH_ROOT": str(root), "HERO_LOGIC_WEBHOOK_BIND": "none", "HERO_LOGIC_SEED_FLOWS": "off",
        "HERO_LOGIC_MAX_RUNNING": "1", "HERO_LOGIC_PLAY_TIMEOUT_MS": "3600000",
    }, timeout_s=60)


async def _in_parallel(config: Config, count: int, call: Any, workers: int = 8) -> None:
    """``await call(client, i)`` for i in range(count), ``workers`` connections at once."""
    send, receive = trio.open_memory_channel[int](count)
    for i in range(count):
        send.send_nowait(i)
    send.close()

    async def worker() -> None:
        async with AsyncClient(config.rpc_socket) as client:
            async for i in receive:
                await call(client, i)

    async with trio.open_nursery() as nursery:
        for _ in range(workers):
            nursery.start_soon(worker)


def _tick_of(name: str) -> int:
    """The due time (ms) a scheduled play's name carries: ``schedule:<name>:<ISO 8601 UTC>``."""
    stamp = name.rsplit(":", 3)[-3:]
    when = datetime.datetime.fromisoformat(":".join(stamp).replace("Z", "+00:00"))
    return int(when.timestamp() * 1000)


async def _run(root: Path, schedules: int, every_s: int, ticks: int) -> None:
    proc, config = await _start(root)
    pid = proc.pid
    try:
        async with AsyncClient(config.rpc_socket) as client:
            blocker = await client.call("workflow_create", {"name": "blocker", "python_source": BLOCKER})
            blocking = await client.call("play_start", {"workflow_sid": blocker["sid"]})
            with trio.fail_after(60):
                while True:
                    if (await client.call("play_status", {"play_sid": blocking}))["status"] == "running":
                        break
                    await trio.sleep(0.05)
            wf = await client.call("workflow_create", {"name": "tick", "python_source": TRIVIAL})
        made = time.perf_counter()

        async def create(c: AsyncClient, i: int) -> None:
            await c.call("schedule_create", {"workflow_sid": wf["sid"], "every_s": every_s, "name": f"s{i:04d}", "overlap": "allow_all"})

        await _in_parallel(config, schedules, create)
        print(f"  {schedules} schedules every {every_s} s created in {time.perf_counter() - made:.1f} s")
        period = every_s * 1000
        due = (time.time_ns() // 1_000_000 // period + 1) * period
        if due - time.time() * 1000 < 1500:  # too close to have an idle window before it
            due += period
        last_due = due + (ticks - 1) * period
        idle0, idle_at = _cpu_s(pid), time.monotonic()
        await trio.sleep(max(0.0, (due - time.time() * 1000) / 1000 - 0.5))
        idle = (_cpu_s(pid) - idle0) / (time.monotonic() - idle_at)
        samples: list[tuple[float, float]] = []  # (wall ms, cpu s)
        fired: list[dict[str, Any]] = []
        deadline = last_due / 1000 + 30
        while time.time() < deadline:
            samples.append((time.time() * 1000, _cpu_s(pid)))
            if time.time() * 1000 > last_due + 3000:
                async with AsyncClient(config.rpc_socket) as client:
                    plays = await client.call("play_list", {"workflow_sid": wf["sid"], "limit": 10000})
                fired = [p for p in plays if p["name"].startswith("schedule:") and due <= _tick_of(p["name"]) <= last_due]
                if len(fired) >= schedules * ticks:
                    break
            await trio.sleep(0.02)
        else:
            print(f"  only {len(fired)} of {schedules * ticks} ticks had their play after 30 s")
        late = [p["created_at"] - _tick_of(p["name"]) for p in fired]
        done_at = max(p["created_at"] for p in fired)
        before = [cpu for at, cpu in samples if at <= due - 200]
        after = [cpu for at, cpu in samples if at >= done_at + 20]
        tick_cpu_ms = (after[0] - before[-1]) * 1000 / len(fired)

        async def start(c: AsyncClient, i: int) -> None:
            await c.call("play_start", {"workflow_sid": wf["sid"], "input_data": {"n": i}})

        cpu0 = _cpu_s(pid)
        t0 = time.perf_counter()
        await _in_parallel(config, len(fired), start)
        floor_s = time.perf_counter() - t0
        floor_cpu_ms = (_cpu_s(pid) - cpu0) * 1000 / len(fired)
    finally:
        proc.terminate()
        with trio.move_on_after(20):
            await proc.wait()
        if proc.returncode is None:
            proc.kill()
    p50, p99 = statistics.median(late), _pct(late, 0.99)
    print(f"  idle, between ticks: {idle * 1000:.1f} ms CPU per second")
    print(f"  {len(fired)} ticks fired (all due at once), the last play made {done_at - last_due} ms after its tick")
    print(f"  {'floor: service CPU per play_start over RPC':50} {floor_cpu_ms:7.2f} ms  ({len(fired)} in {floor_s:.1f} s)")
    print(f"  {'service CPU per tick (its play made)':50} {tick_cpu_ms:7.2f} ms  {tick_cpu_ms / floor_cpu_ms:.2f}x floor")
    print(f"  {'tick lateness: play created_at - due':50} p50 {p50:.0f} ms  p99 {p99:.0f} ms  (max {max(late)})  p99/1 s target: {p99 / 1000:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--every-s", type=int, default=60, help="the schedules' interval (a shorter one shortens the wait for the tick)")
    parser.add_argument("--ticks", type=int, default=1, help="consecutive ticks of every schedule to measure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hls-", dir="/tmp") as tmp:
        trio.run(_run, Path(tmp), args.schedules, args.every_s, args.ticks)


if __name__ == "__main__":
    main()
