"""invoice_total: one memoized step per invoice line, exact money, a failure naming the bad line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from _seeds import presets

if TYPE_CHECKING:
    from pathlib import Path

    from hero_logic.testing.flows import FlowHarness


@pytest.mark.parametrize("preset", presets("invoice_total"))
async def test_each_preset_returns_its_expected_totals(flows: FlowHarness, seeds: Path, preset: dict[str, Any]) -> None:
    invoice = await flows.push(seeds / "invoice_total.py")
    result = await flows.run(invoice, preset["input_values"])
    result.assert_succeeded(preset["expected_output"])


async def test_each_line_is_a_step_under_parse(flows: FlowHarness, seeds: Path) -> None:
    invoice = await flows.push(seeds / "invoice_total.py")
    result = await flows.run(invoice, {"text": "2 x Widget @ 3.50\n1 x Gadget @ 10"})
    result.tree.assert_outline(
        """
        invoice_total
          parse
            parse_line
            parse_line
          totals
        """
    )
    widget, gadget = result.tree.find_all("parse_line")
    assert widget.tags == {"item": "Widget", "amount": "7.00"}
    assert gadget.tags == {"item": "Gadget", "amount": "10.00"}
    result.tree.assert_span("totals", tags={"currency": "EUR", "total": "17.00"})
    assert result.tree.root.logs == ["2 lines, total 17.00 EUR"]


async def test_a_malformed_line_fails_the_play_naming_it(flows: FlowHarness, seeds: Path) -> None:
    invoice = await flows.push(seeds / "invoice_total.py")
    result = await flows.run(invoice, {"text": "2 x Widget @ 3.50\ntwo gadgets please"})
    result.assert_failed("invoice line 'two gadgets please' is not 'QTY x ITEM @ PRICE'")
    widget, bad = result.tree.find_all("parse_line")
    assert (widget.status, bad.status) == ("ok", "failed")
    assert "two gadgets please" in bad.error
