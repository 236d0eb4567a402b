"""fx_convert: an instrumented client call is an rpc span carrying its cost."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from _seeds import presets

if TYPE_CHECKING:
    from pathlib import Path

    from hero_logic.testing.flows import FlowHarness


@pytest.mark.parametrize("preset", presets("fx_convert"))
async def test_each_preset_converts_as_expected(flows: FlowHarness, seeds: Path, preset: dict[str, Any]) -> None:
    fx = await flows.push(seeds / "fx_convert.py")
    result = await flows.run(fx, preset["input_values"])
    result.assert_succeeded(preset["expected_output"])


async def test_the_rates_call_is_an_rpc_span_with_its_cost(flows: FlowHarness, seeds: Path) -> None:
    fx = await flows.push(seeds / "fx_convert.py")
    result = await flows.run(fx, {"amount": 10, "from_currency": "chf", "to_currency": "eur"})
    result.assert_succeeded({"converted": 10.4, "rate": 1.04, "to_currency": "EUR"})
    result.tree.assert_span(
        "rpc:RatesClient.rate", kind="rpc", status="ok", tags={"cost_usd": pytest.approx(0.0002), "base": "CHF"}
    )
    result.tree.assert_outline(
        """
        fx_convert
          rpc:RatesClient.rate
          convert
        """
    )
    assert result.play["total_cost_usd"] == pytest.approx(0.0002)


async def test_an_unknown_currency_fails_listing_the_known_ones(flows: FlowHarness, seeds: Path) -> None:
    fx = await flows.push(seeds / "fx_convert.py")
    result = await flows.run(fx, {"amount": 1, "from_currency": "USD", "to_currency": "XYZ"})
    result.assert_failed("unknown currency 'XYZ': use one of CHF, EUR, GBP, JPY, USD")
    result.tree.assert_span("rpc:RatesClient.rate", status="failed")
