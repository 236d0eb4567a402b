"""The ``env_scrub`` tier: the flow runs as a plain process with nothing of the service's.

What it does: the environment is rebuilt from an allow-list (nothing of the service's own
environment passes, so its secrets stay out); the service makes itself non-dumpable at
start-up and, when it runs as root, the flow starts with an empty capability bounding set, so
``/proc/<service>/environ`` and ``mem`` cannot be read; the process gets a new session (no
controlling terminal to inject keystrokes into); file descriptors other than stdin, stdout,
stderr and the span socket are closed; the working directory is the play's workdir; resource
limits cap address space, CPU time, open files and file size; the flow is SIGKILLed if the
service dies; and where the service may create cgroups (root), each play has its own, capping
processes and memory, and everything in it (a ``setsid`` grandchild too) is killed when the
run ends.

What it does not do: the flow shares the host's file system, network and process table with
the service, under the service's uid. Use the ``bwrap`` or ``nsjail`` tier for isolation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from ._policy import ENV_ALLOW_PREFIXES, SandboxLimits, rlimits_for, scrubbed_env
from ._scope import Containment
from ._warm import assign_env_scrub, warm_eligible

if TYPE_CHECKING:
    from hero_logic.kernel import Config, Launch, WarmAssignment

__all__ = ["DEFAULT_RLIMITS", "ENV_ALLOW_PREFIXES", "EnvScrubTier", "scrubbed_env"]

DEFAULT_RLIMITS: dict[str, int] = rlimits_for(SandboxLimits(), memory_cgroup=False)
"""The rlimits of a flow under the default limits without a memory cgroup."""


@attrs.define(eq=False)
class EnvScrubTier:
    """Allow-listed environment, non-dumpable service, rlimits, per-play cgroup (``hero_logic.sandbox``)."""

    containment: Containment
    name: str = "env_scrub"
    strength: int = 10

    @classmethod
    def from_config(cls, config: Config) -> EnvScrubTier:
        """The tier with the limits of the ``--sandbox`` options."""
        return cls(containment=Containment.from_config(config))

    def check(self) -> None:
        """Always available on Linux: it needs nothing beyond the interpreter."""

    def prepare(self) -> None:
        """Make the service non-dumpable and set up per-play cgroups where possible."""
        self.containment.prepare(self.name)

    def wrap(self, launch: Launch) -> Launch:
        """``launch`` with its environment scrubbed, its limits and its scope attached."""
        scope = self.containment.open_scope(launch.play_sid, wrapper_exit=False)
        setup, rlimits = self.containment.child_setup(
            scope, drop_capabilities=True, overrides=launch.rlimits
        )
        return attrs.evolve(
            launch,
            env=scrubbed_env(launch.env, home=str(launch.workdir)),
            preexec=setup,
            setup=setup.spec,
            rlimits=rlimits,
            scope=scope,
        )

    def wrap_warm(self, launch: Launch) -> Launch:
        """A warm process's launch, wrapped as any flow's (see :mod:`._warm`)."""
        return self.wrap(launch)

    def assign_warm(self, warm: Launch, play: Launch) -> WarmAssignment:
        """What a warm process takes to run ``play`` (its environment, its workdir)."""
        return assign_env_scrub(warm, play)

    def warm_eligible(self, play: Launch) -> bool:
        """Whether ``play`` may run warm (not with the network or service sockets)."""
        return warm_eligible(play)

    def close(self) -> None:
        """Stop the cgroup watchdog."""
        self.containment.close()
