"""Durable waits: ``flow.sleep``, ``flow.sleep_until``, ``flow.wait_event`` and ``flow.wait_any``.

Every wait is a memoized step (a span named ``sleep``, ``wait_event`` or ``wait_any``): once it
finished, every later run of the play returns its outcome at once. While it waits the play is
``awaiting_resume`` with no process: the step sends one ``pause`` event per thing it waits for
(``kind`` ``timer``, ``event`` or ``input``; the id of each is ``wait_id(step_key, name)``) and
the process exits 75. The service answers by running the play again with the wait's outcome in
the replay file (``woken`` for timers and events, ``resumes`` for answers).

A wait fixes its deadline the first time it is reached (``wake_at``); a re-run before it is
over (another branch was answered) gets that deadline back from the replay file's ``waits``,
so a deadline never moves. A sleep whose remaining time is at most the service's exit threshold
(``HERO_FLOW_SLEEP_EXIT_MS``) sleeps in the process instead, and is recorded all the same.

In a thread running an asyncio loop (an ``async def`` flow) each of these returns a coroutine to
``await``; elsewhere it blocks and returns the outcome.
"""

from __future__ import annotations

import sys
import time

from . import _state
from ._spans import CURRENT, AwaitingResume, Failed
from ._wire import wait_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ._play import Runtime
    from ._spans import Span

__all__ = [
    "MAX_EVENT_KEY_BYTES",
    "OnAnswer",
    "OnEvent",
    "WaitTimeout",
    "check_event_key",
    "seconds_of",
    "sleep",
    "sleep_until",
    "wait_any",
    "wait_event",
]

MAX_EVENT_KEY_BYTES = 512
"""Longest event key, in UTF-8 bytes (the service refuses longer ones too)."""
DEFAULT_MAX_WAIT_MS = 366 * 24 * 3600 * 1000
"""The longest wait when the service names none (``HERO_FLOW_MAX_WAIT_MS``)."""


class WaitTimeout(Failed):
    """``flow.wait_event`` timed out: no event with its key came before its ``timeout``.
    Catch it to take another path (``flow.wait_any`` returns ``("timeout", None)`` instead)."""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _in_event_loop() -> bool:
    """True in a thread that runs an asyncio loop (an ``async def`` flow): waits are awaited."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return False
    return asyncio._get_running_loop() is not None  # cheap, and never raises


def seconds_of(value: Any, what: str) -> float:
    """``value`` as seconds: an int, a float or a ``datetime.timedelta``, finite and >= 0."""
    total = getattr(value, "total_seconds", None)
    if callable(total) and type(value).__name__ == "timedelta":
        value = total()
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"{what} must be a number of seconds (int or float) or a datetime.timedelta, got {value!r}"
        raise TypeError(msg)
    if value != value or value in (float("inf"), float("-inf")):
        msg = f"{what} must be a finite number of seconds, got {value!r}"
        raise ValueError(msg)
    if value < 0:
        msg = f"{what} must be 0 or more seconds, got {value!r}: pass how long to wait"
        raise ValueError(msg)
    return value


def _check_span(runtime: Runtime | None, wait_ms: float, what: str) -> None:
    """Refuse a wait longer than the service allows (``HERO_LOGIC_MAX_WAIT_MS``)."""
    limit = runtime.max_wait_ms if runtime is not None else DEFAULT_MAX_WAIT_MS
    if wait_ms > limit:
        msg = (
            f"{what} of {wait_ms / 1000:g} s is beyond the longest wait this service allows "
            f"({limit / 1000:g} s, HERO_LOGIC_MAX_WAIT_MS): wait in shorter steps, or raise the limit"
        )
        raise ValueError(msg)


def check_event_key(key: Any, what: str = "event key") -> str:
    """``key`` if it is a usable event key: a non-empty string of at most 512 UTF-8 bytes
    without control characters."""
    if not isinstance(key, str):
        msg = f"{what} must be a string, got {key!r}"
        raise TypeError(msg)
    if not key:
        msg = f"{what} must not be empty: name the event, e.g. 'payment:order-42'"
        raise ValueError(msg)
    if len(key.encode("utf-8", "surrogatepass")) > MAX_EVENT_KEY_BYTES:
        msg = f"{what} is over {MAX_EVENT_KEY_BYTES} bytes of UTF-8 ({key[:40]!r}...): use a shorter key"
        raise ValueError(msg)
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in key):
        msg = f"{what} {key[:80]!r} contains control characters: use printable text"
        raise ValueError(msg)
    return key


class OnEvent:
    """A branch of ``flow.wait_any`` that an event with ``key`` resolves (its payload is the value)."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = check_event_key(key, "flow.on_event key")

    def spec(self) -> dict[str, Any]:
        return {"event": self.key}

    def __repr__(self) -> str:
        return f"flow.on_event({self.key!r})"


class OnAnswer:
    """A branch of ``flow.wait_any`` that an answer resolves (as ``flow.pause`` asks one)."""

    __slots__ = ("name", "schema", "ui")

    def __init__(self, name: str, schema: Any = None, ui: Any = None) -> None:
        if not isinstance(name, str) or not name:
            msg = f"flow.on_answer needs a non-empty string name, got {name!r}"
            raise TypeError(msg)
        self.name = name
        self.schema = schema
        self.ui = ui

    def spec(self) -> dict[str, Any]:
        return {"answer": self.name}

    def __repr__(self) -> str:
        return f"flow.on_answer({self.name!r})"


# --- driving a wait step ---------------------------------------------------------------


class _Nap:
    """A wait step's body asks its driver to sleep ``seconds`` here, then return ``result``."""

    __slots__ = ("result", "seconds")

    def __init__(self, seconds: float, result: Any) -> None:
        self.seconds = seconds
        self.result = result


def _caller() -> tuple[str, int]:
    """The source location of the flow code that called the helper calling this."""
    frame = sys._getframe(2)
    return frame.f_code.co_filename, frame.f_lineno


def _drive(
    runtime: Runtime,
    name: str,
    key_kwargs: dict[str, Any],
    plan: Callable[[Span], Any],
    site: tuple[str, int],
    convert: Callable[[Any], Any],
    *,
    blocking: bool = False,
) -> Any:
    """Run the wait step ``name``: blocking here, or as a coroutine in an asyncio thread
    (unless ``blocking``)."""
    if blocking or not _in_event_loop():

        def body(span: Span) -> Any:
            step = plan(span)
            if isinstance(step, _Nap):
                time.sleep(step.seconds)
                return step.result
            return step

        return convert(runtime.run_memoized(name, key_kwargs, body, kind="step", source_file=site[0], source_line=site[1]))
    identity = runtime._identify(name, key_kwargs)  # fixed now: gather replays deterministically
    return _drive_async(runtime, name, identity, plan, site, convert)


async def _drive_async(
    runtime: Runtime,
    name: str,
    identity: tuple[Span, str, str, str, dict[object, Any], str],
    plan: Callable[[Span], Any],
    site: tuple[str, int],
    convert: Callable[[Any], Any],
) -> Any:
    import asyncio

    from ._cache import from_cache, is_cached
    from ._play import _site

    span, key, parent_id, text, counts, path = identity
    span.kind = "step"
    wire = _site(name, site[0], site[1])
    cached = is_cached(runtime, key, span.shape)
    fields = runtime._begin(span, key, text, counts, path, cached)
    if cached:
        return convert(from_cache(runtime, span, key, parent_id, wire, name, fields))
    runtime.writer.send(runtime.start_line(span, key, parent_id, wire, _now_ms(), fields))
    token = CURRENT.set(span)
    try:
        step = plan(span)
        if isinstance(step, _Nap):
            await asyncio.sleep(step.seconds)
            step = step.result
    except BaseException as exc:
        instead = runtime._fail(span, key, exc, False)
        if instead is None:
            raise
        raise instead from exc
    finally:
        CURRENT.reset(token)
    return convert(runtime._finish(None, name, span, key, step))


def _pause(runtime: Runtime, span: Span, waits: list[dict[str, Any]]) -> AwaitingResume:
    """Send one ``pause`` per wait and return the exception that stops the play."""
    if runtime.prefill_only and any(w.get("kind") != "timer" for w in waits):
        names = ", ".join(repr(w["name"]) for w in waits if w.get("kind") != "timer")
        msg = (
            f"{span.name} waits for {names}; this play was started with prefill_resumes, so it "
            "fails instead of waiting: prefill an answer branch, or start it without prefills"
        )
        raise Failed(msg)
    now = _now_ms()
    for wait in waits:
        runtime.pauses.append(wait["resume_id"])
        runtime.send(
            {"type": "pause", "schema": None, "ui": None, **wait, "span_id": span.span_id, "asked_at": now}
        )
    return AwaitingResume(waits[0]["resume_id"], waits[0]["name"])


def _deadline(runtime: Runtime, rid: str, wait_ms: float) -> int:
    """The wait's fixed deadline: as first set (from the replay file), else now + ``wait_ms``."""
    known = runtime.waits.get(rid)
    if isinstance(known, dict) and isinstance(known.get("wake_at"), int):
        wake_at: int = known["wake_at"]
        return wake_at
    return _now_ms() + int(wait_ms)


def _timer_plan(runtime: Runtime, name: str, wake_at_of: Callable[[str], int]) -> Callable[[Span], Any]:
    def plan(span: Span) -> Any:
        rid = wait_id(span.path, "timer")
        woken = runtime.woken.get(rid)
        if isinstance(woken, dict):
            return {"woke_at": woken.get("at"), "via": woken.get("via", "timer")}
        wake_at = wake_at_of(rid)
        left = wake_at - _now_ms()
        span.tag(wake_at=wake_at)
        if left <= runtime.sleep_exit_ms:
            return _Nap(max(left, 0) / 1000, {"woke_at": max(wake_at, _now_ms()), "via": "process"})
        raise _pause(runtime, span, [{"kind": "timer", "resume_id": rid, "name": name, "wake_at": wake_at}])

    return plan


def _no_play(what: str) -> RuntimeError:
    msg = (
        f"{what} needs a play: it waits for the hero_logic service, and this process is not "
        "running one (HERO_FLOW_SPAN_SOCK is unset). Run the flow with hero_logic."
    )
    return RuntimeError(msg)


def _none(_: Any) -> None:
    return None


def _same(value: Any) -> Any:
    return value


async def _async_nap(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


def sleep(duration: Any) -> Any:
    """Wait ``duration`` (seconds, or a ``datetime.timedelta``), durably.

    A step: while it waits the play is ``awaiting_resume`` with no process (a wait of at most
    ``HERO_LOGIC_SLEEP_EXIT_MS``, default 2 s, sleeps in the process), and the service wakes it
    at its ``wake_at``, after a restart too. ``play_resume`` on its timer wakes it early. In an
    ``async def`` flow, ``await flow.sleep(...)``.
    """
    seconds = seconds_of(duration, "flow.sleep duration")
    runtime = _state.get()
    _check_span(runtime, seconds * 1000, "flow.sleep")
    if runtime is None:
        if _in_event_loop():
            return _async_nap(seconds)
        time.sleep(seconds)
        return None
    plan = _timer_plan(runtime, "sleep", lambda rid: _deadline(runtime, rid, seconds * 1000))
    return _drive(runtime, "sleep", {"seconds": seconds}, plan, _caller(), _none)


def sleep_until(when: Any) -> Any:
    """Wait until ``when``, a timezone-aware ``datetime``, durably (as :func:`sleep`); a time
    in the past returns at once. A naive datetime is a ValueError."""
    if type(when).__name__ != "datetime" or not callable(getattr(when, "timestamp", None)):
        msg = f"flow.sleep_until needs a datetime.datetime, got {when!r}"
        raise TypeError(msg)
    if when.tzinfo is None or when.utcoffset() is None:
        msg = (
            f"flow.sleep_until got the naive datetime {when.isoformat()}: add a tzinfo, e.g. "
            "when.replace(tzinfo=datetime.timezone.utc) or datetime.now(datetime.timezone.utc)"
        )
        raise ValueError(msg)
    wake_at = int(when.timestamp() * 1000)
    runtime = _state.get()
    _check_span(runtime, wake_at - _now_ms(), "flow.sleep_until")
    if runtime is None:
        seconds = max(0, wake_at - _now_ms()) / 1000
        if _in_event_loop():
            return _async_nap(seconds)
        time.sleep(seconds)
        return None
    plan = _timer_plan(runtime, "sleep_until", lambda rid: wake_at)
    return _drive(runtime, "sleep", {"until_ms": wake_at}, plan, _caller(), _none)


def _timeout(runtime: Runtime | None, timeout: Any, what: str) -> float | None:
    """The timeout in seconds (None: none), checked."""
    if timeout is None:
        return None
    seconds = seconds_of(timeout, f"{what} timeout")
    _check_span(runtime, seconds * 1000, f"{what} timeout")
    return seconds


def wait_event(key: str, timeout: Any = None) -> Any:
    """The payload of the next event sent with exactly ``key`` (``event_send``), durably.

    The play waits with no process. An event sent before the play got here (at or after the
    play's creation, within the service's retention) is received from the mailbox; each wait of
    a play takes an event that play has not received yet. With ``timeout`` (seconds or a
    timedelta) it raises :class:`WaitTimeout` once that passes with no event. A step: a
    finished wait replays its outcome. In an ``async def`` flow, ``await`` it.
    """
    check_event_key(key, "flow.wait_event key")
    runtime = _state.get()
    seconds = _timeout(runtime, timeout, "flow.wait_event")
    if runtime is None:
        what = f"flow.wait_event({key!r})"
        raise _no_play(what)

    def plan(span: Span) -> Any:
        rid = wait_id(span.path, "event")
        woken = runtime.woken.get(rid)
        if isinstance(woken, dict):
            if woken.get("via") == "timeout":
                msg = f"no event {key!r} came within the timeout of {seconds:g} s"
                raise WaitTimeout(msg)
            return woken.get("payload")
        wait: dict[str, Any] = {"kind": "event", "resume_id": rid, "name": f"event:{key}", "event_key": key}
        if seconds is not None:
            wait["wake_at"] = _deadline(runtime, rid, seconds * 1000)
            span.tag(wake_at=wait["wake_at"])
        raise _pause(runtime, span, [wait])

    kwargs = {"key": key, "timeout": seconds}
    return _drive(runtime, "wait_event", kwargs, plan, _caller(), _same)


def wait_any(timeout: Any = None, **branches: Any) -> Any:
    """Wait for the first of several branches: ``(branch_name, value)``, or ``("timeout",
    None)`` when ``timeout`` passes first.

    Each keyword is a branch: ``flow.on_event(key)`` (its value is the event's payload) or
    ``flow.on_answer(name, schema=None, ui=None)`` (an answer, as ``flow.pause`` takes one). The
    first branch to resolve withdraws the others at once; a late answer to a withdrawn one is
    refused, naming the winner. A step: a finished wait replays its outcome.
    """
    if not branches:
        msg = "flow.wait_any needs at least one branch: flow.wait_any(paid=flow.on_event('payment:42'), ...)"
        raise TypeError(msg)
    for name, branch in branches.items():
        if name == "timeout":
            msg = "flow.wait_any: 'timeout' is the name of the timeout outcome; name the branch otherwise"
            raise ValueError(msg)
        if not isinstance(branch, OnEvent | OnAnswer):
            msg = f"flow.wait_any branch {name!r} must be flow.on_event(key) or flow.on_answer(name), got {branch!r}"
            raise TypeError(msg)
    runtime = _state.get()
    seconds = _timeout(runtime, timeout, "flow.wait_any")
    if runtime is None:
        what = "flow.wait_any"
        raise _no_play(what)

    def plan(span: Span) -> Any:
        group = span.path
        ids = {name: wait_id(group, f"branch:{name}") for name in branches}
        timer_id = wait_id(group, "timeout")
        for name, branch in branches.items():
            rid = ids[name]
            if isinstance(branch, OnAnswer):
                if rid in runtime.resumes:
                    return [name, runtime.resumes[rid]]
                for known in (rid, branch.name):
                    if known in runtime.prefill:
                        return [name, runtime.prefill[known]]
            elif isinstance(runtime.woken.get(rid), dict):
                return [name, runtime.woken[rid].get("payload")]
        if isinstance(runtime.woken.get(timer_id), dict):
            return ["timeout", None]
        waits: list[dict[str, Any]] = []
        for name, branch in branches.items():
            wait: dict[str, Any] = {"resume_id": ids[name], "group": group, "branch": name}
            if isinstance(branch, OnAnswer):
                wait.update(kind="input", name=branch.name, schema=branch.schema, ui=branch.ui)
            else:
                wait.update(kind="event", name=f"event:{branch.key}", event_key=branch.key)
            waits.append(wait)
        if seconds is not None:
            wake_at = _deadline(runtime, timer_id, seconds * 1000)
            span.tag(wake_at=wake_at)
            waits.append(
                {"kind": "timer", "resume_id": timer_id, "name": "timeout", "group": group,
                 "branch": "timeout", "wake_at": wake_at}
            )
        raise _pause(runtime, span, waits)

    kwargs = {"branches": {name: b.spec() for name, b in branches.items()}, "timeout": seconds}
    return _drive(runtime, "wait_any", kwargs, plan, _caller(), tuple)
