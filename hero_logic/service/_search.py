"""Ranking workflows for a search query (pure functions, no I/O): ``flow_library_search``.

Each workflow is a document of four fields: its name, its tags, the names of its declared
inputs and outputs, and its description. Text is cut into lower-case words (``invoiceTotal``
and ``invoice_total`` both give ``invoice``, ``total``).

The score is BM25F-like. For each query word, the words of the library that it matches are
found: exactly; as a prefix (``inv`` → ``invoice``); or within a small edit distance (1 edit
for words of 4 to 7 letters, 2 from 8; rapidfuzz's optimal-string-alignment distance, so a
swap of two letters is one edit: ``invoce`` and ``invocie`` find ``invoice``; only the
closest such words, and only for a query word that is not itself in the library). Anything
but an exact match has a similarity below 1. A matched word adds ``similarity * idf * Σ_fields weight * tf'``
where ``tf'`` is the field's term frequency saturated and normalised by the field's length
(BM25, ``k1`` = 1.2; ``b`` = 0.3 for short fields, 0.75 for descriptions). A name match
weighs 3 times a description match, tags 2 times, field names 1.5 times; the lighter length normalisation
of names keeps a name match above a description match. Workflows that match nothing are left
out; equal scores go newest first. An empty query (or one with no words) lists the newest
workflows.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import TYPE_CHECKING

import attrs
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from hero_logic.kernel import Workflow

__all__ = ["FIELD_WEIGHTS", "SearchDoc", "rank_workflows", "words"]

FIELD_WEIGHTS = {"name": 3.0, "tags": 2.0, "fields": 1.5, "description": 1.0}
"""How much a match in each field counts; a name match is worth 3 description matches."""
_B = {"name": 0.3, "tags": 0.3, "fields": 0.3, "description": 0.75}
_K1 = 1.2
_PREFIX_SIMILARITY = 0.8
_TYPO_SIMILARITY = 0.7
MAX_QUERY_WORDS = 32

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """The lower-case words of ``text`` (split at non-letters/digits, ``_`` and camelCase)."""
    return [w.lower() for w in _WORD.findall(_CAMEL.sub(" ", text))]


def _max_edits(word: str) -> int:
    if len(word) < 4:
        return 0
    return 1 if len(word) < 8 else 2


@attrs.frozen
class SearchDoc:
    """One workflow as the ranking sees it."""

    sid: str
    created_at: int
    fields: dict[str, list[str]]

    @classmethod
    def of(cls, wf: Workflow) -> SearchDoc:
        """The search document of a workflow."""
        field_names = " ".join(f.name for f in (*wf.inputs, *wf.outputs))
        return cls(
            sid=wf.sid,
            created_at=wf.created_at,
            fields={
                "name": words(wf.name),
                "tags": words(" ".join(wf.tags)),
                "fields": words(field_names),
                "description": words(wf.description),
            },
        )


def _expand(term: str, vocabulary: Sequence[str]) -> dict[str, float]:
    """The library words ``term`` matches, with their similarity (1 for the word itself).

    A word of the library is taken as meant; otherwise the typo corrections are the closest
    words within the edit budget (fewest edits, then the highest rapidfuzz ratio), as a
    spelling corrector would suggest: ``invoce`` → ``invoice``, not also ``invoke``.
    """
    matches: dict[str, float] = {}
    if len(term) >= 3:
        for word in vocabulary:
            if word != term and word.startswith(term):
                matches[word] = _PREFIX_SIMILARITY
    edits = _max_edits(term)
    if term in vocabulary:
        matches[term] = 1.0
    elif edits:
        found = process.extract(term, vocabulary, scorer=OSA.distance, score_cutoff=edits, limit=None)
        ranked = sorted((distance, -round(fuzz.ratio(term, word)), word) for word, distance, _ in found)
        if ranked:
            best = ranked[0][:2]
            for distance, negative_ratio, word in ranked:
                if (distance, negative_ratio) == best:
                    matches[word] = max(matches.get(word, 0.0), _TYPO_SIMILARITY * -negative_ratio / 100)
    return matches


def _newest_first(docs: Iterable[SearchDoc]) -> list[SearchDoc]:
    return sorted(docs, key=lambda d: (d.created_at, d.sid), reverse=True)


def rank_workflows(query: str, docs: Sequence[SearchDoc], limit: int) -> list[str]:
    """Sids of the ``limit`` best matches of ``query`` among ``docs``, best first."""
    terms = list(dict.fromkeys(words(query)))[:MAX_QUERY_WORDS]
    if not terms:
        return [d.sid for d in _newest_first(docs)[:limit]]
    counts = [{name: Counter(ws) for name, ws in d.fields.items()} for d in docs]
    average = {
        name: max(1.0, sum(len(d.fields[name]) for d in docs) / max(1, len(docs))) for name in FIELD_WEIGHTS
    }
    document_frequency: Counter[str] = Counter()
    for d in docs:
        document_frequency.update({w for ws in d.fields.values() for w in ws})
    vocabulary = sorted(document_frequency)
    total = len(docs)
    scores = [0.0] * total
    for term in terms:
        for word, similarity in _expand(term, vocabulary).items():
            n = document_frequency[word]
            idf = math.log(1 + (total - n + 0.5) / (n + 0.5))
            for i, d in enumerate(docs):
                weighted = 0.0
                for name, weight in FIELD_WEIGHTS.items():
                    tf = counts[i][name][word]
                    if tf:
                        norm = 1 - _B[name] + _B[name] * len(d.fields[name]) / average[name]
                        weighted += weight * tf * (_K1 + 1) / (tf + _K1 * norm)
                scores[i] += similarity * idf * weighted
    ranked = sorted(
        (i for i in range(total) if scores[i] > 0),
        key=lambda i: (-round(scores[i], 9), -docs[i].created_at, _reverse_key(docs[i].sid)),
    )
    return [docs[i].sid for i in ranked[:limit]]


def _reverse_key(sid: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in sid)
