"""Schedules: plays started on a cron expression or a fixed interval (CONTRACT.md §10).

A schedule is a record; its next look is a row of the ``sched_due`` index, ordered by time.
:meth:`Schedules.run` (a kernel system task) sleeps until the first row — one Trio deadline
for every schedule, never a task per schedule, woken early when a schedule changes — then
looks at each due schedule:

- every tick from ``next_fire_at`` up to now is taken in order: one older than
  ``catchup_window_s`` is counted in ``missed_ticks``; a newer one meets the ``overlap``
  policy while an earlier play of the schedule has not ended: ``skip`` (counted missed),
  ``buffer_one`` (kept to start when that play ends; a tick that finds the buffer full is
  counted missed), ``buffer_all`` (all kept, started one at a time), ``cancel_other`` (the
  earlier plays are cancelled) or ``allow_all``;
- a tick starts its play through :meth:`Plays.create` with the idempotency key
  ``schedule:<sid>:<tick ms>``, written in the same commit as the play: a look repeated after a
  crash finds that play and starts nothing new, so each (schedule, tick) starts one play.

Buffered ticks start when the play before them has ended; while some wait, the schedule is
looked at every :data:`BUFFER_POLL_MS`.

=============  ===========================  ==============
table          key                          value
=============  ===========================  ==============
``schedules``  schedule sid                 Schedule
``sched_due``  ``{due_at:013d}/{sid}``      empty
=============  ===========================  ==============
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import attrs
import trio

from hero_logic.kernel import (
    Delete,
    HeroLogicError,
    KeyedLock,
    NotFound,
    Put,
    decode_record,
    encode_record,
    new_sid,
    now_ms,
)

from ._checks import check_name, invalid_field
from ._inputs import check_inputs
from ._marker import rpc_method
from ._schedule_times import check_timing, next_tick, tick_iso, ticks_between

if TYPE_CHECKING:
    from collections.abc import Callable

    from hero_logic.kernel import Kernel, Play, Write

    from ._plays import Plays

__all__ = ["Schedule", "Schedules"]

log = logging.getLogger("hero_logic.service")

DUE = "sched_due"
TICKS_PER_LOOK = 100
"""Ticks one look at a schedule starts or counts at most (a long catch-up takes several looks)."""
MISSED_SCAN = 100_000
"""Cron ticks counted one by one before the look jumps to the catch-up window."""
MAX_BUFFERED = 1000
MAX_BACKFILL = 1000
BUFFER_POLL_MS = 1000
"""How often a schedule with buffered ticks looks whether the play before them has ended."""
LATE_GRACE_MS = 2000
"""How late a tick may be looked at and still count as on time (with any catch-up window)."""
RETRY_MS = 5000
"""When a look that failed unexpectedly is tried again."""
MAX_SLEEP_S = 60.0
LOOKS_AT_ONCE = 32
"""Due schedules looked at together: their commits share the store's group commits, so a
thousand schedules due at one instant are started at the store's commit rate, not at one
round trip per play (each schedule still has its own lock; a tick's play is still made once)."""


@attrs.frozen
class Schedule:
    """A schedule of plays of one workflow."""

    sid: str
    workflow_sid: str
    name: str
    cron: str = ""
    every_s: int = 0
    timezone: str = "UTC"
    input_data: dict[str, Any] = attrs.Factory(dict)
    example_sid: str = ""
    version_sid: str = ""
    """Empty: the workflow's current version at each tick."""
    overlap: str = "skip"
    catchup_window_s: int = 3600
    paused: bool = False
    next_fire_at: int | None = None
    last_fire_at: int | None = None
    last_play_sid: str = ""
    missed_ticks: int = 0
    created_at: int = 0
    updated_at: int = 0
    active_play_sids: list[str] = attrs.Factory(list)
    """Plays of the schedule not known to have ended (what ``overlap`` looks at)."""
    buffered_ticks: list[int] = attrs.Factory(list)
    """Ticks kept by ``buffer_one`` / ``buffer_all`` until the play before them ends."""
    last_error: str = ""
    """Why the last tick could not start a play (e.g. the workflow's inputs changed), or ""."""
    due_at: int | None = None
    """When the scheduler looks at it next (its ``sched_due`` row)."""


def _due_key(at: int, sid: str) -> str:
    return f"{at:013d}/{sid}"


@attrs.define(eq=False)
class Schedules:
    """The schedule methods of the API, and the scheduler that fires them."""

    kernel: Kernel
    plays: Plays
    clock_ms: Callable[[], int] = now_ms
    _locks: KeyedLock = attrs.Factory(KeyedLock)
    _changed: trio.Event = attrs.Factory(trio.Event)
    _armed_at: float = math.inf
    fired: int = 0

    # -- records -----------------------------------------------------------------------------------

    async def _get(self, sid: str) -> Schedule:
        raw = await self.kernel.repo.store.get("schedules", sid) if sid else None
        if raw is None:
            msg = f"no schedule with sid {sid!r}: list them with schedule_list"
            raise NotFound(msg)
        return decode_record(Schedule, raw)

    async def _save(self, old: Schedule | None, new: Schedule | None) -> None:
        """Write ``new`` (None: delete ``old``) and move its ``sched_due`` row, in one commit."""
        writes: list[Write] = []
        if old is not None and old.due_at is not None and (new is None or new.due_at != old.due_at):
            writes.append(Delete(DUE, _due_key(old.due_at, old.sid)))
        if new is None:
            assert old is not None
            writes.append(Delete("schedules", old.sid))
        else:
            writes.append(Put("schedules", new.sid, encode_record(new)))
            if new.due_at is not None:
                writes.append(Put(DUE, _due_key(new.due_at, new.sid), b""))
        await self.kernel.repo.commit(writes)
        if new is not None and new.due_at is not None and new.due_at < self._armed_at:
            self._changed.set()

    def _next(self, schedule: Schedule, after_ms: int) -> int:
        return next_tick(cron=schedule.cron, every_s=schedule.every_s, timezone=schedule.timezone, after_ms=after_ms)

    async def _check_start(self, schedule: Schedule, *, context: str) -> None:
        """Refuse a schedule whose plays could not start now (unknown preset, version, inputs)."""
        wf = await self.kernel.repo.get_workflow(schedule.workflow_sid)
        input_data, version_sid = schedule.input_data, schedule.version_sid
        if schedule.example_sid:
            if self.plays.library is None:
                msg = "example_sid"
                raise invalid_field(msg, "this service runs without the library, so presets are unavailable", context=context)
            plan = await self.plays.library.plan_start(
                workflow_sid=wf.sid, input_data=input_data, version_sid=version_sid, prefill_resumes=None,
                name="", example_sid=schedule.example_sid, pick=None,
            )
            input_data, version_sid = plan.input_data, plan.version_sid
        version = await self.plays.workflows.version_for(wf, version_sid, context=context)
        check_inputs(version.inputs, input_data, flow_name=version.entry_flow or wf.name)

    # -- the API -----------------------------------------------------------------------------------

    @rpc_method(admin=True)
    async def schedule_create(
        self,
        workflow_sid: str,
        cron: str = "",
        every_s: int = 0,
        timezone: str = "UTC",
        input_data: dict[str, Any] | None = None,
        example_sid: str = "",
        version_sid: str = "",
        overlap: str = "skip",
        catchup_window_s: int = 3600,
        name: str = "",
        paused: bool = False,
    ) -> Schedule:
        """Create a schedule of plays of a workflow: exactly one of cron (five fields, in
        timezone) or every_s (seconds, on multiples since the epoch). Each tick starts one play
        named ``schedule:<name>:<tick, ISO 8601 UTC>`` from input_data or the preset
        example_sid, on version_sid (empty: the current version at each tick); overlap says
        what a tick does while an earlier play has not ended; after downtime, ticks within
        catchup_window_s still fire and older ones count in missed_ticks."""
        context = "schedule_create"
        check_timing(cron=cron, every_s=every_s, timezone=timezone, overlap=overlap,
                     catchup_window_s=catchup_window_s, context=context)
        wf = await self.kernel.repo.get_workflow(workflow_sid)
        now = self.clock_ms()
        sid = new_sid("sched")
        schedule = Schedule(
            sid=sid, workflow_sid=wf.sid, name=check_name(name or wf.name, context=context, what="the schedule"),
            cron=" ".join(cron.split()), every_s=every_s, timezone=timezone, input_data=dict(input_data or {}),
            example_sid=example_sid, version_sid=version_sid, overlap=overlap, catchup_window_s=catchup_window_s,
            paused=paused, created_at=now, updated_at=now,
        )
        await self._check_start(schedule, context=context)
        first = self._next(schedule, now)
        schedule = attrs.evolve(schedule, next_fire_at=first, due_at=None if paused else first)
        async with self._locks.hold(sid):
            await self._save(None, schedule)
        return schedule

    @rpc_method(admin=True)
    async def schedule_get(self, sid: str) -> Schedule:
        """One schedule, with its next and last fire times and missed ticks."""
        return await self._get(sid)

    @rpc_method(admin=True)
    async def schedule_list(self, workflow_sid: str = "") -> list[Schedule]:
        """Every schedule (of one workflow when workflow_sid is given), oldest first."""
        rows = await self.kernel.repo.store.scan("schedules")
        found = [decode_record(Schedule, raw) for _, raw in rows]
        return sorted((s for s in found if not workflow_sid or s.workflow_sid == workflow_sid), key=lambda s: (s.created_at, s.sid))

    @rpc_method(admin=True)
    async def schedule_update(
        self,
        sid: str,
        cron: str | None = None,
        every_s: int | None = None,
        timezone: str | None = None,
        input_data: dict[str, Any] | None = None,
        example_sid: str | None = None,
        version_sid: str | None = None,
        overlap: str | None = None,
        catchup_window_s: int | None = None,
        name: str | None = None,
    ) -> Schedule:
        """Change a schedule; a parameter left out (null) keeps its value. To switch from cron
        to every_s give both (cron ""). A new timing sets the next fire time from now."""
        context = "schedule_update"
        async with self._locks.hold(sid):
            old = await self._get(sid)
            changes: dict[str, Any] = {
                k: v for k, v in {
                    "cron": None if cron is None else " ".join(cron.split()), "every_s": every_s, "timezone": timezone,
                    "input_data": input_data, "example_sid": example_sid, "version_sid": version_sid,
                    "overlap": overlap, "catchup_window_s": catchup_window_s,
                    "name": None if name is None else check_name(name, context=context, what="the schedule"),
                }.items() if v is not None
            }
            new = attrs.evolve(old, **changes, updated_at=self.clock_ms())
            check_timing(cron=new.cron, every_s=new.every_s, timezone=new.timezone, overlap=new.overlap,
                         catchup_window_s=new.catchup_window_s, context=context)
            await self._check_start(new, context=context)
            if (new.cron, new.every_s, new.timezone) != (old.cron, old.every_s, old.timezone):
                first = self._next(new, self.clock_ms())
                new = attrs.evolve(new, next_fire_at=first, due_at=None if new.paused else first)
            await self._save(old, new)
            return new

    @rpc_method(admin=True)
    async def schedule_delete(self, sid: str) -> bool:
        """Delete a schedule; the plays it started are kept."""
        async with self._locks.hold(sid):
            await self._save(await self._get(sid), None)
        return True

    @rpc_method(admin=True)
    async def schedule_pause(self, sid: str) -> Schedule:
        """Stop firing; ticks while paused are neither fired nor counted missed. Ticks kept in
        the buffer (``buffer_one``/``buffer_all``) are dropped and counted missed: a resume
        fires from the next tick after now, never a tick from before the pause."""
        async with self._locks.hold(sid):
            old = await self._get(sid)
            new = attrs.evolve(
                old, paused=True, due_at=None, updated_at=self.clock_ms(),
                buffered_ticks=[], missed_ticks=old.missed_ticks + len(old.buffered_ticks),
            )
            await self._save(old, new)
            return new

    @rpc_method(admin=True)
    async def schedule_resume(self, sid: str) -> Schedule:
        """Fire again, from the next tick after now."""
        async with self._locks.hold(sid):
            old = await self._get(sid)
            if not old.paused:
                return old
            now = self.clock_ms()
            first = self._next(old, now)
            new = attrs.evolve(old, paused=False, next_fire_at=first, due_at=first, updated_at=now)
            await self._save(old, new)
            return new

    @rpc_method(admin=True)
    async def schedule_trigger(self, sid: str) -> str:
        """Start a play of the schedule now, whatever its overlap policy; returns its sid."""
        async with self._locks.hold(sid):
            old = await self._get(sid)
            now = self.clock_ms()
            play = await self._start(old, now, key="")
            new = attrs.evolve(old, last_play_sid=play.sid, active_play_sids=[*old.active_play_sids, play.sid])
            await self._save(old, new)
            return play.sid

    @rpc_method(admin=True)
    async def schedule_backfill(self, sid: str, start_ms: int, end_ms: int) -> list[str]:
        """Start the plays of every tick in [start_ms, end_ms) (at most 1,000), whatever the
        overlap policy; a tick that already has its play keeps it. Returns the play sids."""
        context = "schedule_backfill"
        if start_ms < 0 or end_ms <= start_ms:
            msg = "end_ms" if start_ms >= 0 else "start_ms"
            raise invalid_field(msg, f"give 0 <= start_ms < end_ms (ms since the epoch), got [{start_ms}, {end_ms})", context=context)
        async with self._locks.hold(sid):
            old = await self._get(sid)
            ticks = ticks_between(cron=old.cron, every_s=old.every_s, timezone=old.timezone,
                                  start_ms=start_ms, end_ms=end_ms, limit=MAX_BACKFILL)
            if len(ticks) > MAX_BACKFILL:
                msg = "end_ms"
                raise invalid_field(msg, f"the range holds more than {MAX_BACKFILL} ticks: backfill a shorter range at a time", context=context)
            plays = [await self._start(old, tick, key=self._tick_key(old, tick)) for tick in ticks]
            if plays:
                new = attrs.evolve(old, last_play_sid=plays[-1].sid,
                                   active_play_sids=[*old.active_play_sids, *(p.sid for p in plays)])
                await self._save(old, new)
            return [p.sid for p in plays]

    # -- firing ------------------------------------------------------------------------------------

    @staticmethod
    def _tick_key(schedule: Schedule, tick: int) -> str:
        return f"schedule:{schedule.sid}:{tick}"

    async def _start(self, schedule: Schedule, tick: int, *, key: str) -> Play:
        """The play of one tick (the one already started for ``key``, if any)."""
        input_data, version_sid, prefills = schedule.input_data, schedule.version_sid, None
        if schedule.example_sid and self.plays.library is not None:
            plan = await self.plays.library.plan_start(
                workflow_sid=schedule.workflow_sid, input_data=input_data, version_sid=version_sid,
                prefill_resumes=None, name="", example_sid=schedule.example_sid, pick=None,
            )
            input_data, version_sid, prefills = plan.input_data, plan.version_sid, plan.prefill_resumes
        return await self.plays.create(
            context=f"schedule {schedule.name!r}", workflow_sid=schedule.workflow_sid, input_data=input_data,
            version_sid=version_sid, prefill_resumes=prefills, name=f"schedule:{schedule.name}:{tick_iso(tick)}",
            idempotency_key=key,
        )

    async def look(self, sid: str, row: str) -> None:
        """Fire what is due of one schedule now (the scheduler calls it when its ``sched_due``
        row falls due)."""
        async with self._locks.hold(sid):
            raw = await self.kernel.repo.store.get("schedules", sid)
            old = decode_record(Schedule, raw) if raw is not None else None
            if old is None or old.paused or old.next_fire_at is None or old.due_at is None or _due_key(old.due_at, sid) != row:
                await self.kernel.repo.commit([Delete(DUE, row)])  # stale: the schedule moved on
                return
            try:
                new = await self._fire_due(old)
            except HeroLogicError as exc:
                log.warning("schedule %s (%s): a tick could not start its play: %s", old.name, sid, exc.message)
                new = attrs.evolve(old, last_error=exc.message[:500], due_at=self.clock_ms() + RETRY_MS)
            await self._save(old, new)

    async def _fire_due(self, s: Schedule) -> Schedule:
        """``s`` after starting (or counting) what is due of it now."""
        assert s.next_fire_at is not None
        now = self.clock_ms()
        active = [sid for sid in s.active_play_sids if not await self._ended(sid)]
        buffered, missed, last_error = list(s.buffered_ticks), s.missed_ticks, s.last_error
        last_fire_at, last_play = s.last_fire_at, s.last_play_sid
        if buffered and not active:  # the play before them ended: the oldest kept tick starts
            tick = buffered.pop(0)
            play = await self._start(s, tick, key=self._tick_key(s, tick))
            active, last_play, last_error = [play.sid], play.sid, ""
        at, looked = s.next_fire_at, 0
        window_start = now - s.catchup_window_s * 1000 - LATE_GRACE_MS
        if s.every_s and at < window_start:  # count the ticks past the window without visiting them
            skip_to = next_tick(cron="", every_s=s.every_s, timezone="UTC", after_ms=window_start - 1)
            missed += (skip_to - at) // (s.every_s * 1000)
            at = skip_to
        while at <= now and looked < TICKS_PER_LOOK:
            if at < window_start:
                missed += 1
                counted = 1
                while (at := self._next(s, at)) < window_start and counted < MISSED_SCAN:
                    missed, counted = missed + 1, counted + 1
                if at < window_start:  # a very long outage: jump to the window, counted so far
                    at = self._next(s, window_start - 1)
                continue
            looked += 1
            key = self._tick_key(s, at)
            earlier = await self.kernel.repo.play_for_key(s.workflow_sid, key)
            if earlier is not None:  # started before a crash: this look only records it
                active = [*(a for a in active if a != earlier.sid), earlier.sid]
                last_fire_at, last_play = at, earlier.sid
            elif active and s.overlap == "skip":
                missed += 1
            elif active and s.overlap in ("buffer_one", "buffer_all"):
                full = len(buffered) >= (1 if s.overlap == "buffer_one" else MAX_BUFFERED)
                if full:
                    missed += 1
                else:
                    buffered.append(at)
            else:
                if active and s.overlap == "cancel_other":
                    for other in active:
                        await self._cancel(other)
                    active = []
                play = await self._start(s, at, key=key)
                self.fired += 1
                active, last_fire_at, last_play, last_error = [*active, play.sid], at, play.sid, ""
            at = self._next(s, at)
        due = min(at, now + BUFFER_POLL_MS) if buffered else at
        return attrs.evolve(
            s, next_fire_at=at, due_at=due, active_play_sids=active, buffered_ticks=buffered, missed_ticks=missed,
            last_fire_at=last_fire_at, last_play_sid=last_play, last_error=last_error,
        )

    async def _ended(self, play_sid: str) -> bool:
        play = await self.kernel.repo.find_play(play_sid)
        return play is None or play.status.is_terminal

    async def _cancel(self, play_sid: str) -> None:
        try:
            await self.kernel.cancel(play_sid)
        except HeroLogicError as exc:  # it ended meanwhile
            log.info("schedule: play %s not cancelled: %s", play_sid, exc.message)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Look at each schedule when its ``sched_due`` row falls due, until cancelled: one
        deadline, for the earliest row (see the module docstring)."""
        task_status.started()
        store = self.kernel.repo.store
        while True:
            self._changed = trio.Event()
            rows = await store.scan(DUE, limit=4 * LOOKS_AT_ONCE)
            now = self.clock_ms()
            next_at: float = math.inf
            due: dict[str, str] = {}  # sid → its row: one look per schedule at a time
            for key, _ in rows:
                at_text, sid = key.split("/", 1)
                if int(at_text) > now:
                    next_at = int(at_text)
                    break
                due.setdefault(sid, key)
            if due:
                limiter = trio.CapacityLimiter(LOOKS_AT_ONCE)
                async with trio.open_nursery() as nursery:
                    for sid, key in due.items():
                        nursery.start_soon(self._look_guarded, sid, key, limiter)
                next_at = now  # something fired: look again at once
            self._armed_at = next_at
            delay = MAX_SLEEP_S if next_at == math.inf else min(MAX_SLEEP_S, max(0.0, (next_at - now) / 1000))
            if delay > 0:
                with trio.move_on_after(delay):
                    await self._changed.wait()
            self._armed_at = math.inf

    async def _look_guarded(self, sid: str, key: str, limiter: trio.CapacityLimiter) -> None:
        async with limiter:
            try:
                await self.look(sid, key)
            except Exception:  # a bug must not stop every other schedule
                log.exception("schedule %s: the look failed", sid)
                await self._retry_later(sid, key)

    async def _retry_later(self, sid: str, key: str) -> None:
        raw = await self.kernel.repo.store.get("schedules", sid)
        if raw is None:
            await self.kernel.repo.commit([Delete(DUE, key)])
            return
        old = decode_record(Schedule, raw)
        await self._save(old, attrs.evolve(old, due_at=self.clock_ms() + RETRY_MS))
