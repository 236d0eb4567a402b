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

When the service runs as root, the flow runs as an unprivileged uid of its own play
(:mod:`._flow_user`): it can write no root-owned file, cannot move itself out of its play
cgroup, and reaches only what that uid may, plus its own play's files.

What it does not do: the flow shares the host's file system, network and process table with
the service (as root: under a uid of its own; otherwise under the service's uid). Use the
``bwrap`` or ``nsjail`` tier for isolation.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from typing import TYPE_CHECKING

import attrs

from hero_logic.kernel import SandboxUnavailable

from ._flow_user import FlowUser, covers_for, flow_uid
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
    unprivileged: bool = True
    """As root, run flows as an unprivileged uid of their play (:mod:`._flow_user`)."""

    @classmethod
    def from_config(cls, config: Config) -> EnvScrubTier:
        """The tier with the limits of the ``--sandbox`` options."""
        return cls(containment=Containment.from_config(config))

    def check(self) -> None:
        """Always available on Linux: it needs nothing beyond the interpreter."""

    def prepare(self) -> None:
        """Make the service non-dumpable and set up per-play cgroups where possible; as root,
        check that a flow can run as an unprivileged uid here (fail closed otherwise)."""
        self.containment.prepare(self.name)
        if self._as_flow_user():
            self._probe_flow_user()

    def _as_flow_user(self) -> bool:
        return self.unprivileged and os.geteuid() == 0

    def _probe_flow_user(self) -> None:
        """Run the interpreter as a flow uid, in the view it needs, once."""
        python = self.containment.python
        prefix = os.path.dirname(os.path.dirname(os.path.realpath(python)))
        covers, binds = covers_for([prefix])
        user = FlowUser(uid=flow_uid("probe"), covers=covers, binds=binds, workdir="/")
        scope = self.containment.open_scope(f"probe-{os.getpid()}", wrapper_exit=False)
        try:
            setup, _ = self.containment.child_setup(scope, drop_capabilities=True, user=user)
            result = subprocess.run(
                [python, "-I", "-S", "-c", "import os, sys; sys.exit(0 if os.getuid() else 3)"],
                preexec_fn=setup,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env={},
                cwd="/",
                timeout=20,
                check=False,
            )
            failure = result.stderr.decode(errors="replace").strip()[-300:] or f"exit {result.returncode}"
            ok = result.returncode == 0
        except (OSError, subprocess.SubprocessError) as exc:
            ok, failure = False, str(exc)
        finally:
            scope.kill_all()
            if scope.cgroup is not None:
                for d in scope.cgroup.dirs:
                    with contextlib.suppress(OSError):
                        d.rmdir()
        if not ok:
            msg = (
                f"sandbox tier env_scrub: the service runs as root, so flows run as an "
                f"unprivileged uid, and {python} could not run that way here ({failure}): make "
                "the interpreter readable by other users (e.g. --python /usr/bin/python3.11), "
                "or allow mount namespaces to the service (it hides unsearchable directories "
                "such as /root behind an empty tmpfs with only the interpreter bound back in)"
            )
            raise SandboxUnavailable(msg)

    def wrap(self, launch: Launch) -> Launch:
        """``launch`` with its environment scrubbed, its limits and its scope attached."""
        user = None
        if self._as_flow_user():
            user = FlowUser.for_launch(launch, self.containment.python)
            closed = user.unreachable_sockets(launch)
            if closed:
                msg = (
                    f"play {launch.play_sid} declares the service socket {', '.join(closed)}, which its "
                    f"flow cannot connect to: env_scrub flows of a root service run as their own uid "
                    f"({user.uid}), so the socket must be writable by other users (chmod 0666 it, or "
                    "run the play under --sandbox bwrap)"
                )
                raise SandboxUnavailable(msg)
            try:
                user.hand_over(launch)
            except OSError as exc:
                msg = f"cannot give play {launch.play_sid}'s files to its flow uid {user.uid}: {exc}"
                raise SandboxUnavailable(msg) from None
        scope = self.containment.open_scope(launch.play_sid, wrapper_exit=False)
        setup, rlimits = self.containment.child_setup(
            scope, drop_capabilities=True, overrides=launch.rlimits, user=user
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

    def assign_warm(self, warm: Launch, play: Launch, *, workdir_in_place: bool = False) -> WarmAssignment:
        """What a warm process takes to run ``play`` (its environment, its workdir)."""
        if workdir_in_place:  # workdir file systems need root, and as root there is no warm env_scrub
            msg = "env_scrub's warm processes work in the play's own workdir"
            raise OSError(msg)
        return assign_env_scrub(warm, play)

    def warm_refusal(self) -> str:
        """Why no warm process is started: as root each play's flow runs as a uid of its own,
        which is not known before the play."""
        if self._as_flow_user():
            return (
                "env_scrub runs each play's flow as a uid of its own when the service runs as root, "
                "and that uid is not known before the play (use --sandbox bwrap for warm starts as root)"
            )
        return ""

    def warm_eligible(self, play: Launch) -> bool:
        """Whether ``play`` may run warm (not with the network or service sockets)."""
        return warm_eligible(play)

    def close(self) -> None:
        """Stop the cgroup watchdog."""
        self.containment.close()
