"""The built-in executor: one real OS process per flow run, supervised under Trio.

The process starts in a new session (its own process group), with stdin closed, stdout and
stderr captured (the last 64 KiB of each kept), no inherited file descriptors, and the
environment and argv the sandbox tier produced. It ends in one of four ways:

* it exits by itself → its exit code;
* the wall clock runs out → TERM to the whole group, ``kill_grace_s`` to exit, then KILL →
  ``timed_out``;
* the caller is cancelled (``play_cancel``, service shutdown) → the same TERM/grace/KILL under a
  shielded scope, then Cancelled propagates;
* it cannot be spawned → ``spawn_error``.

Whatever way it ends, anything left in its process group is killed, and so is everything in
the launch's :class:`~hero_logic.kernel._interfaces.ProcessScope` (the sandbox tier's cgroup
or PID namespace), which catches what a process group cannot: a ``setsid`` grandchild.

How it is spawned. A launch whose tier described its set-up as data (``Launch.setup``) is
started by the executor's *spawner* (:mod:`._spawner`), a small helper process that forks and
execs for the service: the service is never forked, so a spawn costs its event loop a
``sendmsg`` instead of 5-20 ms of copying page tables and waiting for the child's set-up (a
cgroup attach may wait for an RCU grace period). A launch with only a ``preexec`` function,
or an executor built without a spawner (``ProcessExecutor()``), forks the service with
``subprocess``. Either way the fork happens in a thread that lives as long as the service
(the spawner's only thread, or the thread running Trio, never a worker thread): the kernel
sends the parent-death signal (``PR_SET_PDEATHSIG``, bwrap's ``--die-with-parent``) when the
*thread* that forked the child exits, and Trio's worker threads exit after 10 s idle, which
would kill a long play.

Warm processes (:mod:`._idle`) are spawned the same way before their play is known, and are
supervised, once given a play, by the very code that supervises a cold one.
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import TYPE_CHECKING

import attrs
import trio

from hero_logic.kernel import ExitOutcome, IdleProcess, Launch, ProcessScope, WarmAssignment

from ._idle import spawn_idle, take_play
from ._spawner import Spawner

if TYPE_CHECKING:
    from pathlib import Path

    from hero_logic.kernel import Config

    from ._child import Child, Started

__all__ = ["TAIL_BYTES", "ProcessExecutor", "kill_recorded_process", "process_start_time"]

SPAWN_CLOSE_FDS = True
"""The spawner's child closes every descriptor it was not given (tests weaken this)."""

TAIL_BYTES = 64 * 1024
"""How much of the end of stdout and stderr is kept."""

_DRAIN_AFTER_EXIT_S = 1.0


class _Tail:
    """The last TAIL_BYTES bytes written to a stream."""

    def __init__(self) -> None:
        self.data = bytearray()

    def add(self, chunk: bytes | bytearray) -> None:
        self.data += chunk
        if len(self.data) > 2 * TAIL_BYTES:
            del self.data[:-TAIL_BYTES]

    def text(self) -> str:
        return bytes(self.data[-TAIL_BYTES:]).decode("utf-8", "replace")


async def _pump(stream: trio.abc.ReceiveStream | None, tail: _Tail) -> None:
    if stream is None:
        return
    async with stream:
        while chunk := await stream.receive_some(65536):
            tail.add(chunk)


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def process_start_time(pid: int) -> str:
    """The kernel's start time of process ``pid`` (clock ticks since boot), or ""."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    return stat.rsplit(b")", 1)[-1].split()[19].decode()


def _record_pid(path: Path, pid: int) -> None:
    path.unlink(missing_ok=True)  # never write through a link a flow planted
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{pid} {process_start_time(pid)}\n")


def _read_nofollow(path: Path) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        return f.read(256).decode("ascii", "replace")


def kill_recorded_process(path: Path) -> bool:
    """Kill the process group recorded in ``path`` if that very process still runs.

    The start time recorded beside the pid guards against killing an unrelated process that
    reused the pid. Returns True if something was killed.
    """
    try:
        pid_text, _, started = _read_nofollow(path).strip().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):
        return False
    if not started or process_start_time(pid) != started:
        return False
    _kill_group(pid, signal.SIGKILL)
    return True


class _Child:
    """A spawned flow process, awaited through a pidfd (no thread, no SIGCHLD handler)."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.pid = popen.pid
        self._pidfd = os.pidfd_open(popen.pid)

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    @property
    def orphaned(self) -> bool:
        return False  # the service started it itself

    async def wait(self) -> int:
        if self.popen.returncode is None:
            await trio.lowlevel.wait_readable(self._pidfd)
            self.popen.wait()
        return self.popen.returncode

    def close(self) -> None:
        os.close(self._pidfd)


def _spawn(launch: Launch, stdin: int | None = None) -> Started:
    """Start ``launch`` from this thread (a fork of the service); its stdout and stderr are
    pipes read by Trio; ``stdin`` a descriptor, or /dev/null."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        popen = subprocess.Popen(
            list(launch.argv),
            env=dict(launch.env),
            cwd=os.fspath(launch.cwd),
            stdin=subprocess.DEVNULL if stdin is None else stdin,
            stdout=out_w,
            stderr=err_w,
            start_new_session=True,
            close_fds=True,
            pass_fds=launch.pass_fds,
            preexec_fn=launch.preexec,
        )
        child = _Child(popen)
    except BaseException:
        os.close(out_r)
        os.close(err_r)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
    return child, trio.lowlevel.FdStream(out_r), trio.lowlevel.FdStream(err_r)


async def _spawn_through(spawner: Spawner, launch: Launch, stdin: int | None = None) -> Started:
    """Start ``launch`` through the spawner: the service's event loop is never blocked by a
    fork; the child applies ``launch.setup`` (cgroups, rlimits, view, capabilities, uid,
    parent-death signal) as the tier's preexec function would."""
    assert launch.setup is not None
    request_setup = launch.setup.wire()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY) if stdin is None else None
    try:
        fds = [stdin if null is None else null, out_w, err_w, *launch.pass_fds]
        # Shielded: once asked, the spawner starts the child, and a caller cancelled before
        # the answer would leave it running unseen. The answer comes within milliseconds.
        with trio.CancelScope(shield=True):
            child = await spawner.spawn(
                launch.argv,
                launch.env,
                os.fspath(launch.cwd),
                [fd for fd in fds if fd is not None],
                [0, 1, 2, *launch.pass_fds],
                request_setup,
                close_fds=SPAWN_CLOSE_FDS,
            )
    except BaseException:
        os.close(out_r)
        os.close(err_r)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
        if null is not None:
            os.close(null)
    return child, trio.lowlevel.FdStream(out_r), trio.lowlevel.FdStream(err_r)


def _kill_everything(child: Child, scope: ProcessScope | None) -> None:
    _kill_group(child.pid, signal.SIGKILL)
    if scope is not None:
        scope.kill_all()


async def _terminate(child: Child, scope: ProcessScope | None, grace_s: float) -> None:
    """TERM the process group, wait up to ``grace_s``, then KILL it all; returns once reaped."""
    _kill_group(child.pid, signal.SIGTERM)
    with trio.move_on_after(grace_s):
        await child.wait()
    _kill_everything(child, scope)
    await child.wait()


async def _supervise(
    child: Child,
    out: trio.lowlevel.FdStream,
    err: trio.lowlevel.FdStream,
    scope: ProcessScope | None,
    *,
    pid_file: Path | None,
    timeout_s: float,
    kill_grace_s: float,
) -> ExitOutcome:
    """Supervise a started process to its end (see the module docstring for the ways it
    ends); the same for a cold process and for a warm one that has just taken its play."""
    stdout, stderr = _Tail(), _Tail()
    timed_out = False
    limit_reason = ""
    try:
        if pid_file is not None:
            try:
                _record_pid(pid_file, child.pid)
            except OSError:
                pass  # recovery then cannot find it; the scope still contains it
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_pump, out, stdout)
            nursery.start_soon(_pump, err, stderr)
            with trio.move_on_after(timeout_s) as deadline:
                await child.wait()
            if deadline.cancelled_caught:
                timed_out = True
                await _terminate(child, scope, kill_grace_s)
            _kill_everything(child, scope)  # leftovers: its process group, its scope
            # The pipes reach EOF once every holder is gone; bound the wait regardless.
            nursery.cancel_scope.deadline = trio.current_time() + _DRAIN_AFTER_EXIT_S
        exit_code = child.returncode if scope is None else scope.exit_code(child.returncode)
        if scope is not None and not timed_out:
            limit_reason = scope.limit_reason(exit_code)
    finally:
        with trio.CancelScope(shield=True):
            if child.returncode is None:
                await _terminate(child, scope, kill_grace_s)
            if scope is not None:
                await scope.aclose()
        child.close()
    return ExitOutcome(
        exit_code=exit_code,
        timed_out=timed_out,
        stderr_tail=stderr.text(),
        stdout_tail=stdout.text(),
        limit_reason=limit_reason,
    )


@attrs.define(eq=False)
class ProcessExecutor:
    """Spawns flow processes (entry point ``process`` of ``hero_logic.executor``).

    Built by the kernel (``from_config``) it starts them through a spawner, which it stops in
    :meth:`close`; ``ProcessExecutor()`` forks the service for each (no helper process)."""

    spawner: Spawner | None = None

    @classmethod
    def from_config(cls, config: Config) -> ProcessExecutor:
        """The executor, with a spawner running ``config.python`` (started on first use)."""
        return cls(spawner=Spawner(config.python))

    def close(self) -> None:
        """Stop the spawner (the kernel is closing; its flows have ended)."""
        if self.spawner is not None:
            self.spawner.close()

    def kill_leftover(self, pid_file: Path) -> bool:
        """Kill a flow process a previous service instance left running (see
        :func:`kill_recorded_process`)."""
        return kill_recorded_process(pid_file)

    async def _start(self, launch: Launch, stdin: int | None = None) -> Started:
        if self.spawner is not None and launch.setup is not None:
            return await _spawn_through(self.spawner, launch, stdin)
        if stdin is None:
            return _spawn(launch)
        return _spawn(launch, stdin)

    async def run(self, launch: Launch, *, timeout_s: float, kill_grace_s: float) -> ExitOutcome:
        """Run ``launch`` to its end; see the module docstring for the four ways it ends."""
        scope = launch.scope
        try:
            try:
                child, out, err = await self._start(launch)
            finally:
                for fd in launch.pass_fds:
                    os.close(fd)
        except (OSError, subprocess.SubprocessError) as exc:
            if scope is not None:
                with trio.CancelScope(shield=True):
                    await scope.aclose()
            return ExitOutcome(
                exit_code=None, spawn_error=f"could not start {launch.argv[0]!r}: {exc}"
            )
        return await _supervise(
            child, out, err, scope, pid_file=launch.pid_file, timeout_s=timeout_s, kill_grace_s=kill_grace_s
        )

    async def spawn_idle(self, launch: Launch) -> IdleProcess:
        """Start a warm process (its launch wrapped by the tier's ``wrap_warm``)."""
        return await spawn_idle(self._start, launch)

    async def run_idle(
        self,
        idle: IdleProcess,
        assignment: WarmAssignment,
        *,
        pid_file: Path | None,
        timeout_s: float,
        kill_grace_s: float,
    ) -> ExitOutcome:
        """Give the warm process ``idle`` its play, then supervise it as :meth:`run` does."""
        child, out, err, scope = await take_play(idle, assignment)
        return await _supervise(
            child, out, err, scope, pid_file=pid_file, timeout_s=timeout_s, kill_grace_s=kill_grace_s
        )
