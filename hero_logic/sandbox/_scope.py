"""The containment every tier sets up: once at start-up, then one scope per run.

:class:`Containment` is what ``prepare()`` of every built-in tier does first: make the service
non-dumpable, find out whether per-play cgroups can be made here (sweeping what a dead
predecessor left and starting the watchdog), and remember the limits. :class:`SandboxScope`
is the :class:`~hero_logic.kernel._interfaces.ProcessScope` a tier attaches to each launch.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
from typing import TYPE_CHECKING

import attrs

from hero_logic.kernel import SandboxUnavailable

from ._cgroup import CgroupTree, PlayCgroup
from ._policy import PreExec, SandboxLimits, child_setup, make_non_dumpable, rlimits_for

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from hero_logic.kernel import Config

    from ._flow_user import FlowUser

__all__ = ["Containment", "SandboxScope"]

log = logging.getLogger("hero_logic.sandbox")

_SIGNALS = {int(s) for s in signal.Signals}


@attrs.define(eq=False)
class SandboxScope:
    """One run's containment: its cgroup (if any) and how to read its exit."""

    limits: SandboxLimits
    cgroup: PlayCgroup | None = None
    wrapper_exit: bool = False
    """The launched process is a wrapper (bwrap, nsjail) that reports a flow killed by
    signal N as exit status 128+N."""

    def kill_all(self) -> None:
        """SIGKILL everything in the run's cgroup (nothing to do without one)."""
        if self.cgroup is not None:
            self.cgroup.kill_all()

    def exit_code(self, raw: int | None) -> int | None:
        """The flow's exit status, with a wrapper's 128+N turned back into -N."""
        if self.wrapper_exit and raw is not None and raw - 128 in _SIGNALS:
            return -(raw - 128)
        return raw

    def limit_reason(self, exit_code: int | None) -> str:
        """Which limit ended the run, or ""."""
        if self.cgroup is not None:
            reason = self.cgroup.limit_reason()
            if reason:
                return reason
        if exit_code == -signal.SIGXCPU:
            return (
                f"the play used up its CPU time limit of {self.limits.cpu_s} s and was stopped "
                "(SIGXCPU): raise the sandbox's cpu_s if it needs more"
            )
        return ""

    async def aclose(self) -> None:
        """Kill what is left and remove the cgroup."""
        if self.cgroup is not None:
            await self.cgroup.remove()


@attrs.define(eq=False)
class Containment:
    """Limits, cgroups and the non-dumpable service: shared by every built-in tier."""

    limits: SandboxLimits
    state_dir: Path
    python: str
    cgroups: CgroupTree | None = None
    use_cgroups: bool = True
    prepared: bool = False
    _lock_fd: int | None = None

    @classmethod
    def from_config(cls, config: Config) -> Containment:
        """Containment with the limits of the ``--sandbox`` options."""
        return cls(
            limits=SandboxLimits.from_config(config),
            state_dir=config.state_dir,
            python=config.python,
        )

    def _tree_tag(self) -> tuple[str, bool]:
        """The cgroup tree's tag, and whether this service owns it alone (it holds the state
        directory's sandbox lock, so what the tree holds was left by a dead predecessor)."""
        tag = CgroupTree.tag_for(self.state_dir)
        old = os.umask(0o077)
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(
                self.state_dir / "sandbox.lock",
                os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                0o600,
            )
        finally:
            os.umask(old)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return f"{tag}-{os.getpid()}", False  # another live service uses this root
        self._lock_fd = fd
        return tag, True

    def prepare(self, tier: str) -> None:
        """Make the service non-dumpable; set up per-play cgroups where possible."""
        try:
            make_non_dumpable()
        except OSError as exc:
            msg = f"sandbox tier {tier}: cannot make the service non-dumpable ({exc}), so flows could read its memory"
            raise SandboxUnavailable(msg) from None
        if self.use_cgroups and os.geteuid() == 0:
            tag, owner = self._tree_tag()
            self.cgroups = CgroupTree.probe(tag)
            if self.cgroups is not None and not owner:
                log.warning("another service uses %s: its play cgroups are left alone", self.state_dir)
        if self.cgroups is None:
            log.info(
                "sandbox tier %s: no per-play cgroups here (not root, or no writable pids and "
                "memory controllers): memory is capped by RLIMIT_AS only and processes by the "
                "tier's own means",
                tier,
            )
        else:
            swept = self.cgroups.sweep() if self._lock_fd is not None else 0
            if swept:
                log.warning("killed the processes of %d play(s) a previous service left behind", swept)
            try:
                self.cgroups.start_watchdog(self.python)
            except OSError as exc:
                msg = f"sandbox tier {tier}: cannot start the cgroup watchdog with {self.python}: {exc}"
                raise SandboxUnavailable(msg) from None
        self.prepared = True

    def open_scope(self, play_sid: str, *, wrapper_exit: bool) -> SandboxScope:
        """A scope for one run, with its own cgroup when cgroups are in use."""
        cgroup = None
        if self.cgroups is not None:
            try:
                cgroup = self.cgroups.create(play_sid, self.limits)
            except OSError as exc:
                msg = f"cannot create the cgroup of play {play_sid}: {exc}"
                raise SandboxUnavailable(msg) from None
        return SandboxScope(limits=self.limits, cgroup=cgroup, wrapper_exit=wrapper_exit)

    def child_setup(
        self,
        scope: SandboxScope,
        *,
        drop_capabilities: bool,
        overrides: Mapping[str, int] | None = None,
        user: FlowUser | None = None,
    ) -> tuple[PreExec, dict[str, int]]:
        """The pre-exec function of a run in ``scope`` and the rlimits it applies
        (``overrides``: rlimits the runner asked for, by ``RLIMIT_*`` name; ``user``: the
        unprivileged uid and view of a root service's env_scrub flow)."""
        rlimits = rlimits_for(self.limits, memory_cgroup=scope.cgroup is not None)
        rlimits.update(overrides or {})
        setup = child_setup(
            rlimits,
            cgroup_procs=scope.cgroup.procs_files if scope.cgroup is not None else (),
            die_with_service=True,
            drop_capabilities=drop_capabilities and os.geteuid() == 0,
            user=user,
        )
        return setup, rlimits

    def close(self) -> None:
        """Stop the watchdog and remove the (empty) cgroup tree."""
        if self.cgroups is not None:
            self.cgroups.close()
            self.cgroups = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
