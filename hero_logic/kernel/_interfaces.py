"""The slot interfaces the kernel drives: executor, sandbox tier and span listener.

Each is declared as a Protocol; implementations are found by name through entry points
(``hero_logic.executor``, ``hero_logic.sandbox``, ``hero_logic.span_listener``) and are built
with ``from_config(config)``. The store slot is declared in :mod:`._store_api`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs
import trio

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

    from ._library_records import PickResult, PickWeights, VersionCandidate
    from ._model import Play, WorkflowVersion

__all__ = [
    "EventSink",
    "ExitOutcome",
    "FlowRequestHandler",
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
]


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
