"""The live span stream (CONTRACT.md §7), read by an independent websocket client.

trio-websocket over the service's Unix socket plays the subscriber; what it receives is
checked against the service's own record of the play (``play_spans``) once the play ends.
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import trio
import trio_websocket

from hero_logic.cli._live import LiveTree
from hero_logic.kernel import (
    EventBus,
    FoldedSpans,
    Play,
    PlayStatus,
    SpanFold,
    encode_message,
    to_json,
)
from hero_logic.kernel._folded import encode_fold, fold_rows
from hero_logic.kernel._seats import WatchSeats
from hero_logic.rpc import AsyncClient, SendGuard, stream_play
from hero_logic.rpc._stream import Dropped
from hero_logic.server import serve

from ._ws import raw_handshake
from .conftest import make_config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from .conftest import Service

STEPS = """
import time
from hero_tracing import flow

@flow
def step(i: int, delay: float):
    flow.current_span.tag(i=i)
    flow.current_span.log(f"step {i} starts")
    time.sleep(delay)
    return i * 10

@flow(name="steps", inputs={"n": {"type": "integer", "default": 3}, "delay": {"type": "number", "default": 0}})
def main(n, delay):
    return {"total": sum(step(i=i, delay=delay) for i in range(n))}
"""

CHATTY = """
import time
from hero_tracing import flow

@flow(name="chatty", inputs={"lines": {"type": "integer", "default": 10}, "burst": {"type": "integer", "default": 1000}})
def main(lines, burst):
    pad = "x" * 150
    for i in range(lines):
        flow.current_span.log(f"{i} {pad}")
        if (i + 1) % burst == 0:
            time.sleep(0.4)  # bursts a reading subscriber keeps up with
    return lines
"""


@asynccontextmanager
async def subscribe(sock: Path, path: str) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """An independent client: trio-websocket over the Unix socket."""
    async with trio.open_nursery() as nursery:
        stream = await trio.open_unix_socket(str(sock))
        ws = await trio_websocket.wrap_client_stream(nursery, stream, "localhost", path, message_queue_size=10_000)
        try:
            yield ws
        finally:
            await ws.aclose()
            await stream.aclose()  # trio-websocket leaves a stream the server closed first open


async def read_until_closed(ws: trio_websocket.WebSocketConnection) -> tuple[list[dict[str, Any]], int | None]:
    """Every message until the server closes, and the close code."""
    messages: list[dict[str, Any]] = []
    with trio.fail_after(30):
        while True:
            try:
                messages.append(json.loads(await ws.get_message()))
            except trio_websocket.ConnectionClosed as closed:
                return messages, closed.reason.code if closed.reason else None


def check_order(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events after the snapshot, checked: consecutive positions, a terminal status last."""
    assert messages[0]["type"] == "snapshot"
    events = [m for m in messages[1:] if m["type"] != "status"]
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(messages[0]["seq"] + 1, messages[0]["seq"] + 1 + len(events)))
    assert messages[-1]["type"] == "status"
    assert messages[-1]["status"] in ("success", "failed", "cancelled", "timed_out")
    return events


def fold(messages: list[dict[str, Any]]) -> LiveTree:
    tree = LiveTree()
    for message in messages:
        tree.apply(message)
    return tree


def comparable(spans: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(s["span_id"], s["parent_id"], s["name"], s["status"], s["tags"], s["logs"], s["end_ms"]) for s in spans]


async def test_snapshot_first_then_every_event_in_order_then_close_after_the_end(service: Service) -> None:
    wf = await service.push(STEPS)
    play_sid = await service.call("play_start", workflow_sid=wf["sid"], input_data={"n": 3})
    async with subscribe(service.config.rpc_socket, f"/api/plays/{play_sid}/spans") as ws:
        messages, code = await read_until_closed(ws)
    assert code == 1000
    snapshot = messages[0]
    assert snapshot["play"]["sid"] == play_sid
    events = check_order(messages)
    types = {e["type"] for e in events}
    if snapshot["seq"] == -1:  # subscribed before the flow said anything: we saw it all
        assert {"span_start", "span_tag", "span_log", "span_end", "step_output", "output"} <= types
    statuses = [m["status"] for m in messages if m["type"] == "status"]
    assert statuses[-1] == "success"
    assert statuses == sorted(set(statuses), key=statuses.index)  # no status twice in a row
    play = await service.call("play_status", play_sid=play_sid)
    assert messages[-1]["play"] == play
    assert play["output_data"] == {"total": 30}
    tree = fold(messages)
    assert comparable(tree.span_list()) == comparable(await service.call("play_spans", play_sid=play_sid))
    assert [s["name"] for s in tree.span_list()] == ["steps", "step", "step", "step"]


async def test_a_subscriber_joining_mid_play_gets_the_tree_so_far_then_the_rest(service: Service) -> None:
    wf = await service.push(STEPS)
    play_sid = await service.call("play_start", workflow_sid=wf["sid"], input_data={"n": 5, "delay": 0.25})
    with trio.fail_after(20):
        while len(await service.call("play_spans", play_sid=play_sid)) < 3:
            await trio.sleep(0.02)
    async with subscribe(service.config.rpc_socket, f"/api/plays/{play_sid}/spans") as ws:
        messages, code = await read_until_closed(ws)
    assert code == 1000
    snapshot = messages[0]
    assert snapshot["play"]["status"] == "running"
    assert len(snapshot["spans"]) >= 3
    assert snapshot["seq"] >= 5
    events = check_order(messages)
    assert events, "the play went on after the snapshot"
    tree = fold(messages)
    assert comparable(tree.span_list()) == comparable(await service.call("play_spans", play_sid=play_sid))


async def test_a_play_that_already_ended_gets_its_snapshot_a_status_and_the_close(service: Service) -> None:
    wf = await service.push(STEPS)
    play = await service.run(wf, n=2)
    async with subscribe(service.config.rpc_socket, f"/api/plays/{play['sid']}/spans") as ws:
        messages, code = await read_until_closed(ws)
    assert code == 1000
    assert [m["type"] for m in messages] == ["snapshot", "status"]
    assert messages[0]["play"] == messages[1]["play"] == play
    assert comparable(messages[0]["spans"]) == comparable(await service.call("play_spans", play_sid=play["sid"]))


async def test_a_paused_play_streams_its_pause_and_stays_open_until_it_ends(service: Service) -> None:
    wf = await service.push(
        """
        from hero_tracing import ask_user, flow

        @flow(name="ask")
        def main():
            return {"size": ask_user.choice("Which size?", options=["S", "M"], name="size")}
        """
    )
    play = await service.run(wf)
    assert play["status"] == "awaiting_resume"
    async with subscribe(service.config.rpc_socket, f"/api/plays/{play['sid']}/spans") as ws:
        snapshot = json.loads(await ws.get_message())
        assert snapshot["play"]["status"] == "awaiting_resume"
        assert snapshot["play"]["pending_resumes"][0]["ui"]["kind"] == "choice"
        await service.call("play_resume", play_sid=play["sid"], resume_id="size", payload="M")
        messages, code = await read_until_closed(ws)
    assert code == 1000
    statuses = [m["status"] for m in messages if m["type"] == "status"]
    assert statuses == ["running", "success"]
    assert any(m["type"] == "span_start" for m in messages)
    assert messages[-1]["play"]["output_data"] == {"size": "M"}


async def test_an_unknown_play_is_refused_with_404(service: Service) -> None:
    async with await trio.open_unix_socket(str(service.config.rpc_socket)) as stream:
        status, body = await raw_handshake(stream, "/api/plays/play_nope/spans")
    assert status == 404
    assert "no play with sid 'play_nope'" in json.loads(body)["error"]["message"]


async def test_a_subscriber_that_never_reads_is_dropped_without_slowing_the_play(service: Service) -> None:
    wf = await service.push(CHATTY)
    lines = 12_500  # more events than the bus queue (10 000) and the socket buffers hold
    play_sid = await service.call("play_start", workflow_sid=wf["sid"], input_data={"lines": lines, "burst": 2500})
    stuck = await trio.open_unix_socket(str(service.config.rpc_socket))
    try:
        assert (await raw_handshake(stuck, f"/api/plays/{play_sid}/spans"))[0] == 101
        # ...and never read again. A second subscriber reads everything meanwhile.
        async with subscribe(service.config.rpc_socket, f"/api/plays/{play_sid}/spans") as ws:
            messages, code = await read_until_closed(ws)
        assert code == 1000
        check_order(messages)
        play = await service.call("play_wait", play_sid=play_sid, timeout_ms=30000)
        assert play["status"] == "success"
        assert sum(1 for m in messages if m["type"] == "span_log") == lines  # it saw every event
        # ...and folds them as the service does (a span keeps at most 1000 log lines)
        assert comparable(fold(messages).span_list()) == comparable(await service.call("play_spans", play_sid=play_sid))
        stats = (await service.client.health())["stream"]
        assert stats["dropped_subscribers"] >= 1
    finally:
        await stuck.aclose()


async def test_the_all_plays_stream_sends_recent_plays_then_every_status_change(service: Service) -> None:
    wf = await service.push(STEPS)
    first = await service.run(wf, n=1)
    async with subscribe(service.config.rpc_socket, "/api/plays/events") as ws:
        snapshot = json.loads(await ws.get_message())
        assert snapshot["type"] == "snapshot"
        assert [p["sid"] for p in snapshot["plays"]] == [first["sid"]]
        second = await service.call("play_start", workflow_sid=wf["sid"], input_data={"n": 1})
        seen: list[str] = []
        with trio.fail_after(20):
            while "success" not in seen:
                message = json.loads(await ws.get_message())
                assert message["type"] == "status"
                assert message["play"]["sid"] == second
                seen.append(message["status"])
    assert seen[-2:] == ["running", "success"]


class _RacingKernel:
    """A kernel stand-in whose snapshot read races with the play: while the stream reads the
    play record, two events and a status change land (stored and published)."""

    def __init__(self) -> None:
        self.bus = EventBus()
        self.events: list[dict[str, Any]] = []
        self.play = Play(sid="play_1", workflow_sid="wf", workflow_version_sid="ver", status=PlayStatus.PENDING)
        self.repo = self
        self.store = self
        self.watch_seats = WatchSeats()

    def land(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self.bus.publish(self.play.sid, {**event, "seq": len(self.events) - 1})

    def set_status(self, status: PlayStatus) -> None:
        self.play = attrs.evolve(self.play, status=status)
        self.bus.publish(self.play.sid, {"type": "status", "status": status.value, "play": to_json(self.play)})

    async def get_play(self, sid: str) -> Play:
        self.set_status(PlayStatus.RUNNING)
        self.land({"type": "span_start", "span_id": "a", "parent_id": "", "name": "root", "kind": "flow_root", "start_ms": 1})
        self.land({"type": "span_log", "span_id": "a", "text": "during the read"})
        await trio.lowlevel.checkpoint()
        return self.play

    async def folded_spans(self, play_sid: str) -> FoldedSpans:
        fold = SpanFold(play_sid)
        rows = [(f"{play_sid}/{i:010d}", json.dumps(e).encode()) for i, e in enumerate(self.events)]
        fold_rows(fold, rows, len(rows) - 1)
        return encode_fold(fold, len(rows) - 1)


async def test_what_lands_while_the_snapshot_is_read_is_sent_once() -> None:
    kernel = _RacingKernel()
    sent: list[dict[str, Any]] = []

    async def emit(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "snapshot":  # the play goes on once the snapshot is out
            kernel.land({"type": "span_end", "span_id": "a", "end_ms": 5, "status": "ok"})
            kernel.set_status(PlayStatus.SUCCESS)

    final = await stream_play(kernel, "play_1", lambda m: emit(json.loads(encode_message(m))))  # type: ignore[arg-type]
    assert final is PlayStatus.SUCCESS
    assert [m["type"] for m in sent] == ["snapshot", "span_end", "status"]
    assert sent[0]["seq"] == 1
    assert sent[0]["play"]["status"] == "running"
    assert sent[0]["spans"][0]["logs"] == ["during the read"]
    assert sent[1]["seq"] == 2
    assert sent[2]["status"] == "success"


async def test_a_subscriber_that_falls_behind_the_bus_queue_is_dropped() -> None:
    kernel = _RacingKernel()

    async def slow(message: dict[str, Any]) -> None:
        if message["type"] == "snapshot":
            for i in range(5):  # more than the queue of 3 holds, before the stream reads again
                kernel.land({"type": "span_log", "span_id": "a", "text": str(i)})

    with pytest.raises(Dropped):
        await stream_play(kernel, "play_1", slow, queue_size=3)  # type: ignore[arg-type]
    assert kernel.bus.statistics().dropped_subscribers == 1


async def test_a_subscriber_that_never_reads_cannot_hold_up_a_shutdown(root: Path) -> None:
    """hypercorn writes frames in a shielded send: without the guard, this stop hangs forever."""
    config = make_config(root)
    stuck = None
    try:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                await nursery.start(serve, config)
                async with AsyncClient(config.rpc_socket) as client:
                    wf = await client.call("workflow_create", {"name": "chatty", "python_source": CHATTY})
                    sid = await client.call("play_start", {"workflow_sid": wf["sid"], "input_data": {"lines": 12_500, "burst": 100_000}})
                    stuck = await trio.open_unix_socket(str(config.rpc_socket))
                    assert (await raw_handshake(stuck, f"/api/plays/{sid}/spans"))[0] == 101
                    play = await client.call("play_wait", {"play_sid": sid, "timeout_ms": 20000})
                    assert play["status"] == "success"
                nursery.cancel_scope.cancel()  # the service stops with the stuck subscriber still there
    finally:
        if stuck is not None:
            await stuck.aclose()


class _Connection:
    """Stands in for hypercorn's TCPServer: its ``stream`` and a shielded write, as 0.18 does it."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream

    async def send(self, message: Any) -> None:
        try:
            with trio.CancelScope(shield=True):
                await self.stream.send_all(b"x" * 4_000_000)  # more than the socket holds
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # what hypercorn treats as a disconnect


async def test_the_guard_cuts_off_a_send_that_waits_too_long() -> None:
    a, b = trio.socket.socketpair()
    connection = _Connection(trio.SocketStream(a))
    guard = SendGuard(connection.send, stuck_after=0.2)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(guard.watch)
            await guard.send({"type": "websocket.send", "text": "..."})
            nursery.cancel_scope.cancel()
    assert guard.cut
    b.close()


async def test_frames_arriving_with_the_handshake_answer_are_not_lost(tmp_path: Path) -> None:
    """An ended play's whole stream (answer, snapshot, status, close) can come in one read."""
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

    from hero_logic.rpc import open_stream

    path = str(tmp_path / "s.sock")
    listener = trio.socket.socket(trio.socket.AF_UNIX)
    await listener.bind(path)
    listener.listen(1)

    async def serve_once() -> None:
        conn, _ = await listener.accept()
        server = WSConnection(ConnectionType.SERVER)
        while True:
            server.receive_data(await conn.recv(65536))
            if any(isinstance(event, Request) for event in server.events()):
                break
        burst = server.send(AcceptConnection())
        burst += server.send(TextMessage(data='{"type": "snapshot", "play": {"sid": "p", "status": "failed"}, "spans": [], "seq": -1}'))
        burst += server.send(TextMessage(data='{"type": "status", "status": "failed"}'))
        burst += server.send(CloseConnection(code=1000))
        await conn.send(burst)  # one write: the client reads it all at once
        await trio.sleep(0.2)
        conn.close()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_once)
        async with open_stream(path, "/api/plays/p/spans") as stream:
            first = await stream.receive()
            second = await stream.receive()
            assert await stream.receive() is None
        assert first is not None
        assert first["type"] == "snapshot"
        assert second == {"type": "status", "status": "failed"}
        assert stream.close_code == 1000
    listener.close()
