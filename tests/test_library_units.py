"""The library's pure parts: comparing outputs, a run's accuracy, a benchmark's numbers, checks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from hero_logic.kernel import FieldType, FlowField, InvalidParams, pick_weights
from hero_logic.service import (
    RunOutcome,
    check_expected_output,
    output_differences,
    outputs_match,
    run_accuracy,
    summarise_runs,
)

from .conftest import make_config

if TYPE_CHECKING:
    from pathlib import Path


def test_outputs_match_compares_only_the_expected_keys_as_json() -> None:
    assert outputs_match({"total": 3}, {"total": 3.0, "lines": 2})  # 3 is 3.0; other keys ignored
    assert not outputs_match({"total": 3}, {"total": "3"})
    assert not outputs_match({"ok": True}, {"ok": 1})  # true is not 1
    assert not outputs_match({"ok": 1}, {"ok": True})
    assert not outputs_match({"total": 3}, {"lines": 3})
    assert not outputs_match({"total": 3}, [3])
    assert outputs_match({"tags": ["a", {"b": 1}]}, {"tags": ["a", {"b": 1.0}]})
    assert not outputs_match({"tags": ["a"]}, {"tags": ["a", "b"]})
    assert outputs_match("hello", "hello")
    assert outputs_match({}, {})
    assert not outputs_match({}, {"a": 1})


def test_output_differences_name_each_expected_key_that_differs() -> None:
    assert output_differences({"total": 3}, {"total": 3.0, "lines": 2}) == []
    assert output_differences({"total": 3, "ok": True}, {"total": 4, "ok": True}) == ["key 'total': expected 3, got 4"]
    assert output_differences({"ok": True, "n": 1}, {"ok": 1}) == ["key 'ok': expected True, got 1", "key 'n' is missing"]
    assert output_differences({"total": 3}, [3]) == ["expected an object with key 'total', got [3] (array)"]
    assert output_differences("hello", "hullo") == ["expected 'hello', got 'hullo'"]
    long = output_differences({"text": "a" * 500}, {"text": "b" * 500})[0]
    assert len(long) < 200
    assert long.startswith("key 'text': expected 'aaa")


def test_run_accuracy_prefers_the_expected_output_then_the_score() -> None:
    assert run_accuracy(success=True, output={"a": 1}, expected={"a": 1}, score=0.1) == (1.0, "expected_output")
    assert run_accuracy(success=True, output={"a": 2}, expected={"a": 1}, score=None) == (0.0, "expected_output")
    assert run_accuracy(success=False, output=None, expected={"a": 1}, score=None) == (0.0, "expected_output")
    assert run_accuracy(success=True, output=None, expected=None, score=0.25) == (0.25, "score")
    assert run_accuracy(success=True, output=None, expected=None, score=-3) == (0.0, "score")
    assert run_accuracy(success=True, output=None, expected=None, score=True) == (None, "")  # not a number
    assert run_accuracy(success=True, output=None, expected=None, score=None) == (None, "")
    assert run_accuracy(success=False, output=None, expected=None, score=None) == (0.0, "failed")


def test_summarise_runs() -> None:
    outcomes = [
        RunOutcome(success=True, duration_ms=100, cost_usd=0.01, accuracy=1.0, basis="expected_output"),
        RunOutcome(success=True, duration_ms=300, cost_usd=0.03, accuracy=0.5, basis="score"),
        RunOutcome(success=True, duration_ms=200, cost_usd=0.02, accuracy=None, basis=""),
        RunOutcome(success=False, duration_ms=5, cost_usd=0.0, accuracy=0.0, basis="failed"),
    ]
    summary = summarise_runs(outcomes)
    assert summary == {
        "success_rate": 0.75,
        "accuracy": 0.5,  # (1 + 0.5 + 0) / 3: the run without a signal is left out
        "accuracy_basis": "mixed",
        "avg_cost_usd": 0.015,
        "avg_duration_ms": 200.0,  # successful runs only
        "p50_duration_ms": 200,
        "min_duration_ms": 100,
        "max_duration_ms": 300,
    }
    failed_only = summarise_runs([RunOutcome(success=False, duration_ms=7), RunOutcome(success=False, duration_ms=9)])
    assert failed_only["accuracy_basis"] == "success_rate"
    assert failed_only["accuracy"] == 0.0
    assert failed_only["min_duration_ms"] == 7  # with no success, every run's time counts
    assert summarise_runs([])["success_rate"] == 0.0


def test_expected_output_is_checked_against_declared_outputs() -> None:
    outputs = [FlowField(name="total", field_type=FieldType.NUMBER), FlowField(name="ok", field_type=FieldType.BOOLEAN)]
    check_expected_output(outputs, {"total": 3}, flow_name="f")  # an integer is a number; a subset is fine
    check_expected_output(outputs, None, flow_name="f")
    check_expected_output([], "anything", flow_name="f")  # nothing declared: any JSON value
    with pytest.raises(InvalidParams) as info:
        check_expected_output(outputs, {"total": "3", "ok": 1, "other": 0}, flow_name="f")
    assert [p["field"] for p in info.value.data] == ["expected_output.total", "expected_output.ok", "expected_output.other"]
    with pytest.raises(InvalidParams):
        check_expected_output(outputs, [1], flow_name="f")


def test_pick_weights_are_checked() -> None:
    assert pick_weights(0, 0, 1, context="t").accuracy == 1
    for args, field in [((-1, 0, 1), "cost_weight"), ((0, 0, 0), "accuracy_weight"), ((1, float("nan"), 1), "speed_weight")]:
        with pytest.raises(InvalidParams) as info:
            pick_weights(*args, context="t")
        assert info.value.data[0]["field"] == field
    with pytest.raises(InvalidParams) as info:
        pick_weights(1, 1, 1, 2.0, prefix="pick.", context="t")
    assert info.value.data[0]["field"] == "pick.min_accuracy"


def test_seeding_is_a_setting() -> None:
    from hero_logic.kernel import Config, ConfigError

    assert Config.load(environ={"PATH_ROOT": "/tmp/x"}).seed_flows is True
    assert Config.load(environ={"PATH_ROOT": "/tmp/x", "HERO_LOGIC_SEED_FLOWS": "off"}).seed_flows is False
    with pytest.raises(ConfigError, match="HERO_LOGIC_SEED_FLOWS"):
        Config.load(environ={"PATH_ROOT": "/tmp/x", "HERO_LOGIC_SEED_FLOWS": "maybe"})


def test_the_version_picker_slot_surface() -> None:
    """The slot's interface and kit are public and deliberate: changing them breaks this test."""
    import hero_logic.testing
    from hero_logic.kernel import PickResult, VersionPicker, VersionScore

    members = set(VersionPicker.__annotations__) | {k for k, v in vars(VersionPicker).items() if callable(v) and not k.startswith("_")}
    assert members == {"name", "pick"}
    assert [f.name for f in PickResult.__attrs_attrs__][:4] == ["version_sid", "confidence", "reasoning", "scores"]
    assert {"status", "score", "accuracy_score", "speed_score", "cost_score"} <= {f.name for f in VersionScore.__attrs_attrs__}
    assert {"check_version_picker", "PICKER_CHECKS", "sample_candidates"} <= set(dir(hero_logic.testing))


def test_a_plugin_that_cannot_fill_the_picker_slot_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from hero_logic.kernel import Config, PluginNotFound
    from hero_logic.kernel import _slots as _library

    class NotAPicker:
        @classmethod
        def from_config(cls, config: object) -> object:
            return cls()

    monkeypatch.setattr(_library, "load_plugin", lambda *args, **kwargs: NotAPicker)
    with pytest.raises(PluginNotFound, match="version_picker slot"):
        _library.load_picker(Config.load(environ={"PATH_ROOT": "/tmp/x"}), "odd")
    monkeypatch.undo()
    with pytest.raises(PluginNotFound, match="installed: weighted"):
        _library.load_picker(Config.load(environ={"PATH_ROOT": "/tmp/x"}), "nope")


async def test_the_version_picker_setting_chooses_the_plugin_and_an_unknown_one_stops_start_up(
    tmp_path: Path,
) -> None:
    import trio

    from hero_logic.kernel import Config, PluginNotFound
    from hero_logic.server import serve

    assert Config.load(environ={"PATH_ROOT": "/tmp/x", "HERO_LOGIC_VERSION_PICKER": "mine"}).version_picker == "mine"
    assert Config.load({"version_picker": "flag"}, environ={"HERO_LOGIC_VERSION_PICKER": "env", "PATH_ROOT": "/tmp/x"}).version_picker == "flag"
    config = make_config(tmp_path, version_picker="nope")
    with pytest.raises(ExceptionGroup) as caught:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve, config)
    matched, _ = caught.value.split(PluginNotFound)
    assert matched is not None
    assert "installed: weighted" in str(matched.exceptions[0])
