"""A play's folded span tree kept as encoded JSON pieces, not as live objects.

A big play folds to hundreds of thousands of spans. Kept as Python objects, they would slow
every full garbage collection of the service (each a stall of the event loop); kept as a few
hundred byte strings they cost nothing. A page of spans is decoded or re-encoded from the pieces
it touches only. The fold itself runs in a worker thread with the cyclic garbage collector paused
(the fold makes no cycles; its objects are freed by reference counting as it goes).
"""

from __future__ import annotations

import gc
import json
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs

from ._convert import dumps, to_json

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ._spans import SpanFold

__all__ = ["PIECE_SPANS", "FoldedSpans", "RawJson", "fold_rows", "paused_gc"]

PIECE_SPANS = 256
"""Spans per encoded piece."""


class RawJson:
    """A JSON document already encoded, as the pieces that make it up (a large result, encoded
    off the event loop). The RPC door writes the pieces one after the other: a 30 MB answer is
    never copied into one buffer (each fresh large buffer costs page faults while the event
    loop waits)."""

    __slots__ = ("pieces",)

    def __init__(self, *pieces: bytes) -> None:
        self.pieces = tuple(p for p in pieces if p)

    def __len__(self) -> int:
        return sum(len(p) for p in self.pieces)

    def __bytes__(self) -> bytes:
        return b"".join(self.pieces)

    def __repr__(self) -> str:
        return f"RawJson({len(self)} bytes in {len(self.pieces)} pieces)"


_gc_lock = threading.Lock()
_gc_pausers = 0


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block (shared by concurrent blocks): a
    collection in the middle of a big fold walks every object of the process while holding the
    GIL, and stalls the event loop thread for that long."""
    global _gc_pausers
    with _gc_lock:
        _gc_pausers += 1
        if _gc_pausers == 1:
            was_enabled = gc.isenabled()
            gc.disable()
            _GC_STATE["enabled"] = was_enabled
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _GC_STATE.get("enabled", True):
                gc.enable()


_GC_STATE: dict[str, bool] = {}


@attrs.frozen
class FoldedSpans:
    """A play's spans in start order, as encoded pieces of :data:`PIECE_SPANS` spans each."""

    pieces: tuple[bytes, ...]
    """Each the inside of a JSON array (``{...},{...}``) of up to PIECE_SPANS span records."""
    count: int
    last_seq: int
    """The position of the last event folded (-1: none)."""

    def json_array(self, offset: int = 0, limit: int = 0) -> RawJson:
        """Spans ``offset`` .. ``offset + limit`` (``limit`` 0: to the end) as a JSON array."""
        end = self.count if not limit else min(self.count, offset + limit)
        if offset >= end:
            return RawJson(b"[]")
        first, last = offset // PIECE_SPANS, (end - 1) // PIECE_SPANS
        parts: list[bytes] = []
        for index in range(first, last + 1):
            lo = max(offset - index * PIECE_SPANS, 0)
            hi = min(end - index * PIECE_SPANS, PIECE_SPANS)
            piece = self.pieces[index]
            if lo == 0 and (hi == PIECE_SPANS or index * PIECE_SPANS + hi == self.count):
                parts.append(piece)
            else:
                parts.append(dumps(json.loads(b"[" + piece + b"]")[lo:hi])[1:-1])
        parts = [p for p in parts if p]
        joined = [part for i, p in enumerate(parts) for part in ((b",", p) if i else (p,))]
        return RawJson(b"[", *joined, b"]")

    def dicts(self, offset: int = 0, limit: int = 0) -> list[dict[str, Any]]:
        """Spans ``offset`` .. ``offset + limit`` as JSON-shaped dicts."""
        spans: list[dict[str, Any]] = json.loads(bytes(self.json_array(offset, limit)))
        return spans


def fold_rows(fold: SpanFold, rows: list[tuple[str, bytes]], last_seq: int) -> int:
    """Fold event ``rows`` up to position ``last_seq``; the position of the last one folded."""
    seq = -1
    with paused_gc():
        for key, raw in rows:
            seq = int(key.rsplit("/", 1)[1])
            if seq > last_seq:
                return last_seq
            fold.apply(json.loads(raw))
    return seq


def encode_fold(fold: SpanFold, last_seq: int) -> FoldedSpans:
    """The spans of ``fold`` as encoded pieces (run it in a worker thread)."""
    with paused_gc():
        spans = fold.spans()
        pieces = tuple(
            dumps(to_json(spans[i : i + PIECE_SPANS]))[1:-1] for i in range(0, len(spans), PIECE_SPANS)
        )
        count = len(spans)
        # Freed here by reference counting, before the collector runs again: none of it
        # must be left for a full collection to walk.
        del spans
        fold.clear()
        return FoldedSpans(pieces=pieces, count=count, last_seq=last_seq)
