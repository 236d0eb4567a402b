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
import resource
import signal
from typing import TYPE_CHECKING

import attrs

from hero_logic.kernel import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from hero_logic.kernel import Config

__all__ = [
    "ENV_ALLOW_PREFIXES",
    "MIB",
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

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4


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


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 40


def make_non_dumpable() -> None:
    """Make the service non-dumpable: a process of the same uid can no longer read its
    ``/proc/<pid>/environ``, ``mem`` or ``fd`` nor ptrace it (unless it holds CAP_SYS_PTRACE,
    which the flows of every tier lack)."""
    if _libc().prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        msg = f"prctl(PR_SET_DUMPABLE, 0) failed: {os.strerror(err)}"
        raise OSError(err, msg)


def child_setup(
    rlimits: Mapping[str, int],
    *,
    cgroup_procs: Sequence[str] = (),
    die_with_service: bool = True,
    drop_capabilities: bool = False,
    view: Callable[[], None] | None = None,
    run_as: int | None = None,
) -> Callable[[], None]:
    """The function the executor runs in the child between fork and exec.

    In order: join the play's cgroups (so everything the flow starts is counted and can be
    killed), set the rlimits (CPU soft limit below the hard one, so SIGXCPU comes first and
    tells why), build the flow's ``view`` (a root service's env_scrub flow, :mod:`._flow_user`),
    when the service runs as root empty the capability bounding set so the flow's ``exec``
    grants it no capability (it then cannot read a non-dumpable service's ``/proc`` files),
    become uid and gid ``run_as`` without supplementary groups, and ask for SIGKILL when the
    service dies (after the change of uid, which clears that request). Everything it needs is
    computed here, before the fork; a failure makes the spawn fail (fail closed).
    """
    pairs: list[tuple[int, int]] = []
    for name, value in rlimits.items():
        pairs.append((getattr(resource, name), value))
    cpu = resource.RLIMIT_CPU
    procs = [os.fsencode(path) for path in cgroup_procs]
    libc = _libc()
    prctl = libc.prctl
    caps = range(_last_cap() + 1) if drop_capabilities else range(0)
    pdeathsig = int(signal.SIGKILL) if die_with_service else 0

    def setup() -> None:
        for path in procs:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
        for which, value in pairs:
            _soft, hard = resource.getrlimit(which)
            capped = value if hard == resource.RLIM_INFINITY else min(value, hard)
            if which == cpu and hard == resource.RLIM_INFINITY:
                resource.setrlimit(which, (capped, capped + 2))
            else:
                resource.setrlimit(which, (capped, capped))
        if view is not None:
            view()
        if caps:
            for cap in caps:
                prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)
            prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
        if run_as is not None:
            os.setgroups([])
            os.setresgid(run_as, run_as, run_as)
            os.setresuid(run_as, run_as, run_as)
        if pdeathsig and prctl(_PR_SET_PDEATHSIG, pdeathsig, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if (caps or run_as is not None) and prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")

    return setup
