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

from ._capacity import Seat
from ._deadlines import run_until_done
from ._errors import HeroLogicError, NotFound, ServiceBusy, ServiceClosed, WrongState
from ._handle import (
    PlayHandle,
    ended,
    is_settled,
    remove_quietly,
    status_is_settled,
    status_topic,
)
from ._intake import EventIntake
from ._kernel_status import after_settle, deadline_passed, recover, save_status, settle
from ._keyed_lock import KeyedLock
from ._model import Play, PlayStatus, ResumeRequest, WorkflowVersion, now_ms
from ._retire import PlayRetirer
from ._seats import WatchSeats
from ._slots import sandbox_problem, tier_strengths
from ._waits import request_from_pause, resolve_waits, why_not_open
from ._workdirs import WorkdirQuota

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from ._bus import EventBus
    from ._capacity import FairCapacity
    from ._config import Config
    from ._interfaces import (
        FlowRequestHandler,
        RunExtras,
        RunPreparer,
        VersionPicker,
        WaitHandler,
    )
    from ._repo import Repo
    from ._runner import PlayRunner
    from ._store_api import Store, Write
    from ._timers import TimerWheel
    from ._tree import PlayTree

__all__ = ["MAX_RECOVERY_ATTEMPTS", "Kernel", "status_topic"]

log = logging.getLogger("hero_logic.kernel")

MAX_RECOVERY_ATTEMPTS = 3
"""Runs a play may start since it last paused (or since it began) before a service crash
that leaves it ``running`` makes it fail: a play that keeps crashing the service stops."""


@attrs.define(eq=False)
class Kernel(EventIntake):
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
    _handles: dict[str, PlayHandle] = attrs.Factory(dict)
    _push_locks: KeyedLock = attrs.Factory(KeyedLock)
    _transitions: KeyedLock = attrs.Factory(KeyedLock)
    """Held while a play's status is decided and written: cancel, resume and a run's end."""
    watch_seats: WatchSeats = attrs.Factory(WatchSeats)
    """Live watchers per play and in all (:mod:`._watch`)."""
    _closed: bool = False
    _requests: FlowRequestHandler | None = None
    _tier_strengths: dict[str, int] | None = None
    _preparer: RunPreparer | None = None
    timers: TimerWheel | None = None
    """The one deadline of every sleeping play's timers (:mod:`._timers`)."""
    wait_handler: WaitHandler | None = None
    """Who delivers events to plays waiting for them (the service's events room)."""
    _retirer: PlayRetirer | None = None

    # -- submitting and controlling plays --------------------------------------------------------

    def answer_requests_with(self, handler: FlowRequestHandler) -> None:
        """Answer flows' requests (flow lookup, child plays, ...) with ``handler``'s methods."""
        self._requests = handler

    def prepare_runs_with(self, preparer: RunPreparer) -> None:
        """Ask ``preparer`` before each run (environments, service sockets, secrets)."""
        self._preparer = preparer

    async def get_play(self, play_sid: str) -> Play:
        """The play as it stands; NotFound names it otherwise."""
        return await self.repo.get_play(play_sid)

    async def create_play(self, play: Play, *, step_key: str = "", also: Sequence[Write] = ()) -> Play:
        """Persist a new ``pending`` play and schedule it; returns once the record is durable.

        A child play (``parent_play_sid`` set) is linked to its parent in the same commit, and
        within the tree's limits (:class:`PlayTree`). A parent asking again for the child it
        started at ``step_key`` (a re-run) gets that child back and nothing new is created.
        ``also`` are writes committed with the play (its idempotency key)."""
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
            await self.repo.commit([*self.repo.put_play(play, new=True), *also])
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
            await self.repo.commit([*self.repo.put_play(play, new=True), *links, *also])
        self._schedule(play.sid)
        return play

    def _schedule(self, play_sid: str) -> None:
        handle = self._handles.get(play_sid)
        if handle is not None and not handle.done.is_set():
            return  # already queued or running
        self._handles[play_sid] = PlayHandle()
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
            handle = self._handles.get(play_sid)
            if handle is not None and not handle.done.is_set() and not handle.cancel_requested:
                if not handle.settled_status:
                    return await self._answer_while_running(play, handle, answers)
                await handle.done.wait()  # the run has just settled: a plain resume from here
                play = await self.repo.get_play(play_sid)
            if play.status is not PlayStatus.AWAITING_RESUME:
                msg = f"play {play_sid} is {play.status.value}; answers are taken while it runs or awaits resume"
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
                stopped = ended(play, PlayStatus.CANCELLED, "cancelled by play_cancel")
                await self._save_status(stopped)
                await self._cancel_children(stopped)
                return stopped
        if handle is not None:
            await handle.done.wait()
        return await self.repo.get_play(play_sid)

    async def _answer_while_running(self, play: Play, handle: PlayHandle, answers: Sequence[ResumeRequest]) -> Play:
        """Take answers to open waits of a play whose run is still going (parallel pauses, a
        pause asked again after an answer): they are stored at once, and when the run settles
        the play runs again with every answer received meanwhile."""
        live = self.live_pauses(play.sid)
        asked = {r.id for r in play.pending_resumes} | {r.id for r in live}
        if not answers or any(a.id not in asked for a in answers):
            msg = f"play {play.sid}: {why_not_open(play, answers[0].id if answers else '')}"
            raise WrongState(msg)
        known = {r.id for r in play.pending_resumes}
        with_live = attrs.evolve(play, pending_resumes=[*play.pending_resumes, *(r for r in live if r.id not in known)])
        taken = attrs.evolve(resolve_waits(with_live, answers), status=play.status)
        taken = attrs.evolve(taken, pending_resumes=[r for r in taken.pending_resumes if r.id in known])
        await self._save_status(taken)
        handle.answered_meanwhile = True
        return taken

    def live_pauses(self, play_sid: str) -> list[ResumeRequest]:
        """The pauses the running run of ``play_sid`` has reached so far ([] when not running)."""
        handle = self._handles.get(play_sid)
        if handle is None or handle.state is None or handle.done.is_set():
            return []
        now = now_ms()
        asked = (request_from_pause(p, play_sid, now) for p in handle.state.pauses)
        return [r for r in asked if isinstance(r, ResumeRequest)]

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
            if is_settled(play):
                return play
            with trio.move_on_after(timeout_ms / 1000 if timeout_ms > 0 else float("inf")):
                async for message in messages:
                    if message.get("type") == "status" and status_is_settled(message["status"]):
                        break
                else:
                    # Dropped as a slow subscriber: fall back to polling the record.
                    while not is_settled(await self.repo.get_play(play_sid)):  # noqa: ASYNC110 - rare fallback after the bus dropped us
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

    @property
    def retirer(self) -> PlayRetirer:
        """Deletes ended play trees (``play_delete``, retention): :mod:`._retire`."""
        if self._retirer is None:
            workdirs = self.runner.workdirs or WorkdirQuota(self.config)
            self._retirer = PlayRetirer(self.repo, self.tree, self.is_active, workdirs.remove_play_dir)
        return self._retirer

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
                    handle.settled = ended(play, PlayStatus.FAILED, handle.fail_reason)
                    await self._save_status(handle.settled)
            if handle.scope.cancelled_caught and handle.cancel_requested:
                play = await self.repo.get_play(play_sid)
                if not play.status.is_terminal:
                    if handle.state is not None:
                        await self._close_open_spans(play_sid, handle.state, PlayStatus.CANCELLED)
                    handle.settled = ended(play, PlayStatus.CANCELLED, "cancelled by play_cancel")
                    await self._save_status(handle.settled)
            if handle.settled is not None:
                self._release(play_sid, handle)
                if handle.run_again:
                    self._schedule(play_sid)
                else:
                    await after_settle(self, handle.settled)
        except HeroLogicError as exc:
            log.error("play %s could not run: %s", play_sid, exc)
            play = await self.repo.get_play(play_sid)
            if not play.status.is_terminal:
                await self._save_status(ended(play, PlayStatus.FAILED, f"the service could not run this play: {exc.message}"))
        except Exception as exc:  # a bug or hostile input must end this play, never the service
            log.exception("play %s: unexpected error; the play fails, the service carries on", play_sid)
            play = await self.repo.get_play(play_sid)  # the last state that could be stored
            if not play.status.is_terminal:
                reason = f"the service hit an unexpected error running this play ({type(exc).__name__}: {str(exc)[:300]}); see the service log"
                await self._save_status(ended(play, PlayStatus.FAILED, reason))
        finally:
            self._release(play_sid, handle)

    def _release(self, play_sid: str, handle: PlayHandle) -> None:
        """Forget a finished run (but never a newer run of the same play)."""
        handle.done.set()
        if self._handles.get(play_sid) is handle:
            del self._handles[play_sid]

    async def _run(self, play_sid: str, handle: PlayHandle) -> None:
        play = await self.repo.get_play(play_sid)
        if play.status.is_terminal:
            return
        version = await self.repo.get_version(play.workflow_version_sid)
        if problem := self._sandbox_problem(version):
            await self._save_status(ended(play, PlayStatus.FAILED, problem))
            return
        extras: RunExtras | None = None
        if self._preparer is not None:  # may wait (pending, holding no slot) for its environment
            extras = await self._preparer.prepare_run(play, version)
            handle.redactor = extras.redactor
        handle.seat = Seat(tree=play.root_play_sid or play.sid)
        await self._capacity.acquire(handle.seat)
        try:
            await self._run_holding_a_slot(play, version, handle, extras)
        finally:
            self._capacity.release(handle.seat)

    async def _run_holding_a_slot(
        self, play: Play, version: WorkflowVersion, handle: PlayHandle, extras: RunExtras | None = None
    ) -> None:
        play_sid = play.sid
        play = await self.repo.get_play(play_sid)  # as it stands now that it has a slot
        if play.status.is_terminal:
            return
        if play.attempts >= MAX_RECOVERY_ATTEMPTS and play.status is PlayStatus.RUNNING:
            log.error(
                "play %s: the service stopped %d times while it ran; failing it instead of "
                "running it again", play_sid, play.attempts,
            )
            await self._save_status(ended(
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
        timeout_ms = play.timeout_ms or self.config.play_timeout_ms  # a budget for each run
        if play.deadline_at is not None:  # and one deadline for the whole play, if it has one
            left = play.deadline_at - now_ms()
            if left <= 0:
                await self._save_status(ended(play, PlayStatus.TIMED_OUT, deadline_passed(play)))
                return
            timeout_ms = min(timeout_ms, left)
        # ``running`` is committed while the process starts (recovery treats a play left
        # pending as one left running), under the play's transition lock like every status
        # change, and whole before the run can settle. An executor that starts no process
        # (the fake of ``hero_logic.testing``) has nothing to overlap: its scripted run would
        # begin inside its wall clock while the commit waits on the store's thread, which a
        # test's mock clock jumps over.
        if not getattr(self.runner.executor, "starts_processes", True):
            await self._save_running(play)
            outcome, skipped, spent, state = await run_until_done(self, play, version, handle, timeout_ms=timeout_ms, extras=extras)
        else:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._save_running, play)
                outcome, skipped, spent, state = await run_until_done(self, play, version, handle, timeout_ms=timeout_ms, extras=extras)
        async with self._transitions.hold(play_sid):  # no answer slips in between read and write
            await settle(self, play_sid, handle, outcome, skipped, timeout_ms, spent, state)
        if handle.settled is not None and handle.settled.status.is_terminal:
            remove_quietly(self.config.play_dir(play_sid) / "span.sock")

    async def _save_running(self, play: Play) -> None:
        with trio.CancelScope(shield=True):
            async with self._transitions.hold(play.sid):
                await self._save_status(play)

    def _sandbox_problem(self, version: WorkflowVersion) -> str:
        """Why this service may not run ``version`` (its minimum sandbox tier), or ""."""
        if self._tier_strengths is None and version.min_sandbox not in ("", self.runner.tier.name):
            self._tier_strengths = tier_strengths(self.config)
        return sandbox_problem(version, self.runner.tier, self._tier_strengths or {})

    async def _save_status(self, play: Play, note: dict[str, Any] | None = None) -> None:
        """Persist ``play`` and publish its status: :func:`._kernel_status.save_status`."""
        await save_status(self, play, note)

    async def _recover(self) -> None:
        """Re-run plays left ``running`` or ``pending`` by a previous service instance."""
        await recover(self)
