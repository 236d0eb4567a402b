"""A digest of meeting notes with the total of an attached invoice.

Shows: ``flow.invoke`` in both modes. ``flow.invoke("text_stats", ...)`` runs that library
flow in this process (its spans nest under the invocation); ``flow.invoke("invoice_total",
spawn=True, ...)`` runs it as a child play of its own, linked to this one, and waits for it.
Either way the invocation is memoized like a step.
"""

from hero_tracing import flow

SEED = {
    "workflow": "report_digest",
    "description": "Summarises meeting notes (via text_stats) and totals an attached invoice (via invoice_total, as a child play)",
    "tags": ["demo", "composition", "invoke"],
    "presets": [
        {
            "name": "weekly sync",
            "input_values": {
                "title": "Weekly sync",
                "notes": "We shipped the invoice export. The export needs tests. Tests run nightly.",
                "invoice": "3 x Pizza @ 9.50\n2 x Soda @ 2.25",
            },
            "expected_output": {
                "title": "Weekly sync",
                "words": 12,
                "top_words": ["export", "tests"],
                "invoice_total": 33.0,
                "summary": "Weekly sync: 12 words, mostly about export, tests; invoice 33.00",
            },
        },
        {
            "name": "notes only",
            "input_values": {"title": "Retro", "notes": "Good sprint. Fewer meetings, more focus."},
            "expected_output": {"title": "Retro", "words": 6, "invoice_total": 0.0},
        },
    ],
}


@flow(
    name="report_digest",
    description="Summarises meeting notes (via text_stats) and totals an attached invoice (via invoice_total, as a child play)",
    inputs={
        "title": {"type": "string", "required": True},
        "notes": {"type": "string", "required": True},
        "invoice": {"type": "string", "default": "", "description": "invoice lines, 'QTY x ITEM @ PRICE'"},
    },
    outputs={"title": "string", "words": "integer", "top_words": "array", "invoice_total": "number", "summary": "string"},
)
def main(title, notes, invoice=""):
    stats = flow.invoke("text_stats", text=notes, top=2)  # in process
    total = 0.0
    if invoice.strip():
        bill = flow.invoke("invoice_total", spawn=True, text=invoice)  # a child play
        total = bill["total"]
    summary = f"{title}: {stats['words']} words, mostly about {', '.join(stats['top_words'])}"
    if total:
        summary += f"; invoice {total:.2f}"
    flow.current_span.tag(words=stats["words"], invoice_total=total)
    return {"title": title, "words": stats["words"], "top_words": stats["top_words"], "invoice_total": total, "summary": summary}
