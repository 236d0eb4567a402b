"""expense_approval: small claims pass on policy, larger ones ask an approver three questions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from _seeds import presets

if TYPE_CHECKING:
    from pathlib import Path

    from hero_logic.testing.flows import FlowHarness

CONFERENCE = {"employee": "Grace", "amount": 840, "description": "PyCon ticket and hotel"}


@pytest.mark.parametrize("preset", presets("expense_approval"))
async def test_each_preset_with_its_answers_returns_its_decision(flows: FlowHarness, seeds: Path, preset: dict[str, Any]) -> None:
    expense = await flows.push(seeds / "expense_approval.py")
    result = await flows.run(expense, preset["input_values"], answers=preset.get("prefill_resumes"))
    result.assert_succeeded(preset["expected_output"], partial=True)


async def test_prefilled_answers_run_the_play_without_stopping(flows: FlowHarness, seeds: Path) -> None:
    expense = await flows.push(seeds / "expense_approval.py")
    play = await flows.start(expense, CONFERENCE, prefill={"approve": True, "category": "training", "note": "ok"})
    result = await play.wait()
    result.assert_succeeded({"approved": True, "category": "training", "note": "ok", "approver": "manager"})
    assert result.answered == ()  # the service took the answers from the prefill, not the harness


async def test_a_claim_under_the_limit_is_approved_without_asking(flows: FlowHarness, seeds: Path) -> None:
    expense = await flows.push(seeds / "expense_approval.py")
    result = await flows.run(expense, {"employee": "Ada", "amount": 23.5, "description": "taxi to the client"})
    result.assert_succeeded(
        {"approved": True, "category": "travel", "note": "approved automatically under the limit", "approver": "policy"}
    )
    assert result.answered == ()
    result.tree.assert_span("policy_check", kind="step", status="ok", tags={"amount": 23.5, "limit": 50})


async def test_a_larger_claim_asks_the_approver_by_name(flows: FlowHarness, seeds: Path) -> None:
    expense = await flows.push(seeds / "expense_approval.py")
    result = await flows.run(
        expense, CONFERENCE, answers={"approve": True, "category": "training", "note": "Enjoy the conference"}
    )
    result.assert_succeeded(
        {"approved": True, "category": "training", "note": "Enjoy the conference", "approver": "manager"}
    )
    assert [a.wait.name for a in result.answered] == ["approve", "category", "note"]
    # policy_check ran before the first pause: the later runs replay it from its stored output.
    result.tree.assert_span("policy_check", status="replayed", count=1)
    result.tree.assert_span("expense_approval", kind="flow_root", tags={"approved": True, "category": "training"})


async def test_answers_in_a_list_are_given_in_the_order_the_questions_come(flows: FlowHarness, seeds: Path) -> None:
    expense = await flows.push(seeds / "expense_approval.py")
    result = await flows.run(
        expense,
        {"employee": "Linus", "amount": 1299, "description": "a new phone"},
        answers=[False, "equipment", "Use the company phone"],
    )
    result.assert_succeeded({"approved": False, "category": "equipment", "approver": "manager"}, partial=True)


async def test_without_answers_the_play_waits_on_the_first_question(flows: FlowHarness, seeds: Path) -> None:
    expense = await flows.push(seeds / "expense_approval.py")
    result = await flows.run(expense, CONFERENCE)
    pause = result.assert_waiting("approve")
    assert pause.prompt == "Approve 840.00 for Grace (PyCon ticket and hotel)?"
    assert pause.expects == "a boolean"


async def test_a_paused_play_is_answered_step_by_step(flows: FlowHarness, seeds: Path) -> None:
    expense = await flows.push(seeds / "expense_approval.py")
    play = await flows.start(expense, CONFERENCE)
    (await play.wait()).assert_waiting("approve")
    await play.answer("approve", True)
    category = (await play.wait()).assert_waiting("category")
    assert category.expects == "one of 'travel', 'meals', 'training', 'equipment', 'other'"
    await play.answer_next("training")
    result = await play.settle({"note": "ok"})
    result.assert_succeeded({"approved": True, "category": "training", "note": "ok", "approver": "manager"})


async def test_a_negative_amount_fails_the_play_with_a_reason(flows: FlowHarness, seeds: Path) -> None:
    expense = await flows.push(seeds / "expense_approval.py")
    result = await flows.run(expense, {"employee": "Ada", "amount": -5})
    result.assert_failed("the amount must be positive, got -5")
    result.tree.assert_span("expense_approval", status="failed")
