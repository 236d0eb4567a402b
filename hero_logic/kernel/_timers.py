"""The timer wheel: one Trio deadline, for the earliest timer of every sleeping play.

Timers live in the store (the ``timers`` index of :mod:`._waits`, ordered by wake time and
written in the same commit as the play that waits), never in a task per play. The wheel reads
the head of the index, sleeps until the first wake time (or until a play sets an earlier one:
:meth:`TimerWheel.poke`), then fires every timer that is due, a bounded number at a time, and
looks again. A timer that fell due while the service was down is due at start-up, so it fires
at once. Firing resolves the wait through the kernel (:meth:`Kernel.wake`), which removes the
index row in the same commit: a timer fires once.

The clock is wall-clock milliseconds (``wake_at`` is a time of day), read through ``clock_ms``
so tests can drive it with Trio's mock clock.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Protocol

import attrs
import trio

from ._errors import HeroLogicError, WrongState
from ._model import Play, PlayStatus, ResumeKind, ResumeRequest, now_ms
from ._store_api import Delete
from ._waits import TIMERS, parse_timer_key

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from ._interfaces import WaitHandler
    from ._repo import Repo
    from ._store_api import Store

__all__ = ["FIRE_BATCH", "TimerWheel", "TimerWheelStatistics", "wake_timer"]

log = logging.getLogger("hero_logic.kernel")

FIRE_BATCH = 256
"""Most timers being fired at a time (the wheel reads about this many index rows per look)."""
FIRE_CONCURRENCY = 64
"""Timers firing at once (each is a durable commit: they share group commits)."""
RETRY_AFTER_S = 5.0
"""How long a timer whose firing failed unexpectedly waits before it is tried again."""
MAX_SLEEP_S = 60.0
"""The wheel looks at the wall clock at least this often (it may be set forward)."""


@attrs.frozen
class TimerWheelStatistics:
    """Counters of the wheel."""

    fired: int
    armed_at: int | None
    """The wake time (ms) the wheel sleeps until, or None when no timer is set."""


@attrs.define(eq=False)
class TimerWheel:
    """Fires due timers with ``fire(play_sid, resume_id)``; see the module docstring."""

    store: Store
    fire: Callable[[str, str], Awaitable[None]]
    clock_ms: Callable[[], int] = now_ms
    _changed: trio.Event = attrs.Factory(trio.Event)
    _armed_at: float = math.inf
    _fired: int = 0
    _backoff: dict[str, float] = attrs.Factory(dict)
    """Rows whose firing failed: key → Trio time before which they are not tried again."""
    _firing: set[str] = attrs.Factory(set)
    """Rows being fired now."""
    _limiter: trio.CapacityLimiter = attrs.Factory(lambda: trio.CapacityLimiter(FIRE_CONCURRENCY))

    def poke(self, wake_at: int) -> None:
        """A timer for ``wake_at`` was written: wake the wheel if it sleeps past it."""
        if wake_at < self._armed_at:
            self._changed.set()

    def statistics(self) -> TimerWheelStatistics:
        """Counters since the wheel started."""
        armed = None if self._armed_at == math.inf else int(self._armed_at)
        return TimerWheelStatistics(fired=self._fired, armed_at=armed)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Fire timers as they fall due, until cancelled.

        Firing does not hold the wheel up: each due timer fires in a task of its own (at most
        :data:`FIRE_CONCURRENCY` at once) while the wheel looks for the next; a timer being
        fired is skipped until its firing ends."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                self._changed = trio.Event()
                rows = await self.store.scan(TIMERS, limit=FIRE_BATCH + len(self._firing))
                now = self.clock_ms()
                next_at = math.inf
                for key, _ in rows:
                    if key in self._firing:
                        continue
                    if len(self._firing) >= FIRE_BATCH:
                        break  # enough in flight: look again as they end
                    wake_at = parse_timer_key(key)[0]
                    if key in self._backoff and self._backoff[key] > trio.current_time():
                        next_at = min(next_at, now + 1000 * (self._backoff[key] - trio.current_time()))
                        continue
                    if wake_at > now:
                        next_at = min(next_at, wake_at)
                        break  # keys sort by wake time: the rest are later
                    self._firing.add(key)
                    nursery.start_soon(self._fire_one, key)
                self._armed_at = next_at
                delay = min(MAX_SLEEP_S, (next_at - now) / 1000) if next_at != math.inf else MAX_SLEEP_S
                with trio.move_on_after(max(delay, 0)):
                    await self._changed.wait()
                self._armed_at = math.inf

    async def _fire_one(self, key: str) -> None:
        _, play_sid, resume_id = parse_timer_key(key)
        try:
            async with self._limiter:
                try:
                    await self.fire(play_sid, resume_id)
                except HeroLogicError as exc:
                    log.error("timer %s of play %s could not fire: %s", resume_id, play_sid, exc)
                    self._backoff[key] = trio.current_time() + RETRY_AFTER_S
                    return
                except Exception:  # a bug must not stop every other timer
                    log.exception("timer %s of play %s could not fire", resume_id, play_sid)
                    self._backoff[key] = trio.current_time() + RETRY_AFTER_S
                    return
            self._backoff.pop(key, None)
            self._fired += 1
            if await self.store.get(TIMERS, key) is not None:  # nothing waited for it any more
                log.warning("dropping the stale timer %s of play %s", resume_id, play_sid)
                await self.store.commit([Delete(TIMERS, key)])
        finally:
            self._firing.discard(key)
            if len(self._firing) <= FIRE_BATCH // 2:
                self._changed.set()  # room for more: look again, rows behind it may be due


class _Kernel(Protocol):
    """What of the kernel firing a timer uses."""

    repo: Repo
    timers: TimerWheel | None
    wait_handler: WaitHandler | None

    async def idle(self, play_sid: str) -> None: ...

    async def resolve(self, play_sid: str, answers: Sequence[ResumeRequest]) -> Play: ...


async def wake_timer(kernel: _Kernel, play_sid: str, resume_id: str) -> None:
    """Resolve a play's due timer: a sleep wakes (``via: timer``), an event wait or a
    ``wait_any`` times out (``via: timeout``). An event already in the mailbox wins over the
    timeout. Nothing happens if the play no longer waits for it."""
    for _ in range(10):
        await kernel.idle(play_sid)  # a run that just paused is released first
        play = await kernel.repo.find_play(play_sid)
        request = _open(play, resume_id)
        if play is None or request is None:
            return
        if kernel.wait_handler is not None and _event_in_reach(play, request):
            try:
                await kernel.wait_handler.waiting(play)
            except Exception:  # the mailbox could not be read: the timeout still fires
                log.exception("play %s: reading its event mailbox before a timeout failed", play_sid)
            play = await kernel.repo.find_play(play_sid)
            request = _open(play, resume_id)
            if request is None:
                return  # the mailbox answered it (or its group)
        via = "timeout" if request.kind is ResumeKind.EVENT else "timer"
        woke_at = kernel.timers.clock_ms() if kernel.timers is not None else now_ms()
        answer = attrs.evolve(request, via=via, resumed_at=woke_at, payload=None)
        try:
            await kernel.resolve(play_sid, [answer])
        except WrongState:
            continue  # it started running meanwhile: look again once it is released
        return


def _open(play: Play | None, resume_id: str) -> ResumeRequest | None:
    if play is None or play.status is not PlayStatus.AWAITING_RESUME:
        return None
    return next((r for r in play.pending_resumes if r.id == resume_id), None)


def _event_in_reach(play: Play, request: ResumeRequest) -> bool:
    """True if an event could still resolve ``request`` or its group before the timeout."""
    if request.kind is ResumeKind.EVENT:
        return True
    return bool(request.group) and any(
        r.group == request.group and r.kind is ResumeKind.EVENT for r in play.pending_resumes
    )
