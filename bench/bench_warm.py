"""P3 (warm play), P4w (warm resume) and 50 plays at once, beside cold starts and the floors.

Run: ``make bench`` or ``.venv/bin/python bench/bench_warm.py [--runs N] [--burst N]``.

For each tier (env_scrub, and bwrap where installed) two services run side by side: one with
the default settings (the warm pool at its default size) and one with ``--warm-pool 0`` (every
play cold). Every iteration measures, in turn, so the machine's noise hits each alike:

* the floor: Popen of ``python -I -S`` + imports → a byte on a Unix socket (inside a bare
  bubblewrap for bwrap), as in ``bench_sandbox.py``;
* P3 warm play: ``play_start`` → ``play_wait`` returns ``success`` for a trivial flow through
  the RPC socket, the pool ready (the service has had the time to refill it);
* the same play cold (pool disabled);
* P4w warm resume: ``play_resume`` → the pause call returns in the flow, 10 finished steps
  before it (resume call → the ``answered`` span's start, which the flow opens right after
  the pause returns; span times have ms resolution), the pool ready; and the same cold.

Then, once per tier: ``--back-to-back`` warm plays in a row without waiting for the refill
(what a client firing plays one after another sees; hits and misses printed), and ``--burst``
plays started at once with the default pool and with the pool disabled: total wall time (first
``play_start`` → last ``success``) and each play's start latency (its ``play_start`` call →
its flow's root span start), p50 and p99.

Medians of ``--runs`` after two warm-ups, min-max beside them. The machine is shared and noisy:
read the ratios, which come from one run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio
from bench_resume import PAUSING
from bench_sandbox import TRIVIAL, floor_once

from hero_logic.kernel import Config
from hero_logic.rpc import AsyncClient
from hero_logic.server import serve

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class Svc:
    def __init__(self, client: AsyncClient, trivial: str, pausing: str) -> None:
        self.client = client
        self.trivial = trivial
        self.pausing = pausing

    async def pool(self) -> dict[str, Any]:
        pool: dict[str, Any] = (await self.client.health())["warm_pool"]
        return pool

    async def until_ready(self) -> None:
        """Until the pool holds its full size (a no-op when it is disabled)."""
        with trio.fail_after(60):
            while (pool := await self.pool())["ready"] < pool["size"]:  # noqa: ASYNC110 - polls another service's /health
                await trio.sleep(0.005)

    async def play(self) -> float:
        t0 = time.perf_counter()
        sid = await self.client.call("play_start", {"workflow_sid": self.trivial})
        play = await self.client.call("play_wait", {"play_sid": sid, "timeout_ms": 60000})
        elapsed = time.perf_counter() - t0
        assert play["status"] == "success", play["error_message"]
        return elapsed * 1000

    async def paused(self) -> str:
        sid: str = await self.client.call("play_start", {"workflow_sid": self.pausing, "input_data": {"n": 10}})
        play = await self.client.call("play_wait", {"play_sid": sid, "timeout_ms": 60000})
        assert play["status"] == "awaiting_resume", play["error_message"]
        return sid

    async def resume(self, sid: str) -> float:
        t0 = time.time() * 1000
        await self.client.call("play_resume", {"play_sid": sid, "resume_id": "go?", "payload": "yes"})
        play = await self.client.call("play_wait", {"play_sid": sid, "timeout_ms": 60000})
        assert play["status"] == "success", play["error_message"]
        spans = await self.client.call("play_spans", {"play_sid": sid})
        return float(next(s for s in spans if s["name"] == "answered")["start_ms"] - t0)


@asynccontextmanager
async def open_svc(root: Path, tier: str, **settings: str) -> AsyncIterator[Svc]:
    env = {"PATH_ROOT": str(root), "HERO_LOGIC_SANDBOX": tier, "HERO_LOGIC_ADMIN_BIND": "none", "HERO_LOGIC_SEED_FLOWS": "off", **settings}
    config = Config.load(environ=env)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve, config)
        async with AsyncClient(config.rpc_socket) as client:
            trivial = await client.call("workflow_create", {"name": "trivial", "python_source": TRIVIAL})
            pausing = await client.call("workflow_create", {"name": "pausing", "python_source": PAUSING})
            yield Svc(client, trivial["sid"], pausing["sid"])
        nursery.cancel_scope.cancel()


async def burst(svc: Svc, n: int) -> tuple[float, list[float], dict[str, Any]]:
    """n plays started at once: (wall ms, start latencies ms, pool counters during the burst)."""
    await svc.until_ready()
    before = await svc.pool()
    starts: dict[str, float] = {}
    t0 = time.perf_counter()

    async def one() -> None:
        at = time.time() * 1000
        sid = await svc.client.call("play_start", {"workflow_sid": svc.trivial})
        starts[sid] = at
        play = await svc.client.call("play_wait", {"play_sid": sid, "timeout_ms": 120000})
        assert play["status"] == "success", play["error_message"]

    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(one)
    wall = (time.perf_counter() - t0) * 1000
    latencies = []
    for sid, at in starts.items():
        spans = await svc.client.call("play_spans", {"play_sid": sid})
        latencies.append(next(s for s in spans if s["kind"] == "flow_root")["start_ms"] - at)
    after = await svc.pool()
    return wall, latencies, {k: after[k] - before[k] for k in ("hits", "misses")}


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):8.1f} ms ({min(values):.1f}-{max(values):.1f})"


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(runs: int, back_to_back: int, burst_n: int, pool: str, only: str, workdir_mb: str) -> None:
    tiers = ["env_scrub"] + (["bwrap"] if shutil.which("bwrap") else [])
    tiers = [t for t in tiers if not only or t in only.split(",")]
    settings = {"HERO_LOGIC_WARM_POOL": pool} if pool else {}
    both = {"HERO_LOGIC_WORKDIR_MB": workdir_mb} if workdir_mb else {}
    settings.update(both)
    rows: dict[str, list[float]] = {}
    extra: list[str] = []
    with tempfile.TemporaryDirectory(prefix="hw-", dir="/tmp") as tmp:
        base = Path(tmp)
        sock_dir = base / "floor"
        sock_dir.mkdir()
        async with AsyncExitStack() as stack:
            warm: dict[str, Svc] = {}
            cold: dict[str, Svc] = {}
            for tier in tiers:
                warm[tier] = await stack.enter_async_context(open_svc(base / f"{tier}-warm", tier, **settings))
                cold[tier] = await stack.enter_async_context(open_svc(base / f"{tier}-cold", tier, HERO_LOGIC_WARM_POOL="0", **both))
            sizes = {tier: (await warm[tier].pool()) for tier in tiers}  # a tier may have none (env_scrub as root)
            for i in range(runs + 2):
                sample: dict[str, float] = {}
                for tier in tiers:
                    sample[f"{tier} floor"] = floor_once(sock_dir, bwrap=tier == "bwrap") * 1000
                    await warm[tier].until_ready()
                    sample[f"{tier} P3 warm play"] = await warm[tier].play()
                    sample[f"{tier} cold play"] = await cold[tier].play()
                    sid = await warm[tier].paused()
                    await warm[tier].until_ready()
                    sample[f"{tier} P4w warm resume"] = await warm[tier].resume(sid)
                    sample[f"{tier} cold resume"] = await cold[tier].resume(await cold[tier].paused())
                if i >= 2:
                    for key, value in sample.items():
                        rows.setdefault(key, []).append(value)
            for tier in tiers:
                await warm[tier].until_ready()
                before = await warm[tier].pool()
                row = [await warm[tier].play() for _ in range(back_to_back)]
                after = await warm[tier].pool()
                rows[f"{tier} warm plays back to back"] = row
                extra.append(
                    f"  {tier}: {back_to_back} plays back to back: {after['hits'] - before['hits']} warm, "
                    f"{after['misses'] - before['misses']} cold (the pool refills one process at a time)"
                )
            for tier in tiers:
                for label, svc in ((f"pool {sizes[tier]['size']}", warm[tier]), ("pool 0", cold[tier])):
                    wall, latencies, counts = await burst(svc, burst_n)
                    extra.append(
                        f"  {tier}, {burst_n} plays at once, {label:7}: wall {wall:8.1f} ms, start latency "
                        f"p50 {statistics.median(latencies):7.1f} ms, p99 {_p(latencies, 0.99):7.1f} ms "
                        f"({counts['hits']} warm, {counts['misses']} cold)"
                    )
    shown = ", ".join(f"{t} {p['size']}" + (f" ({p['disabled']})" if p.get("disabled") else "") for t, p in sizes.items())
    print(f"Warm starts, {runs} runs each, interleaved (median, min-max); pool size{'' if pool else ' (the default)'}: {shown}")
    for tier in tiers:
        floor = statistics.median(rows[f"{tier} floor"])
        warm_play = statistics.median(rows[f"{tier} P3 warm play"])
        cold_play = statistics.median(rows[f"{tier} cold play"])
        warm_resume = statistics.median(rows[f"{tier} P4w warm resume"])
        cold_resume = statistics.median(rows[f"{tier} cold resume"])
        print(f"  {tier} floor (Popen python + imports → byte)   {_cell(rows[f'{tier} floor'])}")
        print(f"  {tier} P3 warm play_start → success          {_cell(rows[f'{tier} P3 warm play'])}"
              f"   {warm_play / floor:.2f}x floor, {warm_play / cold_play:.2f}x cold (target p50 ≤ 5 ms)")
        print(f"  {tier} cold play (pool 0)                      {_cell(rows[f'{tier} cold play'])}   {cold_play / floor:.2f}x floor")
        print(f"  {tier} P4w warm resume → pause returns          {_cell(rows[f'{tier} P4w warm resume'])}"
              f"   {warm_resume / cold_resume:.2f}x cold (target p50 ≤ 5 ms)")
        print(f"  {tier} cold resume (pool 0)                      {_cell(rows[f'{tier} cold resume'])}")
        print(f"  {tier} warm plays back to back                 {_cell(rows[f'{tier} warm plays back to back'])}")
    for line in extra:
        print(line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--back-to-back", type=int, default=10)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--pool", default="", help="--warm-pool of the warm service (default: the service's default)")
    parser.add_argument("--tiers", default="", help="comma-separated tiers (default: every one installed)")
    parser.add_argument("--workdir-mb", default="", help="--workdir-mb of both services (0: no workdir quota; default: the service's)")
    args = parser.parse_args()
    trio.run(main, args.runs, args.back_to_back, args.burst, args.pool, args.tiers, args.workdir_mb)
