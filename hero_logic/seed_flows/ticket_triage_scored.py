"""Support ticket triage, version "scored": weighted words, the subject counting double.

Shows: ``instrument(client)`` — every public method call of the client becomes an ``rpc``
span — and cost tags: the client stands in for a paid classification API and tags each call
with ``cost_usd``, which the play sums into ``total_cost_usd`` and benchmarks average. Swap
``LexiconModel`` for a real client (an LLM SDK, an HTTP client) and the tracing stays the same.
"""

import re
import time

from hero_tracing import flow, instrument

SEED = {
    "workflow": "ticket_triage",
    "version_label": "scored",
    "order": 2,
    "current": True,
    "tags": ["demo", "support", "classification"],
}

PRIORITY_WORDS = ("urgent", "asap", "outage", "production", "immediately")


WEIGHTS = {
    "billing": {"invoice": 3, "refund": 3, "charge": 2, "charged": 2, "payment": 1, "price": 2, "subscription": 1},
    "bug": {"error": 2, "crash": 3, "crashes": 3, "broken": 2, "bug": 3, "fails": 2, "outage": 3, "loads": 1},
    "account": {"password": 3, "login": 3, "log": 1, "account": 2, "email": 1},
}


class LexiconModel:
    """A stand-in for a paid model API: word weights per category, a price per call."""

    PRICE_PER_CALL_USD = 0.0004

    def classify(self, subject, body):
        time.sleep(0.05)  # the latency of a remote call
        scores = {}
        for category, weights in WEIGHTS.items():
            score = 0
            for weight, text in ((2, subject), (1, body)):
                for word in re.findall(r"[a-z]+", text.lower()):
                    score += weight * weights.get(word, 0)
            scores[category] = score
        flow.current_span.tag(cost_usd=self.PRICE_PER_CALL_USD, **scores)  # the rpc span of this call
        return scores


model = instrument(LexiconModel())


@flow(
    name="ticket_triage",
    description="Sorts a support ticket into billing, bug, account or other, with a priority",
    inputs={"subject": {"type": "string", "required": True}, "body": {"type": "string", "default": ""}},
    outputs={"category": "string", "priority": "string"},
)
def main(subject, body=""):
    scores = model.classify(subject, body)
    best = max(scores.values())
    category = "other" if best == 0 else min(c for c, s in scores.items() if s == best)
    with flow.step("priority"):
        words = set(re.findall(r"[a-z]+", f"{subject} {body}".lower()))
        priority = "high" if words & set(PRIORITY_WORDS) else "normal"
    flow.current_span.tag(category=category, priority=priority)
    return {"category": category, "priority": priority}


if __name__ == "__main__":
    import ticket_triage

    for preset in ticket_triage.SEED["presets"]:
        print(main(**preset["input_values"]), preset["expected_output"])
