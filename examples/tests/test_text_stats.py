"""text_stats: an async flow whose paragraphs are counted concurrently, each in its own step."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from _seeds import presets

if TYPE_CHECKING:
    from pathlib import Path

    from hero_logic.testing.flows import FlowHarness


@pytest.mark.parametrize("preset", presets("text_stats"))
async def test_each_preset_returns_its_expected_counts(flows: FlowHarness, seeds: Path, preset: dict[str, Any]) -> None:
    stats = await flows.push(seeds / "text_stats.py")
    result = await flows.run(stats, preset["input_values"])
    result.assert_succeeded(preset["expected_output"])


async def test_paragraphs_counted_with_gather_nest_under_their_step(flows: FlowHarness, seeds: Path) -> None:
    stats = await flows.push(seeds / "text_stats.py")
    result = await flows.run(stats, {"text": "One two. Three.\n\nFour five six.\n\nSeven."})
    result.assert_succeeded({"words": 7, "sentences": 4}, partial=True)
    paragraphs = result.tree.assert_path("text_stats", "count paragraphs")
    assert [child.name for child in paragraphs.children] == ["paragraph_stats"] * 3
    assert sorted(child.tags["words"] for child in paragraphs.children) == [1, 3, 3]
    result.tree.assert_span("rank words", status="ok")
