"""The SDK without a flow process: wire helpers, replay keys, fields, the public surface, pass-through."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from hero_logic.sdk import (
    BOOT_SCRIPT,
    EVENT_TYPES,
    MAX_LINE_BYTES,
    SDK_DIR,
    decode_event,
    encode_event,
    encode_response,
    resume_id,
    step_key,
)

# isort: split
# hero_logic.sdk (above) makes the top-level package importable even where the install does not map it.
import hero_tracing
from hero_tracing import _state
from hero_tracing._failure import rebuild, record
from hero_tracing._fields import FieldError, normalise_fields
from hero_tracing._flow import FlowInfo
from hero_tracing._wire import canonical_json, decode_response, failure_entry, truncate_text

PYTHON = os.path.realpath(sys.executable)


# --- public surface ----------------------------------------------------------------------


def test_public_surface_of_hero_tracing_is_pinned() -> None:
    """Changing what ``from hero_tracing import *`` gives is a deliberate act."""
    assert sorted(hero_tracing.__all__) == ["ask_user", "flow", "instrument"]
    flow = hero_tracing.flow
    for name in ("step", "span", "current_span", "Failed", "StepFailed", "invoke", "pause"):
        assert hasattr(flow, name), name
    assert issubclass(flow.Failed, Exception)
    assert issubclass(flow.StepFailed, flow.Failed)
    for name in ("text", "number", "choice", "multi_choice", "confirm"):
        assert callable(getattr(hero_tracing.ask_user, name)), name


def test_sdk_paths_point_at_the_package_and_the_boot_script() -> None:
    assert (SDK_DIR / "hero_tracing" / "__init__.py").is_file()
    assert BOOT_SCRIPT.is_file()
    assert BOOT_SCRIPT.parent == SDK_DIR
    assert hero_tracing.__file__ is not None
    assert os.path.realpath(hero_tracing.__file__) == str(SDK_DIR / "hero_tracing" / "__init__.py")


def test_hero_tracing_imports_fast_and_only_the_stdlib() -> None:
    """Importing the SDK in a bare interpreter loads no JSON, socket, asyncio or hero_logic."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import hero_tracing; "
        "bad = [m for m in ('json', 'socket', 'asyncio', 'inspect', 'typing', 'hero_logic', 'threading') "
        "if m in sys.modules]; print(bad)"
    )
    out = subprocess.run(
        [PYTHON, "-I", "-S", "-c", code, str(SDK_DIR)], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# --- replay keys -------------------------------------------------------------------------


def test_step_key_is_sha1_of_the_documented_material() -> None:
    material = 'v1|parent|fetch|{"a":1,"b":"é"}|0'
    expected = hashlib.sha1(material.encode()).hexdigest()
    assert step_key("v1", "parent", "fetch", {"b": "é", "a": 1}, 0) == expected


def test_step_keys_differ_by_ordinal_version_parent_name_and_arguments() -> None:
    base = step_key("v1", "", "f", {"x": 1}, 0)
    variants = [
        step_key("v1", "", "f", {"x": 1}, 1),
        step_key("v2", "", "f", {"x": 1}, 0),
        step_key("v1", "p", "f", {"x": 1}, 0),
        step_key("v1", "", "g", {"x": 1}, 0),
        step_key("v1", "", "f", {"x": 2}, 0),
    ]
    assert len({base, *variants}) == 6


def test_canonical_json_sorts_keys_keeps_unicode_and_tolerates_non_json_values() -> None:
    assert canonical_json({"b": [1, 2], "a": "ü"}) == '{"a":"ü","b":[1,2]}'
    assert canonical_json({"s": {3, 1, 2}}) == '{"s":[1,2,3]}'
    assert canonical_json({"t": (1, 2)}) == '{"t":[1,2]}'

    class Thing:
        def __repr__(self) -> str:
            return "Thing()"

    assert canonical_json({"x": Thing()}) == '{"x":"Thing()"}'
    assert canonical_json({1: "a", "b": 2}).startswith('"')  # mixed keys: falls back to the repr


def test_positional_arguments_bind_to_parameter_names() -> None:
    """``f(1, 2)`` and ``f(a=1, b=2)`` have the same identity; ``self`` is left out."""

    def f(a: int, b: int, *rest: int, c: int = 0) -> None: ...

    class Service:
        def method(self, a: int) -> None: ...

    info = FlowInfo(f, "f", "", None, None)
    assert info.bind((1, 2), {}) == {"a": 1, "b": 2}
    assert info.bind((1,), {"b": 2, "c": 3}) == {"a": 1, "b": 2, "c": 3}
    assert info.bind((1, 2, 3, 4), {}) == {"a": 1, "b": 2, "*args": [3, 4]}
    method = FlowInfo(Service.method, "m", "", None, None)
    assert method.bind((Service(), 5), {}) == {"a": 5}


def test_resume_id_is_sha1_of_path_name_and_ordinal() -> None:
    expected = hashlib.sha1(b"v1|p|pause:approve|2").hexdigest()
    assert resume_id("v1", "p", "approve", 2) == expected
    assert resume_id("v1", "p", "approve", 0) != resume_id("v1", "p", "approve", 1)


# --- encoding and decoding ---------------------------------------------------------------


def test_encoded_events_are_single_compact_lines_that_decode_back() -> None:
    event = {"type": "span_log", "span_id": "s1", "text": "two\nlines ✓"}
    line = encode_event(event)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert decode_event(line) == event


def test_encoding_never_produces_a_line_the_service_would_reject() -> None:
    """NaN, non-JSON values, lone surrogates and huge text all still give a valid line."""
    odd = {
        "type": "span_tag",
        "span_id": "s1",
        "tags": {
            "nan": float("nan"),
            "obj": object(),
            "bad": "\ud800",
            "big": "x" * (2 * MAX_LINE_BYTES),
        },
    }
    line = encode_event(odd)
    assert len(line) < MAX_LINE_BYTES
    tags = decode_event(line)["tags"]
    assert tags["nan"] == "nan"
    assert tags["obj"].startswith("<object object")
    assert "truncated" in tags["big"]


def test_log_text_is_truncated_to_64_kib_of_utf8() -> None:
    text = truncate_text("é" * 100_000)
    assert len(text.encode()) <= 64 * 1024
    assert "truncated" in text
    assert truncate_text("short") == "short"


def test_an_output_too_big_for_a_line_cannot_be_encoded() -> None:
    with pytest.raises(ValueError, match="line cap"):
        encode_event({"type": "output", "output": "x" * MAX_LINE_BYTES})


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"type": "bogus"}', "unknown event type"),
        (b'{"span_id": "s"}', "unknown event type"),
        (b'{"type": "span_end", "span_id": "s", "end_ms": 1}', "'status'"),
        (b'{"type": "span_end", "span_id": "s", "end_ms": true, "status": "ok"}', "'end_ms'"),
        (b'{"type": "step_output", "span_id": "s", "step_key": "k"}', "'output'"),
        (b'{"type": "step_failed", "span_id": "s", "step_key": "k", "message": "m"}', "'error_type'"),
        (b'{"type": "step_failed", "span_id": "s", "step_key": "k", "error_type": "E"}', "'message'"),
        (b'{"type": "span_log", "span_id": "s", "text": NaN}', "NaN is not JSON"),
        (b'{"type": "span_log", "span_id": "s", "text": "\\ud800"}', "lone surrogate"),
        (b'{"type": "span_log", "span_id": "s", "text": "\xff"}', "not UTF-8"),
        (b'{"type": "request", "id": "1", "method": "m", "params": {}}', "'id'"),
    ],
)
def test_decode_event_rejects_malformed_lines_saying_why(line: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("(", r"\(")):
        decode_event(line)


def test_decode_event_passes_unknown_kinds_and_statuses_for_the_service_to_record() -> None:
    """The service stores them as ``other`` / ``failed``: visible, never silently ``ok``."""
    start = b'{"type": "span_start", "span_id": "s", "parent_id": "", "name": "n", "kind": "job", "start_ms": 1}'
    assert decode_event(start)["kind"] == "job"
    assert decode_event(b'{"type": "span_end", "span_id": "s", "end_ms": 1, "status": "done"}')["status"] == "done"


def test_every_event_type_the_sdk_sends_is_known() -> None:
    assert EVENT_TYPES == {
        "span_start",
        "span_tag",
        "span_log",
        "span_end",
        "step_output",
        "step_failed",
        "output",
        "pause",
        "request",
    }


def test_the_package_docstring_documents_every_event_and_request() -> None:
    """The wire protocol's source of truth is hero_tracing's docstring: keep it complete."""
    doc = hero_tracing.__doc__ or ""
    for name in (*EVENT_TYPES, "response", "flow_source", "start_child_play", "wait_child_play"):
        assert f"``{name}``" in doc, name


# --- recorded failures -------------------------------------------------------------------


class Declined(Exception):
    """A module-level class whose args rebuild it: replays as itself."""


class WithCode(Exception):
    """Its constructor takes other arguments than its args: cannot be rebuilt."""

    def __init__(self, code: int) -> None:
        super().__init__(f"error {code}")


def _replayed(exc: BaseException) -> BaseException:
    """What a replay raises for ``exc``: its record, through the wire and the service's entry."""
    event = {"type": "step_failed", "span_id": "s", "step_key": "k", **record(exc, "tb")}
    return rebuild(failure_entry(decode_event(encode_event(event))))


def test_a_failure_record_names_the_class_by_module_and_keeps_message_args_and_traceback() -> None:
    entry = record(Declined("card", 5, (1, 2)), "Declined: ...\nTraceback ...")
    assert entry == {
        "error_type": f"{__name__}.Declined",
        "message": "('card', 5, (1, 2))",
        "args": ["card", 5, [1, 2]],
        "traceback": "Declined: ...\nTraceback ...",
    }
    assert "args" not in record(ValueError(object()), "")  # not JSON: left out
    assert record(FileNotFoundError(2, "No such file", "x.txt"), "")["args"] == [2, "No such file", "x.txt"]
    event = {"type": "step_failed", "span_id": "s", "step_key": "k", "extra": 1, **entry}
    assert failure_entry(decode_event(encode_event(event))) == entry


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad", 3),
        KeyError("missing"),
        Declined(),
        FileNotFoundError(2, "No such file or directory", "x.txt"),
        hero_tracing.flow.Failed("the total is negative"),
        hero_tracing.flow.StepFailed("mod.Gone", "it went", "tb"),
    ],
)
def test_a_rebuildable_exception_replays_as_its_own_class_with_its_message(exc: Exception) -> None:
    again = _replayed(exc)
    assert type(again) is type(exc)
    assert str(again) == str(exc)


def test_an_exception_with_non_json_args_is_rebuilt_from_its_message() -> None:
    again = _replayed(ValueError({1, 2}))
    assert type(again) is ValueError
    assert str(again) == "{1, 2}"


@pytest.mark.parametrize(
    ("exc", "type_name"),
    [
        (WithCode(7), f"{__name__}.WithCode"),
        (json.JSONDecodeError("Expecting value", "x", 0), "json.decoder.JSONDecodeError"),
        (type("Local", (Exception,), {"__module__": "nowhere.at_all"})("x"), "nowhere.at_all.Local"),
    ],
)
def test_an_exception_that_cannot_be_rebuilt_replays_as_step_failed(exc: Exception, type_name: str) -> None:
    again = _replayed(exc)
    assert isinstance(again, hero_tracing.flow.StepFailed)
    assert (again.type_name, again.message, again.traceback) == (type_name, str(exc), "tb")
    assert str(again) == f"{type_name}: {exc}"


def test_a_recorded_class_not_yet_imported_is_imported_to_rebuild_it() -> None:
    """A replayed step never ran the code that imported its exception's module."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from hero_tracing._failure import rebuild; "
        "assert 'http.client' not in sys.modules; "
        "exc = rebuild({'error_type': 'http.client.ImproperConnectionState', 'message': 'idle', 'args': ['idle']}); "
        "print(type(exc).__module__, type(exc).__name__, exc)"
    )
    out = subprocess.run(
        [PYTHON, "-I", "-S", "-c", code, str(SDK_DIR)], capture_output=True, text=True, check=False
    )
    assert out.stdout.strip() == "http.client ImproperConnectionState idle", out.stderr


def test_responses_round_trip() -> None:
    assert decode_response(encode_response(3, {"play_sid": "p"})) == (3, {"play_sid": "p"}, None)
    assert decode_response(encode_response(4, error=(-32001, "no such flow"))) == (
        4,
        None,
        (-32001, "no such flow"),
    )
    with pytest.raises(ValueError, match="expected a response"):
        decode_response(b'{"type": "span_log"}')


# --- declared fields ---------------------------------------------------------------------


def test_fields_accept_shorthand_aliases_and_full_specs() -> None:
    fields = normalise_fields(
        {
            "prompt": "string",
            "n": "int",
            "ratio": float,
            "opts": {"type": "object", "required": False, "description": "extra"},
            "mode": {"type": "str", "default": "fast"},
        }
    )
    assert fields == [
        {
            "name": "prompt",
            "field_type": "string",
            "description": "",
            "required": True,
            "default": None,
        },
        {
            "name": "n",
            "field_type": "integer",
            "description": "",
            "required": True,
            "default": None,
        },
        {
            "name": "ratio",
            "field_type": "number",
            "description": "",
            "required": True,
            "default": None,
        },
        {
            "name": "opts",
            "field_type": "object",
            "description": "extra",
            "required": False,
            "default": None,
        },
        {
            "name": "mode",
            "field_type": "string",
            "description": "",
            "required": False,
            "default": "fast",
        },
    ]
    assert normalise_fields(None) is None
    assert normalise_fields([{"name": "a", "type": "boolean"}]) == [
        {"name": "a", "field_type": "boolean", "description": "", "required": True, "default": None}
    ]


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"x": "text"}, "input 'x' has unknown type 'text': use one of string, number"),
        ({"x": {"type": "string", "requried": True}}, "unknown key"),
        ({"x": {"type": "string", "required": "yes"}}, "'required' must be true or false"),
        ("prompt", "must be a dict"),
        ([{"type": "string"}], "need dicts with a 'name'"),
    ],
)
def test_bad_field_declarations_are_rejected_with_the_field_named(spec: Any, problem: str) -> None:
    with pytest.raises(FieldError, match=problem):
        normalise_fields(spec, "inputs")


def test_flow_decorator_rejects_bad_declarations_at_import_time() -> None:
    flow = hero_tracing.flow
    with pytest.raises(ValueError, match="unknown type 'txt'"):
        flow(inputs={"a": "txt"})
    with pytest.raises(TypeError, match="generator"):

        @flow
        def gen() -> Any:
            yield 1


# --- outside a play ----------------------------------------------------------------------


@pytest.fixture
def pass_through(monkeypatch: pytest.MonkeyPatch) -> Any:
    """This process in pass-through mode (no span socket)."""
    monkeypatch.delenv("HERO_FLOW_SPAN_SOCK", raising=False)
    _state.deactivate()
    yield
    _state.deactivate()


@pytest.mark.usefixtures("pass_through")
def test_outside_a_play_flows_and_spans_just_run() -> None:
    flow = hero_tracing.flow

    @flow(outputs={"n": "integer"})
    def double(x: int) -> dict[str, int]:
        with flow.step("inner", x=x) as span:
            span.tag(seen=True)
            span.log("ignored")
            flow.current_span.tag(also="ignored")
        return {"n": x * 2}

    @flow
    async def adouble(x: int) -> int:
        return x * 2

    assert double(4) == {"n": 8}
    assert asyncio.run(adouble(x=5)) == 10
    assert repr(flow.current_span) == "<NullSpan>"
    assert double.__name__ == "double"
    assert double.__hero_flow__.name == "double"  # type: ignore[attr-defined]


@pytest.mark.usefixtures("pass_through")
def test_outside_a_play_pause_and_invoke_say_they_need_one() -> None:
    with pytest.raises(RuntimeError, match=r"flow.pause\('approve'\) needs a play"):
        hero_tracing.flow.pause("approve")
    with pytest.raises(RuntimeError, match=r"ask_user|needs a play"):
        hero_tracing.ask_user.confirm("Ship it?")
    with pytest.raises(RuntimeError, match=r"flow.invoke\('other'\) needs a play"):
        hero_tracing.flow.invoke("other", x=1)


@pytest.mark.usefixtures("pass_through")
def test_instrument_passes_calls_through_outside_a_play() -> None:
    class Client:
        base = "http://x"

        def get(self, path: str) -> str:
            return self.base + path

        async def aget(self, path: str) -> str:
            return path.upper()

        def _private(self) -> int:
            return 7

    client = hero_tracing.instrument(Client())
    assert client.get("/a") == "http://x/a"
    assert asyncio.run(client.aget("/b")) == "/B"
    assert client._private() == 7
    assert client.base == "http://x"
    assert hero_tracing.instrument(client) is client


class _RecordingRuntime:
    """Stands in for a play: records pauses and answers them."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.asked: list[tuple[str, Any, Any]] = []
        self.root = None

    def pause(self, name: str, schema: Any, ui: Any) -> Any:
        self.asked.append((name, schema, ui))
        return self.answer


@pytest.fixture
def recording() -> Any:
    def make(answer: Any) -> _RecordingRuntime:
        runtime = _RecordingRuntime(answer)
        _state.activate(runtime)  # type: ignore[arg-type]
        return runtime

    yield make
    _state.deactivate()


def test_ask_user_helpers_send_a_schema_and_ui_hint_and_return_the_payload(recording: Any) -> None:
    ask = hero_tracing.ask_user
    runtime = recording("hello")
    assert ask.text("Your name?", default="Ann") == "hello"
    assert runtime.asked[-1] == (
        "Your name?",
        {"type": "string", "default": "Ann"},
        {"kind": "text", "prompt": "Your name?", "multiline": False, "default": "Ann"},
    )
    runtime.answer = 3
    assert ask.number("How many?", name="count", minimum=1, maximum=5, integer=True) == 3
    assert runtime.asked[-1] == (
        "count",
        {"type": "integer", "minimum": 1, "maximum": 5},
        {"kind": "number", "prompt": "How many?", "integer": True, "minimum": 1, "maximum": 5},
    )
    runtime.answer = "b"
    assert ask.choice("Pick", ["a", "b"]) == "b"
    assert runtime.asked[-1] == (
        "Pick",
        {"enum": ["a", "b"]},
        {"kind": "choice", "prompt": "Pick", "options": ["a", "b"]},
    )
    runtime.answer = ["a"]
    assert ask.multi_choice("Pick some", ("a", "b")) == ["a"]
    assert runtime.asked[-1] == (
        "Pick some",
        {"type": "array", "items": {"enum": ["a", "b"]}, "uniqueItems": True},
        {"kind": "multi_choice", "prompt": "Pick some", "options": ["a", "b"]},
    )
    runtime.answer = True
    assert ask.confirm("Ship?") is True
    assert runtime.asked[-1] == (
        "Ship?",
        {"type": "boolean"},
        {"kind": "confirm", "prompt": "Ship?"},
    )
    with pytest.raises(ValueError, match="non-empty list of options"):
        ask.choice("Pick", [])


def test_flow_pause_needs_a_name(recording: Any) -> None:
    recording(None)
    with pytest.raises(TypeError, match="non-empty string name"):
        hero_tracing.flow.pause("")


def test_span_kinds_are_checked() -> None:
    with pytest.raises(ValueError, match="span kind 'job'"):
        hero_tracing.flow.span("x", kind="job")


def test_an_input_file_that_is_not_an_object_fails_the_boot(tmp_path: Any) -> None:
    source = tmp_path / "flow.py"
    source.write_text("from hero_tracing import flow\n@flow\ndef main():\n    return 1\n")
    inputs = tmp_path / "in.json"
    inputs.write_text(json.dumps([1, 2]))
    env = {"HERO_FLOW_SOURCE_FILE": str(source), "HERO_FLOW_INPUT_FILE": str(inputs)}
    proc = subprocess.run(
        [PYTHON, "-I", "-S", str(BOOT_SCRIPT)], env=env, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 1
    assert "not an object" in proc.stderr


def test_the_service_names_the_sdks_span_kinds_and_request_kinds() -> None:
    """Wire facts are defined once, in the SDK: the service's enum and handler follow them."""
    from hero_logic.kernel import FlowRequestHandler, SpanKind
    from hero_logic.sdk import REQUEST_METHODS, SPAN_KINDS

    assert {k.value for k in SpanKind} == SPAN_KINDS
    handlers = {name for name in dir(FlowRequestHandler) if not name.startswith("_")}
    assert handlers == REQUEST_METHODS
