"""The ``env_scrub`` tier: the flow runs as a plain process with nothing of the service's.

What it does: the environment is rebuilt from an allow-list (nothing of the service's own
environment passes, so its secrets stay out); the process gets a new session (no controlling
terminal to inject keystrokes into); file descriptors other than stdin/stdout/stderr are closed
(the executor spawns with ``close_fds``); the working directory is the play's workdir; and
resource limits cap address space, CPU time, open files and file size.

What it does not do: the flow shares the host's file system, network and process table with
the service. Use the ``bwrap`` or ``nsjail`` tier for isolation.
"""

from __future__ import annotations

import resource
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from hero_logic.kernel import Config
    from hero_logic.kernel._interfaces import Launch

__all__ = ["DEFAULT_RLIMITS", "ENV_ALLOW_PREFIXES", "EnvScrubTier", "scrubbed_env"]

ENV_ALLOW_PREFIXES = ("HERO_FLOW_",)
"""Variables the runner sets that pass into the flow; every other variable is dropped."""

BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
}

DEFAULT_RLIMITS: dict[str, int] = {
    "RLIMIT_AS": 2 * 1024**3,  # 2 GiB of address space
    "RLIMIT_CPU": 3600,  # one CPU hour; the wall clock timeout usually ends a play first
    "RLIMIT_NOFILE": 256,
    "RLIMIT_FSIZE": 1024**3,  # no single file over 1 GiB
    "RLIMIT_CORE": 0,
}


def scrubbed_env(env: Mapping[str, str], *, home: str) -> dict[str, str]:
    """The allow-listed part of ``env`` over the base environment, with HOME set to ``home``."""
    out = dict(BASE_ENV)
    out["HOME"] = home
    for key, value in env.items():
        if key.startswith(ENV_ALLOW_PREFIXES):
            out[key] = value
    return out


def _limits_setter(limits: Mapping[str, int]) -> Callable[[], None]:
    pairs = [(getattr(resource, name), value) for name, value in limits.items()]

    def apply_limits() -> None:  # runs in the child between fork and exec
        for which, value in pairs:
            _soft, hard = resource.getrlimit(which)
            capped = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (capped, capped))

    return apply_limits


@attrs.define(eq=False)
class EnvScrubTier:
    """Allow-listed environment, new session, closed fds, rlimits (``hero_logic.sandbox``)."""

    name: str = "env_scrub"
    strength: int = 10
    rlimits: dict[str, int] = attrs.Factory(lambda: dict(DEFAULT_RLIMITS))

    @classmethod
    def from_config(cls, config: Config) -> EnvScrubTier:
        """The tier with the default limits."""
        return cls()

    def check(self) -> None:
        """Always available on POSIX: it needs nothing beyond the interpreter."""

    def wrap(self, launch: Launch) -> Launch:
        """``launch`` with its environment scrubbed and the resource limits attached."""
        limits = {**self.rlimits, **launch.rlimits}
        return attrs.evolve(
            launch,
            env=scrubbed_env(launch.env, home=str(launch.workdir)),
            preexec=_limits_setter(limits),
            rlimits=limits,
        )
