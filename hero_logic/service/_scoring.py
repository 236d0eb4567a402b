"""Benchmark arithmetic and the checks of presets: pure functions, tested without a service."""

from __future__ import annotations

import math
import statistics
from typing import TYPE_CHECKING, Any

import attrs

from hero_logic.kernel import InvalidParams

from ._inputs import json_type_name, matches_type

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from hero_logic.kernel import FlowField

__all__ = [
    "RunOutcome",
    "check_expected_output",
    "merge_under",
    "output_differences",
    "outputs_match",
    "run_accuracy",
    "summarise_runs",
]


@attrs.frozen
class RunOutcome:
    """One benchmark run, reduced to what the benchmark's numbers need."""

    success: bool
    duration_ms: int | None
    cost_usd: float = 0.0
    accuracy: float | None = None
    """None: the run gives no accuracy signal (no expected output, no score, not failed)."""
    basis: str = ""


# -- checks --------------------------------------------------------------------------------------


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_expected_output(outputs: Sequence[FlowField], expected: Any, *, flow_name: str) -> None:
    """Raise InvalidParams naming each part of ``expected`` that breaks the declared outputs.

    With declared outputs, ``expected`` must be an object whose keys are declared outputs of
    the declared types (a subset is fine: only those are compared). A flow that declares no
    outputs accepts any JSON value.
    """
    if expected is None or not outputs:
        return
    declared = {f.name: f for f in outputs}
    if not isinstance(expected, dict):
        raise InvalidParams.fields(
            [{
                "field": "expected_output",
                "error": f"flow {flow_name!r} declares outputs ({', '.join(declared)}), so the "
                f"expected output is an object of them, got {_show(expected)} ({json_type_name(expected)})",
            }],
            context=f"expected output of flow {flow_name!r}",
        )
    problems: list[dict[str, str]] = []
    for name, value in expected.items():
        spec = declared.get(name)
        if spec is None:
            problems.append({
                "field": f"expected_output.{name}",
                "error": f"flow {flow_name!r} declares no output {name!r} (declared: {', '.join(sorted(declared))})",
            })
        elif not matches_type(value, spec.field_type):
            problems.append({
                "field": f"expected_output.{name}",
                "error": f"flow {flow_name!r} declares output {name!r} as {spec.field_type.value}, got "
                f"{_show(value)} ({json_type_name(value)}): expect a {spec.field_type.value}",
            })
    if problems:
        raise InvalidParams.fields(problems, context=f"expected output of flow {flow_name!r}")


# -- benchmark arithmetic ------------------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1 equals 1.0, but True is not 1 and "1" is not 1."""
    a_num = isinstance(a, int | float) and not isinstance(a, bool)
    b_num = isinstance(b, int | float) and not isinstance(b, bool)
    if a_num or b_num:
        return a_num and b_num and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def outputs_match(expected: Any, output: Any) -> bool:
    """True if ``output`` matches ``expected`` exactly.

    An object ``expected`` compares only its own keys (the declared outputs a preset pins);
    anything else must equal the whole output.
    """
    if isinstance(expected, dict) and expected:
        return isinstance(output, dict) and all(k in output and _same(output[k], v) for k, v in expected.items())
    return _same(expected, output)


def output_differences(expected: Any, output: Any) -> list[str]:
    """How ``output`` departs from ``expected``, one line per expected key that differs (in
    the order of ``expected``), as :func:`outputs_match` compares them; [] when they match."""
    if isinstance(expected, dict) and expected:
        if not isinstance(output, dict):
            keys = ", ".join(repr(k) for k in list(expected)[:5])
            return [f"expected an object with key {keys}, got {_show(output)} ({json_type_name(output)})"]
        lines = []
        for key, value in expected.items():
            if key not in output:
                lines.append(f"key {key!r} is missing")
            elif not _same(output[key], value):
                lines.append(f"key {key!r}: expected {_show(value)}, got {_show(output[key])}")
        return lines
    return [] if _same(expected, output) else [f"expected {_show(expected)}, got {_show(output)}"]


def run_accuracy(*, success: bool, output: Any, expected: Any, score: Any) -> tuple[float | None, str]:
    """How right one run was, in 0..1, and on what basis.

    A preset with an expected output: 1 if the run succeeded with a matching output, else 0.
    Otherwise the ``score`` the flow tagged on its root span (a number, clamped to 0..1).
    A failed run scores 0. A successful run with neither gives no signal (None).
    """
    if expected is not None:
        return (1.0 if success and outputs_match(expected, output) else 0.0), "expected_output"
    if not success:
        return 0.0, "failed"
    if isinstance(score, int | float) and not isinstance(score, bool) and math.isfinite(score):
        return min(1.0, max(0.0, float(score))), "score"
    return None, ""


def summarise_runs(outcomes: Sequence[RunOutcome]) -> dict[str, Any]:
    """The Benchmark fields that ``outcomes`` add up to (for ``attrs.evolve``)."""
    if not outcomes:
        return {"success_rate": 0.0, "accuracy": 0.0, "accuracy_basis": ""}
    successes = [o for o in outcomes if o.success]
    success_rate = len(successes) / len(outcomes)
    bases = {o.basis for o in outcomes if o.basis in ("expected_output", "score")}
    if bases:
        signals = [o.accuracy for o in outcomes if o.accuracy is not None]
        accuracy = sum(signals) / len(signals)
        basis = bases.pop() if len(bases) == 1 else "mixed"
    else:
        accuracy, basis = success_rate, "success_rate"
    timed = [o.duration_ms for o in (successes or outcomes) if o.duration_ms is not None]
    fields: dict[str, Any] = {
        "success_rate": round(success_rate, 6),
        "accuracy": round(accuracy, 6),
        "accuracy_basis": basis,
        "avg_cost_usd": round(sum(o.cost_usd for o in outcomes) / len(outcomes), 10),
    }
    if timed:
        fields |= {
            "avg_duration_ms": round(sum(timed) / len(timed), 1),
            "p50_duration_ms": round(statistics.median(timed)),
            "min_duration_ms": min(timed),
            "max_duration_ms": max(timed),
        }
    return fields


def merge_under(base: Mapping[str, Any], explicit: Mapping[str, Any] | None) -> dict[str, Any]:
    """``base`` with ``explicit`` on top (explicit values win)."""
    return {**base, **(explicit or {})}
