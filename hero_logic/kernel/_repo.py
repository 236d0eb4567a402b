"""The typed layer over a store: records in, records out, with their indexes kept in step.

Tables and keys (all values are compact JSON):

==================  =================================  =========================================
table               key                                value
==================  =================================  =========================================
``workflows``       workflow sid                       Workflow
``wf_names``        workflow name                      workflow sid (unique-name index)
``versions``        version sid                        WorkflowVersion
``wf_versions``     ``{workflow_sid}/{version_sid}``   empty (versions of a workflow, oldest first)
``plays``           play sid (sorts by creation time)  Play
``wf_plays``        ``{workflow_sid}/{play_sid}``      empty (plays of a workflow)
``events``          ``{play_sid}/{seq:010d}``          one wire event, exactly as received
``play_keys``       ``{workflow_sid}/{key}``           play sid (a start's idempotency key)
==================  =================================  =========================================

Links between plays (``play_children``, ``children``, ``tree_size``) are written by the
kernel's tree (:mod:`._tree`); a play read here has its ``child_play_sids`` filled from them.

Sids embed their creation time in hex, so key order is creation order and a reverse scan is
newest first. Span records are not stored: a play's spans are folded from its events on read
(:mod:`._spans`), which keeps the hot path to one append per event.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import trio

from ._convert import dumps, from_json, to_json
from ._errors import NotFound
from ._folded import FoldedSpans, encode_fold, fold_rows, paused_gc
from ._model import Play, PlayStatus, Span, Workflow, WorkflowVersion
from ._spans import SpanFold
from ._store_api import Delete, Put, Store, Write

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Iterable, Sequence

__all__ = ["Repo", "decode_record", "encode_record", "event_key"]

T = TypeVar("T")


EVENT_CHUNK = 4096
"""Event rows read from the store at a time (then decoded off the event loop)."""
SMALL_CHUNK = 512
"""Event rows few enough to decode on the event loop (less than a hop to a thread)."""
DELETE_BATCH = 10_000
"""Event rows deleted per commit when a workflow goes."""
FOLD_CACHE_PLAYS = 8
"""Plays whose folded span tree is kept for the next reader."""


def event_key(play_sid: str, seq: int) -> str:
    """The key of event number ``seq`` of a play."""
    return f"{play_sid}/{seq:010d}"


def encode_record(record: Any) -> bytes:
    """A record as the compact JSON the store keeps."""
    return dumps(to_json(record))


def decode_record(cls: type[T], raw: bytes) -> T:
    """The record of type ``cls`` stored as ``raw``."""
    return from_json(cls, json.loads(raw))


@attrs.define(eq=False)
class Repo:
    """Typed reads and write builders over a :class:`Store`."""

    store: Store
    _folds: OrderedDict[str, FoldedSpans] = attrs.field(factory=OrderedDict, init=False)
    _folding: dict[tuple[str, int], _Folding] = attrs.field(factory=dict, init=False)
    workflows_generation: int = attrs.field(default=0, init=False)
    """Bumped after every commit that wrote the ``workflows`` table: lets readers cache what
    they derive from all workflows (the library search index) and know when it went stale."""

    # -- writes ----------------------------------------------------------------------------------

    async def commit(self, writes: Sequence[Write]) -> None:
        """Commit ``writes`` atomically and durably."""
        await self.store.commit(writes)
        if any(write.table == "workflows" for write in writes):
            self.workflows_generation += 1

    @staticmethod
    def put_workflow(wf: Workflow, *, old_name: str = "") -> list[Write]:
        """Writes that store ``wf`` and its name index (dropping ``old_name`` on rename)."""
        writes: list[Write] = [
            Put("workflows", wf.sid, encode_record(wf)),
            Put("wf_names", wf.name, wf.sid.encode()),
        ]
        if old_name and old_name != wf.name:
            writes.append(Delete("wf_names", old_name))
        return writes

    @staticmethod
    def put_version(version: WorkflowVersion) -> list[Write]:
        """Writes that store ``version`` and index it under its workflow."""
        return [
            Put("versions", version.sid, encode_record(version)),
            Put("wf_versions", f"{version.workflow_sid}/{version.sid}", b""),
        ]

    @staticmethod
    def put_play(play: Play, *, new: bool = False) -> list[Write]:
        """Writes that store ``play`` (and, when ``new``, index it under its workflow)."""
        if play.child_play_sids:  # links live in their own rows, written with each child
            play = attrs.evolve(play, child_play_sids=[])
        writes: list[Write] = [Put("plays", play.sid, encode_record(play))]
        if new:
            writes.append(Put("wf_plays", f"{play.workflow_sid}/{play.sid}", b""))
        return writes

    @staticmethod
    def put_play_key(workflow_sid: str, key: str, play_sid: str) -> list[Write]:
        """The write that records ``key`` as the idempotency key of a start of a workflow."""
        return [Put("play_keys", f"{workflow_sid}/{key}", play_sid.encode())]

    async def play_for_key(self, workflow_sid: str, key: str) -> Play | None:
        """The play a start of ``workflow_sid`` with idempotency ``key`` made, if any."""
        raw = await self.store.get("play_keys", f"{workflow_sid}/{key}")
        return await self.find_play(raw.decode()) if raw is not None else None

    async def delete_workflow(self, wf: Workflow, also: Sequence[Write] = ()) -> None:
        """Remove ``wf``, its versions, its plays and their events, and ``also`` (the rest
        of what belongs to it).

        The records go in one transaction (a crash leaves all of them or none); the events of
        its plays, which can number millions, then go in bounded batches, so one delete never
        holds the store or the event loop for long. Events a crash leaves behind belong to no
        play any more and are never read.
        """
        writes: list[Write] = [*also, Delete("workflows", wf.sid), Delete("wf_names", wf.name)]
        for key, _ in await self.store.scan("wf_versions", f"{wf.sid}/"):
            writes += [Delete("wf_versions", key), Delete("versions", key.split("/", 1)[1])]
        writes += [Delete("play_keys", key) for key, _ in await self.store.scan("play_keys", f"{wf.sid}/")]
        play_sids = []
        for key, _ in await self.store.scan("wf_plays", f"{wf.sid}/"):
            play_sid = key.split("/", 1)[1]
            play_sids.append(play_sid)
            writes += [Delete("wf_plays", key), Delete("plays", play_sid), Delete("tree_size", play_sid)]
            for table in ("play_children", "children"):
                writes += [Delete(table, k) for k, _ in await self.store.scan(table, f"{play_sid}/")]
        await self.commit(writes)
        for play_sid in play_sids:
            self._folds.pop(play_sid, None)
            while True:
                rows = await self.store.scan("events", f"{play_sid}/", limit=DELETE_BATCH)
                if not rows:
                    break
                await self.commit([Delete("events", key) for key, _ in rows])

    def forget_fold(self, play_sid: str) -> None:
        """Drop the cached span tree of a play that is being deleted."""
        self._folds.pop(play_sid, None)

    # -- reads -----------------------------------------------------------------------------------

    async def get_workflow(self, sid: str) -> Workflow:
        """The workflow ``sid``; NotFound names it otherwise."""
        raw = await self.store.get("workflows", sid) if sid else None
        if raw is None:
            msg = f"no workflow with sid {sid!r}: list them with workflow_list"
            raise NotFound(msg)
        return decode_record(Workflow, raw)

    async def find_workflow(self, name_or_sid: str) -> Workflow:
        """The workflow whose sid or name is ``name_or_sid``."""
        sid = await self.store.get("wf_names", name_or_sid)
        if sid is not None:
            return await self.get_workflow(sid.decode())
        try:
            return await self.get_workflow(name_or_sid)
        except NotFound:
            msg = f"no workflow named or with sid {name_or_sid!r}: list them with workflow_list"
            raise NotFound(msg) from None

    async def workflow_sid_by_name(self, name: str) -> str | None:
        """The sid of the workflow called ``name``, if any."""
        raw = await self.store.get("wf_names", name)
        return raw.decode() if raw is not None else None

    async def list_workflows(self, *, limit: int, offset: int = 0) -> list[Workflow]:
        """Workflows, newest first."""
        rows = await self.store.scan("workflows", reverse=True, limit=offset + limit)
        return [decode_record(Workflow, raw) for _, raw in rows[offset:]]

    async def get_version(self, sid: str) -> WorkflowVersion:
        """The version ``sid``; NotFound names it otherwise."""
        raw = await self.store.get("versions", sid) if sid else None
        if raw is None:
            msg = f"no workflow version with sid {sid!r}: list them with workflow_version_list"
            raise NotFound(msg)
        return decode_record(WorkflowVersion, raw)

    async def list_versions(self, workflow_sid: str) -> list[WorkflowVersion]:
        """Versions of a workflow, oldest first."""
        keys = await self.store.scan("wf_versions", f"{workflow_sid}/")
        return [await self.get_version(key.split("/", 1)[1]) for key, _ in keys]

    async def get_play(self, sid: str) -> Play:
        """The play ``sid``; NotFound names it otherwise."""
        play = await self.find_play(sid)
        if play is None:
            msg = f"no play with sid {sid!r}: list them with play_list"
            raise NotFound(msg)
        return play

    async def find_play(self, sid: str) -> Play | None:
        """The play ``sid`` (its ``child_play_sids`` filled from the link rows), or None."""
        raw = await self.store.get("plays", sid) if sid else None
        if raw is None:
            return None
        return await self._with_children(decode_record(Play, raw))

    async def child_sids(self, parent_sid: str) -> list[str]:
        """The sids of the child plays linked under ``parent_sid``, oldest first."""
        rows = await self.store.scan("play_children", f"{parent_sid}/")
        return [key.split("/", 1)[1] for key, _ in rows]

    async def _with_children(self, play: Play) -> Play:
        linked = await self.child_sids(play.sid)
        if not linked:
            return play
        known = set(linked)  # records written before the link rows kept a list: keep it too
        return attrs.evolve(play, child_play_sids=[*[s for s in play.child_play_sids if s not in known], *linked])

    async def list_plays(
        self,
        *,
        workflow_sid: str = "",
        statuses: Iterable[PlayStatus] = (),
        limit: int = 50,
        before: str = "",
        accept: Callable[[Play], bool] | None = None,
    ) -> list[Play]:
        """Plays, newest first, optionally of one workflow, in some statuses, older than the
        play ``before`` (a page's cursor) and for which ``accept`` holds."""
        wanted = set(statuses)
        out: list[Play] = []
        table, prefix = ("wf_plays", f"{workflow_sid}/") if workflow_sid else ("plays", "")
        after = f"{prefix}{before}" if before else ""
        while len(out) < limit:
            rows = await self.store.scan(table, prefix, reverse=True, start_after=after, limit=256)
            for key, raw in rows:
                if workflow_sid:
                    found = await self.find_play(key.split("/", 1)[1])
                    if found is None:
                        continue
                    play = found
                else:
                    play = decode_record(Play, raw)
                if (not wanted or play.status in wanted) and (accept is None or accept(play)):
                    out.append(play if workflow_sid else await self._with_children(play))
                    if len(out) >= limit:
                        break
            if len(rows) < 256:
                break
            after = rows[-1][0]
        return out

    async def event_chunks(self, play_sid: str) -> AsyncGenerator[list[tuple[str, bytes]], None]:
        """A play's stored event rows in arrival order, :data:`EVENT_CHUNK` at a time: a play
        of a million events is read without holding the event loop for the whole of it."""
        after = ""
        while True:
            rows = await self.store.scan("events", f"{play_sid}/", start_after=after, limit=EVENT_CHUNK)
            if rows:
                yield rows
            if len(rows) < EVENT_CHUNK:
                return
            after = rows[-1][0]

    async def read_events(self, play_sid: str, *, types: frozenset[str] | None = None) -> list[dict[str, Any]]:
        """The wire events of a play, in arrival order (decoded in a worker thread); with
        ``types``, only the events of those types (a row that cannot hold one is not decoded)."""
        out: list[dict[str, Any]] = []
        async with aclosing(self.event_chunks(play_sid)) as chunks:
            async for rows in chunks:
                # a small chunk costs less than the hop to a worker thread
                out += _decode_rows(rows, types) if len(rows) < SMALL_CHUNK else await trio.to_thread.run_sync(_decode_rows, rows, types)
        return out

    async def folded_spans(self, play_sid: str) -> FoldedSpans:
        """A play's span tree, as encoded pieces, with the position of the last event it folds.

        Folded a chunk at a time in a worker thread, so a huge play never stalls the event
        loop. Concurrent readers of one play share one fold, and the folds of the last few
        plays read are kept (as bytes) until the play gets a new event.
        """
        last_seq = await self.last_event_seq(play_sid)
        cached = self._folds.get(play_sid)
        if cached is not None and cached.last_seq == last_seq:
            self._folds.move_to_end(play_sid)
            return cached
        key = (play_sid, last_seq)
        running = self._folding.get(key)
        if running is not None:
            await running.done.wait()
            if running.result is None:  # that fold failed or was cancelled: fold again
                return await self.folded_spans(play_sid)
            return running.result
        running = self._folding[key] = _Folding()
        try:
            fold = SpanFold(play_sid)
            # The fold's objects stay out of full collections until it is encoded and dropped
            # (a collection walking 100,000 half-built spans stalls the loop thread).
            with paused_gc():
                async with aclosing(self.event_chunks(play_sid)) as chunks:
                    async for rows in chunks:
                        if await trio.to_thread.run_sync(fold_rows, fold, rows, last_seq) >= last_seq:
                            break
                running.result = await trio.to_thread.run_sync(encode_fold, fold, last_seq)
            self._folds[play_sid] = running.result
            while len(self._folds) > FOLD_CACHE_PLAYS:
                self._folds.popitem(last=False)
            return running.result
        finally:
            del self._folding[key]
            running.done.set()

    async def last_event_seq(self, play_sid: str) -> int:
        """The sequence number of a play's last stored event, or -1."""
        rows = await self.store.scan("events", f"{play_sid}/", reverse=True, limit=1)
        return int(rows[0][0].rsplit("/", 1)[1]) if rows else -1

    async def spans(self, play_sid: str) -> list[Span]:
        """A play's span tree, folded from its stored events, in start order (as records: for
        the service's own small reads; pages for clients come from :meth:`folded_spans`)."""
        folded = await self.folded_spans(play_sid)
        return await trio.to_thread.run_sync(lambda: [from_json(Span, d) for d in folded.dicts()])


@attrs.define(eq=False)
class _Folding:
    done: trio.Event = attrs.Factory(trio.Event)
    result: FoldedSpans | None = None


def _decode_rows(rows: list[tuple[str, bytes]], types: frozenset[str] | None = None) -> list[dict[str, Any]]:
    if types is None:
        return [json.loads(raw) for _, raw in rows]
    # A row holds an event of one of ``types`` only if it spells the type's name, or escapes a
    # character (``\u0073tep_output`` is JSON for it too): other rows need no decoding.
    names = tuple(name.encode() for name in types)
    out = []
    for _, raw in rows:
        if b"\\u" in raw or any(name in raw for name in names):
            event = json.loads(raw)
            if event.get("type") in types:
                out.append(event)
    return out
