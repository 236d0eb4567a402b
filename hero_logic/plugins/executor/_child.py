"""What the executor holds of a started flow process, however it was started."""

from __future__ import annotations

from typing import Protocol

import trio

__all__ = ["Child", "Started"]


class Child(Protocol):
    """A started flow process: forked by the service (``_process._Child``) or by the spawner
    (``_spawner.SpawnedChild``)."""

    pid: int

    @property
    def returncode(self) -> int | None:
        """Its return code once awaited (negative: the signal that killed it)."""
        ...

    @property
    def orphaned(self) -> bool:
        """True once the process that started it (the spawner) is known dead: the process is
        dying with it, even if it still answers for a moment."""
        ...

    async def wait(self) -> int:
        """Wait until it has ended; its return code."""
        ...

    def close(self) -> None:
        """Release what the handle holds."""
        ...


Started = tuple[Child, trio.lowlevel.FdStream, trio.lowlevel.FdStream]
"""A started process and the read ends of its stdout and stderr pipes."""
