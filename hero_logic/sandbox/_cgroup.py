"""Per-play cgroups: a process limit, a memory limit and a way to kill everything a play started.

A process group is no containment boundary (a flow's grandchild can call ``setsid``); a cgroup
is. Where the service may create cgroups (it runs as root, with the ``pids`` and ``memory``
controllers writable, cgroup v1 or v2), each play runs in its own::

    <controller>/<the service's own cgroup>/hero_logic-<service tag>/<play sid>/

The child joins it between fork and exec (see :func:`~._policy.child_setup`), so every process
the flow ever starts is counted against ``pids.max`` and the memory limit and is killed at the
end of the run, however it detached itself.

A *watchdog* process, started once per service, holds the read end of a pipe whose write end
only the service holds. When the service dies (``kill -9`` included) the pipe reaches EOF and the
watchdog kills every process left in the service's play cgroups and removes them. A restarted
service sweeps what a dead predecessor left the same way. While the service lives, the watchdog
also reads each play cgroup's ``pids.events`` every :data:`LIMIT_POLL_S` seconds (cgroup v1 and
v2 both count there the forks the process limit refused): a play whose limit refused a fork is
killed at once, so a fork bomb held at its limit ends within a fraction of a second, and the
play fails with the limit's reason (:meth:`PlayCgroup.limit_reason`), instead of spinning
until its wall clock runs out.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import trio

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._policy import SandboxLimits

__all__ = ["CgroupTree", "PlayCgroup"]

log = logging.getLogger("hero_logic.sandbox")

CGROUP_ROOT = Path("/sys/fs/cgroup")
_CONTROLLERS = ("pids", "memory")
_REMOVE_WAIT_S = 5.0

LIMIT_POLL_S = 0.2
"""How often the watchdog reads the play cgroups' ``pids.events``."""

_WATCHDOG = """
import os, select, signal, sys, time
poll_s = float(sys.argv[1])
parents = sys.argv[2:]

def kill_listed(play):
    try:
        pids = open(os.path.join(play, "cgroup.procs")).read().split()
    except OSError:
        pids = []
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            pass

def plays():
    for parent in parents:
        try:
            names = os.listdir(parent)
        except OSError:
            continue
        for name in names:
            play = os.path.join(parent, name)
            if os.path.isdir(play):
                yield play

def at_process_limit(play):
    try:
        with open(os.path.join(play, "pids.events")) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == "max" and int(value or 0) > 0:
                    return True
    except (OSError, ValueError):
        pass
    return False

# While the service lives: a play whose process limit refused a fork is ended at once (a
# fork bomb held at its limit would otherwise spin until its wall clock runs out).
while True:
    ready, _, _ = select.select([0], [], [], poll_s) if poll_s > 0 else select.select([0], [], [])
    if ready:
        if not os.read(0, 4096):
            break  # EOF: the service is gone
        continue
    for play in plays():
        if at_process_limit(play):
            kill_listed(play)

# The service is gone: kill what is left in every play cgroup and remove the tree.
for _ in range(100):
    busy = False
    for play in plays():
        kill_listed(play)
        try:
            os.rmdir(play)
        except OSError:
            busy = True
    if not busy:
        for parent in parents:
            try:
                os.rmdir(parent)
            except OSError:
                pass
        break
    time.sleep(0.05)
"""


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _counter(text: str, key: str) -> int:
    """The value of ``key N`` in a flat-keyed cgroup file such as ``pids.events``."""
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def _own_cgroups(text: str) -> dict[str, str]:
    """``/proc/self/cgroup`` parsed: controller (``""`` for v2) → path."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(","):
            out[controller] = parts[2]
    return out


def _kill_listed(procs_file: Path) -> int:
    """SIGKILL every pid listed in ``procs_file``; how many were listed."""
    pids = _read(procs_file).split()
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    return len(pids)


@attrs.define(eq=False)
class PlayCgroup:
    """The cgroup directories (one per controller) of one play."""

    dirs: tuple[Path, ...]
    limits: SandboxLimits
    v2: bool = False

    @property
    def procs_files(self) -> tuple[str, ...]:
        """The ``cgroup.procs`` files the child writes itself into."""
        return tuple(str(d / "cgroup.procs") for d in self.dirs)

    def kill_all(self) -> None:
        """SIGKILL every process in the play's cgroups."""
        for d in self.dirs:
            _kill_listed(d / "cgroup.procs")

    def _file(self, name: str) -> Path | None:
        for d in self.dirs:
            if (d / name).exists():
                return d / name
        return None

    def limit_reason(self) -> str:
        """Which cgroup limits the play hit, in words (the process limit first: a fork bomb
        usually exhausts memory too), or ""."""
        reasons = []
        pids_file = self._file("pids.events")
        if pids_file is not None and _counter(_read(pids_file), "max") > 0:
            reasons.append(
                f"the play reached its limit of {self.limits.pids} processes and threads: the "
                "flow could not start more (a fork bomb?); raise the sandbox's pids if it needs more"
            )
        memory_file = self._file("memory.events" if self.v2 else "memory.oom_control")
        if memory_file is not None and _counter(_read(memory_file), "oom_kill") > 0:
            reasons.append(
                f"the play reached its memory limit of {self.limits.memory_mb} MiB and the kernel "
                "killed the flow (out of memory): use less memory or raise the sandbox's memory_mb"
            )
        return "\n".join(reasons)

    async def remove(self) -> None:
        """Kill what is left, wait until the cgroups are empty, remove them. The flow's last
        processes usually leave within a millisecond or two of its exit (a namespace tier's
        init reaping them), so the first looks come quickly: the play settles after this."""
        pause = 0.0005
        with trio.move_on_after(_REMOVE_WAIT_S):
            while True:
                listed = sum(_kill_listed(d / "cgroup.procs") for d in self.dirs)
                if not listed:
                    break
                await trio.sleep(pause)
                pause = min(0.01, pause * 2)
        for d in self.dirs:
            try:
                d.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not remove the play cgroup %s: %s", d, exc)


@attrs.define(eq=False)
class CgroupTree:
    """The service's subtree of per-play cgroups, one parent directory per controller."""

    parents: tuple[Path, ...]
    v2: bool = False
    _watchdog: subprocess.Popen[bytes] | None = None
    _watchdog_pipe: int | None = None

    @classmethod
    def probe(cls, tag: str, *, root: Path = CGROUP_ROOT, proc_cgroup: str = "") -> CgroupTree | None:
        """The tree for the service tagged ``tag`` if cgroups with the pids and memory
        controllers can be made here, else None (not root, controllers missing or read-only)."""
        if os.geteuid() != 0:
            return None
        own = _own_cgroups(proc_cgroup or _read(Path("/proc/self/cgroup")))
        name = f"hero_logic-{tag}"
        v2_controllers = _read(root / "cgroup.controllers").split()
        if all(c in v2_controllers for c in _CONTROLLERS) and "" in own:
            parent = root / own[""].lstrip("/") / name
            return cls._made((parent,), v2=True)
        parents = []
        for controller in _CONTROLLERS:
            mount = root / controller
            if controller not in own or not (mount / "cgroup.procs").exists():
                return None
            parents.append(mount / own[controller].lstrip("/") / name)
        return cls._made(tuple(parents), v2=False)

    @classmethod
    def _made(cls, parents: tuple[Path, ...], *, v2: bool) -> CgroupTree | None:
        try:
            for parent in parents:
                parent.mkdir(exist_ok=True)
            if v2:
                (parents[0] / "cgroup.subtree_control").write_text("+pids +memory")
        except OSError as exc:
            log.info("per-play cgroups are not available here (%s): %s", parents[0], exc)
            return None
        return cls(parents=parents, v2=v2)

    @staticmethod
    def tag_for(state_dir: Path) -> str:
        """A short tag naming one service instance's subtree (its state directory's hash)."""
        return hashlib.sha1(str(state_dir).encode()).hexdigest()[:12]

    def create(self, play_sid: str, limits: SandboxLimits) -> PlayCgroup:
        """A fresh cgroup for one run of ``play_sid`` with its limits written."""
        dirs = tuple(parent / play_sid for parent in self.parents)
        cgroup = PlayCgroup(dirs=dirs, limits=limits, v2=self.v2)
        memory = str(limits.memory_mb * 1024 * 1024)
        for d in dirs:
            if d.exists():  # left by a run that could not remove it: empty it first
                _kill_listed(d / "cgroup.procs")
            else:
                d.mkdir()
            if self.v2:
                (d / "pids.max").write_text(str(limits.pids))
                (d / "memory.max").write_text(memory)
                with contextlib.suppress(OSError):
                    (d / "memory.swap.max").write_text("0")
            elif (d / "pids.max").exists():
                (d / "pids.max").write_text(str(limits.pids))
            else:
                (d / "memory.limit_in_bytes").write_text(memory)
                with contextlib.suppress(OSError):
                    (d / "memory.memsw.limit_in_bytes").write_text(memory)
        return cgroup

    def leftovers(self) -> Iterable[Path]:
        """Play cgroups that exist now (from a dead predecessor, at start-up)."""
        for parent in self.parents:
            with contextlib.suppress(OSError):
                yield from (p for p in parent.iterdir() if p.is_dir())

    def sweep(self) -> int:
        """Kill and remove play cgroups a dead predecessor left; how many there were."""
        found = list(self.leftovers())
        for d in found:
            _kill_listed(d / "cgroup.procs")
        for d in found:
            for _ in range(100):
                try:
                    d.rmdir()
                    break
                except OSError:
                    _kill_listed(d / "cgroup.procs")
                    os.sched_yield()
        return len({d.name for d in found})

    def start_watchdog(self, python: str, *, poll_s: float = LIMIT_POLL_S) -> None:
        """Start the process that ends a play held at its process limit (every ``poll_s``;
        0: never) and empties and removes the tree once the service is gone."""
        read_end, write_end = os.pipe()
        try:
            self._watchdog = subprocess.Popen(
                [python, "-I", "-S", "-c", _WATCHDOG, str(poll_s), *map(str, self.parents)],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
                env={},
            )
        except OSError:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        self._watchdog_pipe = write_end

    def close(self) -> None:
        """Stop the watchdog (it removes the now empty tree) and reap it."""
        if self._watchdog_pipe is not None:
            os.close(self._watchdog_pipe)
            self._watchdog_pipe = None
        if self._watchdog is not None:
            try:
                self._watchdog.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._watchdog.kill()
                self._watchdog.wait()
            self._watchdog = None
        if self._watchdog is None:
            for parent in self.parents:
                with contextlib.suppress(OSError):
                    parent.rmdir()

