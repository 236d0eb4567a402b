"""Schedules through a real service: RPC over the socket, flow processes, and the CLI."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import trio

from .test_cli import _cli

if TYPE_CHECKING:
    from .conftest import Service

TICKER = """
from hero_tracing import flow

@flow(name="ticker")
def main(n: int = 0):
    return n * 2
"""


async def test_an_every_second_schedule_starts_one_finished_play_per_tick(service: Service) -> None:
    wf = await service.push(TICKER)
    schedule = await service.call("schedule_create", workflow_sid=wf["sid"], every_s=1, input_data={"n": 21}, name="tick")
    assert schedule["next_fire_at"] % 1000 == 0
    with trio.fail_after(30):
        while len(plays := await service.call("play_list", workflow_sid=wf["sid"], name="schedule:tick:")) < 3:
            await trio.sleep(0.2)
    await service.call("schedule_pause", sid=schedule["sid"])
    plays = await service.call("play_list", workflow_sid=wf["sid"], name="schedule:tick:")
    names = [p["name"] for p in plays]
    assert len(set(names)) == len(names)  # one play per tick
    assert all(n.startswith("schedule:tick:") and n.endswith("Z") for n in names)
    for play in plays:
        done = await service.call("play_wait", play_sid=play["sid"], timeout_ms=30000)
        assert (done["status"], done["output_data"]) == ("success", 42)
    got = await service.call("schedule_get", sid=schedule["sid"])
    assert got["paused"] is True
    assert got["last_play_sid"] in {p["sid"] for p in plays}


async def test_the_cli_creates_lists_triggers_and_deletes_schedules(service: Service) -> None:
    wf = await service.push(TICKER)
    _, out = await _cli(service, "schedules", "create", wf["sid"], "--cron", "0 9 * * 1-5", "--timezone",
                        "Europe/Paris", "--name", "weekday", "--input", '{"n": 1}', "--json")
    created = json.loads(out)
    assert (created["cron"], created["timezone"], created["paused"]) == ("0 9 * * 1-5", "Europe/Paris", False)
    _, out = await _cli(service, "schedules", "list")
    assert "weekday" in out
    assert "0 9 * * 1-5" in out
    _, out = await _cli(service, "schedules", "pause", created["sid"])
    assert "paused" in out
    _, out = await _cli(service, "schedules", "trigger", created["sid"])
    play = await service.call("play_status", play_sid=out.strip())
    assert play["name"].startswith("schedule:weekday:")
    _, out = await _cli(service, "schedules", "backfill", created["sid"], "2025-03-03T00:00Z", "2025-03-05T00:00Z")
    assert len(out.split()) == 2  # Monday and Tuesday 09:00 Paris
    code, out = await _cli(service, "schedules", "create", wf["sid"], "--cron", "0 9 * *", check=False)
    assert code == 1
    assert "cron: must have five fields" in out
    _, out = await _cli(service, "schedules", "delete", created["sid"])
    assert await service.call("schedule_list") == []
