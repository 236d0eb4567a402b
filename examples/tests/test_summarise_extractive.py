"""summarise_extractive: a flow that grades itself with a score tag on its root span."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from hero_logic.testing.flows import FlowHarness


async def test_the_summary_keeps_the_central_sentence_and_scores_itself(flows: FlowHarness, seeds: Path) -> None:
    summarise = await flows.push(seeds / "summarise_extractive.py")
    result = await flows.run(summarise, {"text": "Cats sleep a lot. Cats also play. Dogs bark. Dogs play too.", "sentences": 1})
    output = result.assert_succeeded()
    assert output["summary"] == "Cats also play."
    assert result.tree.root.tags["score"] == output["coverage"] == 0.667
    result.tree.assert_span("rank sentences", tags={"sentences": 4, "kept": [1]})


async def test_a_text_without_sentences_fails(flows: FlowHarness, seeds: Path) -> None:
    summarise = await flows.push(seeds / "summarise_extractive.py")
    result = await flows.run(summarise, {"text": "   "})
    result.assert_failed("the text has no sentences to summarise")
