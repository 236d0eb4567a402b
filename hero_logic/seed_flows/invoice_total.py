"""Invoice totals from text lines such as ``2 x Widget @ 3.50``.

Shows: a ``@flow`` helper called once per line (each call a memoized step with its own span
and tags), ``flow.step`` blocks, ``flow.Failed`` for a clean failure that names the bad line,
and exact money arithmetic with ``decimal``.
"""

import re
from decimal import ROUND_HALF_UP, Decimal

from hero_tracing import flow

SEED = {
    "workflow": "invoice_total",
    "description": "Totals an invoice from its text lines ('2 x Widget @ 3.50'): subtotal, discount, tax and total",
    "tags": ["demo", "finance", "invoice"],
    "presets": [
        {
            "name": "two lines",
            "input_values": {"text": "2 x Widget @ 3.50\n1 x Gadget @ 10"},
            "expected_output": {"lines": 2, "subtotal": 17.0, "discount": 0.0, "tax": 0.0, "total": 17.0, "currency": "EUR"},
        },
        {
            "name": "with tax and discount",
            "input_values": {
                "text": "# office order\n3 x Paper ream @ 4.99\n1 x Stapler @ 12.5\n",
                "tax_rate": 0.21,
                "discount_pct": 10,
                "currency": "USD",
            },
            "expected_output": {"lines": 2, "subtotal": 27.47, "discount": 2.75, "tax": 5.19, "total": 29.91, "currency": "USD"},
        },
    ],
}

CENT = Decimal("0.01")
LINE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*[xX×*]\s*(.+?)\s*@\s*(\d+(?:\.\d+)?)\s*")


def money(value):
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@flow
def parse_line(line: str):
    """One invoice line → item, quantity, unit price and amount."""
    match = LINE.fullmatch(line)
    if match is None:
        raise flow.Failed(f"invoice line {line.strip()!r} is not 'QTY x ITEM @ PRICE' (e.g. '2 x Widget @ 3.50')")
    quantity, item, price = Decimal(match[1]), match[2], Decimal(match[3])
    amount = money(quantity * price)
    flow.current_span.tag(item=item, amount=str(amount))
    return {"item": item, "quantity": str(quantity), "unit_price": str(price), "amount": str(amount)}


@flow(
    name="invoice_total",
    description="Totals an invoice from its text lines ('2 x Widget @ 3.50'): subtotal, discount, tax and total",
    inputs={
        "text": {"type": "string", "required": True, "description": "one 'QTY x ITEM @ PRICE' per line; '#' starts a comment"},
        "tax_rate": {"type": "number", "default": 0.0, "description": "e.g. 0.21 for 21 %"},
        "discount_pct": {"type": "number", "default": 0, "description": "discount on the subtotal, in percent"},
        "currency": {"type": "string", "default": "EUR"},
    },
    outputs={"lines": "integer", "subtotal": "number", "discount": "number", "tax": "number", "total": "number", "currency": "string"},
)
def main(text, tax_rate=0.0, discount_pct=0, currency="EUR"):
    lines = [line for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    if not lines:
        raise flow.Failed("the invoice has no lines: pass one 'QTY x ITEM @ PRICE' per line")
    with flow.step("parse", lines=len(lines)):
        items = [parse_line(line) for line in lines]
    with flow.step("totals", currency=currency) as span:
        subtotal = sum((Decimal(i["amount"]) for i in items), Decimal(0))
        discount = money(subtotal * Decimal(str(discount_pct)) / 100)
        tax = money((subtotal - discount) * Decimal(str(tax_rate)))
        total = money(subtotal - discount + tax)
        span.tag(total=str(total))
    flow.current_span.log(f"{len(items)} lines, total {total} {currency}")
    return {
        "lines": len(items),
        "subtotal": float(money(subtotal)),
        "discount": float(discount),
        "tax": float(tax),
        "total": float(total),
        "currency": currency,
    }


if __name__ == "__main__":
    for preset in SEED["presets"]:
        print(main(**preset["input_values"]))
