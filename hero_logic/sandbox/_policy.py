"""What every tier enforces, in one place: limits, the flow's environment, the child's set-up.

The tiers differ in *how* they keep a flow apart (a scrubbed process, bubblewrap namespaces,
an nsjail config); the policy they express is the same and lives here:

* :class:`SandboxLimits`, parsed from the options of the ``--sandbox`` setting
  (``bwrap:memory_mb=256,pids=64``);
* the resource limits (rlimits) a flow process starts with, and the code that runs in the
  child between fork and exec to apply them (join the play's cgroups, set rlimits, ask for
  SIGKILL when the service dies, drop capabilities when the service runs as root);
* the service made non-dumpable at start-up, so a flow running as the same uid cannot read
  ``/proc/<service>/environ`` or ``/proc/<service>/mem``.
"""

from __future__ import annotations

import ctypes
import os
from typing import TYPE_CHECKING

import attrs

from hero_logic.kernel import ChildSetup, ConfigError, apply_child_setup

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from hero_logic.kernel import Config

    from ._flow_user import FlowUser

__all__ = [
    "ENV_ALLOW_PREFIXES",
    "MIB",
    "PreExec",
    "SandboxLimits",
    "child_setup",
    "make_non_dumpable",
    "rlimits_for",
    "scrubbed_env",
    "split_tier_spec",
]

MIB = 1024 * 1024

ENV_ALLOW_PREFIXES = ("HERO_FLOW_",)
"""Variables the runner sets that pass into the flow; every other variable is dropped."""

BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
}

_PR_SET_DUMPABLE = 4


@attrs.frozen
class SandboxLimits:
    """The resources one flow process tree may use.

    ``memory_mb`` and ``pids`` are enforced by a per-play cgroup where the service may create
    one (as root); otherwise memory falls back to an address-space rlimit and processes to
    the process group / PID namespace. ``tmp_mb`` sizes the private ``/tmp`` and ``/dev/shm``
    of the namespace tiers. ``cpu_s`` is CPU time (SIGXCPU), ``fsize_mb`` the largest file a
    flow may write, ``nofile`` its open descriptors.
    """

    memory_mb: int = 2048
    pids: int = 256
    tmp_mb: int = 64
    cpu_s: int = 3600
    nofile: int = 256
    fsize_mb: int = 1024

    @classmethod
    def parse(cls, options: str) -> SandboxLimits:
        """Limits from ``key=value`` pairs separated by commas (``memory_mb=256,pids=64``)."""
        known = {field.name for field in attrs.fields(cls)}
        values: dict[str, int] = {}
        for item in filter(None, (part.strip() for part in options.split(","))):
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep or key not in known:
                msg = (
                    f"sandbox option {item!r} is not understood: use key=value with a key among "
                    f"{', '.join(sorted(known))} (e.g. --sandbox bwrap:memory_mb=512,pids=128)"
                )
                raise ConfigError(msg)
            try:
                value = int(raw)
            except ValueError:
                value = 0
            if value <= 0:
                msg = f"sandbox option {key} must be a positive integer, got {raw.strip()!r}"
                raise ConfigError(msg)
            values[key] = value
        return cls(**values)

    @classmethod
    def from_config(cls, config: Config) -> SandboxLimits:
        """The limits given as options of the ``--sandbox`` setting (defaults otherwise)."""
        return cls.parse(split_tier_spec(config.sandbox)[1])


def split_tier_spec(spec: str) -> tuple[str, str]:
    """``"bwrap:memory_mb=256"`` → ``("bwrap", "memory_mb=256")``; the options may be empty."""
    name, _, options = spec.partition(":")
    return name.strip(), options.strip()


def scrubbed_env(env: Mapping[str, str], *, home: str) -> dict[str, str]:
    """The allow-listed part of ``env`` over the base environment, with HOME set to ``home``."""
    out = dict(BASE_ENV)
    out["HOME"] = home
    for key, value in env.items():
        if key.startswith(ENV_ALLOW_PREFIXES):
            out[key] = value
    return out


def rlimits_for(limits: SandboxLimits, *, memory_cgroup: bool) -> dict[str, int]:
    """The rlimits of a flow process. With a memory cgroup in force, the address-space limit
    is only a guard against absurd single allocations (a catchable MemoryError); without one
    it is the memory limit."""
    memory = limits.memory_mb * MIB
    return {
        "RLIMIT_AS": max(2 * memory, 4096 * MIB) if memory_cgroup else memory,
        "RLIMIT_CPU": limits.cpu_s,
        "RLIMIT_NOFILE": limits.nofile,
        "RLIMIT_FSIZE": limits.fsize_mb * MIB,
        "RLIMIT_CORE": 0,
    }


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def make_non_dumpable() -> None:
    """Make the service non-dumpable: a process of the same uid can no longer read its
    ``/proc/<pid>/environ``, ``mem`` or ``fd`` nor ptrace it (unless it holds CAP_SYS_PTRACE,
    which the flows of every tier lack)."""
    if _libc().prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        msg = f"prctl(PR_SET_DUMPABLE, 0) failed: {os.strerror(err)}"
        raise OSError(err, msg)


@attrs.frozen
class PreExec:
    """The function run in the child between fork and exec, and the same set-up as data
    (``spec``, for an executor that starts processes through its spawner)."""

    run: Callable[[], None]
    spec: ChildSetup

    def __call__(self) -> None:
        self.run()


def child_setup(
    rlimits: Mapping[str, int],
    *,
    cgroup_procs: Sequence[str] = (),
    die_with_service: bool = True,
    drop_capabilities: bool = False,
    user: FlowUser | None = None,
) -> PreExec:
    """The set-up a flow process does between fork and exec, as a function (for the service's
    own fork) and as data (for the executor's spawner): one implementation,
    :func:`hero_logic.kernel.apply_child_setup`, applies both.

    In order: join the play's cgroups (so everything the flow starts is counted and can be
    killed), set the rlimits (CPU soft limit below the hard one, so SIGXCPU comes first and
    tells why), build the flow's view (a root service's env_scrub flow ``user``,
    :mod:`._flow_user`), when the service runs as root empty the capability bounding set so
    the flow's ``exec`` grants it no capability (it then cannot read a non-dumpable service's
    ``/proc`` files), become the ``user``'s uid and gid without supplementary groups, and ask
    for SIGKILL when the service dies (after the change of uid, which clears that request).
    A failure makes the spawn fail (fail closed).
    """
    spec = ChildSetup(
        rlimits=dict(rlimits),
        cgroup_procs=tuple(str(path) for path in cgroup_procs),
        die_with_service=die_with_service,
        drop_capabilities=drop_capabilities,
        run_as=user.uid if user is not None else None,
        covers=user.covers if user is not None else (),
        binds=user.binds if user is not None else (),
        view_cwd=user.workdir if user is not None and user.workdir else "/",
    )
    wire = spec.wire()  # computed before the fork: the child only applies it

    def setup() -> None:
        apply_child_setup(wire)

    return PreExec(run=setup, spec=spec)
