"""report_digest: flow.invoke in process and as a child play, both in one span tree."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from _seeds import presets

if TYPE_CHECKING:
    from pathlib import Path

    from hero_logic.testing.flows import Flow, FlowHarness


async def push_digest(flows: FlowHarness, seeds: Path) -> Flow:
    """report_digest and the library flows it invokes by name."""
    await flows.push(seeds / "text_stats.py")
    await flows.push(seeds / "invoice_total.py")
    return await flows.push(seeds / "report_digest.py")


@pytest.mark.parametrize("preset", presets("report_digest"))
async def test_each_preset_returns_its_expected_digest(flows: FlowHarness, seeds: Path, preset: dict[str, Any]) -> None:
    digest = await push_digest(flows, seeds)
    result = await flows.run(digest, preset["input_values"])
    result.assert_succeeded(preset["expected_output"], partial=True)


async def test_the_child_plays_spans_hang_under_its_invocation(flows: FlowHarness, seeds: Path) -> None:
    digest = await push_digest(flows, seeds)
    result = await flows.run(digest, {"title": "Lunch", "notes": "Pizza day.", "invoice": "2 x Pizza @ 9"})
    result.assert_succeeded({"invoice_total": 18.0, "words": 2}, partial=True)
    result.tree.assert_outline(
        """
        report_digest
          invoke:text_stats
            text_stats
              count paragraphs
                paragraph_stats
              rank words
          invoke:invoice_total
            invoice_total
              parse
                parse_line
              totals
        """
    )
    invocation = result.tree.assert_span("invoke:invoice_total", kind="subflow", status="ok")
    child = invocation.children[0]
    assert child.play_sid == invocation.tags["child_play_sid"] == result.play["child_play_sids"][0]
    assert child.play_sid != result.sid


async def test_an_invoked_flow_missing_from_the_library_fails_the_play(flows: FlowHarness, seeds: Path) -> None:
    digest = await flows.push(seeds / "report_digest.py")  # text_stats is not pushed
    result = await flows.run(digest, {"title": "Retro", "notes": "Good sprint."})
    result.assert_failed("no workflow named or with sid 'text_stats'")
    result.tree.assert_span("invoke:text_stats", status="failed")
