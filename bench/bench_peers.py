"""Peers side by side: start, per-step overhead, resume after a pause, replay of 100 finished steps.

Run: ``make bench`` or ``.venv/bin/python bench/bench_peers.py [--runs N]``.

Each peer is installed on demand into its own virtualenv under ``bench/.peers/<name>`` (ignored
by git) at the pinned versions below, and runs its workload script from ``bench/peers/`` with
that venv's python. Our own figures come from two real services in this process (LMDB store,
``--tier``, bwrap by default where installed: as root env_scrub keeps no warm pool), one with the default settings (the warm pool on) and one with the warm pool
disabled (every run cold), measured in the same run:

* start: ``play_start`` → ``play_wait`` returns ``success`` for a trivial flow, through the RPC
  socket (warm: the pool ready, as a service between bursts has it).
* per step: (1000-step play - empty play) / 1000, ``play_start`` → ``play_wait`` (as P1).
* resume: ``play_resume`` → the flow's pause call returns (10 finished steps before it; as P4).
  Ours runs the play again in a process (warm: one already started); the peers resume
  in-process (see the peer scripts).
* replay 100: on resume after 100 finished steps, the flow's own clock around its loop over
  them, all answered from the cache (the root span's ``steps_ms`` tag; LangGraph's figure is
  the same: body entry → the cached task results are back).

Medians of ``--runs`` after one warm-up, min-max beside them; read the ratios ours/peer
(below 1 means we are faster).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import trio
from bench_play import STEPS, TRIVIAL
from bench_resume import PAUSING

from hero_logic.kernel import Config
from hero_logic.rpc import AsyncClient
from hero_logic.server import serve

HERE = Path(__file__).resolve().parent
PEERS_DIR = HERE / ".peers"
BASE_PY = "/root/.pyenv/versions/3.11.7/bin/python3.11"
PINS: dict[str, list[str]] = {
    "dbos": ["dbos==3.4.0"],
    "langgraph": ["langgraph==1.2.22", "langgraph-checkpoint-sqlite==3.1.2"],
}


def ensure_venv(name: str) -> Path:
    """Create or update bench/.peers/<name> so it holds exactly the pinned versions."""
    venv = PEERS_DIR / name
    py = venv / "bin" / "python"
    stamp = venv / ".pins"
    wanted = "\n".join(PINS[name])
    if not py.exists():
        subprocess.run([BASE_PY, "-m", "venv", str(venv)], check=True)
    if not stamp.exists() or stamp.read_text() != wanted:
        print(f"installing {' '.join(PINS[name])} into {venv}", flush=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PINS[name]], check=True)
        stamp.write_text(wanted)
    return py


def installed_versions(py: Path, name: str) -> str:
    dists = [pin.split("==")[0] for pin in PINS[name]]
    code = "import importlib.metadata as m, sys; print(' '.join(f'{d}=={m.version(d)}' for d in sys.argv[1:]))"
    return subprocess.run([str(py), "-I", "-c", code, *dists], check=True, capture_output=True, text=True).stdout.strip()


def run_peer(py: Path, script: str, mode: str, runs: int) -> dict[str, Any]:
    proc = subprocess.run(
        [str(py), str(HERE / "peers" / script), mode, "--runs", str(runs)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if proc.returncode:
        raise SystemExit(f"{script} {mode} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


async def our_figures(root: Path, runs: int, steps: int, *, warm: bool, tier: str) -> dict[str, list[float]]:
    env = {"PATH_ROOT": str(root), "HERO_LOGIC_SANDBOX": tier, "HERO_LOGIC_SEED_FLOWS": "off", "HERO_LOGIC_WEBHOOK_BIND": "none"}
    if not warm:
        env["HERO_LOGIC_WARM_POOL"] = "0"
    config = Config.load(environ=env)
    out: dict[str, list[float]] = {"start_ms": [], "per_step_us": [], "resume_ms": [], "replay100_ms": []}
    async with trio.open_nursery() as nursery:
        await nursery.start(serve, config)
        async with AsyncClient(config.rpc_socket) as client:
            trivial = await client.call("workflow_create", {"name": "trivial", "python_source": TRIVIAL})
            many = await client.call("workflow_create", {"name": "steps", "python_source": STEPS})
            pausing = await client.call("workflow_create", {"name": "pausing", "python_source": PAUSING})

            async def pool_ready() -> None:
                with trio.fail_after(60):
                    while (pool := (await client.health())["warm_pool"])["ready"] < pool["size"]:  # noqa: ASYNC110 - polls the service's /health
                        await trio.sleep(0.005)

            async def timed(wf: dict[str, Any], inputs: dict[str, Any]) -> float:
                await pool_ready()
                t0 = time.perf_counter()
                sid = await client.call("play_start", {"workflow_sid": wf["sid"], "input_data": inputs})
                play = await client.call("play_wait", {"play_sid": sid})
                assert play["status"] == "success", play["error_message"]
                return time.perf_counter() - t0

            async def pause_resume(n: int) -> tuple[float, float]:
                """(resume call → answered span start, ms), (the resumed run's replay of n steps, ms)."""
                sid = await client.call("play_start", {"workflow_sid": pausing["sid"], "input_data": {"n": n}})
                play = await client.call("play_wait", {"play_sid": sid})
                assert play["status"] == "awaiting_resume", play["error_message"]
                before = {s["span_id"] for s in await client.call("play_spans", {"play_sid": sid})}
                await pool_ready()
                t0 = time.time() * 1000
                await client.call("play_resume", {"play_sid": sid, "resume_id": "go?", "payload": "yes"})
                play = await client.call("play_wait", {"play_sid": sid})
                assert play["status"] == "success", play["error_message"]
                spans = await client.call("play_spans", {"play_sid": sid})
                answered = next(s for s in spans if s["name"] == "answered")
                root = next(s for s in spans if s["kind"] == "flow_root" and s["span_id"] in before)
                return answered["start_ms"] - t0, float(root["tags"]["steps_ms"])

            for i in range(runs + 1):
                start = await timed(trivial, {})
                full = await timed(many, {"n": steps})
                empty = await timed(many, {"n": 0})
                resume, _ = await pause_resume(10)
                _, replay = await pause_resume(100)
                if i:
                    out["start_ms"].append(start * 1000)
                    out["per_step_us"].append((full - empty) / steps * 1e6)
                    out["resume_ms"].append(resume)
                    out["replay100_ms"].append(replay)
        nursery.cancel_scope.cancel()
    return out


def _cell(s: dict[str, float]) -> str:
    return f"{s['median']:9.2f} ({s['min']:.2f}-{s['max']:.2f})"


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument(
        "--tier", default="",
        help="our sandbox tier (default: bwrap where installed, which keeps a warm pool as root; else env_scrub)",
    )
    args = parser.parse_args()
    tier = args.tier or ("bwrap" if shutil.which("bwrap") else "env_scrub")
    started = time.perf_counter()
    pythons = {name: ensure_venv(name) for name in PINS}
    for name, py in pythons.items():
        print(f"peer {name}: {installed_versions(py, name)}  ({py})")

    with tempfile.TemporaryDirectory(prefix="hlp-", dir="/tmp") as tmp:
        warm_raw = trio.run(functools.partial(our_figures, Path(tmp) / "warm", args.runs, args.steps, warm=True, tier=tier))
        cold_raw = trio.run(functools.partial(our_figures, Path(tmp) / "cold", args.runs, args.steps, warm=False, tier=tier))
    ours = {key: _summary(values) for key, values in warm_raw.items()}
    ours.update({f"{key}_cold": _summary(values) for key, values in cold_raw.items()})
    dbos = run_peer(pythons["dbos"], "dbos_flow.py", "all", args.runs)
    dbos_wal = run_peer(pythons["dbos"], "dbos_flow.py", "steps-wal", args.runs)
    langgraph = run_peer(pythons["langgraph"], "langgraph_flow.py", "all", args.runs)

    starts = [("DBOS start_workflow→result", dbos), ("LangGraph invoke, no task", langgraph)]
    resumes = [(f"DBOS send->recv, {dbos['poll_s'] * 1000:g} ms poll", dbos), ("LangGraph Command(resume)", langgraph)]
    rows = [
        ("start a trivial flow, warm (ms)", "start_ms", "start_ms", starts),
        ("start a trivial flow, cold (ms)", "start_ms_cold", "start_ms", starts),
        ("per step, 1000-step flow (us)", "per_step_us", "per_step_us", [("DBOS (SQLite default)", dbos), ("DBOS (SQLite WAL)", dbos_wal), ("LangGraph functional+SQLite", langgraph)]),
        ("resume, 10 steps before, warm (ms)", "resume_ms", "resume_ms", resumes),
        ("resume, 10 steps before, cold (ms)", "resume_ms_cold", "resume_ms", resumes),
        ("replay of 100 finished steps (ms)", "replay100_ms", "replay100_ms", [("DBOS fork_workflow replay", dbos), ("LangGraph re-run, cached tasks", langgraph)]),
    ]
    print()
    print(f"{f'figure (ours: {tier}, LMDB)':44} {'ours median (min-max)':>26}   {'peer':32} {'peer median (min-max)':>26}   ours/peer")
    for title, key, peer_key, peers in rows:
        for j, (label, result) in enumerate(peers):
            first = (title, _cell(ours[key])) if j == 0 else ("", "")
            ratio = ours[key]["median"] / result[peer_key]["median"]
            print(f"{first[0]:44} {first[1]:>26}   {label:32} {_cell(result[peer_key]):>26}   {ratio:8.3f}x")
    print(f"{'':44} {'':>26}   {'DBOS fork call -> marker (queue)':32} {_cell(dbos['replay_total_ms']):>26}")
    print(f"\nwhole run: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
