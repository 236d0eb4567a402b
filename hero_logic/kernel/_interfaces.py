"""The slot interfaces the kernel drives: executor, sandbox tier and span listener.

Each is declared as a Protocol; implementations are found by name through entry points
(``hero_logic.executor``, ``hero_logic.sandbox``, ``hero_logic.span_listener``) and are built
with ``from_config(config)``. The store slot is declared in :mod:`._store_api`.
"""

from __future__ import annotations

import resource
import signal
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs
import trio

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

    from ._library_records import PickResult, PickWeights, VersionCandidate
    from ._model import Play, WorkflowVersion

__all__ = [
    "ChildSetup",
    "EventSink",
    "ExitOutcome",
    "FlowRequestHandler",
    "IdleProcess",
    "Launch",
    "ListenerStatistics",
    "ProcessExecutorSlot",
    "ProcessScope",
    "Redactor",
    "RunExtras",
    "RunPreparer",
    "SandboxTier",
    "SpanListenerSlot",
    "VersionPicker",
    "WaitHandler",
    "WarmAssignment",
    "WarmExecutor",
    "WarmProcessLost",
    "WarmTier",
]


@attrs.frozen
class ChildSetup:
    """What a flow process needs between fork and exec, as data.

    A sandbox tier sets both this and the equivalent ``Launch.preexec`` function; an executor
    that starts processes through a helper (the built-in executor's spawner, so the service is
    never forked) applies this instead, in the helper's child, in this order: join the
    cgroups, set the rlimits, build the view, drop the capabilities, change the uid, arm the
    parent-death signal (see :mod:`._child_setup`)."""

    rlimits: Mapping[str, int] = attrs.Factory(dict)
    """``RLIMIT_*`` name → value (the CPU soft limit is set below its hard one, as preexec does)."""
    cgroup_procs: tuple[str, ...] = ()
    """The ``cgroup.procs`` files the child writes itself into."""
    die_with_service: bool = True
    """SIGKILL when the parent (the service, or the spawner that dies with it) dies."""
    drop_capabilities: bool = False
    """Empty the capability bounding set and set no_new_privs (the service runs as root)."""
    run_as: int | None = None
    """The uid and gid the child becomes (a root service's env_scrub flow), or None."""
    covers: tuple[str, ...] = ()
    """Directories hidden under an empty read-only tmpfs in a mount namespace of the child's."""
    binds: tuple[str, ...] = ()
    """Paths under ``covers`` bound back in at their own paths."""
    view_cwd: str = "/"
    """The child's working directory once its view is built (when there are covers)."""

    def wire(self) -> dict[str, Any]:
        """The plain-data form :func:`~._child_setup.apply_child_setup` applies."""
        return {
            "rlimits": [[getattr(resource, name), value] for name, value in self.rlimits.items()],
            "cgroup_procs": list(self.cgroup_procs),
            "pdeathsig": int(signal.SIGKILL) if self.die_with_service else 0,
            "drop_caps": self.drop_capabilities,
            "run_as": self.run_as,
            "covers": list(self.covers),
            "binds": list(self.binds),
            "view_cwd": self.view_cwd,
        }


@attrs.frozen
class Launch:
    """Everything needed to start one flow process.

    The runner builds it, the sandbox tier rewrites it (wrapping ``argv``, scrubbing ``env``,
    adding limits) and the executor spawns it.
    """

    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: Path
    play_sid: str
    play_dir: Path
    workdir: Path
    span_socket: Path
    sdk_dir: Path
    pid_file: Path | None = None
    """Where the executor records ``"<pid> <start time>"`` of the process it spawns, so a
    restarted service can kill a flow its dead predecessor left behind."""
    allow_network: bool = False
    packages_dir: Path | None = None
    """The version's built environment (a ``site-packages`` directory), bound read-only."""
    service_sockets: Mapping[str, Path] = attrs.Factory(dict)
    """The local service sockets the version declared, by name (bound into the sandbox)."""
    preexec: Callable[[], None] | None = None
    rlimits: Mapping[str, int] = attrs.Factory(dict)
    pass_fds: tuple[int, ...] = ()
    """Descriptors the process inherits beyond stdio (e.g. bwrap's seccomp filter, bind
    sources). The executor owns them: it closes them once the process has started or failed to."""
    scope: ProcessScope | None = None
    """What contains every process of this launch (set by the sandbox tier's ``wrap``)."""
    setup: ChildSetup | None = None
    """``preexec`` as data (set by the sandbox tier's ``wrap``), see :class:`ChildSetup`."""
    bind_play_dir: bool = False
    """A warm process's launch: its play files are written after the spawn, so a tier binds
    ``play_dir`` itself (read-only) where it would bind each file (see :class:`WarmTier`)."""


@attrs.frozen
class ExitOutcome:
    """How a flow process ended."""

    exit_code: int | None
    timed_out: bool = False
    cancelled: bool = False
    stderr_tail: str = ""
    stdout_tail: str = ""
    spawn_error: str = ""
    limit_reason: str = ""
    """Which sandbox limit ended the process (memory, processes, CPU time), or ""."""


@runtime_checkable
class ProcessScope(Protocol):
    """Everything one launch started, however it detached itself (``setsid``, double fork).

    A sandbox tier's ``wrap`` attaches one to the launch; the executor kills through it and
    closes it once the run is over.
    """

    def kill_all(self) -> None:
        """SIGKILL every process of the launch that is still alive (never blocks)."""
        ...

    def exit_code(self, raw: int | None) -> int | None:
        """The flow's own exit status from the launched process's (a wrapper such as bwrap
        reports a flow killed by signal N as 128+N: that becomes -N)."""
        ...

    def limit_reason(self, exit_code: int | None) -> str:
        """Why the process ended, if a sandbox limit ended it (memory, processes, CPU); else ""."""
        ...

    async def aclose(self) -> None:
        """Kill what is left, wait until it is gone, release the scope's resources."""
        ...


@runtime_checkable
class SandboxTier(Protocol):
    """A sandbox tier (entry-point group ``hero_logic.sandbox``)."""

    name: str
    strength: int
    """Higher is stronger; ``--sandbox auto`` picks the strongest tier whose check passes."""

    def check(self) -> None:
        """Raise SandboxUnavailable if the tier cannot work on this machine (a cheap probe,
        no side effects: ``--sandbox auto`` calls it on every installed tier)."""
        ...

    def prepare(self) -> None:
        """Start-up of the chosen tier: check it can work here and set up what it needs once
        (e.g. the service made non-dumpable, cgroups, a seccomp filter). Raise
        SandboxUnavailable with a clear message otherwise: the service then refuses to start."""
        ...

    def wrap(self, launch: Launch) -> Launch:
        """The launch rewritten to run inside this tier (argv, env, limits, ``scope``)."""
        ...

    def close(self) -> None:
        """Release what ``prepare`` set up (the kernel is closing)."""
        ...


@runtime_checkable
class ProcessExecutorSlot(Protocol):
    """The executor slot (``hero_logic.executor``): spawns and supervises one flow process."""

    def kill_leftover(self, pid_file: Path) -> bool:
        """Kill the process recorded in ``pid_file`` if it still runs (after a crash)."""
        ...

    async def run(self, launch: Launch, *, timeout_s: float, kill_grace_s: float) -> ExitOutcome:
        """Run ``launch`` to its end. On timeout: TERM, grace, KILL → ``timed_out``. If the
        caller is cancelled, the process group is killed the same way before Cancelled
        propagates."""
        ...


@attrs.frozen
class WarmAssignment:
    """What turns a waiting warm process into one play's flow process (:class:`WarmTier`)."""

    env: Mapping[str, str]
    """The flow's environment as the tier's ``wrap`` would give it (the waiting process adds
    it to its own, which holds a subset of it with the same values)."""
    cwd: str
    """The flow's working directory, as the process sees it."""


class WarmProcessLost(OSError):
    """The warm process died before it took its play: the play runs cold instead."""


@runtime_checkable
class WarmTier(Protocol):
    """A sandbox tier that can start flow processes before their play is known (optional).

    ``wrap_warm`` wraps the launch of a waiting process (``python hero_warm.py``) whose
    ``play_dir`` and ``workdir`` are fresh directories of its own (``bind_play_dir`` set):
    the process sits inside its sandbox, the SDK imported, until it is given a play.
    ``assign_warm`` prepares the sandbox of such a process for the staged ``play`` launch (the
    play's files made visible where the flow finds them, the play's workdir where the flow
    works) and returns what the process must take; it raises OSError if it cannot (the play
    then runs cold). ``warm_eligible`` says whether a play's launch may run warm at all (a
    play that needs the network or service sockets bound at spawn may not)."""

    def wrap_warm(self, launch: Launch) -> Launch:
        """The waiting process's launch, in this tier."""
        ...

    def assign_warm(self, warm: Launch, play: Launch, *, workdir_in_place: bool = False) -> WarmAssignment:
        """Hand the wrapped waiting launch ``warm`` the staged, unwrapped ``play`` launch
        (``workdir_in_place``: the play's workdir, a file system of the run's, is already
        mounted at the warm process's own workdir; leave it there)."""
        ...

    def warm_eligible(self, play: Launch) -> bool:
        """True if ``play`` may run in a process started before it was known."""
        ...

    def warm_refusal(self) -> str:
        """Why this tier, as configured here, starts no process before its play ("" if it may)."""
        ...


@runtime_checkable
class IdleProcess(Protocol):
    """A warm flow process waiting for its play (made by a :class:`WarmExecutor`)."""

    pid: int

    async def wait_ready(self) -> bool:
        """Wait until the process says it is ready (True), or has died first (False)."""
        ...

    def alive(self) -> bool:
        """False once the process is known to have ended."""
        ...

    def stderr_tail(self) -> str:
        """What it wrote on stderr so far (why a process died before it was ready)."""
        ...

    async def aclose(self) -> None:
        """Kill it and everything in its scope, reap it, release its descriptors."""
        ...


@runtime_checkable
class WarmExecutor(Protocol):
    """An executor that can start warm processes and later run a play in one (optional)."""

    async def spawn_idle(self, launch: Launch) -> IdleProcess:
        """Start the wrapped waiting launch; raises OSError if it cannot be spawned."""
        ...

    async def run_idle(
        self,
        idle: IdleProcess,
        assignment: WarmAssignment,
        *,
        pid_file: Path | None,
        timeout_s: float,
        kill_grace_s: float,
    ) -> ExitOutcome:
        """Give ``idle`` its play and supervise it to its end, exactly as ``run`` supervises a
        cold process. Raises WarmProcessLost if the process died before it took the play."""
        ...


class EventSink(Protocol):
    """Where a span listener delivers what a flow sends."""

    async def apply(self, play_sid: str, events: Sequence[tuple[bytes, dict[str, Any]]]) -> None:
        """Persist and publish decoded events (raw line, decoded object), in order."""
        ...

    async def request(self, play_sid: str, event: dict[str, Any]) -> dict[str, Any]:
        """Answer a ``request`` event; returns the ``response`` object to send back."""
        ...


@attrs.frozen
class ListenerStatistics:
    """Counters of one play's listener."""

    lines: int = 0
    malformed: int = 0
    oversized: int = 0
    connections: int = 0


@runtime_checkable
class SpanListenerSlot(Protocol):
    """The span listener slot (``hero_logic.span_listener``)."""

    async def serve(
        self,
        play_sid: str,
        socket_path: Path,
        sink: EventSink,
        *,
        task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Bind ``socket_path`` (0600), report started, then serve flow connections until
        cancelled."""
        ...


class FlowRequestHandler(Protocol):
    """What answers the requests a running flow sends on its span socket: one method per
    request kind (``hero_tracing``'s ``REQUEST_METHODS``), each given the asking play and the
    request's params, returning the response's ``result``. A HeroLogicError raised becomes the
    response's ``error``. The service provides it (``hero_logic.service.FlowRequests``)."""

    async def flow_source(self, play_sid: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The source of the flow ``params["name"]`` that the play may invoke."""
        ...

    async def start_child_play(self, play_sid: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Start (or, for a step it asked before, find) a child play; ``{"play_sid"}``."""
        ...

    async def wait_child_play(self, play_sid: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Wait for a child play of the asking play to settle; its status, output and error."""
        ...

    async def check_answer(self, play_sid: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Check a prefilled answer against its pause's schema, as ``play_resume`` would."""
        ...

    async def checkpoint(self, play_sid: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Confirm every line the flow sent before this request is durable."""
        ...

    async def secret_get(self, play_sid: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The value of a secret the play's entry flow declared; ``{"value"}``."""
        ...


class Redactor(Protocol):
    """Removes secret values from what a play's run sends, before anything is stored."""

    def events(
        self, events: Sequence[tuple[bytes, dict[str, Any]]]
    ) -> Sequence[tuple[bytes, dict[str, Any]]]:
        """The events with every known secret value replaced by ``[secret:NAME]``."""
        ...

    def text(self, text: str) -> str:
        """``text`` with every known secret value replaced by ``[secret:NAME]``."""
        ...


@attrs.frozen
class RunExtras:
    """What the service adds to one run of a play (:class:`RunPreparer`)."""

    packages_dir: Path | None = None
    service_sockets: Mapping[str, Path] = attrs.Factory(dict)
    redactor: Redactor | None = None


class RunPreparer(Protocol):
    """What the kernel asks before each run of a play: the service provides it."""

    async def prepare_run(self, play: Play, version: WorkflowVersion) -> RunExtras:
        """Wait until the run can start (its version's environment is built: the play stays
        ``pending`` meanwhile) and return what it adds. A HeroLogicError fails the play with
        its message (an environment that failed to build, an unknown service socket)."""
        ...


class WaitHandler(Protocol):
    """What delivers events to plays that wait for them (the service's events room,
    ``hero_logic.service.Events``): the kernel calls it when a play starts waiting for an event,
    and before an event wait times out, so an event already sent (the mailbox) is received."""

    async def waiting(self, play: Play) -> None:
        """``play`` awaits resume with event waits: resolve those its mailbox can answer
        (through :meth:`Kernel.resolve`)."""
        ...


@runtime_checkable
class VersionPicker(Protocol):
    """The version picker slot (``hero_logic.version_picker``; built-in: ``weighted``).

    Built with ``from_config(config)``. ``pick`` is pure: given every version of a workflow
    (each with its latest finished benchmark, or none) and checked weights, it returns the
    version to run, a confidence in 0..1, a readable reasoning and a score for every version,
    unscored ones included. With no usable benchmark it returns the current version with
    confidence 0 and says so. Conformance: :func:`hero_logic.testing.check_version_picker`.
    """

    name: str

    def pick(
        self,
        candidates: Sequence[VersionCandidate],
        weights: PickWeights,
        *,
        current_version_sid: str,
    ) -> PickResult:
        """The version to run among ``candidates`` under ``weights``."""
        ...
