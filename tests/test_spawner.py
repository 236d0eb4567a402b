"""Flow processes are started by the executor's spawner, a small helper process, never by
forking the service (docs/sandbox.md, "The spawner")."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest
import trio

from ._sandbox_helpers import live_processes, open_service, run_flow

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.timeout(60)


async def test_a_flow_s_parent_is_the_spawner_not_the_service(root: Path) -> None:
    async with open_service(root, "env_scrub", warm_pool=0) as svc:
        play = await run_flow(
            svc, "import os\nfrom hero_tracing import flow\n@flow\ndef main():\n    return os.getppid()\n"
        )
    assert play["status"] == "success", play["error_message"]
    parent = play["output_data"]
    assert parent != os.getpid()
    with pytest.raises(ProcessLookupError):  # the spawner stopped with the service
        os.kill(parent, 0)


SLEEPS = """
import time
from hero_tracing import flow

@flow
def main():
    time.sleep(30)
"""
FINE = "from hero_tracing import flow\n@flow\ndef main():\n    return 'fine'\n"


def _children(parent: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``parent``."""
    return [pid for pid, _, ppid in live_processes() if ppid == parent]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except OSError:
        return False


def _spawners() -> list[int]:
    """The spawners this process's services started (their children)."""
    found = []
    for pid in _children(os.getpid()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"_spawner_main.py" in f.read():
                    found.append(pid)
        except OSError:
            continue
    return found


async def test_a_dead_spawner_ends_its_flows_and_the_next_play_gets_a_new_one(root: Path) -> None:
    """The spawner dies (killed) while a flow runs: that play ends (killed with it), the warm
    processes the dead spawner started are dropped, later plays run (from a new spawner), and
    the service stops cleanly."""
    with trio.fail_after(50):
        async with open_service(root, "bwrap", warm_pool=2, warm_pool_min="2") as svc:
            while (await svc.client.health())["warm_pool"]["ready"] < 2:
                await trio.sleep(0.02)
            wf = await svc.push(SLEEPS)
            sid = await svc.call("play_start", workflow_sid=wf["sid"])
            while not (svc.config.play_dir(sid) / "flow.pid").exists():
                await trio.sleep(0.02)
            (spawner,) = _spawners()
            its_flows = _children(spawner)  # the running play's and the ready ones
            os.kill(spawner, 9)
            killed = await svc.call("play_wait", play_sid=sid, timeout_ms=30000)
            while any(map(_alive, its_flows)):  # they die with it (a moment later)
                await trio.sleep(0.02)
            assert killed["status"] == "failed", killed
            assert "SIGKILL" in killed["error_message"], killed["error_message"]
            after = await run_flow(svc, FINE)
            assert after["status"] == "success", after["error_message"]
            again = await run_flow(svc, FINE)
            assert again["status"] == "success", again["error_message"]
            assert _spawners() not in ([], [spawner])
