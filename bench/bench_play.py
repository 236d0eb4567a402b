"""P1 (per-step overhead) and P2 (cold play latency), each beside its floor, in one run.

Run: ``make bench`` or ``.venv/bin/python bench/bench_play.py [--runs N]``.

* P2 floor: Popen of ``python -I -S`` that imports json/socket/os/sys/hashlib, connects to a Unix
  socket and sends one byte → the byte arrives. P2: ``play_start`` → ``play_wait`` returns
  ``success`` for a trivial flow, through the RPC socket of a real service (LMDB store,
  env_scrub tier, warm pool disabled: every play cold; ``bench_warm.py`` measures warm plays).
* P1 floor: a child process that ``json.dumps`` + ``sendall``s two ~200-byte events per step to a
  reader that ``json.loads`` each line. P1: (1000-step play - empty play) / 1000, end to end.

Medians of ``--runs`` after one warm-up, min-max beside them. The machine is shared and noisy:
read the ratios, not the absolute times.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import trio

from hero_logic.kernel import Config
from hero_logic.rpc import AsyncClient
from hero_logic.server import serve

PY = os.path.realpath(os.sys.executable)  # type: ignore[attr-defined]

TRIVIAL = """
from hero_tracing import flow

@flow
def main():
    return 1
"""

STEPS = """
from hero_tracing import flow

@flow
def step(i: int):
    return i

@flow
def main(n: int):
    for i in range(n):
        step(i=i)
    return n
"""

FLOOR_CHILD = """
import json, socket, os, sys, hashlib
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"x"); s.close()
"""

STEP_FLOOR_CHILD = """
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
n = int(sys.argv[2])
t0 = time.perf_counter_ns()
for i in range(n):
    s.sendall((json.dumps({"type": "span_start", "span_id": f"abcdef0123456789{i:x}", "parent_id": "abcdef01234567890", "name": "step", "kind": "step", "start_ms": 1732000000000, "step_key": "0123456789abcdef0123456789abcdef01234567"}) + "\\n").encode())
    s.sendall((json.dumps({"type": "span_end", "span_id": f"abcdef0123456789{i:x}", "end_ms": 1732000000001, "status": "ok", "output": i}) + "\\n").encode())
s.close()
"""


def _stats(values: list[float]) -> str:
    return f"{statistics.median(values):8.2f} (min {min(values):.2f}, max {max(values):.2f})"


def popen_floor_ms(tmp: Path, runs: int) -> list[float]:
    path = str(tmp / "floor.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)
    out = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        proc = subprocess.Popen([PY, "-I", "-S", "-c", FLOOR_CHILD, path], env={}, stdin=subprocess.DEVNULL)
        conn, _ = server.accept()
        conn.recv(1)
        elapsed = (time.perf_counter() - t0) * 1000
        conn.close()
        proc.wait()
        if i:
            out.append(elapsed)
    server.close()
    return out


def step_floor_us(tmp: Path, steps: int, runs: int) -> list[float]:
    import json

    path = str(tmp / "steps.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)
    out = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        proc = subprocess.Popen([PY, "-I", "-S", "-c", STEP_FLOOR_CHILD, path, str(steps)], env={})
        conn, _ = server.accept()
        buf = b""
        while chunk := conn.recv(262144):
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                json.loads(line)
        elapsed_full = time.perf_counter() - t0
        conn.close()
        proc.wait()
        t0 = time.perf_counter()
        proc = subprocess.Popen([PY, "-I", "-S", "-c", STEP_FLOOR_CHILD, path, "0"], env={})
        conn, _ = server.accept()
        while conn.recv(65536):
            pass
        elapsed_empty = time.perf_counter() - t0
        conn.close()
        proc.wait()
        if i:
            out.append((elapsed_full - elapsed_empty) / steps * 1e6)
    server.close()
    return out


async def service_figures(root: Path, runs: int, steps: int) -> tuple[list[float], list[float]]:
    config = Config.load(environ={"PATH_ROOT": str(root), "HERO_LOGIC_SANDBOX": "env_scrub", "HERO_LOGIC_WARM_POOL": "0"})
    cold: list[float] = []
    per_step: list[float] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(serve, config)
        async with AsyncClient(config.rpc_socket) as client:
            trivial = await client.call("workflow_create", {"name": "trivial", "python_source": TRIVIAL})
            many = await client.call("workflow_create", {"name": "steps", "python_source": STEPS})

            async def timed(wf: dict, inputs: dict) -> float:
                t0 = time.perf_counter()
                sid = await client.call("play_start", {"workflow_sid": wf["sid"], "input_data": inputs})
                play = await client.call("play_wait", {"play_sid": sid})
                assert play["status"] == "success", play["error_message"]
                return time.perf_counter() - t0

            for i in range(runs + 1):
                t = await timed(trivial, {})
                if i:
                    cold.append(t * 1000)
            for i in range(runs + 1):
                full = await timed(many, {"n": steps})
                empty = await timed(many, {"n": 0})
                if i:
                    per_step.append((full - empty) / steps * 1e6)
        nursery.cancel_scope.cancel()
    return cold, per_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hlb-", dir="/tmp") as tmp_name:
        tmp = Path(tmp_name)
        floor_cold = popen_floor_ms(tmp, args.runs)
        floor_step = step_floor_us(tmp, args.steps, args.runs)
        cold, per_step = trio.run(service_figures, tmp / "root", args.runs, args.steps)
    print(f"{'figure':44} {'median (min, max)':>34}   ratio")
    print(f"{'P2 floor: Popen python -I -S + imports (ms)':44} {_stats(floor_cold):>34}")
    print(f"{'P2 cold play, env_scrub, via RPC (ms)':44} {_stats(cold):>34}   {statistics.median(cold) / statistics.median(floor_cold):.2f}x floor (target <= 1.3x)")
    print(f"{'P1 floor: 2 JSONL events/step over UDS (us)':44} {_stats(floor_step):>34}")
    print(f"{'P1 per-step overhead, durable (us)':44} {_stats(per_step):>34}   {statistics.median(per_step) / statistics.median(floor_step):.2f}x floor (target <= 50 us)")


if __name__ == "__main__":
    main()
