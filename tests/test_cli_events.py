"""``hero_logic events send|list``, and timers and event waits shown by ``plays`` and ``tree``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import trio

from .test_cli import _cli

if TYPE_CHECKING:
    from .conftest import Service

WAITS = """
from hero_tracing import flow

@flow(name="waits")
def main(event: bool = False):
    if event:
        return flow.wait_event("deploy:done")
    flow.sleep(3600)
"""


async def _awaiting(service: Service, play_sid: str) -> None:
    with trio.fail_after(20):
        while (await service.call("play_status", play_sid=play_sid))["status"] != "awaiting_resume":
            await trio.sleep(0.02)


async def test_plays_and_tree_show_a_timer_and_an_event_wait_and_events_send_wakes_it(service: Service) -> None:
    wf = await service.push(WAITS)
    sleeper = await service.call("play_start", workflow_sid=wf["sid"])
    waiter = await service.call("play_start", workflow_sid=wf["sid"], input_data={"event": True})
    await _awaiting(service, sleeper)
    await _awaiting(service, waiter)
    _, out = await _cli(service, "plays")
    assert "wakes at" in out
    assert "(in 59 m" in out
    assert "waits for event 'deploy:done'" in out
    _, out = await _cli(service, "tree", sleeper)
    assert "wakes at" in out
    _, out = await _cli(service, "events", "send", "deploy:done", "--payload", '{"version": 2}', "--idempotency-key", "d-1")
    assert f"delivered to 1 play(s)\n  {waiter}" in out
    _, out = await _cli(service, "events", "list", "--json")
    (event,) = json.loads(out)
    assert (event["key"], event["payload"], event["delivered_to"]) == ("deploy:done", {"version": 2}, [waiter])
    play = await service.call("play_wait", play_sid=waiter, timeout_ms=20000)
    with trio.fail_after(20):
        while play["status"] != "success":
            play = await service.call("play_wait", play_sid=waiter, timeout_ms=20000)
    assert play["output_data"] == {"version": 2}
    code, out = await _cli(service, "events", "send", "", check=False)
    assert code == 1
    assert "key: must not be empty" in out
