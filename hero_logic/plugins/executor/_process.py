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

Whatever way it ends, anything left in its process group is killed, so a flow leaves no
background process behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import TYPE_CHECKING

import attrs
import trio

from hero_logic.kernel._interfaces import ExitOutcome, Launch

if TYPE_CHECKING:
    from pathlib import Path

    from hero_logic.kernel import Config

__all__ = ["TAIL_BYTES", "ProcessExecutor", "kill_recorded_process", "process_start_time"]

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
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{pid} {process_start_time(pid)}\n")


def kill_recorded_process(path: Path) -> bool:
    """Kill the process group recorded in ``path`` if that very process still runs.

    The start time recorded beside the pid guards against killing an unrelated process that
    reused the pid. Returns True if something was killed.
    """
    try:
        pid_text, _, started = path.read_text().strip().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):
        return False
    if not started or process_start_time(pid) != started:
        return False
    _kill_group(pid, signal.SIGKILL)
    return True


async def _terminate(proc: trio.Process, grace_s: float) -> None:
    """TERM the process group, wait up to ``grace_s``, then KILL it; returns once reaped."""
    _kill_group(proc.pid, signal.SIGTERM)
    with trio.move_on_after(grace_s):
        await proc.wait()
    _kill_group(proc.pid, signal.SIGKILL)
    await proc.wait()


@attrs.define(eq=False)
class ProcessExecutor:
    """Spawns flow processes (entry point ``process`` of ``hero_logic.executor``)."""

    @classmethod
    def from_config(cls, config: Config) -> ProcessExecutor:
        """The executor; it needs no settings."""
        return cls()

    def kill_leftover(self, pid_file: Path) -> bool:
        """Kill a flow process a previous service instance left running (see
        :func:`kill_recorded_process`)."""
        return kill_recorded_process(pid_file)

    async def run(self, launch: Launch, *, timeout_s: float, kill_grace_s: float) -> ExitOutcome:
        """Run ``launch`` to its end; see the module docstring for the four ways it ends."""
        try:
            proc = await trio.lowlevel.open_process(
                list(launch.argv),
                env=dict(launch.env),
                cwd=os.fspath(launch.cwd),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                close_fds=True,
                preexec_fn=launch.preexec,
            )
        except OSError as exc:
            return ExitOutcome(
                exit_code=None, spawn_error=f"could not start {launch.argv[0]!r}: {exc}"
            )
        if launch.pid_file is not None:
            _record_pid(launch.pid_file, proc.pid)
        stdout, stderr = _Tail(), _Tail()
        timed_out = False
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_pump, proc.stdout, stdout)
                nursery.start_soon(_pump, proc.stderr, stderr)
                with trio.move_on_after(timeout_s) as deadline:
                    await proc.wait()
                if deadline.cancelled_caught:
                    timed_out = True
                    await _terminate(proc, kill_grace_s)
                _kill_group(proc.pid, signal.SIGKILL)  # leftovers of the flow's process group
                # The pipes reach EOF once every holder is gone; bound the wait regardless.
                nursery.cancel_scope.deadline = trio.current_time() + _DRAIN_AFTER_EXIT_S
        finally:
            if proc.returncode is None:
                with trio.CancelScope(shield=True):
                    await _terminate(proc, kill_grace_s)
        return ExitOutcome(
            exit_code=proc.returncode,
            timed_out=timed_out,
            stderr_tail=stderr.text(),
            stdout_tail=stdout.text(),
        )
