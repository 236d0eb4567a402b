"""The ``weighted`` version picker: a weighted sum of normalised cost, speed and accuracy.

For each version with a finished benchmark (its latest one):

* versions whose accuracy is under ``min_accuracy`` are dropped;
* among the rest, ``accuracy_score`` is the accuracy itself (already 0..1), and
  ``speed_score`` / ``cost_score`` are relative to the best: ``(best + ε) / (value + ε)``,
  1 for the fastest / cheapest, 0.5 for one twice as slow or costly (ε is 1 % of the largest
  value, so a free version does not make every paid one worth 0);
* ``score = (w_cost·cost + w_speed·speed + w_acc·accuracy) / (w_cost + w_speed + w_acc)``.

The best score wins (ties: the current version, then the newest). ``confidence`` is the
margin to the runner-up (with no runner-up: the winner's own score). With no finished
benchmark, or none over the floor, the current version is kept with confidence 0, and the
reasoning says why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from hero_logic.kernel import PickResult, VersionScore, candidates_note

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hero_logic.kernel import Benchmark, Config, PickWeights, VersionCandidate

__all__ = ["WeightedPicker"]


def _relative(value: float, values: Sequence[float], floor: float) -> float:
    epsilon = max(floor, 0.01 * max(values))
    return (min(values) + epsilon) / (value + epsilon)


def _label(c: VersionCandidate) -> str:
    return f"{c.version_label} ({c.version_sid})" if c.version_label else c.version_sid


def _numbers(b: Benchmark) -> str:
    return (
        f"accuracy {b.accuracy:.0%}, success {b.success_rate:.0%}, avg {b.avg_duration_ms:.0f} ms, "
        f"${b.avg_cost_usd:.4f}/run over {b.completed_runs} runs"
    )


@attrs.frozen
class WeightedPicker:
    """Picks the version with the best weighted score of cost, speed and accuracy."""

    name: str = "weighted"

    @classmethod
    def from_config(cls, config: Config | None = None) -> WeightedPicker:
        """The picker (it has no settings)."""
        return cls()

    def pick(
        self,
        candidates: Sequence[VersionCandidate],
        weights: PickWeights,
        *,
        current_version_sid: str,
    ) -> PickResult:
        """The best version under ``weights`` (see the module docstring)."""
        scored = [c for c in candidates if c.benchmark is not None]
        eligible = [c for c in scored if _bench(c).accuracy >= weights.min_accuracy]
        scores: dict[str, VersionScore] = {}
        lines: list[str] = []
        total = weights.cost + weights.speed + weights.accuracy
        if eligible:
            durations = [_bench(c).avg_duration_ms for c in eligible]
            costs = [_bench(c).avg_cost_usd for c in eligible]
            for c in eligible:
                b = _bench(c)
                speed = _relative(b.avg_duration_ms, durations, 1.0)
                cost = _relative(b.avg_cost_usd, costs, 1e-9)
                score = (weights.cost * cost + weights.speed * speed + weights.accuracy * b.accuracy) / total
                scores[c.version_sid] = _score(c, "scored", score=score, accuracy=b.accuracy, speed=speed, cost=cost)
        ranked = sorted(
            eligible,
            key=lambda c: (-round(scores[c.version_sid].score or 0.0, 9), not c.is_current, -c.created_at, c.version_sid),
        )
        for c in scored:
            if c.version_sid not in scores:
                b = _bench(c)
                note = f"accuracy {b.accuracy:.0%} is under the floor {weights.min_accuracy:.0%}"
                scores[c.version_sid] = _score(c, "below_floor", note=note)
                lines.append(f"- {_label(c)}: dropped, {note} ({_numbers(b)})")
        for c in candidates:
            if c.benchmark is None:
                note = "no finished benchmark: run benchmark_run on it to score it"
                scores[c.version_sid] = _score(c, "unscored", note=note)
                lines.append(f"- {_label(c)}: unscored, {note}")
        current = next((c for c in candidates if c.version_sid == current_version_sid), None)
        current_label = _label(current) if current else current_version_sid
        if not ranked:
            if not scored:
                head = (
                    f"No version has a finished benchmark, so the current version {current_label} "
                    "is kept (confidence 0). Benchmark the versions (benchmark_run) to compare them."
                )
            else:
                best = max(scored, key=lambda c: _bench(c).accuracy)
                head = (
                    f"No benchmarked version reaches the accuracy floor {weights.min_accuracy:.0%} "
                    f"(the most accurate, {_label(best)}, has {_bench(best).accuracy:.0%}), so the "
                    f"current version {current_label} is kept (confidence 0). Lower min_accuracy "
                    "or improve the flow."
                )
            return self._result(current_version_sid, 0.0, [head, *lines], candidates, scores)
        winner = ranked[0]
        best_score = scores[winner.version_sid].score or 0.0
        scores[winner.version_sid] = attrs.evolve(scores[winner.version_sid], status="picked")
        share = ", ".join(
            f"{name} {w / total:.0%}" for name, w in
            (("cost", weights.cost), ("speed", weights.speed), ("accuracy", weights.accuracy))
        )
        if len(ranked) > 1:
            runner = ranked[1]
            runner_score = scores[runner.version_sid].score or 0.0
            confidence = best_score - runner_score
            head = (
                f"Picked {_label(winner)}: score {best_score:.2f} against {runner_score:.2f} for the "
                f"runner-up {_label(runner)} (confidence {confidence:.2f}, the margin between them)."
            )
        else:
            confidence = best_score
            head = (
                f"Picked {_label(winner)}: the only benchmarked version over the floor, score "
                f"{best_score:.2f} (confidence {confidence:.2f}: its own score, there is no runner-up)."
            )
        detail = [f"Weights: {share}; accuracy floor {weights.min_accuracy:.0%}."]
        for c in ranked:
            s = scores[c.version_sid]
            detail.append(
                f"- {_label(c)}: score {s.score:.2f} = accuracy {s.accuracy_score:.2f}, speed "
                f"{s.speed_score:.2f}, cost {s.cost_score:.2f} ({_numbers(_bench(c))})"
            )
        note = candidates_note(scored)
        return self._result(
            winner.version_sid, confidence, [head, *detail, *lines, *([note] if note else [])], candidates, scores
        )

    def _result(
        self,
        version_sid: str,
        confidence: float,
        lines: list[str],
        candidates: Sequence[VersionCandidate],
        scores: dict[str, VersionScore],
    ) -> PickResult:
        return PickResult(
            version_sid=version_sid,
            confidence=round(min(1.0, max(0.0, confidence)), 4),
            reasoning="\n".join(lines),
            scores=[scores[c.version_sid] for c in candidates if c.version_sid in scores],
            picker=self.name,
        )


def _bench(c: VersionCandidate) -> Benchmark:
    assert c.benchmark is not None
    return c.benchmark


def _score(c: VersionCandidate, status: str, **kw: Any) -> VersionScore:
    b = c.benchmark
    parts: dict[str, Any] = {}
    if "score" in kw:
        parts = {
            "score": round(kw["score"], 6),
            "accuracy_score": round(kw["accuracy"], 6),
            "speed_score": round(kw["speed"], 6),
            "cost_score": round(kw["cost"], 6),
        }
    return VersionScore(
        version_sid=c.version_sid,
        version_label=c.version_label,
        status=status,
        accuracy=b.accuracy if b else None,
        avg_duration_ms=b.avg_duration_ms if b else None,
        avg_cost_usd=b.avg_cost_usd if b else None,
        benchmark_sid=b.sid if b else "",
        note=kw.get("note", ""),
        **parts,
    )
