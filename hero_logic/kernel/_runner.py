"""PlayRunner: one run of one play, from staged files to its mapped outcome.

A run stages the play's directory (source, inputs, replay caches), has the span listener bind
the play's socket, has the sandbox tier wrap the launch and the executor run it, then maps
the process outcome to a play status (CONTRACT.md §4):

==========================  ==================  =============================================
outcome                     status              error_message
==========================  ==================  =============================================
could not spawn             failed              the spawn error
wall-clock timeout          timed_out           the limit that was exceeded
exit 0                      success             (output_data = the entry flow's return value)
exit 75                     awaiting_resume     (pending_resumes = the pauses it reached)
exit 2                      failed              no @flow entry found + stderr tail
any other exit / signal     failed              the flow's own reason, then the stderr tail
==========================  ==================  =============================================
"""

from __future__ import annotations

import json
import os
import signal
from typing import TYPE_CHECKING, Any

import attrs
import trio

from hero_logic.sdk import (
    ENV_ENTRY,
    ENV_INPUT_FILE,
    ENV_MAX_WAIT_MS,
    ENV_NETWORK,
    ENV_PACKAGES,
    ENV_PARENT_SPAN,
    ENV_PLAY_SID,
    ENV_REPLAY_FILE,
    ENV_SANDBOX,
    ENV_SERVICES,
    ENV_SLEEP_EXIT_MS,
    ENV_SOURCE_FILE,
    ENV_SPAN_SOCK,
    ENV_VERSION_SID,
    EXIT_AWAITING_RESUME,
    EXIT_NO_ENTRY,
)

from ._convert import dumps
from ._errors import SandboxUnavailable
from ._interfaces import (
    ExitOutcome,
    Launch,
    ListenerStatistics,
    ProcessExecutorSlot,
    RunExtras,
    SandboxTier,
    SpanListenerSlot,
)
from ._model import Play, PlayStatus, ResumeRequest, WorkflowVersion, now_ms
from ._waits import request_from_pause
from ._workdirs import WorkdirQuota

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from ._config import Config
    from ._pool import WarmPool, _Warm

__all__ = [
    "PlayRunner",
    "RunState",
    "map_outcome",
    "request_from_pause",
]

STDERR_IN_ERROR = 4000
"""How many characters of stderr's tail go into a failed play's error_message."""

_LISTENER_DRAIN_S = 2.0

MAX_OPEN_PAUSES = 100
"""Questions one run may leave open (every record of the play carries them)."""
MAX_PAUSE_BYTES = 1024 * 1024
"""Bytes of JSON schemas and ui hints the open questions of one run may hold in all."""


@attrs.define(eq=False)
class RunState:
    """What the kernel learns from one run's events while it is running."""

    seq: int
    output: Any = None
    has_output: bool = False
    root_span_ids: set[str] = attrs.Factory(set)
    root_error: str = ""
    pauses: list[dict[str, Any]] = attrs.Factory(list)
    pause_bytes: int = 0
    too_many_pauses: str = ""
    """Why the run's pauses went past their bounds (the play then fails with it), or ""."""
    costs: dict[str, float] = attrs.Factory(dict)
    open_spans: dict[str, None] = attrs.Factory(dict)
    """Spans this run started and has not ended, in start order."""
    stored_bytes: int = 0
    """Bytes of event lines this run has had stored (bounded by MAX_EVENT_BYTES_PER_RUN)."""
    bytes_before: int = 0
    """Bytes the play's earlier runs stored (the play is bounded by MAX_EVENT_BYTES_PER_PLAY)."""
    deadlines: dict[str, tuple[int, str, int, Any]] = attrs.Factory(dict)
    """Open attempts with a ``deadline_ms``: span id → (deadline, attempt key, start, attempt)."""
    on_deadline: Callable[[], None] | None = None
    """Called when an attempt with a deadline starts (the kernel's watchdog re-arms)."""

    def observe(self, event: dict[str, Any]) -> None:
        """Update the run's state from one applied event (called for each, in order)."""
        kind = event["type"]
        if kind == "span_start":
            if event.get("kind") == "flow_root":
                self.root_span_ids.add(event["span_id"])
            if event.get("status", "running") == "running":
                self.open_spans[event["span_id"]] = None
                deadline = event.get("deadline_ms")
                if isinstance(deadline, int) and isinstance(event.get("step_key"), str):
                    tags = event.get("tags")
                    attempt = tags.get("attempt") if isinstance(tags, dict) else None
                    self.deadlines[event["span_id"]] = (deadline, event["step_key"], _start(event), attempt)
                    if self.on_deadline is not None:
                        self.on_deadline()
            self._cost(event)
        elif kind == "span_tag":
            self._cost(event)
        elif kind == "span_end":
            self.open_spans.pop(event["span_id"], None)
            self.deadlines.pop(event["span_id"], None)
            if event["span_id"] in self.root_span_ids and event.get("error"):
                self.root_error = str(event["error"])
        elif kind == "output":
            self.output = event.get("output")
            self.has_output = True
        elif kind == "pause":
            self._pause(event)

    def _pause(self, event: dict[str, Any]) -> None:
        """Keep a pause the run reached, within the bounds on a play's open questions."""
        if self.too_many_pauses:
            return
        size = len(dumps({"schema": event.get("schema"), "ui": event.get("ui")}))
        if len(self.pauses) >= MAX_OPEN_PAUSES or self.pause_bytes + size > MAX_PAUSE_BYTES:
            self.too_many_pauses = (
                f"the play asked more than {MAX_OPEN_PAUSES} questions, or {MAX_PAUSE_BYTES >> 10} KiB "
                "of pause schemas and ui hints, in one run: ask fewer questions at once, with smaller schemas"
            )
            return
        self.pause_bytes += size
        self.pauses.append(event)

    def _cost(self, event: dict[str, Any]) -> None:
        tags = event.get("tags")
        if isinstance(tags, dict):
            cost = tags.get("cost_usd")
            if isinstance(cost, int | float) and not isinstance(cost, bool):
                self.costs[event["span_id"]] = float(cost)

    @property
    def total_cost_usd(self) -> float:
        """The sum of the latest ``cost_usd`` tag of each span."""
        return sum(self.costs.values())


def _start(event: dict[str, Any]) -> int:
    start = event.get("start_ms")
    return start if isinstance(start, int) else 0


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def map_outcome(
    play: Play,
    outcome: ExitOutcome,
    state: RunState,
    *,
    timeout_ms: int,
    children_waiting: bool = False,
) -> Play:
    """The play as it stands after a run that ended with ``outcome``.

    Exit 75 means awaiting resume when the run reported pauses, or when a child play it
    waits for is itself awaiting resume (``children_waiting``). The pending resumes are the
    pauses this run reached that have no answer yet.
    """
    now = now_ms()
    changes: dict[str, Any] = {"exit_code": outcome.exit_code}
    if state.costs:
        changes["total_cost_usd"] = round(play.total_cost_usd + state.total_cost_usd, 10)
    tail = outcome.stderr_tail.strip()[-STDERR_IN_ERROR:]
    if outcome.spawn_error:
        changes.update(status=PlayStatus.FAILED, error_message=outcome.spawn_error)
    elif outcome.timed_out:
        changes.update(
            status=PlayStatus.TIMED_OUT,
            error_message=f"wall-clock timeout of {timeout_ms} ms exceeded: the flow was "
            "stopped (TERM, then KILL after the grace period); raise timeout_ms if it needs longer",
        )
    elif outcome.exit_code == 0:
        changes.update(status=PlayStatus.SUCCESS, output_data=state.output, error_message="")
    elif outcome.exit_code == EXIT_AWAITING_RESUME and (state.pauses or children_waiting):
        answered = {r.id for r in (*play.received_resumes, *play.withdrawn_resumes)}
        pending: dict[str, ResumeRequest] = {}
        for p in state.pauses:
            rid = str(p.get("resume_id", ""))
            if rid in answered or rid in pending:
                continue
            request = request_from_pause(p, play.sid, now)
            if isinstance(request, str):
                changes.update(status=PlayStatus.FAILED, error_message=f"the flow process reported {request}")
                break
            pending[rid] = request
        else:
            return attrs.evolve(
                play,
                status=PlayStatus.AWAITING_RESUME,
                pending_resumes=list(pending.values()),
                **changes,
            )
    elif outcome.exit_code == EXIT_NO_ENTRY:
        changes.update(
            status=PlayStatus.FAILED,
            error_message="no @flow entry found in the flow source (exit 2): decorate the "
            f"entry function with @flow\n{tail}".rstrip(),
        )
    else:
        if outcome.exit_code is not None and outcome.exit_code < 0:
            reason = f"flow process was killed by {_signal_name(outcome.exit_code)}"
        elif outcome.exit_code == EXIT_AWAITING_RESUME:
            reason = "flow process exited 75 (awaiting resume) without reporting a pause"
        else:
            reason = state.root_error or f"flow process exited with code {outcome.exit_code}"
        if outcome.limit_reason:  # the sandbox's limit is the cause; what the flow saw follows
            reason = f"{outcome.limit_reason}\n{reason}"
        if state.root_error and tail:  # the boot stub printed the same traceback: keep the rest
            known = {line.strip() for line in reason.splitlines()}
            tail = "\n".join(
                line for line in tail.splitlines()
                if line.strip() not in known
                and not line.startswith(("flow failed:", "Traceback (most recent call last):"))
            ).strip()
        message = reason if not tail or tail in reason else f"{reason}\n--- stderr ---\n{tail}"
        changes.update(status=PlayStatus.FAILED, error_message=message)
    started = play.started_at or now
    return attrs.evolve(play, completed_at=now, duration_ms=max(0, now - started), **changes)


def _write_private(path: Path, data: bytes) -> None:
    """Write a fresh 0600 file: whatever a flow planted at ``path`` (a symlink to a file of
    the host, a hard link) is unlinked first, never written through."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _private_dir(path: Path) -> None:
    """Make ``path`` a real directory; a symlink or file a flow planted there is removed."""
    try:
        path.mkdir()
    except FileExistsError:
        if not path.is_symlink() and path.is_dir():
            return
        path.unlink()
        path.mkdir()


@attrs.define(eq=False)
class PlayRunner:
    """Runs plays: stages files, binds the span socket, spawns and supervises the flow."""

    config: Config
    executor: ProcessExecutorSlot
    tier: SandboxTier
    listener: SpanListenerSlot
    sdk_dir: Path
    boot_script: Path
    pool: WarmPool | None = None
    """Warm processes a run starts in when one is ready (:mod:`._pool`); else it starts cold."""
    workdirs: WorkdirQuota | None = None
    """Caps each run's workdir (:mod:`._workdirs`); None: plain workdirs."""

    def stage(
        self,
        play: Play,
        version: WorkflowVersion,
        replay: dict[str, Any] | None,
        extras: RunExtras | None = None,
    ) -> Launch:
        """Write the play's source, inputs and replay caches; return the unwrapped launch
        (with the version's environment and service sockets from ``extras``)."""
        extras = extras or RunExtras()
        play_dir = self.config.play_dir(play.sid)
        workdir = self.config.play_workdir(play.sid)
        old = os.umask(0o077)
        try:
            self.config.plays_dir.mkdir(parents=True, exist_ok=True)
            _private_dir(play_dir)
            _private_dir(workdir)
        finally:
            os.umask(old)
        source = play_dir / "flow.py"
        inputs = play_dir / "input.json"
        _write_private(source, version.python_source.encode())
        _write_private(inputs, dumps(play.input_data))
        env = {
            ENV_SPAN_SOCK: str(play_dir / "span.sock"),
            ENV_PLAY_SID: play.sid,
            ENV_VERSION_SID: version.sid,
            ENV_SOURCE_FILE: str(source),
            ENV_INPUT_FILE: str(inputs),
            ENV_SANDBOX: self.tier.name,
            ENV_NETWORK: "on" if version.allow_network else "off",
            ENV_SLEEP_EXIT_MS: str(self.config.sleep_exit_ms),
            ENV_MAX_WAIT_MS: str(self.config.max_wait_ms),
        }
        if extras.packages_dir is not None:
            env[ENV_PACKAGES] = str(extras.packages_dir)
        if extras.service_sockets:
            env[ENV_SERVICES] = json.dumps({k: str(v) for k, v in extras.service_sockets.items()})
        if version.entry_flow:
            env[ENV_ENTRY] = version.entry_flow
        if play.parent_span_id:
            env[ENV_PARENT_SPAN] = play.parent_span_id
        replay_file = play_dir / "replay.json"
        if replay:
            _write_private(replay_file, json.dumps(replay).encode())
            env[ENV_REPLAY_FILE] = str(replay_file)
        else:
            replay_file.unlink(missing_ok=True)
        return Launch(
            argv=(self.config.python, "-I", "-S", str(self.boot_script)),
            env=env,
            cwd=workdir,
            play_sid=play.sid,
            play_dir=play_dir,
            workdir=workdir,
            span_socket=play_dir / "span.sock",
            sdk_dir=self.sdk_dir,
            pid_file=play_dir / "flow.pid",
            allow_network=version.allow_network,
            packages_dir=extras.packages_dir,
            service_sockets=dict(extras.service_sockets),
        )

    async def execute(self, launch: Launch, sink: Any, *, timeout_ms: int) -> tuple[ExitOutcome, int]:
        """Bind the span socket, run the launch (in a warm process if one is ready, else
        wrapped by the tier and spawned cold), drain the socket; the workdir capped for the
        run (:mod:`._workdirs`).

        Returns the process outcome and the number of span lines the listener skipped
        (malformed or oversized)."""
        workdirs = self.workdirs or WorkdirQuota(self.config)
        warm = self.pool.take(launch) if self.pool is not None else None
        # A warm sandbox bound a workdir of its own: the run's file system goes there.
        at = warm.launch.workdir if warm is not None and workdirs.size_mb else None
        try:
            async with workdirs.attached(launch.play_sid, at=at) as quota:
                if quota.error:
                    return ExitOutcome(exit_code=None, spawn_error=quota.error), 0
                outcome, stats = await self._execute(launch, sink, timeout_ms=timeout_ms, warm=warm, at=at)
        finally:
            if warm is not None and self.pool is not None:
                self.pool.done(warm)
        if quota.lost:  # the workdir is not what the flow left: a later run must not build on it
            outcome = attrs.evolve(outcome, spawn_error="\n".join(filter(None, (quota.lost, outcome.spawn_error))))
        if quota.reason:  # the run filled its workdir: the likely cause of a failure
            outcome = attrs.evolve(outcome, limit_reason="\n".join(filter(None, (outcome.limit_reason, quota.reason))))
        return outcome, stats.malformed + stats.oversized

    async def _execute(
        self, launch: Launch, sink: Any, *, timeout_ms: int, warm: _Warm | None = None, at: Path | None = None
    ) -> tuple[ExitOutcome, ListenerStatistics]:
        async with trio.open_nursery() as nursery:
            handle = await nursery.start(
                self.listener.serve, launch.play_sid, launch.span_socket, sink
            )
            timeout_s, grace_s = timeout_ms / 1000, self.config.kill_grace_ms / 1000
            outcome = None
            if warm is not None and self.pool is not None:
                outcome = await self.pool.run(
                    warm, launch, timeout_s=timeout_s, kill_grace_s=grace_s, workdir_in_place=at is not None
                )
            if outcome is None:
                if at is not None:  # the run's file system is mounted at the warm workdir: use it
                    launch = attrs.evolve(launch, workdir=at, cwd=at)
                try:
                    wrapped = self.tier.wrap(launch)
                except SandboxUnavailable as exc:  # this launch cannot run here: the play says why
                    outcome = ExitOutcome(exit_code=None, spawn_error=exc.message)
                else:
                    outcome = await self.executor.run(wrapped, timeout_s=timeout_s, kill_grace_s=grace_s)
            with trio.move_on_after(_LISTENER_DRAIN_S):
                await handle.wait_idle()
            nursery.cancel_scope.cancel()
        return outcome, handle.statistics()
