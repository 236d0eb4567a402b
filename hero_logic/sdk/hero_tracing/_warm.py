"""The waiting side of a warm flow process (run by ``hero_warm.py``).

A warm process is started inside its sandbox before its play is known: the interpreter is
up and the SDK imported. It says so on its standard input, a Unix socket the executor holds
the other end of, and waits there for one play::

    process → executor   WARM_READY                      ("hero_warm ready\\n")
    executor → process   {"env": {...}, "cwd": "..."}\\n    (one JSON line)

``env`` is the flow's environment as a cold start would have it (the process already holds a
subset of it, with the same values); ``cwd`` its working directory. The process takes both,
puts ``/dev/null`` on its standard input (the socket is gone from the flow's view) and runs the
play exactly as ``hero_boot.py`` would. It serves that one play and exits; if the executor
closes the socket instead (the pool recycles it), it exits at once with status 0.
"""

from __future__ import annotations

import os
import sys

from . import _jsoncodec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

__all__ = ["WARM_READY", "decode_assignment", "encode_assignment", "main", "preload", "wait_for_play"]

WARM_READY = b"hero_warm ready\n"
"""What a warm process writes once it is ready for its play."""
MAX_ASSIGNMENT = 1024 * 1024


def encode_assignment(env: dict[str, str], cwd: str) -> bytes:
    """The line that hands a warm process its play (the executor's side)."""
    encode = _jsoncodec.make_encoder(None, sort_keys=False, allow_nan=False)  # type: ignore[arg-type]  # no default: only str values
    return encode({"env": env, "cwd": cwd}).encode() + b"\n"


def preload() -> None:
    """Import everything a play's boot path imports, so the play pays none of it (the flow's
    own ``from hero_tracing import flow`` included: the package is imported with this module).
    Nothing here reads the environment."""
    import atexit  # noqa: F401

    from . import _boot, _output, _play, _resources  # noqa: F401


def decode_assignment(line: bytes) -> tuple[dict[str, str], str]:
    """``(env, cwd)`` from an assignment line; ValueError if it is not one."""
    message: Any = _jsoncodec.loads(line.decode())
    env = message.get("env") if isinstance(message, dict) else None
    cwd = message.get("cwd") if isinstance(message, dict) else None
    if not isinstance(env, dict) or not isinstance(cwd, str):
        msg = "a warm process's assignment must be {\"env\": {...}, \"cwd\": \"...\"}"
        raise ValueError(msg)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        msg = "a warm process's environment must map strings to strings"
        raise ValueError(msg)
    return env, cwd


def wait_for_play(fd: int = 0) -> tuple[dict[str, str], str] | None:
    """Say ready on ``fd``, then wait for the assignment; None if the executor hung up."""
    os.write(fd, WARM_READY)
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > MAX_ASSIGNMENT:
            msg = "the assignment of a warm process is too long"
            raise ValueError(msg)
    return decode_assignment(data)


def _set_dumpable(dumpable: bool) -> None:
    """``prctl(PR_SET_DUMPABLE)``: a non-dumpable process cannot be traced, nor its memory or
    environment read, by another process of its uid (an env_scrub flow shares the service's)."""
    import ctypes

    ctypes.CDLL(None).prctl(4, int(dumpable), 0, 0, 0)  # PR_SET_DUMPABLE


def main() -> NoReturn:
    """Wait for a play, take it, run it as the boot stub would. While it waits the process is
    non-dumpable, so no flow of the same uid can tamper with the process a later play gets;
    once it has its play it is dumpable again, as a cold start is."""
    _set_dumpable(False)
    preload()
    from ._boot import main as run_play

    assignment = wait_for_play()
    if assignment is None:
        raise SystemExit(0)
    _set_dumpable(True)
    env, cwd = assignment
    sys.argv[0] = sys.argv[0].rpartition("/")[0] + "/hero_boot.py"  # as a cold start has it
    os.environ.update(env)
    os.chdir(cwd)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    run_play()
