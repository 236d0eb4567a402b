"""P6: span ingestion — 4 concurrent plays streaming events, persisted with group commit.

Run: ``make bench`` or ``.venv/bin/python bench/bench_ingest.py [--events N] [--runs N]``.

* Floor: 4 child processes at once, each ``json.dumps`` + ``sendall``-ing ``--events`` ~200-byte
  events (one per line) over its own Unix socket to one reader thread per socket that
  ``json.loads`` each line — the raw socket floor, nothing persisted.
* Service: 4 plays started together through the RPC socket (LMDB, env_scrub), each a flow that
  opens one span and logs ``--events`` ~200-byte lines into it (``current_span.log``), each a
  ``span_log`` event the service decodes, applies, persists and publishes. Events/s counts from
  the first ``play_start`` to the last play reported ``success`` (a play reports success only
  after every event it sent was committed durably), minus the same 4 plays emitting nothing.

Medians of ``--runs`` after one warm-up; read the ratio (target: ≥ 150k events/s and ≥ 75% of
the floor measured in the same run).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import trio

from hero_logic.kernel import Config
from hero_logic.rpc import AsyncClient
from hero_logic.server import serve

PY = os.path.realpath(os.sys.executable)  # type: ignore[attr-defined]
PLAYS = 4
TEXT = "x" * 150

LOGGING = f"""
from hero_tracing import flow

@flow
def main(n: int):
    with flow.span("stream") as span:
        for i in range(n):
            flow.current_span.log({TEXT!r})
    return n
"""

FLOOR_CHILD = f"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
n = int(sys.argv[2])
for i in range(n):
    s.sendall(json.dumps({{"type": "span_log", "span_id": "s1", "ts": 1700000000000, "text": {TEXT!r}}}).encode() + b"\\n")
s.close()
"""


def _read_all(conn: socket.socket) -> None:
    import json

    buf = b""
    while chunk := conn.recv(262144):
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            json.loads(line)
    conn.close()


def floor_events_per_s(tmp: Path, events: int) -> float:
    servers, procs, readers = [], [], []
    for i in range(PLAYS):
        path = str(tmp / f"floor{i}.sock")
        server = socket.socket(socket.AF_UNIX)
        server.bind(path)
        server.listen(1)
        servers.append((server, path))
    t0 = time.perf_counter()
    for _server, path in servers:
        procs.append(subprocess.Popen([PY, "-I", "-S", "-c", FLOOR_CHILD, path, str(events)], env={}))
    for server, _path in servers:
        conn, _ = server.accept()
        reader = threading.Thread(target=_read_all, args=(conn,))
        reader.start()
        readers.append(reader)
    for reader in readers:
        reader.join()
    elapsed = time.perf_counter() - t0
    for proc in procs:
        proc.wait()
    for server, path in servers:
        server.close()
        os.unlink(path)
    return PLAYS * events / elapsed


async def service_events_per_s(root: Path, events: int, runs: int) -> list[float]:
    config = Config.load(
        environ={
            "PATH_ROOT": str(root),
            "HERO_LOGIC_SANDBOX": "env_scrub",
            "HERO_LOGIC_ADMIN_BIND": "none",
            "HERO_LOGIC_SEED_FLOWS": "off",
        }
    )
    out: list[float] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(serve, config)
        async with AsyncClient(config.rpc_socket) as client:
            wf = await client.call("workflow_create", {"name": "stream", "python_source": LOGGING})

            async def batch(n: int) -> float:
                t0 = time.perf_counter()
                sids = [
                    await client.call("play_start", {"workflow_sid": wf["sid"], "input_data": {"n": n}})
                    for _ in range(PLAYS)
                ]
                for sid in sids:
                    play = await client.call("play_wait", {"play_sid": sid})
                    assert play["status"] == "success", play["error_message"]
                return time.perf_counter() - t0

            for i in range(runs + 1):
                full = await batch(events)
                empty = await batch(0)
                if i:
                    out.append(PLAYS * events / max(full - empty, 1e-9))
        nursery.cancel_scope.cancel()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000, help="events per play")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hlb-", dir="/tmp") as tmp_name:
        tmp = Path(tmp_name)
        floor_events_per_s(tmp, 1000)  # warm-up
        floor = [floor_events_per_s(tmp, args.events) for _ in range(args.runs)]
        service = trio.run(service_events_per_s, tmp / "root", args.events, args.runs)
    f, s = statistics.median(floor), statistics.median(service)
    print(f"P6 — {PLAYS} concurrent plays x {args.events} events of ~200 bytes")
    print(f"  floor: JSONL over UDS, parsed, not persisted: {f:10.0f} events/s (min {min(floor):.0f}, max {max(floor):.0f})")
    print(f"  service: decoded, applied, group-committed:   {s:10.0f} events/s (min {min(service):.0f}, max {max(service):.0f})")
    print(f"  ratio {s / f:.2f} of the floor (target >= 0.75 and >= 150k events/s)")


if __name__ == "__main__":
    main()
