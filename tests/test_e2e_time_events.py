"""Durable time, events and step policies end to end: a real service on its socket, real flow
processes. Sleeps are short (the service's exit threshold is lowered to 300 ms so a 1-2 s sleep
exits its process), and every check of "no process" looks at /proc for the play's flow."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import trio

from hero_logic.rpc import AsyncClient, RpcError
from hero_logic.server import serve

from .conftest import Service, make_config, start_service_process

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

EXIT_MS = 300


@pytest.fixture
async def service(root: Path, nursery: trio.Nursery) -> AsyncIterator[Service]:
    config = make_config(root, sleep_exit_ms=EXIT_MS)
    await nursery.start(serve, config)
    async with AsyncClient(config.rpc_socket) as client:
        yield Service(config, client)
    nursery.cancel_scope.cancel()


def flow_processes(play_sid: str) -> list[int]:
    """Live processes running a flow of ``play_sid`` (found by their HERO_FLOW_PLAY_SID)."""
    needle = f"HERO_FLOW_PLAY_SID={play_sid}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                stat = (entry / "stat").read_text()
                if stat.rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


async def until(service: Service, play_sid: str, *statuses: str) -> dict[str, Any]:
    """The play once its status is one of ``statuses`` (within 20 s)."""
    with trio.fail_after(20):
        while True:
            play: dict[str, Any] = await service.call("play_status", play_sid=play_sid)
            if play["status"] in statuses:
                return play
            await trio.sleep(0.02)


def effects(service: Service, play_sid: str) -> list[str]:
    path = service.config.play_workdir(play_sid) / "effects.txt"
    return path.read_text().splitlines() if path.exists() else []


SLEEPER = """
from hero_tracing import flow

def effect(text):
    with open("effects.txt", "a") as f:
        f.write(text + "\\n")

@flow
def before():
    effect("before")
    return 1

@flow(name="sleeper")
def main(seconds: float = 2):
    before()
    flow.sleep(seconds)
    effect("after")
    return "awake"
"""


async def test_a_two_second_sleep_holds_no_process_then_succeeds(service: Service) -> None:
    wf = await service.push(SLEEPER)
    started = time.monotonic()
    sid = await service.call("play_start", workflow_sid=wf["sid"], input_data={"seconds": 2})
    sleeping = await until(service, sid, "awaiting_resume")
    (timer,) = sleeping["pending_resumes"]
    assert (timer["kind"], timer["name"]) == ("timer", "sleep")
    assert timer["wake_at"] >= sleeping["created_at"] + 2000
    await trio.sleep(0.3)
    assert flow_processes(sid) == []  # sleeping costs no process
    (pending,) = await service.call("play_pending_resumes", play_sid=sid)
    assert pending["wake_at"] == timer["wake_at"]
    done = await until(service, sid, "success")
    assert time.monotonic() - started >= 2
    assert done["output_data"] == "awake"
    assert effects(service, sid) == ["before", "after"]
    assert done["received_resumes"][0]["via"] == "timer"


async def test_kill_9_during_a_sleep_then_a_restart_after_the_wake_time_completes_it(root: Path) -> None:
    env = {"HERO_LOGIC_SLEEP_EXIT_MS": str(EXIT_MS)}
    proc, config = await start_service_process(root, sandbox="env_scrub", env=env)
    try:
        async with AsyncClient(config.rpc_socket) as client:
            wf = await client.call("workflow_create", {"name": "sleeper", "python_source": SLEEPER})
            sid = await client.call("play_start", {"workflow_sid": wf["sid"], "input_data": {"seconds": 1}})
            with trio.fail_after(20):
                while (await client.call("play_status", {"play_sid": sid}))["status"] != "awaiting_resume":
                    await trio.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        await trio.sleep(1.5)  # the service is down past the wake time
        proc, config = await start_service_process(root, sandbox="env_scrub", env=env)
        async with AsyncClient(config.rpc_socket) as client:
            with trio.fail_after(20):
                while (play := await client.call("play_status", {"play_sid": sid}))["status"] != "success":
                    await trio.sleep(0.05)
        assert play["output_data"] == "awake"
        work = config.play_workdir(sid) / "effects.txt"
        assert work.read_text().splitlines() == ["before", "after"]  # the step before ran once
    finally:
        proc.send_signal(signal.SIGTERM)
        with trio.fail_after(20):
            await proc.wait()


WAITER = """
import time
from hero_tracing import flow

@flow(name="waiter")
def main(key: str, delay: float = 0):
    time.sleep(delay)  # the event may be sent meanwhile: the mailbox keeps it
    return flow.wait_event(key, timeout=30)
"""


async def test_an_event_sent_before_the_wait_is_received(service: Service) -> None:
    wf = await service.push(WAITER)
    sid = await service.call("play_start", workflow_sid=wf["sid"], input_data={"key": "order:1", "delay": 1.0})
    await until(service, sid, "running")
    sent = await service.call("event_send", key="order:1", payload={"paid": 12})
    assert sent["delivered_to"] == []
    done = await until(service, sid, "success")
    assert done["output_data"] == {"paid": 12}
    (listed,) = await service.call("event_list", key_prefix="order:")
    assert listed["delivered_to"] == [sid]


async def test_two_plays_waiting_on_one_key_both_receive_one_send(service: Service) -> None:
    wf = await service.push(WAITER)
    sids = [await service.call("play_start", workflow_sid=wf["sid"], input_data={"key": "release"}) for _ in range(2)]
    for sid in sids:
        waiting = await until(service, sid, "awaiting_resume")
        assert waiting["pending_resumes"][0]["event_key"] == "release"
        assert flow_processes(sid) == []
    sent = await service.call("event_send", key="release", payload="v2")
    assert sent["delivered_to"] == sorted(sids)
    for sid in sids:
        assert (await until(service, sid, "success"))["output_data"] == "v2"


async def test_a_duplicate_idempotency_key_is_delivered_once(service: Service) -> None:
    wf = await service.push("""
        from hero_tracing import flow

        @flow(name="twice")
        def main():
            return [flow.wait_event("tick"), flow.wait_event("tick")]
        """)
    sid = await service.call("play_start", workflow_sid=wf["sid"])
    await until(service, sid, "awaiting_resume")
    first = await service.call("event_send", key="tick", payload=1, idempotency_key="t-1")
    assert first["delivered_to"] == [sid]
    await until(service, sid, "awaiting_resume")
    again = await service.call("event_send", key="tick", payload=1, idempotency_key="t-1")
    assert (again["event_id"], again["duplicate"]) == (first["event_id"], True)
    await trio.sleep(0.3)
    assert (await service.call("play_status", play_sid=sid))["status"] == "awaiting_resume"
    await service.call("event_send", key="tick", payload=2)
    assert (await until(service, sid, "success"))["output_data"] == [1, 2]


ANY = """
from hero_tracing import flow

@flow(name="any")
def main(timeout: float = 30):
    branch, value = flow.wait_any(
        timeout=timeout,
        approval=flow.on_answer("approve", schema={"type": "boolean"}),
        paid=flow.on_event("payment:9"),
    )
    return {"branch": branch, "value": value}
"""


async def test_wait_any_the_timeout_wins(service: Service) -> None:
    wf = await service.push(ANY)
    sid = await service.call("play_start", workflow_sid=wf["sid"], input_data={"timeout": 1})
    waiting = await until(service, sid, "awaiting_resume")
    assert {r["branch"] for r in waiting["pending_resumes"]} == {"approval", "paid", "timeout"}
    assert len({r["group"] for r in waiting["pending_resumes"]}) == 1
    done = await until(service, sid, "success")
    assert done["output_data"] == {"branch": "timeout", "value": None}


async def test_wait_any_the_event_wins_and_a_late_answer_is_refused_naming_it(service: Service) -> None:
    wf = await service.push(ANY)
    sid = await service.call("play_start", workflow_sid=wf["sid"])
    await until(service, sid, "awaiting_resume")
    sent = await service.call("event_send", key="payment:9", payload={"amount": 3})
    assert sent["delivered_to"] == [sid]
    done = await until(service, sid, "success")
    assert done["output_data"] == {"branch": "paid", "value": {"amount": 3}}
    with pytest.raises(RpcError) as late:
        await service.call("play_resume", play_sid=sid, resume_id="approve", payload=True)
    assert late.value.code == -32002
    assert "branch 'paid' won" in late.value.message


RETRIES = """
from hero_tracing import flow

def effect(text):
    with open("effects.txt", "a") as f:
        f.write(text + "\\n")

@flow(retries=3, retry_delay=0.05)
def flaky():
    effect("try")
    with open("effects.txt") as f:
        if len(f.read().split()) < 3:
            raise ConnectionError("the service is down")
    return "up"

@flow(retries=5, retry_delay=0)
def declined():
    effect("charge")
    raise flow.NonRetryable("card declined")

@flow(name="retries")
def main(which: str):
    if which == "flaky":
        return flaky()
    try:
        declined()
    except flow.NonRetryable as exc:
        return f"gave up: {exc}"
"""


async def test_a_step_failing_twice_then_succeeding_under_three_retries(service: Service) -> None:
    wf = await service.push(RETRIES)
    play = await service.run(wf, which="flaky")
    assert play["status"] == "success", play["error_message"]
    spans = await service.call("play_spans", play_sid=play["sid"])
    step = next(s for s in spans if s["name"] == "flaky")
    attempts = [s for s in spans if s["parent_id"] == step["span_id"] and "attempt" in s["tags"]]
    assert [(s["tags"]["attempt"], s["status"]) for s in attempts] == [(1, "failed"), (2, "failed"), (3, "ok")]
    assert "ConnectionError: the service is down" in attempts[0]["error"]
    assert effects(service, play["sid"]) == ["try"] * 3


async def test_non_retryable_stops_at_the_first_attempt(service: Service) -> None:
    wf = await service.push(RETRIES)
    play = await service.run(wf, which="declined")
    assert play["output_data"] == "gave up: card declined"
    assert effects(service, play["sid"]) == ["charge"]


async def test_a_cpu_bound_step_past_its_timeout_is_stopped_and_retried(service: Service) -> None:
    wf = await service.push("""
        from hero_tracing import flow

        def effect(text):
            with open("effects.txt", "a") as f:
                f.write(text + "\\n")

        @flow(timeout=1, retries=1, retry_delay=0)
        def spin():
            effect("spin")
            while True:
                pass

        @flow(name="spinner")
        def main():
            try:
                spin()
            except flow.StepTimeout as exc:
                return f"stopped: {exc}"
        """)
    started = time.monotonic()
    play = await service.run(wf)
    assert play["status"] == "success", play["error_message"]
    assert 2 <= time.monotonic() - started < 10
    assert play["output_data"] == "stopped: attempt 2 ran past its timeout of 1 s and was stopped (@flow(timeout=...))"
    spans = await service.call("play_spans", play_sid=play["sid"])
    attempts = [s for s in spans if s["name"].startswith("attempt ")]
    assert [(s["tags"]["attempt"], s["status"]) for s in attempts] == [(1, "timed_out"), (2, "timed_out")]
    assert effects(service, play["sid"]) == ["spin", "spin"]


async def test_a_long_retry_delay_holds_no_process(service: Service) -> None:
    wf = await service.push("""
        from hero_tracing import flow

        @flow(retries=1, retry_delay=1.5, retry_jitter=False)
        def call():
            with open("tries.txt", "a") as f:
                f.write("x")
            with open("tries.txt") as f:
                if len(f.read()) < 2:
                    raise TimeoutError("busy")
            return "ok"

        @flow(name="backoff")
        def main():
            return call()
        """)
    sid = await service.call("play_start", workflow_sid=wf["sid"])
    waiting = await until(service, sid, "awaiting_resume")
    (delay,) = waiting["pending_resumes"]
    assert (delay["kind"], delay["name"]) == ("timer", "retry_delay")
    await trio.sleep(0.3)
    assert flow_processes(sid) == []
    assert (await until(service, sid, "success"))["output_data"] == "ok"


async def test_bad_event_input_is_a_clear_invalid_params(service: Service) -> None:
    for params, field in [({"key": ""}, "key"), ({"key": "a\nb"}, "key"), ({"key": "k" * 513}, "key")]:
        with pytest.raises(RpcError) as bad:
            await service.call("event_send", **params)
        assert bad.value.code == -32602
        assert bad.value.data[0]["field"] == field
    with pytest.raises(RpcError) as bad:
        await service.call("event_list", limit=0)
    assert bad.value.code == -32602
    with pytest.raises(RpcError) as bad:
        await service.push("""
            from hero_tracing import flow

            @flow(retries=-1)
            def main():
                return 1
            """)
    assert bad.value.code == -32602
    assert "retries" in bad.value.message

