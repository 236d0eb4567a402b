"""Warm starts: flow processes started before their play, so a play or a resume starts at once.

A *warm process* is a flow process the sandbox tier wrapped like any other (same environment
rules, rlimits, cgroup, namespaces, seccomp) from a launch of its own: fresh play and work
directories under ``state_dir/warm/w<N>/``, the command ``python -I -S hero_warm.py``. It starts
in the background, imports the SDK and waits on its standard input. When a play is to run, the
runner stages it as for a cold start and :meth:`WarmPool.run` hands it to a ready process (the
tier's ``assign_warm``: the play's files and workdir made visible, its environment), then the
executor supervises it exactly as a cold process: wall clock, cancellation, TERM/grace/KILL,
scope. Each process serves one play run, then exits; nothing of one play reaches another.

* **Per environment.** A play with packages needs its environment bound when the sandbox is
  built: processes are kept per environment (``Launch.packages_dir``; ``None`` for the standard
  library). The plain pool is always kept; an environment's pool once one of its plays ran, until
  it has gone unused for ``--warm-pool-max-idle``. A process is handed only a play of its own
  environment (and only while that directory is the one it bound).
* **Refill.** One task starts processes one after another (so a refill burst uses at most one
  core's worth of start-ups), each only once the previous one said it is ready. Up to the
  tier's minimum (``--warm-pool-min``) it refills at once, even while plays run (resting as
  long as each start took, so it never takes more than half a core from them); beyond it, up
  to ``--warm-pool``, only while no play holds a run slot: a start-up beside a running play
  slows it (on two cores, a warm play ran 10-15 ms slower beside a refill).
* **Falls back to cold.** No ready process (a miss), a play that may not run warm (the network,
  service sockets: bound at spawn), a process that died waiting, or a tier that cannot hand it
  the play: the play starts cold, as it would with the pool disabled (``--warm-pool 0``).
* **Recycled.** A process unused for ``--warm-pool-max-idle`` seconds is replaced; one that
  died while waiting is dropped (its stderr logged). Start failures back off (up to a minute).
* **Shutdown.** The pool kills its processes when the kernel closes. If the service is killed
  they die with it: each is a child of the executor's spawner, which dies with the service, and
  each has its parent-death signal set; the cgroup watchdog catches the rest.
"""

from __future__ import annotations

import collections
import logging
import os
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ._config import warm_pool_minimum
from ._copy_tree import remove_tree
from ._errors import HeroLogicError
from ._interfaces import Launch, WarmExecutor, WarmProcessLost, WarmTier

if TYPE_CHECKING:
    from pathlib import Path

    from ._capacity import FairCapacity
    from ._config import Config
    from ._interfaces import ExitOutcome, IdleProcess, ProcessExecutorSlot, SandboxTier
    from ._workdirs import WorkdirQuota

__all__ = ["PoolStatistics", "WarmPool"]

log = logging.getLogger("hero_logic.kernel")

READY_TIMEOUT_S = 30.0
"""How long a starting process may take to say it is ready before it is killed."""
MAX_BACKOFF_S = 60.0
_CHECK_EVERY_S = 5.0
"""How often ready processes are checked for age and life while nothing else happens."""


@attrs.frozen
class PoolStatistics:
    """What ``/health`` reports of the pool."""

    size: int
    """Processes kept ready per environment (``--warm-pool``; 0: disabled)."""
    minimum: int
    """Processes refilled at once even while every run slot is busy (``--warm-pool-min``)."""
    ready: int = 0
    starting: int = 0
    hits: int = 0
    """Runs that started in a warm process."""
    misses: int = 0
    """Runs that could have started warm but found no ready process (they started cold)."""
    cold_only: int = 0
    """Runs that may not start warm (network, service sockets): always cold."""
    fallbacks: int = 0
    """Runs handed a warm process that could not take them (they started cold)."""
    recycled: int = 0
    """Processes replaced after their idle age, or dropped because they died waiting."""
    failed_starts: int = 0
    environments: int = 0
    """Environments (package sets) with a pool of their own, beside the plain one."""
    disabled: str = ""
    """Why there is no pool ("" when there is one)."""


@attrs.define(eq=False)
class _Warm:
    key: Path | None
    launch: Launch
    process: IdleProcess
    home: Path
    ready_at: float
    stamp: tuple[int, int] | None


def _stamp(path: Path | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return (-1, -1)
    return st.st_dev, st.st_ino


def _private_mkdir(path: Path) -> None:
    old = os.umask(0o077)
    try:
        path.mkdir(parents=True)
    finally:
        os.umask(old)


@attrs.define(eq=False)
class WarmPool:
    """Warm flow processes, per environment, for one kernel (see the module docstring)."""

    config: Config
    tier: SandboxTier
    executor: ProcessExecutorSlot
    capacity: FairCapacity
    sdk_dir: Path
    script: Path
    size: int
    minimum: int
    max_idle_s: float
    workdirs: WorkdirQuota | None = None
    """Workdir quotas: a warm run's file system is mounted at the warm process's own workdir."""
    _ready: dict[Path | None, collections.deque[_Warm]] = attrs.Factory(dict)
    _starting: dict[Path | None, int] = attrs.Factory(dict)
    _used: dict[Path, float] = attrs.Factory(dict)
    """Environments whose plays ran, and when last."""
    _wake: trio.Event = attrs.Factory(trio.Event)
    _nursery: trio.Nursery | None = None
    _count: int = 0
    _failures: int = 0
    _stats: dict[str, int] = attrs.Factory(dict)
    _orphans: list[_Warm] = attrs.Factory(list)
    """Processes let go while no nursery could close them (closed by :meth:`_empty`)."""

    @classmethod
    def create(
        cls,
        config: Config,
        tier: SandboxTier,
        executor: ProcessExecutorSlot,
        capacity: FairCapacity,
        sdk_dir: Path,
        script: Path,
        workdirs: WorkdirQuota | None = None,
    ) -> WarmPool | None:
        """The pool ``config`` asks for, or None: disabled (``--warm-pool 0``), or a tier or
        executor that cannot start processes before their play (logged)."""
        if config.warm_pool <= 0:
            return None
        if not isinstance(tier, WarmTier) or not isinstance(executor, WarmExecutor):
            log.info("warm pool: the sandbox tier %s cannot start flows before their play; every play starts cold", tier.name)
            return None
        refusal = tier.warm_refusal()
        if refusal:
            log.info("warm pool: none, every play starts cold: %s", refusal)
            return None
        minimum = min(config.warm_pool, warm_pool_minimum(config.warm_pool_min, tier.name))
        return cls(
            config=config,
            tier=tier,
            executor=executor,
            capacity=capacity,
            sdk_dir=sdk_dir,
            script=script,
            size=config.warm_pool,
            minimum=minimum,
            max_idle_s=float(config.warm_pool_max_idle_s),
            workdirs=workdirs if workdirs is not None and workdirs.size_mb else None,
        )

    @staticmethod
    def statistics_without(config: Config, tier: SandboxTier) -> PoolStatistics:
        """What ``/health`` reports when there is no pool, and why."""
        if config.warm_pool <= 0:
            why = "--warm-pool is 0"
        elif isinstance(tier, WarmTier) and tier.warm_refusal():
            why = tier.warm_refusal()
        else:
            why = f"the sandbox tier {tier.name} cannot start flows before their play"
        return PoolStatistics(size=0, minimum=0, disabled=why)

    @property
    def root(self) -> Path:
        """Where the warm processes' own directories live."""
        return self.config.state_dir / "warm"

    # -- taking ----------------------------------------------------------------------------------

    def take(self, play: Launch) -> _Warm | None:
        """A ready process for the staged ``play``, or None (it starts cold)."""
        assert isinstance(self.tier, WarmTier)
        if not self.tier.warm_eligible(play):
            self._count_up("cold_only")
            return None
        key = play.packages_dir
        if key is not None:
            self._used[key] = trio.current_time()
        queue = self._ready.get(key)
        while queue:
            warm = queue.popleft()
            if warm.process.alive() and warm.stamp == _stamp(key):
                self._count_up("hits")
                self._wake.set()
                return warm
            self._discard_soon(warm, "it died while waiting" if not warm.process.alive() else "its environment changed")
        self._count_up("misses")
        self._wake.set()
        return None

    async def run(
        self, warm: _Warm, play: Launch, *, timeout_s: float, kill_grace_s: float, workdir_in_place: bool = False
    ) -> ExitOutcome | None:
        """Run the staged ``play`` in ``warm`` (from :meth:`take`) to its end; None if it must
        start cold. ``workdir_in_place``: the play's workdir is already at the process's own
        (a file system mounted there). The caller then calls :meth:`done`."""
        assert isinstance(self.tier, WarmTier)
        assert isinstance(self.executor, WarmExecutor)
        try:
            assignment = self.tier.assign_warm(warm.launch, play, workdir_in_place=workdir_in_place)
        except (OSError, HeroLogicError) as exc:
            log.warning("play %s: could not hand it to a warm process (%s); it starts cold", play.play_sid, exc)
            self._count_up("fallbacks")
            self._discard_soon(warm, "it could not take its play", keep_home=True)
            return None
        try:
            return await self.executor.run_idle(
                warm.process, assignment, pid_file=play.pid_file, timeout_s=timeout_s, kill_grace_s=kill_grace_s
            )
        except WarmProcessLost as exc:
            log.warning("play %s: %s; it starts cold", play.play_sid, exc)
            self._count_up("fallbacks")
            return None

    def done(self, warm: _Warm) -> None:
        """The run of ``warm`` is over and its workdir no longer mounted: remove its directory
        off the event loop (a run never waits for it). A process that was never handed its
        play (the run ended first: its workdir could not be set up, it was cancelled) is
        killed first: it serves no other play."""
        if warm.process.alive():
            self._discard_soon(warm, "its run ended before it was handed the play")
            return
        if self._nursery is not None:
            self._nursery.start_soon(trio.to_thread.run_sync, self._remove_home, warm.home)
        else:
            self._remove_home(warm.home)

    def _work_of(self, home: Path) -> Path:
        """A warm process's own workdir: in its home, or, with workdir quotas, under the shared
        mount a run's file system is mounted below (``WorkdirQuota.warm_root``; not the home,
        where the play's files are hard-linked: a link cannot cross a mount)."""
        return self.workdirs.warm_root / home.name if self.workdirs is not None else home / "work"

    def _remove_home(self, home: Path) -> None:
        """Remove a warm process's directories (blocking)."""
        for path in (home, self._work_of(home)):
            try:
                remove_tree(path)  # never into a run's file system still mounted there
            except OSError as exc:
                log.warning("warm pool: %s (the next start removes it)", exc)

    # -- filling ---------------------------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Fill the pool and keep it filled until cancelled; then kill what it holds."""
        await trio.to_thread.run_sync(self._clear_root)  # what a dead predecessor left
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await self._refill_forever()
        finally:
            self._nursery = None
            with trio.CancelScope(shield=True):
                await self._empty()

    def _clear_root(self) -> None:
        if self.workdirs is not None:
            self.workdirs.release_warm_root()
        for path in (self.root, *([self.workdirs.warm_root] if self.workdirs is not None else [])):
            try:
                remove_tree(path)
            except OSError as exc:
                log.warning("warm pool: %s", exc)
        if self.workdirs is not None:
            self.workdirs.share_warm_root()

    async def _refill_forever(self) -> None:
        while True:
            self._recycle()
            key = self._next_to_fill()
            if key is False:
                self._wake = trio.Event()
                with trio.move_on_after(self._next_check()):
                    await self._wake.wait()
                continue
            assert key is None or not isinstance(key, bool)
            began = trio.current_time()
            if await self._start_one(key):
                self._failures = 0
                if self.capacity.in_use:  # plays run: leave them at least half a core
                    await trio.sleep(trio.current_time() - began)
            else:
                self._failures += 1
                await trio.sleep(min(MAX_BACKOFF_S, 0.25 * 2**self._failures))

    def _target(self, key: Path | None) -> int:
        if key is not None and trio.current_time() - self._used.get(key, -1e18) > self.max_idle_s:
            return 0
        if self.capacity.in_use:  # plays run: a start-up would take CPU from them (measured:
            return self.minimum  # a warm play ran 10-15 ms slower beside one); the minimum only
        return self.size

    def _next_to_fill(self) -> Path | bool | None:
        """The environment to start a process for next (None: the plain one), or False."""
        for key in [None, *sorted(self._used, key=lambda k: -self._used[k])]:
            have = len(self._ready.get(key, ())) + self._starting.get(key, 0)
            if have < self._target(key):
                return key
        for key in [k for k in self._used if self._target(k) == 0 and not self._ready.get(k)]:
            del self._used[key]  # unused for the idle age: its pool is gone
        return False

    def _next_check(self) -> float:
        now = trio.current_time()
        deadlines = [w.ready_at + self.max_idle_s - now for q in self._ready.values() for w in q]
        return max(0.01, min([_CHECK_EVERY_S, *deadlines]))

    def _recycle(self) -> None:
        now = trio.current_time()
        for queue in self._ready.values():
            for warm in list(queue):
                if not warm.process.alive():
                    queue.remove(warm)
                    self._discard_soon(warm, "it died while waiting")
                elif now - warm.ready_at >= self.max_idle_s or self._target(warm.key) == 0:
                    queue.remove(warm)
                    self._discard_soon(warm, "")

    async def _start_one(self, key: Path | None) -> bool:
        """Start one process for ``key`` and wait until it is ready; False if it failed."""
        assert isinstance(self.tier, WarmTier)
        assert isinstance(self.executor, WarmExecutor)
        self._count += 1
        home = self.root / f"w{self._count}"
        process: IdleProcess | None = None
        self._starting[key] = self._starting.get(key, 0) + 1
        try:
            stamp = _stamp(key)
            _private_mkdir(home / "play")
            work = self._work_of(home)
            _private_mkdir(work)
            launch = Launch(
                argv=(self.config.python, "-I", "-S", str(self.script)),
                env={},
                cwd=work,
                play_sid=f"warm{self._count}",
                play_dir=home / "play",
                workdir=work,
                span_socket=home / "play" / "span.sock",
                sdk_dir=self.sdk_dir,
                packages_dir=key,
                bind_play_dir=True,
            )
            wrapped = self.tier.wrap_warm(launch)
            process = await self.executor.spawn_idle(wrapped)
            ready = False
            with trio.move_on_after(READY_TIMEOUT_S):
                ready = await process.wait_ready()
            if not ready:
                why = process.stderr_tail().strip()[-2000:] or "no reason on stderr"
                log.warning("warm pool: a warm process did not start (%s)", why)
                self._count_up("failed_starts")
                await process.aclose()
                self._remove_home(home)
                return False
            self._ready.setdefault(key, collections.deque()).append(
                _Warm(key=key, launch=wrapped, process=process, home=home, ready_at=trio.current_time(), stamp=stamp)
            )
            process = None
            return True
        except (OSError, HeroLogicError) as exc:
            log.warning("warm pool: could not start a warm process: %s", exc)
            self._count_up("failed_starts")
            self._remove_home(home)
            return False
        finally:
            self._starting[key] -= 1
            if process is not None:  # cancelled while it started
                with trio.CancelScope(shield=True):
                    await process.aclose()
                self._remove_home(home)

    # -- letting go ------------------------------------------------------------------------------

    def _discard_soon(self, warm: _Warm, why: str, *, keep_home: bool = False) -> None:
        if why:
            tail = warm.process.stderr_tail().strip()[-500:]
            log.info("warm pool: dropped warm process %d: %s%s", warm.process.pid, why, f" ({tail})" if tail else "")
        self._count_up("recycled")
        if self._nursery is not None:
            self._nursery.start_soon(self._discard, warm, keep_home)
        else:
            self._orphans.append(warm)

    async def _discard(self, warm: _Warm, keep_home: bool = False) -> None:
        with trio.CancelScope(shield=True):
            await warm.process.aclose()
            if not keep_home:  # else its run's caller removes it (:meth:`done`)
                await trio.to_thread.run_sync(self._remove_home, warm.home)

    async def _empty(self) -> None:
        queues, self._ready = self._ready, {}
        orphans, self._orphans = self._orphans, []
        for warm in [*orphans, *(w for q in queues.values() for w in q)]:
            await self._discard(warm)
        if self.workdirs is not None:
            await trio.to_thread.run_sync(lambda: self.workdirs.release_warm_root(runs=False))  # type: ignore[union-attr]
        for root in (self.root, *([self.workdirs.warm_root] if self.workdirs is not None else [])):
            try:
                root.rmdir()
            except OSError:
                pass  # a run still holds its directory, or there never was one

    def _count_up(self, name: str) -> None:
        self._stats[name] = self._stats.get(name, 0) + 1

    def statistics(self) -> PoolStatistics:
        """Ready and starting processes, hits and misses (``/health``)."""
        extra: dict[str, Any] = dict(self._stats)
        return PoolStatistics(
            size=self.size,
            minimum=self.minimum,
            ready=sum(len(q) for q in self._ready.values()),
            starting=sum(self._starting.values()),
            environments=len(self._used),
            **extra,
        )
