"""Kernel building blocks without a service: config, plugins, bus, span folding, outcomes."""

from __future__ import annotations

from pathlib import Path

import pytest

from hero_logic.kernel import (
    Config,
    ConfigError,
    EventBus,
    ExitOutcome,
    FieldType,
    FlowField,
    InvalidParams,
    Play,
    PlayStatus,
    PluginNotFound,
    SpanKind,
    SpanStatus,
    fold_spans,
    load_plugin,
)
from hero_logic.kernel._runner import RunState, map_outcome
from hero_logic.service import check_inputs


def test_config_flag_beats_environment_beats_default() -> None:
    env = {"PATH_ROOT": "/srv/hero", "HERO_LOGIC_MAX_RUNNING": "3"}
    config = Config.load({"max_running": "5"}, env)
    assert config.max_running == 5
    assert config.root == Path("/srv/hero")
    assert config.rpc_socket == Path("/srv/hero/var/sockets/hero_logic/rpc.sock")
    assert config.play_workdir("p1") == Path("/srv/hero/var/hero_logic/plays/p1/work")
    assert Config.load({}, {"PATH_ROOT": "/r", "PATH_SOCKET": "/s"}).rpc_socket == Path("/s/hero_logic/rpc.sock")
    assert Config.load({}, {"PATH_ROOT": "/r"}).play_timeout_ms == 300_000


@pytest.mark.parametrize("value", ["zero", "0", "-4", "1.5"])
def test_bad_setting_values_name_the_setting(value: str) -> None:
    with pytest.raises(ConfigError, match="HERO_LOGIC_MAX_RUNNING"):
        Config.load({}, {"PATH_ROOT": "/r", "HERO_LOGIC_MAX_RUNNING": value})


def test_flow_interpreter_must_be_absolute() -> None:
    with pytest.raises(ConfigError, match="absolute path"):
        Config.load({}, {"PATH_ROOT": "/r", "HERO_LOGIC_PYTHON": "python3"})
    assert Path(Config.load({}, {"PATH_ROOT": "/r"}).python).is_absolute()


def test_unknown_plugin_lists_installed_ones() -> None:
    with pytest.raises(PluginNotFound) as info:
        load_plugin("hero_logic.store", "postgres")
    message = str(info.value)
    assert "'postgres'" in message
    assert "lmdb" in message
    assert "memory" in message
    assert "entry-points" in message
    assert load_plugin("hero_logic.store", "memory").__name__ == "MemoryStore"


def test_plugin_missing_a_required_attribute_is_refused() -> None:
    with pytest.raises(PluginNotFound, match="does not provide"):
        load_plugin("hero_logic.store", "memory", required_attrs=("no_such_method",))


async def test_bus_delivers_in_order_and_drops_a_slow_subscriber() -> None:
    bus = EventBus(queue_size=4)
    async with bus.subscribe("p1") as fast, bus.subscribe(None, queue_size=2) as everything:
        for i in range(3):
            bus.publish("p1", {"n": i})
            assert (await fast.receive())["n"] == i
        bus.publish("p2", {"n": 99})  # everything's queue is now full (2), the third drops it
        assert bus.statistics().dropped_subscribers == 1
        got = [m["n"] async for m in everything]
        assert got == [0, 1]
    assert bus.statistics().subscribers == 0


def test_fold_spans_builds_the_tree_and_marks_unknown_status_failed() -> None:
    events = [
        {"type": "span_start", "span_id": "a", "parent_id": "", "name": "root", "kind": "flow_root", "start_ms": 1},
        {"type": "span_start", "span_id": "b", "parent_id": "a", "name": "step", "kind": "step", "start_ms": 2, "tags": {"x": 1}},
        {"type": "span_tag", "span_id": "b", "tags": {"y": 2}},
        {"type": "span_log", "span_id": "b", "text": "hi"},
        {"type": "span_end", "span_id": "b", "end_ms": 3, "status": "ok"},
        {"type": "span_end", "span_id": "a", "end_ms": 4, "status": "exploded"},
        {"type": "span_tag", "span_id": "ghost", "tags": {}},
    ]
    root, step = fold_spans("p", events)
    assert root.kind is SpanKind.FLOW_ROOT
    assert root.status is SpanStatus.FAILED
    assert step.parent_id == "a"
    assert step.tags == {"x": 1, "y": 2}
    assert step.logs == ["hi"]
    assert step.status is SpanStatus.OK
    assert step.end_ms == 3


def test_check_inputs_fills_defaults_and_names_every_bad_field() -> None:
    fields = [
        FlowField("text", FieldType.STRING, required=True),
        FlowField("n", FieldType.NUMBER, default=2),
        FlowField("flag", FieldType.BOOLEAN),
    ]
    assert check_inputs(fields, {"text": "x", "n": 3}, flow_name="f") == {"text": "x", "n": 3}
    assert check_inputs(fields, {"text": "x"}, flow_name="f") == {"text": "x", "n": 2}
    with pytest.raises(InvalidParams) as info:
        check_inputs(fields, {"n": "3", "flag": 1, "other": None}, flow_name="summarise")
    fields_named = {d["field"] for d in info.value.data}
    assert fields_named == {"input_data.text", "input_data.n", "input_data.flag", "input_data.other"}
    assert "flow 'summarise' declares input 'n' as number, got '3' (string)" in info.value.message


def _play() -> Play:
    return Play(sid="p", workflow_sid="w", workflow_version_sid="v", status=PlayStatus.RUNNING, started_at=1000)


@pytest.mark.parametrize(
    ("outcome", "status", "fragment"),
    [
        (ExitOutcome(exit_code=0), PlayStatus.SUCCESS, ""),
        (ExitOutcome(exit_code=2, stderr_tail="no flow here"), PlayStatus.FAILED, "no @flow"),
        (ExitOutcome(exit_code=1, stderr_tail="boom"), PlayStatus.FAILED, "boom"),
        (ExitOutcome(exit_code=-9), PlayStatus.FAILED, "SIGKILL"),
        (ExitOutcome(exit_code=75), PlayStatus.FAILED, "without reporting a pause"),
        (ExitOutcome(exit_code=None, timed_out=True), PlayStatus.TIMED_OUT, "1234 ms"),
        (ExitOutcome(exit_code=None, spawn_error="could not start"), PlayStatus.FAILED, "could not start"),
    ],
)
def test_outcome_mapping(outcome: ExitOutcome, status: PlayStatus, fragment: str) -> None:
    state = RunState(seq=0)
    state.observe({"type": "output", "output": {"ok": True}})
    play = map_outcome(_play(), outcome, state, timeout_ms=1234)
    assert play.status is status
    assert fragment in play.error_message
    assert play.completed_at is not None
    assert play.duration_ms is not None
    if status is PlayStatus.SUCCESS:
        assert play.output_data == {"ok": True}


def test_pause_outcome_is_awaiting_resume_without_completion() -> None:
    state = RunState(seq=0)
    state.observe({"type": "pause", "resume_id": "r1", "name": "approve", "schema": {"type": "boolean"}, "ui": None, "span_id": "s", "asked_at": 5})
    play = map_outcome(_play(), ExitOutcome(exit_code=75), state, timeout_ms=1)
    assert play.status is PlayStatus.AWAITING_RESUME
    assert play.completed_at is None
    assert play.duration_ms is None
    assert [(r.id, r.name) for r in play.pending_resumes] == [("r1", "approve")]


def test_cost_tags_sum_latest_value_per_span() -> None:
    state = RunState(seq=0)
    state.observe({"type": "span_start", "span_id": "a", "kind": "step", "tags": {"cost_usd": 0.5}})
    state.observe({"type": "span_tag", "span_id": "a", "tags": {"cost_usd": 0.75}})
    state.observe({"type": "span_tag", "span_id": "b", "tags": {"cost_usd": 1}})
    assert state.total_cost_usd == pytest.approx(1.75)



def test_sids_made_in_one_millisecond_still_sort_in_creation_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hero_logic.kernel import _model

    monkeypatch.setattr(_model, "now_ms", lambda: 1_700_000_000_000)
    made = [_model.new_sid("ver") for _ in range(500)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    monkeypatch.setattr(_model, "now_ms", lambda: 1_600_000_000_000)  # the clock stepped back
    later = _model.new_sid("ver")
    assert later > made[-1]


async def test_a_subscriber_is_dropped_past_its_byte_bound_but_not_while_it_keeps_up() -> None:
    bus = EventBus(queue_size=1000, max_queued_bytes=1000)
    async with bus.subscribe("p") as idle, bus.subscribe("p") as reader:
        for i in range(20):
            bus.publish("p", {"i": i}, size=200)
            assert (await reader.receive())["i"] == i  # reads as it goes: never past 200 bytes
        got = [message["i"] async for message in idle]  # ends: it was dropped
        assert got == [0, 1, 2, 3, 4]  # 5 x 200 bytes fit, the 6th did not
        assert bus.statistics().dropped_subscribers == 1
        bus.publish("p", {"i": 20}, size=200)
        assert (await reader.receive())["i"] == 20


async def test_a_keyed_lock_serialises_one_key_and_forgets_it_when_idle() -> None:
    import trio

    from hero_logic.kernel._keyed_lock import KeyedLock

    locks = KeyedLock()
    order: list[str] = []

    async def hold(key: str, name: str) -> None:
        async with locks.hold(key):
            order.append(f"{name} in")
            await trio.sleep(0.01)
            order.append(f"{name} out")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold, "p", "a")
        await trio.lowlevel.checkpoint()
        nursery.start_soon(hold, "p", "b")
        nursery.start_soon(hold, "q", "c")
    assert order.index("a out") < order.index("b in")  # same key: one at a time
    assert order.index("c in") < order.index("a out")  # another key: not held up
    assert len(locks) == 0
