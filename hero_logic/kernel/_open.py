"""Opening a kernel: load and check every slot, prepare the sandbox tier, open the store,
recover what the previous service left unfinished, and close it all on exit."""

from __future__ import annotations

import fcntl
import logging
import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from ._bus import EventBus
from ._capacity import FairCapacity
from ._errors import ConfigError
from ._kernel import Kernel
from ._model import now_ms
from ._pool import WarmPool
from ._repo import Repo
from ._runner import PlayRunner
from ._slots import load_slots, select_sandbox_tier
from ._timers import TimerWheel, wake_timer
from ._tree import PlayTree
from ._workdirs import WorkdirQuota

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from ._config import Config
    from ._interfaces import SandboxTier
    from ._slots import Slots
    from ._store_api import Store

__all__ = ["open_kernel"]

log = logging.getLogger("hero_logic.kernel")


def _compile_sdk(sdk_dir: Path) -> None:
    import compileall

    try:
        compileall.compile_dir(sdk_dir, quiet=2)
    except OSError as exc:  # a read-only install: flows compile in memory instead
        log.info("could not precompile the SDK in %s: %s", sdk_dir, exc)


def _hold_state_dir(config: Config) -> int:
    """An exclusive lock on the state directory for this kernel's life (its descriptor); a
    ConfigError naming the fix if another service holds it. A second service started on the
    same PATH_ROOT must not touch the first one's plays, workdir file systems or warm
    processes while it finds out that it cannot run (it unmounted them before)."""
    fd = os.open(config.state_dir / "kernel.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        msg = (
            f"another hero_logic service runs on {config.state_dir} (PATH_ROOT {config.root}): "
            "stop it first (hero_logic --stop), or give this one another PATH_ROOT"
        )
        raise ConfigError(msg) from None
    return fd


@asynccontextmanager
async def open_kernel(
    config: Config,
    *,
    recover: bool = True,
    slots: Slots | None = None,
    tier: SandboxTier | None = None,
    clock_ms: Callable[[], int] | None = None,
) -> AsyncIterator[Kernel]:
    """Load the plugins, open the store, start supervising plays and the timer wheel; close it
    all on exit.

    ``slots`` and ``tier`` replace what ``config`` names (tests run plays with fakes);
    ``clock_ms`` replaces the wall clock the timer wheel reads (tests drive it with Trio's)."""
    from hero_logic.sdk import BOOT_SCRIPT, SDK_DIR, WARM_SCRIPT

    # Every plugin is loaded and checked before the tier is prepared, so a bad setting fails
    # before anything is set up; once prepared, the tier is closed however start-up ends.
    slots = slots or load_slots(config)
    tier = tier or select_sandbox_tier(config)
    log.info("sandbox tier: %s", tier.name)
    try:
        old = os.umask(0o077)
        try:
            config.state_dir.mkdir(parents=True, exist_ok=True)
        finally:
            os.umask(old)
        lock = _hold_state_dir(config)  # before anything of a running service is touched
        # Flow processes run with PYTHONDONTWRITEBYTECODE (and read-only under bwrap): compile
        # the SDK once here so no play pays for compiling it.
        await trio.to_thread.run_sync(_compile_sdk, Path(SDK_DIR))
        store: Store = slots.store_factory.from_config(config)
        workdirs = WorkdirQuota.from_config(config)
        await workdirs.recover()  # before any play runs again
    except BaseException:
        tier.close()
        if "lock" in locals():
            os.close(lock)
        raise
    try:
        async with trio.open_nursery() as nursery:
            repo = Repo(store)
            kernel = Kernel(
                config=config,
                store=store,
                repo=repo,
                tree=PlayTree(repo, max_descendants=config.max_descendants),
                picker=slots.picker,
                bus=EventBus(),
                runner=PlayRunner(
                    config=config,
                    executor=slots.executor,
                    tier=tier,
                    listener=slots.listener,
                    sdk_dir=Path(SDK_DIR),
                    boot_script=Path(BOOT_SCRIPT),
                    workdirs=workdirs,
                ),
                nursery=nursery,
                capacity=FairCapacity(config.max_running),
            )
            kernel.runner.pool = WarmPool.create(
                config, tier, slots.executor, kernel._capacity, Path(SDK_DIR), Path(WARM_SCRIPT), workdirs
            )
            if kernel.runner.pool is not None:  # it fills in the background
                await nursery.start(kernel.runner.pool.serve)
            if recover:
                await kernel._recover()

            async def fire(play_sid: str, resume_id: str) -> None:
                await wake_timer(kernel, play_sid, resume_id)

            kernel.timers = TimerWheel(store, fire, clock_ms or now_ms)
            await nursery.start(kernel.timers.run)  # due timers (also of the downtime) fire now
            try:
                yield kernel
            finally:
                kernel._closed = True
                nursery.cancel_scope.cancel()
    finally:
        close_executor = getattr(slots.executor, "close", None)
        if close_executor is not None:  # its spawner: every flow process has ended by now
            close_executor()
        tier.close()
        workdirs.close()
        os.close(lock)
        with trio.CancelScope(shield=True):
            await store.aclose()
