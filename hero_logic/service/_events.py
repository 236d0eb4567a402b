"""Events: ``event_send`` / ``event_list``, delivery to the plays that wait, and the mailbox.

An event is a key (``payment:order-42``) and a JSON payload. ``event_send`` stores it, then
resolves the ``wait_event`` / ``on_event`` waits of every play waiting for exactly that key
(found through the kernel's ``event_waits`` index, never by scanning plays). The stored event
is also a **mailbox**: a play that reaches a wait for the key later (and was created at or
before the send, within ``HERO_LOGIC_EVENT_RETENTION_MS``) receives it then: the kernel asks
this room (:meth:`Events.waiting`) whenever a play starts waiting for an event, and before an
event wait times out. Each wait of a play takes the oldest event of its key that play has not
received yet, so a play waiting twice on one key takes two events; every wait of a play
waiting at the moment of a send gets that event. Deliveries to one play are taken one at a
time, so no wait receives an event twice.

Tables (values are compact JSON):

=============  ==================================================  ============================
table          key                                                 value
=============  ==================================================  ============================
``mail``       ``{key}\\x1f{sent_at:013d}\\x1f{event_id}``           Event
``mail_ids``   event_id                                            its ``mail`` key
``mail_time``  ``{sent_at:013d}/{event_id}``                       its ``mail`` key
``mail_idem``  idempotency_key                                     event_id
=============  ==================================================  ============================

Events older than the retention are deleted by a sweep (:meth:`Events.expire`); an
``idempotency_key`` deduplicates sends within the retention.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import attrs
import trio

from hero_logic.kernel import (
    Delete,
    KeyedLock,
    Put,
    ResumeKind,
    WrongState,
    decode_record,
    dumps,
    encode_record,
    event_key_problem,
    event_wait_prefix,
    new_sid,
    now_ms,
    parse_event_wait_key,
)

from ._checks import check_limit, invalid_field
from ._marker import rpc_method

if TYPE_CHECKING:
    from hero_logic.kernel import Kernel, Play, ResumeRequest, Write

__all__ = ["Event", "Events"]

log = logging.getLogger("hero_logic.service")

_SEP = "\x1f"
DELIVERY_CONCURRENCY = 64
"""Plays one send resolves at once (each resolve is a durable commit; they share group commits)."""
EXPIRE_BATCH = 1000
"""Events deleted per commit by the retention sweep."""
MAX_IDEMPOTENCY_KEY_BYTES = 512


@attrs.frozen
class Event:
    """One sent event: its key and payload, when it was sent, and the plays it resolved."""

    event_id: str
    key: str
    payload: Any = None
    sent_at: int = 0
    idempotency_key: str = ""
    delivered_to: list[str] = attrs.Factory(list)
    """The plays whose waits it resolved (when sent, and later from the mailbox)."""
    via: str = "event"
    """Who sent it: ``event`` (``event_send``) or ``webhook`` (an event webhook's delivery);
    the answers it gives the waits record it as their ``via``."""


def _mail_key(event: Event) -> str:
    return f"{event.key}{_SEP}{event.sent_at:013d}{_SEP}{event.event_id}"


@attrs.define(eq=False)
class Events:
    """The event methods of the API, and the kernel's :class:`~hero_logic.kernel.WaitHandler`."""

    kernel: Kernel
    _play_locks: KeyedLock = attrs.Factory(KeyedLock)
    _send_locks: KeyedLock = attrs.Factory(KeyedLock)
    _event_locks: KeyedLock = attrs.Factory(KeyedLock)

    # -- the API ----------------------------------------------------------------------------------

    @rpc_method(admin=True)
    async def event_send(self, key: str, payload: Any = None, idempotency_key: str = "") -> dict[str, Any]:
        """Send an event: every play waiting for exactly ``key`` receives ``payload``, and plays
        that wait for it later (created at or before now, within the retention) find it in the
        mailbox. Returns ``{event_id, delivered_to}``. The same ``idempotency_key`` again
        returns the first event (``duplicate: true``) and delivers nothing twice."""
        return await self.send(key, payload, idempotency_key)

    async def send(self, key: str, payload: Any = None, idempotency_key: str = "", *, via: str = "event") -> dict[str, Any]:
        """``event_send``, for a sender inside the service (``via``: ``webhook`` for a webhook's)."""
        context = "event_send"
        problem = event_key_problem(key)
        if problem:
            field = "key"
            raise invalid_field(field, problem, context=context)
        size = len(dumps(payload))
        cap = self.kernel.config.max_body_bytes
        if size > cap:
            why = (
                f"is {size} bytes of JSON, over the body cap of {cap} bytes (HERO_LOGIC_MAX_BODY_BYTES): "
                "send a reference (an id, a path) instead"
            )
            field = "payload"
            raise invalid_field(field, why, context=context)
        if idempotency_key and (
            len(idempotency_key.encode("utf-8", "surrogatepass")) > MAX_IDEMPOTENCY_KEY_BYTES
            or not idempotency_key.isprintable()
        ):
            why = f"must be at most {MAX_IDEMPOTENCY_KEY_BYTES} bytes of printable text, got {idempotency_key[:60]!r}"
            field = "idempotency_key"
            raise invalid_field(field, why, context=context)
        async with self._send_locks.hold(idempotency_key or new_sid("send")):
            if idempotency_key:
                first = await self._by_idempotency_key(idempotency_key)
                if first is not None:
                    return {"event_id": first.event_id, "delivered_to": first.delivered_to, "duplicate": True}
            event = Event(new_sid("evt"), key, payload, now_ms(), idempotency_key, via=via)
            mail_key = _mail_key(event)
            writes: list[Write] = [
                Put("mail", mail_key, encode_record(event)),
                Put("mail_ids", event.event_id, mail_key.encode()),
                Put("mail_time", f"{event.sent_at:013d}/{event.event_id}", mail_key.encode()),
            ]
            if idempotency_key:
                writes.append(Put("mail_idem", idempotency_key, event.event_id.encode()))
            await self.kernel.repo.commit(writes)
        delivered = await self._deliver_to_waiting(event)
        if delivered:
            await self._mark_delivered(event.event_id, delivered)
        return {"event_id": event.event_id, "delivered_to": delivered}

    @rpc_method(admin=True)
    async def event_list(self, key_prefix: str = "", limit: int = 50) -> list[Event]:
        """Events kept in the mailbox (within the retention), newest first; ``key_prefix``
        keeps those whose key starts with it."""
        check_limit(limit, context="event_list")
        if key_prefix and _SEP in key_prefix:
            field = "key_prefix"
            raise invalid_field(field, "contains control characters: use printable text", context="event_list")
        store = self.kernel.repo.store
        if not key_prefix:
            rows = await store.scan("mail_time", reverse=True, limit=limit)
            events = [await self._event_at(raw.decode()) for _, raw in rows]
            return [e for e in events if e is not None]
        found = [decode_record(Event, raw) for _, raw in await store.scan("mail", key_prefix)]
        found.sort(key=lambda e: (e.sent_at, e.event_id), reverse=True)
        return found[:limit]

    # -- delivery ---------------------------------------------------------------------------------

    async def _deliver_to_waiting(self, event: Event) -> list[str]:
        """Resolve the waits of every play waiting for ``event.key``; the plays resolved."""
        rows = await self.kernel.repo.store.scan("event_waits", event_wait_prefix(event.key))
        play_sids = list(dict.fromkeys(parse_event_wait_key(key)[1] for key, _ in rows))
        delivered: list[str] = []
        limiter = trio.CapacityLimiter(DELIVERY_CONCURRENCY)

        async def one(play_sid: str) -> None:
            async with limiter:
                if await self._deliver(play_sid, event):
                    delivered.append(play_sid)

        async with trio.open_nursery() as nursery:
            for play_sid in play_sids:
                nursery.start_soon(one, play_sid)
        return sorted(delivered)

    async def _deliver(self, play_sid: str, event: Event) -> bool:
        """Resolve ``play_sid``'s waits for ``event`` (one per wait_any group), if it waits for
        it and never received it; True if it did."""
        async with self._play_locks.hold(play_sid):
            for _ in range(10):
                play = await self.kernel.repo.find_play(play_sid)
                if play is None or play.status.is_terminal:
                    return False
                if any(r.event_id == event.event_id for r in play.received_resumes):
                    return False
                answers = _answers(play, {w.id: event for w in _event_waits(play) if w.event_key == event.key})
                if not answers:
                    return False
                try:
                    await self.kernel.resolve(play_sid, answers)
                except WrongState:
                    await self.kernel.idle(play_sid)  # it was being released: try again
                    continue
                return True
        return False

    async def waiting(self, play: Play) -> None:
        """Resolve the event waits of ``play`` its mailbox can answer (the kernel's hook)."""
        async with self._play_locks.hold(play.sid):
            play = await self.kernel.repo.get_play(play.sid)
            waits = _event_waits(play)
            if not waits:
                return
            received = {r.event_id for r in play.received_resumes if r.event_id}
            floor = max(play.created_at, now_ms() - self.kernel.config.event_retention_ms)
            found: dict[str, Event] = {}
            for wait in waits:
                event = await self._oldest(wait.event_key, floor, received)
                if event is not None:
                    found[wait.id] = event
            answers = _answers(play, found)
            if not answers:
                return
            try:
                await self.kernel.resolve(play.sid, answers)
            except WrongState as exc:  # it was answered or cancelled meanwhile
                log.info("play %s: mailbox delivery not taken: %s", play.sid, exc.message)
                return
        for answer in answers:
            await self._mark_delivered(answer.event_id, [play.sid])

    async def _oldest(self, key: str, floor: int, received: set[str]) -> Event | None:
        """The oldest event of ``key`` sent at or after ``floor`` that is not in ``received``."""
        store = self.kernel.repo.store
        prefix = event_wait_prefix(key)
        after = f"{prefix}{max(floor - 1, 0):013d}{_SEP}~"
        while True:
            rows = await store.scan("mail", prefix, start_after=after, limit=64)
            for _, raw in rows:
                event = decode_record(Event, raw)
                if event.event_id not in received:
                    return event
            if len(rows) < 64:
                return None
            after = rows[-1][0]

    async def _mark_delivered(self, event_id: str, play_sids: list[str]) -> None:
        async with self._event_locks.hold(event_id):
            raw_key = await self.kernel.repo.store.get("mail_ids", event_id)
            event = await self._event_at(raw_key.decode()) if raw_key else None
            if event is None:
                return  # expired meanwhile
            known = set(event.delivered_to)
            added = [sid for sid in play_sids if sid not in known]
            if added:
                updated = attrs.evolve(event, delivered_to=[*event.delivered_to, *added])
                await self.kernel.repo.commit([Put("mail", _mail_key(updated), encode_record(updated))])

    async def _event_at(self, mail_key: str) -> Event | None:
        raw = await self.kernel.repo.store.get("mail", mail_key)
        return decode_record(Event, raw) if raw is not None else None

    async def _by_idempotency_key(self, idempotency_key: str) -> Event | None:
        raw = await self.kernel.repo.store.get("mail_idem", idempotency_key)
        if raw is None:
            return None
        key = await self.kernel.repo.store.get("mail_ids", raw.decode())
        return await self._event_at(key.decode()) if key is not None else None

    # -- retention --------------------------------------------------------------------------------

    async def expire(self, now: int | None = None) -> int:
        """Delete the events sent before the retention window; how many went."""
        cutoff = (now_ms() if now is None else now) - self.kernel.config.event_retention_ms
        store = self.kernel.repo.store
        gone = 0
        while True:
            rows = await store.scan("mail_time", limit=EXPIRE_BATCH)
            old = [(key, raw) for key, raw in rows if int(key.split("/", 1)[0]) < cutoff]
            if not old:
                return gone
            writes: list[Write] = []
            for time_key, raw in old:
                event = await self._event_at(raw.decode())
                writes += [Delete("mail_time", time_key), Delete("mail", raw.decode())]
                if event is not None:
                    writes.append(Delete("mail_ids", event.event_id))
                    if event.idempotency_key:
                        writes.append(Delete("mail_idem", event.idempotency_key))
            await self.kernel.repo.commit(writes)
            gone += len(old)

    async def sweep(self) -> None:
        """Expire old events now and then, for as long as the service runs."""
        every = min(60.0, self.kernel.config.event_retention_ms / 10_000)
        while True:
            try:
                await self.expire()
            except Exception:  # a failed sweep is retried at the next tick
                log.exception("the event retention sweep failed")
            await trio.sleep(every)


def _event_waits(play: Play) -> list[ResumeRequest]:
    from hero_logic.kernel import PlayStatus

    if play.status is not PlayStatus.AWAITING_RESUME:
        return []
    return [r for r in play.pending_resumes if r.kind is ResumeKind.EVENT and r.event_key]


def _answers(play: Play, events: dict[str, Event]) -> list[ResumeRequest]:
    """The answers resolving the waits in ``events`` (wait id → event); in a wait_any group,
    only the branch whose event was sent first."""
    best: dict[str, tuple[int, ResumeRequest]] = {}
    plain: list[ResumeRequest] = []
    now = now_ms()
    for wait in play.pending_resumes:
        event = events.get(wait.id)
        if event is None:
            continue
        answer = attrs.evolve(wait, payload=event.payload, via=event.via, event_id=event.event_id, resumed_at=now)
        if not wait.group:
            plain.append(answer)
        elif wait.group not in best or event.sent_at < best[wait.group][0]:
            best[wait.group] = (event.sent_at, answer)
    return [*plain, *(answer for _, answer in best.values())]
