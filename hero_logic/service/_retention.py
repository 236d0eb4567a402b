"""Retention: ended plays are deleted, one by ``play_delete`` or all past ``--retention-days``.

A play leaves a record, its span events (up to 256 MiB a run) and a workdir (up to
``--workdir-mb`` a run) behind; without retention they pile up until the disk is full. Both ways
of deleting go through the kernel (:mod:`hero_logic.kernel._retire`), which deletes whole play
trees (a root play with its child plays) and only trees that can never run again: every play in
them ended, and no unfinished play replays their steps. A paused play is never deleted, however
old.

* ``play_delete(play_sid)``: the record, events, links and play directory (workdir included) of
  an ended root play and of every child play below it. Refused (-32002) for a play that has not
  ended, for a tree with an unfinished play, and for a child play alone.
* ``--retention-days N`` (0: keep everything, the default): a sweep at start-up and then every
  hour deletes the trees whose every play ended more than N days ago, oldest first, at most
  :data:`SWEEP_BATCH` trees per step with a pause between steps, so that a first sweep over a
  large backlog never holds the store or the event loop for long.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import attrs
import trio

from hero_logic.kernel import now_ms

from ._marker import rpc_method

if TYPE_CHECKING:
    from hero_logic.kernel import Kernel

__all__ = ["SWEEP_BATCH", "SWEEP_INTERVAL_S", "Retention"]

log = logging.getLogger("hero_logic.service")

SWEEP_INTERVAL_S = 3600.0
"""Time between two retention sweeps."""
SWEEP_BATCH = 50
"""Play trees deleted per step of a sweep."""
SWEEP_PAUSE_S = 0.05
"""Pause between two steps of a sweep (other work goes first)."""
DAY_MS = 86_400_000


@attrs.define(eq=False)
class Retention:
    """``play_delete`` and the retention sweep."""

    kernel: Kernel

    @rpc_method(admin=True)
    async def play_delete(self, play_sid: str) -> list[str]:
        """Delete an ended play for good: its record, span events, links and workdir.

        A root play goes with every child play below it; the sids deleted are returned, the
        root first. Refused (-32002) while any play of the tree has not ended (cancel it or
        wait), while an unfinished retry replays its steps, and for a child play alone
        (delete its root)."""
        return await self.kernel.retirer.delete_tree(play_sid)

    async def run(self) -> None:
        """Sweep now and then every :data:`SWEEP_INTERVAL_S` (a kernel system task, started
        when ``--retention-days`` is set)."""
        days = self.kernel.config.retention_days
        while days:
            await self.sweep(now_ms() - days * DAY_MS)
            await trio.sleep(SWEEP_INTERVAL_S)

    async def sweep(self, cutoff_ms: int) -> int:
        """Delete every play tree whose plays all ended before ``cutoff_ms``; how many plays."""
        total = 0
        after = ""
        while True:
            deleted, after = await self.kernel.retirer.delete_ended_before(cutoff_ms, max_trees=SWEEP_BATCH, after=after)
            total += len(deleted)
            if not after:
                break
            await trio.sleep(SWEEP_PAUSE_S)
        if total:
            log.info("retention: deleted %d ended play(s) older than --retention-days", total)
        return total
