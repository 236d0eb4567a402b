"""The data model: frozen attrs records shared by the store, the kernel and the RPC layer.

Records are values (``@attrs.frozen``); a change is a new record made with ``attrs.evolve``.
Times are integers, milliseconds since the epoch. JSON-valued fields (``input_data``,
``output_data``, ``tags``, ``schema``...) hold plain JSON values (dict/list/str/int/float/bool/
None), never strings of JSON. The one converter between records and JSON lives in
:mod:`hero_logic.kernel._convert`.
"""

from __future__ import annotations

import enum
import os
import threading
import time
from typing import Any

import attrs

__all__ = [
    "TERMINAL_PLAY_STATUSES",
    "FieldType",
    "FlowField",
    "Play",
    "PlayStatus",
    "ResumeKind",
    "ResumeRequest",
    "Span",
    "SpanKind",
    "SpanStatus",
    "Workflow",
    "WorkflowVersion",
    "new_sid",
    "now_ms",
]

JSON = Any
"""Any JSON value: dict, list, str, int, float, bool or None."""


def now_ms() -> int:
    """Milliseconds since the epoch, as an integer."""
    return time.time_ns() // 1_000_000


def new_sid(prefix: str) -> str:
    """A new sortable, unique id such as ``play_0193a1b2c3d4_9f8e7d6c5b4a``.

    The hex millisecond timestamp first makes ids sort by creation time; the 48 bits after
    it are random for the first id of a millisecond and counted up from there for the next
    ones (as ULIDs do), so ids made by this process in the same millisecond still sort in
    creation order, and a clock that steps back never makes a later id sort first.
    """
    global _last_stamp, _last_tail
    with _sid_lock:
        stamp = now_ms()
        if stamp <= _last_stamp:
            stamp, tail = _last_stamp, (_last_tail + 1) & _TAIL_MASK
            if tail == 0:  # 2**48 ids in one millisecond: borrow the next one
                stamp += 1
        else:
            tail = int.from_bytes(os.urandom(6)) >> 1  # room to count up without wrapping
        _last_stamp, _last_tail = stamp, tail
    return f"{prefix}_{stamp:012x}_{tail:012x}"


_TAIL_MASK = (1 << 48) - 1
_sid_lock = threading.Lock()
_last_stamp = 0
_last_tail = 0


class PlayStatus(enum.StrEnum):
    """Where a play is in its life: ``pending → running → (awaiting_resume → running)* → end``."""

    PENDING = "pending"
    RUNNING = "running"
    AWAITING_RESUME = "awaiting_resume"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def is_terminal(self) -> bool:
        """True for the four end states; a terminal play never changes again."""
        return self in TERMINAL_PLAY_STATUSES


TERMINAL_PLAY_STATUSES = frozenset(
    {PlayStatus.SUCCESS, PlayStatus.FAILED, PlayStatus.CANCELLED, PlayStatus.TIMED_OUT}
)


class SpanStatus(enum.StrEnum):
    """The state of one span. An unknown status on the wire is stored as ``failed``."""

    PENDING = "pending"
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    REPLAYED = "replayed"


class SpanKind(enum.StrEnum):
    """What a span stands for: the play's root flow, a step, an instrumented RPC, a sub-flow."""

    FLOW_ROOT = "flow_root"
    STEP = "step"
    RPC = "rpc"
    SUBFLOW = "subflow"
    OTHER = "other"


class FieldType(enum.StrEnum):
    """The JSON type of a declared flow input or output."""

    STRING = "string"
    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    OBJECT = "object"
    ARRAY = "array"


@attrs.frozen
class FlowField:
    """One declared input or output of a flow, read from its ``@flow`` decorator."""

    name: str
    field_type: FieldType = FieldType.STRING
    description: str = ""
    required: bool = False
    default: JSON = None


@attrs.frozen
class Workflow:
    """A named flow in the library; its signature is that of its current version."""

    sid: str
    name: str
    description: str = ""
    tags: list[str] = attrs.Factory(list)
    current_version_sid: str = ""
    inputs: list[FlowField] = attrs.Factory(list)
    outputs: list[FlowField] = attrs.Factory(list)
    created_at: int = 0
    updated_at: int = 0


@attrs.frozen
class WorkflowVersion:
    """One immutable source of a workflow, with the signature read from its entry ``@flow``."""

    sid: str
    workflow_sid: str
    python_source: str = ""
    version_label: str = ""
    notes: str = ""
    entry_flow: str = ""
    inputs: list[FlowField] = attrs.Factory(list)
    outputs: list[FlowField] = attrs.Factory(list)
    created_at: int = 0
    min_sandbox: str = ""
    """The weakest sandbox tier its plays may run in (``@flow(sandbox="bwrap")``); "" = any."""
    allow_network: bool = False
    """Whether its plays may use the network (``@flow(network=True)``); tiers that isolate
    the network keep it off otherwise."""
    dependencies: list[str] = attrs.Factory(list)
    """The PEP 723 ``dependencies`` of its source, as written (CONTRACT.md §12)."""
    requires_python: str = ""
    """The PEP 723 ``requires-python`` of its source, checked against the flow interpreter."""
    lock: str = ""
    """The pinned requirements (with hashes) uv resolved the dependencies to at save."""
    lock_hash: str = ""
    """Identifies its environment: versions with the same lock and interpreter share one."""
    env_status: str = "none"
    """``none`` (no dependencies) | ``building`` | ``ready`` | ``failed``."""
    env_error: str = ""
    """Why the environment could not be built (``env_status == "failed"``)."""
    secrets: list[str] = attrs.Factory(list)
    """Secret names its entry flow declares (``@flow(secrets=[...])``): the only ones it may read."""
    services: list[str] = attrs.Factory(list)
    """Service socket names its entry flow declares (``@flow(services=[...])``)."""


class ResumeKind(enum.StrEnum):
    """What an open wait of a play waits for: an answer (a pause, ``ask_user``, an
    ``on_answer`` branch), a time (``flow.sleep``, a wait's timeout) or an event."""

    INPUT = "input"
    TIMER = "timer"
    EVENT = "event"


@attrs.frozen
class ResumeRequest:
    """An open (or answered) wait of a play: what it waits for and, once resolved, how."""

    id: str
    name: str
    schema: JSON = None
    ui: JSON = None
    asked_at_span_id: str = ""
    asked_at: int = 0
    payload: JSON = None
    resumed_at: int | None = None
    play_sid: str = ""
    """The play that asked (for a parent listing the open pauses of its child plays)."""
    answered_by: str = ""
    """Who answered, as the caller said (an email, a service name): free text, for the audit."""
    url: str = ""
    """The signed link a person opens to answer (filled when read, never stored)."""
    kind: ResumeKind = ResumeKind.INPUT
    wake_at: int | None = None
    """A timer's wake time; an event wait's timeout (None: none), in ms since the epoch."""
    event_key: str = ""
    """The key of the event an ``event`` wait waits for."""
    group: str = ""
    """The ``flow.wait_any`` this wait is a branch of ("" for none): its branches share it."""
    branch: str = ""
    """The branch's name in its group (``timeout`` for the group's timer)."""
    via: str = ""
    """How it was resolved: ``rpc`` (play_resume), ``url`` (an approval page), ``webhook``,
    ``timer``, ``timeout``, ``event``, ``prefill``."""
    event_id: str = ""
    """The event that resolved an ``event`` wait."""
    withdrawn_by: str = ""
    """For a withdrawn branch of a group: the branch that won."""


@attrs.frozen
class Play:
    """One execution of a pinned workflow version."""

    sid: str
    workflow_sid: str
    workflow_version_sid: str
    status: PlayStatus = PlayStatus.PENDING
    name: str = ""
    input_data: dict[str, JSON] = attrs.Factory(dict)
    output_data: JSON = None
    error_message: str = ""
    parent_play_sid: str = ""
    parent_span_id: str = ""
    root_play_sid: str = ""
    """The play at the top of this play's tree ("" for a root play itself)."""
    child_play_sids: list[str] = attrs.Factory(list)
    """Filled on read from the kernel's link rows (:mod:`._tree`); never stored in the record."""
    pending_resumes: list[ResumeRequest] = attrs.Factory(list)
    received_resumes: list[ResumeRequest] = attrs.Factory(list)
    withdrawn_resumes: list[ResumeRequest] = attrs.Factory(list)
    """Branches of a ``flow.wait_any`` another branch won (never answered)."""
    prefill_resumes: dict[str, JSON] = attrs.Factory(dict)
    reuse_steps_of: str = ""
    """A play whose finished steps this play replays (``play_retry(reuse_steps=True)``)."""
    fork_of: str = ""
    """The play this one was forked from (``play_fork``): it replays what that play finished,
    and the answers it received, before ``fork_from_span_id``, matched by shape key."""
    fork_from_span_id: str = ""
    """The span of ``fork_of`` this play runs afresh from (with everything after it)."""
    total_cost_usd: float = 0.0
    timeout_ms: int = 0
    """Wall-clock budget of each run of the play (0: the service's default); every resume and
    recovery starts a new run with a new budget."""
    deadline_at: int | None = None
    """When the whole play must have ended, over all its runs and pauses (None: no deadline)."""
    sandbox_tier: str = ""
    exit_code: int | None = None
    attempts: int = 0
    """Runs started since the play last paused (or began); bounds crash recovery."""
    event_bytes: int = 0
    """Bytes of span events the play's finished runs stored (bounded per play)."""
    skipped_span_lines: int = 0
    """Span socket lines the listener dropped as malformed or oversized (the play went on)."""
    created_at: int = 0
    started_at: int | None = None
    completed_at: int | None = None
    duration_ms: int | None = None


@attrs.frozen
class Span:
    """One node of a play's span tree, folded from the events the flow streamed."""

    span_id: str
    play_sid: str
    name: str
    parent_id: str = ""
    kind: SpanKind = SpanKind.STEP
    status: SpanStatus = SpanStatus.RUNNING
    start_ms: int = 0
    end_ms: int | None = None
    tags: dict[str, JSON] = attrs.Factory(dict)
    logs: list[str] = attrs.Factory(list)
    error: str = ""
    step_key: str = ""
    source_file: str = ""
    source_line: int = 0
    child_play_sid: str = ""
    rpc_service: str = ""
    rpc_method: str = ""
    input: JSON = None
    """A step's arguments by parameter name (JSON; a string of cut JSON when over 4 KiB)."""
    output: JSON = None
    """A step's output (JSON; a string of cut JSON when over 4 KiB); None until it returns."""
