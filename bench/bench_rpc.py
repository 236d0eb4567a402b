"""P7: a JSON-RPC call over the Unix socket vs a bare ASGI app on the same hypercorn, one run.

Three servers, each in its own subprocess on hypercorn's trio worker over a Unix socket, all
started by the same :func:`hero_logic.rpc.serve_rpc` so that only the app differs:

  (a) a bare ASGI JSON echo app (``json.loads`` + ``json.dumps`` of the body): the floor;
  (b) RpcApp calling a trivial method (``echo(text)``);
  (c) RpcApp calling ``play_status(play_sid)`` that returns a Play record (what P7 names).

One client (raw ``http.client`` over the socket, keep-alive, reconnecting when the server closes
after ``keep_alive_max_requests``) sends sequential POSTs. Rounds alternate a, b, c so drift hits
all three alike; each figure is the median of the rounds, min-max beside it.

    .venv/bin/python bench/bench_rpc.py [--rounds 7] [--requests 2000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from hero_logic.kernel import Play, PlayStatus
from hero_logic.rpc import MethodTable, RpcApp, rpc_method, serve_rpc

PLAY = Play(
    sid="play_0193a1b2c3d4_9f8e7d6c5b4a", workflow_sid="wf_1", workflow_version_sid="wv_1",
    status=PlayStatus.SUCCESS, name="bench", input_data={"text": "hello"},
    output_data={"words": 1}, created_at=1, started_at=2, completed_at=3, duration_ms=1,
)


class Bench:
    """The trivial service of cases b and c."""

    @rpc_method()
    async def echo(self, text: str) -> str:
        return text

    @rpc_method()
    async def play_status(self, play_sid: str) -> Play:
        return PLAY


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost")
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self._path)
        self.sock = sock


# -- the servers (run in the subprocess) ---------------------------------------------------------


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    answer = json.dumps(json.loads(body), separators=(",", ":")).encode()
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))],
    })
    await send({"type": "http.response.body", "body": answer})


def serve(kind: str, path: str) -> None:
    app: Any = echo_app
    if kind != "echo":
        app = RpcApp(MethodTable.from_service(Bench()), manifest={"name": "bench"})

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_rpc, app, Path(path))
            print("ready", flush=True)

    trio.run(main)


# -- the client ----------------------------------------------------------------------------------


def measure(path: str, body: bytes, n: int) -> tuple[float, float]:
    """(requests per second, p50 latency in ms) for ``n`` sequential keep-alive POSTs."""
    conn = UnixHTTPConnection(path)
    headers = {"content-type": "application/json"}
    latencies = []
    start = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter_ns()
        conn.request("POST", "/rpc", body, headers)
        response = conn.getresponse()
        data = response.read()
        latencies.append(time.perf_counter_ns() - t0)
        if response.status != 200 or b'"error"' in data:
            msg = f"bad answer {response.status}: {data[:200]!r}"
            raise RuntimeError(msg)
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed, statistics.median(latencies) / 1e6


def start_server(kind: str, path: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, path], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        msg = f"server {kind} did not start"
        raise RuntimeError(msg)
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return

    sid = "play_0193a1b2c3d4_9f8e7d6c5b4a"
    cases = {
        "a  bare ASGI JSON echo": ("echo", {"jsonrpc": "2.0", "id": 1, "method": "play_status", "params": {"play_sid": sid}}),
        "b  RpcApp echo(text)": ("rpc", {"jsonrpc": "2.0", "id": 1, "method": "echo", "params": {"text": sid}}),
        "c  RpcApp play_status -> Play": ("rpc", {"jsonrpc": "2.0", "id": 1, "method": "play_status", "params": {"play_sid": sid}}),
    }
    directory = tempfile.mkdtemp(prefix="hl-bench-", dir="/tmp")
    procs = {}
    paths = {}
    try:
        for kind in ("echo", "rpc"):
            paths[kind] = os.path.join(directory, kind, "rpc.sock")
            procs[kind] = start_server(kind, paths[kind])
        bodies = {name: json.dumps(msg).encode() for name, (_, msg) in cases.items()}
        for name, (kind, _) in cases.items():  # warm-up
            measure(paths[kind], bodies[name], 300)
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, (kind, _) in cases.items():
                results[name].append(measure(paths[kind], bodies[name], args.requests))
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(5)
        shutil.rmtree(directory, ignore_errors=True)

    print("P7: sequential keep-alive POSTs over a Unix socket, one client, hypercorn trio worker")
    print(f"{args.rounds} rounds x {args.requests} requests, median (min-max); python {sys.version.split()[0]}")
    print()
    print(f"{'':34} {'req/s':>24} {'p50 ms':>8}")
    medians = {}
    for name, runs in results.items():
        rates = [r for r, _ in runs]
        p50s = [p for _, p in runs]
        medians[name] = statistics.median(rates)
        spread = f"{medians[name]:.0f} ({min(rates):.0f}-{max(rates):.0f})"
        print(f"{name:34} {spread:>24} {statistics.median(p50s):8.3f}")
    floor = medians["a  bare ASGI JSON echo"]
    print()
    for name in list(cases)[1:]:
        ratio = medians[name] / floor
        verdict = "meets" if ratio >= 0.85 else "MISSES"
        print(f"ratio {name.split()[0]}/a: {ratio:.2f}  ({verdict} the P7 target of >= 0.85)")


if __name__ == "__main__":
    main()
