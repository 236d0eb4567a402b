"""What the workdir quota (``--workdir-mb``) costs a play, beside the same play without it.

Run: ``make bench`` or ``.venv/bin/python bench/bench_workdir.py [--runs N]`` (as root: the
quota mounts a file system per run; without root it is off and this prints that).

* cold play: ``play_start`` → ``success`` of a trivial flow (empty workdir: a mount and an
  unmount per run), quota off vs on, per tier;
* a run that writes 64 MiB in 64 files (copied out of its file system at the end);

* the resume of a paused play whose workdir holds 64 MiB: copied into the run's file system
  and back out.

Medians of ``--runs`` after one warm-up, min-max beside them; read the ratios (shared machine).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import attrs
import trio

from hero_logic.kernel import Config
from hero_logic.rpc import AsyncClient
from hero_logic.server import serve

TRIVIAL = "from hero_tracing import flow\n@flow\ndef main():\n    return 1\n"

WRITER = """
import os
from hero_tracing import ask_user, flow

@flow
def write(mib: int, files: int):
    chunk = os.urandom((mib << 20) // files)
    for i in range(files):
        with open(f"f{i}", "wb") as f:
            f.write(chunk)
    return files

@flow
def main(mib: int, files: int, pause: bool = False):
    write(mib=mib, files=files)
    if pause:
        ask_user.confirm("go on?")
    return len(os.listdir("."))
"""


async def _median_ms(client: AsyncClient, wf_sid: str, runs: int, **inputs: object) -> tuple[float, float, float]:
    times = []
    for i in range(runs + 1):
        started = time.perf_counter()
        sid = await client.call("play_start", {"workflow_sid": wf_sid, "input_data": inputs})
        play = await client.call("play_wait", {"play_sid": sid, "timeout_ms": 60000})
        assert play["status"] == "success", play["error_message"]
        if i:
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), min(times), max(times)


async def _resume_ms(client: AsyncClient, wf_sid: str, runs: int) -> tuple[float, float, float]:
    """``play_resume`` → ``success`` of a play that wrote 64 MiB in 64 files before it paused."""
    times = []
    for i in range(runs + 1):
        sid = await client.call("play_start", {"workflow_sid": wf_sid, "input_data": {"mib": 64, "files": 64}})
        play = await client.call("play_wait", {"play_sid": sid, "timeout_ms": 60000})
        assert play["status"] == "awaiting_resume", play["error_message"]
        started = time.perf_counter()
        rid = play["pending_resumes"][0]["id"]
        await client.call("play_resume", {"play_sid": sid, "resume_id": rid, "payload": True})
        play = await client.call("play_wait", {"play_sid": sid, "timeout_ms": 60000})
        assert play["status"] == "success", play["error_message"]
        if i:
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), min(times), max(times)


async def _measure(tier: str, workdir_mb: int, runs: int) -> dict[str, tuple[float, float, float]]:
    root = Path(tempfile.mkdtemp(prefix="hl-bw-", dir="/tmp"))
    try:
        config = attrs.evolve(
            Config.load(environ={"PATH_ROOT": str(root), "HERO_LOGIC_SEED_FLOWS": "off", "HERO_LOGIC_ADMIN_BIND": "none"}),
            sandbox=tier,
            workdir_mb=workdir_mb,
        )
        out = {}
        async with trio.open_nursery() as nursery:
            await nursery.start(serve, config)
            async with AsyncClient(config.rpc_socket) as client:
                wf = await client.call("workflow_create", {"name": "trivial", "python_source": TRIVIAL})
                out["cold play"] = await _median_ms(client, wf["sid"], runs)
                writer = await client.call("workflow_create", {"name": "writer", "python_source": WRITER})
                out["a run that writes 64 MiB in 64 files"] = await _median_ms(client, writer["sid"], max(3, runs // 3), mib=64, files=64)
                pauser = await client.call("workflow_create", {"name": "pauser", "python_source": WRITER.replace("pause: bool = False", "pause: bool = True")})
                out["resume of a play holding 64 MiB"] = await _resume_ms(client, pauser["sid"], max(3, runs // 3))
            nursery.cancel_scope.cancel()
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("workdir quotas need root (loop mounts): nothing to compare here")
        return
    tiers = ["env_scrub"] + (["bwrap"] if shutil.which("bwrap") else [])
    print(f"{'tier':10} {'figure':38} {'quota off (ms)':>22} {'quota 1024 MiB (ms)':>22} {'ratio':>6}")
    for tier in tiers:
        off = trio.run(_measure, tier, 0, args.runs)
        on = trio.run(_measure, tier, 1024, args.runs)
        for figure, (median_off, lo_off, hi_off) in off.items():
            median_on, lo_on, hi_on = on[figure]
            print(
                f"{tier:10} {figure:38} {median_off:7.1f} ({lo_off:5.1f}-{hi_off:6.1f}) "
                f"{median_on:7.1f} ({lo_on:5.1f}-{hi_on:6.1f}) {median_on / median_off:6.2f}"
            )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
