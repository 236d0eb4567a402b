"""Expense approval: automatic under a limit, otherwise a person approves, sorts and comments.

Shows: pauses through ``ask_user.confirm`` / ``choice`` / ``text``, each with a stable
``name=`` so answers keep their resume id when the prompt's wording changes. A play pauses
(its process exits; a paused play costs nothing) until ``play_resume`` answers; the re-run
replays the finished steps. Presets answer the pauses ahead of time with ``prefill_resumes``
(by pause name), so benchmarks run unattended.
"""

from hero_tracing import ask_user, flow

SEED = {
    "workflow": "expense_approval",
    "description": "Approves an expense claim: automatically under a limit, otherwise by asking an approver",
    "tags": ["demo", "human-in-the-loop", "finance"],
    "presets": [
        {
            "name": "small taxi ride",
            "input_values": {"employee": "Ada", "amount": 23.5, "description": "taxi to the client"},
            "expected_output": {"approved": True, "category": "travel", "approver": "policy"},
        },
        {
            "name": "conference trip",
            "input_values": {"employee": "Grace", "amount": 840, "description": "PyCon ticket and hotel"},
            "prefill_resumes": {"approve": True, "category": "training", "note": "Enjoy the conference"},
            "expected_output": {"approved": True, "category": "training", "note": "Enjoy the conference", "approver": "manager"},
        },
        {
            "name": "gadget refused",
            "input_values": {"employee": "Linus", "amount": 1299, "description": "a new phone"},
            "prefill_resumes": {"approve": False, "category": "equipment", "note": "Use the company phone"},
            "expected_output": {"approved": False, "category": "equipment", "approver": "manager"},
        },
    ],
}

CATEGORIES = ["travel", "meals", "training", "equipment", "other"]
HINTS = {"taxi": "travel", "train": "travel", "flight": "travel", "hotel": "travel", "lunch": "meals", "dinner": "meals"}


@flow
def policy_check(amount: float, limit: float):
    """Whether the claim needs a person (a memoized step: not re-run when the play resumes)."""
    flow.current_span.tag(amount=amount, limit=limit)
    return {"needs_review": amount > limit}


@flow(
    name="expense_approval",
    description="Approves an expense claim: automatically under a limit, otherwise by asking an approver",
    inputs={
        "employee": {"type": "string", "required": True},
        "amount": {"type": "number", "required": True},
        "description": {"type": "string", "default": ""},
        "auto_approve_limit": {"type": "number", "default": 50},
    },
    outputs={"approved": "boolean", "category": "string", "note": "string", "approver": "string"},
)
def main(employee, amount, description="", auto_approve_limit=50):
    if amount <= 0:
        raise flow.Failed(f"the amount must be positive, got {amount}")
    if not policy_check(amount=amount, limit=auto_approve_limit)["needs_review"]:
        words = description.lower().split()
        category = next((HINTS[w] for w in words if w in HINTS), "other")
        return {"approved": True, "category": category, "note": "approved automatically under the limit", "approver": "policy"}
    approved = ask_user.confirm(f"Approve {amount:.2f} for {employee} ({description or 'no description'})?", name="approve")
    category = ask_user.choice("Which expense category?", CATEGORIES, name="category")
    note = ask_user.text(f"A note for {employee}", name="note")
    flow.current_span.tag(approved=approved, category=category)
    return {"approved": approved, "category": category, "note": note, "approver": "manager"}


if __name__ == "__main__":
    print(main(employee="Ada", amount=12, description="lunch"))
