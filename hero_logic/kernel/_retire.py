"""Deleting ended plays: a whole tree at a time, and never a play that could still run.

``play_delete`` (one play) and the retention sweep (``--retention-days``) both come here: the
kernel is the only writer of plays and of their links. The unit is a **tree**: a root play
with every child play below it (a child is deleted with its root, never alone: its parent's
re-run finds it by step key). A tree is deleted only when

* every play in it has ended (success, failed, timed_out, cancelled): an ended play never
  runs again, an ended parent starts no child, so the tree cannot change any more; and
* no unfinished play replays its steps (``play_retry(reuse_steps=True)`` of one of them).

What goes: the play records, their workflow index rows, idempotency keys and link rows
(``play_children``, ``children``, ``tree_size``), all in one commit (a crash leaves all of them
or none); then their span events, in bounded batches; then their play directories (staged
files and workdir), off the event loop. Events or files a crash leaves behind belong to no
play any more and are never read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import trio

from ._errors import WrongState
from ._model import Play
from ._repo import DELETE_BATCH, decode_record
from ._store_api import Delete, Write

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._repo import Repo
    from ._tree import PlayTree

__all__ = ["RETENTION_SCAN", "PlayRetirer"]

RETENTION_SCAN = 256
"""Play records read at a time by the retention sweep."""
MAX_REPLAY_CHAIN = 200
"""Most plays followed up a chain of retries and forks (a fork of a fork reads the first too)."""
RESCAN_MS = 5000
"""How far back each look for new plays starts again (records committed out of order)."""


@attrs.define(eq=False)
class PlayRetirer:
    """Finds the plays that may go and deletes them (for the kernel)."""

    repo: Repo
    tree: PlayTree
    is_active: Callable[[str], bool]
    remove_dir: Callable[[str], None]
    """Removes a play's directory (staged files and workdir); runs in a worker thread."""
    _reusers: dict[str, set[str]] = attrs.Factory(dict)
    """Play sid → the plays that replay its steps and had not ended when last seen."""
    _scanned_ms: int = 0
    """Creation time of the newest play :meth:`_refresh_reusers` has read."""

    async def tree_of(self, root: Play) -> list[Play]:
        """``root`` and every play below it, parents before their children."""
        out = [root]
        i = 0
        while i < len(out):
            for sid in await self.repo.child_sids(out[i].sid):
                child = await self.repo.find_play(sid)
                if child is not None:
                    out.append(child)
            i += 1
        return out

    async def _refresh_reusers(self) -> None:
        """Note the unfinished plays that replay another play's steps, reading only the plays
        created since the last look (and a few seconds before: a record may be committed a
        little after a newer one)."""
        after = f"play_{max(0, self._scanned_ms - RESCAN_MS):012x}" if self._scanned_ms else ""
        while True:
            rows = await self.repo.store.scan("plays", start_after=after, limit=RETENTION_SCAN)
            for key, raw in rows:
                play = decode_record(Play, raw)
                if not play.status.is_terminal and (play.reuse_steps_of or play.fork_of):
                    for used in await self._replayed_by(play):
                        self._reusers.setdefault(used, set()).add(play.sid)
                self._scanned_ms = max(self._scanned_ms, play.created_at)
                after = key
            if len(rows) < RETENTION_SCAN:
                return
            await trio.lowlevel.checkpoint()

    async def _replayed_by(self, play: Play) -> set[str]:
        """The plays whose events a run of ``play`` reads: the one it retries with its steps
        (``reuse_steps_of``), the one it was forked from (``fork_of``), and theirs, up the chain."""
        found: set[str] = set()
        todo = [play.reuse_steps_of, play.fork_of]
        while todo and len(found) < MAX_REPLAY_CHAIN:
            sid = todo.pop()
            if not sid or sid in found:
                continue
            found.add(sid)
            source = await self.repo.find_play(sid)
            if source is not None:
                todo += [source.reuse_steps_of, source.fork_of]
        return found

    async def _unfinished_reuser(self, play_sid: str) -> str:
        """An unfinished play that replays ``play_sid``'s steps, or ""."""
        for sid in sorted(self._reusers.get(play_sid, ())):
            reuser = await self.repo.find_play(sid)
            if reuser is not None and not reuser.status.is_terminal:
                return sid
            self._reusers[play_sid].discard(sid)  # it ended (or went): it protects nothing now
        return ""

    async def why_not(self, plays: list[Play]) -> str:
        """Why this tree may not be deleted now, or ""."""
        root = plays[0]
        for play in plays:
            where = "" if play is root else f" (a child play in the tree of {root.sid})"
            if not play.status.is_terminal or self.is_active(play.sid):
                return (
                    f"play {play.sid}{where} has not ended ({play.status.value}): it could still "
                    "run, so it is kept; cancel it (play_cancel) or wait for it to end, then delete"
                )
            reuser = await self._unfinished_reuser(play.sid)
            if reuser:
                return (
                    f"play {reuser} has not ended and replays the steps of play "
                    f"{play.sid}{where} (play_retry with reuse_steps, or play_fork): delete it once "
                    "that play has ended"
                )
        return ""

    async def delete_tree(self, play_sid: str) -> list[str]:
        """Delete the ended root play ``play_sid`` with its whole tree; the sids deleted.

        Raises NotFound for an unknown play and WrongState, saying why, for a child play or a
        tree that could still run."""
        play = await self.repo.get_play(play_sid)
        if play.parent_play_sid:
            root = play.root_play_sid or play.parent_play_sid
            msg = (
                f"play {play_sid} is a child play of {play.parent_play_sid}: its parent's record "
                f"and re-runs refer to it, so it goes only with its tree: delete the root play {root}"
            )
            raise WrongState(msg)
        async with self.tree.hold(play_sid):
            plays = await self.tree_of(play)
            await self._refresh_reusers()
            problem = await self.why_not(plays)
            if problem:
                msg = f"play_delete: {problem}"
                raise WrongState(msg)
            await self._delete(plays)
        return [p.sid for p in plays]

    async def delete_ended_before(self, cutoff_ms: int, *, max_trees: int, after: str = "") -> tuple[list[str], str]:
        """Delete up to ``max_trees`` trees whose every play ended before ``cutoff_ms``,
        oldest first, from the play after ``after``; returns the deleted sids and where to go
        on from ("" once every play created before the cutoff was looked at)."""
        await self._refresh_reusers()
        deleted: list[str] = []
        trees = 0
        while trees < max_trees:
            rows = await self.repo.store.scan("plays", start_after=after, limit=RETENTION_SCAN)
            for key, raw in rows:
                after = key
                play = decode_record(Play, raw)
                if play.created_at >= cutoff_ms:
                    return deleted, ""  # sids sort by creation: every later play is newer
                if play.parent_play_sid or not _ended_before(play, cutoff_ms):
                    continue
                async with self.tree.hold(play.sid):
                    plays = await self.tree_of(play)
                    if not all(_ended_before(p, cutoff_ms) for p in plays) or await self.why_not(plays):
                        continue
                    await self._delete(plays)
                deleted += [p.sid for p in plays]
                trees += 1
                if trees >= max_trees:
                    return deleted, after
            if len(rows) < RETENTION_SCAN:
                return deleted, ""
        return deleted, after

    async def _delete(self, plays: list[Play]) -> None:
        writes: list[Write] = []
        keys_of: dict[str, set[str]] = {}
        for play in plays:
            writes += [
                Delete("plays", play.sid),
                Delete("wf_plays", f"{play.workflow_sid}/{play.sid}"),
                Delete("tree_size", play.sid),
            ]
            for table in ("play_children", "children"):
                writes += [Delete(table, k) for k, _ in await self.repo.store.scan(table, f"{play.sid}/")]
            keys_of.setdefault(play.workflow_sid, set()).add(play.sid)
        for workflow_sid, sids in keys_of.items():  # idempotency keys that name these plays
            rows = await self.repo.store.scan("play_keys", f"{workflow_sid}/")
            writes += [Delete("play_keys", k) for k, v in rows if v.decode() in sids]
        await self.repo.commit(writes)
        for play in plays:
            self.repo.forget_fold(play.sid)
            while rows := await self.repo.store.scan("events", f"{play.sid}/", limit=DELETE_BATCH):
                await self.repo.commit([Delete("events", key) for key, _ in rows])
            await trio.to_thread.run_sync(self.remove_dir, play.sid)


def _ended_before(play: Play, cutoff_ms: int) -> bool:
    return play.status.is_terminal and (play.completed_at or play.created_at) < cutoff_ms
