"""Watching plays: a snapshot, then every later event by position, with no gap and no repeat.

:func:`watch_play` is what the live span stream (CONTRACT.md §7) sends for one play:

1. ``{"type": "snapshot", "play": Play, "spans": [Span], "seq": N}`` — the play and its span
   tree as stored when the watch began (``spans`` arrives encoded, as a
   :class:`~hero_logic.kernel.RawJson`: :func:`encode_message` writes it); ``seq`` is the position of the last event the
   snapshot includes (-1 for none).
2. Every event applied after it, as the flow sent it, plus its position ``seq`` (consecutive,
   starting at the snapshot's ``seq + 1``).
3. ``{"type": "status", "status": "<play status>", "play": Play}`` each time the play's status
   changes, interleaved with the events in the order they happened (a re-save that leaves the
   status as it was sends none). Going to sleep (``awaiting_resume``) it also lists the open
   waits (``waiting``: ``[{resume_id, kind, name, wake_at?, event_key?, group?, branch?}]``);
   waking (``running`` after a timer, an event or an answer) it says what woke it
   (``woken``: ``[{resume_id, kind, via}]``).
4. It returns after a terminal status; a play that had already ended gets its snapshot and one
   status message.

The watch subscribes to the bus *before* it reads the snapshot, so nothing that happens between
the two is lost; what the snapshot already holds is skipped by position (events) or by equality
with the snapshot's play and status (statuses). A watcher that falls ``queue_size`` messages
behind is dropped by the bus (publishing never waits) and gets :class:`Dropped`.

:func:`watch_all_plays` sends the newest plays, then every status change of any play.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from ._convert import dumps, to_json
from ._folded import RawJson
from ._model import Play, PlayStatus

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._folded import FoldedSpans
    from ._kernel import Kernel

__all__ = ["MAX_SNAPSHOT_SPANS", "RECENT_PLAYS", "WATCH_QUEUE_SIZE", "Dropped", "encode_message", "watch_all_plays", "watch_play"]

WATCH_QUEUE_SIZE = 10_000
"""Bus messages a watcher may fall behind before it is dropped. A flow's events arrive in
bursts (the span listener applies them in batches): a watcher reading at full speed (several
thousand messages a second) still lags a whole burst behind."""

RECENT_PLAYS = 50
"""Plays in the all-plays watch's snapshot, newest first."""

MAX_SNAPSHOT_SPANS = 2_000
"""Spans a snapshot carries at most (the first, in start order); a bigger play's snapshot says
``spans_total`` and ``spans_truncated``, and ``play_spans`` pages through the rest."""

class Dropped(Exception):
    """The bus dropped this subscriber: it fell too far behind."""


async def _snapshot(kernel: Kernel, play_sid: str) -> tuple[Play, FoldedSpans, int]:
    """The play, its span tree and the position of the last event folded in it.

    The play is read before the events: a play found terminal had stored all its events
    before its status, so they are all in the snapshot.
    """
    play = await kernel.repo.get_play(play_sid)
    folded = await kernel.repo.folded_spans(play_sid)
    return play, folded, folded.last_seq


async def watch_play(
    kernel: Kernel,
    play_sid: str,
    emit: Callable[[dict[str, Any]], Awaitable[None]],
    *,
    queue_size: int = WATCH_QUEUE_SIZE,
) -> PlayStatus:
    """Emit one play's snapshot, then its events and status changes, until it ends.

    Returns the terminal status. Raises :class:`~hero_logic.kernel.NotFound` for an unknown
    play (before emitting anything) and :class:`Dropped` if the subscriber fell behind.
    """
    with kernel.watch_seats.seat(play_sid):
        return await _watch_play(kernel, play_sid, emit, queue_size)


async def _watch_play(
    kernel: Kernel, play_sid: str, emit: Callable[[dict[str, Any]], Awaitable[None]], queue_size: int
) -> PlayStatus:
    async with kernel.bus.subscribe(play_sid, queue_size=queue_size) as messages:
        play, spans, last_seq = await _snapshot(kernel, play_sid)
        # Whatever is queued now was published before the snapshot read completed.
        early: list[dict[str, Any]] = []
        while True:
            try:
                early.append(messages.receive_nowait())
            except trio.WouldBlock:
                break
            except trio.EndOfChannel:
                raise Dropped from None
        sent_play = to_json(play)
        snapshot: dict[str, Any] = {
            "type": "snapshot",
            "play": sent_play,
            # Already encoded, from the play's one shared fold: every watcher sends the same bytes.
            "spans": spans.json_array(0, MAX_SNAPSHOT_SPANS),
            "seq": last_seq,
        }
        if spans.count > MAX_SNAPSHOT_SPANS:
            snapshot |= {"spans_total": spans.count, "spans_truncated": True}
        await emit(snapshot)
        # A status published before the read that equals the snapshot's play marks every
        # earlier status as already included.
        stale = max((i for i, m in enumerate(early) if _is_status(m) and m["play"] == sent_play), default=-1)
        status = play.status

        async def relay(message: dict[str, Any], *, early_index: int | None = None) -> bool:
            """Emit ``message`` unless the snapshot holds it; True once the play ended."""
            nonlocal last_seq, status
            if _is_status(message):
                if (early_index is not None and early_index <= stale) or message["status"] == status.value:
                    return False  # in the snapshot already, or a re-save that changed no status
                status = PlayStatus(message["status"])
                await emit(message)  # with what it says of waits: "waiting" (sleeps), "woken"
                return status.is_terminal
            seq = message.get("seq")
            if not isinstance(seq, int) or seq <= last_seq:
                return False
            last_seq = seq
            await emit(message)
            return False

        if play.status.is_terminal:
            for message in early:
                if not _is_status(message):
                    await relay(message)
            await emit({"type": "status", "status": play.status.value, "play": sent_play})
            return play.status
        for index, message in enumerate(early):
            if await relay(message, early_index=index):
                return status
        async for message in messages:
            if await relay(message):
                return status
        raise Dropped


async def watch_all_plays(
    kernel: Kernel,
    emit: Callable[[dict[str, Any]], Awaitable[None]],
    *,
    queue_size: int = WATCH_QUEUE_SIZE,
) -> None:
    """Emit ``{"type": "snapshot", "plays": [Play]}`` (the newest :data:`RECENT_PLAYS`), then a
    ``status`` message for every status change of any play. Runs until cancelled; raises
    :class:`Dropped` if the subscriber fell behind."""
    with kernel.watch_seats.seat(None):
        await _watch_all_plays(kernel, emit, queue_size)


async def _watch_all_plays(kernel: Kernel, emit: Callable[[dict[str, Any]], Awaitable[None]], queue_size: int) -> None:
    async with kernel.bus.subscribe(None, queue_size=queue_size) as messages:
        plays = await kernel.repo.list_plays(limit=RECENT_PLAYS)
        seen = {p.sid: to_json(p) for p in plays}
        await emit({"type": "snapshot", "plays": list(seen.values())})
        async for message in messages:
            if not _is_status(message):
                continue  # span events of every play: the per-play stream carries those
            play = message["play"]
            if seen.pop(play["sid"], None) == play:
                continue  # the snapshot already shows it
            await emit({"type": "status", "status": message["status"], "play": play})
        raise Dropped


def _is_status(message: dict[str, Any]) -> bool:
    return message.get("type") == "status" and isinstance(message.get("play"), dict)




def encode_message(message: dict[str, Any]) -> bytes:
    """``message`` as compact JSON, its :class:`RawJson` values spliced in as they are."""
    raw = {k: v for k, v in message.items() if isinstance(v, RawJson)}
    if not raw:
        return dumps(message)
    head = dumps({k: v for k, v in message.items() if k not in raw})
    tail = b"".join(b"," + dumps(k) + b":" + bytes(v) for k, v in raw.items())
    return head[:-1] + (tail if head != b"{}" else tail[1:]) + b"}"
