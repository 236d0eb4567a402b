"""Text statistics: words, sentences, reading time and the most frequent words.

Shows: an ``async def`` flow whose paragraphs are counted concurrently with
``asyncio.gather`` (each call is a memoized step, and its span nests under the right parent),
``flow.step`` blocks, span tags and a log line. ``python text_stats.py`` runs it without a
service: the SDK passes through.
"""

import asyncio
import re
from collections import Counter

from hero_tracing import flow

SEED = {
    "workflow": "text_stats",
    "description": "Counts the words and sentences of a text, its reading time and its most frequent words",
    "tags": ["demo", "text", "async"],
    "presets": [
        {
            "name": "two sentences",
            "input_values": {"text": "The quick brown fox jumps over the lazy dog. The dog sleeps."},
            "expected_output": {"words": 12, "sentences": 2, "reading_seconds": 4, "top_words": ["dog", "brown", "fox"]},
        },
        {
            "name": "two paragraphs",
            "input_values": {
                "text": "Flows pause. Flows resume!\n\nA paused flow costs no process; a resumed flow replays its steps.",
                "top": 2,
            },
            "expected_output": {"words": 16, "sentences": 3, "reading_seconds": 5, "top_words": ["flow", "flows"]},
        },
    ],
}

STOPWORDS = frozenset(
    "a an and are as at be by for from has in is it its of on or over that the this to was were will with".split()
)
WORDS_PER_MINUTE = 200


@flow
async def paragraph_stats(paragraph: str):
    """Count one paragraph (a memoized step: a replay of the play does not count it again)."""
    words = re.findall(r"[a-z0-9']+", paragraph.lower())
    sentences = len([s for s in re.split(r"[.!?]+", paragraph) if s.strip()])
    await asyncio.sleep(0)  # real work would await I/O here
    flow.current_span.tag(words=len(words), sentences=sentences)
    return {"counts": dict(Counter(words)), "words": len(words), "sentences": sentences}


@flow(
    name="text_stats",
    description="Counts the words and sentences of a text, its reading time and its most frequent words",
    inputs={
        "text": {"type": "string", "required": True, "description": "the text; blank lines separate paragraphs"},
        "top": {"type": "integer", "default": 3, "description": "how many frequent words to return"},
    },
    outputs={"words": "integer", "sentences": "integer", "reading_seconds": "integer", "top_words": "array"},
)
async def main(text, top=3):
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    with flow.step("count paragraphs", paragraphs=len(paragraphs)):
        parts = await asyncio.gather(*(paragraph_stats(p) for p in paragraphs))
    with flow.step("rank words") as span:
        counts = Counter()
        for part in parts:
            counts.update(part["counts"])
        ranked = sorted((w for w in counts if w not in STOPWORDS), key=lambda w: (-counts[w], w))
        span.tag(distinct=len(counts))
    words = sum(p["words"] for p in parts)
    flow.current_span.log(f"{words} words in {len(paragraphs)} paragraph(s)")
    return {
        "words": words,
        "sentences": sum(p["sentences"] for p in parts),
        "reading_seconds": round(words / WORDS_PER_MINUTE * 60),
        "top_words": ranked[:top],
    }


if __name__ == "__main__":
    for preset in SEED["presets"]:
        print(asyncio.run(main(**preset["input_values"])))
