"""Durable waits and step policies in a real flow process, against the fake span server: what
``flow.sleep`` / ``wait_event`` / ``wait_any`` and ``@flow(retries=..., timeout=...)`` send, and
how a later run replays them (the service's side is in test_time_events_units.py)."""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING

import pytest

from . import test_sdk_play as sdk_play
from .test_sdk_play import Run, body_runs, counter_source

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


@pytest.fixture
def play(tmp_path: Path) -> Iterator[Callable[..., Run]]:
    """Runs a flow process against a fake span server (test_sdk_play's runner)."""
    yield from sdk_play.play.__wrapped__(tmp_path)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def wait_id(step_key: str, name: str) -> str:
    """The protocol's id of one wait of a wait step."""
    return hashlib.sha1(f"{step_key}|wait:{name}".encode()).hexdigest()


def attempt_key(step_key: str, attempt: int) -> str:
    """The protocol's key of one attempt of a step that retries."""
    return hashlib.sha1(f"{step_key}|attempt:{attempt}".encode()).hexdigest()


SLEEPER = """
    from hero_tracing import flow

    @flow
    def before():
        bump("before")
        return 1

    @flow
    def main():
        before()
        flow.sleep(60)
        bump("after")
        return "done"
    """


def test_a_long_sleep_sends_a_timer_wait_and_exits_75(play: Callable[..., Run], tmp_path: Path) -> None:
    started = _now_ms()
    run = play(counter_source(tmp_path, SLEEPER))
    assert run.returncode == 75, run.stderr
    (pause,) = run.of_type("pause")
    sleep = run.span("sleep")
    assert pause["kind"] == "timer"
    assert pause["name"] == "sleep"
    assert started + 60_000 <= pause["wake_at"] <= _now_ms() + 60_000
    assert pause["resume_id"] == wait_id(sleep["step_key"], "timer")
    assert pause["span_id"] == sleep["span_id"]
    assert sleep["status"] == "running"  # open while it waits
    assert sleep["tags"]["wake_at"] == pause["wake_at"]
    assert body_runs(tmp_path) == ["before"]


def test_a_woken_timer_returns_at_once_and_a_finished_sleep_replays(play: Callable[..., Run], tmp_path: Path) -> None:
    source = counter_source(tmp_path, SLEEPER)
    first = play(source)
    (pause,) = first.of_type("pause")
    woken = {pause["resume_id"]: {"via": "timer", "at": pause["wake_at"], "payload": None}}
    second = play(source, replay={"steps": first.step_outputs, "woken": woken})
    assert second.returncode == 0, second.stderr
    assert second.output == "done"
    assert second.span("sleep")["status"] == "ok"
    steps = {**first.step_outputs, **second.step_outputs}
    del steps[second.span("main")["step_key"]]  # the entry runs again; its sleep replays
    third = play(source, replay={"steps": steps})
    assert third.returncode == 0, third.stderr
    assert third.span("sleep")["status"] == "replayed"
    assert body_runs(tmp_path) == ["before", "after", "after"]


def test_a_rerun_before_the_timer_keeps_its_first_wake_time(play: Callable[..., Run], tmp_path: Path) -> None:
    source = counter_source(tmp_path, SLEEPER)
    first = play(source)
    (pause,) = first.of_type("pause")
    fixed = pause["wake_at"] - 30_000
    second = play(source, replay={"steps": first.step_outputs, "waits": {pause["resume_id"]: {"wake_at": fixed}}})
    assert second.returncode == 75
    (again,) = second.of_type("pause")
    assert (again["resume_id"], again["wake_at"]) == (pause["resume_id"], fixed)


def test_a_short_sleep_stays_in_the_process_and_is_recorded(play: Callable[..., Run]) -> None:
    source = """
        import datetime
        from hero_tracing import flow

        @flow
        def main():
            flow.sleep(datetime.timedelta(milliseconds=50))
            return "ok"
        """
    started = time.monotonic()
    run = play(source)
    assert run.returncode == 0, run.stderr
    assert time.monotonic() - started >= 0.05
    assert run.of_type("pause") == []
    sleep = run.span("sleep")
    assert sleep["status"] == "ok"
    assert run.step_outputs[sleep["step_key"]]["via"] == "process"


def test_an_async_flow_awaits_its_sleep(play: Callable[..., Run]) -> None:
    source = """
        import asyncio
        from hero_tracing import flow

        @flow
        async def main():
            await asyncio.gather(flow.sleep(0.05), flow.sleep(0.05))
            return "ok"
        """
    run = play(source)
    assert run.returncode == 0, run.stderr
    assert [s["status"] for s in run.named("sleep")] == ["ok", "ok"]


def test_sleep_until_needs_an_aware_datetime(play: Callable[..., Run]) -> None:
    source = """
        import datetime
        from hero_tracing import flow

        @flow
        def main():
            flow.sleep_until(datetime.datetime(2030, 1, 1))
        """
    run = play(source)
    assert run.returncode == 1
    assert "naive datetime" in run.stderr
    assert "add a tzinfo" in run.stderr


def test_wait_event_waits_receives_its_payload_and_times_out_with_wait_timeout(play: Callable[..., Run]) -> None:
    source = """
        from hero_tracing import flow

        @flow
        def main():
            try:
                paid = flow.wait_event("payment:42", timeout=30)
            except flow.WaitTimeout as exc:
                return f"timed out: {exc}"
            return paid
        """
    first = play(source)
    assert first.returncode == 75, first.stderr
    (pause,) = first.of_type("pause")
    assert (pause["kind"], pause["event_key"], pause["name"]) == ("event", "payment:42", "event:payment:42")
    assert pause["wake_at"] >= _now_ms() + 25_000
    rid = pause["resume_id"]
    paid = play(source, replay={"woken": {rid: {"via": "event", "payload": {"amount": 5}, "event_id": "e1"}}})
    assert paid.output == {"amount": 5}
    late = play(source, replay={"woken": {rid: {"via": "timeout"}}})
    assert late.output == "timed out: no event 'payment:42' came within the timeout of 30 s"
    (failed,) = late.of_type("step_failed")
    assert failed["error_type"] == "hero_tracing._waits.WaitTimeout"
    again = play(source, replay={"failures": {failed["step_key"]: {k: failed[k] for k in ("error_type", "message", "args")}}})
    assert again.output == late.output  # replayed: the same WaitTimeout


def test_wait_any_asks_every_branch_in_one_group_and_returns_the_winner(play: Callable[..., Run]) -> None:
    source = """
        from hero_tracing import flow

        @flow
        def main():
            return list(flow.wait_any(
                timeout=3600,
                approval=flow.on_answer("approve?", schema={"type": "boolean"}),
                paid=flow.on_event("payment:7"),
            ))
        """
    first = play(source)
    assert first.returncode == 75
    pauses = {p["branch"]: p for p in first.of_type("pause")}
    assert set(pauses) == {"approval", "paid", "timeout"}
    assert len({p["group"] for p in pauses.values()}) == 1
    assert pauses["approval"]["kind"] == "input"
    assert pauses["approval"]["schema"] == {"type": "boolean"}
    assert (pauses["paid"]["kind"], pauses["paid"]["event_key"]) == ("event", "payment:7")
    assert pauses["timeout"]["kind"] == "timer"
    by_event = play(source, replay={"woken": {pauses["paid"]["resume_id"]: {"via": "event", "payload": 9}}})
    assert by_event.output == ["paid", 9]
    by_answer = play(source, replay={"resumes": {pauses["approval"]["resume_id"]: True}})
    assert by_answer.output == ["approval", True]
    by_time = play(source, replay={"woken": {pauses["timeout"]["resume_id"]: {"via": "timer"}}})
    assert by_time.output == ["timeout", None]


FLAKY = """
    from hero_tracing import flow

    @flow(retries=3, retry_delay=0.01)
    def flaky():
        bump("try")
        if len(COUNTS.read_text().split()) < 3:
            raise ConnectionError("down")
        return "up"

    @flow
    def main():
        return flaky()
    """


def test_a_step_failing_twice_then_succeeding_makes_three_attempt_spans(play: Callable[..., Run], tmp_path: Path) -> None:
    run = play(counter_source(tmp_path, FLAKY))
    assert run.returncode == 0, run.stderr
    assert run.output == "up"
    attempts = [s for s in run.spans() if s["name"].startswith("attempt ")]
    assert [(s["tags"]["attempt"], s["status"]) for s in attempts] == [(1, "failed"), (2, "failed"), (3, "ok")]
    step = run.span("flaky")
    assert all(s["parent_id"] == step["span_id"] for s in attempts)
    failed = run.of_type("step_failed")
    assert [f["step_key"] for f in failed] == [attempt_key(step["step_key"], n) for n in (1, 2)]
    assert len(run.named("retry_delay")) == 2
    assert body_runs(tmp_path) == ["try"] * 3


def test_a_replayed_attempt_failure_is_not_run_again(play: Callable[..., Run], tmp_path: Path) -> None:
    source = counter_source(tmp_path, FLAKY)
    first = play(source)
    failures = {f["step_key"]: f for f in first.of_type("step_failed")}
    delays = {s["step_key"]: first.step_outputs[s["step_key"]] for s in first.named("retry_delay")}
    (tmp_path / "counts.txt").write_text("try\ntry\n")
    second = play(source, replay={"failures": failures, "steps": delays})
    assert second.output == "up"
    # replayed attempts are not reported again: their spans keep what their run recorded
    assert [(s["tags"]["attempt"], s["status"]) for s in second.spans() if s["name"].startswith("attempt ")] == [(3, "ok")]
    assert body_runs(tmp_path) == ["try"] * 3


def test_non_retryable_stops_at_the_first_attempt(play: Callable[..., Run], tmp_path: Path) -> None:
    source = counter_source(tmp_path, """
        from hero_tracing import flow

        @flow(retries=5, retry_delay=0)
        def charge():
            bump("charge")
            raise flow.NonRetryable("card declined")

        @flow
        def main():
            charge()
        """)
    run = play(source)
    assert run.returncode == 1
    assert "card declined" in run.stderr
    assert body_runs(tmp_path) == ["charge"]
    assert [s["tags"]["attempt"] for s in run.spans() if s["name"].startswith("attempt ")] == [1]


def test_retry_after_a_long_delay_is_a_durable_timer(play: Callable[..., Run], tmp_path: Path) -> None:
    source = counter_source(tmp_path, """
        from hero_tracing import flow

        @flow(retries=1, retry_on=(flow.RetryAfter,))
        def call():
            bump("call")
            raise flow.RetryAfter(90, "rate limited")

        @flow
        def main():
            return call()
        """)
    run = play(source)
    assert run.returncode == 75, run.stderr
    (pause,) = run.of_type("pause")
    assert (pause["kind"], pause["name"]) == ("timer", "retry_delay")
    assert 85_000 <= pause["wake_at"] - _now_ms() <= 90_000
    (failure,) = run.of_type("step_failed")
    assert failure["error_type"] == "hero_tracing._retry.RetryAfter"
    assert failure["args"] == [90, "rate limited"]


def test_an_attempt_of_a_step_with_a_timeout_carries_its_deadline(play: Callable[..., Run]) -> None:
    source = """
        from hero_tracing import flow

        @flow(timeout=5)
        def quick():
            return 1

        @flow
        def main():
            return quick()
        """
    started = _now_ms()
    run = play(source)
    assert run.returncode == 0, run.stderr
    (attempt,) = [s for s in run.spans() if s["name"] == "attempt 1"]
    assert started + 5000 <= attempt["deadline_ms"] <= _now_ms() + 5000


def test_bad_policies_and_durations_are_refused_in_the_flow(play: Callable[..., Run]) -> None:
    for call, needle in [
        ("flow.sleep(-1)", "must be 0 or more seconds"),
        ("flow.sleep('10')", "must be a number of seconds"),
        ("flow.sleep(10 ** 12)", "beyond the longest wait"),
        ("flow.wait_event('a\\nb')", "control characters"),
        ("flow.wait_event('x' * 600)", "over 512 bytes"),
        ("flow.wait_any(timeout=1)", "at least one branch"),
    ]:
        run = play(f"""
            from hero_tracing import flow

            @flow
            def main():
                {call}
            """)
        assert run.returncode == 1
        assert needle in run.stderr, (call, run.stderr)



def test_retry_delays_back_off_are_capped_and_jittered_by_default() -> None:
    from hero_tracing import flow
    from hero_tracing._retry import RetryPolicy

    exact = RetryPolicy(retries=5, delay=1, backoff=2, max_delay=5, jitter=False)
    assert [exact.delay_after(n, ValueError()) for n in range(1, 6)] == [1, 2, 4, 5, 5]
    jittered = RetryPolicy(retries=5, delay=10, backoff=1)
    delays = {jittered.delay_after(1, ValueError()) for _ in range(50)}
    assert len(delays) > 1  # on by default
    assert all(8 <= d <= 12 for d in delays)
    assert jittered.delay_after(1, flow.RetryAfter(42)) == 42  # the asked delay, as is
    assert not jittered.retryable(flow.NonRetryable("no"))
    assert not RetryPolicy(retries=1, retry_on=(KeyError,)).retryable(ValueError())


def test_the_step_timeout_error_type_of_the_wire_is_the_class_flows_catch() -> None:
    from hero_tracing import flow

    from hero_logic.sdk import STEP_TIMEOUT_TYPE

    assert STEP_TIMEOUT_TYPE == f"{flow.StepTimeout.__module__}.{flow.StepTimeout.__qualname__}"


def test_bad_retry_settings_are_refused_at_decoration() -> None:
    from hero_tracing import flow

    for kwargs, needle in [
        ({"retries": -1}, "retries must be an integer"),
        ({"retries": 1, "retry_delay": -2}, "0 or more seconds"),
        ({"retries": 1, "retry_backoff": 0.5}, "1 or more"),
        ({"timeout": 0}, "more than 0 seconds"),
        ({"retries": 1, "retry_on": "ValueError"}, "exception class"),
    ]:
        with pytest.raises((TypeError, ValueError), match=needle):
            flow(**kwargs)
