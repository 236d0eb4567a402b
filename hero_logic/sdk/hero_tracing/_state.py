"""Whether this process runs inside a play, decided once and lazily.

Outside a play (``HERO_FLOW_SPAN_SOCK`` unset) :func:`get` returns ``None`` and every helper
passes through. Inside one it returns the play's :class:`~hero_tracing._play.Runtime`, built
on first use from the environment (the boot stub builds it explicitly, before the flow's
module runs). The heavy modules (JSON, sockets, hashing) load only then.
"""

from __future__ import annotations

import _thread

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._play import Runtime

__all__ = ["activate", "deactivate", "get"]

_runtime: Runtime | None = None
_decided = False
_lock = _thread.allocate_lock()


def get() -> Runtime | None:
    """The play's runtime, or ``None`` when this process is not running a play."""
    if _decided:
        return _runtime
    with _lock:
        if not _decided:
            import os  # first call only

            if os.environ.get("HERO_FLOW_SPAN_SOCK"):
                from ._play import Runtime

                activate(Runtime.from_environ(os.environ))
            else:
                activate(None)
    return _runtime


def activate(runtime: Runtime | None) -> None:
    """Make ``runtime`` this process's play (``None``: pass-through mode)."""
    global _runtime, _decided
    _runtime = runtime
    _decided = True


def deactivate() -> None:
    """Forget the decision, so the next :func:`get` looks at the environment again."""
    global _runtime, _decided
    _runtime = None
    _decided = False
