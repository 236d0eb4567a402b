"""Real flow processes against a small fake span server: what the SDK sends, and how it replays.

Each test writes a flow source, starts ``python -I -S hero_boot.py`` the way the executor
does, and reads back the events. The fake server decodes every line with the service's own
``decode_event``, so a line the service would skip fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from hero_logic.sdk import BOOT_SCRIPT, SDK_DIR, decode_event, encode_response, failure_entry

if TYPE_CHECKING:
    from pathlib import Path

PYTHON = os.path.realpath(sys.executable)
Handler = Callable[[dict[str, Any]], Any]


class RequestFailed(Exception):
    """Raised by a fake request handler: becomes an error response."""


class FakeSpanServer:
    """A per-play span socket that records what a flow process sends and answers its requests."""

    def __init__(
        self, handlers: dict[str, Handler] | None = None, *, hang_up: bool = False
    ) -> None:
        self.dir = tempfile.mkdtemp(prefix="hs-", dir="/tmp")
        self.path = os.path.join(self.dir, "s.sock")
        # Prefilled answers are checked by the real service; this stand-in accepts them all.
        self.handlers = {"check_answer": lambda params: {"ok": True}, **(handlers or {})}
        self.hang_up = hang_up
        self.events: list[dict[str, Any]] = []
        self.bad_lines: list[tuple[bytes, str]] = []
        self.connections = 0
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(4)
        self._listener.settimeout(0.02)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.settimeout(None)
            with conn:
                if self.hang_up:
                    continue
                self._read(conn)

    def _read(self, conn: socket.socket) -> None:
        with conn.makefile("rb") as lines:
            for line in lines:
                try:
                    event = decode_event(line)
                except ValueError as exc:
                    self.bad_lines.append((line, str(exc)))
                    continue
                self.events.append(event)
                if event["type"] == "request":
                    conn.sendall(self._answer(event))

    def _answer(self, request: dict[str, Any]) -> bytes:
        handler = self.handlers.get(request["method"])
        if handler is None:
            return encode_response(request["id"], error=(-32601, f"no method {request['method']}"))
        try:
            return encode_response(request["id"], handler(request["params"]))
        except RequestFailed as exc:
            return encode_response(request["id"], error=(-32004, str(exc)))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._listener.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Run:
    """One finished flow process: its exit status, output streams and events."""

    def __init__(self, proc: subprocess.CompletedProcess[str], server: FakeSpanServer) -> None:
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.events = server.events
        assert server.bad_lines == [], server.bad_lines

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    @property
    def output(self) -> Any:
        (event,) = self.of_type("output")
        return event["output"]

    @property
    def step_outputs(self) -> dict[str, Any]:
        return {e["step_key"]: e["output"] for e in self.of_type("step_output")}

    def spans(self) -> list[dict[str, Any]]:
        """Every span, folded from its events, in start order."""
        spans: dict[str, dict[str, Any]] = {}
        for event in self.events:
            if event["type"] == "span_start":
                spans[event["span_id"]] = {"status": "running", "tags": {}, "logs": [], **event}
            elif event["type"] == "span_tag":
                spans[event["span_id"]]["tags"].update(event["tags"])
            elif event["type"] == "span_log":
                spans[event["span_id"]]["logs"].append(event["text"])
            elif event["type"] == "span_end":
                spans[event["span_id"]].update(
                    status=event["status"], error=event.get("error", ""), end_ms=event["end_ms"]
                )
        return list(spans.values())

    def span(self, name: str) -> dict[str, Any]:
        (span,) = self.named(name)
        return span

    def named(self, name: str) -> list[dict[str, Any]]:
        return [s for s in self.spans() if s["name"] == name]


@pytest.fixture
def play(tmp_path: Path) -> Iterator[Callable[..., Run]]:
    """``play(source, inputs=..., replay=..., handlers=...)``: run a flow process to its end."""
    servers: list[FakeSpanServer] = []

    def run(
        source: str,
        *,
        inputs: dict[str, Any] | None = None,
        replay: dict[str, Any] | None = None,
        handlers: dict[str, Handler] | None = None,
        entry: str = "",
        version: str = "v1",
        hang_up: bool = False,
    ) -> Run:
        server = FakeSpanServer(handlers, hang_up=hang_up)
        servers.append(server)
        flow_file = tmp_path / "flow.py"
        flow_file.write_text(textwrap.dedent(source))
        env = {
            "HERO_FLOW_SPAN_SOCK": server.path,
            "HERO_FLOW_PLAY_SID": "play-1",
            "HERO_FLOW_VERSION_SID": version,
            "HERO_FLOW_SOURCE_FILE": str(flow_file),
        }
        if inputs is not None:
            (tmp_path / "inputs.json").write_text(json.dumps(inputs))
            env["HERO_FLOW_INPUT_FILE"] = str(tmp_path / "inputs.json")
        if replay is not None:
            (tmp_path / "replay.json").write_text(json.dumps(replay))
            env["HERO_FLOW_REPLAY_FILE"] = str(tmp_path / "replay.json")
        if entry:
            env["HERO_FLOW_ENTRY"] = entry
        proc = subprocess.run(
            [PYTHON, "-I", "-S", str(BOOT_SCRIPT)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        server.close()  # reads what is left up to the connection's end first
        return Run(proc, server)

    yield run
    for server in servers:
        server.close()


def counter_source(tmp_path: Path, body: str) -> str:
    """A flow source whose ``bump(name)`` counts body runs in a file beside the test."""
    counts = tmp_path / "counts.txt"
    return (
        f"import pathlib\nCOUNTS = pathlib.Path({str(counts)!r})\n"
        + textwrap.dedent(
            """
        def bump(name):
            with COUNTS.open("a") as f:
                f.write(name + "\\n")
        """
        )
        + textwrap.dedent(body)
    )


def body_runs(tmp_path: Path) -> list[str]:
    counts = tmp_path / "counts.txt"
    return counts.read_text().split() if counts.exists() else []


# --- spans ---------------------------------------------------------------------------------


def test_nested_steps_link_to_their_parents_and_report_outputs_before_ending(
    play: Callable[..., Run],
) -> None:
    run = play(
        """
        from hero_tracing import flow

        @flow
        def leaf(x):
            return x + 1

        @flow
        def middle(x):
            with flow.step("block", note="hi"):
                y = leaf(x)
            return leaf(y)

        @flow
        def main(x):
            return {"result": middle(x)}
        """,
        inputs={"x": 1},
    )
    assert run.returncode == 0, run.stderr
    assert run.output == {"result": 3}
    root, middle, block, leaf1, leaf2 = run.spans()
    assert (root["name"], root["kind"], root["parent_id"]) == ("main", "flow_root", "")
    assert (middle["name"], middle["kind"], middle["parent_id"]) == (
        "middle",
        "step",
        root["span_id"],
    )
    assert (block["name"], block["kind"], block["parent_id"]) == (
        "block",
        "step",
        middle["span_id"],
    )
    assert block["tags"] == {"note": "hi"}
    assert "step_key" not in block  # blocks are not memoized
    assert leaf1["parent_id"] == block["span_id"]
    assert leaf2["parent_id"] == middle["span_id"]
    assert all(s["status"] == "ok" for s in run.spans())
    assert leaf1["source_file"].endswith("flow.py")
    assert leaf1["source_line"] == 4
    # every @flow call's output is sent just before its span_end
    for span in (root, middle, leaf1, leaf2):
        types = [(e["type"], e.get("span_id")) for e in run.events]
        at = types.index(("step_output", span["span_id"]))
        assert types[at + 1] == ("span_end", span["span_id"])
        assert run.step_outputs[span["step_key"]] is not None
    assert run.events[-1] == {"type": "output", "output": {"result": 3}}
    assert len({s["span_id"] for s in run.spans()}) == 5


def test_tags_and_logs_reach_the_current_span(play: Callable[..., Run]) -> None:
    run = play(
        """
        from hero_tracing import flow

        @flow
        def main():
            flow.current_span.tag(model="m1", cost_usd=0.25)
            with flow.span("parse", kind="other", size=3) as span:
                span.log("parsing")
                flow.current_span.tag(rows=10)
            flow.current_span.log("x" * 200000)
            return None
        """
    )
    assert run.returncode == 0, run.stderr
    main, parse = run.spans()
    assert main["tags"] == {"model": "m1", "cost_usd": 0.25}
    assert (parse["kind"], parse["tags"], parse["logs"]) == (
        "other",
        {"size": 3, "rows": 10},
        ["parsing"],
    )
    (long_log,) = main["logs"]
    assert len(long_log.encode()) <= 64 * 1024
    assert long_log.endswith("bytes]")


def test_instrument_turns_client_calls_into_rpc_spans(play: Callable[..., Run]) -> None:
    run = play(
        """
        import asyncio
        from hero_tracing import flow, instrument

        class Base:
            def lookup(self, key):
                return key.upper()

        class Weather(Base):
            unit = "C"

            async def forecast(self, city):
                await asyncio.sleep(0)
                return city + ":sunny"

            def broken(self):
                raise ConnectionError("down")

            def _secret(self):
                return "s"

        @flow
        async def main():
            client = instrument(Weather())
            a = client.lookup("k")
            b = await client.forecast("Oslo")
            try:
                client.broken()
            except ConnectionError:
                pass
            return [a, b, client._secret(), client.unit]
        """
    )
    assert run.returncode == 0, run.stderr
    assert run.output == ["K", "Oslo:sunny", "s", "C"]
    main, lookup, forecast, broken = run.spans()
    for span, method in ((lookup, "lookup"), (forecast, "forecast"), (broken, "broken")):
        assert span["name"] == f"rpc:Weather.{method}"
        assert (span["kind"], span["rpc_service"], span["rpc_method"]) == ("rpc", "Weather", method)
        assert span["parent_id"] == main["span_id"]
    assert lookup["status"] == forecast["status"] == "ok"
    assert broken["status"] == "failed"
    assert broken["error"].startswith("ConnectionError: down\n")


def test_a_step_called_from_a_bare_thread_nests_under_the_root(play: Callable[..., Run]) -> None:
    run = play(
        """
        import threading
        from hero_tracing import flow

        @flow
        def work(n):
            flow.current_span.tag(n=n)
            return n

        @flow
        def main():
            with flow.step("spawner"):
                threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
            return "done"
        """
    )
    assert run.returncode == 0, run.stderr
    root = run.span("main")
    works = run.named("work")
    assert len(works) == 3
    assert {w["parent_id"] for w in works} == {root["span_id"]}
    assert sorted(w["tags"]["n"] for w in works) == [0, 1, 2]


# --- failures ----------------------------------------------------------------------------


def test_flow_failed_fails_the_spans_with_the_clean_reason(play: Callable[..., Run]) -> None:
    run = play(
        """
        from hero_tracing import flow

        @flow
        def check(total):
            if total < 0:
                raise flow.Failed(f"the total is negative: {total}")
            return total

        @flow
        def main():
            with flow.step("validate"):
                return check(-5)
        """
    )
    assert run.returncode == 1
    assert "flow failed: the total is negative: -5" in run.stderr
    assert "Traceback" not in run.stderr
    for name in ("check", "validate", "main"):
        span = run.span(name)
        assert (span["status"], span["error"]) == ("failed", "the total is negative: -5")
    assert run.of_type("output") == []


def test_an_uncaught_exception_records_type_message_and_traceback(play: Callable[..., Run]) -> None:
    run = play(
        """
        from hero_tracing import flow

        @flow
        def main():
            {}["missing"]
        """
    )
    assert run.returncode == 1
    assert "flow failed: KeyError: 'missing'" in run.stderr
    assert "Traceback" not in run.stderr  # once, in the span's error, not again on stderr
    span = run.span("main")
    assert span["status"] == "failed"
    first, rest = span["error"].split("\n", 1)
    assert first == "KeyError: 'missing'"
    assert "Traceback (most recent call last)" in rest
    assert 'flow.py", line 6' in rest
    assert "hero_tracing" not in rest  # the SDK's own frames are left out


def test_a_source_without_a_flow_exits_2_saying_what_to_do(play: Callable[..., Run]) -> None:
    run = play("def main():\n    return 1\n")
    assert run.returncode == 2
    assert "define a function decorated with @flow" in run.stderr
    assert run.events == []


def test_an_unknown_entry_exits_2_naming_the_flows(play: Callable[..., Run]) -> None:
    run = play("from hero_tracing import flow\n@flow\ndef main():\n    return 1\n", entry="other")
    assert run.returncode == 2
    assert "no @flow named 'other'" in run.stderr
    assert "main" in run.stderr


def test_the_entry_is_chosen_like_the_signature_reader_does(play: Callable[..., Run]) -> None:
    source = """
        from hero_tracing import flow

        @flow
        def helper():
            return "helper"

        @flow
        def main():
            return "main"

        @flow
        def last():
            return "last"
        """
    assert play(source).output == "main"
    assert play(source, entry="helper").output == "helper"
    assert play(source.replace("def main", "def middle")).output == "last"


def test_declared_outputs_are_checked_naming_field_type_and_value(play: Callable[..., Run]) -> None:
    run = play(
        """
        from hero_tracing import flow

        @flow(outputs={"summary": "string", "words": {"type": "integer", "required": False}})
        def main():
            return {"summary": 42}
        """
    )
    assert run.returncode == 1
    reason = "flow 'main' declares output 'summary' as string, got 42 (integer)"
    assert reason in run.stderr
    assert run.span("main")["error"].startswith(reason)
    assert run.step_outputs == {}


def test_a_result_that_is_not_json_fails_its_step_clearly(play: Callable[..., Run]) -> None:
    run = play(
        """
        from hero_tracing import flow

        @flow
        def inner():
            return {1, 2}

        @flow
        def main():
            return inner()
        """
    )
    assert run.returncode == 1
    assert (
        "flow 'inner' returned a value that is not JSON (Object of type set is not JSON serializable)"
        in run.stderr
    )
    assert run.span("inner")["status"] == "failed"


def test_missing_or_unexpected_inputs_are_named(play: Callable[..., Run]) -> None:
    source = "from hero_tracing import flow\n@flow\ndef main(a, b=2):\n    return a + b\n"
    run = play(source, inputs={"c": 1})
    assert run.returncode == 1
    assert (
        "flow 'main' got unexpected input(s) 'c' and missing input(s) 'a'; it takes: a, b"
        in run.stderr
    )
    assert play(source, inputs={"a": 1}).output == 3


def test_declared_input_defaults_fill_missing_inputs(play: Callable[..., Run]) -> None:
    source = """
        from hero_tracing import flow

        @flow(inputs={"name": "string", "greeting": {"type": "string", "default": "Hello"}})
        def main(name, greeting):
            return f"{greeting}, {name}"
        """
    assert play(source, inputs={"name": "Ann"}).output == "Hello, Ann"


def test_a_dead_span_socket_does_not_break_the_flow(play: Callable[..., Run]) -> None:
    run = play(
        """
        from hero_tracing import flow

        @flow
        def step(i):
            flow.current_span.log("x" * 1000)
            return i

        @flow
        def main():
            return sum(step(i) for i in range(200))
        """,
        hang_up=True,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("hero_tracing:") == 1
    assert "later span events are dropped" in run.stderr


# --- replay --------------------------------------------------------------------------------


def test_replay_skips_finished_steps_and_marks_them_replayed(
    play: Callable[..., Run], tmp_path: Path
) -> None:
    source = counter_source(
        tmp_path,
        """
        from hero_tracing import flow

        @flow
        def fetch(page):
            bump(f"fetch{page}")
            return {"page": page, "text": "t" * page}

        @flow
        def main(pages):
            texts = [fetch(p)["text"] for p in range(pages)]
            texts.append(fetch(0)["text"])   # same call again: its own ordinal, its own cache entry
            return len("".join(texts))
        """,
    )
    first = play(source, inputs={"pages": 3})
    assert first.returncode == 0, first.stderr
    assert body_runs(tmp_path) == ["fetch0", "fetch1", "fetch2", "fetch0"]
    steps = {s["step_key"]: first.step_outputs[s["step_key"]] for s in first.named("fetch")}
    assert len(steps) == 4  # the loop was not collapsed

    second = play(source, inputs={"pages": 3}, replay={"steps": steps})
    assert second.returncode == 0, second.stderr
    assert second.output == first.output
    assert body_runs(tmp_path) == ["fetch0", "fetch1", "fetch2", "fetch0"]  # no body ran again
    fetches = second.named("fetch")
    assert [f["status"] for f in fetches] == ["replayed"] * 4
    assert [f["step_key"] for f in fetches] == [f["step_key"] for f in first.named("fetch")]
    assert second.span("main")["status"] == "ok"
    assert set(second.step_outputs) == {
        second.span("main")["step_key"]
    }  # replayed steps are not re-sent


def test_positional_and_keyword_calls_share_a_cache_entry(
    play: Callable[..., Run], tmp_path: Path
) -> None:
    source = counter_source(
        tmp_path,
        """
        from hero_tracing import flow

        @flow
        def add(a, b):
            bump("add")
            return a + b

        @flow
        def main():
            return add(a=1, b=2) if COUNTS.exists() else add(1, 2)  # positional first, then by name
        """,
    )
    first = play(source)
    add_key = first.span("add")["step_key"]
    second = play(source, replay={"steps": {add_key: first.step_outputs[add_key]}})
    assert second.span("add")["step_key"] == add_key
    assert second.span("add")["status"] == "replayed"
    assert body_runs(tmp_path) == ["add"]


def test_a_new_version_does_not_replay_old_steps(play: Callable[..., Run], tmp_path: Path) -> None:
    source = counter_source(
        tmp_path,
        """
        from hero_tracing import flow

        @flow
        def main():
            bump("main")
            return 1
        """,
    )
    first = play(source, version="v1")
    second = play(source, version="v2", replay={"steps": first.step_outputs})
    assert second.span("main")["status"] == "ok"
    assert body_runs(tmp_path) == ["main", "main"]


def test_async_gather_gives_the_same_step_keys_on_every_run(play: Callable[..., Run]) -> None:
    source = """
        import asyncio, random
        from hero_tracing import flow

        @flow
        async def fetch(i):
            await asyncio.sleep(random.random() / 100)
            with flow.step("inner"):
                await asyncio.sleep(random.random() / 100)
                return await child(i)

        @flow
        async def child(i):
            await asyncio.sleep(0)
            return i * 10

        @flow
        async def main():
            return await asyncio.gather(*(fetch(i) for i in range(5)), fetch(0))
        """
    first = play(source)
    second = play(source)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert first.output == second.output == [0, 10, 20, 30, 40, 0]

    def keys(run: Run) -> list[tuple[str, str]]:
        return sorted((s["name"], s["step_key"]) for s in run.spans() if "step_key" in s)

    assert keys(first) == keys(second)
    assert len(keys(first)) == 13  # main, 6 fetches and 6 children, all distinct
    assert len({k for _, k in keys(first)}) == 13
    root = first.span("main")
    assert {f["parent_id"] for f in first.named("fetch")} == {root["span_id"]}
    inner_ids = {s["span_id"] for s in first.named("inner")}
    assert {c["parent_id"] for c in first.named("child")} == inner_ids

    third = play(
        source,
        replay={"steps": {k: v for k, v in first.step_outputs.items() if k != root["step_key"]}},
    )
    assert third.output == first.output
    assert {s["status"] for s in third.named("fetch")} == {"replayed"}
    assert third.named("child") == []  # replayed steps do not run their children


# --- what a step gives its caller, on every run ------------------------------------------


def _failures(run: Run) -> dict[str, dict[str, Any]]:
    """The replay file's ``failures`` the service would build from a run's events."""
    return {e["step_key"]: failure_entry(e) for e in run.of_type("step_failed")}


def test_a_step_returns_its_output_as_stored_on_the_first_run_as_on_replay(
    play: Callable[..., Run], tmp_path: Path
) -> None:
    """JSON gives a tuple back as a list and int, float, bool and None keys as strings (and a
    lone surrogate as U+FFFD): the caller sees that on the first run already, not only after
    a resume."""
    source = counter_source(
        tmp_path,
        """
        from hero_tracing import flow

        @flow
        def shapes():
            bump("shapes")
            return {"pair": (1, (2, 3)), "keys": {1: "a", 2.5: "b", False: "c", None: "d"}, "n": 7, "odd": "a" + chr(0xD800)}

        @flow
        def main():
            value = shapes()
            value["pair"].append("mutable")  # a list now, on every run
            stored = {"pair": [1, [2, 3]], "keys": {"1": "a", "2.5": "b", "false": "c", "null": "d"}, "n": 7, "odd": "a\ufffd"}
            return {"seen": repr(value), "same": shapes() == stored}
        """,
    )
    first = play(source)
    assert first.returncode == 0, first.stderr
    seen = "{'pair': [1, [2, 3], 'mutable'], 'keys': {'1': 'a', '2.5': 'b', 'false': 'c', 'null': 'd'}, 'n': 7, 'odd': 'a\ufffd'}"
    assert first.output == {"seen": seen, "same": True}
    root = first.span("main")["step_key"]
    steps = {k: v for k, v in first.step_outputs.items() if k != root}
    second = play(source, replay={"steps": steps})
    assert second.output == first.output
    assert body_runs(tmp_path) == ["shapes", "shapes"]  # two calls on the first run, none after


FAILING = """
    from hero_tracing import flow

    class Declined(Exception):
        pass

    class Coded(Exception):
        def __init__(self, code):
            super().__init__(f"code {code}")

    @flow
    def charge():
        bump("charge")
        raise Declined("card declined", 402)

    @flow
    def refuse():
        bump("refuse")
        raise flow.Failed("over the limit")

    @flow
    def coded():
        bump("coded")
        raise Coded(7)

    @flow
    def lookup():
        bump("lookup")
        return {}["missing"]

    @flow
    def main():
        seen = []
        for step in (charge, refuse, coded, lookup):
            try:
                step()
            except flow.StepFailed as exc:
                seen.append(["StepFailed", exc.type_name, exc.message])
            except Exception as exc:
                seen.append([type(exc).__qualname__, str(exc)])
        return seen
    """


def test_a_step_that_raises_sends_step_failed_just_before_its_span_end(
    play: Callable[..., Run], tmp_path: Path
) -> None:
    run = play(counter_source(tmp_path, FAILING))
    assert run.returncode == 0, run.stderr
    failed = {e["span_id"]: e for e in run.of_type("step_failed")}
    assert len(failed) == 4
    types = [(e["type"], e.get("span_id")) for e in run.events]
    for span_id in failed:
        at = types.index(("step_failed", span_id))
        assert types[at + 1] == ("span_end", span_id)
        assert run.events[at + 1]["status"] == "failed"
    charge = failed[run.span("charge")["span_id"]]
    assert charge["step_key"] == run.span("charge")["step_key"]
    assert (charge["error_type"], charge["message"], charge["args"]) == (
        "__hero_flow__.Declined",
        "('card declined', 402)",
        ["card declined", 402],
    )
    assert charge["traceback"].startswith("Declined: ('card declined', 402)\nTraceback")
    assert 'in charge\n    raise Declined("card declined", 402)' in charge["traceback"]
    refuse = failed[run.span("refuse")["span_id"]]
    assert (refuse["error_type"], refuse["message"]) == ("hero_tracing._spans.Failed", "over the limit")
    assert run.span("refuse")["error"] == "over the limit"  # the span keeps the clean reason
    assert run.span("main")["status"] == "ok"  # it caught them all


def test_a_recorded_failure_raises_again_without_running_the_step(
    play: Callable[..., Run], tmp_path: Path
) -> None:
    """The same class when it can be rebuilt, else flow.StepFailed: on the first run as on replay."""
    source = counter_source(tmp_path, FAILING)
    first = play(source)
    assert first.returncode == 0, first.stderr
    assert first.output == [
        ["Declined", "('card declined', 402)"],
        ["Failed", "over the limit"],
        ["StepFailed", "__hero_flow__.Coded", "code 7"],  # Coded("code 7") is no Coded(7)
        ["KeyError", "'missing'"],
    ]
    assert body_runs(tmp_path) == ["charge", "refuse", "coded", "lookup"]
    second = play(source, replay={"failures": _failures(first)})
    assert second.returncode == 0, second.stderr
    assert second.output == first.output
    assert body_runs(tmp_path) == ["charge", "refuse", "coded", "lookup"]  # none ran again
    for name in ("charge", "refuse", "coded", "lookup"):
        assert second.span(name)["status"] == "replayed"
    assert second.of_type("step_failed") == []  # replayed failures are not sent again


def test_a_replayed_failure_that_fails_the_play_shows_the_first_runs_traceback(
    play: Callable[..., Run], tmp_path: Path
) -> None:
    source = counter_source(
        tmp_path,
        """
        from hero_tracing import flow

        @flow
        def parse(text):
            bump("parse")
            return int(text)

        @flow
        def main():
            return parse("x")
        """,
    )
    first = play(source)
    assert first.returncode == 1
    parse_key = first.span("parse")["step_key"]
    second = play(source, replay={"failures": {parse_key: _failures(first)[parse_key]}})
    assert second.returncode == 1
    assert "flow failed: ValueError: invalid literal for int() with base 10: 'x'" in second.stderr
    error = second.span("main")["error"]
    assert error.startswith("ValueError: invalid literal for int() with base 10: 'x'")
    assert "step 'parse' raised this on an earlier run of the play and was not run again" in error
    assert "return int(text)" in error  # the line that raised, on the first run
    assert body_runs(tmp_path) == ["parse"]


def test_a_pause_an_exception_raised_during_one_or_an_exit_is_never_a_recorded_failure(
    play: Callable[..., Run],
) -> None:
    run = play(
        """
        from hero_tracing import flow

        @flow
        def ask():
            return flow.pause("approve")

        @flow
        def hides_the_pause():
            try:
                flow.pause("confirm")
            except BaseException:
                raise ValueError("not a failure of the step: it was pausing") from None

        @flow
        def main():
            try:
                hides_the_pause()
            except ValueError:
                pass
            return ask()
        """
    )
    assert run.returncode == 75, run.stderr
    assert run.of_type("step_failed") == []
    exiting = play(
        """
        import sys
        from hero_tracing import flow

        @flow
        def leave():
            sys.exit(3)

        @flow
        def main():
            leave()
        """
    )
    assert exiting.returncode == 1
    assert exiting.of_type("step_failed") == []
    assert exiting.span("leave")["status"] == "cancelled"


def test_an_output_json_cannot_hold_is_a_failure_replayed_the_same(
    play: Callable[..., Run], tmp_path: Path
) -> None:
    source = counter_source(
        tmp_path,
        """
        from hero_tracing import flow

        @flow
        def tags():
            bump("tags")
            return {"a", "b"}

        @flow
        def main():
            try:
                return tags()
            except flow.Failed as exc:
                return f"{type(exc).__name__}: {exc}"
        """,
    )
    first = play(source)
    reason = (
        "Failed: flow 'tags' returned a value that is not JSON (Object of type set is not JSON "
        "serializable): return dicts, lists, strings, numbers, booleans or None"
    )
    assert first.output == reason
    assert first.span("tags")["status"] == "failed"
    second = play(source, replay={"failures": _failures(first)})
    assert second.output == reason
    assert body_runs(tmp_path) == ["tags"]


def test_a_checkpoint_step_that_raises_waits_until_its_failure_is_stored(
    play: Callable[..., Run],
) -> None:
    asked: list[dict[str, Any]] = []
    run = play(
        """
        from hero_tracing import flow

        @flow(checkpoint=True)
        def pay():
            raise ConnectionError("the bank hung up")

        @flow
        def main():
            try:
                pay()
            except ConnectionError as exc:
                return str(exc)
        """,
        handlers={"checkpoint": lambda params: asked.append(params) or {"ok": True}},
    )
    assert run.output == "the bank hung up"
    key = run.span("pay")["step_key"]
    assert asked == [{"step_key": key}]
    types = [e["type"] for e in run.events]
    at = types.index("step_failed")
    assert types[at : at + 3] == ["step_failed", "span_end", "request"]


def test_an_exception_class_of_an_invoked_flow_is_found_again_on_replay(
    play: Callable[..., Run], tmp_path: Path
) -> None:
    """An in-process flow's module is named after its invocation, the same on every run."""
    child = """
from hero_tracing import flow

class Rejected(Exception):
    pass

@flow
def check(doc):
    raise Rejected(f"{doc} is rejected")

@flow(name="reviewer")
def main(doc):
    try:
        check(doc)
    except Rejected as exc:
        verdict = str(exc)
    answer = flow.pause(f"ok {doc}?")
    return {"verdict": verdict, "answer": answer}
"""

    def flow_source(params: dict[str, Any]) -> dict[str, Any]:
        return {"source": child, "version_sid": "c1", "entry_flow": "reviewer"}

    source = """
        from hero_tracing import flow

        @flow
        def main():
            return [flow.invoke("reviewer", doc="a"), flow.invoke("reviewer", doc="b")]
        """
    handlers = {"flow_source": flow_source}
    first = play(source, handlers=handlers)
    assert first.returncode == 75, first.stderr
    (ask_a,) = first.of_type("pause")
    second = play(
        source, handlers=handlers, replay={"failures": _failures(first), "resumes": {ask_a["resume_id"]: 1}}
    )
    assert second.returncode == 75, second.stderr
    (ask_b,) = second.of_type("pause")
    third = play(
        source,
        handlers=handlers,
        replay={
            "steps": second.step_outputs,  # invocation "a" finished in the second run
            "failures": {**_failures(first), **_failures(second)},
            "resumes": {ask_a["resume_id"]: 1, ask_b["resume_id"]: 2},
        },
    )
    assert third.returncode == 0, third.stderr
    assert third.output == [
        {"verdict": "a is rejected", "answer": 1},
        {"verdict": "b is rejected", "answer": 2},  # its invocation ran second, its module too
    ]


# --- pauses ---------------------------------------------------------------------------------


PAUSING = """
    from hero_tracing import ask_user, flow

    @flow
    def draft(topic):
        bump("draft")
        return f"about {topic}"

    @flow
    def main(topic):
        text = draft(topic)
        pick = ask_user.choice("Which tone?", ["dry", "warm"], name="tone")
        flow.current_span.tag(tone=pick)
        return {"text": text, "tone": pick}
    """


def test_a_pause_exits_75_and_the_resumed_run_returns_the_answer(
    play: Callable[..., Run], tmp_path: Path
) -> None:
    source = counter_source(tmp_path, PAUSING)
    first = play(source, inputs={"topic": "owls"})
    assert first.returncode == 75, first.stderr
    assert first.of_type("output") == []
    (pause,) = first.of_type("pause")
    assert pause["name"] == "tone"
    assert pause["schema"] == {"enum": ["dry", "warm"]}
    assert pause["ui"] == {"kind": "choice", "prompt": "Which tone?", "options": ["dry", "warm"]}
    root = first.span("main")
    assert pause["span_id"] == root["span_id"]
    assert isinstance(pause["asked_at"], int)
    assert root["status"] == "running"  # a pause leaves its spans open
    assert first.span("draft")["status"] == "ok"

    second = play(
        source,
        inputs={"topic": "owls"},
        replay={"steps": first.step_outputs, "resumes": {pause["resume_id"]: "warm"}},
    )
    assert second.returncode == 0, second.stderr
    assert second.output == {"text": "about owls", "tone": "warm"}
    assert body_runs(tmp_path) == ["draft"]
    answered = second.span("pause:tone")
    assert (answered["status"], answered["tags"]) == ("replayed", {"resume_id": pause["resume_id"]})


def test_resume_ids_are_stable_and_count_repeated_pauses(play: Callable[..., Run]) -> None:
    source = """
        from hero_tracing import flow

        @flow
        def main():
            return [flow.pause("ok?") for _ in range(2)]
        """
    first = play(source)
    again = play(source)
    (pause,) = first.of_type("pause")
    assert again.of_type("pause")[0]["resume_id"] == pause["resume_id"]
    second = play(source, replay={"resumes": {pause["resume_id"]: 1}})
    (next_pause,) = second.of_type("pause")
    assert next_pause["resume_id"] != pause["resume_id"]
    third = play(source, replay={"resumes": {pause["resume_id"]: 1, next_pause["resume_id"]: 2}})
    assert third.output == [1, 2]


def test_prefills_answer_pauses_by_name_or_by_id(play: Callable[..., Run], tmp_path: Path) -> None:
    source = counter_source(tmp_path, PAUSING)
    by_name = play(
        source, inputs={"topic": "owls"}, replay={"prefill": {"tone": "dry"}, "prefill_only": True}
    )
    assert by_name.returncode == 0, by_name.stderr
    assert by_name.output["tone"] == "dry"
    assert by_name.span("pause:tone")["tags"]["prefilled"] is True
    paused = play(source, inputs={"topic": "owls"})
    rid = paused.of_type("pause")[0]["resume_id"]
    by_id = play(source, inputs={"topic": "owls"}, replay={"prefill": {rid: "warm", "tone": "dry"}})
    assert by_id.output["tone"] == "warm"  # the id wins over the name


def test_prefill_only_fails_fast_at_a_pause_without_an_answer(
    play: Callable[..., Run], tmp_path: Path
) -> None:
    source = counter_source(tmp_path, PAUSING)
    run = play(
        source, inputs={"topic": "owls"}, replay={"prefill": {"other": 1}, "prefill_only": True}
    )
    assert run.returncode == 1
    assert "pause 'tone' has no prefilled answer" in run.stderr
    assert run.of_type("pause") == []
    assert run.span("main")["status"] == "failed"


def test_parallel_branches_each_ask_before_the_process_exits(play: Callable[..., Run]) -> None:
    run = play(
        """
        import asyncio
        from hero_tracing import ask_user, flow

        @flow
        async def review(part):
            await asyncio.sleep(0.01 * part)
            return ask_user.confirm(f"Approve part {part}?")

        @flow
        async def main():
            return await asyncio.gather(*(review(p) for p in range(3)))
        """
    )
    assert run.returncode == 75, run.stderr
    assert sorted(p["name"] for p in run.of_type("pause")) == [
        "Approve part 0?",
        "Approve part 1?",
        "Approve part 2?",
    ]
    assert all(p["schema"] == {"type": "boolean"} for p in run.of_type("pause"))


def test_a_pause_inside_a_task_group_pauses_the_play(play: Callable[..., Run]) -> None:
    """TaskGroup wraps the pause in a BaseExceptionGroup; it is still a pause, not a failure."""
    run = play(
        """
        import asyncio
        from hero_tracing import flow

        @flow
        async def main():
            async with asyncio.TaskGroup() as group:
                group.create_task(asyncio.sleep(5))
                group.create_task(asyncio.to_thread(flow.pause, "approve"))
            return "unreachable"
        """
    )
    assert run.returncode == 75, run.stderr
    assert [p["name"] for p in run.of_type("pause")] == ["approve"]
    assert run.span("main")["status"] == "running"


def test_a_pause_swallowed_by_user_code_still_pauses(play: Callable[..., Run]) -> None:
    run = play(
        """
        from hero_tracing import flow

        @flow
        def main():
            try:
                flow.pause("approve")
            except BaseException:
                pass
            return "finished anyway"
        """
    )
    assert run.returncode == 75
    assert run.of_type("output") == []


def test_except_exception_cannot_swallow_a_pause(play: Callable[..., Run]) -> None:
    run = play(
        """
        from hero_tracing import flow

        @flow
        def main():
            try:
                flow.pause("approve")
            except Exception:
                return "swallowed"
        """
    )
    assert run.returncode == 75


# --- invoke --------------------------------------------------------------------------------


CHILD = """
from hero_tracing import flow

@flow
def helper(n):
    return n * 2

@flow(name="doubler")
def main(n):
    return {"doubled": helper(n)}
"""


def test_invoke_runs_a_library_flow_in_process_as_a_memoized_step(
    play: Callable[..., Run], tmp_path: Path
) -> None:
    asked: list[dict[str, Any]] = []

    def flow_source(params: dict[str, Any]) -> dict[str, Any]:
        asked.append(params)
        return {"source": CHILD, "version_sid": "child-v3", "entry_flow": "doubler"}

    source = """
        from hero_tracing import flow

        @flow
        def main():
            return flow.invoke("doubler", n=21)
        """
    run = play(source, handlers={"flow_source": flow_source})
    assert run.returncode == 0, run.stderr
    assert run.output == {"doubled": 42}
    assert asked == [{"name": "doubler", "version_sid": ""}]
    root, invoked, entry, helper = run.spans()
    assert (invoked["name"], invoked["kind"], invoked["parent_id"]) == (
        "invoke:doubler",
        "step",
        root["span_id"],
    )
    assert invoked["tags"]["invoked_version_sid"] == "child-v3"
    assert (entry["name"], entry["parent_id"]) == ("doubler", invoked["span_id"])
    assert entry["source_file"] == "<flow doubler@child-v3>"
    assert helper["parent_id"] == entry["span_id"]
    assert run.step_outputs[invoked["step_key"]] == {"doubled": 42}

    replayed = play(
        source,
        handlers={"flow_source": flow_source},
        replay={"steps": {invoked["step_key"]: {"doubled": 42}}},
    )
    assert replayed.output == {"doubled": 42}
    assert replayed.span("invoke:doubler")["status"] == "replayed"
    assert len(asked) == 1  # a finished invocation is not fetched again


def test_invoke_of_an_unknown_flow_fails_with_the_services_reason(play: Callable[..., Run]) -> None:
    def flow_source(params: dict[str, Any]) -> dict[str, Any]:
        raise RequestFailed(f"no flow named {params['name']!r}")

    run = play(
        "from hero_tracing import flow\n@flow\ndef main():\n    return flow.invoke('ghost')\n",
        handlers={"flow_source": flow_source},
    )
    assert run.returncode == 1
    assert (
        "flow.invoke('ghost'): the service refused flow_source: no flow named 'ghost'" in run.stderr
    )


SPAWNING = """
    from hero_tracing import flow

    @flow
    def main():
        return flow.invoke("child", spawn=True, version_sid="cv1", n=1)
    """


def spawn_handlers(
    outcome: dict[str, Any], seen: list[tuple[str, dict[str, Any]]]
) -> dict[str, Handler]:
    def start(params: dict[str, Any]) -> dict[str, Any]:
        seen.append(("start", params))
        return {"play_sid": "child-play-7"}

    def wait(params: dict[str, Any]) -> dict[str, Any]:
        seen.append(("wait", params))
        return outcome

    return {"start_child_play": start, "wait_child_play": wait}


def test_invoke_spawn_starts_and_waits_for_a_child_play(play: Callable[..., Run]) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    run = play(
        SPAWNING,
        handlers=spawn_handlers({"status": "success", "output": {"ok": 1}, "error": ""}, seen),
    )
    assert run.returncode == 0, run.stderr
    assert run.output == {"ok": 1}
    span = run.span("invoke:child")
    assert span["kind"] == "subflow"
    assert span["tags"]["child_play_sid"] == "child-play-7"
    (_, start_params), (_, wait_params) = seen
    assert start_params == {
        "name": "child",
        "version_sid": "cv1",
        "inputs": {"n": 1},
        "parent_span_id": span["span_id"],
        "step_key": span["step_key"],
    }
    assert wait_params == {"play_sid": "child-play-7"}


def test_a_failed_child_play_fails_the_invocation_naming_it(play: Callable[..., Run]) -> None:
    run = play(
        SPAWNING, handlers=spawn_handlers({"status": "failed", "output": None, "error": "boom"}, [])
    )
    assert run.returncode == 1
    assert "child play child-play-7 of flow 'child' ended failed: boom" in run.stderr


def test_a_child_play_awaiting_an_answer_pauses_the_parent(play: Callable[..., Run]) -> None:
    run = play(
        SPAWNING,
        handlers=spawn_handlers({"status": "awaiting_resume", "output": None, "error": ""}, []),
    )
    assert run.returncode == 75
    assert run.span("invoke:child")["status"] == "running"


# --- outside a play ------------------------------------------------------------------------


def test_a_flow_file_run_directly_just_runs(tmp_path: Path) -> None:
    script = tmp_path / "my_flow.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio
            from hero_tracing import flow, instrument

            @flow(outputs={"n": "integer"})
            def double(x):
                with flow.step("work"):
                    flow.current_span.tag(x=x)
                return {"n": x * 2}

            @flow
            async def main():
                return [double(2), await asyncio.sleep(0, "slept")]

            if __name__ == "__main__":
                print(asyncio.run(main()))
            """
        )
    )
    env = {"PYTHONPATH": str(SDK_DIR), "PATH": os.environ.get("PATH", "")}
    proc = subprocess.run(
        [PYTHON, str(script)], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[{'n': 4}, 'slept']"
    assert proc.stderr == ""
