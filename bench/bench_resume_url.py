"""Answering a question by its resume link (``POST /r/<token>`` over the ingress's TCP address),
beside ``play_resume`` over the JSON-RPC socket (the peer), measured in one run.

Run: ``.venv/bin/python bench/bench_resume_url.py [--runs N]``.

Each run starts a play of a flow that asks one question and waits until it is
``awaiting_resume``, then answers it, alternately by link and by ``play_resume``:

* **Answer taken**: the answer sent → its 200 (the answer is durable by then).
* **Flow running again**: the answer sent → the flow's code after the question, read from the
  flow's own clock (``time.time()`` right after ``ask_user.text`` returns; the service spawns a
  flow process and replays it to there).

Medians of ``--runs`` of each after one warm-up, min-max beside them; read the ratios (the
machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import trio

from hero_logic.kernel import Config
from hero_logic.rpc import AsyncClient
from hero_logic.server import serve

ASK = """
import time
from hero_tracing import flow, ask_user

@flow(name="ask")
def main() -> float:
    ask_user.text("Go on?")
    return time.time()
"""


def _stats(values: list[float]) -> str:
    return f"{statistics.median(values):8.2f} (min {min(values):.2f}, max {max(values):.2f})"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _figures(root: Path, runs: int) -> dict[str, list[float]]:
    config = Config.load(environ={
        "PATH_ROOT": str(root), "HERO_LOGIC_SANDBOX": "env_scrub", "HERO_LOGIC_SEED_FLOWS": "off",
        "HERO_LOGIC_ADMIN_BIND": "none", "HERO_LOGIC_WEBHOOK_BIND": f"127.0.0.1:{_free_port()}",
    })
    out: dict[str, list[float]] = {"rpc_taken": [], "rpc_running": [], "url_taken": [], "url_running": []}
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: serve(config, ingress=True, task_status=task_status))
        async with AsyncClient(config.rpc_socket) as client, httpx.AsyncClient() as web:
            wf = await client.call("workflow_create", {"name": "ask", "python_source": ASK})
            for i in range(2 * (runs + 1)):
                sid = await client.call("play_start", {"workflow_sid": wf["sid"]})
                play = await client.call("play_wait", {"play_sid": sid})
                assert play["status"] == "awaiting_resume", play["error_message"]
                (question,) = play["pending_resumes"]
                by_url = i % 2 == 1
                t0 = time.time()
                if by_url:
                    answer = await web.post(question["url"], json="yes")
                    assert answer.status_code == 200, answer.text
                else:
                    await client.call("play_resume", {"play_sid": sid, "resume_id": question["id"], "payload": "yes"})
                taken = (time.time() - t0) * 1000
                play = await client.call("play_wait", {"play_sid": sid})
                assert play["status"] == "success", play["error_message"]
                assert play["received_resumes"][0]["via"] == ("url" if by_url else "rpc")
                running = (play["output_data"] - t0) * 1000
                if i >= 2:
                    kind = "url" if by_url else "rpc"
                    out[f"{kind}_taken"].append(taken)
                    out[f"{kind}_running"].append(running)
        nursery.cancel_scope.cancel()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hlr-", dir="/tmp") as tmp:
        f = trio.run(_figures, Path(tmp), args.runs)
    print(f"{'figure':48} {'median (min, max)':>34}   ratio")
    print(f"{'peer: play_resume over RPC -> answer taken (ms)':48} {_stats(f['rpc_taken']):>34}")
    print(f"{'resume URL POST -> 200 answer taken (ms)':48} {_stats(f['url_taken']):>34}   {statistics.median(f['url_taken']) / statistics.median(f['rpc_taken']):.2f}x peer")
    print(f"{'peer: play_resume -> flow running again (ms)':48} {_stats(f['rpc_running']):>34}")
    print(f"{'resume URL POST -> flow running again (ms)':48} {_stats(f['url_running']):>34}   {statistics.median(f['url_running']) / statistics.median(f['rpc_running']):.2f}x peer")


if __name__ == "__main__":
    main()
