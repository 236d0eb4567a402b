"""Warm processes in the built-in tiers: started before their play, handed it later.

A warm process is wrapped like any flow (``wrap``: the same scrubbed environment, rlimits,
cgroup, capabilities, namespaces and seccomp filter), from a launch whose play directory and
workdir are fresh directories of its own. Handing it a play (:func:`assign_env_scrub`,
:func:`assign_bwrap`) gives it exactly what a cold start of that play would have had:

* ``env_scrub`` shares the host's file system: the process is told the play's environment
  (host paths, ``HOME`` the play's workdir) and moves into the play's workdir.
* ``bwrap`` (:func:`show_play`) bound the warm process's own play directory at ``/hero/play`` (read-only) and its
  own fresh workdir at ``/hero/work`` when it started. The play's staged files (source, inputs,
  replay caches, span socket) are hard-linked into that play directory, so the flow finds them
  at the paths a cold start binds them to; the entries the play's workdir holds from its
  earlier runs are moved into the fresh workdir, which then takes the play workdir's name (a
  rename: the sandbox's bind follows the directory). The flow sees ``/hero/play/flow.py`` and
  a ``/hero/work`` holding its earlier files, as it would cold.

A play that needs something bound at spawn that a warm process cannot have (the network, which
under ``bwrap`` is a namespace of its own with pasta attached; service sockets) is not
eligible and starts cold. A play's environment (packages) is bound at spawn too: the kernel
keeps one pool per environment, and a process is only handed a play of its own environment.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from hero_logic.kernel import WarmAssignment

from ._policy import scrubbed_env

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from hero_logic.kernel import Launch

__all__ = ["adopt_workdir", "assign_env_scrub", "show_play", "warm_eligible"]

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def warm_eligible(play: Launch) -> bool:
    """True if ``play`` may run in a process started before it (no network, no service
    sockets: both are bound into the sandbox when it is built)."""
    return not play.allow_network and not play.service_sockets


def assign_env_scrub(warm: Launch, play: Launch) -> WarmAssignment:
    """The environment and workdir a cold ``env_scrub`` start of ``play`` would have."""
    _same_environment(warm, play)
    return WarmAssignment(env=scrubbed_env(play.env, home=str(play.workdir)), cwd=str(play.workdir))


def show_play(warm: Launch, play: Launch, files: Sequence[tuple[Path, str]], *, adopt: bool = True) -> None:
    """Make a namespace tier's warm sandbox show ``play``: each staged file ``(host path,
    name)`` hard-linked into the warm process's play directory (bound read-only where the flow
    finds its files), then (``adopt``) the play's workdir adopted (:func:`adopt_workdir`;
    without: the run's workdir file system is already mounted at the warm one). On failure
    nothing of the play was changed."""
    _same_environment(warm, play)
    linked: list[Path] = []
    try:
        for host, name in files:
            if "/" in name or name in ("", ".", ".."):
                msg = f"refusing to show {host} as {name!r} in a warm sandbox"
                raise OSError(msg)
            mode = os.lstat(host).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISSOCK(mode)):
                msg = f"refusing to bind {host}: it is not a plain file"
                raise OSError(msg)
            os.link(host, warm.play_dir / name, follow_symlinks=False)
            linked.append(warm.play_dir / name)
        if adopt:
            adopt_workdir(warm.workdir, play.workdir)
    except OSError:
        for path in linked:
            path.unlink(missing_ok=True)
        raise


def _same_environment(warm: Launch, play: Launch) -> None:
    if warm.packages_dir != play.packages_dir:
        msg = f"the warm process has the environment {warm.packages_dir}, the play {play.packages_dir}"
        raise OSError(msg)


def adopt_workdir(fresh: Path, workdir: Path) -> None:
    """Make ``fresh`` the play's ``workdir``: what ``workdir`` holds (from the play's earlier
    runs) moves into ``fresh``, then ``fresh`` is renamed over it. Entries are renamed, never
    followed; on failure what was moved goes back."""
    src = os.open(workdir, _DIRECTORY)
    try:
        dst = os.open(fresh, _DIRECTORY)
        moved: list[str] = []
        try:
            for name in os.listdir(src):
                os.rename(name, name, src_dir_fd=src, dst_dir_fd=dst)
                moved.append(name)
        except OSError:
            for name in moved:
                try:
                    os.rename(name, name, src_dir_fd=dst, dst_dir_fd=src)
                except OSError:
                    pass
            raise
        finally:
            os.close(dst)
    finally:
        os.close(src)
    os.rename(fresh, workdir)  # over the now empty directory
