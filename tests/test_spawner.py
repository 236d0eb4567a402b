"""Flow processes are started by the executor's spawner, a small helper process, never by
forking the service (docs/sandbox.md, "The spawner")."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest
import trio

from ._sandbox_helpers import open_service, run_flow

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


KILLS_ITS_PARENT = """
import os, signal, time
from hero_tracing import flow

@flow
def main():
    flow.current_span.tag(started=True)
    os.kill(os.getppid(), signal.SIGKILL)
    time.sleep(30)
"""


async def test_a_dead_spawner_ends_its_flows_and_the_next_play_gets_a_new_one(root: Path) -> None:
    """An env_scrub flow kills the spawner: its play ends (killed with it), the warm processes
    the dead spawner started are dropped, later plays run, and the service stops cleanly."""
    with trio.fail_after(50):
        async with open_service(root, "env_scrub", warm_pool=2, warm_pool_min="2") as svc:
            while (await svc.client.health())["warm_pool"]["ready"] < 2:
                await trio.sleep(0.02)
            killed = await run_flow(svc, KILLS_ITS_PARENT)
            assert killed["status"] == "failed", killed
            assert "SIGKILL" in killed["error_message"], killed["error_message"]
            after = await run_flow(svc, "from hero_tracing import flow\n@flow\ndef main():\n    return 'fine'\n")
            assert after["status"] == "success", after["error_message"]
            again = await run_flow(svc, "from hero_tracing import flow\n@flow\ndef main():\n    return 'fine'\n")
            assert again["status"] == "success", again["error_message"]
