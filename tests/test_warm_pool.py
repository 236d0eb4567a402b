"""Warm starts: flow processes started inside their sandbox before their play is known, each
serving exactly one play (docs/sandbox.md "Warm starts"; the hostile battery runs warm too)."""

from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING, Any

import pytest
import trio

from hero_logic.kernel._loopfs import mounts_under
from hero_logic.rpc import AsyncClient

from ._sandbox_helpers import (
    IS_ROOT,
    NO_WARM_ENV_SCRUB,
    WarmService,
    open_service,
    run_flow,
    service_for,
    start_environ,
    tier_params,
    wait_warm,
)
from .conftest import Service, start_service_process

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.timeout(90)

TIERS = tier_params("env_scrub", "bwrap", warm=True)

TREE_FLOW = """
import os, sys
from hero_tracing import flow

@flow
def double(x: int):
    flow.current_span.tag(doubled=x)
    return 2 * x

@flow
def refuse(x: int):
    raise flow.Failed(f"no {x}")

@flow
def main(n: int):
    print("hello from the flow")
    with flow.span("inner", colour="blue") as span:
        span.log("inside")
        total = sum(double(x=i) for i in range(n))
    try:
        refuse(x=n)
    except flow.Failed as exc:
        flow.current_span.tag(refused=str(exc))
    here = os.path.dirname(os.environ["HERO_FLOW_SOURCE_FILE"])
    return {
        "total": total,
        "cwd": os.getcwd(),
        "home_is_cwd": os.environ["HOME"] == os.getcwd(),
        "env": sorted(os.environ.items()),
        "argv0": sys.argv[0],
        "stdin": os.readlink("/proc/self/fd/0"),
        "play_files": sorted(f for f in os.listdir(here) if f in ("flow.py", "input.json", "span.sock")),
        "workdir": sorted(os.listdir(".")),
    }
"""


def _normal(value: Any, play_sid: str, version_sid: str) -> Any:
    """``value`` with the play's own ids (which differ between any two plays) taken out."""
    text = repr(value).replace(play_sid, "<play>").replace(version_sid, "<version>")
    return text


def _tree(spans: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    names = {s["span_id"]: s["name"] for s in spans}
    return sorted(
        (
            s["name"], s["kind"], s["status"], names.get(s["parent_id"], ""),
            sorted(s["tags"].items()), s["logs"], s["error"], s["source_line"],
        )
        for s in spans
    )


async def _one_play(svc: Service, wf: dict[str, Any]) -> tuple[Any, Any]:
    sid = await svc.call("play_start", workflow_sid=wf["sid"], input_data={"n": 4})
    play = await svc.call("play_wait", play_sid=sid, timeout_ms=30000)
    assert play["status"] == "success", play["error_message"]
    spans = await svc.call("play_spans", play_sid=sid)
    version = wf["current_version_sid"] if "current_version_sid" in wf else play["workflow_version_sid"]
    return _normal(play["output_data"], sid, version), _normal(_tree(spans), sid, version)


@pytest.mark.parametrize("tier", TIERS)
async def test_a_warm_play_and_a_cold_play_give_identical_span_trees_and_outputs(root: Path, tier: str) -> None:
    """Same spans (names, kinds, statuses, parents, tags, logs, errors) and the same output —
    environment, working directory, argv, stdin, the play's files — warm as cold."""
    outcomes = {}
    for start in ("cold", "warm"):
        overrides = {"warm_pool": 0} if start == "cold" else {"warm_pool": 1, "warm_pool_min": "1"}
        async with open_service(root / start, tier, **overrides) as plain:
            svc = service_for(plain.config, plain.client, start)
            wf = await svc.push(TREE_FLOW, name="tree")
            outcomes[start] = await _one_play(svc, wf)
            pool = (await svc.client.health())["warm_pool"]
            assert pool["hits"] == (1 if start == "warm" else 0), pool
    (cold_out, cold_tree), (warm_out, warm_tree) = outcomes["cold"], outcomes["warm"]
    if tier == "env_scrub":  # host paths: each service has its own root
        warm_out = warm_out.replace(str(root / "warm"), str(root / "cold"))
        warm_tree = warm_tree.replace(str(root / "warm"), str(root / "cold"))
    assert warm_out == cold_out
    assert warm_tree == cold_tree
    assert "hero_boot.py" in cold_out
    assert "/dev/null" in cold_out


def _host_pid(svc: Service, play_sid: str) -> int:
    """The pid the service recorded for the play's flow process (its own, or bwrap's)."""
    return int((svc.config.play_dir(play_sid) / "flow.pid").read_text().split()[0])


@pytest.mark.parametrize("tier", TIERS)
async def test_a_warm_process_never_serves_two_plays(root: Path, tier: str) -> None:
    """Six plays in a row, each on a warm process: six different processes, each gone after
    its play; the pool's hits count them."""
    async with open_service(root, tier, warm_pool=1, warm_pool_min="1") as plain:
        svc = WarmService(plain.config, plain.client)
        wf = await svc.push("from hero_tracing import flow\n@flow\ndef main():\n    return 'done'\n")
        pids = []
        for _ in range(6):
            play = await svc.run(wf)
            assert play["status"] == "success", play["error_message"]
            pid = _host_pid(svc, play["sid"])
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
            pids.append(pid)
        pool = (await svc.client.health())["warm_pool"]
    assert len(set(pids)) == 6, pids
    assert pool["hits"] == 6, pool
    assert pool["misses"] == pool["fallbacks"] == 0, pool


async def _ready(client: AsyncClient, count: int) -> dict[str, Any]:
    with trio.fail_after(30):
        while True:
            pool: dict[str, Any] = (await client.health())["warm_pool"]
            if pool["ready"] >= count:
                return pool
            await trio.sleep(0.02)


@pytest.mark.parametrize("tier", TIERS)
async def test_the_pool_refills_after_use(root: Path, tier: str) -> None:
    """Two ready, two plays take them, two fresh ones are ready again, without another play."""
    async with open_service(root, tier, warm_pool=2, warm_pool_min="2") as svc:
        wf = await svc.push("from hero_tracing import flow\n@flow\ndef main():\n    return 'done'\n")
        await _ready(svc.client, 2)
        sids = [await svc.call("play_start", workflow_sid=wf["sid"]) for _ in range(2)]
        for sid in sids:
            assert (await svc.call("play_wait", play_sid=sid))["status"] == "success"
        pool = await _ready(svc.client, 2)
    assert pool["hits"] == 2, pool
    assert pool["ready"] == 2, pool


async def test_an_idle_warm_process_is_recycled_after_its_max_idle_age(root: Path) -> None:
    """A process unused for --warm-pool-max-idle is replaced by a fresh one."""
    async with open_service(root, "bwrap", warm_pool=1, warm_pool_min="1", warm_pool_max_idle_s=1) as svc:
        await _ready(svc.client, 1)
        with trio.fail_after(20):
            while (pool := (await svc.client.health())["warm_pool"])["recycled"] < 2:
                await trio.sleep(0.1)
        pool = await _ready(svc.client, 1)
    assert pool["hits"] == 0, pool


async def test_a_play_that_needs_the_network_starts_cold(root: Path) -> None:
    """The network is bound when a sandbox is built: such a play never takes a warm process."""
    async with open_service(root, "bwrap", warm_pool=1, warm_pool_min="1") as svc:
        await _ready(svc.client, 1)
        wf = await svc.push("from hero_tracing import flow\n@flow(network=True)\ndef main():\n    return 1\n")
        play = await svc.run(wf)
        pool = (await svc.client.health())["warm_pool"]
    assert play["status"] == "success", play["error_message"]
    assert pool["cold_only"] == 1, pool
    assert pool["hits"] == 0, pool


PAUSING_FLOW = """
import os
from hero_tracing import ask_user, flow

@flow
def main():
    with open("before.txt", "w") as f:
        f.write("written before the pause")
    answer = ask_user.confirm("go on?")
    return {"answer": answer, "before": open("before.txt").read(), "files": sorted(os.listdir("."))}
"""


@pytest.mark.parametrize("tier", TIERS)
async def test_a_resume_on_a_warm_process_finds_the_play_s_workdir(root: Path, tier: str) -> None:
    """The first run and the resume both run warm; the resume sees what the first run wrote."""
    async with open_service(root, tier, warm_pool=1, warm_pool_min="1") as plain:
        svc = WarmService(plain.config, plain.client)
        wf = await svc.push(PAUSING_FLOW)
        sid = await svc.call("play_start", workflow_sid=wf["sid"])
        play = await svc.call("play_wait", play_sid=sid, timeout_ms=30000)
        assert play["status"] == "awaiting_resume", play["error_message"]
        await wait_warm(svc.client, 0)
        await svc.call("play_resume", play_sid=sid, resume_id=play["pending_resumes"][0]["id"], payload=True)
        play = await svc.call("play_wait", play_sid=sid, timeout_ms=30000)
        pool = (await svc.client.health())["warm_pool"]
    assert play["status"] == "success", play["error_message"]
    assert play["output_data"] == {"answer": True, "before": "written before the pause", "files": ["before.txt"]}
    assert pool["hits"] == 2, pool
    assert pool["fallbacks"] == 0, pool
    workdir = svc.config.play_workdir(sid)
    assert not workdir.is_symlink()
    assert (workdir / "before.txt").read_text() == "written before the pause"


FILLS_THEN_PAUSES = """
from hero_tracing import ask_user, flow

@flow
def main():
    for i in range(3):  # 15 MiB, in files under the sandbox's file size limit
        with open(f"big{i}", "wb") as f:
            f.write(b"x" * (5 << 20))
    return ask_user.confirm("go on?")
"""


@pytest.mark.skipif(not IS_ROOT, reason="workdir quotas need root")
async def test_a_warm_process_taken_for_a_run_that_cannot_start_is_not_left_behind(root: Path) -> None:
    """The quota was lowered below what a paused play's workdir holds: its resume fails naming
    --workdir-mb before the warm process it took is handed the play. That process is killed
    (it serves no other play), and the pool still holds only its own."""
    async with open_service(root, "bwrap", warm_pool=1, warm_pool_min="1", workdir_mb=32) as svc:
        wf = await svc.push(FILLS_THEN_PAUSES)
        sid = await svc.call("play_start", workflow_sid=wf["sid"])
        play = await svc.call("play_wait", play_sid=sid, timeout_ms=30000)
        assert play["status"] == "awaiting_resume", play["error_message"]
    async with open_service(root, "bwrap", warm_pool=1, warm_pool_min="1", workdir_mb=8) as svc:
        await wait_warm(svc.client, 0)
        await svc.call("play_resume", play_sid=sid, resume_id=play["pending_resumes"][0]["id"], payload=True)
        play = await svc.call("play_wait", play_sid=sid, timeout_ms=30000)
        await wait_warm(svc.client, 1)
        with trio.fail_after(10):  # the interpreters, not the bwrap processes around them
            while len(warm := [p for p in warm_processes(os.getpid()) if "bwrap" not in _processes()[p][2].split(" ")[0]]) != 1:
                await trio.sleep(0.05)
        pool = (await svc.client.health())["warm_pool"]
    assert play["status"] == "failed", play
    assert "--workdir-mb" in play["error_message"], play["error_message"]
    assert len(warm) == 1, warm
    assert mounts_under(root) == []  # the file system taken at the warm workdir went with the failure
    assert pool["recycled"] >= 1, pool


# -- nothing is left when the service goes -------------------------------------------------------


def _processes() -> dict[int, tuple[int, str, str]]:
    """pid → (parent pid, start time, command line) of every live process."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().rsplit(b")", 1)[-1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if stat[0] != b"Z":
            out[int(entry)] = (int(stat[1]), stat[19].decode(), cmdline)
    return out


def warm_processes(service_pid: int) -> dict[int, str]:
    """The warm processes below ``service_pid``: pid → start time."""
    procs = _processes()
    below = {service_pid}
    changed = True
    while changed:
        changed = False
        for pid, (ppid, _, _) in procs.items():
            if ppid in below and pid not in below:
                below.add(pid)
                changed = True
    return {pid: procs[pid][1] for pid in below if "hero_warm.py" in procs[pid][2]}


def _still_alive(pids: dict[int, str]) -> list[int]:
    procs = _processes()
    return [pid for pid, started in pids.items() if pid in procs and procs[pid][1] == started]


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("how", ["stop", "kill -9"])
async def test_no_warm_process_is_left_after_the_service_stops_or_dies(root: Path, tier: str, how: str) -> None:
    """After --stop (SIGTERM) or kill -9 of the service its warm processes are gone, and after
    --stop the pool's directories too."""
    proc, config = await start_service_process(root, sandbox=tier, env=start_environ("warm"))
    try:
        async with AsyncClient(config.rpc_socket) as client:
            await _ready(client, 3)
        warm = warm_processes(proc.pid)
        assert len([1 for _ in warm]) >= 3, warm
    finally:
        proc.send_signal(signal.SIGTERM if how == "stop" else signal.SIGKILL)
        with trio.fail_after(30):
            await proc.wait()
    with trio.move_on_after(5):
        while _still_alive(warm):
            await trio.sleep(0.05)
    assert _still_alive(warm) == []
    if how == "stop":
        assert not (config.state_dir / "warm").exists()


WRITES_THEN_SLEEPS = """
import time
from hero_tracing import flow

@flow
def main():
    open("written", "w").write("before the stop")
    flow.current_span.tag(written=True)
    time.sleep(60)
"""


@pytest.mark.skipif(not IS_ROOT, reason="workdir quotas need root")
async def test_a_stop_during_a_warm_run_leaves_no_mount_and_keeps_the_run_s_files(root: Path) -> None:
    """SIGTERM while a warm run's file system is mounted at its warm workdir: the run's end
    copies the files out and, once every run has ended, the warm workdirs' shared mount goes
    too (it stayed when the pool emptied before the run's end)."""
    proc, config = await start_service_process(root, sandbox="bwrap", env=start_environ("warm"))
    try:
        async with AsyncClient(config.rpc_socket) as client:
            await _ready(client, 1)
            wf = await client.call("workflow_create", {"name": "sleeper", "python_source": WRITES_THEN_SLEEPS})
            sid = await client.call("play_start", {"workflow_sid": wf["sid"]})
            with trio.fail_after(30):
                while not any(s["tags"].get("written") for s in await client.call("play_spans", {"play_sid": sid})):
                    await trio.sleep(0.05)
            pool = (await client.health())["warm_pool"]
        assert pool["hits"] == 1, pool
    finally:
        proc.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            await proc.wait()
    assert mounts_under(root) == []
    assert (config.play_workdir(sid) / "written").read_text() == "before the stop"


@pytest.mark.skipif(not IS_ROOT, reason="workdir quotas need root")
async def test_a_second_service_on_the_same_root_is_refused_without_touching_the_first(root: Path) -> None:
    """A second `serve` on a PATH_ROOT a service runs on exits naming the fix, before it
    recovers anything: the first service's workdir file systems and warm processes stay (the
    second one used to unmount them while finding out it could not run)."""
    async with open_service(root, "bwrap", warm_pool=1, warm_pool_min="1") as svc:
        await wait_warm(svc.client, 0)
        mounts = mounts_under(root)
        env = {**os.environ, "PATH_ROOT": str(root), "HERO_LOGIC_SANDBOX": "bwrap", "HERO_LOGIC_ADMIN_BIND": "none"}
        second = await trio.run_process(
            [sys.executable, "-m", "hero_logic.cli", "serve"], env=env, capture_stdout=True, capture_stderr=True, check=False
        )
        assert mounts_under(root) == mounts
        play = await run_flow(svc, "from hero_tracing import flow\n@flow\ndef main():\n    return 'still fine'\n")
    assert second.returncode != 0
    assert b"another hero_logic service runs on" in second.stderr, second.stderr[-2000:]
    assert play["status"] == "success", play["error_message"]


PROBE_IDLE = """
import os
from hero_tracing import flow

@flow
def main():
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if b"hero_warm.py" not in f.read():
                    continue
        except OSError:
            continue
        seen = {}
        for what in ("environ", "mem"):
            try:
                with open(f"/proc/{entry}/{what}", "rb") as f:
                    f.read(16)
                seen[what] = "read"
            except OSError as exc:
                seen[what] = type(exc).__name__
        found[entry] = seen
    return found
"""


@pytest.mark.skipif(IS_ROOT, reason=NO_WARM_ENV_SCRUB)
async def test_an_env_scrub_flow_cannot_reach_an_idle_warm_process(root: Path) -> None:
    """The warm process a later play gets is non-dumpable while it waits: a flow of the same
    uid (env_scrub shares the service's) can read neither its environment nor its memory."""
    # (minimum 1: no process is starting, and dumpable for a moment, while the probe runs)
    async with open_service(root, "env_scrub", warm_pool=2, warm_pool_min="1") as plain:
        svc = WarmService(plain.config, plain.client)
        await _ready(svc.client, 2)
        wf = await svc.push(PROBE_IDLE)
        play = await svc.run(wf)
    assert play["status"] == "success", play["error_message"]
    found = play["output_data"]
    assert found, "the probe found no idle warm process"
    assert all(v != "read" for seen in found.values() for v in seen.values()), found


@pytest.mark.skipif(not IS_ROOT, reason="env_scrub keeps a warm pool without root")
async def test_env_scrub_under_root_has_no_pool_and_says_why(root: Path) -> None:
    """As root each env_scrub play's flow runs as a uid of its own, not known before the play:
    no warm process is started, /health says why, and plays run cold."""
    async with open_service(root, "env_scrub", warm_pool=2, warm_pool_min="2") as svc:
        play = await run_flow(svc, "from hero_tracing import flow\n@flow\ndef main():\n    return 1\n")
        pool = (await svc.client.health())["warm_pool"]
    assert play["status"] == "success", play["error_message"]
    assert pool["size"] == 0, pool
    assert "uid of its own" in pool["disabled"], pool


def test_the_warm_pool_minimum_is_given_per_tier_or_for_all() -> None:
    from hero_logic.kernel import ConfigError
    from hero_logic.kernel._config import warm_pool_minimum

    assert warm_pool_minimum("2", "bwrap") == 2
    assert warm_pool_minimum("bwrap=3,env_scrub=1", "bwrap") == 3
    assert warm_pool_minimum("bwrap=3,env_scrub=1", "nsjail") == 0
    for bad in ("-1", "bwrap", "bwrap=x", "=2"):
        with pytest.raises(ConfigError):
            warm_pool_minimum(bad, "bwrap")
