"""The service's side of the authoring SDK.

The SDK itself is the stdlib-only package ``hero_tracing``, which lives in this directory
and is imported by every flow process as the top-level ``hero_tracing`` (never as
``hero_logic.sdk.hero_tracing``, which would be a second copy with its own state). This
module tells the executor where it is (:data:`SDK_DIR`, :data:`BOOT_SCRIPT`), re-exports the
sans-IO wire helpers the span listener needs, and reads flow signatures statically.
"""

from __future__ import annotations

import sys
from importlib.util import find_spec
from pathlib import Path

SDK_DIR = Path(__file__).resolve().parent
"""The directory holding the ``hero_tracing`` package (put it on a flow process's path)."""

BOOT_SCRIPT = SDK_DIR / "hero_boot.py"
"""The flow process's main script: ``[python, "-I", "-S", BOOT_SCRIPT]``."""

if find_spec("hero_tracing") is None:  # an install that does not map it top-level
    sys.path.append(str(SDK_DIR))

TYPE_CHECKING = False
if TYPE_CHECKING:  # type checkers see the package through its place in this tree
    from .hero_tracing._fields import type_name
    from .hero_tracing._wire import (
        ENV_ENTRY,
        ENV_INPUT_FILE,
        ENV_MAX_WAIT_MS,
        ENV_NETWORK,
        ENV_PACKAGES,
        ENV_PARENT_SPAN,
        ENV_PLAY_SID,
        ENV_REPLAY_FILE,
        ENV_SANDBOX,
        ENV_SERVICES,
        ENV_SLEEP_EXIT_MS,
        ENV_SOURCE_FILE,
        ENV_SPAN_SOCK,
        ENV_VERSION_SID,
        EVENT_TYPES,
        EXIT_AWAITING_RESUME,
        EXIT_FAILED,
        EXIT_NO_ENTRY,
        EXIT_OK,
        MAX_LINE_BYTES,
        REQUEST_METHODS,
        SPAN_KINDS,
        STEP_TIMEOUT_TYPE,
        WAIT_KINDS,
        decode_event,
        encode_event,
        encode_response,
        failure_entry,
        resume_id,
        step_key,
        wait_id,
    )
else:  # at run time it is the top-level package, the one flow processes import
    from hero_tracing._fields import type_name
    from hero_tracing._wire import (
        ENV_ENTRY,
        ENV_INPUT_FILE,
        ENV_MAX_WAIT_MS,
        ENV_NETWORK,
        ENV_PACKAGES,
        ENV_PARENT_SPAN,
        ENV_PLAY_SID,
        ENV_REPLAY_FILE,
        ENV_SANDBOX,
        ENV_SERVICES,
        ENV_SLEEP_EXIT_MS,
        ENV_SOURCE_FILE,
        ENV_SPAN_SOCK,
        ENV_VERSION_SID,
        EVENT_TYPES,
        EXIT_AWAITING_RESUME,
        EXIT_FAILED,
        EXIT_NO_ENTRY,
        EXIT_OK,
        MAX_LINE_BYTES,
        REQUEST_METHODS,
        SPAN_KINDS,
        STEP_TIMEOUT_TYPE,
        WAIT_KINDS,
        decode_event,
        encode_event,
        encode_response,
        failure_entry,
        resume_id,
        step_key,
        wait_id,
    )

from ._signature import FlowSignature, FlowSourceError, read_flow_signature  # noqa: E402  (after the path fallback)

__all__ = [
    "BOOT_SCRIPT",
    "ENV_ENTRY",
    "ENV_INPUT_FILE",
    "ENV_MAX_WAIT_MS",
    "ENV_NETWORK",
    "ENV_PACKAGES",
    "ENV_PARENT_SPAN",
    "ENV_PLAY_SID",
    "ENV_REPLAY_FILE",
    "ENV_SANDBOX",
    "ENV_SERVICES",
    "ENV_SLEEP_EXIT_MS",
    "ENV_SOURCE_FILE",
    "ENV_SPAN_SOCK",
    "ENV_VERSION_SID",
    "EVENT_TYPES",
    "EXIT_AWAITING_RESUME",
    "EXIT_FAILED",
    "EXIT_NO_ENTRY",
    "EXIT_OK",
    "MAX_LINE_BYTES",
    "REQUEST_METHODS",
    "SDK_DIR",
    "SPAN_KINDS",
    "STEP_TIMEOUT_TYPE",
    "WAIT_KINDS",
    "FlowSignature",
    "FlowSourceError",
    "decode_event",
    "encode_event",
    "encode_response",
    "failure_entry",
    "read_flow_signature",
    "resume_id",
    "step_key",
    "type_name",
    "wait_id",
]
