"""The harness itself: it says clearly what went wrong — a wrong answer, a question nobody
answered, an answer nobody asked for, a span or an output that differs — and it runs the
service the way a test asks (sandbox tier, store, sync tests)."""

from __future__ import annotations

import shutil
import textwrap
from typing import TYPE_CHECKING, Any

import pytest

import hero_logic.testing.flows
from hero_logic.testing.flows import (
    FlowAssertionError,
    UnusedAnswers,
    Wait,
    WrongAnswer,
    describe_schema,
    harness_config,
    open_flow_harness,
)

if TYPE_CHECKING:
    from pathlib import Path

    import trio.testing

    from hero_logic.testing.flows import FlowHarness, SyncFlowHarness

def test_the_public_surface_of_the_harness_is_deliberate() -> None:
    public = sorted(n for n in vars(hero_logic.testing.flows) if n.isidentifier() and not n.startswith("_"))
    assert public == [
        "Answered", "DEFAULTS", "Flow", "FlowAssertionError", "FlowHarness", "PlayHandle", "PlayResult",
        "SpanNode", "SpanTree", "SyncFlowHarness", "SyncPlay", "UnusedAnswers", "Wait", "WrongAnswer",
        "describe_schema", "flows", "flows_sync", "harness_config", "hero_logic_settings",
        "open_flow_harness", "open_sync_flow_harness", "pytest_addoption", "pytest_configure",
    ]


SHIP = """
    from hero_tracing import ask_user, flow

    @flow
    def pack(order: str):
        flow.current_span.tag(order=order)
        return f"box for {order}"

    @flow(name="ship", inputs={"order": {"type": "string", "required": True}})
    def main(order):
        box = pack(order=order)
        if not ask_user.confirm("Ship it?"):
            return {"shipped": False}
        carrier = ask_user.choice("Which carrier?", ["post", "courier"], name="carrier")
        return {"shipped": True, "box": box, "carrier": carrier}
"""


async def test_a_wrong_answer_says_what_the_pause_expects(flows: FlowHarness) -> None:
    ship = await flows.push_source(SHIP)
    with pytest.raises(WrongAnswer) as caught:
        await flows.run(ship, {"order": "A-1"}, answers=["maybe"])
    first, *details = str(caught.value).splitlines()
    assert first == "pause 'Ship it?' expects a boolean, got 'maybe'"
    assert "  the service said: payload: 'maybe' is not of type 'boolean'" in details
    assert caught.value.wait.name == "Ship it?"
    assert caught.value.payload == "maybe"


async def test_a_refused_answer_leaves_the_question_open(flows: FlowHarness) -> None:
    ship = await flows.push_source(SHIP)
    play = await flows.start(ship, {"order": "A-1"})
    (await play.wait()).assert_waiting("Ship it?")
    with pytest.raises(WrongAnswer, match=r"^pause 'carrier' expects one of 'post', 'courier', got 'drone'"):
        await play.settle([True, "drone"])
    result = await play.settle({"carrier": "post"})
    result.assert_succeeded({"shipped": True, "box": "box for A-1", "carrier": "post"})


async def test_a_question_nobody_answered_is_named_with_its_tree(flows: FlowHarness) -> None:
    ship = await flows.push_source(SHIP)
    result = await flows.run(ship, {"order": "A-1"}, answers={"Ship it?": True})
    with pytest.raises(FlowAssertionError) as caught:
        result.assert_succeeded()
    message = str(caught.value)
    assert message.startswith(
        "expected the play to succeed, it is awaiting_resume: it waits on pause 'carrier' "
        "(ask_user.choice 'Which carrier?', expects one of 'post', 'courier') and no answer was given for it"
    )
    assert "  answered 'Ship it?' with True" in message
    assert "├── pack [step] replayed  order=A-1" in message


async def test_answers_the_flow_never_asked_for_fail_the_run(flows: FlowHarness) -> None:
    ship = await flows.push_source(SHIP)
    with pytest.raises(UnusedAnswers, match=r"the play ended \(success\) without asking for these answers: 'carier': 'post'"):
        await flows.run(ship, {"order": "A-1"}, answers={"Ship it?": True, "carrier": "post", "carier": "post"})


async def test_a_failed_span_assertion_shows_the_tree(flows: FlowHarness) -> None:
    ship = await flows.push_source(SHIP)
    result = await flows.run(ship, {"order": "A-1"}, answers=[False])
    result.assert_succeeded({"shipped": False})
    with pytest.raises(FlowAssertionError) as caught:
        result.tree.assert_span("pack", tags={"order": "B-2"})
    assert str(caught.value) == textwrap.dedent(
        f"""\
        span 'pack' tag 'order' is 'A-1', expected 'B-2'
        span tree of play {result.sid}:
          ship [flow_root] ok  sandbox=env_scrub
          ├── pack [step] replayed  order=A-1
          └── pause:Ship it? [other] replayed  resume_id={result.tree.find("pause:Ship it?").tags["resume_id"]}"""
    )
    with pytest.raises(FlowAssertionError, match="no path 'ship' > 'unpack' in the span tree"):
        result.tree.assert_path("ship", "unpack")


async def test_an_output_that_differs_is_listed_key_by_key(flows: FlowHarness) -> None:
    ship = await flows.push_source(SHIP)
    result = await flows.run(ship, {"order": "A-1"}, answers=[True, "courier"])
    with pytest.raises(FlowAssertionError) as caught:
        result.assert_output({"shipped": True, "carrier": "post", "tracking": "T1"})
    assert str(caught.value).splitlines()[1:4] == [
        "  'carrier': expected 'post', got 'courier'",
        "  missing 'tracking' (expected 'T1')",
        "  unexpected 'box': 'box for A-1'",
    ]


async def test_a_failed_play_expected_to_succeed_shows_its_error(flows: FlowHarness) -> None:
    broken = await flows.push_source(
        """
        from hero_tracing import flow

        @flow
        def main(n: int):
            raise flow.Failed(f"cannot handle {n}")
        """,
        name="broken",
    )
    result = await flows.run(broken, {"n": 3})
    with pytest.raises(FlowAssertionError, match=r"(?s)it is failed\n.*  error: cannot handle 3"):
        result.assert_succeeded()


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        ({"type": "boolean"}, "a boolean"),
        ({"enum": ["a", 1]}, "one of 'a', 1"),
        ({"type": "integer", "minimum": 1, "maximum": 5}, "an integer between 1 and 5"),
        ({"type": "number", "minimum": 0}, "a number of at least 0"),
        ({"type": "array", "items": {"enum": ["x", "y"]}, "uniqueItems": True}, "a list of distinct values from 'x', 'y'"),
        ({"type": "object", "required": ["id"]}, "an object with 'id'"),
        ({"type": ["string", "null"]}, "a string or null"),
        (None, "any JSON value"),
    ],
)
def test_a_pause_schema_is_described_in_words(schema: Any, words: str) -> None:
    assert describe_schema(schema) == words


HAVE_BWRAP = shutil.which("bwrap") is not None


@pytest.mark.parametrize(
    "flows",
    ["env_scrub", pytest.param("bwrap", marks=pytest.mark.skipif(not HAVE_BWRAP, reason="bwrap is not installed here"))],
    indirect=True,
)
async def test_the_sandbox_tier_is_a_parameter_of_the_fixture(flows: FlowHarness, seeds: Path) -> None:
    stats = await flows.push(seeds / "text_stats.py")
    result = await flows.run(stats, {"text": "Isolated words."})
    result.tree.assert_span("text_stats", tags={"sandbox": flows.config.sandbox})


@pytest.mark.hero_logic(store="lmdb", max_running=2)
async def test_a_marker_sets_the_services_settings(flows: FlowHarness, seeds: Path) -> None:
    assert (flows.config.store, flows.config.max_running, flows.config.sandbox) == ("lmdb", 2, "env_scrub")
    assert flows.config.db_dir.is_dir()
    stats = await flows.push(seeds / "text_stats.py")
    (await flows.run(stats, {"text": "Stored in LMDB."})).assert_succeeded({"words": 3}, partial=True)


def test_an_unknown_setting_is_refused_listing_the_known_ones() -> None:
    with pytest.raises(TypeError, match=r"unknown hero_logic setting\(s\) 'sandbx': use one of .*, sandbox, "):
        harness_config("/tmp/unused", sandbx="bwrap")


def test_the_command_line_beats_the_ini_file_and_a_marker_beats_both(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\nhero_logic_sandbox = bwrap\nhero_logic_store = lmdb\n")
    pytester.makeconftest('pytest_plugins = ["hero_logic.testing.flows"]\n')
    pytester.makepyfile(
        """
        import pytest

        async def test_from_the_options(flows):
            assert (flows.config.sandbox, flows.config.store) == ("env_scrub", "lmdb")

        @pytest.mark.hero_logic(store="memory")
        async def test_from_a_marker(flows):
            assert (flows.config.sandbox, flows.config.store) == ("env_scrub", "memory")
        """
    )
    pytester.runpytest("--hero-logic-sandbox=env_scrub").assert_outcomes(passed=2)


def test_sync_tests_use_flows_sync(flows_sync: SyncFlowHarness) -> None:
    ship = flows_sync.push_source(SHIP)
    play = flows_sync.start(ship, {"order": "C-3"})
    assert play.wait().assert_waiting().name == "Ship it?"
    play.answer("Ship it?", True)
    with pytest.raises(WrongAnswer, match=r"^pause 'carrier' expects one of 'post', 'courier', got 7\n"):
        play.answer_next(7)
    play.settle(["courier"]).assert_succeeded({"shipped": True, "box": "box for C-3", "carrier": "courier"})


async def test_a_child_plays_question_is_answered_through_its_parent(flows: FlowHarness) -> None:
    await flows.push_source(
        """
        from hero_tracing import ask_user, flow

        @flow(name="approve_step")
        def main(what: str):
            return {"ok": ask_user.confirm(f"Approve {what}?", name="approve")}
        """
    )
    parent = await flows.push_source(
        """
        from hero_tracing import flow

        @flow(name="pipeline")
        def main(what: str):
            return flow.invoke("approve_step", spawn=True, what=what)
        """
    )
    result = await flows.run(parent, {"what": "the release"}, answers={"approve": True})
    result.assert_succeeded({"ok": True})
    (answer,) = result.answered
    assert answer.wait.play_sid == result.play["child_play_sids"][0]
    result.tree.assert_path("pipeline", "invoke:approve_step", "approve_step", "pause:approve")


async def test_an_autojump_clock_is_refused_with_the_reason(autojump_clock: trio.testing.MockClock) -> None:
    with pytest.raises(RuntimeError, match=r"an autojump clock .* jumps over every wait for them"):
        async with open_flow_harness():
            pass


@pytest.mark.parametrize(
    ("record", "described"),
    [
        (
            {"id": "r1", "name": "approve", "schema": {"type": "boolean"}, "ui": {"kind": "confirm", "prompt": "Ship?"}},
            "pause 'approve' (ask_user.confirm 'Ship?', expects a boolean)",
        ),
        ({"id": "r2", "name": "Ship?", "schema": {"type": "boolean"}, "ui": {"kind": "confirm", "prompt": "Ship?"}}, "pause 'Ship?' (ask_user.confirm, expects a boolean)"),
        ({"id": "r3", "name": "raw"}, "pause 'raw' (flow.pause, expects any JSON value)"),
        ({"id": "r4", "name": "nap", "kind": "timer", "wake_at": 0}, "a timer 'nap' (flow.sleep) waking at 1970-01-01T00:00:00.000+00:00"),
        ({"id": "r5", "name": "paid", "kind": "event", "event_key": "payment:42"}, "an event wait 'paid' for key 'payment:42'"),
    ],
)
def test_what_a_play_waits_on_is_described_in_one_line(record: dict[str, Any], described: str) -> None:
    """Timers and events are not resolved by the harness yet, but a play stopped on one says so."""
    wait = Wait.from_json(record)
    assert wait.describe() == described
    assert wait.is_pause == (wait.kind == "input")
