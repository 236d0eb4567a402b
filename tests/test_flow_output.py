"""A flow's ``print``, ``sys.stderr`` writes and ``logging`` become span logs of the span that
is current where they are written, in order, bounded per span and per play (CONTRACT.md §12)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hero_tracing import _output

from ._sandbox_helpers import run_flow

if TYPE_CHECKING:
    from .conftest import Service


def _logs(spans: list[dict[str, Any]], name: str) -> list[str]:
    return next(s for s in spans if s["name"] == name)["logs"]


async def test_print_stderr_and_logging_become_logs_of_the_current_span(service: Service) -> None:
    play = await run_flow(
        service,
        """
        import logging, sys, threading
        from hero_tracing import flow

        @flow
        def inner(n: int) -> int:
            print("inside inner", n)
            return n

        @flow
        def main():
            print("first")
            print("two", "parts", end="")
            print(" joined")
            inner(1)
            with flow.step("block"):
                sys.stderr.write("to stderr\\n")
                logging.getLogger("x").error("a logged %s", "error")
            t = threading.Thread(target=print, args=("from a thread",))
            t.start(); t.join()
            print("no newline at the end", end="")
            return "done"
        """,
    )
    assert play["status"] == "success", play["error_message"]
    spans = await service.call("play_spans", play_sid=play["sid"])
    assert _logs(spans, "main") == ["first", "two parts joined", "from a thread", "no newline at the end"]
    assert _logs(spans, "inner") == ["inside inner 1"]
    assert _logs(spans, "block") == ["[stderr] to stderr", "[stderr] a logged error"]


async def test_output_is_bounded_per_span_with_a_marker(service: Service) -> None:
    lines = _output.SPAN_LINES + 50
    play = await run_flow(
        service,
        f"""
        from hero_tracing import flow

        @flow
        def main():
            for i in range({lines}):
                print("line", i)
            return "done"
        """,
    )
    assert play["status"] == "success", play["error_message"]
    logs = _logs(await service.call("play_spans", play_sid=play["sid"]), "main")
    assert len(logs) == _output.SPAN_LINES + 1
    assert logs[0] == "line 0"
    assert logs[-2] == f"line {_output.SPAN_LINES - 1}"
    assert logs[-1].startswith("[output truncated")
