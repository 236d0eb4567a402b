"""Support ticket triage, version "keywords": a category and a priority from keyword counts.

Fast and free, and wrong on some tickets (see its presets' benchmark): a keyword anywhere
counts, ties go to the first category, only "urgent" raises the priority. The version
"scored" (``ticket_triage_scored.py``) fixes that at a small cost per ticket; benchmark both
and let ``pick_version`` choose between them.
"""

from hero_tracing import flow

SEED = {
    "workflow": "ticket_triage",
    "version_label": "keywords",
    "order": 1,
    "description": "Sorts a support ticket into billing, bug, account or other, with a priority",
    "tags": ["demo", "support", "classification"],
    "presets": [
        {
            "name": "refund request",
            "input_values": {"subject": "Refund for a double charge", "body": "I was charged twice for my subscription, please refund one."},
            "expected_output": {"category": "billing", "priority": "normal"},
        },
        {
            "name": "cannot log in",
            "input_values": {"subject": "Cannot log in", "body": "The login page rejects my password since I changed my email."},
            "expected_output": {"category": "account", "priority": "normal"},
        },
        {
            "name": "urgent crash",
            "input_values": {"subject": "URGENT: checkout broken", "body": "Checkout crashes with an error for every customer."},
            "expected_output": {"category": "bug", "priority": "high"},
        },
        {
            "name": "crash on payment page",
            "input_values": {"subject": "App crashes when I update my payment card", "body": ""},
            "expected_output": {"category": "bug", "priority": "normal"},
        },
        {
            "name": "production outage",
            "input_values": {"subject": "Production outage", "body": "Nothing loads since this morning, we need it fixed asap."},
            "expected_output": {"category": "bug", "priority": "high"},
        },
    ],
}

KEYWORDS = {
    "billing": ["invoice", "refund", "charge", "payment", "price"],
    "bug": ["error", "crash", "broken", "bug", "fails"],
    "account": ["password", "login", "account", "email"],
}


@flow(
    name="ticket_triage",
    description="Sorts a support ticket into billing, bug, account or other, with a priority",
    inputs={"subject": {"type": "string", "required": True}, "body": {"type": "string", "default": ""}},
    outputs={"category": "string", "priority": "string"},
)
def main(subject, body=""):
    text = f"{subject} {body}".lower()
    with flow.step("count keywords") as span:
        hits = {category: sum(text.count(word) for word in words) for category, words in KEYWORDS.items()}
        span.tag(**hits)
    category = max(hits, key=hits.get) if any(hits.values()) else "other"
    priority = "high" if "urgent" in text else "normal"
    flow.current_span.tag(category=category, priority=priority, cost_usd=0.0)
    return {"category": category, "priority": priority}


if __name__ == "__main__":
    for preset in SEED["presets"]:
        print(main(**preset["input_values"]), preset["expected_output"])
