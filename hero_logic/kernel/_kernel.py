"""The Kernel: owns the plays' nursery, the plugin slots, the store and the event bus.

Open one with :func:`open_kernel`; leaving the block cancels every running play (their
processes are killed, their status stays ``running``) and closes the store. On the next start
the kernel re-runs every play that was ``running`` or ``pending`` when the service stopped,
up to :data:`MAX_RECOVERY_ATTEMPTS` times, after which the play fails with a reason that says so.

Each play runs in its own task under its own cancel scope; at most ``max_running`` run at
once, the rest wait as ``pending``. ``play_cancel`` cancels that scope: the flow's process
group is killed and the play ends ``cancelled``.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
import trio

from hero_logic.sdk import REQUEST_METHODS

from ._capacity import Seat
from ._convert import dumps, to_json
from ._deadlines import run_until_done
from ._errors import HeroLogicError, NotFound, ServiceBusy, ServiceClosed, WrongState
from ._keyed_lock import KeyedLock
from ._model import Play, PlayStatus, ResumeRequest, WorkflowVersion, now_ms
from ._repo import Repo, event_key
from ._runner import PlayRunner, RunState, map_outcome
from ._seats import WatchSeats
from ._slots import sandbox_problem, tier_strengths
from ._store_api import Put, Store, Write
from ._waits import index_writes, resolve_waits, wait_summary, why_not_open

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from pathlib import Path

    from ._bus import EventBus
    from ._capacity import FairCapacity
    from ._config import Config
    from ._interfaces import FlowRequestHandler, VersionPicker, WaitHandler
    from ._timers import TimerWheel
    from ._tree import PlayTree

__all__ = ["MAX_RECOVERY_ATTEMPTS", "Kernel", "status_topic"]

log = logging.getLogger("hero_logic.kernel")

MAX_RECOVERY_ATTEMPTS = 3
"""Runs a play may start since it last paused (or since it began) before a service crash
that leaves it ``running`` makes it fail: a play that keeps crashing the service stops."""


@attrs.define(eq=False)
class _PlayHandle:
    """The kernel's grip on one play it is running or about to run."""

    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    cancel_requested: bool = False
    state: RunState | None = None
    settled: Play | None = None
    """The play as this run left it (None while running, or if the service stopped)."""
    done: trio.Event = attrs.Factory(trio.Event)
    fail_reason: str = ""
    """Why the kernel stopped this run itself (the play then fails with it)."""
    seat: Seat | None = None
    """The run's claim on a run slot (lent back while the play waits for a child)."""


MAX_EVENT_BYTES_PER_PLAY = 512 * 1024 * 1024
"""Span event bytes one play may have stored over all its runs (resumes, recoveries)."""
MAX_EVENT_BYTES_PER_RUN = 256 * 1024 * 1024
"""Span event bytes one run of a play may have stored; past it the play fails (a flow must
not fill the store, and every later read of its spans, for everyone)."""

@attrs.define(eq=False)
class Kernel:
    """Supervises plays. Use :func:`open_kernel` to get a running one."""

    config: Config
    store: Store
    repo: Repo
    bus: EventBus
    runner: PlayRunner
    tree: PlayTree
    picker: VersionPicker
    """The version picker slot (``pick_version``, ``play_start(pick=...)``)."""
    _nursery: trio.Nursery
    _capacity: FairCapacity
    _handles: dict[str, _PlayHandle] = attrs.Factory(dict)
    _push_locks: KeyedLock = attrs.Factory(KeyedLock)
    _transitions: KeyedLock = attrs.Factory(KeyedLock)
    """Held while a play's status is decided and written: cancel, resume and a run's end."""
    watch_seats: WatchSeats = attrs.Factory(WatchSeats)
    """Live watchers per play and in all (:mod:`._watch`)."""
    _closed: bool = False
    _requests: FlowRequestHandler | None = None
    _tier_strengths: dict[str, int] | None = None
    timers: TimerWheel | None = None
    """The one deadline of every sleeping play's timers (:mod:`._timers`)."""
    wait_handler: WaitHandler | None = None
    """Who delivers events to plays waiting for them (the service's events room)."""

    # -- submitting and controlling plays --------------------------------------------------------

    def answer_requests_with(self, handler: FlowRequestHandler) -> None:
        """Answer flows' requests (flow lookup, child plays, ...) with ``handler``'s methods."""
        self._requests = handler

    async def get_play(self, play_sid: str) -> Play:
        """The play as it stands; NotFound names it otherwise."""
        return await self.repo.get_play(play_sid)

    async def create_play(self, play: Play, *, step_key: str = "") -> Play:
        """Persist a new ``pending`` play and schedule it; returns once the record is durable.

        A child play (``parent_play_sid`` set) is linked to its parent in the same commit, and
        within the tree's limits (:class:`PlayTree`). A parent asking again for the child it
        started at ``step_key`` (a re-run) gets that child back and nothing new is created.
        """
        if self._closed:
            msg = "the service is shutting down and starts no new plays: retry once it is back"
            raise ServiceClosed(msg)
        pending = len(self._handles) - self._capacity.in_use
        if pending >= self.config.max_pending:
            msg = (
                f"{pending} plays already wait for a run slot (max_pending {self.config.max_pending}): "
                "retry once the queue drains, or raise --max-pending / HERO_LOGIC_MAX_PENDING"
            )
            raise ServiceBusy(msg)
        if not play.parent_play_sid:
            await self.repo.commit(self.repo.put_play(play, new=True))
            self._schedule(play.sid)
            return play
        parent = await self.repo.get_play(play.parent_play_sid)
        root = await self.tree.root_of(parent)
        async with self.tree.hold(root):
            known = await self.tree.child_for_step(parent.sid, step_key)
            if known is not None:
                return await self.repo.get_play(known)
            parent = await self.repo.get_play(parent.sid)  # as it stands under the lock
            play = attrs.evolve(play, root_play_sid=root)
            links = await self.tree.link_writes(parent, play, step_key)
            await self.repo.commit([*self.repo.put_play(play, new=True), *links])
        self._schedule(play.sid)
        return play

    def _schedule(self, play_sid: str) -> None:
        handle = self._handles.get(play_sid)
        if handle is not None and not handle.done.is_set():
            return  # already queued or running
        self._handles[play_sid] = _PlayHandle()
        self._nursery.start_soon(self._supervise, play_sid, name=f"play {play_sid}")

    async def resume(self, play_sid: str, answer: ResumeRequest) -> Play:
        """Record ``answer`` to one of the play's open waits and run the play again (see
        :meth:`resolve`)."""
        return await self.resolve(play_sid, [answer])

    async def resolve(self, play_sid: str, answers: Sequence[ResumeRequest]) -> Play:
        """Record ``answers`` to open waits of the play (an answer, a timer, an event) and run
        the play again; a branch of a ``wait_any`` withdraws its group's other branches in the
        same commit.

        Taken under the play's transition lock, like :meth:`cancel`: a play that was cancelled
        (or is running, or no longer waits for the first answer) is refused with WrongState
        (-32002) and nothing changes. The answers are durable before this returns. Ancestors
        that waited only for this play become ``running`` again.
        """
        async with self._transitions.hold(play_sid):
            play = await self.repo.get_play(play_sid)
            if self.is_active(play_sid) or play.status is not PlayStatus.AWAITING_RESUME:
                msg = f"play {play_sid} is {play.status.value}; answers are taken once it awaits resume"
                raise WrongState(msg)
            if not answers or not any(r.id == answers[0].id for r in play.pending_resumes):
                msg = f"play {play_sid}: {why_not_open(play, answers[0].id if answers else '')}"
                raise WrongState(msg)
            resumed = resolve_waits(play, answers)
            await self._save_status(resumed, note={"woken": [{"resume_id": a.id, "kind": a.kind.value, "via": a.via or "rpc"} for a in answers]})
            for ancestor in await self.tree.awaiting_ancestors(resumed):
                await self._save_status(attrs.evolve(ancestor, status=PlayStatus.RUNNING))
            self._schedule(play_sid)
            return resumed

    async def cancel(self, play_sid: str) -> Play:
        """Cancel a pending, running or paused play and its unfinished child plays; their
        process groups are killed.

        Cancelling a play that already ended is a WrongState error.
        """
        play = await self.repo.get_play(play_sid)
        if play.status.is_terminal:
            msg = f"play {play_sid} already ended ({play.status.value}); only unfinished plays can be cancelled"
            raise WrongState(msg)
        await self._cancel_children(play)  # a cancelled parent leaves no child behind
        handle = self._handles.get(play_sid)
        if handle is not None and not handle.done.is_set():
            handle.cancel_requested = True
            handle.scope.cancel()
            await handle.done.wait()
            return await self.repo.get_play(play_sid)
        async with self._transitions.hold(play_sid):
            play = await self.repo.get_play(play_sid)
            handle = self._handles.get(play_sid)
            if handle is not None and not handle.done.is_set():  # a resume won the lock first
                handle.cancel_requested = True
                handle.scope.cancel()
            elif not play.status.is_terminal:
                # Paused (no process) or not yet scheduled: end it here.
                ended = _ended(play, PlayStatus.CANCELLED, "cancelled by play_cancel")
                await self._save_status(ended)
                await self._cancel_children(ended)
                return ended
        if handle is not None:
            await handle.done.wait()
        return await self.repo.get_play(play_sid)

    async def _cancel_children(self, play: Play) -> None:
        """Cancel every unfinished child play of ``play`` (read under its tree's lock, so a
        child created at the same moment is either refused or seen here)."""
        async with self.tree.hold(await self.tree.root_of(play)):
            children = await self.tree.children(play.sid)
        for child_sid in children:
            try:
                await self.cancel(child_sid)
            except (NotFound, WrongState):
                pass

    async def wait(self, play_sid: str, timeout_ms: int) -> Play:
        """The play once it is terminal or awaiting resume, or as it stands when the wait times
        out (``timeout_ms`` 0 waits forever)."""
        # The status topic carries status changes only: a busy play's events cannot crowd a
        # waiter out of its queue.
        async with self.bus.subscribe(status_topic(play_sid), queue_size=64) as messages:
            play = await self.repo.get_play(play_sid)
            if _settled(play):
                return play
            with trio.move_on_after(timeout_ms / 1000 if timeout_ms > 0 else float("inf")):
                async for message in messages:
                    if message.get("type") == "status" and _settled_status(message["status"]):
                        break
                else:
                    # Dropped as a slow subscriber: fall back to polling the record.
                    while not _settled(await self.repo.get_play(play_sid)):  # noqa: ASYNC110 - rare fallback after the bus dropped us
                        await trio.sleep(0.05)
        return await self.repo.get_play(play_sid)

    def start_system_task(self, fn: Any, *args: Any, name: str) -> None:
        """Run ``await fn(*args)`` in the kernel's nursery (e.g. a benchmark driving plays).

        The task is supervised like a play: it is cancelled when the kernel closes. It must
        handle its own errors; one that escapes is logged and does not stop the kernel.
        """
        if self._closed:
            msg = "the service is shutting down and starts no new work: retry once it is back"
            raise ServiceClosed(msg)

        async def guarded() -> None:
            try:
                await fn(*args)
            except HeroLogicError as exc:
                log.error("system task %s failed: %s", name, exc)
            except Exception:  # a bug in a system task must not take the kernel down
                log.exception("system task %s crashed", name)

        self._nursery.start_soon(guarded, name=name)

    @asynccontextmanager
    async def lending_slot(self, play_sid: str) -> AsyncIterator[None]:
        """For the block, the running play ``play_sid`` gives its run slot back (it waits for
        a child play, which may need the slot); it takes one again after the block."""
        handle = self._handles.get(play_sid)
        seat = handle.seat if handle is not None else None
        if seat is None:
            yield
            return
        async with self._capacity.lend(seat):
            yield

    def capacity_statistics(self) -> dict[str, int]:
        """Run slots: the total, those in use, and the plays waiting for one."""
        return {"total": self._capacity.total, "in_use": self._capacity.in_use, "waiting": self._capacity.waiting}

    def active_plays(self) -> int:
        """How many plays the kernel has queued or running."""
        return len(self._handles)

    def is_active(self, play_sid: str) -> bool:
        """True while the kernel has the play queued or running."""
        handle = self._handles.get(play_sid)
        return handle is not None and not handle.done.is_set()

    async def idle(self, play_sid: str) -> None:
        """Return once the kernel neither queues nor runs the play."""
        while (handle := self._handles.get(play_sid)) is not None and not handle.done.is_set():
            await handle.done.wait()

    # -- the event sink the span listener feeds --------------------------------------------------

    async def apply(self, play_sid: str, events: Sequence[tuple[bytes, dict[str, Any]]]) -> None:
        """Persist a batch of a play's events in one commit, then publish them on the bus."""
        handle = self._handles.get(play_sid)
        state = handle.state if handle is not None else None
        if state is None:
            # span_push for a play that is not running: read the last position and append
            # under the play's lock, so concurrent pushes never write the same position.
            async with self._push_locks.hold(play_sid):
                state = RunState(seq=await self.repo.last_event_seq(play_sid))
                await self._append(play_sid, state, events)
            return
        await self._append(play_sid, state, events)

    async def _append(
        self, play_sid: str, state: RunState, events: Sequence[tuple[bytes, dict[str, Any]]]
    ) -> None:
        size = sum(len(raw) for raw, _ in events)
        over_run = state.stored_bytes + size > MAX_EVENT_BYTES_PER_RUN
        if over_run or state.bytes_before + state.stored_bytes + size > MAX_EVENT_BYTES_PER_PLAY:
            handle = self._handles.get(play_sid)
            if handle is not None and handle.state is state and not handle.fail_reason:
                cap, where = (MAX_EVENT_BYTES_PER_RUN, "in one run") if over_run else (MAX_EVENT_BYTES_PER_PLAY, "over all its runs")
                log.warning("play %s: over %d bytes of span events %s; stopping it", play_sid, cap, where)
                handle.fail_reason = (
                    f"the play streamed over {cap >> 20} MiB of span events (tags, logs, outputs) "
                    f"{where} and was stopped: log less, or keep large data in files of its workdir"
                )
                handle.scope.cancel()
            return
        state.stored_bytes += size
        writes: list[Write] = []
        first_seq = state.seq + 1
        for raw, event in events:
            state.seq += 1
            writes.append(Put("events", event_key(play_sid, state.seq), raw))
            state.observe(event)
        await self.repo.commit(writes)
        # Published with their position, so a live stream can tell them from its snapshot's
        # (and not built at all while nobody watches: the usual case on this hot path).
        if self.bus.has_subscribers(play_sid):
            for seq, (raw, event) in enumerate(events, first_seq):
                self.bus.publish(play_sid, {**event, "seq": seq}, size=len(raw))

    async def request(self, play_sid: str, event: dict[str, Any]) -> dict[str, Any]:
        """Answer a flow's request (flow lookup, child plays) with the handler of its kind."""
        request_id = event.get("id")
        method = event.get("method")
        if self._requests is None or method not in REQUEST_METHODS:
            known = ", ".join(sorted(REQUEST_METHODS))
            return _error_response(
                request_id, -32601,
                f"unknown flow request method {method!r} (known: {known}): the SDK and the service disagree on the protocol",
            )
        params = event.get("params")
        handler = getattr(self._requests, str(method))
        try:
            result = await handler(play_sid, params if isinstance(params, dict) else {})
        except HeroLogicError as exc:
            return {"type": "response", "id": request_id, "error": exc.to_json()}
        except Exception as exc:  # hostile params must get an error answer, not end the play
            log.exception("play %s: request %r failed unexpectedly", play_sid, event.get("method"))
            return _error_response(request_id, -32603, f"the service could not answer this request ({type(exc).__name__})")
        return {"type": "response", "id": request_id, "result": result}

    # -- running ---------------------------------------------------------------------------------

    async def _supervise(self, play_sid: str) -> None:
        handle = self._handles[play_sid]
        try:
            with handle.scope:
                await self._run(play_sid, handle)
            if handle.scope.cancelled_caught and handle.fail_reason and not handle.cancel_requested:
                play = await self.repo.get_play(play_sid)
                if not play.status.is_terminal:
                    if handle.state is not None:
                        handle.state.stored_bytes = 0  # room for the few closing span_end lines
                        await self._close_open_spans(play_sid, handle.state, PlayStatus.FAILED)
                    handle.settled = _ended(play, PlayStatus.FAILED, handle.fail_reason)
                    await self._save_status(handle.settled)
            if handle.scope.cancelled_caught and handle.cancel_requested:
                play = await self.repo.get_play(play_sid)
                if not play.status.is_terminal:
                    if handle.state is not None:
                        await self._close_open_spans(play_sid, handle.state, PlayStatus.CANCELLED)
                    handle.settled = _ended(play, PlayStatus.CANCELLED, "cancelled by play_cancel")
                    await self._save_status(handle.settled)
            if handle.settled is not None:
                self._release(play_sid, handle)
                await self._after_settle(handle.settled)
        except HeroLogicError as exc:
            log.error("play %s could not run: %s", play_sid, exc)
            play = await self.repo.get_play(play_sid)
            if not play.status.is_terminal:
                await self._save_status(_ended(play, PlayStatus.FAILED, f"the service could not run this play: {exc.message}"))
        except Exception as exc:  # a bug or hostile input must end this play, never the service
            log.exception("play %s: unexpected error; the play fails, the service carries on", play_sid)
            play = await self.repo.get_play(play_sid)  # the last state that could be stored
            if not play.status.is_terminal:
                reason = f"the service hit an unexpected error running this play ({type(exc).__name__}: {str(exc)[:300]}); see the service log"
                await self._save_status(_ended(play, PlayStatus.FAILED, reason))
        finally:
            self._release(play_sid, handle)

    def _release(self, play_sid: str, handle: _PlayHandle) -> None:
        """Forget a finished run (but never a newer run of the same play)."""
        handle.done.set()
        if self._handles.get(play_sid) is handle:
            del self._handles[play_sid]

    async def _run(self, play_sid: str, handle: _PlayHandle) -> None:
        play = await self.repo.get_play(play_sid)
        if play.status.is_terminal:
            return
        version = await self.repo.get_version(play.workflow_version_sid)
        if self._tier_strengths is None and version.min_sandbox not in ("", self.runner.tier.name):
            self._tier_strengths = tier_strengths(self.config)
        problem = sandbox_problem(version, self.runner.tier, self._tier_strengths or {})
        if problem:
            await self._save_status(_ended(play, PlayStatus.FAILED, problem))
            return
        handle.seat = Seat(tree=play.root_play_sid or play.sid)
        await self._capacity.acquire(handle.seat)
        try:
            await self._run_holding_a_slot(play, version, handle)
        finally:
            self._capacity.release(handle.seat)

    async def _run_holding_a_slot(self, play: Play, version: WorkflowVersion, handle: _PlayHandle) -> None:
        play_sid = play.sid
        play = await self.repo.get_play(play_sid)  # as it stands now that it has a slot
        if play.status.is_terminal:
            return
        if play.attempts >= MAX_RECOVERY_ATTEMPTS and play.status is PlayStatus.RUNNING:
            log.error(
                "play %s: the service stopped %d times while it ran; failing it instead of "
                "running it again", play_sid, play.attempts,
            )
            await self._save_status(_ended(
                play,
                PlayStatus.FAILED,
                f"the service stopped {play.attempts} times while this play was running; "
                f"gave up after {MAX_RECOVERY_ATTEMPTS} attempts (see the service log)",
            ))
            return
        play = attrs.evolve(
            play,
            status=PlayStatus.RUNNING,
            started_at=play.started_at or now_ms(),
            attempts=play.attempts + 1,
            sandbox_tier=self.runner.tier.name,
        )
        await self._save_status(play)
        timeout_ms = play.timeout_ms or self.config.play_timeout_ms
        outcome, skipped, spent, state = await run_until_done(self, play, version, handle, timeout_ms=timeout_ms)
        play = await self.repo.get_play(play_sid)  # requests may have linked child plays
        play = attrs.evolve(play, event_bytes=play.event_bytes + spent)
        if skipped:
            log.warning("play %s: skipped %d malformed or oversized span lines", play_sid, skipped)
            play = attrs.evolve(play, skipped_span_lines=play.skipped_span_lines + skipped)
        children_waiting = await self.tree.any_child_awaiting(play)
        final = map_outcome(
            play, outcome, state, timeout_ms=timeout_ms, children_waiting=children_waiting
        )
        final = attrs.evolve(final, event_bytes=play.event_bytes + state.stored_bytes)
        await self._close_open_spans(play_sid, state, final.status)
        await self._save_status(final)
        if final.status.is_terminal:
            _remove_quietly(self.config.play_dir(play_sid) / "span.sock")
        handle.settled = final

    async def _close_open_spans(self, play_sid: str, state: RunState, status: PlayStatus) -> None:
        """End the spans a run left open: ``pending`` for a pause, else the play's end state."""
        if not state.open_spans:
            return
        span_status = {
            PlayStatus.AWAITING_RESUME: "pending",
            PlayStatus.TIMED_OUT: "timed_out",
            PlayStatus.CANCELLED: "cancelled",
        }.get(status, "failed")
        now = now_ms()
        events = [
            {"type": "span_end", "span_id": span_id, "end_ms": now, "status": span_status}
            for span_id in list(state.open_spans)
        ]
        await self.apply(play_sid, [(dumps(e), e) for e in events])

    async def _after_settle(self, play: Play) -> None:
        """What a play reaching ``play.status`` sets in motion: a re-run if an answer arrived
        while it ran, the wake-up of a parent waiting for this child, and the end of the
        unfinished children of a play that failed, timed out or was cancelled."""
        if play.status.is_terminal and play.status is not PlayStatus.SUCCESS:
            await self._cancel_children(play)  # nobody is left to wait for them
        if self.wait_handler is not None and play.status is PlayStatus.AWAITING_RESUME and any(r.event_key for r in play.pending_resumes):
            try:  # an event sent before it waited: its mailbox
                await self.wait_handler.waiting(play)
            except Exception:  # the play waits on; the next send or its timeout still reaches it
                log.exception("play %s: delivering from its event mailbox failed", play.sid)
        if not play.parent_play_sid:
            return
        try:
            parent = await self.repo.get_play(play.parent_play_sid)
        except NotFound:
            return
        if self.is_active(parent.sid):
            return  # its run waits for this child itself (wait_child_play)
        if play.status.is_terminal and parent.status in (PlayStatus.AWAITING_RESUME, PlayStatus.RUNNING):
            self._schedule(parent.sid)  # the child it waited for is done: continue the parent
        elif play.status is PlayStatus.AWAITING_RESUME and parent.status is PlayStatus.RUNNING:
            waiting = attrs.evolve(parent, status=PlayStatus.AWAITING_RESUME)
            await self._save_status(waiting)
            await self._after_settle(waiting)

    async def _save_status(self, play: Play, note: dict[str, Any] | None = None) -> None:
        """Persist ``play`` (with the index rows of its waits) and publish its status, with
        ``note`` in the message. The kernel is the only writer of a play's status: an ended
        play stays ended (a late write of another status is dropped)."""
        stored = await self.repo.find_play(play.sid)
        if stored is not None and stored.status.is_terminal and play.status is not stored.status:
            log.warning(
                "play %s: dropped a change to %s, the play already ended %s",
                play.sid, play.status.value, stored.status.value,
            )
            return
        if play.status is PlayStatus.AWAITING_RESUME and play.attempts:
            # A pause is a clean stop: the recovery bound counts runs since the last one, so
            # a play may pause and resume any number of times.
            play = attrs.evolve(play, attempts=0)
        elif play.status.is_terminal and play.pending_resumes:
            play = attrs.evolve(play, pending_resumes=[])  # an ended play asks nothing any more
        await self.repo.commit([*self.repo.put_play(play), *index_writes(stored, play)])
        if self.timers is not None and play.status is PlayStatus.AWAITING_RESUME:
            for wait in play.pending_resumes:
                if wait.wake_at is not None:
                    self.timers.poke(wait.wake_at)
        message = {"type": "status", "status": play.status.value, "play": to_json(play), **(note or {})}
        if play.status is PlayStatus.AWAITING_RESUME:
            message["waiting"] = wait_summary(play)
        self.bus.publish(play.sid, message)
        self.bus.publish(status_topic(play.sid), message, broadcast=False)

    async def _recover(self) -> None:
        """Re-run plays left ``running`` or ``pending`` by a previous service instance."""
        unfinished = await self.repo.list_plays(
            statuses=(PlayStatus.RUNNING, PlayStatus.PENDING), limit=1_000_000
        )
        for play in reversed(unfinished):  # oldest first
            if self.runner.executor.kill_leftover(self.config.play_dir(play.sid) / "flow.pid"):
                log.warning("killed the flow process of play %s left by the previous service", play.sid)
            log.warning("recovering play %s (was %s, %d runs so far)", play.sid, play.status.value, play.attempts)
            self._schedule(play.sid)


def status_topic(play_sid: str) -> str:
    """The bus topic that carries only a play's status changes (for waiters)."""
    return f"status:{play_sid}"


def _settled_status(status: str) -> bool:
    return status == PlayStatus.AWAITING_RESUME.value or PlayStatus(status).is_terminal


def _settled(play: Play) -> bool:
    return _settled_status(play.status.value)


def _ended(play: Play, status: PlayStatus, reason: str) -> Play:
    now = now_ms()
    return attrs.evolve(
        play,
        status=status,
        error_message=reason,
        pending_resumes=[],
        completed_at=now,
        duration_ms=max(0, now - (play.started_at or play.created_at or now)),
    )


def _error_response(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"type": "response", "id": request_id, "error": {"code": code, "message": message}}


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
