"""A big play (hundreds of thousands of span events) read by several clients at once, and its
workflow deleted, while a ping keeps answering fast: reading and deleting never hold the event
loop for long."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from hero_logic.rpc import AsyncClient

from .conftest import start_service_process

if TYPE_CHECKING:
    from pathlib import Path

BIG = """
from hero_tracing import flow

@flow(name="big")
def big(steps: int = 100000) -> int:
    for i in range(steps):
        with flow.step("s"):
            flow.current_span.log("l")
    return steps
"""

PING_BOUND_S = 0.1


async def _pings(socket: Path, worst: list[float], stop: trio.Event) -> None:
    async with AsyncClient(socket) as client:
        while not stop.is_set():
            start = trio.current_time()
            assert await client.call("system.ping") == "pong"
            worst.append(trio.current_time() - start)
            await trio.sleep(0.02)


async def test_a_big_play_read_by_three_clients_and_deleted_never_stalls_a_ping(root: Path) -> None:
    """The service runs in its own process: the clients' own decoding must not count."""
    proc, config = await start_service_process(root, sandbox="env_scrub", env={"HERO_LOGIC_SEED_FLOWS": "off"})
    try:
        await _big_play_scenario(config.rpc_socket)
    finally:
        proc.kill()
        await proc.wait()


async def _big_play_scenario(socket: Path) -> None:
    async with AsyncClient(socket, timeout=120) as client:
        wf = await client.call("workflow_create", {"name": "big", "python_source": BIG})
        sid = await client.call("play_start", {"workflow_sid": wf["sid"]})
        play = await client.call("play_wait", {"play_sid": sid, "timeout_ms": 120_000})
    assert play["status"] == "success", play["error_message"]
    latencies: list[float] = []
    stop = trio.Event()
    results: dict[str, Any] = {}

    async def read_spans(key: str) -> None:
        async with AsyncClient(socket, timeout=120) as client:
            results[key] = await client.call("play_spans", {"play_sid": play["sid"]})

    async def read_page() -> None:
        async with AsyncClient(socket, timeout=120) as client:
            results["page"] = await client.call("play_spans_page", {"play_sid": play["sid"], "offset": 5, "limit": 10})

    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_pings, socket, latencies, stop)
            async with trio.open_nursery() as readers:
                readers.start_soon(read_spans, "a")
                readers.start_soon(read_spans, "b")
                readers.start_soon(read_page)
            assert len(results["a"]) == len(results["b"]) == 100_001
            assert results["page"]["total"] == 100_001
            assert [s["span_id"] for s in results["page"]["spans"]] == [s["span_id"] for s in results["a"][5:15]]
            async with AsyncClient(socket, timeout=120) as client:
                assert await client.call("workflow_delete", {"sid": wf["sid"]}) is True
            stop.set()
    assert latencies
    assert max(latencies) < PING_BOUND_S, sorted(latencies)[-5:]
