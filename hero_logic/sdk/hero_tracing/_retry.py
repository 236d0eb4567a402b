"""Retries and timeouts per step: ``@flow(retries=..., retry_delay=..., timeout=...)``.

A step with a policy runs as attempts: each attempt is a span named ``attempt N`` under the
step's span, tagged ``attempt: N``, whose key is ``attempt_key(step_key, N)`` (its inner
steps key under it, so a retry runs them afresh). A failed attempt is recorded like a failed
step (``step_failed`` under the attempt's key), so a later run of the play replays it instead
of running it again (and sends nothing for it: its span keeps the status it ended with); the
step's own outcome is the last attempt's. Between attempts the step
waits ``retry_delay * retry_backoff ** (N - 1)`` seconds (at most ``retry_max_delay``, jittered
by up to 20% unless ``retry_jitter=False``, or what a ``flow.RetryAfter`` asked): a durable
wait step named ``retry_delay``, so a long delay holds no process.

An attempt of a step with ``timeout`` carries ``deadline_ms`` on its ``span_start``; the service
stops the process when it passes (so CPU-bound code is stopped too), records the attempt as
failed with :class:`~hero_tracing._spans.StepTimeout` and runs the play again, which replays
that failure and goes on by the policy.
"""

from __future__ import annotations

import os
import time

from ._spans import CURRENT, Failed, Span, outcome
from ._waits import _deadline, _drive, _drive_async, _timer_plan, seconds_of
from ._wire import attempt_key

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ._flow import FlowInfo
    from ._play import Runtime

__all__ = ["MAX_RETRIES", "NonRetryable", "RetryAfter", "RetryPolicy", "run_attempts", "run_attempts_async"]

MAX_RETRIES = 1000
"""Most retries one step may declare."""
JITTER = 0.2
"""Delays are drawn from ``[d * (1 - JITTER), d * (1 + JITTER)]`` (then capped) when jittered."""


class NonRetryable(Failed):
    """Fail the step now: no retry, whatever its ``retries`` allow."""


class RetryAfter(Failed):
    """Fail this attempt and retry the step after ``seconds`` (instead of its backoff delay).

    Without retries left, the step fails with it.
    """

    def __init__(self, seconds: Any, reason: str = "") -> None:
        value = seconds_of(seconds, "flow.RetryAfter seconds")
        super().__init__(reason or f"asked to retry after {value:g} s")
        self.args = (seconds, reason)
        self.seconds = value


class RetryPolicy:
    """What ``@flow`` declared about retrying and timing out one step."""

    __slots__ = ("backoff", "delay", "jitter", "max_delay", "retries", "retry_on", "timeout")

    def __init__(
        self,
        retries: Any = 0,
        delay: Any = 1.0,
        backoff: Any = 2.0,
        max_delay: Any = 300.0,
        retry_on: Any = (Exception,),
        jitter: Any = True,
        timeout: Any = None,
    ) -> None:
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
            msg = f"@flow retries must be an integer from 0 to {MAX_RETRIES}, got {retries!r}"
            raise ValueError(msg)
        self.retries = retries
        self.delay = seconds_of(delay, "@flow retry_delay")
        self.backoff = seconds_of(backoff, "@flow retry_backoff")
        if self.backoff < 1:
            msg = f"@flow retry_backoff must be 1 or more (1: the same delay every time), got {backoff!r}"
            raise ValueError(msg)
        self.max_delay = seconds_of(max_delay, "@flow retry_max_delay")
        if isinstance(retry_on, type):
            retry_on = (retry_on,)
        if not isinstance(retry_on, tuple) or not all(
            isinstance(c, type) and issubclass(c, BaseException) for c in retry_on
        ):
            msg = f"@flow retry_on must be an exception class or a tuple of them, got {retry_on!r}"
            raise TypeError(msg)
        self.retry_on: tuple[type[BaseException], ...] = retry_on
        if not isinstance(jitter, bool):
            msg = f"@flow retry_jitter must be True or False, got {jitter!r}"
            raise TypeError(msg)
        self.jitter = jitter
        if timeout is not None:
            timeout = seconds_of(timeout, "@flow timeout")
            if timeout <= 0:
                msg = f"@flow timeout must be more than 0 seconds (or None: no limit), got {timeout!r}"
                raise ValueError(msg)
        self.timeout: float | None = timeout

    def retryable(self, exc: BaseException) -> bool:
        """True if a failed attempt that raised ``exc`` may be retried."""
        return not isinstance(exc, NonRetryable) and isinstance(exc, self.retry_on)

    def delay_after(self, attempt: int, exc: BaseException) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if isinstance(exc, RetryAfter):
            return exc.seconds
        delay = min(self.max_delay, self.delay * self.backoff ** (attempt - 1))
        if self.jitter and delay:
            spread = int.from_bytes(os.urandom(2)) / 0xFFFF * 2 - 1  # -1..1
            delay = min(self.max_delay, delay * (1 + JITTER * spread))
        return delay


def _recorded(exc: BaseException) -> bool:
    """True if ``exc`` ended its attempt as a failure (not a pause, exit or cancellation)."""
    from ._failure import interrupted_by_pause

    return isinstance(exc, Exception) and outcome(exc) is not None and not interrupted_by_pause(exc)


def _begin(runtime: Runtime, info: FlowInfo, step: Span, key: str, attempt: int) -> tuple[Span, str, BaseException | None]:
    """Start attempt ``attempt``: its span and key, and the exception it raised on an earlier
    run (then it is replayed, not run)."""
    akey = attempt_key(key, attempt)
    span = Span(runtime, akey[:20], f"attempt {attempt}", "step", akey, {})
    now = time.time_ns() // 1_000_000
    event: dict[str, Any] = {
        "type": "span_start",
        "span_id": span.span_id,
        "parent_id": step.span_id,
        "name": span.name,
        "kind": "step",
        "start_ms": now,
        "step_key": akey,
        "source_file": info.source_file,
        "source_line": info.source_line,
        "tags": {"attempt": attempt},
    }
    if akey in runtime.failures:
        from ._failure import rebuild

        # Not sent again: the attempt's span keeps the outcome its run recorded (failed,
        # timed_out), which says more than "replayed".
        return span, akey, rebuild(runtime.failures[akey])
    policy = info.policy
    if policy is not None and policy.timeout is not None:
        event["deadline_ms"] = now + int(policy.timeout * 1000)
    runtime.send(event)
    step.tag(attempts=attempt)
    return span, akey, None


def _next(info: FlowInfo, attempt: int, exc: BaseException) -> float | None:
    """The delay before the next attempt, or None when the step's outcome is ``exc``."""
    policy = info.policy
    if policy is None or attempt > policy.retries or not policy.retryable(exc):
        return None
    return policy.delay_after(attempt, exc)


def _delay_plan(runtime: Runtime, seconds: float) -> Callable[[Span], Any]:
    return _timer_plan(runtime, "retry_delay", lambda rid: _deadline(runtime, rid, seconds * 1000))


def run_attempts(
    runtime: Runtime, info: FlowInfo, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], step: Span, key: str
) -> Any:
    """Run a synchronous step's attempts (inside its span); its result, or its last failure raised."""
    attempt = 1
    while True:
        span, akey, exc = _begin(runtime, info, step, key, attempt)
        if exc is None:
            token = CURRENT.set(span)
            try:
                result = fn(*args, **kwargs)
            except BaseException as caught:
                CURRENT.reset(token)
                runtime._fail(span, akey, caught, False)
                if not _recorded(caught):
                    raise
                exc = caught
            else:
                CURRENT.reset(token)
                runtime.end_span(span.span_id, "ok")
                return result
        delay = _next(info, attempt, exc)
        if delay is None:
            raise exc
        _drive(runtime, "retry_delay", {"after_attempt": attempt}, _delay_plan(runtime, delay), (info.source_file, info.source_line), _same, blocking=True)
        attempt += 1


async def run_attempts_async(
    runtime: Runtime, info: FlowInfo, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], step: Span, key: str
) -> Any:
    """Run an ``async`` step's attempts (inside its span); its result, or its last failure raised."""
    attempt = 1
    while True:
        span, akey, exc = _begin(runtime, info, step, key, attempt)
        if exc is None:
            token = CURRENT.set(span)
            try:
                result = await fn(*args, **kwargs)
            except BaseException as caught:
                runtime._fail(span, akey, caught, False)
                if not _recorded(caught):
                    raise
                exc = caught
            else:
                runtime.end_span(span.span_id, "ok")
                return result
            finally:
                CURRENT.reset(token)
        delay = _next(info, attempt, exc)
        if delay is None:
            raise exc
        identity = runtime._identify("retry_delay", {"after_attempt": attempt})
        await _drive_async(runtime, "retry_delay", identity, _delay_plan(runtime, delay), (info.source_file, info.source_line), _same)
        attempt += 1


def _same(value: Any) -> Any:
    return value
