"""An extractive summary that grades itself: the flow reports a ``score`` on its root span.

Shows: ``flow.current_span.tag(score=...)`` on the root span. A benchmark of a preset with no
``expected_output`` takes that score (0..1) as the run's accuracy, so a flow that can judge
its own output (here: how many of the text's key words the summary keeps) can be compared
and picked without hand-written answers.
"""

import re
from collections import Counter

from hero_tracing import flow

SEED = {
    "workflow": "summarise_extractive",
    "description": "Summarises a text by keeping its most central sentences, and scores how many key words survive",
    "tags": ["demo", "text", "summary", "score"],
    "presets": [
        {
            "name": "release note",
            "input_values": {
                "text": (
                    "hero_logic runs Python flows durably. Every flow call is a step with a span. "
                    "A paused flow exits and costs nothing. When the flow resumes, finished steps replay "
                    "from their cached output. Benchmarks compare versions of a flow on the same presets."
                ),
                "sentences": 2,
            },
        },
        {
            "name": "short text",
            "input_values": {"text": "Cats sleep a lot. Cats also play. Dogs bark. Dogs play too.", "sentences": 1},
        },
    ],
}

STOPWORDS = frozenset("a an and are as at be by for from in is it its of on or the their to when with".split())


def words(text):
    return [w for w in re.findall(r"[a-z0-9_']+", text.lower()) if w not in STOPWORDS]


@flow(
    name="summarise_extractive",
    description="Summarises a text by keeping its most central sentences, and scores how many key words survive",
    inputs={"text": {"type": "string", "required": True}, "sentences": {"type": "integer", "default": 2}},
    outputs={"summary": "string", "coverage": "number"},
)
def main(text, sentences=2):
    parts = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
    if not parts:
        raise flow.Failed("the text has no sentences to summarise")
    frequency = Counter(words(text))
    with flow.step("rank sentences", sentences=len(parts)) as span:
        weight = {i: sum(frequency[w] for w in set(words(s))) for i, s in enumerate(parts)}
        keep = sorted(sorted(weight, key=lambda i: (-weight[i], i))[:sentences])
        span.tag(kept=keep)
    summary = " ".join(parts[i] for i in keep)
    repeated = [w for w, n in frequency.most_common() if n > 1]  # a text's key words recur
    key_words = (repeated or [w for w, _ in frequency.most_common()])[:5]
    coverage = round(sum(1 for w in key_words if w in set(words(summary))) / len(key_words), 3)
    flow.current_span.tag(score=coverage)  # the root span: benchmarks read it as accuracy
    return {"summary": summary, "coverage": coverage}


if __name__ == "__main__":
    for preset in SEED["presets"]:
        print(main(**preset["input_values"]))
