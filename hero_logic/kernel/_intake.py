"""The kernel's intake: what a flow sends on its span socket, stored then published.

:class:`EventIntake` is the part of the :class:`~hero_logic.kernel.Kernel` that the span
listener feeds (the kernel is an :class:`~hero_logic.kernel.EventSink`): event batches are
stored in one commit each, within the byte bounds of a run and of a play, then published on the
bus; requests are answered by the service's handler of their kind.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from hero_logic.sdk import REQUEST_METHODS

from ._convert import dumps
from ._errors import HeroLogicError
from ._handle import MAX_EVENT_BYTES_PER_PLAY, MAX_EVENT_BYTES_PER_RUN, error_response
from ._model import PlayStatus, now_ms
from ._repo import event_key
from ._runner import RunState
from ._store_api import Put, Write

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._bus import EventBus
    from ._handle import PlayHandle
    from ._interfaces import FlowRequestHandler
    from ._keyed_lock import KeyedLock
    from ._repo import Repo

__all__ = ["EventIntake"]

log = logging.getLogger("hero_logic.kernel")


class EventIntake:
    """Stores and publishes what flows send (mixed into the Kernel)."""

    repo: Repo
    bus: EventBus
    _handles: dict[str, PlayHandle]
    _push_locks: KeyedLock
    _requests: FlowRequestHandler | None

    async def apply(self, play_sid: str, events: Sequence[tuple[bytes, dict[str, Any]]]) -> None:
        """Persist a batch of a play's events in one commit, then publish them on the bus."""
        handle = self._handles.get(play_sid)
        state = handle.state if handle is not None else None
        if handle is not None and handle.redactor is not None:
            events = handle.redactor.events(events)
        if state is None:
            # span_push for a play that is not running: read the last position and append
            # under the play's lock, so concurrent pushes never write the same position.
            async with self._push_locks.hold(play_sid):
                state = RunState(seq=await self.repo.last_event_seq(play_sid))
                await self._append(play_sid, state, events)
            return
        await self._append(play_sid, state, events)

    async def _append(
        self, play_sid: str, state: RunState, events: Sequence[tuple[bytes, dict[str, Any]]]
    ) -> None:
        size = sum(len(raw) for raw, _ in events)
        over_run = state.stored_bytes + size > MAX_EVENT_BYTES_PER_RUN
        if over_run or state.bytes_before + state.stored_bytes + size > MAX_EVENT_BYTES_PER_PLAY:
            handle = self._handles.get(play_sid)
            if handle is not None and handle.state is state and not handle.fail_reason:
                cap, where = (MAX_EVENT_BYTES_PER_RUN, "in one run") if over_run else (MAX_EVENT_BYTES_PER_PLAY, "over all its runs")
                log.warning("play %s: over %d bytes of span events %s; stopping it", play_sid, cap, where)
                handle.fail_reason = (
                    f"the play streamed over {cap >> 20} MiB of span events (tags, logs, outputs) "
                    f"{where} and was stopped: log less, or keep large data in files of its workdir"
                )
                handle.scope.cancel()
            return
        state.stored_bytes += size
        writes: list[Write] = []
        first_seq = state.seq + 1
        for raw, event in events:
            state.seq += 1
            writes.append(Put("events", event_key(play_sid, state.seq), raw))
            state.observe(event)
        await self.repo.commit(writes)
        # Published with their position, so a live stream can tell them from its snapshot's
        # (and not built at all while nobody watches: the usual case on this hot path).
        if self.bus.has_subscribers(play_sid):
            for seq, (raw, event) in enumerate(events, first_seq):
                self.bus.publish(play_sid, {**event, "seq": seq}, size=len(raw))

    async def request(self, play_sid: str, event: dict[str, Any]) -> dict[str, Any]:
        """Answer a flow's request (flow lookup, child plays) with the handler of its kind."""
        request_id = event.get("id")
        method = event.get("method")
        if self._requests is None or method not in REQUEST_METHODS:
            known = ", ".join(sorted(REQUEST_METHODS))
            return error_response(
                request_id, -32601,
                f"unknown flow request method {method!r} (known: {known}): the SDK and the service disagree on the protocol",
            )
        params = event.get("params")
        handler = getattr(self._requests, str(method))
        try:
            result = await handler(play_sid, params if isinstance(params, dict) else {})
        except HeroLogicError as exc:
            return {"type": "response", "id": request_id, "error": exc.to_json()}
        except Exception as exc:  # hostile params must get an error answer, not end the play
            log.exception("play %s: request %r failed unexpectedly", play_sid, event.get("method"))
            return error_response(request_id, -32603, f"the service could not answer this request ({type(exc).__name__})")
        return {"type": "response", "id": request_id, "result": result}

    async def _close_open_spans(self, play_sid: str, state: RunState, status: PlayStatus) -> None:
        """End the spans a run left open: ``pending`` for a pause, else the play's end state."""
        if not state.open_spans:
            return
        span_status = {
            PlayStatus.AWAITING_RESUME: "pending",
            PlayStatus.TIMED_OUT: "timed_out",
            PlayStatus.CANCELLED: "cancelled",
        }.get(status, "failed")
        now = now_ms()
        events = [
            {"type": "span_end", "span_id": span_id, "end_ms": now, "status": span_status}
            for span_id in list(state.open_spans)
        ]
        await self.apply(play_sid, [(dumps(e), e) for e in events])

