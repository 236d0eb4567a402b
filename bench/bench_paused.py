"""P8: many paused plays held by one service — processes, memory, listing latency, restart.

Run: ``make bench`` or ``.venv/bin/python bench/bench_paused.py [--plays N] [--runs N]``.

The service runs as its own process (``hero_logic serve``, env_scrub, LMDB) so its resident
memory can be read from ``/proc``. The bench starts ``--plays`` plays of a flow that pauses at
once, waits until all are ``awaiting_resume``, then reports:

* flow processes still alive under the service (target: zero);
* the service's RSS, beside its RSS with no plays at all (target: ≤ 150 MB);
* ``play_list`` (default limit 50), ``play_list status=awaiting_resume`` and ``play_status``
  latencies over one keep-alive connection (target: ``play_list`` p50 ≤ 10 ms);
* after a restart: start-up time to a healthy service, RSS again, and that every play is still
  paused (paused plays survive restarts and hold nothing).
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

import trio

from hero_logic.kernel import Config
from hero_logic.rpc import AsyncClient

PAUSING = """
from hero_tracing import flow

@flow
def main(i: int):
    return flow.pause("approve", schema={"type": "boolean"})
"""

REPO = Path(__file__).resolve().parent.parent


async def _start(root: Path) -> tuple[trio.Process, Config, float]:
    env = {
        **os.environ,
        "PATH_ROOT": str(root),
        "HERO_LOGIC_SANDBOX": "env_scrub",
        "HERO_LOGIC_ADMIN_BIND": "none",
        "HERO_LOGIC_SEED_FLOWS": "false",
        "HERO_LOGIC_MAX_RUNNING": "16",
    }
    started = time.perf_counter()
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "hero_logic.cli", "serve"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    config = Config.load(environ=env)
    with trio.fail_after(120):
        while True:
            try:
                async with AsyncClient(config.rpc_socket, timeout=2) as client:
                    if (await client.health())["status"] == "ok":
                        return proc, config, (time.perf_counter() - started) * 1000
            except (ConnectionError, OSError):
                pass
            await trio.sleep(0.02)


async def _stop(proc: trio.Process) -> None:
    proc.terminate()
    with trio.move_on_after(30):
        await proc.wait()
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _descendants(pid: int, *, warm: bool = False) -> list[int]:
    """Processes under ``pid`` other than the service's helpers: its one cgroup reaper (root
    only), its spawner and its warm pool (processes waiting for a play, not of a paused play);
    with ``warm``, only the warm pool's (one per process tree: bwrap's counted once)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            todo.append(child)
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            helper = b"cgroup.procs" in cmdline or b"_spawner_main.py" in cmdline
            if warm:
                if b"hero_warm.py" in cmdline and not any(b"hero_warm.py" in _cmdline(p) for p in _parents(child, pid)):
                    out.append(child)
            elif not helper and b"hero_warm.py" not in cmdline:
                out.append(child)
    return out


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _parents(pid: int, top: int) -> list[int]:
    out = []
    while pid not in (top, 0, 1):
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            break
        out.append(pid)
    return out


async def _latencies(client: AsyncClient, method: str, params: dict[str, object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        await client.call(method, params)
        out.append((time.perf_counter_ns() - t0) / 1e6)
    return out


def _stats(values: list[float]) -> str:
    return f"p50 {statistics.median(values):7.2f} ms (min {min(values):.2f}, max {max(values):.2f})"


async def _run(plays: int, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench_paused_") as tmp:
        root = Path(tmp)
        proc, config, boot_ms = await _start(root)
        try:
            empty_rss = _rss_mb(proc.pid)
            async with AsyncClient(config.rpc_socket) as client:
                wf = await client.call("workflow_create", {"name": "pausing", "python_source": PAUSING})
            made = time.perf_counter()
            sids: list[str] = []
            send, receive = trio.open_memory_channel[int](plays)
            for i in range(plays):
                send.send_nowait(i)
            send.close()

            async def worker() -> None:
                async with AsyncClient(config.rpc_socket) as client:
                    async for i in receive:
                        sid = await client.call("play_start", {"workflow_sid": wf["sid"], "input_data": {"i": i}})
                        play = await client.call("play_wait", {"play_sid": sid})
                        assert play["status"] == "awaiting_resume", play
                        sids.append(sid)
                        if len(sids) % 1000 == 0:
                            print(f"  {len(sids)} paused ({time.perf_counter() - made:.0f} s)", flush=True)

            async with trio.open_nursery() as nursery:
                for _ in range(16):
                    nursery.start_soon(worker)
            fill_s = time.perf_counter() - made
            await trio.sleep(0.5)
            alive = _descendants(proc.pid)
            warm = _descendants(proc.pid, warm=True)
            rss = _rss_mb(proc.pid)
            async with AsyncClient(config.rpc_socket) as client:
                await _latencies(client, "play_list", {}, 5)  # warm-up
                listing = await _latencies(client, "play_list", {}, runs)
                paused = await _latencies(client, "play_list", {"status": "awaiting_resume"}, runs)
                status = await _latencies(client, "play_status", {"play_sid": sids[len(sids) // 2]}, runs)
        finally:
            await _stop(proc)
        proc, config, restart_ms = await _start(root)
        try:
            await trio.sleep(0.5)
            restart_rss = _rss_mb(proc.pid)
            async with AsyncClient(config.rpc_socket) as client:
                listing_after = await _latencies(client, "play_list", {}, runs)
                still = 0
                for sid in sids[:: max(1, len(sids) // 200)]:
                    still += (await client.call("play_status", {"play_sid": sid}))["status"] == "awaiting_resume"
                sampled = len(sids[:: max(1, len(sids) // 200)])
            alive_after = _descendants(proc.pid)
        finally:
            await _stop(proc)

    print(f"P8 — {plays} paused plays (filled in {fill_s:.0f} s, {plays / fill_s:.0f} plays/s)")
    print(f"  flow processes alive: {len(alive)} (target 0); after restart: {len(alive_after)}")
    print(f"  warm pool processes waiting for a play (no paused play's): {len(warm)} (--warm-pool, default)")
    print(f"  service RSS: {rss:.1f} MB with the plays, {empty_rss:.1f} MB empty (target ≤ 150 MB: ratio {rss / 150:.2f})")
    print(f"  play_list (limit 50):        {_stats(listing)}  target ≤ 10 ms: ratio {statistics.median(listing) / 10:.2f}")
    print(f"  play_list awaiting_resume:   {_stats(paused)}")
    print(f"  play_status:                 {_stats(status)}")
    print(f"  restart: healthy after {restart_ms:.0f} ms (first boot {boot_ms:.0f} ms), RSS {restart_rss:.1f} MB")
    print(f"  play_list after restart:     {_stats(listing_after)}")
    print(f"  sampled plays still paused after restart: {still}/{sampled}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plays", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    trio.run(_run, args.plays, args.runs)


if __name__ == "__main__":
    main()
