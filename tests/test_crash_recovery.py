"""kill -9 of the service mid-play: nothing acknowledged is lost, no finished step runs twice,
and the orphaned flow process of the dead service is killed before the play runs again."""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

import trio

from hero_logic.rpc import AsyncClient

from .conftest import start_service_process

if TYPE_CHECKING:
    from pathlib import Path

    from hero_logic.kernel import Config

FLOW = """
import os, time
from hero_tracing import flow

def effect(text):
    with open("effects.txt", "a") as f:
        f.write(text + "\\n")

@flow
def first():
    effect("first")
    return 1

@flow
def slow():
    flow.current_span.tag(pid=os.getpid())
    time.sleep(3)
    effect(f"slow by {os.getpid()}")
    return 2

@flow(name="crashy")
def main():
    return first() + slow()
"""


async def _start_service(root: Path) -> tuple[trio.Process, Config]:
    return await start_service_process(root, sandbox="env_scrub")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


async def test_kill_9_mid_play_recovers_without_repeating_finished_steps(root: Path) -> None:
    service, config = await _start_service(root)
    try:
        async with AsyncClient(config.rpc_socket) as client:
            wf = await client.call("workflow_create", {"name": "crashy", "python_source": FLOW})
            play_sid = await client.call("play_start", {"workflow_sid": wf["sid"]})
            with trio.fail_after(20):
                while True:
                    spans = await client.call("play_spans", {"play_sid": play_sid})
                    slow = [s for s in spans if s["name"] == "slow" and "pid" in s["tags"]]
                    if slow:
                        break
                    await trio.sleep(0.02)
        orphan = slow[0]["tags"]["pid"]
        service.send_signal(signal.SIGKILL)
        await service.wait()
        # The flow may outlive the dead service for a moment; the restarted service kills a
        # survivor before re-running the play, so it never writes anything that counts.
        service, config = await _start_service(root)
        with trio.fail_after(5):
            while _alive(orphan):
                await trio.sleep(0.02)
        async with AsyncClient(config.rpc_socket) as client:
            play = await client.call("play_wait", {"play_sid": play_sid, "timeout_ms": 30000})
        assert play["status"] == "success", play["error_message"]
        assert play["output_data"] == 3
        assert play["attempts"] == 2
        effects = (config.play_workdir(play_sid) / "effects.txt").read_text().splitlines()
        assert effects[0] == "first"
        assert effects.count("first") == 1
        assert len(effects) == 2
        assert effects[1].startswith("slow by")
        assert str(orphan) not in effects[1]
    finally:
        service.send_signal(signal.SIGTERM)
        with trio.fail_after(20):
            await service.wait()


CHECKPOINTED = """
import os, signal
from hero_tracing import flow

@flow(checkpoint={checkpoint})
def charge(amount: int):
    with open("charges.txt", "a") as f:
        f.write(f"charged {{amount}}\\n")
    return amount

@flow(name="pay")
def main():
    paid = charge(amount=5)
    if not os.path.exists("killed"):
        open("killed", "w").close()  # the test kills the service now, right after the step returned
        signal.pause()
    return paid
"""


async def _charges_after_a_crash_right_after_the_step(root: Path, *, checkpoint: bool) -> list[str]:
    service, config = await _start_service(root)
    try:
        async with AsyncClient(config.rpc_socket) as client:
            source = CHECKPOINTED.format(checkpoint=checkpoint)
            wf = await client.call("workflow_create", {"name": "pay", "python_source": source})
            play_sid = await client.call("play_start", {"workflow_sid": wf["sid"]})
        # (The flow cannot kill the service itself: a root service's env_scrub flow runs as its own uid.)
        killed = trio.Path(config.play_workdir(play_sid) / "killed")
        with trio.fail_after(20):
            while not await killed.exists():
                await trio.sleep(0.01)
            service.send_signal(signal.SIGKILL)
            await service.wait()
        service, config = await _start_service(root)
        async with AsyncClient(config.rpc_socket) as client:
            play = await client.call("play_wait", {"play_sid": play_sid, "timeout_ms": 30000})
        assert play["status"] == "success", play["error_message"]
        return (config.play_workdir(play_sid) / "charges.txt").read_text().splitlines()
    finally:
        service.send_signal(signal.SIGTERM)
        with trio.fail_after(20):
            await service.wait()


async def test_a_checkpoint_step_is_never_run_again_after_a_crash_right_after_it(root: Path) -> None:
    assert await _charges_after_a_crash_right_after_the_step(root, checkpoint=True) == ["charged 5"]
