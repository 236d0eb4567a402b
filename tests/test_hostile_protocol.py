"""Hostile values a flow controls — outputs, tags, pause schemas — end the play at worst,
never the service, and never make the service read files or the network for the flow."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
import trio

from hero_logic.rpc import AsyncClient, RpcError

if TYPE_CHECKING:
    from .conftest import Service

PAUSE_WITH = """
from hero_tracing import flow

@flow
def main():
    return flow.pause("q", schema=SCHEMA)
"""


async def _paused(service: Service, schema: str) -> str:
    wf = await service.push(PAUSE_WITH.replace("SCHEMA", schema), name="hostile_schema")
    play = await service.run(wf)
    assert play["status"] == "awaiting_resume", play["error_message"]
    return str(play["sid"])


async def test_deeply_nested_output_and_tags_fail_the_play_not_the_service(service: Service) -> None:
    wf = await service.push(
        """
from hero_tracing import flow

@flow
def main(where: str):
    x = []
    for _ in range(400):
        x = [x]
    if where == "tag":
        flow.current_span.tag(deep=x)
        return "tagged"
    return {"deep": x}
""",
        name="deep",
    )
    play = await service.run(wf, where="output")
    assert play["status"] == "failed"
    assert "nested deeper than 64 levels" in play["error_message"]
    play = await service.run(wf, where="tag")
    assert play["status"] == "success"  # the deep tag line is dropped as malformed, counted
    assert play["skipped_span_lines"] == 1
    assert await service.call("play_spans", play_sid=play["sid"])
    assert await service.call("system.ping") == "pong"


async def test_a_schema_that_points_at_a_host_file_is_never_read(service: Service) -> None:
    secret = service.config.root / "secret.json"
    secret.write_text('{"const": "TOPSECRET-42"}')
    sid = await _paused(service, repr({"$ref": f"file://{secret}"}))
    with pytest.raises(RpcError) as info:
        await service.call("play_resume", play_sid=sid, resume_id="q", payload=1)
    assert info.value.code == -32002
    assert "cannot be used" in info.value.message
    assert "TOPSECRET" not in info.value.message
    assert await service.call("system.ping") == "pong"


async def test_a_backtracking_pattern_cannot_freeze_the_service(service: Service) -> None:
    sid = await _paused(service, repr({"type": "string", "pattern": "^(a+)+$"}))
    pings: list[float] = []

    async def ping_meanwhile() -> None:
        async with AsyncClient(service.config.rpc_socket) as client:
            for _ in range(10):
                started = time.monotonic()
                assert await client.call("system.ping", {}) == "pong"
                pings.append(time.monotonic() - started)
                await trio.sleep(0.1)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ping_meanwhile)
        with pytest.raises(RpcError) as info, trio.fail_after(10):
            await service.call("play_resume", play_sid=sid, resume_id="q", payload="a" * 40 + "!")
    assert info.value.code == -32002
    assert "took over" in info.value.message
    assert max(pings) < 1.0, pings
    # the checker comes back for the next answer
    await service.call("play_resume", play_sid=sid, resume_id="q", payload="aaa")
    play = await service.call("play_wait", play_sid=sid, timeout_ms=20000)
    assert play["status"] == "success"


async def test_a_hostile_prefilled_schema_check_fails_the_play_only(service: Service) -> None:
    wf = await service.push(
        """
from hero_tracing import flow
from hero_tracing._state import get

@flow
def main():
    get().writer.request("check_answer", {"resume_id": "x", "name": "x", "schema": {"$ref": "http://127.0.0.1:9/x"}, "payload": 1})
    return 1
""",
        name="raw_check",
    )
    play = await service.run(wf)
    assert play["status"] == "failed"
    assert "cannot be used" in play["error_message"]
    assert await service.call("system.ping") == "pong"


async def test_a_play_holds_at_most_a_few_span_socket_connections(service: Service) -> None:
    wf = await service.push(
        """
import os, socket
from hero_tracing import flow

@flow
def main():
    held, closed = [], 0
    for _ in range(100):
        s = socket.socket(socket.AF_UNIX)
        s.connect(os.environ["HERO_FLOW_SPAN_SOCK"])
        try:
            s.sendall(b"x" * 100000)  # half a line the service would have to buffer
        except OSError:
            closed += 1  # already refused
            continue
        held.append(s)
    for s in held:
        s.settimeout(0.2)
        try:
            closed += s.recv(1) == b""
        except TimeoutError:
            pass  # still open
        except OSError:
            closed += 1  # reset: closed with our bytes unread
    return closed
""",
        name="many_connections",
    )
    play = await service.run(wf)
    assert play["status"] == "success", play["error_message"]
    assert play["output_data"] >= 100 - 16  # all past the bound were closed by the service
    assert await service.call("system.ping") == "pong"


async def test_a_flow_that_spawns_itself_stops_at_the_nesting_bound(service: Service) -> None:
    wf = await service.push(
        """
from hero_tracing import flow

@flow(name="bomb")
def main(level: int = 0):
    return flow.invoke("bomb", spawn=True, level=level + 1)
""",
        name="bomb",
    )
    play = await service.run(wf, timeout_ms=60000)
    assert play["status"] == "failed"
    assert "nest at most 8 deep" in play["error_message"]
    plays = await service.call("play_list", workflow_sid=wf["sid"], limit=100)
    assert len(plays) == 8
    assert all(p["status"] == "failed" for p in plays), [p["status"] for p in plays]


async def test_a_parent_that_times_out_takes_its_running_child_with_it(service: Service) -> None:
    await service.push(
        """
import time
from hero_tracing import flow

@flow(name="sleeper")
def main():
    time.sleep(60)
    return 1
""",
        name="sleeper",
    )
    parent = await service.push(
        """
from hero_tracing import flow

@flow(name="waiter")
def main():
    return flow.invoke("sleeper", spawn=True)
""",
        name="waiter",
    )
    sid = await service.call("play_start", workflow_sid=parent["sid"], timeout_ms=1500)
    play = await service.call("play_wait", play_sid=sid, timeout_ms=30000)
    assert play["status"] == "timed_out"
    (child_sid,) = play["child_play_sids"]
    child = await service.call("play_wait", play_sid=child_sid, timeout_ms=10000)
    assert child["status"] == "cancelled"


async def test_a_play_flooding_span_events_is_stopped_at_its_quota(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hero_logic.kernel import _kernel

    monkeypatch.setattr(_kernel, "MAX_EVENT_BYTES_PER_RUN", 2 * 1024 * 1024)
    wf = await service.push(
        """
from hero_tracing import flow

@flow
def main():
    while True:
        flow.current_span.log("L" * 60000)
""",
        name="flood",
    )
    play = await service.run(wf)
    assert play["status"] == "failed"
    assert "MiB of span events" in play["error_message"]
    spans = await service.call("play_spans", play_sid=play["sid"])
    assert spans[0]["status"] == "failed"  # closed, not left running
    assert sum(len(line) for span in spans for line in span["logs"]) < 3 * 1024 * 1024


async def test_a_flood_of_pauses_fails_the_play_and_lists_carry_no_schemas(service: Service) -> None:
    wf = await service.push(
        """
import json, os, socket
from hero_tracing import flow

@flow
def main(n: int = 150, schema_kib: int = 1):
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.environ["HERO_FLOW_SPAN_SOCK"])
    schema = {"type": "string", "description": "x" * (schema_kib * 1024)}
    for i in range(n):
        line = {"type": "pause", "resume_id": f"r{i}", "name": f"q{i}", "span_id": "s", "asked_at": 1, "schema": schema}
        s.sendall(json.dumps(line).encode() + b"\\n")
    s.close()
    os._exit(75)  # as the SDK's pause exit does
""",
        name="pause_flood",
    )
    flooded = await service.run(wf)
    assert flooded["status"] == "failed"
    assert "more than 100 questions" in flooded["error_message"]
    assert flooded["pending_resumes"] == []
    big = await service.run(wf, n=3, schema_kib=600)  # 1.8 MiB of schemas in three questions
    assert big["status"] == "failed"
    assert "KiB" in big["error_message"]
    fine = await service.run(wf, n=2, schema_kib=1)
    assert fine["status"] == "awaiting_resume", fine["error_message"]
    assert all(r["schema"] for r in fine["pending_resumes"])  # the record itself has them
    (listed,) = [p for p in await service.call("play_list", status="awaiting_resume") if p["sid"] == fine["sid"]]
    assert [r["schema"] for r in listed["pending_resumes"]] == [None, None]  # a list does not
    assert len(await service.call("play_pending_resumes", play_sid=fine["sid"])) == 2


async def test_another_users_simple_answer_never_waits_behind_hostile_schema_checks(service: Service) -> None:
    hostile = await service.push(
        """
from hero_tracing import flow
from hero_tracing._state import get

@flow
def main():
    for _ in range(3):  # each check runs into the deadline
        try:
            get().writer.request("check_answer", {"resume_id": "x", "name": "x", "schema": {"type": "string", "pattern": "^(a+)+$"}, "payload": "a" * 40 + "!"})
        except Exception:
            pass
    return 1
""",
        name="slow_checks",
    )
    sid = await _paused(service, repr({"type": "string", "enum": ["yes", "no"]}))
    starts = [await service.call("play_start", workflow_sid=hostile["sid"]) for _ in range(4)]
    await trio.sleep(0.5)  # the hostile checks now hold the checker's workers
    started = time.monotonic()
    with trio.fail_after(10):
        await service.call("play_resume", play_sid=sid, resume_id="q", payload="yes")
    assert time.monotonic() - started < 0.5
    with pytest.raises(RpcError) as info:
        await service.call("play_resume", play_sid=sid, resume_id="q", payload="maybe")
    assert info.value.code in (-32602, -32003)
    for play_sid in starts:
        await service.call("play_cancel", play_sid=play_sid)
