"""Webhook → play, beside ``play_start`` → play over JSON-RPC (the floor), measured in one run.

Run: ``.venv/bin/python bench/bench_webhook.py [--runs N]``.

* Floor: ``play_start`` → ``success`` of a two-input flow over the RPC socket.
* Accept: a signed (hmac-sha256) webhook delivery over the ingress socket → its 200 answer
  (the play is created and durable by then).
* Webhook → play: the same delivery → the play's ``success`` (``play_wait``).

Medians of ``--runs`` after one warm-up, min-max beside them; read the ratios (the machine is
shared and noisy).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import trio

from hero_logic.kernel import Config
from hero_logic.rpc import AsyncClient
from hero_logic.server import serve

ORDER = """
from hero_tracing import flow

@flow(name="order")
def main(order_id: str, amount: int = 0) -> dict:
    return {"order_id": order_id, "amount": amount}
"""
PUBLIC = "https://hooks.example"


def _stats(values: list[float]) -> str:
    return f"{statistics.median(values):8.2f} (min {min(values):.2f}, max {max(values):.2f})"


async def _figures(root: Path, runs: int) -> dict[str, list[float]]:
    config = Config.load(environ={
        "PATH_ROOT": str(root), "HERO_LOGIC_SANDBOX": "env_scrub",
        "HERO_LOGIC_WEBHOOK_BIND": "none", "HERO_LOGIC_PUBLIC_URL": PUBLIC,
    })
    out: dict[str, list[float]] = {"floor": [], "accept": [], "webhook": []}
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: serve(config, ingress=True, task_status=task_status))
        transport = httpx.AsyncHTTPTransport(uds=str(config.ingress_socket))
        async with AsyncClient(config.rpc_socket) as client, httpx.AsyncClient(transport=transport, base_url="http://ingress") as web:
            wf = await client.call("workflow_create", {"name": "order", "python_source": ORDER})
            hook = await client.call("webhook_create", {"name": "orders", "action": "start", "workflow_sid": wf["sid"]})
            path = hook["url"][len(PUBLIC):]
            for i in range(runs + 1):
                t0 = time.perf_counter()
                sid = await client.call("play_start", {"workflow_sid": wf["sid"], "input_data": {"order_id": f"r{i}"}})
                play = await client.call("play_wait", {"play_sid": sid})
                assert play["status"] == "success", play["error_message"]
                floor = (time.perf_counter() - t0) * 1000

                body = json.dumps({"order_id": f"w{i}", "amount": i}).encode()
                signature = "sha256=" + hmac.new(hook["secret"].encode(), body, hashlib.sha256).hexdigest()
                t0 = time.perf_counter()
                answer = await web.post(path, content=body, headers={"x-signature": signature, "content-type": "application/json"})
                accept = (time.perf_counter() - t0) * 1000
                assert answer.status_code == 200, answer.text
                play = await client.call("play_wait", {"play_sid": answer.json()["play_sid"]})
                assert play["status"] == "success", play["error_message"]
                webhook = (time.perf_counter() - t0) * 1000
                if i:
                    out["floor"].append(floor)
                    out["accept"].append(accept)
                    out["webhook"].append(webhook)
        nursery.cancel_scope.cancel()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hlw-", dir="/tmp") as tmp:
        figures = trio.run(_figures, Path(tmp), args.runs)
    floor, accept, webhook = figures["floor"], figures["accept"], figures["webhook"]
    print(f"{'figure':44} {'median (min, max)':>34}   ratio")
    print(f"{'floor: play_start -> success over RPC (ms)':44} {_stats(floor):>34}")
    print(f"{'webhook delivery -> 200 accepted (ms)':44} {_stats(accept):>34}   {statistics.median(accept) / statistics.median(floor):.2f}x floor")
    print(f"{'webhook delivery -> play success (ms)':44} {_stats(webhook):>34}   {statistics.median(webhook) / statistics.median(floor):.2f}x floor")


if __name__ == "__main__":
    main()
