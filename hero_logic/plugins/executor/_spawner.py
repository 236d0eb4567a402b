"""The service's side of the spawner (:mod:`._spawner_main`): spawn requests and exit statuses.

One spawner process per executor, started on first use from the Trio thread (its
parent-death signal follows the thread that forked it) and stopped by :meth:`Spawner.close`.
A spawn sends the argv, environment, working directory and set-up of the child (data, see
:class:`~hero_logic.kernel.ChildSetup`) with its descriptors over a ``SOCK_SEQPACKET`` socket
and waits for the answer; nothing of the service is forked. There is no reader task: whichever
caller waits for a message reads the socket and files what arrives for the others (so a caller
cancelled mid-read hands the reading over, and a shielded clean-up can still wait for an exit
while the kernel's nursery is being cancelled).

If the spawner dies (it dies with the service, or by a bug), its children die with it
(``PR_SET_PDEATHSIG``): their waits end with ``-SIGKILL`` and the next spawn starts a new one.
"""

from __future__ import annotations

import array
import json
import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["SPAWNER_MAIN", "SpawnedChild", "Spawner", "SpawnerLost"]

SPAWNER_MAIN = Path(__file__).with_name("_spawner_main.py")
_MAX_ANSWER = 64 * 1024
_LOST = -int(signal.SIGKILL)


class SpawnerLost(OSError):
    """The spawner process is gone (it died, or was closed)."""


class SpawnedChild:
    """A flow process the spawner started; awaited through the spawner's exit message."""

    def __init__(self, spawner: Spawner, request_id: int, pid: int, generation: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._spawner = spawner
        self._id = request_id
        self._generation = generation

    @property
    def orphaned(self) -> bool:
        """Its spawner died (a later one took over, or the current one has exited): the
        process dies with it (a namespace tier's inner processes a moment later)."""
        return self._spawner.gone(self._generation)

    async def wait(self) -> int:
        """Wait until the process has ended; its return code (negative: a signal)."""
        if self.returncode is None:
            answer = await self._spawner._wait_for(("exit", self._id), self._generation)
            self.returncode = int(answer.get("exit", _LOST))
        return self.returncode

    def close(self) -> None:
        """Nothing to release (the spawner holds the process)."""


class Spawner:
    """Starts flow processes through a small helper process."""

    def __init__(self, python: str) -> None:
        self.python = python
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: trio.socket.SocketType | None = None
        self._ids = 0
        self._inbox: dict[tuple[str, int], dict[str, Any]] = {}
        self._waiting: set[tuple[str, int]] = set()
        self._reading = False
        self._changed = trio.Event()
        self._lost = False
        self._generation = 0
        """Which spawner process this is (a child of a dead one died with it)."""
        self.spawned = 0

    @property
    def pid(self) -> int | None:
        """The spawner's pid while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def gone(self, generation: int) -> bool:
        """Whether spawner ``generation`` has died (checked without waiting)."""
        if generation != self._generation or self._lost:
            return True
        return self._proc is None or self._proc.poll() is not None

    def _start(self) -> None:
        """Start the spawner (from the Trio thread: its parent-death signal follows this thread)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            argv = [self.python, "-I", "-S", str(SPAWNER_MAIN), str(os.getpid())]
            self._proc = _popen(argv, theirs.fileno())
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._sock = trio.socket.from_stdlib_socket(ours)
        self._lost = False
        self._generation += 1

    async def spawn(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: str,
        fds: Sequence[int],
        targets: Sequence[int],
        setup: Mapping[str, Any],
        *,
        close_fds: bool = True,
    ) -> SpawnedChild:
        """Start ``argv`` with descriptors ``fds`` placed at ``targets`` in the child; raises
        OSError with the child's own reason when its set-up or ``execve`` failed."""
        if self._sock is None or self._lost:
            self._reap()
            self._start()
        assert self._sock is not None
        self._ids += 1
        request_id = self._ids
        request = {
            "id": request_id,
            "argv": list(argv),
            "env": dict(env),
            "cwd": cwd,
            "targets": list(targets),
            "setup": dict(setup),
            "close_fds": close_fds,
        }
        data = json.dumps(request).encode()
        try:
            await self._sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        except OSError as exc:
            self._lose()
            msg = f"the spawner is gone ({exc})"
            raise SpawnerLost(msg) from None
        generation = self._generation
        answer = await self._wait_for(("spawn", request_id), generation)
        if "pid" not in answer:
            raise OSError(str(answer.get("error", "the spawner gave no reason")))
        self.spawned += 1
        return SpawnedChild(self, request_id, int(answer["pid"]), generation)

    async def _wait_for(self, key: tuple[str, int], generation: int) -> dict[str, Any]:
        """The message filed under ``key`` from spawner ``generation``, reading the socket
        while nobody else does. A spawner that died sends nothing more: its answers are lost."""
        self._waiting.add(key)
        try:
            while True:
                if key in self._inbox:
                    return self._inbox.pop(key)
                if self._lost or generation != self._generation:
                    if key[0] == "spawn":
                        msg = "the spawner died before it started the process"
                        raise SpawnerLost(msg)
                    return {"exit": _LOST}
                if self._reading:
                    changed = self._changed
                    await changed.wait()
                    continue
                self._reading = True
                try:
                    await self._read_one()
                finally:
                    self._reading = False
                    changed, self._changed = self._changed, trio.Event()
                    changed.set()
        finally:
            self._waiting.discard(key)

    async def _read_one(self) -> None:
        sock, generation = self._sock, self._generation
        assert sock is not None
        try:
            data = await sock.recv(_MAX_ANSWER)
        except (OSError, trio.ClosedResourceError):
            data = b""
        if generation != self._generation:  # a new spawner took over meanwhile: this one's end
            return  # says nothing of it (marking it lost would close the new one's socket)
        if not data:
            self._lose()
            return
        message = json.loads(data)
        kind = "exit" if "exit" in message else "spawn"
        self._inbox[(kind, int(message["id"]))] = message

    def _lose(self) -> None:
        self._lost = True
        if self._sock is not None:
            self._sock.close()

    def _reap(self) -> None:
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def close(self) -> None:
        """Stop the spawner (any child still running dies with it)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._lost = True
        self._reap()
        changed, self._changed = self._changed, trio.Event()
        changed.set()


def _popen(argv: list[str], sock_fd: int) -> subprocess.Popen[bytes]:
    # No preexec function: subprocess can vfork, so this never copies the service's memory.
    return subprocess.Popen(
        argv,
        stdin=sock_fd,
        stdout=subprocess.DEVNULL,
        close_fds=True,
        start_new_session=True,
        env={},
    )
