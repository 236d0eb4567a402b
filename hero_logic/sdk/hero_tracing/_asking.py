"""A pause inside a play: its identity, its answer from the replay caches, or the pause itself.

A pause's resume id is ``sha1(version_sid|parent_path|pause:name|ordinal)`` and its shape key
``sha1(parent_shape|pause:name|ordinal)`` (version-free, what a fork matches on). Its answer
comes from the replay file's ``resumes`` (by resume id), else a forked-from play's answers
(``reuse.resumes``, by shape), else the prefills (by id, then by name); a play started with
prefills fails fast at a pause that has none; otherwise the play pauses. Like a call, a pause
takes a position among its parent's calls and is held to the recorded run (:mod:`._strict`).
"""

from __future__ import annotations

import itertools
import time

from . import _wire
from ._emit import RequestError
from ._spans import CURRENT, AwaitingResume, Failed
from ._strict import PARALLEL, place

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ._play import Runtime

__all__ = ["ask"]


def ask(runtime: Runtime, name: str, schema: Any, ui: Any) -> Any:
    """The answer to pause ``name``: from the replay file or prefills, else pause the play."""
    parent = CURRENT.get() or runtime.root
    if parent is None:
        path, counts, parent_id, above = "", runtime.top_counts, runtime.parent_span, ""
    else:
        path, counts, parent_id, above = parent.path, parent.counts, parent.span_id, parent.shape or parent.path
    counter = counts.get(("pause", name))
    if counter is None:
        counter = counts.setdefault(("pause", name), itertools.count())
    ordinal = next(counter)
    rid = _wire.resume_id(runtime.version_sid, path, name, ordinal)
    shape = _wire.pause_shape(above, name, ordinal)
    reused = rid not in runtime.resumes and runtime.reusing and shape in runtime.reuse_resumes
    position, parallel = place(counts)
    if runtime.strict is not None:
        answered = rid in runtime.resumes or reused
        runtime.strict.check(path[:40], position, parallel or PARALLEL in counts, rid, "pause", name, "", answered)
    # A pause answered from the file gets a zero-length span whose id derives from its resume
    # id, so every later run marks the same span.
    if rid in runtime.resumes:
        runtime.instant_span(f"pause:{name}", parent_id, "replayed", {"resume_id": rid}, rid[:20], shape)
        return runtime.resumes[rid]
    if reused:  # answered in the play this one was forked from
        tags: dict[str, Any] = {"resume_id": rid, "reused_from": runtime.reused_from}
        runtime.instant_span(f"pause:{name}", parent_id, "replayed", tags, rid[:20], shape)
        return runtime.reuse_resumes[shape]
    for known in (rid, name):
        if known in runtime.prefill:
            answer = runtime.prefill[known]
            if schema:
                _check_prefill(runtime, rid, name, schema, answer)
            prefilled: dict[str, Any] = {"resume_id": rid, "prefilled": True}
            runtime.instant_span(f"pause:{name}", parent_id, "ok", prefilled, rid[:20], shape)
            return answer
    if runtime.prefill_only:
        msg = (
            f"pause {name!r} has no prefilled answer (resume id {rid}); this play was started "
            f"with prefill_resumes, so it fails instead of waiting: add an answer for {name!r}"
        )
        raise Failed(msg)
    runtime.pauses.append(rid)
    event: dict[str, Any] = {
        "type": "pause",
        "resume_id": rid,
        "name": name,
        "schema": schema,
        "ui": ui,
        "span_id": parent_id,
        "asked_at": time.time_ns() // 1_000_000,
        "shape_key": shape,
    }
    if parallel:
        event["parallel"] = True
    runtime.send(event)
    raise AwaitingResume(rid, name)


def _check_prefill(runtime: Runtime, rid: str, name: str, schema: Any, answer: Any) -> None:
    """Have the service check a prefilled answer against the pause's schema, as it checks a
    ``play_resume`` payload; a bad one fails the flow naming the pause."""
    try:
        runtime.writer.request(
            "check_answer", {"resume_id": rid, "name": name, "schema": schema, "payload": answer}
        )
    except RequestError as exc:
        msg = f"the prefilled answer to pause {name!r} (resume id {rid}) was refused: {exc.message}"
        raise Failed(msg) from None
