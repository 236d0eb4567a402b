"""Flows that do real work (issue 13): package imports, environment builds, redaction's cost.

Run: ``.venv/bin/python bench/bench_real_work.py [--runs N] [--tier env_scrub|bwrap]``. It
resolves pydantic and httpx from the configured index (uv's own configuration: PyPI by
default), so it needs the registry; the tests do not.

* Cold play importing pydantic from a ready environment, beside its floor: a stdlib play
  (same trivial flow, no dependencies) plus the bare import time of pydantic in the same
  interpreter (a fresh ``python -I -S`` with the environment on ``sys.path``, timing only
  ``import pydantic``). Target: <= 1.2x the sum.
* Environment build of a lock of pydantic + httpx: the first time (empty uv cache) and the
  second (the environment collected, uv's cache warm), each from save to ``env_status=ready``;
  resolution alone beside them.
* P1 (per-step overhead, (1000-step play - empty play) / 1000) with 5 secrets declared and set,
  beside P1 with none. Target: P1 stays <= 50 us.

Medians of ``--runs`` after one warm-up, min-max beside them. The machine is shared and noisy:
read the ratios, not the absolute times.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from hero_logic.kernel import Config
from hero_logic.rpc import AsyncClient
from hero_logic.server import serve

STDLIB = """
from hero_tracing import flow

@flow
def main():
    import json
    return 1
"""

PYDANTIC = """
# /// script
# dependencies = ["pydantic>=2,<3"{extra}]
# ///
from hero_tracing import flow

@flow
def main():
    import pydantic
    return pydantic.VERSION
"""

STEPS = """
from hero_tracing import flow

@flow
def step(i: int):
    return i

@flow{decorator}
def main(n: int):
    {read}
    for i in range(n):
        step(i=i)
    return n
"""
SECRETS = [f"BENCH_SECRET_{i}" for i in range(5)]


def _stats(values: list[float]) -> str:
    return f"{statistics.median(values):9.2f} (min {min(values):.2f}, max {max(values):.2f})"


async def _ready(client: AsyncClient, version_sid: str) -> dict[str, Any]:
    while True:
        version: dict[str, Any] = await client.call("workflow_version_fetch", {"version_sid": version_sid})
        if version["env_status"] != "building":
            assert version["env_status"] in ("ready", "none"), version["env_error"]
            return version
        await trio.sleep(0.02)


async def _play_ms(client: AsyncClient, wf: dict[str, Any], inputs: dict[str, Any] | None = None) -> float:
    t0 = time.perf_counter()
    sid = await client.call("play_start", {"workflow_sid": wf["sid"], "input_data": inputs or {}})
    play = await client.call("play_wait", {"play_sid": sid})
    assert play["status"] == "success", play["error_message"]
    return (time.perf_counter() - t0) * 1000


def _bare_import_ms(python: str, site: Path, runs: int) -> list[float]:
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[1]); t = time.perf_counter(); "
        "import pydantic; print((time.perf_counter() - t) * 1000)"
    )
    out = []
    for i in range(runs + 1):
        result = subprocess.run([python, "-I", "-S", "-c", code, str(site)], capture_output=True, text=True, check=True)
        if i:
            out.append(float(result.stdout))
    return out


async def figures(root: Path, tier: str, runs: int, steps: int) -> dict[str, list[float]]:
    config = Config.load(environ={"PATH_ROOT": str(root), "HERO_LOGIC_SANDBOX": tier, "HERO_LOGIC_SEED_FLOWS": "off"})
    got: dict[str, list[float]] = {}
    async with trio.open_nursery() as nursery:
        await nursery.start(serve, config)
        async with AsyncClient(config.rpc_socket, timeout=600) as client:
            # -- environment builds: first (cold uv cache), then second (cache warm) --------
            for label in ("build first (cold cache)", "build second (cached)"):
                t0 = time.perf_counter()
                wf = await client.call("workflow_create", {"name": "bench-pydantic", "python_source": PYDANTIC.format(extra=', "httpx>=0.27"')})
                t_resolved = time.perf_counter()
                version = await _ready(client, wf["current_version_sid"])
                got[label] = [(time.perf_counter() - t0) * 1000]
                got[label.replace("build", "resolve")] = [(t_resolved - t0) * 1000]
                await client.call("workflow_delete", {"sid": wf["sid"]})  # collects the environment
            # -- cold play importing pydantic vs stdlib play + bare import ----------------------
            plain = await client.call("workflow_create", {"name": "bench-stdlib", "python_source": STDLIB})
            heavy = await client.call("workflow_create", {"name": "bench-import", "python_source": PYDANTIC.format(extra="")})
            version = await _ready(client, heavy["current_version_sid"])
            site = config.envs_dir / version["lock_hash"] / "site"
            got["stdlib play"], got["pydantic play"] = [], []
            for i in range(runs + 1):
                a, b = await _play_ms(client, plain), await _play_ms(client, heavy)
                if i:
                    got["stdlib play"].append(a)
                    got["pydantic play"].append(b)
            got["bare import"] = await trio.to_thread.run_sync(_bare_import_ms, config.python, site, runs)
            # -- P1 with and without 5 secrets ------------------------------------------------
            for name in SECRETS:
                await client.call("secret_set", {"name": name, "value": f"sk-bench-{name}-0123456789abcdef"})
            for label, decorator, read in (
                ("P1, no secrets", "", "pass"),
                ("P1, 5 secrets declared and read", f"(secrets={SECRETS!r})", f"[flow.secret(n) for n in {SECRETS!r}]"),
            ):
                wf = await client.call("workflow_create", {"name": f"bench-{label}", "python_source": STEPS.format(decorator=decorator, read=read)})
                got[label] = []
                for i in range(runs + 1):
                    full = await _play_ms(client, wf, {"n": steps})
                    empty = await _play_ms(client, wf, {"n": 0})
                    if i:
                        got[label].append((full - empty) / steps * 1000)
        nursery.cancel_scope.cancel()
    return got


def redaction_us_per_step(runs: int) -> list[float]:
    """The redactor's own cost on one step's two lines (no secret in them), 5 secrets known."""
    from hero_logic.service._secrets import SecretRedactor

    redactor = SecretRedactor()
    for name in SECRETS:
        redactor.add(name, f"sk-bench-{name}-0123456789abcdef")
    start = b'{"type":"span_start","span_id":"abcdef0123456789000001","parent_id":"abcdef01234567890","name":"step","kind":"step","start_ms":1732000000000,"step_key":"0123456789abcdef0123456789abcdef01234567","tags":{}}'
    end = b'{"type":"span_end","span_id":"abcdef0123456789000001","end_ms":1732000000001,"status":"ok"}'
    batch = [(start, {}), (end, {})]
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(10000):
            redactor.events(batch)
        out.append((time.perf_counter() - t0) / 10000 * 1e6)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--tier", default="bwrap" if shutil.which("bwrap") else "env_scrub")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hlr-", dir="/tmp") as tmp:
        got = trio.run(figures, Path(tmp) / "root", args.tier, args.runs, args.steps)
    med = {k: statistics.median(v) for k, v in got.items()}
    floor = med["stdlib play"] + med["bare import"]
    print(f"tier: {args.tier}")
    print(f"{'figure':46} {'median (min, max)':>36}   ratio")
    for key in ("resolve first (cold cache)", "build first (cold cache)", "resolve second (cached)", "build second (cached)"):
        print(f"{'env ' + key + ' (ms)':46} {_stats(got[key]):>36}")
    print(f"{'stdlib play (ms)':46} {_stats(got['stdlib play']):>36}")
    print(f"{'bare import pydantic, same python (ms)':46} {_stats(got['bare import']):>36}")
    print(f"{'cold play importing pydantic (ms)':46} {_stats(got['pydantic play']):>36}   {med['pydantic play'] / floor:.2f}x (stdlib play + bare import; target <= 1.2x)")
    print(f"{'P1, no secrets (us)':46} {_stats(got['P1, no secrets']):>36}")
    print(f"{'P1, 5 secrets declared and read (us)':46} {_stats(got['P1, 5 secrets declared and read']):>36}   target <= 50 us")
    print(f"{'redaction alone, 2 lines/step, 5 secrets (us)':46} {_stats(redaction_us_per_step(args.runs)):>36}")


if __name__ == "__main__":
    main()
