"""Currency conversion through an instrumented rates client, with the cost of each call.

Shows: ``instrument(client)`` (each public method call is an ``rpc`` span named
``rpc:RatesClient.rate``), tagging ``cost_usd`` on that span from inside the call, a
``flow.step`` around the arithmetic, and ``flow.Failed`` for an unknown currency. The
client is a stand-in with fixed rates: put your real API client in its place.
"""

from decimal import ROUND_HALF_UP, Decimal

from hero_tracing import flow, instrument

SEED = {
    "workflow": "fx_convert",
    "description": "Converts an amount between currencies through a (stand-in) paid rates API",
    "tags": ["demo", "finance", "instrument"],
    "presets": [
        {
            "name": "dollars to euros",
            "input_values": {"amount": 100, "from_currency": "USD", "to_currency": "EUR"},
            "expected_output": {"converted": 92.0, "rate": 0.92, "to_currency": "EUR"},
        },
        {
            "name": "pounds to dollars",
            "input_values": {"amount": 50, "from_currency": "gbp", "to_currency": "usd"},
            "expected_output": {"converted": 63.59, "rate": 1.271739, "to_currency": "USD"},
        },
    ],
}


TO_EUR = {"EUR": Decimal(1), "USD": Decimal("0.92"), "GBP": Decimal("1.17"), "CHF": Decimal("1.04"), "JPY": Decimal("0.0062")}


class RatesClient:
    """Exchange rates to EUR, a price per call: a stand-in for a paid rates API."""

    PRICE_PER_CALL_USD = 0.0002

    def rate(self, base, quote):
        flow.current_span.tag(cost_usd=self.PRICE_PER_CALL_USD, base=base, quote=quote)
        for code in (base, quote):
            if code not in TO_EUR:
                raise flow.Failed(f"unknown currency {code!r}: use one of {', '.join(sorted(TO_EUR))}")
        return str(TO_EUR[base] / TO_EUR[quote])


rates = instrument(RatesClient())


@flow(
    name="fx_convert",
    description="Converts an amount between currencies through a (stand-in) paid rates API",
    inputs={
        "amount": {"type": "number", "required": True},
        "from_currency": {"type": "string", "required": True, "description": "ISO code, e.g. USD"},
        "to_currency": {"type": "string", "required": True, "description": "ISO code, e.g. EUR"},
    },
    outputs={"converted": "number", "rate": "number", "to_currency": "string"},
)
def main(amount, from_currency, to_currency):
    base, quote = from_currency.strip().upper(), to_currency.strip().upper()
    rate = Decimal(rates.rate(base, quote))
    with flow.step("convert", base=base, quote=quote) as span:
        converted = (Decimal(str(amount)) * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        span.tag(converted=str(converted))
    return {"converted": float(converted), "rate": round(float(rate), 6), "to_currency": quote}


if __name__ == "__main__":
    for preset in SEED["presets"]:
        print(main(**preset["input_values"]))
