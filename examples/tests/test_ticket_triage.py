"""ticket_triage: two versions of one workflow, compared on the same presets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from _seeds import presets

if TYPE_CHECKING:
    from pathlib import Path

    from hero_logic.testing.flows import FlowHarness


@pytest.mark.parametrize("preset", presets("ticket_triage"))
async def test_the_scored_version_gets_every_preset_right(flows: FlowHarness, seeds: Path, preset: dict[str, Any]) -> None:
    await flows.push(seeds / "ticket_triage.py", version_label="keywords")
    scored = await flows.push(seeds / "ticket_triage_scored.py", version_label="scored")
    result = await flows.run(scored, preset["input_values"])
    result.assert_succeeded(preset["expected_output"])
    result.tree.assert_span("rpc:LexiconModel.classify", kind="rpc", tags={"cost_usd": pytest.approx(0.0004)})


async def test_the_keywords_version_misreads_a_crash_on_the_payment_page(flows: FlowHarness, seeds: Path) -> None:
    keywords = await flows.push(seeds / "ticket_triage.py", version_label="keywords")
    await flows.push(seeds / "ticket_triage_scored.py", version_label="scored")
    assert (await flows.flow("ticket_triage")).version_sid != keywords.version_sid  # scored is current
    # A Flow from push runs the version push saved, even after a newer one became current.
    result = await flows.run(keywords, {"subject": "App crashes when I update my payment card"})
    result.assert_succeeded({"category": "billing", "priority": "normal"})
    result.tree.assert_span("count keywords", tags={"billing": 1, "bug": 1})
    by_name = await flows.run("ticket_triage", {"subject": "App crashes when I update my payment card"})
    by_name.assert_succeeded({"category": "bug", "priority": "normal"})
