"""Schedules, as rules of the service: a real kernel (memory store; LMDB where a restart is part
of the story) whose plays are fake scripts, and Trio's mock clock, so no tick waits for real.

The fake flow ends at once unless the test holds the gate: then every play runs until it is
released, which is how an earlier play "has not ended" for the overlap policies.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import attrs
import pytest
import trio

from hero_logic.kernel import InvalidParams, Put, encode_record
from hero_logic.service import Schedule, Service, open_service
from hero_logic.service._schedule_times import next_tick, tick_iso, ticks_between
from hero_logic.testing import FakeRun, open_fake_kernel

from .conftest import make_config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from hero_logic.kernel import Play

SOURCE = """
from hero_tracing import flow

@flow
def main(n: int = 0):
    return n
"""

MINUTE = 60_000
BASE_MS = 1_700_000_040_000  # a whole minute (UTC): ticks of every_s=60 fall on BASE_MS + k minutes


JUMP_AFTER_S = 0.1
"""The mock clock jumps only after this much real idleness: stores and the runner do some work
in threads, and the clock must not jump past a tick while one is under way."""


def clock_ms() -> int:
    """Wall-clock ms that follow Trio's (mock) clock."""
    return BASE_MS + int(trio.current_time() * 1000)


class Script:
    """Ends each play at once, or holds every play while ``hold`` is set."""

    def __init__(self) -> None:
        self.hold = False
        self.release = trio.Event()
        self.started: list[tuple[str, int]] = []

    async def __call__(self, run: FakeRun) -> int:
        self.started.append((run.play_sid, clock_ms()))
        if self.hold:
            await self.release.wait()
        return await run.finish(run.inputs.get("n", 0))

    def let_go(self) -> None:
        self.hold = False
        self.release.set()


@asynccontextmanager
async def running(root: Path, script: Script, **config: Any) -> AsyncIterator[Service]:
    clock = trio.lowlevel.current_clock()
    if isinstance(clock, trio.testing.MockClock):
        clock.autojump_threshold = JUMP_AFTER_S
    cfg = attrs.evolve(make_config(root), **{"store": "memory", **config})
    async with open_fake_kernel(cfg, script, clock_ms=clock_ms) as kernel, open_service(kernel, seed=False) as service:
        yield service


async def _workflow(service: Service) -> str:
    sid = await service.kernel.repo.workflow_sid_by_name("nightly")
    return sid or (await service.workflows.workflow_create("nightly", python_source=SOURCE)).sid


async def _plays(service: Service, schedule: Schedule) -> list[Play]:
    """The schedule's plays, oldest first."""
    plays = await service.plays.play_list(schedule.workflow_sid, name=f"schedule:{schedule.name}:", limit=1000)
    return sorted(plays, key=lambda p: p.name)


@attrs.frozen
class Ticks:
    """The ticks of an every_s=60 schedule, numbered from its first (1)."""

    first: int | None

    def at(self, k: int) -> int:
        assert self.first is not None
        return self.first + (k - 1) * MINUTE

    async def until(self, k: int) -> None:
        """Sleep until tick ``k`` plus a little (its look is done by then)."""
        await trio.sleep_until((self.at(k) - BASE_MS + 500) / 1000)


# --- when ticks fall (pure) --------------------------------------------------------------------


def test_cron_ticks_follow_the_zone_through_dst_changes() -> None:
    """02:30 New York does not exist on 2025-03-09 (fires right after the jump, 03:00 EDT);
    01:30 happens twice on 2025-11-02 and fires once; a wildcard hour keeps real time."""
    ny = ZoneInfo("America/New_York")

    def ms(*parts: int, fold: int = 0) -> int:
        return int(datetime(*parts, tzinfo=ny, fold=fold).timestamp() * 1000)  # type: ignore[misc]

    spring = next_tick(cron="30 2 * * *", every_s=0, timezone="America/New_York", after_ms=ms(2025, 3, 8, 12, 0))
    assert spring == ms(2025, 3, 9, 3, 0)
    assert tick_iso(spring) == "2025-03-09T07:00:00Z"
    ticks = ticks_between(cron="30 1 * * *", every_s=0, timezone="America/New_York",
                          start_ms=ms(2025, 11, 1, 12, 0), end_ms=ms(2025, 11, 4, 0, 0), limit=10)
    assert [tick_iso(t) for t in ticks] == ["2025-11-02T05:30:00Z", "2025-11-03T06:30:00Z"]
    half_hours = ticks_between(cron="*/30 * * * *", every_s=0, timezone="America/New_York",
                               start_ms=ms(2025, 11, 2, 0, 30), end_ms=ms(2025, 11, 2, 2, 1), limit=10)
    assert len(half_hours) == 6  # 00:30, 01:00, 01:30 EDT, 01:00, 01:30 EST, 02:00: real time
    assert next_tick(cron="0 9 * * *", every_s=0, timezone="Europe/Paris", after_ms=ms(2025, 7, 1, 0, 0)) == int(
        datetime(2025, 7, 1, 9, 0, tzinfo=ZoneInfo("Europe/Paris")).timestamp() * 1000
    )


def test_every_s_ticks_fall_on_multiples_of_the_interval_since_the_epoch() -> None:
    assert next_tick(cron="", every_s=60, timezone="UTC", after_ms=BASE_MS) == BASE_MS + MINUTE
    assert next_tick(cron="", every_s=60, timezone="UTC", after_ms=BASE_MS - 1) == BASE_MS
    assert tick_iso(1_500) == "1970-01-01T00:00:01.500Z"


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field", "fix"),
    [
        ({"cron": "61 * * * *"}, "cron", "not a cron expression"),
        ({"cron": "* * * * * *"}, "cron", "five fields"),
        ({"cron": "* * * * *", "every_s": 60}, "cron", "not both"),
        ({}, "cron", "got neither"),
        ({"every_s": -5}, "every_s", "whole number of seconds"),
        ({"every_s": 60, "timezone": "Mars/Olympus"}, "timezone", "IANA name"),
        ({"every_s": 60, "catchup_window_s": -1}, "catchup_window_s", "0 (fire no late tick)"),
        ({"every_s": 60, "overlap": "queue"}, "overlap", "buffer_one"),
        ({"every_s": 60, "input_data": {"n": "x"}}, "", "n"),
    ],
)
async def test_bad_input_is_refused_naming_the_field_and_the_fix(
    root: Path, autojump_clock: trio.abc.Clock, params: dict[str, Any], field: str, fix: str
) -> None:
    async with running(root, Script()) as service:
        wf = await _workflow(service)
        with pytest.raises(InvalidParams) as caught:
            await service.schedules.schedule_create(wf, **params)
        assert caught.value.code == -32602
        if field:
            assert caught.value.data[0]["field"] == field
        assert fix in str(caught.value.data or caught.value.message)
        assert await service.schedules.schedule_list() == []


# --- firing ------------------------------------------------------------------------------------


async def test_each_tick_starts_one_play_named_by_the_tick(root: Path, autojump_clock: trio.abc.Clock) -> None:
    script = Script()
    async with running(root, script) as service:
        wf = await _workflow(service)
        schedule = await service.schedules.schedule_create(wf, every_s=60, input_data={"n": 7}, name="hourly report")
        t = Ticks(schedule.next_fire_at)
        assert schedule.next_fire_at is not None
        assert schedule.next_fire_at % MINUTE == 0
        await t.until(3)
        plays = await _plays(service, schedule)
        assert [p.name for p in plays] == [f"schedule:hourly report:{tick_iso(t.at(k))}" for k in (1, 2, 3)]
        assert all(p.input_data == {"n": 7} for p in plays)
        assert [at for _, at in script.started] == [t.at(k) for k in (1, 2, 3)]  # on time
        got = await service.schedules.schedule_get(schedule.sid)
        assert (got.last_fire_at, got.last_play_sid, got.next_fire_at, got.missed_ticks) == (
            t.at(3), plays[-1].sid, t.at(4), 0
        )


async def test_schedules_share_one_deadline_not_a_task_each(root: Path, autojump_clock: trio.abc.Clock) -> None:
    async with running(root, Script()) as service:
        wf = await _workflow(service)
        before = len(trio.lowlevel.current_root_task().child_nurseries[0].child_tasks)
        for n in range(30):
            await service.schedules.schedule_create(wf, every_s=60 * (n + 1), name=f"s{n}")
        assert len(await service.kernel.repo.store.scan("sched_due")) == 30
        assert len(trio.lowlevel.current_root_task().child_nurseries[0].child_tasks) == before


async def test_one_slow_schedule_does_not_hold_up_the_others_due_with_it(
    root: Path, autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Schedules due at one instant are looked at together (their commits share the store's
    group commits): the look of one that is slow (its tick's play waits on something) does not
    delay the plays of the others. Looked at one by one, the slow one blocked them all."""
    async with running(root, Script()) as service:
        wf = await _workflow(service)
        slow = await service.schedules.schedule_create(wf, every_s=60, name="slow")
        quick = [await service.schedules.schedule_create(wf, every_s=60, name=f"quick{n}") for n in range(5)]
        others_started = trio.Event()
        real_look = type(service.schedules).look

        async def look(self: Any, sid: str, row: str) -> None:
            if sid == slow.sid:
                await others_started.wait()  # held until every other schedule has its play
            await real_look(self, sid, row)

        monkeypatch.setattr(type(service.schedules), "look", look)
        with trio.fail_after(120):
            while True:
                made = [await _plays(service, q) for q in quick]
                if all(made):
                    break
                await trio.sleep(1)
            others_started.set()
            while not await _plays(service, slow):
                await trio.sleep(1)
        assert [len(await _plays(service, q)) for q in quick] == [1] * len(quick)  # one play per tick


@pytest.mark.parametrize(
    ("overlap", "started_while_held", "missed", "buffered", "started_in_all"),
    [
        ("skip", 1, 2, 0, 1),
        ("buffer_one", 1, 1, 1, 2),
        ("buffer_all", 1, 0, 2, 3),
        ("cancel_other", 3, 0, 0, 3),
        ("allow_all", 3, 0, 0, 3),
    ],
)
async def test_overlap_decides_what_a_tick_does_while_an_earlier_play_runs(
    root: Path, autojump_clock: trio.abc.Clock, overlap: str, started_while_held: int, missed: int, buffered: int,
    started_in_all: int,
) -> None:
    script = Script()
    script.hold = True
    async with running(root, script) as service:
        wf = await _workflow(service)
        schedule = await service.schedules.schedule_create(wf, every_s=60, overlap=overlap, name=overlap)
        t = Ticks(schedule.next_fire_at)
        await t.until(3)
        assert len(script.started) == started_while_held
        held = await service.schedules.schedule_get(schedule.sid)
        assert (held.missed_ticks, len(held.buffered_ticks)) == (missed, buffered)
        plays = await _plays(service, schedule)
        statuses = [p.status.value for p in plays]
        if overlap == "cancel_other":
            assert statuses == ["cancelled", "cancelled", "running"]
        script.let_go()
        await trio.sleep(10)  # buffered ticks start as the play before them ends (polled each second)
        plays = await _plays(service, schedule)
        assert len(plays) == started_in_all
        ticks = [t.at(k) for k in (1, 2, 3)]
        assert [p.name for p in plays] == [f"schedule:{overlap}:{tick_iso(t)}" for t in ticks[:started_in_all]]
        if overlap.startswith("buffer"):
            assert all(p.status.value == "success" for p in plays)
            assert (await service.schedules.schedule_get(schedule.sid)).buffered_ticks == []


async def test_a_pause_drops_the_buffered_ticks_so_a_resume_never_starts_one_from_before_it(
    root: Path, autojump_clock: trio.abc.Clock
) -> None:
    """buffer_one keeps a tick while a play runs; paused then, that tick is counted missed, and
    after the resume only ticks after the resume start (it fired minutes late before)."""
    script = Script()
    script.hold = True
    async with running(root, script) as service:
        wf = await _workflow(service)
        schedule = await service.schedules.schedule_create(wf, every_s=60, overlap="buffer_one", name="b")
        t = Ticks(schedule.next_fire_at)
        await t.until(2)
        assert len((await service.schedules.schedule_get(schedule.sid)).buffered_ticks) == 1
        paused = await service.schedules.schedule_pause(schedule.sid)
        assert (paused.buffered_ticks, paused.missed_ticks) == ([], 1)
        script.let_go()
        await t.until(6)
        resumed = await service.schedules.schedule_resume(schedule.sid)
        await trio.sleep(90)  # the next tick after the resume, and a little
        plays = await _plays(service, schedule)
        assert [p.name for p in plays[:1]] == [f"schedule:b:{tick_iso(t.at(1))}"]
        assert resumed.next_fire_at is not None
        assert all(p.name >= f"schedule:b:{tick_iso(resumed.next_fire_at)}" for p in plays[1:]), [p.name for p in plays]
        assert len(plays) >= 2


async def test_after_downtime_ticks_within_the_window_fire_and_older_ones_count_missed(
    root: Path, autojump_clock: trio.abc.Clock
) -> None:
    script = Script()
    async with running(root, script, store="lmdb") as service:
        wf = await _workflow(service)
        schedule = await service.schedules.schedule_create(wf, every_s=60, overlap="allow_all", catchup_window_s=150, name="c")
        t = Ticks(schedule.next_fire_at)
        await t.until(1)
    await t.until(10)  # down for ticks 2..10
    async with running(root, script, store="lmdb") as service:
        await trio.sleep(1)
        got = await service.schedules.schedule_get(schedule.sid)
        names = [p.name for p in await _plays(service, schedule)]
        # now = minute 10 + ~0.5 s: ticks 8, 9, 10 are within 150 s (+ grace), 2..7 are missed
        assert names == [f"schedule:c:{tick_iso(t.at(k))}" for k in (1, 8, 9, 10)]
        assert got.missed_ticks == 6
        assert got.next_fire_at == t.at(11)


async def test_a_tick_starts_once_across_a_crash_between_its_play_and_the_schedule_record(
    root: Path, autojump_clock: trio.abc.Clock
) -> None:
    """The tick's play and its idempotency key land in one commit; if the schedule record did
    not (a crash), the restarted scheduler looks at the tick again and finds that play."""
    script = Script()
    async with running(root, script, store="lmdb") as service:
        wf = await _workflow(service)
        schedule = await service.schedules.schedule_create(wf, every_s=60, name="once")
        await service.schedules.schedule_pause(schedule.sid)
        before = await service.schedules.schedule_resume(schedule.sid)  # due at its next tick
        t = Ticks(before.next_fire_at)
        await t.until(1)
        assert len(await _plays(service, schedule)) == 1
        # Put back the record (and due row) as they were before the tick: the crash lost them.
        await service.kernel.repo.commit([
            Put("schedules", before.sid, encode_record(before)),
            Put("sched_due", f"{before.due_at:013d}/{before.sid}", b""),
        ])
    async with running(root, script, store="lmdb") as service:
        await trio.sleep(1)
        plays = await _plays(service, schedule)
        assert [p.name for p in plays] == [f"schedule:once:{tick_iso(t.at(1))}"]
        got = await service.schedules.schedule_get(schedule.sid)
        assert (got.last_play_sid, got.next_fire_at) == (plays[0].sid, t.at(2))
        await t.until(3)
        names = [p.name for p in await _plays(service, schedule)]
        assert names == [f"schedule:once:{tick_iso(t.at(k))}" for k in (1, 2, 3)]
        assert len(script.started) == 3


async def test_pause_resume_trigger_and_backfill(root: Path, autojump_clock: trio.abc.Clock) -> None:
    script = Script()
    async with running(root, script) as service:
        wf = await _workflow(service)
        schedule = await service.schedules.schedule_create(wf, every_s=60, name="p", paused=True)
        t = Ticks(schedule.next_fire_at)
        assert await service.kernel.repo.store.scan("sched_due") == []
        await t.until(2)
        assert script.started == []  # paused: nothing fires, nothing is counted missed
        resumed = await service.schedules.schedule_resume(schedule.sid)
        assert (resumed.paused, resumed.next_fire_at, resumed.missed_ticks) == (False, t.at(3), 0)
        play_sid = await service.schedules.schedule_trigger(schedule.sid)
        assert (await service.plays.play_status(play_sid)).name.startswith("schedule:p:")
        backfilled = await service.schedules.schedule_backfill(schedule.sid, t.at(-1), t.at(1))
        assert len(backfilled) == 2
        assert await service.schedules.schedule_backfill(schedule.sid, t.at(-1), t.at(1)) == backfilled
        with pytest.raises(InvalidParams, match="end_ms"):
            await service.schedules.schedule_backfill(schedule.sid, t.at(1), t.at(1))
        updated = await service.schedules.schedule_update(schedule.sid, cron="*/5 * * * *", every_s=0, timezone="Europe/Paris")
        assert updated.cron == "*/5 * * * *"
        assert updated.next_fire_at is not None
        assert updated.next_fire_at % (5 * MINUTE) == 0
        with pytest.raises(InvalidParams, match="not both"):
            await service.schedules.schedule_update(schedule.sid, every_s=30)
        assert await service.schedules.schedule_delete(schedule.sid)
        assert await service.kernel.repo.store.scan("sched_due") == []
        assert await service.schedules.schedule_list(wf) == []
