"""A flow end to end: pushed over the real socket, run in a real subprocess, spans in LMDB."""

from __future__ import annotations

import os
from typing import Any

import pytest
import trio

from hero_logic.rpc import RpcError

from .conftest import Service

NESTED = """
    import time
    from hero_tracing import flow, instrument

    class Weather:
        def forecast(self, city):
            return {"city": city, "sky": "clear"}

    @flow(inputs={"n": {"type": "integer", "required": True}})
    def double(n):
        flow.current_span.tag(doubled=n * 2, cost_usd=0.25)
        return {"value": n * 2}

    @flow(name="nested", description="steps inside steps",
          inputs={"city": {"type": "string", "required": True}, "n": {"type": "integer", "default": 3}},
          outputs={"total": "integer", "sky": "string"})
    def main(city, n):
        flow.current_span.log(f"starting for {city}")
        with flow.step("fan-out", width=n):
            values = [double(n=i)["value"] for i in range(n)]
        weather = instrument(Weather()).forecast(city)
        return {"total": sum(values), "sky": weather["sky"]}
"""


async def test_success_returns_output_and_full_span_tree(service: Service) -> None:
    wf = await service.push(NESTED, name="nested")
    assert [f["name"] for f in wf["inputs"]] == ["city", "n"]
    play = await service.run(wf, city="Ghent")
    assert play["status"] == "success", play["error_message"]
    assert play["output_data"] == {"total": 6, "sky": "clear"}
    assert play["completed_at"] >= play["started_at"] >= play["created_at"]
    assert play["duration_ms"] == play["completed_at"] - play["started_at"]
    assert play["total_cost_usd"] == pytest.approx(0.75)
    assert play["input_data"] == {"city": "Ghent", "n": 3}  # declared default filled in

    spans = await service.call("play_spans", play_sid=play["sid"])
    by_name: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        by_name.setdefault(span["name"], []).append(span)
    root = by_name["nested"][0]
    assert root["kind"] == "flow_root"
    assert root["parent_id"] == ""
    assert root["status"] == "ok"
    assert root["logs"] == ["starting for Ghent"]
    assert root["source_file"].endswith("flow.py")
    assert root["source_line"] > 0
    fan = by_name["fan-out"][0]
    assert fan["parent_id"] == root["span_id"]
    assert fan["tags"] == {"width": 3}
    doubles = by_name["double"]
    assert len(doubles) == 3
    assert all(d["parent_id"] == fan["span_id"] and d["kind"] == "step" for d in doubles)
    assert [d["tags"]["doubled"] for d in doubles] == [0, 2, 4]
    assert len({d["step_key"] for d in doubles}) == 3
    rpc = [s for s in spans if s["kind"] == "rpc"]
    assert len(rpc) == 1
    assert rpc[0]["parent_id"] == root["span_id"]
    assert rpc[0]["rpc_method"] == "forecast"
    assert rpc[0]["status"] == "ok"
    assert all(s["end_ms"] >= s["start_ms"] for s in spans)
    assert spans == sorted(spans, key=lambda s: s["start_ms"])


async def test_async_flow_runs(service: Service) -> None:
    wf = await service.push(
        """
        import asyncio
        from hero_tracing import flow

        @flow
        async def square(x: int):
            await asyncio.sleep(0)
            return x * x

        @flow(name="gather")
        async def main():
            return sum(await asyncio.gather(*(square(x=i) for i in range(4))))
        """
    )
    play = await service.run(wf)
    assert play["status"] == "success", play["error_message"]
    assert play["output_data"] == 14


async def test_flow_failed_gives_failed_with_the_clean_reason(service: Service) -> None:
    wf = await service.push(
        """
        from hero_tracing import flow

        @flow
        def main():
            raise flow.Failed("the invoice has no total")
        """
    )
    play = await service.run(wf)
    assert play["status"] == "failed"
    assert play["error_message"].startswith("the invoice has no total")
    assert play["completed_at"] is not None
    assert play["duration_ms"] is not None
    (root,) = await service.call("play_spans", play_sid=play["sid"])
    assert root["status"] == "failed"
    assert root["error"] == "the invoice has no total"


async def test_uncaught_exception_keeps_traceback_and_stderr_tail(service: Service) -> None:
    wf = await service.push(
        """
        import sys
        from hero_tracing import flow

        @flow
        def main():
            print("about to divide", file=sys.stderr)
            return 1 / 0
        """
    )
    play = await service.run(wf)
    assert play["status"] == "failed"
    assert "ZeroDivisionError" in play["error_message"]
    assert "about to divide" in play["error_message"]  # the stderr tail
    (root,) = await service.call("play_spans", play_sid=play["sid"])
    assert "Traceback" in root["error"]
    assert "ZeroDivisionError" in root["error"]


async def test_source_whose_flow_vanishes_at_runtime_exits_2(service: Service) -> None:
    wf = await service.push(
        """
        from hero_tracing import flow

        def flow(fn):  # shadows the SDK's decorator: nothing is registered at run time
            return fn

        @flow
        def main():
            return 1
        """
    )
    play = await service.run(wf)
    assert play["status"] == "failed"
    assert play["exit_code"] == 2
    assert "no @flow" in play["error_message"]


async def test_wall_clock_timeout_ends_timed_out(service: Service) -> None:
    wf = await service.push(
        """
        import time
        from hero_tracing import flow

        @flow
        def main():
            time.sleep(60)
        """
    )
    sid = await service.call("play_start", workflow_sid=wf["sid"], timeout_ms=700)
    with trio.fail_after(15):
        play = await service.call("play_wait", play_sid=sid)
    assert play["status"] == "timed_out"
    assert "700 ms" in play["error_message"]
    assert 700 <= play["duration_ms"] < 10_000
    assert play["completed_at"] is not None


async def _wait_running(service: Service, sid: str) -> None:
    with trio.fail_after(15):
        while not await service.call("play_spans", play_sid=sid):
            await trio.sleep(0.02)


async def test_cancel_kills_the_process_and_ends_cancelled(service: Service) -> None:
    wf = await service.push(
        """
        import os, time
        from hero_tracing import flow

        @flow
        def main():
            flow.current_span.tag(pid=os.getpid())
            time.sleep(60)
        """
    )
    sid = await service.call("play_start", workflow_sid=wf["sid"])
    await _wait_running(service, sid)
    with trio.fail_after(10):
        while not (spans := await service.call("play_spans", play_sid=sid))[0]["tags"].get("pid"):
            await trio.sleep(0.02)
    pid = spans[0]["tags"]["pid"]
    play = await service.call("play_cancel", play_sid=sid)
    assert play["status"] == "cancelled"
    assert play["completed_at"] is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(RpcError) as err:
        await service.call("play_cancel", play_sid=sid)
    assert err.value.code == -32002  # wrong state: it already ended


async def test_play_wait_honours_its_timeout_on_a_running_play(service: Service) -> None:
    wf = await service.push(
        """
        import time
        from hero_tracing import flow

        @flow
        def main():
            time.sleep(30)
        """
    )
    sid = await service.call("play_start", workflow_sid=wf["sid"])
    start = trio.current_time()
    play = await service.call("play_wait", play_sid=sid, timeout_ms=300)
    elapsed = trio.current_time() - start
    assert play["status"] in ("pending", "running")
    assert 0.25 <= elapsed < 5
    await service.call("play_cancel", play_sid=sid)


async def test_max_running_bounds_concurrency_and_the_rest_wait_pending(root: Any, nursery: trio.Nursery) -> None:
    from hero_logic.rpc import AsyncClient
    from hero_logic.server import serve

    from .conftest import make_config

    config = make_config(root, max_running=1)
    await nursery.start(serve, config)
    async with AsyncClient(config.rpc_socket) as client:
        svc = Service(config, client)
        wf = await svc.push(
            """
            import time
            from hero_tracing import flow

            @flow
            def main(seconds: float):
                time.sleep(seconds)
            """
        )
        first = await svc.call("play_start", workflow_sid=wf["sid"], input_data={"seconds": 30})
        second = await svc.call("play_start", workflow_sid=wf["sid"], input_data={"seconds": 0})
        await _wait_running(svc, first)
        assert (await svc.call("play_status", play_sid=second))["status"] == "pending"
        await svc.call("play_cancel", play_sid=first)
        done = await svc.call("play_wait", play_sid=second, timeout_ms=20000)
        assert done["status"] == "success"
    nursery.cancel_scope.cancel()


async def test_cancel_a_pending_play(root: Any, nursery: trio.Nursery) -> None:
    from hero_logic.rpc import AsyncClient
    from hero_logic.server import serve

    from .conftest import make_config

    config = make_config(root, max_running=1)
    await nursery.start(serve, config)
    async with AsyncClient(config.rpc_socket) as client:
        svc = Service(config, client)
        wf = await svc.push(
            """
            import time
            from hero_tracing import flow

            @flow
            def main():
                time.sleep(30)
            """
        )
        first = await svc.call("play_start", workflow_sid=wf["sid"])
        second = await svc.call("play_start", workflow_sid=wf["sid"])
        cancelled = await svc.call("play_cancel", play_sid=second)
        assert cancelled["status"] == "cancelled"
        assert cancelled["started_at"] is None
        await svc.call("play_cancel", play_sid=first)
    nursery.cancel_scope.cancel()


async def test_flow_environment_holds_no_service_secret(service: Service) -> None:
    os.environ["HERO_TEST_SECRET"] = "hunter2"
    try:
        wf = await service.push(
            """
            import os
            from hero_tracing import flow

            @flow
            def main():
                return {"env": dict(os.environ), "cwd": os.getcwd()}
            """
        )
        play = await service.run(wf)
    finally:
        del os.environ["HERO_TEST_SECRET"]
    assert play["status"] == "success", play["error_message"]
    env = play["output_data"]["env"]
    assert "HERO_TEST_SECRET" not in env
    assert all(k.startswith("HERO_FLOW_") or k in {"PATH", "HOME", "LANG", "LC_CTYPE", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"} for k in env)
    assert play["output_data"]["cwd"] == str(service.config.play_workdir(play["sid"]))


async def test_flow_inherits_no_file_descriptors_but_stdio_and_its_socket(service: Service) -> None:
    wf = await service.push(
        """
        import os
        from hero_tracing import flow

        @flow
        def main():
            flow.current_span.tag(hello=1)  # makes sure the span socket is open
            return sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
        """
    )
    play = await service.run(wf)
    assert play["status"] == "success", play["error_message"]
    fds = play["output_data"]
    # 0-2 stdio, the span socket, and the fd listdir itself holds open
    assert fds[:3] == [0, 1, 2]
    assert len(fds) <= 5


async def test_service_shutdown_kills_running_flow(root: Any) -> None:
    from hero_logic.rpc import AsyncClient
    from hero_logic.server import serve

    from .conftest import make_config

    config = make_config(root)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve, config)
        async with AsyncClient(config.rpc_socket) as client:
            svc = Service(config, client)
            wf = await svc.push(
                """
                import os, time
                from hero_tracing import flow

                @flow
                def main():
                    flow.current_span.tag(pid=os.getpid())
                    time.sleep(60)
                """
            )
            sid = await svc.call("play_start", workflow_sid=wf["sid"])
            with trio.fail_after(10):
                while not ((spans := await svc.call("play_spans", play_sid=sid)) and spans[0]["tags"].get("pid")):
                    await trio.sleep(0.02)
        nursery.cancel_scope.cancel()
    pid = spans[0]["tags"]["pid"]
    with trio.fail_after(5):
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            await trio.sleep(0.05)


async def test_malformed_and_oversized_span_lines_are_counted_and_skipped(service: Service) -> None:
    wf = await service.push(
        """
        import os, socket
        from hero_tracing import flow

        @flow
        def inner():
            return 1

        @flow
        def main():
            s = socket.socket(socket.AF_UNIX)
            s.connect(os.environ["HERO_FLOW_SPAN_SOCK"])
            s.sendall(b"this is not json\\n")
            s.sendall(b'{"type": "span_tag"}\\n')
            s.sendall(b'{"type": "span_log", "span_id": "x", "text": "' + b"y" * (2 * 1024 * 1024) + b'"}\\n')
            s.sendall(b'[1, 2, 3]\\n')
            s.close()
            return inner() + 1
        """
    )
    play = await service.run(wf)
    assert play["status"] == "success", play["error_message"]
    assert play["output_data"] == 2
    assert play["skipped_span_lines"] == 4
    names = sorted(s["name"] for s in await service.call("play_spans", play_sid=play["sid"]))
    assert names == ["inner", "main"]


async def test_a_flow_process_loads_neither_json_nor_re_nor_socket(service: Service) -> None:
    """The SDK's cold start stays lean: those imports cost every play milliseconds."""
    wf = await service.push(
        """
        import sys
        from hero_tracing import flow

        @flow
        def step():
            return 1

        @flow
        def main():
            step()
            return sorted(m for m in ("json", "re", "socket", "asyncio", "typing") if m in sys.modules)
        """
    )
    play = await service.run(wf)
    assert play["status"] == "success", play["error_message"]
    assert play["output_data"] == []


async def test_a_flow_cannot_wait_on_or_read_a_play_that_is_not_its_child(service: Service) -> None:
    sleeper = await service.push(
        """
        import time
        from hero_tracing import flow

        @flow
        def main():
            time.sleep(30)
            return "secret"
        """
    )
    other = await service.call("play_start", workflow_sid=sleeper["sid"])
    wf = await service.push(
        """
        import json, os, socket
        from hero_tracing import flow

        @flow
        def main(other: str):
            s = socket.socket(socket.AF_UNIX)
            s.connect(os.environ["HERO_FLOW_SPAN_SOCK"])
            for i in range(200):  # a flood of waits on someone else's play
                s.sendall(json.dumps({"type": "request", "id": i, "method": "wait_child_play",
                                      "params": {"play_sid": other}}).encode() + b"\\n")
            answers = s.makefile("rb")
            errors = [json.loads(answers.readline())["error"]["code"] for _ in range(200)]
            return sorted(set(errors))
        """
    )
    play = await service.run(wf, timeout_ms=20000, other=other)
    assert play["status"] == "success", play["error_message"]
    assert play["output_data"] == [-32001]  # refused at once, not after the other play ends
    await service.call("play_cancel", play_sid=other)
