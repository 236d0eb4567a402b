"""P2 per sandbox tier: cold play latency beside its floor, measured side by side in one run.

Run: ``.venv/bin/python bench/bench_sandbox.py [--runs N]``.

Floors (no runtime can beat them):

* Popen floor: Popen of ``python -I -S`` that imports json/socket/os/sys/hashlib, connects to a
  Unix socket and sends one byte → the byte arrives.
* bwrap floor: the same child inside a bare bubblewrap (``--unshare-all --die-with-parent``,
  only ``/usr`` and the interpreter's prefix bound, the socket's directory bound).

Figures: ``play_start`` → ``play_wait`` returns ``success`` for a trivial flow, through the RPC
socket of a real service (LMDB store), one service per tier (default limits, warm pool
disabled: a cold start; ``bench_warm.py`` measures warm ones). env_scrub is
compared with the Popen floor, bwrap with the bwrap floor (target: ≤ 1.3x each). Every
iteration measures all of them in turn, so the machine's noise hits each alike. Medians of
``--runs`` after a warm-up, min-max beside them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from hero_logic.kernel import Config
from hero_logic.rpc import AsyncClient
from hero_logic.sandbox._bwrap import interpreter_prefix, system_binds
from hero_logic.server import serve

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

PY = os.path.realpath(sys.executable)

TRIVIAL = """
from hero_tracing import flow

@flow
def main():
    return 1
"""

FLOOR_CHILD = """
import json, socket, os, sys, hashlib
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"x"); s.close()
"""


def floor_once(sock_dir: Path, *, bwrap: bool) -> float:
    """Seconds from Popen to the child's byte arriving on a Unix socket."""
    path = sock_dir / "floor.sock"
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    argv = [PY, "-I", "-S", "-c", FLOOR_CHILD, str(path)]
    if bwrap:
        prefix = interpreter_prefix(PY)
        argv = [
            "bwrap", "--unshare-all", "--die-with-parent", *system_binds(network=False),
            "--ro-bind", prefix, prefix, "--bind", str(sock_dir), str(sock_dir), "--", *argv,
        ]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env={}, stdin=subprocess.DEVNULL)
    conn, _ = server.accept()
    conn.recv(1)
    elapsed = time.perf_counter() - start
    conn.close()
    server.close()
    proc.wait()
    return elapsed


@asynccontextmanager
async def open_tier_service(root: Path, tier: str, **settings: str) -> AsyncIterator[tuple[AsyncClient, str]]:
    """A service running ``tier`` and the sid of a trivial workflow on it. P2 is a cold start:
    the warm pool is disabled unless ``settings`` (environment variables) say otherwise."""
    env = {"PATH_ROOT": str(root), "HERO_LOGIC_SANDBOX": tier, "HERO_LOGIC_ADMIN_BIND": "none", "HERO_LOGIC_WARM_POOL": "0", **settings}
    config = Config.load(environ=env)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve, config)
        async with AsyncClient(config.rpc_socket) as client:
            wf = await client.call("workflow_create", {"name": f"trivial-{tier}", "python_source": TRIVIAL})
            yield client, wf["sid"]
        nursery.cancel_scope.cancel()


async def play_once(client: AsyncClient, wf_sid: str) -> float:
    start = time.perf_counter()
    sid = await client.call("play_start", {"workflow_sid": wf_sid})
    play: dict[str, Any] = await client.call("play_wait", {"play_sid": sid, "timeout_ms": 30000})
    elapsed = time.perf_counter() - start
    if play["status"] != "success":
        msg = f"bench play {sid} ended {play['status']}: {play['error_message']}"
        raise RuntimeError(msg)
    return elapsed


def _fmt(samples: list[float]) -> str:
    ms = [s * 1000 for s in samples]
    return f"{statistics.median(ms):7.1f} ms  ({min(ms):.1f}-{max(ms):.1f})"


async def main(runs: int) -> None:
    tiers = ["env_scrub"] + (["bwrap"] if shutil.which("bwrap") else [])
    with tempfile.TemporaryDirectory(prefix="hb-", dir="/tmp") as tmp:
        base = Path(tmp)
        sock_dir = base / "floor"
        sock_dir.mkdir()
        samples: dict[str, list[float]] = {"popen floor": [], "bwrap floor": []}
        async with AsyncExitStack() as stack:
            services = {}
            for tier in tiers:
                (base / tier).mkdir()
                services[tier] = await stack.enter_async_context(open_tier_service(base / tier, tier))
                samples[tier] = []
            for i in range(runs + 2):  # two warm-ups
                floor = floor_once(sock_dir, bwrap=False)
                bw_floor = floor_once(sock_dir, bwrap=True) if "bwrap" in tiers else 0.0
                played = {tier: await play_once(*services[tier]) for tier in tiers}
                if i < 2:
                    continue
                samples["popen floor"].append(floor)
                if "bwrap" in tiers:
                    samples["bwrap floor"].append(bw_floor)
                for tier, value in played.items():
                    samples[tier].append(value)
    print(f"P2 cold play per sandbox tier, {runs} runs each, interleaved (median, min-max)")
    print(f"  Popen floor (python -I -S + imports → byte) {_fmt(samples['popen floor'])}")
    print(f"  env_scrub play_start → success             {_fmt(samples['env_scrub'])}"
          f"   ratio {statistics.median(samples['env_scrub']) / statistics.median(samples['popen floor']):.2f}x (target ≤ 1.3x)")
    if "bwrap" in tiers:
        print(f"  bwrap floor (same child in bare bwrap)      {_fmt(samples['bwrap floor'])}")
        print(f"  bwrap play_start → success                 {_fmt(samples['bwrap'])}"
              f"   ratio {statistics.median(samples['bwrap']) / statistics.median(samples['bwrap floor']):.2f}x (target ≤ 1.3x)")
    else:
        print("  bwrap: not installed here (apt-get install bubblewrap)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    trio.run(main, parser.parse_args().runs)
