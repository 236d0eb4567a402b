"""Durable time and events, as rules of the service: a real kernel on the memory store (LMDB
where a restart is part of the story) whose plays are fake scripts, and Trio's mock clock for
every timer, so nothing sleeps for real.

A script here plays a *plan*: a list of waits (``{"id", "kind": "timer"|"event", "key",
"after"}`` or a group ``{"id", "any": {branch: wait}, "timeout"}``), taken in order the way the
SDK takes them: a wait already resolved (in the replay file's ``woken`` / ``resumes``) gives
its value, the first unresolved one is reported as a ``pause`` and the run exits 75; at the
end the run returns the values it collected.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import trio

from hero_logic.kernel import InvalidParams, Play, PlayStatus, WrongState, now_ms
from hero_logic.service import Service, open_service
from hero_logic.testing import FakeRun, open_fake_kernel

from .conftest import make_config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

SOURCE = """
from hero_tracing import flow

@flow
def main(plan: list = [], gate: str = ""):
    return plan
"""

BASE_MS = now_ms()


def clock_ms() -> int:
    """Wall-clock ms that follow Trio's (mock) clock."""
    return BASE_MS + int(trio.current_time() * 1000)


class Script:
    """Plays each play's plan; remembers when each run saw what."""

    def __init__(self) -> None:
        self.runs: dict[str, list[dict[str, Any]]] = {}
        self.gate: dict[str, trio.Event] = {}

    async def __call__(self, run: FakeRun) -> int:
        replay = run.replay or {}
        woken, resumes, waits = replay.get("woken", {}), replay.get("resumes", {}), replay.get("waits", {})
        self.runs.setdefault(run.play_sid, []).append({"at": clock_ms(), "woken": dict(woken)})
        gate = self.gate.get(run.inputs.get("gate", ""))
        if gate is not None:
            await gate.wait()
        values: list[Any] = []
        for step in run.inputs.get("plan", []):
            branches = step.get("any", {"": step})
            done = False
            for branch in branches:
                rid = _rid(step, branch)
                if rid in woken:
                    values.append([branch, woken[rid]] if branch else woken[rid])
                    done = True
                elif rid in resumes:
                    values.append([branch, resumes[rid]])
                    done = True
            timer = f"{step['id']}:timeout"
            if not done and "any" in step and timer in woken:
                values.append(["timeout", None])
                done = True
            if done:
                continue
            for branch, wait in branches.items():
                await run.emit(_pause(step, branch, wait, waits))
            if "timeout" in step:
                wake_at = waits.get(timer, {}).get("wake_at") or clock_ms() + int(step["timeout"] * 1000)
                await run.emit({"type": "pause", "kind": "timer", "resume_id": timer, "name": "timeout", "group": step["id"],
                                "branch": "timeout", "wake_at": wake_at, "span_id": "s", "asked_at": clock_ms()})
            return 75
        return await run.finish(values)


def _rid(step: dict[str, Any], branch: str) -> str:
    return f"{step['id']}:{branch}" if branch else step["id"]


def _pause(step: dict[str, Any], branch: str, wait: dict[str, Any], waits: dict[str, Any]) -> dict[str, Any]:
    rid = _rid(step, branch)
    pause: dict[str, Any] = {"type": "pause", "resume_id": rid, "name": wait.get("name", rid), "span_id": "s", "asked_at": clock_ms()}
    if wait["kind"] == "timer":
        pause.update(kind="timer", wake_at=waits.get(rid, {}).get("wake_at") or clock_ms() + int(wait["after"] * 1000))
    elif wait["kind"] == "event":
        pause.update(kind="event", event_key=wait["key"])
        if "after" in wait:
            pause["wake_at"] = waits.get(rid, {}).get("wake_at") or clock_ms() + int(wait["after"] * 1000)
    if branch:
        pause.update(group=step["id"], branch=branch)
    return pause


@asynccontextmanager
async def running(root: Path, script: Script, **config: Any) -> AsyncIterator[Service]:
    cfg = attrs.evolve(make_config(root), **{"store": "memory", **config})
    async with open_fake_kernel(cfg, script, clock_ms=clock_ms) as kernel, open_service(kernel, seed=False) as service:
        yield service


async def _start(service: Service, *plan: dict[str, Any], gate: str = "") -> str:
    wf = await service.kernel.repo.workflow_sid_by_name("waits")
    if wf is None:
        wf = (await service.workflows.workflow_create("waits", python_source=SOURCE)).sid
    return await service.plays.play_start(wf, {"plan": list(plan), **({"gate": gate} if gate else {})})


async def _ended(service: Service, play_sid: str) -> Play:
    """The play once it has ended (a sleeping play's play_wait returns while it sleeps)."""
    while not (play := await service.plays.play_status(play_sid)).status.is_terminal:
        await trio.sleep(0.01)
    return play


def _count_tasks() -> int:
    def walk(task: trio.lowlevel.Task) -> int:
        return 1 + sum(walk(child) for nursery in task.child_nurseries for child in nursery.child_tasks)

    return walk(trio.lowlevel.current_root_task())


# --- durable sleep ---------------------------------------------------------------------------


async def test_sleeping_plays_hold_no_task_each_and_wake_at_their_time(root: Path, autojump_clock: trio.abc.Clock) -> None:
    script = Script()
    async with running(root, script) as service:
        tasks_before = _count_tasks()
        sids = [await _start(service, {"id": "nap", "kind": "timer", "after": 10 + n}) for n in range(40)]
        for sid in sids:
            assert (await service.plays.play_wait(sid)).status is PlayStatus.AWAITING_RESUME
        assert _count_tasks() == tasks_before  # one deadline for all of them, not a task per play
        timers = await service.kernel.repo.store.scan("timers")
        assert len(timers) == 40
        stats = service.kernel.timers.statistics()  # type: ignore[union-attr]
        first = (await service.plays.play_status(sids[0])).pending_resumes[0]
        assert (first.kind.value, stats.armed_at) == ("timer", first.wake_at)
        for sid in sids:
            play = await _ended(service, sid)
            assert play.status is PlayStatus.SUCCESS
            wake_at = play.received_resumes[0].wake_at
            assert wake_at is not None
            woke = play.received_resumes[0].resumed_at  # set by the wheel, on the mock clock
            assert woke is not None
            assert wake_at <= woke <= wake_at + 50
            assert script.runs[sid][-1]["at"] >= wake_at
            assert play.received_resumes[0].via == "timer"
        assert await service.kernel.repo.store.scan("timers") == []


async def test_a_timer_due_while_the_service_was_down_fires_at_start_up(root: Path, autojump_clock: trio.abc.Clock) -> None:
    script = Script()
    async with running(root, script, store="lmdb") as service:
        sid = await _start(service, {"id": "nap", "kind": "timer", "after": 30})
        assert (await service.plays.play_wait(sid)).status is PlayStatus.AWAITING_RESUME
    await trio.sleep(60)  # the service is down past the wake time
    async with running(root, script, store="lmdb") as service:
        play = await _ended(service, sid)
        assert play.status is PlayStatus.SUCCESS
        assert play.received_resumes[0].via == "timer"
        assert len(script.runs[sid]) == 2


async def test_play_resume_wakes_a_timer_early_with_a_null_payload(root: Path, autojump_clock: trio.abc.Clock) -> None:
    script = Script()
    async with running(root, script) as service:
        sid = await _start(service, {"id": "nap", "kind": "timer", "after": 3600})
        await service.plays.play_wait(sid)
        with pytest.raises(InvalidParams) as bad:
            await service.resumes.play_resume(sid, "nap", {"now": True})
        assert bad.value.data[0]["field"] == "payload"
        assert "null payload" in bad.value.message
        await service.resumes.play_resume(sid, "nap", None)
        play = await _ended(service, sid)
        assert play.status is PlayStatus.SUCCESS
        assert play.received_resumes[0].via == "rpc"
        assert script.runs[sid][-1]["at"] - BASE_MS < 10_000  # long before the hour
        assert await service.kernel.repo.store.scan("timers") == []


async def test_cancelling_a_sleeping_play_removes_its_timer(root: Path, autojump_clock: trio.abc.Clock) -> None:
    script = Script()
    async with running(root, script) as service:
        sid = await _start(service, {"id": "nap", "kind": "timer", "after": 5})
        await service.plays.play_wait(sid)
        assert len(await service.kernel.repo.store.scan("timers")) == 1
        await service.plays.play_cancel(sid)
        assert await service.kernel.repo.store.scan("timers") == []
        await trio.sleep(10)
        assert (await service.plays.play_status(sid)).status is PlayStatus.CANCELLED
        assert len(script.runs[sid]) == 1


# --- events and the mailbox ------------------------------------------------------------------


async def test_an_event_sent_before_the_wait_is_received_from_the_mailbox(root: Path, autojump_clock: trio.abc.Clock) -> None:
    script = Script()
    script.gate["g"] = trio.Event()
    async with running(root, script) as service:
        sid = await _start(service, {"id": "paid", "kind": "event", "key": "payment:42"}, gate="g")
        await trio.sleep(1)
        sent = await service.events.event_send("payment:42", {"amount": 5})
        assert sent["delivered_to"] == []  # nobody waits yet
        script.gate["g"].set()
        play = await _ended(service, sid)
        assert play.output_data == [{"payload": {"amount": 5}, "via": "event", "at": play.received_resumes[0].resumed_at, "event_id": sent["event_id"]}]
        (listed,) = await service.events.event_list()
        assert listed.delivered_to == [sid]


async def test_an_event_sent_before_the_play_was_created_is_not_received(root: Path, autojump_clock: trio.abc.Clock) -> None:
    script = Script()
    async with running(root, script) as service:
        await service.events.event_send("k", 1)
        sent = now_ms()
        while now_ms() <= sent:  # created_at and sent_at are real clock times: let it tick
            pass
        sid = await _start(service, {"id": "w", "kind": "event", "key": "k"})
        assert (await service.plays.play_wait(sid)).status is PlayStatus.AWAITING_RESUME
        await trio.sleep(5)
        assert (await service.plays.play_status(sid)).status is PlayStatus.AWAITING_RESUME


async def test_every_play_waiting_on_a_key_receives_one_send(root: Path, autojump_clock: trio.abc.Clock) -> None:
    script = Script()
    async with running(root, script) as service:
        sids = [await _start(service, {"id": "w", "kind": "event", "key": "deploy:done"}) for _ in range(5)]
        other = await _start(service, {"id": "w", "kind": "event", "key": "deploy:done:not"})
        for sid in [*sids, other]:
            await service.plays.play_wait(sid)
        sent = await service.events.event_send("deploy:done", "v2")
        assert sent["delivered_to"] == sorted(sids)
        for sid in sids:
            assert (await _ended(service, sid)).output_data[0]["payload"] == "v2"
        assert (await service.plays.play_status(other)).status is PlayStatus.AWAITING_RESUME


async def test_a_duplicate_idempotency_key_is_delivered_once(root: Path, autojump_clock: trio.abc.Clock) -> None:
    script = Script()
    async with running(root, script) as service:
        sid = await _start(service, {"id": "a", "kind": "event", "key": "k"}, {"id": "b", "kind": "event", "key": "k"})
        await service.plays.play_wait(sid)
        first = await service.events.event_send("k", 1, idempotency_key="order-1")
        assert first["delivered_to"] == [sid]
        await trio.sleep(1)
        play = await service.plays.play_wait(sid)
        assert [r.id for r in play.pending_resumes] == ["b"]
        again = await service.events.event_send("k", 1, idempotency_key="order-1")
        assert (again["event_id"], again["duplicate"]) == (first["event_id"], True)
        await trio.sleep(5)
        assert [r.id for r in (await service.plays.play_status(sid)).pending_resumes] == ["b"]  # not delivered twice
        await service.events.event_send("k", 2)
        play = await _ended(service, sid)
        assert [v["payload"] for v in play.output_data] == [1, 2]
        assert len(await service.events.event_list(key_prefix="k")) == 2


async def test_an_event_wait_times_out_unless_the_mailbox_has_one(root: Path, autojump_clock: trio.abc.Clock) -> None:
    script = Script()
    async with running(root, script) as service:
        sid = await _start(service, {"id": "w", "kind": "event", "key": "never", "after": 30})
        await service.plays.play_wait(sid)
        play = await _ended(service, sid)
        assert play.output_data[0]["via"] == "timeout"
        (timed_out,) = play.received_resumes
        assert timed_out.wake_at is not None
        assert timed_out.resumed_at is not None
        assert timed_out.wake_at <= timed_out.resumed_at <= timed_out.wake_at + 50

        script.gate["g"] = trio.Event()
        sid = await _start(service, {"id": "w", "kind": "event", "key": "early", "after": 0}, gate="g")
        await service.events.event_send("early", "here")
        script.gate["g"].set()
        play = await _ended(service, sid)
        assert play.output_data[0]["payload"] == "here"  # the mailbox beats a timeout of 0


async def test_old_events_expire_from_the_mailbox(root: Path, autojump_clock: trio.abc.Clock) -> None:
    script = Script()
    script.gate["g"] = trio.Event()
    async with running(root, script, event_retention_ms=60_000) as service:
        sid = await _start(service, {"id": "w", "kind": "event", "key": "k"}, gate="g")
        await service.events.event_send("k", "stale", idempotency_key="once")
        await trio.sleep(120)
        # Events are stamped with the real wall clock (not the mock one): expire as of two
        # minutes after now, past the one-minute retention.
        assert await service.events.expire(now_ms() + 120_000) == 1
        assert await service.events.event_list() == []
        script.gate["g"].set()
        await service.plays.play_wait(sid)
        await trio.sleep(1)
        assert (await service.plays.play_status(sid)).status is PlayStatus.AWAITING_RESUME
        again = await service.events.event_send("k", "fresh", idempotency_key="once")
        assert "duplicate" not in again
        assert again["delivered_to"] == [sid]


# --- wait_any --------------------------------------------------------------------------------

ANY = {"id": "g", "any": {"approval": {"kind": "input", "name": "approve?"}, "paid": {"kind": "event", "key": "pay:1"}}, "timeout": 60}


async def test_wait_any_the_event_wins_and_a_late_answer_names_the_winner(root: Path, autojump_clock: trio.abc.Clock) -> None:
    script = Script()
    async with running(root, script) as service:
        sid = await _start(service, ANY)
        await service.plays.play_wait(sid)
        pending = await service.resumes.play_pending_resumes(sid)
        assert {(r.branch, r.kind.value, r.group) for r in pending} == {("approval", "input", "g"), ("paid", "event", "g"), ("timeout", "timer", "g")}
        assert next(r for r in pending if r.branch == "paid").event_key == "pay:1"
        assert next(r for r in pending if r.branch == "timeout").wake_at is not None
        with pytest.raises(InvalidParams, match="event_send"):
            await service.resumes.play_resume(sid, "g:paid", 1)
        await service.events.event_send("pay:1", {"ok": True})
        play = await _ended(service, sid)
        assert play.output_data == [["paid", {"payload": {"ok": True}, "via": "event", "at": play.received_resumes[0].resumed_at, "event_id": play.received_resumes[0].event_id}]]
        assert {w.branch for w in play.withdrawn_resumes} == {"approval", "timeout"}
        assert await service.kernel.repo.store.scan("timers") == []
        with pytest.raises(WrongState, match="branch 'paid' won"):
            await service.resumes.play_resume(sid, "approve?", True)


async def test_wait_any_the_timeout_wins(root: Path, autojump_clock: trio.abc.Clock) -> None:
    script = Script()
    async with running(root, script) as service:
        sid = await _start(service, ANY)
        await service.plays.play_wait(sid)
        play = await _ended(service, sid)
        assert play.output_data == [["timeout", None]]
        assert await service.kernel.repo.store.scan("event_waits") == []
        sent = await service.events.event_send("pay:1", 1)
        assert sent["delivered_to"] == []


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field", "needle"),
    [
        ({"key": ""}, "key", "must not be empty"),
        ({"key": "x" * 513}, "key", "over 512 bytes"),
        ({"key": "a\tb"}, "key", "control characters"),
        ({"key": "k", "payload": "x" * 2000}, "payload", "over the body cap of 1024 bytes"),
        ({"key": "k", "idempotency_key": "x" * 600}, "idempotency_key", "at most 512 bytes"),
    ],
)
async def test_event_send_refuses_bad_input_naming_the_field(root: Path, params: dict[str, Any], field: str, needle: str) -> None:
    async with running(root, Script(), max_body_bytes=1024) as service:
        with pytest.raises(InvalidParams) as bad:
            await service.events.event_send(**params)
        assert bad.value.data[0]["field"] == field
        assert needle in bad.value.message


async def test_the_live_stream_says_when_a_play_sleeps_and_what_woke_it(root: Path) -> None:
    """(On the real clock: the stream hands work to threads, which a mock clock jumps across.)"""
    from hero_logic.kernel import watch_play

    script = Script()
    async with running(root, script) as service:
        sid = await _start(service, {"id": "nap", "kind": "timer", "after": 0.3})
        await service.plays.play_wait(sid)
        seen: list[dict[str, Any]] = []

        async def emit(message: dict[str, Any]) -> None:
            seen.append(message)

        with trio.fail_after(10):
            await watch_play(service.kernel, sid, emit)
        statuses = [m for m in seen if m["type"] == "status"]
        assert [m["status"] for m in statuses] == ["running", "success"]
        assert statuses[0]["woken"] == [{"resume_id": "nap", "kind": "timer", "via": "timer"}]
        # and the message of going to sleep listed the timer and its wake time
        sid = await _start(service, {"id": "nap", "kind": "timer", "after": 60})
        async with service.kernel.bus.subscribe(sid) as messages:
            async for message in messages:
                if message.get("type") == "status" and message["status"] == "awaiting_resume":
                    (waiting,) = message["waiting"]
                    assert (waiting["kind"], waiting["resume_id"]) == ("timer", "nap")
                    assert waiting["wake_at"] > clock_ms()
                    break


@pytest.mark.parametrize(
    ("pause", "needle"),
    [
        ({"kind": "timer"}, "a timer (w) without a wake_at time"),
        ({"kind": "timer", "wake_at": 10**14}, "past the year 2286"),
        ({"kind": "event", "event_key": "a\x1fb"}, "contains control characters"),
        ({"kind": "sometimes"}, "unknown kind 'sometimes'"),
    ],
)
async def test_a_wait_the_service_cannot_take_fails_the_play_naming_it(root: Path, pause: dict[str, Any], needle: str) -> None:
    async def script(run: FakeRun) -> int:
        await run.emit({"type": "pause", "resume_id": "w", "name": "w", "span_id": "s", "asked_at": 1, **pause})
        return 75

    cfg = attrs.evolve(make_config(root), store="memory")
    async with open_fake_kernel(cfg, script) as kernel, open_service(kernel, seed=False) as service:
        wf = await service.workflows.workflow_create("bad", python_source=SOURCE)
        sid = await service.plays.play_start(wf.sid)
        play = await service.plays.play_wait(sid)
        assert play.status is PlayStatus.FAILED
        assert needle in play.error_message
        assert await kernel.repo.store.scan("timers") == []


def test_the_kinds_of_waits_follow_the_sdks_wire_facts() -> None:
    from hero_logic.kernel import ResumeKind
    from hero_logic.sdk import WAIT_KINDS

    assert {kind.value for kind in ResumeKind} == WAIT_KINDS


async def test_more_timers_due_at_once_than_the_wheel_fires_at_a_time_all_fire(
    root: Path, autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hero_logic.kernel import _timers

    monkeypatch.setattr(_timers, "FIRE_BATCH", 4)
    script = Script()
    async with running(root, script) as service:
        sids = [await _start(service, {"id": "nap", "kind": "timer", "after": 5}) for _ in range(30)]
        for sid in sids:
            await service.plays.play_wait(sid)
        await trio.sleep(6)
        for sid in sids:
            assert (await _ended(service, sid)).status is PlayStatus.SUCCESS
        assert service.kernel.timers.statistics().fired == len(sids)  # type: ignore[union-attr]


async def test_play_resume_by_name_wakes_the_open_sleep_not_an_earlier_one_of_that_name(root: Path, autojump_clock: trio.abc.Clock) -> None:
    script = Script()
    async with running(root, script) as service:
        sid = await _start(
            service,
            {"id": "a", "kind": "timer", "after": 1, "name": "sleep"},
            {"id": "b", "kind": "timer", "after": 3600, "name": "sleep"},
        )
        while [r.id for r in (await service.plays.play_status(sid)).pending_resumes] != ["b"]:
            await trio.sleep(0.1)  # until the first sleep woke and the second waits
        receipt = await service.resumes.play_resume(sid, "sleep", None)
        assert receipt["resume_id"] == "b"
        assert (await _ended(service, sid)).status is PlayStatus.SUCCESS
