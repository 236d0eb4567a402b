"""Parent/child links between plays: the kernel's alone to write.

A child play (``flow.invoke(..., spawn=True)``) is linked to its parent by index rows written
in the **same commit** as the child's record, so a crash leaves a child linked or not created,
never an orphan; links are never a list rewritten by read-modify-write:

==================  ======================================  =================================
table               key                                     value
==================  ======================================  =================================
``play_children``   ``{parent_sid}/{child_sid}``            the parent's step key (or empty)
``children``        ``{parent_sid}/{step_key}``             child sid (a re-run finds its child)
``tree_size``       root play sid                           descendants created so far (text)
==================  ======================================  =================================

Creations within one tree are taken one at a time (a lock per root play), so the per-play and
per-tree limits hold however many threads of a flow ask at once, and a parent that has ended
gets no new child. :class:`~hero_logic.kernel.Repo` fills ``Play.child_play_sids`` from these
rows on every read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from ._errors import WrongState
from ._keyed_lock import KeyedLock
from ._model import Play, PlayStatus
from ._store_api import Put, Write

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from ._repo import Repo

__all__ = ["MAX_CHILDREN", "MAX_CHILD_DEPTH", "PlayTree"]

MAX_CHILD_DEPTH = 8
"""Deepest nesting of child plays (flow.invoke(spawn=True) inside a child, and so on)."""
MAX_CHILDREN = 200
"""Most child plays one play may start."""


@attrs.define(eq=False)
class PlayTree:
    """Reads and writes of the links between plays, and the limits on a tree's growth."""

    repo: Repo
    max_descendants: int = 1_000
    """Most plays one root play may have below it, at every depth together."""
    _locks: KeyedLock = attrs.Factory(KeyedLock)

    def hold(self, root_sid: str) -> AbstractAsyncContextManager[None]:
        """Hold the lock of one tree (by its root play's sid) for the block."""
        return self._locks.hold(root_sid)

    async def child_for_step(self, parent_sid: str, step_key: str) -> str | None:
        """The child play ``parent_sid`` started at ``step_key`` before (a re-run asks again)."""
        if not step_key:
            return None
        raw = await self.repo.store.get("children", f"{parent_sid}/{step_key}")
        return raw.decode() if raw is not None else None

    async def children(self, parent_sid: str) -> list[str]:
        """The sids of every child play of ``parent_sid``, oldest first."""
        return await self.repo.child_sids(parent_sid)

    async def root_of(self, play: Play) -> str:
        """The sid of the root play of ``play``'s tree."""
        return play.root_play_sid or play.sid

    async def link_writes(self, parent: Play, child: Play, step_key: str) -> list[Write]:
        """The rows that link ``child`` under ``parent``, to commit with the child's record.

        Raises WrongState when the parent has ended, already started :data:`MAX_CHILDREN`
        children, sits :data:`MAX_CHILD_DEPTH` deep, or its tree has used its budget of
        ``max_descendants`` plays. Call it holding the tree's lock (:meth:`hold`).
        """
        if parent.status.is_terminal:
            msg = f"play {parent.sid} has ended ({parent.status.value}) and starts no child plays"
            raise WrongState(msg)
        started = len(await self.repo.child_sids(parent.sid))
        if started >= MAX_CHILDREN:
            msg = f"play {parent.sid} already started {started} child plays, the most one play may start"
            raise WrongState(msg)
        depth = await self._depth(parent)
        if depth >= MAX_CHILD_DEPTH:
            msg = (
                f"play {parent.sid} is nested {depth} plays deep; child plays may nest at most "
                f"{MAX_CHILD_DEPTH} deep (does the flow spawn itself?)"
            )
            raise WrongState(msg)
        root = await self.root_of(parent)
        raw = await self.repo.store.get("tree_size", root)
        size = int(raw.decode()) if raw else 0
        if size >= self.max_descendants:
            msg = (
                f"play tree {root} already holds {size} plays below its root, its budget "
                f"(max_descendants {self.max_descendants}): start fewer child plays, or raise "
                "--max-descendants / HERO_LOGIC_MAX_DESCENDANTS"
            )
            raise WrongState(msg)
        writes: list[Write] = [
            Put("play_children", f"{parent.sid}/{child.sid}", step_key.encode()),
            Put("tree_size", root, str(size + 1).encode()),
        ]
        if step_key:
            writes.append(Put("children", f"{parent.sid}/{step_key}", child.sid.encode()))
        return writes

    async def _depth(self, play: Play) -> int:
        depth, sid = 1, play.parent_play_sid
        while sid:
            depth += 1
            if depth > MAX_CHILD_DEPTH:
                break
            sid = (await self.repo.get_play(sid)).parent_play_sid
        return depth

    async def awaiting_ancestors(self, play: Play) -> list[Play]:
        """The chain of ``play``'s ancestors that await resume only because of it, nearest
        first: a child answered makes them ``running`` again."""
        out: list[Play] = []
        sid = play.parent_play_sid
        while sid:
            parent = await self.repo.get_play(sid)
            if parent.status is not PlayStatus.AWAITING_RESUME:
                break
            out.append(parent)
            sid = parent.parent_play_sid
        return out

    async def any_child_awaiting(self, play: Play) -> bool:
        """True if a child play of ``play`` awaits resume."""
        for child_sid in await self.children(play.sid):
            child = await self.repo.find_play(child_sid)
            if child is not None and child.status is PlayStatus.AWAITING_RESUME:
                return True
        return False
