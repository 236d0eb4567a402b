"""Warm flow processes on the executor's side: spawned idle, handed one play, then supervised.

A warm process's standard input is one end of a Unix socket pair; the executor holds the
other. The process writes :data:`~hero_logic.sdk.WARM_READY` there once its interpreter and
the SDK are up, then waits for its assignment (``hero_tracing._warm``). Giving it a play is
one ``send``; from then on it is supervised exactly as a cold process (``_process._supervise``):
the same wall clock, cancellation, TERM/grace/KILL and scope clean-up. A warm process whose
socket reports end-of-file has died (or was killed): it is never handed a play.
"""

from __future__ import annotations

import os
import signal
import socket
from typing import TYPE_CHECKING

import trio

from hero_logic.kernel import WarmProcessLost
from hero_logic.sdk import WARM_READY, encode_assignment

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from hero_logic.kernel import IdleProcess, Launch, ProcessScope, WarmAssignment

    from ._child import Child, Started

__all__ = ["IdleFlowProcess", "spawn_idle", "take_play"]

_STDERR_WHILE_IDLE = 16 * 1024


class IdleFlowProcess:
    """A warm flow process waiting for its play."""

    def __init__(
        self,
        child: Child,
        out: trio.lowlevel.FdStream,
        err: trio.lowlevel.FdStream,
        control: socket.socket,
        scope: ProcessScope | None,
    ) -> None:
        self.child = child
        self.pid = child.pid
        self.out = out
        self.err = err
        self._raw = control
        self.control = trio.socket.from_stdlib_socket(control)
        self.scope = scope
        self.ready = False
        self.taken = False
        self._closed = False
        self._stderr = b""

    async def wait_ready(self) -> bool:
        """Wait for its ready line; False if it hung up first (it died: see its stderr)."""
        data = b""
        while not data.endswith(b"\n"):
            try:
                chunk = await self.control.recv(256)
            except OSError:
                chunk = b""
            if not chunk:
                await self._read_stderr()
                return False
            data += chunk
        self.ready = data == WARM_READY
        return self.ready

    async def _read_stderr(self) -> None:
        with trio.move_on_after(0.5):
            while len(self._stderr) < _STDERR_WHILE_IDLE:
                chunk = await self.err.receive_some(4096)
                if not chunk:
                    break
                self._stderr += chunk

    def alive(self) -> bool:
        """False once its socket reports end-of-file (it has ended), it was closed, or the
        spawner that started it died (it dies with it)."""
        if self._closed or self.child.returncode is not None or self.child.orphaned:
            return False
        try:
            data = self._raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True
        except OSError:
            return False
        return bool(data)

    def stderr_tail(self) -> str:
        """What it wrote on stderr before it died (read by :meth:`wait_ready`)."""
        return self._stderr.decode(errors="replace")[-4000:]

    async def aclose(self) -> None:
        """Kill it and its scope, reap it, release its descriptors (never handed a play)."""
        if self._closed:
            return
        self._closed = True
        with trio.CancelScope(shield=True):
            self.control.close()
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if self.scope is not None:
                self.scope.kill_all()
            await self.child.wait()
            if self.scope is not None:
                await self.scope.aclose()
            self.child.close()
            await self.out.aclose()
            await self.err.aclose()


async def spawn_idle(start: Callable[[Launch, int], Awaitable[Started]], launch: Launch) -> IdleFlowProcess:
    """Start a warm process with a socket pair end as its standard input."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            child, out, err = await start(launch, theirs.fileno())
        finally:
            theirs.close()
            for fd in launch.pass_fds:
                os.close(fd)
    except BaseException:
        ours.close()
        if launch.scope is not None:
            with trio.CancelScope(shield=True):
                await launch.scope.aclose()
        raise
    return IdleFlowProcess(child, out, err, ours, launch.scope)


async def take_play(
    idle: IdleProcess, assignment: WarmAssignment
) -> tuple[Child, trio.lowlevel.FdStream, trio.lowlevel.FdStream, ProcessScope | None]:
    """Send ``idle`` its assignment; what supervising it needs. WarmProcessLost if it is gone."""
    assert isinstance(idle, IdleFlowProcess)
    if idle.taken or not idle.alive():
        msg = f"the warm process {idle.pid} ended before it was given a play"
        raise WarmProcessLost(msg)
    idle.taken = True
    line = encode_assignment(dict(assignment.env), assignment.cwd)
    try:
        with trio.CancelScope(shield=True):  # one small send: never left half-written
            while line:
                sent = await idle.control.send(line)
                line = line[sent:]
    except OSError as exc:
        with trio.CancelScope(shield=True):
            await idle.aclose()
        msg = f"the warm process {idle.pid} could not be given its play: {exc}"
        raise WarmProcessLost(msg) from None
    idle.control.close()
    return idle.child, idle.out, idle.err, idle.scope
